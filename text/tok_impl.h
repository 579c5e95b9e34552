/* tok_impl.h — what text/'s files share and no other layer sees: the LTK2 hashes,
 * lookups in an open blob (static inline: they run in the encoder's and the
 * compiler's inner loops), and the writer of a new blob for the compiler.
 * The hashes are part of the format (docs/FORMAT.md): changing one changes the blob. */
#ifndef LDB_TEXT_TOK_IMPL_H
#define LDB_TEXT_TOK_IMPL_H

#include <string.h>

#include "tokenizer.h"

/* FNV-1a 64, then a murmur3 finalizer. */
static inline uint64_t tok_hash64(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The vocabulary hash of a piece. */
static inline uint32_t tok_hash_bytes(const uint8_t *p, size_t n)
{
    return (uint32_t)tok_hash64(p, n);
}

/* The merge hash of a pair of ids. */
static inline uint32_t tok_hash_pair(uint32_t a, uint32_t b)
{
    uint64_t x = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

/* The id of piece s (its hash h), or LDB_TOK_NONE. Reads vocab, vocab_cap,
 * piece_off and pieces only, so it also serves a blob being compiled. */
static inline uint32_t tok_vocab_find_h(const ldb_tok *tk, const uint8_t *s, size_t n, uint32_t h)
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

static inline uint32_t tok_vocab_find(const ldb_tok *tk, const uint8_t *s, size_t n)
{
    return tok_vocab_find_h(tk, s, n, tok_hash_bytes(s, n));
}

/* The merge of (a, b): its rank, and the merged id in *m; LDB_TOK_NONE if none. */
static inline uint32_t tok_merge_find(const ldb_tok *tk, uint32_t a, uint32_t b, uint32_t *m)
{
    uint32_t mask = tk->merge_cap - 1;
    for (uint32_t i = tok_hash_pair(a, b) & mask;; i = (i + 1) & mask) {
        const uint32_t *s = tk->merges + 4 * (size_t)i;
        if (s[0] == LDB_TOK_NONE)
            return LDB_TOK_NONE;
        if (s[0] == a && s[1] == b) {
            *m = s[3];
            return s[2];
        }
    }
}

/* A blob being written (blob.c lays it out, compile.c fills the tables). */
typedef struct ldb_tok_tables {
    uint8_t *blob;             /* malloc'd, size bytes */
    size_t size;
    uint32_t *piece_off;       /* n_vocab + 1 */
    uint8_t *pieces;
    uint32_t *vocab;           /* vocab_cap slots, all empty (0) */
    uint32_t *merges;          /* merge_cap x 4, all empty (NONE) */
    uint32_t *added;           /* n_added x 2 */
    uint32_t *byte_id;         /* 256 */
    uint8_t *pipe;             /* LTK3: the pipeline section (pipe_bytes), else NULL */
} ldb_tok_tables;

/* Lays out a zeroed blob for the counts of h (n_vocab, vocab_cap, merge_cap,
 * n_added), piece_bytes bytes of pieces and pipe_bytes of LTK3 pipeline (0: an LTK2
 * blob), with an empty merge table; the header is written last, by
 * ldb_tok_blob_header. LDB_EUNSUPPORTED when the blob would pass 4 GB, LDB_ENOMEM;
 * the message names path. */
int ldb_tok_blob_new(ldb_tok_tables *t, const ldb_tok *h, uint64_t piece_bytes, size_t pipe_bytes,
                     const char *path, ldb_err *e);

/* Writes the header: h's counts, flags and special ids, t's offsets. */
void ldb_tok_blob_header(ldb_tok_tables *t, const ldb_tok *h);

#endif
