/* share.c — one handle, many threads (issue 21). Queries run concurrently on one
 * ldb_db: each in its own read transaction from a pool, with an error slot per
 * thread; every transaction holds the map lock shared, so the map changes size
 * (ours, or adopting another process's) only when none is open in this process,
 * as LMDB requires. A process opens a database's environment once (LMDB forbids a
 * second): ldb_db_open of a folder already open returns the same handle, counted. */
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_impl.h"

/* Per thread and handle: the error message, and how many transactions it holds. */
struct ldb_tslot {
    pthread_t tid;
    int held;
    ldb_err err;
    struct ldb_tslot *next;
};

/* Dictionary record arrays replaced by a reload, kept until close (readers may
 * hold pointers into them). */
struct ldb_dictgen {
    ldb_dbdict *dict;
    int n;
    struct ldb_dictgen *next;
};

/* Lock order: once -> map -> mu (a thread holding a later one never waits for an
 * earlier one). */
struct ldb_dbsync {
    pthread_mutex_t once;      /* state loaded on first use (the tokenizer) */
    pthread_mutex_t mu;        /* slots, pool, dictionary publication */
    pthread_rwlock_t map;      /* shared: a transaction is open; exclusive: map resize */
    struct ldb_tslot *slots;
    MDB_txn *pool[LDB_SNAP_POOL]; /* reset read transactions */
    int n_pool;
    struct ldb_dictgen *old;
};

/* ---- The handle's synchronisation ----------------------------------------- */
int ldb_sync_new(ldb_db *db)
{
    struct ldb_dbsync *s = calloc(1, sizeof *s);
    if (!s)
        return LDB_ENOMEM;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE); /* errors set while it is held */
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&s->once, NULL);
    pthread_rwlock_init(&s->map, NULL);
    db->sync = s;
    return LDB_OK;
}

void ldb_sync_free(ldb_db *db)
{
    struct ldb_dbsync *s = db->sync;
    if (!s)
        return;
    for (int i = 0; i < s->n_pool; i++)
        mdb_txn_abort(s->pool[i]);
    while (s->slots) {
        struct ldb_tslot *n = s->slots->next;
        free(s->slots);
        s->slots = n;
    }
    while (s->old) {
        struct ldb_dictgen *n = s->old->next;
        ldb_dicts_free(s->old->dict, s->old->n);
        free(s->old);
        s->old = n;
    }
    pthread_rwlock_destroy(&s->map);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->once);
    free(s);
    db->sync = NULL;
}

/* The calling thread's slot (made when create); NULL when out of memory or absent. */
static struct ldb_tslot *slot(const ldb_db *db, int create)
{
    struct ldb_dbsync *s = db->sync;
    pthread_t me = pthread_self();
    pthread_mutex_lock(&s->mu);
    struct ldb_tslot *t = s->slots;
    while (t && !pthread_equal(t->tid, me))
        t = t->next;
    if (!t && create && (t = calloc(1, sizeof *t))) {
        t->tid = me;
        t->next = s->slots;
        s->slots = t;
    }
    pthread_mutex_unlock(&s->mu);
    return t;
}

static ldb_err nomem_err = {"out of memory"};

ldb_err *ldb_db_err(ldb_db *db)
{
    struct ldb_tslot *t = db->sync ? slot(db, 1) : NULL;
    return t ? &t->err : db->sync ? &nomem_err : &db->err;
}

const char *ldb_db_errmsg(const ldb_db *db)
{
    if (!db)
        return "out of memory";
    if (!db->sync)
        return db->err.msg;
    struct ldb_tslot *t = slot(db, 0);
    return t ? t->err.msg : "";
}

/* ---- Transactions and the map lock ---------------------------------------- */
static void hold(ldb_db *db, int d)
{
    struct ldb_tslot *t = slot(db, 1);
    if (t)
        t->held += d;
}

static int held(ldb_db *db)
{
    struct ldb_tslot *t = slot(db, 0);
    return t ? t->held : 0;
}

/* Runs fn(db, arg) with no transaction open in the process (the map lock held
 * exclusively) and the pooled ones dropped. MDB_BAD_TXN when this thread holds a
 * transaction itself (it would wait for itself): the caller says so. */
int ldb_map_exclusive(ldb_db *db, int (*fn)(ldb_db *, void *), void *arg)
{
    if (held(db))
        return MDB_BAD_TXN;
    pthread_rwlock_wrlock(&db->sync->map);
    pthread_mutex_lock(&db->sync->mu);
    for (int i = 0; i < db->sync->n_pool; i++)
        mdb_txn_abort(db->sync->pool[i]);
    db->sync->n_pool = 0;
    pthread_mutex_unlock(&db->sync->mu);
    int mrc = fn(db, arg);
    pthread_rwlock_unlock(&db->sync->map);
    return mrc;
}

