/* ingest.c — a corpus run: tokens and activations (.npy, memory-mapped) go batch by
 * batch through the dictionaries' encoders into the batch writer. Every input is
 * checked before the first batch, so bad input leaves the DB as it was; each batch
 * commits with the run's progress, so a killed run resumes after its last batch. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "../common/opts.h"
#include "run_impl.h"

#define DEFAULT_BATCH_TOKENS 8192   /* the first batch; later ones are sized by codes */
#define MAX_BATCH_TOKENS 262144
#define BATCH_CODES 6000000          /* later batches aim at this many codes (memory) */

typedef struct csr {           /* a batch's codes for one dictionary */
    uint64_t *start;           /* positions + 1 */
    uint32_t *lat;
    float *val;
    size_t npos, nnz, cap_pos, cap_nnz;
} csr;

static uint64_t row_len(const run *r, uint64_t row)
{
    uint64_t s = row * r->ctx;
    return r->n_tokens - s < r->ctx ? r->n_tokens - s : r->ctx;
}

/* Maps an input; .npy files are parsed, others (the codes .npz) only mapped, with
 * their first 4 KiB standing in for the header in the run's identity. */
static int open_input(run *r, input *in, const char *path, int npy)
{
    ldb_err e = {{0}};
    int rc = ldb_mfile_open(&in->f, path, &e);
    if (!rc && npy)
        rc = ldb_npy_parse(&in->a, in->f.data, in->f.size, path, &e);
    if (rc)
        return ldb_err_set(ldb_db_err(r->db), rc, "%s", e.msg);
    if (!npy)
        in->a.data_offset = in->f.size < 4096 ? in->f.size : 4096;
    ingest_statsig(path, in->sig);
    ingest_sampled_hash(in->f.data, in->f.size, in->a.data_offset, in->sampled);
    return LDB_OK;
}

/* Elements of the CSR's arrays, whose dtypes check_csr allowed: int32/int64
 * indices, float32/float16/float64 data. */
static inline uint64_t int_at(const ldb_tensor *t, uint64_t i)
{
    if (t->elsize == 8) {
        uint64_t v;
        memcpy(&v, t->data + 8 * i, 8);
        return v;
    }
    uint32_t v;
    memcpy(&v, t->data + 4 * i, 4);
    return v;
}

static inline double float_at(const ldb_tensor *t, uint64_t i)
{
    float f;
    if (t->dtype == LDB_F32) {
        memcpy(&f, t->data + 4 * i, 4);
        return f;
    }
    if (t->elsize == 8) {
        double v;
        memcpy(&v, t->data + 8 * i, 8);
        return v;
    }
    ldb_to_f32(&f, t->data + t->elsize * i, t->dtype, 1);
    return f;
}

/* scipy.sparse.save_npz of a CSR matrix: data, indices, indptr, shape. */
static int check_csr(run *r)
{
    ldb_db *db = r->db;
    const char *cp = r->o->codes;
    ldb_err e = {{0}};
    if (ldb_npz_open(&r->csr, cp, &e))
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s", e.msg);
    const ldb_tensor *shape = ldb_tensors_find(&r->csr, "shape");
    r->data = ldb_tensors_find(&r->csr, "data");
    r->indices = ldb_tensors_find(&r->csr, "indices");
    r->indptr = ldb_tensors_find(&r->csr, "indptr");
    if (!shape || !r->data || !r->indices || !r->indptr)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: expected a scipy CSR matrix (save_npz): "
                           "members data, indices, indptr and shape", cp);
    int ok_int = (!strcmp(r->indices->dtype_name, "int32") || !strcmp(r->indices->dtype_name, "int64")) &&
                 (!strcmp(r->indptr->dtype_name, "int32") || !strcmp(r->indptr->dtype_name, "int64")) &&
                 !strcmp(shape->dtype_name, "int64") && shape->count == 2;
    int ok_data = r->data->dtype == LDB_F32 || r->data->dtype == LDB_F16 ||
                  !strcmp(r->data->dtype_name, "float64");
    if (!ok_int || !ok_data)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: expected int32/int64 indices and indptr, "
                           "float data (found %s, %s, %s)", cp, r->indices->dtype_name,
                           r->indptr->dtype_name, r->data->dtype_name);
    uint64_t rows = int_at(shape, 0), cols = int_at(shape, 1);
    if (rows != r->n_tokens || cols != r->dd[0]->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: codes of shape [%llu, %llu]; expected "
                           "[%llu, %u] (the tokens of %s, the latents of '%s')", cp,
                           (unsigned long long)rows, (unsigned long long)cols,
                           (unsigned long long)r->n_tokens, r->dd[0]->d_sae, r->o->tokens,
                           r->dd[0]->name);
    if (r->indptr->count != rows + 1 || r->indices->count != r->data->count ||
        int_at(r->indptr, 0) != 0 || int_at(r->indptr, rows) != r->data->count)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: indptr, indices and data do not agree",
                           cp);
    for (uint64_t i = 0; i < rows; i++)
        if (int_at(r->indptr, i + 1) < int_at(r->indptr, i))
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: indptr decreases at row %llu", cp,
                               (unsigned long long)i);
    for (uint64_t i = 0; i < r->indices->count; i++)
        if (int_at(r->indices, i) >= cols)
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: column index %llu out of range", cp,
                               (unsigned long long)int_at(r->indices, i));
    return LDB_OK;
}

