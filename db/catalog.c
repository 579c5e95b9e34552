/* catalog.c — the SQLite mirror (catalog.sqlite) of what people query with SQL:
 * dictionaries, sequences, runs, per-latent statistics and labels. LMDB is the
 * truth; the catalog records the last LMDB batch it mirrors and is rebuilt from
 * LMDB whenever that differs (after a crash between the two commits, for one). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    return ldb_err_set(&db->err, LDB_EIO, "%s/catalog.sqlite: %s: %s", db->path, what,
                       db->cat ? sqlite3_errmsg(db->cat) : "cannot open");
}

int ldb_catalog_open(ldb_db *db)
{
    char *p = ldb_path_join(db->path, "catalog.sqlite");
    if (!p)
        return ldb_err_set(&db->err, LDB_ENOMEM, "out of memory");
    int src = sqlite3_open(p, &db->cat);
    free(p);
    if (src != SQLITE_OK)
        return sq_err(db, "cannot open");
    sqlite3_busy_timeout(db->cat, 5000);
    if (sqlite3_exec(db->cat, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
        return sq_err(db, "cannot create tables");
    return LDB_OK;
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

static int fill_dicts(ldb_db *db, sqlite3_stmt *st)
{
    for (int i = 0; i < db->n_dict; i++) {
        cJSON *o = cJSON_Parse(db->dict[i].json);
        if (!o)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, db->dict[i].id);
        sqlite3_bind_text(st, 2, db->dict[i].name, -1, SQLITE_TRANSIENT);
        static const char *cols[] = {"path", "format", "architecture", "type"};
        for (int c = 0; c < 4; c++)
            sqlite3_bind_text(st, 3 + c, jstr(o, cols[c]), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, db->dict[i].d_in);
        sqlite3_bind_int64(st, 8, db->dict[i].d_out);
        sqlite3_bind_int64(st, 9, db->dict[i].d_sae);
        static const char *cols2[] = {"dtype", "hook_in", "hook_out", "model", "sha256"};
        for (int c = 0; c < 5; c++)
            sqlite3_bind_text(st, 10 + c, jstr(o, cols2[c]), -1, SQLITE_TRANSIENT);
        int r = sqlite3_step(st);
        cJSON_Delete(o);
        if (r != SQLITE_DONE)
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

static int fill_latents(ldb_db *db, MDB_txn *txn, sqlite3_stmt *st)
{
    int rc = LDB_OK;
    for (int i = 0; i < db->n_dict && !rc; i++) {
        ldb_dbdict *d = &db->dict[i];
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
            if (ldb_lsum_decode(v.mv_data, v.mv_size, &s))
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
    int rc = LDB_OK;
    db->cat = sq; /* for sq_err's message */
    for (int i = 0; i < 4 && !rc; i++) {
        char q[128];
        snprintf(q, sizeof q, sql[i], schema);
        if (sqlite3_prepare_v2(sq, q, -1, &st[i], NULL) != SQLITE_OK)
            rc = sq_err(db, "prepare");
    }
    if (!rc && !(rc = fill_dicts(db, st[0])) && !(rc = fill_sequences(db, txn, st[1])) &&
        !(rc = fill_runs(db, txn, st[2])))
        rc = fill_latents(db, txn, st[3]);
    for (int i = 0; i < 4; i++)
        sqlite3_finalize(st[i]);
    db->cat = keep;
    return rc;
}

/* The LMDB batch a catalog mirrors, or -1 when it records none. */
static sqlite3_int64 catalog_batch(sqlite3 *sq, const char *schema)
{
    sqlite3_stmt *q;
    sqlite3_int64 have = -1;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT value FROM %s.meta WHERE key='batch'", schema);
    if (sqlite3_prepare_v2(sq, sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            have = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return have;
}

int ldb_catalog_sync(ldb_db *db, int force)
{
    MDB_txn *txn = NULL;
    sqlite3_stmt *st = NULL;
    uint64_t batch = 0;
    int rc, mrc;
    if (!db->cat)
        return LDB_OK;
    if ((mrc = ldb_txn_begin(db, MDB_RDONLY, &txn)))
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if ((rc = ldb_db_meta_u64(db, txn, "batch", &batch)))
        goto out;
    if (!force && catalog_batch(db->cat, "main") == (sqlite3_int64)batch)
        goto out;
    if (sqlite3_exec(db->cat, "BEGIN; DELETE FROM dicts; DELETE FROM sequences; DELETE FROM runs;"
                     " DELETE FROM latents;", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_err(db, "cannot begin");
        goto out;
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
    sqlite3_exec(db->cat, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    mdb_txn_abort(txn);
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

int ldb_catalog_verify(ldb_db *db, MDB_txn *txn, char *msg, size_t cap, int *stale)
{
    sqlite3 *sq = NULL;
    uint64_t batch = 0;
    int rc = LDB_OK;
    *msg = 0;
    *stale = 0;
    char *p = ldb_path_join(db->path, "catalog.sqlite");
    if (!p)
        return ldb_err_set(&db->err, LDB_ENOMEM, "out of memory");
    if (!ldb_path_is_file(p)) {
        snprintf(msg, cap, "catalog.sqlite is missing");
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
        if (extra || missing) {
            snprintf(msg, cap, "catalog.sqlite: table %s differs from LMDB (%lld rows missing, "
                     "%lld rows not in LMDB)", tables[i], (long long)missing, (long long)extra);
            break;
        }
    }
out:
    sqlite3_free(attach);
    sqlite3_close(sq);
    return rc;
}
