/* encode.c — the encoder: a handle (ldb_encoder) owning the workspace, worker
 * buffers, slots, fault record and GEMM of one encode at a time over a shared,
 * read-only dictionary; and its pipeline: per tile of rows, prepare the input
 * (convert, normalise, subtract b_dec), one GEMM into the tile's pre-activations,
 * then the activation function (activate.c). Worker threads take whole tiles, each
 * with a single-threaded GEMM; the caller hands the finished tiles on in row order
 * (docs/ARCHITECTURE.md, "Encoder pipeline"). Invariant: each worker holds at most
 * one tile of dense pre-activations, and a tile's codes depend only on its rows and
 * its shape, never on the thread or the encoder that ran it. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "../common/opts.h"
#include "activate.h"
#include "bf16mm.h"
#include "blas.h"
#include "dict_impl.h"
#include "screen.h"

#define LDB_WORKERS 8 /* at most */
_Static_assert(LDB_WORKERS <= LDB_BF16_LANES, "each worker needs a bf16 lane of its own");

/* A tile's dense pre-activations take about 64 MiB, but never fewer than 64 rows:
 * OpenBLAS repacks all of W_enc for every GEMM, and on M = 16 rows (what 64 MiB
 * gives 1M latents) that packing costs as much as the product. 640 -> 1048576,
 * both workers, tokens/s over four runs: 16 rows 50-60, 32 rows 70-73, 64 rows
 * 76-93, 128 rows 76-86, 256 rows 89-105. At 1M latents a 64-row tile is 256 MiB
 * per worker. */
#define TILE_BUDGET_BYTES ((size_t)64 << 20)
#define TILE_MAX_ROWS 4096u
#define TILE_MIN_ROWS 64u

/* The exact encoder refines a group of rows' candidates at once, latent by latent
 * (screen.h): about this many pairs a group (16 bytes each in the worker's arrays:
 * id, reference value, row, order; beside room for one more row's worth). */
#define REFINE_GROUP_PAIRS ((size_t)1 << 16)

/* Each worker thread owns a tile's input and dense pre-activations; finished tiles
 * wait in slots, in a ring of 2 x workers, until the caller hands them on in row
 * order. Everything here belongs to one encoder: encoders on one dictionary share
 * none of it. */
struct slot;
struct worker {
    float *xbuf;               /* T x d_in */
    float *cbuf;               /* T x d_sae (the widest layer's) */
    void *scratch;             /* ldb_activate_scratch bytes (topk candidates), or the exact
                                  encoder's ldb_screen_scratch */
    ldb_rowbound *rb;          /* exact: each row's share of the screen's bound, T of them */
    ldb_outliers out;          /* exact: the tile's outlier dimensions (screen.h) */
    float *xr;                 /* exact: T x d_in, the tile's rows with those zeroed */
    uint32_t *ids;             /* exact: a group of rows' candidates, pcap of them */
    float *cref;               /* their reference pre-activations */
    uint64_t *gstart;          /* T + 1: each row's first candidate in ids */
    ldb_refine_ws rws;         /* ldb_screen_refine's arrays (rowof, perm: pcap; count) */
    size_t pcap;
    struct slot *part;         /* multi-layer: each layer's codes of the tile, before merging */
    struct slot *chunk;        /* wide dictionaries: each span's codes of a layer, before merging */
};

struct slot {
    uint64_t *start;           /* T + 1 */
    uint32_t *lat;
    float *val;
    size_t cap;                /* capacity of lat/val */
    int state;                 /* free, claimed or done */
    int rc;                    /* the worker's result for its tile */
    char msg[160];             /* its message, when rc */
    uint32_t bad_row, bad_lat; /* rc LDB_EBADVALUE: the row (in the tile) and latent */
    float bad_val;             /* whose pre-activation is NaN or Inf */
    uint64_t refined;          /* exact: latents the reference computed for this tile */
};

