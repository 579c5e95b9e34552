/* config.c — which format a path holds, and what its config file says. Field names
 * and defaults follow the writers: SAELens (nested v6 and flat pre-6 cfg.json),
 * Gemma Scope (v1 npz, no config; v2 config.json) and EleutherAI sparsify. */
#include "config.h"

#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "dict_impl.h"

#define CFG_MAX_BYTES (16u << 20)

static void free_list(char **l, uint32_t n)
{
    if (l)
        for (uint32_t i = 0; i < n; i++)
            free(l[i]);
    free(l);
}

void ldb_cfg_free(ldb_cfg *c)
{
    free_list(c->enc_paths, c->n_layers);
    free_list(c->dec_paths, c->n_layers);
    free_list(c->hooks_in, c->n_layers);
    free_list(c->hooks_out, c->n_layers);
    free(c->kind);
    free(c->config_path);
    free(c->weights_path);
    free(c->hook_in);
    free(c->hook_out);
    free(c->model);
    memset(c, 0, sizeof *c);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The string at obj[key], or NULL. */
static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Reads a non-negative integer field; 0 when absent; error when not an integer. */
static int juint(const cJSON *obj, const char *key, uint64_t *out, const char *path, ldb_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return LDB_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4.0e9 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return ldb_err_set(e, LDB_EFORMAT, "%s: '%s' should be a non-negative integer", path, key);
    *out = (uint64_t)v->valuedouble;
    return LDB_OK;
}

static int jbool(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int load_json(const char *path, cJSON **root, ldb_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ldb_file_read_all(path, CFG_MAX_BYTES, &text, &len, e);
    if (rc)
        return rc;
    *root = cJSON_ParseWithLength(text, len);
    if (!*root || !cJSON_IsObject(*root)) {
        const char *where = cJSON_GetErrorPtr();
        long off = *root ? 0 : where && where >= text && where <= text + len ? (long)(where - text) : -1;
        cJSON_Delete(*root);
        *root = NULL;
        free(text);
        return ldb_err_set(e, LDB_EFORMAT, "%s: not a JSON object (parse error near byte %ld)",
                           path, off);
    }
    free(text);
    return LDB_OK;
}

static int parse_norm(const cJSON *root, const char *path, int *norm, ldb_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "normalize_activations");
    *norm = NORM_NONE;
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return LDB_OK;
    /* Legacy boolean true means expected_average_only_in, which is the identity
     * at run time: its scale factor lives in SAELens's registry, not the files. */
    if (cJSON_IsTrue(v))
        return LDB_OK;
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    if (!strcmp(s, "none") || !strcmp(s, "expected_average_only_in"))
        return LDB_OK;
    if (!strcmp(s, "constant_norm_rescale")) {
        *norm = NORM_CONSTANT;
        return LDB_OK;
    }
    if (!strcmp(s, "layer_norm")) {
        *norm = NORM_LAYER;
        return LDB_OK;
    }
    return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: normalize_activations '%s' is not supported; "
                       "expected none, expected_average_only_in, constant_norm_rescale or "
                       "layer_norm", path, s);
}

