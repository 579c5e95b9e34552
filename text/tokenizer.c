/* tokenizer.c — compiles a tokenizer.json to the blob of tokenizer.h and encodes /
 * decodes through it. See tokenizer.h for the semantics and docs/FORMAT.md for the
 * blob. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/utf8.h"

#define TOK_IGNORE_MERGES 32u
#define HDR_WORDS 20
#define MAX_JSON ((size_t)1 << 30)

/* ---- hashing ------------------------------------------------------------ */

static uint64_t hash64_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64, then a murmur3 finalizer */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    return (uint32_t)hash64_bytes(p, n);
}

static uint32_t hash_pair(uint32_t a, uint32_t b)
{
    uint64_t x = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

/* The id of piece s (its hash h), or LDB_TOK_NONE. */
static uint32_t vocab_find_h(const ldb_tok *tk, const uint8_t *s, size_t n, uint32_t h)
{
    uint32_t mask = tk->vocab_cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = tk->vocab[i];
        if (!v)
            return LDB_TOK_NONE;
        uint32_t id = v - 1, a = tk->piece_off[id], b = tk->piece_off[id + 1];
        if (b - a == n && !memcmp(tk->pieces + a, s, n))
            return id;
    }
}

static uint32_t vocab_find(const ldb_tok *tk, const uint8_t *s, size_t n)
{
    return vocab_find_h(tk, s, n, hash_bytes(s, n));
}

/* The merge of (a, b): its rank, and the merged id in *m; LDB_TOK_NONE if none. */
static inline uint32_t merge_find(const ldb_tok *tk, uint32_t a, uint32_t b, uint32_t *m)
{
    uint32_t mask = tk->merge_cap - 1;
    for (uint32_t i = hash_pair(a, b) & mask;; i = (i + 1) & mask) {
        const uint32_t *s = tk->merges + 4 * (size_t)i;
        if (s[0] == LDB_TOK_NONE)
            return LDB_TOK_NONE;
        if (s[0] == a && s[1] == b) {
            *m = s[3];
            return s[2];
        }
    }
}

/* ---- added-token trie --------------------------------------------------- */

typedef struct tnode {
    uint32_t child, sibling; /* node indices, 0 = none */
    uint32_t id;             /* token ending here, or NONE */
    uint8_t byte;
} tnode;

struct tok_trie {
    tnode *n;
    uint32_t len, cap;
    uint32_t root[256];      /* child of the root per first byte, 0 = none */
};

static uint32_t trie_new(struct tok_trie *t, uint8_t byte)
{
    if (t->len == t->cap) {
        uint32_t nc = t->cap ? 2 * t->cap : 256;
        tnode *nn = realloc(t->n, nc * sizeof *nn);
        if (!nn)
            return 0;
        t->n = nn;
        t->cap = nc;
    }
    t->n[t->len] = (tnode){0, 0, LDB_TOK_NONE, byte};
    return t->len++;
}

static int trie_add(struct tok_trie *t, const uint8_t *s, size_t n, uint32_t id)
{
    if (!n)
        return LDB_OK;
    if (!t->len) { /* node 0 stands for "none" */
        if (!(t->n = malloc(256 * sizeof *t->n)))
            return LDB_ENOMEM;
        t->cap = 256;
        t->n[0] = (tnode){0, 0, LDB_TOK_NONE, 0};
        t->len = 1;
    }
    uint32_t cur = t->root[s[0]];
    if (!cur) {
        if (!(cur = trie_new(t, s[0])))
            return LDB_ENOMEM;
        t->root[s[0]] = cur;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t c = t->n[cur].child;
        while (c && t->n[c].byte != s[i])
            c = t->n[c].sibling;
        if (!c) {
            if (!(c = trie_new(t, s[i])))
                return LDB_ENOMEM;
            t->n[c].sibling = t->n[cur].child;
            t->n[cur].child = c;
        }
        cur = c;
    }
    if (t->n[cur].id == LDB_TOK_NONE) /* the first of equal contents wins */
        t->n[cur].id = id;
    return LDB_OK;
}

/* The longest added token starting at p: its id and length, or 0. */
static size_t trie_match(const struct tok_trie *t, const uint8_t *p, size_t n, uint32_t *id)
{
    uint32_t cur = t->root[p[0]];
    size_t best = 0;
    for (size_t i = 1; cur; i++) {
        if (t->n[cur].id != LDB_TOK_NONE) {
            best = i;
            *id = t->n[cur].id;
        }
        if (i == n)
            break;
        uint32_t c = t->n[cur].child;
        while (c && t->n[c].byte != p[i])
            c = t->n[c].sibling;
        cur = c;
    }
    return best;
}

static void trie_free(struct tok_trie *t)
{
    if (t) {
        free(t->n);
        free(t);
    }
}

/* ---- opening a blob ----------------------------------------------------- */

static int bad_blob(ldb_err *e, const char *name, const char *what)
{
    return ldb_err_set(e, LDB_EFORMAT, "%s: tokenizer tables are corrupt (%s)", name, what);
}

