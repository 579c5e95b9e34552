/* source.c — where a run's data comes from: the tokens, and per batch each
 * dictionary's codes, encoded from the activations (.npy, memory-mapped) or
 * imported from a scipy CSR .npz. Everything is checked before the first batch:
 * shapes, then every value the run will read. */
#include <float.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "run_impl.h"

uint64_t ingest_row_len(const run *r, uint64_t row)
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

/* The layers of the run's dictionaries: all the same count (1 for plain ones). */
int ingest_dict_layers(run *r, uint32_t *n)
{
    *n = 0;
    for (int i = 0; i < r->o->n_dicts; i++) {
        uint32_t l = r->dd[i]->n_layers ? r->dd[i]->n_layers : 1;
        if (*n && l != *n)
            return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "dictionary '%s' has %u layers but "
                               "'%s' has %u: dictionaries of different layer counts read different "
                               "activations; ingest them in separate runs", r->dd[i]->name, l,
                               r->dd[0]->name, *n);
        *n = l;
    }
    return LDB_OK;
}

/* "[1505, 1024]": an array's shape as messages name it. */
static const char *shape_str(const ldb_npy *a, char buf[128])
{
    int o = snprintf(buf, 128, "[");
    for (int i = 0; i < a->ndim && o < 100; i++)
        o += snprintf(buf + o, 128 - (size_t)o, "%s%llu", i ? ", " : "",
                      (unsigned long long)a->shape[i]);
    snprintf(buf + o, 128 - (size_t)o, "]");
    return buf;
}

/* Tokens and one activations file a describe the same positions: as many, and where
 * both have rows (activations [n_seq, ctx, ...]), the same rows. Flat tokens [n] with
 * activations in rows take their cut from --ctx, which must be the rows' length
 * (one row of all the tokens needs none): taking them as one sequence would let
 * context windows cross the rows. */
static int same_positions(run *r, const ldb_npy *a, const char *ap, uint64_t apos, int rows)
{
    const ldb_npy *t = &r->tok.a;
    const char *tp = r->o->tokens;
    char ts[128], as[128];
    if (rows && t->ndim == 1 && r->ctx != a->shape[1] && !r->o->ctx)
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: tokens of shape %s, but %s: "
                           "activations of shape %s, in rows of %llu positions; pass --ctx %llu to "
                           "cut the tokens into those rows (or save them as [%llu, %llu])", tp,
                           shape_str(t, ts), ap, shape_str(a, as), (unsigned long long)a->shape[1],
                           (unsigned long long)a->shape[1], (unsigned long long)a->shape[0],
                           (unsigned long long)a->shape[1]);
    if (rows && t->ndim == 1 && r->ctx != a->shape[1])
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: --ctx %u cuts the tokens (shape %s) "
                           "into rows of %u, but %s: activations of shape %s are rows of %llu", tp,
                           r->o->ctx, shape_str(t, ts), r->o->ctx, ap, shape_str(a, as),
                           (unsigned long long)a->shape[1]);
    if (apos != r->n_tokens ||
        (rows && t->ndim == 2 && (a->shape[0] != t->shape[0] || a->shape[1] != t->shape[1])))
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: activations of shape %s (%llu "
                           "positions), but %s: tokens of shape %s (%llu); they must describe the "
                           "same positions", ap, shape_str(a, as), (unsigned long long)apos, tp,
                           shape_str(t, ts), (unsigned long long)r->n_tokens);
    return LDB_OK;
}

/* Shapes: tokens [n_seq, ctx] or [n_tokens]; activations [n_seq, ctx, d_in] or
 * [n_tokens, d_in] (per layer file), or for a multi-layer dictionary in one file
 * [n_seq, ctx, n_layers, d_in] or [n_tokens, n_layers, d_in]; all describe the same
 * positions. */
