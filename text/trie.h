/* trie.h — a byte trie of the added tokens: built when a blob opens (blob.c) and
 * matched leftmost-longest by the encoder (bpe.c) at every byte of its input,
 * which is why the match is static inline here. Node 0 stands for "none". */
#ifndef LDB_TEXT_TRIE_H
#define LDB_TEXT_TRIE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct tnode {
    uint32_t child, sibling; /* node indices, 0 = none */
    uint32_t id;             /* token ending here, or NONE */
    uint8_t byte;
} tnode;

struct tok_trie {
    tnode *n;
    uint32_t len, cap;       /* len 0: no token added yet */
    uint32_t root[256];      /* child of the root per first byte, 0 = none */
};

/* Adds s[0..n) (n > 0; an empty s is ignored) as token id; of equal contents, the
 * first added wins. LDB_OK or LDB_ENOMEM. */
int ldb_tok_trie_add(struct tok_trie *t, const uint8_t *s, size_t n, uint32_t id);

/* Frees the trie and t itself (calloc'd by the caller); accepts NULL. */
void ldb_tok_trie_free(struct tok_trie *t);

/* The longest added token starting at p (n > 0 bytes there): its id and length, or 0. */
static inline size_t ldb_tok_trie_match(const struct tok_trie *t, const uint8_t *p, size_t n,
                                        uint32_t *id)
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

#endif
