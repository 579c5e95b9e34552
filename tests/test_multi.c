/* test_multi.c — multi-layer dictionaries (cross-layer transcoders, crosscoders):
 * each fixture (written by numpy: tests/fixtures/gen_multilayer.py, thresholds placed
 * away from every pre-activation) is opened, encoded from one [n, layers, d_in] array
 * and from per-layer arrays at several tile sizes, and compared with numpy's codes:
 * the firing sets exactly, the values within the stored precision; decoded with the
 * causal rule and compared with numpy's reconstruction; malformed folders are refused
 * naming the file and the tensor.
 * usage: test_multi FIXTURES_DIR */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "check.h"
#include "latentdb.h"

typedef struct mcase {
    char dir[512];
    uint32_t n, n_layers, d_in, d_sae, d_out; /* d_sae: per layer */
    int bf16, affine;
    uint64_t ignored;
    float *x, *codes, *xhat;   /* ref/: [n][L][d_in], [n][L*d_sae], [n][L][d_out] */
} mcase;

static float *read_f32(const char *dir, const char *name, size_t count)
{
    char p[640];
    snprintf(p, sizeof p, "%s/ref/%s", dir, name);
    FILE *f = fopen(p, "rb");
    float *a = malloc(count * sizeof *a);
    size_t got = f && a ? fread(a, sizeof *a, count, f) : 0;
    if (f)
        fclose(f);
    if (got != count) {
        fprintf(stderr, "%s: %zu of %zu floats\n", p, got, count);
        free(a);
        return NULL;
    }
    return a;
}

static int load_case(const char *fx, const char *name, mcase *c)
{
    char p[640], *text = NULL;
    size_t len = 0;
    ldb_err e;
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s/multi/%s", fx, name);
    snprintf(p, sizeof p, "%s/ref/meta.json", c->dir);
    if (ldb_file_read_all(p, 1 << 20, &text, &len, &e))
        return -1;
    cJSON *m = cJSON_ParseWithLength(text, len);
    free(text);
    if (!m)
        return -1;
#define NUM(k) (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(m, k))
    c->n = NUM("n"), c->n_layers = NUM("n_layers"), c->d_in = NUM("d_in"), c->d_sae = NUM("d_sae");
    c->d_out = NUM("d_out"), c->ignored = NUM("ignored_nonzero");
    c->bf16 = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m, "weights_dtype")), "BF16");
    c->affine = cJSON_IsTrue(cJSON_GetObjectItem(m, "affine"));
#undef NUM
    cJSON_Delete(m);
    c->x = read_f32(c->dir, "x.f32", (size_t)c->n * c->n_layers * c->d_in);
    c->codes = read_f32(c->dir, "codes.f32", (size_t)c->n * c->n_layers * c->d_sae);
    c->xhat = read_f32(c->dir, "xhat.f32", (size_t)c->n * c->n_layers * c->d_out);
    return c->x && c->codes && c->xhat ? 0 : -1;
}

static void free_case(mcase *c)
{
    free(c->x);
    free(c->codes);
    free(c->xhat);
}

/* The codes of an encode, dense; the tile rows are checked as they come. */
typedef struct sink {
    ldb_dict *d;
    const mcase *c;
    float *dense;              /* n x total */
    float *hat;                /* n x L x d_out, decoded tile by tile */
    uint64_t next_row;
    int order_ok, decode_rc;
} sink;

static int collect(void *arg, const ldb_codes *t)
{
    sink *s = arg;
    uint32_t total = s->c->n_layers * s->c->d_sae;
    if (t->row0 != s->next_row)
        s->order_ok = 0;
    s->next_row = t->row0 + t->n_rows;
    for (uint32_t r = 0; r < t->n_rows; r++)
        for (uint64_t i = t->start[r]; i < t->start[r + 1]; i++) {
            if (i > t->start[r] && t->latent[i] <= t->latent[i - 1])
                s->order_ok = 0;
            if (t->latent[i] >= total)
                s->order_ok = 0;
            else
                s->dense[(t->row0 + r) * total + t->latent[i]] = t->value[i];
        }
    if (s->hat && !s->decode_rc) {
        const mcase *c = s->c;
        s->decode_rc = ldb_dict_decode(s->d, t, c->x + t->row0 * c->n_layers * c->d_in, LDB_F32,
                                       s->hat + t->row0 * c->n_layers * c->d_out);
    }
    return 0;
}

/* The encode's codes against numpy's: the same firing set, values within the
 * stored precision (bf16 weights: one bf16 ulp, 2^-8 relative; f32: 1e-5). */
