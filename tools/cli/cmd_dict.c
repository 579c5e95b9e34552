/* cmd_dict.c — `latentdb dict show` and `latentdb dict eval`: what a dictionary
 * file holds, and how well it reconstructs a set of activations (FVE, MSE, L0). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "latentdb.h"

static const char *USAGE_DICT =
    "usage: latentdb dict show PATH [--json]\n"
    "       latentdb dict add DB NAME PATH [--json]\n"
    "       latentdb dict ls DB [--json]\n"
    "       latentdb dict rm DB NAME [--json]\n"
    "       latentdb dict set-path DB NAME PATH [--json]\n"
    "       latentdb dict eval PATH --acts A.npy [--acts-out B.npy] [--precision exact|f32|bf16]\n"
    "                          [--tokens T.npy [--skip-tokens IDS | --tokenizer tokenizer.json]]\n"
    "                          [--target-l0 N [--lambda L]] [--json]\n"
    "latentdb help dict SUBCOMMAND (or latentdb dict SUBCOMMAND --help) tells more of one.\n";
static const char *USAGE_DICT_SHOW =
    "usage: latentdb dict show PATH [--json]\n"
    "What a dictionary folder or file holds: format, architecture, sizes, hooks, the\n"
    "SHA-256 of its weights (README, \"Dictionary commands\", lists the JSON fields).\n";
static const char *USAGE_DICT_EVAL =
    "usage: latentdb dict eval PATH --acts A.npy [--acts-out B.npy] [--precision exact|f32|bf16]\n"
    "                          [--tokens T.npy [--skip-tokens IDS | --tokenizer tokenizer.json]]\n"
    "                          [--target-l0 N [--lambda L]] [--json]\n"
    "Encodes A.npy ([n, d_in] or [n_seq, ctx, d_in]) and decodes it: FVE, MSE, L0, dead latents.\n"
    "--tokens T.npy gives the token of each position; positions holding a skip token (the\n"
    "ids of --skip-tokens, or the BOS, EOS and PAD of --tokenizer) are left out of every\n"
    "figure and reported apart (BOS rows of huge norm would dominate them).\n"
    "A multi-layer dictionary (CLT, crosscoder) takes --acts A0.npy,A1.npy,... (one file per\n"
    "layer) and --acts-out B0.npy,B1.npy,...; it reports each output layer.\n"
    "--target-l0 prints the terms of Gemma Scope 2's objective, reconstruction + lambda *\n"
    "(2/L0*) * (L0 - L0*)^2 per token (docs/DICTIONARIES.md).\n";

static int open_dict(const char *path, ldb_dict **d)
{
    int rc = ldb_dict_open(path, d);
    if (rc)
        return cli_fail("%s", ldb_dict_errmsg(*d));
    return 0;
}

/* "key           value" for a string a config file gave (so "-" when empty, and
 * never raw control characters). */
static void show_line(const char *key, const char *v)
{
    printf("%-14s", key);
    cli_put_oneline(*v ? v : "-", *v ? strlen(v) : 1);
    putchar('\n');
}

