/* manage.c — changing what a database holds after the fact: a dictionary removed or
 * re-pointed, a new skip set (docs/ARCHITECTURE.md, "Managing data"). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_impl.h"

char *ldb_abs_path(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return strdup(path);
    const char *p = path;
    while (p[0] == '.' && p[1] == '/') /* "./x" reads as "x" */
        p += 2;
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", cwd, p);
    free(cwd);
    return out;
}

/* The id and record (parsed, *rec; free with cJSON_Delete) of dictionary name as txn
 * sees it. LDB_ENOTFOUND when it has none of that name. */
static int find_dict(ldb_db *db, MDB_txn *txn, const char *name, uint16_t *id, cJSON **rec)
{
    MDB_cursor *c;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, db->dicts, &c);
    *rec = NULL;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "dicts");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !*rec;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
        const cJSON *nm = cJSON_GetObjectItem(o, "name");
        if (k.mv_size == 2 && cJSON_IsString(nm) && !strcmp(nm->valuestring, name)) {
            *id = ldb_rd_be16(k.mv_data);
            *rec = o;
        } else {
            cJSON_Delete(o);
        }
    }
    mdb_cursor_close(c);
    if (mrc && mrc != MDB_NOTFOUND)
        return ldb_db_mdb_err(db, mrc, "dicts");
    return *rec ? LDB_OK : ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no dictionary named "
                                       "'%s'", db->path, name);
}

/* Deletes every record of dbi whose key starts with the dictionary id. */
static int del_prefix(ldb_db *db, MDB_txn *txn, MDB_dbi dbi, uint16_t id, const char *table)
{
    MDB_cursor *c;
    uint8_t kb[2];
    ldb_be16(kb, id);
    MDB_val k = {2, kb}, v;
    int mrc = mdb_cursor_open(txn, dbi, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, table);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size >= 2 && !memcmp(k.mv_data, kb, 2);
         mrc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT)) {
        if ((mrc = mdb_cursor_del(c, 0)))
            break;
    }
    mdb_cursor_close(c);
    return mrc && mrc != MDB_NOTFOUND ? ldb_db_mdb_err(db, mrc, table) : LDB_OK;
}

/* Deletes the run records whose "dicts" name the dictionary. */
static int del_runs(ldb_db *db, MDB_txn *txn, const char *name)
{
    MDB_cursor *c;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, db->runs, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "runs");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;) {
        cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
        const cJSON *ds = cJSON_GetObjectItem(o, "dicts"), *d;
        int named = 0;
        cJSON_ArrayForEach(d, ds)
            named |= cJSON_IsString(d) && !strcmp(d->valuestring, name);
        cJSON_Delete(o);
        if (named && (mrc = mdb_cursor_del(c, 0)) == 0)
            mrc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        else if (!named)
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return mrc && mrc != MDB_NOTFOUND ? ldb_db_mdb_err(db, mrc, "runs") : LDB_OK;
}

int ldb_db_dict_rm(ldb_db *db, const char *name)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    MDB_txn *txn;
    cJSON *rec = NULL;
    uint16_t id = 0;
    uint64_t next = 0;
    int rc, mrc = ldb_txn_begin(db, 0, &txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if ((rc = find_dict(db, txn, name, &id, &rec)))
        goto out;
    uint8_t kb[2];
    ldb_be16(kb, id);
    MDB_val k = {2, kb};
    MDB_dbi fwd, inv;
    if ((mrc = mdb_del(txn, db->dicts, &k, NULL))) {
        rc = ldb_db_mdb_err(db, mrc, "dicts");
        goto out;
    }
    /* emptied, not dropped: another process's handles on them stay valid */
    if ((rc = ldb_db_dict_dbis(db, txn, id, 0, &fwd, &inv)))
        goto out;
    if ((mrc = mdb_drop(txn, fwd, 0)) || (mrc = mdb_drop(txn, inv, 0))) {
        rc = ldb_db_mdb_err(db, mrc, "fwd/inv");
        goto out;
    }
    struct { MDB_dbi dbi; const char *name; } keyed[] = {
        {db->cover, "cover"}, {db->dstat, "dstat"}, {db->lsum, "lsum"}, {db->ltop, "ltop"},
        {db->lcnt, "lcnt"}, {db->labels, "labels"}, {db->lwin, "lwin"}, {db->lseq, "lseq"},
    };
    for (size_t i = 0; i < sizeof keyed / sizeof *keyed && !rc; i++)
        if (keyed[i].dbi) /* (lwin, lseq: format 6) */
            rc = del_prefix(db, txn, keyed[i].dbi, id, keyed[i].name);
    if (!rc && !(rc = del_runs(db, txn, name)) &&
        !(rc = ldb_db_meta_u64(db, txn, "dict_next", &next)) &&
        !(rc = ldb_db_meta_put_u64(db, txn, "dict_next", next > id + 1u ? next : id + 1u)))
        rc = ldb_db_commit_mirrored(db, &txn, 1);
out:
    if (txn)
        ldb_txn_abort(db, txn);
    cJSON_Delete(rec);
    return rc;
}

