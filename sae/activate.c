/* activate.c — the activation functions: one row of pre-activations (x'.W_enc,
 * before b_enc) into its sparse codes, ascending by latent. Pure functions of the
 * dictionary and the row; the caller owns every buffer (docs/ARCHITECTURE.md,
 * "Activation semantics"). */
#include "activate.h"

#include <math.h>
#include <stdlib.h>

#include "../common/half.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* The first j < n whose c[j] + b[j] is NaN or Inf (b NULL: c[j]), or n. */
static uint32_t first_nonfinite(const float *c, const float *b, uint32_t n)
{
    if (!b) {
        uint64_t j = ldb_find_nonfinite(c, LDB_F32, n);
        return j == UINT64_MAX ? n : (uint32_t)j;
    }
    uint32_t j = 0;
    while (j < n && isfinite(c[j] + b[j]))
        j++;
    return j;
}

/* jumprelu and relu: fire iff pre = c + b > t (t = max(threshold, 0)). Most
 * vectors have no firing lane, so the loop is a compare and a mask test; the sum
 * is the same IEEE add in every path, so all paths give identical codes. pre - pre
 * is +0 (all bits clear) for a finite pre and NaN otherwise: OR-ing those bits is
 * how the loop notices an overflowed pre-activation without a branch (*bad = its
 * latent, else n); the data is in registers already, so it costs no memory traffic. */
static size_t fire_thresh(const float *restrict c, const float *restrict b,
                          const float *restrict t, uint32_t n, uint32_t *restrict lat,
                          float *restrict val, uint32_t *bad)
{
    size_t o = 0;
    uint32_t j = 0, nf = 0;
#if defined(__AVX512F__)
    __m512i acc = _mm512_setzero_si512();
    for (; j + 16 <= n; j += 16) {
        /* the tile's pre-activations come from memory: ask 2 KB ahead (2 Zen 5 cores,
         * 65,536 tokens, bf16 encode: 41.0-42.2k against 40.6-41.4k tokens/s in three
         * alternating pairs; prefetch past the row's end is harmless) */
        _mm_prefetch((const char *)(c + j + 512), _MM_HINT_T0);
        __m512 p = _mm512_add_ps(_mm512_loadu_ps(c + j), _mm512_loadu_ps(b + j));
        acc = _mm512_or_si512(acc, _mm512_castps_si512(_mm512_sub_ps(p, p)));
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
    nf = _mm512_test_epi32_mask(acc, acc) != 0;
#elif defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) {
        __m256 p = _mm256_add_ps(_mm256_loadu_ps(c + j), _mm256_loadu_ps(b + j));
        acc = _mm256_or_ps(acc, _mm256_sub_ps(p, p));
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
    nf = !_mm256_testz_si256(_mm256_castps_si256(acc), _mm256_castps_si256(acc));
#endif
    for (; j < n; j++) {
        float p = c[j] + b[j];
        nf |= !isfinite(p);
        if (p > t[j]) {
            lat[o] = j;
            val[o++] = p;
        }
    }
    *bad = nf ? first_nonfinite(c, b, n) : n;
    return o;
}

/* The loops below run over a whole row (ids NULL: entry i is latent i, m = d_sae)
 * or over a list of latents (entry i is latent ids[i], ascending): the exact
 * encoder's refined candidates. */
#define ID(i) (ids ? ids[i] : (uint32_t)(i))

/* jumprelu and relu over a list: fire iff c + b > t; *bad as fire_thresh. */
static size_t fire_thresh_list(const ldb_dict *d, const float *restrict c, const uint32_t *ids,
                               uint32_t m, uint32_t *restrict lat, float *restrict val,
                               uint32_t *bad)
{
    size_t o = 0;
    *bad = UINT32_MAX;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t j = ids[i];
        float p = c[i] + d->b_enc[j];
        if (!isfinite(p)) {
            *bad = i;
            return o;
        }
        if (p > d->thr[j]) {
            lat[o] = j;
            val[o++] = p;
        }
    }
    return o;
}