static int dict_show(int argc, char **argv)
{
    const char *path = NULL;
    int json, rc = cli_args(argc, argv, USAGE_DICT_SHOW, 1, &path, &json, NULL, NULL,
                            "dict show needs a PATH");
    if (rc)
        return rc;
    ldb_dict *d = NULL;
    char sha[65];
    rc = open_dict(path, &d);
    if (rc)
        goto out;
    if (ldb_dict_sha256(d, sha)) {
        rc = cli_fail("%s", ldb_dict_errmsg(d));
        goto out;
    }
    const ldb_dict_info *in = ldb_dict_get_info(d);
    if (json) {
        char *desc = ldb_dict_describe(d);
        cJSON *o = desc ? cJSON_Parse(desc) : NULL;
        free(desc);
        if (!o) {
            rc = cli_fail("%s", ldb_dict_errmsg(d));
            goto out;
        }
        cJSON_AddItemToObject(o, "path", cJSON_CreateString(path));
        cli_print_json(o);
    } else {
        printf("format        %s\n", in->format);
        printf("architecture  %s%s\n", in->architecture,
               in->k ? (in->relu_first ? " (relu, then top-k)" : " (top-k, then relu)") : "");
        if (in->k)
            printf("k             %u\n", in->k);
        if (in->n_layers > 1)
            printf("type          %s of %u layers%s\n", in->kind, in->n_layers,
                   in->has_skip ? ", with affine skip connections" : "");
        else
            printf("type          %s%s\n", in->type, in->has_skip ? " with skip connection" : "");
        printf("d_in, d_out   %u, %u%s\n", in->d_in, in->d_out, in->n_layers > 1 ? " (each layer)" : "");
        printf("d_sae         %u%s\n", in->d_sae, in->n_layers > 1 ? " (all layers)" : "");
        printf("dtype         %s\n", in->dtype);
        show_line("model", in->model);
        show_line("hook_in", in->hook_in);
        show_line("hook_out", in->hook_out);
        if (in->l0 >= 0)
            printf("l0            %g (stated by the config)\n", in->l0);
        printf("input         %s%s\n", in->sub_b_dec ? "x - b_dec" : "x",
               strcmp(in->normalize, "none") ? "" : "");
        if (strcmp(in->normalize, "none"))
            show_line("normalize", in->normalize);
        printf("weights       %s%s\n", in->weights_path, in->n_layers > 1 ? " (layer 0)" : "");
        if (*in->config_path)
            printf("config        %s\n", in->config_path);
        printf("sha256        %s%s\n", sha, in->n_layers > 1 ? " (every layer file, in order)" : "");
        if (in->n_layers > 1) {
            printf("\n%5s %8s %-19s  %s\n", "layer", "d_sae", " latents", "hook_in -> hook_out");
            for (uint32_t l = 0; l < in->n_layers; l++) {
                const ldb_dict_layer *ly = ldb_dict_get_layer(d, l);
                char *t1 = NULL, *t2 = NULL;
                printf("%5u %8u %8u..%-8u  %s -> %s\n", l, ly->d_sae, ly->offset,
                       ly->offset + ly->d_sae - 1, *ly->hook_in ? cli_safe(ly->hook_in, &t1) : "-",
                       *ly->hook_out ? cli_safe(ly->hook_out, &t2) : "-");
                free(t1);
                free(t2);
            }
            printf("latents are named LAYER:INDEX (or by the global id in 'latents')\n");
        }
    }
out:
    ldb_dict_close(d);
    return rc;
}

typedef struct eval_ctx {
    ldb_dict *d;
    const ldb_dict_info *in;
    acts *x, *y;               /* input, and the target (== x for an SAE) */
    float *xhat;
    double sse, *sum, *sumsq;
    uint32_t *l0;
    uint8_t *fired;
    uint64_t done;
    int decode_failed;         /* the encode stopped because decode failed (message on d) */
    double target_l0, lambda;  /* --target-l0 (0: not asked), --lambda (NAN: not given) */
    const uint8_t *skip;       /* skip[r]: row r holds a skip token, left out (NULL: none) */
    const cli_skip *sk;        /* where skip comes from (its ids) */
    double sse_s, *sum_s, *sumsq_s; /* the skipped rows' own error and target sums */
} eval_ctx;

/* One row's reconstruction h against its target y (dout elements of ydtype): the
 * squared error into *sse, the target into the per-dimension sums its variance comes
 * from (target_var). */
static void err_row(const float *h, const uint8_t *y, int ydtype, uint32_t dout, double *sse,
                    double *sum, double *sumsq)
{
    size_t ys = ydtype == LDB_F32 ? 4 : 2;
    for (uint32_t k = 0; k < dout; k++) {
        float v;
        ldb_to_f32(&v, y + ys * k, ydtype, 1);
        double e = (double)h[k] - v;
        *sse += e * e;
        sum[k] += v;
        sumsq[k] += (double)v * v;
    }
}

/* n times the target's total variance, from err_row's sums over n rows. */
static double target_var(const double *sum, const double *sumsq, uint32_t dout, double n)
{
    double var = 0;
    for (uint32_t k = 0; k < dout; k++)
        var += sumsq[k] - sum[k] * sum[k] / n;
    return var;
}

