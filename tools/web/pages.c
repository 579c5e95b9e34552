/* pages.c — the pages people read: the database, a latent (Neuronpedia's feature
 * page: label, density and where it sits among its dictionary's, the activation
 * histogram, top examples and quantile samples with every token shaded by its
 * value, co-occurring latents), search by text, and one sequence shaded by a
 * latent. Server-rendered HTML; every stored string goes through wb_esc. Under
 * serve, a latent's costly sections (samples, co-occurrence) come after its page
 * as fragments (part_samples, part_cooc) rendered by the same functions as the
 * whole page's (?full=1, latentdb page). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/answers.h"
#include "../cli/cli.h"
#include "web.h"

/* A library failure as the page's error (ans_fail's status: 404, 400 or 500). */
static int lib_fail(ldb_db *db, int rc, ans_err *e)
{
    ans_fail(e, rc, ldb_db_errmsg(db));
    return e->status;
}

static void frame_start(wbuf *b, const char *title, int standalone)
{
    wb_puts(b, "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
               "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
               "<link rel=icon href=\"data:,\"><title>");
    wb_escs(b, title);
    wb_puts(b, "</title>");
    if (standalone) {
        wb_puts(b, "<style>");
        wb_put(b, web_css, web_css_len);
        wb_puts(b, "</style>");
    } else {
        wb_puts(b, "<link rel=stylesheet href=\"/assets/style.css\">");
    }
    wb_puts(b, "</head><body><header><a href=\"/\">latentdb</a>");
    if (!standalone)
        wb_puts(b, "<form action=\"/search\" method=get><input type=text name=text "
                   "placeholder=\"search the corpus by text\" aria-label=search size=28>"
                   "<button>search</button></form>");
    wb_puts(b, "</header><main>\n");
}

static void frame_end(wbuf *b, int standalone)
{
    wb_puts(b, "</main>");
    if (!standalone)
        wb_puts(b, "<script src=\"/assets/page.js\"></script>");
    wb_puts(b, "</body></html>\n");
}

/* The text a token id reads as (escaped), or its id when there is no tokenizer. */
static void token_text(wbuf *b, ldb_tokenizer *tk, uint32_t id)
{
    if (!tk) {
        wb_printf(b, "[%u]", id);
        return;
    }
    char buf[256], *tmp;
    size_t n;
    const char *s = cli_piece(tk, id, 1, buf, sizeof buf, &tmp, &n);
    if (n == 0)
        wb_puts(b, "\xe2\x88\x85"); /* an empty piece: ∅ */
    else
        wb_esc(b, s, n);
    free(tmp);
}

/* One token shaded by v (of the latent whose largest value is mx): a span, or a link
 * when href is given. fire: the example's own position. */
static void shaded(wbuf *b, ldb_tokenizer *tk, uint32_t id, float v, double mx, int fire,
                   const char *href)
{
    int rgb[3];
    cli_shade_rgb(v, mx, rgb);
    wb_printf(b, "<%s class=\"t%s\"", href ? "a" : "span", fire ? " fire" : "");
    if (href) {
        wb_puts(b, " href=\"");
        wb_escs(b, href);
        wb_puts(b, "\"");
    }
    if (v > 0)
        wb_printf(b, " style=\"background:rgb(%d,%d,%d)\" data-v=\"%.9g\" title=\"%.4g\"", rgb[0],
                  rgb[1], rgb[2], (double)v, (double)v);
    wb_printf(b, " data-tok=\"%u\">", id);
    token_text(b, tk, id);
    wb_puts(b, href ? "</a>" : "</span>");
}

/* An example: its value, then its context with each token shaded, the firing one
 * marked; a link to its sequence. */
