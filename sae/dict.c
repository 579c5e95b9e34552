/* dict.c — opens a dictionary: detects its format from the files present, reads
 * the config (config.c), binds and validates the tensors, and prepares the encoder's
 * f32 vectors. Shapes are checked against each other before anything is used; after
 * open the dictionary only reads, but for what it makes once under its mutex. */
#include "bf16mm.h"
#include "dict_impl.h"
#include "screen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/half.h"
#include "../common/sha256.h"
#include "config.h"

const char *ldb_dict_errmsg(const ldb_dict *d)
{
    return d ? d->err.msg : "out of memory";
}

const ldb_dict_info *ldb_dict_get_info(const ldb_dict *d)
{
    return &d->info;
}

void ldb_dict_close(ldb_dict *d)
{
    if (!d)
        return;
    if (d->n_layers)
        ldb_multi_close(d);
    for (int i = 0; i < d->n_strs; i++)
        free(d->strs[i]);
    ldb_tensors_close(&d->ts);
    ldb_tensors_close(&d->dec_ts);
    free(d->W_enc_owned);
    free(d->b_enc);
    free(d->thr);
    free(d->b_gate);
    free(d->b_mag);
    free(d->exp_r_mag);
    free(d->dec_norm);
    free(d->A_owned);
    ldb_bf16w_free(d->bf16w);
    ldb_refine_free(d->refine);
    free(d->b_dec_in);
    free(d->b_dec);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int ldb_dict_fail(ldb_dict *d, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&d->mu);
    vsnprintf(d->err.msg, sizeof d->err.msg, fmt, ap);
    pthread_mutex_unlock(&d->mu);
    va_end(ap);
    return rc;
}

const char *ldb_dict_keep(ldb_dict *d, const char *s)
{
    if (!s)
        return "";
    if (d->n_strs == (int)(sizeof d->strs / sizeof d->strs[0]))
        return "";
    char *c = strdup(s);
    if (!c)
        return "";
    d->strs[d->n_strs++] = c;
    return c;
}

int ldb_dict_check_finite(ldb_dict *d, const ldb_tensor *t)
{
    const uint8_t *p = t->data;
    uint64_t bad = ldb_find_nonfinite(p, t->dtype, t->count);
    if (bad == UINT64_MAX)
        return LDB_OK;
    float v;
    char at[128];
    size_t o = 0;
    ldb_to_f32(&v, p + bad * t->elsize, t->dtype, 1);
    for (int i = t->ndim - 1; i >= 0 && t->shape[i]; i--) { /* flat index -> [i, j] */
        char part[32];
        snprintf(part, sizeof part, "%llu", (unsigned long long)(bad % t->shape[i]));
        bad /= t->shape[i];
        size_t pl = strlen(part);
        if (o + pl + 2 >= sizeof at)
            break;
        memmove(at + pl + (o ? 2 : 0), at, o);
        memcpy(at, part, pl);
        if (o)
            memcpy(at + pl, ", ", 2);
        o += pl + (o ? 2 : 0);
    }
    at[o] = 0;
    return ldb_err_set(&d->err, LDB_EBADVALUE, "%s: tensor '%s' has %s at [%s]; expected "
                       "finite weights", d->info.weights_path, t->name, isnan(v) ? "NaN" : "Inf",
                       at);
}

const char *ldb_dict_shape_str(const ldb_tensor *t, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < t->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

/* Finds the first tensor named in names (NULL-terminated), case-insensitively. */
static const ldb_tensor *find_any(const ldb_dict *d, const char *const *names)
{
    for (; *names; names++) {
        const ldb_tensor *t = ldb_tensors_find(&d->ts, *names);
        if (t)
            return t;
    }
    return NULL;
}

int ldb_dict_need_float(ldb_dict *d, const ldb_tensor *t)
{
    if (t->dtype == LDB_F32 || t->dtype == LDB_F16 || t->dtype == LDB_BF16)
        return LDB_OK;
    return ldb_err_set(&d->err, LDB_EUNSUPPORTED, "%s: tensor '%s' has dtype %s; expected F32, "
                       "F16 or BF16", d->info.weights_path, t->name, t->dtype_name);
}

int ldb_dict_bind_vec_t(ldb_dict *d, const ldb_tensor *t, uint64_t n, float **out)
{
    char sb[96];
    int rc = ldb_dict_need_float(d, t);
    *out = NULL;
    if (rc)
        return rc;
    int ok = (t->ndim == 1 && t->shape[0] == n) || (t->ndim == 2 && t->shape[0] == 1 &&
                                                    t->shape[1] == n);
    if (!ok)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected [%llu]",
                           d->info.weights_path, t->name, ldb_dict_shape_str(t, sb, sizeof sb),
                           (unsigned long long)n);
    if ((rc = ldb_dict_check_finite(d, t)))
        return rc;
    if (!(*out = aligned_alloc(64, ((n * 4 + 63) / 64) * 64)))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    ldb_to_f32(*out, t->data, t->dtype, n);
    return LDB_OK;
}

