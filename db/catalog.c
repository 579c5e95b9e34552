/* catalog.c — the SQLite mirror (catalog.sqlite) of what people query with SQL:
 * dictionaries, sequences, runs, per-latent statistics and labels. LMDB is the
 * truth; the catalog records the LMDB write (meta "batch") it mirrors and is
 * rebuilt from one LMDB snapshot whenever that differs; a catalog that is not a
 * database is moved aside and rebuilt. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/mfile.h"
#include "db_impl.h"
#include "summary.h"

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS dicts(id INTEGER PRIMARY KEY, name TEXT UNIQUE, path TEXT,"
    " format TEXT, architecture TEXT, type TEXT, d_in INTEGER, d_out INTEGER, d_sae INTEGER,"
    " dtype TEXT, hook_in TEXT, hook_out TEXT, model TEXT, sha256 TEXT);"
    "CREATE TABLE IF NOT EXISTS sequences(seq INTEGER PRIMARY KEY, start INTEGER, len INTEGER,"
    " source TEXT, row INTEGER);"
    "CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, dicts TEXT, tokens TEXT, acts TEXT,"
    " status TEXT, rows INTEGER, rows_done INTEGER, started INTEGER, finished INTEGER);"
    "CREATE TABLE IF NOT EXISTS latents(dict TEXT, latent INTEGER, count INTEGER, density REAL,"
    " max REAL, mean REAL, std REAL, label TEXT, PRIMARY KEY(dict, latent));";

static int sq_err(ldb_db *db, const char *what)
{
    return ldb_err_set(ldb_db_err(db), LDB_EIO, "%s/catalog.sqlite: %s: %s", db->path, what,
                       db->cat ? sqlite3_errmsg(db->cat) : "cannot open");
}

/* 1 when the last error of sq says the file is not a sound database (SQLite's
 * "file is not a database", "database disk image is malformed"). */
static int damaged(sqlite3 *sq)
{
    int e = sq ? sqlite3_errcode(sq) & 0xff : 0;
    return e == SQLITE_NOTADB || e == SQLITE_CORRUPT;
}

/* The catalog is derived from LMDB, so a damaged one is moved aside (with its
 * -wal and -shm), for whoever wants to look at it, and rebuilt. */
static int move_aside(ldb_db *db, const char *why)
{
    char stamp[32], from[64], to[96];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", gmtime_r(&now, &tm));
    ldb_catalog_close(db);
    char *p = NULL;
    for (int n = 0; n < 100; n++) { /* a name no earlier damage took */
        snprintf(to, sizeof to, "catalog.sqlite.damaged-%s%s%.0d", stamp, n ? "-" : "", n);
        free(p);
        if (!(p = ldb_path_join(db->path, to)))
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        struct stat st;
        if (lstat(p, &st) != 0)
            break;
    }
    free(p);
    static const char *ext[] = {"-wal", "-shm", ""}; /* the database itself last */
    for (int i = 0; i < 3; i++) {
        char f2[128];
        snprintf(from, sizeof from, "catalog.sqlite%s", ext[i]);
        snprintf(f2, sizeof f2, "%s%s", to, ext[i]);
        char *a = ldb_path_join(db->path, from), *b = ldb_path_join(db->path, f2);
        int r = a && b ? rename(a, b) : -1;
        int e = errno;
        free(a);
        free(b);
        if (r != 0 && !(a && b && e == ENOENT)) {
            errno = a && b ? e : ENOMEM;
            return ldb_err_os(ldb_db_err(db), "%s/%s is not a database (%s) and cannot be moved aside",
                              db->path, from, why);
        }
    }
    snprintf(db->note, sizeof db->note, "%s/catalog.sqlite was not a database (%s); moved it to "
             "%s and rebuilt it from LMDB", db->path, why, to);
    return LDB_OK;
}