int ldb_tok_open_blob(ldb_tok *tk, const void *blob, size_t size, int copy, const char *name,
                      ldb_err *e)
{
    memset(tk, 0, sizeof *tk);
    if (!(tk->name = strdup(name ? name : "tokenizer")))
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    if (copy) {
        if (!(tk->own = malloc(size ? size : 1))) {
            ldb_tok_close(tk);
            return ldb_err_set(e, LDB_ENOMEM, "out of memory");
        }
        memcpy(tk->own, blob, size);
        blob = tk->own;
    }
    tk->blob = blob;
    tk->size = size;
    const uint32_t *h = blob;
    if (size >= 4 && !((uintptr_t)blob & 3) && (h[0] & 0x00ffffffu) == (LDB_TOK_MAGIC & 0x00ffffffu) &&
        h[0] != LDB_TOK_MAGIC) {
        char v = (char)(h[0] >> 24);
        ldb_tok_close(tk);
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: tokenizer tables of format LTK%c; this "
                           "latentdb reads LTK%c (make the database again with init --tokenizer)",
                           name, v, (char)(LDB_TOK_MAGIC >> 24));
    }
    if (size < HDR_WORDS * 4 || ((uintptr_t)blob & 3) || h[0] != LDB_TOK_MAGIC) {
        ldb_tok_close(tk);
        return bad_blob(e, name, "header");
    }
    tk->n_vocab = h[2], tk->n_merges = h[3], tk->flags = h[4], tk->unk = h[5], tk->bos = h[6];
    tk->eos = h[7], tk->pad = h[8], tk->vocab_cap = h[9], tk->merge_cap = h[10], tk->n_added = h[11];
    uint64_t o_off = h[12], o_pieces = h[13], o_vocab = h[14], o_merge = h[15], o_added = h[16],
             o_byte = h[17], total = h[18];
    const char *why = NULL;
    if (total != size || h[1] != HDR_WORDS)
        why = "size";
    else if (!tk->vocab_cap || (tk->vocab_cap & (tk->vocab_cap - 1)) || tk->vocab_cap < tk->n_vocab ||
             !tk->merge_cap || (tk->merge_cap & (tk->merge_cap - 1)) || tk->merge_cap <= tk->n_merges)
        why = "hash sizes";
    else if (o_off % 4 || o_vocab % 4 || o_merge % 4 || o_added % 4 || o_byte % 4 ||
             o_off + 4ull * (tk->n_vocab + 1) > size || o_vocab + 4ull * tk->vocab_cap > size ||
             o_merge + 16ull * tk->merge_cap > size || o_added + 8ull * tk->n_added > size ||
             o_byte + 4ull * 256 > size || o_pieces > size)
        why = "table bounds";
    if (!why) {
        tk->piece_off = (const uint32_t *)(tk->blob + o_off);
        tk->pieces = tk->blob + o_pieces;
        tk->vocab = (const uint32_t *)(tk->blob + o_vocab);
        tk->merges = (const uint32_t *)(tk->blob + o_merge);
        tk->added = (const uint32_t *)(tk->blob + o_added);
        tk->byte_id = (const uint32_t *)(tk->blob + o_byte);
        if (tk->piece_off[0] != 0 || o_pieces + tk->piece_off[tk->n_vocab] > size)
            why = "pieces";
        for (uint32_t i = 0; !why && i < tk->n_vocab; i++)
            if (tk->piece_off[i + 1] < tk->piece_off[i])
                why = "piece offsets";
        /* every probe of a hash ends at an empty slot: a table with none would
         * loop forever, so one is required */
        uint32_t empty = 0;
        for (uint32_t i = 0; !why && i < tk->vocab_cap; i++) {
            if (tk->vocab[i] > tk->n_vocab)
                why = "vocabulary hash";
            empty += !tk->vocab[i];
        }
        if (!why && !empty)
            why = "vocabulary hash (full)";
        empty = 0;
        for (uint32_t i = 0; !why && i < tk->merge_cap; i++) {
            const uint32_t *s = tk->merges + 4 * (size_t)i;
            if (s[0] != LDB_TOK_NONE && (s[0] >= tk->n_vocab || s[1] >= tk->n_vocab ||
                                         s[3] >= tk->n_vocab))
                why = "merge hash";
            empty += s[0] == LDB_TOK_NONE;
        }
        if (!why && !empty)
            why = "merge hash (full)";
        for (uint32_t i = 0; !why && i < 256; i++)
            if (tk->byte_id[i] != LDB_TOK_NONE && tk->byte_id[i] >= tk->n_vocab)
                why = "byte ids";
        for (uint32_t i = 0; !why && i < tk->n_added; i++)
            if (tk->added[2 * i] >= tk->n_vocab)
                why = "added tokens";
        uint32_t sp[4] = {tk->unk, tk->bos, tk->eos, tk->pad};
        for (int i = 0; !why && i < 4; i++)
            if (sp[i] != LDB_TOK_NONE && sp[i] >= tk->n_vocab)
                why = "special ids";
    }
    if (why) {
        ldb_tok_close(tk);
        return bad_blob(e, name, why);
    }
    for (int k = 0; k < 2; k++)
        if (!(tk->trie[k] = calloc(1, sizeof *tk->trie[k]))) {
            ldb_tok_close(tk);
            return ldb_err_set(e, LDB_ENOMEM, "out of memory");
        }
    for (uint32_t i = 0; i < tk->n_added; i++) {
        uint32_t id = tk->added[2 * i], fl = tk->added[2 * i + 1];
        size_t len;
        const uint8_t *p = ldb_tok_piece(tk, id, &len);
        if (trie_add(tk->trie[(fl & LDB_TOK_A_NORMALIZED) ? 1 : 0], p, len, id)) {
            ldb_tok_close(tk);
            return ldb_err_set(e, LDB_ENOMEM, "out of memory");
        }
    }
    for (int c = 0; c < 128; c++) {
        uint8_t b = (uint8_t)c;
        tk->ascii[c] = vocab_find(tk, &b, 1);
    }
    /* the hash must be the one these tables were built with: spot-check pieces */
    for (uint32_t id = 0, seen = 0; id < tk->n_vocab && seen < 256; id += 1 + tk->n_vocab / 512) {
        size_t len;
        const uint8_t *p = ldb_tok_piece(tk, id, &len);
        if (!len)
            continue;
        seen++;
        uint32_t got = vocab_find(tk, p, len);
        size_t gl;
        const uint8_t *gp = got == LDB_TOK_NONE ? NULL : ldb_tok_piece(tk, got, &gl);
        if (!gp || gl != len || memcmp(gp, p, len)) {
            ldb_tok_close(tk);
            return bad_blob(e, name, "the vocabulary hash does not find its pieces");
        }
    }
    return LDB_OK;
}