static void example(wbuf *b, ldb_tokenizer *tk, const char *dict, const char *latent,
                    const ldb_example *e, double mx)
{
    wb_printf(b, "<div class=ex data-seq=\"%llu\" data-pos=\"%u\"><a class=v href=\"/seq/%llu?dict=",
              (unsigned long long)e->seq, e->pos, (unsigned long long)e->seq);
    wb_url(b, dict);
    wb_puts(b, "&amp;latent=");
    wb_url(b, latent);
    wb_printf(b, "\">%.4g</a>", (double)e->value);
    if (!e->ctx_len)
        shaded(b, tk, 0, e->value, mx, 1, NULL);
    for (uint32_t i = 0; i < e->ctx_len; i++)
        shaded(b, tk, e->tokens[i], e->values[i], mx, e->ctx_start + i == e->pos, NULL);
    wb_puts(b, "</div>\n");
}

static void dict_link(wbuf *b, const char *dict, uint32_t latent, const char *text)
{
    wb_puts(b, "<a href=\"/latent/");
    wb_url(b, dict);
    wb_printf(b, "/%u\">", latent);
    wb_escs(b, text);
    wb_puts(b, "</a>");
}

/* ---- the database --------------------------------------------------------------- */
/* The distribution of L0 (codes a position) over the dictionary's ordinary
 * positions, as a histogram up to its 99.9th percentile (the rest, BOS-like rows
 * firing thousands, in the last bin). */
static void l0_plot(wbuf *b, ldb_db *db, const char *dict)
{
    ldb_l0 *l = NULL;
    if (ldb_query_l0(db, dict, &l) || !l->n_positions) {
        ldb_l0_free(l);
        return;
    }
    uint64_t acc = 0, cut = l->max_l0;
    for (uint32_t i = 0; i <= l->max_l0; i++)
        if ((acc += l->counts[i]) * 1000 >= l->n_positions * 999) {
            cut = i;
            break;
        }
    uint32_t nb = cut + 1 < 40 ? (uint32_t)cut + 1 : 40;
    double w = (double)(cut + 1) / nb;
    ldb_bin bins[40];
    for (uint32_t k = 0; k < nb; k++)
        bins[k] = (ldb_bin){k * w, (k + 1) * w, 0};
    for (uint32_t i = 0; i <= l->max_l0; i++) {
        uint32_t k = i > cut ? nb - 1 : (uint32_t)(i / w);
        bins[k < nb ? k : nb - 1].count += l->counts[i];
    }
    wb_printf(b, "<p class=muted>Codes a position (L0): mean %.1f over %llu ordinary positions, "
                 "at most %u%s.</p>", l->mean, (unsigned long long)l->n_positions, l->max_l0,
              cut < l->max_l0 ? " (the last bin holds the 0.1% above)" : "");
    svg_hist(b, bins, nb, 0, "codes at a position (L0)", NAN);
    ldb_l0_free(l);
}

