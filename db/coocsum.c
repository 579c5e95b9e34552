/* coocsum.c — format 6's co-occurrence summaries: window units (`lwin`) and the
 * latents of a sequence (`lseq`); see coocsum.h and docs/FORMAT.md. */
#include <stdlib.h>
#include <string.h>

#include "coocsum.h"
#include "db_impl.h"

const uint16_t ldb_wins[LDB_NWIN] = {1, 2, 3, 5, 10, 20};

int ldb_coocsum_has(const ldb_db *db)
{
    return db->format >= 6;
}

int ldb_win_slot(uint32_t w)
{
    for (int i = 0; i < LDB_NWIN; i++)
        if (ldb_wins[i] == w)
            return i;
    return -1;
}

/* The first index i >= k of the ascending a[0..n) with a[i] >= x: galloping from k,
 * so a cursor that moves forward by d costs O(log d) (a DB padded with PAD tokens
 * has skipped positions by the hundred thousand, walked once per latent). */
static size_t gallop(const uint64_t *a, size_t k, size_t n, uint64_t x)
{
    size_t step = 1, lo = k;
    if (k >= n || a[k] >= x)
        return k;
    while (k + step < n && a[k + step] < x) {
        lo = k + step;
        step *= 2;
    }
    return ldb_lower_bound(a, lo + 1, k + step < n ? k + step : n, x);
}

/* Ordinary positions of [lo, hi): those of the skip list L->skip not in it; *k is a
 * cursor into the list that only moves forward (intervals come in order). */
static uint64_t ordinary_in(const ldb_layout *L, size_t *k, uint64_t lo, uint64_t hi)
{
    *k = gallop(L->skip, *k, L->nskip, lo);
    size_t e = gallop(L->skip, *k, L->nskip, hi);
    uint64_t n = hi - lo - (e - *k);
    *k = e;
    return n;
}

/* The windows of the firings are merged as intervals (clipped to their sequence) in
 * one pass, and the skipped positions inside each merged interval are subtracted. */
uint64_t ldb_window_units(const uint64_t *pos, size_t n, const ldb_layout *L, uint32_t w)
{
    size_t si = 0, ki = 0, kc = 0;
    uint64_t total = 0, lo = 0, hi = 0;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = pos[i];
        ki = gallop(L->skip, ki, L->nskip, p);
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
            total += ordinary_in(L, &kc, lo, hi);
        lo = a;
        hi = b;
        open = 1;
    }
    if (open)
        total += ordinary_in(L, &kc, lo, hi);
    return total;
}

int ldb_lwin_get(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint32_t w, const uint8_t **rec)
{
    *rec = NULL;
    if (db->format < 6 || !db->lwin || ldb_win_slot(w) < 0)
        return LDB_ENOTFOUND;
    uint8_t kb[4];
    ldb_lwin_key(kb, dd->id, (uint16_t)w);
    MDB_val k = {4, kb}, v;
    int mrc = mdb_get(txn, db->lwin, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_ENOTFOUND;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "lwin");
    if (v.mv_size != (size_t)dd->d_sae * 8)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the window units of '%s' at %u "
                           "(table lwin) are corrupt (%zu bytes for %u latents); run latentdb "
                           "check", db->path, dd->name, w, v.mv_size, dd->d_sae);
    *rec = v.mv_data;
    return LDB_OK;
}

int ldb_lseq_get(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t seq, const uint8_t **p,
                 size_t *len)
{
    *p = NULL;
    *len = 0;
    if (db->format < 6 || !db->lseq)
        return LDB_ENOTFOUND;
    uint8_t kb[10];
    ldb_lseq_key(kb, dd->id, seq);
    MDB_val k = {10, kb}, v;
    int mrc = mdb_get(txn, db->lseq, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_ENOTFOUND;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "lseq");
    *p = v.mv_data;
    *len = v.mv_size;
    return LDB_OK;
}

int ldb_lseq_encode(const uint64_t *ids, size_t n, ldb_buf *out)
{
    if (ldb_buf_reserve(out, 11))
        return -1;
    out->data[out->len++] = 0; /* codec: raw */
    out->len += ldb_varint_put(out->data + out->len, ids[0]);
    return ldb_posting_encode(ids, n, out);
}

int ldb_lseq_decode(const uint8_t *p, size_t len, uint32_t d_sae, uint64_t *ids, uint64_t cap,
                    uint64_t *n)
{
    const uint8_t *q = p, *end = p + len;
    uint64_t first;
    if (len < 1 || *q++ != 0 || ldb_varint_get(&q, end, &first) ||
        ldb_posting_decode(q, (size_t)(end - q), first, ids, cap, n))
        return -1;
    return ids[*n - 1] < d_sae ? 0 : -1; /* ascending: the last is the largest */
}

void ldb_group_pairs(const uint64_t *const *lists, const size_t *n, int nlists, size_t ngroups,
                     uint64_t *ids, uint64_t *off)
{
    memset(off, 0, (ngroups + 1) * sizeof *off);
    for (int l = 0; l < nlists; l++)
        for (size_t i = 0; i < n[l]; i++)
            off[(lists[l][i] >> 32) + 1]++;
    for (size_t g = 0; g < ngroups; g++)
        off[g + 1] += off[g];
    for (int l = 0; l < nlists; l++) /* off[g] walks to group g's end, then is put back */
        for (size_t i = 0; i < n[l]; i++)
            ids[off[lists[l][i] >> 32]++] = (uint32_t)lists[l][i];
    for (size_t g = ngroups; g > 0; g--)
        off[g] = off[g - 1];
    off[0] = 0;
}
