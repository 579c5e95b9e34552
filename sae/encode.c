/* encode.c — the encoder pipeline: per tile of rows, prepare the input (convert,
 * normalise, subtract b_dec), one GEMM into the tile's pre-activations, then the
 * activation function (activate.c) turns each row into sorted sparse codes.
 * Worker threads take whole tiles, each with a single-threaded sgemm; the caller
 * hands the finished tiles on in row order (docs/ARCHITECTURE.md, "Encoder
 * pipeline"). Invariant: each worker holds at most one tile of dense
 * pre-activations, and a tile's codes depend only on its rows and its shape. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "activate.h"
#include "bf16mm.h"
#include "blas.h"
#include "dict_impl.h"

/* A tile's dense pre-activations take about 64 MiB, but never fewer than 64 rows:
 * OpenBLAS repacks all of W_enc for every GEMM, and on M = 16 rows (what 64 MiB
 * gives 1M latents) that packing costs as much as the product. 640 -> 1048576,
 * both workers, tokens/s over four runs: 16 rows 50-60, 32 rows 70-73, 64 rows
 * 76-93, 128 rows 76-86, 256 rows 89-105. At 1M latents a 64-row tile is 256 MiB
 * per worker. */
#define TILE_BUDGET_BYTES ((size_t)64 << 20)
#define TILE_MAX_ROWS 4096u
#define TILE_MIN_ROWS 64u

uint32_t ldb_dict_tile_rows(const ldb_dict *d)
{
    if (d->tile_rows)
        return d->tile_rows;
    size_t r = TILE_BUDGET_BYTES / ((size_t)d->info.d_sae * sizeof(float));
    if (r > TILE_MAX_ROWS)
        r = TILE_MAX_ROWS;
    if (r < TILE_MIN_ROWS)
        r = TILE_MIN_ROWS;
    return (uint32_t)r;
}

int ldb_dict_set_tile_rows(ldb_dict *d, uint32_t rows)
{
    if (rows > (1u << 20))
        return ldb_err_set(&d->err, LDB_EINVAL, "tile of %u rows is too large", rows);
    d->tile_rows = rows;
    ldb_bf16mm_free(d->bf16); /* made for the old tile size; remade on the next encode */
    d->bf16 = NULL;
    return LDB_OK;
}

/* Makes the bf16 GEMM for the current tile size. */
static int ensure_bf16(ldb_dict *d)
{
    if (d->bf16)
        return LDB_OK;
    char msg[200];
    const ldb_dict_info *in = &d->info;
    int rc = ldb_bf16mm_new(in->d_in, in->d_sae, d->W_enc, d->enc_trans, ldb_dict_tile_rows(d),
                            &d->bf16w, &d->mu, &d->bf16, msg, sizeof msg);
    return rc ? ldb_err_set(&d->err, rc, "--precision bf16: %s", msg) : LDB_OK;
}

int ldb_dict_set_precision(ldb_dict *d, int precision)
{
    if (precision != LDB_PRECISION_F32 && precision != LDB_PRECISION_BF16)
        return ldb_err_set(&d->err, LDB_EINVAL, "unknown precision %d", precision);
    d->precision = precision;
    if (precision == LDB_PRECISION_F32) {
        ldb_bf16mm_free(d->bf16);
        d->bf16 = NULL;
        return LDB_OK;
    }
    int rc = ensure_bf16(d);
    if (rc)
        d->precision = LDB_PRECISION_F32;
    return rc;
}

const char *ldb_dict_gemm_name(const ldb_dict *d)
{
    if (d->precision != LDB_PRECISION_BF16)
        return "openblas f32";
    ldb_dict *w = (ldb_dict *)d; /* a cache of the name, not a change of the dictionary */
    snprintf(w->gemm_name, sizeof w->gemm_name, "onednn bf16 (%s)", ldb_bf16mm_impl(d->bf16));
    return w->gemm_name;
}

int ldb_dict_encode_fault(const ldb_dict *d, uint64_t *row, uint32_t *latent, float *value)
{
    if (!d->fault.set)
        return LDB_ENOTFOUND;
    *row = d->fault.row;
    *latent = d->fault.latent;
    *value = d->fault.value;
    return LDB_OK;
}

