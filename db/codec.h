/* codec.h — byte-level encodings of the store (docs/FORMAT.md): big-endian keys,
 * varints, growable buffers, zstd frames behind a codec byte, value rounding, Rice
 * codes in bit streams, sorted position lists and CRC-32. A ldb_zc holds reusable
 * zstd contexts; one per thread. */
#ifndef LDB_DB_CODEC_H
#define LDB_DB_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LDB_VAL_BF16 0
#define LDB_VAL_F16  1
#define LDB_VAL_F32  2

static inline void ldb_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void ldb_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline void ldb_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
/* The 6-byte key (dict u16, latent u32) of lsum, ltop and labels. */
static inline void ldb_key_latent(uint8_t kb[6], uint16_t dict, uint32_t latent)
{
    ldb_be16(kb, dict);
    ldb_be32(kb + 2, latent);
}
static inline uint16_t ldb_rd_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ldb_rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t ldb_rd_be64(const uint8_t *p)
{
    return (uint64_t)ldb_rd_be32(p) << 32 | ldb_rd_be32(p + 4);
}

/* Appends v as LEB128 at p; returns bytes written (<= 10). */
static inline size_t ldb_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [*p, end); returns -1 if truncated or longer than 10 bytes. */
static inline int ldb_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned s = 0; s < 70 && *p < end; s += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* A growable byte buffer. Invariant: len <= cap; data may be NULL when cap == 0. */
typedef struct ldb_buf {
    uint8_t *data;
    size_t len, cap;
} ldb_buf;

int ldb_buf_reserve(ldb_buf *b, size_t extra); /* 0, or -1 out of memory */
/* Grows *p (elements of size el, capacity *cap; from 1024) to hold need, doubling;
 * keeps its contents. 0, or -1 when out of memory (*p is then as it was). */
int ldb_wgrow(void **p, size_t *cap, size_t need, size_t el);
void ldb_buf_free(ldb_buf *b);

typedef struct ldb_zc ldb_zc;
ldb_zc *ldb_zc_new(int level);
void ldb_zc_free(ldb_zc *z);

/* Appends codec byte + payload to out: a zstd frame when it is smaller, else raw. */
int ldb_zc_pack(ldb_zc *z, const uint8_t *src, size_t n, ldb_buf *out);

/* Decodes codec byte + payload [p, p+n) into out (replacing its content).
 * Returns 0, or -1 when the codec byte is unknown or the frame is corrupt
 * (checksum, size). */
int ldb_zc_unpack(ldb_zc *z, const uint8_t *p, size_t n, ldb_buf *out);

/* CRC-32 (zlib's) of p[0..n): the checksum ending each forward block. */
uint32_t ldb_crc32(const uint8_t *p, size_t n);

/* Appends codec byte 0 and src[0..n) (stored raw, to be read in place). */
int ldb_zc_store(const uint8_t *src, size_t n, ldb_buf *out);

/* Converts a float to the stored representation and back. */
uint32_t ldb_val_bits(float v, int kind);   /* bf16/f16 in the low 16 bits, or f32 bits */
float ldb_val_float(uint32_t bits, int kind);
uint16_t ldb_val_bf16key(uint32_t bits, int kind); /* the histogram key of a stored value */
/* The largest float that ldb_val_bits stores as a finite value: anything above it
 * (or NaN) would be stored as Inf or NaN, so writers refuse it. bf16 3.3961e38 (just
 * below the tie that rounds to Inf), f16 65519.996 (65504 and what rounds to it), f32
 * FLT_MAX. Negative values mirror it. */
float ldb_val_max(int kind);
/* "bf16", "f16" or "f32". */
const char *ldb_val_name(int kind);
static inline int ldb_val_bytes(int kind) { return kind == LDB_VAL_F32 ? 4 : 2; }
/* Mantissa bits of a stored value; the bits above them are its symbol (sign and
 * exponent, at most 512 symbols), which forward blocks code by frequency rank. */
static inline int ldb_val_mant(int kind) { return kind == LDB_VAL_F32 ? 23 : kind == LDB_VAL_F16 ? 10 : 7; }
#define LDB_VAL_NSYM 512


/* Rice codes in a little-endian bit stream: q = v >> k one-bits, a zero, the k
 * low bits; q >= 48 escapes to 48 one-bits, a zero and v in 64 raw bits. */
typedef struct ldb_bitw {
    ldb_buf *b;
    uint64_t acc;
    unsigned nbits;
} ldb_bitw;
typedef struct ldb_bitr {
    const uint8_t *p, *end;
    uint64_t acc;
    unsigned nbits;
} ldb_bitr;
int ldb_rice_put(ldb_bitw *w, uint64_t v, unsigned k);
int ldb_bitw_flush(ldb_bitw *w);            /* pads to a whole byte */
int ldb_rice_get(ldb_bitr *r, unsigned k, uint64_t *v);

/* The same decode, inlined for hot loops: one 8-byte refill and a count of
 * trailing ones per code; codes that do not fit the 56+ buffered bits (escapes,
 * long quotients, the stream's last bytes) take ldb_rice_get. */
static inline int ldb_rice_get_fast(ldb_bitr *r, unsigned k, uint64_t *v)
{
    if (r->end - r->p >= 8) {
        uint64_t w;
        memcpy(&w, r->p, 8);
        r->acc |= w << r->nbits; /* nbits < 64 here: the buffer is never full on entry */
        r->p += (63 - r->nbits) >> 3;
        r->nbits |= 56;
    }
    if (!~r->acc) /* 64 ones (bits past nbits are the next bytes'): the careful path */
        return ldb_rice_get(r, k, v);
    uint64_t ones = (uint64_t)__builtin_ctzll(~r->acc);
    unsigned used = (unsigned)ones + 1 + k;
    if (ones >= 48 || used > r->nbits)
        return ldb_rice_get(r, k, v);
    *v = ones << k | ((r->acc >> (ones + 1)) & ((1ull << k) - 1));
    r->acc = used < 64 ? r->acc >> used : 0;
    r->nbits -= used;
    return 0;
}
unsigned ldb_rice_k(double mean);           /* the largest k <= 40 with 2^k <= 0.69 mean */
/* A reader of the stream [base, end) from bit offset bit (-1 when past the end). */
int ldb_bitr_at(ldb_bitr *r, const uint8_t *base, const uint8_t *end, uint64_t bit);
/* Bits written so far to w's buffer (from its start). */
static inline uint64_t ldb_bitw_pos(const ldb_bitw *w) { return (uint64_t)w->b->len * 8 + w->nbits; }

/* Sorted position lists (inverted chunks, token index): varint count, u8 Rice
 * parameter k, then the count-1 gaps - 1 as Rice codes in a little-endian bit
 * stream (q one-bits, a zero, k low bits; q >= 48 escapes to 64 raw bits).
 * Near the entropy of geometric gaps, where varints spend ~1.5 bytes. */
int ldb_posting_encode(const uint64_t *pos, size_t n, ldb_buf *out);

/* Decodes into pos (capacity cap); *n = count. The first position is the key's,
 * passed as first. Returns 0, or -1 when malformed or over capacity; with pos NULL
 * only *n is set. */
int ldb_posting_count(const uint8_t *p, size_t len, uint64_t *n);
int ldb_posting_decode(const uint8_t *p, size_t len, uint64_t first, uint64_t *pos, uint64_t cap,
                       uint64_t *n);

#endif
