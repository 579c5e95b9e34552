/* test_ref.c - self-test of the dense reference (ref_encoder.c) against generated fixtures.
 * Usage: test_ref FIXTURE_DIR   (the OUTDIR of tests/fixtures/gen_fixtures.py)
 * For every case: load, encode, decode; check code sanity, L0 range, top-k / group limits,
 * agreement with the generator's numpy numbers (meta.json "check"), and transcoder fit.
 * Build: gcc -std=c11 -O2 -Wall -Wextra tests/test_ref.c tests/ref_encoder.c -lcjson -lm */
#define _POSIX_C_SOURCE 200809L
#include "ref_encoder.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MARGIN_EPS 1e-5 /* flips the library tests will tolerate */
#define TINY_MARGIN 1e-9 /* flips possible between two double-precision computations */
#define MAX_CASES 256

static int case_failed;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    case_failed = 1;
}

static double rel_diff(double a, double b)
{
    return fabs(a - b) / fmax(fabs(b), 1e-300);
}

static void run_case(const char *dir, const char *case_name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, case_name);
    case_failed = 0;
    ref_case rc;
    if (ref_load(path, &rc) != 0) {
        printf("  FAIL %s: ref_load failed\n", case_name);
        case_failed = 1;
        return;
    }
    size_t n = (size_t)rc.n, ds = (size_t)rc.d_sae, dout = (size_t)rc.d_out;
    double *codes = malloc(sizeof(double) * n * ds);
    double *margin = malloc(sizeof(double) * n * ds);
    double *xhat = malloc(sizeof(double) * n * dout);
    if (!codes || !margin || !xhat) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    ref_encode(&rc, codes, margin);
    ref_decode(&rc, codes, xhat);

    long total_nz = 0, low_margin = 0, tiny_margin = 0, bad_vals = 0, bad_thresh = 0;
    long over_k = 0, over_group = 0;
    int min_l0 = rc.d_sae, max_l0 = 0;
    double sum_codes = 0.0;
    for (size_t t = 0; t < n; t++) {
        const double *c = codes + t * ds, *m = margin + t * ds;
        int l0 = 0;
        for (size_t j = 0; j < ds; j++) {
            if (!isfinite(c[j]) || c[j] < 0.0 || isnan(m[j]) || m[j] < 0.0)
                bad_vals++;
            if (m[j] < MARGIN_EPS)
                low_margin++;
            if (m[j] < TINY_MARGIN)
                tiny_margin++;
            if (c[j] != 0.0) {
                l0++;
                if (rc.threshold && !(c[j] > rc.threshold[j] && c[j] > 0.0))
                    bad_thresh++;
            }
            sum_codes += c[j];
        }
        if ((rc.arch == REF_ARCH_TOPK || rc.arch == REF_ARCH_RELU_TOPK ||
             rc.arch == REF_ARCH_GROUPMAX) && l0 > rc.k)
            over_k++;
        if (rc.arch == REF_ARCH_GROUPMAX) {
            size_t gs = ds / (size_t)rc.k;
            for (size_t g = 0; g < (size_t)rc.k; g++) {
                int in_group = 0;
                for (size_t j = g * gs; j < (g + 1) * gs; j++)
                    in_group += c[j] != 0.0;
                if (in_group > 1)
                    over_group++;
            }
        }
        total_nz += l0;
        if (l0 < min_l0) min_l0 = l0;
        if (l0 > max_l0) max_l0 = l0;
    }
    double mean_l0 = (double)total_nz / (double)n;

    if (bad_vals) fail(case_name, "%ld codes/margins non-finite or negative", bad_vals);
    if (bad_thresh) fail(case_name, "%ld jumprelu codes not above threshold", bad_thresh);
    if (over_k) fail(case_name, "%ld rows with more than k=%d non-zeros", over_k, rc.k);
    if (over_group) fail(case_name, "%ld groups with more than one non-zero", over_group);
    if (rc.arch == REF_ARCH_TOPK || rc.arch == REF_ARCH_RELU_TOPK || rc.arch == REF_ARCH_GROUPMAX) {
        if (mean_l0 < rc.k / 2.0)
            fail(case_name, "mean L0 %.2f below k/2 (k=%d)", mean_l0, rc.k);
    } else if (strcmp(case_name, "jumprelu_boundary") == 0) {
        /* x = 0: exactly the odd latents sit above their threshold */
        if (min_l0 != (int)(ds / 2) || max_l0 != (int)(ds / 2))
            fail(case_name, "L0 [%d..%d], expected exactly %d", min_l0, max_l0, (int)(ds / 2));
    } else if (mean_l0 < 8.0 || mean_l0 > 64.0) {
        fail(case_name, "mean L0 %.2f outside plausible range [8, 64]", mean_l0);
    }
    /* the two boundary cases sit on their thresholds by design (exact_adversarial's
     * denormal rows have pre-activations of 1e-37) */
    if ((double)low_margin > 1e-3 * (double)(n * ds) && strcmp(case_name, "jumprelu_boundary") &&
        strcmp(case_name, "exact_adversarial"))
        fail(case_name, "%ld entries with margin < 1e-5 (> 0.1%% of %zu)", low_margin, n * ds);

    /* agreement with the numpy computation done by the generator */
    if (!isnan(rc.check_mean_l0) &&
        fabs(mean_l0 - rc.check_mean_l0) > (double)tiny_margin / (double)n + 1e-9)
        fail(case_name, "mean L0 %.6f != numpy %.6f", mean_l0, rc.check_mean_l0);
    double sum_abs_xhat = 0.0, fin = 1.0;
    for (size_t i = 0; i < n * dout; i++) {
        sum_abs_xhat += fabs(xhat[i]);
        if (!isfinite(xhat[i]))
            fin = 0.0;
    }
    if (fin == 0.0)
        fail(case_name, "non-finite reconstruction");
    if (tiny_margin == 0 && !isnan(rc.check_sum_codes) && rel_diff(sum_codes, rc.check_sum_codes) > 1e-9)
        fail(case_name, "sum of codes %.9g != numpy %.9g", sum_codes, rc.check_sum_codes);
    if (tiny_margin == 0 && !isnan(rc.check_sum_abs_xhat) &&
        rel_diff(sum_abs_xhat, rc.check_sum_abs_xhat) > 1e-9)
        fail(case_name, "sum |xhat| %.9g != numpy %.9g", sum_abs_xhat, rc.check_sum_abs_xhat);

    /* transcoders: the target was generated as reconstruction + 5% noise, so FVU ~ 0.0025 */
    double fvu = NAN;
    if (rc.x_out) {
        double err = 0.0, var = 0.0;
        for (size_t o = 0; o < dout; o++) {
            double mean = 0.0;
            for (size_t t = 0; t < n; t++)
                mean += rc.x_out[t * dout + o];
            mean /= (double)n;
            for (size_t t = 0; t < n; t++) {
                double y = rc.x_out[t * dout + o], e = xhat[t * dout + o] - y;
                err += e * e;
                var += (y - mean) * (y - mean);
            }
        }
        fvu = err / var;
        if (!(fvu < 0.01))
            fail(case_name, "transcoder FVU %.4f vs acts_out (expected < %.2f)", fvu, 0.01);
    }

    printf("%s %-32s %-9s k=%-3d d_in=%-4d d_sae=%-5d d_out=%-4d n=%-5d L0 mean %6.2f [%d..%d]"
           " low-margin %ld",
           case_failed ? "FAIL" : "ok  ", case_name, ref_arch_name(rc.arch), rc.k, rc.d_in,
           rc.d_sae, rc.d_out, rc.n, mean_l0, min_l0, max_l0, low_margin);
    if (rc.x_out)
        printf(" FVU %.4f", fvu);
    printf("\n");
    free(codes);
    free(margin);
    free(xhat);
    ref_free(&rc);
}

static int has_meta(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/ref/meta.json", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char *names[MAX_CASES];
    int count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 2;
    }
    struct dirent *e;
    while ((e = readdir(d)) && count < MAX_CASES)
        if (e->d_name[0] != '.' && has_meta(dir, e->d_name))
            names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, cmp_str);

    int passed = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        run_case(dir, names[i]);
        if (case_failed)
            failed++;
        else
            passed++;
        free(names[i]);
    }
    if (count == 0) {
        printf("no cases with ref/meta.json under %s\n", dir);
        failed = 1;
    }
    printf("test_ref: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