int ldb_dict_bind_threshold_t(ldb_dict *d, const ldb_tensor *t)
{
    uint32_t n = d->info.d_sae;
    int rc = ldb_dict_bind_vec_t(d, t, n, &d->thr);
    if (rc)
        return rc;
    int is_log = strcasecmp(t->name, "log_threshold") == 0;
    for (uint32_t j = 0; j < n; j++) {
        float th = is_log ? (float)exp((double)d->thr[j]) : d->thr[j];
        d->thr[j] = th > 0.0f ? th : 0.0f; /* relu(pre) is 0 where pre <= 0 */
    }
    return LDB_OK;
}

/* Binds a vector of n elements (shape [n] or [1, n]) as an owned f32 copy. */
static int bind_vec(ldb_dict *d, const char *const *names, uint64_t n, int required,
                    float **out, const ldb_tensor **tout)
{
    const ldb_tensor *t = find_any(d, names);
    *out = NULL;
    if (tout)
        *tout = t;
    if (!t)
        return required ? ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' is missing",
                                      d->info.weights_path, names[0])
                        : LDB_OK;
    return ldb_dict_bind_vec_t(d, t, n, out);
}

/* Checks a 2-D tensor's shape; NULL names the expectation in the message. */
int ldb_dict_check_mat(ldb_dict *d, const ldb_tensor *t, uint64_t r, uint64_t c, const char *what)
{
    char sb[96];
    int rc = ldb_dict_need_float(d, t);
    if (rc)
        return rc;
    if (t->ndim != 2 || t->shape[0] != r || t->shape[1] != c)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected "
                           "[%llu, %llu] (%s)", d->info.weights_path, t->name,
                           ldb_dict_shape_str(t, sb, sizeof sb), (unsigned long long)r,
                           (unsigned long long)c, what);
    return LDB_OK;
}

static const char *const N_WENC[] = {"W_enc", NULL};
static const char *const N_WENC_SPARSIFY[] = {"encoder.weight", NULL};
static const char *const N_BENC[] = {"b_enc", NULL};
static const char *const N_BENC_SPARSIFY[] = {"encoder.bias", NULL};
static const char *const N_WDEC[] = {"W_dec", NULL};
static const char *const N_BDEC[] = {"b_dec", NULL};
static const char *const N_THR[] = {"threshold", "log_threshold", NULL};
static const char *const N_BGATE[] = {"b_gate", NULL};
static const char *const N_BMAG[] = {"b_mag", NULL};
static const char *const N_RMAG[] = {"r_mag", NULL};
static const char *const N_SKIP[] = {"W_skip", "affine_skip_connection", NULL};

