/* route.c — a GET request to its answer: the JSON API (/api/..., each body the
 * bytes `latentdb CMD ... --json` prints for the same arguments, through
 * answers.c), the pages, a latent page's costly sections alone (/part/..., HTML
 * fragments its script fetches after the page) and the assets. Every parameter is parsed strictly and
 * bounded as the CLI bounds its option; an unknown parameter, a bad value or a
 * malformed path is a 400, a missing dictionary, latent or sequence a 404. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/answers.h"
#include "../cli/cli.h"
#include "web.h"

#define MAX_SEG 4
#define MAX_TEXT 1000 /* bytes of a search text */

static void set_body(wresp *r, int status, const char *type, char *body, size_t len)
{
    r->status = status;
    r->type = type;
    r->body = body;
    r->len = len;
}

static const char *JSON = "application/json; charset=utf-8";
static const char *HTML = "text/html; charset=utf-8";

/* j (freed) as the body, printed as the CLI prints it. */
static void json_body(wresp *r, int status, cJSON *j)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f || cli_json_write(f, j) || fclose(f)) {
        free(s);
        static const char oom[] = "{\"error\":\"out of memory\"}\n";
        set_body(r, 500, JSON, strdup(oom), sizeof oom - 1);
        return;
    }
    set_body(r, status, JSON, s, n);
}

static void json_error(wresp *r, int status, const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    json_body(r, status, j);
}

/* An error page: the status and the message, escaped. */
static void html_error(wresp *r, int status, const char *msg)
{
    wbuf b = {0};
    wb_printf(&b, "<!doctype html><meta charset=utf-8><title>latentdb: %d</title>"
                  "<link rel=stylesheet href=\"/assets/style.css\"><main><h1>%d</h1><p>",
              status, status);
    wb_escs(&b, msg);
    wb_puts(&b, "</p><p><a href=\"/\">the database</a></p></main>\n");
    if (b.oom) {
        wb_free(&b);
        json_error(r, 500, "out of memory");
        return;
    }
    set_body(r, status, HTML, b.p, b.n);
}

/* ---- parameters -------------------------------------------------------------- */
typedef struct params {
    const wquery *q;
    const char *const *allowed;
    ans_err *e;                /* a bad parameter's 400 */
} params;

static int check_one(void *ctx, const char *name)
{
    params *p = ctx;
    for (const char *const *a = p->allowed; *a; a++)
        if (!strcmp(*a, name))
            return 0;
    char list[160] = "";
    for (const char *const *a = p->allowed; *a; a++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", a == p->allowed ? "" : ", ",
                 *a);
    ans_bad(p->e, "unknown parameter '%.60s' (this path takes: %s)", name, *list ? list : "none");
    return -1;
}

/* 0 when every parameter given is one of allowed (NULL-terminated). */
static int only(params *p, const char *const *allowed)
{
    p->allowed = allowed;
    return p->q->each ? p->q->each(p->q->ctx, check_one, p) : 0;
}

static const char *get(params *p, const char *name)
{
    return p->q->get(p->q->ctx, name);
}

/* An integer parameter in [lo, hi]; absent: *v stays. */
static int u32p(params *p, const char *name, uint32_t *v, uint32_t lo, uint32_t hi)
{
    const char *s = get(p, name);
    uint32_t x;
    if (!s)
        return 0;
    if (cli_parse_u32(s, &x) || x < lo || x > hi) {
        ans_bad(p->e, "%s takes %u..%u, not '%.40s'", name, lo, hi, s);
        return -1;
    }
    *v = x;
    return 0;
}

/* A flag: 1/true or 0/false; absent: *v stays. */
static int flagp(params *p, const char *name, int *v)
{
    const char *s = get(p, name);
    if (!s)
        return 0;
    if (!strcmp(s, "1") || !strcmp(s, "true"))
        *v = 1;
    else if (!strcmp(s, "0") || !strcmp(s, "false"))
        *v = 0;
    else {
        ans_bad(p->e, "%s takes 1, true, 0 or false, not '%.40s'", name, s);
        return -1;
    }
    return 0;
}

/* A string parameter of at most max bytes; absent: *v stays. */
static int strp(params *p, const char *name, const char **v, size_t max)
{
    const char *s = get(p, name);
    if (!s)
        return 0;
    if (strlen(s) > max) {
        ans_bad(p->e, "%s is longer than %zu bytes", name, max);
        return -1;
    }
    *v = s;
    return 0;
}

/* ---- the API ------------------------------------------------------------------ */
static const char *const NONE[] = {NULL};

