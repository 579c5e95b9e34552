/* create.c — `init`: a database is built whole (LMDB, meta, skip set, tokenizer,
 * catalog) in a temporary folder on the target's filesystem and renamed into
 * place. Invariant: DB/data.mdb appears only complete, so a failed or killed
 * init leaves no database, and init can run again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "../common/opts.h"
#include "db_impl.h"

/* The files a build may leave in its folder. */
static const char *FILES[] = {"catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal",
                              "catalog.sqlite", "lock.mdb", "data.mdb"};

void ldb_create_opts_init(ldb_create_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->values = LDB_VALUES_BF16;
}

int ldb_db_init(const char *path, const uint32_t *skip, size_t n_skip, int values, ldb_db **out)
{
    ldb_create_opts o;
    ldb_create_opts_init(&o);
    o.skip = skip;
    o.n_skip = n_skip;
    o.values = values;
    return ldb_db_create(path, &o, out);
}

/* fsync of a file or folder; errno on failure. */
int ldb_sync_path(const char *p, int dir)
{
    int fd = open(p, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT && !dir ? 0 : -1; /* a file SQLite removed on close */
    int r = fsync(fd), e = errno;
    close(fd);
    errno = e;
    return r;
}

static int sync_in(ldb_db *db, const char *dir, const char *name)
{
    char *p = ldb_path_join(dir, name);
    int r = p ? ldb_sync_path(p, 0) : (errno = ENOMEM, -1);
    free(p);
    return r ? ldb_err_os(ldb_db_err(db), "%s/%s: cannot sync", dir, name) : LDB_OK;
}

/* Removes a build folder and what a build puts in it. */
void ldb_build_remove(const char *tmp)
{
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        char *p = ldb_path_join(tmp, FILES[i]);
        if (p)
            unlink(p);
        free(p);
    }
    rmdir(tmp);
}

/* Writes the whole store into db->path (an empty folder): one LMDB transaction
 * holds meta, the skip set and the tokenizer; then the catalog; then everything
 * is synced and closed. */
static int build(ldb_db *db, const ldb_create_opts *o)
{
    MDB_txn *txn = NULL;
    int rc, mrc;
    if ((rc = ldb_env_open(db, 0)))
        return rc;
    if ((mrc = ldb_txn_begin(db, 0, &txn)))
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    db->format = o->format ? o->format : LDB_FORMAT_NEW; /* which tables it has */
    if ((rc = ldb_env_open_dbis(db, txn, MDB_CREATE)))
        goto out;
    uint32_t *skip = malloc((o->n_skip ? o->n_skip : 1) * sizeof *skip);
    if (!skip) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (o->n_skip)
        memcpy(skip, o->skip, o->n_skip * sizeof *skip);
    qsort(skip, o->n_skip, sizeof *skip, ldb_cmp_u32);
    uint8_t vb = (uint8_t)o->values;
    char fmt[16];
    snprintf(fmt, sizeof fmt, "latentdb %d", o->format ? o->format : LDB_FORMAT_NEW);
    MDB_val kf = {6, "format"}, vf = {strlen(fmt), fmt};
    MDB_val kv = {6, "values"}, vv = {1, &vb};
    MDB_val ks = {4, "skip"}, vs = {o->n_skip * 4, skip};
    if ((mrc = mdb_put(txn, db->meta, &kf, &vf, 0)) || (mrc = mdb_put(txn, db->meta, &kv, &vv, 0)) ||
        (mrc = mdb_put(txn, db->meta, &ks, &vs, 0)))
        rc = ldb_db_mdb_err(db, mrc, "meta");
    free(skip);
    uint32_t tskip[3];
    size_t tn;
    if (rc || (rc = ldb_db_meta_put_u64(db, txn, "n_seq", 0)) ||
        (rc = ldb_db_meta_put_u64(db, txn, "n_pos", 0)) ||
        (rc = ldb_db_meta_put_u64(db, txn, "batch", 0)) ||
        (o->tokenizer &&
         (rc = ldb_db_put_tokenizer(db, txn, o->tokenizer, o->skip_from_tokenizer, tskip, &tn))))
        goto out;
    mrc = ldb_txn_commit(db, txn);
    txn = NULL;
    if (mrc) {
        rc = ldb_db_mdb_err(db, mrc, "cannot commit");
        goto out;
    }
    if ((rc = ldb_catalog_open(db)) || (rc = ldb_catalog_sync(db, 1)))
        goto out;
    ldb_catalog_close(db); /* checkpoints the WAL into catalog.sqlite */
    mdb_env_close(db->env);
    db->env = NULL;
    if ((rc = sync_in(db, db->path, "data.mdb")) || (rc = sync_in(db, db->path, "catalog.sqlite")))
        goto out;
    if (ldb_sync_path(db->path, 1))
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot sync the folder", db->path);
out:
    if (txn)
        ldb_txn_abort(db, txn);
    return rc;
}

/* A new folder name beside or inside the target: ".NAME.init-PID-N". */
static char *make_build_dir(ldb_db *db, const char *path, const char *where, const char *name)
{ /* (a message on db on failure) */
    for (int n = 0; n < 1000; n++) {
        char leaf[300];
        snprintf(leaf, sizeof leaf, ".%.200s.init-%ld-%d", name, (long)getpid(), n);
        char *p = ldb_path_join(where, leaf);
        if (!p) {
            ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            return NULL;
        }
        if (mkdir(p, 0755) == 0)
            return p;
        int e = errno;
        free(p);
        if (e != EEXIST) {
            errno = e;
            ldb_err_os(ldb_db_err(db), "%s: cannot create the folder to build it in (in %s)", path, where);
            return NULL;
        }
    }
    ldb_err_set(ldb_db_err(db), LDB_EIO, "%s: cannot create the folder to build it in (in %s)", path, where);
    return NULL;
}

