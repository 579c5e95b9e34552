/* ingest.c — the pipeline of a run (ldb_ingest): its sources (source.c) checked
 * whole before the first batch, so bad input leaves the DB as it was; then batch by
 * batch, codes made while the previous batch is written, each batch committed with
 * the run's progress (runrec.c), so a killed run resumes after its last batch. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "run_impl.h"

#define DEFAULT_BATCH_TOKENS 8192   /* the first batch; later ones are sized by codes */
#define MAX_BATCH_TOKENS 262144
#define BATCH_CODES 6000000          /* later batches aim at this many codes (memory) */

/* The encode side of a batch (no database access: it runs beside a commit). */
static int prep_batch(run *r, bbuf *bb)
{
    uint64_t p0 = bb->r0 * r->ctx, p1 = bb->r1 * r->ctx < r->n_tokens ? bb->r1 * r->ctx : r->n_tokens;
    int rc = ingest_read_tokens(r, p0, p1 - p0, bb->toks);
    for (int i = 0; i < r->o->n_dicts && !rc; i++)
        rc = ingest_codes(r, i, p0, p1, &bb->codes[i]);
    return rc;
}

/* The store side: sequences, codes and the run's progress, in one transaction. */
static int commit_batch_once(run *r, const bbuf *bb, int done)
{
    ldb_db *db = r->db;
    ldb_writer *w = NULL;
    uint64_t p0 = bb->r0 * r->ctx, skipped = 0;
    uint32_t source = 0;
    int rc = ldb_writer_begin(db, &w);
    if (rc)
        return rc;
    if (r->indptr) /* an import: the encode side leaves a core free */
        ldb_writer_set_threads(w, 2);
    rc = ldb_writer_source(w, r->o->source ? r->o->source : r->o->tokens, &source);
    if (!rc && r->track && seqset_copy(&r->pend, &r->seqs))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    for (uint64_t row = bb->r0; row < bb->r1 && !rc; row++) {
        uint64_t off = row * r->ctx - p0, len = ingest_row_len(r, row);
        uint8_t hash[16];
        ldb_seqrec seq;
        int found = 0;
        if (r->covered && r->covered[row] && r->o->skip_covered) {
            skipped++;
            continue; /* its tokens hold codes of these dictionaries already */
        }
        ldb_tokens_hash(bb->toks + off, (uint32_t)len, hash);
        rc = ldb_writer_attach(w, hash, r->ids, r->o->n_dicts, &seq, &found);
        if (!rc && !found)
            rc = ldb_writer_add_seq(w, bb->toks + off, (uint32_t)len, source, row, hash, &seq);
        for (int i = 0; i < r->o->n_dicts && !rc; i++) {
            const csr *c = &bb->codes[i];
            rc = ldb_writer_codes(w, r->ids[i], &seq, bb->toks + off, c->start + off, c->lat,
                                  c->val);
        }
        if (!rc && r->track && seqset_add(&r->pend, seq.seq) < 0)
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = ingest_put_run(r, w, bb->r0, bb->r1, bb->next_rows, done, &r->pend);
    if (rc) {
        ldb_writer_abort(w);
        return rc;
    }
    if ((rc = ldb_writer_commit(w)))
        return rc;
    seqset t = r->seqs; /* committed: the batch's sequences are the run's */
    r->seqs = r->pend;
    r->pend = t;
    r->n_skipped += skipped;
    if (r->o->progress) {
        uint64_t done = bb->r1 * r->ctx < r->n_tokens ? bb->r1 * r->ctx : r->n_tokens;
        r->o->progress(r->o->progress_ctx, done, r->n_tokens);
    }
    return LDB_OK;
}

/* A batch that fills the map is written again into a map twice the size. */
int ingest_commit_batch(run *r, const bbuf *bb, int done)
{
    int rc = commit_batch_once(r, bb, done);
    while (rc && ldb_db_grow_map(r->db) == LDB_OK)
        rc = commit_batch_once(r, bb, done);
    return rc;
}

typedef struct cjob {
    run *r;
    const bbuf *bb;
    int rc;
    ldb_err err;               /* the commit thread's message, for the caller's thread */
} cjob;

static void *commit_thread(void *arg)
{
    cjob *j = arg;
    j->rc = ingest_commit_batch(j->r, j->bb, j->bb->r1 == j->r->n_rows);
    if (j->rc) /* error messages are per thread: hand it to the thread that reports it */
        j->err = *ldb_db_err(j->r->db);
    return NULL;
}

/* The commit thread's result, its message made the calling thread's. */
static int joined(run *r, const cjob *job)
{
    if (job->rc)
        *ldb_db_err(r->db) = job->err;
    return job->rc;
}

/* Encodes batch i+1 while batch i is written: the writer's CPU time overlaps the
 * GEMM's instead of adding to it (OpenBLAS's threads would only spin meanwhile). */
static int run_batches(run *r, uint64_t rows_per, uint64_t max_rows, bbuf bufs[2])
{
    pthread_t th;
    cjob job = {r, NULL, 0, {{0}}};
    int busy = 0, rc = LDB_OK, i = 0;
    for (uint64_t r0 = r->rows_done; r0 < r->n_rows && !rc; r0 = bufs[i ^ 1].r1) {
        bbuf *bb = &bufs[i];
        bb->r0 = r0;
        bb->r1 = r0 + rows_per < r->n_rows ? r0 + rows_per : r->n_rows;
        /* The last batch's write overlaps no encode: when this batch would end the run,
         * leave a small tail (an eighth of a batch) to be the last, so that the write
         * nothing hides is short. Not with fixed batch sizes (tests pin them). */
        uint64_t tail = rows_per / 8;
        if (!r->o->batch_tokens && bb->r1 == r->n_rows && tail && r->n_rows - r0 > 2 * tail)
            bb->r1 = r->n_rows - tail;
        int prc = prep_batch(r, bb);
        if (!prc && !r->o->batch_tokens) { /* size the next batch by its codes, not tokens */
            uint64_t nnz = 0, pos = (bb->r1 - bb->r0) * r->ctx;
            for (int d = 0; d < r->o->n_dicts; d++)
                nnz += bb->codes[d].nnz;
            double per_row = (double)nnz / (double)pos * r->ctx + 1;
            uint64_t want = (uint64_t)(BATCH_CODES / per_row);
            rows_per = want < 1 ? 1 : want > max_rows ? max_rows : want;
        }
        bb->next_rows = rows_per; /* a resumed run cuts the batches this run would have */
        i ^= 1;
        if (busy) {
            pthread_join(th, NULL);
            busy = 0;
            rc = joined(r, &job);
        }
        if (!rc && prc) {
            rc = ldb_err_set(ldb_db_err(r->db), prc, "%s", r->perr.msg);
            break;
        }
        if (rc)
            break;
        job.bb = bb;
        if (pthread_create(&th, NULL, commit_thread, &job) == 0) {
            busy = 1;
        } else {
            rc = ingest_commit_batch(r, bb, bb->r1 == r->n_rows); /* no thread: write it here */
        }
    }
    if (busy) {
        pthread_join(th, NULL);
        if (!rc)
            rc = joined(r, &job);
    }
    return rc;
}

int ingest_name_dicts(run *r, const char *const *names)
{
    int n = r->o->n_dicts;
    r->dd = calloc((size_t)n, sizeof *r->dd);
    r->dict = calloc((size_t)n, sizeof *r->dict);
    r->enc = calloc((size_t)n, sizeof *r->enc);
    r->ids = calloc((size_t)n, sizeof *r->ids);
    if (!r->dd || !r->dict || !r->enc || !r->ids)
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "dictionary '%s' named twice",
                                   names[i]);
        if (!(r->dd[i] = ldb_db_find_dict(r->db, names[i])))
            return LDB_ENOTFOUND;
        r->ids[i] = r->dd[i]->id;
    }
    return LDB_OK;
}

