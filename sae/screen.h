/* screen.h — the exact encoder's screen and refinement (screen.c; the proof is in
 * docs/ARCHITECTURE.md, "Exact encode"): from a row's screened pre-activations c~
 * (any GEMM whose error the bound covers), the latents that could fire; their
 * reference pre-activations (refdot.h); the codes from those alone. */
#ifndef LDB_SAE_SCREEN_H
#define LDB_SAE_SCREEN_H

#include <stddef.h>
#include <stdint.h>

#include "dict_impl.h"

/* What the refinement needs of a single-layer dictionary, made once (ldb_refine_get)
 * and immutable after. */
typedef struct ldb_refine {
    const float *Wt;           /* [d_sae][d_in]: latent j's encoder row w_j at Wt + j * d_in */
    float *Wt_owned;           /* the transposed copy, when W_enc is [d_in][d_sae] */
    float *nw;                 /* d_sae: ||w_j||_2, rounded up */
    float *g;                  /* d_sae: 2^-126 ||w_j||_1, rounded up (flushed denormals) */
    float *tb;                 /* d_sae: t_j - b_j - g[j] rounded down (jumprelu/relu: t = thr,
                                  b = b_enc; gated: t = 0, b = b_gate); NULL for topk and
                                  groupmax */
    float max_nw;              /* max_j nw[j] */
    size_t bytes;              /* memory held (the transposed copy most of it) */
} ldb_refine;

/* The screens: their error constant kappa differs (ARCHITECTURE.md). */
enum { LDB_SCREEN_F32, LDB_SCREEN_BF16 };

/* d's refinement data, made on first call under d->mu (a single-layer dictionary or
 * one layer of a multi-layer one). LDB_ENOMEM without a message. */
int ldb_refine_get(ldb_dict *d, const ldb_refine **out);
void ldb_refine_free(ldb_refine *rf);

/* A tile's outlier dimensions (ARCHITECTURE.md, "Exact encode"): the few input
 * dimensions far larger than the rest in most rows. The screen's GEMM multiplies the
 * rows with these dimensions zeroed, and their share, x_i W_enc[i][j], is added in f32
 * as the candidates are selected, so that only the rest of the row's norm widens the
 * bf16 bound. w[o] is W_enc's row for dim[o] (d_sae floats). */
#define LDB_MAX_OUTLIERS 8
typedef struct ldb_outliers {
    uint32_t n;
    uint32_t dim[LDB_MAX_OUTLIERS];
    const float *w[LDB_MAX_OUTLIERS];
} ldb_outliers;

/* Picks the outlier dimensions of m rows x (row r at x + r * n): those whose mean |x_i|
 * is over 8 times the median dimension's, the largest first, at most LDB_MAX_OUTLIERS;
 * none for a [d_sae, d_in] W_enc (whose rows per input dimension are not contiguous). */
void ldb_screen_outliers(const ldb_dict *d, const float *x, uint32_t m, ldb_outliers *o);

/* One row's share of the bound: E_j <= alpha * nw[j] + beta + g[j] for every latent j
 * (alpha = kappa_R ||x_R||_2 + kappa_all ||x||_2, x_R the row without o's dimensions;
 * beta = 2^-126 (2n + ||x||_1); both inflated); all = 1 when the row cannot be screened
 * (a norm too large or not finite): refine every latent. */
typedef struct ldb_rowbound {
    float alpha, beta;
    int all;
} ldb_rowbound;

void ldb_screen_rowbound(const ldb_refine *rf, int screen, const float *x, uint32_t n,
                         const ldb_outliers *o, ldb_rowbound *rb);

/* Bytes of scratch ldb_screen_select and ldb_activate_list need for d (top-k's
 * bounds and candidates). */
size_t ldb_screen_scratch(const ldb_dict *d);

/* A row's candidates among latents [j0, j0 + span) (span = d_sae but for jumprelu
 * and relu): c the span's screened pre-activations (x_R.W_enc before b_enc, x_R the
 * row x with o's dimensions zeroed), rb the row's bound. Writes the candidates' ids (of
 * d, ascending) to ids (room for span) and returns their count: every latent that
 * could fire (enter the top k, win its group) under the reference is among them. c
 * may be changed (the outliers' share added). */
uint32_t ldb_screen_select(const ldb_dict *d, const ldb_refine *rf, const ldb_rowbound *rb,
                           const ldb_outliers *o, const float *x, float *c, uint32_t j0,
                           uint32_t span, void *scratch, uint32_t *ids);

/* Working arrays of ldb_screen_refine, owned by the caller: rowof and perm with room
 * for the pairs, count for span + 1. */
typedef struct ldb_refine_ws {
    uint32_t *rowof, *perm, *count;
} ldb_refine_ws;

/* The reference pre-activations of a group of m rows' candidates: row r (at
 * x + r * d_in) has ids[start[r] .. start[r + 1]) (start[0] = 0; latents of
 * [j0, j0 + span));
 * out[p] gets pair p's value. The pairs are taken latent by latent, so a latent's
 * encoder row is read once for every row of the group it is a candidate in. */
void ldb_screen_refine(const ldb_refine *rf, uint32_t din, const float *x, uint32_t m,
                       const uint64_t *start, const uint32_t *ids, uint32_t j0, uint32_t span,
                       const ldb_refine_ws *ws, float *out);

#endif
