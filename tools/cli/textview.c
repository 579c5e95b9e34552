/* textview.c — examples for people: a context as text with the firing token
 * marked when the DB has a tokenizer (token ids otherwise), and the JSON shape of
 * an example, which adds "text" and "pieces" beside "tokens". */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "latentdb.h"

ldb_tokenizer *cli_db_text(ldb_db *db)
{
    ldb_tokenizer *t = NULL;
    if (ldb_db_tokenizer(db, &t)) {
        cli_warn("%s (showing token ids)", ldb_db_errmsg(db));
        return NULL;
    }
    return t;
}

/* Decoded text of ids[0..n) printed on one line. */
static void put_decoded(ldb_tokenizer *t, const uint32_t *ids, size_t n)
{
    char *s;
    size_t len;
    if (!n || ldb_tokenizer_decode(t, ids, n, &s, &len))
        return;
    cli_put_oneline(s, len);
    free(s);
}

const char *cli_piece(const ldb_tokenizer *t, uint32_t id, int text, char *buf, size_t cap,
                      char **tmp, size_t *n)
{
    size_t (*get)(const ldb_tokenizer *, uint32_t, char *, size_t) =
        text ? ldb_tokenizer_piece_text : ldb_tokenizer_piece;
    *tmp = NULL;
    *n = get(t, id, buf, cap);
    if (*n < cap)
        return buf;
    if ((*tmp = malloc(*n + 1))) {
        get(t, id, *tmp, *n + 1);
        return *tmp;
    }
    *n = cap ? cap - 1 : 0;
    return buf;
}

void cli_text_json(cJSON *o, ldb_tokenizer *t, const uint32_t *ids, size_t n, int text)
{
    char buf[512], *tmp;
    size_t pn;
    if (text) {
        char *s;
        size_t len;
        if (!ldb_tokenizer_decode(t, ids, n, &s, &len)) {
            cJSON_AddStringToObject(o, "text", s);
            free(s);
        }
    }
    cJSON *p = cJSON_AddArrayToObject(o, "pieces");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(p, cJSON_CreateString(cli_piece(t, ids[i], 1, buf, sizeof buf, &tmp, &pn)));
        free(tmp);
    }
}

cJSON *cli_example_json(const ldb_example *e, ldb_tokenizer *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", (double)e->seq);
    cJSON_AddNumberToObject(o, "pos", e->pos);
    cJSON_AddNumberToObject(o, "value", e->value);
    if (!e->ctx_len) /* positions only */
        return o;
    cJSON *c = cJSON_AddObjectToObject(o, "context");
    cJSON_AddNumberToObject(c, "start", e->ctx_start);
    cJSON *tk = cJSON_AddArrayToObject(c, "tokens"), *v = cJSON_AddArrayToObject(c, "values");
    for (uint32_t i = 0; i < e->ctx_len; i++) {
        cJSON_AddItemToArray(tk, cJSON_CreateNumber(e->tokens[i]));
        cJSON_AddItemToArray(v, cJSON_CreateNumber(e->values[i]));
    }
    if (t)
        cli_text_json(c, t, e->tokens, e->ctx_len, 1);
    return o;
}

cJSON *cli_examples_json(const ldb_examples *e, ldb_tokenizer *t)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; i < e->n; i++)
        cJSON_AddItemToArray(arr, cli_example_json(&e->ex[i], t));
    return arr;
}

cJSON *cli_samples_json(const ldb_samples *s, ldb_tokenizer *t)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t g = 0; g < s->n; g++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "lo", s->groups[g].lo);
        cJSON_AddNumberToObject(o, "hi", s->groups[g].hi);
        cJSON_AddNumberToObject(o, "count", (double)s->groups[g].count);
        cJSON_AddItemToObject(o, "examples", cli_examples_json(&s->groups[g].ex, t));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

int cli_color;

int cli_color_arg(const char *s)
{
    if (!strcmp(s, "always"))
        cli_color = 1;
    else if (!strcmp(s, "never"))
        cli_color = 0;
    else if (!strcmp(s, "auto")) {
        const char *term = getenv("TERM");
        cli_color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb");
    } else
        return -1;
    return 0;
}

void cli_shade_rgb(double v, double mx, int rgb[3])
{
    double t = mx > 0 && v > 0 ? v / mx : 0;
    if (t > 1)
        t = 1;
    /* white (255,255,255) to a strong orange (255,140,0) */
    rgb[0] = 255;
    rgb[1] = (int)(255 - t * 115 + 0.5);
    rgb[2] = (int)(255 - t * 255 + 0.5);
}

void cli_put_shaded(ldb_tokenizer *t, uint32_t id, float v, double mx, int mark)
{
    char buf[512], *tmp = NULL;
    size_t n;
    int rgb[3];
    cli_shade_rgb(v, mx, rgb);
    if (v > 0) /* a 24-bit background, black text on it */
        printf("\x1b[48;2;%d;%d;%dm\x1b[38;2;0;0;0m", rgb[0], rgb[1], rgb[2]);
    if (mark)
        fputs("\x1b[1;4m", stdout);
    if (t) {
        const char *piece = cli_piece(t, id, 1, buf, sizeof buf, &tmp, &n);
        cli_put_oneline(piece, n);
    } else {
        printf("%u ", id);
    }
    free(tmp);
    if (v > 0 || mark)
        fputs("\x1b[0m", stdout);
}

void cli_print_example(int rank, const ldb_example *e, ldb_tokenizer *t, double mx)
{
    printf("%3d. seq %-6llu pos %-5u %8.3f   ", rank, (unsigned long long)e->seq, e->pos, e->value);
    if (!e->ctx_len) { /* positions only */
        printf("\n");
        return;
    }
    if (cli_color) { /* every token shaded by its value, the firing one bold and underlined */
        if (e->ctx_start > 0)
            printf("... ");
        for (uint32_t i = 0; i < e->ctx_len; i++)
            cli_put_shaded(t, e->tokens[i], e->values[i], mx, e->ctx_start + i == e->pos);
        printf("\n");
        return;
    }
    if (e->ctx_start > 0)
        printf("... ");
    if (t) { /* text before, [[the firing token]], text after */
        uint32_t m = e->pos - e->ctx_start;
        put_decoded(t, e->tokens, m);
        char buf[512], *tmp;
        size_t n;
        const char *piece = cli_piece(t, e->tokens[m], 1, buf, sizeof buf, &tmp, &n);
        size_t lead = 0;
        while (lead < n && piece[lead] == ' ') /* keep its leading space outside the mark */
            lead++;
        fwrite(piece, 1, lead, stdout);
        fputs("[[", stdout);
        cli_put_oneline(piece + lead, n - lead);
        fputs("]]", stdout);
        free(tmp);
        if (m + 1 < e->ctx_len)
            put_decoded(t, e->tokens + m + 1, e->ctx_len - m - 1);
        printf("\n");
        return;
    }
    for (uint32_t i = 0; i < e->ctx_len; i++) {
        uint32_t p = e->ctx_start + i;
        if (p == e->pos)
            printf("[[%u]] ", e->tokens[i]);
        else if (e->values[i] > 0)
            printf("%u* ", e->tokens[i]);
        else
            printf("%u ", e->tokens[i]);
    }
    printf("\n");
}
