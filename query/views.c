/* views.c — quantile samples of a latent and the view of one sequence.
 * Samples read every firing position of the latent with its value (postings +
 * forward blocks), so groups are exact; draws are seeded (splitmix64). */
#include <stdlib.h>
#include <string.h>

#include "../db/reader.h"
#include "query_impl.h"

void ldb_samples_free(ldb_samples *s)
{
    if (!s)
        return;
    for (uint32_t g = 0; g < s->n; g++) {
        for (uint32_t i = 0; i < s->groups[g].ex.n; i++)
            free(s->groups[g].ex.ex[i].tokens); /* values share it */
        free(s->groups[g].ex.ex);
    }
    free(s->groups);
    free(s);
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int ldb_query_samples(ldb_db *db, const char *dict, uint32_t latent, uint32_t groups,
                      uint32_t per_group, int by, uint64_t seed, uint32_t context,
                      ldb_samples **out)
{
    qctx q;
    ldb_cand *c = NULL;
    size_t n = 0;
    ldb_fpos fp;
    ldb_samples *s = NULL;
    memset(&fp, 0, sizeof fp);
    *out = NULL;
    if (groups == 0 || groups > 1000 || per_group > 10000)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "groups must be 1..1000 and per-group 0..10000");
    int rc = ldb_q_begin(db, dict, latent, 1, &q);
    if (rc || (rc = ldb_q_scan_latent(&q, latent, 0, &c, &n)))
        goto out;
    /* c is by value descending; make it ascending */
    for (size_t i = 0; i < n / 2; i++) {
        ldb_cand t = c[i];
        c[i] = c[n - 1 - i];
        c[n - 1 - i] = t;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->groups = calloc(groups, sizeof *s->groups))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    s->n = groups;
    double max = n ? c[n - 1].value : 0;
    size_t at = 0;
    for (uint32_t g = 0; g < groups && !rc; g++) {
        size_t a = at, b;
        ldb_sample_group *gr = &s->groups[g];
        if (by == LDB_SAMPLES_BY_VALUE) {
            gr->lo = max * g / groups;
            gr->hi = max * (g + 1) / groups;
            b = a;
            while (b < n && (g == groups - 1 || c[b].value < gr->hi))
                b++;
        } else {
            b = (size_t)((uint64_t)n * (g + 1) / groups);
            gr->lo = b > a ? c[a].value : 0;
            gr->hi = b > a ? c[b - 1].value : 0;
        }
        at = b;
        gr->count = b - a;
        uint32_t take = (uint32_t)(gr->count < per_group ? gr->count : per_group);
        gr->ex.ex = calloc(take ? take : 1, sizeof *gr->ex.ex);
        if (!gr->ex.ex) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        /* a partial Fisher-Yates over [a, b): uniform without replacement */
        uint64_t st = seed * 0x100000001b3ull + g + 1;
        for (uint32_t i = 0; i < take && !rc; i++) {
            size_t j = a + i + (size_t)(mix(&st) % (b - a - i));
            ldb_cand t = c[a + i];
            c[a + i] = c[j];
            c[j] = t;
            rc = ldb_q_fill_example(&q, latent, &c[a + i], NULL, context, &fp, &gr->ex.ex[i]);
            gr->ex.n = i + 1;
        }
    }
    if (!rc) {
        *out = s;
        s = NULL;
    }
out:
    ldb_samples_free(s);
    free(c);
    ldb_fpos_free(&fp);
    ldb_q_end(&q);
    return rc;
}

void ldb_seqview_free(ldb_seqview *s)
{
    if (!s)
        return;
    free(s->source);
    free(s->tokens);
    free(s->start);
    free(s->lat);
    for (uint32_t i = 0; i < s->n_dicts; i++)
        free(s->dict_names[i]);
    free(s->dict_names);
    free(s);
}

static int cmp_lat_value(const void *x, const void *y)
{
    const ldb_seq_latent *a = x, *b = y;
    if (a->value != b->value)
        return a->value > b->value ? -1 : 1;
    if (a->dict != b->dict)
        return a->dict < b->dict ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}

int ldb_query_seq(ldb_db *db, uint64_t seq, const char *dict, uint32_t k, ldb_seqview **out)
{
    qctx q;
    ldb_seqrec s;
    int nd;
    const ldb_dbdict *dicts = ldb_db_dicts(db, &nd);
    ldb_fblock *fbs = calloc((size_t)nd + 1, sizeof *fbs); /* one per dict */
    const ldb_dbdict **dds = calloc((size_t)nd + 1, sizeof *dds); /* of dict_names */
    ldb_seqview *v = NULL;
    ldb_seq_latent *tmp = NULL;
    size_t cap = 0, n = 0;
    *out = NULL;
    if (!fbs || !dds) {
        free(fbs);
        free(dds);
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    if (rc || (rc = ldb_db_get_seq(db, q.txn, seq, &s)))
        goto out;
    v = calloc(1, sizeof *v);
    if (!v || !(v->tokens = malloc((s.len + 1) * sizeof *v->tokens)) ||
        !(v->start = calloc(s.len + 1, sizeof *v->start)) ||
        !(v->dict_names = calloc((size_t)nd + 1, sizeof *v->dict_names))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    v->seq = seq;
    v->len = s.len;
    const char *src;
    size_t srclen;
    if (ldb_source_get(db, q.txn, s.source, &src, &srclen) == LDB_OK)
        v->source = strndup(src, srclen);
    if ((rc = ldb_seq_tokens_at(db, q.txn, s.start, 0, s.len, v->tokens)))
        goto out;
    for (int d = 0; d < nd; d++) {
        const ldb_dbdict *dd = &dicts[d];
        if (q.dd && q.dd != dd)
            continue;
        dds[v->n_dicts] = dd;
        v->dict_names[v->n_dicts] = strdup(dd->name);
        v->n_dicts++;
    }
    for (uint32_t p = 0; p < s.len && !rc; p++) {
        size_t first = n;
        for (uint32_t d = 0; d < v->n_dicts && !rc; d++) {
            ldb_fblock *fb = &fbs[d];
            int r = ldb_fwd_get(db, q.txn, dds[d], s.start + p, 1, fb);
            if (r == LDB_ENOTFOUND)
                continue;
            if ((rc = r))
                break;
            uint64_t i = s.start + p - fb->start;
            for (uint64_t e = fb->off[i]; e < fb->off[i + 1]; e++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    ldb_seq_latent *t = realloc(tmp, cap * sizeof *t);
                    if (!t) {
                        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
                        break;
                    }
                    tmp = t;
                }
                tmp[n].dict = (uint16_t)d;
                tmp[n].latent = fb->lat[e];
                tmp[n++].value = ldb_val_float(fb->bits[e], ldb_db_values(db));
            }
        }
        if (n > first) /* (tmp is NULL until a position has a code) */
            qsort(tmp + first, n - first, sizeof *tmp, cmp_lat_value);
        if (n - first > k)
            n = first + k;
        v->start[p + 1] = n;
    }
    if (rc)
        goto out;
    v->lat = tmp;
    tmp = NULL;
    *out = v;
    v = NULL;
out:
    free(tmp);
    ldb_seqview_free(v);
    for (int d = 0; d < nd; d++)
        ldb_fblock_free(&fbs[d]);
    free(fbs);
    free(dds);
    ldb_q_end(&q);
    return rc;
}
