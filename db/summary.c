/* summary.c — encoding and merging of latent summaries and top candidates. */
#include "summary.h"
#include "db_impl.h"

#include <stdlib.h>
#include <string.h>

void ldb_lsum_free(ldb_lsum *s)
{
    free(s->hk);
    free(s->hc);
    s->hk = NULL;
    s->hc = NULL;
    s->nh = 0;
}

int ldb_lsum_decode(const uint8_t *p, size_t n, ldb_lsum *s)
{
    const uint8_t *end = p + n;
    memset(s, 0, sizeof *s);
    if (n < 36)
        return -1;
    memcpy(&s->count, p, 8);
    memcpy(&s->nseq, p + 8, 8);
    memcpy(&s->sum, p + 16, 8);
    memcpy(&s->sumsq, p + 24, 8);
    memcpy(&s->max, p + 32, 4);
    p += 36;
    uint64_t nh, key = 0, total = 0;
    if (ldb_varint_get(&p, end, &nh) || nh > 65536)
        return -1;
    s->hk = malloc((nh ? nh : 1) * sizeof *s->hk);
    s->hc = malloc((nh ? nh : 1) * sizeof *s->hc);
    if (!s->hk || !s->hc) {
        ldb_lsum_free(s);
        return -1;
    }
    for (uint64_t i = 0; i < nh; i++) {
        uint64_t gap, c;
        if (ldb_varint_get(&p, end, &gap) || ldb_varint_get(&p, end, &c) || (i && gap == 0) ||
            key + gap > 0xffff) {
            ldb_lsum_free(s);
            return -1;
        }
        key += gap;
        s->hk[i] = (uint16_t)key;
        s->hc[i] = c;
        total += c;
    }
    s->nh = (uint32_t)nh;
    if (p != end || total != s->count) {
        ldb_lsum_free(s);
        return -1;
    }
    return 0;
}

int ldb_lsum_encode(const ldb_lsum *s, ldb_buf *out)
{
    if (ldb_buf_reserve(out, 36 + 10 + (size_t)s->nh * 13))
        return -1;
    uint8_t *p = out->data + out->len;
    memcpy(p, &s->count, 8);
    memcpy(p + 8, &s->nseq, 8);
    memcpy(p + 16, &s->sum, 8);
    memcpy(p + 24, &s->sumsq, 8);
    memcpy(p + 32, &s->max, 4);
    size_t o = 36;
    o += ldb_varint_put(p + o, s->nh);
    uint32_t prev = 0;
    for (uint32_t i = 0; i < s->nh; i++) {
        o += ldb_varint_put(p + o, (uint64_t)(s->hk[i] - prev));
        o += ldb_varint_put(p + o, s->hc[i]);
        prev = s->hk[i];
    }
    out->len += o;
    return 0;
}

int ldb_lsum_merge_hist(ldb_lsum *s, const uint16_t *k, const uint64_t *c, uint32_t n)
{
    uint32_t cap = s->nh + n;
    uint16_t *nk = malloc((cap ? cap : 1) * sizeof *nk);
    uint64_t *nc = malloc((cap ? cap : 1) * sizeof *nc);
    if (!nk || !nc) {
        free(nk);
        free(nc);
        return -1;
    }
    uint32_t i = 0, j = 0, o = 0;
    while (i < s->nh || j < n) {
        if (j == n || (i < s->nh && s->hk[i] < k[j])) {
            nk[o] = s->hk[i];
            nc[o++] = s->hc[i++];
        } else if (i == s->nh || k[j] < s->hk[i]) {
            nk[o] = k[j];
            nc[o++] = c[j++];
        } else {
            nk[o] = k[j];
            nc[o++] = s->hc[i++] + c[j++];
        }
    }
    free(s->hk);
    free(s->hc);
    s->hk = nk;
    s->hc = nc;
    s->nh = o;
    return 0;
}

/* Record: per candidate gpos u64, value f32, context mask u16 (LE), the value bits
 * of each set mask bit (vb bytes LE each), then varints seq, pos, len. */
/* Sorts n u16 keys: insertion sort when short, else two byte-wise counting passes
 * through tmp (the batch's hottest sort: every code's histogram key). */
