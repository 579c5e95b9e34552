/* trie.c — building and freeing the added tokens' byte trie (trie.h; the match is
 * inline there). Children are sibling lists: a trie holds a few thousand tokens. */
#include "trie.h"

#include <stdlib.h>

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

int ldb_tok_trie_add(struct tok_trie *t, const uint8_t *s, size_t n, uint32_t id)
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

void ldb_tok_trie_free(struct tok_trie *t)
{
    if (t) {
        free(t->n);
        free(t);
    }
}