/* /api/WHAT[/A[/B]] with its parameters, or NULL with e filled. */
static cJSON *api(ldb_db *db, char **seg, int nseg, params *p, ans_err *e)
{
    const char *what = seg[1];
    if (!strcmp(what, "info") && nseg == 2)
        return only(p, NONE) ? NULL : ans_info(db, e);
    if (!strcmp(what, "dicts") && nseg == 2)
        return only(p, NONE) ? NULL : ans_dicts(db, e);
    if (!strcmp(what, "top") && nseg == 4) {
        static const char *const ok[] = {"k", "context", "distinct_seq", "include_special",
                                         "positions_only", NULL};
        ldb_top_opts o;
        ldb_top_opts_init(&o);
        int d = o.distinct_seq, s = o.include_special, po = o.positions_only;
        if (only(p, ok) || u32p(p, "k", &o.k, 1, 100000) || u32p(p, "context", &o.context, 0, 10000) ||
            flagp(p, "distinct_seq", &d) || flagp(p, "include_special", &s) ||
            flagp(p, "positions_only", &po))
            return NULL;
        o.distinct_seq = d, o.include_special = s, o.positions_only = po;
        return ans_top(db, seg[2], seg[3], &o, e);
    }
    if (!strcmp(what, "latent") && nseg == 4) {
        static const char *const ok[] = {"bins", NULL};
        uint32_t bins = 50;
        if (only(p, ok) || u32p(p, "bins", &bins, 1, 10000))
            return NULL;
        return ans_latent(db, seg[2], seg[3], bins, e);
    }
    if (!strcmp(what, "density") && nseg == 3) {
        static const char *const ok[] = {"bins", "layer", "counts", NULL};
        uint32_t bins = 50, layer = LDB_ALL_LAYERS;
        int counts = 0;
        if (only(p, ok) || u32p(p, "bins", &bins, 1, 10000) ||
            u32p(p, "layer", &layer, 0, LDB_ALL_LAYERS - 1) || flagp(p, "counts", &counts))
            return NULL;
        return ans_density(db, seg[2], layer, bins, counts, e);
    }
    if (!strcmp(what, "cooc") && nseg == 4) {
        static const char *const ok[] = {"with", "k", "scope", "sort", NULL};
        ans_cooc_opts o;
        ans_cooc_opts_init(&o);
        if (only(p, ok) || strp(p, "with", &o.with, 200) || u32p(p, "k", &o.k, 1, 100000) ||
            strp(p, "scope", &o.scope, 40) || strp(p, "sort", &o.sort, 40))
            return NULL;
        return ans_cooc(db, seg[2], seg[3], &o, e);
    }
    if (!strcmp(what, "samples") && nseg == 4) {
        static const char *const ok[] = {"groups", "per_group", "by", "seed", "context", NULL};
        ans_samples_opts o;
        ans_samples_opts_init(&o);
        if (only(p, ok) || u32p(p, "groups", &o.groups, 1, 1000) ||
            u32p(p, "per_group", &o.per_group, 0, 10000) || strp(p, "by", &o.by, 40) ||
            u32p(p, "seed", &o.seed, 0, UINT32_MAX) || u32p(p, "context", &o.context, 0, 10000))
            return NULL;
        return ans_samples(db, seg[2], seg[3], &o, e);
    }
    if (!strcmp(what, "search") && nseg == 3) {
        static const char *const ok[] = {"text", "k", "where", NULL};
        const char *text = NULL, *where = "last";
        uint32_t k = 20;
        if (only(p, ok) || strp(p, "text", &text, MAX_TEXT) || u32p(p, "k", &k, 1, 100000) ||
            strp(p, "where", &where, 40))
            return NULL;
        if (!text)
            return ans_bad(e, "search needs text");
        if (strcmp(where, "last") && strcmp(where, "all"))
            return ans_bad(e, "where takes last or all, not '%.40s'", where);
        return ans_search(db, seg[2], text, k, !strcmp(where, "all"), e);
    }
    if (!strcmp(what, "seq") && nseg == 3) {
        static const char *const ok[] = {"dict", "k", NULL};
        const char *dict = NULL;
        uint32_t k = 5;
        uint64_t seq;
        if (ans_seq_arg(seg[2], &seq, e) || only(p, ok) || strp(p, "dict", &dict, 200) ||
            u32p(p, "k", &k, 0, 100000))
            return NULL;
        return ans_seq(db, seq, dict, k, e);
    }
    e->status = 404;
    snprintf(e->msg, sizeof e->msg, "no such API path (the API: /api/info, /api/dicts, "
             "/api/top/DICT/LATENT, /api/samples/DICT/LATENT, /api/latent/DICT/LATENT, "
             "/api/density/DICT, /api/cooc/DICT/LATENT, /api/search/DICT?text=, /api/seq/N)");
    return NULL;
}

/* ---- dispatch ------------------------------------------------------------------ */
/* Splits path (after its leading '/') into at most MAX_SEG segments in buf;
 * -1 when there are more, or an empty one inside. */
static int split(const char *path, char *buf, size_t cap, char **seg)
{
    if (strlen(path) + 1 > cap)
        return -1;
    strcpy(buf, path[0] == '/' ? path + 1 : path);
    int n = 0;
    char *s = buf;
    if (!*s)
        return 0;
    for (;;) {
        if (n == MAX_SEG)
            return -1;
        seg[n++] = s;
        char *slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = 0;
        s = slash + 1;
        if (!*s) /* a trailing slash */
            break;
    }
    for (int i = 0; i < n; i++)
        if (!*seg[i])
            return -1;
    return n;
}

