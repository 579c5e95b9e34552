/* api.c — the public ldb_tokenizer (include/latentdb.h): an open blob (tokenizer.h),
 * read-only after open, and a pool of encoding scratch (caches of ~4 MB each), one per
 * encode running at a time, so that many threads may encode with one handle. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "tokenizer.h"

#define SCRATCH_POOL 8          /* kept between encodes; more threads make their own */

struct ldb_tokenizer {
    ldb_tok tk;                /* read only after open: every call shares it */
    ldb_tokenizer_info info;   /* filled at open */
    pthread_mutex_t mu;        /* the pool and err */
    ldb_tok_scratch *pool[SCRATCH_POOL]; /* encoding caches not in use */
    int n_pool;
    ldb_err err;
};

static ldb_tokenizer *alloc_tokenizer(void)
{
    ldb_tokenizer *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

static void set_info(ldb_tokenizer *t)
{
    t->info = (ldb_tokenizer_info){t->tk.n_vocab, t->tk.n_merges, t->tk.n_added, t->tk.bos,
                                   t->tk.eos, t->tk.pad, t->tk.unk};
}

int ldb_tokenizer_open(const char *path, ldb_tokenizer **out)
{
    ldb_tokenizer *t = alloc_tokenizer();
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
        for (int i = 0; i < t->n_pool; i++)
            ldb_tok_scratch_free(t->pool[i]);
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

int ldb_tokenizer_encode(ldb_tokenizer *t, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    ldb_tok_scratch *scr = NULL;
    ldb_err e;
    pthread_mutex_lock(&t->mu);
    if (t->n_pool)
        scr = t->pool[--t->n_pool];
    pthread_mutex_unlock(&t->mu);
    if (!scr)
        scr = ldb_tok_scratch_new(&t->tk); /* without it (no memory), encode uncached */
    int rc = ldb_tok_encode(&t->tk, scr, text, len, ids, n, &e);
    pthread_mutex_lock(&t->mu);
    if (rc)
        t->err = e;
    if (scr && t->n_pool < SCRATCH_POOL) {
        t->pool[t->n_pool++] = scr;
        scr = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    ldb_tok_scratch_free(scr);
    return rc;
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
    ldb_tokenizer *t = alloc_tokenizer();
    if (!t) {
        ldb_err_set(e, LDB_ENOMEM, "out of memory");
        return NULL;
    }
    if (ldb_tok_open_blob(&t->tk, blob, size, 1, name, e)) {
        ldb_tokenizer_close(t);
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
