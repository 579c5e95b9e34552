/* cooc.c — exact co-occurrence over the whole corpus: walk the query latent's
 * postings, decode the forward blocks (latent ids only) they touch, and count every
 * latent that fires in the same unit (position, window or sequence) in a dense array
 * of d_sae counters. Skipped positions take part in no unit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../db/coocsum.h"
#include "../db/reader.h"
#include "query_impl.h"

typedef struct cctx {
    ldb_db *db;
    ldb_txn *txn;
    const ldb_dbdict *a, *b;   /* query latent's dict, counted dict */
    uint32_t lo, hi;           /* b's latents ranked: [lo, hi) (one layer, or all) */
    ldb_fpos fp;
    ldb_fblock fb;             /* seq scope: whole blocks */
    uint32_t *stamp;           /* b's latents: last unit counted (+1) */
    uint32_t *wend;            /* window scope: the end of b's latent's covered centres */
    uint64_t *cnt;
    uint32_t *tok;             /* tokens of the current sequence */
    size_t tok_cap;
    uint8_t *mark, *skipbuf;   /* per position of the current sequence */
    uint32_t *ps;              /* the query latent's positions in it */
    uint32_t *pre;             /* window scope: marked centres before each position */
    uint32_t maxlen;           /* of mark, skipbuf, ps */
    uint64_t *ids;             /* seq scope, format 6: a sequence's latents (d_sae) */
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

/* Window units of latent j of dict b from its postings (a DB before format 6, or a
 * window it does not store). */
static int window_count(cctx *c, const ldb_layout *L, uint32_t j, uint32_t w, uint64_t *out)
{
    uint64_t *pos;
    size_t n;
    int rc = ldb_inv_read(c->db, c->txn, c->b, j, &pos, &n);
    *out = 0;
    if (!rc)
        ldb_window_units(pos, n, L, &w, 1, out);
    free(pos);
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
    uint32_t *p2 = realloc(c->ps, len * sizeof *p2), *p3 = realloc(c->pre, (len + 1) * sizeof *p3);
    if (m1)
        c->mark = m1;
    if (m2)
        c->skipbuf = m2;
    if (p2)
        c->ps = p2;
    if (p3)
        c->pre = p3;
    if (!m1 || !m2 || !p2 || !p3)
        return ldb_err_set(ldb_db_err(c->db), LDB_ENOMEM, "out of memory");
    c->maxlen = len;
    return LDB_OK;
}

/* Window scope, one sequence s (its tokens' skip flags in skipbuf, the query
 * latent's positions in ps[0..m)): every marked centre is a unit; a b-latent counts
 * once for each marked centre with a firing of it within +-w. Each position within
 * w of a marked centre is decoded once, in order: a firing at u covers the centres
 * [u - w, u + w], and a latent's covers, met in order, merge with its last one, so
 * the marked centres it adds are a difference of prefix counts. (Counting each
 * window's positions decoded every position up to 2w + 1 times.) */
static int count_windows(cctx *c, const ldb_seqrec *s, size_t m, uint32_t w, ldb_cooc *res,
                         uint32_t seqno)
{
    uint32_t len = s->len, *pre = c->pre;
    window_centres(c->ps, m, len, w, c->skipbuf, c->mark);
    pre[0] = 0;
    for (uint32_t t = 0; t < len; t++)
        pre[t + 1] = pre[t] + c->mark[t];
    res->count += pre[len];
    for (uint32_t u = 0; u < len; u++) {
        uint32_t lo = u > w ? u - w : 0, hi = u + w + 1 < len ? u + w + 1 : len;
        if (c->skipbuf[u] || pre[hi] == pre[lo])
            continue; /* skipped, or no marked centre within w */
        int rc = ldb_fwd_at(c->db, c->txn, c->b, s->start + u, 0, &c->fp);
        if (rc == LDB_ENOTFOUND)
            continue; /* b does not cover it */
        if (rc)
            return rc;
        for (uint32_t e = 0; e < c->fp.cnt; e++) {
            uint32_t l = c->fp.lat[e], from = lo;
            if (c->stamp[l] == seqno + 1 && c->wend[l] > from)
                from = c->wend[l]; /* (its last cover ends after lo: only the rest is new) */
            if (hi > from)
                c->cnt[l] += pre[hi] - pre[from];
            if (c->stamp[l] != seqno + 1 || hi > c->wend[l])
                c->wend[l] = hi;
            c->stamp[l] = seqno + 1;
        }
    }
    return LDB_OK;
}

/* Seq scope, one sequence s (its tokens' skip flags in skipbuf): every b-latent
 * firing at an ordinary position counts once for the unit: from its `lseq` record
 * (format 6), else read a whole block at a time (ids only). */
