/* compact.c — ldb_db_compact: the live pages of data.mdb copied into a new file that
 * takes its place (docs/ARCHITECTURE.md, "Compaction"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "db_impl.h"

static int fsync_path(const char *p, int flags)
{
    int fd = open(p, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
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
    size_t len = strlen(db->path) + 40;
    old = ldb_path_join(db->path, "data.mdb");
    lock = ldb_path_join(db->path, "lock.mdb");
    if (!(tmp = malloc(len)) || !old || !lock) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, len, "%s/.latentdb.compact-XXXXXX", db->path);
    if (!mkdtemp(tmp)) {
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot create a folder to compact the database in",
                        db->path);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (!(nw = ldb_path_join(tmp, "data.mdb"))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (before)
        *before = stat(old, &st) ? 0 : (uint64_t)st.st_size;
    /* LMDB's compacting copy reads the last commit in a read transaction of its own */
    if ((mrc = mdb_env_copy2(db->env, tmp, MDB_CP_COMPACT))) {
        rc = ldb_db_mdb_err(db, mrc, "cannot write the compacted copy");
        goto out;
    }
    if (fsync_path(nw, O_RDONLY)) {
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
    fsync_path(db->path, O_RDONLY | O_DIRECTORY);
out:
    if (w)
        ldb_txn_abort(db, w);
    if (tmp) {
        if (nw)
            unlink(nw);
        rmdir(tmp);
    }
    free(tmp);
    free(nw);
    free(old);
    free(lock);
    if (rc)
        return rc;
    /* the handle, on the new file; the catalog as it was (LMDB's records are the same) */
    return ldb_db_reopen(db);
}