static void sort_u16(uint16_t *k, uint16_t *tmp, size_t n)
{
    if (n < 48) {
        for (size_t i = 1; i < n; i++) {
            uint16_t x = k[i];
            size_t j = i;
            while (j > 0 && k[j - 1] > x) {
                k[j] = k[j - 1];
                j--;
            }
            k[j] = x;
        }
        return;
    }
    size_t c[256];
    for (int pass = 0; pass < 2; pass++) {
        uint16_t *src = pass ? tmp : k, *dst = pass ? k : tmp;
        int sh = 8 * pass;
        memset(c, 0, sizeof c);
        for (size_t i = 0; i < n; i++)
            c[(src[i] >> sh) & 0xff]++;
        for (size_t b = 0, sum = 0; b < 256; b++) {
            size_t t = c[b];
            c[b] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++)
            dst[c[(src[i] >> sh) & 0xff]++] = src[i];
    }
}

uint32_t ldb_hist_of_keys(uint16_t *keys, uint16_t *tmp, size_t n, uint16_t *hk, uint64_t *hc)
{
    sort_u16(keys, tmp, n);
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && hk[m - 1] == keys[i]) {
            hc[m - 1]++;
        } else {
            hk[m] = keys[i];
            hc[m++] = 1;
        }
    }
    return m;
}

int ldb_lsum_add(ldb_lsum *s, const ldb_lsum *b)
{
    s->count += b->count;
    s->nseq += b->nseq;
    s->sum += b->sum;
    s->sumsq += b->sumsq;
    if (b->max > s->max)
        s->max = b->max;
    return ldb_lsum_merge_hist(s, b->hk, b->hc, b->nh);
}

int ldb_top_decode(const uint8_t *p, size_t n, int vb, ldb_cand *out, ldb_tctx *ctx, int max)
{
    const uint8_t *end = p + n;
    int k = 0;
    while (p < end && k < max) { /* stops after max: the best come first */
        uint16_t mask;
        if (end - p < 14)
            return -1;
        memcpy(&out[k].gpos, p, 8);
        memcpy(&out[k].value, p + 8, 4);
        memcpy(&mask, p + 12, 2);
        p += 14;
        if (ctx)
            ctx[k].mask = mask;
        for (int j = 0; j < 2 * LDB_TOPCTX; j++) {
            if (!(mask >> j & 1)) {
                if (ctx)
                    ctx[k].bits[j] = 0;
                continue;
            }
            if (end - p < vb)
                return -1;
            uint32_t x = 0;
            memcpy(&x, p, (size_t)vb);
            if (ctx)
                ctx[k].bits[j] = x;
            p += vb;
        }
        uint64_t seq, pos, len;
        if (ldb_varint_get(&p, end, &seq) || ldb_varint_get(&p, end, &pos) ||
            ldb_varint_get(&p, end, &len) || pos >= len || len > UINT32_MAX)
            return -1;
        if (ctx) {
            ctx[k].seq = seq;
            ctx[k].pos = (uint32_t)pos;
            ctx[k].len = (uint32_t)len;
        }
        k++;
    }
    return k;
}

int ldb_top_encode(const ldb_cand *c, const ldb_tctx *ctx, int n, int vb, ldb_buf *out)
{
    if (ldb_buf_reserve(out, (size_t)n * (14 + 2 * LDB_TOPCTX * (size_t)vb + 30)))
        return -1;
    uint8_t *p = out->data + out->len;
    for (int i = 0; i < n; i++) {
        memcpy(p, &c[i].gpos, 8);
        memcpy(p + 8, &c[i].value, 4);
        memcpy(p + 12, &ctx[i].mask, 2);
        p += 14;
        for (int j = 0; j < 2 * LDB_TOPCTX; j++)
            if (ctx[i].mask >> j & 1) {
                memcpy(p, &ctx[i].bits[j], (size_t)vb);
                p += vb;
            }
        p += ldb_varint_put(p, ctx[i].seq);
        p += ldb_varint_put(p, ctx[i].pos);
        p += ldb_varint_put(p, ctx[i].len);
    }
    out->len = (size_t)(p - out->data);
    return 0;
}

int ldb_top_merge(const ldb_cand *a, int na, const ldb_cand *b, int nb, ldb_cand *out, int max,
                  int *src)
{
    int i = 0, j = 0, o = 0;
    while (o < max && (i < na || j < nb)) {
        if (j == nb || (i < na && ldb_cand_before(&a[i], &b[j]))) {
            if (src)
                src[o] = i;
            out[o++] = a[i++];
        } else {
            if (src)
                src[o] = -1 - j;
            out[o++] = b[j++];
        }
    }
    return o;
}
