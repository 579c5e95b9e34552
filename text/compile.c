/* compile.c — tokenizer.json (with tokenizer_config.json beside it) to an LTK2 blob:
 * reads the model, has components.c read its normalizer, pre-tokenizer and decoder,
 * and fills the tables blob.c lays out. The merges are looked up in
 * batches (below). Compiling the same JSON always gives the same bytes
 * (tests/golden/ltk2.sha256 pins them). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "pipe.h"
#include "tok_impl.h"

#define MAX_JSON ((size_t)1 << 30)

typedef struct strref { const char *s; size_t n; } strref;

typedef struct compiler {
    const char *path;
    ldb_err *e;
    strref *piece;          /* n_vocab */
    uint32_t *phash;        /* n_vocab: each piece's hash, compared before its bytes */
    uint32_t n_vocab;
    uint32_t *vocab;        /* hash slots: id + 1 */
    uint32_t vocab_cap;
} compiler;

static uint32_t c_vocab_find(const compiler *c, const char *s, size_t n)
{
    uint32_t mask = c->vocab_cap - 1, h = tok_hash_bytes((const uint8_t *)s, n);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = c->vocab[i];
        if (!v)
            return LDB_TOK_NONE;
        if (c->phash[v - 1] == h && c->piece[v - 1].n == n && !memcmp(c->piece[v - 1].s, s, n))
            return v - 1;
    }
}

/* Adds s -> id; a later id for the same string replaces the earlier (as the
 * reference's maps do when added tokens follow the model's vocabulary). */
static void c_vocab_put(compiler *c, uint32_t id)
{
    const strref *p = &c->piece[id];
    uint32_t mask = c->vocab_cap - 1, h = tok_hash_bytes((const uint8_t *)p->s, p->n);
    c->phash[id] = h;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = c->vocab[i];
        if (!v || (c->phash[v - 1] == h && c->piece[v - 1].n == p->n &&
                   !memcmp(c->piece[v - 1].s, p->s, p->n))) {
            c->vocab[i] = id + 1;
            return;
        }
    }
}

/* ---- the JSON's options ----------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int jtrue(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int unsupported(compiler *c, const char *what, const cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    int rc = ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: unsupported %s %.200s (latentdb reads BPE "
                         "tokenizers of the Gemma/Llama family)", c->path, what, s ? s : "");
    free(s);
    return rc;
}

/* The model's type and BPE options, the normalizer, pre-tokenizer and decoder:
 * refused unless latentdb implements them; the flags they set in *flags. */
static int parse_options(compiler *c, const cJSON *root, uint32_t *flags, tok_pipe *pipe, int *ltk3)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = jstr(model, "type");
    if (!cJSON_IsObject(model) || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(model, "vocab")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(model, "merges")) ||
        (type && strcmp(type, "BPE")))
        return ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: model is %s; latentdb reads BPE models "
                           "(model.type \"BPE\" with vocab and merges)", c->path,
                           type ? type : "not a BPE model");
    const char *pre = jstr(model, "continuing_subword_prefix"), *suf = jstr(model, "end_of_word_suffix");
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if ((pre && *pre) || (suf && *suf) || (cJSON_IsNumber(drop) && drop->valuedouble > 0))
        return unsupported(c, "BPE option (subword prefix/suffix or dropout) in", model);
    *flags = 0;
    if (jtrue(model, "byte_fallback"))
        *flags |= LDB_TOK_BYTE_FALLBACK;
    if (jtrue(model, "fuse_unk"))
        *flags |= LDB_TOK_FUSE_UNK;
    if (jtrue(model, "ignore_merges"))
        *flags |= LDB_TOK_IGNORE_MERGES;
    uint32_t f = *flags;
    int rc = ldb_tok_components(c->path, root, &f, pipe, ltk3, c->e);
    *flags = f;
    return rc;
}

/* ---- the vocabulary --------------------------------------------------------- */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* The ids of the vocabulary and the added tokens: checks them, then gives each
 * its piece and enters it in the compiler's hash (an added token's piece replaces
 * the vocabulary's for the same id). */
