/* answers.c — the JSON answer of each query (answers.h), for the CLI's --json and
 * the server's API alike. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cli.h"

cJSON *ans_fail(ans_err *e, int rc, const char *msg)
{
    e->status = rc == LDB_ENOTFOUND ? 404 : rc == LDB_EINVAL ? 400 : 500;
    snprintf(e->msg, sizeof e->msg, "%s", msg && *msg ? msg : ldb_strerror(rc));
    return NULL;
}

cJSON *ans_bad(ans_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = 400;
    return NULL;
}

int cli_answer(cJSON *j, const ans_err *e)
{
    if (!j)
        return cli_fail("%s", e->msg);
    return cli_json_write(stdout, j) ? 1 : 0;
}

/* The library's last failure on this thread, as an answer's error. */
static cJSON *db_fail(ldb_db *db, int rc, ans_err *e)
{
    return ans_fail(e, rc, ldb_db_errmsg(db));
}

int ans_seq_arg(const char *text, uint64_t *seq, ans_err *e)
{
    char *end;
    *seq = strtoull(text, &end, 10);
    if (!*text || *end || *text == '-' || *text == '+') {
        ans_bad(e, "a sequence is a number, not '%.40s'", text);
        return -1;
    }
    return 0;
}

int ans_latent_arg(ldb_db *db, const char *dict, const char *text, uint32_t *latent, ans_err *e)
{
    if (!cli_latent_syntax(text)) {
        ans_bad(e, "LATENT must be a latent id (0, 1, ...) or LAYER:INDEX, not '%s'", text);
        return -1;
    }
    int rc = ldb_db_latent_parse(db, dict, text, latent);
    if (rc)
        ans_fail(e, rc == LDB_EINVAL ? LDB_ENOTFOUND : rc, ldb_db_errmsg(db)); /* (no such latent) */
    return rc ? -1 : 0;
}

/* An object with "dict" and the latent's "latent" (and "layer", "index"). */
static cJSON *latent_head(ldb_db *db, const char *dict, uint32_t latent)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dict", dict);
    cli_latent_json(j, db, dict, latent);
    return j;
}

static void add_label(cJSON *j, const char *label)
{
    if (label)
        cJSON_AddStringToObject(j, "label", label);
    else
        cJSON_AddNullToObject(j, "label");
}

static cJSON *bins_json(const ldb_bin *b, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "lo", b[i].lo);
        cJSON_AddNumberToObject(o, "hi", b[i].hi);
        cJSON_AddNumberToObject(o, "count", (double)b[i].count);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *ans_info(ldb_db *db, ans_err *e)
{
    static const char *vnames[] = {"bf16", "f16", "f32"};
    ldb_info *in = NULL;
    int rc = ldb_query_info(db, &in);
    if (rc)
        return db_fail(db, rc, e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_seq", (double)in->n_seq);
    cJSON_AddNumberToObject(o, "n_tokens", (double)in->n_tokens);
    cJSON_AddNumberToObject(o, "n_ordinary", (double)in->n_ordinary);
    cJSON_AddStringToObject(o, "values", vnames[in->values]);
    cJSON *sk = cJSON_AddArrayToObject(o, "skip_tokens");
    for (uint32_t i = 0; i < in->n_skip; i++)
        cJSON_AddItemToArray(sk, cJSON_CreateNumber(in->skip[i]));
    cJSON *a = cJSON_AddArrayToObject(o, "dicts");
    for (uint32_t i = 0; i < in->n_dicts; i++) {
        const ldb_dict_usage *u = &in->dicts[i];
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", u->name);
        cJSON_AddNumberToObject(d, "d_sae", u->d_sae);
        cJSON_AddNumberToObject(d, "nnz", (double)u->nnz);
        cJSON_AddNumberToObject(d, "positions", (double)u->positions);
        cJSON_AddNumberToObject(d, "index_bytes", (double)u->bytes);
        cJSON_AddNumberToObject(d, "bytes_per_nnz", u->nnz ? (double)u->bytes / u->nnz : 0);
        cJSON_AddItemToArray(a, d);
    }
    cJSON_AddNumberToObject(o, "bytes", (double)in->bytes);
    ldb_info_free(in);
    return o;
}

cJSON *ans_dicts(ldb_db *db, ans_err *e)
{
    (void)e;
    int n = ldb_db_dict_count(db);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_Parse(ldb_db_dict_json(db, i)));
    return a;
}