int page_overview(ldb_db *db, wbuf *b, ans_err *e)
{
    static const char *vnames[] = {"bf16", "f16", "f32"};
    ldb_info *in = NULL;
    int rc = ldb_query_info(db, &in);
    if (rc)
        return lib_fail(db, rc, e);
    frame_start(b, "latentdb", 0);
    wb_puts(b, "<h1>The database</h1><table class=stats>");
    wb_printf(b, "<tr><th>sequences</th><td class=n>%llu</td></tr>", (unsigned long long)in->n_seq);
    wb_printf(b, "<tr><th>tokens</th><td class=n>%llu</td><td class=muted>%llu ordinary</td></tr>",
              (unsigned long long)in->n_tokens, (unsigned long long)in->n_ordinary);
    wb_printf(b, "<tr><th>values</th><td>%s</td></tr>", vnames[in->values]);
    wb_puts(b, "<tr><th>skip tokens</th><td>");
    for (uint32_t i = 0; i < in->n_skip; i++)
        wb_printf(b, "%s%u", i ? ", " : "", in->skip[i]);
    wb_printf(b, "%s</td></tr><tr><th>size</th><td class=n>%.1f MiB</td></tr></table>",
              in->n_skip ? "" : "none", (double)in->bytes / 1048576.0);
    ldb_sources *src = NULL;
    if (ldb_query_sources(db, &src) == LDB_OK && src->n) {
        wb_puts(b, "<h2>Sources</h2><table class=stats id=sources><tr><th>source</th>"
                   "<th>sequences</th><th>tokens</th></tr>");
        for (uint32_t i = 0; i < src->n && i < 100; i++) {
            wb_puts(b, "<tr><td>");
            wb_escs(b, src->src[i].label);
            wb_printf(b, "</td><td class=n>%llu</td><td class=n>%llu</td></tr>",
                      (unsigned long long)src->src[i].n_seq, (unsigned long long)src->src[i].n_tokens);
        }
        if (src->n > 100)
            wb_printf(b, "<tr><td class=muted>and %u more</td></tr>", src->n - 100);
        wb_puts(b, "</table>");
    }
    ldb_sources_free(src);
    for (uint32_t i = 0; i < in->n_dicts; i++) {
        const ldb_dict_usage *u = &in->dicts[i];
        ldb_density *d = NULL;
        wb_puts(b, "<h2 class=dict>");
        wb_escs(b, u->name);
        wb_printf(b, "</h2><table class=stats><tr><th>latents</th><td class=n>%u</td></tr>"
                     "<tr><th>codes</th><td class=n>%llu</td><td class=muted>L0 %.1f a position"
                     "</td></tr><tr><th>index</th><td class=n>%.2f bytes a code</td></tr>",
                  u->d_sae, (unsigned long long)u->nnz,
                  u->positions ? (double)u->nnz / (double)u->positions : 0.0,
                  u->nnz ? (double)u->bytes / (double)u->nnz : 0.0);
        if (ldb_query_density(db, u->name, 40, &d) == LDB_OK) {
            wb_printf(b, "<tr><th>dead</th><td class=n>%u</td><td class=muted>never fired</td></tr>"
                         "</table>", d->dead);
            svg_hist(b, d->bins, d->nbins, 1, "log10 density of the live latents", NAN);
            /* the most frequent latents, to start from */
            uint32_t best[8], nb = 0;
            for (uint32_t j = 0; j < d->n_latents; j++) {
                if (nb == 8 && d->counts[j] <= d->counts[best[7]])
                    continue; /* (full, and not above the least kept) */
                uint32_t k = nb < 8 ? nb++ : 7;
                best[k] = j;
                for (; k > 0 && d->counts[best[k]] > d->counts[best[k - 1]]; k--) {
                    uint32_t t = best[k];
                    best[k] = best[k - 1];
                    best[k - 1] = t;
                }
            }
            wb_puts(b, "<p>Most frequent: ");
            for (uint32_t j = 0; j < nb && d->counts[best[j]]; j++) {
                char s[32];
                snprintf(s, sizeof s, "%u", d->first + best[j]);
                wb_puts(b, "<span class=lat>");
                dict_link(b, u->name, d->first + best[j], s);
                wb_puts(b, "</span>");
            }
            wb_puts(b, "</p>");
            ldb_density_free(d);
        } else {
            wb_puts(b, "</table>");
        }
        l0_plot(b, db, u->name);
        wb_puts(b, "<form action=\"/search\" method=get><input type=hidden name=dict value=\"");
        wb_escs(b, u->name);
        wb_puts(b, "\"><input type=text name=text placeholder=\"text to search\" size=30> "
                   "<button>search</button></form>");
    }
    if (!in->n_dicts)
        wb_puts(b, "<p>No dictionaries yet: <code>latentdb dict add DB NAME PATH</code>.</p>");
    frame_end(b, 0);
    ldb_info_free(in);
    return 0;
}

/* ---- a latent --------------------------------------------------------------------- */
/* The share of live latents of the dictionary that fire less often than count. */
static double rank_of(const ldb_density *d, uint64_t count)
{
    uint64_t below = 0, live = 0;
    for (uint32_t i = 0; i < d->n_latents; i++) {
        live += d->counts[i] > 0;
        below += d->counts[i] > 0 && d->counts[i] < count;
    }
    return live ? (double)below / (double)live : 0;
}

/* The samples of one kind (LDB_SAMPLES_BY_*): the inside of #samples or
 * #samples_value, on the whole page and as /part/samples alike. mx: the latent's max. */
