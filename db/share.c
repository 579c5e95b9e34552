/* share.c — one handle, many threads (issue 21). Queries run concurrently on one
 * ldb_db: each in its own read transaction from a pool, with an error slot per
 * thread; every transaction holds the map lock shared, so the map changes size
 * (ours, or adopting another process's) only when none is open in this process,
 * as LMDB requires. A process opens a database's environment once (LMDB forbids a
 * second): ldb_db_open of a folder already open returns the same handle, counted. */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_impl.h"

/* Per thread and handle: the error message, and how many transactions it holds. */
struct ldb_tslot {
    pthread_t tid;
    int held;
    MDB_txn *spare;            /* the thread's reset read transaction, for its next snapshot
                                  (touched only under the map lock, shared or exclusive) */
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

/* The records a query reads: swapped whole, read without a lock. */
struct ldb_dictcur {
    const ldb_dbdict *dict;
    int n;
};

/* Lock order: once -> map -> mu (a thread holding a later one never waits for an
 * earlier one). */
struct ldb_dbsync {
    uint64_t id;               /* unique in the process: keys the threads' slot caches */
    _Atomic(struct ldb_dictcur *) cur; /* the dictionary records (ldb_db_dicts) */
    struct ldb_dictcur **curs; /* every one published, freed at close (a reader may hold one) */
    int n_curs, cap_curs;
    pthread_mutex_t once;      /* state loaded on first use (the tokenizer) */
    pthread_mutex_t z;         /* the handle's zstd context (db->zc), for readers */
    pthread_mutex_t mu;        /* slots, pool, dictionary publication */
    pthread_rwlock_t map;      /* shared: a transaction is open; exclusive: map resize */
    struct ldb_tslot *slots;
    MDB_txn *pool[LDB_SNAP_POOL]; /* reset read transactions */
    int n_pool;
    struct ldb_dictgen *old;
    _Atomic int lost;          /* the errno of a map that could not be remade (set_map) */
    size_t lost_size;          /* the size it was to have */
};

/* ---- The handle's synchronisation ----------------------------------------- */
static _Atomic uint64_t next_sync_id = 1;
static struct ldb_dictcur no_dicts = {NULL, 0};

int ldb_sync_new(ldb_db *db)
{
    struct ldb_dbsync *s = calloc(1, sizeof *s);
    if (!s)
        return LDB_ENOMEM;
    s->id = atomic_fetch_add(&next_sync_id, 1);
    atomic_init(&s->cur, &no_dicts);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE); /* errors set while it is held */
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&s->once, NULL);
    pthread_mutex_init(&s->z, NULL);
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
        if (s->slots->spare)
            mdb_txn_abort(s->slots->spare);
        free(s->slots);
        s->slots = n;
    }
    while (s->old) {
        struct ldb_dictgen *n = s->old->next;
        ldb_dicts_free(s->old->dict, s->old->n);
        free(s->old);
        s->old = n;
    }
    for (int i = 0; i < s->n_curs; i++)
        free(s->curs[i]);
    free(s->curs);
    pthread_rwlock_destroy(&s->map);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->once);
    pthread_mutex_destroy(&s->z);
    free(s);
    db->sync = NULL;
}

/* Each thread remembers its slots of the last few handles it used, keyed by the
 * handle's sync id (never reused, so a closed handle's entry just never matches):
 * a query then finds its slot without the handle's mutex. */
#define TCACHE 4
static _Thread_local struct {
    uint64_t id;
    struct ldb_tslot *t;
} tcache[TCACHE];
static _Thread_local unsigned tcache_next;

/* The calling thread's slot (made when create); NULL when out of memory or absent. */
static struct ldb_tslot *slot(const ldb_db *db, int create)
{
    struct ldb_dbsync *s = db->sync;
    for (int i = 0; i < TCACHE; i++)
        if (tcache[i].id == s->id)
            return tcache[i].t;
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
    if (t) {
        unsigned i = tcache_next++ % TCACHE;
        tcache[i].id = s->id;
        tcache[i].t = t;
    }
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
    for (struct ldb_tslot *t = db->sync->slots; t; t = t->next)
        if (t->spare) {
            mdb_txn_abort(t->spare);
            t->spare = NULL;
        }
    pthread_mutex_unlock(&db->sync->mu);
    int mrc = fn(db, arg);
    pthread_rwlock_unlock(&db->sync->map);
    return mrc;
}

void ldb_map_lost(ldb_db *db, int mrc, size_t size)
{
    db->sync->lost_size = size;
    atomic_store(&db->sync->lost, mrc ? mrc : EIO);
}

int ldb_map_is_lost(ldb_db *db)
{
    return atomic_load_explicit(&db->sync->lost, memory_order_relaxed);
}

