/* pipe.h — the LTK3 pipeline section, private to text/: the Unicode normalization form,
 * the pre-tokenizer steps (Split by a regex or a string, ByteLevel, Metaspace) with their
 * pattern strings, and the decoder kind. components.c reads them from the JSON and writes
 * the section; pipe.c checks it when a blob opens and compiles the regexes (PCRE2);
 * pretok.c runs them. An LTK2 blob has no section (tk->pipe == NULL). */
#ifndef LDB_TEXT_PIPE_H
#define LDB_TEXT_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define TOK_MAX_STEPS 8

enum { TOK_NORM_NONE, TOK_NORM_NFC, TOK_NORM_NFKC, TOK_NORM_NFD, TOK_NORM_NFKD };
enum { TOK_DEC_PIECES, TOK_DEC_BYTELEVEL }; /* ▁ -> space and <0xXX> bytes; GPT-2's byte map */
enum { TOK_STEP_SPLIT = 1, TOK_STEP_BYTELEVEL = 2, TOK_STEP_METASPACE = 3 };
/* Split behaviours (opts & 0xff), as Hugging Face's SplitDelimiterBehavior */
enum { TOK_ISOLATED, TOK_REMOVED, TOK_MERGED_PREV, TOK_MERGED_NEXT, TOK_CONTIGUOUS };
#define TOK_SPLIT_INVERT 0x100u   /* Split: the pattern's matches are the non-delimiters */
#define TOK_SPLIT_LITERAL 0x200u  /* Split: the pattern is a string, not a regex */
#define TOK_BL_PREFIX 1u          /* ByteLevel: add_prefix_space */
#define TOK_BL_REGEX 2u           /* ByteLevel: use_regex (the string is GPT-2's pattern) */
/* Metaspace: opts & 0xff the prepend scheme, TOK_MS_SPLIT; the string is the replacement */
enum { TOK_MS_NEVER, TOK_MS_ALWAYS, TOK_MS_FIRST };
#define TOK_MS_SPLIT 0x100u

/* GPT-2's split pattern, which ByteLevel's use_regex means (its \s is Unicode White_Space,
 * as in the Rust reference: pipe.c rewrites \s for PCRE2) */
#define TOK_GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef struct tok_step {
    uint32_t kind, opts;
    const char *str;           /* pattern or replacement (not NUL-terminated) */
    uint32_t len;
    void *re;                  /* pcre2_code *: compiled at open (Split, ByteLevel's regex) */
} tok_step;

typedef struct tok_pipe {
    uint32_t norm, decoder, n_steps;
    tok_step step[TOK_MAX_STEPS];
} tok_pipe;

/* Reads root's normalizer, pre_tokenizer and decoder (root is a cJSON object) into
 * *flags (LTK2's) and *pipe (strings point into root); *ltk3 = 1 when the pipeline needs
 * the LTK3 section. Refuses what latentdb does not implement, naming it. */
struct cJSON;
int ldb_tok_components(const char *path, const struct cJSON *root, uint32_t *flags, tok_pipe *pipe,
                       int *ltk3, ldb_err *e);

/* Bytes of the serialized section of p, and writing it to dst (4-byte aligned size). */
size_t ldb_tok_pipe_size(const tok_pipe *p);
void ldb_tok_pipe_write(const tok_pipe *p, uint8_t *dst);

/* Reads and checks the section sec[0..n) into tk->pipe (strings point into the blob),
 * compiles its regexes and sets tk->bytelevel. The message names name. */
int ldb_tok_pipe_open(ldb_tok *tk, const uint8_t *sec, size_t n, const char *name, ldb_err *e);
void ldb_tok_pipe_free(tok_pipe *p);

/* Compiles one Split pattern (pat[0..n), Oniguruma syntax as tokenizer.json states it)
 * into *re (pcre2_code *); LDB_EUNSUPPORTED with PCRE2's reason in why[cap]. */
int ldb_tok_regex_compile(const char *pat, size_t n, int literal, void **re, char *why, size_t cap);
void ldb_tok_regex_free(void *re);

/* GPT-2's map of bytes to characters (printable Latin-1 to themselves, the rest to
 * U+0100..U+0143), as UTF-8: map[b] holds len[b] (1 or 2) bytes. */
void ldb_tok_bytelevel_map(uint8_t map[256][2], uint8_t len[256]);

/* Unicode normalization (utf8proc) of s[0..n) (valid UTF-8) to a malloc'd *out of *on
 * bytes; *out = NULL when s is already normal (ASCII). LDB_ENOMEM. */
int ldb_tok_normalize(uint32_t form, const uint8_t *s, size_t n, uint8_t **out, size_t *on);

/* Pre-tokenization scratch (match data, ranges per step); one thread at a time. */
typedef struct tok_pscratch tok_pscratch;
void ldb_tok_pscratch_free(tok_pscratch *p);

/* Runs the pipeline's steps over s[0..n) and calls word() for each word (non-empty), in
 * order. section: the index of s among the sections between added tokens (Metaspace's
 * "first"). *ps is made on first use. */
typedef int (*tok_word_fn)(void *ctx, const uint8_t *w, size_t n);
int ldb_tok_pretok(const ldb_tok *tk, tok_pscratch **ps, const uint8_t *s, size_t n, int section,
                   tok_word_fn word, void *ctx);

#endif