static int parse_saelens(const cJSON *root, ldb_cfg *c, ldb_err *e)
{
    const char *p = c->config_path;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    int rc;
    if (!cJSON_IsObject(meta))
        meta = root; /* pre-6 flat config: the same keys at the top level */
    if ((rc = juint(root, "d_in", &c->d_in, p, e)) || (rc = juint(root, "d_sae", &c->d_sae, p, e)) ||
        (rc = juint(root, "d_out", &c->d_out, p, e)))
        return rc;
    if (!c->d_in || !c->d_sae)
        return ldb_err_set(e, LDB_EFORMAT, "%s: expected 'd_in' and 'd_sae' (a SAELens cfg.json)", p);
    const char *arch = jstr(root, "architecture");
    const char *act = jstr(root, "activation_fn_str");
    if (!act)
        act = jstr(root, "activation_fn");
    uint64_t k = 0;
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "activation_fn_kwargs");
    if (cJSON_IsObject(kw) && (rc = juint(kw, "k", &k, p, e)))
        return rc;
    if (!k && (rc = juint(root, "k", &k, p, e)))
        return rc;
    if (!arch || (!strcmp(arch, "standard") && act && !strcmp(act, "topk")))
        arch = act && !strcmp(act, "topk") ? "topk" : "standard";
    if (act && strcmp(act, "relu") && strcmp(act, "topk"))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: activation_fn '%s' is not supported; "
                           "expected relu or topk", p, act);
    c->transcoder = strstr(arch, "transcoder") ? 1 : 0;
    if (strstr(arch, "skip"))
        c->skip = SKIP_XAT;
    if (!strcmp(arch, "standard") || !strcmp(arch, "transcoder") || !strcmp(arch, "skip_transcoder"))
        c->arch = ARCH_RELU;
    else if (!strcmp(arch, "jumprelu") || !strcmp(arch, "jumprelu_transcoder") ||
             !strcmp(arch, "jumprelu_skip_transcoder") || !strcmp(arch, "batchtopk") ||
             !strcmp(arch, "matryoshka_batchtopk"))
        c->arch = ARCH_JUMPRELU; /* batchtopk is saved for inference as jumprelu */
    else if (!strcmp(arch, "gated"))
        c->arch = ARCH_GATED;
    else if (!strcmp(arch, "topk"))
        c->arch = ARCH_TOPK;
    else
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: architecture '%s' is not supported; expected "
                           "standard, jumprelu, gated, topk, transcoder, skip_transcoder, "
                           "jumprelu_transcoder or jumprelu_skip_transcoder", p, arch);
    if (c->arch == ARCH_TOPK) {
        if (!k)
            return ldb_err_set(e, LDB_EFORMAT, "%s: topk architecture without 'k'", p);
        c->k = (uint32_t)k;
        c->rescale_dec_norm = jbool(root, "rescale_acts_by_decoder_norm", 0);
    }
    /* Transcoders never subtract b_dec (SAELens refuses apply_b_dec_to_input there). */
    c->sub_b_dec = c->transcoder ? 0 : jbool(root, "apply_b_dec_to_input", 1);
    if (jbool(root, "finetuning_scaling_factor", 0))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: finetuning_scaling_factor is not supported", p);
    if ((rc = parse_norm(root, p, &c->norm, e)))
        return rc;
    const char *hook = jstr(meta, "hook_name");
    if (!hook)
        hook = jstr(root, "hook_name");
    if (!hook)
        hook = jstr(root, "hook_point");
    const char *hook_out = jstr(meta, "hook_name_out");
    if (!hook_out)
        hook_out = jstr(root, "hook_name_out");
    const char *model = jstr(meta, "model_name");
    if (!model)
        model = jstr(root, "model_name");
    c->hook_in = dup_or_null(hook);
    c->hook_out = dup_or_null(hook_out ? hook_out : c->transcoder ? NULL : hook);
    c->model = dup_or_null(model);
    return LDB_OK;
}

static int parse_gemmascope2(const cJSON *root, ldb_cfg *c, ldb_err *e)
{
    const char *p = c->config_path, *arch = jstr(root, "architecture"), *type = jstr(root, "type");
    int rc;
    if (!arch || strcmp(arch, "jump_relu"))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: architecture '%s'; expected \"jump_relu\" "
                           "(Gemma Scope 2)", p, arch ? arch : "(missing)");
    if (type && strcmp(type, "sae") && strcmp(type, "transcoder"))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: type '%s' is not supported; expected sae or "
                           "transcoder (cross-layer transcoders are not)", p, type);
    c->arch = ARCH_JUMPRELU;
    c->transcoder = type && !strcmp(type, "transcoder") ? 1 : -1;
    if ((rc = juint(root, "width", &c->d_sae, p, e)))
        return rc;
    const cJSON *l0 = cJSON_GetObjectItemCaseSensitive(root, "l0");
    c->l0 = cJSON_IsNumber(l0) ? l0->valuedouble : -1;
    if (jbool(root, "affine_connection", 0))
        c->skip = SKIP_XA;
    c->hook_in = dup_or_null(jstr(root, "hf_hook_point_in"));
    c->hook_out = dup_or_null(jstr(root, "hf_hook_point_out"));
    c->model = dup_or_null(jstr(root, "model_name"));
    return LDB_OK;
}

