/* textstore.c — the DB's tokenizer: its compiled tables (text/tokenizer.h) in
 * meta["tokenizer"] beside their SHA-256, written at init or by ldb_db_set_tokenizer,
 * and loaded once, by the first thread that asks (ldb_db_tokenizer). */
#include <stdlib.h>
#include <string.h>

#include "../common/sha256.h"
#include "../text/tokenizer.h"
#include "db_impl.h"

int ldb_db_put_tokenizer(ldb_db *db, MDB_txn *txn, ldb_tokenizer *t, int skip_from_tokenizer,
                         uint32_t skip[3], size_t *n_skip)
{
    size_t size, n = 0;
    const void *blob = ldb_tokenizer_blob(t, &size);
    const ldb_tokenizer_info *info = ldb_tokenizer_get_info(t);
    uint32_t sp[3] = {info->bos, info->eos, info->pad};
    for (int i = 0; i < 3; i++) {
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= skip[j] == sp[i];
        if (sp[i] != UINT32_MAX && !dup)
            skip[n++] = sp[i];
    }
    qsort(skip, n, sizeof *skip, ldb_cmp_u32);
    *n_skip = n;
    int rc = LDB_OK, mrc;
    uint64_t npos = 0;
    if (skip_from_tokenizer && !(rc = ldb_db_meta_u64(db, txn, "n_pos", &npos)) && npos)
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: the skip set of a database with tokens "
                         "(%llu positions) changes through ldb_db_set_skip", db->path,
                         (unsigned long long)npos);
    unsigned char md[32]; /* check verifies the tables against it */
    ldb_sha sha;
    if (!rc && ldb_sha_init(&sha))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (!rc) {
        ldb_sha_update(&sha, blob, size);
        ldb_sha_final(&sha, md);
    }
    MDB_val k = {9, "tokenizer"}, v = {size, (void *)blob};
    MDB_val hk = {16, "tokenizer_sha256"}, hv = {32, md};
    if (!rc && ((mrc = mdb_put(txn, db->meta, &k, &v, 0)) ||
                (mrc = mdb_put(txn, db->meta, &hk, &hv, 0))))
        rc = ldb_db_mdb_err(db, mrc, "meta");
    MDB_val ks = {4, "skip"}, vs = {n * 4, skip};
    if (!rc && skip_from_tokenizer && (mrc = mdb_put(txn, db->meta, &ks, &vs, 0)))
        rc = ldb_db_mdb_err(db, mrc, "meta");
    return rc;
}

int ldb_db_set_tokenizer(ldb_db *db, ldb_tokenizer *t, int skip_from_tokenizer)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    uint32_t skip[3], max = 0;
    size_t n = 0;
    MDB_txn *txn;
    int any = 0, rc = ldb_db_max_token(db, &max, &any), mrc;
    const ldb_tokenizer_info *info = ldb_tokenizer_get_info(t);
    if (rc)
        return rc;
    if (any && max >= info->n_vocab)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: the database holds token id %u; this "
                           "tokenizer's vocabulary has %u ids (0..%u): it is not the one the "
                           "tokens were made with", db->path, max, info->n_vocab,
                           info->n_vocab ? info->n_vocab - 1 : 0);
    if (skip_from_tokenizer && any) { /* tokens are stored: the skip set by a rebuild first */
        const uint32_t sp[3] = {info->bos, info->eos, info->pad};
        for (int i = 0; i < 3; i++)
            if (sp[i] != UINT32_MAX)
                skip[n++] = sp[i];
        if ((rc = ldb_db_set_skip(db, skip, n)))
            return rc;
        skip_from_tokenizer = 0; /* done */
        n = 0;
    }
    if ((mrc = ldb_txn_begin(db, 0, &txn)))
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if ((rc = ldb_db_put_tokenizer(db, txn, t, skip_from_tokenizer, skip, &n))) {
        ldb_txn_abort(db, txn);
        return rc;
    }
    if ((mrc = ldb_txn_commit(db, txn)))
        return ldb_db_mdb_err(db, mrc, "cannot commit");
    if (skip_from_tokenizer) {
        uint32_t *ns = malloc((n ? n : 1) * sizeof *ns);
        if (!ns)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        memcpy(ns, skip, n * sizeof *ns);
        free(db->skip);
        db->skip = ns;
        db->n_skip = n;
    }
    ldb_tokenizer_close(db->tokenizer);
    db->tokenizer = NULL;
    db->tokenizer_tried = 0;
    return LDB_OK;
}

int ldb_db_tokenizer(ldb_db *db, ldb_tokenizer **out)
{
    *out = NULL;
    ldb_db_lock(db); /* loaded once, by the first thread that asks */
    if (db->tokenizer_tried) {
        *out = db->tokenizer;
        ldb_db_unlock(db);
        return LDB_OK;
    }
    MDB_txn *txn;
    int rc = LDB_OK, mrc = ldb_txn_begin(db, MDB_RDONLY, &txn);
    if (mrc) {
        ldb_db_unlock(db);
        return ldb_db_mdb_err(db, mrc, "cannot begin a read transaction");
    }
    MDB_val k = {9, "tokenizer"}, v;
    mrc = mdb_get(txn, db->meta, &k, &v);
    if (mrc == 0) {
        /* copied out: the map may move when a writer in this process grows it */
        if (!(db->tokenizer = ldb_tokenizer_from_blob(v.mv_data, v.mv_size, db->path, ldb_db_err(db))))
            rc = LDB_EFORMAT;
    } else if (mrc != MDB_NOTFOUND) {
        rc = ldb_db_mdb_err(db, mrc, "meta");
    }
    ldb_txn_abort(db, txn);
    if (!rc) {
        db->tokenizer_tried = 1;
        *out = db->tokenizer;
    }
    ldb_db_unlock(db);
    return rc;
}