void ldb_map_shared(ldb_db *db)
{
    pthread_rwlock_rdlock(&db->sync->map);
    hold(db, 1);
}

void ldb_map_release(ldb_db *db)
{
    hold(db, -1);
    pthread_rwlock_unlock(&db->sync->map);
}

void ldb_txn_abort(ldb_db *db, MDB_txn *txn)
{
    if (!txn)
        return;
    mdb_txn_abort(txn);
    ldb_map_release(db);
}

int ldb_txn_commit(ldb_db *db, MDB_txn *txn)
{
    int mrc = mdb_txn_commit(txn);
    ldb_map_release(db);
    return mrc;
}

int ldb_snap_begin(ldb_db *db, ldb_txn **txn)
{
    struct ldb_dbsync *s = db->sync;
    MDB_txn *t = NULL;
    *txn = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->n_pool)
        t = s->pool[--s->n_pool];
    pthread_mutex_unlock(&s->mu);
    if (t) {
        ldb_map_shared(db);
        if (!mdb_txn_renew(t)) {
            *txn = t;
            return LDB_OK;
        }
        ldb_txn_abort(db, t);
    }
    int mrc = ldb_txn_begin(db, MDB_RDONLY, txn);
    return mrc ? ldb_db_mdb_err(db, mrc, "cannot begin a read transaction") : LDB_OK;
}

void ldb_snap_end(ldb_db *db, ldb_txn *txn)
{
    struct ldb_dbsync *s = db->sync;
    if (!txn)
        return;
    mdb_txn_reset(txn);
    ldb_map_release(db);
    pthread_mutex_lock(&s->mu);
    if (s->n_pool < LDB_SNAP_POOL) {
        s->pool[s->n_pool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (txn)
        mdb_txn_abort(txn);
}

/* ---- Dictionary records ---------------------------------------------------- */
void ldb_dicts_publish(ldb_db *db, ldb_dbdict *dict, int n)
{
    struct ldb_dictgen *g = calloc(1, sizeof *g);
    pthread_mutex_lock(&db->sync->mu);
    if (g) {
        g->dict = db->dict;
        g->n = db->n_dict;
        g->next = db->sync->old;
        db->sync->old = g;
    } else { /* cannot keep the old ones: leak them rather than free what a reader holds */
    }
    db->dict = dict;
    db->n_dict = n;
    pthread_mutex_unlock(&db->sync->mu);
}

const ldb_dbdict *ldb_db_dicts(ldb_db *db, int *n)
{
    pthread_mutex_lock(&db->sync->mu);
    const ldb_dbdict *d = db->dict;
    *n = db->n_dict;
    pthread_mutex_unlock(&db->sync->mu);
    return d;
}

void ldb_db_lock(ldb_db *db)
{
    pthread_mutex_lock(&db->sync->once);
}

void ldb_db_unlock(ldb_db *db)
{
    pthread_mutex_unlock(&db->sync->once);
}

/* ---- The process's open databases ------------------------------------------ */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static ldb_db *open_list;      /* linked by next_open */

ldb_db *ldb_open_find(const char *path, int write, int *refused)
{
    struct stat st;
    ldb_db *db = NULL;
    *refused = 0;
    if (stat(path, &st))
        return NULL;
    pthread_mutex_lock(&open_mu);
    for (db = open_list; db; db = db->next_open)
        if (db->dev == st.st_dev && db->ino == st.st_ino)
            break;
    if (db && write && db->rdonly) {
        *refused = 1;
        db = NULL;
    } else if (db) {
        db->refs++;
    }
    pthread_mutex_unlock(&open_mu);
    return db;
}

void ldb_open_add(ldb_db *db)
{
    struct stat st;
    if (stat(db->path, &st))
        return;
    pthread_mutex_lock(&open_mu);
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    db->refs = 1;
    db->next_open = open_list;
    open_list = db;
    db->listed = 1;
    pthread_mutex_unlock(&open_mu);
}

int ldb_open_release(ldb_db *db)
{
    int last = 1;
    pthread_mutex_lock(&open_mu);
    if (db->listed) {
        if (--db->refs > 0) {
            last = 0;
        } else {
            ldb_db **p = &open_list;
            while (*p && *p != db)
                p = &(*p)->next_open;
            if (*p)
                *p = db->next_open;
            db->listed = 0;
        }
    }
    pthread_mutex_unlock(&open_mu);
    return last;
}

int ldb_open_refs(ldb_db *db)
{
    pthread_mutex_lock(&open_mu);
    int n = db->listed ? db->refs : 1;
    pthread_mutex_unlock(&open_mu);
    return n;
}
