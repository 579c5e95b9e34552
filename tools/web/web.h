/* web.h — `latentdb serve` and `latentdb page` (docs/ARCHITECTURE.md, "The answers,
 * the server and the pages"): the pieces tools/web/ shares. Compiled into
 * bin/latentdb; a client of the library like the rest of the CLI. */
#ifndef LDB_WEB_H
#define LDB_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "../cli/answers.h"
#include "latentdb.h"

/* A growing output buffer (html.c). Appends never fail: out of memory sets oom and
 * later appends do nothing; the caller checks oom once at the end. */
typedef struct wbuf {
    char *p;
    size_t n, cap;
    int oom;
} wbuf;
void wb_put(wbuf *b, const char *s, size_t n);
void wb_puts(wbuf *b, const char *s);
void wb_printf(wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as HTML text or attribute value: & < > " ' escaped, invalid UTF-8 as
 * U+FFFD, control characters (C0 but tab and newline, DEL, C1) as U+FFFD too. */
void wb_esc(wbuf *b, const char *s, size_t n);
void wb_escs(wbuf *b, const char *s);
/* s as a component of a URL path or query: everything but [A-Za-z0-9-_.~] as %XX. */
void wb_url(wbuf *b, const char *s);
void wb_free(wbuf *b);

/* A response: status, content type, body (malloc'd, the response frees it). */
typedef struct wresp {
    int status;
    const char *type;
    char *body;
    size_t len;
} wresp;

/* A request's query parameters, already percent-decoded: get returns the value of
 * name or NULL. The server reads them from libmicrohttpd, tests from a string. */
typedef struct wquery {
    const char *(*get)(void *ctx, const char *name);
    /* calls fn(ctx2, name) for each parameter given (to refuse unknown ones) */
    int (*each)(void *ctx, int (*fn)(void *ctx2, const char *name), void *ctx2);
    void *ctx;
} wquery;

/* Answers GET path?query on db into r (route.c): the JSON API under /api/, the pages,
 * the assets. Never fails: errors are responses (400, 404, 500) with a message. */
void web_route(ldb_db *db, const char *path, const wquery *q, wresp *r);

/* The pages (pages.c): each appends a whole HTML document to b and returns 0, or
 * returns the status of a failure (400, 404, 500) with e filled (then b is
 * discarded). The assets are linked, but for latentdb page's file (PAGE_STANDALONE:
 * CSS inline and no script). */
int page_overview(ldb_db *db, wbuf *b, ans_err *e);
/* A latent's page renders its cheap sections (label, stats, the density and value
 * histograms, top examples) inline; its costly ones (samples of both kinds, ~10 ms
 * each, and co-occurrence, 20-600 ms by scope) per mode: */
enum {
    PAGE_LAZY,                 /* serve: placeholders naming their /part/ fragment, which
                                  page.js fetches after the page (noscript: ?full=1) */
    PAGE_FULL,                 /* serve with ?full=1: every section inline */
    PAGE_STANDALONE            /* latentdb page: every section inline, CSS inline, no
                                  script, no scope links */
};
/* scope: the co-occurrence's (token, window:N, seq; NULL: token) */
int page_latent(ldb_db *db, const char *dict, const char *latent, const char *scope, int mode,
                wbuf *b, ans_err *e);
/* The costly sections alone, as HTML fragments (/part/samples/DICT/LATENT?by=,
 * /part/cooc/DICT/LATENT?scope=): the same markup page_latent puts inside #samples or
 * #samples_value, and #co_part. by (count, value) and scope are required; errors as
 * the pages' (400, 404). */
int part_samples(ldb_db *db, const char *dict, const char *latent, const char *by, wbuf *b,
                 ans_err *e);
int part_cooc(ldb_db *db, const char *dict, const char *latent, const char *scope, wbuf *b,
              ans_err *e);
int page_search(ldb_db *db, const char *dict, const char *text, wbuf *b, ans_err *e);
int page_seq(ldb_db *db, const char *seq, const char *dict, const char *latent, wbuf *b,
             ans_err *e);

/* The embedded assets (assets.c): their bytes and length. */
extern const char web_css[], web_js[];
extern const size_t web_css_len, web_js_len;

/* SVG plots (svg.c). A histogram of counts over bins [lo, hi) with axis labels;
 * logx: the bins are log10 values, labelled as powers of ten. */
void svg_hist(wbuf *b, const ldb_bin *bins, uint32_t n, int logx, const char *xlabel,
              double mark);


#endif
