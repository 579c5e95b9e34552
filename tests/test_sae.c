/* test_sae.c — every dictionary format and architecture, encoded by the library
 * and compared code by code with the independent dense reference (ref_encoder.c,
 * double precision, no BLAS), at several tile sizes; then decode likewise; then
 * encoders sharing one dictionary from several threads (issue 21).
 * usage: test_sae FIXTURES_DIR (written by tests/fixtures/gen_fixtures.py) */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "../common/mfile.h"
#include "../common/npy.h"
#include "../sae/bf16mm.h"
#include "../sae/refdot.h"
#include "../sae/screen.h"
#include "check.h"
#include "latentdb.h"
#include "ref_encoder.h"

/* Values: float32 accumulation over d_in terms of O(1) size leaves ~1e-6 absolute
 * error whatever the size of the result, so the 1e-4 relative bound gets an
 * absolute floor of 1e-4 x 0.05. Flips (fires in one, not the other) are allowed
 * only where the reference's deciding quantity is within 1e-5 of its boundary. */
#define REL_TOL 1e-4
#define ABS_FLOOR 0.05
#define FLIP_MARGIN 1e-5
#define BF16_FLIP_MARGIN 0.05 /* pre-activations here are O(1); bf16 moves them ~1e-2 */
#define BF16_REL_TOL 0.03

typedef struct sink {
    uint32_t d_sae, k, arch_topk, arch_groupmax;
    float *dense;              /* n x d_sae */
    int order_ok, positive_ok, bound_ok;
    uint64_t rows_seen, next_row;
} sink;

/* A sink of dense codes into got for a dictionary's encodes. */
static sink dense_sink(const ldb_dict_info *in, float *got)
{
    return (sink){in->d_sae, in->k, !strcmp(in->architecture, "topk"),
                  !strcmp(in->architecture, "groupmax"), got, 1, 1, 1, 0, 0};
}

static int collect(void *arg, const ldb_codes *t)
{
    sink *s = arg;
    if (t->row0 != s->next_row)
        s->order_ok = 0;
    s->next_row = t->row0 + t->n_rows;
    for (uint32_t r = 0; r < t->n_rows; r++) {
        float *row = s->dense + (t->row0 + r) * s->d_sae;
        uint64_t a = t->start[r], b = t->start[r + 1];
        if (s->arch_topk && b - a > s->k)
            s->bound_ok = 0;
        for (uint64_t i = a; i < b; i++) {
            if (i > a && t->latent[i] <= t->latent[i - 1])
                s->order_ok = 0;
            if (!(t->value[i] > 0))
                s->positive_ok = 0;
            if (s->arch_groupmax && i > a &&
                t->latent[i] / (s->d_sae / s->k) == t->latent[i - 1] / (s->d_sae / s->k))
                s->bound_ok = 0;
            row[t->latent[i]] = t->value[i];
        }
        s->rows_seen++;
    }
    return 0;
}

/* An encoder on d with the given precision and tile size (0: the default); NULL
 * after a failed check, or quietly with *rc LDB_EUNSUPPORTED (bf16 on this CPU). */
