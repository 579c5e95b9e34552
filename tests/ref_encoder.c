/* ref_encoder.c - independent dense reference encoder/decoder for latentdb tests.
 * Reads ref/meta.json (libcjson) and raw little-endian f32 arrays written by
 * tests/fixtures/gen_fixtures.py; computes codes, decision margins and reconstructions
 * with straightforward double-precision loops (no BLAS, no code from sae/).
 * See ref_encoder.h for the exact semantics of each architecture. */
#include "ref_encoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ file helpers */

static char *read_whole(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* Load DIR/ref/NAME.f32 holding exactly COUNT floats. Missing file: NULL (error if required). */
static float *load_f32(const char *case_dir, const char *name, size_t count, int required, int *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ref/%s.f32", case_dir, name);
    size_t len = 0;
    unsigned char *raw = (unsigned char *)read_whole(path, &len);
    if (!raw) {
        if (required) {
            fprintf(stderr, "ref_load: cannot read %s\n", path);
            *err = 1;
        }
        return NULL;
    }
    if (len != count * 4) {
        fprintf(stderr, "ref_load: %s has %zu bytes, expected %zu\n", path, len, count * 4);
        free(raw);
        *err = 1;
        return NULL;
    }
    float *out = malloc(count * sizeof(float) + 1);
    if (!out) {
        free(raw);
        *err = 1;
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = raw + 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&out[i], &u, 4);
    }
    free(raw);
    return out;
}

/* ------------------------------------------------------------------ meta.json */

static int json_int(const cJSON *root, const char *key, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble) {
        fprintf(stderr, "ref_load: meta.json: \"%s\" missing or not an integer\n", key);
        return -1;
    }
    *out = (int)it->valuedouble;
    return 0;
}

static const char *json_str(const cJSON *root, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsString(it)) {
        fprintf(stderr, "ref_load: meta.json: \"%s\" missing or not a string\n", key);
        return NULL;
    }
    return it->valuestring;
}

static double json_num_or_nan(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

const char *ref_arch_name(ref_arch a)
{
    switch (a) {
    case REF_ARCH_JUMPRELU: return "jumprelu";
    case REF_ARCH_RELU: return "relu";
    case REF_ARCH_GATED: return "gated";
    case REF_ARCH_TOPK: return "topk";
    case REF_ARCH_RELU_TOPK: return "relu_topk";
    case REF_ARCH_GROUPMAX: return "groupmax";
    }
    return "?";
}

static int parse_meta(const char *case_dir, ref_case *rc, int *has_skip)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ref/meta.json", case_dir);
    size_t len = 0;
    char *text = read_whole(path, &len);
    if (!text) {
        fprintf(stderr, "ref_load: cannot read %s\n", path);
        return -1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "ref_load: %s is not a JSON object\n", path);
        cJSON_Delete(root);
        return -1;
    }
    int rcode = -1;
    const char *arch, *norm, *skip;
    if (json_int(root, "d_in", &rc->d_in) || json_int(root, "d_sae", &rc->d_sae) ||
        json_int(root, "d_out", &rc->d_out) || json_int(root, "n", &rc->n) ||
        json_int(root, "k", &rc->k))
        goto done;
    if (!(arch = json_str(root, "arch")) || !(norm = json_str(root, "norm")) ||
        !(skip = json_str(root, "skip")))
        goto done;

    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "sub_b_dec");
    if (!cJSON_IsBool(sub)) {
        fprintf(stderr, "ref_load: meta.json: \"sub_b_dec\" missing or not a bool\n");
        goto done;
    }
    rc->sub_b_dec = cJSON_IsTrue(sub);
    rc->is_transcoder = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "transcoder"));

    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(root, "name");
    snprintf(rc->name, sizeof rc->name, "%s", cJSON_IsString(nm) ? nm->valuestring : case_dir);

    if (!strcmp(arch, "jumprelu")) rc->arch = REF_ARCH_JUMPRELU;
    else if (!strcmp(arch, "relu")) rc->arch = REF_ARCH_RELU;
    else if (!strcmp(arch, "gated")) rc->arch = REF_ARCH_GATED;
    else if (!strcmp(arch, "topk")) rc->arch = REF_ARCH_TOPK;
    else if (!strcmp(arch, "relu_topk")) rc->arch = REF_ARCH_RELU_TOPK;
    else if (!strcmp(arch, "groupmax")) rc->arch = REF_ARCH_GROUPMAX;
    else {
        fprintf(stderr, "ref_load: unknown arch \"%s\"\n", arch);
        goto done;
    }
    if (!strcmp(norm, "none")) rc->norm = REF_NORM_NONE;
    else if (!strcmp(norm, "constant_norm_rescale")) rc->norm = REF_NORM_CONSTANT_NORM_RESCALE;
    else if (!strcmp(norm, "layer_norm")) rc->norm = REF_NORM_LAYER_NORM;
    else {
        fprintf(stderr, "ref_load: unknown norm \"%s\"\n", norm);
        goto done;
    }
    if (!strcmp(skip, "none")) *has_skip = 0;
    else if (!strcmp(skip, "xA") || !strcmp(skip, "xAt")) *has_skip = 1;
    else {
        fprintf(stderr, "ref_load: unknown skip \"%s\"\n", skip);
        goto done;
    }

    const cJSON *chk = cJSON_GetObjectItemCaseSensitive(root, "check");
    rc->check_mean_l0 = json_num_or_nan(chk, "mean_l0");
    rc->check_sum_codes = json_num_or_nan(chk, "sum_codes");
    rc->check_sum_abs_xhat = json_num_or_nan(chk, "sum_abs_xhat");
    rcode = 0;
