/* bf16mm.h — the optional bf16 encoder GEMM through oneDNN (see dnnl.c): one
 * ldb_bf16mm per encoder (its lanes), W_enc in bf16 shared by every encoder of a
 * dictionary (ldb_bf16w, immutable once made). */
#ifndef LDB_SAE_BF16MM_H
#define LDB_SAE_BF16MM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "latentdb.h"

typedef struct ldb_bf16mm ldb_bf16mm;

/* W rounded to bf16 and laid out for oneDNN's matmul: a list with one entry per
 * layout asked for so far (in practice one), kept by the dictionary, shared by its
 * encoders' GEMMs and never changed once made. */
typedef struct ldb_bf16w ldb_bf16w;

/* Frees the whole list; accepts NULL. Every GEMM that used it must be freed first. */
void ldb_bf16w_free(ldb_bf16w *list);

/* Lanes: GEMMs that may run at once, each on its caller's thread alone. Lane i
 * belongs to encoder worker i (LDB_WORKERS in encode.c is no larger). When
 * oneDNN's thread count cannot be set per thread there is one lane, whose GEMM uses
 * every thread, and calls on any lane take turns at it. */
#define LDB_BF16_LANES 8

/* Makes a matmul for up to rows rows by W (K x N row-major, or N x K when trans),
 * taking W in bf16 from *shared, or rounding it and adding it there when the list
 * has no copy in the layout this matmul wants; *shared is read and extended under
 * mu. LDB_EUNSUPPORTED (with the reason in msg) when oneDNN is missing or has no
 * bf16 matmul for this CPU. */
int ldb_bf16mm_new(uint32_t K, uint32_t N, const float *W, int trans, uint32_t rows,
                   ldb_bf16w **shared, pthread_mutex_t *mu, ldb_bf16mm **out, char *msg,
                   size_t cap);

/* c (M x N, f32) = bf16(x) (M x K) . bf16(W), accumulated in f32, on the given
 * lane (0 .. LDB_BF16_LANES - 1); two threads may run different lanes at once,
 * never the same one. */
int ldb_bf16mm_run(ldb_bf16mm *m, int lane, const float *x, uint32_t M, float *c, char *msg,
                   size_t cap);

/* oneDNN's implementation name ("brg:avx512_core_bf16", ...). */
const char *ldb_bf16mm_impl(const ldb_bf16mm *m);

/* Frees the lanes; the shared weights stay with their list. Accepts NULL. */
void ldb_bf16mm_free(ldb_bf16mm *m);

#endif
