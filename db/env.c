/* env.c — opening a database: the LMDB environment, its named databases, meta,
 * the skip set, and dictionary records (creating one: create.c). Invariant: an open ldb_db
 * has a format it understands and its dictionary records loaded. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "db_impl.h"
#include "writer.h"

#define MAP_SIZE ((size_t)1 << 40) /* address space only: the file grows as used */

/* The map to open with: 1 TiB, or LATENTDB_MAP_SIZE bytes (a smaller address space,
 * or tests of map growth); at least what the file already holds (LMDB sees to it). */
static size_t map_size(void)
{
    const char *e = getenv("LATENTDB_MAP_SIZE");
    char *end;
    unsigned long long v = e ? strtoull(e, &end, 10) : 0;
    return e && *e && !*end && v >= 65536 ? (size_t)v : MAP_SIZE;
}

int ldb_cursor_floor(MDB_cursor *c, MDB_val *k, MDB_val *v)
{
    MDB_val want = *k;
    int mrc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (mrc == 0 && (k->mv_size != want.mv_size || memcmp(k->mv_data, want.mv_data, want.mv_size)))
        return mdb_cursor_get(c, k, v, MDB_PREV);
    if (mrc == MDB_NOTFOUND)
        return mdb_cursor_get(c, k, v, MDB_LAST);
    return mrc;
}

int ldb_db_mdb_err(ldb_db *db, int mrc, const char *what)
{
    if (mrc == MDB_MAP_FULL)
        db->map_full = 1;
    if (mrc == LDB_MDB_MAP_LOST)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "%s: %s: another process grew the database "
                           "and its map could not be made again at %zu bytes (%s); close the "
                           "database and open it again", db->path, what, ldb_map_lost_size(db),
                           strerror(ldb_map_is_lost(db)));
    int rc = mrc == MDB_MAP_FULL || mrc == ENOSPC ? LDB_EIO
           : mrc == MDB_NOTFOUND ? LDB_ENOTFOUND
           : mrc == ENOMEM ? LDB_ENOMEM
           : mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INVALID ? LDB_EFORMAT
           : LDB_EIO;
    struct statvfs fs;
    /* LMDB reports a write cut short by a full disk as EIO: say what it was */
    if ((mrc == EIO || mrc == ENOSPC) && statvfs(db->path, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < ((uint64_t)64 << 20))
        return ldb_err_set(ldb_db_err(db), rc, "%s: %s: %s (No space left on device: %llu KiB free)",
                           db->path, what, mdb_strerror(mrc),
                           (unsigned long long)((uint64_t)fs.f_bavail * fs.f_frsize >> 10));
    return ldb_err_set(ldb_db_err(db), rc, "%s: %s: %s", db->path, what, mdb_strerror(mrc));
}

/* Changing the map's size needs every transaction of the process closed: both run
 * under ldb_map_exclusive. want 0 adopts another process's growth: room for what
 * the file uses now, twice over (not the size that process chose, which may be
 * more address space than this one has: a 1 TiB map under ThreadSanitizer or a
 * ulimit -v). When the new map cannot be made, LMDB has already dropped the old
 * one, so the handle is marked lost and every later transaction is refused. */
static int set_map(ldb_db *db, void *arg)
{
    size_t want = *(size_t *)arg;
    MDB_envinfo info;
    MDB_stat st;
    int mrc = mdb_env_info(db->env, &info);
    if (!mrc && !want && !(mrc = mdb_env_stat(db->env, &st))) {
        size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
        for (want = info.me_mapsize; want < 2 * used && want <= SIZE_MAX / 2;)
            want *= 2;
    } else if (!mrc && info.me_mapsize >= want) {
        return MDB_SUCCESS; /* another thread already grew it */
    }
    if (!mrc && (mrc = mdb_env_set_mapsize(db->env, want)))
        ldb_map_lost(db, mrc, want);
    return mrc;
}

