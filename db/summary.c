/* summary.c — encoding and merging of latent summaries and top candidates. */
#include "summary.h"
#include "db_impl.h"

#include <math.h>
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

static int lsum_decode3(const uint8_t *p, size_t n, ldb_lsum *s)
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

static int lsum_encode3(const ldb_lsum *s, ldb_buf *out)
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

/* Format 4: count and sequences as varints, the histogram's keys and counts as Rice
 * codes (docs/FORMAT.md, "Latent summary"). */
static int lsum_encode4(const ldb_lsum *s, ldb_buf *out)
{
    if (ldb_buf_reserve(out, 2 * 10 + 20 + 10 + 3 + 4))
        return -1;
    uint8_t *p = out->data + out->len;
    size_t o = ldb_varint_put(p, s->count);
    o += ldb_varint_put(p + o, s->nseq);
    memcpy(p + o, &s->sum, 8);
    memcpy(p + o + 8, &s->sumsq, 8);
    memcpy(p + o + 16, &s->max, 4);
    o += 20;
    o += ldb_varint_put(p + o, s->nh);
    if (!s->nh) {
        out->len += o;
        return 0;
    }
    o += ldb_varint_put(p + o, s->hk[0]);
    double span = (double)(s->hk[s->nh - 1] - s->hk[0]), total = 0;
    for (uint32_t i = 0; i < s->nh; i++)
        total += (double)s->hc[i];
    unsigned kg = s->nh > 1 ? ldb_rice_k(span / (s->nh - 1)) : 0, kc = ldb_rice_k(total / s->nh);
    p[o++] = (uint8_t)kg;
    p[o++] = (uint8_t)kc;
    out->len += o;
    ldb_bitw w = {out, 0, 0};
    for (uint32_t i = 1; i < s->nh; i++)
        if (ldb_rice_put(&w, (uint64_t)(s->hk[i] - s->hk[i - 1] - 1), kg))
            return -1;
    for (uint32_t i = 0; i < s->nh; i++)
        if (ldb_rice_put(&w, s->hc[i] - 1, kc))
            return -1;
    return ldb_bitw_flush(&w);
}

static int lsum_decode4(const uint8_t *p, size_t n, ldb_lsum *s)
{
    const uint8_t *end = p + n;
    uint64_t nh, key, total = 0;
    memset(s, 0, sizeof *s);
    if (ldb_varint_get(&p, end, &s->count) || ldb_varint_get(&p, end, &s->nseq) || end - p < 20)
        return -1;
    memcpy(&s->sum, p, 8);
    memcpy(&s->sumsq, p + 8, 8);
    memcpy(&s->max, p + 16, 4);
    p += 20;
    if (ldb_varint_get(&p, end, &nh) || nh > 65536 || nh > s->count || (nh && s->nseq == 0))
        return -1;
    if (!nh)
        return p == end && s->count == 0 ? 0 : -1;
    if (ldb_varint_get(&p, end, &key) || key > 0xffff || end - p < 2 || p[0] > 40 || p[1] > 40)
        return -1;
    unsigned kg = p[0], kc = p[1];
    p += 2;
    s->hk = malloc(nh * sizeof *s->hk);
    s->hc = malloc(nh * sizeof *s->hc);
    if (!s->hk || !s->hc) {
        ldb_lsum_free(s);
        return -1;
    }
    ldb_bitr r = {p, end, 0, 0};
    s->hk[0] = (uint16_t)key;
    for (uint64_t i = 1; i < nh; i++) {
        uint64_t g;
        if (ldb_rice_get(&r, kg, &g) || key + g + 1 > 0xffff) {
            ldb_lsum_free(s);
            return -1;
        }
        key += g + 1;
        s->hk[i] = (uint16_t)key;
    }
    for (uint64_t i = 0; i < nh; i++) {
        uint64_t c;
        if (ldb_rice_get(&r, kc, &c) || c >= s->count || (total += c + 1) > s->count) {
            ldb_lsum_free(s);
            return -1;
        }
        s->hc[i] = c + 1;
    }
    s->nh = (uint32_t)nh;
    if (total != s->count || r.p != end) {
        ldb_lsum_free(s);
        return -1;
    }
    return 0;
}