done:
    cJSON_Delete(root);
    return rcode;
}

/* ------------------------------------------------------------------ load / free */

int ref_load(const char *case_dir, ref_case *rc)
{
    memset(rc, 0, sizeof *rc);
    int has_skip = 0, err = 0;
    if (parse_meta(case_dir, rc, &has_skip))
        goto fail;

    if (rc->d_in <= 0 || rc->d_sae <= 0 || rc->d_out <= 0 || rc->n <= 0) {
        fprintf(stderr, "ref_load: %s: non-positive dimension\n", case_dir);
        goto fail;
    }
    if (rc->sub_b_dec && rc->d_out != rc->d_in) {
        fprintf(stderr, "ref_load: %s: sub_b_dec needs d_out == d_in\n", case_dir);
        goto fail;
    }
    if (rc->norm != REF_NORM_NONE && rc->d_in < 2) {
        fprintf(stderr, "ref_load: %s: normalization needs d_in >= 2\n", case_dir);
        goto fail;
    }
    if ((rc->arch == REF_ARCH_TOPK || rc->arch == REF_ARCH_RELU_TOPK) &&
        (rc->k < 1 || rc->k > rc->d_sae)) {
        fprintf(stderr, "ref_load: %s: k=%d out of range\n", case_dir, rc->k);
        goto fail;
    }
    if (rc->arch == REF_ARCH_GROUPMAX && (rc->k < 1 || rc->d_sae % rc->k != 0)) {
        fprintf(stderr, "ref_load: %s: groupmax k=%d does not divide d_sae\n", case_dir, rc->k);
        goto fail;
    }

    size_t di = (size_t)rc->d_in, ds = (size_t)rc->d_sae, dout = (size_t)rc->d_out, n = (size_t)rc->n;
    rc->W_enc = load_f32(case_dir, "W_enc", di * ds, 1, &err);
    rc->b_enc = load_f32(case_dir, "b_enc", ds, 1, &err);
    rc->W_dec = load_f32(case_dir, "W_dec", ds * dout, 1, &err);
    rc->b_dec = load_f32(case_dir, "b_dec", dout, 1, &err);
    rc->x = load_f32(case_dir, "x", n * di, 1, &err);
    if (rc->arch == REF_ARCH_JUMPRELU)
        rc->threshold = load_f32(case_dir, "threshold", ds, 1, &err);
    if (rc->arch == REF_ARCH_GATED) {
        rc->b_gate = load_f32(case_dir, "b_gate", ds, 1, &err);
        rc->b_mag = load_f32(case_dir, "b_mag", ds, 1, &err);
        rc->r_mag = load_f32(case_dir, "r_mag", ds, 1, &err);
    }
    if (has_skip)
        rc->skip = load_f32(case_dir, "skip", di * dout, 1, &err);
    rc->x_out = load_f32(case_dir, "x_out", n * dout, rc->is_transcoder, &err);
    if (err)
        goto fail;
    return 0;
fail:
    ref_free(rc);
    return -1;
}