void ldb_tok_close(ldb_tok *tk)
{
    if (!tk)
        return;
    trie_free(tk->trie[0]);
    trie_free(tk->trie[1]);
    free(tk->own);
    free(tk->name);
    memset(tk, 0, sizeof *tk);
}

const uint8_t *ldb_tok_piece(const ldb_tok *tk, uint32_t id, size_t *len)
{
    if (id >= tk->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = tk->piece_off[id + 1] - tk->piece_off[id];
    return tk->pieces + tk->piece_off[id];
}

/* ---- compiling tokenizer.json ------------------------------------------- */

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
    uint32_t mask = c->vocab_cap - 1, h = hash_bytes((const uint8_t *)s, n);
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
    uint32_t mask = c->vocab_cap - 1, h = hash_bytes((const uint8_t *)p->s, p->n);
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

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int is_null(const cJSON *o)
{
    return !o || cJSON_IsNull(o);
}

/* "pattern": {"String": s} */
static const char *pattern_string(const cJSON *o)
{
    return jstr(cJSON_GetObjectItemCaseSensitive(o, "pattern"), "String");
}

static int unsupported(compiler *c, const char *what, const cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    int rc = ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: unsupported %s %.200s (latentdb reads BPE "
                         "tokenizers of the Gemma/Llama family)", c->path, what, s ? s : "");
    free(s);
    return rc;
}

static int parse_normalizer(compiler *c, const cJSON *n, uint32_t *flags)
{
    if (is_null(n))
        return LDB_OK;
    const char *type = jstr(n, "type");
    if (type && !strcmp(type, "Replace")) {
        const char *p = pattern_string(n), *to = jstr(n, "content");
        if (p && to && !strcmp(p, " ") && !strcmp(to, "\xe2\x96\x81")) {
            *flags |= LDB_TOK_NORM_SPACE;
            return LDB_OK;
        }
    } else if (type && !strcmp(type, "Prepend")) {
        const char *to = jstr(n, "prepend");
        if (to && !strcmp(to, "\xe2\x96\x81")) {
            *flags |= LDB_TOK_NORM_PREPEND;
            return LDB_OK;
        }
    } else if (type && !strcmp(type, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
            /* Prepend must come before Replace (the order Llama 2 uses) */
            if ((*flags & LDB_TOK_NORM_SPACE) && !strcmp(jstr(it, "type") ? jstr(it, "type") : "", "Prepend"))
                return unsupported(c, "normalizer order", n);
            int rc = parse_normalizer(c, it, flags);
            if (rc)
                return rc;
        }
        return LDB_OK;
    }
    return unsupported(c, "normalizer", n);
}

static int parse_pretok(compiler *c, const cJSON *p, uint32_t *flags)
{
    if (is_null(p))
        return LDB_OK;
    const char *type = jstr(p, "type"), *pat = pattern_string(p), *beh = jstr(p, "behavior");
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(p, "invert");
    if (type && !strcmp(type, "Split") && pat && !strcmp(pat, " ") && beh &&
        !strcmp(beh, "MergedWithPrevious") && !cJSON_IsTrue(inv)) {
        *flags |= LDB_TOK_SPLIT_SPACE;
        return LDB_OK;
    }
    return unsupported(c, "pre-tokenizer", p);
}

static int check_decoder(compiler *c, const cJSON *d)
{
    if (is_null(d))
        return LDB_OK;
    const char *type = jstr(d, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
            int rc = check_decoder(c, it);
            if (rc)
                return rc;
        }
        return LDB_OK;
    }
    if (type && (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse") || !strcmp(type, "Strip")))
        return LDB_OK;
    if (type && !strcmp(type, "Replace")) {
        const char *p = pattern_string(d), *to = jstr(d, "content");
        if (p && to && !strcmp(p, "\xe2\x96\x81") && !strcmp(to, " "))
            return LDB_OK;
    }
    return unsupported(c, "decoder", d);
}

/* The id of a special token named in tokenizer_config.json (a string or an object
 * with "content"), or NONE. */
static uint32_t config_token(const compiler *c, const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    return s ? c_vocab_find(c, s, strlen(s)) : LDB_TOK_NONE;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* ---- compiling the merges ---------------------------------------------------
 * 515k merges make 1.5M vocabulary lookups, each a few random reads in tables of
 * several MB: one at a time, the compile waited on memory for most of its time.
 * They are done in batches instead: hash every string of the batch and prefetch its
 * slot, then look them all up, then prefetch and fill the merge table. They look up
 * the blob's own tables (vocab_find_h), written before the merges. */

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

/* Looks up and enters merges [0, n) of the batch, ranks m->rank on. */
static int merge_flush(merge_batch *m, const strref *q, uint32_t n)
{
    uint32_t h[3 * MERGE_BATCH], id[3 * MERGE_BATCH], at[MERGE_BATCH];
    uint32_t vmask = m->c->vocab_cap - 1, mmask = m->merge_cap - 1;
    for (uint32_t k = 0; k < 3 * n; k++) {
        h[k] = hash_bytes((const uint8_t *)q[k].s, q[k].n);
        __builtin_prefetch(&m->view.vocab[h[k] & vmask]);
    }
    for (uint32_t j = 0; j < n; j++) {
        for (uint32_t k = 0; k < 3; k++)
            id[3 * j + k] = vocab_find_h(&m->view, (const uint8_t *)q[3 * j + k].s,
                                         q[3 * j + k].n, h[3 * j + k]);
        const strref *a = &q[3 * j], *b = &q[3 * j + 1];
        if (id[3 * j] == LDB_TOK_NONE || id[3 * j + 1] == LDB_TOK_NONE ||
            id[3 * j + 2] == LDB_TOK_NONE)
            return ldb_err_set(m->c->e, LDB_EFORMAT, "%s: merge %u (\"%.*s\" + \"%.*s\") uses a "
                               "token that is not in the vocabulary", m->c->path, m->rank + j,
                               (int)(a->n < 40 ? a->n : 40), a->s, (int)(b->n < 40 ? b->n : 40), b->s);
        at[j] = hash_pair(id[3 * j], id[3 * j + 1]) & mmask;
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

static int compile(compiler *c, const cJSON *root, const cJSON *cfg, ldb_tok *tk)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = jstr(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"),
                *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"),
                *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(model) || !cJSON_IsObject(vocab) || !cJSON_IsArray(merges) ||
        (type && strcmp(type, "BPE")))
        return ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: model is %s; latentdb reads BPE models "
                           "(model.type \"BPE\" with vocab and merges)", c->path,
                           type ? type : "not a BPE model");
    const char *pre = jstr(model, "continuing_subword_prefix"), *suf = jstr(model, "end_of_word_suffix");
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if ((pre && *pre) || (suf && *suf) || (cJSON_IsNumber(drop) && drop->valuedouble > 0))
        return unsupported(c, "BPE option (subword prefix/suffix or dropout) in", model);
    uint32_t flags = 0;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        flags |= LDB_TOK_BYTE_FALLBACK;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "fuse_unk")))
        flags |= LDB_TOK_FUSE_UNK;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges")))
        flags |= TOK_IGNORE_MERGES;
    int rc;
    if ((rc = parse_normalizer(c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &flags)) ||
        (rc = parse_pretok(c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &flags)) ||
        (rc = check_decoder(c, cJSON_GetObjectItemCaseSensitive(root, "decoder"))))
        return rc;

    /* ids: the vocabulary's and the added tokens' */
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
    int n_added = cJSON_GetArraySize(added);
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 1 << 24 ||
            !jstr(it, "content") || !*jstr(it, "content"))
            return ldb_err_set(c->e, LDB_EFORMAT, "%s: an added token has no valid id or content",
                               c->path);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "single_word")) ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "lstrip")) ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "rstrip")))
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

    /* merges: "a b" strings or [a, b] pairs; a later duplicate takes the later rank */
    uint32_t n_merges = (uint32_t)cJSON_GetArraySize(merges);
    uint32_t merge_cap = pow2_at_least(2ull * n_merges + 1);
    size_t piece_bytes = 0;
    for (uint32_t i = 0; i < c->n_vocab; i++)
        piece_bytes += c->piece[i].n;
    uint32_t o_off = HDR_WORDS * 4, o_pieces = o_off + 4 * (c->n_vocab + 1);
    uint64_t o_vocab = (o_pieces + piece_bytes + 3) & ~3ull, o_merge = o_vocab + 4ull * c->vocab_cap,
             o_added = o_merge + 16ull * merge_cap, o_byte = o_added + 8ull * (uint32_t)n_added,
             total = o_byte + 4 * 256;
    if (total > UINT32_MAX)
        return ldb_err_set(c->e, LDB_EUNSUPPORTED, "%s: tokenizer too large (%llu bytes compiled)",
                           c->path, (unsigned long long)total);
    uint8_t *blob = calloc(1, total);
    if (!blob)
        return ldb_err_set(c->e, LDB_ENOMEM, "out of memory");
    uint32_t *h = (uint32_t *)blob, *poff = (uint32_t *)(blob + o_off),
             *mh = (uint32_t *)(blob + o_merge), *ad = (uint32_t *)(blob + o_added),
             *bid = (uint32_t *)(blob + o_byte);
    memset(mh, 0xff, 16ull * merge_cap);
    size_t at = 0;
    for (uint32_t i = 0; i < c->n_vocab; i++) {
        poff[i] = (uint32_t)at;
        if (c->piece[i].n) /* ids missing from the vocabulary have no piece */
            memcpy(blob + o_pieces + at, c->piece[i].s, c->piece[i].n);
        at += c->piece[i].n;
    }
    poff[c->n_vocab] = (uint32_t)at;
    memcpy(blob + o_vocab, c->vocab, 4ull * c->vocab_cap);
    merge_batch mb = {.c = c, .mh = mh, .merge_cap = merge_cap};
    mb.view.vocab_cap = c->vocab_cap;
    mb.view.vocab = (const uint32_t *)(blob + o_vocab);
    mb.view.piece_off = poff;
    mb.view.pieces = blob + o_pieces;
    rc = add_merges(&mb, merges);
    free(mb.cat);
    if (rc) {
        free(blob);
        return rc;
    }
    int k = 0;
    uint32_t named[3] = {LDB_TOK_NONE, LDB_TOK_NONE, LDB_TOK_NONE}; /* <bos> <eos> <pad> */
    static const char *names[3][3] = {{"<bos>", "<s>", "<|begin_of_text|>"},
                                      {"<eos>", "</s>", "<|end_of_text|>"},
                                      {"<pad>", "<|pad|>", "[PAD]"}};
    cJSON_ArrayForEach(it, added) {
        uint32_t id = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
        int special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
        ad[2 * k] = id;
        ad[2 * k + 1] = (special ? LDB_TOK_A_SPECIAL : 0) |
                        (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "normalized")) &&
                                 (flags & (LDB_TOK_NORM_SPACE | LDB_TOK_NORM_PREPEND))
                             ? LDB_TOK_A_NORMALIZED : 0);
        k++;
        const char *s = jstr(it, "content");
        for (int r = 0; special && r < 3; r++)
            for (int q = 0; q < 3; q++)
                if (!strcmp(s, names[r][q]) && named[r] == LDB_TOK_NONE)
                    named[r] = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        bid[b] = (flags & LDB_TOK_BYTE_FALLBACK) ? c_vocab_find(c, name, 6) : LDB_TOK_NONE;
    }
    const char *unk = jstr(model, "unk_token");
    uint32_t sp[3];
    for (int r = 0; r < 3; r++) {
        static const char *keys[3] = {"bos_token", "eos_token", "pad_token"};
        sp[r] = cfg ? config_token(c, cfg, keys[r]) : LDB_TOK_NONE;
        if (sp[r] == LDB_TOK_NONE)
            sp[r] = named[r];
    }
    uint32_t hdr[HDR_WORDS] = {
        LDB_TOK_MAGIC, HDR_WORDS, c->n_vocab, n_merges, flags,
        unk ? c_vocab_find(c, unk, strlen(unk)) : LDB_TOK_NONE, sp[0], sp[1], sp[2],
        c->vocab_cap, merge_cap, (uint32_t)n_added, o_off, o_pieces, (uint32_t)o_vocab,
        (uint32_t)o_merge, (uint32_t)o_added, (uint32_t)o_byte, (uint32_t)total, 0};
    memcpy(h, hdr, sizeof hdr);
    rc = ldb_tok_open_blob(tk, blob, total, 0, c->path, c->e);
    if (rc) {
        free(blob);
        return rc;
    }
    tk->own = blob;
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

