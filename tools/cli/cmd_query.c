/* cmd_query.c — per-latent query commands: top, latent, density. Human output is
 * for reading at a glance (marked tokens, bar charts); --json is the stable shape. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cli.h"
#include "latentdb.h"


static const char *USAGE_TOP =
    "usage: latentdb top DB DICT LATENT [-k 20] [--context 8 | --positions-only]\n"
    "                    [--distinct-seq] [--include-special] [--color auto|always|never] [--json]\n"
    "--color shades each token of a context by the latent's value there (auto: when\n"
    "stdout is a terminal).\n";
static const char *USAGE_LATENT =
    "usage: latentdb latent DB DICT LATENT [--bins 50] [--json] [--svg F.svg]\n"
    "--svg writes the histogram of its values as an SVG file too.\n";
static const char *USAGE_DENSITY =
    "usage: latentdb density DB DICT [--layer L] [--bins 50] [--counts] [--json] [--svg F.svg]\n"
    "--svg writes the histogram of log10 density as an SVG file too.\n";

/* Positional args DB DICT [LATENT] and common options; returns 0 or an exit code. */
typedef struct qargs {
    const char *db, *dict;
    const char *latent_s;      /* LATENT as given: N, or LAYER:INDEX (read once the DB is open) */
    uint32_t latent;
    int has_latent, json;
} qargs;

static int positional(const char *usage, qargs *a, const char *arg, int want_latent)
{
    if (!a->db)
        a->db = arg;
    else if (!a->dict)
        a->dict = arg;
    else if (want_latent && !a->has_latent) {
        if (!cli_latent_syntax(arg))
            return cli_usage(usage, "LATENT must be a latent id (0, 1, ...) or LAYER:INDEX, not "
                             "'%s'", arg);
        a->latent_s = arg;
        a->has_latent = 1;
    } else
        return cli_usage(usage, "unexpected argument '%s'", arg);
    return 0;
}

int cmd_top(int argc, char **argv)
{
    qargs a = {0};
    ldb_top_opts o;
    ldb_top_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.k) || !o.k || o.k > 100000)
                return cli_usage(USAGE_TOP, "-k takes 1..100000");
        } else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.context) || o.context > 10000)
                return cli_usage(USAGE_TOP, "--context takes 0..10000");
        } else if (!strcmp(argv[i], "--positions-only"))
            o.positions_only = 1;
        else if (!strcmp(argv[i], "--distinct-seq"))
            o.distinct_seq = 1;
        else if (!strcmp(argv[i], "--include-special"))
            o.include_special = 1;
        else if (!strcmp(argv[i], "--color") && i + 1 < argc) {
            if (cli_color_arg(argv[++i]))
                return cli_usage(USAGE_TOP, "--color takes auto, always or never");
        } else if (!strcmp(argv[i], "--json"))
            a.json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_TOP, "unknown option or missing value '%s'", argv[i]);
        else if ((rc = positional(USAGE_TOP, &a, argv[i], 1)))
            return rc;
    }
    if (!a.has_latent)
        return cli_usage(USAGE_TOP, "top needs DB DICT LATENT");
    ldb_db *db = NULL;
    ldb_examples *ex = NULL;
    int rc = cli_open_db(a.db, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    if (a.json) {
        ans_err e;
        rc = cli_answer(ans_top(db, a.dict, a.latent_s, &o, &e), &e);
        ldb_db_close(db);
        return rc;
    }
    if ((rc = cli_latent_arg(db, a.dict, a.latent_s, &a.latent))) {
        ldb_db_close(db);
        return rc;
    }
    ldb_tokenizer *tk = cli_db_text(db);
    ldb_latent_info *li = NULL; /* for its label */
    char ls[32];
    if (ldb_query_top(db, a.dict, a.latent, &o, &ex) ||
        ldb_query_latent(db, a.dict, a.latent, 1, &li)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        char *t1 = NULL, *t2 = NULL;
        printf("top %u examples of %s latent %s%s%s (%s)\n", ex->n,
               cli_safe(a.dict, &t1), cli_latent_str(db, a.dict, a.latent, ls),
               li->label ? ": " : "", li->label ? cli_safe(li->label, &t2) : "",
               cli_color ? "each token shaded by its value, the firing one underlined"
               : tk ? "[[firing token]]" : "[[firing token]], * also firing");
        free(t1);
        free(t2);
        for (uint32_t i = 0; i < ex->n; i++)
            cli_print_example((int)i + 1, &ex->ex[i], tk, li->max);
        if (!ex->n)
            printf("(the latent never fires)\n");
    }
    ldb_examples_free(ex);
    ldb_latent_info_free(li);
    ldb_db_close(db);
    return rc;
}

