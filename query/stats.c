/* stats.c — statistics over a whole dictionary or DB that no summary keeps: the
 * distribution of L0 over ordinary positions (from the forward blocks' headers and
 * the skipped positions), and the sources with their sequences and tokens. */
#include <stdlib.h>
#include <string.h>

#include "query_impl.h"

typedef struct l0ctx {
    ldb_db *db;
    uint64_t *skip;            /* the skipped positions, ascending (ldb_skip_positions) */
    size_t nskip, k;           /* and a cursor in them */
    uint64_t *counts, n, sum;
    uint32_t cap, max;
} l0ctx;

static int l0_block(void *arg, uint64_t start, const uint32_t *cnt, uint32_t np)
{
    l0ctx *c = arg;
    for (uint32_t i = 0; i < np; i++) {
        while (c->k < c->nskip && c->skip[c->k] < start + i) /* blocks come in order */
            c->k++;
        if (c->k < c->nskip && c->skip[c->k] == start + i)
            continue;
        uint32_t l = cnt[i];
        if (l >= c->cap) {
            uint32_t cap = c->cap ? c->cap : 256;
            while (cap <= l)
                cap *= 2;
            uint64_t *x = realloc(c->counts, cap * sizeof *x);
            if (!x)
                return ldb_err_set(ldb_db_err(c->db), LDB_ENOMEM, "out of memory");
            memset(x + c->cap, 0, (cap - c->cap) * sizeof *x);
            c->counts = x;
            c->cap = cap;
        }
        c->counts[l]++;
        c->max = l > c->max ? l : c->max;
        c->n++;
        c->sum += l;
    }
    return LDB_OK;
}

int ldb_query_l0(ldb_db *db, const char *dict, ldb_l0 **out)
{
    qctx q;
    l0ctx c;
    memset(&c, 0, sizeof c);
    *out = NULL;
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    if (rc)
        return rc;
    c.db = db;
    ldb_l0 *l = calloc(1, sizeof *l);
    if (!l)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (!rc)
        rc = ldb_skip_positions(db, q.txn, &c.skip, &c.nskip);
    if (!rc)
        rc = ldb_fwd_counts_each(db, q.txn, q.dd, l0_block, &c);
    if (!rc && !c.counts && !(c.counts = calloc(1, sizeof *c.counts)))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    free(c.skip);
    ldb_q_end(&q);
    if (rc) {
        free(c.counts);
        free(l);
        return rc;
    }
    l->n_positions = c.n;
    l->max_l0 = c.max;
    l->counts = c.counts;
    l->mean = c.n ? (double)c.sum / (double)c.n : 0;
    *out = l;
    return LDB_OK;
}

void ldb_l0_free(ldb_l0 *l)
{
    if (l) {
        free(l->counts);
        free(l);
    }
}

int ldb_query_sources(ldb_db *db, ldb_sources **out)
{
    qctx q;
    *out = NULL;
    int rc = ldb_q_begin(db, NULL, 0, 0, &q);
    if (rc)
        return rc;
    uint64_t n_seq = 0;
    ldb_sources *r = calloc(1, sizeof *r);
    uint32_t *order = NULL, cap = 0; /* source ids in the order first met */
    uint64_t *ns = NULL, *nt = NULL;
    if (!r)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (!rc)
        rc = ldb_db_meta_u64(db, q.txn, "n_seq", &n_seq);
    for (uint64_t i = 0; i < n_seq && !rc; i++) {
        ldb_seqrec s;
        if ((rc = ldb_db_get_seq(db, q.txn, i, &s)))
            break;
        if (s.source >= cap) { /* per source id: sequences and tokens */
            uint32_t nc = cap ? cap : 16;
            while (nc <= s.source)
                nc *= 2;
            uint64_t *a = realloc(ns, nc * sizeof *a), *b = a ? realloc(nt, nc * sizeof *b) : NULL;
            if (a)
                ns = a;
            if (b)
                nt = b;
            if (!a || !b) {
                rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
                break;
            }
            memset(ns + cap, 0, (nc - cap) * sizeof *ns);
            memset(nt + cap, 0, (nc - cap) * sizeof *nt);
            cap = nc;
        }
        if (!ns[s.source]) {
            uint32_t *o = realloc(order, (r->n + 1) * sizeof *o);
            if (!o) {
                rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
                break;
            }
            order = o;
            order[r->n++] = s.source;
        }
        ns[s.source]++;
        nt[s.source] += s.len;
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < r->n && !rc; i++) {
        const char *lab;
        size_t len;
        if (ldb_source_get(db, q.txn, order[i], &lab, &len) == LDB_OK)
            bytes += len + 1;
        else
            bytes += 1;
    }
    /* one allocation: the array, then the labels */
    ldb_source_usage *u = rc ? NULL : malloc(r->n * sizeof *u + bytes + 1);
    if (!rc && !u)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    char *txt = u ? (char *)(u + r->n) : NULL;
    for (uint32_t i = 0; i < r->n && !rc; i++) {
        const char *lab;
        size_t len;
        if (ldb_source_get(db, q.txn, order[i], &lab, &len) != LDB_OK)
            lab = "", len = 0;
        memcpy(txt, lab, len);
        txt[len] = 0;
        u[i].label = txt;
        u[i].n_seq = ns[order[i]];
        u[i].n_tokens = nt[order[i]];
        txt += len + 1;
    }
    ldb_q_end(&q);
    free(order);
    free(ns);
    free(nt);
    if (rc) {
        free(u);
        free(r);
        return rc;
    }
    r->src = u;
    *out = r;
    return LDB_OK;
}

void ldb_sources_free(ldb_sources *s)
{
    if (s) {
        free(s->src);
        free(s);
    }
}