/* ---- encoding ----------------------------------------------------------- */

typedef struct idvec { uint32_t *v; size_t n, cap; } idvec;

static int push(idvec *o, uint32_t id)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? 2 * o->cap : 256;
        uint32_t *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv)
            return LDB_ENOMEM;
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = id;
    return LDB_OK;
}

/* A direct-mapped cache of merge lookups: the merge table is ~16 MB of random
 * accesses, while text repeats a few thousand pairs (a third of encoding time was
 * merge-table cache misses). */
#define PAIR_CACHE 8192
typedef struct pcache { uint64_t key; uint32_t rank, merged; } pcache;

/* A cache of whole words: a word's ids depend on its bytes alone, and text repeats
 * words (BPE of each word was 70% of encoding). Open addressing over WC_SLOTS slots;
 * an entry's word bytes and ids sit in an arena. Emptied when half full. */
#define WC_SLOTS 32768
#define WC_MAXW 64                 /* longer words are not cached */
#define WC_MAXIDS 32
#define WC_ARENA ((size_t)WC_SLOTS / 2 * (WC_MAXW + 4 * WC_MAXIDS))
typedef struct wslot { uint64_t h; uint32_t off; uint8_t wlen, nid; } wslot; /* h 0 = empty */
#define MAX_JOIN 64