void ref_free(ref_case *rc)
{
    free(rc->W_enc);
    free(rc->b_enc);
    free(rc->threshold);
    free(rc->b_gate);
    free(rc->b_mag);
    free(rc->r_mag);
    free(rc->W_dec);
    free(rc->b_dec);
    free(rc->skip);
    free(rc->x);
    free(rc->x_out);
    memset(rc, 0, sizeof *rc);
}

/* ------------------------------------------------------------------ encode */

/* Input row t after SAELens normalization and optional b_dec subtraction -> xs[d_in].
 * Returns the statistics decode needs: *scale (constant_norm_rescale), *mu and *sd (layer_norm). */
static void prepare_row(const ref_case *rc, int t, double *xs, double *scale, double *mu, double *sd)
{
    const float *x = rc->x + (size_t)t * rc->d_in;
    int d = rc->d_in;
    *scale = 1.0;
    *mu = 0.0;
    *sd = 1.0;
    for (int i = 0; i < d; i++)
        xs[i] = x[i];
    if (rc->norm == REF_NORM_CONSTANT_NORM_RESCALE) {
        double ss = 0.0;
        for (int i = 0; i < d; i++)
            ss += xs[i] * xs[i];
        *scale = sqrt((double)d) / sqrt(ss);
        for (int i = 0; i < d; i++)
            xs[i] *= *scale;
    } else if (rc->norm == REF_NORM_LAYER_NORM) {
        double sum = 0.0;
        for (int i = 0; i < d; i++)
            sum += xs[i];
        *mu = sum / d;
        double ss = 0.0;
        for (int i = 0; i < d; i++)
            ss += (xs[i] - *mu) * (xs[i] - *mu);
        *sd = sqrt(ss / (d - 1)); /* unbiased, as torch.std */
        for (int i = 0; i < d; i++)
            xs[i] = (xs[i] - *mu) / (*sd + 1e-5);
    }
    if (rc->sub_b_dec)
        for (int i = 0; i < d; i++)
            xs[i] -= rc->b_dec[i];
}

typedef struct {
    double s;
    int idx;
} ranked;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->s > b->s) return -1;
    if (a->s < b->s) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Select the top kk of s[0..len) (ties -> lower index). Marks sel[], returns the kk-th largest
 * score in *s_k and the (kk+1)-th in *s_k1 (-inf when every entry is selected). */
static void select_top(const double *s, int len, int kk, ranked *buf, unsigned char *sel,
                       double *s_k, double *s_k1)
{
    for (int j = 0; j < len; j++) {
        buf[j].s = s[j];
        buf[j].idx = j;
        sel[j] = 0;
    }
    qsort(buf, (size_t)len, sizeof *buf, cmp_ranked);
    for (int r = 0; r < kk; r++)
        sel[buf[r].idx] = 1;
    *s_k = buf[kk - 1].s;
    *s_k1 = kk < len ? buf[kk].s : -INFINITY;
}

static double sel_margin(double pre, double s, int selected, double s_k, double s_k1)
{
    if (!(pre > 0.0))
        return fabs(pre);
    double d = selected ? s - s_k1 : s_k - s;
    return d < pre ? d : pre;
}