static int parse_sparsify(const cJSON *root, ldb_cfg *c, const char *dir, ldb_err *e)
{
    const char *p = c->config_path, *act = jstr(root, "activation");
    uint64_t k = 0, nl = 0, ef = 0;
    int rc;
    if ((rc = juint(root, "d_in", &c->d_in, p, e)) || (rc = juint(root, "k", &k, p, e)) ||
        (rc = juint(root, "num_latents", &nl, p, e)) ||
        (rc = juint(root, "expansion_factor", &ef, p, e)))
        return rc;
    if (!act || !strcmp(act, "topk"))
        c->arch = ARCH_TOPK;
    else if (!strcmp(act, "groupmax"))
        c->arch = ARCH_GROUPMAX;
    else
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: activation '%s'; expected topk or groupmax",
                           p, act);
    c->k = (uint32_t)(k ? k : 32); /* sparsify's default */
    c->d_sae = nl ? nl : ef && c->d_in ? ef * c->d_in : 0;
    c->relu_first = 1;
    c->transcoder = jbool(root, "transcode", 0) ? 1 : 0;
    c->sub_b_dec = !c->transcoder;
    if (jbool(root, "skip_connection", 0))
        c->skip = SKIP_XAT;
    /* The hookpoint is the folder's name (<run>/<hookpoint>/cfg.json). */
    char *tmp = strdup(dir);
    if (tmp) {
        c->hook_in = strdup(basename(tmp));
        free(tmp);
    }
    if (!c->transcoder)
        c->hook_out = dup_or_null(c->hook_in);
    return LDB_OK;
}

/* The file dir/prefix{i}suffix, or NULL (out of memory in *nomem). */
static char *layer_file(const char *dir, const char *prefix, uint32_t i, const char *suffix,
                        int *nomem)
{
    char name[96];
    snprintf(name, sizeof name, "%s%u%s", prefix, i, suffix);
    char *p = ldb_path_join(dir, name);
    if (!p)
        *nomem = 1;
    return p;
}

/* A string, or a list of n strings, at obj[key] into a list of n owned strings
 * (NULL when absent); an error when it is a list of another length. */
static int jstr_per_layer(const cJSON *obj, const char *key, uint32_t n, char ***out,
                          const char *path, ldb_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return LDB_OK;
    if (cJSON_IsArray(v) && (uint32_t)cJSON_GetArraySize(v) != n)
        return ldb_err_set(e, LDB_EFORMAT, "%s: '%s' lists %d hooks but the folder holds %u "
                           "layer files", path, key, cJSON_GetArraySize(v), n);
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return ldb_err_set(e, LDB_EFORMAT, "%s: '%s' should be a string or a list of strings",
                           path, key);
    char **l = calloc(n, sizeof *l);
    if (!l)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    *out = l;
    for (uint32_t i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, (int)i) : v;
        if (!cJSON_IsString(s))
            return ldb_err_set(e, LDB_EFORMAT, "%s: '%s'[%u] should be a string", path, key, i);
        if (!(l[i] = strdup(s->valuestring)))
            return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    }
    return LDB_OK;
}

/* Gemma Scope 2's multi-layer config.json (cross-layer transcoders, crosscoders):
 * the same fields as a single layer's, any "type". */
