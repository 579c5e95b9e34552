/* arrays.c — whole results as flat arrays, for numpy and other array clients: every
 * code of a latent (ldb_query_activations), a range of sequences' codes as CSR
 * (ldb_query_codes) and tokens (ldb_query_tokens), and a dictionary's labels
 * (ldb_query_labels). Each runs in one read transaction. */
#include <stdlib.h>
#include <string.h>

#include "query_impl.h"

void ldb_activations_free(ldb_activations *a)
{
    if (!a)
        return;
    free(a->seq);
    free(a->pos);
    free(a->value);
    free(a);
}

int ldb_query_activations(ldb_db *db, const char *dict, uint32_t latent, int include_special,
                          ldb_activations **out)
{
    qctx q;
    ldb_cand *c = NULL;
    size_t n = 0;
    ldb_activations *a = NULL;
    *out = NULL;
    int rc = ldb_q_begin(db, dict, latent, 1, &q);
    if (rc || (rc = ldb_q_latent_codes(&q, latent, include_special, &c, &n)))
        goto out;
    size_t cap = n ? n : 1;
    if (!(a = calloc(1, sizeof *a)) || !(a->seq = malloc(cap * sizeof *a->seq)) ||
        !(a->pos = malloc(cap * sizeof *a->pos)) || !(a->value = malloc(cap * sizeof *a->value))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory for %zu codes", n);
        goto out;
    }
    uint64_t s_seq = 0, s_start = 0;
    uint32_t s_len = 0;
    for (size_t i = 0; i < n; i++) { /* gpos ascending: one lookup per sequence */
        if (!s_len || c[i].gpos < s_start || c[i].gpos >= s_start + s_len)
            if ((rc = ldb_seq_find(db, q.txn, c[i].gpos, &s_seq, &s_start, &s_len)))
                goto out;
        a->seq[i] = s_seq;
        a->pos[i] = (uint32_t)(c[i].gpos - s_start);
        a->value[i] = c[i].value;
    }
    a->n = n;
    *out = a;
    a = NULL;
out:
    free(c);
    ldb_activations_free(a);
    ldb_q_end(&q);
    return rc;
}

void ldb_csr_free(ldb_csr *c)
{
    if (!c)
        return;
    free(c->indptr);
    free(c->indices);
    free(c->data);
    free(c->seq_row);
    free(c);
}

/* Sequences [seq0, seq1) of the DB: their records, checked to exist. */
static int seq_range(qctx *q, uint64_t seq0, uint64_t seq1, ldb_seqrec **out)
{
    *out = NULL;
    if (seq1 < seq0)
        return ldb_err_set(ldb_db_err(q->db), LDB_EINVAL, "sequences %llu..%llu: the end comes "
                           "before the start", (unsigned long long)seq0, (unsigned long long)seq1);
    ldb_seqrec *s = malloc((size_t)(seq1 - seq0 ? seq1 - seq0 : 1) * sizeof *s);
    if (!s)
        return ldb_err_set(ldb_db_err(q->db), LDB_ENOMEM, "out of memory for %llu sequences",
                           (unsigned long long)(seq1 - seq0));
    for (uint64_t i = seq0; i < seq1; i++) {
        int rc = ldb_db_get_seq(q->db, q->txn, i, &s[i - seq0]);
        if (rc) {
            free(s);
            return rc;
        }
    }
    *out = s;
    return LDB_OK;
}

int ldb_query_codes(ldb_db *db, const char *dict, uint64_t seq0, uint64_t seq1, ldb_csr **out)
{
    qctx q;
    ldb_seqrec *s = NULL;
    ldb_csr *c = NULL;
    ldb_fblock fb;
    memset(&fb, 0, sizeof fb);
    *out = NULL;
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    if (rc || (rc = seq_range(&q, seq0, seq1, &s)))
        goto out;
    uint64_t ns = seq1 - seq0, rows = 0, cap = 0, nnz = 0;
    for (uint64_t i = 0; i < ns; i++)
        rows += s[i].len;
    if (!(c = calloc(1, sizeof *c)) || !(c->indptr = malloc((rows + 1) * sizeof *c->indptr)) ||
        !(c->seq_row = malloc((ns + 1) * sizeof *c->seq_row))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory for %llu positions",
                         (unsigned long long)rows);
        goto out;
    }
    c->n_rows = rows;
    c->n_cols = q.dd->d_sae;
    c->n_seq = ns;
    c->indptr[0] = 0;
    uint64_t r = 0;
    for (uint64_t i = 0; i < ns; i++) {
        c->seq_row[i] = r;
        for (uint32_t p = 0; p < s[i].len; p++, r++) {
            int f = ldb_fwd_get(db, q.txn, q.dd, s[i].start + p, 1, &fb);
            if (f == LDB_ENOTFOUND) {
                rc = ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "sequence %llu has no codes of "
                                 "'%s' (the dictionary was not ingested over it)",
                                 (unsigned long long)s[i].seq, dict);
                goto out;
            }
            if ((rc = f))
                goto out;
            uint64_t j = s[i].start + p - fb.start, k = fb.off[j + 1] - fb.off[j];
            if (nnz + k > cap) {
                uint64_t nc = cap ? cap * 2 : 4096;
                while (nc < nnz + k)
                    nc *= 2;
                uint32_t *ni = realloc(c->indices, nc * sizeof *ni);
                if (ni)
                    c->indices = ni;
                float *nd = ni ? realloc(c->data, nc * sizeof *nd) : NULL;
                if (!nd) {
                    rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory for %llu codes",
                                     (unsigned long long)nc);
                    goto out;
                }
                c->data = nd;
                cap = nc;
            }
            for (uint64_t e = fb.off[j]; e < fb.off[j + 1]; e++, nnz++) {
                c->indices[nnz] = fb.lat[e];
                c->data[nnz] = ldb_val_float(fb.bits[e], ldb_db_values(db));
            }
            c->indptr[r + 1] = nnz;
        }
    }
    c->seq_row[ns] = r;
    *out = c;
    c = NULL;