static ldb_encoder *encoder(ldb_dict *d, int precision, uint32_t tile, int *rc)
{
    ldb_encoder_opts o;
    ldb_encoder_opts_init(&o);
    o.precision = precision;
    o.tile_rows = tile;
    ldb_encoder *e = NULL;
    *rc = ldb_encoder_new(d, &o, &e);
    if (*rc == LDB_OK)
        return e;
    if (*rc != LDB_EUNSUPPORTED || precision == LDB_PRECISION_F32)
        CHECK(0, "encoder (precision %d, tile %u): %s", precision, tile, ldb_encoder_errmsg(e));
    else
        printf("test_sae: bf16 encode not checked here: %s\n", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    return NULL;
}

static const char *expected_arch(const ref_case *rc)
{
    switch (rc->arch) {
    case REF_ARCH_JUMPRELU: return "jumprelu";
    case REF_ARCH_RELU: return "standard";
    case REF_ARCH_GATED: return "gated";
    case REF_ARCH_GROUPMAX: return "groupmax";
    default: return "topk";
    }
}

static void compare_codes_tol(const char *name, uint32_t tile, const ref_case *rc,
                              const float *got, const double *ref, const double *margin,
                              double flip_margin, double rel_tol)
{
    uint64_t n = (uint64_t)rc->n * rc->d_sae, bad_val = 0, bad_flip = 0, ok_flip = 0, fires = 0;
    double worst = 0;
    for (uint64_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        fires += r != 0;
        if ((g != 0) != (r != 0)) {
            if (margin[i] < flip_margin)
                ok_flip++;
            else if (bad_flip++ < 3)
                fprintf(stderr, "  %s tile %u: row %llu latent %llu: got %.7g, reference %.7g "
                        "(margin %.3g)\n", name, tile, (unsigned long long)(i / rc->d_sae),
                        (unsigned long long)(i % rc->d_sae), g, r, margin[i]);
            continue;
        }
        double err = fabs(g - r), lim = rel_tol * fmax(fabs(r), ABS_FLOOR);
        if (err > lim && bad_val++ < 3)
            fprintf(stderr, "  %s tile %u: row %llu latent %llu: got %.9g, reference %.9g\n", name,
                    tile, (unsigned long long)(i / rc->d_sae), (unsigned long long)(i % rc->d_sae),
                    g, r);
        if (r != 0 && err / fabs(r) > worst)
            worst = err / fabs(r);
    }
    CHECK(fires > 0, "%s: the reference fires somewhere", name);
    CHECK(bad_flip == 0, "%s tile %u: %llu codes fire in one encoder only, away from the "
          "boundary (%llu flips within %g of it)", name, tile, (unsigned long long)bad_flip,
          (unsigned long long)ok_flip, flip_margin);
    CHECK(bad_val == 0, "%s tile %u: %llu values differ by more than %g relative (worst %.3g)",
          name, tile, (unsigned long long)bad_val, rel_tol, worst);
    if (flip_margin > FLIP_MARGIN) /* bf16: flips are allowed near the threshold, but few */
        CHECK(ok_flip * 50 < fires, "%s: %llu flips of %llu codes (under 2%%)", name,
              (unsigned long long)ok_flip, (unsigned long long)fires);
}

static void compare_codes(const char *name, uint32_t tile, const ref_case *rc, const float *got,
                          const double *ref, const double *margin)
{
    compare_codes_tol(name, tile, rc, got, ref, margin, FLIP_MARGIN, REL_TOL);
}

static void compare_decode(ldb_dict *d, const char *name, const ref_case *rc, const float *codes,
                           const void *x, int dtype)
{
    uint32_t n = (uint32_t)rc->n, ds = (uint32_t)rc->d_sae, dout = (uint32_t)rc->d_out;
    double *dense = calloc((size_t)n * ds, sizeof(double)), *want = malloc((size_t)n * dout * 8);
    float *got = malloc((size_t)n * dout * 4), *val = malloc((size_t)n * ds * 4);
    uint64_t *start = malloc(((size_t)n + 1) * 8);
    uint32_t *lat = malloc((size_t)n * ds * 4);
    uint64_t nnz = 0;
    start[0] = 0;
    for (uint32_t r = 0; r < n; r++) {
        for (uint32_t j = 0; j < ds; j++) {
            float v = codes[(size_t)r * ds + j];
            dense[(size_t)r * ds + j] = v;
            if (v != 0) {
                lat[nnz] = j;
                val[nnz++] = v;
            }
        }
        start[r + 1] = nnz;
    }
    ref_decode(rc, dense, want);
    ldb_codes tile = {0, n, start, lat, val};
    int rc2 = ldb_dict_decode(d, &tile, x, dtype, got);
    CHECK(rc2 == LDB_OK, "%s: decode: %s", name, ldb_dict_errmsg(d));
    uint64_t bad = 0;
    for (uint32_t r = 0; r < n && !rc2; r++) {
        double norm = 0;
        for (uint32_t c = 0; c < dout; c++)
            norm += want[(size_t)r * dout + c] * want[(size_t)r * dout + c];
        norm = sqrt(norm / dout);
        for (uint32_t c = 0; c < dout; c++) {
            double e = fabs(got[(size_t)r * dout + c] - want[(size_t)r * dout + c]);
            if (e > REL_TOL * fmax(norm, ABS_FLOOR) && bad++ < 3)
                fprintf(stderr, "  %s decode row %u col %u: got %.7g want %.7g\n", name, r, c,
                        got[(size_t)r * dout + c], want[(size_t)r * dout + c]);
        }
    }
    CHECK(bad == 0, "%s: %llu reconstructed values differ from the reference", name,
          (unsigned long long)bad);
    free(dense);
    free(want);
    free(got);
    free(val);
    free(start);
    free(lat);
}

/* Exact codes (issue 23): every path (the default screen, which is bf16 where the CPU
 * has a bf16 matmul; the f32 screen; tiles of 1, 7, 300, 4096 and the default; 1 and 2
 * workers) gives the same bits, and they are the bits tests/fixtures/gen_fixtures.py
 * computed with numpy in the reference order (ref/exact.f32, written where that writer
 * follows the library bit for bit). */
static void test_exact(ldb_dict *d, const char *name, const char *cdir, const void *x, int dtype,
                       uint32_t n)
{
    static const struct { int prec; uint32_t tile; int threads; } paths[] = {
        {LDB_PRECISION_EXACT, 0, 0}, {LDB_PRECISION_EXACT, 7, 2}, {LDB_PRECISION_EXACT, 300, 1},
        {LDB_PRECISION_F32, 0, 1}, {LDB_PRECISION_F32, 1, 2}, {LDB_PRECISION_F32, 4096, 0}};
    const ldb_dict_info *in = ldb_dict_get_info(d);
    size_t cells = (size_t)n * in->d_sae;
    float *got = malloc(cells * sizeof *got), *want = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/ref/exact.f32", cdir);
    FILE *f = fopen(path, "rb");
    if (f) {
        want = malloc(cells * sizeof *want);
        CHECK(fread(want, sizeof *want, cells, f) == cells, "%s: %s is short", name, path);
        fclose(f);
    }
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        ldb_encoder_opts o;
        ldb_encoder_opts_init(&o);
        o.precision = paths[pi].prec;
        o.tile_rows = paths[pi].tile;
        o.threads = paths[pi].threads;
        ldb_encoder *e = NULL;
        int r = ldb_encoder_new(d, &o, &e);
        memset(got, 0, cells * sizeof *got);
        sink s = dense_sink(in, got);
        if (!r)
            r = ldb_encoder_encode(e, x, dtype, n, collect, &s);
        CHECK(r == LDB_OK, "%s exact path %zu: %s", name, pi, ldb_encoder_errmsg(e));
        if (!r && !want) { /* no numpy reference: the first path is the yardstick */
            want = malloc(cells * sizeof *want);
            memcpy(want, got, cells * sizeof *want);
        } else if (!r) {
            uint64_t diff = 0;
            for (size_t i = 0; i < cells; i++)
                if (memcmp(&got[i], &want[i], sizeof *got) && diff++ < 3)
                    fprintf(stderr, "  %s (%s, tile %u, %d threads) row %zu latent %zu: %.9g, "
                            "reference %.9g\n", name, ldb_encoder_gemm_name(e), paths[pi].tile,
                            paths[pi].threads, i / in->d_sae, i % in->d_sae, got[i], want[i]);
            CHECK(diff == 0, "%s: %llu codes of %s (tile %u, %d threads) differ from the exact "
                  "reference", name, (unsigned long long)diff, ldb_encoder_gemm_name(e),
                  paths[pi].tile, paths[pi].threads);
        }
        ldb_encoder_free(e);
    }
    free(got);
    free(want);
}