static int count_seq(cctx *c, const ldb_seqrec *s, uint32_t unit)
{
    if (c->ids) {
        const uint8_t *p;
        size_t len;
        uint64_t n;
        int rc = ldb_lseq_get(c->db, c->txn, c->b, s->seq, &p, &len);
        if (rc == LDB_ENOTFOUND)
            return LDB_OK; /* nothing of b fires there, or b does not cover it */
        if (rc)
            return rc;
        if (ldb_lseq_decode(p, len, c->b->d_sae, c->ids, c->b->d_sae, &n))
            return ldb_err_set(ldb_db_err(c->db), LDB_EFORMAT, "%s: the latents of sequence %llu "
                               "in '%s' (table lseq) are corrupt; run latentdb check",
                               ldb_db_path(c->db), (unsigned long long)s->seq, c->b->name);
        for (uint64_t i = 0; i < n; i++)
            c->cnt[c->ids[i]]++;
        return LDB_OK;
    }
    for (uint32_t t = 0; t < s->len;) {
        int rc = ldb_fwd_get_ids(c->db, c->txn, c->b, s->start + t, &c->fb);
        if (rc == LDB_ENOTFOUND) { /* b does not cover it */
            t++;
            continue;
        }
        if (rc)
            return rc;
        const ldb_fblock *fb = &c->fb;
        for (uint64_t i = s->start + t - fb->start; i < fb->n && t < s->len; i++, t++) {
            if (c->skipbuf[t])
                continue;
            for (uint64_t e = fb->off[i]; e < fb->off[i + 1]; e++) {
                uint32_t l = fb->lat[e];
                c->cnt[l] += c->stamp[l] != unit + 1;
                c->stamp[l] = unit + 1;
            }
        }
    }
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
                rc = count_seq(c, &s, unit++);
            }
        } else {
            rc = count_windows(c, &s, m, window, res, unit++);
        }
    }
    return rc;
}

/* The score a sort ranks by, of ab units together of a units of the query latent
 * and b of the other's, out of n. */
static double score(int sort, double ab, double a, double b, double n)
{
    if (sort == LDB_SORT_COUNT)
        return ab;
    if (sort == LDB_SORT_JACCARD)
        return ab / (a + b - ab);
    double pab = ab / n, pa = a / n, pb = b / n;
    return pab >= 1 ? 1 : log(pab / (pa * pb)) / -log(pab);
}

typedef struct cand {
    uint32_t latent;
    uint64_t count;
    double ub;                 /* its score with the least units it can have */
} cand;

static int cmp_cand(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->ub != b->ub)
        return a->ub > b->ub ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}

/* A min-heap of the k best scores so far: the k-th best on top. */
static void heap_push(double *h, uint32_t *n, uint32_t k, double v)
{
    if (*n == k) {
        if (v <= h[0])
            return;
        h[0] = v; /* replace the least, sift down */
        for (uint32_t i = 0;;) {
            uint32_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < k && h[l] < h[m])
                m = l;
            if (r < k && h[r] < h[m])
                m = r;
            if (m == i)
                break;
            double t = h[i];
            h[i] = h[m];
            h[m] = t;
            i = m;
        }
        return;
    }
    uint32_t i = (*n)++;
    h[i] = v;
    while (i && h[(i - 1) / 2] > h[i]) {
        double t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* The items: every b-latent counted (the query latent aside), with its own units
 * and the Jaccard index and NPMI of the pair. A window unit count reads the
 * latent's postings, so for that scope only the candidates that can reach the top
 * k are counted: a latent's window units are at least its ordinary firings (each is
 * the centre of a window it fires in) and at least ab, which bounds its score from
 * above (every score falls as its units grow), and so are its units at any smaller
 * window (a format-6 DB stores some: the largest below is taken); candidates go by
 * that bound, and once it is below the k-th best exact score nothing after can
 * enter the top k. At a stored window every latent's units are read at once. */
