/* encode.c — the encoder pipeline: per tile of rows, prepare the input (convert,
 * normalise, subtract b_dec), one sgemm into the tile's pre-activations, then the
 * activation function turns each row into sorted sparse (latent, value) pairs.
 * Invariant: only one tile of dense pre-activations exists at any time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "blas.h"
#include "dict_impl.h"

#define TILE_BUDGET_BYTES ((size_t)128 << 20)
#define TILE_MAX_ROWS 4096u
#define TILE_MIN_ROWS 16u

uint32_t ldb_dict_tile_rows(const ldb_dict *d)
{
    if (d->tile_rows)
        return d->tile_rows;
    size_t r = TILE_BUDGET_BYTES / ((size_t)d->info.d_sae * sizeof(float));
    if (r > TILE_MAX_ROWS)
        r = TILE_MAX_ROWS;
    if (r < TILE_MIN_ROWS)
        r = TILE_MIN_ROWS;
    return (uint32_t)r;
}

int ldb_dict_set_tile_rows(ldb_dict *d, uint32_t rows)
{
    if (rows > (1u << 20))
        return ldb_err_set(&d->err, LDB_EINVAL, "tile of %u rows is too large", rows);
    d->tile_rows = rows;
    return LDB_OK;
}

void ldb_dict_norm_stats(const ldb_dict *d, const float *row, float *mul, float *sub, float *undo)
{
    uint32_t n = d->info.d_in;
    *mul = 1.0f, *sub = 0.0f, *undo = 1.0f;
    if (d->norm == NORM_CONSTANT) {
        double s = 0;
        for (uint32_t i = 0; i < n; i++)
            s += (double)row[i] * row[i];
        /* x * sqrt(d_in) / |x|; SAELens adds no epsilon (a zero row gives NaN) */
        *mul = (float)(sqrt((double)n) / sqrt(s));
        *undo = (float)(sqrt(s) / sqrt((double)n));
    } else if (d->norm == NORM_LAYER) {
        double mu = 0, v = 0;
        for (uint32_t i = 0; i < n; i++)
            mu += row[i];
        mu /= n;
        for (uint32_t i = 0; i < n; i++)
            v += (row[i] - mu) * (row[i] - mu);
        double sd = n > 1 ? sqrt(v / (n - 1)) : 0; /* torch.std: unbiased */
        *sub = (float)mu;
        *mul = (float)(1.0 / (sd + 1e-5));
        *undo = (float)sd; /* SAELens undoes with std, without the epsilon */
    }
}

static int ensure_ws(ldb_dict *d, uint32_t rows)
{
    const ldb_dict_info *in = &d->info;
    if (d->ws_rows >= rows)
        return LDB_OK;
    free(d->xbuf);
    free(d->cbuf);
    free(d->start);
    d->xbuf = aligned_alloc(64, (((size_t)rows * in->d_in * 4 + 63) / 64) * 64);
    d->cbuf = aligned_alloc(64, (((size_t)rows * in->d_sae * 4 + 63) / 64) * 64);
    d->start = malloc(((size_t)rows + 1) * sizeof *d->start);
    if (!d->xbuf || !d->cbuf || !d->start) {
        d->ws_rows = 0;
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory for an encoder tile of %u rows "
                           "x %u latents", rows, in->d_sae);
    }
    d->ws_rows = rows;
    return LDB_OK;
}

static int ensure_cap(ldb_dict *d, size_t need)
{
    if (need <= d->cap)
        return LDB_OK;
    size_t cap = d->cap ? d->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint32_t *l = realloc(d->lat, cap * sizeof *l);
    if (l)
        d->lat = l;
    float *v = realloc(d->val, cap * sizeof *v);
    if (v)
        d->val = v;
    if (!l || !v)
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory for %zu codes", cap);
    d->cap = cap;
    return LDB_OK;
}

/* jumprelu and relu: fire iff pre = c + b > t (t = max(threshold, 0)). The mask
 * of 16 lanes is computed branch-free so the compiler vectorises it; most blocks
 * have no firing lane. */