int ldb_txn_begin(ldb_db *db, unsigned flags, MDB_txn **txn)
{
    MDB_envinfo info;
    MDB_stat st;
    /* A writer keeps the map at least twice what the file uses, so that small
     * transactions never meet MDB_MAP_FULL (a batch that does is retried). Skipped
     * when this thread holds a transaction (it cannot wait for itself). */
    if (!(flags & MDB_RDONLY) && !mdb_env_info(db->env, &info) && !mdb_env_stat(db->env, &st) &&
        (info.me_last_pgno + 1) * (size_t)st.ms_psize > info.me_mapsize / 2) {
        size_t want = info.me_mapsize * 2;
        if (want > info.me_mapsize)
            ldb_map_exclusive(db, set_map, &want);
    }
    ldb_map_shared(db);
    int mrc = ldb_map_is_lost(db) ? LDB_MDB_MAP_LOST : mdb_txn_begin(db->env, NULL, flags, txn);
    if (mrc == MDB_MAP_RESIZED) { /* another process grew the map: adopt its size */
        ldb_map_release(db);
        size_t zero = 0;
        if ((mrc = ldb_map_exclusive(db, set_map, &zero)))
            return mrc == MDB_BAD_TXN ? MDB_MAP_RESIZED : mrc;
        ldb_map_shared(db);
        mrc = ldb_map_is_lost(db) ? LDB_MDB_MAP_LOST : mdb_txn_begin(db->env, NULL, flags, txn);
    }
    if (mrc)
        ldb_map_release(db);
    return mrc;
}

int ldb_db_grow_map(ldb_db *db)
{
    MDB_envinfo info;
    if (!db->map_full)
        return LDB_EIO;
    db->map_full = 0;
    int mrc = mdb_env_info(db->env, &info);
    size_t want = info.me_mapsize * 2;
    if (!mrc)
        mrc = want > info.me_mapsize ? ldb_map_exclusive(db, set_map, &want) : MDB_MAP_FULL;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot grow the map");
    ldb_err_clear(ldb_db_err(db));
    return LDB_OK;
}

const char *ldb_db_note(const ldb_db *db)
{
    return db ? db->note : "";
}

int ldb_db_meta_u64(ldb_db *db, MDB_txn *txn, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    *out = 0;
    int mrc = mdb_get(txn, db->meta, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_OK;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, key);
    if (v.mv_size != 8)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: meta '%s' has %zu bytes, expected 8",
                           db->path, key, v.mv_size);
    memcpy(out, v.mv_data, 8);
    return LDB_OK;
}

int ldb_db_meta_put_u64(ldb_db *db, MDB_txn *txn, const char *key, uint64_t v)
{
    MDB_val k = {strlen(key), (void *)key}, d = {8, &v};
    int mrc = mdb_put(txn, db->meta, &k, &d, 0);
    return mrc ? ldb_db_mdb_err(db, mrc, key) : LDB_OK;
}

void ldb_dicts_free(ldb_dbdict *dict, int n)
{
    for (int i = 0; i < n; i++) {
        free(dict[i].name);
        free(dict[i].path);
        free(dict[i].json);
        free(dict[i].layer_off);
    }
    free(dict);
}

int ldb_db_dict_dbis(ldb_db *db, MDB_txn *txn, uint16_t id, int create, MDB_dbi *fwd, MDB_dbi *inv)
{
    char nf[16], ni[16];
    snprintf(nf, sizeof nf, "fwd:%u", id);
    snprintf(ni, sizeof ni, "inv:%u", id);
    unsigned f = create ? MDB_CREATE : 0;
    int mrc = mdb_dbi_open(txn, nf, f, fwd);
    if (!mrc)
        mrc = mdb_dbi_open(txn, ni, f, inv);
    if (mrc == MDB_NOTFOUND)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the indexes of dictionary %u are missing",
                           db->path, id);
    return mrc ? ldb_db_mdb_err(db, mrc, nf) : LDB_OK;
}

/* A multi-layer dictionary's layers from its record ("layers": [{offset, d_sae}, ..]):
 * offsets from 0, each the previous one plus its d_sae, the last ending at d_sae. */
