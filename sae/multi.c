/* multi.c — multi-layer dictionaries: cross-layer transcoders (CLTs) and weakly
 * causal crosscoders. One encoder per layer, reading that layer's input; a decoder
 * that writes a layer's latents into its own output and every later one. Each
 * layer is opened as a single-layer JumpReLU dictionary of its own (its file's
 * encoder, biases, threshold, 3-D decoder block and affine skip matrix), so the
 * encoder runs each layer through the code that runs a plain SAE; the parent holds
 * the layers, their offsets in the global latent numbering, and the causal decode.
 * The layouts (config.c finds the files): Gemma Scope 2's params_layer_{i}
 * (w_dec [d_sae, n_layers, d_out], every output) and circuit-tracer's W_enc_{i} /
 * W_dec_{i} (W_dec_{i} [d_sae, n_layers - i, d_out], outputs i.. only). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/half.h"
#include "../common/sha256.h"
#include "blas.h"
#include "config.h"
#include "dict_impl.h"

/* The tensor name of layer i: Gemma Scope 2 names it plainly, circuit-tracer with
 * the layer's number as a suffix. */
static const ldb_tensor *layer_tensor(const ldb_tensors *ts, const ldb_cfg *cfg, const char *base,
                                      uint32_t i, char *name, size_t cap)
{
    if (cfg->layout == LAYOUT_CT)
        snprintf(name, cap, "%s_%u", base, i);
    else
        snprintf(name, cap, "%s", base);
    return ldb_tensors_find(ts, name);
}

static int missing(ldb_dict *c, const char *file, const char *name)
{
    return ldb_err_set(&c->err, LDB_EFORMAT, "%s: tensor '%s' is missing", file, name);
}

/* Opens layer i into c (a fresh single-layer dictionary): binds its encoder, biases,
 * threshold, decoder block and skip matrix, and checks their shapes against each
 * other and against the layer count n. */