cJSON *ans_top(ldb_db *db, const char *dict, const char *latent_s, const ldb_top_opts *o,
               ans_err *e)
{
    uint32_t latent;
    if (ans_latent_arg(db, dict, latent_s, &latent, e))
        return NULL;
    ldb_examples *ex = NULL;
    ldb_latent_info *li = NULL; /* for its label */
    int rc = ldb_query_top(db, dict, latent, o, &ex);
    if (rc || (rc = ldb_query_latent(db, dict, latent, 1, &li))) {
        db_fail(db, rc, e);
        ldb_examples_free(ex);
        return NULL;
    }
    ldb_tokenizer *tk = cli_db_text(db);
    cJSON *j = latent_head(db, dict, latent);
    add_label(j, li->label);
    cJSON *arr = cJSON_AddArrayToObject(j, "examples");
    for (uint32_t i = 0; i < ex->n; i++)
        cJSON_AddItemToArray(arr, cli_example_json(&ex->ex[i], tk));
    ldb_examples_free(ex);
    ldb_latent_info_free(li);
    return j;
}

cJSON *ans_latent(ldb_db *db, const char *dict, const char *latent_s, uint32_t bins, ans_err *e)
{
    uint32_t latent;
    ldb_latent_info *l = NULL;
    if (ans_latent_arg(db, dict, latent_s, &latent, e))
        return NULL;
    int rc = ldb_query_latent(db, dict, latent, bins, &l);
    if (rc)
        return db_fail(db, rc, e);
    cJSON *j = latent_head(db, dict, latent);
    add_label(j, l->label);
    cJSON_AddNumberToObject(j, "count", (double)l->count);
    cJSON_AddNumberToObject(j, "nseq", (double)l->nseq);
    cJSON_AddNumberToObject(j, "density", l->density);
    cJSON_AddNumberToObject(j, "max", l->max);
    cJSON_AddNumberToObject(j, "mean", l->mean);
    cJSON_AddNumberToObject(j, "std", l->std);
    cJSON_AddItemToObject(j, "hist", bins_json(l->hist, l->nbins));
    ldb_latent_info_free(l);
    return j;
}

cJSON *ans_density(ldb_db *db, const char *dict, uint32_t layer, uint32_t bins, int counts,
                   ans_err *e)
{
    ldb_density *d = NULL;
    int rc = ldb_query_density_layer(db, dict, layer, bins, &d);
    if (rc)
        return db_fail(db, rc, e);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dict", dict);
    if (layer != LDB_ALL_LAYERS) { /* counts[i] is latent first + i */
        cJSON_AddNumberToObject(j, "layer", layer);
        cJSON_AddNumberToObject(j, "first", d->first);
    }
    cJSON_AddNumberToObject(j, "n_tokens", (double)d->n_tokens);
    cJSON_AddNumberToObject(j, "n_latents", d->n_latents);
    cJSON_AddNumberToObject(j, "dead", d->dead);
    cJSON_AddItemToObject(j, "bins", bins_json(d->bins, d->nbins));
    if (counts) {
        cJSON *c = cJSON_AddArrayToObject(j, "counts");
        for (uint32_t i = 0; i < d->n_latents; i++)
            cJSON_AddItemToArray(c, cJSON_CreateNumber((double)d->counts[i]));
    }
    ldb_density_free(d);
    return j;
}

void ans_cooc_opts_init(ans_cooc_opts *o)
{
    *o = (ans_cooc_opts){NULL, "token", "jaccard", 20};
}