static void samples_section(wbuf *b, ldb_db *db, ldb_tokenizer *tk, const char *dict,
                            const char *latent_s, uint32_t latent, int by, double mx)
{
    ldb_samples *s = NULL;
    if (ldb_query_samples(db, dict, latent, 5, 3, by, 0, 8, &s)) {
        wb_puts(b, "<p class=muted>samples: ");
        wb_escs(b, ldb_db_errmsg(db));
        wb_puts(b, "</p>");
        return;
    }
    uint64_t n = 0;
    for (uint32_t g = 0; g < s->n; g++)
        n += s->groups[g].count;
    for (uint32_t g = 0; g < s->n && n; g++) {
        wb_printf(b, "<h3 class=muted>values %.3g .. %.3g <span class=muted>(%llu positions)</span>"
                     "</h3>", s->groups[g].lo, s->groups[g].hi,
                  (unsigned long long)s->groups[g].count);
        for (uint32_t i = 0; i < s->groups[g].ex.n; i++)
            example(b, tk, dict, latent_s, &s->groups[g].ex.ex[i], mx);
    }
    if (!n) /* (a dead latent's groups are empty) */
        wb_puts(b, "<p class=muted>(it never fires)</p>");
    ldb_samples_free(s);
}

static const char *const SCOPES[] = {"token", "window:5", "window:20", "seq"};

/* The co-occurring latents at scope (as given, already checked into ca): the inside
 * of #co_part, on the whole page and as /part/cooc alike. nav: the scope links, each
 * to the whole page at its scope (so they work without script) and naming its
 * fragment in data-part (page.js swaps the section in place). */
static void cooc_section(wbuf *b, ldb_db *db, const char *dict, const char *latent_s,
                         uint32_t latent, const char *scope, const ans_cooc_args *ca, int nav)
{
    if (nav) {
        wb_puts(b, "<nav class=scope>");
        for (int i = 0; i < 4; i++) {
            wb_printf(b, "<a class=\"%s\" href=\"/latent/", !strcmp(scope, SCOPES[i]) ? "on" : "");
            wb_url(b, dict);
            wb_puts(b, "/");
            wb_url(b, latent_s);
            wb_printf(b, "?scope=%s&amp;full=1#co\" data-part=\"/part/cooc/", SCOPES[i]);
            wb_url(b, dict);
            wb_puts(b, "/");
            wb_url(b, latent_s);
            wb_printf(b, "?scope=%s\">%s</a>", SCOPES[i], SCOPES[i]);
        }
        wb_puts(b, "</nav>");
    }
    ldb_cooc *c = NULL;
    if (ldb_query_cooc(db, dict, latent, NULL, 20, ca->scope, ca->window, LDB_SORT_JACCARD, &c)) {
        wb_puts(b, "<p class=muted>co-occurrence: ");
        wb_escs(b, ldb_db_errmsg(db));
        wb_puts(b, "</p>");
        return;
    }
    wb_puts(b, "<p class=muted>");
    if (ca->scope == LDB_COOC_TOKEN)
        wb_puts(b, "At the same position");
    else if (ca->scope == LDB_COOC_SEQ)
        wb_puts(b, "In the same sequence");
    else
        wb_printf(b, "Within %u positions", ca->window);
    wb_puts(b, ", by Jaccard index.</p><table class=stats id=cooc><tr><th>latent</th>"
               "<th>both</th><th>jaccard</th><th>npmi</th></tr>");
    for (uint32_t i = 0; i < c->n; i++) {
        char s[32];
        cli_latent_str(db, dict, c->items[i].latent, s);
        wb_puts(b, "<tr><td>");
        dict_link(b, dict, c->items[i].latent, s);
        wb_printf(b, "</td><td class=n>%llu</td><td class=n>%.4f</td><td class=n>%.3f</td>"
                     "</tr>", (unsigned long long)c->items[i].count, c->items[i].jaccard,
                  c->items[i].npmi);
    }
    wb_puts(b, "</table>");
    ldb_cooc_free(c);
}