size_t ldb_map_lost_size(ldb_db *db)
{
    return db->sync->lost_size;
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

/* A reset read transaction exists only in a thread's spare, in the pool, or in a
 * caller's hands, and it moves between them only under the map lock (shared): so
 * ldb_map_exclusive, which aborts every spare and pooled one, never leaves one made
 * before a resize to be renewed after it. */
int ldb_snap_begin(ldb_db *db, ldb_txn **txn)
{
    struct ldb_dbsync *s = db->sync;
    struct ldb_tslot *me = slot(db, 1);
    MDB_txn *t = NULL;
    *txn = NULL;
    ldb_map_shared(db);
    if (me) { /* the thread's own, with no lock but the map's */
        t = me->spare;
        me->spare = NULL;
    }
    if (!t) {
        pthread_mutex_lock(&s->mu);
        if (s->n_pool)
            t = s->pool[--s->n_pool];
        pthread_mutex_unlock(&s->mu);
    }
    if (t && !mdb_txn_renew(t)) {
        *txn = t;
        return LDB_OK;
    }
    if (t)
        mdb_txn_abort(t);
    ldb_map_release(db); /* a new one may have to adopt a grown map: ldb_txn_begin */
    int mrc = ldb_txn_begin(db, MDB_RDONLY, txn);
    return mrc ? ldb_db_mdb_err(db, mrc, "cannot begin a read transaction") : LDB_OK;
}

void ldb_snap_end(ldb_db *db, ldb_txn *txn)
{
    struct ldb_dbsync *s = db->sync;
    if (!txn)
        return;
    mdb_txn_reset(txn);
    struct ldb_tslot *me = slot(db, 0);
    if (me && !me->spare) { /* kept for this thread's next snapshot */
        me->spare = txn;
        txn = NULL;
    } else {
        pthread_mutex_lock(&s->mu);
        if (s->n_pool < LDB_SNAP_POOL) {
            s->pool[s->n_pool++] = txn;
            txn = NULL;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (txn)
        mdb_txn_abort(txn);
    ldb_map_release(db);
}

/* ---- Dictionary records ---------------------------------------------------- */
int ldb_dicts_publish(ldb_db *db, ldb_dbdict *dict, int n)
{
    struct ldb_dbsync *s = db->sync;
    struct ldb_dictgen *g = calloc(1, sizeof *g);
    struct ldb_dictcur *c = malloc(sizeof *c);
    int rc = LDB_ENOMEM;
    pthread_mutex_lock(&s->mu);
    if (g && c && s->n_curs == s->cap_curs) {
        int cap = s->cap_curs ? 2 * s->cap_curs : 8;
        struct ldb_dictcur **nc = realloc(s->curs, (size_t)cap * sizeof *nc);
        if (nc) {
            s->curs = nc;
            s->cap_curs = cap;
        }
    }
    if (g && c && s->n_curs < s->cap_curs) {
        g->dict = db->dict; /* the old records, kept: a reader may hold them */
        g->n = db->n_dict;
        g->next = s->old;
        s->old = g;
        s->curs[s->n_curs++] = c;
        c->dict = dict;
        c->n = n;
        atomic_store_explicit(&s->cur, c, memory_order_release);
        db->dict = dict; /* for db/'s own single-threaded users (check, repair, catalog) */
        db->n_dict = n;
        g = NULL;
        c = NULL;
        rc = LDB_OK;
    }
    pthread_mutex_unlock(&s->mu);
    free(g);
    free(c);
    return rc;
}

const ldb_dbdict *ldb_db_dicts(ldb_db *db, int *n)
{
    struct ldb_dictcur *c = atomic_load_explicit(&db->sync->cur, memory_order_acquire);
    *n = c->n;
    return c->dict;
}

void ldb_db_lock(ldb_db *db)
{
    pthread_mutex_lock(&db->sync->once);
}

void ldb_db_unlock(ldb_db *db)
{
    pthread_mutex_unlock(&db->sync->once);
}

int ldb_db_unpack(ldb_db *db, const uint8_t *p, size_t n, ldb_buf *out)
{
    pthread_mutex_lock(&db->sync->z); /* one context, shared by the handle's threads */
    int rc = ldb_zc_unpack(db->zc, p, n, out);
    pthread_mutex_unlock(&db->sync->z);
    return rc;
}

/* ---- The process's open databases ------------------------------------------ */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static ldb_db *open_list;      /* linked by next_open */

/* The handle open on path in this process (counted), or a fresh one from fresh(),
 * listed. The list's lock is held across the lookup and the fresh open, so two
 * threads opening one folder at once share one environment (LMDB allows one). */
int ldb_open_shared(const char *path, int flags, int (*fresh)(const char *, int, ldb_db **),
                    ldb_db **out)
{
    struct stat st;
    ldb_db *db = NULL;
    int rc;
    *out = NULL;
    pthread_mutex_lock(&open_mu);
    int found = stat(path, &st) == 0; /* a folder that does not exist fails to open below */
    if (found)
        for (db = open_list; db; db = db->next_open)
            if (db->dev == st.st_dev && db->ino == st.st_ino)
                break;
    if (db && (flags & LDB_OPEN_WRITE) && db->rdonly) {
        pthread_mutex_unlock(&open_mu);
        db = *out = ldb_db_alloc(path);
        return db ? ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: the database is open read-only "
                                "in this process; close that handle first (or open it for "
                                "writing first: one handle serves both)", path)
                  : LDB_ENOMEM;
    }
    if (db) {
        db->refs++;
        *out = db;
        rc = LDB_OK;
    } else if (!(rc = fresh(path, flags, out)) && found) { /* listed by the stat above */
        db = *out;
        db->dev = st.st_dev;
        db->ino = st.st_ino;
        db->refs = 1;
        db->next_open = open_list;
        open_list = db;
        db->listed = 1;
    }
    pthread_mutex_unlock(&open_mu);
    return rc;
}

int ldb_open_release(ldb_db *db)
{
    int last = 1;
    if (!db->listed) /* never listed, or its last reference: no other thread has it */
        return 1;
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

void ldb_open_swap(ldb_db *db, ldb_db *n)
{
    pthread_mutex_lock(&open_mu); /* db's place on the list stays as it is */
    ldb_db old = *db;
    *db = *n;
    *n = old;
    db->dev = n->dev, db->ino = n->ino, db->refs = n->refs, db->listed = n->listed;
    db->next_open = n->next_open;
    n->listed = 0;
    n->next_open = NULL;
    pthread_mutex_unlock(&open_mu);
}

int ldb_open_refs(ldb_db *db)
{
    pthread_mutex_lock(&open_mu);
    int n = db->listed ? db->refs : 1;
    pthread_mutex_unlock(&open_mu);
    return n;
}
