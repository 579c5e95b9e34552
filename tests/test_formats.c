/* test_formats.c — the file parsers of common/ and sae/: safetensors (golden bytes
 * checked in), .npy and .npz written by numpy, and every malformed file of the
 * fixture generator's bad/ folder. usage: test_formats FIXTURES_DIR GOLDEN_DIR */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/half.h"
#include "../common/mfile.h"
#include "../common/npy.h"
#include "../sae/tensors.h"
#include "check.h"
#include "latentdb.h"

static const char *fx, *golden;

/* dir/a or dir/a/b in a rotating static buffer (valid for the next 3 calls). */
static char *path3(const char *dir, const char *a, const char *b)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    if (b)
        snprintf(buf[i], sizeof buf[i], "%s/%s/%s", dir, a, b);
    else
        snprintf(buf[i], sizeof buf[i], "%s/%s", dir, a);
    return buf[i];
}
#define path2(a, b) path3(a, b, NULL)

static float f32_at(const ldb_tensor *t, uint64_t i)
{
    float v;
    ldb_to_f32(&v, t->data + i * t->elsize, t->dtype, 1);
    return v;
}

static void test_golden_safetensors(void)
{
    ldb_tensors ts;
    ldb_err e = {{0}};
    int rc = ldb_safetensors_open(&ts, path2(golden, "tiny.safetensors"), &e);
    CHECK(rc == LDB_OK, "open golden: %s", e.msg);
    if (rc)
        return;
    CHECK(ts.n == 3, "3 tensors, got %zu", ts.n);
    const ldb_tensor *a = ldb_tensors_find(&ts, "a"), *b = ldb_tensors_find(&ts, "B"),
                     *c = ldb_tensors_find(&ts, "c"); /* names match ignoring case */
    CHECK(a && b && c, "find a, B (b), c (C)");
    if (!a || !b || !c)
        goto out;
    CHECK(a->dtype == LDB_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3, "a shape");
    static const float av[] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
    for (int i = 0; i < 6; i++)
        CHECK(f32_at(a, (uint64_t)i) == av[i], "a[%d] = %g, expected %g", i, f32_at(a, (uint64_t)i), av[i]);
    CHECK(b->dtype == LDB_F16 && b->count == 4, "b is F16[4]");
    CHECK(f32_at(b, 0) == 1.0f && f32_at(b, 1) == -0.5f && f32_at(b, 2) == 65504.0f,
          "b = 1, -0.5, 65504: %g %g %g", f32_at(b, 0), f32_at(b, 1), f32_at(b, 2));
    CHECK(f32_at(b, 3) == 5.960464477539063e-08f, "b[3] is the smallest f16 subnormal: %g",
          f32_at(b, 3));
    CHECK(c->dtype == LDB_BF16 && c->count == 3, "C is BF16[3]");
    CHECK(f32_at(c, 0) == 1.0f && f32_at(c, 1) == -2.0f && f32_at(c, 2) == 3.140625f,
          "C = 1, -2, 3.140625: %g %g %g", f32_at(c, 0), f32_at(c, 1), f32_at(c, 2));
    CHECK(ts.metadata_json && strstr(ts.metadata_json, "\"pt\""), "metadata kept");
out:
    ldb_tensors_close(&ts);
}

static void test_half_exhaustive(void)
{
    /* every finite f16 round-trips through the reference widening in float */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ldb_f16_to_f32((uint16_t)h);
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double ref = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                             : ldexp(1024.0 + m, (int)e - 25);
        if (h & 0x8000)
            ref = -ref;
        if (!(isnan(ref) ? isnan(f) : (double)f == ref))
            bad++;
    }
    CHECK(bad == 0, "%d f16 values convert wrongly", bad);
    uint16_t src[20];
    float dst[20];
    for (int i = 0; i < 20; i++)
        src[i] = (uint16_t)(0x3c00 + 37 * i);
    ldb_to_f32(dst, src, LDB_F16, 20); /* vector path + tail */
    int vb = 0;
    for (int i = 0; i < 20; i++)
        vb += dst[i] != ldb_f16_to_f32(src[i]);
    CHECK(vb == 0, "bulk f16 conversion differs from scalar in %d places", vb);
}

static void test_npy_numpy(void)
{
    /* acts.npy of every case was written by numpy's np.save */
    static const char *cases[] = {"saelens_jumprelu", "saelens_standard_f16"};
    for (int i = 0; i < 2; i++) {
        ldb_mfile f;
        ldb_npy a;
        ldb_err e = {{0}};
        int rc = ldb_mfile_open(&f, path3(fx, cases[i], "acts.npy"), &e);
        if (!rc)
            rc = ldb_npy_parse(&a, f.data, f.size, "acts.npy", &e);
        CHECK(rc == LDB_OK, "%s/acts.npy: %s", cases[i], e.msg);
        if (!rc) {
            CHECK(a.ndim == 2 && a.shape[0] == 300 && a.shape[1] == 64, "shape [300, 64]");
            CHECK(a.type == (i ? LDB_NPY_F16 : LDB_NPY_F32), "dtype %s", ldb_npy_type_name(a.type));
            CHECK(a.data_offset % 64 == 0, "numpy aligns data to 64 bytes: %zu", a.data_offset);
        }
        ldb_mfile_close(&f);
    }
    /* header edge cases built in memory */
    static const struct { const char *hdr; int ok; const char *msg; } h[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, ""},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", 1, ""},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 0, "big-endian"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 0, "Fortran"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", 0, "object"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 0, "not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
         0, "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", 0, "truncated"},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        uint8_t buf[512] = "\x93NUMPY\x01\x00";
        size_t n = strlen(h[i].hdr);
        buf[8] = (uint8_t)n;
        buf[9] = 0;
        memcpy(buf + 10, h[i].hdr, n);
        memset(buf + 10 + n, 0, 48); /* 6 float32 or int64 elements worth of data */
        ldb_npy a;
        ldb_err e = {{0}};
        int rc = ldb_npy_parse(&a, buf, 10 + n + 48, "mem.npy", &e);
        if (h[i].ok)
            CHECK(rc == LDB_OK && a.count == 6, "header %zu should parse: %s", i, e.msg);
        else
            CHECK(rc != LDB_OK && strstr(e.msg, h[i].msg) && strstr(e.msg, "mem.npy"),
                  "header %zu: expected an error with '%s', got rc %d '%s'", i, h[i].msg, rc, e.msg);
    }
}