/* ldb_refdot and ldb_refdot4 against the order refdot.h specifies, written here one
 * product at a time: bit for bit, over lengths 0..199 and up to 5376, with huge, tiny
 * (denormal products) and cancelling values. */
static float spec_dot(const float *x, const float *w, uint32_t n)
{
    uint32_t n16 = n - n % 16;
    float a[16] = {0};
    for (uint32_t i = 0; i < n16; i++) {
        float p = x[i] * w[i];
        a[i % 16] = a[i % 16] + p;
    }
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            a[l] = a[l] + a[l + h];
    float s = a[0];
    for (uint32_t i = n16; i < n; i++) {
        float p = x[i] * w[i];
        s = s + p;
    }
    return s;
}

static void test_refdot(void)
{
    enum { MAXN = 5376 };
    float *x = malloc(MAXN * sizeof *x), *w = malloc(4 * MAXN * sizeof *w);
    uint64_t sd = 1, bad = 0, all = 0;
    for (int t = 0; t < 600; t++) {
        uint32_t n = t < 200 ? (uint32_t)t : (uint32_t)(t * 37) % (MAXN + 1);
        float sc = t % 7 == 0 ? 1e-38f : t % 5 == 0 ? 1e30f : 1.0f;
        for (uint32_t i = 0; i < n; i++)
            for (int k = 0; k < 5; k++) {
                sd = sd * 6364136223846793005ull + 1442695040888963407ull;
                float u = (float)((sd >> 40) & 0xffffff) / 16777216.0f - 0.5f;
                if (k == 0)
                    x[i] = u * sc;
                else
                    w[(k - 1) * MAXN + i] = u * ((sd >> 20) % 3 ? 1.0f : 1e3f);
            }
        /* four pairs: x with the first three rows, and the first row with x (the product
         * commutes: the same bits either way round) */
        float o[4];
        const float *xs[4] = {x, x, x, w}, *ws[4] = {w, w + MAXN, w + 2 * MAXN, x};
        ldb_refdot4(xs, ws, n, o);
        for (int k = 0; k < 4; k++) {
            float want = spec_dot(xs[k], ws[k], n), one = ldb_refdot(x, k == 3 ? w : ws[k], n);
            all++;
            bad += memcmp(&want, &one, 4) != 0 || memcmp(&want, &o[k], 4) != 0;
        }
    }
    CHECK(bad == 0, "ldb_refdot: %llu of %llu dot products differ from the specified order",
          (unsigned long long)bad, (unsigned long long)all);
    free(x);
    free(w);
}

/* The screen's error bound (docs/ARCHITECTURE.md, "Exact encode") holds for every
 * (row, latent) of adversarial inputs, for the f32 screen (OpenBLAS's sgemm) and the
 * bf16 one (oneDNN's, where the CPU has it): |c~ - c| <= alpha nw_j + beta + g_j, c the
 * reference. The rows: exact_adversarial's (BOS 100x, outlier dimensions, cancelling
 * columns, denormals, d_in 5376), and rows made here: a column's own direction (the
 * Cauchy-Schwarz bound met with equality), 1e30 and 1e-30 scales, alternating signs,
 * and every element denormal. */