static int read_vocab(compiler *c, const cJSON *vocab, const cJSON *added)
{
    double maxid = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= 1 << 24 ||
            it->valuedouble != (double)(uint32_t)it->valuedouble)
            return ldb_err_set(c->e, LDB_EFORMAT, "%s: vocab entry \"%.80s\" has no valid id",
                               c->path, it->string);
        if (it->valuedouble > maxid)
            maxid = it->valuedouble;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 1 << 24 ||
            !jstr(it, "content") || !*jstr(it, "content"))
            return ldb_err_set(c->e, LDB_EFORMAT, "%s: an added token has no valid id or content",
                               c->path);
        if (jtrue(it, "single_word") || jtrue(it, "lstrip") || jtrue(it, "rstrip"))
            return unsupported(c, "added token option (single_word/lstrip/rstrip) in", it);
        if (id->valuedouble > maxid)
            maxid = id->valuedouble;
    }
    if (maxid < 0)
        return ldb_err_set(c->e, LDB_EFORMAT, "%s: the vocabulary is empty", c->path);
    c->n_vocab = (uint32_t)maxid + 1;
    c->vocab_cap = pow2_at_least(2ull * c->n_vocab);
    c->piece = calloc(c->n_vocab, sizeof *c->piece);
    c->phash = calloc(c->n_vocab, sizeof *c->phash);
    c->vocab = calloc(c->vocab_cap, sizeof *c->vocab);
    if (!c->piece || !c->phash || !c->vocab)
        return ldb_err_set(c->e, LDB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(it, vocab) {
        uint32_t id = (uint32_t)it->valuedouble;
        c->piece[id] = (strref){it->string, strlen(it->string)};
        c_vocab_put(c, id);
    }
    cJSON_ArrayForEach(it, added) {
        uint32_t id = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
        const char *s = jstr(it, "content");
        c->piece[id] = (strref){s, strlen(s)};
        c_vocab_put(c, id);
    }
    return LDB_OK;
}

/* ---- the merges --------------------------------------------------------------
 * 515k merges make 1.5M vocabulary lookups, each a few random reads in tables of
 * several MB: one at a time, the compile waited on memory for most of its time.
 * They are done in batches instead: hash every string of the batch and prefetch its
 * slot, then look them all up, then prefetch and fill the merge table. They look up
 * the blob's own tables (tok_vocab_find_h), written before the merges. */

enum { MERGE_BATCH = 32 };

typedef struct merge_batch {
    const compiler *c;
    ldb_tok view;           /* the blob's vocabulary: vocab, vocab_cap, piece_off, pieces */
    uint32_t *mh;           /* the blob's merge table: (a, b, rank, merged) */
    uint32_t merge_cap;
    uint32_t rank;          /* of the batch's first merge */
    char *cat;              /* the batch's "a" + "b" strings */
    size_t cat_cap;
} merge_batch;

/* A merge as "a b" or [a, b]; 0 if it is neither. */
static int merge_sides(const cJSON *it, strref *a, strref *b)
{
    const char *sp = cJSON_IsString(it) ? strchr(it->valuestring, ' ') : NULL;
    if (sp) {
        *a = (strref){it->valuestring, (size_t)(sp - it->valuestring)};
        *b = (strref){sp + 1, strlen(sp + 1)};
        return 1;
    }
    const cJSON *x = cJSON_IsArray(it) ? it->child : NULL, *y = x ? x->next : NULL;
    if (!cJSON_IsString(x) || !cJSON_IsString(y) || y->next)
        return 0;
    *a = (strref){x->valuestring, strlen(x->valuestring)};
    *b = (strref){y->valuestring, strlen(y->valuestring)};
    return 1;
}

/* Looks up and enters merges [0, n) of the batch (q: a, b, a + b of each), ranks
 * m->rank on. */
static int merge_flush(merge_batch *m, const strref *q, uint32_t n)
{
    uint32_t h[3 * MERGE_BATCH], id[3 * MERGE_BATCH], at[MERGE_BATCH];
    uint32_t vmask = m->c->vocab_cap - 1, mmask = m->merge_cap - 1;
    for (uint32_t k = 0; k < 3 * n; k++) {
        h[k] = tok_hash_bytes((const uint8_t *)q[k].s, q[k].n);
        __builtin_prefetch(&m->view.vocab[h[k] & vmask]);
    }
    for (uint32_t j = 0; j < n; j++) {
        for (uint32_t k = 0; k < 3; k++)
            id[3 * j + k] = tok_vocab_find_h(&m->view, (const uint8_t *)q[3 * j + k].s,
                                             q[3 * j + k].n, h[3 * j + k]);
        const strref *a = &q[3 * j], *b = &q[3 * j + 1];
        if (id[3 * j] == LDB_TOK_NONE || id[3 * j + 1] == LDB_TOK_NONE ||
            id[3 * j + 2] == LDB_TOK_NONE)
            return ldb_err_set(m->c->e, LDB_EFORMAT, "%s: merge %u (\"%.*s\" + \"%.*s\") uses a "
                               "token that is not in the vocabulary", m->c->path, m->rank + j,
                               (int)(a->n < 40 ? a->n : 40), a->s, (int)(b->n < 40 ? b->n : 40), b->s);
        at[j] = tok_hash_pair(id[3 * j], id[3 * j + 1]) & mmask;
        __builtin_prefetch(m->mh + 4 * (size_t)at[j], 1);
    }
    for (uint32_t j = 0; j < n; j++) {
        uint32_t ia = id[3 * j], ib = id[3 * j + 1];
        for (uint32_t i = at[j];; i = (i + 1) & mmask) {
            uint32_t *s = m->mh + 4 * (size_t)i;
            if (s[0] == LDB_TOK_NONE || (s[0] == ia && s[1] == ib)) {
                s[0] = ia, s[1] = ib, s[2] = m->rank + j, s[3] = id[3 * j + 2];
                break;
            }
        }
    }
    m->rank += n;
    return LDB_OK;
}