void ldb_dict_norm_stats(const ldb_dict *d, const float *row, float *mul, float *sub, float *undo)
{
    uint32_t n = d->info.d_in;
    *mul = 1.0f, *sub = 0.0f, *undo = 1.0f;
    if (d->norm == NORM_CONSTANT) {
        double s = 0;
        for (uint32_t i = 0; i < n; i++)
            s += (double)row[i] * row[i];
        /* x * sqrt(d_in) / |x|; SAELens adds no epsilon (a zero row gives NaN) */
        *mul = (float)(sqrt((double)n) / sqrt(s));
        *undo = (float)(sqrt(s) / sqrt((double)n));
    } else if (d->norm == NORM_LAYER) {
        double mu = 0, v = 0;
        for (uint32_t i = 0; i < n; i++)
            mu += row[i];
        mu /= n;
        for (uint32_t i = 0; i < n; i++)
            v += (row[i] - mu) * (row[i] - mu);
        double sd = n > 1 ? sqrt(v / (n - 1)) : 0; /* torch.std: unbiased */
        *sub = (float)mu;
        *mul = (float)(1.0 / (sd + 1e-5));
        *undo = (float)sd; /* SAELens undoes with std, without the epsilon */
    }
}

/* Grows a (lat, val) pair to hold need codes; 0 or -1 (out of memory). */
static int grow(uint32_t **lat, float **val, size_t *capp, size_t need)
{
    if (need <= *capp)
        return 0;
    size_t cap = *capp ? *capp : 4096;
    while (cap < need)
        cap *= 2;
    uint32_t *l = realloc(*lat, cap * sizeof *l);
    if (l)
        *lat = l;
    float *v = realloc(*val, cap * sizeof *v);
    if (v)
        *val = v;
    if (!l || !v)
        return -1;
    *capp = cap;
    return 0;
}

void ldb_dict_free_workspace(ldb_dict *d)
{
    for (int i = 0; i < LDB_WORKERS; i++) {
        free(d->work[i].xbuf);
        free(d->work[i].cbuf);
        free(d->work[i].heap);
    }
    for (int i = 0; i < 2 * LDB_WORKERS; i++) {
        free(d->slot[i].start);
        free(d->slot[i].lat);
        free(d->slot[i].val);
    }
    memset(d->work, 0, sizeof d->work);
    memset(d->slot, 0, sizeof d->slot);
    d->ws_rows = 0;
    d->ws_workers = 0;
}

/* Sizes the workspace for nw workers on tiles of rows rows: each worker's input
 * and pre-activation buffers (touched only when used), two slots per worker. */
static int ensure_ws(ldb_dict *d, uint32_t rows, int nw)
{
    const ldb_dict_info *in = &d->info;
    size_t scratch = ldb_activate_scratch(d);
    if (d->ws_rows != rows)
        ldb_dict_free_workspace(d);
    for (int i = d->ws_workers; i < nw; i++) {
        struct ldb_worker *w = &d->work[i];
        w->xbuf = aligned_alloc(64, (((size_t)rows * in->d_in * 4 + 63) / 64) * 64);
        w->cbuf = aligned_alloc(64, (((size_t)rows * in->d_sae * 4 + 63) / 64) * 64);
        if (scratch)
            w->heap = malloc(scratch);
        if (!w->xbuf || !w->cbuf || (scratch && !w->heap))
            goto nomem;
        for (int j = 2 * i; j < 2 * i + 2; j++)
            if (!(d->slot[j].start = malloc(((size_t)rows + 1) * sizeof *d->slot[j].start)))
                goto nomem;
        d->ws_rows = rows;
        d->ws_workers = i + 1;
    }
    return LDB_OK;
nomem:
    ldb_dict_free_workspace(d);
    return ldb_err_set(&d->err, LDB_ENOMEM, "out of memory for %d encoder tiles of %u rows x %u "
                       "latents", nw, rows, in->d_sae);
}

/* Fills xbuf with the tile's encoder input; returns the pointer the GEMM reads. */
static const float *prep_tile(const ldb_dict *d, float *xbuf, const void *x, int dtype,
                              uint64_t r0, uint32_t m)
{
    const ldb_dict_info *in = &d->info;
    size_t es = dtype == LDB_F32 ? 4 : 2, din = in->d_in;
    const uint8_t *src = (const uint8_t *)x + r0 * din * es;
    if (dtype == LDB_F32 && !in->sub_b_dec && d->norm == NORM_NONE &&
        ((uintptr_t)src & 3) == 0)
        return (const float *)(const void *)src;
    ldb_to_f32(xbuf, src, dtype, (size_t)m * din);
    for (uint32_t r = 0; r < m; r++) {
        float *row = xbuf + (size_t)r * din;
        if (d->norm != NORM_NONE) {
            float mul, sub, undo;
            ldb_dict_norm_stats(d, row, &mul, &sub, &undo);
            for (size_t i = 0; i < din; i++)
                row[i] = (row[i] - sub) * mul;
        }
        if (in->sub_b_dec)
            for (size_t i = 0; i < din; i++)
                row[i] -= d->b_dec_in[i];
    }
    return xbuf;
}

