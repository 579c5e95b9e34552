/* pipe.c — the LTK3 pipeline section (pipe.h): its bytes, written for the compiler and
 * checked when a blob opens; the Split patterns rewritten from the Oniguruma syntax
 * tokenizer.json states them in to PCRE2's and compiled (UTF, UCP, JIT); GPT-2's byte map.
 * The section keeps the patterns as the JSON states them, so the rewrite may improve
 * without changing a blob. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

#define HEAD_WORDS 4 /* n_steps, norm, decoder, 0 */

/* ---- the section's bytes -------------------------------------------------
 * u32 n_steps, norm, decoder, 0; n_steps x (kind, opts, str_off, str_len), str_off from the
 * start of the strings, which follow the steps; zero padding to 4 bytes. */

size_t ldb_tok_pipe_size(const tok_pipe *p)
{
    size_t n = 4 * (HEAD_WORDS + 4 * (size_t)p->n_steps);
    for (uint32_t i = 0; i < p->n_steps; i++)
        n += p->step[i].len;
    return (n + 3) & ~(size_t)3;
}

void ldb_tok_pipe_write(const tok_pipe *p, uint8_t *dst)
{
    uint32_t w[HEAD_WORDS + 4 * TOK_MAX_STEPS] = {p->n_steps, p->norm, p->decoder, 0}, at = 0;
    uint8_t *str = dst + 4 * (HEAD_WORDS + 4 * (size_t)p->n_steps);
    for (uint32_t i = 0; i < p->n_steps; i++) {
        const tok_step *s = &p->step[i];
        uint32_t *o = w + HEAD_WORDS + 4 * i;
        o[0] = s->kind, o[1] = s->opts, o[2] = at, o[3] = s->len;
        if (s->len)
            memcpy(str + at, s->str, s->len);
        at += s->len;
    }
    memcpy(dst, w, 4 * (HEAD_WORDS + 4 * (size_t)p->n_steps));
    memset(str + at, 0, ldb_tok_pipe_size(p) - (size_t)(str + at - dst));
}

/* ---- Oniguruma to PCRE2 ----------------------------------------------------
 * The escapes whose meaning differs: Oniguruma's \s is Unicode White_Space (PCRE2's adds
 * U+180E), \h a hex digit (PCRE2: horizontal space), \w a word character as the JS
 * reference defines it, \uHHHH a code point. Others pass through. */

#define WORD_IN "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}"

typedef struct sbuf { char *p; size_t n, cap; } sbuf;

static int put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = 2 * (b->n + n + 1);
        char *np = realloc(b->p, nc);
        if (!np)
            return -1;
        b->p = np, b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int puts_(sbuf *b, const char *s)
{
    return put(b, s, strlen(s));
}

/* The rewrite of escape c (after a backslash) in or out of a class; NULL: as written;
 * "" with *bad set: not expressible. */
static const char *rewrite(char c, int in_class, int *bad)
{
    switch (c) {
    case 's': return "\\p{White_Space}";
    case 'S': return "\\P{White_Space}";
    case 'd': return "\\p{Nd}";
    case 'D': return "\\P{Nd}";
    case 'h': return in_class ? "0-9A-Fa-f" : "[0-9A-Fa-f]";
    case 'w': return in_class ? WORD_IN : "[" WORD_IN "]";
    case 'H': case 'W':
        if (in_class)
            *bad = 1;
        return c == 'H' ? "[^0-9A-Fa-f]" : "[^" WORD_IN "]";
    case 'b':
        return in_class ? NULL : "(?:(?<![" WORD_IN "])(?=[" WORD_IN "])|(?<=[" WORD_IN "])(?![" WORD_IN "]))";
    case 'B':
        return in_class ? NULL : "(?:(?<![" WORD_IN "])(?![" WORD_IN "])|(?<=[" WORD_IN "])(?=[" WORD_IN "]))";
    default: return NULL;
    }
}

static int to_pcre2(const char *pat, size_t n, sbuf *out, char *why, size_t cap)
{
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char x = pat[++i];
            int bad = 0;
            const char *r = rewrite(x, in_class, &bad);
            if (bad) {
                snprintf(why, cap, "\\%c inside a character class", x);
                return LDB_EUNSUPPORTED;
            }
            if (x == 'u' && i + 4 < n) {
                char hx[16];
                snprintf(hx, sizeof hx, "\\x{%.4s}", pat + i + 1);
                if (puts_(out, hx))
                    return LDB_ENOMEM;
                i += 4;
                continue;
            }
            if (r ? puts_(out, r) : (put(out, "\\", 1) || put(out, &x, 1)))
                return LDB_ENOMEM;
            continue;
        }
        if (c == '[' && in_class && !(i + 1 < n && pat[i + 1] == ':')) {
            snprintf(why, cap, "a nested character class");
            return LDB_EUNSUPPORTED;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            if (put(out, &c, 1))
                return LDB_ENOMEM;
            /* "[]" and "[^]" take a literal ] first */
            if (i + 1 < n && pat[i + 1] == '^' && put(out, &pat[++i], 1))
                return LDB_ENOMEM;
            if (i + 1 < n && pat[i + 1] == ']' && put(out, &pat[++i], 1))
                return LDB_ENOMEM;
            continue;
        }
        if (c == '[' && in_class) { /* a POSIX class [:alpha:] */
            const char *end = memchr(pat + i, ']', n - i);
            if (!end)
                break;
            if (put(out, pat + i, (size_t)(end - (pat + i)) + 1))
                return LDB_ENOMEM;
            i = (size_t)(end - pat);
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        if (put(out, &c, 1))
            return LDB_ENOMEM;
    }
    return LDB_OK;
}