static int parse_gemmascope2_layers(const cJSON *root, ldb_cfg *c, ldb_err *e)
{
    const char *p = c->config_path, *arch = jstr(root, "architecture"), *type = jstr(root, "type");
    if (arch && strcmp(arch, "jump_relu"))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: architecture '%s'; expected \"jump_relu\" "
                           "(Gemma Scope 2)", p, arch);
    c->arch = ARCH_JUMPRELU;
    c->transcoder = 1;
    if (type && !(c->kind = strdup(type)))
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    const cJSON *l0 = cJSON_GetObjectItemCaseSensitive(root, "l0");
    c->l0 = cJSON_IsNumber(l0) ? l0->valuedouble : -1;
    if (jbool(root, "affine_connection", 0))
        c->skip = SKIP_XA;
    c->model = dup_or_null(jstr(root, "model_name"));
    int rc = jstr_per_layer(root, "hf_hook_point_in", c->n_layers, &c->hooks_in, p, e);
    return rc ? rc : jstr_per_layer(root, "hf_hook_point_out", c->n_layers, &c->hooks_out, p, e);
}

/* A folder of per-layer files: Gemma Scope 2's params_layer_{i}.safetensors (with
 * config.json), or circuit-tracer's W_enc_{i}.safetensors + W_dec_{i}.safetensors.
 * The layers are the files present, numbered from 0 without a gap; other files in
 * the folder are not looked at. n_layers stays 0 when neither layout is there. */
static int detect_layers(const char *dir, ldb_cfg *c, ldb_err *e)
{
    int nomem = 0, rc = LDB_OK;
    char *p0 = layer_file(dir, "params_layer_", 0, ".safetensors", &nomem);
    char *c0 = layer_file(dir, "W_enc_", 0, ".safetensors", &nomem);
    int gs2 = p0 && ldb_path_is_file(p0), ct = !gs2 && c0 && ldb_path_is_file(c0);
    free(p0);
    free(c0);
    if (nomem)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    if (!gs2 && !ct)
        return LDB_OK;
    uint32_t n = 0;
    for (;; n++) {
        char *f = layer_file(dir, gs2 ? "params_layer_" : "W_enc_", n, ".safetensors", &nomem);
        int have = f && ldb_path_is_file(f);
        free(f);
        if (!have || n == 4096)
            break;
    }
    if (nomem)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    c->layout = gs2 ? LAYOUT_GS2_LAYERS : LAYOUT_CT;
    c->format = gs2 ? "gemmascope2" : "circuit-tracer";
    c->arch = ARCH_JUMPRELU; /* circuit-tracer's without thresholds: relu (multi.c) */
    c->transcoder = 1;
    c->n_layers = n;
    if (!(c->enc_paths = calloc(n, sizeof *c->enc_paths)) ||
        (ct && !(c->dec_paths = calloc(n, sizeof *c->dec_paths))))
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        c->enc_paths[i] = layer_file(dir, gs2 ? "params_layer_" : "W_enc_", i, ".safetensors", &nomem);
        if (ct && (c->dec_paths[i] = layer_file(dir, "W_dec_", i, ".safetensors", &nomem)) &&
            !ldb_path_is_file(c->dec_paths[i]))
            return ldb_err_set(e, LDB_ENOTFOUND, "%s: layer %u's decoder W_dec_%u.safetensors is "
                               "missing (beside W_enc_%u.safetensors)", dir, i, i, i);
    }
    if (nomem || !(c->weights_path = strdup(c->enc_paths[0])))
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    /* a gap: a later layer's file present past the first missing one */
    for (uint32_t i = n + 1; i < n + 64; i++) {
        char *f = layer_file(dir, gs2 ? "params_layer_" : "W_enc_", i, ".safetensors", &nomem);
        int have = f && ldb_path_is_file(f);
        free(f);
        if (have)
            return ldb_err_set(e, LDB_EFORMAT, "%s: %s%u.safetensors is missing (layers 0..%u "
                               "and %u are present)", dir, gs2 ? "params_layer_" : "W_enc_", n,
                               n - 1, i);
    }
    c->config_path = ldb_path_join(dir, "config.json");
    if (!c->config_path)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    if (!ldb_path_is_file(c->config_path)) {
        free(c->config_path);
        c->config_path = NULL;
        if (gs2)
            return ldb_err_set(e, LDB_ENOTFOUND, "%s: config.json beside params_layer_0.safetensors "
                               "is missing", dir);
        return LDB_OK; /* circuit-tracer's files carry no config */
    }
    cJSON *root = NULL;
    if ((rc = load_json(c->config_path, &root, e)))
        return rc;
    rc = parse_gemmascope2_layers(root, c, e);
    cJSON_Delete(root);
    return rc;
}