static void compare_codes(const char *what, const mcase *c, const float *got)
{
    uint64_t total = (uint64_t)c->n_layers * c->d_sae, flips = 0, bad = 0, fires = 0;
    double tol = c->bf16 ? 1.0 / 256 : 1e-5, worst = 0;
    for (uint64_t i = 0; i < (uint64_t)c->n * total; i++) {
        double g = got[i], r = c->codes[i];
        fires += r != 0;
        if ((g != 0) != (r != 0)) {
            if (flips++ < 3)
                fprintf(stderr, "  %s: row %llu latent %llu (layer %llu): got %.7g, numpy %.7g\n",
                        what, (unsigned long long)(i / total), (unsigned long long)(i % total),
                        (unsigned long long)(i % total / c->d_sae), g, r);
            continue;
        }
        double err = fabs(g - r) / fmax(fabs(r), 1e-3);
        worst = err > worst ? err : worst;
        bad += err > tol;
    }
    CHECK(fires > 0 && flips == 0, "%s: the firing sets are equal (%llu codes fire in one only, "
          "of %llu)", what, (unsigned long long)flips, (unsigned long long)fires);
    CHECK(bad == 0, "%s: %llu values differ by more than %g relative (worst %.3g)", what,
          (unsigned long long)bad, tol, worst);
}

static void compare_decode(const char *what, const mcase *c, const float *hat)
{
    uint64_t n = (uint64_t)c->n * c->n_layers * c->d_out, bad = 0;
    double worst = 0;
    for (uint64_t i = 0; i < n; i++) {
        double err = fabs((double)hat[i] - c->xhat[i]) / fmax(fabs(c->xhat[i]), 0.1);
        worst = err > worst ? err : worst;
        bad += err > 1e-4;
    }
    CHECK(bad == 0, "%s: the causal decode matches numpy's to 1e-4 (%llu differ, worst %.3g)",
          what, (unsigned long long)bad, worst);
}

static void test_case(const char *fx, const char *name)
{
    mcase c;
    if (load_case(fx, name, &c)) {
        CHECK(0, "%s: cannot read the fixture's ref/", name);
        free_case(&c);
        return;
    }
    char path[640];
    snprintf(path, sizeof path, "%s/dict", c.dir);
    ldb_dict *d = NULL;
    int rc = ldb_dict_open(path, &d);
    CHECK(rc == LDB_OK, "%s: open: %s", name, ldb_dict_errmsg(d));
    if (rc) {
        ldb_dict_close(d);
        free_case(&c);
        return;
    }
    const ldb_dict_info *in = ldb_dict_get_info(d);
    uint32_t total = c.n_layers * c.d_sae;
    CHECK(in->n_layers == c.n_layers && in->d_sae == total && in->d_in == c.d_in &&
          in->d_out == c.d_out, "%s: %u layers, %u latents, %u -> %u (got %u, %u, %u -> %u)",
          name, c.n_layers, total, c.d_in, c.d_out, in->n_layers, in->d_sae, in->d_in, in->d_out);
    CHECK(!strcmp(in->architecture, "jumprelu") && in->has_skip == c.affine,
          "%s: jumprelu, skip %d (got %s, %d)", name, c.affine, in->architecture, in->has_skip);
    int offsets_ok = 1;
    for (uint32_t l = 0; l < c.n_layers; l++) {
        const ldb_dict_layer *ly = ldb_dict_get_layer(d, l);
        offsets_ok &= ly && ly->layer == l && ly->offset == l * c.d_sae && ly->d_sae == c.d_sae &&
                      ly->d_in == c.d_in;
    }
    CHECK(offsets_ok && !ldb_dict_get_layer(d, c.n_layers), "%s: layer l's latents start at "
          "l x %u", name, c.d_sae);

    size_t codes_bytes = (size_t)c.n * total * sizeof(float);
    size_t hat_bytes = (size_t)c.n * c.n_layers * c.d_out * sizeof(float);
    float *first = NULL;
    static const uint32_t tiles[] = {0, 7, 64};
    for (size_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++) {
        ldb_encoder_opts o;
        ldb_encoder_opts_init(&o);
        o.tile_rows = tiles[ti];
        ldb_encoder *e = NULL;
        CHECK(ldb_encoder_new(d, &o, &e) == LDB_OK, "%s: encoder: %s", name, ldb_encoder_errmsg(e));
        sink s = {d, &c, calloc(1, codes_bytes), calloc(1, hat_bytes), 0, 1, 0};
        char what[160];
        snprintf(what, sizeof what, "%s one array, tile %u", name, tiles[ti]);
        rc = ldb_encoder_encode(e, c.x, LDB_F32, c.n, collect, &s);
        CHECK(rc == LDB_OK && s.order_ok && s.next_row == c.n, "%s: encode (%s), rows in order, "
              "ids ascending", what, ldb_encoder_errmsg(e));
        compare_codes(what, &c, s.dense);
        CHECK(s.decode_rc == LDB_OK, "%s: decode: %s", what, ldb_dict_errmsg(d));
        compare_decode(what, &c, s.hat);
        if (!first) {
            first = s.dense;
            s.dense = NULL;
        }
        /* the same rows from per-layer arrays (rows back to back) */
        float *per = malloc((size_t)c.n * c.n_layers * c.d_in * sizeof *per);
        const void *xs[8];
        for (uint32_t l = 0; l < c.n_layers; l++) {
            for (uint32_t r = 0; r < c.n; r++)
                memcpy(per + ((size_t)l * c.n + r) * c.d_in,
                       c.x + ((size_t)r * c.n_layers + l) * c.d_in, c.d_in * sizeof(float));
            xs[l] = per + (size_t)l * c.n * c.d_in;
        }
        sink s2 = {d, &c, calloc(1, codes_bytes), NULL, 0, 1, 0};
        snprintf(what, sizeof what, "%s per-layer arrays, tile %u", name, tiles[ti]);
        rc = ldb_encoder_encode_layers(e, xs, 0, LDB_F32, c.n, collect, &s2);
        CHECK(rc == LDB_OK && s2.order_ok, "%s: encode: %s", what, ldb_encoder_errmsg(e));
        compare_codes(what, &c, s2.dense);
        /* and the strided view of the one array: the codes of the one-array encode */
        const void *xv[8];
        for (uint32_t l = 0; l < c.n_layers; l++)
            xv[l] = c.x + (size_t)l * c.d_in;
        sink s3 = {d, &c, calloc(1, codes_bytes), NULL, 0, 1, 0};
        rc = ldb_encoder_encode_layers(e, xv, (size_t)c.n_layers * c.d_in, LDB_F32, c.n, collect,
                                       &s3);
        CHECK(rc == LDB_OK && !memcmp(s3.dense, s.dense ? s.dense : first, codes_bytes),
              "%s tile %u: a strided view gives the one-array codes bit for bit", name, tiles[ti]);
        CHECK(ldb_encoder_encode_layers(e, xv, c.d_in - 1, LDB_F32, c.n, collect, &s3) ==
                  LDB_EINVAL && strstr(ldb_encoder_errmsg(e), "row_stride"),
              "%s: a row stride shorter than a row is refused: %s", name, ldb_encoder_errmsg(e));
        free(per);
        free(s.dense);
        free(s.hat);
        free(s2.dense);
        free(s3.dense);
        ldb_encoder_free(e);
    }
    CHECK(ldb_dict_ignored_decoder(d) == c.ignored, "%s: %llu non-zero decoder entries for "
          "earlier outputs counted (numpy wrote %llu)", name,
          (unsigned long long)ldb_dict_ignored_decoder(d), (unsigned long long)c.ignored);
    char sha[65], sha2[65];
    CHECK(ldb_dict_sha256(d, sha) == LDB_OK && strlen(sha) == 64, "%s: sha256: %s", name,
          ldb_dict_errmsg(d));
    char *desc = ldb_dict_describe(d);
    cJSON *j = desc ? cJSON_Parse(desc) : NULL;
    const cJSON *ls = j ? cJSON_GetObjectItem(j, "layers") : NULL;
    CHECK(cJSON_GetArraySize(ls) == (int)c.n_layers &&
          cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(ls, 1), "offset")) == c.d_sae &&
          cJSON_GetNumberValue(cJSON_GetObjectItem(j, "n_layers")) == c.n_layers,
          "%s: describe lists the layers with their offsets: %s", name, desc ? desc : "(null)");
    cJSON_Delete(j);
    ldb_free(desc);
    ldb_dict_close(d);
    /* the hash covers every layer file: reopened, the same */
    CHECK(ldb_dict_open(path, &d) == LDB_OK && ldb_dict_sha256(d, sha2) == LDB_OK &&
          !strcmp(sha, sha2), "%s: the SHA-256 is stable", name);
    ldb_dict_close(d);
    free(first);
    free_case(&c);
}