/* Sizes come from the tensors; the config's values, where given, must agree. */
static int bind_shapes(ldb_dict *d, const ldb_cfg *cfg)
{
    ldb_dict_info *in = &d->info;
    char sb[96];
    int sparsify = strcmp(in->format, "sparsify") == 0;
    const ldb_tensor *we = find_any(d, sparsify ? N_WENC_SPARSIFY : N_WENC);
    if (!we)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' is missing", in->weights_path,
                           sparsify ? "encoder.weight" : "W_enc");
    if (we->ndim != 2)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected 2 "
                           "dimensions", in->weights_path, we->name, ldb_dict_shape_str(we, sb, sizeof sb));
    d->enc_trans = sparsify;
    uint64_t din = sparsify ? we->shape[1] : we->shape[0];
    uint64_t dsae = sparsify ? we->shape[0] : we->shape[1];
    if (din == 0 || dsae == 0 || din > (1u << 20) || dsae > UINT32_MAX / 2)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; d_in must be in "
                           "1..1048576 and d_sae in 1..2^31", in->weights_path, we->name,
                           ldb_dict_shape_str(we, sb, sizeof sb));
    if (cfg->d_in && cfg->d_in != din)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: d_in is %llu but tensor '%s' has shape %s",
                           in->config_path, (unsigned long long)cfg->d_in, we->name,
                           ldb_dict_shape_str(we, sb, sizeof sb));
    if (cfg->d_sae && cfg->d_sae != dsae)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: d_sae is %llu but tensor '%s' has shape %s",
                           in->config_path, (unsigned long long)cfg->d_sae, we->name,
                           ldb_dict_shape_str(we, sb, sizeof sb));
    in->d_in = (uint32_t)din;
    in->d_sae = (uint32_t)dsae;
    int rc = ldb_dict_need_float(d, we);
    if (rc)
        return rc;
    snprintf(sb, sizeof sb, "%s", we->dtype == LDB_F32 ? "float32" : we->dtype == LDB_F16 ?
             "float16" : "bfloat16");
    in->dtype = ldb_dict_keep(d, sb);

    const ldb_tensor *wd = find_any(d, N_WDEC);
    const ldb_tensor *bd = find_any(d, N_BDEC);
    if (!wd)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor 'W_dec' is missing", in->weights_path);
    if (wd->ndim != 2 || wd->shape[0] != dsae || wd->shape[1] == 0 || wd->shape[1] > (1u << 20))
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected "
                           "[%llu, d_out] (d_sae from '%s')", in->weights_path, wd->name,
                           ldb_dict_shape_str(wd, sb, sizeof sb), (unsigned long long)dsae, we->name);
    if ((rc = ldb_dict_need_float(d, wd)))
        return rc;
    in->d_out = (uint32_t)wd->shape[1];
    if (cfg->d_out && cfg->d_out != in->d_out)
        return ldb_err_set(&d->err, LDB_EFORMAT, "%s: d_out is %llu but tensor '%s' has shape %s",
                           in->config_path, (unsigned long long)cfg->d_out, wd->name,
                           ldb_dict_shape_str(wd, sb, sizeof sb));
    d->W_dec = wd;
    (void)bd;
    return LDB_OK;
}

int ldb_dict_bind_wenc_t(ldb_dict *d, const ldb_tensor *we)
{
    const ldb_dict_info *in = &d->info;
    int rc = d->enc_trans ? ldb_dict_check_mat(d, we, in->d_sae, in->d_in, "d_sae, d_in")
                          : ldb_dict_check_mat(d, we, in->d_in, in->d_sae, "d_in, d_sae");
    if (rc || (rc = ldb_dict_check_finite(d, we)))
        return rc;
    if (we->dtype == LDB_F32 && ((uintptr_t)we->data & 3) == 0) {
        d->W_enc = (const float *)(const void *)we->data;
        return LDB_OK;
    }
    size_t bytes = ((we->count * 4 + 63) / 64) * 64;
    if (!(d->W_enc_owned = aligned_alloc(64, bytes)))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory converting '%s' (%zu bytes)",
                           we->name, bytes);
    ldb_to_f32(d->W_enc_owned, we->data, we->dtype, we->count);
    d->W_enc = d->W_enc_owned;
    return LDB_OK;
}

/* Binds W_enc: in place when F32 and 4-byte aligned, else converted once. */
static int bind_wenc(ldb_dict *d)
{
    return ldb_dict_bind_wenc_t(d, find_any(d, d->enc_trans ? N_WENC_SPARSIFY : N_WENC));
}

/* SAELens topk with rescale_acts_by_decoder_norm ranks pre * |W_dec row|: the
 * one case where encoding reads W_dec (once, at open). */
static int dec_norms(ldb_dict *d)
{
    const ldb_tensor *wd = d->W_dec;
    uint32_t n = d->info.d_sae, m = d->info.d_out;
    float *row = malloc((size_t)m * sizeof(float));
    int rc = ldb_dict_check_finite(d, wd);
    if (!rc && (!row || !(d->dec_norm = malloc((size_t)n * sizeof(float)))))
        rc = ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    for (uint32_t j = 0; !rc && j < n; j++) {
        ldb_to_f32(row, wd->data + (size_t)j * m * wd->elsize, wd->dtype, m);
        double s = 0;
        for (uint32_t i = 0; i < m; i++)
            s += (double)row[i] * row[i];
        d->dec_norm[j] = (float)sqrt(s);
    }
    free(row);
    return rc;
}