static size_t fire_thresh(const float *restrict c, const float *restrict b,
                          const float *restrict t, uint32_t n, uint32_t *restrict lat,
                          float *restrict val)
{
    size_t o = 0;
    uint32_t j = 0;
    for (; j + 16 <= n; j += 16) {
        unsigned m = 0;
        for (unsigned u = 0; u < 16; u++)
            m |= (unsigned)(c[j + u] + b[j + u] > t[j + u]) << u;
        while (m) {
            unsigned u = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            lat[o] = j + u;
            val[o++] = c[j + u] + b[j + u];
        }
    }
    for (; j < n; j++) {
        float p = c[j] + b[j];
        if (p > t[j]) {
            lat[o] = j;
            val[o++] = p;
        }
    }
    return o;
}

/* gated: fires iff c + b_gate > 0, value relu(c * exp(r_mag) + b_mag). */
static size_t fire_gated(const ldb_dict *d, const float *restrict c, uint32_t *restrict lat,
                         float *restrict val)
{
    const float *bg = d->b_gate, *bm = d->b_mag, *er = d->exp_r_mag;
    size_t o = 0;
    for (uint32_t j = 0; j < d->info.d_sae; j++) {
        if (c[j] + bg[j] > 0.0f) {
            float mag = c[j] * er[j] + bm[j];
            if (mag > 0.0f) {
                lat[o] = j;
                val[o++] = mag;
            }
        }
    }
    return o;
}

typedef struct { float v; uint32_t j; } cand;

static void sift_down(cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, s = i;
        if (l < n && h[l].v < h[s].v)
            s = l;
        if (l + 1 < n && h[l + 1].v < h[s].v)
            s = l + 1;
        if (s == i)
            return;
        cand t = h[i];
        h[i] = h[s];
        h[s] = t;
        i = s;
    }
}

static int cmp_cand_j(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->j < y->j ? -1 : x->j > y->j;
}

/* topk: the k largest pre-activations that are > 0 (top-k then relu, or relu then
 * top-k: the same set up to ties). Earlier latents win ties. heap holds k. */
static size_t fire_topk(const ldb_dict *d, float *restrict c, cand *heap, uint32_t *restrict lat,
                        float *restrict val)
{
    const float *b = d->b_enc, *s = d->dec_norm;
    uint32_t n = d->info.d_sae, k = d->info.k, h = 0;
    float floor = 0.0f; /* a candidate must beat this */
    for (uint32_t j = 0; j < n; j++) {
        float p = c[j] + b[j];
        if (s)
            p *= s[j];
        if (!(p > floor))
            continue;
        if (h < k) {
            heap[h].v = p;
            heap[h++].j = j;
            if (h == k) {
                for (uint32_t i = k / 2; i-- > 0;)
                    sift_down(heap, k, i);
                floor = heap[0].v;
            }
        } else {
            heap[0].v = p;
            heap[0].j = j;
            sift_down(heap, k, 0);
            floor = heap[0].v;
        }
    }
    qsort(heap, h, sizeof *heap, cmp_cand_j);
    for (uint32_t i = 0; i < h; i++) {
        lat[i] = heap[i].j;
        val[i] = heap[i].v;
    }
    return h;
}

/* groupmax (sparsify): relu, then the max of each of k contiguous groups, at its
 * first maximal latent; a group whose max is 0 does not fire. */
static size_t fire_groupmax(const ldb_dict *d, const float *restrict c, uint32_t *restrict lat,
                            float *restrict val)
{
    const float *b = d->b_enc;
    uint32_t k = d->info.k, g = d->info.d_sae / k;
    size_t o = 0;
    for (uint32_t q = 0; q < k; q++) {
        uint32_t j0 = q * g, best = j0;
        float bv = 0.0f;
        for (uint32_t j = j0; j < j0 + g; j++) {
            float p = c[j] + b[j];
            if (p > bv) {
                bv = p;
                best = j;
            }
        }
        if (bv > 0.0f) {
            lat[o] = best;
            val[o++] = bv;
        }
    }
    return o;
}

