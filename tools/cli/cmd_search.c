/* cmd_search.c — `latentdb search`: which latents fire on a text, from the index
 * over the whole corpus, or on the user's own activations of a text. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cli.h"
#include "latentdb.h"

static const char *USAGE_SEARCH =
    "usage: latentdb search DB DICT TEXT [-k 20] [--where last|all] [--json]\n"
    "       latentdb search DB DICT --text-file F|- [-k 20] [--where last|all] [--json]\n"
    "       latentdb search DB DICT --acts Q.npy [--tokens QT.npy] [-k 20] [--json]\n"
    "TEXT is tokenized exactly as written, with no BOS (\" the\" and \"the\" differ). Its\n"
    "occurrences in the corpus are found through the token index; latents are ranked by\n"
    "score = precision * log2(precision / density), precision = the share of occurrences\n"
    "where the latent fires (at the last token, or at any token with --where all).\n"
    "--text-file reads TEXT from a file (- : standard input), one final newline left out.\n"
    "With --acts, your activations of a text are encoded with the dictionary and its\n"
    "latents ranked by their largest code. --tokens QT.npy (one id per position) shows\n"
    "where, and leaves out the positions of the DB's skip tokens (BOS, PAD: their codes\n"
    "are not the text's).\n";

/* The text view of a search (--json is ans_search's answer). */
static int search_text(ldb_db *db, const char *dict, const char *text, uint32_t k, int all)
{
    ldb_tokenizer *t = NULL;
    uint32_t *ids;
    size_t n;
    ans_err e;
    if (ans_text_ids(db, text, &t, &ids, &n, &e))
        return cli_fail("%s", e.msg);
    ldb_search *s = NULL;
    int rc = 0;
    char piece[512], *tmp;
    if (ldb_query_search(db, dict, ids, n, all, k, &s)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else {
        printf("\"");
        cli_put_oneline(text, strlen(text));
        printf("\" = %zu token%s (", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *ps = cli_piece(t, ids[i], 0, piece, sizeof piece, &tmp, &pl);
            printf("%s", i ? " " : "");
            cli_put_oneline(ps, pl);
            free(tmp);
        }
        printf(")\n");
        if (!s->occurrences) {
            printf("it occurs nowhere in the corpus (at ordinary positions covered by '%s')\n",
                   dict);
        } else {
            printf("%llu occurrence%s; latents firing %s, by score = precision * "
                   "log2(precision / density)\n",
                   (unsigned long long)s->occurrences, s->occurrences == 1 ? "" : "s",
                   all ? "anywhere on the match" : "on its last token");
            printf("%4s %8s %8s %10s %10s %10s\n", "", "latent", "score", "precision", "density",
                   "mean");
            for (uint32_t i = 0; i < s->n; i++) {
                const ldb_search_item *it = &s->items[i];
                char ls[32];
                printf("%3u. %8s %8.3f %9.1f%% %10.2e %10.3f\n", i + 1,
                       cli_latent_str(db, dict, it->latent, ls), it->score,
                       100 * it->precision, it->density, it->mean_value);
            }
        }
    }
    ldb_search_free(s);
    free(ids);
    return rc;
}

#define DENSITY(d, j) ((d)->n_tokens ? (double)(d)->counts[j] / (double)(d)->n_tokens : 0.0)

/* --acts: the largest code of each latent over the query's positions. */
typedef struct qlat {
    uint32_t latent, argmax, fires;
    float max;
    double sum;
} qlat;

typedef struct actsctx {
    qlat *l;
    const uint8_t *skip;       /* skip[r]: row r holds one of the DB's skip tokens (or NULL) */
} actsctx;

static int collect(void *ctx, const ldb_codes *t)
{
    actsctx *a = ctx;
    for (uint32_t r = 0; r < t->n_rows; r++)
        for (uint64_t i = t->start[r]; i < t->start[r + 1] && !(a->skip && a->skip[t->row0 + r]);
             i++) {
            qlat *q = &a->l[t->latent[i]];
            float v = t->value[i];
            if (!q->fires || v > q->max) {
                q->max = v;
                q->argmax = (uint32_t)(t->row0 + r);
            }
            q->fires++;
            q->sum += v;
        }
    return 0;
}

/* The token id at row r of an int32/int64 token array. */
static uint32_t token_at(const ldb_array_info *t, uint32_t r)
{
    return t->dtype == LDB_I32 ? (uint32_t)((const int32_t *)t->data)[r]
                               : (uint32_t)((const int64_t *)t->data)[r];
}

static int cmp_qlat(const void *x, const void *y)
{
    const qlat *a = x, *b = y;
    if (a->max != b->max)
        return a->max > b->max ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}

/* The dictionary of DICT as registered in the DB (its path and weights hash). */
static int open_db_dict(ldb_db *db, const char *name, ldb_dict **d)
{
    *d = NULL;
    for (int i = 0; i < ldb_db_dict_count(db); i++) {
        cJSON *o = cJSON_Parse(ldb_db_dict_json(db, i));
        const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(o, "name"));
        if (!nm || strcmp(nm, name)) {
            cJSON_Delete(o);
            continue;
        }
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(o, "path"));
        const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(o, "sha256"));
        int rc = 0;
        char hex[65];
        if (!path || ldb_dict_open(path, d))
            rc = cli_fail("dictionary '%s': %s", name, *d ? ldb_dict_errmsg(*d) : "no path");
        else if (sha && (ldb_dict_sha256(*d, hex) || strcmp(hex, sha)))
            rc = cli_fail("dictionary '%s': %s changed since it was added (weights hash differs)",
                          name, path);
        cJSON_Delete(o);
        if (rc) {
            ldb_dict_close(*d);
            *d = NULL;
        }
        return rc;
    }
    return cli_fail("no dictionary named '%s'", name);
}