/* Opens catalog.sqlite and its tables; *bad says why a failure means damage. */
static int open_once(ldb_db *db, char *bad, size_t cap)
{
    char *p = ldb_path_join(db->path, "catalog.sqlite");
    struct stat st;
    *bad = 0;
    if (!p)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (lstat(p, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(bad, cap, "%s", S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
        free(p);
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s/catalog.sqlite is %s", db->path, bad);
    }
    int src = sqlite3_open(p, &db->cat);
    free(p);
    if (src != SQLITE_OK)
        return sq_err(db, "cannot open");
    sqlite3_busy_timeout(db->cat, 5000);
    if (sqlite3_exec(db->cat, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db->cat, "SELECT count(*) FROM meta", NULL, NULL, NULL) != SQLITE_OK) {
        if (damaged(db->cat))
            snprintf(bad, cap, "%s", sqlite3_errmsg(db->cat));
        return sq_err(db, "cannot create tables");
    }
    return LDB_OK;
}

int ldb_catalog_open(ldb_db *db)
{
    char bad[128];
    int rc = open_once(db, bad, sizeof bad);
    if (rc && *bad && !(rc = move_aside(db, bad)))
        rc = open_once(db, bad, sizeof bad);
    return rc;
}

void ldb_catalog_close(ldb_db *db)
{
    if (db->cat)
        sqlite3_close(db->cat);
    db->cat = NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The dictionary records of LMDB's state in txn (not the handle's list, which
 * another process's dict add may have outdated): ids, names and JSON. */
typedef struct snapdict {
    uint16_t id;
    cJSON *o;
    const char *name;
} snapdict;

static void snap_free(snapdict *d, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(d[i].o);
    free(d);
}

static int snap_dicts(ldb_db *db, MDB_txn *txn, snapdict **out, int *n)
{
    MDB_cursor *c;
    MDB_val k, v;
    snapdict *d = NULL;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->dicts, &c);
    *out = NULL;
    *n = 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "dicts");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cJSON *o = k.mv_size == 2 ? cJSON_ParseWithLength(v.mv_data, v.mv_size) : NULL;
        if (!o)
            continue; /* as the handle's loader would refuse it: check reports it */
        snapdict *g = realloc(d, (size_t)(*n + 1) * sizeof *g);
        if (!g) {
            cJSON_Delete(o);
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        d = g;
        const cJSON *nm = cJSON_GetObjectItem(o, "name");
        d[*n] = (snapdict){ldb_rd_be16(k.mv_data), o, cJSON_IsString(nm) ? nm->valuestring : "?"};
        (*n)++;
    }
    mdb_cursor_close(c);
    if (rc) {
        snap_free(d, *n);
        *n = 0;
        return rc;
    }
    *out = d;
    return LDB_OK;
}

static int fill_dicts(ldb_db *db, const snapdict *d, int nd, sqlite3_stmt *st)
{
    for (int i = 0; i < nd; i++) {
        const cJSON *o = d[i].o;
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, d[i].id);
        sqlite3_bind_text(st, 2, d[i].name, -1, SQLITE_TRANSIENT);
        static const char *cols[] = {"path", "format", "architecture", "type"};
        for (int c = 0; c < 4; c++)
            sqlite3_bind_text(st, 3 + c, jstr(o, cols[c]), -1, SQLITE_TRANSIENT);
        static const char *dims[] = {"d_in", "d_out", "d_sae"};
        for (int c = 0; c < 3; c++)
            sqlite3_bind_int64(st, 7 + c,
                               (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, dims[c])));
        static const char *cols2[] = {"dtype", "hook_in", "hook_out", "model", "sha256"};
        for (int c = 0; c < 5; c++)
            sqlite3_bind_text(st, 10 + c, jstr(o, cols2[c]), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            return sq_err(db, "dicts");
    }
    return LDB_OK;
}

static int fill_sequences(ldb_db *db, MDB_txn *txn, sqlite3_stmt *st)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->seqs, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqs");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ldb_seqrec s;
        if (v.mv_size != 40)
            continue;
        ldb_seqrec_decode(ldb_rd_be64(k.mv_data), v.mv_data, &s);
        uint8_t kb[4];
        ldb_be32(kb, s.source);
        MDB_val sk = {4, kb}, sv;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)s.seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)s.start);
        sqlite3_bind_int64(st, 3, s.len);
        if (mdb_get(txn, db->sources, &sk, &sv) == 0)
            sqlite3_bind_text(st, 4, sv.mv_data, (int)sv.mv_size, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)s.row);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_err(db, "sequences");
    }
    mdb_cursor_close(c);
    return rc;
}

