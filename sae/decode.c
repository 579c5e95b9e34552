/* decode.c — reconstruction for `dict eval`: x_hat = codes . W_dec + b_dec, SAE
 * input normalisation undone, plus the skip term on the raw input. W_dec rows are
 * read (converted when not F32) only for the latents that fire. Scratch is per call,
 * so threads may decode with one dictionary at once. */
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "blas.h"
#include "dict_impl.h"

int ldb_dict_skip_view(ldb_dict *d)
{
    const ldb_tensor *a = d->A_skip;
    int rc;
    if (!a || (rc = ldb_dict_check_finite(d, a)))
        return a ? rc : LDB_OK;
    if (a->dtype != LDB_F32 || ((uintptr_t)a->data & 3)) {
        if (!(d->A_owned = malloc(a->count * sizeof(float))))
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
        ldb_to_f32(d->A_owned, a->data, a->dtype, a->count);
    }
    return LDB_OK;
}

int ldb_dict_skip_add(const ldb_dict *d, const void *x, size_t ldx, int dtype, uint32_t m,
                      float *out, size_t ldo)
{
    const ldb_dict_info *in = &d->info;
    size_t din = in->d_in, dout = in->d_out, es = dtype == LDB_F32 ? 4 : 2;
    const float *A = d->A_owned ? d->A_owned : (const float *)(const void *)d->A_skip->data;
    const float *X = x;
    float *xb = NULL;
    if (dtype != LDB_F32 || ((uintptr_t)x & 3)) { /* rows as f32, back to back */
        if (!(xb = malloc((size_t)m * din * sizeof(float))))
            return LDB_ENOMEM;
        for (uint32_t r = 0; r < m; r++)
            ldb_to_f32(xb + (size_t)r * din, (const uint8_t *)x + (size_t)r * ldx * es, dtype, din);
        X = xb;
        ldx = din;
    }
    if (ldb_blas_load() != LDB_OK) {
        free(xb);
        return LDB_EBLAS;
    }
    if (d->skip == SKIP_XA)
        ldb_blas_sgemm_rm(0, 0, (int)m, (int)dout, (int)din, 1.0f, X, (int)ldx, A, (int)dout, 1.0f,
                          out, (int)ldo);
    else
        ldb_blas_sgemm_rm(0, 1, (int)m, (int)dout, (int)din, 1.0f, X, (int)ldx, A, (int)din, 1.0f,
                          out, (int)ldo);
    free(xb);
    return LDB_OK;
}

/* Scans W_dec and the skip matrix once; makes an f32 view of the skip matrix. mu
 * held (the first caller does it, the others wait). */
static int prepare_locked(ldb_dict *d)
{
    int rc;
    if (d->dec_checked)
        return LDB_OK;
    if ((rc = ldb_dict_check_finite(d, d->W_dec)) || (rc = ldb_dict_skip_view(d)))
        return rc;
    d->dec_checked = 1;
    return LDB_OK;
}

static int prepare(ldb_dict *d)
{
    pthread_mutex_lock(&d->mu);
    int rc = prepare_locked(d);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* A multi-layer dictionary's decode of x [n_rows][n_layers][d_in] into x_hat
 * [n_rows][n_layers][d_out] (multi.c decodes). */
static int decode_interleaved(ldb_dict *d, const ldb_codes *tile, const void *x, int dtype,
                              float *x_hat)
{
    uint32_t n = d->n_layers, din = d->info.d_in, dout = d->info.d_out;
    size_t es = dtype == LDB_F32 ? 4 : 2;
    const void **xs = malloc(n * sizeof *xs);
    float **os = malloc(n * sizeof *os);
    int rc = xs && os ? LDB_OK : ldb_dict_fail(d, LDB_ENOMEM, "out of memory");
    for (uint32_t l = 0; !rc && l < n; l++) {
        xs[l] = (const uint8_t *)x + (size_t)l * din * es;
        os[l] = x_hat + (size_t)l * dout;
    }
    if (!rc)
        rc = ldb_dict_decode_layers(d, tile, xs, (size_t)n * din, dtype, os, (size_t)n * dout);
    free(xs);
    free(os);
    return rc;
}

int ldb_dict_decode(ldb_dict *d, const ldb_codes *tile, const void *x, int dtype, float *x_hat)
{
    if (d->n_layers)
        return decode_interleaved(d, tile, x, dtype, x_hat);
    const ldb_dict_info *in = &d->info;
    const ldb_tensor *wd = d->W_dec;
    size_t dout = in->d_out, din = in->d_in, es = dtype == LDB_F32 ? 4 : 2;
    int rc = prepare(d), direct = wd->dtype == LDB_F32 && ((uintptr_t)wd->data & 3) == 0;
    float *row = NULL, *xr = NULL;
    if (rc)
        return rc;
    if (!(row = malloc(dout * sizeof(float))) || !(xr = malloc(din * sizeof(float)))) {
        rc = ldb_dict_fail(d, LDB_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t r = 0; r < tile->n_rows; r++) {
        float *o = x_hat + (size_t)r * dout;
        memset(o, 0, dout * sizeof(float));
        for (uint64_t i = tile->start[r]; i < tile->start[r + 1]; i++) {
            uint32_t j = tile->latent[i];
            float v = tile->value[i];
            if (d->dec_norm)
                v /= d->dec_norm[j];
            const float *w = row;
            if (direct)
                w = (const float *)(const void *)(wd->data + (size_t)j * dout * 4);
            else
                ldb_to_f32(row, wd->data + (size_t)j * dout * wd->elsize, wd->dtype, dout);
            for (size_t c = 0; c < dout; c++)
                o[c] += v * w[c];
        }
        for (size_t c = 0; c < dout; c++)
            o[c] += d->b_dec[c];
        if (d->norm != NORM_NONE && strcmp(in->type, "sae") == 0) {
            float mul, sub, undo;
            ldb_to_f32(xr, (const uint8_t *)x + (size_t)r * din * es, dtype, din);
            ldb_dict_norm_stats(d, xr, &mul, &sub, &undo);
            for (size_t c = 0; c < dout; c++)
                o[c] = o[c] * undo + sub;
        }
    }
    if (d->A_skip && (rc = ldb_dict_skip_add(d, x, din, dtype, tile->n_rows, x_hat, dout)))
        rc = ldb_dict_fail(d, rc, rc == LDB_EBLAS ? "cannot load OpenBLAS" : "out of memory");
out:
    free(row);
    free(xr);
    return rc;
}
