/* db_impl.h — the inside of ldb_db: the LMDB environment and its named databases
 * (docs/FORMAT.md), the loaded dictionary records and the skip set. Private to db/:
 * the other layers ask the store through store.h. */
#ifndef LDB_DB_IMPL_H
#define LDB_DB_IMPL_H

#include <lmdb.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "store.h"

/* On-disk versions ("latentdb N" in meta): init makes the newest; every one from the
 * oldest is read and written (docs/FORMAT.md). */
#define LDB_FORMAT_MIN 3
#define LDB_FORMAT_NEW 6
#define LDB_SNAP_POOL 16       /* reset read transactions kept for the next snapshots */

struct ldb_db {
    ldb_err err;               /* messages before the handle is set up (then per thread: share.c) */
    char *path;
    MDB_env *env;
    struct ldb_dbsync *sync;   /* locks, per-thread slots, the snapshot pool (share.c) */
    dev_t dev;                 /* the folder, for the process's list of open databases */
    ino_t ino;
    int refs, listed;          /* opens of it in this process; on the list */
    struct ldb_db *next_open;
    MDB_dbi meta, dicts, seqs, seqpos, seqhash, sources, cover, dstat, tok, tokidx, lsum, ltop,
        lcnt,
        labels, runs;
    MDB_dbi lwin, lseq;        /* format 6 (coocsum.h); 0 in older DBs, which have neither */
    int rdonly;
    int map_full;              /* the last LMDB error was MDB_MAP_FULL (ldb_db_grow_map) */
    int values;                /* LDB_VAL_* */
    int format;                /* the DB's version (3 to 6): which records its batches write */
    uint32_t *skip;            /* sorted skip set */
    size_t n_skip;
    ldb_dbdict *dict;          /* loaded dictionary records: published whole (ldb_dicts_publish) */
    int n_dict;
    ldb_zc *zc;
    sqlite3 *cat;              /* catalog, or NULL for read-only opens */
    struct ldb_tokenizer *tokenizer; /* loaded on first use from meta "tokenizer" */
    int tokenizer_tried;
    struct ldb_writer *wspare; /* the last batch's writer, kept for its buffers */
    char note[512];            /* what the open repaired, for ldb_db_note */
    _Atomic(struct ldb_seqcache *) seqcache; /* every sequence's start (seqcache.c) */
};

/* manage.c: path made absolute without resolving symlinks (malloc'd; NULL: no memory). */
char *ldb_abs_path(const char *path);

/* repair.c: every record derived from the truth written again with the skip set
 * skip[0..n) into a new data.mdb that replaces the old (manage.c's ldb_db_set_skip). */
int ldb_db_rebuild_skip(ldb_db *db, const uint32_t *skip, size_t n);

/* ---- share.c: one handle, many threads ---- */
int ldb_sync_new(ldb_db *db);
void ldb_sync_free(ldb_db *db);  /* aborts the pooled transactions: before mdb_env_close */
/* Every transaction holds the map lock shared from begin (ldb_txn_begin) to end
 * (ldb_txn_abort / ldb_txn_commit, which must be called on the thread that began it). */
void ldb_map_shared(ldb_db *db);
void ldb_map_release(ldb_db *db);
/* A map LMDB could not remake at size bytes (it has dropped the old one): the
 * handle is lost, and ldb_txn_begin answers LDB_MDB_MAP_LOST from then on. */
#define LDB_MDB_MAP_LOST (MDB_LAST_ERRCODE + 1000)
void ldb_map_lost(ldb_db *db, int mrc, size_t size);
int ldb_map_is_lost(ldb_db *db);  /* 0, or the errno of that failure */
size_t ldb_map_lost_size(ldb_db *db);
void ldb_txn_abort(ldb_db *db, MDB_txn *txn);   /* accepts NULL */
int ldb_txn_commit(ldb_db *db, MDB_txn *txn);
/* Runs fn with the map lock exclusive (no transaction open in the process) and the
 * pool dropped; MDB_BAD_TXN when the calling thread holds a transaction. */
int ldb_map_exclusive(ldb_db *db, int (*fn)(ldb_db *, void *), void *arg);
/* Makes dict[0..n) the handle's dictionary records (it takes them); the old ones stay
 * until close. LDB_ENOMEM, changing nothing, when it cannot keep them. */
int ldb_dicts_publish(ldb_db *db, ldb_dbdict *dict, int n);
void ldb_dicts_free(ldb_dbdict *dict, int n);
/* The handle's mutex for state loaded on first use (the tokenizer); it may be held
 * while a transaction begins, never taken inside one. */
void ldb_db_lock(ldb_db *db);
void ldb_db_unlock(ldb_db *db);
/* The process's open databases: the handle open on path's folder (counted), else
 * a new one from fresh() (listed when it opened), refused when it is open
 * read-only and LDB_OPEN_WRITE is asked; releasing one (1 when that was the last
 * open: close it), its count. */
int ldb_open_shared(const char *path, int flags, int (*fresh)(const char *, int, ldb_db **),
                    ldb_db **out);
int ldb_open_release(ldb_db *db);
int ldb_open_refs(ldb_db *db);
/* Swaps what db and n hold (a reopen: db takes n's environment), db keeping its
 * place on the list, under the list's lock. */
void ldb_open_swap(ldb_db *db, ldb_db *n);
/* Unpacks a zstd-coded record with the handle's context (shared: under a lock). */
int ldb_db_unpack(ldb_db *db, const uint8_t *p, size_t n, ldb_buf *out);

/* The entry of a u64-keyed (block start) table holding gpos: the greatest key <=
 * gpos. LDB_ENOTFOUND when there is none. */
