/* synth.c — writes a synthetic dictionary and activations with known sparse codes:
 * a random unit-norm dictionary D, Zipf-distributed sparse codes c, x = c.D + noise.
 * The dictionary is saved in the Gemma Scope 2 format (W_enc = D^T, jumprelu).
 * Used by `make demo` and `make bench-encode`; seeded, so runs repeat exactly. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"

static const char *USAGE =
    "usage: synth OUTDIR [--d-in 640] [--d-sae 16384] [--tokens 20000] [--l0 8]\n"
    "             [--seed 1] [--noise 0.05] [--ctx 128]\n"
    "writes OUTDIR/dict/{config.json,params.safetensors}, OUTDIR/acts.npy [n, d_in] and\n"
    "OUTDIR/tokens.npy [n / ctx, ctx] (int32; BOS = 2 first in each row, its activation\n"
    "row of large norm, as in real residual streams)\n";

int main(int argc, char **argv)
{
    const char *out = NULL;
    long d_in = 640, d_sae = 16384, tokens = 20000, l0 = 8, seed = 1;
    double noise = 0.05;
    long ctx = 128;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--d-in")) d_in = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--d-sae")) d_sae = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--tokens")) tokens = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--l0")) l0 = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--seed")) seed = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--noise")) noise = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--ctx")) ctx = atol(argv[++i]);
        else if (argv[i][0] != '-' && !out) out = argv[i];
        else { fputs(USAGE, stderr); return 2; }
    }
    if (ctx < 2)
        ctx = 2;
    tokens = (tokens + ctx - 1) / ctx * ctx; /* whole rows */
    if (!out || d_in < 2 || d_sae < 2 || tokens < 1 || l0 < 1 || l0 > d_sae) {
        fputs(USAGE, stderr);
        return 2;
    }
    fx_seed((uint64_t)seed);
    size_t nd = (size_t)d_sae * d_in;
    float *D = malloc(nd * 4), *thr = malloc(d_sae * 4);
    float *x = malloc((size_t)tokens * d_in * 4);
    double *cdf = malloc(d_sae * sizeof(double));
    if (!D || !thr || !x || !cdf) {
        fputs("synth: out of memory\n", stderr);
        return 1;
    }
    fx_unit_rows(D, d_sae, d_in);
    /* A true code of value v reaches x.D_j as v plus interference from the other
     * codes: sigma^2 = l0 E[v^2] / d_in + noise^2. With v = r sigma, r = 4.5 (1.1 +
     * 0.5 e^(0.4 g)), E[r^2] = 55.6, so sigma = noise / sqrt(1 - l0 55.6 / d_in).
     * Thresholds sit at 4.5 sigma (+-5%): false fires stay rare, planted codes fire. */
    double load = (double)l0 * 55.6 / (double)d_in;
    if (load >= 0.8) { /* too dense to recover cleanly: codes get noisier, L0 rises */
        fprintf(stderr, "synth: note: --l0 %ld is dense for --d-in %ld; above l0 %ld the "
                "encoder's codes include interference\n", l0, d_in, (long)(0.8 * d_in / 55.6));
        load = 0.8;
    }
    double sigma = noise / sqrt(1 - load);
    for (long j = 0; j < d_sae; j++)
        thr[j] = (float)(4.5 * sigma * (0.95 + 0.1 * fx_unif()));
    /* Zipf over latents (exponent 0.8), shuffled so frequency is not id order; the
     * last 1% never fire (dead latents). */
    long live = d_sae - d_sae / 100;
    double acc = 0;
    for (long j = 0; j < live; j++)
        cdf[j] = (acc += pow((double)(j + 1), -0.8));
    uint32_t *perm = malloc(d_sae * sizeof *perm);
    for (long j = 0; j < d_sae; j++)
        perm[j] = (uint32_t)j;
    for (long j = live - 1; j > 0; j--) {
        long k = (long)(fx_unif() * (j + 1));
        uint32_t t = perm[j];
        perm[j] = perm[k];
        perm[k] = t;
    }
    int32_t *tok = malloc((size_t)tokens * sizeof *tok);
    if (!tok) {
        fputs("synth: out of memory\n", stderr);
        return 1;
    }
    for (long t = 0; t < tokens; t++) {
        float *row = x + (size_t)t * d_in;
        if (t % ctx == 0) { /* BOS: a large-norm row that fires many latents */
            tok[t] = 2;
            for (long i = 0; i < d_in; i++)
                row[i] = (float)(40 * sigma * fx_gauss() / sqrt((double)d_in) * 4);
            continue;
        }
        tok[t] = 3 + (int32_t)(pow(fx_unif(), 3.0) * 4000); /* skewed towards low ids */
        for (long i = 0; i < d_in; i++)
            row[i] = (float)(noise * fx_gauss());
        long n = l0 / 2 + (long)(fx_unif() * (double)(l0 + 1)); /* mean ~l0 */
        for (long q = 0; q < n; q++) {
            double u = fx_unif() * acc;
            long lo = 0, hi = live - 1;
            while (lo < hi) {
                long mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1; else hi = mid;
            }
            uint32_t j = perm[lo];
            double v = 4.5 * sigma * (1.1 + 0.5 * exp(0.4 * fx_gauss()));
            for (long i = 0; i < d_in; i++)
                row[i] += (float)(v * D[(size_t)j * d_in + i]);
        }
    }
    char path[4096];
    mkdir(out, 0755);
    snprintf(path, sizeof path, "%s/dict", out);
    if (fx_write_gs2_dict(path, D, thr, d_in, d_sae, l0, "synthetic"))
        return 1;
    snprintf(path, sizeof path, "%s/tokens.npy", out);
    uint64_t tshape[2] = {(uint64_t)(tokens / ctx), (uint64_t)ctx}, xshape[2] = {(uint64_t)tokens, (uint64_t)d_in};
    if (fx_npy_write(path, "<i4", tshape, 2, tok, (size_t)tokens * 4)) {
        perror(path);
        return 1;
    }
    free(tok);
    snprintf(path, sizeof path, "%s/acts.npy", out);
    if (fx_npy_write(path, "<f4", xshape, 2, x, (size_t)tokens * d_in * 4)) {
        perror(path);
        return 1;
    }
    printf("synth: wrote %s/dict (%ld -> %ld, jumprelu) and %s/acts.npy (%ld tokens)\n", out, d_in,
           d_sae, out, tokens);
    free(D); free(thr); free(x); free(cdf); free(perm);
    return 0;
}