/* A costly section's container: the section itself (mode PAGE_FULL, PAGE_STANDALONE),
 * or empty with the URL of its fragment in data-part for page.js to fetch, and
 * without script a link to the whole page (?full=1) at the section's anchor. */
static void part_open(wbuf *b, int mode, const char *id, const char *dict, const char *latent_s,
                      const char *part, const char *arg, const char *scope)
{
    wb_printf(b, "<div id=%s class=part", id);
    if (mode != PAGE_LAZY) {
        wb_puts(b, ">");
        return;
    }
    wb_printf(b, " data-part=\"/part/%s/", part);
    wb_url(b, dict);
    wb_puts(b, "/");
    wb_url(b, latent_s);
    wb_puts(b, "?");
    wb_escs(b, arg);
    wb_puts(b, "\"><noscript><p class=muted>Without script this section is on <a href=\"/latent/");
    wb_url(b, dict);
    wb_puts(b, "/");
    wb_url(b, latent_s);
    wb_puts(b, "?full=1");
    if (scope) {
        wb_puts(b, "&amp;scope=");
        wb_url(b, scope);
    }
    wb_printf(b, "#%s\">the whole page</a>.</p></noscript>", !strcmp(id, "co_part") ? "co" : id);
}

int page_latent(ldb_db *db, const char *dict, const char *latent_s, const char *scope, int mode,
                wbuf *b, ans_err *e)
{
    uint32_t latent;
    ans_cooc_opts co;
    ans_cooc_args ca;
    ans_cooc_opts_init(&co);
    if (scope)
        co.scope = scope;
    if (ans_cooc_parse(&co, &ca, e) || ans_latent_arg(db, dict, latent_s, &latent, e))
        return e->status;
    ldb_latent_info *li = NULL;
    ldb_examples *ex = NULL;
    ldb_density *d = NULL;
    ldb_top_opts o;
    ldb_top_opts_init(&o);
    int rc = ldb_query_latent(db, dict, latent, 40, &li);
    if (!rc)
        rc = ldb_query_top(db, dict, latent, &o, &ex);
    if (!rc)
        rc = ldb_query_density(db, dict, 40, &d);
    if (rc) {
        ldb_latent_info_free(li);
        ldb_examples_free(ex);
        return lib_fail(db, rc, e);
    }
    int standalone = mode == PAGE_STANDALONE;
    ldb_tokenizer *tk = cli_db_text(db);
    char title[300], ls[32];
    cli_latent_str(db, dict, latent, ls);
    snprintf(title, sizeof title, "%s %s%s%.200s", dict, ls, li->label ? ": " : "",
             li->label ? li->label : "");
    frame_start(b, title, standalone);
    wb_puts(b, "<h1>");
    wb_escs(b, dict);
    wb_printf(b, " <span id=latent>%s</span></h1>", ls);
    if (li->label) {
        wb_puts(b, "<p class=label id=label>");
        wb_escs(b, li->label);
        wb_puts(b, "</p>");
    }
    double dens = d->n_tokens ? (double)li->count / (double)d->n_tokens : 0;
    wb_printf(b, "<table class=stats><tr><th>fires</th><td class=n id=count>%llu</td>"
                 "<td class=muted>times, in %llu sequences</td></tr>"
                 "<tr><th>density</th><td class=n id=density>%.3g</td><td class=muted>%s</td></tr>"
                 "<tr><th>max</th><td class=n>%.4g</td><td class=muted>mean %.4g, std %.4g</td></tr>"
                 "</table>",
              (unsigned long long)li->count, (unsigned long long)li->nseq, li->density,
              li->count ? "" : "dead: it never fires", li->max, li->mean, li->std);
    if (li->count) {
        wb_printf(b, "<p class=muted>Denser than %.1f%% of the live latents of ",
                  100 * rank_of(d, li->count));
        wb_escs(b, dict);
        wb_puts(b, " (the blue line):</p>");
        svg_hist(b, d->bins, d->nbins, 1, "log10 density of the dictionary's live latents",
                 dens > 0 ? log10(dens) : NAN);
        wb_puts(b, "<h2>Activations</h2>");
        svg_hist(b, li->hist, li->nbins, 0, "value", NAN);
    }
    double mx = li->max;
    wb_printf(b, "<h2>Top examples</h2><div id=top>");
    for (uint32_t i = 0; i < ex->n; i++)
        example(b, tk, dict, latent_s, &ex->ex[i], mx);
    if (!ex->n)
        wb_puts(b, "<p class=muted>(it never fires)</p>");
    wb_puts(b, "</div>");
    if (li->count) {
        int lazy = mode == PAGE_LAZY;
        wb_puts(b, "<h2>Samples by count</h2><p class=muted>Groups of equal numbers of "
                   "positions, from the weakest codes to the strongest.</p>");
        part_open(b, mode, "samples", dict, latent_s, "samples", "by=count", scope);
        if (!lazy)
            samples_section(b, db, tk, dict, latent_s, latent, LDB_SAMPLES_BY_COUNT, mx);
        wb_puts(b, "</div><h2>Samples by value</h2><p class=muted>Groups of equal ranges of value."
                   "</p>");
        part_open(b, mode, "samples_value", dict, latent_s, "samples", "by=value", scope);
        if (!lazy)
            samples_section(b, db, tk, dict, latent_s, latent, LDB_SAMPLES_BY_VALUE, mx);
        wb_puts(b, "</div><h2 id=co>Co-occurring latents</h2>");
        wbuf arg = {0};
        wb_puts(&arg, "scope=");
        wb_url(&arg, co.scope);
        part_open(b, mode, "co_part", dict, latent_s, "cooc", arg.p ? arg.p : "", scope);
        wb_free(&arg);
        if (!lazy) /* (a file has no server to link its scopes to) */
            cooc_section(b, db, dict, latent_s, latent, co.scope, &ca, !standalone);
        wb_puts(b, "</div>");
    }
    frame_end(b, standalone);
    ldb_latent_info_free(li);
    ldb_examples_free(ex);
    ldb_density_free(d);
    return 0;
}