int ans_cooc_parse(const ans_cooc_opts *o, ans_cooc_args *a, ans_err *e)
{
    a->window = 0;
    a->with_layer = LDB_ALL_LAYERS;
    a->with = o->with;
    if (!o->k) {
        ans_bad(e, "k takes a positive integer");
        return -1;
    }
    const char *s = o->scope;
    a->scope = !strcmp(s, "token") ? LDB_COOC_TOKEN : !strcmp(s, "seq") ? LDB_COOC_SEQ
             : !strncmp(s, "window:", 7) && !cli_parse_u32(s + 7, &a->window) &&
                       a->window <= 100000 ? LDB_COOC_WINDOW : -1;
    if (a->scope < 0) {
        ans_bad(e, "scope takes token, window:N (N up to 100000) or seq, not '%s'", s);
        return -1;
    }
    a->sort = !strcmp(o->sort, "jaccard") ? LDB_SORT_JACCARD : !strcmp(o->sort, "count")
            ? LDB_SORT_COUNT : !strcmp(o->sort, "npmi") ? LDB_SORT_NPMI : -1;
    if (a->sort < 0) {
        ans_bad(e, "sort takes jaccard, count or npmi, not '%s'", o->sort);
        return -1;
    }
    /* DICT:LAYER ranks one layer of a multi-layer dictionary (names hold no ':') */
    const char *colon = o->with ? strchr(o->with, ':') : NULL;
    if (colon) {
        if ((size_t)(colon - o->with) >= sizeof a->withname ||
            cli_parse_u32(colon + 1, &a->with_layer) || a->with_layer == LDB_ALL_LAYERS) {
            ans_bad(e, "with takes DICT or DICT:LAYER, not '%s'", o->with);
            return -1;
        }
        memcpy(a->withname, o->with, (size_t)(colon - o->with));
        a->withname[colon - o->with] = 0;
        a->with = a->withname;
    }
    return 0;
}

cJSON *ans_cooc(ldb_db *db, const char *dict, const char *latent_s, const ans_cooc_opts *o,
                ans_err *e)
{
    ans_cooc_args a;
    uint32_t latent;
    ldb_cooc *c = NULL;
    if (ans_cooc_parse(o, &a, e) || ans_latent_arg(db, dict, latent_s, &latent, e))
        return NULL;
    int rc = ldb_query_cooc_layer(db, dict, latent, a.with, a.with_layer, o->k, a.scope, a.window,
                                  a.sort, &c);
    if (rc)
        return db_fail(db, rc, e);
    const char *other = a.with ? a.with : dict;
    cJSON *j = latent_head(db, dict, latent);
    cJSON_AddNumberToObject(j, "count", (double)c->count);
    cJSON_AddNumberToObject(j, "units", (double)c->units);
    cJSON_AddStringToObject(j, "scope", o->scope);
    cJSON *arr = cJSON_AddArrayToObject(j, "cooccurring");
    for (uint32_t i = 0; i < c->n; i++) {
        cJSON *x = latent_head(db, other, c->items[i].latent);
        cJSON_AddNumberToObject(x, "count", (double)c->items[i].count);
        cJSON_AddNumberToObject(x, "count_other", (double)c->items[i].count_other);
        cJSON_AddNumberToObject(x, "jaccard", c->items[i].jaccard);
        cJSON_AddNumberToObject(x, "npmi", c->items[i].npmi);
        cJSON_AddItemToArray(arr, x);
    }
    ldb_cooc_free(c);
    return j;
}

void ans_samples_opts_init(ans_samples_opts *o)
{
    *o = (ans_samples_opts){10, 5, 0, 8, "count"};
}

int ans_samples_by(const char *by, ans_err *e)
{
    int b = !strcmp(by, "count") ? LDB_SAMPLES_BY_COUNT : !strcmp(by, "value")
          ? LDB_SAMPLES_BY_VALUE : -1;
    if (b < 0)
        ans_bad(e, "by takes count or value, not '%s'", by);
    return b;
}

cJSON *ans_samples(ldb_db *db, const char *dict, const char *latent_s, const ans_samples_opts *o,
                   ans_err *e)
{
    uint32_t latent;
    ldb_samples *s = NULL;
    int b = ans_samples_by(o->by, e);
    if (b < 0 || ans_latent_arg(db, dict, latent_s, &latent, e))
        return NULL;
    int rc = ldb_query_samples(db, dict, latent, o->groups, o->per_group, b, o->seed, o->context,
                               &s);
    if (rc)
        return db_fail(db, rc, e);
    cJSON *j = latent_head(db, dict, latent);
    cJSON_AddStringToObject(j, "by", o->by);
    cJSON_AddItemToObject(j, "groups", cli_samples_json(s, cli_db_text(db)));
    ldb_samples_free(s);
    return j;
}