static int score_items(cctx *c, uint32_t latent, int scope, uint32_t window, int sort, uint32_t k,
                       ldb_cooc *res)
{
    ldb_db *db = c->db;
    ldb_layout lay = {0};
    uint64_t *counts = NULL;
    cand *cd = NULL;
    double *heap = NULL;
    int rc = LDB_OK;
    const uint8_t *wrec = NULL, *below = NULL; /* format 6: units at window, at one below */
    if (scope == LDB_COOC_WINDOW && (rc = ldb_lwin_get(db, c->txn, c->b, window, &wrec))) {
        if (rc != LDB_ENOTFOUND)
            return rc;
        if ((rc = ldb_layout_load(db, c->txn, &lay))) /* to count them from postings */
            return rc;
        for (int x = LDB_NWIN; x-- > 0 && !below;)
            if (ldb_wins[x] < window &&
                (rc = ldb_lwin_get(db, c->txn, c->b, ldb_wins[x], &below)) && rc != LDB_ENOTFOUND)
                goto out;
        rc = LDB_OK;
    }
    size_t ncand = 0;
    for (uint32_t j = c->lo; j < c->hi; j++)
        ncand += c->cnt[j] > 0 && !(c->a == c->b && j == latent);
    if (!(res->items = calloc(ncand ? ncand : 1, sizeof *res->items)) ||
        (scope != LDB_COOC_SEQ && !(counts = malloc(c->b->d_sae * sizeof *counts))) ||
        !(cd = malloc((ncand ? ncand : 1) * sizeof *cd)) ||
        !(heap = malloc((k ? k : 1) * sizeof *heap))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if (counts && (rc = ldb_lsum_counts(db, c->txn, c->b, counts))) /* one record for all */
        goto out;

    double n = (double)res->units, a = (double)res->count;
    size_t m = 0;
    for (uint32_t j = c->lo; j < c->hi; j++) {
        if (!c->cnt[j] || (c->a == c->b && j == latent))
            continue;
        double ab = (double)c->cnt[j], least = ab;
        if (scope == LDB_COOC_WINDOW && (double)counts[j] > least)
            least = (double)counts[j];
        if (below && (double)ldb_lwin_at(below, j) > least)
            least = (double)ldb_lwin_at(below, j);
        cd[m++] = (cand){j, c->cnt[j], scope == LDB_COOC_WINDOW ? score(sort, ab, a, least, n) : 0};
    }
    if (scope == LDB_COOC_WINDOW)
        qsort(cd, m, sizeof *cd, cmp_cand); /* by bound; for count, by the order itself */
    uint32_t nh = 0;
    for (size_t i = 0; i < m && !rc; i++) {
        if (scope == LDB_COOC_WINDOW && k && nh == k && cd[i].ub < heap[0])
            break; /* no later candidate can enter the top k */
        ldb_cooc_item *it = &res->items[res->n++];
        it->latent = cd[i].latent;
        it->count = cd[i].count;
        if (scope == LDB_COOC_WINDOW && wrec) {
            it->count_other = ldb_lwin_at(wrec, it->latent);
        } else if (scope == LDB_COOC_WINDOW) {
            rc = window_count(c, &lay, it->latent, window, &it->count_other);
        } else if (scope == LDB_COOC_TOKEN) {
            it->count_other = counts[it->latent];
        } else {
            ldb_lsum s;
            if (!(rc = ldb_lsum_get(db, c->txn, c->b->id, it->latent, &s)))
                it->count_other = s.nseq;
            ldb_lsum_free(&s);
        }
        double ab = (double)it->count, b = (double)it->count_other;
        it->jaccard = score(LDB_SORT_JACCARD, ab, a, b, n);
        it->npmi = score(LDB_SORT_NPMI, ab, a, b, n);
        if (k)
            heap_push(heap, &nh, k, score(sort, ab, a, b, n));
    }
out:
    ldb_layout_free(&lay);
    free(counts);
    free(cd);
    free(heap);
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
    c.wend = scope == LDB_COOC_WINDOW ? calloc(c.b->d_sae, sizeof *c.wend) : NULL;
    c.cnt = calloc(c.b->d_sae, sizeof *c.cnt);
    res = calloc(1, sizeof *res);
    if (scope == LDB_COOC_SEQ && ldb_coocsum_has(db))
        c.ids = malloc((c.b->d_sae ? c.b->d_sae : 1) * sizeof *c.ids);
    if (!c.stamp || !c.cnt || !res || (scope == LDB_COOC_WINDOW && !c.wend) ||
        (scope == LDB_COOC_SEQ && ldb_coocsum_has(db) && !c.ids)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_inv_read(db, c.txn, c.a, latent, &pos, &np)) ||
        (rc = count_units(&c, pos, np, scope, window, res)))
        goto out;
    res->units = scope == LDB_COOC_SEQ ? da.seqs : da.ordinary;
    if ((rc = score_items(&c, latent, scope, window, sort, k, res)))
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
    free(c.wend);
    free(c.pre);
    free(c.cnt);
    free(c.tok);
    free(c.mark);
    free(c.skipbuf);
    free(c.ps);
    free(c.ids);
    ldb_fpos_free(&c.fp);
    ldb_fblock_free(&c.fb);
    ldb_snap_end(db, c.txn);
    return rc;
}