static int search_acts(ldb_db *db, const char *dict, const char *qpath, const char *tpath,
                       uint32_t k, int json)
{
    ldb_dict *d;
    int rc = open_db_dict(db, dict, &d);
    if (rc)
        return rc;
    const ldb_dict_info *in = ldb_dict_get_info(d);
    layer_acts *lx = calloc(1, sizeof *lx);
    ldb_array *tf = NULL;
    const ldb_array_info *ta = NULL;
    qlat *l = NULL;
    ldb_density *den = NULL;
    ldb_encoder *enc = NULL;
    ldb_info *info = NULL;
    cli_skip sk;
    memset(&sk, 0, sizeof sk);
    if (!lx) {
        rc = cli_fail("out of memory");
        goto out;
    }
    if ((rc = cli_layer_acts_open(lx, qpath, in->n_layers, in->d_in, "the dictionary's d_in")))
        goto out;
    struct {
        uint64_t rows;
    } x = {lx->rows};
    if (tpath) {
        if (ldb_array_open(tpath, &tf)) {
            rc = cli_fail("%s", ldb_array_errmsg(tf));
            goto out;
        }
        ta = ldb_array_get_info(tf);
        if ((ta->dtype != LDB_I32 && ta->dtype != LDB_I64) || ta->count != x.rows) {
            rc = cli_fail("%s: expected %llu int32/int64 token ids, one per row of %s", tpath,
                          (unsigned long long)x.rows, qpath);
            goto out;
        }
    }
    if (!(l = calloc(in->d_sae, sizeof *l))) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (uint32_t j = 0; j < in->d_sae; j++)
        l[j].latent = j;
    /* the DB's skip tokens (BOS, PAD): their positions' codes are not the text's */
    if (ldb_query_info(db, &info)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
        goto out;
    }
    if ((rc = cli_skip_open(&sk, tpath, x.rows, info->skip, info->n_skip)))
        goto out;
    if (!tpath && info->n_skip)
        cli_bos_hint("the ranking", "pass --tokens QT.npy (the token of each position) to leave "
                     "the positions of the DB's skip tokens out", NULL, &sk, lx->xs[0], lx->dtype,
                     x.rows, lx->stride, in->d_in);
    if (sk.n_skipped == x.rows) {
        rc = cli_fail("%s: every position holds one of the DB's skip tokens", tpath);
        goto out;
    }
    actsctx ac = {l, sk.row};
    if (ldb_encoder_new(d, NULL, &enc) ||
        ldb_encoder_encode_layers(enc, lx->xs, lx->stride, lx->dtype, x.rows, collect, &ac)) {
        rc = cli_fail("%s", ldb_encoder_errmsg(enc));
        goto out;
    }
    if (ldb_query_density(db, dict, 1, &den)) { /* base densities, for context */
        rc = cli_fail("%s", ldb_db_errmsg(db));
        goto out;
    }
    uint32_t m = 0;
    for (uint32_t j = 0; j < in->d_sae; j++)
        if (l[j].fires)
            l[m++] = l[j];
    qsort(l, m, sizeof *l, cmp_qlat);
    if (m > k)
        m = k;
    ldb_tokenizer *t = cli_db_text(db);
    char piece[512], *tmp;
    size_t pn;
    uint32_t tok_at = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dict", dict);
        cJSON_AddStringToObject(o, "acts", qpath);
        cJSON_AddNumberToObject(o, "positions", (double)x.rows);
        cJSON_AddNumberToObject(o, "skipped", (double)sk.n_skipped);
        cJSON *la = cJSON_AddArrayToObject(o, "latents");
        for (uint32_t i = 0; i < m; i++) {
            cJSON *e = cJSON_CreateObject();
            cli_latent_json(e, db, dict, l[i].latent);
            cJSON_AddNumberToObject(e, "max", l[i].max);
            cJSON_AddNumberToObject(e, "mean", l[i].sum / l[i].fires);
            cJSON_AddNumberToObject(e, "fires", l[i].fires);
            cJSON_AddNumberToObject(e, "pos", l[i].argmax);
            cJSON_AddNumberToObject(e, "density", DENSITY(den, l[i].latent));
            if (tpath) {
                tok_at = token_at(ta, l[i].argmax);
                cJSON_AddNumberToObject(e, "token", tok_at);
                if (t) {
                    cJSON_AddStringToObject(e, "piece", cli_piece(t, tok_at, 1, piece, sizeof piece,
                                                                  &tmp, &pn));
                    free(tmp);
                }
            }
            cJSON_AddItemToArray(la, e);
        }
        cli_print_json(o);
    } else {
        printf("%llu positions of %s encoded with '%s'; ", (unsigned long long)x.rows, qpath, dict);
        if (sk.n_skipped)
            printf("%llu of them, of the DB's skip tokens, left out; ",
                   (unsigned long long)sk.n_skipped);
        printf("latents by their largest code\n");
        printf("%4s %8s %9s %9s %6s %10s  %s\n", "", "latent", "max", "mean", "fires", "density",
               "at");
        for (uint32_t i = 0; i < m; i++) {
            char ls[32];
            printf("%3u. %8s %9.3f %9.3f %6u %10.2e  pos %u", i + 1,
                   cli_latent_str(db, dict, l[i].latent, ls), l[i].max,
                   l[i].sum / l[i].fires, l[i].fires,
                   DENSITY(den, l[i].latent), l[i].argmax);
            if (tpath) {
                tok_at = token_at(ta, l[i].argmax);
                if (t) {
                    const char *ps = cli_piece(t, tok_at, 1, piece, sizeof piece, &tmp, &pn);
                    printf(" \"");
                    cli_put_oneline(ps, pn);
                    free(tmp);
                    printf("\"");
                } else {
                    printf(" token %u", tok_at);
                }
            }
            printf("\n");
        }
    }
