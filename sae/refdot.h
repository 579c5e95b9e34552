/* refdot.h — the reference pre-activation of the exact encoder (docs/ARCHITECTURE.md,
 * "Exact encode"): an f32 dot product in one fixed order, the same bits from every
 * build and CPU. */
#ifndef LDB_SAE_REFDOT_H
#define LDB_SAE_REFDOT_H

#include <stdint.h>

/* sum_i x[i] * w[i] over n terms in f32: 16 lanes, lane l summing the products of
 * i = l, l + 16, ... below n - n % 16 in ascending i (starting from +0); lanes folded
 * l + 8, then + 4, + 2, + 1; then the last n % 16 products added in order. Each
 * product and each sum is rounded on its own (no FMA). */
float ldb_refdot(const float *x, const float *w, uint32_t n);

/* Four dot products, out[k] = exactly ldb_refdot(x[k], w[k], n): one pass with four
 * independent chains (faster than four calls). */
void ldb_refdot4(const float *const x[4], const float *const w[4], uint32_t n, float out[4]);

#endif
