/* bf16mm.h — the optional bf16 encoder GEMM through oneDNN (see dnnl.c). */
#ifndef LDB_SAE_BF16MM_H
#define LDB_SAE_BF16MM_H

#include <stddef.h>
#include <stdint.h>

#include "latentdb.h"

typedef struct ldb_bf16mm ldb_bf16mm;

/* Rounds W (K x N row-major, or N x K when trans) to bf16 and makes a matmul for up
 * to rows rows. LDB_EUNSUPPORTED (with the reason in msg) when oneDNN is missing or
 * has no bf16 matmul for this CPU. */
int ldb_bf16mm_new(uint32_t K, uint32_t N, const float *W, int trans, uint32_t rows,
                   ldb_bf16mm **out, char *msg, size_t cap);

/* c (M x N, f32) = bf16(x) (M x K) . bf16(W), accumulated in f32. */
int ldb_bf16mm_run(ldb_bf16mm *m, const float *x, uint32_t M, float *c, char *msg, size_t cap);

/* oneDNN's implementation name ("brg:avx512_core_bf16", ...). */
const char *ldb_bf16mm_impl(const ldb_bf16mm *m);
void ldb_bf16mm_free(ldb_bf16mm *m);

#endif