static void test_bound(const char *dir)
{
    char cdir[1024];
    snprintf(cdir, sizeof cdir, "%s/exact_adversarial", dir);
    ref_case rc;
    memset(&rc, 0, sizeof rc);
    ldb_dict *d = NULL;
    if (ref_load(cdir, &rc) || ldb_dict_open(cdir, &d)) {
        CHECK(0, "exact_adversarial did not open: %s", d ? ldb_dict_errmsg(d) : "reference");
        ldb_dict_close(d);
        ref_free(&rc);
        return;
    }
    const ldb_refine *rf = NULL;
    uint32_t K = (uint32_t)rc.d_in, N = (uint32_t)rc.d_sae, extra = 24, M = (uint32_t)rc.n + extra;
    CHECK(ldb_refine_get(d, &rf) == LDB_OK && ldb_blas_load() == LDB_OK, "refine data, OpenBLAS");
    float *x = malloc((size_t)M * K * 4), *c = malloc((size_t)M * N * 4);
    memcpy(x, rc.x, (size_t)rc.n * K * 4);
    uint64_t seed = 12345;
    for (uint32_t r = (uint32_t)rc.n; r < M; r++) {
        float *row = x + (size_t)r * K;
        uint32_t kind = r - (uint32_t)rc.n, j = (kind * 37) % N;
        for (uint32_t i = 0; i < K; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((seed >> 40) & 0xffffff) / 16777216.0f - 0.5f;
            float w = rf->Wt[(size_t)j * K + i];
            switch (kind % 6) {
            case 0: row[i] = w; break;                       /* along column j */
            case 1: row[i] = u * 1e30f; break;
            case 2: row[i] = u * 1e-30f; break;
            case 3: row[i] = (i & 1) ? -1e3f : 1e3f; break;  /* cancelling */
            case 4: row[i] = u * 0x1p-130f; break;           /* denormal */
            default: row[i] = w * 1e4f + u; break;
            }
        }
    }
    ldb_outliers out;
    ldb_screen_outliers(d, x, (uint32_t)rc.n, &out);
    CHECK(out.n == 3, "exact_adversarial's three outlier dimensions found (%u)", out.n);
    float *xr = malloc((size_t)M * K * 4);
    for (int mode = 0; mode < 4 && rf; mode++) {
        int screen = mode & 1;
        ldb_outliers none = {0}, *o = mode >= 2 ? &out : &none;
        const float *xs = x; /* the rows the screen multiplies: without o's dimensions */
        if (o->n) {
            memcpy(xr, x, (size_t)M * K * 4);
            for (uint32_t r = 0; r < M; r++)
                for (uint32_t q = 0; q < o->n; q++)
                    xr[(size_t)r * K + o->dim[q]] = 0;
            xs = xr;
        }
        ldb_bf16w *list = NULL;
        ldb_bf16mm *mm = NULL;
        pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        char msg[200];
        if (screen == LDB_SCREEN_F32) {
            ldb_blas_sgemm((int)M, (int)N, (int)K, xs, d->W_enc, 0, c);
        } else if (ldb_bf16mm_new(K, N, d->W_enc, 0, M, &list, &mu, &mm, msg, sizeof msg) ||
                   !strstr(ldb_bf16mm_impl(mm), "bf16")) {
            printf("test_sae: the bf16 screen's bound not checked here (%s)\n",
                   mm ? ldb_bf16mm_impl(mm) : msg);
            ldb_bf16mm_free(mm);
            ldb_bf16w_free(list);
            continue;
        } else {
            CHECK(ldb_bf16mm_run(mm, 0, xs, M, c, msg, sizeof msg) == LDB_OK, "bf16 run: %s", msg);
        }
        for (uint32_t r = 0; r < M; r++) /* the outliers' share, in f32, as the selection adds it */
            for (uint32_t q = 0; q < o->n; q++)
                for (uint32_t j = 0; j < N; j++)
                    c[(size_t)r * N + j] += x[(size_t)r * K + o->dim[q]] * o->w[q][j];
        uint64_t bad = 0, rows_all = 0;
        double worst = 0;
        for (uint32_t r = 0; r < M; r++) {
            ldb_rowbound rb;
            ldb_screen_rowbound(rf, screen, x + (size_t)r * K, K, o, &rb);
            rows_all += rb.all;
            for (uint32_t j = 0; j < N && !rb.all; j++) {
                float ref = ldb_refdot(x + (size_t)r * K, rf->Wt + (size_t)j * K, K);
                double err = fabs((double)c[(size_t)r * N + j] - ref);
                double bnd = (double)rb.alpha * rf->nw[j] + rb.beta + rf->g[j];
                if (!(err <= bnd) && bad++ < 3)
                    fprintf(stderr, "  screen %d row %u latent %u: |%.9g - %.9g| = %.3g > %.3g\n",
                            screen, r, j, c[(size_t)r * N + j], ref, err, bnd);
                if (bnd > 0 && err / bnd > worst)
                    worst = err / bnd;
            }
        }
        const char *what = screen ? "bf16" : "f32";
        CHECK(bad == 0, "%s screen, %u outliers: %llu (row, latent) errors beyond the bound "
              "(largest share %.3g)", what, o->n, (unsigned long long)bad, worst);
        CHECK(worst > 1e-6, "%s screen: the check saw errors (largest share of the bound %.3g)",
              what, worst);
        CHECK(rows_all == 4, "%s screen: the four 1e30 rows alone are beyond screening (%llu rows)",
              what, (unsigned long long)rows_all);
        printf("test_sae: %s screen, %u outlier dimensions: the largest error is %.3g of its "
               "bound over %u x %u\n", what, o->n, worst, M, N);
        ldb_bf16mm_free(mm);
        ldb_bf16w_free(list);
    }
    free(x);
    free(xr);
    free(c);
    ldb_dict_close(d);
    ref_free(&rc);
}