out:
    ldb_fblock_free(&fb);
    ldb_csr_free(c);
    free(s);
    ldb_q_end(&q);
    return rc;
}

void ldb_tokens_free(ldb_tokens *t)
{
    if (!t)
        return;
    free(t->tokens);
    free(t->seq_off);
    free(t);
}

int ldb_query_tokens(ldb_db *db, uint64_t seq0, uint64_t seq1, ldb_tokens **out)
{
    qctx q;
    ldb_seqrec *s = NULL;
    ldb_tokens *t = NULL;
    *out = NULL;
    int rc = ldb_q_begin(db, NULL, 0, 0, &q);
    if (rc || (rc = seq_range(&q, seq0, seq1, &s)))
        goto out;
    uint64_t ns = seq1 - seq0, n = 0;
    for (uint64_t i = 0; i < ns; i++)
        n += s[i].len;
    if (!(t = calloc(1, sizeof *t)) || !(t->tokens = malloc((n ? n : 1) * sizeof *t->tokens)) ||
        !(t->seq_off = malloc((ns + 1) * sizeof *t->seq_off))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory for %llu tokens",
                         (unsigned long long)n);
        goto out;
    }
    t->n_seq = ns;
    t->n = n;
    n = 0;
    for (uint64_t i = 0; i < ns; i++) {
        t->seq_off[i] = n;
        if ((rc = ldb_seq_tokens_at(db, q.txn, s[i].start, 0, s[i].len, t->tokens + n)))
            goto out;
        n += s[i].len;
    }
    t->seq_off[ns] = n;
    *out = t;
    t = NULL;
out:
    ldb_tokens_free(t);
    free(s);
    ldb_q_end(&q);
    return rc;
}

void ldb_labels_free(ldb_labels *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->n; i++)
        free(l->text[i]);
    free(l->text);
    free(l->latent);
    free(l);
}

typedef struct lab_acc {
    ldb_db *db;
    ldb_labels *l;
    uint32_t cap;
} lab_acc;

static int add_label(void *arg, uint32_t latent, const char *text, size_t len)
{
    lab_acc *a = arg;
    ldb_labels *l = a->l;
    if (l->n == a->cap) {
        uint32_t nc = a->cap ? a->cap * 2 : 64;
        uint32_t *nl = realloc(l->latent, nc * sizeof *nl);
        if (nl)
            l->latent = nl;
        char **nt = nl ? realloc(l->text, nc * sizeof *nt) : NULL;
        if (!nt)
            return ldb_err_set(ldb_db_err(a->db), LDB_ENOMEM, "out of memory");
        l->text = nt;
        a->cap = nc;
    }
    if (!(l->text[l->n] = strndup(text, len)))
        return ldb_err_set(ldb_db_err(a->db), LDB_ENOMEM, "out of memory");
    l->latent[l->n++] = latent;
    return LDB_OK;
}

int ldb_query_labels(ldb_db *db, const char *dict, ldb_labels **out)
{
    qctx q;
    *out = NULL;
    int rc = ldb_q_begin(db, dict, 0, 0, &q);
    lab_acc a = {db, NULL, 0};
    if (!rc && !(a.l = calloc(1, sizeof *a.l)))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (!rc)
        rc = ldb_label_each(db, q.txn, q.dd->id, add_label, &a);
    if (!rc) {
        *out = a.l;
        a.l = NULL;
    }
    ldb_labels_free(a.l);
    ldb_q_end(&q);
    return rc;
}
