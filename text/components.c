/* components.c — a tokenizer.json's normalizer, pre-tokenizer and decoder read into the
 * blob's flags (the LTK2 pipeline of Gemma and Llama 2) or an LTK3 pipeline (pipe.h):
 * Unicode forms, Split by regex or string, ByteLevel, Metaspace, Sequences of them.
 * What latentdb does not implement is refused with a message naming the component. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int is_null(const cJSON *o)
{
    return !o || cJSON_IsNull(o);
}

/* a boolean option, def when absent */
static int jbool(const cJSON *o, const char *key, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

typedef struct comp {
    const char *path;
    ldb_err *e;
    uint32_t *flags;
    tok_pipe *pipe;
} comp;

/* `unsupported normalizer "Precompiled" ({...})` */
static int unsupported(comp *c, const char *what, const cJSON *o, const char *why)
{
    if (is_null(o))
        return ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: unsupported %s (none)%s%s", c->path, what,
                           why ? ": " : "", why ? why : "");
    char *s = cJSON_PrintUnformatted(o);
    const char *type = jstr(o, "type");
    int rc = ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: unsupported %s \"%s\"%s%s (%.200s)", c->path,
                         what, type ? type : "?", why ? ": " : "", why ? why : "", s ? s : "");
    free(s);
    return rc;
}

