/* query.c — per-latent queries: top examples (precomputed candidates, or a scan of
 * the postings), latent statistics with an exact histogram, the density histogram
 * of a dictionary, and database info. Each runs in one read transaction. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/opts.h"
#include "query_impl.h"

int ldb_q_begin(ldb_db *db, const char *dict, uint32_t latent, int need_latent, qctx *q)
{
    memset(q, 0, sizeof *q);
    q->db = db;
    if (dict && !(q->dd = ldb_db_find_dict(db, dict)))
        return LDB_ENOTFOUND;
    if (need_latent && latent >= q->dd->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent %u is out of range: '%s' has %u latents "
                           "(0..%u)", latent, dict, q->dd->d_sae, q->dd->d_sae - 1);
    return ldb_snap_begin(db, &q->txn);
}

void ldb_q_end(qctx *q)
{
    ldb_snap_end(q->db, q->txn);
    q->txn = NULL;
}

void ldb_examples_free(ldb_examples *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->n; i++)
        free(e->ex[i].tokens); /* values share it */
    free(e->ex);
    free(e);
}

uint64_t ldb_examples_contexts(const ldb_examples *e, uint32_t *tokens, float *values)
{
    uint64_t n = 0;
    for (uint32_t i = 0; e && i < e->n; i++) {
        const ldb_example *x = &e->ex[i];
        if (tokens && x->ctx_len)
            memcpy(tokens + n, x->tokens, x->ctx_len * sizeof *tokens);
        if (values && x->ctx_len)
            memcpy(values + n, x->values, x->ctx_len * sizeof *values);
        n += x->ctx_len;
    }
    return n;
}

static int cmp_cand(const void *a, const void *b)
{
    const ldb_cand *x = a, *y = b;
    return ldb_cand_before(x, y) ? -1 : ldb_cand_before(y, x) ? 1 : 0;
}

/* The skipped positions of the DB, ascending (ldb_skip_positions), when they are
 * fewer than 16 for each of the np codes to check (a position read from the index
 * costs a few ns, a token looked up at a code ~100 ns); else *n = SIZE_MAX, and
 * the caller looks the tokens up. */
static int skipped_positions(qctx *q, size_t np, uint64_t **out, size_t *n)
{
    uint64_t n_pos, n_ord;
    *out = NULL;
    *n = SIZE_MAX;
    int rc = ldb_db_meta_u64(q->db, q->txn, "n_pos", &n_pos);
    if (rc || (rc = ldb_db_meta_u64(q->db, q->txn, "n_ord", &n_ord)) || n_ord > n_pos ||
        (n_pos - n_ord) / 16 > np)
        return rc;
    return ldb_skip_positions(q->db, q->txn, out, n);
}

int ldb_q_latent_codes(qctx *q, uint32_t latent, int include_special, ldb_cand **out, size_t *n)
{
    uint64_t *pos = NULL, *sk = NULL;
    size_t np = 0, m = 0, nsk = 0, j = 0;
    ldb_fpos fp;
    ldb_tokcache tc;
    uint32_t tk;
    memset(&fp, 0, sizeof fp);
    memset(&tc, 0, sizeof tc);
    ldb_skipset skip = ldb_db_skipset(q->db);
    int check = !include_special && skip.n;
    int rc = ldb_inv_read(q->db, q->txn, q->dd, latent, &pos, &np);
    if (!rc && check)
        rc = skipped_positions(q, np, &sk, &nsk);
    ldb_cand *c = rc ? NULL : malloc((np ? np : 1) * sizeof *c);
    if (!rc && !c)
        rc = ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory");
    for (size_t i = 0; i < np && !rc; i++) {
        if (check && nsk != SIZE_MAX) { /* both ascend: a merge */
            while (j < nsk && sk[j] < pos[i])
                j++;
            if (j < nsk && sk[j] == pos[i])
                continue;
        } else if (check) {
            if ((rc = ldb_tok_at(q->db, q->txn, &tc, pos[i], &tk)))
                break;
            if (ldb_skip_has(&skip, tk))
                continue;
        }
        pos[m++] = pos[i]; /* kept: its value is read below */
    }
    float *v = rc || !m ? NULL : malloc(m * sizeof *v);
    if (!rc && m && !v)
        rc = ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory");
    if (!rc && m)
        rc = ldb_fwd_values(q->db, q->txn, q->dd, pos, m, latent, &fp, v);
    for (size_t i = 0; i < m && !rc; i++) {
        c[i].gpos = pos[i];
        c[i].value = v[i];
    }
    free(v);
    free(pos);
    free(sk);
    ldb_fpos_free(&fp);
    ldb_tokcache_free(&tc);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    *n = m;
    return LDB_OK;
}