static int load_layers(ldb_db *db, ldb_dbdict *d, const cJSON *ls)
{
    int n = cJSON_IsArray(ls) ? cJSON_GetArraySize(ls) : 0;
    if (n <= 0)
        return LDB_OK; /* a single-layer dictionary (or a record made before layers) */
    if (!(d->layer_off = malloc(((size_t)n + 1) * sizeof *d->layer_off)))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    d->n_layers = (uint32_t)n;
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *l = cJSON_GetArrayItem(ls, i);
        double off = cJSON_GetNumberValue(cJSON_GetObjectItem(l, "offset"));
        double w = cJSON_GetNumberValue(cJSON_GetObjectItem(l, "d_sae"));
        if (off != (double)at || !(w >= 1) || at + (uint64_t)w > d->d_sae)
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: dictionary record %u: layer %d "
                               "does not follow the one before it (run latentdb check)", db->path,
                               d->id, i);
        d->layer_off[i] = (uint32_t)at;
        at += (uint64_t)w;
    }
    if (at != d->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: dictionary record %u: its layers hold "
                           "%llu latents, not d_sae = %u (run latentdb check)", db->path, d->id,
                           (unsigned long long)at, d->d_sae);
    d->layer_off[n] = d->d_sae;
    return LDB_OK;
}

int ldb_db_load_dicts(ldb_db *db, MDB_txn *txn)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    ldb_dbdict *dict = NULL;
    int rc = LDB_OK, mrc, n = 0;
    if ((mrc = mdb_cursor_open(txn, db->dicts, &c)))
        return ldb_db_mdb_err(db, mrc, "dicts");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ldb_dbdict *nd = realloc(dict, (size_t)(n + 1) * sizeof *nd);
        if (!nd) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        dict = nd;
        ldb_dbdict *d = &dict[n++];
        memset(d, 0, sizeof *d);
        d->id = ldb_rd_be16(k.mv_data);
        d->json = strndup(v.mv_data, v.mv_size);
        cJSON *o = d->json ? cJSON_Parse(d->json) : NULL;
        if (!o) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: dictionary record %u is not JSON",
                             db->path, d->id);
            break;
        }
        const cJSON *nm = cJSON_GetObjectItem(o, "name"), *pa = cJSON_GetObjectItem(o, "path");
        d->name = strdup(cJSON_IsString(nm) ? nm->valuestring : "?");
        d->path = strdup(cJSON_IsString(pa) ? pa->valuestring : "");
        d->d_in = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "d_in"));
        d->d_out = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "d_out"));
        d->d_sae = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "d_sae"));
        double b = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "block"));
        d->block = b > 0 ? (uint32_t)b : 0;
        if ((rc = load_layers(db, d, cJSON_GetObjectItem(o, "layers")))) {
            cJSON_Delete(o);
            break;
        }
        cJSON_Delete(o);
        if (!d->name || !d->path) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        MDB_dbi f, i;
        if ((rc = ldb_db_dict_dbis(db, txn, d->id, 0, &f, &i)))
            break;
        d->fwd = f;
        d->inv = i;
    }
    mdb_cursor_close(c);
    if (!rc && (rc = ldb_dicts_publish(db, dict, n)))
        rc = ldb_err_set(ldb_db_err(db), rc, "out of memory");
    if (rc)
        ldb_dicts_free(dict, n);
    return rc;
}

int ldb_db_reload_dicts(ldb_db *db)
{
    MDB_txn *t;
    int mrc = ldb_txn_begin(db, MDB_RDONLY, &t);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a read transaction");
    int rc = ldb_db_load_dicts(db, t);
    mrc = ldb_txn_commit(db, t);
    return rc ? rc : mrc ? ldb_db_mdb_err(db, mrc, "cannot open") : LDB_OK;
}

const ldb_dbdict *ldb_db_find_dict(ldb_db *db, const char *name)
{
    char known[512] = "";
    size_t o = 0;
    int n;
    const ldb_dbdict *dict = ldb_db_dicts(db, &n);
    for (int i = 0; i < n; i++) {
        if (!strcmp(dict[i].name, name))
            return &dict[i];
        if (o < sizeof known - 64)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "",
                                  dict[i].name);
    }
    ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no dictionary named '%s' (%s%s)", db->path, name,
                n ? "known: " : "none added yet; use latentdb dict add", known);
    return NULL;
}

