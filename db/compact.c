/* compact.c — ldb_db_compact: the records of data.mdb copied into a new file that
 * takes its place, every page full (docs/ARCHITECTURE.md, "Compaction"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "db_impl.h"

/* Copies every named database of the old environment (read in rtxn) into a new one
 * at dir, record by record in key order with MDB_APPEND, so that every page of the
 * copy is full (LMDB's own compacting copy keeps the pages as they are, a third
 * empty after a batch rewrote its summaries in place). Commits every ~64 MiB of
 * records, so the copy's dirty pages stay few; the copy is only used once whole. */
static int copy_logical(ldb_db *db, MDB_txn *rtxn, const char *dir)
{
    MDB_env *env = NULL;
    MDB_txn *w = NULL;
    MDB_cursor *names = NULL, *cur = NULL;
    MDB_envinfo oi;
    MDB_stat os;
    MDB_dbi root;
    int mrc = mdb_env_create(&env);
    const char *what = "cannot make the compacted copy";
    if (!mrc && !mdb_env_info(db->env, &oi) && !mdb_env_stat(db->env, &os))
        mrc = mdb_env_set_mapsize(env, (size_t)(oi.me_last_pgno + 1) * os.ms_psize * 2 + (1u << 30));
    if (!mrc)
        mrc = mdb_env_set_maxdbs(env, 4096);
    if (!mrc)
        mrc = mdb_env_open(env, dir, 0, 0644);
    if (!mrc)
        mrc = mdb_dbi_open(rtxn, NULL, 0, &root);
    if (!mrc)
        mrc = mdb_cursor_open(rtxn, root, &names);
    MDB_val nk, nv;
    size_t since = 0;
    for (int nrc = mrc ? mrc : mdb_cursor_get(names, &nk, &nv, MDB_FIRST); !mrc && !nrc;
         nrc = mdb_cursor_get(names, &nk, &nv, MDB_NEXT)) {
        char name[512];
        MDB_dbi src, dst;
        unsigned flags;
        if (nk.mv_size >= sizeof name)
            continue;
        memcpy(name, nk.mv_data, nk.mv_size);
        name[nk.mv_size] = 0;
        if ((mrc = mdb_dbi_open(rtxn, name, 0, &src)) || (mrc = mdb_dbi_flags(rtxn, src, &flags))) {
            what = name;
            break;
        }
        if (!w && (mrc = mdb_txn_begin(env, NULL, 0, &w)))
            break;
        if ((mrc = mdb_dbi_open(w, name, (flags & MDB_DUPSORT) | MDB_CREATE, &dst)) ||
            (mrc = mdb_cursor_open(rtxn, src, &cur)))
            break;
        MDB_val k, v;
        int crc;
        for (crc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !crc && !mrc;
             crc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            mrc = mdb_put(w, dst, &k, &v, flags & MDB_DUPSORT ? MDB_APPENDDUP : MDB_APPEND);
            since += k.mv_size + v.mv_size + 16;
            if (!mrc && since > (64u << 20)) { /* a commit: the copy's dirty pages written */
                since = 0;
                if (!(mrc = mdb_txn_commit(w)))
                    mrc = mdb_txn_begin(env, NULL, 0, &w);
                else
                    w = NULL;
            }
        }
        mdb_cursor_close(cur);
        cur = NULL;
        if (!mrc && crc != MDB_NOTFOUND) {
            mrc = crc;
            what = name;
        }
    }
    if (names)
        mdb_cursor_close(names);
    if (!mrc && w) {
        mrc = mdb_txn_commit(w);
        w = NULL;
    }
    if (w)
        mdb_txn_abort(w);
    if (env)
        mdb_env_close(env); /* synced: LMDB's commits are synchronous */
    return mrc ? ldb_db_mdb_err(db, mrc, what) : LDB_OK;
}

int ldb_db_compact(ldb_db *db, uint64_t *before, uint64_t *after)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    if (ldb_open_refs(db) > 1)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened %d times in this process; "
                           "compact replaces its file, so close the other handles first",
                           db->path, ldb_open_refs(db));
    MDB_txn *w = NULL;
    char *tmp = NULL, *nw = NULL, *old = NULL, *lock = NULL;
    struct stat st;
    int rc = LDB_OK, mrc;
    if ((mrc = ldb_txn_begin(db, 0, &w))) /* the write lock, to the end: no writer meanwhile */
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    if (ldb_db_others_open(db)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: other processes have the database open; "
                         "compact replaces its file, so stop them and run it again", db->path);
        goto out;
    }
    old = ldb_path_join(db->path, "data.mdb");
    lock = ldb_path_join(db->path, "lock.mdb");
    if (!old || !lock) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_db_workdir(db, "compact", "compact the database", &tmp)))
        goto out;
    if (!(nw = ldb_path_join(tmp, "data.mdb"))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (before)
        *before = stat(old, &st) ? 0 : (uint64_t)st.st_size;
    if ((rc = copy_logical(db, w, tmp)))
        goto out;
    if (ldb_sync_path(nw, 0)) {
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot sync the compacted copy", db->path);
        goto out;
    }
    if (after)
        *after = stat(nw, &st) ? 0 : (uint64_t)st.st_size;
    if (rename(nw, old)) { /* the commit: before it the old file stands, after it the new */
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot move the compacted data.mdb into place",
                        db->path);
        goto out;
    }
    /* The old lock file describes the old file (its last transaction id, readers):
     * the next open makes a new one for the new file. */
    unlink(lock);
    ldb_sync_path(db->path, 1);
out:
    if (w)
        ldb_txn_abort(db, w);
    if (tmp)
        ldb_build_remove(tmp);
    free(tmp);
    free(nw);
    free(old);
    free(lock);
    if (rc)
        return rc;
    /* the handle, on the new file; the catalog as it was (LMDB's records are the same) */
    return ldb_db_reopen(db);
}