int ldb_q_scan_latent(qctx *q, uint32_t latent, int include_special, ldb_cand **out, size_t *n)
{
    int rc = ldb_q_latent_codes(q, latent, include_special, out, n);
    if (!rc)
        qsort(*out, *n, sizeof **out, cmp_cand);
    return rc;
}

/* Keeps the first (best) candidate of each sequence, in order. */
static int distinct_seqs(qctx *q, ldb_cand *c, ldb_tctx *ctx, size_t *n)
{
    size_t m = 0;
    uint64_t *seen = malloc((*n ? *n : 1) * sizeof *seen);
    if (!seen)
        return ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        ldb_seqrec s;
        int rc = LDB_OK;
        if (ctx && ctx[i].len) /* stored with the candidate (format 3) */
            s.seq = ctx[i].seq;
        else
            rc = ldb_seq_find(q->db, q->txn, c[i].gpos, &s.seq, &s.start, &s.len);
        if (rc) {
            free(seen);
            return rc;
        }
        size_t j = 0;
        while (j < m && seen[j] != s.seq)
            j++;
        if (j == m) {
            seen[m] = s.seq;
            if (ctx)
                ctx[m] = ctx[i];
            c[m++] = c[i];
        }
    }
    free(seen);
    *n = m;
    return LDB_OK;
}

/* The example's sequence, position and value, without context; *s gets its sequence. */
static int place_example(qctx *q, const ldb_cand *c, const ldb_tctx *tc, ldb_seqrec *s,
                         ldb_example *e)
{
    if (tc && tc->len) { /* stored with the candidate (format 3) */
        s->seq = tc->seq;
        s->start = c->gpos - tc->pos;
        s->len = tc->len;
    } else {
        int rc = ldb_seq_find(q->db, q->txn, c->gpos, &s->seq, &s->start, &s->len);
        if (rc)
            return rc;
    }
    e->seq = s->seq;
    e->pos = (uint32_t)(c->gpos - s->start);
    e->value = c->value;
    e->ctx_start = e->pos;
    return LDB_OK;
}

int ldb_q_fill_example(qctx *q, uint32_t latent, const ldb_cand *c, const ldb_tctx *tc,
                       uint32_t context, ldb_fpos *fp, ldb_example *e)
{
    ldb_seqrec s;
    int rc = place_example(q, c, tc, &s, e);
    if (rc)
        return rc;
    e->ctx_start = e->pos > context ? e->pos - context : 0;
    uint64_t end = (uint64_t)e->pos + context + 1 < s.len ? (uint64_t)e->pos + context + 1 : s.len;
    e->ctx_len = (uint32_t)(end - e->ctx_start);
    /* one allocation: ctx_len token ids, then ctx_len values */
    if (!(e->tokens = malloc(2 * (size_t)e->ctx_len * sizeof *e->tokens)))
        return ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory");
    e->values = (float *)(e->tokens + e->ctx_len);
    if ((rc = ldb_seq_tokens_at(q->db, q->txn, s.start, e->ctx_start, e->ctx_len, e->tokens)))
        return rc;
    for (uint32_t i = 0; i < e->ctx_len && !rc; i++) {
        int off = (int)(e->ctx_start + i) - (int)e->pos;
        if (off == 0)
            e->values[i] = c->value; /* known */
        else if (tc && context <= LDB_TOPCTX) /* stored with the candidate */
            e->values[i] = tc->mask >> ldb_tctx_bit(off) & 1
                               ? ldb_val_float(tc->bits[ldb_tctx_bit(off)], ldb_db_values(q->db)) : 0;
        else
            rc = ldb_fwd_value(q->db, q->txn, q->dd, s.start + e->ctx_start + i, latent, fp,
                               &e->values[i]);
    }
    return rc;
}