/* A bar chart line per bin: label, bar scaled to the largest count, count. */
static void bars(const ldb_bin *b, uint32_t n, int logscale)
{
    uint64_t mx = 1;
    for (uint32_t i = 0; i < n; i++)
        mx = b[i].count > mx ? b[i].count : mx;
    for (uint32_t i = 0; i < n; i++) {
        int w = (int)((double)b[i].count / (double)mx * 50 + 0.5);
        if (logscale)
            printf("  1e%+6.2f .. 1e%+6.2f |", b[i].lo, b[i].hi);
        else
            printf("  %9.4g .. %-9.4g |", b[i].lo, b[i].hi);
        for (int j = 0; j < w; j++)
            fputs("#", stdout);
        printf("%*s %llu\n", 50 - w, "", (unsigned long long)b[i].count);
    }
}

int cmd_latent(int argc, char **argv)
{
    qargs a = {0};
    uint32_t bins = 50;
    const char *svg = NULL;
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!strcmp(argv[i], "--bins") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &bins) || !bins || bins > 10000)
                return cli_usage(USAGE_LATENT, "--bins takes 1..10000");
        } else if (!strcmp(argv[i], "--svg") && i + 1 < argc)
            svg = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            a.json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_LATENT, "unknown option or missing value '%s'", argv[i]);
        else if ((rc = positional(USAGE_LATENT, &a, argv[i], 1)))
            return rc;
    }
    if (!a.has_latent)
        return cli_usage(USAGE_LATENT, "latent needs DB DICT LATENT");
    ldb_db *db = NULL;
    ldb_latent_info *l = NULL;
    int rc = cli_open_db(a.db, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    char ls[32];
    ans_err e;
    if (svg && !(rc = cli_latent_arg(db, a.dict, a.latent_s, &a.latent))) {
        if (ldb_query_latent(db, a.dict, a.latent, bins, &l))
            rc = cli_fail("%s", ldb_db_errmsg(db));
        else
            rc = cli_svg_file(svg, l->hist, l->nbins, 0, "value");
        ldb_latent_info_free(l);
        l = NULL;
    }
    if (rc) {
        /* the message is out */
    } else if (a.json) {
        rc = cli_answer(ans_latent(db, a.dict, a.latent_s, bins, &e), &e);
    } else if ((rc = cli_latent_arg(db, a.dict, a.latent_s, &a.latent))) {
        /* the message is out */
    } else if (ldb_query_latent(db, a.dict, a.latent, bins, &l)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        char *t1 = NULL, *t2 = NULL;
        printf("%s latent %s%s%s\n", cli_safe(a.dict, &t1), cli_latent_str(db, a.dict, a.latent, ls),
               l->label ? ": " : "",
               l->label ? cli_safe(l->label, &t2) : "");
        free(t1);
        free(t2);
        printf("  fires %llu times in %llu sequences, density %.3g\n",
               (unsigned long long)l->count, (unsigned long long)l->nseq, l->density);
        printf("  max %.4g, mean %.4g, std %.4g\n\n", l->max, l->mean, l->std);
        if (l->count)
            bars(l->hist, l->nbins, 0);
    }
    ldb_latent_info_free(l);
    ldb_db_close(db);
    return rc;
}