/* Gemma Scope v1 folders are named .../average_l0_71/params.npz. */
static double l0_from_path(const char *path)
{
    const char *s = strstr(path, "average_l0_");
    return s ? strtod(s + 11, NULL) : -1;
}

int ldb_cfg_detect(const char *path, ldb_cfg *c, ldb_err *e)
{
    int rc = LDB_OK;
    cJSON *root = NULL;
    char *dir = NULL, *cand = NULL;
    memset(c, 0, sizeof *c);
    c->l0 = -1;
    if (ldb_path_is_dir(path)) {
        dir = strdup(path);
    } else if (ldb_path_is_file(path)) {
        if (ends_with(path, ".npz")) {
            c->format = "gemmascope";
            c->weights_path = strdup(path);
            c->arch = ARCH_JUMPRELU;
            c->transcoder = 0;
            c->l0 = l0_from_path(path);
            return c->weights_path ? LDB_OK : ldb_err_set(e, LDB_ENOMEM, "out of memory");
        }
        char *tmp = strdup(path);
        dir = tmp ? strdup(dirname(tmp)) : NULL;
        free(tmp);
    } else {
        return ldb_err_set(e, LDB_ENOTFOUND, "%s: no such file or folder", path);
    }
    if (!dir)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    if ((rc = detect_layers(dir, c, e)) || c->n_layers)
        goto out;
    static const struct { const char *cfg, *weights, *format; } layouts[] = {
        {"config.json", "params.safetensors", "gemmascope2"},
        {"cfg.json", "sae_weights.safetensors", "saelens"},
        {"cfg.json", "sae.safetensors", "sparsify"},
        {NULL, "params.npz", "gemmascope"},
    };
    size_t i;
    for (i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        free(cand);
        cand = ldb_path_join(dir, layouts[i].weights);
        if (cand && ldb_path_is_file(cand))
            break;
    }
    if (i == sizeof layouts / sizeof layouts[0]) {
        rc = ldb_err_set(e, LDB_ENOTFOUND, "%s: no dictionary found; expected one of "
                         "cfg.json + sae_weights.safetensors (SAELens), params.npz (Gemma Scope), "
                         "config.json + params.safetensors (Gemma Scope 2), cfg.json + "
                         "sae.safetensors (sparsify)", path);
        goto out;
    }
    c->format = layouts[i].format;
    c->weights_path = cand;
    cand = NULL;
    if (!layouts[i].cfg) {
        c->arch = ARCH_JUMPRELU;
        c->l0 = l0_from_path(c->weights_path);
        goto out;
    }
    c->config_path = ldb_path_join(dir, layouts[i].cfg);
    if (!c->config_path || !ldb_path_is_file(c->config_path)) {
        rc = ldb_err_set(e, LDB_ENOTFOUND, "%s: %s beside %s is missing", dir, layouts[i].cfg,
                         layouts[i].weights);
        goto out;
    }
    if ((rc = load_json(c->config_path, &root, e)))
        goto out;
    if (!strcmp(c->format, "saelens"))
        rc = parse_saelens(root, c, e);
    else if (!strcmp(c->format, "gemmascope2"))
        rc = parse_gemmascope2(root, c, e);
    else
        rc = parse_sparsify(root, c, dir, e);
out:
    cJSON_Delete(root);
    free(cand);
    free(dir);
    return rc;
}