void ldb_top_opts_init(ldb_top_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->k = 20;
    o->context = 8;
}

int ldb_query_top(ldb_db *db, const char *dict, uint32_t latent, const ldb_top_opts *user,
                  ldb_examples **out)
{
    ldb_top_opts opts, *o = &opts;
    qctx q;
    ldb_cand *c = NULL;
    ldb_tctx *ctx = NULL;
    size_t n = 0;
    ldb_fpos fp;
    memset(&fp, 0, sizeof fp);
    *out = NULL;
    ldb_top_opts_init(o);
    int rc = ldb_opts_load(o, sizeof *o, user, "ldb_top_opts", ldb_db_err(db));
    if (rc)
        return rc;
    uint32_t k = o->k ? o->k : 20;
    rc = ldb_q_begin(db, dict, latent, 1, &q);
    if (rc)
        goto out;
    int scan = k > LDB_TOPK || o->include_special;
    if (!scan) {
        if (!(c = malloc(LDB_TOPK * sizeof *c)) || !(ctx = malloc(LDB_TOPK * sizeof *ctx))) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            goto out;
        }
        int got = ldb_ltop_get(db, q.txn, q.dd->id, latent, c, ctx,
                               o->distinct_seq ? LDB_TOPK : (int)k);
        if (got < 0) {
            rc = got;
            goto out;
        }
        n = (size_t)got;
        if (o->distinct_seq) {
            if ((rc = distinct_seqs(&q, c, ctx, &n)))
                goto out;
            /* a full candidate list may hide further sequences: scan then */
            if (n < k && got == LDB_TOPK) {
                free(c);
                free(ctx);
                c = NULL;
                ctx = NULL;
                scan = 1;
            }
        }
    }
    if (scan) {
        if ((rc = ldb_q_scan_latent(&q, latent, o->include_special, &c, &n)))
            goto out;
        if (o->distinct_seq && (rc = distinct_seqs(&q, c, NULL, &n)))
            goto out;
    }
    if (n > k)
        n = k;
    ldb_examples *e = calloc(1, sizeof *e);
    if (!e || !(e->ex = calloc(n ? n : 1, sizeof *e->ex))) {
        free(e);
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        ldb_seqrec s;
        const ldb_tctx *tc = ctx ? &ctx[i] : NULL;
        rc = o->positions_only ? place_example(&q, &c[i], tc, &s, &e->ex[i])
                               : ldb_q_fill_example(&q, latent, &c[i], tc, o->context, &fp,
                                                    &e->ex[i]);
        e->n = (uint32_t)(i + 1);
    }
    if (rc)
        ldb_examples_free(e);
    else
        *out = e;
out:
    free(c);
    free(ctx);
    ldb_fpos_free(&fp);
    ldb_q_end(&q);
    return rc;
}

void ldb_latent_info_free(ldb_latent_info *l)
{
    if (!l)
        return;
    free(l->label);
    free(l->hist);
    free(l);
}

