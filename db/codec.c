/* codec.c — the store's byte-level codings (codec.h): growable buffers, zstd packing
 * with reused contexts, value rounding (round to nearest even for bf16, as torch
 * does; f16 through the compiler's _Float16 conversion), Rice codes in bit streams,
 * sorted position lists and CRC-32. */
#include "codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/half.h"
#include "db_impl.h"

struct ldb_zc {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
    int level;
};

int ldb_buf_reserve(ldb_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void ldb_buf_free(ldb_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

ldb_zc *ldb_zc_new(int level)
{
    ldb_zc *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->level = level;
    z->c = ZSTD_createCCtx();
    z->d = ZSTD_createDCtx();
    if (!z->c || !z->d) {
        ldb_zc_free(z);
        return NULL;
    }
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(z->c, ZSTD_c_contentSizeFlag, 1);
    return z;
}

void ldb_zc_free(ldb_zc *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z);
}

int ldb_zc_pack(ldb_zc *z, const uint8_t *src, size_t n, ldb_buf *out)
{
    size_t bound = ZSTD_compressBound(n);
    if (ldb_buf_reserve(out, 1 + (bound > n ? bound : n)))
        return -1;
    uint8_t *dst = out->data + out->len;
    if (n >= 64) {
        size_t r = ZSTD_compress2(z->c, dst + 1, bound, src, n);
        if (!ZSTD_isError(r) && r < n) {
            dst[0] = 1;
            out->len += 1 + r;
            return 0;
        }
    }
    return ldb_zc_store(src, n, out);
}

int ldb_zc_store(const uint8_t *src, size_t n, ldb_buf *out)
{
    if (ldb_buf_reserve(out, 1 + n))
        return -1;
    uint8_t *dst = out->data + out->len;
    dst[0] = 0;
    memcpy(dst + 1, src, n);
    out->len += 1 + n;
    return 0;
}

int ldb_zc_unpack(ldb_zc *z, const uint8_t *p, size_t n, ldb_buf *out)
{
    out->len = 0;
    if (n < 1)
        return -1;
    if (p[0] == 0) { /* (at least a byte, so that out->data is never NULL) */
        if (ldb_buf_reserve(out, n > 1 ? n - 1 : 1))
            return -1;
        if (n > 1)
            memcpy(out->data, p + 1, n - 1);
        out->len = n - 1;
        return 0;
    }
    if (p[0] != 1)
        return -1;
    unsigned long long sz = ZSTD_getFrameContentSize(p + 1, n - 1);
    /* No record of ours decodes to more than a batch's postings: a frame claiming
     * more than 64 MiB is corrupt (and must not make us allocate it). */
    if (sz == ZSTD_CONTENTSIZE_UNKNOWN || sz == ZSTD_CONTENTSIZE_ERROR || sz > (1ull << 26))
        return -1;
    if (ldb_buf_reserve(out, sz ? (size_t)sz : 1))
        return -1;
    size_t r = ZSTD_decompressDCtx(z->d, out->data, (size_t)sz, p + 1, n - 1);
    if (ZSTD_isError(r) || r != sz)
        return -1;
    out->len = r;
    return 0;
}

static uint16_t f32_to_bf16(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays NaN */
        return (uint16_t)(u >> 16 | 0x40);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* f32 -> IEEE half, round to nearest even, with subnormals, Inf and NaN. */
static uint16_t f32_to_f16(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e00;
    if (a >= 0x47800000u) /* >= 65536 after rounding range: Inf */
        return sign | 0x7c00;
    if (a < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (a < 0x33000000u)
            return sign; /* < 2^-25 rounds to 0 */
        uint32_t m = (a & 0x7fffff) | 0x800000, e = a >> 23; /* value = m * 2^(e-150) */
        uint32_t shift = 126 - e;                              /* to units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return sign | (uint16_t)q;
    }
    uint32_t h = ((a >> 13) - ((127 - 15) << 10)), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, up to Inf: still correct */
    return sign | (uint16_t)h;
}

uint32_t ldb_val_bits(float v, int kind)
{
    if (kind == LDB_VAL_BF16)
        return f32_to_bf16(v);
    if (kind == LDB_VAL_F16)
        return f32_to_f16(v);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

float ldb_val_float(uint32_t bits, int kind)
{
    float f;
    if (kind == LDB_VAL_BF16) {
        uint32_t u = bits << 16;
        memcpy(&f, &u, 4);
    } else if (kind == LDB_VAL_F16) {
        f = ldb_f16_to_f32((uint16_t)bits);
    } else {
        memcpy(&f, &bits, 4);
    }
    return f;
}

float ldb_val_max(int kind)
{
    /* bf16: 0x7f7f7fff + 0x7fff + 1 stays below 0x7f800000 (0x7f7f8000 ties to the odd
     * 0x7f7f, so rounds up to Inf). f16: 0x477ff000 is the tie above 65504 (0x7bff,
     * odd), so rounds up to Inf. Pinned by tests/test_db.c. */
    uint32_t u = kind == LDB_VAL_BF16 ? 0x7f7f7fffu : kind == LDB_VAL_F16 ? 0x477fefffu
                                                                         : 0x7f7fffffu;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

const char *ldb_val_name(int kind)
{
    return kind == LDB_VAL_BF16 ? "bf16" : kind == LDB_VAL_F16 ? "f16" : "f32";
}

uint16_t ldb_val_bf16key(uint32_t bits, int kind)
{
    return kind == LDB_VAL_BF16 ? (uint16_t)bits : f32_to_bf16(ldb_val_float(bits, kind));
}

#define RICE_ESC 48

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "bit streams are stored little-endian");

static int bw_put(ldb_bitw *w, uint64_t v, unsigned n) /* n <= 56 */
{
    w->acc |= v << w->nbits;
    w->nbits += n;
    if (w->nbits >= 8) { /* flush whole bytes: one 8-byte store (little-endian) */
        if (w->b->cap - w->b->len < 8 && ldb_buf_reserve(w->b, 8))
            return -1;
        unsigned nb = w->nbits / 8;
        memcpy(w->b->data + w->b->len, &w->acc, 8);
        w->b->len += nb;
        w->acc = nb == 8 ? 0 : w->acc >> (8 * nb);
        w->nbits -= 8 * nb;
    }
    return 0;
}

unsigned ldb_rice_k(double mean)
{
    /* the largest k <= 40 with 2^k <= m is floor(log2 m), which ilogb gives exactly
     * (the loop "k++ while 2^(k+1) <= m" it replaces, without up to 40 steps) */
    double m = mean * 0.69;
    if (!(m >= 2))
        return 0; /* also NaN */
    int e = ilogb(m);
    return e > 40 ? 40 : (unsigned)e;
}

int ldb_rice_put(ldb_bitw *w, uint64_t v, unsigned k)
{
    uint64_t q = v >> k;
    if (q >= RICE_ESC)
        return bw_put(w, (1ull << RICE_ESC) - 1, RICE_ESC) || bw_put(w, 0, 1) ||
               bw_put(w, v & 0xffffffffu, 32) || bw_put(w, v >> 32, 32);
    if (q + 1 + k <= 56) /* the common case: one write */
        return bw_put(w, ((1ull << q) - 1) | (v & ((1ull << k) - 1)) << (q + 1),
                      (unsigned)q + 1 + k);
    while (q > 32) {
        if (bw_put(w, 0xffffffffu, 32))
            return -1;
        q -= 32;
    }
    return bw_put(w, (1ull << q) - 1, (unsigned)q) || bw_put(w, 0, 1) ||
           (k && bw_put(w, v & ((1ull << k) - 1), k));
}

int ldb_bitw_flush(ldb_bitw *w)
{
    return w->nbits ? bw_put(w, 0, 8 - w->nbits) : 0;
}

static void br_fill(ldb_bitr *r)
{
    while (r->nbits <= 56 && r->p < r->end) {
        r->acc |= (uint64_t)*r->p++ << r->nbits;
        r->nbits += 8;
    }
}

static int br_get(ldb_bitr *r, unsigned n, uint64_t *v) /* n <= 56 */
{
    br_fill(r);
    if (r->nbits < n)
        return -1;
    *v = n ? r->acc & ((1ull << n) - 1) : 0;
    r->acc = n < 64 ? r->acc >> n : 0;
    r->nbits -= n;
    return 0;
}

int ldb_bitr_at(ldb_bitr *r, const uint8_t *base, const uint8_t *end, uint64_t bit)
{
    uint64_t skip;
    if (bit / 8 > (uint64_t)(end - base))
        return -1;
    *r = (ldb_bitr){base + bit / 8, end, 0, 0};
    /* an empty reader when byte-aligned: ldb_rice_get_fast wants fewer than 64 bits held */
    return bit % 8 ? br_get(r, (unsigned)(bit % 8), &skip) : 0;
}

int ldb_rice_get(ldb_bitr *r, unsigned k, uint64_t *out)
{
    uint64_t qn = 0, bit;
    for (;;) {
        br_fill(r);
        if (!r->nbits)
            return -1;
        uint64_t ones = ~r->acc ? (uint64_t)__builtin_ctzll(~r->acc) : 64;
        if (ones > r->nbits)
            ones = r->nbits;
        if (qn + ones >= RICE_ESC) {
            unsigned take = (unsigned)(RICE_ESC - qn);
            r->acc >>= take;
            r->nbits -= take;
            qn = RICE_ESC;
            break;
        }
        qn += ones;
        r->acc >>= ones;
        r->nbits -= (unsigned)ones;
        if (r->nbits)
            break; /* the terminating zero is next */
    }
    if (br_get(r, 1, &bit) || bit)
        return -1;
    if (qn == RICE_ESC) {
        uint64_t lo, hi;
        if (br_get(r, 32, &lo) || br_get(r, 32, &hi))
            return -1;
        *out = lo | hi << 32;
        return 0;
    }
    uint64_t low = 0;
    if (k && br_get(r, k, &low))
        return -1;
    *out = qn << k | low;
    return 0;
}

int ldb_posting_encode(const uint64_t *pos, size_t n, ldb_buf *out)
{
    if (ldb_buf_reserve(out, 11))
        return -1;
    out->len += ldb_varint_put(out->data + out->len, n);
    unsigned k = n > 1 ? ldb_rice_k((double)(pos[n - 1] - pos[0]) / (double)(n - 1)) : 0;
    out->data[out->len++] = (uint8_t)k;
    ldb_bitw w = {out, 0, 0};
    for (size_t i = 1; i < n; i++)
        if (ldb_rice_put(&w, pos[i] - pos[i - 1] - 1, k))
            return -1;
    return ldb_bitw_flush(&w);
}

int ldb_posting_count(const uint8_t *p, size_t len, uint64_t *n)
{
    const uint8_t *q = p;
    return ldb_varint_get(&q, p + len, n);
}

int ldb_posting_decode(const uint8_t *p, size_t len, uint64_t first, uint64_t *pos, uint64_t cap,
                       uint64_t *n)
{
    const uint8_t *q = p, *end = p + len;
    if (ldb_varint_get(&q, end, n) || *n == 0 || q >= end)
        return -1;
    unsigned k = *q++;
    if (k > 40 || *n > cap || (*n - 1) > (uint64_t)(end - q) * 8)
        return -1;
    ldb_bitr r = {q, end, 0, 0};
    uint64_t at = first, v;
    pos[0] = first;
    for (uint64_t i = 1; i < *n; i++) {
        if (ldb_rice_get_fast(&r, k, &v) || v >= UINT64_MAX - at)
            return -1;
        at += v + 1;
        pos[i] = at;
    }
    return 0;
}

uint32_t ldb_crc32(const uint8_t *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) { /* zlib takes at most UINT_MAX bytes a call */
        uInt m = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, p, m);
        p += m;
        n -= m;
    }
    return (uint32_t)c;
}

int ldb_wgrow(void **p, size_t *cap, size_t need, size_t el)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * el);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}
