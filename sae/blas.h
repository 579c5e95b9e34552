/* blas.h — the OpenBLAS entry points latentdb uses, resolved by dlopen on first
 * use (see ldb_blas_load in latentdb.h). Process-wide by nature (like dnnl.c's loader
 * and db/share.c's list of open databases): written once under pthread_once, and the
 * count of encodes that hold its thread count at one (ldb_blas_solo), under a mutex. */
#ifndef LDB_SAE_BLAS_H
#define LDB_SAE_BLAS_H

/* cblas_sgemm with row-major layout; ta/tb are 0 (no transpose) or 1. */
void ldb_blas_sgemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                       int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Holds OpenBLAS at one thread (on = 1) until every holder has let go (on = 0),
 * then restores the user's count: the encoder runs its own worker threads, each
 * with a single-threaded sgemm. Counted, so concurrent encodes nest. -1 when this
 * OpenBLAS cannot change its thread count (then run one worker). */
int ldb_blas_solo(int on);

/* The core latentdb would choose for this CPU ("SkylakeX", "Cooperlake") or
 * NULL when OpenBLAS's own choice is right (no AVX-512). */
const char *ldb_blas_preferred_core(void);

#endif