/* A fragment's error (/part/...): the status and the message, escaped, as a
 * paragraph that page.js shows in the section's place. */
static void part_error(wresp *r, int status, const char *msg)
{
    wbuf b = {0};
    wb_printf(&b, "<p class=\"muted error\">%d: ", status);
    wb_escs(&b, msg);
    wb_puts(&b, "</p>\n");
    if (b.oom) {
        wb_free(&b);
        json_error(r, 500, "out of memory");
        return;
    }
    set_body(r, status, HTML, b.p, b.n);
}

static void page_body(wresp *r, int rc, wbuf *b, const char *err, int part)
{
    if (rc) {
        wb_free(b);
        (part ? part_error : html_error)(r, rc, err);
    } else if (part && b->oom) {
        wb_free(b);
        part_error(r, 500, "out of memory");
    } else if (b->oom) {
        wb_free(b);
        html_error(r, 500, "out of memory");
    } else {
        set_body(r, 200, HTML, b->p, b->n);
    }
}

void web_route(ldb_db *db, const char *path, const wquery *q, wresp *r)
{
    char buf[4096], *seg[MAX_SEG] = {0};
    ans_err e = {404, "no such API path"};
    params p = {q, NONE, &e};
    int n = split(path, buf, sizeof buf, seg);
    int is_api = n >= 1 && !strcmp(seg[0], "api");
    int is_part = n >= 1 && !strcmp(seg[0], "part"); /* a latent page's section alone */
    if (n < 0) {
        if (!strncmp(path, "/api/", 5))
            json_error(r, 404, "no such path");
        else if (!strncmp(path, "/part/", 6))
            part_error(r, 404, "no such part");
        else
            html_error(r, 404, "no such page");
        return;
    }
    if (is_api) {
        cJSON *j = n >= 2 ? api(db, seg, n, &p, &e) : NULL;
        if (j)
            json_body(r, 200, j);
        else
            json_error(r, e.status, e.msg);
        return;
    }
    if (n == 2 && !strcmp(seg[0], "assets")) {
        const char *data = !strcmp(seg[1], "style.css") ? web_css : !strcmp(seg[1], "page.js")
                         ? web_js : NULL;
        size_t len = data == web_css ? web_css_len : web_js_len;
        if (!data || only(&p, NONE)) {
            html_error(r, 404, "no such asset");
            return;
        }
        char *copy = malloc(len ? len : 1);
        if (!copy) {
            html_error(r, 500, "out of memory");
            return;
        }
        memcpy(copy, data, len);
        set_body(r, 200, data == web_css ? "text/css; charset=utf-8"
                                         : "text/javascript; charset=utf-8", copy, len);
        return;
    }
    wbuf b = {0};
    int rc;
    if (n == 0) {
        rc = only(&p, NONE) ? 400 : page_overview(db, &b, &e);
    } else if (n == 3 && !strcmp(seg[0], "latent")) {
        static const char *const ok[] = {"scope", "full", NULL};
        const char *scope = NULL;
        int full = 0;
        rc = only(&p, ok) || strp(&p, "scope", &scope, 40) || flagp(&p, "full", &full)
           ? 400 : page_latent(db, seg[1], seg[2], scope, full ? PAGE_FULL : PAGE_LAZY, &b, &e);
    } else if (is_part && n == 4 && !strcmp(seg[1], "samples")) {
        static const char *const ok[] = {"by", NULL};
        const char *by = NULL;
        rc = only(&p, ok) || strp(&p, "by", &by, 40)
           ? 400 : part_samples(db, seg[2], seg[3], by, &b, &e);
    } else if (is_part && n == 4 && !strcmp(seg[1], "cooc")) {
        static const char *const ok[] = {"scope", NULL};
        const char *scope = NULL;
        rc = only(&p, ok) || strp(&p, "scope", &scope, 40)
           ? 400 : part_cooc(db, seg[2], seg[3], scope, &b, &e);
    } else if (is_part) {
        rc = 404;
        snprintf(e.msg, sizeof e.msg, "no such part (the parts: /part/samples/DICT/LATENT?by=, "
                 "/part/cooc/DICT/LATENT?scope=)");
    } else if (n == 1 && !strcmp(seg[0], "search")) {
        static const char *const ok[] = {"dict", "text", NULL};
        const char *dict = NULL, *text = NULL;
        rc = only(&p, ok) || strp(&p, "dict", &dict, 200) || strp(&p, "text", &text, MAX_TEXT)
           ? 400 : page_search(db, dict, text, &b, &e);
    } else if (n == 2 && !strcmp(seg[0], "seq")) {
        static const char *const ok[] = {"dict", "latent", NULL};
        const char *dict = NULL, *latent = NULL;
        rc = only(&p, ok) || strp(&p, "dict", &dict, 200) || strp(&p, "latent", &latent, 40)
           ? 400 : page_seq(db, seg[1], dict, latent, &b, &e);
    } else {
        rc = 404;
        snprintf(e.msg, sizeof e.msg, "no such page");
    }
    page_body(r, rc, &b, e.msg, is_part);
}