static size_t utf8_len_of(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Scratch for BPE: symbols of one word, the merge heap, the pair cache, the word
 * cache. Kept by the tokenizer handle between encodes (struct ldb_tok_scratch). */
struct ldb_tok_scratch {
    uint32_t *id, *start, *len;
    int32_t *prev, *next;
    size_t cap;
    uint64_t *heap;
    size_t hn, hcap;
    pcache *pc;                /* PAIR_CACHE entries; key UINT64_MAX = empty */
    wslot *wc;                 /* WC_SLOTS; NULL: no word cache */
    uint8_t *arena;            /* WC_ARENA bytes */
    size_t an, wn;             /* arena bytes and slots used */
    /* Words at "▁" (see mark_joiners): split before a ▁ unless the character before
     * it is a ▁ or one of join[] */
    int msplit;
    uint32_t njoin, join[MAX_JOIN]; /* a character's UTF-8 bytes, little-endian */
};
typedef struct ldb_tok_scratch bpe;

static const uint8_t MARK[3] = {0xe2, 0x96, 0x81}; /* ▁ */

/* The character ending just before p[at] (at > 0): its bytes packed little-endian,
 * or 0 when p[0..at) does not end in a whole UTF-8 character. */
static uint32_t char_before(const uint8_t *p, size_t at)
{
    size_t k = at - 1, c = 0;
    while (k > 0 && (p[k] & 0xc0) == 0x80 && c < 3)
        k--, c++;
    if ((p[k] & 0xc0) == 0x80 || utf8_len_of(p[k]) != at - k)
        return 0;
    uint32_t x = 0;
    memcpy(&x, p + k, at - k);
    return x;
}

/* A ▁ at p[at] (at >= 1, 3 bytes there) that does not follow another: runs of ▁
 * stay whole. */
static int mark_at(const uint8_t *p, size_t at)
{
    return p[at] == MARK[0] && !memcmp(p + at, MARK, 3) &&
           !(at >= 3 && !memcmp(p + at - 3, MARK, 3));
}

static int is_joiner(const bpe *b, uint32_t x)
{
    for (uint32_t j = 0; j < b->njoin; j++)
        if (b->join[j] == x)
            return 1;
    return 0;
}

/* A BPE symbol is always a vocabulary piece, so no symbol can span the boundary
 * before a ▁ whose preceding character X is not ▁, unless some piece contains
 * "X▁". Such boundaries cut the text into words that BPE can merge separately, with
 * the same result (merges in one word never see another's), and the word cache can
 * serve: Gemma's pre-tokenizer splits on spaces only after the normalizer replaced
 * them all with ▁, so its "word" is otherwise a whole text. Gemma 3 has one piece
 * with X▁ (">▁</"). Splitting is off when a piece has ▁ after a partial character
 * or more than MAX_JOIN distinct X; when ▁ is not a piece itself (unknown symbols on
 * both sides of a cut would no longer fuse into one unk); and with ignore_merges
 * (a whole word found in the vocabulary skips BPE, and a cut would make new words). */
static void mark_joiners(const ldb_tok *tk, bpe *b)
{
    b->msplit = !(tk->flags & TOK_IGNORE_MERGES) && vocab_find(tk, MARK, 3) != LDB_TOK_NONE;
    for (uint32_t id = 0; id < tk->n_vocab && b->msplit; id++) {
        const uint8_t *p = tk->pieces + tk->piece_off[id];
        size_t n = tk->piece_off[id + 1] - tk->piece_off[id];
        for (size_t at = 1; at + 3 <= n; at++) {
            if (!mark_at(p, at))
                continue;
            uint32_t x = char_before(p, at);
            if (x && is_joiner(b, x))
                continue;
            if (!x || b->njoin == MAX_JOIN) {
                b->msplit = 0;
                break;
            }
            b->join[b->njoin++] = x;
        }
    }
}

/* Scratch with the word cache and its cuts (cached), or symbols and the pair cache
 * only: the plain encode. */
static bpe *scratch_new(const ldb_tok *tk, int cached)
{
    bpe *b = calloc(1, sizeof *b);
    if (!b || !(b->pc = malloc(PAIR_CACHE * sizeof *b->pc)) ||
        (cached && (!(b->wc = calloc(WC_SLOTS, sizeof *b->wc)) ||
                    !(b->arena = malloc(WC_ARENA))))) {
        ldb_tok_scratch_free(b);
        return NULL;
    }
    memset(b->pc, 0xff, PAIR_CACHE * sizeof *b->pc);
    if (cached)
        mark_joiners(tk, b);
    return b;
}

bpe *ldb_tok_scratch_new(const ldb_tok *tk)
{
    return scratch_new(tk, 1);
}

void ldb_tok_scratch_free(bpe *b)
{
    if (!b)
        return;
    free(b->id), free(b->start), free(b->len), free(b->prev), free(b->next), free(b->heap);
    free(b->pc), free(b->wc), free(b->arena);
    free(b);
}

/* The cached ids of word w, pushed to o; 1 on a hit, 0 on a miss, < 0 on ENOMEM. */
static int wc_get(bpe *b, uint64_t h, const uint8_t *w, size_t n, idvec *o);
/* Caches the ids o->v[from..] of word w. */
static void wc_put(bpe *b, uint64_t h, const uint8_t *w, size_t n, const idvec *o, size_t from);

static inline uint32_t merge_cached(const ldb_tok *tk, bpe *b, uint32_t x, uint32_t y, uint32_t *m)
{
    uint64_t key = (uint64_t)x << 32 | y;
    pcache *e = &b->pc[hash_pair(x, y) & (PAIR_CACHE - 1)];
    if (e->key != key) {
        e->key = key;
        e->rank = merge_find(tk, x, y, &e->merged);
    }
    *m = e->merged;
    return e->rank;
}

static int heap_push(bpe *b, uint64_t key)
{
    if (b->hn == b->hcap) {
        size_t nc = b->hcap ? 2 * b->hcap : 1024;
        uint64_t *nh = realloc(b->heap, nc * sizeof *nh);
        if (!nh)
            return LDB_ENOMEM;
        b->heap = nh;
        b->hcap = nc;
    }
    size_t i = b->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (b->heap[p] <= key)
            break;
        b->heap[i] = b->heap[p];
        i = p;
    }
    b->heap[i] = key;
    return LDB_OK;
}

