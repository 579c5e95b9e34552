/* screen.c — the exact encoder's screen and refinement (screen.h). The bound, for
 * the screen c~ of a row x (its outlier dimensions O in f32, the rest x_R through
 * the GEMM) against the reference c = refdot(x, w_j), n = d_in, m = n + 10,
 * g_m = m 2^-24 / (1 - m 2^-24):
 *   |c~_j - c_j| <= [(2^-7 + 2^-16) |x_R| + g_m ((1 + 2^-8)^2 + 2) |x|] |w_j|
 *                   + 2^-126 (2n + |x|_1 + |w_j|_1)          (bf16 screen)
 *   |c~_j - c_j| <= 3 g_m |x| |w_j| + 2^-126 (2n + |x|_1 + |w_j|_1)   (f32 screen)
 * (|.| the 2-norm): bf16 rounding of both factors (2^-8 each), the screen's and the
 * reference's f32 sums, flushed denormals, and Cauchy-Schwarz; the derivation and why
 * a latent left out cannot fire are in docs/ARCHITECTURE.md, "Exact encode". Every
 * bound here is evaluated so that rounding can only widen it: the per-dictionary
 * vectors are rounded up (tb down), the row factors are inflated by 2^-10, and
 * top-k's bounds are widened by 2^-22 of their size in double. */
#include "screen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activate.h"
#include "refdot.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define HUGE_ROW 0x1p100 /* a bound this large screens nothing: refine every latent */