static int check_inputs(run *r)
{
    ldb_db *db = r->db;
    const ldb_npy *t = &r->tok.a;
    const char *tp = r->o->tokens;
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
    uint32_t layers;
    int rc = ingest_dict_layers(r, &layers);
    if (rc)
        return rc;
    if (r->n_act > 1 && (uint32_t)r->n_act != layers)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%d activations files for %s '%s' of %u "
                           "layer%s; expected one per layer, in layer order", r->n_act,
                           layers > 1 ? "the multi-layer dictionary" : "the dictionary",
                           r->dd[0]->name, layers, layers > 1 ? "s" : "");
    /* one file of all layers has a layer axis before d_in */
    int axis = r->n_act == 1 && layers > 1;
    r->n_layers = layers;
    for (int f = 0; f < r->n_act; f++) {
        const ldb_npy *a = &r->act[f].a;
        const char *ap = r->act[f].f.path;
        if (a->type != LDB_NPY_F32 && a->type != LDB_NPY_F16)
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: activations of dtype %s; expected "
                               "float32 or float16", ap, ldb_npy_type_name(a->type));
        if (a->ndim < 2 + axis || a->ndim > 3 + axis)
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: %d dimensions; expected %s", ap,
                               a->ndim, axis ? "[n_seq, ctx, n_layers, d_in] or [n_tokens, n_layers, "
                               "d_in]" : "[n_seq, ctx, d_in] or [n_tokens, d_in]");
        if (axis && a->shape[a->ndim - 2] != layers)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: %llu layers on its axis %d but '%s' "
                               "has %u; pass one file per layer, or one array [.., %u, d_in]", ap,
                               (unsigned long long)a->shape[a->ndim - 2], a->ndim - 2,
                               r->dd[0]->name, layers, layers);
        uint32_t din = (uint32_t)a->shape[a->ndim - 1];
        int dt = a->type == LDB_NPY_F32 ? LDB_F32 : LDB_F16;
        if (f && (din != r->d_in || dt != r->act_dtype))
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: %s activations of d_in %u, but %s "
                               "holds %s of d_in %u; every layer's file must agree", ap,
                               dt == LDB_F32 ? "float32" : "float16", din, r->act[0].f.path,
                               r->act_dtype == LDB_F32 ? "float32" : "float16", r->d_in);
        r->d_in = din;
        r->act_dtype = dt;
        uint64_t per = (uint64_t)(r->d_in ? r->d_in : 1) * (axis ? layers : 1);
        if ((rc = same_positions(r, a, ap, a->count / per, a->ndim == 3 + axis)))
            return rc;
    }
    for (int i = 0; i < r->o->n_dicts; i++)
        if (r->dd[i]->d_in != r->d_in)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: activations have d_in = %u but "
                               "dictionary '%s' reads d_in = %u", r->act[0].f.path, r->d_in,
                               r->dd[i]->name, r->dd[i]->d_in);
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

int ingest_read_tokens(run *r, uint64_t pos, uint64_t n, uint32_t *out)
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

/* The message for an encode of positions from p0 that failed with erc; a value
 * out of range names its position, row, latent and value. */