int ldb_db_dict_set_path(ldb_db *db, const char *name, const char *path)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    ldb_dict *d = NULL;
    cJSON *rec = NULL, *desc = NULL;
    MDB_txn *txn = NULL;
    char *abs = NULL, *json = NULL, *s = NULL;
    uint16_t id = 0;
    int rc = ldb_dict_open(path, &d), mrc;
    if (rc) {
        ldb_err_set(ldb_db_err(db), rc, "%s", ldb_dict_errmsg(d));
        goto out;
    }
    if (!(s = ldb_dict_describe(d)) || !(desc = cJSON_Parse(s)) || !(abs = ldb_abs_path(path))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((mrc = ldb_txn_begin(db, 0, &txn))) {
        rc = ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
        goto out;
    }
    if ((rc = find_dict(db, txn, name, &id, &rec)))
        goto out;
    const cJSON *want = cJSON_GetObjectItem(rec, "sha256"), *got = cJSON_GetObjectItem(desc, "sha256");
    if (!cJSON_IsString(want) || !cJSON_IsString(got) || strcmp(want->valuestring, got->valuestring)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: the weights at %s (SHA-256 %.16s...) are "
                         "not those of '%s' (%.16s...); dict set-path is for files that moved",
                         db->path, path, cJSON_IsString(got) ? got->valuestring : "?", name,
                         cJSON_IsString(want) ? want->valuestring : "?");
        goto out;
    }
    cJSON_ReplaceItemInObject(rec, "path", cJSON_CreateString(abs));
    if (!(json = cJSON_PrintUnformatted(rec))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    uint8_t kb[2];
    ldb_be16(kb, id);
    MDB_val k = {2, kb}, v = {strlen(json), json};
    if ((mrc = mdb_put(txn, db->dicts, &k, &v, 0)))
        rc = ldb_db_mdb_err(db, mrc, "dicts");
    else
        rc = ldb_db_commit_mirrored(db, &txn, 1);
out:
    if (txn)
        ldb_txn_abort(db, txn);
    cJSON_Delete(rec);
    cJSON_Delete(desc);
    free(s);
    free(abs);
    free(json);
    ldb_dict_close(d);
    return rc;
}

int ldb_db_max_token(ldb_db *db, uint32_t *max, int *any)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    *max = 0;
    *any = 0;
    int mrc = ldb_txn_begin(db, MDB_RDONLY, &txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if (!(mrc = mdb_cursor_open(txn, db->tokidx, &c))) { /* keyed by token first */
        mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
        if (!mrc && k.mv_size >= 4) {
            *max = ldb_rd_be32(k.mv_data);
            *any = 1;
        }
        mdb_cursor_close(c);
    }
    ldb_txn_abort(db, txn);
    return mrc && mrc != MDB_NOTFOUND ? ldb_db_mdb_err(db, mrc, "tokidx") : LDB_OK;
}

int ldb_db_set_skip(ldb_db *db, const uint32_t *skip, size_t n)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    if (n > 1024)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "a skip set of at most 1024 tokens, not %zu",
                           n);
    uint32_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    memcpy(s, skip, n * sizeof *s);
    qsort(s, n, sizeof *s, ldb_cmp_u32);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) /* a set: duplicates once */
        if (!m || s[m - 1] != s[i])
            s[m++] = s[i];
    int same = m == db->n_skip && !memcmp(s, db->skip, m * sizeof *s);
    int rc = same ? LDB_OK : ldb_db_rebuild_skip(db, s, m);
    free(s);
    return rc;
}