static int eval_tile(void *arg, const ldb_codes *t)
{
    eval_ctx *c = arg;
    const ldb_dict_info *in = c->in;
    size_t xs = c->x->dtype == LDB_F32 ? 4 : 2, ys = c->y ? (c->y->dtype == LDB_F32 ? 4 : 2) : 0;
    const uint8_t *xt = c->x->data + t->row0 * in->d_in * xs;
    for (uint32_t r = 0; r < t->n_rows; r++) {
        c->l0[t->row0 + r] = (uint32_t)(t->start[r + 1] - t->start[r]);
        for (uint64_t i = t->start[r]; i < t->start[r + 1] && !(c->skip && c->skip[t->row0 + r]); i++)
            c->fired[t->latent[i]] = 1;
    }
    if (c->y) {
        if (ldb_dict_decode(c->d, t, xt, c->x->dtype, c->xhat)) {
            c->decode_failed = 1;
            return -1;
        }
        const uint8_t *yt = c->y->data + t->row0 * in->d_out * ys;
        for (uint32_t r = 0; r < t->n_rows; r++) {
            int s = c->skip && c->skip[t->row0 + r];
            err_row(c->xhat + (size_t)r * in->d_out, yt + (size_t)r * in->d_out * ys, c->y->dtype,
                    in->d_out, s ? &c->sse_s : &c->sse, s ? c->sum_s : c->sum,
                    s ? c->sumsq_s : c->sumsq);
        }
    }
    c->done += t->n_rows;
    cli_progress("eval", "tokens", c->done, c->x->rows);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* dict eval's figures from what eval_tile gathered (L0 sorted in place), printed. */
static void eval_report(eval_ctx *c, const ldb_encoder *e, const char *ay, double secs,
                        int json)
{
    const ldb_dict_info *in = c->in;
    /* the skipped rows' L0 apart: ordinary rows' first in c->l0, then theirs */
    uint64_t rows = 0, n_s = 0;
    uint32_t *sl0 = c->skip ? malloc((c->x->rows + 1) * sizeof *sl0) : NULL;
    for (uint64_t r = 0; r < c->x->rows; r++) {
        if (!c->skip || !c->skip[r])
            c->l0[rows++] = c->l0[r];
        else if (sl0)
            sl0[n_s++] = c->l0[r];
    }
    double n = (double)rows, l0sum = 0, l0sq = 0, var = 0;
    for (uint64_t r = 0; r < rows; r++) {
        l0sum += c->l0[r];
        l0sq += (double)c->l0[r] * c->l0[r];
    }
    double l0m = l0sum / n, l0sd = sqrt(fmax(0, l0sq / n - l0m * l0m)), pen = 0;
    for (uint64_t r = 0; c->target_l0 > 0 && r < rows; r++) /* per token, as written */
        pen += (2 / c->target_l0) * ((double)c->l0[r] - c->target_l0) *
               ((double)c->l0[r] - c->target_l0);
    pen /= n;
    double recon = c->y ? c->sse / n : NAN;
    qsort(c->l0, rows, sizeof *c->l0, cmp_u32);
    uint64_t dead = 0;
    for (uint32_t j = 0; j < in->d_sae; j++)
        dead += !c->fired[j];
    if (c->y)
        var = target_var(c->sum, c->sumsq, in->d_out, n);
    double mse = c->y ? c->sse / (n * in->d_out) : NAN, fve = c->y && var > 0 ? 1 - c->sse / var : NAN;
    int warn = in->l0 > 0 && (l0m > 2 * in->l0 || l0m < in->l0 / 2);
    /* the skipped positions' own figures */
    double s_l0m = 0, s_fve = NAN, s_mse = NAN;
    uint32_t s_max = 0;
    for (uint64_t k = 0; k < n_s; k++) {
        s_l0m += sl0[k];
        s_max = sl0[k] > s_max ? sl0[k] : s_max;
    }
    if (n_s) {
        s_l0m /= (double)n_s;
        double sv = c->y ? target_var(c->sum_s, c->sumsq_s, in->d_out, (double)n_s) : 0;
        s_mse = c->y ? c->sse_s / ((double)n_s * in->d_out) : NAN;
        s_fve = c->y && sv > 0 ? 1 - c->sse_s / sv : NAN;
    }
    char ids[256] = "";
    for (size_t i = 0, o = 0; c->sk && i < c->sk->n_ids && o < sizeof ids - 12; i++)
        o += (size_t)snprintf(ids + o, sizeof ids - o, "%s%u", i ? "," : "", c->sk->ids[i]);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "tokens", n);
        if (c->skip) {
            cJSON *a = cJSON_AddArrayToObject(o, "skip_tokens"), *k;
            for (size_t i = 0; i < c->sk->n_ids; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(c->sk->ids[i]));
            k = cJSON_AddObjectToObject(o, "skipped");
            cJSON_AddNumberToObject(k, "tokens", (double)n_s);
            if (n_s && c->y && s_fve == s_fve)
                cJSON_AddNumberToObject(k, "fve", s_fve);
            else
                cJSON_AddNullToObject(k, "fve");
            if (n_s && c->y)
                cJSON_AddNumberToObject(k, "mse", s_mse);
            else
                cJSON_AddNullToObject(k, "mse");
            cJSON_AddNumberToObject(k, "l0_mean", s_l0m);
            cJSON_AddNumberToObject(k, "l0_max", s_max);
        }
        cJSON_AddStringToObject(o, "target", ay ? "acts_out" : c->y ? "input" : "none");
        if (c->y) {
            cJSON_AddNumberToObject(o, "fve", fve);
            cJSON_AddNumberToObject(o, "mse", mse);
        } else {
            cJSON_AddNullToObject(o, "fve");
            cJSON_AddNullToObject(o, "mse");
        }
        cJSON_AddNumberToObject(o, "l0_mean", l0m);
        cJSON_AddNumberToObject(o, "l0_std", l0sd);
        cJSON_AddNumberToObject(o, "l0_min", c->l0[0]);
        cJSON_AddNumberToObject(o, "l0_median", c->l0[rows / 2]);
        cJSON_AddNumberToObject(o, "l0_max", c->l0[rows - 1]);
        cJSON_AddNumberToObject(o, "dead", (double)dead);
        cJSON_AddNumberToObject(o, "dead_fraction", (double)dead / in->d_sae);
        if (in->l0 >= 0)
            cJSON_AddNumberToObject(o, "config_l0", in->l0);
        else
            cJSON_AddNullToObject(o, "config_l0");
        cJSON_AddBoolToObject(o, "l0_warning", warn);
        cJSON_AddNumberToObject(o, "tokens_per_s", secs > 0 ? n / secs : 0);
        cJSON_AddStringToObject(o, "blas_core", ldb_blas_corename());
        cJSON_AddStringToObject(o, "gemm", ldb_encoder_gemm_name(e));
        uint64_t pairs, refined;
        ldb_encoder_screen_counts(e, &pairs, &refined);
        if (pairs)
            cJSON_AddNumberToObject(o, "refined_fraction", (double)refined / (double)pairs);
        else
            cJSON_AddNullToObject(o, "refined_fraction");
        if (c->target_l0 > 0) {
            cJSON *t = cJSON_AddObjectToObject(o, "objective");
            cJSON_AddNumberToObject(t, "target_l0", c->target_l0);
            if (c->y)
                cJSON_AddNumberToObject(t, "reconstruction", recon);
            else
                cJSON_AddNullToObject(t, "reconstruction");
            cJSON_AddNumberToObject(t, "l0", l0m);
            cJSON_AddNumberToObject(t, "l0_penalty", pen);
            if (c->lambda == c->lambda) {
                cJSON_AddNumberToObject(t, "lambda", c->lambda);
                cJSON_AddNumberToObject(t, "l0_penalty_weighted", c->lambda * pen);
                if (c->y)
                    cJSON_AddNumberToObject(t, "objective", recon + c->lambda * pen);
                else
                    cJSON_AddNullToObject(t, "objective");
            }
        }
        cli_print_json(o);
    } else {
        if (c->skip)
            printf("tokens        %llu (%llu positions of skip tokens %s left out: below)\n",
                   (unsigned long long)rows, (unsigned long long)n_s, ids);
        else
            printf("tokens        %llu\n", (unsigned long long)rows);
        if (c->y) {
            printf("FVE           %.4f   (fraction of variance explained, vs %s)\n", fve,
                   ay ? ay : "the input");
            printf("MSE           %.6g\n", mse);
        } else {
            printf("FVE           -      (a transcoder: pass --acts-out with its target)\n");
        }
        printf("L0            mean %.2f, std %.2f, min %u, median %u, max %u\n", l0m, l0sd,
               c->l0[0], c->l0[rows / 2], c->l0[rows - 1]);
        if (c->skip && n_s && c->y)
            printf("skipped       %llu positions: FVE %.4f, MSE %.6g, L0 mean %.2f, max %u\n",
                   (unsigned long long)n_s, s_fve, s_mse, s_l0m, s_max);
        else if (c->skip && n_s)
            printf("skipped       %llu positions: L0 mean %.2f, max %u\n", (unsigned long long)n_s,
                   s_l0m, s_max);
        else if (c->skip)
            printf("skipped       none of the positions holds a skip token\n");
        if (in->l0 >= 0)
            printf("config l0     %g\n", in->l0);
        printf("dead latents  %llu of %u (%.2f%%) never fired on this data\n",
               (unsigned long long)dead, in->d_sae, 100.0 * dead / in->d_sae);
        uint64_t pairs, refined;
        ldb_encoder_screen_counts(e, &pairs, &refined);
        if (strstr(ldb_encoder_gemm_name(e), "bf16")) /* the GEMM is oneDNN's */
            printf("speed         %.0f tokens/s (%s)\n", secs > 0 ? n / secs : 0,
                   ldb_encoder_gemm_name(e));
        else
            printf("speed         %.0f tokens/s (%s, OpenBLAS core %s, %d threads)\n",
                   secs > 0 ? n / secs : 0, ldb_encoder_gemm_name(e), ldb_blas_corename(),
                   ldb_blas_threads());
        if (pairs)
            printf("screen        %.4f%% of (token, latent) pairs refined by the reference\n",
                   100.0 * (double)refined / (double)pairs);
        if (c->target_l0 > 0) {
            printf("objective     Gemma Scope 2's, target L0* = %g, per token (docs/DICTIONARIES.md)\n",
                   c->target_l0);
            if (c->y)
                printf("  reconstruction     %.6g   mean |x - x_hat|^2\n", recon);
            else
                printf("  reconstruction     -        (a transcoder: pass --acts-out)\n");
            printf("  L0                 %.4g\n", l0m);
            printf("  L0 penalty         %.6g   mean (2/L0*) (L0 - L0*)^2, unweighted\n", pen);
            if (c->lambda == c->lambda) {
                printf("  lambda x penalty   %.6g   (lambda %g)\n", c->lambda * pen, c->lambda);
                if (c->y)
                    printf("  objective          %.6g   reconstruction + lambda x penalty\n",
                           recon + c->lambda * pen);
            } else {
                printf("  (the files carry no lambda; --lambda L weighs the penalty; the frequency "
                       "penalty has no published formula)\n");
            }
        }
    }
    free(sl0);
    cli_blas_note();
    if (warn)
        cli_warn("mean L0 %.1f is more than 2x off the config's l0 %g: the activations "
                 "probably come from the wrong site (the dictionary reads %s)", l0m, in->l0,
                 *in->hook_in ? in->hook_in : "an unnamed hook");
}

