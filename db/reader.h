/* reader.h — decoding what the writer stored: postings, tokens, summaries (and,
 * through fwdblock.h, forward blocks).
 * Everything here runs inside a caller's read transaction and copies what it
 * returns (decoded data stays valid after the transaction ends). */
#ifndef LDB_DB_READER_H
#define LDB_DB_READER_H

#include "fwdblock.h"
#include "store.h"
#include "summary.h"

/* All positions where latent fires, ascending (malloc'd; *n of them). */
int ldb_inv_read(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint32_t latent, uint64_t **out,
                 size_t *n);

/* All positions holding token, ascending (malloc'd; *n of them; none: NULL, 0). */
int ldb_tokidx_read(ldb_db *db, ldb_txn *txn, uint32_t token, uint64_t **out, size_t *n);

/* Token of gpos through a cache of the last decoded token block. */
typedef struct ldb_tokcache {
    uint64_t start;
    uint64_t n;                /* tokens at data (0: empty) */
    const uint8_t *data;       /* in place (raw blocks) or buf.data */
    ldb_buf buf;
} ldb_tokcache;

/* Tokens [pos, pos + n) of the sequence starting at gpos start, by exact key (token
 * records start at the sequence's start and every LDB_TOK_BLOCK positions after
 * it); raw records are read in place. */
int ldb_seq_tokens_at(ldb_db *db, ldb_txn *txn, uint64_t start, uint32_t pos, uint32_t n,
                      uint32_t *out);
int ldb_tok_at(ldb_db *db, ldb_txn *txn, ldb_tokcache *tc, uint64_t gpos, uint32_t *tok);
void ldb_tokcache_free(ldb_tokcache *tc);

/* A latent's summary; a latent that never fired gives a zeroed one. */
int ldb_lsum_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, ldb_lsum *s);
/* Every latent's firing count (ordinary positions), d_sae of them: the `lcnt`
 * record, kept equal to the summaries' counts (check verifies it). */
int ldb_lsum_counts(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t *counts);

/* A latent's best max (<= LDB_TOPK) top candidates (and their contexts, when ctx is
 * not NULL; format 4 stores no sequence, position and length: their len is 0);
 * returns their number (>= 0) or a negative error. */
int ldb_ltop_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, ldb_cand *out,
                 ldb_tctx *ctx, int max);

/* The corpus's layout: every sequence's start, ascending, with the end of the
 * corpus as a sentinel (start[nseq]), and every skipped position, ascending (from
 * the token index). Scans over many sequences look bounds up here instead of
 * seeking per position. */
typedef struct ldb_layout {
    uint64_t *start, *skip;
    size_t nseq, nskip;
} ldb_layout;

int ldb_layout_load(ldb_db *db, ldb_txn *txn, ldb_layout *L);
/* Every skipped position of the DB (holding a skip token), ascending, from the
 * token index (*out malloc'd; NULL when there are none). */
int ldb_skip_positions(ldb_db *db, ldb_txn *txn, uint64_t **out, size_t *n);
void ldb_layout_free(ldb_layout *L);

/* First index in a[lo, hi) with a[i] >= x. */
size_t ldb_lower_bound(const uint64_t *a, size_t lo, size_t hi, uint64_t x);

/* The sequence holding gpos p: index si with start[si] <= p < start[si + 1],
 * searching from hint (positions visited in ascending order stay O(1)). */
static inline size_t ldb_layout_seq(const ldb_layout *L, size_t hint, uint64_t p)
{
    if (hint < L->nseq && L->start[hint] <= p && p < L->start[hint + 1])
        return hint;
    return ldb_lower_bound(L->start, 0, L->nseq, p + 1) - 1;
}

#endif
