/* bf16mm.h — the optional bf16 encoder GEMM through oneDNN (see dnnl.c). */
#ifndef LDB_SAE_BF16MM_H
#define LDB_SAE_BF16MM_H

#include <stddef.h>
#include <stdint.h>

#include "latentdb.h"

typedef struct ldb_bf16mm ldb_bf16mm;

/* Lanes: GEMMs that may run at once, each on its caller's thread alone. Lane i
 * belongs to encoder worker i (LDB_WORKERS in dict_impl.h is no larger). When
 * oneDNN's thread count cannot be set per thread there is one lane, whose GEMM uses
 * every thread, and calls on any lane take turns at it. */
#define LDB_BF16_LANES 8

/* Rounds W (K x N row-major, or N x K when trans) to bf16 and makes a matmul for up
 * to rows rows. LDB_EUNSUPPORTED (with the reason in msg) when oneDNN is missing or
 * has no bf16 matmul for this CPU. */
int ldb_bf16mm_new(uint32_t K, uint32_t N, const float *W, int trans, uint32_t rows,
                   ldb_bf16mm **out, char *msg, size_t cap);

/* c (M x N, f32) = bf16(x) (M x K) . bf16(W), accumulated in f32, on the given
 * lane (0 .. LDB_BF16_LANES - 1); two threads may run different lanes at once,
 * never the same one. */
int ldb_bf16mm_run(ldb_bf16mm *m, int lane, const float *x, uint32_t M, float *c, char *msg,
                   size_t cap);

/* oneDNN's implementation name ("brg:avx512_core_bf16", ...). */
const char *ldb_bf16mm_impl(const ldb_bf16mm *m);
void ldb_bf16mm_free(ldb_bf16mm *m);

#endif