out:
    free(l);
    cli_skip_close(&sk);
    ldb_info_free(info);
    ldb_density_free(den);
    ldb_array_close(tf);
    if (lx)
        cli_layer_acts_close(lx);
    free(lx);
    ldb_encoder_free(enc);
    ldb_dict_close(d);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    const char *path = NULL, *dict = NULL, *text = NULL, *qacts = NULL, *qtok = NULL,
               *where = "last", *tfile = NULL;
    uint32_t k = 20;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &k) || !k)
                return cli_usage(USAGE_SEARCH, "-k takes a positive integer");
        } else if (!strcmp(argv[i], "--where") && i + 1 < argc)
            where = argv[++i];
        else if (!strcmp(argv[i], "--acts") && i + 1 < argc)
            qacts = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            qtok = argv[++i];
        else if (!strcmp(argv[i], "--text-file") && i + 1 < argc)
            tfile = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--") && i + 1 < argc && !text)
            text = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] && path && dict && !text && !qacts &&
                 strncmp(argv[i], "--", 2))
            text = argv[i]; /* a text starting with '-' ("-ing") */
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage(USAGE_SEARCH, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else if (!dict)
            dict = argv[i];
        else if (!text)
            text = argv[i];
        else
            return cli_usage(USAGE_SEARCH, "unexpected argument '%s'", argv[i]);
    }
    if (!path || !dict || (!!text + !!qacts + !!tfile) != 1)
        return cli_usage(USAGE_SEARCH, "search needs DB DICT and one of TEXT, --text-file F or "
                         "--acts Q.npy");
    int all = !strcmp(where, "all");
    if (!all && strcmp(where, "last"))
        return cli_usage(USAGE_SEARCH, "--where takes last or all, not '%s'", where);
    if (qtok && !qacts)
        return cli_usage(USAGE_SEARCH, "--tokens goes with --acts");
    char *tbuf = NULL;
    size_t tlen;
    if (tfile) {
        if (cli_read_file(tfile, (size_t)1 << 24, &tbuf, &tlen))
            return 1;
        if (memchr(tbuf, 0, tlen)) {
            free(tbuf);
            return cli_fail("%s: the text holds a NUL byte", tfile);
        }
        if (tlen && tbuf[tlen - 1] == '\n') /* the newline that ends a file's last line */
            tbuf[--tlen] = 0;
        if (tlen && tbuf[tlen - 1] == '\r')
            tbuf[--tlen] = 0;
        text = tbuf;
    }
    ldb_db *db = NULL;
    int rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc) {
        free(tbuf);
        return rc;
    }
    ans_err e;
    if (text && json)
        rc = cli_answer(ans_search(db, dict, text, k, all, &e), &e);
    else
        rc = text ? search_text(db, dict, text, k, all) : search_acts(db, dict, qacts, qtok, k, json);
    ldb_db_close(db);
    free(tbuf);
    return rc;
}