int ldb_db_get_dstat(ldb_db *db, MDB_txn *txn, uint16_t dict, ldb_dstat *st)
{
    uint8_t kb[2];
    ldb_be16(kb, dict);
    MDB_val k = {2, kb}, v;
    memset(st, 0, sizeof *st);
    int mrc = mdb_get(txn, db->dstat, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_OK;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "dstat");
    if (v.mv_size != sizeof *st)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: dstat record of %zu bytes", db->path,
                           v.mv_size);
    memcpy(st, v.mv_data, sizeof *st);
    return LDB_OK;
}

void ldb_seqrec_encode(const ldb_seqrec *s, uint8_t out[40])
{
    memcpy(out, &s->start, 8);
    memcpy(out + 8, &s->len, 4);
    memcpy(out + 12, &s->source, 4);
    memcpy(out + 16, &s->row, 8);
    memcpy(out + 24, s->hash, 16);
}

void ldb_seqrec_decode(uint64_t seq, const uint8_t in[40], ldb_seqrec *s)
{
    s->seq = seq;
    memcpy(&s->start, in, 8);
    memcpy(&s->len, in + 8, 4);
    memcpy(&s->source, in + 12, 4);
    memcpy(&s->row, in + 16, 8);
    memcpy(s->hash, in + 24, 16);
}

int ldb_db_get_seq(ldb_db *db, MDB_txn *txn, uint64_t seq, ldb_seqrec *out)
{
    uint8_t kb[8];
    ldb_be64(kb, seq);
    MDB_val k = {8, kb}, v;
    int mrc = mdb_get(txn, db->seqs, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no sequence %llu", db->path,
                           (unsigned long long)seq);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqs");
    if (v.mv_size != 40)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: sequence %llu record of %zu bytes",
                           db->path, (unsigned long long)seq, v.mv_size);
    ldb_seqrec_decode(seq, v.mv_data, out);
    return LDB_OK;
}

int ldb_db_seq_at(ldb_db *db, MDB_txn *txn, uint64_t gpos, ldb_seqrec *out)
{
    MDB_cursor *c;
    uint8_t kb[8];
    ldb_be64(kb, gpos);
    MDB_val k = {8, kb}, v;
    int mrc = mdb_cursor_open(txn, db->seqpos, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqpos");
    mrc = ldb_cursor_floor(c, &k, &v);
    uint64_t seq = 0;
    if (mrc == 0)
        memcpy(&seq, v.mv_data, 8);
    mdb_cursor_close(c);
    if (mrc)
        return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no sequence holds position %llu",
                           db->path, (unsigned long long)gpos);
    int rc = ldb_db_get_seq(db, txn, seq, out);
    if (!rc && (gpos < out->start || gpos >= out->start + out->len))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no sequence holds position %llu",
                         db->path, (unsigned long long)gpos);
    return rc;
}

int ldb_env_open_dbis(ldb_db *db, MDB_txn *txn, unsigned flags)
{
    static const char *names[] = {"meta", "dicts", "seqs", "seqpos", "seqhash", "sources",
                                  "cover", "dstat", "tok", "tokidx", "lsum", "ltop", "lcnt",
                                  "labels", "runs"};
    MDB_dbi *dbis[] = {&db->meta, &db->dicts, &db->seqs, &db->seqpos, &db->seqhash, &db->sources,
                       &db->cover, &db->dstat, &db->tok, &db->tokidx, &db->lsum, &db->ltop,
                       &db->lcnt, &db->labels, &db->runs};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        unsigned f = flags | (!strcmp(names[i], "seqhash") ? MDB_DUPSORT : 0);
        int mrc = mdb_dbi_open(txn, names[i], f, dbis[i]);
        if (mrc == MDB_NOTFOUND)
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: not a latentdb database (no '%s' "
                               "table)", db->path, names[i]);
        if (mrc)
            return ldb_db_mdb_err(db, mrc, names[i]);
    }
    /* format 6's tables: made with a DB of that format (db->format is set before a
     * create); an open, which does not know the format yet, takes them if they are
     * there, and open_fresh refuses a version-6 DB without them */
    static const char *v6[] = {"lwin", "lseq"};
    MDB_dbi *v6dbi[] = {&db->lwin, &db->lseq};
    for (size_t i = 0; i < 2; i++) {
        *v6dbi[i] = 0;
        if ((flags & MDB_CREATE) && db->format < 6)
            continue;
        int mrc = mdb_dbi_open(txn, v6[i], flags, v6dbi[i]);
        if (mrc == MDB_NOTFOUND)
            *v6dbi[i] = 0;
        else if (mrc)
            return ldb_db_mdb_err(db, mrc, v6[i]);
    }
    return LDB_OK;
}