void ingest_free_dicts(run *r)
{
    free(r->dd);
    free(r->dict);
    free(r->enc);
    free(r->ids);
}

void ldb_ingest_opts_init(ldb_ingest_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->precision = LDB_PRECISION_EXACT;
}

int ldb_ingest(ldb_db *db, const ldb_ingest_opts *user)
{
    run r;
    ldb_ingest_opts opts, *o = &opts;
    ldb_ingest_opts_init(o);
    int rc = ldb_opts_load(o, sizeof *o, user, "ldb_ingest_opts", ldb_db_err(db));
    if (rc)
        return rc;
    if (!user)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "ingest needs options: its inputs and dictionaries");
    memset(&r, 0, sizeof r);
    r.db = db;
    r.o = o;
    if (o->report)
        memset(o->report, 0, sizeof *o->report);
    if (o->n_dicts < 1)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "ingest needs at least one dictionary");
    bbuf bufs[2];
    memset(bufs, 0, sizeof bufs);
    bufs[0].codes = calloc((size_t)o->n_dicts, sizeof *bufs[0].codes);
    bufs[1].codes = calloc((size_t)o->n_dicts, sizeof *bufs[1].codes);
    if (!bufs[0].codes || !bufs[1].codes) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ingest_name_dicts(&r, o->dicts)))
        goto out;
    if (o->codes && o->n_dicts != 1) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "import takes one dictionary");
        goto out;
    }
    if ((rc = ingest_open_sources(&r)))
        goto out;
    if ((rc = ingest_find_run(&r)) || (rc = ingest_find_covered(&r)) ||
        (rc = ingest_check_values(&r)))
        goto out;
    if (o->report) { /* what the run is, before its first batch (the caller may say so) */
        ldb_ingest_report *rp = o->report;
        char hex[65];
        ingest_hex(r.id, hex);
        snprintf(rp->run, sizeof rp->run, "%.12s", hex);
        rp->resumed = !r.new_run;
        rp->ctx = r.ctx;
        rp->n_rows = r.n_rows;
        rp->n_tokens = r.n_tokens;
        rp->rows_before = rp->rows_done = r.rows_done;
    }
    if (o->report) { /* rows other runs stored already (skipped with skip_covered) */
        o->report->rows_covered = r.n_covered;
        o->report->covered_dict = r.covered_dict;
    }
    if (!r.new_run && o->progress) /* a resumed run: where it starts again */
        o->progress(o->progress_ctx, r.rows_done * r.ctx < r.n_tokens ? r.rows_done * r.ctx
                    : r.n_tokens, r.n_tokens);
    uint64_t bt = o->batch_tokens ? o->batch_tokens : DEFAULT_BATCH_TOKENS;
    uint64_t rows_per = bt / r.ctx ? bt / r.ctx : 1;
    uint64_t max_rows = o->batch_tokens ? rows_per : MAX_BATCH_TOKENS / r.ctx ? MAX_BATCH_TOKENS / r.ctx : 1;
    /* Resuming: the batch sizes go on as they were, so the encoder sees the same tiles
     * (a GEMM's last bits can depend on its shape) and the result is the digest of an
     * uninterrupted run. */
    if (!o->batch_tokens && r.next_rows)
        rows_per = r.next_rows < max_rows ? r.next_rows : max_rows;
    bufs[0].toks = malloc((size_t)(max_rows * r.ctx) * sizeof(uint32_t));
    bufs[1].toks = malloc((size_t)(max_rows * r.ctx) * sizeof(uint32_t));
    if (!bufs[0].toks || !bufs[1].toks) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (r.rows_done >= r.n_rows) { /* an empty remainder: just mark it done */
        ldb_writer *w;
        if (!(rc = ldb_writer_begin(db, &w)) &&
            !(rc = ingest_put_run(&r, w, r.rows_done, r.n_rows, 0, 1, NULL)))
            rc = ldb_writer_commit(w);
        else
            ldb_writer_abort(w);
    }
    if (!rc)
        rc = run_batches(&r, rows_per, max_rows, bufs);
