/* api.c — the public ldb_tokenizer (include/latentdb.h): an open blob (tokenizer.h)
 * and the encoder's scratch. */
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "tokenizer.h"

struct ldb_tokenizer {
    ldb_tok tk;                /* read only after open: decode/piece/info calls share it */
    ldb_tokenizer_info info;   /* filled at open */
    ldb_tok_scratch *scr;      /* encoding caches, made at the first encode */
    ldb_err err;
};

static void set_info(ldb_tokenizer *t)
{
    t->info = (ldb_tokenizer_info){t->tk.n_vocab, t->tk.n_merges, t->tk.n_added, t->tk.bos,
                                   t->tk.eos, t->tk.pad, t->tk.unk};
}

int ldb_tokenizer_open(const char *path, ldb_tokenizer **out)
{
    ldb_tokenizer *t = calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return LDB_ENOMEM;
    int rc = ldb_tok_load_json(&t->tk, path, &t->err);
    set_info(t);
    return rc;
}

const char *ldb_tokenizer_errmsg(const ldb_tokenizer *t)
{
    return t ? t->err.msg : "out of memory";
}

void ldb_tokenizer_close(ldb_tokenizer *t)
{
    if (t) {
        ldb_tok_close(&t->tk);
        ldb_tok_scratch_free(t->scr);
        free(t);
    }
}

int ldb_tokenizer_encode(ldb_tokenizer *t, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    if (!t->scr)
        t->scr = ldb_tok_scratch_new(&t->tk); /* without it (no memory), encode uncached */
    return ldb_tok_encode(&t->tk, t->scr, text, len, ids, n, &t->err);
}

int ldb_tokenizer_decode(const ldb_tokenizer *t, const uint32_t *ids, size_t n, char **text,
                         size_t *len)
{
    return ldb_tok_decode(&t->tk, ids, n, text, len); /* no message: t stays read-only */
}

size_t ldb_tokenizer_piece(const ldb_tokenizer *t, uint32_t id, char *buf, size_t cap)
{
    size_t n;
    const uint8_t *p = ldb_tok_piece(&t->tk, id, &n); /* NULL: n = 0 */
    if (cap) {
        size_t w = n < cap ? n : cap - 1;
        if (w)
            memcpy(buf, p, w);
        buf[w] = 0;
    }
    return n;
}

size_t ldb_tokenizer_piece_text(const ldb_tokenizer *t, uint32_t id, char *buf, size_t cap)
{
    return ldb_tok_piece_text(&t->tk, id, buf, cap);
}

const ldb_tokenizer_info *ldb_tokenizer_get_info(const ldb_tokenizer *t)
{
    return &t->info;
}

struct ldb_tokenizer *ldb_tokenizer_from_blob(const void *blob, size_t size, const char *name,
                                              ldb_err *e)
{
    ldb_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        ldb_err_set(e, LDB_ENOMEM, "out of memory");
        return NULL;
    }
    if (ldb_tok_open_blob(&t->tk, blob, size, 1, name, e)) {
        free(t);
        return NULL;
    }
    set_info(t);
    return t;
}

const void *ldb_tokenizer_blob(const ldb_tokenizer *t, size_t *size)
{
    *size = t->tk.size;
    return t->tk.blob;
}
