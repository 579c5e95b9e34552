/* stream.c — the streaming ingest (ldb_stream_*): a run whose rows come from the
 * caller add by add. Each add is one batch of ingest.c's pipeline (the same
 * sequence and code records, the same writer, the run's progress in the same
 * transaction), so a stream and a file ingest of the same arrays store the same
 * codes. The run record (runrec.c, ingest_find_stream) keeps a chain hash of its
 * rows' tokens, so rows given again after a restart are checked, not rewritten. */
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "../common/sha256.h"
#include "run_impl.h"

struct ldb_stream {
    run r;
    ldb_ingest_opts o;         /* r.o: the dictionaries, source and precision */
    bbuf bb;                   /* the batch being written (codes: one per dictionary) */
    uint32_t *toks;            /* its tokens, copied (bb.toks) */
    size_t toks_cap;
    uint64_t next;             /* the row the next add begins at */
    uint8_t cur[32];           /* chain hash of the rows' tokens [0, next) */
    uint8_t want[32];          /* the record's chain hash of its committed rows */
    int failed;                /* an add failed: nothing more is taken */
};

void ldb_stream_opts_init(ldb_stream_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->precision = LDB_PRECISION_EXACT;
}

/* The chain hash: h' = SHA-256(h || the row's tokens hash). */
static void chain(uint8_t h[32], const uint32_t *tokens, uint32_t len)
{
    uint8_t th[16];
    ldb_sha s;
    ldb_tokens_hash(tokens, len, th);
    ldb_sha_init(&s);
    ldb_sha_update(&s, h, 32);
    ldb_sha_update(&s, th, 16);
    ldb_sha_final(&s, h);
}

int ldb_stream_open(ldb_db *db, const ldb_stream_opts *user, ldb_stream **out)
{
    ldb_stream_opts o;
    ldb_stream_opts_init(&o);
    *out = NULL;
    int rc = ldb_opts_load(&o, sizeof o, user, "ldb_stream_opts", ldb_db_err(db));
    if (rc)
        return rc;
    if (!user)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "a stream needs options: its dictionaries, "
                           "source and ctx");
    if (o.n_dicts < 1 || !o.dicts)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "a stream needs at least one dictionary");
    if (!o.source || !*o.source)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "a stream needs a source name (it names "
                           "the run, so that it can go on after a restart)");
    if (o.precision != LDB_PRECISION_EXACT && o.precision != LDB_PRECISION_F32 &&
        o.precision != LDB_PRECISION_BF16)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "precision %d: expected exact, f32 or bf16",
                           o.precision);
    ldb_stream *s = calloc(1, sizeof *s);
    if (!s)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    *out = s;
    run *r = &s->r;
    r->db = db;
    r->o = &s->o;
    ldb_ingest_opts_init(&s->o);
    s->o.n_dicts = o.n_dicts;
    s->o.precision = o.precision;
    s->o.source = strdup(o.source);
    s->o.tokens = s->o.source; /* the run's messages name it */
    r->ctx = o.ctx;
    s->bb.codes = calloc((size_t)o.n_dicts, sizeof *s->bb.codes);
    r->acts_name = strdup("the stream's activations");
    if (!s->o.source || !s->bb.codes || !r->acts_name)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if ((rc = ingest_name_dicts(r, o.dicts))) /* the records keep the names */
        return rc;
    if ((rc = ingest_dict_layers(r, &r->n_layers)))
        return rc;
    if (!r->ctx) { /* the ctx of the stream of this name, if there is one */
        if ((rc = ingest_stream_ctx(r, &r->ctx)))
            return rc;
        if (!r->ctx)
            return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "no stream '%s' of these "
                               "dictionaries yet: its ctx (the rows' length) starts one",
                               o.source);
    }
    r->d_in = r->dd[0]->d_in;
    for (int i = 1; i < o.n_dicts; i++)
        if (r->dd[i]->d_in != r->d_in)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "dictionaries '%s' (d_in %u) and '%s' "
                               "(d_in %u) read different activations; stream them separately",
                               r->dd[0]->name, r->d_in, r->dd[i]->name, r->dd[i]->d_in);
    if (!(r->act = calloc(r->n_layers, sizeof *r->act)))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if ((rc = ingest_find_stream(r, s->want)) || (rc = ingest_load_seqs(r)) ||
        (rc = ingest_open_encoders(r)))
        return rc;
    return LDB_OK;
}

uint64_t ldb_stream_committed_rows(const ldb_stream *s)
{
    return s ? s->r.rows_done : 0;
}

uint32_t ldb_stream_ctx(const ldb_stream *s)
{
    return s ? s->r.ctx : 0;
}