/* v rounded up (down) to f32: the least (greatest) float >= v (<= v). */
static float up(double v)
{
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

static float down(double v)
{
    float f = (float)v;
    return (double)f > v ? nextafterf(f, -INFINITY) : f;
}

/* W_enc [d_in][d_sae] transposed into rows, a 64 x 64 block at a time. */
static void transpose(const float *W, uint32_t din, uint32_t dsae, float *Wt)
{
    for (uint32_t i0 = 0; i0 < din; i0 += 64)
        for (uint32_t j0 = 0; j0 < dsae; j0 += 64)
            for (uint32_t i = i0; i < i0 + 64 && i < din; i++)
                for (uint32_t j = j0; j < j0 + 64 && j < dsae; j++)
                    Wt[(size_t)j * din + i] = W[(size_t)i * dsae + j];
}

void ldb_refine_free(ldb_refine *rf)
{
    if (!rf)
        return;
    free(rf->Wt_owned);
    free(rf->nw);
    free(rf->g);
    free(rf->tb);
    free(rf);
}

static ldb_refine *make(const ldb_dict *d)
{
    uint32_t n = d->info.d_in, N = d->info.d_sae;
    ldb_refine *rf = calloc(1, sizeof *rf);
    if (!rf)
        return NULL;
    int thresh = d->arch == ARCH_JUMPRELU || d->arch == ARCH_RELU || d->arch == ARCH_GATED;
    rf->nw = malloc((size_t)N * sizeof *rf->nw);
    rf->g = malloc((size_t)N * sizeof *rf->g);
    rf->tb = thresh ? malloc((size_t)N * sizeof *rf->tb) : NULL;
    if (!rf->nw || !rf->g || (thresh && !rf->tb))
        goto nomem;
    rf->bytes = (size_t)N * 4 * (thresh ? 3 : 2);
    if (d->enc_trans) {
        rf->Wt = d->W_enc;
    } else {
        size_t sz = ((size_t)N * n * sizeof(float) + 63) / 64 * 64;
        if (!(rf->Wt_owned = aligned_alloc(64, sz)))
            goto nomem;
        transpose(d->W_enc, n, N, rf->Wt_owned);
        rf->Wt = rf->Wt_owned;
        rf->bytes += sz;
    }
    for (uint32_t j = 0; j < N; j++) {
        const float *w = rf->Wt + (size_t)j * n;
        double s2 = 0, s1 = 0;
        for (uint32_t i = 0; i < n; i++) {
            s2 += (double)w[i] * w[i];
            s1 += fabs((double)w[i]);
        }
        rf->nw[j] = up(sqrt(s2) * (1 + 0x1p-40));
        rf->g[j] = up(0x1p-126 * s1 * (1 + 0x1p-40));
        if (rf->nw[j] > rf->max_nw)
            rf->max_nw = rf->nw[j];
        if (thresh) {
            double t = d->arch == ARCH_GATED ? 0.0 : d->thr[j];
            double b = d->arch == ARCH_GATED ? d->b_gate[j] : d->b_enc[j];
            /* g folded in here, one add less per latent in the screen; t - b - g in
             * double may round, hence the step down */
            rf->tb[j] = nextafterf(down(t - b - rf->g[j]), -INFINITY);
        }
    }
    return rf;
nomem:
    ldb_refine_free(rf);
    return NULL;
}

int ldb_refine_get(ldb_dict *d, const ldb_refine **out)
{
    pthread_mutex_lock(&d->mu);
    if (!d->refine)
        d->refine = make(d);
    *out = d->refine;
    pthread_mutex_unlock(&d->mu);
    return *out ? LDB_OK : LDB_ENOMEM;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void ldb_screen_outliers(const ldb_dict *d, const float *x, uint32_t m, ldb_outliers *o)
{
    uint32_t n = d->info.d_in;
    o->n = 0;
    if (d->enc_trans || m == 0 || n < 4 * LDB_MAX_OUTLIERS)
        return;
    double *mean = calloc((size_t)n * 2, sizeof *mean), *sorted = mean + n;
    if (!mean)
        return; /* no outliers: a wider bound, the same codes */
    for (uint32_t r = 0; r < m; r++)
        for (uint32_t i = 0; i < n; i++)
            mean[i] += fabsf(x[(size_t)r * n + i]);
    memcpy(sorted, mean, (size_t)n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    double cut = 8 * sorted[n - 1 - n / 2]; /* the median (the upper one for even n) */
    while (o->n < LDB_MAX_OUTLIERS) { /* the largest left, while over the cut */
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            best = mean[i] > mean[best] ? i : best;
        if (!(mean[best] > cut))
            break;
        mean[best] = -1;
        o->dim[o->n] = best;
        o->w[o->n++] = d->W_enc + (size_t)best * d->info.d_sae;
    }
    free(mean);
}

void ldb_screen_rowbound(const ldb_refine *rf, int screen, const float *x, uint32_t n,
                         const ldb_outliers *o, ldb_rowbound *rb)
{
    /* gn: gamma of the n products of the GEMM, up to LDB_MAX_OUTLIERS more, and slack */
    double s2 = 0, s1 = 0, so = 0, u = 0x1p-24, nt = n + LDB_MAX_OUTLIERS + 2,
           gn = nt * u / (1 - nt * u);
    for (uint32_t i = 0; i < n; i++) {
        s2 += (double)x[i] * x[i];
        s1 += fabs((double)x[i]);
    }
    for (uint32_t q = 0; q < o->n; q++)
        so += (double)x[o->dim[q]] * x[o->dim[q]];
    /* ||x_R||^2 = s2 - so, each sum in double off by at most 2^-40 s2 (n < 2^13) */
    double rest = (s2 - so > 0 ? s2 - so : 0) + 0x1p-39 * s2, alpha;
    /* the bf16 rounding of x_R and W (2^-7 + 2^-16), the screen's and the outliers' f32
     * sums and their one add, and the reference's sum (ARCHITECTURE.md) */
    if (screen == LDB_SCREEN_BF16)
        alpha = (0x1p-7 + 0x1p-16) * sqrt(rest) + gn * ((1 + 0x1p-8) * (1 + 0x1p-8) + 2) * sqrt(s2);
    else
        alpha = gn * 3 * sqrt(s2);
    alpha *= 1 + 0x1p-10;
    double beta = 0x1p-126 * (2.0 * n + 2 + s1) * (1 + 0x1p-10);
    rb->all = !(alpha * rf->max_nw < HUGE_ROW) || !(beta < HUGE_ROW);
    rb->alpha = rb->all ? 0 : up(alpha);
    rb->beta = rb->all ? 0 : up(beta);
}

size_t ldb_screen_scratch(const ldb_dict *d)
{
    size_t k = d->arch == ARCH_TOPK ? d->info.k : 0;
    return k * sizeof(double) + ldb_activate_scratch(d);
}

/* Threshold functions: latent j0 + i is a candidate iff c~ + alpha nw + beta >= tb
 * (tb has g in it; a NaN c~ passes the unordered compare), or c~ < -2^100. The
 * loop is made once per outlier count no (0 .. LDB_MAX_OUTLIERS, a constant where
 * select_thresh calls it), so the outliers' values sit in registers and their adds
 * unroll: 1.3% faster exact encode at 640 -> 16384 with four outliers (bench_encode,
 * seven runs each). */
static inline __attribute__((always_inline)) uint32_t
thresh_span(const ldb_refine *rf, const ldb_rowbound *rb, uint32_t no, const float *xo,
            const float *const *wo, const float *c, uint32_t j0, uint32_t span, uint32_t *ids)
{
    const float *nw = rf->nw + j0, *tb = rf->tb + j0;
    const float a = rb->alpha, be = rb->beta, lim = -0x1p100f;
    uint32_t m = 0, j = 0;
#if defined(__AVX512F__)
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(be), vl = _mm512_set1_ps(lim);
    __m512 vx[LDB_MAX_OUTLIERS];
    for (uint32_t q = 0; q < no; q++)
        vx[q] = _mm512_set1_ps(xo[q]);
    __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)j0),
                                   _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                     13, 14, 15));
    for (; j + 16 <= span; j += 16) {
        _mm_prefetch((const char *)(c + j + 512), _MM_HINT_T0);
        __m512 cc = _mm512_loadu_ps(c + j);
        /* fused here: the screen's bound covers any rounding of its sums (refdot.c, the
         * reference, is where fusing is not allowed) */
#pragma GCC unroll 8
        for (uint32_t q = 0; q < no; q++)
            cc = _mm512_fmadd_ps(vx[q], _mm512_loadu_ps(wo[q] + j), cc);
        __m512 bnd = _mm512_fmadd_ps(va, _mm512_loadu_ps(nw + j), vb);
        __mmask16 k = _mm512_cmp_ps_mask(_mm512_add_ps(cc, bnd), _mm512_loadu_ps(tb + j),
                                         _CMP_NLT_UQ) |
                      _mm512_cmp_ps_mask(cc, vl, _CMP_LT_OQ);
        if (k) {
            _mm512_mask_compressstoreu_epi32(ids + m, k, idx);
            m += (uint32_t)__builtin_popcount(k);
        }
        idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16));
    }