static void test_case(const char *dir, const char *name)
{
    char cdir[1024], apath[1100];
    snprintf(cdir, sizeof cdir, "%s/%s", dir, name);
    snprintf(apath, sizeof apath, "%s/acts.npy", cdir);
    ref_case rc;
    memset(&rc, 0, sizeof rc);
    if (ref_load(cdir, &rc) != 0) {
        CHECK(0, "%s: reference did not load", name);
        return;
    }
    ldb_dict *d = NULL;
    ldb_mfile f;
    ldb_npy a;
    ldb_err e = {{0}};
    memset(&f, 0, sizeof f);
    double *codes = malloc((size_t)rc.n * rc.d_sae * sizeof(double));
    double *margin = malloc((size_t)rc.n * rc.d_sae * sizeof(double));
    float *got = NULL;
    int r = ldb_dict_open(cdir, &d);
    CHECK(r == LDB_OK, "%s: open: %s", name, ldb_dict_errmsg(d));
    if (r)
        goto out;
    const ldb_dict_info *in = ldb_dict_get_info(d);
    CHECK(in->d_in == (uint32_t)rc.d_in && in->d_sae == (uint32_t)rc.d_sae &&
          in->d_out == (uint32_t)rc.d_out, "%s: sizes %u/%u/%u, expected %d/%d/%d", name, in->d_in,
          in->d_sae, in->d_out, rc.d_in, rc.d_sae, rc.d_out);
    CHECK(!strcmp(in->architecture, expected_arch(&rc)), "%s: architecture %s, expected %s", name,
          in->architecture, expected_arch(&rc));
    CHECK(!strcmp(in->type, rc.is_transcoder ? "transcoder" : "sae"), "%s: type %s", name, in->type);
    CHECK(in->sub_b_dec == rc.sub_b_dec, "%s: sub_b_dec %d, expected %d", name, in->sub_b_dec,
          rc.sub_b_dec);
    CHECK(in->has_skip == (rc.skip != NULL), "%s: has_skip %d", name, in->has_skip);
    if (rc.arch == REF_ARCH_TOPK || rc.arch == REF_ARCH_RELU_TOPK || rc.arch == REF_ARCH_GROUPMAX)
        CHECK(in->k == (uint32_t)rc.k, "%s: k %u, expected %d", name, in->k, rc.k);
    ref_encode(&rc, codes, margin);
    r = ldb_mfile_open(&f, apath, &e);
    if (!r)
        r = ldb_npy_parse(&a, f.data, f.size, apath, &e);
    CHECK(r == LDB_OK, "%s: %s", name, e.msg);
    if (r)
        goto out;
    int dtype = a.type == LDB_NPY_F16 ? LDB_F16 : LDB_F32;
    got = malloc((size_t)rc.n * rc.d_sae * sizeof(float));
    static const uint32_t tiles[] = {0, 7, 1, 4096};
    for (size_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++) {
        memset(got, 0, (size_t)rc.n * rc.d_sae * sizeof(float));
        sink s = dense_sink(in, got);
        ldb_encoder *e = encoder(d, LDB_PRECISION_F32, tiles[ti], &r);
        if (e)
            r = ldb_encoder_encode(e, a.data, dtype, (uint64_t)rc.n, collect, &s);
        CHECK(r == LDB_OK, "%s: encode: %s", name, ldb_encoder_errmsg(e));
        ldb_encoder_free(e);
        CHECK(s.rows_seen == (uint64_t)rc.n && s.order_ok, "%s tile %u: rows in order, each once",
              name, tiles[ti]);
        CHECK(s.positive_ok, "%s tile %u: every stored code is > 0", name, tiles[ti]);
        CHECK(s.bound_ok, "%s tile %u: at most k codes per row / one per group", name, tiles[ti]);
        /* the adversarial case's cancelling columns put f32's own error far past the
         * double reference's margin: its yardstick is the exact f32 one, bit for bit */
        if (strcmp(name, "exact_adversarial"))
            compare_codes(name, tiles[ti], &rc, got, codes, margin);
    }
    compare_decode(d, name, &rc, got, a.data, dtype);
    test_exact(d, name, cdir, a.data, dtype, (uint32_t)rc.n);
    if (!strcmp(name, "big_jumprelu") || !strcmp(name, "gemmascope2_sae")) {
        /* --precision bf16: oneDNN's bf16 matmul, where the CPU has one. Rounding x and
         * W_enc to bf16 moves a pre-activation by ~2^-8 of sum |x_i w_i|: codes that
         * near their threshold may flip, values move by ~1%.
         * Tiles of 7 and 300 rows put both workers' GEMMs (lanes) to work at once, and
         * make a short last tile. */
        static const uint32_t bf_tiles[] = {0, 7, 300};
        for (size_t ti = 0; ti < sizeof bf_tiles / sizeof bf_tiles[0]; ti++) {
            int pr;
            ldb_encoder *e = encoder(d, LDB_PRECISION_BF16, bf_tiles[ti], &pr);
            if (!e)
                break; /* LDB_EUNSUPPORTED: said; any other failure: checked */
            memset(got, 0, (size_t)rc.n * rc.d_sae * sizeof(float));
            sink s = {in->d_sae, in->k, 0, 0, got, 1, 1, 1, 0, 0};
            r = ldb_encoder_encode(e, a.data, dtype, (uint64_t)rc.n, collect, &s);
            CHECK(r == LDB_OK, "%s: bf16 encode: %s", name, ldb_encoder_errmsg(e));
            CHECK(s.rows_seen == (uint64_t)rc.n && s.order_ok, "%s bf16 tile %u: rows in order",
                  name, bf_tiles[ti]);
            CHECK(!strncmp(ldb_encoder_gemm_name(e), "onednn bf16 (", 13), "%s: gemm %s", name,
                  ldb_encoder_gemm_name(e));
            compare_codes_tol(name, bf_tiles[ti], &rc, got, codes, margin, BF16_FLIP_MARGIN,
                              BF16_REL_TOL);
            ldb_encoder_free(e);
        }
    }
out:
    free(codes);
    free(margin);
    free(got);
    ldb_mfile_close(&f);
    ldb_dict_close(d);
    ref_free(&rc);
}