/* Rows [w0, w1) of the add (its first row row0): checked, encoded and committed. */
static int write_rows(ldb_stream *s, uint64_t row0, uint64_t w0, uint64_t w1,
                      const uint32_t *tokens, const void *const *acts, int n_acts, int dtype)
{
    run *r = &s->r;
    ldb_db *db = r->db;
    uint64_t n = w1 - w0, npos = n * r->ctx;
    size_t es = dtype == LDB_F32 ? 4 : 2;
    uint64_t per = (uint64_t)r->d_in * (n_acts == 1 ? r->n_layers : 1); /* elements a position */
    for (int f = 0; f < n_acts; f++) {
        const uint8_t *x = (const uint8_t *)acts[f] + (w0 - row0) * r->ctx * per * es;
        uint64_t bad = ldb_find_nonfinite(x, dtype, npos * per);
        if (bad != UINT64_MAX) {
            uint64_t p = bad / per;
            return ldb_err_set(ldb_db_err(db), LDB_EBADVALUE, "stream '%s': row %llu, position "
                               "%llu%s holds NaN or Inf; expected finite activations (nothing of "
                               "this batch was written)", r->o->source,
                               (unsigned long long)(w0 + p / r->ctx),
                               (unsigned long long)(p % r->ctx),
                               n_acts > 1 ? ", of one layer's activations," : "");
        }
        r->act[f].a.data = x;
    }
    r->n_act = n_acts;
    r->act_dtype = dtype;
    r->n_tokens = w1 * r->ctx;
    r->n_rows = w1;
    if (npos > s->toks_cap) {
        uint32_t *t = realloc(s->toks, npos * sizeof *t);
        if (!t)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        s->toks = t;
        s->toks_cap = npos;
    }
    memcpy(s->toks, tokens + (w0 - row0) * r->ctx, npos * sizeof *s->toks);
    /* the encoder reads the rows in place: ingest_codes's positions are the add's own */
    for (int i = 0; i < r->o->n_dicts; i++) {
        int rc = ingest_codes(r, i, 0, npos, &s->bb.codes[i]);
        if (rc)
            return ldb_err_set(ldb_db_err(db), rc, "stream '%s', rows %llu..%llu: %s",
                               r->o->source, (unsigned long long)w0,
                               (unsigned long long)(w1 - 1), r->perr.msg);
    }
    uint8_t h[32];
    char hex[65];
    memcpy(h, s->cur, 32);
    for (uint64_t k = 0; k < n; k++)
        chain(h, s->toks + k * r->ctx, r->ctx);
    ingest_hex(h, hex);
    cJSON_ReplaceItemInObject(r->rec, "rows_sha", cJSON_CreateString(hex));
    cJSON_ReplaceItemInObject(r->rec, "rows", cJSON_CreateNumber((double)w1));
    s->bb.r0 = w0;
    s->bb.r1 = w1;
    s->bb.next_rows = 0;
    s->bb.toks = s->toks; /* the batch's tokens and codes count from its first row */
    int rc = ingest_commit_batch(r, &s->bb, 0);
    if (rc)
        return rc;
    r->rows_done = w1;
    memcpy(s->cur, h, 32);
    return LDB_OK;
}

int ldb_stream_add(ldb_stream *s, uint64_t row0, const uint32_t *tokens,
                   const void *const *acts, int n_acts, int dtype, uint64_t rows)
{
    if (!s)
        return LDB_EINVAL;
    run *r = &s->r;
    ldb_db *db = r->db;
    const char *src = r->o->source;
    if (s->failed)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': an add failed; close the "
                           "stream and open it again to go on from its committed rows", src);
    if (!tokens || !acts || rows == 0)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': an add needs tokens, "
                           "activations and at least one row", src);
    if (dtype != LDB_F32 && dtype != LDB_F16 && dtype != LDB_BF16)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': activations of dtype %d; "
                           "expected float32, float16 or bfloat16", src, dtype);
    if (n_acts != 1 && (uint32_t)n_acts != r->n_layers)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': %d activations arrays for "
                           "dictionaries of %u layer%s; expected one array, or one per layer",
                           src, n_acts, r->n_layers, r->n_layers > 1 ? "s" : "");
    for (int f = 0; f < n_acts; f++)
        if (!acts[f])
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': activations array %d "
                               "is missing", src, f);
    int jump = row0 != s->next && s->next < r->rows_done && row0 == r->rows_done;
    if (row0 != s->next && !jump)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': rows from %llu, but the next "
                           "row is %llu%s; rows come in order", src, (unsigned long long)row0,
                           (unsigned long long)s->next,
                           s->next < r->rows_done ? " (or the committed count, to skip ahead)" : "");
    uint8_t cur[32];
    memcpy(cur, jump ? s->want : s->cur, 32);
    uint64_t end = row0 + rows, w0 = row0 > r->rows_done ? row0 : r->rows_done;
    /* rows already committed: hashed, and checked once the committed count is reached */
    for (uint64_t k = row0; k < end && k < r->rows_done; k++) {
        chain(cur, tokens + (k - row0) * r->ctx, r->ctx);
        if (k + 1 == r->rows_done && memcmp(cur, s->want, 32))
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s': rows 0..%llu given again "
                               "hold other tokens than the rows the run committed; a stream goes "
                               "on only with the same data (or give it another source name)", src,
                               (unsigned long long)k);
    }
    memcpy(s->cur, cur, 32);
    if (w0 < end) {
        int rc = write_rows(s, row0, w0, end, tokens, acts, n_acts, dtype);
        if (rc) {
            s->failed = 1;
            return rc;
        }
    }
    s->next = end;
    return LDB_OK;
}

int ldb_stream_close(ldb_stream *s, int finish)
{
    if (!s)
        return LDB_OK;
    run *r = &s->r;
    int rc = LDB_OK;
    if (finish && r->rec) {
        ldb_writer *w = NULL;
        if (s->failed)
            rc = ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "stream '%s': an add failed, so the "
                             "run is not marked finished", r->o->source);
        else if (!(rc = ldb_writer_begin(r->db, &w)) &&
                 !(rc = ingest_put_run(r, w, r->rows_done, r->rows_done, 0, 1, NULL)))
            rc = ldb_writer_commit(w);
        else if (w)
            ldb_writer_abort(w);
    }
    if (r->db)
        ldb_writer_drop_spare(r->db);
    if (r->o)
        ingest_close_sources(r);
    for (int i = 0; s->bb.codes && i < s->o.n_dicts; i++)
        ingest_csr_free(&s->bb.codes[i]);
    free(s->bb.codes);
    free(s->toks);
    ingest_free_dicts(r);
    cJSON_Delete(r->rec);
    seqset_free(&r->seqs);
    seqset_free(&r->pend);
    free((char *)s->o.source);
    free(s);
    return rc;
}