int ldb_lsum_decode(const uint8_t *p, size_t n, int fmt, ldb_lsum *s)
{
    return fmt >= 4 ? lsum_decode4(p, n, s) : lsum_decode3(p, n, s);
}

int ldb_lsum_encode(const ldb_lsum *s, int fmt, ldb_buf *out)
{
    return fmt >= 4 ? lsum_encode4(s, out) : lsum_encode3(s, out);
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

static int top_decode3(const uint8_t *p, size_t n, int vb, ldb_cand *out, ldb_tctx *ctx, int max)
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

static int top_encode3(const ldb_cand *c, const ldb_tctx *ctx, int n, int vb, ldb_buf *out)
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

/* Format 4: candidates in gpos order, gaps and values (offsets from the best) Rice
 * coded, then each one's context: a bit, and when set its mask and values raw; no
 * sequence or position (docs/FORMAT.md, "Top list"). */
static int top_encode4(const ldb_cand *c, const ldb_tctx *ctx, int n, int kind, ldb_buf *out)
{
    int ix[LDB_TOPK];
    uint64_t g[LDB_TOPK];
    if (n < 1 || n > LDB_TOPK || ldb_buf_reserve(out, 1 + 2 + 10 + 4))
        return n == 0 ? 0 : -1;
    for (int i = 0; i < n; i++) { /* insertion sort by gpos, at most 100, on a copy of */
        int j = i;                 /* the keys (reading them through ix was most of the cost) */
        for (; j > 0 && c[i].gpos < g[j - 1]; j--) {
            g[j] = g[j - 1];
            ix[j] = ix[j - 1];
        }
        g[j] = c[i].gpos;
        ix[j] = i;
    }
    uint32_t best = ldb_val_bits(c[0].value, kind);
    double span = (double)(c[ix[n - 1]].gpos - c[ix[0]].gpos), dv = 0;
    for (int i = 0; i < n; i++)
        dv += (double)(best - ldb_val_bits(c[i].value, kind));
    unsigned kg = n > 1 ? ldb_rice_k(span / (n - 1)) : 0, kv = ldb_rice_k(dv / n);
    int vb = ldb_val_bytes(kind);
    uint8_t *p = out->data + out->len;
    size_t o = 0;
    p[o++] = (uint8_t)n;
    p[o++] = (uint8_t)kg;
    p[o++] = (uint8_t)kv;
    o += ldb_varint_put(p + o, c[ix[0]].gpos);
    memcpy(p + o, &best, (size_t)vb);
    o += (size_t)vb;
    out->len += o;
    ldb_bitw w = {out, 0, 0};
    for (int i = 1; i < n; i++)
        if (ldb_rice_put(&w, c[ix[i]].gpos - c[ix[i - 1]].gpos - 1, kg))
            return -1;
    for (int i = 0; i < n; i++)
        if (ldb_rice_put(&w, best - ldb_val_bits(c[ix[i]].value, kind), kv))
            return -1;
    for (int i = 0; i < n; i++) {
        const ldb_tctx *x = &ctx[ix[i]];
        if (ldb_rice_put(&w, x->mask != 0, 0)) /* "0" none; "10" a mask and values follow */
            return -1;
        if (!x->mask)
            continue;
        if (ldb_rice_put(&w, x->mask, 16))
            return -1;
        for (int j = 0; j < 2 * LDB_TOPCTX; j++)
            if (x->mask >> j & 1 && ldb_rice_put(&w, x->bits[j], (unsigned)(8 * vb)))
                return -1;
    }
    return ldb_bitw_flush(&w);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int top_decode4(const uint8_t *p, size_t len, int kind, ldb_cand *out, ldb_tctx *ctx,
                       int max)
{
    const uint8_t *end = p + len;
    ldb_cand g[LDB_TOPK];
    ldb_tctx x[LDB_TOPK];
    uint64_t key[LDB_TOPK];    /* offset from the best << 8 | index in gpos order */
    uint64_t first;
    int vb = ldb_val_bytes(kind);
    if (len < 3 || p[0] < 1 || p[0] > LDB_TOPK || p[1] > 40 || p[2] > 40)
        return -1;
    int n = p[0];
    unsigned kg = p[1], kv = p[2];
    p += 3;
    uint32_t best = 0;
    if (ldb_varint_get(&p, end, &first) || end - p < vb)
        return -1;
    memcpy(&best, p, (size_t)vb);
    p += vb;
    if (!isfinite(ldb_val_float(best, kind)) || ldb_val_float(best, kind) < 0)
        return -1;
    ldb_bitr r = {p, end, 0, 0};
    g[0].gpos = first;
    for (int i = 1; i < n; i++) {
        uint64_t d;
        if (ldb_rice_get(&r, kg, &d) || d >= UINT64_MAX - g[i - 1].gpos)
            return -1;
        g[i].gpos = g[i - 1].gpos + d + 1;
    }
    for (int i = 0; i < n; i++) {
        uint64_t d;
        if (ldb_rice_get(&r, kv, &d) || d > best)
            return -1;
        g[i].value = ldb_val_float(best - (uint32_t)d, kind);
        key[i] = d << 8 | (uint64_t)i;
    }
    for (int i = 0; i < n; i++) {
        uint64_t has, m, v;
        x[i].mask = 0; /* seq, pos, len 0: the sequence is not stored */
        x[i].seq = 0;
        x[i].pos = x[i].len = 0;
        if (ldb_rice_get(&r, 0, &has) || has > 1)
            return -1;
        if (!has)
            continue;
        if (ldb_rice_get(&r, 16, &m) || m == 0 || m > 0xffff)
            return -1;
        x[i].mask = (uint16_t)m;
        for (int j = 0; j < 2 * LDB_TOPCTX; j++) {
            if (!(m >> j & 1))
                continue;
            if (ldb_rice_get(&r, (unsigned)(8 * vb), &v) || v >> (8 * vb) ||
                !isfinite(ldb_val_float((uint32_t)v, kind)) || ldb_val_float((uint32_t)v, kind) < 0)
                return -1;
            x[i].bits[j] = (uint32_t)v;
        }
    }
    if (r.p != end)
        return -1;
    /* into candidate order: offset ascending is value descending (stored bits order as
     * values), and the index breaks ties by gpos ascending */
    qsort(key, (size_t)n, sizeof *key, cmp_u64);
    if (key[0] >> 8)
        return -1; /* the best value is a candidate's */
    int m = n < max ? n : max;
    for (int i = 0; i < m; i++) {
        int at = (int)(key[i] & 0xff);
        out[i] = g[at];
        if (ctx) {
            ctx[i] = x[at];
            for (int j = 0; j < 2 * LDB_TOPCTX; j++)
                if (!(x[at].mask >> j & 1))
                    ctx[i].bits[j] = 0;
        }
    }
    return m;
}

int ldb_top_decode(const uint8_t *p, size_t n, int fmt, int kind, ldb_cand *out, ldb_tctx *ctx,
                   int max)
{
    return fmt >= 4 ? top_decode4(p, n, kind, out, ctx, max)
                    : top_decode3(p, n, ldb_val_bytes(kind), out, ctx, max);
}

int ldb_top_encode(const ldb_cand *c, const ldb_tctx *ctx, int n, int fmt, int kind, ldb_buf *out)
{
    return fmt >= 4 ? top_encode4(c, ctx, n, kind, out) : top_encode3(c, ctx, n, ldb_val_bytes(kind), out);
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