#endif
    for (; j < span; j++) {
        float cc = c[j];
        for (uint32_t q = 0; q < no; q++)
            cc = cc + xo[q] * wo[q][j];
        if (!(cc + (a * nw[j] + be) < tb[j]) || cc < lim)
            ids[m++] = j0 + j;
    }
    return m;
}

static uint32_t select_thresh(const ldb_refine *rf, const ldb_rowbound *rb,
                              const ldb_outliers *o, const float *x, const float *c, uint32_t j0,
                              uint32_t span, uint32_t *ids)
{
    float xo[LDB_MAX_OUTLIERS];
    const float *wo[LDB_MAX_OUTLIERS];
    for (uint32_t q = 0; q < o->n; q++) {
        xo[q] = x[o->dim[q]];
        wo[q] = o->w[q] + j0;
    }
    _Static_assert(LDB_MAX_OUTLIERS == 8, "one case per outlier count");
    switch (o->n) {
#define N(k) case k: return thresh_span(rf, rb, k, xo, wo, c, j0, span, ids);
    N(0) N(1) N(2) N(3) N(4) N(5) N(6) N(7) N(8)
#undef N
    }
    return 0; /* o->n <= LDB_MAX_OUTLIERS */
}

/* Top-k and group max: latent j's reference value (c + b) * s lies in [*lo, *hi]. */
static void value_range(const ldb_dict *d, const ldb_refine *rf, const ldb_rowbound *rb,
                        const float *c, uint32_t j, double *lo, double *hi)
{
    double cc = c[j];
    if (!isfinite(cc)) {
        *lo = -INFINITY;
        *hi = INFINITY;
        return;
    }
    double E = (double)rb->alpha * rf->nw[j] + rb->beta + rf->g[j];
    double p = cc + d->b_enc[j], w = 0x1p-22 * (fabs(p) + E) + 0x1p-140;
    double l = p - E - w, h = p + E + w;
    if (d->arch == ARCH_TOPK && d->dec_norm) {
        double s = d->dec_norm[j];
        l *= s;
        h *= s;
        l -= 0x1p-22 * fabs(l) + 0x1p-140;
        h += 0x1p-22 * fabs(h) + 0x1p-140;
    }
    *lo = l;
    *hi = h;
}

static void sift(double *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, s = i;
        if (l < n && h[l] < h[s])
            s = l;
        if (l + 1 < n && h[l + 1] < h[s])
            s = l + 1;
        if (s == i)
            return;
        double t = h[i];
        h[i] = h[s];
        h[s] = t;
        i = s;
    }
}

/* Top-k: L = the k-th largest lower bound (a min-heap of k in heap); candidates
 * have hi >= L and hi > 0. */