typedef struct lv {
    uint32_t lat;
    float v;
} lv;

static int cmp_lv(const void *a, const void *b)
{
    const lv *x = a, *y = b;
    return x->lat < y->lat ? -1 : x->lat > y->lat;
}

/* Codes of positions [p0, p1) from the CSR: sorted per row, values > 0 kept. */
static int csr_rows(run *r, uint64_t p0, uint64_t p1, csr *c);

/* Shapes: tokens [n_seq, ctx] or [n_tokens]; activations [n_seq, ctx, d_in] or
 * [n_tokens, d_in]; both describe the same positions. */
static int check_inputs(run *r)
{
    ldb_db *db = r->db;
    const ldb_npy *t = &r->tok.a, *a = &r->act.a;
    const char *tp = r->o->tokens, *ap = r->o->acts;
    if (t->type != LDB_NPY_I32 && t->type != LDB_NPY_I64 && t->type != LDB_NPY_U32 &&
        t->type != LDB_NPY_U16)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: token ids of dtype %s; expected int32 or "
                           "int64", tp, ldb_npy_type_name(t->type));
    if (t->ndim == 2) {
        if (r->o->ctx && r->o->ctx != t->shape[1])
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: rows of %llu tokens but --ctx %u", tp,
                               (unsigned long long)t->shape[1], r->o->ctx);
        r->ctx = (uint32_t)t->shape[1];
    } else if (t->ndim == 1) {
        r->ctx = r->o->ctx ? r->o->ctx : (uint32_t)(t->shape[0] < UINT32_MAX ? t->shape[0] : 0);
    } else {
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: %d dimensions; expected [n_seq, ctx] or "
                           "[n_tokens]", tp, t->ndim);
    }
    r->n_tokens = t->count;
    if (r->n_tokens == 0 || r->ctx == 0)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: no tokens", tp);
    if (t->shape[0] > UINT32_MAX && t->ndim == 1 && !r->o->ctx)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: one sequence of %llu tokens is too long; "
                           "cut it with --ctx", tp, (unsigned long long)t->shape[0]);
    r->n_rows = (r->n_tokens + r->ctx - 1) / r->ctx;
    if (r->o->codes)
        return check_csr(r);
    if (a->type != LDB_NPY_F32 && a->type != LDB_NPY_F16)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: activations of dtype %s; expected float32 "
                           "or float16", ap, ldb_npy_type_name(a->type));
    if (a->ndim < 2 || a->ndim > 3)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: %d dimensions; expected [n_seq, ctx, d_in] "
                           "or [n_tokens, d_in]", ap, a->ndim);
    r->d_in = (uint32_t)a->shape[a->ndim - 1];
    r->act_dtype = a->type == LDB_NPY_F32 ? LDB_F32 : LDB_F16;
    uint64_t apos = a->count / (r->d_in ? r->d_in : 1);
    if (apos != r->n_tokens || (a->ndim == 3 && t->ndim == 2 &&
                                (a->shape[0] != t->shape[0] || a->shape[1] != t->shape[1])))
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: activations for %llu positions, but %s "
                           "holds %llu tokens; they must describe the same positions", ap,
                           (unsigned long long)apos, tp, (unsigned long long)r->n_tokens);
    for (int i = 0; i < r->o->n_dicts; i++)
        if (r->dd[i]->d_in != r->d_in)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: activations have d_in = %u but "
                               "dictionary '%s' reads d_in = %u", ap, r->d_in, r->dd[i]->name,
                               r->dd[i]->d_in);
    return LDB_OK;
}