/* LMDB calls this when one of its assertions fails (a page that is not what its
 * parent says: a damaged file), then aborts. The process ends here instead, with
 * status 1 and a message naming the DB: _exit, like the abort it replaces, runs no
 * more code of LMDB or of the caller (no atexit handlers while other threads run),
 * so a writer's transaction ends as a kill ends it (the last commit stands). */
static void on_assert(MDB_env *env, const char *msg)
{
    const char *path = NULL;
    if (mdb_env_get_path(env, &path) || !path)
        path = "DB";
    fprintf(stderr, "latentdb: %s: LMDB found a damaged page (%s); run latentdb check %s\n", path,
            msg, path);
    _exit(1);
}

int ldb_env_open(ldb_db *db, int rdonly)
{
    int mrc;
    if ((mrc = mdb_env_create(&db->env)) || (mrc = mdb_env_set_maxdbs(db->env, 16 + 2 * LDB_MAX_DICTS)) ||
        (mrc = mdb_env_set_mapsize(db->env, map_size())) ||
        (mrc = mdb_env_set_maxreaders(db->env, 256)) ||
        (mrc = mdb_env_set_assert(db->env, on_assert)))
        return ldb_db_mdb_err(db, mrc, "cannot set up LMDB");
    mrc = mdb_env_open(db->env, db->path, (rdonly ? MDB_RDONLY : 0) | MDB_NOTLS, 0644);
    if (mrc == ENOENT)
        return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no database here (create one with "
                           "latentdb init)", db->path);
    if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH) { /* its two meta pages */
        char *p = ldb_path_join(db->path, "data.mdb");
        struct stat st;
        long long size = p && stat(p, &st) == 0 ? (long long)st.st_size : -1;
        free(p);
        if (size >= 0 && size < 2 * sysconf(_SC_PAGESIZE))
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: data.mdb is truncated: %lld bytes, "
                               "shorter than LMDB's two meta pages; restore it from a copy",
                               db->path, size);
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: data.mdb is not an LMDB file its version "
                           "reads (%s); restore it from a copy", db->path, mdb_strerror(mrc));
    }
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot open");
    int rc = ldb_env_check_size(db);
    if (rc)
        return rc;
    int dead = 0;
    mdb_reader_check(db->env, &dead); /* clear slots of readers that died */
    return LDB_OK;
}

ldb_db *ldb_db_alloc(const char *path)
{
    ldb_db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->path = strdup(path);
    db->zc = ldb_zc_new(3);
    if (!db->path || !db->zc || ldb_sync_new(db)) {
        ldb_db_close(db);
        return NULL;
    }
    return db;
}

void ldb_db_close(ldb_db *db)
{
    if (!db || !ldb_open_release(db)) /* another open of it in this process goes on */
        return;
    ldb_catalog_close(db);
    ldb_writer_drop_spare(db);
    ldb_sync_free(db); /* its pooled transactions first */
    if (db->env)
        mdb_env_close(db->env);
    ldb_dicts_free(db->dict, db->n_dict);
    ldb_seqcache_free(db->seqcache);
    free(db->skip);
    ldb_tokenizer_close(db->tokenizer);
    ldb_zc_free(db->zc);
    free(db->path);
    free(db);
}

