/* records.c — the store interface of store.h that is not a format of its own: the
 * handle's facts and the small records other layers read or write
 * (sources, labels, run records, page counts). */
#include <lmdb.h>
#include <string.h>

#include "db_impl.h"

const char *ldb_db_path(const ldb_db *db)
{
    return db->path;
}

int ldb_db_values(const ldb_db *db)
{
    return db->values;
}

ldb_skipset ldb_db_skipset(const ldb_db *db)
{
    return (ldb_skipset){db->skip, db->n_skip};
}

/* A record by key, in place; LDB_ENOTFOUND (no message) when absent. */
static int get(ldb_db *db, ldb_txn *txn, MDB_dbi dbi, const char *table, const void *key,
               size_t klen, const char **val, size_t *len)
{
    MDB_val k = {klen, (void *)key}, v;
    int mrc = mdb_get(txn, dbi, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_ENOTFOUND;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, table);
    *val = v.mv_data;
    *len = v.mv_size;
    return LDB_OK;
}

int ldb_source_get(ldb_db *db, ldb_txn *txn, uint32_t id, const char **label, size_t *len)
{
    uint8_t kb[4];
    ldb_be32(kb, id);
    return get(db, txn, db->sources, "sources", kb, 4, label, len);
}

int ldb_label_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, const char **text,
                  size_t *len)
{
    uint8_t kb[6];
    ldb_key_latent(kb, dict, latent);
    return get(db, txn, db->labels, "labels", kb, 6, text, len);
}

int ldb_label_each(ldb_db *db, ldb_txn *txn, uint16_t dict,
                   int (*each)(void *arg, uint32_t latent, const char *text, size_t len), void *arg)
{
    MDB_cursor *cur;
    uint8_t kb[6];
    ldb_key_latent(kb, dict, 0);
    MDB_val k = {6, kb}, v;
    int mrc = mdb_cursor_open(txn, db->labels, &cur);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "labels");
    int rc = LDB_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !mrc && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != 6) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: a labels key of %zu bytes (6 expected)",
                             db->path, k.mv_size);
            break;
        }
        if (ldb_rd_be16(p) != dict)
            break;
        rc = each(arg, ldb_rd_be32(p + 2), v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = ldb_db_mdb_err(db, mrc, "labels");
    return rc;
}

int ldb_db_bytes(ldb_db *db, ldb_txn *txn, uint64_t *bytes)
{
    MDB_envinfo ei;
    MDB_stat es;
    (void)txn;
    int mrc = mdb_env_info(db->env, &ei);
    if (!mrc)
        mrc = mdb_env_stat(db->env, &es);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot read the environment's size");
    *bytes = (uint64_t)(ei.me_last_pgno + 1) * es.ms_psize;
    return LDB_OK;
}

static uint64_t dbi_bytes(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;
    if (mdb_stat(txn, dbi, &st))
        return 0;
    return (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
}

uint64_t ldb_db_index_bytes(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd)
{
    (void)db;
    return dbi_bytes(txn, dd->fwd) + dbi_bytes(txn, dd->inv);
}

int ldb_run_get(ldb_db *db, ldb_txn *txn, const uint8_t id[32], const char **json, size_t *len)
{
    return get(db, txn, db->runs, "runs", id, 32, json, len);
}

int ldb_run_each(ldb_db *db, ldb_txn *txn,
                 int (*each)(void *arg, const uint8_t id[32], const char *json, size_t len),
                 void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, db->runs, &cur), rc = LDB_OK;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "runs");
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size == 32)
            rc = each(arg, k.mv_data, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = ldb_db_mdb_err(db, mrc, "runs");
    return rc;
}

int ldb_run_put(ldb_db *db, ldb_txn *txn, const uint8_t id[32], const char *json)
{
    MDB_val k = {32, (void *)id}, v = {strlen(json), (void *)json};
    int mrc = mdb_put(txn, db->runs, &k, &v, 0);
    return mrc ? ldb_db_mdb_err(db, mrc, "runs") : LDB_OK;
}

int ldb_run_put_alone(ldb_db *db, const uint8_t id[32], const char *json)
{
    MDB_txn *txn;
    int mrc = ldb_txn_begin(db, 0, &txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    int rc = ldb_run_put(db, txn, id, json);
    if (rc) {
        ldb_txn_abort(db, txn);
        return rc;
    }
    mrc = ldb_txn_commit(db, txn);
    return mrc ? ldb_db_mdb_err(db, mrc, "cannot commit") : LDB_OK;
}