static int fill_runs(ldb_db *db, MDB_txn *txn, sqlite3_stmt *st)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->runs, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "runs");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
        if (!o)
            continue;
        char id[65];
        for (size_t i = 0; i < 32 && i < k.mv_size; i++)
            snprintf(id + 2 * i, 3, "%02x", ((uint8_t *)k.mv_data)[i]);
        char *dicts = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "dicts"));
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, dicts ? dicts : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, jstr(o, "tokens"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, jstr(o, "acts"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, jstr(o, "status"), -1, SQLITE_TRANSIENT);
        static const char *nums[] = {"rows", "rows_done", "started", "finished"};
        for (int i = 0; i < 4; i++)
            sqlite3_bind_int64(st, 6 + i,
                               (sqlite3_int64)cJSON_GetNumberValue(cJSON_GetObjectItem(o, nums[i])));
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_err(db, "runs");
        free(dicts);
        cJSON_Delete(o);
    }
    mdb_cursor_close(c);
    return rc;
}

static int fill_latents(ldb_db *db, MDB_txn *txn, const snapdict *d, int nd, sqlite3_stmt *st)
{
    int rc = LDB_OK;
    for (int i = 0; i < nd && !rc; i++, d++) {
        ldb_dstat ds;
        if ((rc = ldb_db_get_dstat(db, txn, d->id, &ds)))
            break;
        MDB_cursor *c;
        uint8_t kb[6];
        ldb_key_latent(kb, d->id, 0);
        MDB_val k = {6, kb}, v;
        int mrc = mdb_cursor_open(txn, db->lsum, &c);
        if (mrc)
            return ldb_db_mdb_err(db, mrc, "lsum");
        for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0 && !rc;
             mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 6 || ldb_rd_be16(k.mv_data) != d->id)
                break;
            uint32_t lat = ldb_rd_be32((uint8_t *)k.mv_data + 2);
            ldb_lsum s;
            if (ldb_lsum_decode(v.mv_data, v.mv_size, db->format, &s))
                continue;
            double mean = s.count ? s.sum / s.count : 0;
            double var = s.count ? s.sumsq / s.count - mean * mean : 0;
            MDB_val lv;
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, d->name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, lat);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)s.count);
            sqlite3_bind_double(st, 4, ds.ordinary ? (double)s.count / ds.ordinary : 0);
            sqlite3_bind_double(st, 5, s.max);
            sqlite3_bind_double(st, 6, mean);
            sqlite3_bind_double(st, 7, sqrt(var > 0 ? var : 0));
            if (mdb_get(txn, db->labels, &k, &lv) == 0)
                sqlite3_bind_text(st, 8, lv.mv_data, (int)lv.mv_size, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, 8);
            ldb_lsum_free(&s);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = sq_err(db, "latents");
        }
        mdb_cursor_close(c);
    }
    return rc;
}

/* Inserts every catalog row derived from LMDB's state in txn into the tables of
 * schema (main, or an attached copy). */
static int fill(ldb_db *db, MDB_txn *txn, sqlite3 *sq, const char *schema)
{
    static const char *sql[] = {
        "INSERT INTO %s.dicts VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        "INSERT INTO %s.sequences VALUES(?,?,?,?,?)",
        "INSERT INTO %s.runs VALUES(?,?,?,?,?,?,?,?,?)",
        "INSERT INTO %s.latents VALUES(?,?,?,?,?,?,?,?)",
    };
    sqlite3_stmt *st[4] = {0};
    sqlite3 *keep = db->cat;
    snapdict *d = NULL;
    int nd = 0, rc = snap_dicts(db, txn, &d, &nd);
    db->cat = sq; /* for sq_err's message */
    for (int i = 0; i < 4 && !rc; i++) {
        char q[128];
        snprintf(q, sizeof q, sql[i], schema);
        if (sqlite3_prepare_v2(sq, q, -1, &st[i], NULL) != SQLITE_OK)
            rc = sq_err(db, "prepare");
    }
    if (!rc && !(rc = fill_dicts(db, d, nd, st[0])) && !(rc = fill_sequences(db, txn, st[1])) &&
        !(rc = fill_runs(db, txn, st[2])))
        rc = fill_latents(db, txn, d, nd, st[3]);
    for (int i = 0; i < 4; i++)
        sqlite3_finalize(st[i]);
    db->cat = keep;
    snap_free(d, nd);
    return rc;
}