/* ---- a latent's costly sections, alone ----------------------------------------------- */
int part_samples(ldb_db *db, const char *dict, const char *latent_s, const char *by, wbuf *b,
                 ans_err *e)
{
    uint32_t latent;
    if (!by) {
        ans_bad(e, "the samples part needs by (count or value)");
        return e->status;
    }
    int kind = ans_samples_by(by, e);
    if (kind < 0 || ans_latent_arg(db, dict, latent_s, &latent, e))
        return e->status;
    ldb_latent_info *li = NULL;
    int rc = ldb_query_latent(db, dict, latent, 1, &li); /* its max, for the shading */
    if (rc)
        return lib_fail(db, rc, e);
    samples_section(b, db, cli_db_text(db), dict, latent_s, latent, kind, li->max);
    ldb_latent_info_free(li);
    return 0;
}

int part_cooc(ldb_db *db, const char *dict, const char *latent_s, const char *scope, wbuf *b,
              ans_err *e)
{
    uint32_t latent;
    ans_cooc_opts co;
    ans_cooc_args ca;
    if (!scope) {
        ans_bad(e, "the cooc part needs scope (token, window:N or seq)");
        return e->status;
    }
    ans_cooc_opts_init(&co);
    co.scope = scope;
    if (ans_cooc_parse(&co, &ca, e) || ans_latent_arg(db, dict, latent_s, &latent, e))
        return e->status;
    cooc_section(b, db, dict, latent_s, latent, scope, &ca, 1);
    return 0;
}

