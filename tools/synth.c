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

static const char *USAGE =
    "usage: synth OUTDIR [--d-in 640] [--d-sae 16384] [--tokens 20000] [--l0 8]\n"
    "             [--seed 1] [--noise 0.05] [--ctx 128]\n"
    "writes OUTDIR/dict/{config.json,params.safetensors}, OUTDIR/acts.npy [n, d_in] and\n"
    "OUTDIR/tokens.npy [n / ctx, ctx] (int32; BOS = 2 first in each row, its activation\n"
    "row of large norm, as in real residual streams)\n";

static uint64_t rng_state;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unif(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(void)
{
    double u = rng_unif() + 1e-300, v = rng_unif();
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

typedef struct { const char *name; const float *data; uint64_t rows, cols; } tensor;

/* Writes a safetensors file of F32 tensors (cols == 0 means a vector). */
static int write_safetensors(const char *path, const tensor *t, int n)
{
    char hdr[4096];
    size_t o = 0;
    uint64_t off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        uint64_t bytes = t[i].rows * (t[i].cols ? t[i].cols : 1) * 4;
        if (t[i].cols)
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":"
                                  "[%llu,%llu],\"data_offsets\":[%llu,%llu]}", t[i].name,
                                  (unsigned long long)t[i].rows, (unsigned long long)t[i].cols,
                                  (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":"
                                  "[%llu],\"data_offsets\":[%llu,%llu]}", t[i].name,
                                  (unsigned long long)t[i].rows, (unsigned long long)off,
                                  (unsigned long long)(off + bytes));
        off += bytes;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    while (o % 8)
        hdr[o++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint64_t len = o;
    int rc = write_all(f, &len, 8) | write_all(f, hdr, o);
    for (int i = 0; i < n && !rc; i++)
        rc = write_all(f, t[i].data, t[i].rows * (t[i].cols ? t[i].cols : 1) * 4);
    return fclose(f) | rc;
}

static int write_npy(const char *path, const float *x, uint64_t rows, uint64_t cols)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, "
                     "%llu), }", (unsigned long long)rows, (unsigned long long)cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint16_t hl = (uint16_t)(n + pad + 1);
    int rc = write_all(f, "\x93NUMPY\x01\x00", 8) | write_all(f, &hl, 2) | write_all(f, hdr, (size_t)n);
    for (int i = 0; i < pad && !rc; i++)
        rc = write_all(f, " ", 1);
    rc |= write_all(f, "\n", 1) | write_all(f, x, rows * cols * 4);
    return fclose(f) | rc;
}

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
    rng_state = (uint64_t)seed;
    size_t nd = (size_t)d_sae * d_in;
    float *D = malloc(nd * 4), *Wt = malloc(nd * 4), *thr = malloc(d_sae * 4);
    float *b_enc = calloc(d_sae, 4), *b_dec = calloc(d_in, 4);
    float *x = malloc((size_t)tokens * d_in * 4);
    double *cdf = malloc(d_sae * sizeof(double));
    if (!D || !Wt || !thr || !b_enc || !b_dec || !x || !cdf) {
        fputs("synth: out of memory\n", stderr);
        return 1;
    }
    for (long j = 0; j < d_sae; j++) { /* unit-norm rows */
        double s = 0;
        for (long i = 0; i < d_in; i++) {
            D[j * d_in + i] = (float)rng_gauss();
            s += (double)D[j * d_in + i] * D[j * d_in + i];
        }
        for (long i = 0; i < d_in; i++)
            D[j * d_in + i] = (float)(D[j * d_in + i] / sqrt(s));
    }
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
        thr[j] = (float)(4.5 * sigma * (0.95 + 0.1 * rng_unif()));
    for (long j = 0; j < d_sae; j++)
        for (long i = 0; i < d_in; i++)
            Wt[i * d_sae + j] = D[j * d_in + i];
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
        long k = (long)(rng_unif() * (j + 1));
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
                row[i] = (float)(40 * sigma * rng_gauss() / sqrt((double)d_in) * 4);
            continue;
        }
        tok[t] = 3 + (int32_t)(pow(rng_unif(), 3.0) * 4000); /* skewed towards low ids */
        for (long i = 0; i < d_in; i++)
            row[i] = (float)(noise * rng_gauss());
        long n = l0 / 2 + (long)(rng_unif() * (double)(l0 + 1)); /* mean ~l0 */
        for (long q = 0; q < n; q++) {
            double u = rng_unif() * acc;
            long lo = 0, hi = live - 1;
            while (lo < hi) {
                long mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1; else hi = mid;
            }
            uint32_t j = perm[lo];
            double v = 4.5 * sigma * (1.1 + 0.5 * exp(0.4 * rng_gauss()));
            for (long i = 0; i < d_in; i++)
                row[i] += (float)(v * D[(size_t)j * d_in + i]);
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/dict", out);
    mkdir(out, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/dict/config.json", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "{\"hf_hook_point_in\": \"model.layers.9.output\", \"hf_hook_point_out\": "
               "\"model.layers.9.output\", \"width\": %ld, \"model_name\": \"synthetic\", "
               "\"architecture\": \"jump_relu\", \"l0\": %ld, \"affine_connection\": false, "
               "\"type\": \"sae\"}\n", d_sae, l0);
    fclose(f);
    tensor ts[] = {
        {"w_enc", Wt, (uint64_t)d_in, (uint64_t)d_sae}, {"w_dec", D, (uint64_t)d_sae, (uint64_t)d_in},
        {"b_enc", b_enc, (uint64_t)d_sae, 0}, {"b_dec", b_dec, (uint64_t)d_in, 0},
        {"threshold", thr, (uint64_t)d_sae, 0},
    };
    snprintf(path, sizeof path, "%s/dict/params.safetensors", out);
    if (write_safetensors(path, ts, 5)) {
        perror(path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/tokens.npy", out);
    {
        char hdr[256];
        int n = snprintf(hdr, sizeof hdr, "{'descr': '<i4', 'fortran_order': False, 'shape': "
                         "(%ld, %ld), }", tokens / ctx, ctx);
        int pad = (64 - (10 + n + 1) % 64) % 64;
        FILE *tf = fopen(path, "wb");
        uint16_t hl = (uint16_t)(n + pad + 1);
        int bad = !tf || write_all(tf, "\x93NUMPY\x01\x00", 8) || write_all(tf, &hl, 2) ||
                  write_all(tf, hdr, (size_t)n);
        for (int i = 0; i < pad && !bad; i++)
            bad = write_all(tf, " ", 1);
        bad = bad || write_all(tf, "\n", 1) || write_all(tf, tok, (size_t)tokens * 4);
        if (tf)
            bad |= fclose(tf) != 0;
        if (bad) {
            perror(path);
            return 1;
        }
    }
    free(tok);
    snprintf(path, sizeof path, "%s/acts.npy", out);
    if (write_npy(path, x, (uint64_t)tokens, (uint64_t)d_in)) {
        perror(path);
        return 1;
    }
    printf("synth: wrote %s/dict (%ld -> %ld, jumprelu) and %s/acts.npy (%ld tokens)\n", out, d_in,
           d_sae, out, tokens);
    free(D); free(Wt); free(thr); free(b_enc); free(b_dec); free(x); free(cdf); free(perm);
    return 0;
}