/* ---- dict eval of a multi-layer dictionary: per output layer ---- */

typedef struct leval {
    ldb_dict *d;
    uint32_t L, dout;
    layer_acts *x, *y;         /* y NULL: no target */
    float *hat;                /* 4096 rows x L x d_out */
    double *sse, *sum, *sumsq; /* per output layer; sum, sumsq per (layer, dim) */
    uint64_t *l0sum, done;     /* per layer: codes */
    uint32_t *offsets;         /* L + 1 */
    int decode_failed;
} leval;

static int leval_tile(void *arg, const ldb_codes *t)
{
    leval *c = arg;
    uint32_t L = c->L, dout = c->dout;
    for (uint32_t r = 0; r < t->n_rows; r++)
        for (uint64_t i = t->start[r]; i < t->start[r + 1]; i++) {
            uint32_t l = 0;
            while (l + 1 < L && t->latent[i] >= c->offsets[l + 1])
                l++;
            c->l0sum[l]++;
        }
    if (c->y) {
        const void *xs[256];
        float *hs[256];
        size_t es = c->x->dtype == LDB_F32 ? 4 : 2, ys = c->y->dtype == LDB_F32 ? 4 : 2;
        for (uint32_t l = 0; l < L; l++) {
            xs[l] = (const uint8_t *)c->x->xs[l] + t->row0 * c->x->stride * es;
            hs[l] = c->hat + (size_t)l * dout;
        }
        if (ldb_dict_decode_layers(c->d, t, xs, c->x->stride, c->x->dtype, hs, (size_t)L * dout)) {
            c->decode_failed = 1;
            return -1;
        }
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t r = 0; r < t->n_rows; r++)
                err_row(c->hat + ((size_t)r * L + l) * dout,
                        (const uint8_t *)c->y->xs[l] + (t->row0 + r) * c->y->stride * ys,
                        c->y->dtype, dout, &c->sse[l], c->sum + (size_t)l * dout,
                        c->sumsq + (size_t)l * dout);
    }
    c->done += t->n_rows;
    cli_progress("eval", "tokens", c->done, c->x->rows);
    return 0;
}