static int encode_failed(run *r, int i, uint64_t p0, int erc, const sink *k)
{
    uint64_t row, p;
    uint32_t lat;
    float v;
    const char *ap = r->acts_name, *name = r->dd[i]->name;
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
int ingest_check_values(run *r)
{
    uint64_t p0 = r->rows_done * r->ctx < r->n_tokens ? r->rows_done * r->ctx : r->n_tokens;
    uint32_t tok[4096];
    for (uint64_t p = p0; p < r->n_tokens; p += 4096) {
        int rc = ingest_read_tokens(r, p, r->n_tokens - p < 4096 ? r->n_tokens - p : 4096, tok);
        if (rc)
            return ldb_err_set(ldb_db_err(r->db), rc, "%s (nothing was ingested)", r->perr.msg);
    }
    /* a new run records its inputs' content hashes: the activations are hashed in the
     * pass that scans them (inputid.c), the tokens and a codes file on their own */
    int rc = r->new_run ? ingest_input_content(r, &r->tok) : LDB_OK;
    if (!rc && r->new_run && r->o->codes)
        rc = ingest_input_content(r, &r->act[0]);
    if (rc)
        return rc;
    if (r->o->codes)
        return (rc = check_codes(r)) || !r->new_run ? rc : ingest_put_inputs(r);
    size_t es = r->act_dtype == LDB_F32 ? 4 : 2;
    uint64_t per = (uint64_t)r->d_in * (r->n_act == 1 ? r->n_layers : 1); /* elements a position */
    for (int f = 0; f < r->n_act; f++) {
        input *in = &r->act[f];
        int hash = r->new_run && !in->have_content;
        uint64_t bad, off = (uint64_t)(in->a.data - in->f.data) + p0 * per * es;
        if (ingest_pass(in->f.data, in->f.size, hash ? in->content : NULL, off,
                        (r->n_tokens - p0) * per, r->act_dtype, &bad))
            return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
        if (bad == UINT64_MAX && hash)
            in->have_content = 1;
        if (bad != UINT64_MAX) {
            uint64_t p = p0 + bad / per;
            return ldb_err_set(ldb_db_err(r->db), LDB_EBADVALUE, "%s: position %llu (row %llu, "
                               "position %llu)%s holds NaN or Inf; expected finite activations "
                               "(nothing was ingested)", in->f.path, (unsigned long long)p,
                               (unsigned long long)(p / r->ctx), (unsigned long long)(p % r->ctx),
                               r->n_act == 1 && r->n_layers > 1 ? ", at one of its layers," : "");
        }
    }
    return r->new_run ? ingest_put_inputs(r) : LDB_OK;
}

int ingest_codes(run *r, int i, uint64_t p0, uint64_t p1, csr *c)
{
    c->npos = c->nnz = 0;
    if (csr_grow(c, 0, 0))
        return ldb_err_set(&r->perr, LDB_ENOMEM, "out of memory");
    c->start[0] = 0;
    if (r->o->codes)
        return csr_rows(r, p0, p1, c);
    size_t es = r->act_dtype == LDB_F32 ? 4 : 2;
    sink k = {c, ldb_val_max(ldb_db_values(r->db)), 0, 0, 0};
    int erc;
    if (r->n_act == 1) { /* one file: rows of d_in, or of n_layers x d_in */
        const uint8_t *x = r->act[0].a.data + p0 * r->d_in * r->n_layers * es;
        erc = ldb_encoder_encode(r->enc[i], x, r->act_dtype, p1 - p0, collect, &k);
    } else {
        const void *xs[LDB_MAX_LAYERS];
        for (int f = 0; f < r->n_act; f++)
            xs[f] = r->act[f].a.data + p0 * r->d_in * es;
        erc = ldb_encoder_encode_layers(r->enc[i], xs, 0, r->act_dtype, p1 - p0, collect, &k);
    }
    return erc ? encode_failed(r, i, p0, erc, &k) : LDB_OK;
}

void ingest_csr_free(csr *c)
{
    free(c->start);
    free(c->lat);
    free(c->val);
}

/* The activations' (or codes') files of the run, joined by commas: its "acts". */
static int name_acts(run *r)
{
    size_t n = 1;
    for (int f = 0; f < r->n_act; f++)
        n += strlen(r->act[f].f.path) + 1;
    if (!(r->acts_name = malloc(n)))
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    r->acts_name[0] = 0;
    for (int f = 0; f < r->n_act; f++) {
        if (f)
            strcat(r->acts_name, ",");
        strcat(r->acts_name, r->act[f].f.path);
    }
    return LDB_OK;
}

int ingest_open_sources(run *r)
{
    const ldb_ingest_opts *o = r->o;
    int rc, layered = o->n_layer_acts > 0;
    if (layered && (o->acts || o->codes))
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "ingest takes activations in one file "
                           "(acts) or one file per layer (layer_acts), not both");
    if (o->n_layer_acts > LDB_MAX_LAYERS || o->n_layer_acts < 0 || (layered && !o->layer_acts))
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "layer_acts: %d files; expected 1..%d",
                           o->n_layer_acts, LDB_MAX_LAYERS);
    if (!layered && !o->acts && !o->codes)
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "ingest needs activations or codes");
    r->n_act = layered ? o->n_layer_acts : 1;
    if (!(r->act = calloc((size_t)r->n_act, sizeof *r->act)))
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    if ((rc = open_input(r, &r->tok, o->tokens, 1)))
        return rc;
    for (int f = 0; f < r->n_act; f++)
        if ((rc = open_input(r, &r->act[f], layered ? o->layer_acts[f] : o->codes ? o->codes
                                                                                  : o->acts,
                             !o->codes)))
            return rc;
    if ((rc = name_acts(r)) || (rc = check_inputs(r)))
        return rc;
    return r->o->codes ? LDB_OK : ingest_open_encoders(r);
}

int ingest_open_encoders(run *r)
{
    for (int i = 0; i < r->o->n_dicts; i++) {
        int drc = ldb_dict_open(r->dd[i]->path, &r->dict[i]);
        if (drc)
            return ldb_err_set(ldb_db_err(r->db), drc, "dictionary '%s': %s", r->dd[i]->name,
                               ldb_dict_errmsg(r->dict[i]));
        ldb_encoder_opts eo;
        ldb_encoder_opts_init(&eo);
        eo.precision = r->o->precision;
        if ((drc = ldb_encoder_new(r->dict[i], &eo, &r->enc[i])))
            return ldb_err_set(ldb_db_err(r->db), drc, "dictionary '%s': %s", r->dd[i]->name,
                               ldb_encoder_errmsg(r->enc[i]));
        const ldb_dict_info *in = ldb_dict_get_info(r->dict[i]);
        if (in->d_in != r->dd[i]->d_in || in->d_sae != r->dd[i]->d_sae)
            return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "dictionary '%s' at %s has changed "
                               "since it was added (%u -> %u, recorded %u -> %u)", r->dd[i]->name,
                               r->dd[i]->path, in->d_in, in->d_sae, r->dd[i]->d_in,
                               r->dd[i]->d_sae);
    }
    return LDB_OK;
}

void ingest_close_sources(run *r)
{
    for (int i = 0; i < r->o->n_dicts && r->enc; i++)
        ldb_encoder_free(r->enc[i]); /* before their dictionaries */
    for (int i = 0; i < r->o->n_dicts && r->dict; i++)
        ldb_dict_close(r->dict[i]);
    ldb_tensors_close(&r->csr);
    ldb_mfile_close(&r->tok.f);
    for (int f = 0; r->act && f < r->n_act; f++)
        ldb_mfile_close(&r->act[f].f);
    free(r->act);
    free(r->acts_name);
}