cJSON *ans_seq(ldb_db *db, uint64_t seq, const char *dict, uint32_t k, ans_err *e)
{
    ldb_seqview *v = NULL;
    int rc = ldb_query_seq(db, seq, dict, k, &v);
    if (rc)
        return db_fail(db, rc, e);
    ldb_tokenizer *tk = cli_db_text(db);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seq", (double)v->seq);
    cJSON_AddStringToObject(j, "source", v->source ? v->source : "");
    cJSON *t = cJSON_AddArrayToObject(j, "tokens");
    for (uint32_t i = 0; i < v->len; i++)
        cJSON_AddItemToArray(t, cJSON_CreateNumber(v->tokens[i]));
    if (tk)
        cli_text_json(j, tk, v->tokens, v->len, 1);
    cJSON *ps = cJSON_AddArrayToObject(j, "positions");
    for (uint32_t p = 0; p < v->len; p++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "pos", p);
        cJSON *ls = cJSON_AddArrayToObject(o, "latents");
        for (uint64_t x = v->start[p]; x < v->start[p + 1]; x++) {
            cJSON *l = latent_head(db, v->dict_names[v->lat[x].dict], v->lat[x].latent);
            cJSON_AddNumberToObject(l, "value", v->lat[x].value);
            cJSON_AddItemToArray(ls, l);
        }
        cJSON_AddItemToArray(ps, o);
    }
    ldb_seqview_free(v);
    return j;
}

int ans_text_ids(ldb_db *db, const char *text, ldb_tokenizer **t, uint32_t **ids, size_t *n,
                 ans_err *e)
{
    int rc = ldb_db_tokenizer(db, t);
    if (rc) {
        db_fail(db, rc, e);
        return -1;
    }
    if (!*t) {
        ans_bad(e, "the database has no tokenizer: make it with init --tokenizer, or search "
                "with --acts");
        return -1;
    }
    if (ldb_tokenizer_encode(*t, text, strlen(text), ids, n)) {
        ans_bad(e, "%s", ldb_tokenizer_errmsg(*t));
        return -1;
    }
    if (!*n) {
        free(*ids);
        ans_bad(e, "search: '%s' has no tokens", text);
        return -1;
    }
    return 0;
}

cJSON *ans_search(ldb_db *db, const char *dict, const char *text, uint32_t k, int where_all,
                  ans_err *e)
{
    ldb_tokenizer *t = NULL;
    uint32_t *ids;
    size_t n;
    if (ans_text_ids(db, text, &t, &ids, &n, e))
        return NULL;
    ldb_search *s = NULL;
    int rc = ldb_query_search(db, dict, ids, n, where_all, k, &s);
    if (rc) {
        free(ids);
        return db_fail(db, rc, e);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dict", dict);
    cJSON_AddStringToObject(o, "text", text);
    cJSON *ta = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(ta, cJSON_CreateNumber(ids[i]));
    cli_text_json(o, t, ids, n, 0);
    cJSON_AddStringToObject(o, "where", where_all ? "all" : "last");
    cJSON_AddNumberToObject(o, "occurrences", (double)s->occurrences);
    cJSON *la = cJSON_AddArrayToObject(o, "latents");
    for (uint32_t i = 0; i < s->n; i++) {
        const ldb_search_item *it = &s->items[i];
        cJSON *l = cJSON_CreateObject();
        cli_latent_json(l, db, dict, it->latent);
        cJSON_AddNumberToObject(l, "score", it->score);
        cJSON_AddNumberToObject(l, "hits", (double)it->hits);
        cJSON_AddNumberToObject(l, "precision", it->precision);
        cJSON_AddNumberToObject(l, "density", it->density);
        cJSON_AddNumberToObject(l, "mean_value", it->mean_value);
        cJSON_AddItemToArray(la, l);
    }
    ldb_search_free(s);
    free(ids);
    return o;
}
