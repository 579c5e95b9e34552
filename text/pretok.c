/* pretok.c — running an LTK3 pipeline (pipe.h) over a normalized section: each step
 * cuts its input into pieces for the next, the last gives words to the model. Split
 * finds delimiters with PCRE2 and applies its behaviour as the Rust reference does
 * (segments, then a fold); ByteLevel adds its prefix space and splits with GPT-2's
 * pattern; Metaspace replaces spaces. Also Unicode normalization through utf8proc. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "pipe.h"

typedef struct seg { uint32_t a, b, m; } seg; /* m: the pattern matched [a, b) */

struct tok_pscratch {
    pcre2_match_data *md;      /* whole-match ovector, shared by every step's pattern */
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    seg *sg[TOK_MAX_STEPS];    /* each step's segments, then its pieces */
    size_t scap[TOK_MAX_STEPS];
    uint8_t *buf[TOK_MAX_STEPS]; /* text a step rewrote (Metaspace, ByteLevel's prefix) */
    size_t bcap[TOK_MAX_STEPS];
};

void ldb_tok_pscratch_free(tok_pscratch *p)
{
    if (!p)
        return;
    pcre2_match_data_free(p->md);
    pcre2_match_context_free(p->mc);
    pcre2_jit_stack_free(p->js);
    for (int i = 0; i < TOK_MAX_STEPS; i++)
        free(p->sg[i]), free(p->buf[i]);
    free(p);
}

static tok_pscratch *pscratch_new(void)
{
    tok_pscratch *p = calloc(1, sizeof *p);
    if (!p || !(p->md = pcre2_match_data_create(1, NULL)) || !(p->mc = pcre2_match_context_create(NULL)) ||
        !(p->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL))) {
        ldb_tok_pscratch_free(p);
        return NULL;
    }
    pcre2_jit_stack_assign(p->mc, NULL, p->js);
    return p;
}

static int add_seg(tok_pscratch *p, int k, size_t *n, size_t a, size_t b, uint32_t m)
{
    if (*n == p->scap[k]) {
        size_t nc = p->scap[k] ? 2 * p->scap[k] : 64;
        seg *ns = realloc(p->sg[k], nc * sizeof *ns);
        if (!ns)
            return LDB_ENOMEM;
        p->sg[k] = ns, p->scap[k] = nc;
    }
    p->sg[k][(*n)++] = (seg){(uint32_t)a, (uint32_t)b, m};
    return LDB_OK;
}

static size_t char_len(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Segments of s[0..n) by the matches of re (as the reference's find_matches: an empty
 * match is a segment too, and the search goes on one character later). */
static int regex_segments(tok_pscratch *p, int k, const pcre2_code *re, const uint8_t *s, size_t n,
                          size_t *ns)
{
    size_t prev = 0, at = 0;
    *ns = 0;
    while (at <= n) {
        int rc = pcre2_match(re, s, n, at, PCRE2_NO_UTF_CHECK, p->md, p->mc);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return rc == PCRE2_ERROR_NOMEMORY ? LDB_ENOMEM : LDB_EUNSUPPORTED;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
        size_t a = ov[0], b = ov[1];
        if ((a > prev && add_seg(p, k, ns, prev, a, 0)) || add_seg(p, k, ns, a, b, 1))
            return LDB_ENOMEM;
        prev = b;
        at = b > a ? b : b < n ? b + char_len(s[b]) : n + 1;
    }
    return prev < n ? add_seg(p, k, ns, prev, n, 0) : LDB_OK;
}

/* Segments of s[0..n) by the occurrences of the string r[0..rn). */
static int literal_segments(tok_pscratch *p, int k, const uint8_t *r, size_t rn, const uint8_t *s,
                            size_t n, size_t *ns)
{
    size_t prev = 0;
    *ns = 0;
    for (size_t i = 0; rn && i + rn <= n;) {
        if (s[i] == r[0] && !memcmp(s + i, r, rn)) {
            if ((i > prev && add_seg(p, k, ns, prev, i, 0)) || add_seg(p, k, ns, i, i + rn, 1))
                return LDB_ENOMEM;
            prev = i += rn;
        } else {
            i++;
        }
    }
    return prev < n ? add_seg(p, k, ns, prev, n, 0) : LDB_OK;
}

/* The behaviour's fold of the segments sg[0..n) into pieces, in place; their count. */
static size_t fold(seg *sg, size_t n, uint32_t behavior, int invert)
{
    size_t w = 0;
    int prev = 0;
    if (invert)
        for (size_t i = 0; i < n; i++)
            sg[i].m = !sg[i].m;
    switch (behavior) {
    case TOK_ISOLATED:
        return n;
    case TOK_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!sg[i].m)
                sg[w++] = sg[i];
        return w;
    case TOK_MERGED_PREV: /* a delimiter ends the piece before it */
        for (size_t i = 0; i < n; i++) {
            if (sg[i].m && !prev && w)
                sg[w - 1].b = sg[i].b;
            else
                sg[w++] = sg[i];
            prev = (int)sg[i].m;
        }
        return w;
    case TOK_MERGED_NEXT: { /* a delimiter starts the piece after it: the same, backwards */
        size_t r = n;
        for (size_t i = n; i-- > 0;) {
            if (sg[i].m && !prev && r < n)
                sg[r].a = sg[i].a;
            else
                sg[--r] = sg[i];
            prev = (int)sg[i].m;
        }
        memmove(sg, sg + r, (n - r) * sizeof *sg);
        return n - r;
    }
    default: /* TOK_CONTIGUOUS: runs of matches, and of non-matches, each one piece */
        for (size_t i = 0; i < n; i++) {
            if (w && (int)sg[i].m == prev)
                sg[w - 1].b = sg[i].b;
            else
                sg[w++] = sg[i];
            prev = (int)sg[i].m;
        }
        return w;
    }
}