/* The LMDB batch a catalog mirrors, -1 when it records none, -2 when it cannot
 * be read. */
static sqlite3_int64 catalog_batch(sqlite3 *sq, const char *schema)
{
    sqlite3_stmt *q;
    sqlite3_int64 have = -2;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT value FROM %s.meta WHERE key='batch'", schema);
    if (sqlite3_prepare_v2(sq, sql, -1, &q, NULL) == SQLITE_OK) {
        int r = sqlite3_step(q);
        have = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : r == SQLITE_DONE ? -1 : -2;
        sqlite3_finalize(q);
    }
    return have;
}

/* One rebuild: the SQLite write lock first, then the LMDB snapshot, so that of
 * two processes syncing at once the later commit mirrors the newer state (a sync
 * that took its snapshot first cannot overwrite a newer mirror). */
static int sync_once(ldb_db *db, int force, int *bad)
{
    MDB_txn *txn = NULL;
    sqlite3_stmt *st = NULL;
    uint64_t batch = 0;
    int rc = LDB_OK, mrc;
    *bad = 0;
    if (sqlite3_exec(db->cat, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        *bad = damaged(db->cat);
        return sq_err(db, "cannot begin");
    }
    if ((mrc = ldb_txn_begin(db, MDB_RDONLY, &txn))) {
        rc = ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
        goto rollback;
    }
    if ((rc = ldb_db_meta_u64(db, txn, "batch", &batch)))
        goto rollback;
    if (!force && catalog_batch(db->cat, "main") == (sqlite3_int64)batch)
        goto rollback; /* nothing to write */
    if (sqlite3_exec(db->cat, "DELETE FROM dicts; DELETE FROM sequences; DELETE FROM runs;"
                     " DELETE FROM latents;", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_err(db, "cannot clear");
        goto rollback;
    }
    if ((rc = fill(db, txn, db->cat, "main")))
        goto rollback;
    if (sqlite3_prepare_v2(db->cat, "INSERT OR REPLACE INTO meta VALUES('batch', ?)", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = sq_err(db, "prepare");
        goto rollback;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)batch);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_exec(db->cat, "COMMIT", NULL, NULL, NULL)) {
        rc = sq_err(db, "cannot commit");
        goto rollback;
    }
    goto out;
rollback:
    *bad = rc && damaged(db->cat); /* the failing call's code, before ROLLBACK's */
    sqlite3_exec(db->cat, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    if (txn)
        ldb_txn_abort(db, txn);
    return rc;
}

/* 1 when the catalog already records LMDB's newest write (no lock needed: a later
 * write updates the catalog after its own commit). */
static int current(ldb_db *db)
{
    MDB_txn *txn;
    uint64_t batch = 0;
    if (ldb_txn_begin(db, MDB_RDONLY, &txn))
        return 0;
    int r = !ldb_db_meta_u64(db, txn, "batch", &batch) &&
            catalog_batch(db->cat, "main") == (sqlite3_int64)batch;
    ldb_txn_abort(db, txn);
    return r;
}

int ldb_catalog_sync(ldb_db *db, int force)
{
    if (!db->cat || (!force && current(db)))
        return LDB_OK;
    int bad, rc = sync_once(db, force, &bad);
    if (rc && bad) { /* malformed pages that opening did not read */
        char why[128], *colon = strrchr(ldb_db_err(db)->msg, ':');
        snprintf(why, sizeof why, "%s", colon ? colon + 2 : "malformed");
        if (!(rc = move_aside(db, why)) && !(rc = ldb_catalog_open(db)))
            rc = sync_once(db, 1, &bad);
    }
    return rc;
}

/* Rows of schema a.T missing from b.T, or -1 when the query fails. */
static sqlite3_int64 rows_missing(sqlite3 *sq, const char *t, const char *a, const char *b)
{
    char q[256];
    sqlite3_stmt *st;
    sqlite3_int64 n = -1;
    snprintf(q, sizeof q, "SELECT count(*) FROM (SELECT * FROM %s.%s EXCEPT SELECT * FROM %s.%s)",
             a, t, b, t);
    if (sqlite3_prepare_v2(sq, q, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A row of x.t that y.t does not hold as it is (x, y: "cat" and "main"), for check's
 * message: its key, and the columns that differ from y's row of that key ("latent 5
 * of 'a': label differs"), or that y has no such row. 1 when there is one. */
static int diff_row(sqlite3 *sq, const char *t, const char *x, const char *y, char *into,
                    size_t cap)
{
    static const struct { const char *t, *key, *name; } K[] = {
        {"dicts", "id", "'dictionary ' || quote(name)"},
        {"sequences", "seq", "'sequence ' || seq"},
        {"runs", "id", "'run ' || substr(id, 1, 12)"},
        {"latents", "dict, latent", "'latent ' || latent || ' of ' || quote(dict)"},
    };
    int k = 0, found = 0;
    while (k < 3 && strcmp(K[k].t, t))
        k++;
    char *q = sqlite3_mprintf("SELECT %s, * FROM (SELECT * FROM %s.%s EXCEPT SELECT * FROM "
                              "%s.%s) LIMIT 1", K[k].name, x, t, y, t);
    sqlite3_stmt *a = NULL, *b = NULL;
    if (!q || sqlite3_prepare_v2(sq, q, -1, &a, NULL) != SQLITE_OK || sqlite3_step(a) != SQLITE_ROW)
        goto out;
    found = 1;
    int o = snprintf(into, cap, "%s", (const char *)sqlite3_column_text(a, 0));
    sqlite3_free(q);
    q = sqlite3_mprintf(k == 3 ? "SELECT * FROM %s.%s WHERE dict IS ?1 AND latent IS ?2"
                               : "SELECT * FROM %s.%s WHERE %s IS ?1", y, t, K[k].key);
    if (!q || sqlite3_prepare_v2(sq, q, -1, &b, NULL) != SQLITE_OK)
        goto out;
    /* the key's columns come first in each table (latents: dict, latent) */
    for (int c = 0; c < (k == 3 ? 2 : 1); c++)
        sqlite3_bind_value(b, c + 1, sqlite3_column_value(a, 1 + c));
    if (sqlite3_step(b) != SQLITE_ROW) {
        snprintf(into + o, cap - (size_t)o, strcmp(x, "cat") ? " is missing" : " is not in LMDB");
        goto out;
    }
    const char *sep = ": ";
    for (int c = 0; c < sqlite3_column_count(b) && (size_t)o < cap - 1; c++) {
        sqlite3_value *u = sqlite3_column_value(a, 1 + c), *v = sqlite3_column_value(b, c);
        const unsigned char *us = sqlite3_value_text(u), *vs = sqlite3_value_text(v);
        if (sqlite3_value_type(u) == sqlite3_value_type(v) &&
            (us == vs || (us && vs && !strcmp((const char *)us, (const char *)vs))))
            continue;
        o += snprintf(into + o, cap - (size_t)o, "%s%s", sep, sqlite3_column_name(b, c));
        sep = ", ";
    }
    if ((size_t)o < cap - 1 && *sep == ',')
        snprintf(into + o, cap - (size_t)o, strchr(into, ',') ? " differ" : " differs");
out:
    sqlite3_free(q);
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    return found;
}

/* The first row in which the catalog's table t and LMDB's differ, described (see
 * diff_row) into[cap]; "" when it cannot say. */
static void first_diff(sqlite3 *sq, const char *t, char *into, size_t cap)
{
    *into = 0;
    if (!diff_row(sq, t, "cat", "main", into, cap))
        diff_row(sq, t, "main", "cat", into, cap);
}

/* What to use instead of a write to a table of the catalog. */
static const char *instead(const char *t)
{
    return !strcmp(t, "latents") ? "latentdb label DB DICT LATENT TEXT"
         : !strcmp(t, "dicts")   ? "latentdb dict add / dict rm / dict set-path"
                                 : "latentdb ingest / import to add data";
}

/* A catalog SQLite cannot read: what check reports, with the remedy. */
static void unsound(char *msg, size_t cap, const char *why)
{
    snprintf(msg, cap, "catalog.sqlite is not a sound database (%s); latentdb check --repair "
             "moves it aside and rebuilds it from LMDB", why);
}

int ldb_catalog_verify(ldb_db *db, MDB_txn *txn, char *msg, size_t cap, int *stale)
{
    sqlite3 *sq = NULL;
    uint64_t batch = 0;
    int rc = LDB_OK;
    struct stat st;
    *msg = 0;
    *stale = 0;
    char *p = ldb_path_join(db->path, "catalog.sqlite");
    if (!p)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (lstat(p, &st) != 0)
            snprintf(msg, cap, "catalog.sqlite is missing; latentdb check --repair rebuilds it "
                     "from LMDB");
        else
            unsound(msg, cap, S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
        free(p);
        return LDB_OK;
    }
    /* The expected rows go in an in-memory database; the catalog is attached
     * read-only as "cat" (a file: URI, with the characters URIs reserve escaped). */
    char uri[8192], *u = uri;
    u += snprintf(u, 16, "file:");
    for (const char *c = p; *c && u < uri + sizeof uri - 16; c++)
        u += *c == '%' || *c == '?' || *c == '#' ? sprintf(u, "%%%02X", (unsigned char)*c)
                                                 : (*u = *c, 1);
    snprintf(u, 16, "?mode=ro");
    free(p);
    char *attach = sqlite3_mprintf("ATTACH %Q AS cat", uri);
    int src = sqlite3_open_v2(":memory:", &sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL);
    if (src == SQLITE_OK) /* before ATTACH: a writer may hold the catalog briefly */
        sqlite3_busy_timeout(sq, 5000);
    if (src != SQLITE_OK || !attach || sqlite3_exec(sq, attach, NULL, NULL, NULL) != SQLITE_OK) {
        if (damaged(sq))
            unsound(msg, cap, sqlite3_errmsg(sq));
        else
            snprintf(msg, cap, "catalog.sqlite cannot be opened: %s", sq ? sqlite3_errmsg(sq) : "?");
        goto out;
    }
    /* one read transaction over the catalog: its batch and its rows must be of the
     * same state (an ingest may sync the catalog while this runs) */
    if (sqlite3_exec(sq, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, cap, "catalog.sqlite: %s", sqlite3_errmsg(sq));
        goto out;
    }
    if ((rc = ldb_db_meta_u64(db, txn, "batch", &batch)))
        goto out;
    sqlite3_int64 have = catalog_batch(sq, "cat");
    if (have == -2) {
        unsound(msg, cap, sqlite3_errmsg(sq));
        goto out;
    }
    if (have != (sqlite3_int64)batch) { /* a crash between the two commits, or a reader */
        *stale = 1;
        snprintf(msg, cap, "catalog.sqlite mirrors batch %lld, LMDB holds batch %llu: the next "
                 "writable open (or check --repair) rebuilds it", (long long)have,
                 (unsigned long long)batch);
        goto out;
    }
    if (sqlite3_exec(sq, strstr(SCHEMA, "CREATE"), NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, cap, "catalog.sqlite: %s", sqlite3_errmsg(sq));
        goto out;
    }
    if ((rc = fill(db, txn, sq, "main")))
        goto out;
    static const char *tables[] = {"dicts", "sequences", "runs", "latents"};
    for (int i = 0; i < 4; i++) {
        sqlite3_int64 extra = rows_missing(sq, tables[i], "cat", "main"),
                      missing = rows_missing(sq, tables[i], "main", "cat");
        if (extra < 0 || missing < 0) {
            unsound(msg, cap, sqlite3_errmsg(sq));
            break;
        }
        if (extra || missing) { /* a write through SQL, most likely: say so, and what to use */
            char ex[256];
            first_diff(sq, tables[i], ex, sizeof ex);
            snprintf(msg, cap, "the catalog differs from the database: table %s of catalog.sqlite "
                     "has %lld rows LMDB does not hold as they are and lacks %lld%s%s%s; it is a "
                     "read-only mirror of the LMDB records (a write to it through SQL changes "
                     "nothing latentdb reads); use %s instead; latentdb check --repair rebuilds it",
                     tables[i], (long long)extra, (long long)missing, *ex ? " (" : "", ex,
                     *ex ? ")" : "", instead(tables[i]));
            break;
        }
    }
out:
    sqlite3_free(attach);
    sqlite3_close(sq);
    return rc;
}
