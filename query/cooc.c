/* cooc.c — exact co-occurrence over the whole corpus: walk the query latent's
 * postings, decode the forward blocks (latent ids only) they touch, and count every
 * latent that fires in the same unit (position, window or sequence) in a dense array
 * of d_sae counters. Skipped positions take part in no unit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../db/reader.h"
#include "query_impl.h"

typedef struct cctx {
    ldb_db *db;
    ldb_txn *txn;
    const ldb_dbdict *a, *b;   /* query latent's dict, counted dict */
    uint32_t lo, hi;           /* b's latents ranked: [lo, hi) (one layer, or all) */
    ldb_fpos fp;
    uint32_t *stamp;           /* b's latents: last unit counted (+1) */
    uint64_t *cnt;
    uint32_t *tok;             /* tokens of the current sequence */
    size_t tok_cap;
    uint8_t *mark, *skipbuf;   /* per position of the current sequence */
    uint32_t *ps;              /* the query latent's positions in it */
    uint32_t maxlen;           /* of mark, skipbuf, ps */
    ldb_skipset skip;
} cctx;

static int seq_tokens(cctx *c, const ldb_seqrec *s)
{
    if (s->len > c->tok_cap) {
        uint32_t *t = realloc(c->tok, s->len * sizeof *t);
        if (!t)
            return ldb_err_set(ldb_db_err(c->db), LDB_ENOMEM, "out of memory");
        c->tok = t;
        c->tok_cap = s->len;
    }
    return ldb_seq_tokens_at(c->db, c->txn, s->start, 0, s->len, c->tok);
}

/* Counts, once per unit id, every b-latent firing at gpos. */
static int count_at(cctx *c, uint64_t gpos, uint32_t unit)
{
    int rc = ldb_fwd_at(c->db, c->txn, c->b, gpos, 0, &c->fp);
    if (rc == LDB_ENOTFOUND)
        return LDB_OK; /* b does not cover it */
    if (rc)
        return rc;
    for (uint32_t e = 0; e < c->fp.cnt; e++) {
        uint32_t l = c->fp.lat[e];
        if (c->stamp[l] != unit + 1) {
            c->stamp[l] = unit + 1;
            c->cnt[l]++;
        }
    }
    return LDB_OK;
}

/* Ordinary centres c of s with some ordinary position of `pos` within +-w, as a
 * bitmap over the sequence (1 = centre's window holds a firing). */
static void window_centres(const uint32_t *pos_in_seq, size_t n, uint32_t len, uint32_t w,
                           const uint8_t *skip, uint8_t *mark)
{
    memset(mark, 0, len);
    for (size_t i = 0; i < n; i++) {
        uint32_t p = pos_in_seq[i];
        if (skip[p])
            continue;
        uint32_t lo = p > w ? p - w : 0, hi = p + w + 1 < len ? p + w + 1 : len;
        memset(mark + lo, 1, hi - lo);
    }
    for (uint32_t i = 0; i < len; i++)
        mark[i] &= !skip[i];
}

static int cmp_item(const void *x, const void *y, int sort)
{
    const ldb_cooc_item *a = x, *b = y;
    double ka = sort == LDB_SORT_COUNT ? (double)a->count : sort == LDB_SORT_NPMI ? a->npmi : a->jaccard;
    double kb = sort == LDB_SORT_COUNT ? (double)b->count : sort == LDB_SORT_NPMI ? b->npmi : b->jaccard;
    if (ka != kb)
        return ka > kb ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}
static int cmp_jac(const void *x, const void *y) { return cmp_item(x, y, LDB_SORT_JACCARD); }
static int cmp_cnt(const void *x, const void *y) { return cmp_item(x, y, LDB_SORT_COUNT); }
static int cmp_npmi(const void *x, const void *y) { return cmp_item(x, y, LDB_SORT_NPMI); }

/* Window units of latent j of dict b: ordinary centres with an ordinary firing of j
 * within +-w in the same sequence. The windows of j's firings are merged as
 * intervals (clipped to their sequence) in one pass over its postings, and the
 * skipped positions inside each merged interval are subtracted: O(postings). */
