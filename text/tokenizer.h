/* tokenizer.h — text/'s interface to the layers above: a Hugging Face tokenizer.json
 * (BPE family) compiled to the LTK2 blob, and encode/decode reading the blob in place.
 * Files: compile.c (JSON -> blob), components.c (normalizer, pre-tokenizer, decoder),
 * blob.c (the layout; open and check), pipe.c (LTK3's pipeline section, regexes),
 * pretok.c (running it), trie.c (added tokens), bpe.c (encode), detok.c (decode), api.c
 * (the public ldb_tokenizer); tok_impl.h and pipe.h are private to text/. */
#ifndef LDB_TEXT_TOKENIZER_H
#define LDB_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

/* A tokenizer.json is compiled once into a flat little-endian blob of u32 tables
 * (docs/FORMAT.md, "Tokenizer blob"): pieces, a vocabulary hash, a merge hash, the
 * added tokens and the byte-fallback ids. Encoding and decoding read the blob in
 * place, so a tokenizer stored in an LMDB value is used straight from the memory
 * map with no parsing (`top` needs no JSON parse to print text).
 *
 * Semantics follow the reference implementations (Hugging Face tokenizers and
 * its JS port): added tokens are matched first (leftmost-longest), the rest is
 * normalized (NFC/NFKC, Replace " " -> "▁", Prepend "▁"), pre-tokenized (Split by a
 * string or regex, ByteLevel, Metaspace, or none), and BPE-merged by rank with ties to
 * the leftmost pair; characters not in the vocabulary become their UTF-8 bytes' <0xXX>
 * tokens (byte_fallback). A ByteLevel tokenizer's words are bytes, its pieces GPT-2's
 * characters for them ("Ġthe"). Input that is not valid UTF-8 is read as a WHATWG
 * TextDecoder reads it: each maximal invalid subsequence becomes U+FFFD.
 * A tokenizer that needs no pipeline section compiles to LTK2, the others to LTK3. */

#define LDB_TOK_MAGIC 0x324b544cu  /* "LTK2" (LTK1 used another piece hash) */
#define LDB_TOK_MAGIC3 0x334b544cu /* "LTK3": LTK2 with a pipeline section */
#define LDB_TOK_NONE UINT32_MAX

typedef struct ldb_tok {
    const uint8_t *blob;      /* the compiled tables (owned when own != NULL) */
    size_t size;
    void *own;
    /* views into the blob */
    uint32_t n_vocab, n_merges, flags, unk, bos, eos, pad, vocab_cap, merge_cap, n_added;
    const uint32_t *piece_off; /* n_vocab + 1 */
    const uint8_t *pieces;
    const uint32_t *vocab;     /* vocab_cap slots: id + 1, 0 = empty */
    const uint32_t *merges;    /* merge_cap x (a, b, rank, merged); a = NONE: empty */
    const uint32_t *added;     /* n_added x (id, flags) */
    const uint32_t *byte_id;   /* 256 */
    /* built at open: the added tokens' trie (unnormalized and normalized) */
    struct tok_trie *trie[2];
    uint32_t ascii[128];       /* vocab id of each ASCII character (or NONE) */
    char *name;                /* for messages */
    /* LTK3 */
    struct tok_pipe *pipe;     /* normalization form, pre-tokenizer steps, decoder; NULL: LTK2 */
    int bytelevel;             /* words are bytes: BPE starts from byte_sym, decode unmaps */
    uint32_t byte_sym[256];    /* ByteLevel: the id of each byte's character (or NONE) */
    uint8_t bl_char[256][2], bl_len[256]; /* ByteLevel: each byte's character (UTF-8) */
    uint8_t *is_added;         /* n_vocab bits: the added tokens' ids (decode keeps them verbatim) */
} ldb_tok;

/* flags */
#define LDB_TOK_BYTE_FALLBACK 1u
#define LDB_TOK_FUSE_UNK 2u
#define LDB_TOK_NORM_SPACE 4u     /* normalizer Replace(" ", "▁") */
#define LDB_TOK_SPLIT_SPACE 8u    /* pre-tokenizer Split(" ", MergedWithPrevious) */
#define LDB_TOK_NORM_PREPEND 16u  /* normalizer Prepend("▁") (Llama 2 style) */
#define LDB_TOK_IGNORE_MERGES 32u /* model.ignore_merges: a word in the vocabulary skips BPE */

/* added token flags */
#define LDB_TOK_A_SPECIAL 1u
#define LDB_TOK_A_NORMALIZED 2u

/* Compiles the tokenizer.json at path (with tokenizer_config.json beside it, when
 * present, for the BOS/EOS/PAD ids) into tk. Unsupported models, normalizers,
 * pre-tokenizers and decoders are refused with a message naming them. */
int ldb_tok_load_json(ldb_tok *tk, const char *path, ldb_err *e);

/* Opens a compiled blob in place (it must stay mapped while tk is used); copy = 1
 * copies it first. Checks every table bound. */
int ldb_tok_open_blob(ldb_tok *tk, const void *blob, size_t size, int copy, const char *name,
                      ldb_err *e);

void ldb_tok_close(ldb_tok *tk);

/* Scratch kept between encodes with one tokenizer: BPE buffers, a cache of merge
 * lookups and a cache of whole words (~4 MB). One thread at a time. */
typedef struct ldb_tok_scratch ldb_tok_scratch;
ldb_tok_scratch *ldb_tok_scratch_new(const ldb_tok *tk); /* NULL when out of memory */
void ldb_tok_scratch_free(ldb_tok_scratch *s);

/* Encodes text[0..len) (no BOS) into *ids (malloc'd, *n of them). scr: scratch
 * kept from earlier encodes with this tk (its caches), or NULL for none. */
int ldb_tok_encode(const ldb_tok *tk, ldb_tok_scratch *scr, const char *text, size_t len,
                   uint32_t **ids, size_t *n, ldb_err *e);

/* The piece of id as stored ("▁the", "<0x0A>", "<bos>"); NULL when out of range. */
const uint8_t *ldb_tok_piece(const ldb_tok *tk, uint32_t id, size_t *len);

/* Decodes ids to UTF-8 text (▁ -> space, byte tokens -> their bytes, invalid byte
 * runs -> U+FFFD), appending to a malloc'd buffer *out of *len bytes (NUL-terminated). */
int ldb_tok_decode(const ldb_tok *tk, const uint32_t *ids, size_t n, char **out, size_t *len);

/* The text of a single token as it reads inside decoded text (▁ -> space; the byte
 * token of a control or non-ASCII byte gives its hex form "<0xE2>"; "<?>" for an id
 * out of range) into buf: at most cap - 1 bytes and a NUL. Returns the full length,
 * as snprintf does (>= cap: truncated). Allocates nothing. */
size_t ldb_tok_piece_text(const ldb_tok *tk, uint32_t id, char *buf, size_t cap);

/* The public handle (text/api.c) over a compiled blob: copies it. */
struct ldb_tokenizer;
struct ldb_tokenizer *ldb_tokenizer_from_blob(const void *blob, size_t size, const char *name,
                                              ldb_err *e);
/* The compiled tables of a handle (for storing them). */
const void *ldb_tokenizer_blob(const struct ldb_tokenizer *t, size_t *size);

#endif