struct ldb_encoder {
    ldb_err err;
    ldb_dict *d;               /* borrowed: the dictionary outlives its encoders */
    int precision;             /* LDB_PRECISION_EXACT / _F32 / _BF16 */
    int exact;                 /* EXACT or F32: screen and refine (screen.h) */
    int screen;                /* exact: LDB_SCREEN_BF16 (the bf16 GEMM) or LDB_SCREEN_F32 */
    const ldb_refine **refine; /* exact: per layer, the dictionary's refinement data */
    uint64_t n_pairs, n_refined; /* ldb_encoder_screen_counts */
    size_t mem;                /* ldb_encoder_memory */
    int threads;               /* workers at most (<= LDB_WORKERS); 0: ldb_blas_threads() */
    uint32_t T;                /* rows per tile */
    uint32_t n_parts;          /* the dictionary's layers (1 for a single-layer one) */
    uint32_t span;             /* latents per GEMM: the widest layer's d_sae, or fewer for a
                                  wide jumprelu/relu dictionary (spans of latents) */
    uint32_t n_chunks;         /* spans of the widest layer (1: no spans) */
    ldb_bf16mm **bf16;         /* a bf16 GEMM (BF16, or EXACT's screen): per layer the GEMM,
                                  lane i for worker i; weights on the layer's dictionary */
    char gemm_name[96];
    int ready;                 /* ldb_encoder_new succeeded */
    int ws_workers;            /* workers whose buffers (and two slots each) exist */
    struct worker work[LDB_WORKERS];
    struct slot slot[2 * LDB_WORKERS];
    struct {                   /* the last encode's LDB_EBADVALUE (ldb_encoder_fault) */
        int set;
        uint64_t row;
        uint32_t latent;
        float value;
    } fault;
};

/* Part l of d: layer l of a multi-layer dictionary, else d itself. */
static ldb_dict *part(const ldb_dict *d, uint32_t l)
{
    return d->n_layers ? d->layers[l] : (ldb_dict *)d;
}

/* The widest part's d_sae (the layers of a multi-layer dictionary all read d_in:
 * multi.c checks it). */
static uint32_t max_d_sae(const ldb_dict *d)
{
    uint32_t m = 0;
    for (uint32_t l = 0; l < (d->n_layers ? d->n_layers : 1); l++)
        m = part(d, l)->info.d_sae > m ? part(d, l)->info.d_sae : m;
    return m;
}

/* The default tile size for d (its widest layer's pre-activations). */
static uint32_t default_tile_rows(const ldb_dict *d)
{
    size_t r = TILE_BUDGET_BYTES / ((size_t)max_d_sae(d) * sizeof(float));
    if (r > TILE_MAX_ROWS)
        r = TILE_MAX_ROWS;
    if (r < TILE_MIN_ROWS)
        r = TILE_MIN_ROWS;
    return (uint32_t)r;
}

void ldb_encoder_opts_init(ldb_encoder_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->precision = LDB_PRECISION_EXACT;
}

/* Makes the bf16 GEMM of every layer; a message on e (prefixed) when it cannot. */
static int make_bf16(ldb_encoder *e, const char *what)
{
    char msg[200];
    if (!(e->bf16 = calloc(e->n_parts, sizeof *e->bf16)))
        return ldb_err_set(&e->err, LDB_ENOMEM, "out of memory");
    for (uint32_t l = 0; l < e->n_parts; l++) {
        ldb_dict *p = part(e->d, l);
        const ldb_dict_info *in = &p->info;
        int rc = ldb_bf16mm_new(in->d_in, in->d_sae, p->W_enc, p->enc_trans, e->T, &p->bf16w,
                                &p->mu, &e->bf16[l], msg, sizeof msg);
        if (rc)
            return ldb_err_set(&e->err, rc, "%s: %s", what, msg);
        e->mem += (size_t)in->d_in * in->d_sae * 2;
    }
    return LDB_OK;
}

/* Drops the bf16 GEMMs made so far. */
static void drop_bf16(ldb_encoder *e)
{
    for (uint32_t l = 0; e->bf16 && l < e->n_parts; l++)
        ldb_bf16mm_free(e->bf16[l]);
    free(e->bf16);
    e->bf16 = NULL;
    e->mem = 0;
}