static int window_count(cctx *c, const ldb_layout *L, uint32_t j, uint32_t w, uint64_t *out)
{
    uint64_t *pos;
    size_t n, si = 0, ki = 0;
    int rc = ldb_inv_read(c->db, c->txn, c->b, j, &pos, &n);
    uint64_t total = 0, lo = 0, hi = 0;
    int open = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t p = pos[i];
        while (ki < L->nskip && L->skip[ki] < p)
            ki++;
        if (ki < L->nskip && L->skip[ki] == p)
            continue; /* a skipped firing is no firing */
        if (L->start[si + 1] <= p) /* the sequence holding p: start[si] <= p < start[si + 1] */
            si = ldb_lower_bound(L->start, si + 1, L->nseq, p + 1) - 1;
        uint64_t s0 = L->start[si], s1 = L->start[si + 1];
        uint64_t a = p - s0 > w ? p - w : s0, b = s1 - p > w + 1ull ? p + w + 1 : s1;
        if (open && a <= hi) { /* overlapping or adjacent: counts add up the same */
            if (b > hi)
                hi = b;
            continue;
        }
        if (open)
            total += hi - lo - (ldb_lower_bound(L->skip, 0, L->nskip, hi) -
                                ldb_lower_bound(L->skip, 0, L->nskip, lo));
        lo = a;
        hi = b;
        open = 1;
    }
    if (open)
        total += hi - lo - (ldb_lower_bound(L->skip, 0, L->nskip, hi) - ldb_lower_bound(L->skip, 0, L->nskip, lo));
    free(pos);
    *out = total;
    return rc;
}

void ldb_cooc_free(ldb_cooc *c)
{
    if (c) {
        free(c->items);
        free(c);
    }
}

/* Room for a sequence of len positions in the per-position buffers. */
static int grow_seq(cctx *c, uint32_t len)
{
    if (len <= c->maxlen)
        return LDB_OK;
    uint8_t *m1 = realloc(c->mark, len), *m2 = realloc(c->skipbuf, len);
    uint32_t *p2 = realloc(c->ps, len * sizeof *p2);
    if (m1)
        c->mark = m1;
    if (m2)
        c->skipbuf = m2;
    if (p2)
        c->ps = p2;
    if (!m1 || !m2 || !p2)
        return ldb_err_set(ldb_db_err(c->db), LDB_ENOMEM, "out of memory");
    c->maxlen = len;
    return LDB_OK;
}

/* Walks the query latent's firing positions pos[0..np), sequence by sequence, and
 * counts every b-latent once per unit of the scope; res->count gets the query
 * latent's units. */
static int count_units(cctx *c, const uint64_t *pos, size_t np, int scope, uint32_t window,
                       ldb_cooc *res)
{
    uint32_t unit = 0;
    int rc = LDB_OK;
    for (size_t i = 0; i < np && !rc;) {
        ldb_seqrec s;
        if ((rc = ldb_db_seq_at(c->db, c->txn, pos[i], &s)) || (rc = seq_tokens(c, &s)) ||
            (rc = grow_seq(c, s.len)))
            break;
        uint8_t *skipbuf = c->skipbuf;
        uint32_t *ps = c->ps;
        size_t m = 0;
        while (i < np && pos[i] < s.start + s.len)
            ps[m++] = (uint32_t)(pos[i++] - s.start);
        for (uint32_t t = 0; t < s.len; t++)
            skipbuf[t] = (uint8_t)ldb_skip_has(&c->skip, c->tok[t]);
        if (scope == LDB_COOC_TOKEN) {
            for (size_t q = 0; q < m && !rc; q++)
                if (!skipbuf[ps[q]]) {
                    res->count++;
                    rc = count_at(c, s.start + ps[q], unit++);
                }
        } else if (scope == LDB_COOC_SEQ) {
            int any = 0;
            for (size_t q = 0; q < m; q++)
                any |= !skipbuf[ps[q]];
            if (any) {
                res->count++;
                for (uint32_t t = 0; t < s.len && !rc; t++)
                    if (!skipbuf[t])
                        rc = count_at(c, s.start + t, unit);
                unit++;
            }
        } else { /* window: each marked centre counts the latents in its window */
            window_centres(ps, m, s.len, window, skipbuf, c->mark);
            for (uint32_t t = 0; t < s.len && !rc; t++) {
                if (!c->mark[t])
                    continue;
                res->count++;
                uint32_t lo = t > window ? t - window : 0;
                uint32_t hi = t + window + 1 < s.len ? t + window + 1 : s.len;
                for (uint32_t u = lo; u < hi && !rc; u++)
                    if (!skipbuf[u])
                        rc = count_at(c, s.start + u, unit);
                unit++;
            }
        }
    }
    return rc;
}

/* The items: every b-latent counted (the query latent aside), with its own units
 * and the Jaccard index and NPMI of the pair. */