static int open_layer(ldb_dict *c, const ldb_cfg *cfg, uint32_t i, uint32_t n)
{
    ldb_dict_info *in = &c->info;
    int ct = cfg->layout == LAYOUT_CT, rc;
    char name[64], sb[96];
    const char *ef = cfg->enc_paths[i], *df = ct ? cfg->dec_paths[i] : ef;
    in->format = cfg->format;
    in->weights_path = ldb_dict_keep(c, ef);
    in->config_path = ldb_dict_keep(c, cfg->config_path);
    in->hook_in = ldb_dict_keep(c, cfg->hooks_in ? cfg->hooks_in[i] : NULL);
    in->hook_out = ldb_dict_keep(c, cfg->hooks_out ? cfg->hooks_out[i] : NULL);
    in->model = ldb_dict_keep(c, cfg->model);
    in->normalize = "none";
    in->l0 = -1;
    in->n_layers = 1;
    c->arch = ARCH_JUMPRELU;
    c->norm = NORM_NONE;
    c->layer_index = i;
    c->dec_first = ct ? i : 0;
    if ((rc = ldb_safetensors_open(&c->ts, ef, &c->err)) ||
        (ct && (rc = ldb_safetensors_open(&c->dec_ts, df, &c->err))))
        return rc;

    const ldb_tensor *we = layer_tensor(&c->ts, cfg, ct ? "W_enc" : "w_enc", i, name, sizeof name);
    if (!we)
        return missing(c, ef, name);
    if ((rc = ldb_dict_need_float(c, we)))
        return rc;
    if (we->ndim != 2 || we->shape[0] == 0 || we->shape[1] == 0 ||
        we->shape[ct ? 1 : 0] > (1u << 20) || we->shape[ct ? 0 : 1] > UINT32_MAX / 2)
        return ldb_err_set(&c->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected [%s] "
                           "with d_in in 1..1048576", ef, we->name,
                           ldb_dict_shape_str(we, sb, sizeof sb), ct ? "d_sae, d_in" : "d_in, d_sae");
    c->enc_trans = ct;
    in->d_in = (uint32_t)we->shape[ct ? 1 : 0];
    in->d_sae = (uint32_t)we->shape[ct ? 0 : 1];
    in->dtype = we->dtype == LDB_F32 ? "float32" : we->dtype == LDB_F16 ? "float16" : "bfloat16";

    const ldb_tensor *wd = layer_tensor(ct ? &c->dec_ts : &c->ts, cfg, ct ? "W_dec" : "w_dec", i,
                                        name, sizeof name);
    if (!wd)
        return missing(c, df, name);
    uint64_t outs = ct ? n - i : n;
    if ((rc = ldb_dict_need_float(c, wd)))
        return rc;
    if (wd->ndim != 3 || wd->shape[0] != in->d_sae || wd->shape[1] != outs || wd->shape[2] == 0 ||
        wd->shape[2] > (1u << 20))
        return ldb_err_set(&c->err, LDB_EFORMAT, "%s: tensor '%s' has shape %s; expected [%u, %llu, "
                           "d_out]: d_sae from '%s', and %s%llu output layers (the folder has %u "
                           "layer files)", df, wd->name, ldb_dict_shape_str(wd, sb, sizeof sb),
                           in->d_sae, (unsigned long long)outs, we->name,
                           ct ? "n_layers - layer = " : "", (unsigned long long)outs, n);
    in->d_out = (uint32_t)wd->shape[2];
    c->W_dec3 = wd;

    const ldb_tensor *t = layer_tensor(&c->ts, cfg, "b_enc", i, name, sizeof name);
    if (!t)
        return missing(c, ef, name);
    if ((rc = ldb_dict_bind_wenc_t(c, we)) || (rc = ldb_dict_bind_vec_t(c, t, in->d_sae, &c->b_enc)))
        return rc;
    if (!(t = layer_tensor(&c->ts, cfg, "b_dec", i, name, sizeof name)))
        return missing(c, ef, name);
    if ((rc = ldb_dict_bind_vec_t(c, t, in->d_out, &c->b_dec)))
        return rc;
    if ((t = layer_tensor(&c->ts, cfg, "threshold", i, name, sizeof name))) {
        if ((rc = ldb_dict_bind_threshold_t(c, t)))
            return rc;
    } else if (ct) { /* circuit-tracer's transcoders without thresholds are relu */
        c->arch = ARCH_RELU;
        if (!(c->thr = calloc(in->d_sae, sizeof(float))))
            return ldb_err_set(&c->err, LDB_ENOMEM, "out of memory");
    } else {
        return missing(c, ef, name);
    }
    in->architecture = c->arch == ARCH_RELU ? "standard" : "jumprelu";

    const ldb_tensor *a = ct ? NULL : ldb_tensors_find(&c->ts, "affine_skip_connection");
    if (cfg->skip && !a)
        return ldb_err_set(&c->err, LDB_EFORMAT, "%s: the config declares an affine connection "
                           "but tensor 'affine_skip_connection' is missing", ef);
    if (a) {
        if ((rc = ldb_dict_check_mat(c, a, in->d_in, in->d_out, "d_in, d_out")))
            return rc;
        c->A_skip = a;
        c->skip = SKIP_XA;
        in->has_skip = 1;
    }
    return LDB_OK;
}

int ldb_multi_open(ldb_dict *d, const ldb_cfg *cfg)
{
    ldb_dict_info *in = &d->info;
    uint32_t n = cfg->n_layers;
    uint64_t total = 0;
    int rc = LDB_OK;
    if (!(d->layers = calloc(n, sizeof *d->layers)) || !(d->linfo = calloc(n, sizeof *d->linfo)))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    d->n_layers = n;
    for (uint32_t i = 0; i < n && !rc; i++) {
        ldb_dict *c = d->layers[i] = calloc(1, sizeof *c);
        if (!c)
            return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
        pthread_mutex_init(&c->mu, NULL);
        if ((rc = open_layer(c, cfg, i, n)))
            return ldb_err_set(&d->err, rc, "%s", c->err.msg);
        const ldb_dict_info *l = &c->info, *l0 = &d->layers[0]->info;
        if (l->d_in != l0->d_in || l->d_out != l0->d_out)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: layer %u has d_in %u and d_out %u but "
                               "layer 0 (%s) has %u and %u; every layer must agree", l->weights_path,
                               i, l->d_in, l->d_out, l0->weights_path, l0->d_in, l0->d_out);
        if (c->arch != d->layers[0]->arch || l->has_skip != l0->has_skip)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: layer %u is %s%s but layer 0 is %s%s; "
                               "every layer must agree", l->weights_path, i, l->architecture,
                               l->has_skip ? " with a skip matrix" : "", l0->architecture,
                               l0->has_skip ? " with a skip matrix" : "");
        d->linfo[i] = (ldb_dict_layer){i, l->d_in, l->d_sae, l->d_out, (uint32_t)total,
                                       l->hook_in, l->hook_out, l->weights_path};
        total += l->d_sae;
        if (total > UINT32_MAX / 2)
            return ldb_err_set(&d->err, LDB_EFORMAT, "%s: the layers hold %llu latents in all; "
                               "at most 2^31 are supported", l->weights_path,
                               (unsigned long long)total);
    }
    const ldb_dict_info *l0 = &d->layers[0]->info;
    in->d_in = l0->d_in;
    in->d_out = l0->d_out;
    in->d_sae = (uint32_t)total;
    in->dtype = l0->dtype;
    in->architecture = l0->architecture;
    in->has_skip = l0->has_skip;
    in->n_layers = n;
    d->arch = d->layers[0]->arch;
    in->kind = ldb_dict_keep(d, cfg->kind ? cfg->kind : "clt");
    in->type = strstr(in->kind, "crosscoder") ? "sae" : "transcoder";
    int same_in = 1, same_out = 1; /* one hook for all layers: the dictionary's too */
    for (uint32_t i = 1; i < n; i++) {
        same_in &= !strcmp(d->linfo[i].hook_in, d->linfo[0].hook_in);
        same_out &= !strcmp(d->linfo[i].hook_out, d->linfo[0].hook_out);
    }
    in->hook_in = same_in ? d->linfo[0].hook_in : "";
    in->hook_out = same_out ? d->linfo[0].hook_out : "";
    return LDB_OK;
}

