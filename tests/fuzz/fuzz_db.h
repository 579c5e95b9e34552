/* fuzz_db.h — a real, empty latentdb database for the store decoders' targets
 * (fuzz_fwd.c, fuzz_inv.c): made once with ldb_db_init under /tmp, with the
 * forward and inverted databases of dictionary 0 created, so that fuzz bytes can
 * be stored as LMDB values and read back by the library's own readers. Commits
 * skip fsync (MDB_NOSYNC): the folder is scratch. */
#ifndef LDB_FUZZ_DB_H
#define LDB_FUZZ_DB_H

#include <stdio.h>
#include <stdlib.h>

#include "../../db/db_impl.h"
#include "fuzz_common.h"

static ldb_db *fz_db;
static ldb_dbdict fz_dd; /* id 0: its fwd and inv handles */

static void fz_db_close(void)
{
    ldb_db_close(fz_db);
    fz_db = NULL;
}

static void fz_db_setup(const char *name)
{
    char path[256];
    fz_join(path, sizeof path, fz_mkdtemp(name), "db");
    if (ldb_db_init(path, NULL, 0, LDB_VALUES_BF16, &fz_db) != LDB_OK) {
        fprintf(stderr, "fuzz harness: ldb_db_init %s: %s\n", path, ldb_db_errmsg(fz_db));
        abort();
    }
    MDB_txn *txn;
    if (mdb_env_set_flags(fz_db->env, MDB_NOSYNC | MDB_NOMETASYNC, 1) ||
        mdb_txn_begin(fz_db->env, NULL, 0, &txn) ||
        ldb_db_dict_dbis(fz_db, txn, 0, 1, &fz_dd.fwd, &fz_dd.inv) || mdb_txn_commit(txn)) {
        fprintf(stderr, "fuzz harness: cannot set up %s: %s\n", path, ldb_db_errmsg(fz_db));
        abort();
    }
    fz_dd.id = 0;
    fz_dd.d_sae = 4096;
    fz_dd.block = 1u << 20; /* the decoders' own limit */
    fz_dd.name = "fz";
    atexit(fz_db_close); /* runs before the folder is removed (registered later) */
}

/* Replaces the content of dbi with the n (key, value) pairs given. */
typedef struct fz_kv {
    const void *k;
    size_t kn;
    const void *v;
    size_t vn;
} fz_kv;

static void fz_db_fill(MDB_dbi dbi, const fz_kv *kv, int n)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(fz_db->env, NULL, 0, &txn);
    if (!mrc)
        mrc = mdb_drop(txn, dbi, 0);
    for (int i = 0; !mrc && i < n; i++) {
        MDB_val k = {kv[i].kn, (void *)kv[i].k}, v = {kv[i].vn, (void *)kv[i].v};
        mrc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (mrc) {
        fprintf(stderr, "fuzz harness: LMDB: %s\n", mdb_strerror(mrc));
        abort();
    }
    if ((mrc = mdb_txn_commit(txn))) {
        fprintf(stderr, "fuzz harness: LMDB commit: %s\n", mdb_strerror(mrc));
        abort();
    }
}

static MDB_txn *fz_db_read(void)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(fz_db->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        fprintf(stderr, "fuzz harness: LMDB read: %s\n", mdb_strerror(mrc));
        abort();
    }
    return txn;
}

#endif