static int bind_params(ldb_dict *d, int rescale)
{
    ldb_dict_info *in = &d->info;
    int sparsify = strcmp(in->format, "sparsify") == 0, rc;
    const ldb_tensor *t;
    if ((rc = bind_wenc(d)))
        return rc;
    if ((rc = bind_vec(d, N_BDEC, in->d_out, 1, &d->b_dec, NULL)))
        return rc;
    if (d->arch == ARCH_GATED) {
        if ((rc = bind_vec(d, N_BGATE, in->d_sae, 1, &d->b_gate, NULL)) ||
            (rc = bind_vec(d, N_BMAG, in->d_sae, 1, &d->b_mag, NULL)) ||
            (rc = bind_vec(d, N_RMAG, in->d_sae, 1, &d->exp_r_mag, NULL)))
            return rc;
        for (uint32_t j = 0; j < in->d_sae; j++)
            d->exp_r_mag[j] = (float)exp((double)d->exp_r_mag[j]);
        if (!(d->b_enc = calloc(in->d_sae, sizeof(float))))
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    } else if ((rc = bind_vec(d, sparsify ? N_BENC_SPARSIFY : N_BENC, in->d_sae, 1, &d->b_enc,
                              NULL))) {
        return rc;
    }
    if (d->arch == ARCH_JUMPRELU) {
        if (!(t = find_any(d, N_THR)))
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: tensor '%s' is missing",
                               in->weights_path, N_THR[0]);
        if ((rc = ldb_dict_bind_threshold_t(d, t)))
            return rc;
    } else if (d->arch == ARCH_RELU || d->arch == ARCH_TOPK || d->arch == ARCH_GROUPMAX) {
        if (!(d->thr = calloc(in->d_sae, sizeof(float))))
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    }
    if (rescale && (rc = dec_norms(d)))
        return rc;
    if (in->sub_b_dec) {
        if (in->d_out != in->d_in)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: b_dec has %u elements but the input has "
                               "d_in = %u; cannot subtract it from the input",
                               in->weights_path, in->d_out, in->d_in);
        if (!(d->b_dec_in = malloc((size_t)in->d_in * sizeof(float))))
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
        memcpy(d->b_dec_in, d->b_dec, (size_t)in->d_in * sizeof(float));
    }
    if (d->arch == ARCH_GROUPMAX || d->arch == ARCH_TOPK) {
        if (in->k == 0 || in->k > in->d_sae)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: k is %u; expected 1..d_sae (%u)",
                               in->config_path, in->k, in->d_sae);
        if (d->arch == ARCH_GROUPMAX && in->d_sae % in->k)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: groupmax needs d_sae (%u) divisible "
                               "by k (%u)", in->config_path, in->d_sae, in->k);
    }
    /* The skip term. Its orientation comes from the format: SAELens and sparsify
     * store W_skip [d_out, d_in] used as x . W_skip^T; Gemma Scope 2 stores the
     * affine matrix used as x . A (square, so the shape cannot tell). */
    d->A_skip = find_any(d, N_SKIP);
    if (d->A_skip && d->skip == SKIP_NONE)
        d->skip = strcmp(in->format, "gemmascope2") == 0 ? SKIP_XA : SKIP_XAT;
    if (d->skip != SKIP_NONE) {
        if (!d->A_skip)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: the config declares a skip connection "
                               "but neither 'W_skip' nor 'affine_skip_connection' is present",
                               in->weights_path);
        rc = d->skip == SKIP_XA ? ldb_dict_check_mat(d, d->A_skip, in->d_in, in->d_out, "d_in, d_out")
                                : ldb_dict_check_mat(d, d->A_skip, in->d_out, in->d_in, "d_out, d_in");
        if (rc)
            return rc;
        in->has_skip = 1;
    }
    return LDB_OK;
}

