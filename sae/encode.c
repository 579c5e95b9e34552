/* encode.c — the encoder pipeline: per tile of rows, prepare the input (convert,
 * normalise, subtract b_dec), one sgemm into the tile's pre-activations, then the
 * activation function turns each row into sorted sparse (latent, value) pairs.
 * Invariant: only one tile of dense pre-activations exists at any time. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "bf16mm.h"
#include "blas.h"
#include "dict_impl.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#define TILE_BUDGET_BYTES ((size_t)64 << 20)
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
    ldb_bf16mm_free(d->bf16); /* made for the old tile size; remade on the next encode */
    d->bf16 = NULL;
    return LDB_OK;
}

/* Makes the bf16 GEMM for the current tile size. */
static int ensure_bf16(ldb_dict *d)
{
    if (d->bf16)
        return LDB_OK;
    char msg[200];
    const ldb_dict_info *in = &d->info;
    int rc = ldb_bf16mm_new(in->d_in, in->d_sae, d->W_enc, d->enc_trans, ldb_dict_tile_rows(d),
                            &d->bf16, msg, sizeof msg);
    return rc ? ldb_err_set(&d->err, rc, "--precision bf16: %s", msg) : LDB_OK;
}

int ldb_dict_set_precision(ldb_dict *d, int precision)
{
    if (precision != LDB_PRECISION_F32 && precision != LDB_PRECISION_BF16)
        return ldb_err_set(&d->err, LDB_EINVAL, "unknown precision %d", precision);
    d->precision = precision;
    if (precision == LDB_PRECISION_F32) {
        ldb_bf16mm_free(d->bf16);
        d->bf16 = NULL;
        return LDB_OK;
    }
    int rc = ensure_bf16(d);
    if (rc)
        d->precision = LDB_PRECISION_F32;
    return rc;
}