static uint64_t heap_pop(bpe *b)
{
    uint64_t top = b->heap[0], x = b->heap[--b->hn];
    size_t i = 0, n = b->hn;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        if (l + 1 < n && b->heap[l + 1] < b->heap[l])
            l++;
        if (b->heap[l] >= x)
            break;
        b->heap[i] = b->heap[l];
        i = l;
    }
    if (n)
        b->heap[i] = x;
    return top;
}

static int try_pair(const ldb_tok *tk, bpe *b, int32_t i)
{
    int32_t j = b->next[i];
    if (j < 0 || b->id[i] == LDB_TOK_NONE || b->id[j] == LDB_TOK_NONE)
        return LDB_OK;
    uint32_t m, r = merge_cached(tk, b, b->id[i], b->id[j], &m);
    return r == LDB_TOK_NONE ? LDB_OK : heap_push(b, (uint64_t)r << 32 | (uint32_t)i);
}

static int emit_unknown(const ldb_tok *tk, const uint8_t *s, size_t n, idvec *o, int *last_unk)
{
    int ok = (tk->flags & LDB_TOK_BYTE_FALLBACK) != 0;
    for (size_t i = 0; i < n && ok; i++)
        ok = tk->byte_id[s[i]] != LDB_TOK_NONE;
    if (ok) {
        for (size_t i = 0; i < n; i++)
            if (push(o, tk->byte_id[s[i]]))
                return LDB_ENOMEM;
        *last_unk = 0;
        return LDB_OK;
    }
    if (tk->unk == LDB_TOK_NONE)
        return LDB_OK; /* dropped, as the reference does without an unk token */
    if ((tk->flags & LDB_TOK_FUSE_UNK) && *last_unk)
        return LDB_OK;
    *last_unk = 1;
    return push(o, tk->unk);
}

static int bpe_merge_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, idvec *o);

static int wc_get(bpe *b, uint64_t h, const uint8_t *w, size_t n, idvec *o)
{
    for (uint32_t i = (uint32_t)h & (WC_SLOTS - 1);; i = (i + 1) & (WC_SLOTS - 1)) {
        const wslot *e = &b->wc[i];
        if (!e->h)
            return 0;
        if (e->h == h && e->wlen == n && !memcmp(b->arena + e->off, w, n)) {
            const uint8_t *ids = b->arena + e->off + WC_MAXW;
            for (uint32_t k = 0; k < e->nid; k++) {
                uint32_t id;
                memcpy(&id, ids + 4 * k, 4);
                if (push(o, id))
                    return -1;
            }
            return 1;
        }
    }
}

static void wc_put(bpe *b, uint64_t h, const uint8_t *w, size_t n, const idvec *o, size_t from)
{
    size_t nid = o->n - from, need = WC_MAXW + 4 * nid;
    if (nid > WC_MAXIDS)
        return;
    if (b->wn >= WC_SLOTS / 2 || b->an + need > WC_ARENA) { /* full: start again */
        memset(b->wc, 0, WC_SLOTS * sizeof *b->wc);
        b->an = b->wn = 0;
    }
    uint32_t i = (uint32_t)h & (WC_SLOTS - 1);
    while (b->wc[i].h)
        i = (i + 1) & (WC_SLOTS - 1);
    b->wc[i] = (wslot){h, (uint32_t)b->an, (uint8_t)n, (uint8_t)nid};
    memcpy(b->arena + b->an, w, n);
    if (nid) /* a word of unknown characters and no unk token has none */
        memcpy(b->arena + b->an + WC_MAXW, o->v + from, 4 * nid);
    b->an += need;
    b->wn++;
}