/* The callback's non-zero return stops the encode and comes back unchanged. */
static int stop_after_first(void *arg, const ldb_codes *t)
{
    (void)t;
    ++*(int *)arg;
    return 42;
}

/* Opens dir/name; NULL (and a failed check) when it does not open. */
static ldb_dict *open_fixture(const char *dir, const char *name)
{
    char cdir[1024];
    snprintf(cdir, sizeof cdir, "%s/%s", dir, name);
    ldb_dict *d = NULL;
    if (ldb_dict_open(cdir, &d) == LDB_OK)
        return d;
    CHECK(0, "open %s: %s", name, ldb_dict_errmsg(d));
    ldb_dict_close(d);
    return NULL;
}

static void test_callback_stop(const char *dir)
{
    ldb_dict *d = open_fixture(dir, "big_jumprelu");
    if (!d)
        return;
    float *x = calloc(100 * 128, sizeof(float));
    int calls = 0, r;
    ldb_encoder *e = encoder(d, LDB_PRECISION_F32, 10, &r);
    if (e)
        r = ldb_encoder_encode(e, x, LDB_F32, 100, stop_after_first, &calls);
    CHECK(r == 42 && calls == 1, "stop: rc %d after %d calls", r, calls);
    ldb_encoder_free(e);
    free(x);
    ldb_dict_close(d);
}

/* Encoder options (issue 21): a struct not set up by ldb_encoder_opts_init (size 0)
 * is refused, and so are an unknown precision, negative threads, a tile over 2^20
 * rows and a field this library does not have; a newer struct whose extra fields
 * are zero works, and so do NULL options. */