static int dict_eval_layers(ldb_dict *d, ldb_encoder *e, const char *ax, const char *ay,
                            int json)
{
    const ldb_dict_info *in = ldb_dict_get_info(d);
    uint32_t L = in->n_layers, dout = in->d_out;
    int crosscoder = !strcmp(in->type, "sae"), rc;
    layer_acts *x = calloc(1, sizeof *x), *y = ay ? calloc(1, sizeof *y) : NULL;
    leval c;
    memset(&c, 0, sizeof c);
    if (!x || (ay && !y)) {
        rc = cli_fail("out of memory");
        goto out;
    }
    if ((rc = cli_layer_acts_open(x, ax, L, in->d_in, "d_in")) ||
        (ay && (rc = cli_layer_acts_open(y, ay, L, dout, "d_out"))))
        goto out;
    if (y && y->rows != x->rows) {
        rc = cli_fail("%s: %llu rows; expected %llu, as in %s", ay, (unsigned long long)y->rows,
                      (unsigned long long)x->rows, ax);
        goto out;
    }
    if (!x->rows) {
        rc = cli_fail("%s: no rows to evaluate", ax);
        goto out;
    }
    c.d = d;
    c.L = L;
    c.dout = dout;
    c.x = x;
    c.y = y ? y : crosscoder ? x : NULL; /* a crosscoder reconstructs its inputs */
    c.hat = malloc((size_t)4096 * L * dout * sizeof(float));
    c.sse = calloc(L, sizeof(double));
    c.sum = calloc((size_t)L * dout, sizeof(double));
    c.sumsq = calloc((size_t)L * dout, sizeof(double));
    c.l0sum = calloc(L, sizeof(uint64_t));
    c.offsets = calloc(L + 1, sizeof(uint32_t));
    if (!c.hat || !c.sse || !c.sum || !c.sumsq || !c.l0sum || !c.offsets) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (uint32_t l = 0; l < L; l++)
        c.offsets[l] = ldb_dict_get_layer(d, l)->offset;
    c.offsets[L] = in->d_sae;
    double t0 = cli_now();
    int erc = ldb_encoder_encode_layers(e, x->xs, x->stride, x->dtype, x->rows, leval_tile, &c);
    double secs = cli_now() - t0;
    cli_progress_end();
    if (erc) {
        rc = cli_fail("%s", c.decode_failed ? ldb_dict_errmsg(d) : ldb_encoder_errmsg(e));
        goto out;
    }
    double n = (double)x->rows, l0 = 0;
    cJSON *o = json ? cJSON_CreateObject() : NULL, *ls = NULL;
    if (o) {
        cJSON_AddNumberToObject(o, "tokens", n);
        cJSON_AddStringToObject(o, "target", ay ? "acts_out" : c.y ? "input" : "none");
        ls = cJSON_AddArrayToObject(o, "layers");
    } else {
        printf("tokens        %llu\n", (unsigned long long)x->rows);
        printf("%5s %10s %10s %12s %9s\n", "layer", "FVU", "FVE", "MSE", "L0");
    }
    for (uint32_t l = 0; l < L; l++) {
        double lm = c.l0sum[l] / n;
        double var = c.y ? target_var(c.sum + (size_t)l * dout, c.sumsq + (size_t)l * dout, dout, n)
                         : 0;
        double fvu = c.y && var > 0 ? c.sse[l] / var : NAN, mse = c.y ? c.sse[l] / (n * dout) : NAN;
        l0 += lm;
        if (o) {
            cJSON *e1 = cJSON_CreateObject();
            cJSON_AddItemToArray(ls, e1);
            cJSON_AddNumberToObject(e1, "layer", l);
            if (c.y) {
                cJSON_AddNumberToObject(e1, "fvu", fvu);
                cJSON_AddNumberToObject(e1, "fve", 1 - fvu);
                cJSON_AddNumberToObject(e1, "mse", mse);
            } else {
                cJSON_AddNullToObject(e1, "fvu");
                cJSON_AddNullToObject(e1, "fve");
                cJSON_AddNullToObject(e1, "mse");
            }
            cJSON_AddNumberToObject(e1, "l0_mean", lm);
        } else if (c.y) {
            printf("%5u %10.6f %10.6f %12.6g %9.2f\n", l, fvu, 1 - fvu, mse, lm);
        } else {
            printf("%5u %10s %10s %12s %9.2f\n", l, "-", "-", "-", lm);
        }
    }
    uint64_t ignored = ldb_dict_ignored_decoder(d);
    if (o) {
        cJSON_AddNumberToObject(o, "l0_mean", l0);
        if (in->l0 >= 0)
            cJSON_AddNumberToObject(o, "config_l0", in->l0);
        else
            cJSON_AddNullToObject(o, "config_l0");
        if (c.y) /* counted by the decode */
            cJSON_AddNumberToObject(o, "ignored_decoder_entries", (double)ignored);
        else
            cJSON_AddNullToObject(o, "ignored_decoder_entries");
        cJSON_AddNumberToObject(o, "tokens_per_s", secs > 0 ? n / secs : 0);
        cJSON_AddStringToObject(o, "gemm", ldb_encoder_gemm_name(e));
        cli_print_json(o);
    } else {
        printf("L0            %.2f in all layers%s\n", l0, c.y ? "" : " (a transcoder: pass "
               "--acts-out with each output layer's target for FVU)");
        if (in->l0 >= 0)
            printf("config l0     %g\n", in->l0);
        if (ignored)
            printf("note          the decoder holds %llu non-zero entries for outputs before their "
                   "latent's layer; they are ignored (a latent writes its own layer and later "
                   "ones)\n", (unsigned long long)ignored);
        printf("speed         %.0f tokens/s (%s)\n", secs > 0 ? n / secs : 0,
               ldb_encoder_gemm_name(e));
    }
out:
    if (x)
        cli_layer_acts_close(x);
    if (y)
        cli_layer_acts_close(y);
    free(x);
    free(y);
    free(c.hat);
    free(c.sse);
    free(c.sum);
    free(c.sumsq);
    free(c.l0sum);
    free(c.offsets);
    return rc;
}