static int score_items(cctx *c, uint32_t latent, int scope, uint32_t window, ldb_cooc *res)
{
    ldb_db *db = c->db;
    ldb_layout lay = {0};
    uint64_t *counts = NULL;
    int rc = LDB_OK;
    if (scope == LDB_COOC_WINDOW && (rc = ldb_layout_load(db, c->txn, &lay)))
        return rc;
    size_t ncand = 0;
    for (uint32_t j = c->lo; j < c->hi; j++)
        ncand += c->cnt[j] > 0 && !(c->a == c->b && j == latent);
    if (!(res->items = calloc(ncand ? ncand : 1, sizeof *res->items)) ||
        (scope == LDB_COOC_TOKEN && !(counts = malloc(c->b->d_sae * sizeof *counts)))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (counts && (rc = ldb_lsum_counts(db, c->txn, c->b, counts))) /* one record for all */
        goto out;
    for (uint32_t j = c->lo; j < c->hi && !rc; j++) {
        if (!c->cnt[j] || (c->a == c->b && j == latent))
            continue;
        ldb_cooc_item *it = &res->items[res->n++];
        it->latent = j;
        it->count = c->cnt[j];
        if (scope == LDB_COOC_WINDOW) {
            rc = window_count(c, &lay, j, window, &it->count_other);
        } else if (scope == LDB_COOC_TOKEN) {
            it->count_other = counts[j];
        } else {
            ldb_lsum s;
            if (!(rc = ldb_lsum_get(db, c->txn, c->b->id, j, &s)))
                it->count_other = s.nseq;
            ldb_lsum_free(&s);
        }
        double n = (double)res->units, ab = (double)it->count, a = (double)res->count,
               b = (double)it->count_other;
        it->jaccard = ab / (a + b - ab);
        double pab = ab / n, pa = a / n, pb = b / n;
        it->npmi = pab >= 1 ? 1 : log(pab / (pa * pb)) / -log(pab);
    }
out:
    ldb_layout_free(&lay);
    free(counts);
    return rc;
}

int ldb_query_cooc(ldb_db *db, const char *dict, uint32_t latent, const char *with_dict,
                   uint32_t k, int scope, uint32_t window, int sort, ldb_cooc **out)
{
    return ldb_query_cooc_layer(db, dict, latent, with_dict, LDB_ALL_LAYERS, k, scope, window,
                                sort, out);
}

int ldb_query_cooc_layer(ldb_db *db, const char *dict, uint32_t latent, const char *with_dict,
                         uint32_t with_layer, uint32_t k, int scope, uint32_t window, int sort,
                         ldb_cooc **out)
{
    cctx c;
    uint64_t *pos = NULL;
    size_t np = 0;
    ldb_cooc *res = NULL;
    ldb_dstat da, dbs;
    memset(&c, 0, sizeof c);
    c.db = db;
    c.skip = ldb_db_skipset(db);
    *out = NULL;
    if (!(c.a = ldb_db_find_dict(db, dict)) || !(c.b = ldb_db_find_dict(db, with_dict ? with_dict : dict)))
        return LDB_ENOTFOUND;
    if (latent >= c.a->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent %u is out of range: '%s' has %u latents",
                           latent, dict, c.a->d_sae);
    int rc = ldb_db_layer_span(db, c.b, with_layer, &c.lo, &c.hi);
    if (rc)
        return rc;
    rc = ldb_snap_begin(db, &c.txn);
    if (rc)
        return rc;
    if ((rc = ldb_db_get_dstat(db, c.txn, c.a->id, &da)) ||
        (rc = ldb_db_get_dstat(db, c.txn, c.b->id, &dbs)))
        goto out;
    if (c.a != c.b && (da.ordinary != dbs.ordinary || da.seqs != dbs.seqs)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EUNSUPPORTED, "cooc --with needs '%s' and '%s' over the "
                         "same sequences (they cover %llu and %llu)", dict, with_dict,
                         (unsigned long long)da.seqs, (unsigned long long)dbs.seqs);
        goto out;
    }
    c.stamp = calloc(c.b->d_sae, sizeof *c.stamp);
    c.cnt = calloc(c.b->d_sae, sizeof *c.cnt);
    res = calloc(1, sizeof *res);
    if (!c.stamp || !c.cnt || !res) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_inv_read(db, c.txn, c.a, latent, &pos, &np)) ||
        (rc = count_units(&c, pos, np, scope, window, res)))
        goto out;
    res->units = scope == LDB_COOC_SEQ ? da.seqs : da.ordinary;
    if ((rc = score_items(&c, latent, scope, window, res)))
        goto out;
    qsort(res->items, res->n, sizeof *res->items,
          sort == LDB_SORT_COUNT ? cmp_cnt : sort == LDB_SORT_NPMI ? cmp_npmi : cmp_jac);
    if (res->n > k)
        res->n = k;
    *out = res;
    res = NULL;
out:
    ldb_cooc_free(res);
    free(pos);
    free(c.stamp);
    free(c.cnt);
    free(c.tok);
    free(c.mark);
    free(c.skipbuf);
    free(c.ps);
    ldb_fpos_free(&c.fp);
    ldb_snap_end(db, c.txn);
    return rc;
}