const char *ldb_dict_gemm_name(const ldb_dict *d)
{
    if (d->precision != LDB_PRECISION_BF16)
        return "openblas f32";
    ldb_dict *w = (ldb_dict *)d; /* a cache of the name, not a change of the dictionary */
    snprintf(w->gemm_name, sizeof w->gemm_name, "onednn bf16 (%s)", ldb_bf16mm_impl(d->bf16));
    return w->gemm_name;
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

/* Grows a (lat, val) pair to hold need codes; 0 or -1 (out of memory). */
static int grow(uint32_t **lat, float **val, size_t *capp, size_t need)
{
    if (need <= *capp)
        return 0;
    size_t cap = *capp ? *capp : 4096;
    while (cap < need)
        cap *= 2;
    uint32_t *l = realloc(*lat, cap * sizeof *l);
    if (l)
        *lat = l;
    float *v = realloc(*val, cap * sizeof *v);
    if (v)
        *val = v;
    if (!l || !v)
        return -1;
    *capp = cap;
    return 0;
}

/* jumprelu and relu: fire iff pre = c + b > t (t = max(threshold, 0)). Most
 * vectors have no firing lane, so the loop is a compare and a mask test; the sum
 * is the same IEEE add in every path, so all paths give identical codes. */
static size_t fire_thresh(const float *restrict c, const float *restrict b,
                          const float *restrict t, uint32_t n, uint32_t *restrict lat,
                          float *restrict val)
{
    size_t o = 0;
    uint32_t j = 0;
#if defined(__AVX512F__)
    for (; j + 16 <= n; j += 16) {
        __m512 p = _mm512_add_ps(_mm512_loadu_ps(c + j), _mm512_loadu_ps(b + j));
        unsigned m = _mm512_cmp_ps_mask(p, _mm512_loadu_ps(t + j), _CMP_GT_OQ);
        if (m) {
            float tmp[16];
            _mm512_storeu_ps(tmp, p);
            while (m) {
                unsigned u = (unsigned)__builtin_ctz(m);
                m &= m - 1;
                lat[o] = j + u;
                val[o++] = tmp[u];
            }
        }
    }
#elif defined(__AVX2__)
    for (; j + 8 <= n; j += 8) {
        __m256 p = _mm256_add_ps(_mm256_loadu_ps(c + j), _mm256_loadu_ps(b + j));
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(p, _mm256_loadu_ps(t + j), _CMP_GT_OQ));
        if (m) {
            float tmp[8];
            _mm256_storeu_ps(tmp, p);
            while (m) {
                unsigned u = (unsigned)__builtin_ctz(m);
                m &= m - 1;
                lat[o] = j + u;
                val[o++] = tmp[u];
            }
        }
    }
#endif
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
static size_t fire_topk(const ldb_dict *d, float *restrict c, void *heap_mem, uint32_t *restrict lat,
                        float *restrict val)
{
    const float *b = d->b_enc, *s = d->dec_norm;
    cand *heap = heap_mem;
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

typedef struct part_job {
    ldb_dict *d;
    struct ldb_part *part;
    uint32_t r0, r1;           /* rows of the tile */
    uint64_t *count;           /* count[r] = codes of row r (into d->start + 1) */
} part_job;

/* Runs the activation function over rows [r0, r1) of the tile into one part. */
static void *run_part(void *arg)
{
    part_job *j = arg;
    ldb_dict *d = j->d;
    struct ldb_part *p = j->part;
    const ldb_dict_info *in = &d->info;
    size_t bound = d->arch == ARCH_TOPK || d->arch == ARCH_GROUPMAX ? in->k : in->d_sae;
    p->used = 0;
    p->rc = 0;
    for (uint32_t r = j->r0; r < j->r1; r++) {
        float *c = d->cbuf + (size_t)r * in->d_sae;
        if (grow(&p->lat, &p->val, &p->cap, p->used + bound)) {
            p->rc = -1;
            return NULL;
        }
        uint32_t *lat = p->lat + p->used;
        float *val = p->val + p->used;
        size_t n;
        switch (d->arch) {
        case ARCH_GATED: n = fire_gated(d, c, lat, val); break;
        case ARCH_TOPK: n = fire_topk(d, c, p->heap, lat, val); break;
        case ARCH_GROUPMAX: n = fire_groupmax(d, c, lat, val); break;
        default: n = fire_thresh(c, d->b_enc, d->thr, in->d_sae, lat, val); break;
        }
        p->used += n;
        j->count[r] = n;
    }
    return NULL;
}

/* The activation function over m rows of cbuf, split across threads (OpenBLAS's
 * threads are idle between GEMMs), then the parts concatenated in row order. */
static int activate_tile(ldb_dict *d, uint32_t m, int nparts)
{
    part_job jobs[LDB_PARTS];
    pthread_t th[LDB_PARTS];
    int started[LDB_PARTS] = {0};
    if (nparts > (int)m)
        nparts = (int)m;
    if (nparts < 1)
        nparts = 1;
    for (int i = 0; i < nparts; i++) {
        jobs[i] = (part_job){d, &d->parts[i], (uint32_t)((uint64_t)m * i / nparts),
                             (uint32_t)((uint64_t)m * (i + 1) / nparts), d->start + 1};
        if (i > 0)
            started[i] = pthread_create(&th[i], NULL, run_part, &jobs[i]) == 0;
    }
    run_part(&jobs[0]);
    for (int i = 1; i < nparts; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_part(&jobs[i]); /* no thread to be had: do it here */
    }
    size_t total = 0;
    for (int i = 0; i < nparts; i++) {
        if (d->parts[i].rc)
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory for sparse codes");
        total += d->parts[i].used;
    }
    if (grow(&d->lat, &d->val, &d->cap, total))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory for %zu codes", total);
    size_t o = 0;
    for (int i = 0; i < nparts; i++) {
        if (!d->parts[i].used)
            continue; /* its buffers may still be NULL */
        memcpy(d->lat + o, d->parts[i].lat, d->parts[i].used * sizeof *d->lat);
        memcpy(d->val + o, d->parts[i].val, d->parts[i].used * sizeof *d->val);
        o += d->parts[i].used;
    }
    d->start[0] = 0;
    for (uint32_t r = 0; r < m; r++)
        d->start[r + 1] += d->start[r];
    return LDB_OK;
}

int ldb_dict_encode(ldb_dict *d, const void *x, int dtype, uint64_t n_rows, ldb_codes_fn fn,
                    void *ctx)
{
    const ldb_dict_info *in = &d->info;
    int rc = LDB_OK;
    if (dtype != LDB_F32 && dtype != LDB_F16 && dtype != LDB_BF16)
        return ldb_err_set(&d->err, LDB_EINVAL, "unknown activation dtype %d", dtype);
    if (ldb_blas_load() != LDB_OK)
        return ldb_err_set(&d->err, LDB_EBLAS, "cannot load OpenBLAS (libopenblas.so.0); "
                           "install libopenblas0 (make deps)");
    uint32_t T = ldb_dict_tile_rows(d);
    if ((rc = ensure_ws(d, T)))
        return rc;
    int nparts = ldb_blas_threads();
    if (nparts > LDB_PARTS)
        nparts = LDB_PARTS;
    if (nparts < 1)
        nparts = 1;
    for (int i = 0; d->arch == ARCH_TOPK && i < nparts; i++)
        if (!d->parts[i].heap && !(d->parts[i].heap = malloc((size_t)in->k * sizeof(cand))))
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    for (uint64_t r0 = 0; r0 < n_rows; r0 += T) {
        uint32_t m = (uint32_t)(n_rows - r0 < T ? n_rows - r0 : T);
        const float *xa = prep_tile(d, x, dtype, r0, m);
        if (d->precision == LDB_PRECISION_BF16) {
            char msg[200];
            if ((rc = ensure_bf16(d)))
                return rc;
            if ((rc = ldb_bf16mm_run(d->bf16, xa, m, d->cbuf, msg, sizeof msg)))
                return ldb_err_set(&d->err, rc, "%s", msg);
        } else if (d->enc_trans)
            ldb_blas_sgemm_rm(0, 1, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                              (int)in->d_in, d->W_enc, (int)in->d_in, 0.0f, d->cbuf,
                              (int)in->d_sae);
        else
            ldb_blas_sgemm_rm(0, 0, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                              (int)in->d_in, d->W_enc, (int)in->d_sae, 0.0f, d->cbuf,
                              (int)in->d_sae);
        if ((rc = activate_tile(d, m, nparts)))
            return rc;
        ldb_codes tile = {r0, m, d->start, d->lat, d->val};
        if ((rc = fn(ctx, &tile)))
            return rc;
    }
    return LDB_OK;
}
