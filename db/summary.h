/* summary.h — per-latent summaries (lsum) and top candidates (ltop), their byte
 * layouts (docs/FORMAT.md) and merges. A summary's histogram is exact: counts per
 * stored value, keyed by bf16 bit pattern, ascending. */
#ifndef LDB_DB_SUMMARY_H
#define LDB_DB_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ldb_lsum {
    uint64_t count, nseq;
    double sum, sumsq;
    float max;
    uint32_t nh;               /* histogram entries */
    uint16_t *hk;              /* keys, ascending (owned) */
    uint64_t *hc;              /* counts (owned) */
} ldb_lsum;

typedef struct ldb_cand {
    uint64_t gpos;
    float value;
} ldb_cand;

/* Decodes a summary of format fmt (3 or 4); the histogram arrays are allocated (free
 * with ldb_lsum_free). 0 or -1. */
int ldb_lsum_decode(const uint8_t *p, size_t n, int fmt, ldb_lsum *s);
int ldb_lsum_encode(const ldb_lsum *s, int fmt, ldb_buf *out);
void ldb_lsum_free(ldb_lsum *s);

/* Adds sorted (key, count) pairs to s's histogram. 0 or -1 (out of memory). */
int ldb_lsum_merge_hist(ldb_lsum *s, const uint16_t *k, const uint64_t *c, uint32_t n);

/* Merges a batch's summary b (its histogram sorted, not owned by s) into s: counts
 * and sums add, max is the larger, histograms merge. 0 or -1 (out of memory). */
int ldb_lsum_add(ldb_lsum *s, const ldb_lsum *b);

/* The histogram of n bf16 keys (keys and tmp are scratch of n; keys is sorted in
 * place): its distinct keys ascending in hk, their counts in hc; returns how many. */
uint32_t ldb_hist_of_keys(uint16_t *keys, uint16_t *tmp, size_t n, uint16_t *hk, uint64_t *hc);

/* A candidate's context: where the latent fires within LDB_TOPCTX positions of it
 * (same sequence), so that top examples need no forward-index reads, and where it
 * lies (sequence, position, length), so that they need no sequence lookup. Offset
 * -8..-1 is bit 0..7 of mask, +1..+8 bit 8..15; bits[j] is the stored value there. */
#define LDB_TOPCTX 8
typedef struct ldb_tctx {
    uint16_t mask;
    uint32_t bits[2 * LDB_TOPCTX];
    uint64_t seq;              /* the candidate's sequence, its position there, its length: */
    uint32_t pos, len;         /* an example needs no sequence lookup */
} ldb_tctx;

static inline int ldb_tctx_bit(int off) /* off in [-8, 8], not 0 */
{
    return off < 0 ? off + LDB_TOPCTX : off + LDB_TOPCTX - 1;
}

/* Decodes the best max candidates (all when fewer) of a top list of format fmt whose
 * values are stored as kind (LDB_VAL_*), and their contexts when ctx is not NULL
 * (format 4 stores no sequence, position or length: they are 0). Returns the count
 * or -1 when malformed. */
int ldb_top_decode(const uint8_t *p, size_t n, int fmt, int kind, ldb_cand *out, ldb_tctx *ctx,
                   int max);
/* Appends the record of n ordered candidates (and, for format 3, their contexts) to
 * out; 0 or -1 (out of memory). */
int ldb_top_encode(const ldb_cand *c, const ldb_tctx *ctx, int n, int fmt, int kind, ldb_buf *out);

/* Order of candidates: value descending, then gpos ascending. */
static inline int ldb_cand_before(const ldb_cand *a, const ldb_cand *b)
{
    return a->value > b->value || (a->value == b->value && a->gpos < b->gpos);
}

/* Merges two ordered lists into out (at most max), ordered; returns its length.
 * src[o] (when not NULL) tells where out[o] came from: i for a[i], -1 - j for b[j]. */
int ldb_top_merge(const ldb_cand *a, int na, const ldb_cand *b, int nb, ldb_cand *out, int max,
                  int *src);

#endif
