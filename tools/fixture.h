/* fixture.h — what the fixture generators (synth, planted) share: a seeded
 * splitmix64 generator, a unit-norm random dictionary, and writers for .npy
 * arrays and a Gemma Scope 2 JumpReLU dictionary folder. */
#ifndef LDB_TOOLS_FIXTURE_H
#define LDB_TOOLS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>

double fx_now(void);                                  /* CLOCK_MONOTONIC, seconds */
int fx_cmp_double(const void *a, const void *b);      /* qsort, ascending */

void fx_seed(uint64_t seed);
uint64_t fx_next(void);
double fx_unif(void);   /* [0, 1) */
double fx_gauss(void);  /* N(0, 1) */
void fx_gauss_fill(float *out, long n, double scale); /* out[i] = (float)(scale * fx_gauss()) */

/* D[n_rows][d]: rows drawn from N(0, I) and scaled to unit norm. */
void fx_unit_rows(float *D, long n_rows, long d);

/* Opens path and writes an .npy v1 header for a C-order array of the given
 * descr ("<f4", "<i4") and shape; the caller writes the data and closes.
 * NULL with errno set on failure. */
FILE *fx_npy_begin(const char *path, const char *descr, const uint64_t *shape, int ndim);

/* Writes the whole array; 0 or -1 with errno set. */
int fx_npy_write(const char *path, const char *descr, const uint64_t *shape, int ndim,
                 const void *data, size_t bytes);

/* Writes DIR/{config.json,params.safetensors} for a Gemma Scope 2 JumpReLU SAE
 * with W_enc = D^T, W_dec = D, zero biases and the given thresholds.
 * D is [d_sae][d_in]. Returns 0, or -1 with a message on stderr. */
int fx_write_gs2_dict(const char *dir, const float *D, const float *threshold, long d_in,
                      long d_sae, long l0, const char *model);

/* Reads int32/int64 tokens [n_seq, ctx] (or [n]); sets *n and, for 2-d arrays,
 * *ctx. NULL with a message on stderr. */
uint32_t *fx_load_tokens(const char *path, uint64_t *n, long *ctx);

/* A CSR matrix of float32 codes built row by row (for `latentdb import`). */
typedef struct {
    uint64_t rows, cols, row, nnz, cap;
    int64_t *indptr;  /* rows + 1 */
    int32_t *indices; /* nnz */
    float *data;      /* nnz */
} fx_csr;

int fx_csr_init(fx_csr *c, uint64_t rows, uint64_t cols); /* 0 or -1 (out of memory) */
int fx_csr_put(fx_csr *c, uint32_t col, double v);         /* 0 or -1 (out of memory) */
/* Ends the current row: its entries sorted by column, a repeated column kept once
 * with its largest value. */
void fx_csr_end_row(fx_csr *c);
/* Writes the matrix as scipy.sparse.save_npz does (uncompressed): data, indices,
 * indptr, shape and format. 0, or -1 with a message on stderr. */
int fx_csr_write_npz(const fx_csr *c, const char *path);
void fx_csr_free(fx_csr *c);

#endif