static int dict_eval(int argc, char **argv)
{
    const char *path = NULL, *ax = NULL, *ay = NULL, *tokens = NULL, *skip_ids = NULL,
               *tjson = NULL;
    int json = 0, rc = 0, prec = LDB_PRECISION_EXACT;
    double target = 0, lambda = NAN;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--target-l0") && i + 1 < argc) {
            target = strtod(argv[++i], &end);
            if (*end || !(target > 0) || target > 1e9)
                return cli_usage(USAGE_DICT_EVAL, "--target-l0 takes a positive number, not '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--lambda") && i + 1 < argc) {
            lambda = strtod(argv[++i], &end);
            if (*end || !(lambda >= 0) || lambda > 1e30)
                return cli_usage(USAGE_DICT_EVAL, "--lambda takes a non-negative number, not '%s'", argv[i]);
        }
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if (cli_parse_precision(argv[++i], &prec))
                return cli_usage(USAGE_DICT_EVAL, "--precision is exact, f32 or bf16, not '%s'", argv[i]);
        }
        else if (!strcmp(argv[i], "--acts") && i + 1 < argc)
            ax = argv[++i];
        else if (!strcmp(argv[i], "--acts-out") && i + 1 < argc)
            ay = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            tokens = argv[++i];
        else if (!strcmp(argv[i], "--skip-tokens") && i + 1 < argc)
            skip_ids = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            tjson = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_DICT_EVAL, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage(USAGE_DICT_EVAL, "unexpected argument '%s'", argv[i]);
    }
    if (!path || !ax)
        return cli_usage(USAGE_DICT_EVAL, "dict eval needs PATH and --acts A.npy");
    if (lambda == lambda && !(target > 0))
        return cli_usage(USAGE_DICT_EVAL, "--lambda weighs the L0 penalty of --target-l0: give both");
    if ((skip_ids || tjson) && !tokens)
        return cli_usage(USAGE_DICT_EVAL, "--skip-tokens and --tokenizer name the skip tokens of "
                         "--tokens T.npy: give it too");
    if (skip_ids && tjson)
        return cli_usage(USAGE_DICT_EVAL, "--skip-tokens or --tokenizer, not both");
    uint32_t ids[1024];
    size_t n_ids = 0;
    if (skip_ids && cli_parse_ids(skip_ids, ids, 1024, &n_ids))
        return cli_usage(USAGE_DICT_EVAL, "--skip-tokens takes up to 1024 comma-separated token "
                         "ids, not '%s'", skip_ids);
    if (tjson) { /* its BOS, EOS and PAD, as init --tokenizer takes them */
        ldb_tokenizer *tk = NULL;
        if (ldb_tokenizer_open(tjson, &tk)) {
            rc = cli_fail("%s", ldb_tokenizer_errmsg(tk));
            ldb_tokenizer_close(tk);
            return rc;
        }
        const ldb_tokenizer_info *ti = ldb_tokenizer_get_info(tk);
        uint32_t sp[3] = {ti->bos, ti->eos, ti->pad};
        for (int i = 0; i < 3; i++) {
            int dup = sp[i] == UINT32_MAX;
            for (size_t j = 0; j < n_ids && !dup; j++)
                dup = ids[j] == sp[i];
            if (!dup)
                ids[n_ids++] = sp[i];
        }
        ldb_tokenizer_close(tk);
    }
    cli_skip sk;
    memset(&sk, 0, sizeof sk);
    ldb_dict *d = NULL;
    ldb_encoder *e = NULL;
    acts x, y;
    eval_ctx c;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    memset(&c, 0, sizeof c);
    if ((rc = open_dict(path, &d)))
        goto out;
    ldb_encoder_opts eo;
    ldb_encoder_opts_init(&eo);
    eo.precision = prec;
    if (ldb_encoder_new(d, &eo, &e)) {
        rc = cli_fail("%s: %s", path, ldb_encoder_errmsg(e));
        goto out;
    }
    const ldb_dict_info *in = ldb_dict_get_info(d);
    if (in->n_layers > 1) {
        if (target > 0)
            rc = cli_fail("%s: --target-l0 is for single-layer dictionaries: the objectives of "
                          "cross-layer transcoders and crosscoders are not published per layer "
                          "(docs/DICTIONARIES.md)", path);
        else if (tokens)
            rc = cli_fail("%s: --tokens is for single-layer dictionaries (not yet for a "
                          "multi-layer one)", path);
        else
            rc = dict_eval_layers(d, e, ax, ay, json);
        goto out;
    }
    int transcoder = !strcmp(in->type, "transcoder");
    if ((rc = cli_acts_open(&x, ax, in->d_in, "d_in")))
        goto out;
    if (ay) {
        if ((rc = cli_acts_open(&y, ay, in->d_out, "d_out")))
            goto out;
        if (y.rows != x.rows) {
            rc = cli_fail("%s: %llu rows; expected %llu, as in %s", ay,
                          (unsigned long long)y.rows, (unsigned long long)x.rows, ax);
            goto out;
        }
    }
    if (x.rows == 0) {
        rc = cli_fail("%s: no rows to evaluate", ax);
        goto out;
    }
    if ((rc = cli_skip_open(&sk, tokens, x.rows, ids, n_ids)))
        goto out;
    if (sk.n_skipped == x.rows) {
        rc = cli_fail("%s: every position holds a skip token; nothing is left to evaluate", tokens);
        goto out;
    }
    if (!sk.n_ids)
        cli_bos_hint("FVU and L0", tokens ? "pass --skip-tokens IDS (or --tokenizer "
                     "tokenizer.json) to leave them out" : "pass --tokens T.npy with --skip-tokens "
                     "IDS (or --tokenizer tokenizer.json) to leave the special tokens' positions out",
                     tokens, &sk, x.data, x.dtype, x.rows, in->d_in, in->d_in);
    c.skip = sk.row;
    c.sk = &sk;
    c.d = d;
    c.in = in;
    c.x = &x;
    c.target_l0 = target;
    c.lambda = lambda;
    c.y = ay ? &y : transcoder ? NULL : &x;
    c.xhat = malloc((size_t)4096 * in->d_out * sizeof(float));
    c.sum = calloc(in->d_out, sizeof(double));
    c.sumsq = calloc(in->d_out, sizeof(double));
    c.l0 = malloc(x.rows * sizeof(uint32_t));
    c.fired = calloc(in->d_sae, 1);
    c.sum_s = calloc(in->d_out, sizeof(double));
    c.sumsq_s = calloc(in->d_out, sizeof(double));
    if (!c.xhat || !c.sum || !c.sumsq || !c.l0 || !c.fired || !c.sum_s || !c.sumsq_s) {
        rc = cli_fail("out of memory");
        goto out;
    }
    {
        /* the decode buffer holds 4096 rows, the largest default tile */
        double t0 = cli_now();
        int erc = ldb_encoder_encode(e, x.data, x.dtype, x.rows, eval_tile, &c);
        double secs = cli_now() - t0;
        cli_progress_end();
        if (erc) {
            rc = cli_fail("%s", c.decode_failed ? ldb_dict_errmsg(d) : ldb_encoder_errmsg(e));
            goto out;
        }
        eval_report(&c, e, ay, secs, json);
    }
