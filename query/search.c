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
    uint64_t **pos = calloc(n_tokens, sizeof *pos), *hits = NULL, *counts = NULL;
    size_t *np = calloc(n_tokens, sizeof *np);
    uint32_t *stamp = NULL;
    double *vsum = NULL;
    float *vcur = NULL;
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
    hits = calloc(d_sae, sizeof *hits);
    stamp = calloc(d_sae, sizeof *stamp);
    vsum = calloc(d_sae, sizeof *vsum);
    vcur = calloc(d_sae, sizeof *vcur);
    counts = malloc(d_sae * sizeof *counts);
    if (!hits || !stamp || !vsum || !vcur || !counts) {
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
        uint64_t a = where_all ? s : e;
        int any = 0;
        uint32_t unit = (uint32_t)res->occurrences + 1;
        for (uint64_t p = a; p <= e && !rc; p++) {
            if (is_skipped(&lay, p))
                continue;
            int frc = ldb_fwd_at(db, q.txn, q.dd, p, 1, &fp);
            if (frc == LDB_ENOTFOUND)
                break; /* the dict does not cover this sequence */
            if ((rc = frc))
                break;
            any = 1;
            for (uint32_t x = 0; x < fp.cnt; x++) {
                uint32_t l = fp.lat[x];
                double v = ldb_val_float(fp.bits[x], ldb_db_values(db));
                if (stamp[l] != unit) {
                    stamp[l] = unit;
                    hits[l]++;
                    vsum[l] += v;
                    vcur[l] = (float)v;
                } else if (v > vcur[l]) { /* where_all: the largest code over the match */
                    vsum[l] += v - vcur[l];
                    vcur[l] = (float)v;
                }
            }
        }
        if (any)
            res->occurrences++;
    }
    if (rc)
        goto out;
    size_t ncand = 0;
    for (uint32_t l = 0; l < d_sae; l++)
        ncand += hits[l] > 0;
    if (!(res->items = calloc(ncand ? ncand : 1, sizeof *res->items))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_lsum_counts(db, q.txn, q.dd, counts)))
        goto out;
    for (uint32_t l = 0; l < d_sae; l++) {
        if (!hits[l])
            continue;
        ldb_search_item *it = &res->items[res->n++];
        it->latent = l;
        it->hits = hits[l];
        it->precision = (double)hits[l] / (double)res->occurrences;
        it->density = st.ordinary ? (double)counts[l] / (double)st.ordinary : 0;
        /* a latent firing here but never at an ordinary position elsewhere (density 0)
         * gets the density of one position, so its score stays finite */
        double d = it->density > 0 ? it->density : 1.0 / (double)(st.ordinary ? st.ordinary : 1);
        it->score = it->precision * log2(it->precision / d);
        it->mean_value = vsum[l] / (double)hits[l];
    }
    if (rc)
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
    free(hits);
    free(counts);
    free(stamp);
    free(vsum);
    free(vcur);
    ldb_layout_free(&lay);
    ldb_fpos_free(&fp);
    ldb_search_free(res);
    ldb_q_end(&q);
    return rc;
}