/* gated: fires iff c + b_gate > 0, value relu(c * exp(r_mag) + b_mag). */
static size_t fire_gated(const ldb_dict *d, const float *restrict c, const uint32_t *ids,
                         uint32_t m, uint32_t *restrict lat, float *restrict val)
{
    const float *bg = d->b_gate, *bm = d->b_mag, *er = d->exp_r_mag;
    size_t o = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t j = ID(i);
        if (c[i] + bg[j] > 0.0f) {
            float mag = c[i] * er[j] + bm[j];
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
static size_t fire_topk(const ldb_dict *d, const float *restrict c, const uint32_t *ids,
                        uint32_t m, void *heap_mem, uint32_t *restrict lat, float *restrict val)
{
    const float *b = d->b_enc, *s = d->dec_norm;
    cand *heap = heap_mem;
    uint32_t k = d->info.k, h = 0;
    float floor = 0.0f; /* a candidate must beat this */
    for (uint32_t i = 0; i < m; i++) {
        uint32_t j = ID(i);
        float p = c[i] + b[j];
        if (s)
            p *= s[j];
        if (!(p > floor))
            continue;
        if (h < k) {
            heap[h].v = p;
            heap[h++].j = j;
            if (h == k) {
                for (uint32_t q = k / 2; q-- > 0;)
                    sift_down(heap, k, q);
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
    for (uint32_t q = 0; q < h; q++) {
        lat[q] = heap[q].j;
        val[q] = heap[q].v;
    }
    return h;
}

/* groupmax (sparsify): relu, then the max of each of k contiguous groups, at its
 * first maximal latent; a group whose max is 0 does not fire (nor do latents past
 * the k groups). */
static size_t fire_groupmax(const ldb_dict *d, const float *restrict c, const uint32_t *ids,
                            uint32_t m, uint32_t *restrict lat, float *restrict val)
{
    const float *b = d->b_enc;
    uint32_t k = d->info.k, g = d->info.d_sae / k, cur = UINT32_MAX, best = 0;
    float bv = 0.0f;
    size_t o = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t j = ID(i), q = j / g;
        if (q >= k)
            break;
        if (q != cur) {
            if (bv > 0.0f) {
                lat[o] = best;
                val[o++] = bv;
            }
            cur = q;
            bv = 0.0f;
        }
        float p = c[i] + b[j];
        if (p > bv) {
            bv = p;
            best = j;
        }
    }
    if (bv > 0.0f) {
        lat[o] = best;
        val[o++] = bv;
    }
    return o;
}

size_t ldb_activate_bound(const ldb_dict *d)
{
    return d->arch == ARCH_TOPK || d->arch == ARCH_GROUPMAX ? d->info.k : d->info.d_sae;
}

size_t ldb_activate_scratch(const ldb_dict *d)
{
    return d->arch == ARCH_TOPK ? (size_t)d->info.k * sizeof(cand) : 0;
}

int ldb_activate_span(const ldb_dict *d, float *c, uint32_t j0, uint32_t span, uint32_t *lat,
                      float *val, size_t *n, uint32_t *bad, float *bad_val)
{
    *n = fire_thresh(c, d->b_enc + j0, d->thr + j0, span, lat, val, bad);
    for (size_t i = 0; i < *n; i++)
        lat[i] += j0;
    if (*bad < span) {
        *bad_val = c[*bad] + d->b_enc[j0 + *bad];
        *bad += j0;
        return LDB_EBADVALUE;
    }
    *bad = d->info.d_sae;
    return LDB_OK;
}

int ldb_activate_row(const ldb_dict *d, float *c, void *scratch, uint32_t *lat, float *val,
                     size_t *n, uint32_t *bad, float *bad_val)
{
    uint32_t ds = d->info.d_sae;
    *n = 0;
    *bad = ds;
    if (d->arch == ARCH_JUMPRELU || d->arch == ARCH_RELU) {
        *n = fire_thresh(c, d->b_enc, d->thr, ds, lat, val, bad);
        if (*bad < ds) {
            *bad_val = c[*bad] + d->b_enc[*bad];
            return LDB_EBADVALUE;
        }
        return LDB_OK;
    }
    if ((*bad = first_nonfinite(c, NULL, ds)) < ds) {
        *bad_val = c[*bad]; /* scalar loops below: a scan of the row beforehand */
        return LDB_EBADVALUE;
    }
    switch (d->arch) {
    case ARCH_GATED: *n = fire_gated(d, c, NULL, ds, lat, val); break;
    case ARCH_TOPK: *n = fire_topk(d, c, NULL, ds, scratch, lat, val); break;
    case ARCH_GROUPMAX: *n = fire_groupmax(d, c, NULL, ds, lat, val); break;
    default: break;
    }
    return LDB_OK;
}

int ldb_activate_list(const ldb_dict *d, const float *c, const uint32_t *ids, uint32_t m,
                      void *scratch, uint32_t *lat, float *val, size_t *n, uint32_t *bad,
                      float *bad_val)
{
    uint32_t i;
    *n = 0;
    *bad = d->info.d_sae;
    if (d->arch == ARCH_JUMPRELU || d->arch == ARCH_RELU) {
        *n = fire_thresh_list(d, c, ids, m, lat, val, &i);
        if (i == UINT32_MAX)
            return LDB_OK;
        *bad = ids[i];
        *bad_val = c[i] + d->b_enc[ids[i]];
        return LDB_EBADVALUE;
    }
    if ((i = first_nonfinite(c, NULL, m)) < m) {
        *bad = ids[i];
        *bad_val = c[i];
        return LDB_EBADVALUE;
    }
    switch (d->arch) {
    case ARCH_GATED: *n = fire_gated(d, c, ids, m, lat, val); break;
    case ARCH_TOPK: *n = fire_topk(d, c, ids, m, scratch, lat, val); break;
    case ARCH_GROUPMAX: *n = fire_groupmax(d, c, ids, m, lat, val); break;
    default: break;
    }
    return LDB_OK;
}
