/* bench_encode.c — encoder throughput against the sgemm ceiling, in one process:
 * the ceiling is one cblas_sgemm with M=8192, K=d_in, N=d_sae (same OpenBLAS core
 * and threads, best of 3); for a wide dictionary, whose M = 8192 output would not fit
 * (32 GiB at 1M latents), sgemms of the encoder's own tile shape (T rows x a span of
 * latents, as encode.c sizes them) covering 8192 rows; the encode includes input prep, thresholding and the
 * sparse output. usage: bench_encode DICT ACTS.npy [--reps 5] [--tile N] [--max-rows N]
 * [--precision bf16] (adds the exact encoder over the f32 screen and the approximate bf16
 * encode: throughput, and their codes against the default's) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "../sae/refdot.h"
#include "../sae/screen.h"
#include "fixture.h"
#include "latentdb.h"

static int count_nnz(void *arg, const ldb_codes *t)
{
    *(uint64_t *)arg += t->start[t->n_rows];
    return 0;
}

/* The codes of a few rows, kept to compare two encodes. */
typedef struct kept {
    uint64_t rows, n, cap;
    uint64_t *start;           /* rows + 1 */
    uint32_t *lat;
    float *val;
} kept;

static int keep_codes(void *arg, const ldb_codes *t)
{
    kept *k = arg;
    for (uint32_t r = 0; r < t->n_rows && t->row0 + r < k->rows; r++) {
        uint64_t a = t->start[r], b = t->start[r + 1];
        if (k->n + (b - a) > k->cap) {
            k->cap = (k->n + (b - a)) * 2;
            k->lat = realloc(k->lat, k->cap * sizeof *k->lat);
            k->val = realloc(k->val, k->cap * sizeof *k->val);
            if (!k->lat || !k->val)
                return 1;
        }
        memcpy(k->lat + k->n, t->latent + a, (b - a) * sizeof *k->lat);
        memcpy(k->val + k->n, t->value + a, (b - a) * sizeof *k->val);
        k->n += b - a;
        k->start[t->row0 + r + 1] = k->n;
    }
    return 0;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The codes of encoder e on the first k->rows rows of x into k (fresh); 0 or -1. */
static int keep_rows(ldb_encoder *e, const void *x, uint64_t rows, kept *k)
{
    *k = (kept){rows, 0, 0, calloc(rows + 1, 8), NULL, NULL};
    return k->start && !ldb_encoder_encode(e, x, LDB_F32, rows, keep_codes, k) ? 0 : -1;
}

static void kept_free(kept *k)
{
    free(k->start), free(k->lat), free(k->val);
    *k = (kept){0};
}

/* Codes of the first rows of two encoders that differ: latents firing in one only
 * (*flips) and values not bit for bit equal (*moved); rel (NULL: not wanted) gets the
 * relative change of each common value (room for a->n). */
static void diff_codes(const kept *a, const kept *b, uint64_t *flips, uint64_t *moved,
                       float *rel, uint64_t *common)
{
    *flips = *moved = *common = 0;
    for (uint64_t r = 0; r < a->rows; r++) {
        uint64_t i = a->start[r], j = b->start[r];
        while (i < a->start[r + 1] || j < b->start[r + 1]) {
            if (j == b->start[r + 1] || (i < a->start[r + 1] && a->lat[i] < b->lat[j]))
                ++*flips, i++;
            else if (i == a->start[r + 1] || b->lat[j] < a->lat[i])
                ++*flips, j++;
            else {
                *moved += memcmp(&a->val[i], &b->val[j], sizeof *a->val) != 0;
                if (rel)
                    rel[*common] = fabsf(b->val[j] - a->val[i]) / a->val[i];
                ++*common, i++, j++;
            }
        }
    }
}

/* The rows through encoder e: its best throughput of reps runs in tokens/s (0 when
 * it fails: its message says why). */
static double time_encoder(ldb_encoder *e, const void *x, uint64_t n, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        uint64_t nnz = 0;
        double t0 = fx_now();
        if (ldb_encoder_encode(e, x, LDB_F32, n, count_nnz, &nnz))
            return 0;
        double t = fx_now() - t0;
        best = t < best ? t : best;
    }
    return n / best;
}