int ldb_query_latent(ldb_db *db, const char *dict, uint32_t latent, uint32_t bins,
                     ldb_latent_info **out)
{
    qctx q;
    ldb_lsum s;
    ldb_dstat ds;
    memset(&s, 0, sizeof s);
    *out = NULL;
    if (bins == 0 || bins > 10000)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "bins must be 1..10000, not %u", bins);
    int rc = ldb_q_begin(db, dict, latent, 1, &q);
    if (rc || (rc = ldb_lsum_get(db, q.txn, q.dd->id, latent, &s)) ||
        (rc = ldb_db_get_dstat(db, q.txn, q.dd->id, &ds)))
        goto out;
    ldb_latent_info *l = calloc(1, sizeof *l);
    if (!l || !(l->hist = calloc(bins, sizeof *l->hist))) {
        free(l);
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    l->count = s.count;
    l->nseq = s.nseq;
    l->density = ds.ordinary ? (double)s.count / (double)ds.ordinary : 0;
    l->max = s.max;
    l->mean = s.count ? s.sum / (double)s.count : 0;
    double var = s.count ? s.sumsq / (double)s.count - l->mean * l->mean : 0;
    l->std = var > 0 ? sqrt(var) : 0;
    l->nbins = bins;
    for (uint32_t i = 0; i < bins; i++) {
        l->hist[i].lo = l->max * i / bins;
        l->hist[i].hi = l->max * (i + 1) / bins;
    }
    for (uint32_t i = 0; i < s.nh; i++) {
        double v = ldb_val_float(s.hk[i], LDB_VAL_BF16);
        uint32_t b = l->max > 0 ? (uint32_t)(v / l->max * bins) : 0;
        l->hist[b < bins ? b : bins - 1].count += s.hc[i];
    }
    const char *label;
    size_t label_len;
    if (ldb_label_get(db, q.txn, q.dd->id, latent, &label, &label_len) == LDB_OK)
        l->label = strndup(label, label_len);
    *out = l;
out:
    ldb_lsum_free(&s);
    ldb_q_end(&q);
    return rc;
}

void ldb_density_free(ldb_density *d)
{
    if (!d)
        return;
    free(d->bins);
    free(d->counts);
    free(d);
}

int ldb_query_density(ldb_db *db, const char *dict, uint32_t bins, ldb_density **out)
{
    return ldb_query_density_layer(db, dict, LDB_ALL_LAYERS, bins, out);
}

int ldb_query_density_layer(ldb_db *db, const char *dict, uint32_t layer, uint32_t bins,
                            ldb_density **out)
{
    qctx q;
    ldb_dstat ds;
    ldb_density *d = NULL;
    uint64_t *all = NULL;
    uint32_t first = 0, end = 0;
    *out = NULL;
    if (bins == 0 || bins > 10000)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "bins must be 1..10000, not %u", bins);
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    if (rc || (rc = ldb_db_layer_span(db, q.dd, layer, &first, &end)) ||
        (rc = ldb_db_get_dstat(db, q.txn, q.dd->id, &ds)))
        goto out;
    d = calloc(1, sizeof *d);
    if (!d || !(d->bins = calloc(bins, sizeof *d->bins)) ||
        !(all = calloc(q.dd->d_sae, sizeof *all))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    d->n_tokens = ds.ordinary;
    d->n_latents = end - first;
    d->first = first;
    d->nbins = bins;
    if ((rc = ldb_lsum_counts(db, q.txn, q.dd, all)))
        goto out;
    if (first == 0 && end == q.dd->d_sae) { /* the whole dictionary: its array as it is */
        d->counts = all;
        all = NULL;
    } else if (!(d->counts = malloc((size_t)(end - first) * sizeof *d->counts))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    } else {
        memcpy(d->counts, all + first, (size_t)(end - first) * sizeof *d->counts);
    }
    uint64_t cmin = UINT64_MAX, cmax = 0; /* log10 rises with the count: two calls, not n */
    for (uint32_t j = 0; j < d->n_latents; j++) {
        uint64_t c = d->counts[j];
        d->dead += !c;
        if (c) {
            cmin = c < cmin ? c : cmin;
            cmax = c > cmax ? c : cmax;
        }
    }
    double lo = 0, hi = 0; /* (no live latent) */
    if (cmax) {
        lo = log10((double)cmin / (double)ds.ordinary);
        hi = log10((double)cmax / (double)ds.ordinary);
    }
    if (hi - lo < 1e-9) {
        lo -= 0.5;
        hi += 0.5;
    }
    for (uint32_t i = 0; i < bins; i++) {
        d->bins[i].lo = lo + (hi - lo) * i / bins;
        d->bins[i].hi = lo + (hi - lo) * (i + 1) / bins;
    }
    for (uint32_t j = 0; j < d->n_latents; j++) {
        if (!d->counts[j])
            continue;
        double x = log10((double)d->counts[j] / (double)ds.ordinary);
        uint32_t b = (uint32_t)((x - lo) / (hi - lo) * bins);
        d->bins[b < bins ? b : bins - 1].count++;
    }
    *out = d;
    d = NULL;
out:
    free(all);
    ldb_density_free(d);
    ldb_q_end(&q);
    return rc;
}