int ldb_dict_open(const char *path, ldb_dict **out)
{
    ldb_dict *d = calloc(1, sizeof *d);
    ldb_cfg cfg;
    int rc;
    *out = d;
    if (!d)
        return LDB_ENOMEM;
    pthread_mutex_init(&d->mu, NULL);
    memset(&cfg, 0, sizeof cfg);
    if ((rc = ldb_cfg_detect(path, &cfg, &d->err)))
        goto out;
    ldb_dict_info *in = &d->info;
    in->format = cfg.format;
    in->config_path = ldb_dict_keep(d, cfg.config_path);
    in->weights_path = ldb_dict_keep(d, cfg.weights_path);
    in->hook_in = ldb_dict_keep(d, cfg.hook_in);
    in->hook_out = ldb_dict_keep(d, cfg.hook_out);
    in->model = ldb_dict_keep(d, cfg.model);
    in->l0 = cfg.l0;
    in->k = cfg.k;
    in->sub_b_dec = cfg.sub_b_dec;
    in->relu_first = cfg.relu_first;
    d->arch = cfg.arch;
    d->norm = cfg.norm;
    d->skip = cfg.skip;
    static const char *arch_names[] = {"jumprelu", "standard", "gated", "topk", "groupmax"};
    static const char *norm_names[] = {"none", "constant_norm_rescale", "layer_norm"};
    in->architecture = arch_names[d->arch];
    in->normalize = norm_names[d->norm];
    if (cfg.n_layers) { /* a cross-layer transcoder or crosscoder: multi.c */
        rc = ldb_multi_open(d, &cfg);
        goto out;
    }
    rc = strstr(cfg.weights_path, ".npz") ? ldb_npz_open(&d->ts, cfg.weights_path, &d->err)
                                          : ldb_safetensors_open(&d->ts, cfg.weights_path, &d->err);
    if (rc || (rc = bind_shapes(d, &cfg)) || (rc = bind_params(d, cfg.rescale_dec_norm)))
        goto out;
    in->type = cfg.transcoder || in->has_skip || in->d_out != in->d_in ? "transcoder" : "sae";
    if (cfg.transcoder < 0) /* the config says sae explicitly */
        in->type = "sae";
    in->kind = in->type;
    in->n_layers = 1;
    d->one = (ldb_dict_layer){0, in->d_in, in->d_sae, in->d_out, 0, in->hook_in, in->hook_out,
                              in->weights_path};
out:
    ldb_cfg_free(&cfg);
    if (rc && !d->err.msg[0])
        ldb_err_set(&d->err, rc, "%s: %s", path, ldb_strerror(rc));
    return rc;
}

int ldb_dict_sha256(ldb_dict *d, char hex[65])
{
    int rc = LDB_OK;
    pthread_mutex_lock(&d->mu); /* one thread hashes; the others wait for its answer */
    if (!d->have_sha && !(rc = d->n_layers ? ldb_multi_sha256(d, d->sha)
                                           : ldb_sha256_file(d->info.weights_path, d->sha, &d->err)))
        d->have_sha = 1;
    if (!rc)
        memcpy(hex, d->sha, 65);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

char *ldb_dict_describe(ldb_dict *d)
{
    char sha[65];
    if (ldb_dict_sha256(d, sha))
        return NULL;
    const ldb_dict_info *in = &d->info;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "format", in->format);
    cJSON_AddStringToObject(o, "architecture", in->architecture);
    cJSON_AddStringToObject(o, "type", in->type);
    cJSON_AddNumberToObject(o, "d_in", in->d_in);
    cJSON_AddNumberToObject(o, "d_out", in->d_out);
    cJSON_AddNumberToObject(o, "d_sae", in->d_sae);
    cJSON_AddStringToObject(o, "dtype", in->dtype);
    cJSON_AddStringToObject(o, "hook_in", in->hook_in);
    cJSON_AddStringToObject(o, "hook_out", in->hook_out);
    cJSON_AddStringToObject(o, "model", in->model);
    if (in->l0 >= 0)
        cJSON_AddNumberToObject(o, "l0", in->l0);
    else
        cJSON_AddNullToObject(o, "l0");
    if (in->k)
        cJSON_AddNumberToObject(o, "k", in->k);
    cJSON_AddStringToObject(o, "normalize", in->normalize);
    cJSON_AddBoolToObject(o, "subtract_b_dec", in->sub_b_dec);
    cJSON_AddBoolToObject(o, "skip", in->has_skip);
    cJSON_AddStringToObject(o, "weights", in->weights_path);
    cJSON_AddStringToObject(o, "config", in->config_path);
    cJSON_AddStringToObject(o, "sha256", sha);
    cJSON *ls = NULL; /* a single-layer record stays as it was (tests/golden pins its bytes) */
    if (d->n_layers) {
        cJSON_AddStringToObject(o, "kind", in->kind);
        cJSON_AddNumberToObject(o, "n_layers", in->n_layers);
        ls = cJSON_AddArrayToObject(o, "layers");
    }
    for (uint32_t i = 0; ls && i < d->n_layers; i++) {
        const ldb_dict_layer *l = &d->linfo[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(ls, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddNumberToObject(e, "layer", l->layer);
        cJSON_AddNumberToObject(e, "d_in", l->d_in);
        cJSON_AddNumberToObject(e, "d_sae", l->d_sae);
        cJSON_AddNumberToObject(e, "d_out", l->d_out);
        cJSON_AddNumberToObject(e, "offset", l->offset);
        cJSON_AddStringToObject(e, "hook_in", l->hook_in);
        cJSON_AddStringToObject(e, "hook_out", l->hook_out);
        cJSON_AddStringToObject(e, "weights", l->weights_path);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        ldb_dict_fail(d, LDB_ENOMEM, "out of memory");
    return s;
}