out:
    ldb_writer_drop_spare(db); /* the batches' buffers: a handle may live on */
    if (o->report) {
        ldb_ingest_report *rp = o->report;
        memset(rp->gemm, 0, sizeof rp->gemm);
        rp->pairs = rp->refined = 0;
        rp->encoder_bytes = 0;
        const cJSON *rd = r.rec ? cJSON_GetObjectItem(r.rec, "rows_done") : NULL;
        if (cJSON_IsNumber(rd) && rd->valuedouble >= 0 && rd->valuedouble <= (double)r.n_rows)
            rp->rows_done = (uint64_t)rd->valuedouble; /* as the last batch recorded it */
        rp->rows_skipped = r.n_skipped;
        for (int i = 0; r.enc && i < o->n_dicts && r.enc[i]; i++) {
            uint64_t pairs, refined;
            ldb_encoder_screen_counts(r.enc[i], &pairs, &refined);
            o->report->pairs += pairs;
            o->report->refined += refined;
            o->report->encoder_bytes += ldb_encoder_memory(r.enc[i]);
            if (i == 0)
                snprintf(o->report->gemm, sizeof o->report->gemm, "%s",
                         ldb_encoder_gemm_name(r.enc[i]));
        }
    }
    ingest_close_sources(&r);
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < o->n_dicts && bufs[b].codes; i++)
            ingest_csr_free(&bufs[b].codes[i]);
        free(bufs[b].codes);
        free(bufs[b].toks);
    }
    ingest_free_dicts(&r);
    free(r.covered);
    seqset_free(&r.seqs);
    seqset_free(&r.pend);
    cJSON_Delete(r.rec);
    return rc;
}