/* Malformed folders: refused, the message naming the file and what is wrong. */
static void test_bad(const char *fx)
{
    static const struct {
        const char *name, *want1, *want2;
    } bad[] = {
        {"missing_layer", "params_layer_1.safetensors is missing", "layers 0..0 and 2"},
        {"d_in_mismatch", "params_layer_1.safetensors", "every layer must agree"},
        {"wdec_layers", "params_layer_2.safetensors: tensor 'w_dec' has shape [24, 2, 16]",
         "3 output layers"},
        {"last_layer_missing", "tensor 'w_dec' has shape [24, 3, 16]", "2 layer files"},
        {"hooks_vs_files", "'hf_hook_point_in' lists 3 hooks", "holds 2 layer files"},
        {"ct_missing_dec", "W_dec_1.safetensors is missing", "layer 1"},
        {"no_threshold", "params_layer_0.safetensors: tensor 'threshold' is missing", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[640];
        snprintf(path, sizeof path, "%s/multi/bad/%s", fx, bad[i].name);
        ldb_dict *d = NULL;
        int rc = ldb_dict_open(path, &d);
        const char *m = ldb_dict_errmsg(d);
        CHECK(rc != LDB_OK && strstr(m, bad[i].want1) && strstr(m, bad[i].want2),
              "%s: refused naming '%s' and '%s': %s", bad[i].name, bad[i].want1, bad[i].want2, m);
        ldb_dict_close(d);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_multi FIXTURES_DIR\n");
        return 2;
    }
    static const char *cases[] = {"clt3_affine_gs2", "clt3_gs2", "clt3_ct", "crosscoder4_gs2"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(argv[1], cases[i]);
    test_bad(argv[1]);
    return test_summary("test_multi");
}