/* Checks the options and makes the GEMM; messages on e. */
static int setup(ldb_encoder *e, ldb_dict *d, const ldb_encoder_opts *o)
{
    if (!d)
        return ldb_err_set(&e->err, LDB_EINVAL, "ldb_encoder_new: no dictionary");
    if (o->precision != LDB_PRECISION_F32 && o->precision != LDB_PRECISION_BF16 &&
        o->precision != LDB_PRECISION_EXACT)
        return ldb_err_set(&e->err, LDB_EINVAL, "unknown precision %d", o->precision);
    if (o->threads < 0)
        return ldb_err_set(&e->err, LDB_EINVAL, "ldb_encoder_opts: threads is %d; expected 0 "
                           "(as many as OpenBLAS) or more", o->threads);
    if (o->tile_rows > (1u << 20))
        return ldb_err_set(&e->err, LDB_EINVAL, "tile of %u rows is too large", o->tile_rows);
    e->d = d;
    e->precision = o->precision;
    e->exact = o->precision != LDB_PRECISION_BF16;
    e->threads = o->threads < LDB_WORKERS ? o->threads : LDB_WORKERS;
    e->T = o->tile_rows ? o->tile_rows : default_tile_rows(d);
    e->n_parts = d->n_layers ? d->n_layers : 1;
    uint32_t widest = max_d_sae(d);
    e->span = widest;
    if (e->precision == LDB_PRECISION_BF16) {
        int rc = make_bf16(e, "--precision bf16");
        if (rc)
            return rc;
        snprintf(e->gemm_name, sizeof e->gemm_name, "onednn bf16 (%s)", ldb_bf16mm_impl(e->bf16[0]));
    } else {
        e->screen = LDB_SCREEN_F32;
        /* EXACT: the bf16 screen where oneDNN runs it natively (its implementation
         * names the bf16 ISA: AMX or AVX512_BF16); else, quietly, the f32 one */
        if (e->precision == LDB_PRECISION_EXACT) {
            if (make_bf16(e, "bf16 screen") == LDB_OK && strstr(ldb_bf16mm_impl(e->bf16[0]), "bf16"))
                e->screen = LDB_SCREEN_BF16;
            else
                drop_bf16(e);
            ldb_err_clear(&e->err);
        }
        if (!(e->refine = calloc(e->n_parts, sizeof *e->refine)))
            return ldb_err_set(&e->err, LDB_ENOMEM, "out of memory");
        for (uint32_t l = 0; l < e->n_parts; l++) {
            if (ldb_refine_get(part(d, l), &e->refine[l]))
                return ldb_err_set(&e->err, LDB_ENOMEM, "out of memory for the exact encoder's "
                                   "copy of W_enc (%zu MiB)", (size_t)part(d, l)->info.d_in *
                                   part(d, l)->info.d_sae * 4 >> 20);
            e->mem += e->refine[l]->bytes;
        }
        if (e->screen == LDB_SCREEN_BF16)
            snprintf(e->gemm_name, sizeof e->gemm_name, "exact, screen onednn bf16 (%s)",
                     ldb_bf16mm_impl(e->bf16[0]));
        else
            snprintf(e->gemm_name, sizeof e->gemm_name, "exact, screen openblas f32");
    }
    int elementwise = !e->bf16;
    for (uint32_t l = 0; l < e->n_parts; l++)
        elementwise &= part(d, l)->arch == ARCH_JUMPRELU || part(d, l)->arch == ARCH_RELU;
    if (elementwise && (size_t)e->T * e->span * sizeof(float) > TILE_BUDGET_BYTES) {
        /* a wide dictionary: the tile's pre-activations a span of latents at a time, so a
         * worker holds 64 MiB whatever the width (1M latents x 64 rows would be 256 MiB) */
        uint32_t sp = (uint32_t)(TILE_BUDGET_BYTES / ((size_t)e->T * sizeof(float)));
        sp = sp / 64 * 64 < 4096 ? 4096 : sp / 64 * 64;
        if (sp < e->span)
            e->span = sp;
    }
    e->n_chunks = (widest + e->span - 1) / e->span;
    e->ready = 1;
    return LDB_OK;
}

int ldb_encoder_new(ldb_dict *d, const ldb_encoder_opts *user, ldb_encoder **out)
{
    ldb_encoder *e = calloc(1, sizeof *e);
    ldb_encoder_opts o;
    *out = e;
    if (!e)
        return LDB_ENOMEM;
    ldb_encoder_opts_init(&o);
    int rc = ldb_opts_load(&o, sizeof o, user, "ldb_encoder_opts", &e->err);
    return rc ? rc : setup(e, d, &o);
}

/* Frees the workers' buffers and the slots. */
static void free_slot(struct slot *s)
{
    free(s->start);
    free(s->lat);
    free(s->val);
}