static void test_encoder_opts(const char *dir)
{
    ldb_dict *d = open_fixture(dir, "big_jumprelu");
    if (!d)
        return;
    ldb_encoder *e = NULL;
    ldb_encoder_opts o;
    memset(&o, 0, sizeof o);
    CHECK(ldb_encoder_new(d, &o, &e) == LDB_EINVAL &&
          strstr(ldb_encoder_errmsg(e), "ldb_encoder_opts_init"), "size 0 refused: %s",
          ldb_encoder_errmsg(e));
    CHECK(e && ldb_encoder_encode(e, &o, LDB_F32, 1, stop_after_first, NULL) == LDB_EINVAL,
          "a refused encoder does not encode: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    ldb_encoder_opts_init(&o);
    o.precision = 7;
    CHECK(ldb_encoder_new(d, &o, &e) == LDB_EINVAL &&
          !strcmp(ldb_encoder_errmsg(e), "unknown precision 7"), "precision 7: %s",
          ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    ldb_encoder_opts_init(&o);
    o.threads = -1;
    CHECK(ldb_encoder_new(d, &o, &e) == LDB_EINVAL, "threads -1: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    ldb_encoder_opts_init(&o);
    o.tile_rows = (1u << 20) + 1;
    CHECK(ldb_encoder_new(d, &o, &e) == LDB_EINVAL && strstr(ldb_encoder_errmsg(e), "too large"),
          "tile of 2^20 + 1 rows: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    struct { ldb_encoder_opts o; uint64_t extra; } newer;
    memset(&newer, 0, sizeof newer);
    ldb_encoder_opts_init(&newer.o);
    newer.o.size = sizeof newer;
    newer.extra = 1;
    CHECK(ldb_encoder_new(d, &newer.o, &e) == LDB_EUNSUPPORTED &&
          strstr(ldb_encoder_errmsg(e), "does not have"), "unknown field refused: %s",
          ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    newer.extra = 0;
    newer.o.threads = 1;
    float *x = calloc(100 * 128, sizeof(float));
    uint64_t row;
    uint32_t lat;
    float v;
    int calls = 0;
    CHECK(ldb_encoder_new(d, &newer.o, &e) == LDB_OK &&
          ldb_encoder_encode(e, x, LDB_F32, 100, stop_after_first, &calls) == 42 &&
          !strncmp(ldb_encoder_gemm_name(e), "exact, screen ", 14) &&
          ldb_encoder_fault(e, &row, &lat, &v) == LDB_ENOTFOUND,
          "newer struct, unknown field zero: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    CHECK(ldb_encoder_new(d, NULL, &e) == LDB_OK &&
          ldb_encoder_encode(e, x, 9, 100, stop_after_first, &calls) == LDB_EINVAL,
          "NULL options; dtype 9 refused: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    CHECK(ldb_encoder_new(NULL, NULL, &e) == LDB_EINVAL, "no dictionary: %s",
          ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    ldb_encoder_free(NULL);
    free(x);
    ldb_dict_close(d);
}

/* The codes of one encode, every bit kept. */
typedef struct kept {
    uint64_t rows, n, cap;
    uint64_t *start;           /* rows + 1 */
    uint32_t *lat, *bits;      /* bits: the values' */
    int order_ok;
} kept;

static int keep(void *arg, const ldb_codes *t)
{
    kept *k = arg;
    if (t->row0 != k->rows)
        k->order_ok = 0;
    uint64_t a = t->start[0], b = t->start[t->n_rows];
    if (k->n + (b - a) > k->cap) {
        k->cap = (k->n + (b - a)) * 2;
        uint32_t *l = realloc(k->lat, k->cap * 4), *v = realloc(k->bits, k->cap * 4);
        k->lat = l ? l : k->lat;
        k->bits = v ? v : k->bits;
        if (!l || !v)
            return 1;
    }
    memcpy(k->lat + k->n, t->latent + a, (b - a) * 4);
    memcpy(k->bits + k->n, t->value + a, (b - a) * 4);
    for (uint32_t r = 0; r < t->n_rows; r++)
        k->start[k->rows + r + 1] = k->n + (t->start[r + 1] - a);
    k->n += b - a;
    k->rows += t->n_rows;
    return 0;
}

static void kept_reset(kept *k)
{
    k->rows = k->n = 0;
    k->order_ok = 1;
}

static int kept_equal(const kept *a, const kept *b)
{
    return a->order_ok && b->order_ok && a->rows == b->rows && a->n == b->n &&
           !memcmp(a->start, b->start, (a->rows + 1) * 8) && !memcmp(a->lat, b->lat, a->n * 4) &&
           !memcmp(a->bits, b->bits, a->n * 4);
}

#define SHARED_RUNS 3

typedef struct job {
    ldb_encoder *e;
    const float *x;
    uint64_t n;
    const kept *want;          /* what one encoder gives alone */
    kept got;
    pthread_barrier_t *go;
    int rc, same;              /* runs that failed, runs equal to want */
    ldb_dict *d;               /* both threads also ask for its SHA-256, computed on first use */
    char sha[65];
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    pthread_barrier_wait(j->go);
    if (ldb_dict_sha256(j->d, j->sha))
        j->sha[0] = 0;
    for (int i = 0; i < SHARED_RUNS; i++) {
        kept_reset(&j->got);
        j->rc += ldb_encoder_encode(j->e, j->x, LDB_F32, j->n, keep, &j->got) != LDB_OK;
        j->same += kept_equal(&j->got, j->want);
    }
    return NULL;
}

/* Issue 21: an encoder owns its workspace, so two encoders on ONE dictionary may
 * encode from two threads at once, and each must give, bit for bit, the codes one
 * encoder gives alone. The two inputs differ (the same rows in opposite orders, both
 * through the xbuf path: big_jumprelu subtracts b_dec), so a buffer shared between
 * the encoders by mistake (xbuf, cbuf, a slot) mixes one's rows into the other's;
 * checked once by hand with the workers' buffers made static: the runs differ.
 * Tiles of 7 rows, 2 workers each: 286 tiles an encode, 4 workers and 2 callers.
 * The threads also ask the shared dictionary for its SHA-256 first, which it makes
 * once on first use. */
static void test_shared(const char *dir, int precision)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/big_jumprelu/acts.npy", dir);
    ldb_dict *d = open_fixture(dir, "big_jumprelu");
    ldb_mfile f;
    ldb_npy a;
    ldb_err er = {{0}};
    memset(&f, 0, sizeof f);
    if (!d || ldb_mfile_open(&f, p, &er) || ldb_npy_parse(&a, f.data, f.size, p, &er)) {
        CHECK(!d, "%s", er.msg);
        ldb_mfile_close(&f);
        ldb_dict_close(d);
        return;
    }
    uint32_t din = ldb_dict_get_info(d)->d_in;
    uint64_t n = a.count / din;
    float *rev = malloc(n * din * sizeof(float));
    for (uint64_t r = 0; r < n; r++)
        memcpy(rev + r * din, (const float *)a.data + (n - 1 - r) * din, din * sizeof(float));
    const float *xs[2] = {(const float *)a.data, rev};
    kept want[2];
    job jobs[2];
    memset(want, 0, sizeof want);
    memset(jobs, 0, sizeof jobs);
    ldb_encoder_opts o;
    ldb_encoder_opts_init(&o);
    o.precision = precision;
    o.threads = 2;
    o.tile_rows = 7;
    ldb_encoder *one = NULL, *es[2] = {NULL, NULL};
    int rc = ldb_encoder_new(d, &o, &one);
    if (rc == LDB_EUNSUPPORTED && precision != LDB_PRECISION_F32) {
        printf("test_sae: shared bf16 encoders not checked here: %s\n", ldb_encoder_errmsg(one));
        goto out;
    }
    CHECK(rc == LDB_OK, "encoder: %s", ldb_encoder_errmsg(one));
    for (int i = 0; i < 2 && !rc; i++) {
        want[i].start = calloc(n + 1, 8);
        jobs[i].got.start = calloc(n + 1, 8);
        kept_reset(&want[i]);
        rc = ldb_encoder_encode(one, xs[i], LDB_F32, n, keep, &want[i]);
        CHECK(rc == LDB_OK && want[i].order_ok && want[i].rows == n && want[i].n > n,
              "alone, input %d: %s", i, ldb_encoder_errmsg(one));
        if (!rc)
            rc = ldb_encoder_new(d, &o, &es[i]);
        CHECK(rc == LDB_OK, "encoder %d: %s", i, ldb_encoder_errmsg(es[i]));
    }
    CHECK(rc || !kept_equal(&want[0], &want[1]), "the two inputs give different codes");
    if (rc)
        goto out;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (job){es[i], xs[i], n, &want[i], jobs[i].got, &go, 0, 0, d, {0}};
        CHECK(pthread_create(&th[i], NULL, job_main, &jobs[i]) == 0, "thread %d", i);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < 2; i++)
        CHECK(jobs[i].rc == 0 && jobs[i].same == SHARED_RUNS, "precision %d, encoder %d: %d of "
              "%d runs at once with the other gave the codes it gives alone (%d failed: %s)",
              precision, i, jobs[i].same, SHARED_RUNS, jobs[i].rc, ldb_encoder_errmsg(es[i]));
    char sha[65];
    CHECK(ldb_dict_sha256(d, sha) == LDB_OK && strlen(sha) == 64 && !strcmp(sha, jobs[0].sha) &&
          !strcmp(sha, jobs[1].sha), "SHA-256 asked from two threads at once: %s, %s, then %s",
          jobs[0].sha, jobs[1].sha, sha);
out:
    for (int i = 0; i < 2; i++) {
        ldb_encoder_free(es[i]);
        free(want[i].start), free(want[i].lat), free(want[i].bits);
        free(jobs[i].got.start), free(jobs[i].got.lat), free(jobs[i].got.bits);
    }
    ldb_encoder_free(one);
    free(rev);
    ldb_mfile_close(&f);
    ldb_dict_close(d);
}

/* pre == threshold must not fire (strict >); one float above must. Regression
 * guard for the SIMD compare predicate. */
static void test_boundary(const char *dir)
{
    ldb_dict *d = open_fixture(dir, "jumprelu_boundary");
    if (!d)
        return;
    uint32_t ds = ldb_dict_get_info(d)->d_sae;
    float *x = calloc(8 * 64, sizeof(float)), *got = calloc((size_t)8 * ds, sizeof(float));
    sink s = {ds, 0, 0, 0, got, 1, 1, 1, 0, 0};
    int r;
    ldb_encoder *e = encoder(d, LDB_PRECISION_F32, 0, &r);
    if (e)
        r = ldb_encoder_encode(e, x, LDB_F32, 8, collect, &s);
    CHECK(r == LDB_OK, "encode: %s", ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    int wrong = 0;
    for (uint32_t r = 0; r < 8; r++)
        for (uint32_t j = 0; j < ds; j++)
            wrong += (got[(size_t)r * ds + j] != 0) != (j % 2 == 1);
    CHECK(wrong == 0, "%d codes at the threshold decided wrongly (pre == threshold must not fire)",
          wrong);
    free(x);
    free(got);
    ldb_dict_close(d);
}

/* Stores bits as element i of a (es bytes, unaligned). */
static void put_bits(uint8_t *a, uint64_t i, int es, uint32_t bits)
{
    uint16_t h = (uint16_t)bits;
    memcpy(a + i * (uint64_t)es, es == 4 ? (const void *)&bits : (const void *)&h, (size_t)es);
}

/* ldb_find_nonfinite (the input check of ingest, dict eval and dictionary loading)
 * against the planted answer: one NaN, +Inf or -Inf at every index of arrays of
 * lengths around its 64-value blocks, a later second one that must not win, the
 * largest finite values that must not count, and an unaligned start. */
static void test_nonfinite(void)
{
    static const int dtypes[] = {LDB_F32, LDB_F16, LDB_BF16};
    static const uint64_t lens[] = {0, 1, 63, 64, 65, 127, 128, 200};
    /* per dtype: NaN, +Inf, -Inf; then finite: the largest, the smallest subnormal, 1 */
    static const uint32_t bits[3][6] = {
        {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu, 1u, 0x3f800000u},
        {0x7e00, 0x7c00, 0xfc00, 0x7bff, 1, 0x3c00},
        {0x7fc0, 0x7f80, 0xff80, 0x7f7f, 1, 0x3f80},
    };
    for (int t = 0; t < 3; t++) {
        int dt = dtypes[t], es = dt == LDB_F32 ? 4 : 2;
        uint8_t *buf = malloc(200 * 4 + 1), *a = buf + 1;
        int wrong = 0, runs = 0;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint64_t n = lens[li];
            for (uint64_t at = 0; at <= n; at++) /* at == n: none planted */
                for (int k = 0; k < 3; k++) {
                    for (uint64_t i = 0; i < n; i++)
                        put_bits(a, i, es, bits[t][3 + i % 3]);
                    uint64_t later = at + 1 + (at * 7 + 3) % 70;
                    if (at < n)
                        put_bits(a, at, es, bits[t][k]);
                    if (later < n)
                        put_bits(a, later, es, bits[t][(k + 1) % 3]);
                    wrong += ldb_find_nonfinite(a, dt, n) != (at < n ? at : UINT64_MAX);
                    runs++;
                }
        }
        CHECK(wrong == 0 && runs > 1000, "dtype %d: %d of %d answers wrong", dt, wrong, runs);
        free(buf);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_sae FIXTURES_DIR\n");
        return 2;
    }
    static const char *cases[] = {
        "saelens_jumprelu", "saelens_standard_f16", "saelens_old_topk_bf16", "saelens_gated",
        "saelens_layernorm", "saelens_skip_transcoder", "gemmascope1_npz",
        "gemmascope1_npz_compressed", "gemmascope2_sae", "gemmascope2_transcoder_affine",
        "sparsify_topk", "sparsify_groupmax", "sparsify_transcoder_skip", "big_jumprelu",
        "wide_jumprelu",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(argv[1], cases[i]);
    test_callback_stop(argv[1]);
    test_encoder_opts(argv[1]);
    test_refdot();
    test_bound(argv[1]);
    test_shared(argv[1], LDB_PRECISION_F32);
    test_shared(argv[1], LDB_PRECISION_BF16);
    test_boundary(argv[1]);
    test_nonfinite();
    return test_summary("test_sae");
}
