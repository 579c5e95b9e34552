/* query_impl.h — what the query files share: a read transaction with the dict it
 * is about, the full ranking of a latent's firing positions, and example filling. */
#ifndef LDB_QUERY_IMPL_H
#define LDB_QUERY_IMPL_H

#include "../db/reader.h"

typedef struct qctx {
    ldb_db *db;
    MDB_txn *txn;
    ldb_dbdict *dd;            /* NULL when the query names no dict */
} qctx;

/* Begins a read transaction; checks the dict (when named) and the latent. */
int ldb_q_begin(ldb_db *db, const char *dict, uint32_t latent, int need_latent, qctx *q);
void ldb_q_end(qctx *q);

/* Every firing position of the latent with its value, by value descending then
 * gpos; skipped positions left out unless include_special. */
int ldb_q_scan_latent(qctx *q, uint32_t latent, int include_special, ldb_cand **out, size_t *n);

/* Fills an example (sequence, position, context tokens and values) for a candidate;
 * the context values come from tc (its stored context) when given, else from the
 * forward index. */
int ldb_q_fill_example(qctx *q, uint32_t latent, const ldb_cand *c, const ldb_tctx *tc,
                       uint32_t context, ldb_fpos *fp, ldb_example *e);

/* The corpus's layout: every sequence's start, ascending, with the end of the
 * corpus as a sentinel (start[nseq]), and every skipped position, ascending (from
 * the token index). Scans over many sequences look bounds up here instead of
 * seeking per position. */
typedef struct ldb_layout {
    uint64_t *start, *skip;
    size_t nseq, nskip;
} ldb_layout;

int ldb_layout_load(ldb_db *db, MDB_txn *txn, ldb_layout *L);
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