int cmd_density(int argc, char **argv)
{
    qargs a = {0};
    uint32_t bins = 50, layer = LDB_ALL_LAYERS;
    int counts = 0;
    const char *svg = NULL;
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!strcmp(argv[i], "--bins") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &bins) || !bins || bins > 10000)
                return cli_usage(USAGE_DENSITY, "--bins takes 1..10000");
        } else if (!strcmp(argv[i], "--layer") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &layer) || layer == LDB_ALL_LAYERS)
                return cli_usage(USAGE_DENSITY, "--layer takes a layer number (0, 1, ...)");
        } else if (!strcmp(argv[i], "--counts"))
            counts = 1;
        else if (!strcmp(argv[i], "--svg") && i + 1 < argc)
            svg = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            a.json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_DENSITY, "unknown option or missing value '%s'", argv[i]);
        else if ((rc = positional(USAGE_DENSITY, &a, argv[i], 0)))
            return rc;
    }
    if (!a.dict)
        return cli_usage(USAGE_DENSITY, "density needs DB DICT");
    ldb_db *db = NULL;
    ldb_density *d = NULL;
    int rc = cli_open_db(a.db, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    char ls[32];
    ans_err e;
    if (svg) {
        if (ldb_query_density_layer(db, a.dict, layer, bins, &d))
            rc = cli_fail("%s", ldb_db_errmsg(db));
        else
            rc = cli_svg_file(svg, d->bins, d->nbins, 1, "log10 density of the live latents");
        ldb_density_free(d);
        d = NULL;
    }
    if (rc) {
        /* the message is out */
    } else if (a.json) {
        rc = cli_answer(ans_density(db, a.dict, layer, bins, counts, &e), &e);
    } else if (ldb_query_density_layer(db, a.dict, layer, bins, &d)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        if (layer != LDB_ALL_LAYERS)
            printf("%s layer %u (latents %u..%u): ", a.dict, layer, d->first,
                   d->first + d->n_latents - 1);
        else
            printf("%s: ", a.dict);
        printf("%u latents over %llu ordinary positions; %u dead (never fired)\n", d->n_latents,
               (unsigned long long)d->n_tokens, d->dead);
        printf("histogram of log10(density) of the %u live latents:\n",
               d->n_latents - d->dead);
        bars(d->bins, d->nbins, 1);
        if (counts)
            for (uint32_t i = 0; i < d->n_latents; i++)
                printf("%s\t%llu\n", cli_latent_str(db, a.dict, d->first + i, ls),
                       (unsigned long long)d->counts[i]);
    }
    ldb_density_free(d);
    ldb_db_close(db);
    return rc;
}

static const char *USAGE_COOC =
    "usage: latentdb cooc DB DICT LATENT [--with DICT2[:LAYER]] [-k 20] [--scope token|window:N|seq]\n"
    "                     [--sort jaccard|count|npmi] [--json]\n";
static const char *USAGE_SAMPLES =
    "usage: latentdb samples DB DICT LATENT [--groups 10] [--per-group 5] [--by count|value]\n"
    "                        [--seed 0] [--context 8] [--color auto|always|never] [--json]\n";
static const char *USAGE_SEQ =
    "usage: latentdb seq DB SEQ [--dict NAME] [-k 5] [--color auto|always|never] [--json]\n"
    "--color shades each token by the largest code there (auto: when stdout is a terminal).\n";

int cmd_cooc(int argc, char **argv)
{
    qargs a = {0};
    ans_cooc_opts o;
    ans_cooc_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!strcmp(argv[i], "--with") && i + 1 < argc)
            o.with = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.k) || !o.k)
                return cli_usage(USAGE_COOC, "-k takes a positive integer");
        } else if (!strcmp(argv[i], "--scope") && i + 1 < argc)
            o.scope = argv[++i];
        else if (!strcmp(argv[i], "--sort") && i + 1 < argc)
            o.sort = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            a.json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_COOC, "unknown option or missing value '%s'", argv[i]);
        else if ((rc = positional(USAGE_COOC, &a, argv[i], 1)))
            return rc;
    }
    if (!a.has_latent)
        return cli_usage(USAGE_COOC, "cooc needs DB DICT LATENT");
    ans_cooc_args p;
    ans_err e;
    if (ans_cooc_parse(&o, &p, &e))
        return cli_usage(USAGE_COOC, "--%s", e.msg);
    ldb_db *db = NULL;
    ldb_cooc *c = NULL;
    int rc = cli_open_db(a.db, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    const char *other = p.with ? p.with : a.dict;
    char ls[32], ls2[32];
    if (a.json) {
        rc = cli_answer(ans_cooc(db, a.dict, a.latent_s, &o, &e), &e);
    } else if ((rc = cli_latent_arg(db, a.dict, a.latent_s, &a.latent))) {
        /* the message is out */
    } else if (ldb_query_cooc_layer(db, a.dict, a.latent, p.with, p.with_layer, o.k, p.scope,
                                    p.window, p.sort, &c)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        printf("%s latent %s fires in %llu of %llu units (scope %s); with %s", a.dict,
               cli_latent_str(db, a.dict, a.latent, ls), (unsigned long long)c->count,
               (unsigned long long)c->units, o.scope, other);
        if (p.with_layer != LDB_ALL_LAYERS)
            printf(" layer %u", p.with_layer);
        printf(":\n");
        printf("  %-8s %10s %10s %9s %7s\n", "latent", "both", "it alone", "jaccard", "npmi");
        for (uint32_t i = 0; i < c->n; i++)
            printf("  %-8s %10llu %10llu %9.4f %7.3f\n",
                   cli_latent_str(db, other, c->items[i].latent, ls2),
                   (unsigned long long)c->items[i].count,
                   (unsigned long long)c->items[i].count_other, c->items[i].jaccard,
                   c->items[i].npmi);
    }
    ldb_cooc_free(c);
    ldb_db_close(db);
    return rc;
}