void ldb_info_free(ldb_info *i)
{
    if (!i)
        return;
    for (uint32_t j = 0; j < i->n_dicts; j++)
        free((char *)i->dicts[j].name);
    free(i->dicts);
    free(i->skip);
    free(i);
}

int ldb_query_info(ldb_db *db, ldb_info **out)
{
    qctx q;
    ldb_info *i = NULL;
    int nd;
    const ldb_dbdict *dicts = ldb_db_dicts(db, &nd);
    ldb_skipset skip = ldb_db_skipset(db);
    *out = NULL;
    int rc = ldb_q_begin(db, NULL, 0, 0, &q);
    if (rc)
        goto out;
    i = calloc(1, sizeof *i);
    if (!i || !(i->dicts = calloc((size_t)nd + 1, sizeof *i->dicts)) ||
        !(i->skip = malloc((skip.n + 1) * sizeof *i->skip))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_db_meta_u64(db, q.txn, "n_seq", &i->n_seq)) ||
        (rc = ldb_db_meta_u64(db, q.txn, "n_pos", &i->n_tokens)) ||
        (rc = ldb_db_meta_u64(db, q.txn, "n_ord", &i->n_ordinary)) ||
        (rc = ldb_db_bytes(db, q.txn, &i->bytes)))
        goto out;
    i->values = ldb_db_values(db);
    i->n_skip = (uint32_t)skip.n;
    memcpy(i->skip, skip.id, skip.n * sizeof *i->skip);
    for (int j = 0; j < nd; j++) {
        ldb_dstat ds;
        if ((rc = ldb_db_get_dstat(db, q.txn, dicts[j].id, &ds)))
            goto out;
        ldb_dict_usage *u = &i->dicts[i->n_dicts++];
        if (!(u->name = strdup(dicts[j].name))) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            goto out;
        }
        u->d_sae = dicts[j].d_sae;
        u->nnz = ds.nnz;
        u->positions = ds.positions;
        u->bytes = ldb_db_index_bytes(db, q.txn, &dicts[j]);
    }
    *out = i;
    i = NULL;
out:
    ldb_info_free(i);
    ldb_q_end(&q);
    return rc;
}

int ldb_seq_tokens(ldb_db *db, uint64_t seq, uint32_t pos, uint32_t n, uint32_t *out,
                   uint32_t *got)
{
    qctx q;
    ldb_seqrec s;
    *got = 0;
    int rc = ldb_q_begin(db, NULL, 0, 0, &q);
    if (rc || (rc = ldb_db_get_seq(db, q.txn, seq, &s)))
        goto out;
    if (pos > s.len) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "sequence %llu has %u positions",
                         (unsigned long long)seq, s.len);
        goto out;
    }
    if (n > s.len - pos)
        n = s.len - pos;
    if (!(rc = ldb_seq_tokens_at(db, q.txn, s.start, pos, n, out)))
        *got = n;
out:
    ldb_q_end(&q);
    return rc;
}
