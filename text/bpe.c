/* bpe.c — the encoder, text to ids: added tokens split off (leftmost-longest, trie.h),
 * normalization, pre-tokenization, words cut at ▁ boundaries, and BPE by merge rank
 * through a heap, with the caches of ldb_tok_scratch (one thread at a time). Reads
 * the blob only; the ids are the reference implementation's (tests/text.sh). */
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "pipe.h"
#include "tok_impl.h"
#include "trie.h"

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
    tok_pscratch *ps;          /* LTK3 pre-tokenization, made on first use */
    int section;               /* the index of the section between added tokens */
    uint8_t *mapped;           /* ByteLevel: a word in GPT-2's characters (ignore_merges) */
    size_t mcap;
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
    b->msplit = !(tk->flags & LDB_TOK_IGNORE_MERGES) && tok_vocab_find(tk, MARK, 3) != LDB_TOK_NONE;
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
    free(b->pc), free(b->wc), free(b->arena), free(b->mapped);
    ldb_tok_pscratch_free(b->ps);
    free(b);
}

static inline uint32_t merge_cached(const ldb_tok *tk, bpe *b, uint32_t x, uint32_t y, uint32_t *m)
{
    uint64_t key = (uint64_t)x << 32 | y;
    pcache *e = &b->pc[tok_hash_pair(x, y) & (PAIR_CACHE - 1)];
    if (e->key != key) {
        e->key = key;
        e->rank = tok_merge_find(tk, x, y, &e->merged);
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

/* The cached ids of word w, pushed to o; 1 on a hit, 0 on a miss, < 0 on ENOMEM. */
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

/* Caches the ids o->v[from..] of word w. */
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

/* BPE of one word: its characters' ids, merged lowest rank first, leftmost on ties. */
/* ignore_merges: the id of the whole word, or NONE */
static int whole_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, uint32_t *id)
{
    if (!tk->bytelevel) {
        *id = tok_vocab_find(tk, w, n);
        return LDB_OK;
    }
    if (2 * n > b->mcap) {
        uint8_t *m = realloc(b->mapped, 2 * n);
        if (!m)
            return LDB_ENOMEM;
        b->mapped = m, b->mcap = 2 * n;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        b->mapped[k] = tk->bl_char[w[i]][0];
        b->mapped[k + 1] = tk->bl_char[w[i]][1];
        k += tk->bl_len[w[i]];
    }
    *id = tok_vocab_find(tk, b->mapped, k);
    return LDB_OK;
}

static int bpe_merge_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, idvec *o)
{
    if (tk->flags & LDB_TOK_IGNORE_MERGES) {
        uint32_t id;
        if (whole_word(tk, b, w, n, &id))
            return LDB_ENOMEM;
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
        size_t l = tk->bytelevel ? 1 : utf8_len_of(w[i]);
        if (l > n - i)
            l = n - i;
        b->id[m] = tk->bytelevel ? tk->byte_sym[w[i]] : l == 1 ? tk->ascii[w[i] & 0x7f] : tok_vocab_find(tk, w + i, l);
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

/* BPE of one word (valid UTF-8), through the word cache. */
static int bpe_word(const ldb_tok *tk, bpe *b, const uint8_t *w, size_t n, idvec *o)
{
    if (!n)
        return LDB_OK;
    if (!b->wc || n > WC_MAXW)
        return bpe_merge_word(tk, b, w, n, o);
    uint64_t h = tok_hash64(w, n) | 1;
    int hit = wc_get(b, h, w, n, o);
    if (hit)
        return hit < 0 ? LDB_ENOMEM : LDB_OK;
    size_t from = o->n;
    int rc = bpe_merge_word(tk, b, w, n, o);
    if (!rc)
        wc_put(b, h, w, n, o, from);
    return rc;
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

typedef struct wctx { const ldb_tok *tk; bpe *b; idvec *o; } wctx;

/* A word of the LTK3 pipeline: bytes of a ByteLevel tokenizer, else characters. */
static int pipe_word(void *ctx, const uint8_t *w, size_t n)
{
    wctx *c = ctx;
    return c->tk->bytelevel ? bpe_word(c->tk, c->b, w, n, c->o) : marked_words(c->tk, c->b, w, n, c->o);
}

/* Pre-tokenizes a normalized piece and runs BPE on each word. */
static int encode_words(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o)
{
    if (tk->pipe) {
        wctx c = {tk, b, o};
        return ldb_tok_pretok(tk, &b->ps, s, n, b->section, pipe_word, &c);
    }
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
    int top = t == tk->trie[0]; /* count the sections (Metaspace's prepend_scheme "first") */
    if (top)
        b->section = 0;
    for (size_t i = 0; i < n;) {
        uint32_t id;
        size_t l = t->len ? ldb_tok_trie_match(t, s + i, n - i, &id) : 0;
        if (!l) {
            i++;
            continue;
        }
        int rc = i > start ? fn(tk, b, s + start, i - start, o, scratch, scap) : LDB_OK;
        if (rc || (rc = push(o, id)))
            return rc;
        b->section += top;
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
static int flag_piece(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
                      uint8_t **scratch, size_t *scap);

static int raw_piece(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
                     uint8_t **scratch, size_t *scap)
{
    if (!tk->pipe || !tk->pipe->norm)
        return flag_piece(tk, b, s, n, o, scratch, scap);
    uint8_t *norm;
    size_t nn;
    int rc = ldb_tok_normalize(tk->pipe->norm, s, n, &norm, &nn);
    if (!rc)
        rc = flag_piece(tk, b, norm ? norm : s, nn, o, scratch, scap);
    free(norm);
    return rc;
}

/* Normalization by the flags (Replace " " -> "▁", Prepend "▁"), then the normalized
 * added tokens, then words. */
static int flag_piece(const ldb_tok *tk, bpe *b, const uint8_t *s, size_t n, idvec *o,
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
        return rc == LDB_ENOMEM ? ldb_err_set(e, LDB_ENOMEM, "out of memory")
                                : ldb_err_set(e, rc, "%s: the pre-tokenizer's pattern could not be "
                                              "matched (PCRE2's limits)", tk->name ? tk->name : "tokenizer");
    }
    *ids = o.v;
    *n = o.n;
    return LDB_OK;
}