/* BPE of one word (valid UTF-8), through the word cache. */
static int bpe_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, idvec *o)
{
    if (!n)
        return LDB_OK;
    if (!b->wc || n > WC_MAXW)
        return bpe_merge_word(tk, b, w, n, o);
    uint64_t h = hash64_bytes(w, n) | 1;
    int hit = wc_get(b, h, w, n, o);
    if (hit)
        return hit < 0 ? LDB_ENOMEM : LDB_OK;
    size_t from = o->n;
    int rc = bpe_merge_word(tk, b, w, n, o);
    if (!rc)
        wc_put(b, h, w, n, o, from);
    return rc;
}

static int bpe_merge_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, idvec *o)
{
    if (tk->flags & TOK_IGNORE_MERGES) {
        uint32_t id = vocab_find(tk, w, n);
        if (id != LDB_TOK_NONE)
            return push(o, id);
    }
    if (n > b->cap) {
        size_t nc = n < 64 ? 64 : n;
        uint32_t *a1 = realloc(b->id, nc * 4), *a2 = a1 ? realloc(b->start, nc * 4) : NULL,
                 *a3 = a2 ? realloc(b->len, nc * 4) : NULL;
        if (a1) b->id = a1;
        if (a2) b->start = a2;
        if (a3) b->len = a3;
        int32_t *a4 = a3 ? realloc(b->prev, nc * 4) : NULL, *a5 = a4 ? realloc(b->next, nc * 4) : NULL;
        if (a4) b->prev = a4;
        if (a5) b->next = a5;
        if (!a5)
            return LDB_ENOMEM;
        b->cap = nc;
    }
    int32_t m = 0;
    for (size_t i = 0; i < n; m++) {
        size_t l = utf8_len_of(w[i]);
        if (l > n - i)
            l = n - i;
        b->id[m] = l == 1 ? tk->ascii[w[i] & 0x7f] : vocab_find(tk, w + i, l);
        b->start[m] = (uint32_t)i;
        b->len[m] = (uint32_t)l;
        b->prev[m] = m - 1;
        b->next[m] = m + 1;
        i += l;
    }
    b->next[m - 1] = -1;
    b->hn = 0;
    for (int32_t i = 0; i + 1 < m; i++)
        if (try_pair(tk, b, i))
            return LDB_ENOMEM;
    while (b->hn) {
        uint64_t key = heap_pop(b);
        int32_t i = (int32_t)(uint32_t)key, j;
        uint32_t r = (uint32_t)(key >> 32), merged = 0;
        if (b->len[i] == 0 || (j = b->next[i]) < 0 || b->id[i] == LDB_TOK_NONE ||
            b->id[j] == LDB_TOK_NONE || merge_cached(tk, b, b->id[i], b->id[j], &merged) != r)
            continue; /* stale: a neighbour merged since this pair was queued */
        b->id[i] = merged;
        b->len[i] += b->len[j];
        b->len[j] = 0;
        b->next[i] = b->next[j];
        if (b->next[j] >= 0)
            b->prev[b->next[j]] = i;
        if ((b->prev[i] >= 0 && try_pair(tk, b, b->prev[i])) || try_pair(tk, b, i))
            return LDB_ENOMEM;
    }
    int last_unk = 0;
    for (int32_t i = 0; i >= 0; i = b->next[i]) {
        if (b->id[i] != LDB_TOK_NONE) {
            if (push(o, b->id[i]))
                return LDB_ENOMEM;
            last_unk = 0;
        } else if (emit_unknown(tk, w + b->start[i], b->len[i], o, &last_unk)) {
            return LDB_ENOMEM;
        }
    }
    return LDB_OK;
}

/* BPE of s in the words that ▁ boundaries make (mark_joiners). */
static int marked_words(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o)
{
    if (!b->msplit)
        return bpe_word(tk, b, s, n, o);
    size_t a = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (!mark_at(s, i) || is_joiner(b, char_before(s, i)))
            continue;
        int rc = bpe_word(tk, b, s + a, i - a, o);
        if (rc)
            return rc;
        a = i;
    }
    return bpe_word(tk, b, s + a, n - a, o);
}

/* Pre-tokenizes a normalized piece and runs BPE on each word. */
static int encode_words(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o)
{
    if (!(tk->flags & LDB_TOK_SPLIT_SPACE))
        return marked_words(tk, b, s, n, o);
    size_t a = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ') { /* the space ends its word (MergedWithPrevious) */
            int rc = marked_words(tk, b, s + a, i + 1 - a, o);
            if (rc)
                return rc;
            a = i + 1;
        }
    return marked_words(tk, b, s + a, n - a, o);
}

/* Splits s on the added tokens of trie t (leftmost-longest); pieces between go to
 * fn. */
typedef int (*piece_fn)(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
                        uint8_t **scratch, size_t *scap);

static int split_added(const ldb_tok *tk, const struct tok_trie *t, bpe *b, const uint8_t *s,
                       size_t n, idvec *o, uint8_t **scratch, size_t *scap, piece_fn fn)
{
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        uint32_t id;
        size_t l = t->len ? trie_match(t, s + i, n - i, &id) : 0;
        if (!l) {
            i++;
            continue;
        }
        int rc = i > start ? fn(tk, b, s + start, i - start, o, scratch, scap) : LDB_OK;
        if (rc || (rc = push(o, id)))
            return rc;
        i += l;
        start = i;
    }
    return start < n ? fn(tk, b, s + start, n - start, o, scratch, scap) : LDB_OK;
}