void ref_encode(const ref_case *rc, double *codes, double *margin)
{
    int di = rc->d_in, ds = rc->d_sae;
    double *xs = malloc(sizeof(double) * (size_t)di);
    double *dot = malloc(sizeof(double) * (size_t)ds);
    double *score = malloc(sizeof(double) * (size_t)ds);
    ranked *buf = malloc(sizeof(ranked) * (size_t)ds);
    unsigned char *sel = malloc((size_t)ds);
    if (!xs || !dot || !score || !buf || !sel) {
        fprintf(stderr, "ref_encode: out of memory\n");
        abort();
    }

    for (int t = 0; t < rc->n; t++) {
        double scale, mu, sd;
        prepare_row(rc, t, xs, &scale, &mu, &sd);
        /* dot[j] = sum_i xs[i] * W_enc[i][j] */
        for (int j = 0; j < ds; j++)
            dot[j] = 0.0;
        for (int i = 0; i < di; i++) {
            const float *w = rc->W_enc + (size_t)i * ds;
            for (int j = 0; j < ds; j++)
                dot[j] += xs[i] * (double)w[j];
        }
        double *c = codes + (size_t)t * ds;
        double *mg = margin ? margin + (size_t)t * ds : NULL;

        switch (rc->arch) {
        case REF_ARCH_JUMPRELU:
            for (int j = 0; j < ds; j++) {
                double pre = dot[j] + rc->b_enc[j], th = rc->threshold[j];
                c[j] = (pre > th && pre > 0.0) ? pre : 0.0;
                if (mg)
                    mg[j] = fmin(fabs(pre - th), fabs(pre));
            }
            break;
        case REF_ARCH_RELU:
            for (int j = 0; j < ds; j++) {
                double pre = dot[j] + rc->b_enc[j];
                c[j] = pre > 0.0 ? pre : 0.0;
                if (mg)
                    mg[j] = fabs(pre);
            }
            break;
        case REF_ARCH_GATED:
            for (int j = 0; j < ds; j++) {
                double gate = dot[j] + rc->b_gate[j];
                double mag = dot[j] * exp((double)rc->r_mag[j]) + rc->b_mag[j];
                c[j] = (gate > 0.0 && mag > 0.0) ? mag : 0.0;
                if (mg)
                    mg[j] = fmin(fabs(gate), fabs(mag));
            }
            break;
        case REF_ARCH_TOPK:
        case REF_ARCH_RELU_TOPK: {
            for (int j = 0; j < ds; j++) {
                double pre = dot[j] + rc->b_enc[j];
                score[j] = (rc->arch == REF_ARCH_TOPK || pre > 0.0) ? pre : 0.0;
            }
            double s_k, s_k1;
            select_top(score, ds, rc->k, buf, sel, &s_k, &s_k1);
            for (int j = 0; j < ds; j++) {
                double pre = dot[j] + rc->b_enc[j];
                c[j] = (sel[j] && pre > 0.0) ? pre : 0.0;
                if (mg)
                    mg[j] = sel_margin(pre, score[j], sel[j], s_k, s_k1);
            }
            break;
        }
        case REF_ARCH_GROUPMAX: {
            int gs = ds / rc->k;
            for (int j = 0; j < ds; j++) {
                double pre = dot[j] + rc->b_enc[j];
                score[j] = pre > 0.0 ? pre : 0.0;
            }
            for (int g = 0; g < rc->k; g++) {
                int base = g * gs;
                double s_k, s_k1;
                select_top(score + base, gs, 1, buf, sel + base, &s_k, &s_k1);
                for (int j = base; j < base + gs; j++) {
                    double pre = dot[j] + rc->b_enc[j];
                    c[j] = (sel[j] && pre > 0.0) ? pre : 0.0;
                    if (mg)
                        mg[j] = sel_margin(pre, score[j], sel[j], s_k, s_k1);
                }
            }
            break;
        }
        }
    }
    free(xs);
    free(dot);
    free(score);
    free(buf);
    free(sel);
}

/* ------------------------------------------------------------------ decode */

void ref_decode(const ref_case *rc, const double *codes, double *xhat)
{
    int di = rc->d_in, ds = rc->d_sae, dout = rc->d_out;
    double *xs = malloc(sizeof(double) * (size_t)di);
    if (!xs) {
        fprintf(stderr, "ref_decode: out of memory\n");
        abort();
    }
    for (int t = 0; t < rc->n; t++) {
        double scale, mu, sd;
        prepare_row(rc, t, xs, &scale, &mu, &sd); /* only the statistics are used */
        const double *c = codes + (size_t)t * ds;
        double *y = xhat + (size_t)t * dout;
        for (int o = 0; o < dout; o++)
            y[o] = rc->b_dec[o];
        for (int j = 0; j < ds; j++) {
            const float *w = rc->W_dec + (size_t)j * dout;
            for (int o = 0; o < dout; o++)
                y[o] += c[j] * (double)w[o];
        }
        if (rc->norm == REF_NORM_CONSTANT_NORM_RESCALE)
            for (int o = 0; o < dout; o++)
                y[o] /= scale;
        else if (rc->norm == REF_NORM_LAYER_NORM)
            for (int o = 0; o < dout; o++)
                y[o] = y[o] * sd + mu;
        if (rc->skip) {
            const float *x = rc->x + (size_t)t * di;
            for (int i = 0; i < di; i++) {
                const float *a = rc->skip + (size_t)i * dout;
                for (int o = 0; o < dout; o++)
                    y[o] += (double)x[i] * (double)a[o];
            }
        }
    }
    free(xs);
}
