/* store.h — what ingest/ and query/ may ask of the store. The store owns its tables:
 * outside db/ nobody includes db_impl.h or lmdb.h, and a transaction is an opaque
 * ldb_txn. Reads run in a snapshot (ldb_snap_begin); writes go through ldb_writer
 * (writer.h) or the record calls below, each in a transaction of its own. */
#ifndef LDB_DB_STORE_H
#define LDB_DB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "codec.h"
#include "latentdb.h"

#define LDB_TOK_BLOCK 4096      /* token ids per `tok` record, from each sequence's start (format 3) */
#define LDB_TOK_BLOCK4 1019     /* format 4: a record fills one overflow page (docs/FORMAT.md) */
#define LDB_FWD_GROUP 8         /* positions per bit-offset entry of a forward block */
#define LDB_MAX_DICTS 1024
#define LDB_TOPK 100

/* A transaction: LMDB's, opaque outside db/. */
typedef struct MDB_txn ldb_txn;

/* A registered dictionary as the store records it. Records are immutable once
 * loaded: a reload (a dictionary added, a first batch) makes new ones and keeps the
 * old until the handle closes, so a pointer stays valid for the handle's life. */
typedef struct ldb_dbdict {
    uint16_t id;
    char *name;
    char *path;
    char *json;                /* the dicts record as stored */
    uint32_t d_in, d_out, d_sae;
    uint32_t block;            /* positions per forward block; 0 until the first batch */
    uint32_t n_layers;         /* 0: a single-layer dictionary; else its layers (CLT, crosscoder) */
    uint32_t *layer_off;       /* n_layers + 1 entries: each layer's first latent, then d_sae */
    unsigned int fwd, inv;     /* its tables ("fwd:<id>", "inv:<id>"; db/ only) */
} ldb_dbdict;

/* Per-dict corpus counters (dstat). */
typedef struct ldb_dstat {
    uint64_t positions, ordinary, seqs, nnz, nnz_ordinary;
} ldb_dstat;

/* Sequence record (seqs). */
typedef struct ldb_seqrec {
    uint64_t seq, start, row;
    uint32_t len, source;
    uint8_t hash[16];
} ldb_seqrec;

/* The skip set (token ids left out of statistics), sorted; fixed at init. */
typedef struct ldb_skipset {
    const uint32_t *id;
    size_t n;
} ldb_skipset;

/* 1 when tok is in the skip set (called per position by scans: inline; the set is
 * a few ids, so a linear pass beats a binary search). */
static inline int ldb_skip_has(const ldb_skipset *s, uint32_t tok)
{
    if (s->n <= 16) {
        int hit = 0;
        for (size_t i = 0; i < s->n; i++)
            hit |= s->id[i] == tok;
        return hit;
    }
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->id[mid] < tok)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->id[lo] == tok;
}

/* ---- The handle ---------------------------------------------------------- */
/* The error slot of the calling thread on db: messages set here are what
 * ldb_db_errmsg(db) returns to this thread. */
ldb_err *ldb_db_err(ldb_db *db);
const char *ldb_db_path(const ldb_db *db);
int ldb_db_values(const ldb_db *db);   /* LDB_VAL_* */
ldb_skipset ldb_db_skipset(const ldb_db *db);
/* The dictionaries as this handle last loaded them: n records (valid until close). */
const ldb_dbdict *ldb_db_dicts(ldb_db *db, int *n);
/* The latents [*first, *end) of one layer of dd (LDB_ALL_LAYERS: all of them);
 * LDB_EINVAL naming the range when the layer is out of it. */
int ldb_db_layer_span(ldb_db *db, const ldb_dbdict *dd, uint32_t layer, uint32_t *first,
                      uint32_t *end);
/* The dictionary named name, or NULL (with a message listing the known ones). */
const ldb_dbdict *ldb_db_find_dict(ldb_db *db, const char *name);

/* After a write transaction failed because the map was full (MDB_MAP_FULL) and was
 * aborted: doubles the map (no transaction of this handle may be active) and returns
 * LDB_OK, so the caller can run its transaction again. Returns an error, and keeps
 * the handle's message, when the failure was something else. */
int ldb_db_grow_map(ldb_db *db);

/* ---- Snapshots ----------------------------------------------------------- */
/* Begins a read snapshot: one read transaction, reused from the handle's pool (a
 * fresh one allocates and clears room for every table, ~125 KB: a fifth of a `top`).
 * Thread-safe; each thread its own snapshot. */
int ldb_snap_begin(ldb_db *db, ldb_txn **txn);
/* Ends it (accepts NULL); pointers into its pages are invalid after. */
void ldb_snap_end(ldb_db *db, ldb_txn *txn);

/* ---- Records ------------------------------------------------------------- */
int ldb_db_meta_u64(ldb_db *db, ldb_txn *txn, const char *key, uint64_t *out); /* 0 when absent */
int ldb_db_get_dstat(ldb_db *db, ldb_txn *txn, uint16_t dict, ldb_dstat *st);
int ldb_db_get_seq(ldb_db *db, ldb_txn *txn, uint64_t seq, ldb_seqrec *out);
/* The sequence holding gpos. */
int ldb_db_seq_at(ldb_db *db, ldb_txn *txn, uint64_t gpos, ldb_seqrec *out);
/* The sequence holding gpos, its start and length, from the handle's cache of sequence
 * starts (made from txn when gpos is past it): what a top example needs, without
 * ldb_db_seq_at's two B-tree lookups. */
int ldb_seq_find(ldb_db *db, ldb_txn *txn, uint64_t gpos, uint64_t *seq, uint64_t *start,
                 uint32_t *len);
/* A source's label, in the snapshot's pages (not NUL-terminated); LDB_ENOTFOUND
 * (no message) when the id has none. */
int ldb_source_get(ldb_db *db, ldb_txn *txn, uint32_t id, const char **label, size_t *len);
/* A latent's label, likewise; LDB_ENOTFOUND (no message) when unlabelled. */
int ldb_label_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, const char **text,
                  size_t *len);
/* Each of a dictionary's labels in latent order, read in place; stops at the first
 * nonzero return of each, which it returns. */
int ldb_label_each(ldb_db *db, ldb_txn *txn, uint16_t dict,
                   int (*each)(void *arg, uint32_t latent, const char *text, size_t len), void *arg);
/* Bytes of LMDB pages in use: the whole file's, and a dictionary's two indexes'. */
int ldb_db_bytes(ldb_db *db, ldb_txn *txn, uint64_t *bytes);
uint64_t ldb_db_index_bytes(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd);

/* Run records (runs: a 32-byte id -> JSON). ldb_run_get points into txn's pages
 * (LDB_ENOTFOUND, no message, when there is none); ldb_run_put writes in txn (a
 * writer's: ldb_writer_txn); ldb_run_put_alone in a write transaction of its own. */
int ldb_run_get(ldb_db *db, ldb_txn *txn, const uint8_t id[32], const char **json, size_t *len);
int ldb_run_put(ldb_db *db, ldb_txn *txn, const uint8_t id[32], const char *json);
int ldb_run_put_alone(ldb_db *db, const uint8_t id[32], const char *json);
/* Each run record, read in place; stops at the first nonzero return of each. */
int ldb_run_each(ldb_db *db, ldb_txn *txn,
                 int (*each)(void *arg, const uint8_t id[32], const char *json, size_t len),
                 void *arg);

#endif
