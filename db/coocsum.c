/* coocsum.c — format 6's co-occurrence summaries: window units (`lwin`) and the
 * latents of a sequence (`lseq`); see coocsum.h and docs/FORMAT.md. */
#include <stdlib.h>
#include <string.h>

#include "coocsum.h"
#include "db_impl.h"

const uint32_t ldb_wins[LDB_NWIN] = {1, 2, 3, 5, 10, 20};

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

/* The ordinary positions below x (x minus the skipped ones), for an x near p, where
 * sp = the skipped positions below p: walks the few skipped positions between them. */
static inline uint64_t rank_near(const ldb_layout *L, size_t sp, uint64_t p, uint64_t x)
{
    size_t k = sp;
    if (x <= p)
        while (k > 0 && L->skip[k - 1] >= x)
            k--;
    else
        while (k < L->nskip && L->skip[k] < x)
            k++;
    return x - k;
}

/* Firing i's window [a_i, b_i) (clipped to its sequence) adds to the windows before
 * it the positions from max(a_i, b_{i-1}) to b_i (the ends b_i only grow within a
 * sequence, and the next sequence's windows start at or after the last one's end),
 * so the ordinary ones it adds are rank(b_i) - max(rank(a_i), rank(b_{i-1})): one
 * pass, every w at once. Where no skipped position lies within the widest window of
 * p, rank(x) = x - (skipped positions below p) for every end. */
void ldb_window_units(const uint64_t *pos, size_t n, const ldb_layout *L, const uint32_t *ws,
                      int nw, uint64_t *out)
{
    size_t si = 0, ki = 0;
    uint64_t rb[LDB_NWIN] = {0}; /* rank of the last window's end, per w */
    uint64_t acc[LDB_NWIN] = {0}, wv[LDB_NWIN] = {0};
    uint32_t wmax = 0;
    for (int x = 0; x < nw; x++) {
        wv[x] = ws[x];
        wmax = ws[x] > wmax ? ws[x] : wmax;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t p = pos[i];
        ki = gallop(L->skip, ki, L->nskip, p);
        if (ki < L->nskip && L->skip[ki] == p)
            continue; /* a skipped firing is no firing */
        if (L->start[si + 1] <= p) /* the sequence holding p: start[si] <= p < start[si + 1] */
            si = ldb_lower_bound(L->start, si + 1, L->nseq, p + 1) - 1;
        uint64_t s0 = L->start[si], s1 = L->start[si + 1];
        if ((ki == 0 || L->skip[ki - 1] + wmax < p) && (ki == L->nskip || L->skip[ki] > p + wmax)) {
            for (int x = 0; x < LDB_NWIN; x++) { /* all lanes: the unused ones add nothing read */
                uint64_t w = wv[x];
                uint64_t a = p - s0 > w ? p - w : s0, b = s1 - p > w + 1 ? p + w + 1 : s1;
                uint64_t ra = a - ki, rbn = b - ki;
                acc[x] += rbn - (ra > rb[x] ? ra : rb[x]);
                rb[x] = rbn;
            }
            continue;
        }
        for (int x = 0; x < nw; x++) {
            uint64_t w = wv[x];
            uint64_t a = p - s0 > w ? p - w : s0, b = s1 - p > w + 1 ? p + w + 1 : s1;
            uint64_t ra = rank_near(L, ki, p, a), rbn = rank_near(L, ki, p, b);
            acc[x] += rbn - (ra > rb[x] ? ra : rb[x]);
            rb[x] = rbn;
        }
    }
    for (int x = 0; x < nw; x++)
        out[x] = acc[x];
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