void ldb_multi_close(ldb_dict *d)
{
    for (uint32_t i = 0; d->layers && i < d->n_layers; i++)
        ldb_dict_close(d->layers[i]);
    free(d->layers);
    free(d->linfo);
}

const ldb_dict_layer *ldb_dict_get_layer(const ldb_dict *d, uint32_t i)
{
    if (d->n_layers)
        return i < d->n_layers ? &d->linfo[i] : NULL;
    return i == 0 ? &d->one : NULL;
}

uint64_t ldb_dict_ignored_decoder(const ldb_dict *d)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < d->n_layers; i++) {
        ldb_dict *c = d->layers[i];
        pthread_mutex_lock(&c->mu);
        n += c->dec_ignored;
        pthread_mutex_unlock(&c->mu);
    }
    return n;
}

/* Adds one file's bytes to s; messages on d. */
static int hash_file(ldb_dict *d, ldb_sha *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ldb_err_set(&d->err, LDB_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = (size_t)1 << 20;
    unsigned char *buf = malloc(cap);
    int rc = buf ? LDB_OK : ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    for (ssize_t got; !rc && (got = read(fd, buf, cap)) != 0;) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = ldb_err_set(&d->err, LDB_EIO, "%s: cannot read: %s", path, strerror(errno));
        else
            ldb_sha_update(s, buf, (size_t)got);
    }
    free(buf);
    close(fd);
    return rc;
}

int ldb_multi_sha256(ldb_dict *d, char hex[65])
{
    ldb_sha s;
    unsigned char sum[32];
    int rc = LDB_OK;
    if (ldb_sha_init(&s))
        return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < d->n_layers && !rc; i++) {
        const ldb_dict *c = d->layers[i];
        rc = hash_file(d, &s, c->info.weights_path);
        if (!rc && c->dec_ts.file.path)
            rc = hash_file(d, &s, c->dec_ts.file.path);
    }
    ldb_sha_final(&s, sum);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    return rc;
}

/* ---- The causal decode ------------------------------------------------------ */

/* Scans layer c's decoder once (under its mutex): NaN/Inf in the blocks that are
 * read (outputs from the layer on), non-zero entries in those that are not; an
 * f32 view of a non-F32 skip matrix. */