/* merges: "a b" strings or [a, b] pairs; a later duplicate takes the later rank */
static int add_merges(merge_batch *m, const cJSON *merges)
{
    strref q[3 * MERGE_BATCH];
    const cJSON *it = merges->child;
    while (it) {
        uint32_t n = 0;
        size_t len = 0;
        for (; it && n < MERGE_BATCH; it = it->next, n++) {
            if (!merge_sides(it, &q[3 * n], &q[3 * n + 1]))
                break;
            len += q[3 * n].n + q[3 * n + 1].n;
        }
        if (n == 0) /* `it` is malformed, and every merge before it was entered */
            return ldb_err_set(m->c->e, LDB_EFORMAT, "%s: merge %u is neither \"a b\" nor [a, b]",
                               m->c->path, m->rank);
        if (len > m->cat_cap) {
            char *t = realloc(m->cat, 2 * len);
            if (!t)
                return ldb_err_set(m->c->e, LDB_ENOMEM, "out of memory");
            m->cat = t, m->cat_cap = 2 * len;
        }
        size_t o = 0;
        for (uint32_t j = 0; j < n; j++) { /* the merged piece: a then b */
            memcpy(m->cat + o, q[3 * j].s, q[3 * j].n);
            memcpy(m->cat + o + q[3 * j].n, q[3 * j + 1].s, q[3 * j + 1].n);
            q[3 * j + 2] = (strref){m->cat + o, q[3 * j].n + q[3 * j + 1].n};
            o += q[3 * j + 2].n;
        }
        int rc = merge_flush(m, q, n);
        if (rc)
            return rc;
    }
    return LDB_OK;
}

/* ---- the blob --------------------------------------------------------------- */

/* The id of a special token named in tokenizer_config.json (a string or an object
 * with "content"), or NONE. */
static uint32_t config_token(const compiler *c, const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    return s ? c_vocab_find(c, s, strlen(s)) : LDB_TOK_NONE;
}

/* The added tokens' table, and BOS/EOS/PAD in h: as tokenizer_config.json names
 * them, else the first special added token with a usual name. */
static void add_specials(const compiler *c, const cJSON *added, const cJSON *cfg, int unicode_norm, uint32_t *ad,
                         ldb_tok *h)
{
    int k = 0;
    const cJSON *it;
    uint32_t named[3] = {LDB_TOK_NONE, LDB_TOK_NONE, LDB_TOK_NONE}; /* <bos> <eos> <pad> */
    static const char *names[3][3] = {{"<bos>", "<s>", "<|begin_of_text|>"},
                                      {"<eos>", "</s>", "<|end_of_text|>"},
                                      {"<pad>", "<|pad|>", "[PAD]"}};
    cJSON_ArrayForEach(it, added) {
        uint32_t id = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
        int special = jtrue(it, "special");
        ad[2 * k] = id;
        ad[2 * k + 1] = (special ? LDB_TOK_A_SPECIAL : 0) |
                        (jtrue(it, "normalized") && (unicode_norm || (h->flags & (LDB_TOK_NORM_SPACE | LDB_TOK_NORM_PREPEND)))
                             ? LDB_TOK_A_NORMALIZED : 0);
        k++;
        const char *s = jstr(it, "content");
        for (int r = 0; special && r < 3; r++)
            for (int q = 0; q < 3; q++)
                if (!strcmp(s, names[r][q]) && named[r] == LDB_TOK_NONE)
                    named[r] = id;
    }
    uint32_t sp[3];
    for (int r = 0; r < 3; r++) {
        static const char *keys[3] = {"bos_token", "eos_token", "pad_token"};
        sp[r] = cfg ? config_token(c, cfg, keys[r]) : LDB_TOK_NONE;
        if (sp[r] == LDB_TOK_NONE)
            sp[r] = named[r];
    }
    h->bos = sp[0], h->eos = sp[1], h->pad = sp[2];
}