/* Fills xbuf with the tile's encoder input; returns the pointer sgemm reads. */
static const float *prep_tile(ldb_dict *d, const void *x, int dtype, uint64_t r0, uint32_t m)
{
    const ldb_dict_info *in = &d->info;
    size_t es = dtype == LDB_F32 ? 4 : 2, din = in->d_in;
    const uint8_t *src = (const uint8_t *)x + r0 * din * es;
    if (dtype == LDB_F32 && !in->sub_b_dec && d->norm == NORM_NONE &&
        ((uintptr_t)src & 3) == 0)
        return (const float *)(const void *)src;
    ldb_to_f32(d->xbuf, src, dtype, (size_t)m * din);
    for (uint32_t r = 0; r < m; r++) {
        float *row = d->xbuf + (size_t)r * din;
        if (d->norm != NORM_NONE) {
            float mul, sub, undo;
            ldb_dict_norm_stats(d, row, &mul, &sub, &undo);
            for (size_t i = 0; i < din; i++)
                row[i] = (row[i] - sub) * mul;
        }
        if (in->sub_b_dec)
            for (size_t i = 0; i < din; i++)
                row[i] -= d->b_dec_in[i];
    }
    return d->xbuf;
}

int ldb_dict_encode(ldb_dict *d, const void *x, int dtype, uint64_t n_rows, ldb_codes_fn fn,
                    void *ctx)
{
    const ldb_dict_info *in = &d->info;
    cand *heap = NULL;
    int rc = LDB_OK;
    if (dtype != LDB_F32 && dtype != LDB_F16 && dtype != LDB_BF16)
        return ldb_err_set(&d->err, LDB_EINVAL, "unknown activation dtype %d", dtype);
    if (ldb_blas_load() != LDB_OK)
        return ldb_err_set(&d->err, LDB_EBLAS, "cannot load OpenBLAS (libopenblas.so.0); "
                           "install libopenblas0 (make deps)");
    uint32_t T = ldb_dict_tile_rows(d);
    if ((rc = ensure_ws(d, T)))
        return rc;
    if (d->arch == ARCH_TOPK && !(heap = malloc((size_t)in->k * sizeof *heap)))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    for (uint64_t r0 = 0; r0 < n_rows; r0 += T) {
        uint32_t m = (uint32_t)(n_rows - r0 < T ? n_rows - r0 : T);
        const float *xa = prep_tile(d, x, dtype, r0, m);
        if (d->enc_trans)
            ldb_blas_sgemm_rm(0, 1, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                              (int)in->d_in, d->W_enc, (int)in->d_in, 0.0f, d->cbuf,
                              (int)in->d_sae);
        else
            ldb_blas_sgemm_rm(0, 0, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                              (int)in->d_in, d->W_enc, (int)in->d_sae, 0.0f, d->cbuf,
                              (int)in->d_sae);
        size_t used = 0;
        d->start[0] = 0;
        for (uint32_t r = 0; r < m; r++) {
            float *c = d->cbuf + (size_t)r * in->d_sae;
            size_t bound = d->arch == ARCH_TOPK || d->arch == ARCH_GROUPMAX ? in->k : in->d_sae;
            if ((rc = ensure_cap(d, used + bound)))
                goto out;
            uint32_t *lat = d->lat + used;
            float *val = d->val + used;
            switch (d->arch) {
            case ARCH_GATED: used += fire_gated(d, c, lat, val); break;
            case ARCH_TOPK: used += fire_topk(d, c, heap, lat, val); break;
            case ARCH_GROUPMAX: used += fire_groupmax(d, c, lat, val); break;
            default: used += fire_thresh(c, d->b_enc, d->thr, in->d_sae, lat, val); break;
            }
            d->start[r + 1] = used;
        }
        ldb_codes tile = {r0, m, d->start, d->lat, d->val};
        if ((rc = fn(ctx, &tile)))
            goto out;
    }
out:
    free(heap);
    return rc;
}