static int open_fresh(const char *path, int flags, ldb_db **out);

int ldb_db_reopen(ldb_db *db)
{
    ldb_db *n = NULL;
    ldb_writer_drop_spare(db); /* it points at db */
    int rc = open_fresh(db->path, db->rdonly ? LDB_OPEN_READ : LDB_OPEN_WRITE, &n);
    if (rc) {
        if (n)
            ldb_err_set(ldb_db_err(db), rc, "%s", ldb_db_errmsg(n));
        ldb_db_close(n);
        return rc;
    }
    /* the new state into db, the old one closed through n */
    ldb_open_swap(db, n);
    ldb_db_close(n);
    return LDB_OK;
}

int ldb_db_open(const char *path, int flags, ldb_db **out)
{
    /* LMDB allows one environment per file in a process: a second open shares it */
    return ldb_open_shared(path, flags, open_fresh, out);
}

static int open_fresh(const char *path, int flags, ldb_db **out)
{
    ldb_db *db = ldb_db_alloc(path);
    MDB_txn *txn = NULL;
    int rc, mrc;
    *out = db;
    if (!db)
        return LDB_ENOMEM;
    db->rdonly = !(flags & LDB_OPEN_WRITE);
    if (!ldb_path_is_dir(path))
        return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no database here (create one with "
                           "latentdb init)", path);
    if ((rc = ldb_env_precheck(db)) || (rc = ldb_env_open(db, db->rdonly)))
        return rc;
    if ((mrc = ldb_txn_begin(db, MDB_RDONLY, &txn)))
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if ((rc = ldb_env_open_dbis(db, txn, 0)))
        goto out;
    MDB_val k = {6, "format"}, v = {0, NULL};
    db->format = 0;
    if (!mdb_get(txn, db->meta, &k, &v))
        for (int f = LDB_FORMAT_MIN; f <= LDB_FORMAT_NEW; f++)
            if (v.mv_size == 10 && !memcmp(v.mv_data, "latentdb ", 9) &&
                ((char *)v.mv_data)[9] == '0' + f)
                db->format = f;
    if (!db->format) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: database format '%.*s'; this latentdb "
                         "reads 'latentdb %d' to 'latentdb %d' (ingest again into a new database)",
                         path, (int)(v.mv_size < 40 ? v.mv_size : 40),
                         v.mv_data ? (char *)v.mv_data : "", LDB_FORMAT_MIN, LDB_FORMAT_NEW);
        goto out;
    }
    if (db->format >= 6 && (!db->lwin || !db->lseq)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: a 'latentdb %d' database without its "
                         "'%s' table; run latentdb check --repair", path, db->format,
                         db->lwin ? "lseq" : "lwin");
        goto out;
    }
    MDB_val kv = {6, "values"}, ks = {4, "skip"};
    if (mdb_get(txn, db->meta, &kv, &v) || v.mv_size != 1 || *(uint8_t *)v.mv_data > 2) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: bad meta 'values'", path);
        goto out;
    }
    db->values = *(uint8_t *)v.mv_data;
    if (mdb_get(txn, db->meta, &ks, &v) || v.mv_size % 4) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: bad meta 'skip'", path);
        goto out;
    }
    db->n_skip = v.mv_size / 4;
    if (!(db->skip = malloc(v.mv_size ? v.mv_size : 1))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(db->skip, v.mv_data, v.mv_size);
    if ((rc = ldb_db_load_dicts(db, txn)))
        goto out;
    /* commit, not abort: database handles opened in this txn must stay open */
    mrc = ldb_txn_commit(db, txn);
    txn = NULL;
    if (mrc) {
        rc = ldb_db_mdb_err(db, mrc, "cannot open");
        goto out;
    }
    if (!db->rdonly && ((rc = ldb_catalog_open(db)) || (rc = ldb_catalog_sync(db, 0))))
        goto out;
out:
    ldb_txn_abort(db, txn);
    return rc;
}