/* The default encoder's codes of the first rows (a) against the reference computed
 * for every latent, with no screen at all (a single-layer jumprelu or relu dictionary
 * that reads its input as it is: no normalisation, no b_dec subtracted): latents
 * firing in one only, and values not bit for bit equal (key=value lines). */
static void brute_check(ldb_dict *d, const kept *a, const float *x)
{
    const ldb_dict_info *in = ldb_dict_get_info(d);
    const ldb_refine *rf;
    if (in->n_layers > 1 || (d->arch != ARCH_JUMPRELU && d->arch != ARCH_RELU) ||
        in->sub_b_dec || d->norm != NORM_NONE || ldb_refine_get(d, &rf)) {
        printf("reference_check=not run for this dictionary\n");
        return;
    }
    uint64_t flips = 0, moved = 0, codes = 0;
    uint32_t K = in->d_in;
    for (uint64_t r = 0; r < a->rows; r++) {
        uint64_t i = a->start[r];
        for (uint32_t j = 0; j < in->d_sae; j++) {
            float p = ldb_refdot(x + r * K, rf->Wt + (size_t)j * K, K) + d->b_enc[j];
            int fires = p > d->thr[j], got = i < a->start[r + 1] && a->lat[i] == j;
            codes += fires;
            if (fires != got)
                flips++;
            else if (got)
                moved += memcmp(&p, &a->val[i], sizeof p) != 0;
            i += got;
        }
    }
    printf("reference_rows=%llu\nreference_codes=%llu\nreference_flips=%llu\n"
           "reference_moved=%llu\n", (unsigned long long)a->rows, (unsigned long long)codes,
           (unsigned long long)flips, (unsigned long long)moved);
}

/* An encoder of the given precision on d (default tiles); NULL, said, when it cannot. */
static ldb_encoder *other_encoder(ldb_dict *d, int precision, const char *key)
{
    ldb_encoder *e = NULL;
    ldb_encoder_opts o;
    ldb_encoder_opts_init(&o);
    o.precision = precision;
    if (ldb_encoder_new(d, &o, &e) == LDB_OK)
        return e;
    printf("%s=unavailable: %s\n", key, ldb_encoder_errmsg(e));
    ldb_encoder_free(e);
    return NULL;
}

/* The default encoder's codes of the first 8192 rows, kept once, against the reference
 * of every latent, against the exact encoder over the f32 screen, and against the
 * approximate bf16 encode (encoders of their own on the same dictionary, default
 * tiles); their throughput against the f32 ceiling (key=value lines for
 * tools/bench/run.sh). */
static int bench_bf16(ldb_dict *dict, ldb_encoder *e0, const void *x, uint64_t n, int reps,
                      double ceil_tps)
{
    printf("ceiling_tps=%.0f\n", ceil_tps);
    uint64_t pairs, refined, rows = n < 8192 ? n : 8192, flips, moved, common;
    ldb_encoder_screen_counts(e0, &pairs, &refined);
    printf("exact_gemm=%s\nrefined_fraction=%.6f\n", ldb_encoder_gemm_name(e0),
           pairs ? (double)refined / (double)pairs : 0);
    kept a, b = {0};
    if (keep_rows(e0, x, rows, &a)) {
        printf("bf16_status=failed: out of memory\n");
        kept_free(&a);
        return 1;
    }
    brute_check(dict, &a, (const float *)x);
    ldb_encoder *ef = other_encoder(dict, LDB_PRECISION_F32, "exact_f32_status");
    if (ef) {
        printf("exact_f32_tps=%.0f\n", time_encoder(ef, x, n, reps));
        if (!keep_rows(ef, x, rows, &b)) {
            diff_codes(&a, &b, &flips, &moved, NULL, &common);
            printf("exact_screens_flips=%llu\nexact_screens_moved=%llu\nexact_codes=%llu\n",
                   (unsigned long long)flips, (unsigned long long)moved, (unsigned long long)a.n);
        }
        kept_free(&b);
        ldb_encoder_free(ef);
    }
    int rc = 0;
    ldb_encoder *e16 = other_encoder(dict, LDB_PRECISION_BF16, "bf16_status");
    double tps = e16 ? time_encoder(e16, x, n, reps) : 0;
    if (e16 && (!tps || keep_rows(e16, x, rows, &b))) {
        printf("bf16_status=failed: %s\n", ldb_encoder_errmsg(e16));
        rc = 1;
    } else if (e16) {
        float *rel = malloc((a.n ? a.n : 1) * sizeof *rel);
        diff_codes(&a, &b, &flips, &moved, rel, &common);
        qsort(rel, common, sizeof *rel, cmp_f);
        printf("bf16_status=ok\ngemm=%s\nbf16_tps=%.0f\nflip_rate=%.6f\nflips=%llu\nf32_codes=%llu\n"
               "rel_change_median=%.3g\nrel_change_p99=%.3g\n", ldb_encoder_gemm_name(e16), tps,
               a.n ? (double)flips / (double)a.n : 0, (unsigned long long)flips,
               (unsigned long long)a.n, common ? rel[common / 2] : 0,
               common ? rel[(size_t)(0.99 * (common - 1))] : 0);
        free(rel);
    }
    kept_free(&b);
    ldb_encoder_free(e16);
    kept_free(&a);
    return rc;
}