/* The activation function over the m rows of a worker's pre-activations, into a
 * slot as CSR. A row whose pre-activations hold NaN or Inf (the f32 sum overflowed:
 * finite but huge weights or activations) fails the tile with LDB_EBADVALUE. */
static int activate(const ldb_dict *d, struct ldb_worker *w, struct ldb_slot *s, uint32_t m)
{
    size_t bound = ldb_activate_bound(d), used = 0;
    s->start[0] = 0;
    for (uint32_t r = 0; r < m; r++) {
        size_t n;
        if (grow(&s->lat, &s->val, &s->cap, used + bound))
            return LDB_ENOMEM;
        if (ldb_activate_row(d, w->cbuf + (size_t)r * d->info.d_sae, w->heap, s->lat + used,
                             s->val + used, &n, &s->bad_lat, &s->bad_val)) {
            s->bad_row = r;
            return LDB_EBADVALUE;
        }
        used += n;
        s->start[r + 1] = used;
    }
    return LDB_OK;
}

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

/* One encode's tiles, shared by its workers under mu. Tile t goes to slot
 * t % nslots; a worker may claim it only once tile t - nslots has been handed on. */
typedef struct pool {
    ldb_dict *d;
    const void *x;
    int dtype;
    uint64_t n_rows;
    uint32_t T;
    uint64_t n_tiles, next, handed; /* tiles in all, claimed, handed to the callback */
    int nslots, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool;

/* Prepares, multiplies and activates tile t into slot s on worker w. */
static int run_tile(const pool *p, struct ldb_worker *w, struct ldb_slot *s, uint64_t t)
{
    ldb_dict *d = p->d;
    const ldb_dict_info *in = &d->info;
    uint64_t r0 = t * p->T;
    uint32_t m = (uint32_t)(p->n_rows - r0 < p->T ? p->n_rows - r0 : p->T);
    const float *xa = prep_tile(d, w->xbuf, p->x, p->dtype, r0, m);
    if (d->precision == LDB_PRECISION_BF16) {
        int rc = ldb_bf16mm_run(d->bf16, (int)(w - d->work), xa, m, w->cbuf, s->msg,
                                sizeof s->msg); /* the worker's own lane */
        if (rc)
            return rc;
    } else {
        ldb_blas_sgemm_rm(0, d->enc_trans, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                          (int)in->d_in, d->W_enc, d->enc_trans ? (int)in->d_in : (int)in->d_sae,
                          0.0f, w->cbuf, (int)in->d_sae);
    }
    int rc = activate(d, w, s, m);
    if (rc == LDB_EBADVALUE) {
        snprintf(s->msg, sizeof s->msg, "row %llu, latent %u: the pre-activation is %s (the "
                 "f32 sum overflowed: activations or encoder weights too large)",
                 (unsigned long long)(r0 + s->bad_row), s->bad_lat,
                 s->bad_val != s->bad_val ? "NaN" : s->bad_val > 0 ? "+Inf" : "-Inf");
    } else if (rc) {
        snprintf(s->msg, sizeof s->msg, "out of memory for sparse codes");
    }
    return rc;
}

static int can_claim(const pool *p)
{
    return !p->stop && p->next < p->n_tiles && p->next < p->handed + (uint64_t)p->nslots;
}

/* Claims the next tile and runs it on w; mu is held on entry and on return. */
static void work_one(pool *p, struct ldb_worker *w)
{
    uint64_t t = p->next++;
    struct ldb_slot *s = &p->d->slot[t % (uint64_t)p->nslots];
    s->state = SLOT_BUSY;
    pthread_mutex_unlock(&p->mu);
    int rc = run_tile(p, w, s, t);
    pthread_mutex_lock(&p->mu);
    s->rc = rc;
    s->state = SLOT_DONE;
    if (rc)
        p->stop = 1; /* claim nothing more; the caller reports it in its turn */
    pthread_cond_broadcast(&p->cv);
}

typedef struct helper {
    pool *p;
    struct ldb_worker *w;
} helper;

static void *helper_main(void *arg)
{
    helper *h = arg;
    pool *p = h->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next < p->n_tiles && !can_claim(p))
            pthread_cond_wait(&p->cv, &p->mu);
        if (!can_claim(p))
            break;
        work_one(p, h->w);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The calling thread is worker 0 and the only one to call fn: it hands on the
 * next tile in row order as soon as it is done, and otherwise works or waits. */
static int run_pool(pool *p, int nw, ldb_codes_fn fn, void *ctx)
{
    ldb_dict *d = p->d;
    helper hs[LDB_WORKERS];
    pthread_t th[LDB_WORKERS];
    int started[LDB_WORKERS] = {0}, rc = LDB_OK;
    for (int i = 1; i < nw; i++) {
        hs[i] = (helper){p, &d->work[i]};
        started[i] = pthread_create(&th[i], NULL, helper_main, &hs[i]) == 0;
    }
    pthread_mutex_lock(&p->mu);
    while (p->handed < p->n_tiles) {
        uint64_t t = p->handed;
        struct ldb_slot *s = &d->slot[t % (uint64_t)p->nslots];
        if (s->state == SLOT_DONE) {
            pthread_mutex_unlock(&p->mu);
            if (s->rc) {
                rc = ldb_err_set(&d->err, s->rc, "%s", s->msg);
                if (s->rc == LDB_EBADVALUE) {
                    d->fault.set = 1;
                    d->fault.row = t * p->T + s->bad_row;
                    d->fault.latent = s->bad_lat;
                    d->fault.value = s->bad_val;
                }
            } else {
                uint64_t r0 = t * p->T;
                ldb_codes tile = {r0, (uint32_t)(p->n_rows - r0 < p->T ? p->n_rows - r0 : p->T),
                                  s->start, s->lat, s->val};
                rc = fn(ctx, &tile);
            }
            pthread_mutex_lock(&p->mu);
            s->state = SLOT_FREE;
            p->handed++;
            if (rc)
                p->stop = 1;
            pthread_cond_broadcast(&p->cv);
            if (rc)
                break;
        } else if (can_claim(p)) {
            work_one(p, &d->work[0]);
        } else if (s->state == SLOT_FREE) {
            /* cannot happen: tiles are claimed in order, so the tile that stopped the
             * pool is handed on (and ends the loop) before an unclaimed one is reached */
            rc = ldb_err_set(&d->err, LDB_EINVAL, "encoder: tile %llu was never run",
                             (unsigned long long)t);
            break;
        } else {
            pthread_cond_wait(&p->cv, &p->mu);
        }
    }
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < nw; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    for (int i = 0; i < p->nslots; i++)
        d->slot[i].state = SLOT_FREE;
    return rc;
}

int ldb_dict_encode(ldb_dict *d, const void *x, int dtype, uint64_t n_rows, ldb_codes_fn fn,
                    void *ctx)
{
    int rc = LDB_OK;
    if (dtype != LDB_F32 && dtype != LDB_F16 && dtype != LDB_BF16)
        return ldb_err_set(&d->err, LDB_EINVAL, "unknown activation dtype %d", dtype);
    if (ldb_blas_load() != LDB_OK)
        return ldb_err_set(&d->err, LDB_EBLAS, "cannot load OpenBLAS (libopenblas.so.0); "
                           "install libopenblas0 (make deps)");
    if (n_rows == 0)
        return LDB_OK;
    if (d->precision == LDB_PRECISION_BF16 && (rc = ensure_bf16(d)))
        return rc;
    d->fault.set = 0;
    pool p = {.d = d, .x = x, .dtype = dtype, .n_rows = n_rows, .T = ldb_dict_tile_rows(d)};
    p.n_tiles = (n_rows + p.T - 1) / p.T;
    int nw = ldb_blas_threads(), solo = 0;
    if (nw > LDB_WORKERS)
        nw = LDB_WORKERS;
    if ((uint64_t)nw > p.n_tiles)
        nw = (int)p.n_tiles;
    if (d->precision != LDB_PRECISION_BF16) {
        solo = ldb_blas_solo(1) == 0;
        if (!solo)
            nw = 1; /* OpenBLAS threads each GEMM itself: one caller at a time */
    }
    if (nw < 1)
        nw = 1;
    if (!(rc = ensure_ws(d, p.T, nw))) {
        p.nslots = 2 * nw;
        pthread_mutex_init(&p.mu, NULL);
        pthread_cond_init(&p.cv, NULL);
        rc = run_pool(&p, nw, fn, ctx);
        pthread_cond_destroy(&p.cv);
        pthread_mutex_destroy(&p.mu);
    }
    if (solo)
        ldb_blas_solo(0);
    return rc;
}