int cmd_samples(int argc, char **argv)
{
    qargs a = {0};
    ans_samples_opts o;
    ans_samples_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!strcmp(argv[i], "--groups") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.groups) || !o.groups || o.groups > 1000)
                return cli_usage(USAGE_SAMPLES, "--groups takes 1..1000");
        } else if (!strcmp(argv[i], "--per-group") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.per_group) || o.per_group > 10000)
                return cli_usage(USAGE_SAMPLES, "--per-group takes 0..10000");
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.seed))
                return cli_usage(USAGE_SAMPLES, "--seed takes a non-negative integer");
        } else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.context) || o.context > 10000)
                return cli_usage(USAGE_SAMPLES, "--context takes 0..10000");
        } else if (!strcmp(argv[i], "--by") && i + 1 < argc)
            o.by = argv[++i];
        else if (!strcmp(argv[i], "--color") && i + 1 < argc) {
            if (cli_color_arg(argv[++i]))
                return cli_usage(USAGE_SAMPLES, "--color takes auto, always or never");
        } else if (!strcmp(argv[i], "--json"))
            a.json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_SAMPLES, "unknown option or missing value '%s'", argv[i]);
        else if ((rc = positional(USAGE_SAMPLES, &a, argv[i], 1)))
            return rc;
    }
    if (!a.has_latent)
        return cli_usage(USAGE_SAMPLES, "samples needs DB DICT LATENT");
    ans_err e;
    int b = ans_samples_by(o.by, &e);
    if (b < 0)
        return cli_usage(USAGE_SAMPLES, "--%s", e.msg);
    ldb_db *db = NULL;
    ldb_samples *s = NULL;
    int rc = cli_open_db(a.db, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    ldb_tokenizer *tk = a.json ? NULL : cli_db_text(db);
    if (a.json) {
        rc = cli_answer(ans_samples(db, a.dict, a.latent_s, &o, &e), &e);
    } else if ((rc = cli_latent_arg(db, a.dict, a.latent_s, &a.latent))) {
        /* the message is out */
    } else if (ldb_query_samples(db, a.dict, a.latent, o.groups, o.per_group, b, o.seed,
                                 o.context, &s)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        double mx = 0; /* the strongest code shown: the last group's */
        for (uint32_t g = 0; g < s->n; g++)
            mx = s->groups[g].hi > mx ? s->groups[g].hi : mx;
        for (uint32_t g = 0; g < s->n; g++) {
            printf("group %u: values %.4g .. %.4g, %llu positions\n", g + 1, s->groups[g].lo,
                   s->groups[g].hi, (unsigned long long)s->groups[g].count);
            for (uint32_t i = 0; i < s->groups[g].ex.n; i++)
                cli_print_example((int)i + 1, &s->groups[g].ex.ex[i], tk, mx);
        }
    }
    ldb_samples_free(s);
    ldb_db_close(db);
    return rc;
}