static int normalizer(comp *c, const cJSON *n)
{
    if (is_null(n))
        return LDB_OK;
    const char *type = jstr(n, "type");
    static const char *forms[] = {"NFC", "NFKC", "NFD", "NFKD"};
    for (int f = 0; type && f < 4; f++)
        if (!strcmp(type, forms[f])) {
            if (c->pipe->norm || (*c->flags & (LDB_TOK_NORM_SPACE | LDB_TOK_NORM_PREPEND)))
                return unsupported(c, "normalizer", n, "a Unicode form only as the first normalizer");
            c->pipe->norm = TOK_NORM_NFC + (uint32_t)f;
            return LDB_OK;
        }
    if (type && !strcmp(type, "Replace")) {
        const char *p = jstr(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String"), *to = jstr(n, "content");
        if (p && to && !strcmp(p, " ") && !strcmp(to, "\xe2\x96\x81")) {
            *c->flags |= LDB_TOK_NORM_SPACE;
            return LDB_OK;
        }
    } else if (type && !strcmp(type, "Prepend")) {
        const char *to = jstr(n, "prepend");
        if (to && !strcmp(to, "\xe2\x96\x81")) {
            if (*c->flags & LDB_TOK_NORM_SPACE) /* Prepend before Replace, as Llama 2 */
                return unsupported(c, "normalizer", n, "Prepend after Replace");
            *c->flags |= LDB_TOK_NORM_PREPEND;
            return LDB_OK;
        }
    } else if (type && !strcmp(type, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
            int rc = normalizer(c, it);
            if (rc)
                return rc;
        }
        return LDB_OK;
    }
    return unsupported(c, "normalizer", n, NULL);
}

static int add_step(comp *c, const cJSON *p, uint32_t kind, uint32_t opts, const char *s)
{
    if (c->pipe->n_steps == TOK_MAX_STEPS)
        return unsupported(c, "pre-tokenizer", p, "more than 8 steps");
    if (c->pipe->n_steps && c->pipe->step[c->pipe->n_steps - 1].kind == TOK_STEP_BYTELEVEL)
        return unsupported(c, "pre-tokenizer", p, "a step after ByteLevel");
    c->pipe->step[c->pipe->n_steps++] = (tok_step){kind, opts, s, (uint32_t)strlen(s), NULL};
    return LDB_OK;
}

static int split(comp *c, const cJSON *p)
{
    static const char *beh[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
    const char *str = jstr(pat, "String"), *re = jstr(pat, "Regex"), *b = jstr(p, "behavior");
    uint32_t opts = 5;
    for (uint32_t i = 0; b && i < 5; i++)
        if (!strcmp(b, beh[i]))
            opts = i;
    if (opts == 5 || (!str && !re) || (str && !*str))
        return unsupported(c, "pre-tokenizer", p, "behavior or pattern");
    if (jbool(p, "invert", 0))
        opts |= TOK_SPLIT_INVERT;
    if (str)
        opts |= TOK_SPLIT_LITERAL;
    const char *s = str ? str : re;
    void *code;
    char why[200];
    int rc = ldb_tok_regex_compile(s, strlen(s), str != NULL, &code, why, sizeof why);
    if (rc)
        return rc == LDB_ENOMEM ? ldb_err_set(c->e, rc, "out of memory")
                                : unsupported(c, "pre-tokenizer", p, why);
    ldb_tok_regex_free(code);
    return add_step(c, p, TOK_STEP_SPLIT, opts, s);
}

static int pretok(comp *c, const cJSON *p)
{
    const char *type = jstr(p, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) {
            int rc = pretok(c, it);
            if (rc)
                return rc;
        }
        return LDB_OK;
    }
    if (type && !strcmp(type, "Split"))
        return split(c, p);
    if (type && !strcmp(type, "ByteLevel")) /* the reference's defaults: prefix space, regex */
        return add_step(c, p, TOK_STEP_BYTELEVEL, (jbool(p, "add_prefix_space", 1) ? TOK_BL_PREFIX : 0) |
                                                     (jbool(p, "use_regex", 1) ? TOK_BL_REGEX : 0),
                        jbool(p, "use_regex", 1) ? TOK_GPT2_PATTERN : "");
    if (type && !strcmp(type, "Metaspace")) {
        const char *rep = jstr(p, "replacement"), *sch = jstr(p, "prepend_scheme");
        uint32_t opts = sch ? (!strcmp(sch, "always") ? TOK_MS_ALWAYS : !strcmp(sch, "first") ? TOK_MS_FIRST
                               : !strcmp(sch, "never") ? TOK_MS_NEVER : 0xff)
                            : (jbool(p, "add_prefix_space", 1) ? TOK_MS_ALWAYS : TOK_MS_NEVER);
        if (opts == 0xff || (rep && !*rep))
            return unsupported(c, "pre-tokenizer", p, "prepend_scheme or replacement");
        return add_step(c, p, TOK_STEP_METASPACE, opts | (jbool(p, "split", 1) ? TOK_MS_SPLIT : 0),
                        rep ? rep : "\xe2\x96\x81");
    }
    return unsupported(c, "pre-tokenizer", p, NULL);
}

/* the decoder: 1 = ByteLevel seen, 2 = another seen */
static int decoder(comp *c, const cJSON *d, int *seen)
{
    if (is_null(d))
        return LDB_OK;
    const char *type = jstr(d, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
            int rc = decoder(c, it, seen);
            if (rc)
                return rc;
        }
        return LDB_OK;
    }
    if (type && !strcmp(type, "ByteLevel")) {
        *seen |= 1;
        return LDB_OK;
    }
    *seen |= 2;
    /* Strip and Metaspace's leading-space strip are not applied: decoded text keeps it */
    if (type && (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse") || !strcmp(type, "Strip")))
        return LDB_OK;
    if (type && !strcmp(type, "Metaspace")) {
        const char *rep = jstr(d, "replacement");
        if (!rep || !strcmp(rep, "\xe2\x96\x81"))
            return LDB_OK;
    }
    if (type && !strcmp(type, "Replace")) {
        const char *p = jstr(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String"), *to = jstr(d, "content");
        if (p && to && !strcmp(p, "\xe2\x96\x81") && !strcmp(to, " "))
            return LDB_OK;
    }
    return unsupported(c, "decoder", d, NULL);
}

int ldb_tok_components(const char *path, const cJSON *root, uint32_t *flags, tok_pipe *pipe, int *ltk3,
                       ldb_err *e)
{
    comp c = {path, e, flags, pipe};
    memset(pipe, 0, sizeof *pipe);
    *ltk3 = 0;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    int rc = normalizer(&c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
    if (rc)
        return rc;
    const char *type = jstr(pt, "type"), *pat = jstr(cJSON_GetObjectItemCaseSensitive(pt, "pattern"), "String"),
               *beh = jstr(pt, "behavior");
    if (type && !strcmp(type, "Split") && pat && !strcmp(pat, " ") && beh &&
        !strcmp(beh, "MergedWithPrevious") && !jbool(pt, "invert", 0))
        *flags |= LDB_TOK_SPLIT_SPACE; /* Gemma's, in LTK2 */
    else if (!is_null(pt) && (rc = pretok(&c, pt)))
        return rc;
    int seen = 0;
    if ((rc = decoder(&c, dec, &seen)))
        return rc;
    int bl = pipe->n_steps && pipe->step[pipe->n_steps - 1].kind == TOK_STEP_BYTELEVEL;
    if ((seen & 1) && ((seen & 2) || !bl))
        return unsupported(&c, "decoder", dec, "ByteLevel needs a ByteLevel pre-tokenizer and no other decoder");
    if (bl && !(seen & 1))
        return unsupported(&c, "decoder", dec, "a ByteLevel pre-tokenizer needs the ByteLevel decoder");
    pipe->decoder = bl ? TOK_DEC_BYTELEVEL : TOK_DEC_PIECES;
    *ltk3 = pipe->norm || pipe->n_steps;
    return LDB_OK;
}