static void cpu_model(char *out, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], model[256] = "?", fam[32] = "?";
    snprintf(out, cap, "?");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':'))
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
        else if (!strncmp(line, "cpu family", 10) && strchr(line, ':'))
            snprintf(fam, sizeof fam, "%s", strchr(line, ':') + 2);
    }
    fclose(f);
    model[strcspn(model, "\n")] = 0;
    fam[strcspn(fam, "\n")] = 0;
    snprintf(out, cap, "%s, family %s", model, fam);
}

int main(int argc, char **argv)
{
    const char *dpath = NULL, *apath = NULL;
    int reps = 5;
    uint32_t tile = 0;
    uint64_t max_rows = 0;     /* encode at most this many rows (0: all) */
    int bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--precision") && i + 1 < argc)
            bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tile") && i + 1 < argc)
            tile = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-rows") && i + 1 < argc)
            max_rows = strtoull(argv[++i], NULL, 10);
        else if (!dpath)
            dpath = argv[i];
        else if (!apath)
            apath = argv[i];
    }
    if (!dpath || !apath || reps < 1) {
        fprintf(stderr, "usage: bench_encode DICT ACTS.npy [--reps 5] [--tile N] [--max-rows N] "
                "[--precision bf16]\n");
        return 2;
    }
    ldb_dict *d = NULL;
    if (ldb_dict_open(dpath, &d)) {
        fprintf(stderr, "bench_encode: %s\n", ldb_dict_errmsg(d));
        return 1;
    }
    const ldb_dict_info *in = ldb_dict_get_info(d);
    ldb_mfile f;
    ldb_npy a;
    ldb_err e = {{0}};
    if (ldb_mfile_open(&f, apath, &e) || ldb_npy_parse(&a, f.data, f.size, apath, &e) ||
        a.type != LDB_NPY_F32 || a.shape[a.ndim - 1] != in->d_in) {
        fprintf(stderr, "bench_encode: %s: %s\n", apath, e.msg[0] ? e.msg : "need f32 [n, d_in]");
        return 1;
    }
    /* a multi-layer dictionary reads rows of n_layers x d_in ([n, n_layers, d_in]) */
    uint64_t n = a.count / ((uint64_t)in->d_in * in->n_layers);
    if (in->n_layers > 1 && (a.ndim != 3 || a.shape[1] != in->n_layers)) {
        fprintf(stderr, "bench_encode: %s: need f32 [n, %u, %u] for a %u-layer dictionary\n",
                apath, in->n_layers, in->d_in, in->n_layers);
        return 1;
    }
    if (max_rows && n > max_rows)
        n = max_rows;
    if (ldb_blas_load()) {
        fprintf(stderr, "bench_encode: cannot load OpenBLAS\n");
        return 1;
    }
    /* ceiling: one sgemm, M = 8192; a wide dictionary's in the encoder's tile shape:
     * T = 64 MiB / (4 d_sae) rows clamped to 64..4096, spans of 64 MiB / (4 T) latents */
    const int M = 8192, K = (int)in->d_in, N = (int)in->d_sae;
    size_t budget = (size_t)64 << 20;
    /* a multi-layer dictionary's encoder runs each layer's GEMM on its own: tiles sized
     * by one layer's width, one sgemm per layer */
    int NL = in->n_layers > 1 ? (int)ldb_dict_get_layer(d, 0)->d_sae : N;
    int wide = (size_t)M * N * 4 > ((size_t)1 << 30) || in->n_layers > 1;
    int T = (int)(budget / ((size_t)NL * 4)), SP = NL;
    T = T > 4096 ? 4096 : T < 64 ? 64 : T;
    if (tile)
        T = (int)tile;
    if (wide && (size_t)T * N * 4 > budget) {
        SP = (int)(budget / ((size_t)T * 4)) / 64 * 64;
        SP = SP < 4096 ? 4096 : SP > N ? N : SP;
    }
    int CM = wide ? T : M, CN = wide ? SP : N;
    float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4), *C = malloc((size_t)CM * CN * 4);
    if (!A || !B || !C) {
        fprintf(stderr, "bench_encode: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++)
        B[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    ldb_encoder *enc = NULL;
    ldb_encoder_opts eo;
    ldb_encoder_opts_init(&eo);
    eo.tile_rows = tile;
    if (ldb_encoder_new(d, &eo, &enc)) {
        fprintf(stderr, "bench_encode: %s\n", ldb_encoder_errmsg(enc));
        return 1;
    }
    /* Interleave ceiling and encode runs so both see the same machine load
     * (this machine is shared); take the best of each. */
    double best_gemm = 1e30, best_enc = 1e30;
    uint64_t nnz = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = fx_now();
        if (!wide) {
            ldb_blas_sgemm(M, N, K, A, B, 0, C);
        } else { /* 8192 rows in tiles of T, each a span of SP latents at a time */
            for (int r0 = 0; r0 < M; r0 += T)
                for (int j0 = 0; j0 < N; j0 += SP) /* B: a span's K x n block, rows of n */
                    ldb_blas_sgemm(T, N - j0 < SP ? N - j0 : SP, K, A + (size_t)r0 * K,
                                   B + (size_t)j0 * K, 0, C);
        }
        double t = fx_now() - t0;
        if (t < best_gemm)
            best_gemm = t;
        nnz = 0;
        t0 = fx_now();
        if (ldb_encoder_encode(enc, a.data, LDB_F32, n, count_nnz, &nnz)) {
            fprintf(stderr, "bench_encode: %s\n", ldb_encoder_errmsg(enc));
            return 1;
        }
        t = fx_now() - t0;
        if (t < best_enc)
            best_enc = t;
    }
    free(A);
    free(B);
    free(C);
    double flop_per_tok = 2.0 * K * N;
    double ceil_tps = M / best_gemm, gflops = M * flop_per_tok / best_gemm / 1e9;
    double enc_tps = n / best_enc;
    char cpu[300];
    cpu_model(cpu, sizeof cpu);
    printf("machine   %s; %d OpenBLAS threads; core %s (chosen by %s)\n", cpu, ldb_blas_threads(),
           ldb_blas_corename(), ldb_blas_core_origin());
    printf("dict      %u -> %u %s, %llu tokens, mean L0 %.1f, tile %u rows (0 = default)\n", in->d_in, in->d_sae,
           in->architecture, (unsigned long long)n, (double)nnz / n, tile);
    if (wide)
        printf("ceiling   sgemm tiles of %d rows x %d latents over 8192 rows: %.1f GFLOP/s = %.0f "
               "tokens/s (best of %d)\n", T, SP, gflops, ceil_tps, reps);
    else
        printf("ceiling   sgemm M=8192: %.1f GFLOP/s = %.0f tokens/s (best of %d)\n", gflops, ceil_tps, reps);
    printf("encode    %.0f tokens/s = %.1f GFLOP/s (best of %d)\n", enc_tps,
           enc_tps * flop_per_tok / 1e9, reps);
    printf("ratio     %.1f%% of the ceiling (target >= 85%%)\n", 100.0 * enc_tps / ceil_tps);
    uint64_t pairs, refined;
    ldb_encoder_screen_counts(enc, &pairs, &refined);
    printf("gemm      %s; %.4f%% of (token, latent) pairs refined\n", ldb_encoder_gemm_name(enc),
           pairs ? 100.0 * (double)refined / (double)pairs : 0);
    int rc = bf16 ? bench_bf16(d, enc, a.data, n, reps, ceil_tps) : 0;
    ldb_mfile_close(&f);
    ldb_encoder_free(enc);
    ldb_dict_close(d);
    return rc;
}