static void test_npz(void)
{
    static const char *cases[] = {"gemmascope1_npz", "gemmascope1_npz_compressed"};
    for (int i = 0; i < 2; i++) {
        ldb_tensors ts;
        ldb_err e = {{0}};
        int rc = ldb_npz_open(&ts, path3(fx, cases[i], "params.npz"), &e);
        CHECK(rc == LDB_OK, "%s: %s", cases[i], e.msg);
        if (rc)
            continue;
        CHECK(ts.n == 5, "5 members, got %zu", ts.n);
        const ldb_tensor *w = ldb_tensors_find(&ts, "W_enc");
        CHECK(w && w->ndim == 2 && w->shape[0] == 64 && w->shape[1] == 256, "W_enc [64, 256]");
        ldb_tensors_close(&ts);
    }
}

/* Opens a bad file through the parser that would meet it; the error must name the
 * file and say what is wrong. */
static void expect_bad(const char *name, const char *want)
{
    const char *p = path3(fx, "bad", name);
    ldb_err e = {{0}};
    int rc;
    size_t n = strlen(name);
    if (n > 12 && !strcmp(name + n - 12, ".safetensors")) {
        ldb_tensors ts;
        rc = ldb_safetensors_open(&ts, p, &e);
        if (!rc)
            ldb_tensors_close(&ts);
    } else if (n > 4 && !strcmp(name + n - 4, ".npz")) {
        ldb_tensors ts;
        rc = ldb_npz_open(&ts, p, &e);
        if (!rc)
            ldb_tensors_close(&ts);
    } else if (n > 4 && !strcmp(name + n - 4, ".npy")) {
        ldb_mfile f;
        ldb_npy a;
        rc = ldb_mfile_open(&f, p, &e);
        if (!rc)
            rc = ldb_npy_parse(&a, f.data, f.size, p, &e);
        ldb_mfile_close(&f);
    } else {
        ldb_dict *d = NULL;
        rc = ldb_dict_open(p, &d);
        snprintf(e.msg, sizeof e.msg, "%s", ldb_dict_errmsg(d));
        ldb_dict_close(d);
    }
    CHECK(rc != LDB_OK, "%s must be refused", name);
    CHECK(strstr(e.msg, name) != NULL, "%s: message must name the file: '%s'", name, e.msg);
    CHECK(strstr(e.msg, want) != NULL, "%s: message must say '%s': '%s'", name, want, e.msg);
}

static void test_bad(void)
{
    expect_bad("truncated.safetensors", "not inside");
    expect_bad("hdr_past_eof.safetensors", "runs past the end");
    expect_bad("overlap.safetensors", "overlap");
    expect_bad("hole.safetensors", "hole");
    expect_bad("unknown_dtype.safetensors", "unknown dtype 'F8_E9'");
    expect_bad("object.npy", "object");
    expect_bad("truncated.npy", "truncated");
    expect_bad("npz_truncated.npz", "zip");
    expect_bad("nan_weights", "'W_enc' has NaN at [3, 7]");
    expect_bad("wrong_shape", "'b_enc' has shape [257]; expected [256]");
}

/* Header limits that numpy cannot produce: built in a temp file. */
static void test_safetensors_limits(void)
{
    static const struct { const char *json; const char *want; } c[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "need 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "bad shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
         "overflow"},
        {"[1,2]", "not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "cover 4 data bytes"},
    };
    char tmpl[] = "/tmp/ldb_st_XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    close(fd);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        FILE *f = fopen(tmpl, "wb");
        uint64_t n = strlen(c[i].json);
        fwrite(&n, 8, 1, f);
        fwrite(c[i].json, 1, n, f);
        fwrite("\0\0\0\0\0\0\0\0", 1, 8, f); /* 8 data bytes */
        fclose(f);
        ldb_tensors ts;
        ldb_err e = {{0}};
        int rc = ldb_safetensors_open(&ts, tmpl, &e);
        if (!rc)
            ldb_tensors_close(&ts);
        CHECK(rc != LDB_OK && strstr(e.msg, c[i].want), "case %zu: want '%s', got '%s'", i,
              c[i].want, e.msg);
    }
    /* header length over the 100 MB limit */
    FILE *f = fopen(tmpl, "wb");
    uint64_t big = 100000001;
    fwrite(&big, 8, 1, f);
    fclose(f);
    ldb_tensors ts;
    ldb_err e = {{0}};
    int rc = ldb_safetensors_open(&ts, tmpl, &e);
    CHECK(rc == LDB_EFORMAT && strstr(e.msg, "100 MB"), "100 MB limit: %s", e.msg);
    unlink(tmpl);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_formats FIXTURES_DIR GOLDEN_DIR\n");
        return 2;
    }
    fx = argv[1];
    golden = argv[2];
    test_golden_safetensors();
    test_half_exhaustive();
    test_npy_numpy();
    test_npz();
    test_bad();
    test_safetensors_limits();
    return test_summary("test_formats");
}