/* ---- search ----------------------------------------------------------------------- */
int page_search(ldb_db *db, const char *dict, const char *text, wbuf *b, ans_err *e)
{
    ldb_info *in = NULL;
    int rc = ldb_query_info(db, &in);
    if (rc)
        return lib_fail(db, rc, e);
    if (!dict && in->n_dicts)
        dict = in->dicts[0].name;
    frame_start(b, text ? text : "search", 0);
    wb_puts(b, "<h1>Search</h1><form action=\"/search\" method=get><select name=dict>");
    for (uint32_t i = 0; i < in->n_dicts; i++) {
        wb_puts(b, "<option");
        if (dict && !strcmp(dict, in->dicts[i].name))
            wb_puts(b, " selected");
        wb_puts(b, ">");
        wb_escs(b, in->dicts[i].name);
        wb_puts(b, "</option>");
    }
    wb_puts(b, "</select> <input type=text name=text size=40 value=\"");
    if (text)
        wb_escs(b, text);
    wb_puts(b, "\"> <button>search</button></form>");
    if (text && *text && dict) {
        ldb_tokenizer *t = NULL;
        uint32_t *ids = NULL;
        size_t n = 0;
        ans_err te;
        ldb_search *s = NULL;
        if (ans_text_ids(db, text, &t, &ids, &n, &te)) {
            wb_puts(b, "<p id=error>");
            wb_escs(b, te.msg);
            wb_puts(b, "</p>");
        } else if ((rc = ldb_query_search(db, dict, ids, n, 0, 20, &s))) {
            free(ids);
            ldb_info_free(in);
            return lib_fail(db, rc, e);
        } else {
            wb_printf(b, "<p class=muted>%llu occurrence%s; the latents firing on the last token, "
                         "by score = precision &times; log2(precision / density).</p><div class=cards>",
                      (unsigned long long)s->occurrences, s->occurrences == 1 ? "" : "s");
            for (uint32_t i = 0; i < s->n; i++) {
                const ldb_search_item *it = &s->items[i];
                char ls[32];
                cli_latent_str(db, dict, it->latent, ls);
                ldb_latent_info *li = NULL;
                ldb_examples *ex = NULL;
                ldb_top_opts o;
                ldb_top_opts_init(&o);
                o.k = 1;
                o.context = 6;
                wb_puts(b, "<div class=card><h3>");
                dict_link(b, dict, it->latent, ls);
                if (!ldb_query_latent(db, dict, it->latent, 1, &li) && li->label) {
                    wb_puts(b, " <span class=label>");
                    wb_escs(b, li->label);
                    wb_puts(b, "</span>");
                }
                wb_printf(b, "</h3><div class=muted>score %.3f, precision %.1f%%, density %.2e</div>",
                          it->score, 100 * it->precision, it->density);
                if (li && !ldb_query_top(db, dict, it->latent, &o, &ex) && ex->n)
                    example(b, t, dict, ls, &ex->ex[0], li->max);
                wb_puts(b, "</div>");
                ldb_examples_free(ex);
                ldb_latent_info_free(li);
            }
            wb_puts(b, "</div>");
            if (!s->n)
                wb_puts(b, "<p>No latent fires there.</p>");
            ldb_search_free(s);
            free(ids);
        }
    }
    frame_end(b, 0);
    ldb_info_free(in);
    return 0;
}