static int normalized_piece(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
                            uint8_t **scratch, size_t *scap)
{
    (void)scratch, (void)scap;
    return encode_words(tk, b, s, n, o);
}

/* A section between unnormalized added tokens: normalize, then split on the
 * normalized added tokens, then words. */
static int raw_piece(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
                     uint8_t **scratch, size_t *scap)
{
    if (!(tk->flags & (LDB_TOK_NORM_SPACE | LDB_TOK_NORM_PREPEND)))
        return split_added(tk, tk->trie[1], b, s, n, o, NULL, NULL, normalized_piece);
    size_t need = 3 * n + 3;
    if (need > *scap) {
        uint8_t *ns = realloc(*scratch, need);
        if (!ns)
            return LDB_ENOMEM;
        *scratch = ns;
        *scap = need;
    }
    uint8_t *w = *scratch;
    if (tk->flags & LDB_TOK_NORM_PREPEND) {
        memcpy(w, "\xe2\x96\x81", 3);
        w += 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' && (tk->flags & LDB_TOK_NORM_SPACE)) {
            memcpy(w, "\xe2\x96\x81", 3);
            w += 3;
        } else {
            *w++ = s[i];
        }
    }
    return split_added(tk, tk->trie[1], b, *scratch, (size_t)(w - *scratch), o, NULL, NULL,
                       normalized_piece);
}

int ldb_tok_encode(const ldb_tok *tk, ldb_tok_scratch *scr, const char *text, size_t len,
                   uint32_t **ids, size_t *n, ldb_err *e)
{
    const uint8_t *s = (const uint8_t *)text;
    uint8_t *clean = NULL, *scratch = NULL;
    size_t scap = 0;
    *ids = NULL;
    *n = 0;
    if (ldb_utf8_check(s, len, 0, NULL) < len) {
        if (ldb_utf8_sanitize(s, len, &clean, &len))
            return ldb_err_set(e, LDB_ENOMEM, "out of memory");
        s = clean;
    }
    idvec o = {0};
    bpe *own = scr ? NULL : scratch_new(tk, 0), *b = scr ? scr : own; /* plain: for this call */
    int rc = b ? split_added(tk, tk->trie[0], b, s, len, &o, &scratch, &scap, raw_piece)
               : LDB_ENOMEM;
    free(clean);
    free(scratch);
    ldb_tok_scratch_free(own);
    if (rc) {
        free(o.v);
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    }
    *ids = o.v;
    *n = o.n;
    return LDB_OK;
}

/* ---- decoding ----------------------------------------------------------- */

/* The byte of a "<0xXX>" piece, or -1. */
static int byte_piece(const uint8_t *p, size_t n)
{
    if (n != 6 || memcmp(p, "<0x", 3) || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

typedef struct sbuf { char *p; size_t n, cap; } sbuf;

static int sb_add(sbuf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return LDB_ENOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return LDB_OK;
}

static int flush_bytes(sbuf *out, uint8_t *bytes, size_t *nb)
{
    if (!*nb)
        return LDB_OK;
    uint8_t *clean;
    size_t cn;
    if (ldb_utf8_sanitize(bytes, *nb, &clean, &cn))
        return LDB_ENOMEM;
    int rc = sb_add(out, clean, cn);
    free(clean);
    *nb = 0;
    return rc;
}

/* Appends a piece with ▁ read as a space. */
static int add_piece(sbuf *out, const uint8_t *p, size_t n)
{
    size_t a = 0;
    for (size_t i = 0; i + 2 < n;) {
        if (p[i] == 0xe2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
            if (sb_add(out, p + a, i - a) || sb_add(out, " ", 1))
                return LDB_ENOMEM;
            i += 3;
            a = i;
        } else {
            i++;
        }
    }
    return sb_add(out, p + a, n - a);
}

int ldb_tok_decode(const ldb_tok *tk, const uint32_t *ids, size_t n, char **out, size_t *len)
{
    sbuf o = {0};
    uint8_t *bytes = malloc(n + 1);
    size_t nb = 0;
    int rc = bytes ? sb_add(&o, "", 0) : LDB_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t pl;
        const uint8_t *p = ldb_tok_piece(tk, ids[i], &pl);
        if (!p) {
            rc = flush_bytes(&o, bytes, &nb);
            if (!rc)
                rc = sb_add(&o, "\xef\xbf\xbd", 3); /* an id outside the vocabulary */
            continue;
        }
        int by = byte_piece(p, pl);
        if (by >= 0) {
            bytes[nb++] = (uint8_t)by;
            continue;
        }
        if (!(rc = flush_bytes(&o, bytes, &nb)))
            rc = add_piece(&o, p, pl);
    }
    if (!rc)
        rc = flush_bytes(&o, bytes, &nb);
    free(bytes);
    if (rc) {
        free(o.p);
        return LDB_ENOMEM;
    }
    *out = o.p;
    *len = o.n;
    return LDB_OK;
}

size_t ldb_tok_piece_text(const ldb_tok *tk, uint32_t id, char *buf, size_t cap)
{
    size_t pl;
    const uint8_t *p = ldb_tok_piece(tk, id, &pl);
    sbuf o = {0};
    int by = p ? byte_piece(p, pl) : -1;
    if (!p)
        sb_add(&o, "<?>", 3);
    else if (by >= 0x80 || (by >= 0 && by < 0x20)) { /* alone it is no character */
        char hx[16];
        snprintf(hx, sizeof hx, "<0x%02X>", (unsigned)by & 0xffu);
        sb_add(&o, hx, 6);
    } else if (by >= 0) {
        char ch = (char)by;
        sb_add(&o, &ch, 1);
    } else {
        add_piece(&o, p, pl);
    }
    size_t n = o.n < cap ? o.n : cap ? cap - 1 : 0;
    if (cap) {
        if (o.p)
            memcpy(buf, o.p, n);
        buf[n] = 0;
    }
    free(o.p);
    return n;
}