int ldb_tok_regex_compile(const char *pat, size_t n, int literal, void **re, char *why, size_t cap)
{
    sbuf b = {0};
    *re = NULL;
    int rc = literal ? (put(&b, pat, n) ? LDB_ENOMEM : LDB_OK) : to_pcre2(pat, n, &b, why, cap);
    if (rc) {
        free(b.p);
        if (rc == LDB_ENOMEM)
            snprintf(why, cap, "out of memory");
        return rc;
    }
    int err;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)(b.p ? b.p : ""), b.n,
                                  PCRE2_UTF | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : PCRE2_UCP),
                                  &err, &off, NULL);
    free(b.p);
    if (!c) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        snprintf(why, cap, "PCRE2: %s", (const char *)msg);
        return err == PCRE2_ERROR_NOMEMORY ? LDB_ENOMEM : LDB_EUNSUPPORTED;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* without JIT (no memory, no JIT here) it interprets */
    *re = c;
    return LDB_OK;
}

void ldb_tok_regex_free(void *re)
{
    pcre2_code_free(re);
}

/* ---- opening ------------------------------------------------------------ */

void ldb_tok_pipe_free(tok_pipe *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n_steps; i++)
        pcre2_code_free(p->step[i].re);
    free(p);
}

static int bad(ldb_err *e, const char *name, const char *what)
{
    return ldb_err_set(e, LDB_EFORMAT, "%s: tokenizer tables are corrupt (pipeline: %s)", name, what);
}

int ldb_tok_pipe_open(ldb_tok *tk, const uint8_t *sec, size_t n, const char *name, ldb_err *e)
{
    uint32_t w[HEAD_WORDS + 4 * TOK_MAX_STEPS];
    if (n < 4 * HEAD_WORDS)
        return bad(e, name, "size");
    memcpy(w, sec, 4 * HEAD_WORDS);
    if (w[0] > TOK_MAX_STEPS || w[1] > TOK_NORM_NFKD || w[2] > TOK_DEC_BYTELEVEL || w[3] ||
        n < 4 * (HEAD_WORDS + 4 * (size_t)w[0]))
        return bad(e, name, "header");
    memcpy(w, sec, 4 * (HEAD_WORDS + 4 * (size_t)w[0]));
    tok_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    p->n_steps = w[0], p->norm = w[1], p->decoder = w[2];
    const char *str = (const char *)sec + 4 * (HEAD_WORDS + 4 * (size_t)w[0]);
    size_t nstr = n - 4 * (HEAD_WORDS + 4 * (size_t)w[0]);
    int rc = LDB_OK;
    for (uint32_t i = 0; i < p->n_steps && !rc; i++) {
        const uint32_t *s = w + HEAD_WORDS + 4 * i;
        tok_step *st = &p->step[i];
        st->kind = s[0], st->opts = s[1], st->len = s[3];
        if ((uint64_t)s[2] + s[3] > nstr) {
            rc = bad(e, name, "string bounds");
            break;
        }
        st->str = str + s[2];
        int is_re = st->kind == TOK_STEP_SPLIT || (st->kind == TOK_STEP_BYTELEVEL && (st->opts & TOK_BL_REGEX));
        if ((st->kind == TOK_STEP_SPLIT && ((st->opts & 0xff) > TOK_CONTIGUOUS || st->opts >> 10)) ||
            (st->kind == TOK_STEP_BYTELEVEL && (st->opts > 3 || i + 1 != p->n_steps)) ||
            (st->kind == TOK_STEP_METASPACE && ((st->opts & 0xff) > TOK_MS_FIRST || st->opts >> 9 || !st->len)) ||
            st->kind < TOK_STEP_SPLIT || st->kind > TOK_STEP_METASPACE) {
            rc = bad(e, name, "step");
            break;
        }
        char why[200];
        if (is_re && (rc = ldb_tok_regex_compile(st->str, st->len, (st->opts & TOK_SPLIT_LITERAL) != 0,
                                                 &st->re, why, sizeof why)))
            rc = ldb_err_set(e, rc, "%s: pre-tokenizer pattern %.*s: %s", name,
                             (int)(st->len < 200 ? st->len : 200), st->str, why);
    }
    if (rc) {
        ldb_tok_pipe_free(p);
        return rc;
    }
    tk->pipe = p;
    tk->bytelevel = p->n_steps && p->step[p->n_steps - 1].kind == TOK_STEP_BYTELEVEL;
    if (tk->bytelevel != (p->decoder == TOK_DEC_BYTELEVEL))
        return bad(e, name, "ByteLevel pre-tokenizer without its decoder");
    return LDB_OK;
}

/* ---- GPT-2's byte map ----------------------------------------------------- */

void ldb_tok_bytelevel_map(uint8_t map[256][2], uint8_t len[256])
{
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        uint32_t cp = printable ? b : next++;
        if (cp < 0x80) {
            map[b][0] = (uint8_t)cp, len[b] = 1;
        } else {
            map[b][0] = (uint8_t)(0xc0 | cp >> 6), map[b][1] = (uint8_t)(0x80 | (cp & 0x3f));
            len[b] = 2;
        }
    }
}