static int ensure_buf(tok_pscratch *p, int k, size_t need)
{
    if (need <= p->bcap[k])
        return LDB_OK;
    uint8_t *nb = realloc(p->buf[k], need);
    if (!nb)
        return LDB_ENOMEM;
    p->buf[k] = nb, p->bcap[k] = need;
    return LDB_OK;
}

typedef struct run {
    const tok_pipe *pipe;
    tok_pscratch *ps;
    int section;
    tok_word_fn word;
    void *ctx;
} run;

static int step(run *r, int k, const uint8_t *s, size_t n);

/* The pieces sg[k][0..np) of s to step k + 1. */
static int each_piece(run *r, int k, const uint8_t *s, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        const seg *g = &r->ps->sg[k][i];
        int rc = g->b > g->a ? step(r, k + 1, s + g->a, g->b - g->a) : LDB_OK;
        if (rc)
            return rc;
    }
    return LDB_OK;
}

static int metaspace(run *r, int k, const tok_step *st, const uint8_t *s, size_t n)
{
    tok_pscratch *p = r->ps;
    const uint8_t *rep = (const uint8_t *)st->str;
    uint32_t scheme = st->opts & 0xff;
    int pre = (scheme == TOK_MS_ALWAYS || (scheme == TOK_MS_FIRST && r->section == 0)) &&
              !(n >= st->len && !memcmp(s, rep, st->len));
    if (ensure_buf(p, k, (size_t)st->len * (n + 1) + 1))
        return LDB_ENOMEM;
    uint8_t *w = p->buf[k];
    size_t o = 0;
    if (pre && !(n && s[0] == ' ')) { /* a leading space becomes the replacement anyway */
        memcpy(w, rep, st->len);
        o = st->len;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(w + o, rep, st->len);
            o += st->len;
        } else {
            w[o++] = s[i];
        }
    }
    if (!(st->opts & TOK_MS_SPLIT))
        return step(r, k + 1, w, o);
    size_t ns;
    int rc = literal_segments(p, k, rep, st->len, w, o, &ns);
    return rc ? rc : each_piece(r, k, w, fold(p->sg[k], ns, TOK_MERGED_NEXT, 0));
}

static int step(run *r, int k, const uint8_t *s, size_t n)
{
    if (!n)
        return LDB_OK;
    if ((uint32_t)k == r->pipe->n_steps)
        return r->word(r->ctx, s, n);
    const tok_step *st = &r->pipe->step[k];
    tok_pscratch *p = r->ps;
    size_t ns;
    int rc;
    switch (st->kind) {
    case TOK_STEP_SPLIT:
        if ((rc = regex_segments(p, k, st->re, s, n, &ns)))
            return rc;
        return each_piece(r, k, s, fold(p->sg[k], ns, st->opts & 0xff, (st->opts & TOK_SPLIT_INVERT) != 0));
    case TOK_STEP_BYTELEVEL:
        if ((st->opts & TOK_BL_PREFIX) && s[0] != ' ') {
            if (ensure_buf(p, k, n + 1))
                return LDB_ENOMEM;
            p->buf[k][0] = ' ';
            memcpy(p->buf[k] + 1, s, n);
            s = p->buf[k];
            n++;
        }
        if (!(st->opts & TOK_BL_REGEX))
            return step(r, k + 1, s, n);
        if ((rc = regex_segments(p, k, st->re, s, n, &ns)))
            return rc;
        return each_piece(r, k, s, ns);
    default:
        return metaspace(r, k, st, s, n);
    }
}

int ldb_tok_pretok(const ldb_tok *tk, tok_pscratch **ps, const uint8_t *s, size_t n, int section,
                   tok_word_fn word, void *ctx)
{
    if (!*ps && !(*ps = pscratch_new()))
        return LDB_ENOMEM;
    run r = {tk->pipe, *ps, section, word, ctx};
    return step(&r, 0, s, n);
}

int ldb_tok_normalize(uint32_t form, const uint8_t *s, size_t n, uint8_t **out, size_t *on)
{
    *out = NULL;
    *on = n;
    size_t i = 0;
    while (i < n && s[i] < 0x80)
        i++;
    if (i == n || form == TOK_NORM_NONE) /* ASCII is normal in every form */
        return LDB_OK;
    int opt = UTF8PROC_STABLE | (form == TOK_NORM_NFC || form == TOK_NORM_NFKC ? UTF8PROC_COMPOSE
                                                                               : UTF8PROC_DECOMPOSE) |
              (form == TOK_NORM_NFKC || form == TOK_NORM_NFKD ? UTF8PROC_COMPAT : 0);
    utf8proc_uint8_t *d = NULL;
    utf8proc_ssize_t len = utf8proc_map(s, (utf8proc_ssize_t)n, &d, (utf8proc_option_t)opt);
    if (len < 0) {
        free(d);
        return len == UTF8PROC_ERROR_NOMEM ? LDB_ENOMEM : LDB_EFORMAT;
    }
    *out = d;
    *on = (size_t)len;
    return LDB_OK;
}