out:
    free(c.xhat);
    free(c.sum);
    free(c.sumsq);
    free(c.l0);
    free(c.fired);
    free(c.sum_s);
    free(c.sumsq_s);
    cli_skip_close(&sk);
    cli_acts_close(&x);
    cli_acts_close(&y);
    ldb_encoder_free(e);
    ldb_dict_close(d);
    return rc;
}

int cmd_dict(int argc, char **argv)
{
    if (argc < 1)
        return cli_usage(USAGE_DICT, "dict needs a subcommand");
    if (!strcmp(argv[0], "show"))
        return dict_show(argc - 1, argv + 1);
    if (!strcmp(argv[0], "eval"))
        return dict_eval(argc - 1, argv + 1);
    if (!strcmp(argv[0], "add"))
        return cmd_dict_add(argc - 1, argv + 1);
    if (!strcmp(argv[0], "ls"))
        return cmd_dict_ls(argc - 1, argv + 1);
    if (!strcmp(argv[0], "rm"))
        return cmd_dict_rm(argc - 1, argv + 1);
    if (!strcmp(argv[0], "set-path"))
        return cmd_dict_set_path(argc - 1, argv + 1);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
        fputs(USAGE_DICT, stdout);
        return 0;
    }
    return cli_usage(USAGE_DICT, "unknown dict subcommand '%s'", argv[0]);
}