static void free_workspace(ldb_encoder *e)
{
    for (int i = 0; i < LDB_WORKERS; i++) {
        free(e->work[i].xbuf);
        free(e->work[i].cbuf);
        free(e->work[i].scratch);
        free(e->work[i].rb);
        free(e->work[i].xr);
        free(e->work[i].ids);
        free(e->work[i].cref);
        free(e->work[i].gstart);
        free(e->work[i].rws.rowof);
        free(e->work[i].rws.perm);
        free(e->work[i].rws.count);
        for (uint32_t l = 0; e->work[i].part && l < e->n_parts; l++)
            free_slot(&e->work[i].part[l]);
        free(e->work[i].part);
        for (uint32_t c = 0; e->work[i].chunk && c < e->n_chunks; c++)
            free_slot(&e->work[i].chunk[c]);
        free(e->work[i].chunk);
    }
    for (int i = 0; i < 2 * LDB_WORKERS; i++)
        free_slot(&e->slot[i]);
    memset(e->work, 0, sizeof e->work);
    memset(e->slot, 0, sizeof e->slot);
    e->ws_workers = 0;
}

void ldb_encoder_free(ldb_encoder *e)
{
    if (!e)
        return;
    free_workspace(e);
    drop_bf16(e);
    free(e->refine);
    free(e);
}

const char *ldb_encoder_errmsg(const ldb_encoder *e)
{
    return e ? e->err.msg : "out of memory";
}

const char *ldb_encoder_gemm_name(const ldb_encoder *e)
{
    return e->gemm_name;
}

void ldb_encoder_screen_counts(const ldb_encoder *e, uint64_t *pairs, uint64_t *refined)
{
    *pairs = e->n_pairs;
    *refined = e->n_refined;
}

size_t ldb_encoder_memory(const ldb_encoder *e)
{
    return e->mem;
}