/* Moves the built files from tmp into the existing folder dir: the catalog first
 * (over any stale one, whose -wal and -shm are removed so SQLite cannot replay
 * them onto it), data.mdb last and never over another: data.mdb is the commit. */
static int move_into(ldb_db *db, const char *tmp, const char *dir)
{
    int rc = LDB_OK;
    char *a = NULL, *b = NULL;
    static const char *stale[] = {"catalog.sqlite-wal", "catalog.sqlite-shm",
                                  "catalog.sqlite-journal", "lock.mdb"};
    for (int i = 0; i < 4 && !rc; i++) {
        free(b);
        if (!(b = ldb_path_join(dir, stale[i])))
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        else if (unlink(b) && errno != ENOENT)
            rc = ldb_err_os(ldb_db_err(db), "%s: cannot remove the stale %s", dir, stale[i]);
    }
    for (int i = 0; i < 2 && !rc; i++) {
        const char *f = i ? "data.mdb" : "catalog.sqlite";
        free(a);
        free(b);
        a = ldb_path_join(tmp, f);
        b = ldb_path_join(dir, f);
        if (!a || !b)
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        else if (i ? renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) : rename(a, b))
            rc = errno == EEXIST ? ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: a database appeared "
                                               "here while init ran", dir)
                                 : ldb_err_os(ldb_db_err(db), "%s: cannot move %s into place", dir, f);
    }
    free(a);
    free(b);
    return rc;
}

int ldb_db_create(const char *path, const ldb_create_opts *user, ldb_db **out)
{
    ldb_db *db = ldb_db_alloc(path);
    ldb_create_opts opts, *o = &opts;
    char *tmp = NULL, *parent = NULL, *probe = NULL;
    int rc = LDB_OK, into = 0;
    struct stat st;
    *out = db;
    if (!db)
        return LDB_ENOMEM;
    ldb_create_opts_init(o);
    if ((rc = ldb_opts_load(o, sizeof *o, user, "ldb_create_opts", ldb_db_err(db))))
        return rc;
    if (o->values < LDB_VAL_BF16 || o->values > LDB_VAL_F32)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "unknown value type %d", o->values);
    if (o->format && (o->format < LDB_FORMAT_MIN || o->format > LDB_FORMAT_NEW))
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "format %d: this latentdb writes formats "
                           "%d to %d", o->format, LDB_FORMAT_MIN, LDB_FORMAT_NEW);
    /* the folder's name and its parent, trailing slashes aside */
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (!(parent = strndup(path, len)))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    if (lstat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode) && !(S_ISLNK(st.st_mode) && ldb_path_is_dir(path))) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s exists and is not a folder", path);
            goto out;
        }
        if (!(probe = ldb_path_join(path, "data.mdb"))) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            goto out;
        }
        if (lstat(probe, &st) == 0) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: a database already exists here", path);
            goto out;
        }
        into = 1; /* build inside it: the same filesystem as its files */
        tmp = make_build_dir(db, path, path, "latentdb");
    } else if (errno != ENOENT) {
        rc = ldb_err_os(ldb_db_err(db), "%s", path);
        goto out;
    } else { /* build beside it, then rename the folder */
        if (slash)
            *slash = 0;
        tmp = make_build_dir(db, path, slash ? (*parent ? parent : "/") : ".", name);
    }
    if (!tmp) {
        rc = LDB_EIO;
        goto out;
    }
    free(db->path);
    db->path = tmp; /* messages of the build name the folder it is in */
    rc = build(db, o);
    db->path = NULL;
    if (!(db->path = strdup(path))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (rc) { /* name the target, not the folder about to be removed */
        const char *was = ldb_db_err(db)->msg;
        char msg[sizeof db->err.msg], *at = strstr(was, tmp);
        if (at)
            snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - was), was, path, at + strlen(tmp));
        else
            snprintf(msg, sizeof msg, "%s", was);
        ldb_err_set(ldb_db_err(db), rc, "%s (init created nothing)", msg);
        goto out;
    }
    if (into) {
        if ((rc = move_into(db, tmp, path)))
            goto out;
        if (ldb_sync_path(path, 1)) {
            rc = ldb_err_os(ldb_db_err(db), "%s: cannot sync the folder", path);
            goto out;
        }
    } else {
        if (rename(tmp, path)) {
            rc = errno == ENOTEMPTY || errno == EEXIST
                     ? ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: a folder appeared here while init "
                                   "ran", path)
                     : ldb_err_os(ldb_db_err(db), "%s: cannot move the new database into place", path);
            goto out;
        }
        if (ldb_sync_path(slash ? (*parent ? parent : "/") : ".", 1)) {
            free(tmp); /* in place: nothing to remove */
            tmp = NULL;
            rc = ldb_err_os(ldb_db_err(db), "%s: cannot sync its parent folder", path);
            goto out;
        }
        free(tmp);
        tmp = NULL;
    }
out:
    if (tmp)
        ldb_build_remove(tmp);
    free(tmp);
    free(parent);
    free(probe);
    if (rc)
        return rc;
    ldb_db_close(db);
    return ldb_db_open(path, LDB_OPEN_WRITE, out);
}