int cmd_seq(int argc, char **argv)
{
    const char *path = NULL, *dict = NULL, *seq_s = NULL;
    uint32_t k = 5;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dict") && i + 1 < argc)
            dict = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &k))
                return cli_usage(USAGE_SEQ, "-k takes a non-negative integer");
        } else if (!strcmp(argv[i], "--color") && i + 1 < argc) {
            if (cli_color_arg(argv[++i]))
                return cli_usage(USAGE_SEQ, "--color takes auto, always or never");
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_SEQ, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else if (!seq_s)
            seq_s = argv[i];
        else
            return cli_usage(USAGE_SEQ, "unexpected argument '%s'", argv[i]);
    }
    char *end = NULL;
    unsigned long long seq = seq_s ? strtoull(seq_s, &end, 10) : 0;
    if (!path || !seq_s || *end || *seq_s == '-')
        return cli_usage(USAGE_SEQ, "seq needs DB and a sequence id");
    ldb_db *db = NULL;
    ldb_seqview *v = NULL;
    int rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    ans_err e;
    if (json) {
        rc = cli_answer(ans_seq(db, seq, dict, k, &e), &e);
        ldb_db_close(db);
        return rc;
    }
    ldb_tokenizer *tk = cli_db_text(db);
    char piece[512], *tmp;
    if (ldb_query_seq(db, seq, dict, k, &v)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        char *t1 = NULL;
        printf("sequence %llu (%s), %u tokens; top %u latents per position\n", seq,
               v->source ? cli_safe(v->source, &t1) : "-", v->len, k);
        free(t1);
        double mx = 0; /* (latents are by value: a position's first is its largest) */
        for (uint32_t p = 0; p < v->len; p++)
            if (v->start[p + 1] > v->start[p] && v->lat[v->start[p]].value > mx)
                mx = v->lat[v->start[p]].value;
        for (uint32_t p = 0; p < v->len; p++) {
            float top = v->start[p + 1] > v->start[p] ? v->lat[v->start[p]].value : 0;
            if (cli_color && !tk) { /* the id itself shaded */
                printf("%5u  ", p);
                cli_put_shaded(NULL, v->tokens[p], top, mx, 0);
            } else {
                printf("%5u  %-8u", p, v->tokens[p]);
            }
            if (tk) {
                size_t n;
                const char *ps = cli_piece(tk, v->tokens[p], 1, piece, sizeof piece, &tmp, &n);
                int w = (int)n;
                printf(" ");
                if (cli_color)
                    cli_put_shaded(tk, v->tokens[p], top, mx, 0);
                else
                    cli_put_oneline(ps, n);
                free(tmp);
                printf("%*s", w < 14 ? 14 - w : 0, "");
            }
            for (uint64_t e = v->start[p]; e < v->start[p + 1]; e++) {
                char *t1, ls[32];
                const char *dn = v->dict_names[v->lat[e].dict];
                printf("  %s:%s=%.3g", cli_safe(dn, &t1), cli_latent_str(db, dn, v->lat[e].latent, ls),
                       v->lat[e].value);
                free(t1);
            }
            printf("\n");
        }
    }
    ldb_seqview_free(v);
    ldb_db_close(db);
    return rc;
}

static const char *USAGE_LABEL =
    "usage: latentdb label DB DICT LATENT TEXT [--json]\n"
    "       latentdb label DB DICT --file F|- [--json]\n"
    "Labels a latent (\"\" removes its label). --file reads one label a line, LATENT<TAB>TEXT\n"
    "(- : standard input; an empty TEXT removes that label; blank lines and lines starting\n"
    "with # are skipped); every line is checked before any label is written.\n";

typedef struct label_line {
    uint32_t latent;
    const char *text;
} label_line;

/* --file's lines, checked (latent, UTF-8 without controls) into ls[*n] (malloc'd);
 * buf is cut in place. 0, or the exit status after the message. */