int ldb_floor_get(ldb_db *db, MDB_txn *txn, MDB_dbi dbi, uint64_t gpos, uint64_t *start,
                  MDB_val *v, const char *what);

/* Positions c at the greatest key <= *k (for keys of fixed width); returns an
 * LMDB code (MDB_NOTFOUND when every key is greater). */
int ldb_cursor_floor(MDB_cursor *c, MDB_val *k, MDB_val *v);

/* Translates an LMDB error into the handle's message; returns an LDB_E* code.
 * MDB_MAP_FULL also sets db->map_full, for ldb_db_grow_map. */
int ldb_db_mdb_err(ldb_db *db, int mrc, const char *what);

/* mdb_txn_begin that adopts a map another process has grown (MDB_MAP_RESIZED)
 * and tries again. Returns an LMDB code. */
int ldb_txn_begin(ldb_db *db, unsigned flags, MDB_txn **txn);

/* 1 when tok is in db's skip set. */
static inline int ldb_db_is_skip(const ldb_db *db, uint32_t tok)
{
    ldb_skipset s = {db->skip, db->n_skip};
    return ldb_skip_has(&s, tok);
}

/* qsort order of u32 values (skip sets). */
static inline int ldb_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int ldb_db_meta_put_u64(ldb_db *db, MDB_txn *txn, const char *key, uint64_t v);


/* Opens (creating when create) dict id's forward and inverted databases. */
int ldb_db_dict_dbis(ldb_db *db, MDB_txn *txn, uint16_t id, int create, MDB_dbi *fwd, MDB_dbi *inv);

/* (Re)loads the dicts table into db->dict. */
int ldb_db_load_dicts(ldb_db *db, MDB_txn *txn);

/* The same in a read transaction of its own, committed so that the handles it
 * opens stay valid. */
int ldb_db_reload_dicts(ldb_db *db);
/* Commits a write the catalog mirrors (a dictionary, a label): counts it in meta
 * "batch" in the same transaction, commits (*txn is NULL after, committed or not),
 * reloads the dictionary records when dicts, and lets the catalog follow (LMDB holds
 * the change; a catalog that fails to follow is rebuilt on a later open). */
int ldb_db_commit_mirrored(ldb_db *db, MDB_txn **txn, int dicts);


void ldb_seqrec_encode(const ldb_seqrec *s, uint8_t out[40]);
void ldb_seqrec_decode(uint64_t seq, const uint8_t in[40], ldb_seqrec *s);

/* Opens db->path again in place of what db has open (the same flags), as a
 * handle of its own would; after a repair replaced data.mdb. LDB_OK, or an error
 * with db as it was. */
int ldb_db_reopen(ldb_db *db);

/* The cache of sequence starts (seqcache.c), freed with the handle. */
struct ldb_seqcache;
void ldb_seqcache_free(struct ldb_seqcache *s);

/* Token ids per `tok` record of db's format. */
static inline uint32_t ldb_tok_block(const ldb_db *db)
{
    return db->format >= 4 ? LDB_TOK_BLOCK4 : LDB_TOK_BLOCK;
}

/* fsync of a file (one that is gone counts as synced: SQLite removes its journals on
 * close) or of a folder; errno on failure (create.c). */
int ldb_sync_path(const char *p, int dir);
/* Removes a build folder of init, repair or compact, and the files those put in it. */
void ldb_build_remove(const char *dir);

/* A new folder ".latentdb.TAG-XXXXXX" inside db's (*out, malloc'd), for repair and
 * compact to build a file in; or an error ("cannot create a folder to DOING in").
 * Folders of that tag left by a process that died are removed first: the caller
 * must hold the write lock and be the only process with the database open. */
int ldb_db_workdir(ldb_db *db, const char *tag, const char *doing, char **out);

/* Whether another process holds a reader slot of db's environment (repair and
 * compact replace the file, which such a process would go on using). */
int ldb_db_others_open(ldb_db *db);

/* A handle for path with nothing open yet (NULL when out of memory). */
ldb_db *ldb_db_alloc(const char *path);
/* Opens db->path's LMDB environment (creating its files when writable), with the
 * size check and LMDB's assert callback; then the named databases in txn
 * (MDB_CREATE in flags makes them). */
int ldb_env_open(ldb_db *db, int rdonly);
int ldb_env_open_dbis(ldb_db *db, MDB_txn *txn, unsigned flags);
/* Puts t's compiled tables in meta["tokenizer"] in txn; with skip_from_tokenizer,
 * its BOS, EOS and PAD (sorted, in skip[0..*n_skip)) become meta["skip"]. */
int ldb_db_put_tokenizer(ldb_db *db, MDB_txn *txn, struct ldb_tokenizer *t,
                         int skip_from_tokenizer, uint32_t skip[3], size_t *n_skip);

/* Open checks (envcheck.c). Before LMDB opens the folder: data.mdb exists, is a
 * regular file (a FIFO would hang LMDB's open) and is not empty; lock.mdb, when
 * present, is a regular file. */
int ldb_env_precheck(ldb_db *db);
/* After: data.mdb holds every page of LMDB's newest state (its last page, or
 * free pages past the end); else an error saying it is truncated. */
int ldb_env_check_size(ldb_db *db);

/* Catalog (catalog.c). */
int ldb_catalog_open(ldb_db *db);
int ldb_catalog_sync(ldb_db *db, int force);
/* Compares catalog.sqlite with LMDB's state in txn (read-only; works on handles
 * opened read-only). msg is empty when they agree; *stale is set when the catalog
 * only lags behind LMDB (a crash between the two commits: rebuilt on the next
 * writable open), msg otherwise says what differs. */
int ldb_catalog_verify(ldb_db *db, MDB_txn *txn, char *msg, size_t cap, int *stale);
void ldb_catalog_close(ldb_db *db);

#endif