int ldb_encoder_fault(const ldb_encoder *e, uint64_t *row, uint32_t *latent, float *value)
{
    if (!e->fault.set)
        return LDB_ENOTFOUND;
    *row = e->fault.row;
    *latent = e->fault.latent;
    *value = e->fault.value;
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

/* Sizes the workspace for nw workers: each worker's input and pre-activation
 * buffers (touched only when used), two slots per worker. */
static int ensure_ws(ldb_encoder *e, int nw)
{
    const ldb_dict *d = e->d;
    size_t rows = e->T, scratch = 0, din = d->info.d_in, dsae = e->span;
    for (uint32_t l = 0; l < e->n_parts; l++) {
        size_t need = e->exact ? ldb_screen_scratch(part(d, l)) : ldb_activate_scratch(part(d, l));
        scratch = need > scratch ? need : scratch;
    }
    for (int i = e->ws_workers; i < nw; i++) {
        struct worker *w = &e->work[i];
        w->xbuf = aligned_alloc(64, ((rows * din * 4 + 63) / 64) * 64);
        w->cbuf = aligned_alloc(64, ((rows * dsae * 4 + 63) / 64) * 64);
        if (scratch)
            w->scratch = malloc(scratch);
        if (e->exact) {
            w->pcap = REFINE_GROUP_PAIRS + dsae;
            w->rb = malloc(rows * sizeof *w->rb);
            w->xr = aligned_alloc(64, ((rows * din * 4 + 63) / 64) * 64);
            w->ids = malloc(w->pcap * sizeof *w->ids);
            w->cref = malloc(w->pcap * sizeof *w->cref);
            w->gstart = malloc((rows + 1) * sizeof *w->gstart);
            w->rws.rowof = malloc(w->pcap * sizeof *w->rws.rowof);
            w->rws.perm = malloc(w->pcap * sizeof *w->rws.perm);
            w->rws.count = malloc((dsae + 1) * sizeof *w->rws.count);
            if (!w->rb || !w->xr || !w->ids || !w->cref || !w->gstart || !w->rws.rowof || !w->rws.perm ||
                !w->rws.count)
                goto nomem;
        }
        if (!w->xbuf || !w->cbuf || (scratch && !w->scratch))
            goto nomem;
        if (d->n_layers && !(w->part = calloc(e->n_parts, sizeof *w->part)))
            goto nomem;
        for (uint32_t l = 0; w->part && l < e->n_parts; l++)
            if (!(w->part[l].start = malloc((rows + 1) * sizeof *w->part[l].start)))
                goto nomem;
        if (e->n_chunks > 1 && !(w->chunk = calloc(e->n_chunks, sizeof *w->chunk)))
            goto nomem;
        for (uint32_t c = 0; w->chunk && c < e->n_chunks; c++)
            if (!(w->chunk[c].start = malloc((rows + 1) * sizeof *w->chunk[c].start)))
                goto nomem;
        for (int j = 2 * i; j < 2 * i + 2; j++)
            if (!(e->slot[j].start = malloc((rows + 1) * sizeof *e->slot[j].start)))
                goto nomem;
        e->ws_workers = i + 1;
    }
    return LDB_OK;
nomem:
    free_workspace(e);
    return ldb_err_set(&e->err, LDB_ENOMEM, "out of memory for %d encoder tiles of %u rows x %zu "
                       "latents", nw, e->T, dsae);
}

/* Fills xbuf with the tile's encoder input (row r at x + r * stride elements);
 * returns the pointer the GEMM reads. */
static const float *prep_tile(const ldb_dict *d, float *xbuf, const void *x, size_t stride,
                              int dtype, uint64_t r0, uint32_t m)
{
    const ldb_dict_info *in = &d->info;
    size_t es = dtype == LDB_F32 ? 4 : 2, din = in->d_in;
    const uint8_t *src = (const uint8_t *)x + r0 * stride * es;
    if (dtype == LDB_F32 && !in->sub_b_dec && d->norm == NORM_NONE && stride == din &&
        ((uintptr_t)src & 3) == 0)
        return (const float *)(const void *)src;
    if (stride == din)
        ldb_to_f32(xbuf, src, dtype, (size_t)m * din);
    else
        for (uint32_t r = 0; r < m; r++)
            ldb_to_f32(xbuf + (size_t)r * din, src + (size_t)r * stride * es, dtype, din);
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

/* The exact encoder's screen and refinement (screen.h) of the rows from r0 on, of
 * latents [j0, j0 + n): as many rows as the group's candidates fit w->ids (a row adds
 * at most n), each selected in turn, then refined latent by latent (a latent's encoder
 * row read once for the group). w->gstart[r - r0] is row r's first candidate; returns
 * the row after the group. */
static uint32_t refine_group(const ldb_encoder *e, uint32_t l, struct worker *w, struct slot *s,
                             const float *xa, uint32_t r0, uint32_t m, uint32_t j0, uint32_t n)
{
    const ldb_dict *d = part(e->d, l);
    const ldb_refine *rf = e->refine[l];
    uint32_t din = d->info.d_in, r1 = r0;
    w->gstart[0] = 0;
    while (r1 < m && w->gstart[r1 - r0] + n <= w->pcap) {
        uint64_t at = w->gstart[r1 - r0];
        at += ldb_screen_select(d, rf, &w->rb[r1], &w->out, xa + (size_t)r1 * din,
                                w->cbuf + (size_t)r1 * n, j0, n, w->scratch, w->ids + at);
        w->gstart[++r1 - r0] = at;
    }
    ldb_screen_refine(rf, din, xa + (size_t)r0 * din, r1 - r0, w->gstart, w->ids, j0, n, &w->rws,
                      w->cref);
    s->refined += w->gstart[r1 - r0];
    return r1;
}

/* Latents [j0, j0 + n) of m rows, from their pre-activations in w->cbuf (row r at
 * cbuf + r * n), into slot s as CSR (ids of the part): the activation function on the
 * GEMM's values (BF16), or on the reference values of the exact encoder's candidates,
 * a group of rows at a time (xa the rows the GEMM multiplied, w->rb their bounds). A
 * row whose (reference) pre-activations hold NaN or Inf (the f32 sum overflowed:
 * finite but huge weights or activations) fails the tile with LDB_EBADVALUE. */
static int activate(const ldb_encoder *e, uint32_t l, struct worker *w, struct slot *s,
                    const float *xa, uint32_t m, uint32_t j0, uint32_t n)
{
    const ldb_dict *d = part(e->d, l);
    size_t bound = n < d->info.d_sae ? n : ldb_activate_bound(d), used = 0;
    s->start[0] = 0;
    for (uint32_t r0 = 0, r1; r0 < m; r0 = r1) {
        r1 = e->exact ? refine_group(e, l, w, s, xa, r0, m, j0, n) : m;
        for (uint32_t r = r0; r < r1; r++) {
            size_t k;
            float *c = w->cbuf + (size_t)r * n;
            int rc;
            if (grow(&s->lat, &s->val, &s->cap, used + bound))
                return LDB_ENOMEM;
            if (e->exact) {
                uint64_t a = w->gstart[r - r0], b = w->gstart[r - r0 + 1];
                rc = ldb_activate_list(d, w->cref + a, w->ids + a, (uint32_t)(b - a), w->scratch,
                                       s->lat + used, s->val + used, &k, &s->bad_lat, &s->bad_val);
            } else if (n < d->info.d_sae) {
                rc = ldb_activate_span(d, c, j0, n, s->lat + used, s->val + used, &k, &s->bad_lat,
                                       &s->bad_val);
            } else {
                rc = ldb_activate_row(d, c, w->scratch, s->lat + used, s->val + used, &k,
                                      &s->bad_lat, &s->bad_val);
            }
            if (rc) {
                s->bad_row = r;
                return LDB_EBADVALUE;
            }
            used += k;
            s->start[r + 1] = used;
        }
    }
    return LDB_OK;
}

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

/* One encode's tiles, shared by its workers under mu. Tile t goes to slot
 * t % nslots; a worker may claim it only once tile t - nslots has been handed on. */
typedef struct pool {
    ldb_encoder *e;
    const void *const *x;      /* per part */
    size_t stride;             /* elements from a row to the next, every part */
    int dtype;
    uint64_t n_rows;
    uint32_t T;
    uint64_t n_tiles, next, handed; /* tiles in all, claimed, handed to the callback */
    int nslots, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool;

/* The tile's GEMM, c = xa . W_enc for m rows, in the encoder's precision; lane is
 * the worker's (its own bf16 lane). */
static int gemm(const ldb_encoder *e, uint32_t l, int lane, const float *xa, uint32_t m, float *c,
                char *msg, size_t cap)
{
    const ldb_dict *d = part(e->d, l);
    const ldb_dict_info *in = &d->info;
    if (e->bf16)
        return ldb_bf16mm_run(e->bf16[l], lane, xa, m, c, msg, cap);
    ldb_blas_sgemm_rm(0, d->enc_trans, (int)m, (int)in->d_sae, (int)in->d_in, 1.0f, xa,
                      (int)in->d_in, d->W_enc, d->enc_trans ? (int)in->d_in : (int)in->d_sae,
                      0.0f, c, (int)in->d_sae);
    return LDB_OK;
}

/* Latents [j0, j0 + n) of the tile's GEMM (f32): c = xa . W_enc[:, j0 .. j0 + n). */
static void gemm_span(const ldb_dict *d, const float *xa, uint32_t m, uint32_t j0, uint32_t n,
                      float *c)
{
    const ldb_dict_info *in = &d->info;
    const float *b = d->enc_trans ? d->W_enc + (size_t)j0 * in->d_in : d->W_enc + j0;
    ldb_blas_sgemm_rm(0, d->enc_trans, (int)m, (int)n, (int)in->d_in, 1.0f, xa, (int)in->d_in, b,
                      d->enc_trans ? (int)in->d_in : (int)in->d_sae, 0.0f, c, (int)n);
}

/* Each row's codes of the slots q[0 .. n) one after another into s, ids plus off[i]
 * (NULL: none); ascending when the slots' ranges are. 0 or LDB_ENOMEM. */
static int merge_slots(const struct slot *q, uint32_t n, const ldb_dict_layer *off,
                       struct slot *s, uint32_t m)
{
    size_t total = 0, used = 0;
    for (uint32_t l = 0; l < n; l++)
        total += q[l].start[m];
    if (grow(&s->lat, &s->val, &s->cap, total ? total : 1))
        return LDB_ENOMEM;
    s->start[0] = 0;
    for (uint32_t r = 0; r < m; r++) {
        for (uint32_t l = 0; l < n; l++) {
            uint32_t o = off ? off[l].offset : 0;
            for (uint64_t i = q[l].start[r]; i < q[l].start[r + 1]; i++, used++) {
                s->lat[used] = q[l].lat[i] + o;
                s->val[used] = q[l].val[i];
            }
        }
        s->start[r + 1] = used;
    }
    return LDB_OK;
}

/* Part l's codes of rows [r0, r0 + m) into slot s on worker w: one GEMM, or one per
 * span of latents for a wide dictionary, merged. */
static int run_part(const pool *p, struct worker *w, struct slot *s, uint32_t l, uint64_t r0,
                    uint32_t m)
{
    const ldb_encoder *e = p->e;
    const ldb_dict *d = part(e->d, l);
    uint32_t din = d->info.d_in;
    const float *xa = prep_tile(d, w->xbuf, p->x[l], p->stride, p->dtype, r0, m), *xs = xa;
    if (e->exact) {
        /* the screen multiplies the rows without their outlier dimensions (xs); the
         * selection adds those back in f32, the reference reads xa */
        ldb_screen_outliers(d, xa, m, &w->out);
        if (w->out.n) {
            memcpy(w->xr, xa, (size_t)m * din * sizeof *xa);
            for (uint32_t r = 0; r < m; r++)
                for (uint32_t q = 0; q < w->out.n; q++)
                    w->xr[(size_t)r * din + w->out.dim[q]] = 0.0f;
            xs = w->xr;
        }
        for (uint32_t r = 0; r < m; r++)
            ldb_screen_rowbound(e->refine[l], e->screen, xa + (size_t)r * din, din, &w->out,
                                &w->rb[r]);
    }
    if (e->span >= d->info.d_sae) {
        int rc = gemm(e, l, (int)(w - e->work), xs, m, w->cbuf, s->msg, sizeof s->msg);
        return rc ? rc : activate(e, l, w, s, xa, m, 0, d->info.d_sae);
    }
    uint32_t nc = 0;
    for (uint32_t j0 = 0; j0 < d->info.d_sae; j0 += e->span, nc++) {
        uint32_t n = d->info.d_sae - j0 < e->span ? d->info.d_sae - j0 : e->span;
        struct slot *q = &w->chunk[nc];
        gemm_span(d, xs, m, j0, n, w->cbuf);
        q->refined = 0;
        int rc = activate(e, l, w, q, xa, m, j0, n);
        s->refined += q->refined;
        if (rc) {
            s->bad_row = q->bad_row;
            s->bad_lat = q->bad_lat;
            s->bad_val = q->bad_val;
            return rc;
        }
    }
    return merge_slots(w->chunk, nc, NULL, s, m);
}

/* Prepares, multiplies and activates tile t into slot s on worker w: each layer in
 * turn for a multi-layer dictionary, then merged. */
static int run_tile(const pool *p, struct worker *w, struct slot *s, uint64_t t)
{
    const ldb_encoder *e = p->e;
    uint64_t r0 = t * p->T;
    uint32_t m = (uint32_t)(p->n_rows - r0 < p->T ? p->n_rows - r0 : p->T), l = 0;
    int rc = LDB_OK;
    s->refined = 0;
    if (!e->d->n_layers)
        rc = run_part(p, w, s, 0, r0, m);
    else
        for (; l < e->n_parts && !rc; l++) {
            struct slot *q = &w->part[l];
            q->refined = 0;
            rc = run_part(p, w, q, l, r0, m);
            s->refined += q->refined;
            if (rc) {
                memcpy(s->msg, q->msg, sizeof s->msg);
                s->bad_row = q->bad_row;
                s->bad_lat = q->bad_lat + e->d->linfo[l].offset;
                s->bad_val = q->bad_val;
            }
        }
    if (!rc && e->d->n_layers)
        rc = merge_slots(w->part, e->n_parts, e->d->linfo, s, m);
    if (rc == LDB_EBADVALUE) {
        char layer[48] = "";
        if (e->d->n_layers)
            snprintf(layer, sizeof layer, " (layer %u)", l - 1);
        snprintf(s->msg, sizeof s->msg, "row %llu, latent %u%s: the pre-activation is %s (the "
                 "f32 sum overflowed: activations or encoder weights too large)",
                 (unsigned long long)(r0 + s->bad_row), s->bad_lat, layer,
                 s->bad_val != s->bad_val ? "NaN" : s->bad_val > 0 ? "+Inf" : "-Inf");
    } else if (rc == LDB_ENOMEM) {
        snprintf(s->msg, sizeof s->msg, "out of memory for sparse codes");
    }
    return rc;
}

static int can_claim(const pool *p)
{
    return !p->stop && p->next < p->n_tiles && p->next < p->handed + (uint64_t)p->nslots;
}

/* Claims the next tile and runs it on w; mu is held on entry and on return. */
static void work_one(pool *p, struct worker *w)
{
    uint64_t t = p->next++;
    struct slot *s = &p->e->slot[t % (uint64_t)p->nslots];
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
    struct worker *w;
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
    ldb_encoder *e = p->e;
    helper hs[LDB_WORKERS];
    pthread_t th[LDB_WORKERS];
    int started[LDB_WORKERS] = {0}, rc = LDB_OK;
    for (int i = 1; i < nw; i++) {
        hs[i] = (helper){p, &e->work[i]};
        started[i] = pthread_create(&th[i], NULL, helper_main, &hs[i]) == 0;
    }
    pthread_mutex_lock(&p->mu);
    while (p->handed < p->n_tiles) {
        uint64_t t = p->handed;
        struct slot *s = &e->slot[t % (uint64_t)p->nslots];
        if (s->state == SLOT_DONE) {
            pthread_mutex_unlock(&p->mu);
            if (s->rc) {
                rc = ldb_err_set(&e->err, s->rc, "%s", s->msg);
                if (s->rc == LDB_EBADVALUE) {
                    e->fault.set = 1;
                    e->fault.row = t * p->T + s->bad_row;
                    e->fault.latent = s->bad_lat;
                    e->fault.value = s->bad_val;
                }
            } else {
                uint64_t r0 = t * p->T;
                ldb_codes tile = {r0, (uint32_t)(p->n_rows - r0 < p->T ? p->n_rows - r0 : p->T),
                                  s->start, s->lat, s->val};
                if (e->exact) {
                    e->n_pairs += (uint64_t)tile.n_rows * e->d->info.d_sae;
                    e->n_refined += s->refined;
                }
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
            work_one(p, &e->work[0]);
        } else if (s->state == SLOT_FREE) {
            /* cannot happen: tiles are claimed in order, so the tile that stopped the
             * pool is handed on (and ends the loop) before an unclaimed one is reached */
            rc = ldb_err_set(&e->err, LDB_EINVAL, "encoder: tile %llu was never run",
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
        e->slot[i].state = SLOT_FREE;
    return rc;
}

/* The encode behind both entry points: part l's row r at x[l] + r * stride. */
static int encode(ldb_encoder *e, const void *const *x, size_t stride, int dtype, uint64_t n_rows,
                  ldb_codes_fn fn, void *ctx)
{
    int rc = LDB_OK;
    if (!e->ready) /* kept for its message; a binding may still call on it */
        return ldb_err_set(&e->err, LDB_EINVAL, "ldb_encoder_encode: ldb_encoder_new refused "
                           "this encoder");
    if (dtype != LDB_F32 && dtype != LDB_F16 && dtype != LDB_BF16)
        return ldb_err_set(&e->err, LDB_EINVAL, "unknown activation dtype %d", dtype);
    if (ldb_blas_load() != LDB_OK)
        return ldb_err_set(&e->err, LDB_EBLAS, "cannot load OpenBLAS (libopenblas.so.0); "
                           "install libopenblas0 (make deps)");
    if (n_rows == 0)
        return LDB_OK;
    e->fault.set = 0;
    pool p = {.e = e, .x = x, .stride = stride, .dtype = dtype, .n_rows = n_rows, .T = e->T};
    p.n_tiles = (n_rows + p.T - 1) / p.T;
    int nw = e->threads ? e->threads : ldb_blas_threads(), solo = 0;
    if (nw > LDB_WORKERS)
        nw = LDB_WORKERS;
    if ((uint64_t)nw > p.n_tiles)
        nw = (int)p.n_tiles;
    if (!e->bf16) { /* the GEMM is OpenBLAS's */
        solo = ldb_blas_solo(1) == 0;
        if (!solo)
            nw = 1; /* OpenBLAS threads each GEMM itself: one caller at a time */
    }
    if (nw < 1)
        nw = 1;
    if (!(rc = ensure_ws(e, nw))) {
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

int ldb_encoder_encode(ldb_encoder *e, const void *x, int dtype, uint64_t n_rows,
                       ldb_codes_fn fn, void *ctx)
{
    if (!e->ready || !e->d->n_layers)
        return encode(e, &x, e->ready ? e->d->info.d_in : 0, dtype, n_rows, fn, ctx);
    /* one array [n_rows][n_layers][d_in] */
    uint32_t n = e->n_parts, din = e->d->info.d_in;
    size_t es = dtype == LDB_F32 ? 4 : 2;
    const void **xs = malloc(n * sizeof *xs);
    if (!xs)
        return ldb_err_set(&e->err, LDB_ENOMEM, "out of memory");
    for (uint32_t l = 0; l < n; l++)
        xs[l] = (const uint8_t *)x + (size_t)l * din * es;
    int rc = encode(e, xs, (size_t)n * din, dtype, n_rows, fn, ctx);
    free(xs);
    return rc;
}

int ldb_encoder_encode_layers(ldb_encoder *e, const void *const *x, size_t row_stride, int dtype,
                              uint64_t n_rows, ldb_codes_fn fn, void *ctx)
{
    if (e->ready && row_stride && row_stride < e->d->info.d_in)
        return ldb_err_set(&e->err, LDB_EINVAL, "ldb_encoder_encode_layers: row_stride %zu is "
                           "shorter than a row (d_in %u)", row_stride, e->d->info.d_in);
    return encode(e, x, row_stride ? row_stride : e->ready ? e->d->info.d_in : 0, dtype, n_rows,
                  fn, ctx);
}
