/* fixture.c — shared pieces of the fixture generators; see fixture.h. */
#include "fixture.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "../common/mfile.h"
#include "../common/npy.h"

static uint64_t rng_state;

static int have_spare;

void fx_seed(uint64_t seed)
{
    rng_state = seed;
    have_spare = 0;
}

static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double unif(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t fx_next(void)
{
    return splitmix64(&rng_state);
}

double fx_unif(void)
{
    return unif(&rng_state);
}

/* Marsaglia's polar method: two normals per accepted pair, no trigonometry. */
static double spare;

static inline double gauss(uint64_t *state, int *have, double *keep)
{
    if (*have) {
        *have = 0;
        return *keep;
    }
    double u, v, s;
    do {
        u = 2 * unif(state) - 1;
        v = 2 * unif(state) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double m = sqrt(-2 * log(s) / s);
    *keep = v * m;
    *have = 1;
    return u * m;
}

double fx_gauss(void)
{
    return gauss(&rng_state, &have_spare, &spare);
}

void fx_gauss_fill(float *out, long n, double scale)
{
    uint64_t st = rng_state;
    int have = have_spare;
    double keep = spare;
    for (long i = 0; i < n; i++)
        out[i] = (float)(scale * gauss(&st, &have, &keep));
    rng_state = st, have_spare = have, spare = keep;
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

/* The .npy v1 header of an array: magic, length, dict, padded to 64 bytes. */
static size_t npy_header(char out[320], const char *descr, const uint64_t *shape, int ndim)
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
    uint16_t hl = (uint16_t)(n + pad + 1);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    memcpy(out + 8, &hl, 2);
    memcpy(out + 10, hdr, (size_t)n);
    memset(out + 10 + n, ' ', (size_t)pad);
    out[10 + n + pad] = '\n';
    return (size_t)(10 + n + pad + 1);
}

FILE *fx_npy_begin(const char *path, const char *descr, const uint64_t *shape, int ndim)
{
    char hdr[320];
    size_t n = npy_header(hdr, descr, shape, ndim);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    if (write_all(f, hdr, n)) {
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

int fx_csr_init(fx_csr *c, uint64_t rows, uint64_t cols)
{
    memset(c, 0, sizeof *c);
    c->rows = rows, c->cols = cols;
    return (c->indptr = calloc(rows + 1, sizeof *c->indptr)) ? 0 : -1;
}

int fx_csr_put(fx_csr *c, uint32_t col, double v)
{
    if (c->nnz == c->cap) {
        uint64_t cap = c->cap ? c->cap * 2 : 1u << 20;
        int32_t *ix = realloc(c->indices, cap * sizeof *ix);
        if (ix)
            c->indices = ix;
        float *d = realloc(c->data, cap * sizeof *d);
        if (d)
            c->data = d;
        if (!ix || !d)
            return -1;
        c->cap = cap;
    }
    c->indices[c->nnz] = (int32_t)col;
    c->data[c->nnz++] = (float)v;
    return 0;
}

/* Sorts the row by column, stably (a key is column << 32 | place in the row), then
 * keeps the largest value of a repeated column. One array of keys moves half the
 * bytes of sorting the two arrays side by side; rows already in order (the BOS
 * rows, a third of all latents) are left as they are. */
void fx_csr_end_row(fx_csr *c)
{
    static uint64_t *key;
    static float *val;
    static uint64_t kcap;
    uint64_t b = (uint64_t)c->indptr[c->row], n = c->nnz - b, w = b;
    int32_t *ix = c->indices + b;
    float *d = c->data + b;
    uint64_t i = 1;
    while (i < n && ix[i - 1] <= ix[i])
        i++;
    if (i < n) {
        if (n > kcap) {
            uint64_t *k2 = realloc(key, n * 2 * sizeof *k2);
            float *v2 = k2 ? realloc(val, n * 2 * sizeof *v2) : NULL;
            if (k2)
                key = k2;
            if (!v2) {
                fputs("fixture: out of memory sorting a CSR row\n", stderr);
                exit(1);
            }
            val = v2, kcap = n * 2;
        }
        for (uint64_t j = 0; j < n; j++)
            key[j] = (uint64_t)(uint32_t)ix[j] << 32 | j, val[j] = d[j];
        for (uint64_t j = 1; j < n; j++) { /* insertion sort: rows are short */
            uint64_t k = key[j], q = j;
            for (; q > 0 && key[q - 1] > k; q--)
                key[q] = key[q - 1];
            key[q] = k;
        }
        for (uint64_t j = 0; j < n; j++)
            ix[j] = (int32_t)(key[j] >> 32), d[j] = val[(uint32_t)key[j]];
    }
    for (uint64_t j = b; j < c->nnz; j++) {
        if (w > b && c->indices[w - 1] == c->indices[j]) {
            if (c->data[j] > c->data[w - 1])
                c->data[w - 1] = c->data[j];
            continue;
        }
        c->indices[w] = c->indices[j], c->data[w++] = c->data[j];
    }
    c->nnz = w;
    c->indptr[++c->row] = (int64_t)w;
}

/* Each member is its .npy header and the array in memory, added as two fragments
 * (no temporary files: at 10M tokens those were 3.9 GB written and read once more). */
int fx_csr_write_npz(const fx_csr *c, const char *path)
{
    static const char *name[] = {"data", "indices", "indptr", "shape", "format"};
    int64_t shape[2] = {(int64_t)c->rows, (int64_t)c->cols};
    uint64_t n_nnz = c->nnz, n_ptr = c->rows + 1, n_shape = 2;
    const char *descr[] = {"<f4", "<i4", "<i8", "<i8", "|S3"};
    const void *data[] = {c->data, c->indices, c->indptr, shape, "csr"};
    const uint64_t *dims[] = {&n_nnz, &n_nnz, &n_ptr, &n_shape, NULL};
    size_t bytes[] = {n_nnz * 4, n_nnz * 4, n_ptr * 8, 16, 3};
    char hdr[5][320];
    int zerr = 0;
    unlink(path);
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_EXCL, &zerr);
    if (!z) {
        fprintf(stderr, "%s: cannot create the zip (libzip error %d)\n", path, zerr);
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        char member[32];
        snprintf(member, sizeof member, "%s.npy", name[i]);
        zip_buffer_fragment_t frag[2] = {
            {(zip_uint8_t *)hdr[i], npy_header(hdr[i], descr[i], dims[i], dims[i] ? 1 : 0)},
            {(zip_uint8_t *)data[i], bytes[i]}};
        zip_source_t *src = zip_source_buffer_fragment(z, frag, 2, 0);
        zip_int64_t at = src ? zip_file_add(z, member, src, ZIP_FL_ENC_UTF_8) : -1;
        if (at < 0 || zip_set_file_compression(z, (zip_uint64_t)at, ZIP_CM_STORE, 0)) {
            fprintf(stderr, "%s: %s\n", path, zip_strerror(z));
            if (src && at < 0)
                zip_source_free(src);
            zip_discard(z);
            unlink(path);
            return -1;
        }
    }
    if (zip_close(z)) {
        fprintf(stderr, "%s: %s\n", path, zip_strerror(z));
        zip_discard(z);
        unlink(path);
        return -1;
    }
    return 0;
}

void fx_csr_free(fx_csr *c)
{
    free(c->indptr), free(c->indices), free(c->data);
    memset(c, 0, sizeof *c);
}

/* Reads int32/int64 tokens [n_seq, ctx] (or [n] cut into rows of ctx). */
uint32_t *fx_load_tokens(const char *path, uint64_t *n, long *ctx)
{
    ldb_mfile f;
    ldb_npy a;
    ldb_err e;
    if (ldb_mfile_open(&f, path, &e) || ldb_npy_parse(&a, f.data, f.size, path, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return NULL;
    }
    if ((a.type != LDB_NPY_I32 && a.type != LDB_NPY_I64) || a.ndim < 1 || a.ndim > 2 ||
        !a.count) {
        fprintf(stderr, "%s: expected int32/int64 tokens [n_seq, ctx] or [n], got %s "
                "with %d dimensions\n", path, ldb_npy_type_name(a.type), a.ndim);
        ldb_mfile_close(&f);
        return NULL;
    }
    if (a.ndim == 2)
        *ctx = (long)a.shape[1];
    uint32_t *tok = malloc(a.count * sizeof *tok);
    for (uint64_t i = 0; tok && i < a.count; i++) {
        int64_t v = a.type == LDB_NPY_I32 ? ((const int32_t *)a.data)[i]
                                          : ((const int64_t *)a.data)[i];
        if (v < 0 || v > 0x7fffffff) {
            fprintf(stderr, "%s: token %llu is %lld, not a token id\n", path,
                    (unsigned long long)i, (long long)v);
            free(tok);
            tok = NULL;
        } else {
            tok[i] = (uint32_t)v;
        }
    }
    *n = a.count;
    ldb_mfile_close(&f);
    return tok;
}

double fx_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int fx_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