/* ---- a sequence --------------------------------------------------------------------- */
int page_seq(ldb_db *db, const char *seq_s, const char *dict, const char *latent_s, wbuf *b,
             ans_err *e)
{
    uint64_t seq;
    uint32_t latent = 0;
    if (ans_seq_arg(seq_s, &seq, e))
        return e->status;
    if (latent_s && !dict) {
        ans_bad(e, "latent needs dict");
        return e->status;
    }
    if (latent_s && ans_latent_arg(db, dict, latent_s, &latent, e))
        return e->status;
    ldb_seqview *v = NULL;
    int rc = ldb_query_seq(db, seq, dict, UINT32_MAX, &v);
    if (rc)
        return lib_fail(db, rc, e);
    ldb_tokenizer *tk = cli_db_text(db);
    char title[64];
    snprintf(title, sizeof title, "sequence %llu", (unsigned long long)seq);
    frame_start(b, title, 0);
    wb_printf(b, "<h1>Sequence %llu</h1><p class=muted>", (unsigned long long)seq);
    wb_escs(b, v->source ? v->source : "");
    wb_printf(b, ", %u tokens.", v->len);
    double mx = 0;
    float *val = calloc(v->len ? v->len : 1, sizeof *val);
    if (latent_s && val) {
        for (uint32_t p = 0; p < v->len; p++)
            for (uint64_t x = v->start[p]; x < v->start[p + 1]; x++)
                if (v->lat[x].latent == latent) {
                    val[p] = v->lat[x].value;
                    mx = val[p] > mx ? val[p] : mx;
                }
        wb_puts(b, " Shaded by ");
        char ls[32];
        dict_link(b, dict, latent, cli_latent_str(db, dict, latent, ls));
        wb_puts(b, ".");
    }
    wb_puts(b, " Select a token to list the latents firing there.</p><div class=ex id=seq>");
    for (uint32_t p = 0; p < v->len; p++) {
        wbuf href = {0};
        wb_printf(&href, "#p%u", p);
        shaded(b, tk, v->tokens[p], val ? val[p] : 0, mx, 0, href.p);
        wb_free(&href);
    }
    wb_puts(b, "</div><h2>Latents by position</h2>");
    for (uint32_t p = 0; p < v->len; p++) {
        wb_printf(b, "<div class=pos id=p%u><span class=pn>%u</span> ", p, p);
        token_text(b, tk, v->tokens[p]);
        wb_puts(b, ": ");
        uint64_t shown = 0;
        for (uint64_t x = v->start[p]; x < v->start[p + 1] && shown < 8; x++, shown++) {
            const char *dn = v->dict_names[v->lat[x].dict];
            char ls[32], s[80];
            snprintf(s, sizeof s, "%s=%.3g", cli_latent_str(db, dn, v->lat[x].latent, ls),
                     (double)v->lat[x].value);
            wb_puts(b, "<span class=lat>");
            if (v->n_dicts > 1) {
                wb_escs(b, dn);
                wb_puts(b, ":");
            }
            dict_link(b, dn, v->lat[x].latent, s);
            wb_puts(b, "</span>");
        }
        if (v->start[p + 1] - v->start[p] > shown)
            wb_printf(b, "<span class=muted>and %llu more</span>",
                      (unsigned long long)(v->start[p + 1] - v->start[p] - shown));
        wb_puts(b, "</div>");
    }
    free(val);
    frame_end(b, 0);
    ldb_seqview_free(v);
    return 0;
}

/* ---- latentdb page ------------------------------------------------------------------ */
static const char *USAGE_PAGE = "usage: latentdb page DB DICT LATENT -o page.html\n"
                                "Writes the latent's page as one self-contained HTML file (its "
                                "style inline,\nno script, no link outside it): to share without a "
                                "server.\n";

int cmd_page(int argc, char **argv)
{
    const char *path = NULL, *dict = NULL, *latent = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_PAGE, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else if (!dict)
            dict = argv[i];
        else if (!latent)
            latent = argv[i];
        else
            return cli_usage(USAGE_PAGE, "unexpected argument '%s'", argv[i]);
    }
    if (!latent || !out)
        return cli_usage(USAGE_PAGE, "page needs DB DICT LATENT -o FILE");
    ldb_db *db = NULL;
    int rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    wbuf b = {0};
    ans_err e;
    int st = page_latent(db, dict, latent, NULL, PAGE_STANDALONE, &b, &e);
    ldb_db_close(db);
    if (st) {
        wb_free(&b);
        return cli_fail("%s", e.msg);
    }
    if (b.oom) {
        wb_free(&b);
        return cli_fail("out of memory");
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "wb");
    int bad = !f;
    if (f) {
        bad |= fwrite(b.p, 1, b.n, f) != b.n;
        bad |= fclose(f) != 0;
    }
    if (bad) {
        remove(tmp);
        wb_free(&b);
        return cli_fail("cannot write %s", out);
    }
    wb_free(&b);
    if (rename(tmp, out)) {
        remove(tmp);
        return cli_fail("cannot write %s", out);
    }
    printf("wrote %s\n", out);
    return 0;
}