static int csr_grow(csr *c, size_t npos, size_t nnz)
{
    if (npos + 1 > c->cap_pos) {
        size_t cap = c->cap_pos ? c->cap_pos : 4096;
        while (cap < npos + 1)
            cap *= 2;
        uint64_t *p = realloc(c->start, cap * sizeof *p);
        if (!p)
            return -1;
        c->start = p;
        c->cap_pos = cap;
    }
    if (nnz > c->cap_nnz) {
        size_t cap = c->cap_nnz ? c->cap_nnz : 65536;
        while (cap < nnz)
            cap *= 2;
        uint32_t *l = realloc(c->lat, cap * sizeof *l);
        if (l)
            c->lat = l;
        float *v = realloc(c->val, cap * sizeof *v);
        if (v)
            c->val = v;
        if (!l || !v)
            return -1;
        c->cap_nnz = cap;
    }
    return 0;
}

static int csr_rows(run *r, uint64_t p0, uint64_t p1, csr *c)
{
    lv *row = NULL;
    size_t cap = 0;
    for (uint64_t p = p0; p < p1; p++) {
        uint64_t a = int_at(r->indptr, p), b = int_at(r->indptr, p + 1);
        if (b - a > cap) {
            cap = b - a;
            lv *n = realloc(row, cap * sizeof *n);
            if (!n) {
                free(row);
                return ldb_err_set(&r->perr, LDB_ENOMEM, "out of memory");
            }
            row = n;
        }
        size_t m = 0;
        int sorted = 1;
        for (uint64_t i = a; i < b; i++) {
            double v = float_at(r->data, i);
            if (v != v || v < 0 || v > 3.4e38) {
                free(row);
                return ldb_err_set(&r->perr, LDB_EBADVALUE, "%s: row %llu holds %g; codes "
                                   "must be finite and >= 0", r->o->codes,
                                   (unsigned long long)p, v);
            }
            if (v > 0) {
                row[m].lat = (uint32_t)int_at(r->indices, i);
                sorted &= !m || row[m].lat > row[m - 1].lat;
                row[m++].v = (float)v;
            }
        }
        if (!sorted) /* scipy keeps rows sorted (has_sorted_indices), others need not */
            qsort(row, m, sizeof *row, cmp_lv);
        for (size_t i = 1; i < m; i++)
            if (row[i].lat == row[i - 1].lat) {
                uint32_t twice = row[i].lat;
                free(row);
                return ldb_err_set(&r->perr, LDB_EFORMAT, "%s: row %llu has latent %u twice",
                                   r->o->codes, (unsigned long long)p, twice);
            }
        if (csr_grow(c, c->npos + 1, c->nnz + m)) {
            free(row);
            return ldb_err_set(&r->perr, LDB_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < m; i++) {
            c->lat[c->nnz + i] = row[i].lat;
            c->val[c->nnz + i] = row[i].v;
        }
        c->nnz += m;
        c->start[++c->npos] = c->nnz;
    }
    free(row);
    return LDB_OK;
}

/* collect's context: a batch's codes of one dictionary, and the first code past
 * what the database's value type stores (finding it stops the encode). */
typedef struct sink {
    csr *c;
    float vmax;                /* ldb_val_max of the database's value type */
    uint64_t bad_pos;          /* the code past vmax: its position in the batch */
    uint32_t bad_lat;
    float bad_val;
} sink;

/* Takes a tile of codes, refusing any value the database would store as Inf (or NaN):
 * checked here, on the encode side, nothing of the batch reaches the writer. One
 * compare per code, beside the GEMM's 2 d_in per latent. */
static int collect(void *arg, const ldb_codes *t)
{
    sink *k = arg;
    csr *c = k->c;
    uint64_t base = t->start[0], n = t->start[t->n_rows] - base;
    const float *v = t->value + base;
    unsigned over = 0;
    for (uint64_t i = 0; i < n; i++)
        over |= !(v[i] <= k->vmax);
    if (over) {
        uint64_t i = 0;
        while (v[i] <= k->vmax)
            i++;
        uint32_t r = 0;
        while (t->start[r + 1] <= base + i)
            r++;
        k->bad_pos = c->npos + r;
        k->bad_lat = t->latent[base + i];
        k->bad_val = v[i];
        return LDB_EBADVALUE;
    }
    if (csr_grow(c, c->npos + t->n_rows, c->nnz + n))
        return LDB_ENOMEM;
    for (uint32_t r = 0; r < t->n_rows; r++)
        c->start[c->npos + r + 1] = c->nnz + (t->start[r + 1] - base);
    memcpy(c->lat + c->nnz, t->latent + base, n * sizeof *c->lat);
    memcpy(c->val + c->nnz, v, n * sizeof *c->val);
    c->npos += t->n_rows;
    c->nnz += n;
    return 0;
}

static int read_tokens(run *r, uint64_t pos, uint64_t n, uint32_t *out)
{
    const ldb_npy *t = &r->tok.a;
    for (uint64_t i = 0; i < n; i++) {
        int64_t v;
        const uint8_t *p = t->data + (pos + i) * t->elsize;
        if (t->type == LDB_NPY_I32) {
            int32_t x;
            memcpy(&x, p, 4);
            v = x;
        } else if (t->type == LDB_NPY_I64) {
            memcpy(&v, p, 8);
        } else if (t->type == LDB_NPY_U32) {
            uint32_t x;
            memcpy(&x, p, 4);
            v = x;
        } else {
            uint16_t x;
            memcpy(&x, p, 2);
            v = x;
        }
        if (v < 0 || v > (int64_t)UINT32_MAX)
            return ldb_err_set(&r->perr, LDB_EFORMAT, "%s: token id %lld at position %llu is "
                               "out of range", r->o->tokens, (long long)v,
                               (unsigned long long)(pos + i));
        out[i] = (uint32_t)v;
    }
    return LDB_OK;
}

/* A batch in flight: rows [r0, r1), their tokens and each dictionary's codes. Two
 * of them alternate: one is encoded while the other is written. */
typedef struct bbuf {
    uint64_t r0, r1;
    uint64_t next_rows;        /* rows of the batch after this one (the run record keeps it) */
    uint32_t *toks;
    csr *codes;                /* one per dictionary */
} bbuf;

/* The message for an encode of positions from p0 that failed with erc; a value
 * out of range names its position, row, latent and value. */
static int encode_failed(run *r, int i, uint64_t p0, int erc, const sink *k)
{
    uint64_t row, p;
    uint32_t lat;
    float v;
    const char *ap = r->o->acts, *name = r->dd[i]->name;
    if (erc == LDB_ENOMEM)
        return ldb_err_set(&r->perr, erc, "out of memory");
    if (erc == LDB_EBADVALUE && ldb_encoder_fault(r->enc[i], &row, &lat, &v) == LDB_OK) {
        p = p0 + row;
        return ldb_err_set(&r->perr, erc, "%s: position %llu (row %llu, position %llu): "
                           "dictionary '%s', latent %u: the pre-activation is %s (the f32 sum "
                           "overflowed: activations or encoder weights too large); nothing of "
                           "this batch was written", ap, (unsigned long long)p,
                           (unsigned long long)(p / r->ctx), (unsigned long long)(p % r->ctx),
                           name, lat, v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    }
    if (erc == LDB_EBADVALUE) { /* collect's refusal */
        p = p0 + k->bad_pos;
        int vt = ldb_db_values(r->db);
        float top = ldb_val_float(ldb_val_bits(ldb_val_max(vt), vt), vt);
        return ldb_err_set(&r->perr, erc, "%s: position %llu (row %llu, position %llu): "
                           "dictionary '%s', latent %u has the value %g, past the largest a "
                           "%s database stores (%g)%s; nothing of this batch was written", ap,
                           (unsigned long long)p, (unsigned long long)(p / r->ctx),
                           (unsigned long long)(p % r->ctx), name, k->bad_lat, (double)k->bad_val,
                           ldb_val_name(vt), (double)top,
                           !isfinite(k->bad_val) ? " (x.W_enc + b_enc overflowed f32)"
                           : vt != LDB_VAL_F32 ? " (a database made with --values f32 stores it)"
                                               : "");
    }
    return ldb_err_set(&r->perr, erc, "%s", ldb_encoder_errmsg(r->enc[i]));
}

/* The encode side of a batch (no database access: it runs beside a commit). */
static int prep_batch(run *r, bbuf *bb)
{
    uint64_t p0 = bb->r0 * r->ctx, p1 = bb->r1 * r->ctx < r->n_tokens ? bb->r1 * r->ctx : r->n_tokens;
    size_t es = r->act_dtype == LDB_F32 ? 4 : 2;
    const uint8_t *x = r->o->codes ? NULL : r->act.a.data + p0 * r->d_in * es;
    int rc = read_tokens(r, p0, p1 - p0, bb->toks);
    for (int i = 0; i < r->o->n_dicts && !rc; i++) {
        csr *c = &bb->codes[i];
        c->npos = c->nnz = 0;
        if (csr_grow(c, 0, 0))
            return ldb_err_set(&r->perr, LDB_ENOMEM, "out of memory");
        c->start[0] = 0;
        if (r->o->codes) {
            rc = csr_rows(r, p0, p1, c);
            continue;
        }
        sink k = {c, ldb_val_max(ldb_db_values(r->db)), 0, 0, 0};
        int erc = ldb_encoder_encode(r->enc[i], x, r->act_dtype, p1 - p0, collect, &k);
        if (erc)
            rc = encode_failed(r, i, p0, erc, &k);
    }
    return rc;
}

/* The CSR row (position) of code i: the last p with indptr[p] <= i < indptr[p + 1]. */
static uint64_t code_pos(const run *r, uint64_t i)
{
    uint64_t lo = 0, hi = r->n_tokens; /* indptr[lo] <= i < indptr[hi] */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (int_at(r->indptr, mid) <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Imported codes: finite, >= 0, and within what the database's value type stores
 * (an f16 database would keep 70000 as +Inf), all of them before anything is written. */
static int check_codes(run *r)
{
    int vt = ldb_db_values(r->db);
    float vmax = ldb_val_max(vt);
    for (uint64_t i = 0; i < r->data->count; i++) {
        double v = float_at(r->data, i);
        if (v >= 0 && (v <= vmax || (v <= FLT_MAX && (float)v <= vmax)))
            continue;
        uint64_t p = code_pos(r, i);
        char what[160];
        if (!isfinite(v))
            snprintf(what, sizeof what, "is NaN or Inf; expected finite values");
        else if (v < 0)
            snprintf(what, sizeof what, "is %g; codes must be >= 0", v);
        else
            snprintf(what, sizeof what, "is %g, past the largest a %s database stores (%g)%s", v,
                     ldb_val_name(vt), (double)ldb_val_float(ldb_val_bits(vmax, vt), vt),
                     vt != LDB_VAL_F32 && v <= FLT_MAX ? "; a database made with --values f32 "
                                                         "stores it" : "");
        return ldb_err_set(ldb_db_err(r->db), LDB_EBADVALUE, "%s: code %llu, at position %llu (row "
                           "%llu, position %llu), latent %llu, %s (nothing was imported)",
                           r->o->codes, (unsigned long long)i, (unsigned long long)p,
                           (unsigned long long)(p / r->ctx), (unsigned long long)(p % r->ctx),
                           (unsigned long long)int_at(r->indices, i), what);
    }
    return LDB_OK;
}

/* Every value the run will read, before it writes anything, so that bad input
 * leaves the database as it was: token ids in range, activations (or imported
 * codes) finite. NaN or Inf fails the run: a silently skipped position would
 * shift densities without anyone knowing (docs/RELIABILITY.md). */
static int check_values(run *r)
{
    uint64_t p0 = r->rows_done * r->ctx < r->n_tokens ? r->rows_done * r->ctx : r->n_tokens;
    uint32_t tok[4096];
    for (uint64_t p = p0; p < r->n_tokens; p += 4096) {
        int rc = read_tokens(r, p, r->n_tokens - p < 4096 ? r->n_tokens - p : 4096, tok);
        if (rc)
            return ldb_err_set(ldb_db_err(r->db), rc, "%s (nothing was ingested)", r->perr.msg);
    }
    /* a new run records its inputs' content hashes: the activations are hashed in the
     * pass that scans them (inputid.c), the tokens and a codes file on their own */
    int hash = r->new_run && !r->act.have_content;
    int rc = r->new_run ? ingest_input_content(r, &r->tok) : LDB_OK;
    if (!rc && r->new_run && r->o->codes)
        rc = ingest_input_content(r, &r->act);
    if (rc)
        return rc;
    if (r->o->codes)
        return (rc = check_codes(r)) || !r->new_run ? rc : ingest_put_inputs(r);
    size_t es = r->act_dtype == LDB_F32 ? 4 : 2;
    uint64_t bad, off = (uint64_t)(r->act.a.data - r->act.f.data) + p0 * r->d_in * es;
    if (ingest_pass(r->act.f.data, r->act.f.size, hash ? r->act.content : NULL, off,
                    (r->n_tokens - p0) * r->d_in, r->act_dtype, &bad))
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    if (bad == UINT64_MAX && hash)
        r->act.have_content = 1;
    if (bad != UINT64_MAX) {
        uint64_t p = p0 + bad / r->d_in;
        return ldb_err_set(ldb_db_err(r->db), LDB_EBADVALUE, "%s: position %llu (row %llu, position "
                           "%llu) holds NaN or Inf; expected finite activations (nothing was "
                           "ingested)", r->o->acts, (unsigned long long)p,
                           (unsigned long long)(p / r->ctx), (unsigned long long)(p % r->ctx));
    }
    return r->new_run ? ingest_put_inputs(r) : LDB_OK;
}

/* The store side: sequences, codes and the run's progress, in one transaction. */
static int commit_batch_once(run *r, const bbuf *bb)
{
    ldb_db *db = r->db;
    ldb_writer *w = NULL;
    uint64_t p0 = bb->r0 * r->ctx;
    uint32_t source = 0;
    int rc = ldb_writer_begin(db, &w);
    if (rc)
        return rc;
    if (r->indptr) /* an import: the encode side leaves a core free */
        ldb_writer_set_threads(w, 2);
    rc = ldb_writer_source(w, r->o->source ? r->o->source : r->o->tokens, &source);
    for (uint64_t row = bb->r0; row < bb->r1 && !rc; row++) {
        uint64_t off = row * r->ctx - p0, len = row_len(r, row);
        uint8_t hash[16];
        ldb_seqrec seq;
        int found = 0;
        ldb_tokens_hash(bb->toks + off, (uint32_t)len, hash);
        rc = ldb_writer_attach(w, hash, r->ids, r->o->n_dicts, &seq, &found);
        if (!rc && !found)
            rc = ldb_writer_add_seq(w, bb->toks + off, (uint32_t)len, source, row, hash, &seq);
        for (int i = 0; i < r->o->n_dicts && !rc; i++) {
            const csr *c = &bb->codes[i];
            rc = ldb_writer_codes(w, r->ids[i], &seq, bb->toks + off, c->start + off, c->lat,
                                  c->val);
        }
    }
    if (!rc)
        rc = ingest_put_run(r, w, bb->r0, bb->r1, bb->next_rows, bb->r1 == r->n_rows);
    if (rc) {
        ldb_writer_abort(w);
        return rc;
    }
    if ((rc = ldb_writer_commit(w)))
        return rc;
    if (r->o->progress) {
        uint64_t done = bb->r1 * r->ctx < r->n_tokens ? bb->r1 * r->ctx : r->n_tokens;
        r->o->progress(r->o->progress_ctx, done, r->n_tokens);
    }
    return LDB_OK;
}

/* A batch that fills the map is written again into a map twice the size. */
static int commit_batch(run *r, const bbuf *bb)
{
    int rc = commit_batch_once(r, bb);
    while (rc && ldb_db_grow_map(r->db) == LDB_OK)
        rc = commit_batch_once(r, bb);
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
    j->rc = commit_batch(j->r, j->bb);
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
            rc = commit_batch(r, bb); /* no thread to be had: write it here */
        }
    }
    if (busy) {
        pthread_join(th, NULL);
        if (!rc)
            rc = joined(r, &job);
    }
    return rc;
}

void ldb_ingest_opts_init(ldb_ingest_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
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
    if (o->n_dicts < 1)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "ingest needs at least one dictionary");
    r.dd = calloc((size_t)o->n_dicts, sizeof *r.dd);
    r.dict = calloc((size_t)o->n_dicts, sizeof *r.dict);
    r.enc = calloc((size_t)o->n_dicts, sizeof *r.enc);
    r.ids = calloc((size_t)o->n_dicts, sizeof *r.ids);
    bbuf bufs[2];
    memset(bufs, 0, sizeof bufs);
    bufs[0].codes = calloc((size_t)o->n_dicts, sizeof *bufs[0].codes);
    bufs[1].codes = calloc((size_t)o->n_dicts, sizeof *bufs[1].codes);
    if (!r.dd || !r.dict || !r.enc || !r.ids || !bufs[0].codes || !bufs[1].codes) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < o->n_dicts; i++) {
        for (int j = 0; j < i; j++)
            if (!strcmp(o->dicts[i], o->dicts[j])) {
                rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "dictionary '%s' named twice", o->dicts[i]);
                goto out;
            }
        if (!(r.dd[i] = ldb_db_find_dict(db, o->dicts[i]))) {
            rc = LDB_ENOTFOUND;
            goto out;
        }
        r.ids[i] = r.dd[i]->id;
    }
    if (o->codes && o->n_dicts != 1) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "import takes one dictionary");
        goto out;
    }
    if ((rc = open_input(&r, &r.tok, o->tokens, 1)) ||
        (rc = open_input(&r, &r.act, o->codes ? o->codes : o->acts, !o->codes)) ||
        (rc = check_inputs(&r)))
        goto out;
    for (int i = 0; i < o->n_dicts && !o->codes; i++) {
        int drc = ldb_dict_open(r.dd[i]->path, &r.dict[i]);
        if (drc) {
            rc = ldb_err_set(ldb_db_err(db), drc, "dictionary '%s': %s", r.dd[i]->name,
                             ldb_dict_errmsg(r.dict[i]));
            goto out;
        }
        ldb_encoder_opts eo;
        ldb_encoder_opts_init(&eo);
        eo.precision = o->precision;
        if ((drc = ldb_encoder_new(r.dict[i], &eo, &r.enc[i]))) {
            rc = ldb_err_set(ldb_db_err(db), drc, "dictionary '%s': %s", r.dd[i]->name,
                             ldb_encoder_errmsg(r.enc[i]));
            goto out;
        }
        const ldb_dict_info *in = ldb_dict_get_info(r.dict[i]);
        if (in->d_in != r.dd[i]->d_in || in->d_sae != r.dd[i]->d_sae) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "dictionary '%s' at %s has changed since it "
                             "was added (%u -> %u, recorded %u -> %u)", r.dd[i]->name,
                             r.dd[i]->path, in->d_in, in->d_sae, r.dd[i]->d_in, r.dd[i]->d_sae);
            goto out;
        }
    }
    if ((rc = ingest_find_run(&r)) || (rc = check_values(&r)))
        goto out;
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
            !(rc = ingest_put_run(&r, w, r.rows_done, r.n_rows, 0, 1)))
            rc = ldb_writer_commit(w);
        else
            ldb_writer_abort(w);
    }
    if (!rc)
        rc = run_batches(&r, rows_per, max_rows, bufs);
out:
    ldb_writer_drop_spare(db); /* the batches' buffers: a handle may live on */
    for (int i = 0; i < o->n_dicts && r.enc; i++)
        ldb_encoder_free(r.enc[i]); /* before their dictionaries */
    for (int i = 0; i < o->n_dicts && r.dict; i++)
        ldb_dict_close(r.dict[i]);
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < o->n_dicts && bufs[b].codes; i++) {
            free(bufs[b].codes[i].start);
            free(bufs[b].codes[i].lat);
            free(bufs[b].codes[i].val);
        }
        free(bufs[b].codes);
        free(bufs[b].toks);
    }
    free(r.dd);
    free(r.dict);
    free(r.enc);
    free(r.ids);

    cJSON_Delete(r.rec);
    ldb_tensors_close(&r.csr);
    ldb_mfile_close(&r.tok.f);
    ldb_mfile_close(&r.act.f);
    return rc;
}
