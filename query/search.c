/* search.c — search by activating text. The occurrences of the token sequence
 * come from the token index: the rarest token's positions are the candidates, and
 * each other token is checked by binary search in its own position list. Then the
 * matched positions are read from the forward index (only their group of
 * LDB_FWD_GROUP = 8 positions is decoded) and every latent firing there is counted
 * once per occurrence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_impl.h"

void ldb_search_free(ldb_search *s)
{
    if (s) {
        free(s->items);
        free(s);
    }
}

static int cmp_item(const void *x, const void *y)
{
    const ldb_search_item *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->hits != b->hits)
        return a->hits > b->hits ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}

static int is_skipped(const ldb_layout *L, uint64_t p)
{
    size_t i = ldb_lower_bound(L->skip, 0, L->nskip, p);
    return i < L->nskip && L->skip[i] == p;
}

/* Per latent of the dictionary: occurrences where it fires, the sum of its values
 * there, and the occurrence it was last counted for with its value in it. */
typedef struct tally {
    uint64_t *hits;
    uint32_t *stamp;
    double *vsum;
    float *vcur;
} tally;

/* Counts every latent firing at positions [a, e] (ordinary ones) once for
 * occurrence `unit`, with its value (the largest over the positions); *any = 0 when
 * the dictionary does not cover them. */
static int count_match(qctx *q, const ldb_layout *lay, ldb_fpos *fp, uint64_t a, uint64_t e,
                       uint32_t unit, tally *t, int *any)
{
    int values = ldb_db_values(q->db);
    *any = 0;
    for (uint64_t p = a; p <= e; p++) {
        if (is_skipped(lay, p))
            continue;
        int rc = ldb_fwd_at(q->db, q->txn, q->dd, p, 1, fp);
        if (rc == LDB_ENOTFOUND)
            return LDB_OK; /* the dict does not cover this sequence */
        if (rc)
            return rc;
        *any = 1;
        for (uint32_t x = 0; x < fp->cnt; x++) {
            uint32_t l = fp->lat[x];
            double v = ldb_val_float(fp->bits[x], values);
            if (t->stamp[l] != unit) {
                t->stamp[l] = unit;
                t->hits[l]++;
                t->vsum[l] += v;
                t->vcur[l] = (float)v;
            } else if (v > t->vcur[l]) { /* where_all: the largest code over the match */
                t->vsum[l] += v - t->vcur[l];
                t->vcur[l] = (float)v;
            }
        }
    }
    return LDB_OK;
}

/* The items: every latent that fired at some occurrence, scored against its density. */
static int score_items(qctx *q, const tally *t, const ldb_dstat *st, ldb_search *res)
{
    uint32_t d_sae = q->dd->d_sae;
    size_t ncand = 0;
    uint64_t *counts = malloc(d_sae * sizeof *counts);
    for (uint32_t l = 0; l < d_sae; l++)
        ncand += t->hits[l] > 0;
    if (!counts || !(res->items = calloc(ncand ? ncand : 1, sizeof *res->items))) {
        free(counts);
        return ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory");
    }
    int rc = ldb_lsum_counts(q->db, q->txn, q->dd, counts);
    for (uint32_t l = 0; l < d_sae && !rc; l++) {
        if (!t->hits[l])
            continue;
        ldb_search_item *it = &res->items[res->n++];
        it->latent = l;
        it->hits = t->hits[l];
        it->precision = (double)t->hits[l] / (double)res->occurrences;
        it->density = st->ordinary ? (double)counts[l] / (double)st->ordinary : 0;
        /* a latent firing here but never at an ordinary position elsewhere (density 0)
         * gets the density of one position, so its score stays finite */
        double d = it->density > 0 ? it->density : 1.0 / (double)(st->ordinary ? st->ordinary : 1);
        it->score = it->precision * log2(it->precision / d);
        it->mean_value = t->vsum[l] / (double)t->hits[l];
    }
    free(counts);
    return rc;
}

int ldb_query_search(ldb_db *db, const char *dict, const uint32_t *tokens, size_t n_tokens,
                     int where_all, uint32_t k, ldb_search **out)
{
    qctx q;
    *out = NULL;
    if (!n_tokens)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "search needs at least one token");
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    if (rc)
        return rc;
    uint64_t **pos = calloc(n_tokens, sizeof *pos);
    size_t *np = calloc(n_tokens, sizeof *np);
    tally t = {0};
    ldb_layout lay = {0};
    ldb_fpos fp = {0};
    ldb_search *res = calloc(1, sizeof *res);
    ldb_dstat st;
    if (!pos || !np || !res) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    size_t rare = 0;
    for (size_t i = 0; i < n_tokens && !rc; i++) {
        rc = ldb_tokidx_read(db, q.txn, tokens[i], &pos[i], &np[i]);
        if (!rc && np[i] < np[rare])
            rare = i;
    }
    if (rc || (rc = ldb_layout_load(db, q.txn, &lay)) ||
        (rc = ldb_db_get_dstat(db, q.txn, q.dd->id, &st)))
        goto out;
    uint32_t d_sae = q.dd->d_sae;
    t.hits = calloc(d_sae, sizeof *t.hits);
    t.stamp = calloc(d_sae, sizeof *t.stamp);
    t.vsum = calloc(d_sae, sizeof *t.vsum);
    t.vcur = calloc(d_sae, sizeof *t.vcur);
    if (!t.hits || !t.stamp || !t.vsum || !t.vcur) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    size_t si = 0;
    uint64_t m = n_tokens;
    for (size_t c = 0; c < np[rare] && !rc; c++) {
        if (pos[rare][c] < rare)
            continue;
        uint64_t s = pos[rare][c] - rare, e = s + m - 1;
        int match = 1;
        for (size_t i = 0; i < n_tokens && match; i++) {
            if (i == rare)
                continue;
            size_t j = ldb_lower_bound(pos[i], 0, np[i], s + i);
            match = j < np[i] && pos[i][j] == s + i;
        }
        if (!match)
            continue;
        si = ldb_layout_seq(&lay, si, s);
        if (e >= lay.start[si + 1]) /* crosses into the next sequence */
            continue;
        int any;
        rc = count_match(&q, &lay, &fp, where_all ? s : e, e, (uint32_t)res->occurrences + 1, &t,
                         &any);
        res->occurrences += !rc && any;
    }
    if (rc || (rc = score_items(&q, &t, &st, res)))
        goto out;
    qsort(res->items, res->n, sizeof *res->items, cmp_item);
    if (res->n > k)
        res->n = k;
    *out = res;
    res = NULL;
out:
    for (size_t i = 0; pos && i < n_tokens; i++)
        free(pos[i]);
    free(pos);
    free(np);
    free(t.hits);
    free(t.stamp);
    free(t.vsum);
    free(t.vcur);
    ldb_layout_free(&lay);
    ldb_fpos_free(&fp);
    ldb_search_free(res);
    ldb_q_end(&q);
    return rc;
}