static uint32_t select_topk(const ldb_dict *d, const ldb_refine *rf, const ldb_rowbound *rb,
                            const float *c, double *heap, uint32_t *ids)
{
    uint32_t N = d->info.d_sae, k = d->info.k, h = 0, m = 0;
    double lo, hi;
    for (uint32_t j = 0; j < N; j++) {
        value_range(d, rf, rb, c, j, &lo, &hi);
        if (h < k) {
            heap[h++] = lo;
            if (h == k)
                for (uint32_t q = k / 2; q-- > 0;)
                    sift(heap, k, q);
        } else if (lo > heap[0]) {
            heap[0] = lo;
            sift(heap, k, 0);
        }
    }
    double L = h < k ? -INFINITY : heap[0];
    for (uint32_t j = 0; j < N; j++) {
        value_range(d, rf, rb, c, j, &lo, &hi);
        if (hi >= L && hi > 0)
            ids[m++] = j;
    }
    return m;
}

/* Group max: within each group, candidates have hi >= the group's largest lo and
 * hi > 0. */
static uint32_t select_groupmax(const ldb_dict *d, const ldb_refine *rf, const ldb_rowbound *rb,
                                const float *c, uint32_t *ids)
{
    uint32_t k = d->info.k, g = d->info.d_sae / k, m = 0;
    double lo, hi;
    for (uint32_t q = 0; q < k; q++) {
        double L = -INFINITY;
        for (uint32_t j = q * g; j < q * g + g; j++) {
            value_range(d, rf, rb, c, j, &lo, &hi);
            L = lo > L ? lo : L;
        }
        for (uint32_t j = q * g; j < q * g + g; j++) {
            value_range(d, rf, rb, c, j, &lo, &hi);
            if (hi >= L && hi > 0)
                ids[m++] = j;
        }
    }
    return m;
}

uint32_t ldb_screen_select(const ldb_dict *d, const ldb_refine *rf, const ldb_rowbound *rb,
                           const ldb_outliers *o, const float *x, float *c, uint32_t j0,
                           uint32_t span, void *scratch, uint32_t *ids)
{
    uint32_t m;
    if (rb->all) {
        for (m = 0; m < span; m++)
            ids[m] = j0 + m;
        return m;
    }
    if (rf->tb)
        return select_thresh(rf, rb, o, x, c, j0, span, ids);
    for (uint32_t q = 0; q < o->n; q++) { /* the outliers' share, then the bounds */
        float xq = x[o->dim[q]];
        for (uint32_t j = 0; j < span; j++)
            c[j] = c[j] + xq * o->w[q][j0 + j];
    }
    if (d->arch == ARCH_TOPK)
        return select_topk(d, rf, rb, c, scratch, ids);
    return select_groupmax(d, rf, rb, c, ids);
}

void ldb_screen_refine(const ldb_refine *rf, uint32_t din, const float *x, uint32_t m,
                       const uint64_t *start, const uint32_t *ids, uint32_t j0, uint32_t span,
                       const ldb_refine_ws *ws, float *out)
{
    uint32_t np = (uint32_t)start[m], *cnt = ws->count;
    /* counting sort of the pairs by latent: perm lists them latent by latent */
    memset(cnt, 0, ((size_t)span + 1) * sizeof *cnt);
    for (uint32_t r = 0; r < m; r++)
        for (uint64_t p = start[r]; p < start[r + 1]; p++) {
            ws->rowof[p] = r;
            cnt[ids[p] - j0 + 1]++;
        }
    for (uint32_t j = 0; j < span; j++)
        cnt[j + 1] += cnt[j];
    for (uint32_t p = 0; p < np; p++)
        ws->perm[cnt[ids[p] - j0]++] = p;
    /* then four pairs at a time in that order, whatever their latents: consecutive
     * pairs mostly share one (its encoder row read once), and four independent sums
     * keep the vector unit busy when they do not */
    const uint32_t *pm = ws->perm;
    uint32_t a = 0;
    for (; a + 4 <= np; a += 4) {
        const float *xs[4], *wsv[4];
        for (int q = 0; q < 4; q++) {
            uint32_t p = pm[a + q];
            xs[q] = x + (size_t)ws->rowof[p] * din;
            wsv[q] = rf->Wt + (size_t)ids[p] * din;
        }
        float v[4];
        ldb_refdot4(xs, wsv, din, v);
        for (int q = 0; q < 4; q++)
            out[pm[a + q]] = v[q];
    }
    for (; a < np; a++) {
        uint32_t p = pm[a];
        out[p] = ldb_refdot(x + (size_t)ws->rowof[p] * din, rf->Wt + (size_t)ids[p] * din, din);
    }
}