static int prepare_layer(ldb_dict *c)
{
    int rc = LDB_OK;
    pthread_mutex_lock(&c->mu);
    if (!c->dec_checked) {
        const ldb_tensor *wd = c->W_dec3;
        uint64_t outs = wd->shape[1], dout = wd->shape[2], first = c->layer_index - c->dec_first;
        uint64_t bad = UINT64_MAX, ignored = 0;
        for (uint64_t j = 0; j < wd->shape[0] && bad == UINT64_MAX; j++) {
            const uint8_t *row = wd->data + j * outs * dout * wd->elsize;
            if (first) /* outputs before the layer: never read, counted if not zero */
                for (uint64_t k = 0; k < first * dout; k++) {
                    float v;
                    ldb_to_f32(&v, row + k * wd->elsize, wd->dtype, 1);
                    ignored += v != 0.0f;
                }
            uint64_t at = ldb_find_nonfinite(row + first * dout * wd->elsize, wd->dtype,
                                             (outs - first) * dout);
            if (at != UINT64_MAX)
                bad = j * outs * dout + first * dout + at;
        }
        if (bad != UINT64_MAX) {
            rc = ldb_err_set(&c->err, LDB_EBADVALUE, "%s: tensor '%s' has NaN or Inf at [%llu, "
                             "%llu, %llu]; expected finite weights", c->info.weights_path, wd->name,
                             (unsigned long long)(bad / (outs * dout)),
                             (unsigned long long)(bad / dout % outs),
                             (unsigned long long)(bad % dout));
        } else {
            rc = ldb_dict_skip_view(c);
        }
        if (!rc) {
            c->dec_ignored = ignored;
            c->dec_checked = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* The layer a global latent id belongs to (binary search over the offsets). */
static uint32_t layer_of(const ldb_dict *d, uint32_t g)
{
    uint32_t lo = 0, hi = d->n_layers - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (d->linfo[mid].offset <= g)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

int ldb_dict_decode_layers(ldb_dict *d, const ldb_codes *tile, const void *const *x,
                           size_t row_stride, int dtype, float *const *x_hat, size_t out_stride)
{
    if (!d->n_layers) /* one layer: the single-layer decode, rows back to back */
        return row_stride && row_stride != d->info.d_in
                   ? ldb_dict_fail(d, LDB_EINVAL, "ldb_dict_decode_layers: a single-layer "
                                   "dictionary takes rows back to back (row_stride 0)")
               : out_stride && out_stride != d->info.d_out
                   ? ldb_dict_fail(d, LDB_EINVAL, "ldb_dict_decode_layers: a single-layer "
                                   "dictionary writes rows back to back (out_stride 0)")
                   : ldb_dict_decode(d, tile, x[0], dtype, x_hat[0]);
    uint32_t n = d->n_layers;
    size_t dout = d->info.d_out, din = d->info.d_in;
    size_t xs = row_stride ? row_stride : din, os = out_stride ? out_stride : dout;
    int rc = LDB_OK;
    for (uint32_t l = 0; l < n && !rc; l++)
        if ((rc = prepare_layer(d->layers[l])))
            return ldb_dict_fail(d, rc, "%s", d->layers[l]->err.msg);
    float *row = malloc(dout * sizeof(float));
    if (!row) {
        rc = ldb_dict_fail(d, LDB_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t r = 0; r < tile->n_rows; r++) {
        for (uint32_t o = 0; o < n; o++) { /* the output biases */
            float *dst = x_hat[o] + (size_t)r * os;
            memcpy(dst, d->layers[o]->b_dec, dout * sizeof(float));
        }
        for (uint64_t i = tile->start[r]; i < tile->start[r + 1]; i++) {
            uint32_t g = tile->latent[i], l = layer_of(d, g), j = g - d->linfo[l].offset;
            const ldb_dict *c = d->layers[l];
            const ldb_tensor *wd = c->W_dec3;
            uint64_t outs = wd->shape[1];
            float v = tile->value[i];
            for (uint32_t o = l; o < n; o++) { /* its own layer and every later one */
                const uint8_t *src = wd->data + ((uint64_t)j * outs + (o - c->dec_first)) * dout *
                                                    wd->elsize;
                const float *w = row;
                if (wd->dtype == LDB_F32 && ((uintptr_t)src & 3) == 0)
                    w = (const float *)(const void *)src;
                else
                    ldb_to_f32(row, src, wd->dtype, dout);
                float *dst = x_hat[o] + (size_t)r * os;
                for (size_t k = 0; k < dout; k++)
                    dst[k] += v * w[k];
            }
        }
    }
    for (uint32_t o = 0; o < n && !rc; o++) /* the affine skip of each output, x_o . A_o */
        if (d->layers[o]->A_skip &&
            (rc = ldb_dict_skip_add(d->layers[o], x[o], xs, dtype, tile->n_rows, x_hat[o], os)))
            rc = ldb_dict_fail(d, rc, rc == LDB_EBLAS ? "cannot load OpenBLAS" : "out of memory");
out:
    free(row);
    return rc;
}
