/* fixture.c — shared pieces of the fixture generators; see fixture.h. */
#include "fixture.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t rng_state;

static int have_spare;

void fx_seed(uint64_t seed)
{
    rng_state = seed;
    have_spare = 0;
}

uint64_t fx_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double fx_unif(void)
{
    return (double)(fx_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* Marsaglia's polar method: two normals per accepted pair, no trigonometry. */
static double spare;

double fx_gauss(void)
{
    if (have_spare) {
        have_spare = 0;
        return spare;
    }
    double u, v, s;
    do {
        u = 2 * fx_unif() - 1;
        v = 2 * fx_unif() - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double m = sqrt(-2 * log(s) / s);
    spare = v * m;
    have_spare = 1;
    return u * m;
}

void fx_unit_rows(float *D, long n_rows, long d)
{
    for (long j = 0; j < n_rows; j++) {
        float *r = D + (size_t)j * d;
        double s = 0;
        for (long i = 0; i < d; i++) {
            r[i] = (float)fx_gauss();
            s += (double)r[i] * r[i];
        }
        double inv = 1 / sqrt(s);
        for (long i = 0; i < d; i++)
            r[i] = (float)(r[i] * inv);
    }
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

FILE *fx_npy_begin(const char *path, const char *descr, const uint64_t *shape, int ndim)
{
    char dims[160] = "", hdr[256];
    size_t o = 0;
    for (int i = 0; i < ndim; i++)
        o += (size_t)snprintf(dims + o, sizeof dims - o, "%llu,%s",
                              (unsigned long long)shape[i], i + 1 < ndim ? " " : "");
    if (ndim > 1)
        dims[o - 1] = 0; /* (a, b) but (a,) */
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, dims);
    int pad = (64 - (10 + n + 1) % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    uint16_t hl = (uint16_t)(n + pad + 1);
    int rc = write_all(f, "\x93NUMPY\x01\x00", 8) | write_all(f, &hl, 2) |
             write_all(f, hdr, (size_t)n);
    for (int i = 0; i < pad && !rc; i++)
        rc = write_all(f, " ", 1);
    if (rc || write_all(f, "\n", 1)) {
        int e = errno;
        fclose(f);
        errno = e;
        return NULL;
    }
    return f;
}

int fx_npy_write(const char *path, const char *descr, const uint64_t *shape, int ndim,
                 const void *data, size_t bytes)
{
    FILE *f = fx_npy_begin(path, descr, shape, ndim);
    if (!f)
        return -1;
    int rc = write_all(f, data, bytes);
    return fclose(f) | rc;
}

typedef struct { const char *name; const float *data; uint64_t rows, cols; } tensor;

/* A safetensors file of F32 tensors (cols == 0 means a vector). */
static int write_safetensors(const char *path, const tensor *t, int n)
{
    char hdr[4096];
    size_t o = 0;
    uint64_t off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        uint64_t bytes = t[i].rows * (t[i].cols ? t[i].cols : 1) * 4;
        char shape[64];
        if (t[i].cols)
            snprintf(shape, sizeof shape, "%llu,%llu", (unsigned long long)t[i].rows,
                     (unsigned long long)t[i].cols);
        else
            snprintf(shape, sizeof shape, "%llu", (unsigned long long)t[i].rows);
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":"
                              "[%s],\"data_offsets\":[%llu,%llu]}", t[i].name, shape,
                              (unsigned long long)off, (unsigned long long)(off + bytes));
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

int fx_write_gs2_dict(const char *dir, const float *D, const float *threshold, long d_in,
                      long d_sae, long l0, const char *model)
{
    char path[4096];
    size_t nd = (size_t)d_sae * d_in;
    float *Wt = malloc(nd * 4), *b_enc = calloc((size_t)d_sae, 4), *b_dec = calloc((size_t)d_in, 4);
    if (!Wt || !b_enc || !b_dec) {
        fprintf(stderr, "%s: out of memory\n", dir);
        free(Wt), free(b_enc), free(b_dec);
        return -1;
    }
    for (long j = 0; j < d_sae; j++)
        for (long i = 0; i < d_in; i++)
            Wt[(size_t)i * d_sae + j] = D[(size_t)j * d_in + i];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        fprintf(f, "{\"hf_hook_point_in\": \"model.layers.9.output\", \"hf_hook_point_out\": "
                   "\"model.layers.9.output\", \"width\": %ld, \"model_name\": \"%s\", "
                   "\"architecture\": \"jump_relu\", \"l0\": %ld, \"affine_connection\": false, "
                   "\"type\": \"sae\"}\n", d_sae, model, l0);
        rc = fclose(f);
    }
    if (!rc) {
        tensor ts[] = {
            {"w_enc", Wt, (uint64_t)d_in, (uint64_t)d_sae}, {"w_dec", D, (uint64_t)d_sae, (uint64_t)d_in},
            {"b_enc", b_enc, (uint64_t)d_sae, 0}, {"b_dec", b_dec, (uint64_t)d_in, 0},
            {"threshold", threshold, (uint64_t)d_sae, 0},
        };
        snprintf(path, sizeof path, "%s/params.safetensors", dir);
        rc = write_safetensors(path, ts, 5);
    }
    if (rc)
        perror(path);
    free(Wt), free(b_enc), free(b_dec);
    return rc;
}
