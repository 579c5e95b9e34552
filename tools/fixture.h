/* fixture.h — what the fixture generators (synth, planted) share: a seeded
 * splitmix64 generator, a unit-norm random dictionary, and writers for .npy
 * arrays and a Gemma Scope 2 JumpReLU dictionary folder. */
#ifndef LDB_TOOLS_FIXTURE_H
#define LDB_TOOLS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>

void fx_seed(uint64_t seed);
uint64_t fx_next(void);
double fx_unif(void);   /* [0, 1) */
double fx_gauss(void);  /* N(0, 1) */

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

#endif