static int label_lines(ldb_db *db, const char *dict, const char *file, char *buf,
                       label_line **ls, size_t *n)
{
    size_t cap = 0, lineno = 0;
    *ls = NULL;
    *n = 0;
    for (char *line = buf, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab)
            return cli_fail("%s:%zu: expected LATENT<TAB>TEXT", file, lineno);
        *tab = 0;
        uint32_t cp, latent;
        size_t bad = ldb_utf8_check((const uint8_t *)tab + 1, strlen(tab + 1), 1, &cp);
        if (tab[1 + bad])
            return cli_fail("%s:%zu: the label holds %s at byte %zu (a label is one line of "
                            "UTF-8)", file, lineno, cp == LDB_UTF8_BAD ? "invalid UTF-8"
                            : "a control character", bad);
        ans_err e;
        if (!cli_latent_syntax(line))
            return cli_fail("%s:%zu: '%s' is not a latent (an id or LAYER:INDEX)", file, lineno,
                            line);
        if (ans_latent_arg(db, dict, line, &latent, &e))
            return cli_fail("%s:%zu: %s", file, lineno, e.msg);
        if (*n == cap) {
            label_line *nl = realloc(*ls, (cap = cap ? 2 * cap : 256) * sizeof *nl);
            if (!nl)
                return cli_fail("out of memory");
            *ls = nl;
        }
        (*ls)[(*n)++] = (label_line){latent, tab + 1};
    }
    return 0;
}

int cmd_label(int argc, char **argv)
{
    const char *pos[4], *file = NULL;
    int n = 0, json = 0, rest = 0;
    for (int i = 0; i < argc; i++) {
        if (!rest && !strcmp(argv[i], "--json"))
            json = 1;
        else if (!rest && !strcmp(argv[i], "--file") && i + 1 < argc)
            file = argv[++i];
        else if (!rest && !strcmp(argv[i], "--"))
            rest = 1; /* a label that starts with -- */
        else if (n < 4)
            pos[n++] = argv[i];
        else
            return cli_usage(USAGE_LABEL, "unexpected argument '%s'", argv[i]);
    }
    if (file ? n != 2 : n != 4 || !cli_latent_syntax(pos[2]))
        return cli_usage(USAGE_LABEL, "label needs DB DICT LATENT TEXT (LATENT: an id or "
                         "LAYER:INDEX), or DB DICT --file F");
    char *buf = NULL;
    if (file && cli_read_file(file, (size_t)1 << 30, &buf, NULL))
        return 1;
    ldb_db *db = NULL;
    int rc = cli_open_db(pos[0], LDB_OPEN_WRITE, &db);
    label_line one, *ls = &one;
    size_t nl = 1, done = 0, removed = 0;
    if (rc)
        goto out;
    if (file) {
        if ((rc = label_lines(db, pos[1], file, buf, &ls, &nl)))
            goto out;
    } else {
        if ((rc = cli_latent_arg(db, pos[1], pos[2], &one.latent)))
            goto out;
        one.text = pos[3];
    }
    for (; done < nl; done++) {
        if (ldb_db_label(db, pos[1], ls[done].latent, ls[done].text)) {
            rc = cli_fail("%s", ldb_db_errmsg(db));
            break;
        }
        removed += !*ls[done].text;
    }
    if (rc && file && done)
        fprintf(stderr, "latentdb: the first %zu labels of %s were written\n", done, file);
    if (!rc && json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "db", pos[0]);
        cJSON_AddStringToObject(o, "dict", pos[1]);
        if (file) {
            cJSON_AddStringToObject(o, "file", file);
            cJSON_AddNumberToObject(o, "labelled", (double)(nl - removed));
            cJSON_AddNumberToObject(o, "removed", (double)removed);
        } else {
            cli_latent_json(o, db, pos[1], one.latent);
            if (*one.text)
                cJSON_AddStringToObject(o, "label", one.text);
            else
                cJSON_AddNullToObject(o, "label");
        }
        rc = cli_json_write(stdout, o) ? 1 : 0;
    } else if (!rc && file) {
        printf("labelled %zu latents of %s from %s", nl - removed, pos[1], file);
        if (removed)
            printf("; removed %zu labels", removed);
        printf("\n");
    } else if (!rc && *one.text) {
        printf("labelled %s latent %u: %s\n", pos[1], one.latent, one.text);
    } else if (!rc) {
        printf("removed the label of %s latent %u\n", pos[1], one.latent);
    }
out:
    if (ls != &one)
        free(ls);
    free(buf);
    cli_close_db(db);
    return rc;
}