static int compile(compiler *c, const cJSON *root, const cJSON *cfg, ldb_tok *tk)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model"),
                *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"),
                *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    ldb_tok h = {0}; /* the header's fields */
    tok_pipe pipe;
    int rc, ltk3;
    if ((rc = parse_options(c, root, &h.flags, &pipe, &ltk3)) ||
        (rc = read_vocab(c, cJSON_GetObjectItemCaseSensitive(model, "vocab"), added)))
        return rc;
    h.n_vocab = c->n_vocab;
    h.vocab_cap = c->vocab_cap;
    h.n_merges = (uint32_t)cJSON_GetArraySize(merges);
    h.merge_cap = pow2_at_least(2ull * h.n_merges + 1);
    h.n_added = (uint32_t)cJSON_GetArraySize(added);
    uint64_t piece_bytes = 0;
    for (uint32_t i = 0; i < c->n_vocab; i++)
        piece_bytes += c->piece[i].n;
    ldb_tok_tables t;
    if ((rc = ldb_tok_blob_new(&t, &h, piece_bytes, ltk3 ? ldb_tok_pipe_size(&pipe) : 0, c->path, c->e)))
        return rc;
    if (ltk3)
        ldb_tok_pipe_write(&pipe, t.pipe);
    size_t at = 0;
    for (uint32_t i = 0; i < c->n_vocab; i++) {
        t.piece_off[i] = (uint32_t)at;
        if (c->piece[i].n) /* ids missing from the vocabulary have no piece */
            memcpy(t.pieces + at, c->piece[i].s, c->piece[i].n);
        at += c->piece[i].n;
    }
    t.piece_off[c->n_vocab] = (uint32_t)at;
    memcpy(t.vocab, c->vocab, 4ull * c->vocab_cap);
    merge_batch mb = {.c = c, .mh = t.merges, .merge_cap = h.merge_cap};
    mb.view.vocab_cap = c->vocab_cap;
    mb.view.vocab = t.vocab;
    mb.view.piece_off = t.piece_off;
    mb.view.pieces = t.pieces;
    rc = add_merges(&mb, merges);
    free(mb.cat);
    if (rc) {
        free(t.blob);
        return rc;
    }
    add_specials(c, added, cfg, ltk3 && pipe.norm, t.added, &h);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t.byte_id[b] = (h.flags & LDB_TOK_BYTE_FALLBACK) ? c_vocab_find(c, name, 6) : LDB_TOK_NONE;
    }
    const char *unk = jstr(model, "unk_token");
    h.unk = unk ? c_vocab_find(c, unk, strlen(unk)) : LDB_TOK_NONE;
    ldb_tok_blob_header(&t, &h);
    if ((rc = ldb_tok_open_blob(tk, t.blob, t.size, 0, c->path, c->e))) {
        free(t.blob);
        return rc;
    }
    tk->own = t.blob;
    return LDB_OK;
}

int ldb_tok_load_json(ldb_tok *tk, const char *path, ldb_err *e)
{
    memset(tk, 0, sizeof *tk);
    char *txt = NULL, *ctxt = NULL;
    size_t len, clen;
    int rc = ldb_file_read_all(path, MAX_JSON, &txt, &len, e);
    if (rc)
        return rc;
    cJSON *root = cJSON_ParseWithLength(txt, len), *cfg = NULL;
    if (!root) {
        free(txt);
        return ldb_err_set(e, LDB_EFORMAT, "%s: not valid JSON (near byte %ld)", path,
                           (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - txt : 0));
    }
    /* tokenizer_config.json beside it names BOS/EOS/PAD */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    char *cpath = dir ? ldb_path_join(dir, "tokenizer_config.json") : NULL;
    ldb_err ce;
    if (cpath && ldb_path_is_file(cpath) &&
        ldb_file_read_all(cpath, MAX_JSON, &ctxt, &clen, &ce) == LDB_OK)
        cfg = cJSON_ParseWithLength(ctxt, clen);
    compiler c = {.path = path, .e = e};
    rc = compile(&c, root, cfg, tk);
    free(c.piece);
    free(c.phash);
    free(c.vocab);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    free(txt);
    free(ctxt);
    free(dir);
    free(cpath);
    return rc;
}
