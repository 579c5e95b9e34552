/* fwdblock.c — forward blocks (fwdblock.h): the encoder the batch writer calls,
 * the decoders, and reads of one block or one position by gpos. Every decode
 * checks what it reads before use: a damaged block is an LDB_EFORMAT error naming
 * the DB, the table and the key, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "fwdblock.h"

/* ---- Encoder ---------------------------------------------------------------- */
/* The value code of a block: its symbols (the bits above a value's mantissa) by
 * count descending (ties by symbol), each one's rank, and the Rice parameter kv
 * that codes the ranks shortest. */
typedef struct vtable {
    uint32_t nsym;
    unsigned kv;
    uint16_t sym[LDB_VAL_NSYM], rank[LDB_VAL_NSYM];
} vtable;

static void value_table(const uint32_t *bits, size_t ne, int M, vtable *t)
{
    uint32_t freq[LDB_VAL_NSYM] = {0};
    for (size_t i = 0; i < ne; i++)
        freq[bits[i] >> M]++;
    t->nsym = 0;
    for (uint32_t x = 0; x < LDB_VAL_NSYM; x++)
        if (freq[x])
            t->sym[t->nsym++] = (uint16_t)x;
    for (uint32_t i = 1; i < t->nsym; i++) { /* by count descending, then symbol */
        uint16_t x = t->sym[i];
        uint32_t j = i;
        for (; j > 0 && freq[t->sym[j - 1]] < freq[x]; j--)
            t->sym[j] = t->sym[j - 1];
        t->sym[j] = x;
    }
    uint64_t best = UINT64_MAX;
    t->kv = 0;
    for (unsigned k = 0; k < 6; k++) { /* the k that codes the ranks shortest */
        uint64_t nb = 0;
        for (uint32_t r = 0; r < t->nsym; r++)
            nb += (uint64_t)freq[t->sym[r]] * ((r >> k) + 1 + k);
        if (nb < best)
            best = nb, t->kv = k;
    }
    for (uint32_t r = 0; r < t->nsym; r++)
        t->rank[t->sym[r]] = (uint16_t)r;
}

/* The Rice parameter of the ids of a position with c codes of R latents. */
static unsigned ids_k(uint32_t R, uint64_t c)
{
    return ldb_rice_k((double)R / (double)(c + 1));
}

/* Format 5: moves *ib and *vb past a position of c codes whose entry says xi and xv
 * (its ids take c (1 + k) + xi bits, its values c per + xv). */
static void skip5(uint32_t R, uint64_t per, uint64_t c, uint64_t xi, uint64_t xv, uint64_t *ib,
                  uint64_t *vb)
{
    *ib += c * (1 + ids_k(R, c)) + xi;
    *vb += c * per + xv;
}

/* One position's latent ids: the first as itself, each next as gap - 1, with a
 * parameter from its count (a BOS row firing thousands of latents has small gaps,
 * an ordinary one large gaps: one k for both would waste bits). */
static int put_ids(ldb_bitw *bw, const uint32_t *lat, uint32_t c, uint32_t R)
{
    unsigned k = ids_k(R, c);
    for (uint32_t j = 0; j < c; j++)
        if (ldb_rice_put(bw, j ? lat[j] - lat[j - 1] - 1 : lat[j], k))
            return -1;
    return 0;
}

/* One position's values: x = rank << M | mantissa, Rice-coded with kv + M. */
static int put_vals(ldb_bitw *bw, const uint32_t *bits, uint32_t c, const vtable *t, int M)
{
    uint64_t mmask = (1ull << M) - 1;
    for (uint32_t j = 0; j < c; j++)
        if (ldb_rice_put(bw, (uint64_t)t->rank[bits[j] >> M] << M | (bits[j] & mmask),
                         t->kv + (unsigned)M))
            return -1;
    return 0;
}

/* Part B's header: the symbols by rank and kv, at p (room for 11 + 2 nsym bytes);
 * returns its length. */
static size_t vheader(uint8_t *p, const vtable *t)
{
    size_t o = ldb_varint_put(p, t->nsym);
    for (uint32_t r = 0; r < t->nsym; r++, o += 2)
        memcpy(p + o, &t->sym[r], 2);
    p[o++] = (uint8_t)t->kv;
    return o;
}

static int put_vheader(ldb_buf *a, const vtable *t)
{
    if (ldb_buf_reserve(a, 16 + 2 * (size_t)t->nsym))
        return -1;
    a->len += vheader(a->data + a->len, t);
    return 0;
}

/* Finishes a record whose parts A (alen bytes) and B (body bytes in all) lie in
 * out->data after 4 free bytes, with room for 4 after them: u32 length of part A,
 * part A, part B, u32 CRC-32 of all before it. */
static void frame(ldb_buf *out, size_t alen, size_t body)
{
    uint32_t al = (uint32_t)alen;
    memcpy(out->data, &al, 4);
    uint32_t crc = ldb_crc32(out->data, 4 + body);
    memcpy(out->data + 4 + body, &crc, 4);
    out->len = 8 + body;
}

/* Parts A and B built in a (part A its first alen bytes), framed into out. */
static int seal(const ldb_buf *a, size_t alen, ldb_buf *out)
{
    out->len = 0;
    if (ldb_buf_reserve(out, 8 + a->len))
        return -1;
    memcpy(out->data + 4, a->data, a->len);
    frame(out, alen, a->len);
    return 0;
}

/* Format 3 and 4: part A holds the counts and a bit offset per group of
 * LDB_FWD_GROUP positions for each stream; the stream of a group decodes from it. */
static int encode4(const uint32_t *cnt, uint32_t n, const uint32_t *lat, const uint32_t *bits,
                   uint32_t R, size_t ne, int M, ldb_buf *a, ldb_buf *out)
{
    if (ldb_buf_reserve(a, 16 + (size_t)n * 9 + ne * 5))
        return -1;
    uint8_t *p = a->data;
    size_t o = 0;
    p[o++] = 0; /* raw: Rice bits do not compress, and raw bits are read in place */
    o += ldb_varint_put(p + o, n);
    for (uint32_t i = 0; i < n; i++)
        o += ldb_varint_put(p + o, cnt[i]);
    o += ldb_varint_put(p + o, R);
    uint32_t ngroups = (n + LDB_FWD_GROUP - 1) / LDB_FWD_GROUP;
    size_t goff = o;
    o += 4 * (size_t)(ngroups - 1);
    a->len = o;
    ldb_bitw bw = {a, 0, 0};
    size_t e = 0;
    for (uint32_t i = 0; i < n; e += cnt[i++]) {
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t bit = (uint32_t)((a->len - o) * 8 + bw.nbits);
            memcpy(a->data + goff + 4 * (size_t)(i / LDB_FWD_GROUP - 1), &bit, 4);
        }
        if (put_ids(&bw, lat + e, cnt[i], R))
            return -1;
    }
    if (ldb_bitw_flush(&bw))
        return -1;
    vtable t;
    value_table(bits, ne, M, &t);
    size_t alen = a->len;
    if (put_vheader(a, &t) || ldb_buf_reserve(a, 4 * (size_t)ngroups))
        return -1;
    goff = a->len;
    a->len += 4 * (size_t)(ngroups - 1);
    o = a->len;
    bw = (ldb_bitw){a, 0, 0};
    e = 0;
    for (uint32_t i = 0; i < n; e += cnt[i++]) {
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t bit = (uint32_t)((a->len - o) * 8 + bw.nbits);
            memcpy(a->data + goff + 4 * (size_t)(i / LDB_FWD_GROUP - 1), &bit, 4);
        }
        if (put_vals(&bw, bits + e, cnt[i], &t, M))
            return -1;
    }
    return ldb_bitw_flush(&bw) || seal(a, alen, out);
}

/* Format 5: part A holds a table of every position's count and bit lengths, and
 * per group of LDB_FWD_GROUP positions where its entry and its codes start, so
 * one position decodes without the positions before it. The streams are coded
 * first (into a, lengths into b), then laid out into out. */
static int encode5(const uint32_t *cnt, uint32_t n, const uint32_t *lat, const uint32_t *bits,
                   uint32_t R, size_t ne, int M, ldb_buf *a, ldb_buf *b, ldb_buf *out)
{
    b->len = 0;
    if (ldb_buf_reserve(b, 8 * (size_t)n))
        return -1;
    uint32_t *len = (uint32_t *)(void *)b->data; /* xi, xv per position */
    ldb_bitw bw = {a, 0, 0};
    size_t e = 0;
    for (uint32_t i = 0; i < n; e += cnt[i++]) {
        uint64_t at = ldb_bitw_pos(&bw);
        if (put_ids(&bw, lat + e, cnt[i], R))
            return -1;
        len[2 * i] = (uint32_t)(ldb_bitw_pos(&bw) - at - (uint64_t)cnt[i] * (1 + ids_k(R, cnt[i])));
    }
    if (ldb_bitw_flush(&bw))
        return -1;
    size_t ilen = a->len;
    vtable t;
    value_table(bits, ne, M, &t);
    bw = (ldb_bitw){a, 0, 0};
    e = 0;
    uint64_t per = 1 + t.kv + (uint64_t)M;
    for (uint32_t i = 0; i < n; e += cnt[i++]) {
        uint64_t at = ldb_bitw_pos(&bw);
        if (put_vals(&bw, bits + e, cnt[i], &t, M))
            return -1;
        len[2 * i + 1] = (uint32_t)(ldb_bitw_pos(&bw) - at - cnt[i] * per);
    }
    if (ldb_bitw_flush(&bw))
        return -1;
    /* part A: codec 0, n, R, P, the group table, the position table, the ids */
    uint8_t tmp[10];
    size_t P = 0;
    for (uint32_t i = 0; i < n; i++)
        P += ldb_varint_put(tmp, cnt[i]) + ldb_varint_put(tmp, len[2 * i]) +
             ldb_varint_put(tmp, len[2 * i + 1]);
    uint32_t ngroups = (n + LDB_FWD_GROUP - 1) / LDB_FWD_GROUP;
    size_t alen = 1 + 3 * 10 + 12 * (size_t)(ngroups - 1) + P + ilen;
    out->len = 0;
    if (ldb_buf_reserve(out, 4 + alen + 16 + 2 * (size_t)t.nsym + (a->len - ilen) + 4))
        return -1;
    uint8_t *p = out->data + 4;
    size_t o = 0;
    p[o++] = 0;
    o += ldb_varint_put(p + o, n);
    o += ldb_varint_put(p + o, R);
    o += ldb_varint_put(p + o, P);
    uint8_t *gt = p + o, *pt = p + o + 12 * (size_t)(ngroups - 1), *ps = pt;
    uint64_t ib = 0, vb = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t ent[3] = {(uint32_t)(ps - pt), (uint32_t)ib, (uint32_t)vb};
            memcpy(gt + 12 * (size_t)(i / LDB_FWD_GROUP - 1), ent, 12);
        }
        ps += ldb_varint_put(ps, cnt[i]);
        ps += ldb_varint_put(ps, len[2 * i]);
        ps += ldb_varint_put(ps, len[2 * i + 1]);
        skip5(R, per, cnt[i], len[2 * i], len[2 * i + 1], &ib, &vb);
    }
    if (ib > UINT32_MAX || vb > UINT32_MAX)
        return -1; /* (a block of at most 2^20 positions never comes near) */
    memcpy(ps, a->data, ilen);
    alen = (size_t)(ps - p) + ilen;
    /* part B: the value header, then the value stream */
    size_t hb = vheader(out->data + 4 + alen, &t);
    memcpy(out->data + 4 + alen + hb, a->data + ilen, a->len - ilen);
    frame(out, alen, alen + hb + (a->len - ilen));
    return 0;
}

int ldb_fwd_encode(const uint32_t *cnt, uint32_t n, const uint32_t *lat, const uint32_t *bits,
                   uint32_t d_sae, int values, int fmt, ldb_buf *a, ldb_buf *b, ldb_buf *out,
                   ldb_err *err)
{
    size_t ne = 0;
    for (uint32_t i = 0; i < n; i++)
        ne += cnt[i];
    a->len = out->len = 0;
    int M = ldb_val_mant(values);
    if (fmt >= 5 ? encode5(cnt, n, lat, bits, d_sae, ne, M, a, b, out)
                 : encode4(cnt, n, lat, bits, d_sae, ne, M, a, out))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    return LDB_OK;
}

/* ---- Decoders ---------------------------------------------------------------- */
void ldb_fblock_free(ldb_fblock *fb)
{
    free(fb->off);
    free(fb->lat);
    free(fb->bits);
    free(fb->run);
    memset(fb, 0, sizeof *fb);
}

/* Grows a pair of per-code arrays (latent ids, value bits) to hold n codes. */
static int grow_codes(ldb_db *db, uint32_t **lat, uint32_t **bits, size_t *cap, uint64_t n)
{
    if (n <= *cap)
        return LDB_OK;
    uint32_t *l = realloc(*lat, n * sizeof *l);
    if (l)
        *lat = l;
    uint32_t *b = l ? realloc(*bits, n * sizeof *b) : NULL;
    if (b)
        *bits = b;
    if (!l || !b)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    *cap = n;
    return LDB_OK;
}

static int corrupt_why(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const char *why)
{
    return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the forward block of '%s' at position %llu "
                       "(table fwd:%u, key %llu) is corrupt%s%s; run latentdb check", db->path,
                       dd->name ? dd->name : "?", (unsigned long long)start, dd->id,
                       (unsigned long long)start, why ? ": " : "", why ? why : "");
}

static int corrupt(ldb_db *db, const ldb_dbdict *dd, uint64_t start)
{
    return corrupt_why(db, dd, start, NULL);
}

/* Whether a value symbol (sign and exponent of a stored value) is that of a code:
 * positive (or zero, which a tiny code rounds to) and finite. */
static int sym_ok(uint32_t sym, int kind)
{
    unsigned ebits = kind == LDB_VAL_F16 ? 5 : 8;
    return (sym >> ebits) == 0 && sym != (1u << ebits) - 1;
}

/* The off array of a block of np positions: grown to np + 1 entries. */
static int grow_off(ldb_db *db, uint64_t np, uint64_t **off, size_t *cap_pos)
{
    if (np + 1 > *cap_pos) {
        uint64_t *o = realloc(*off, (np + 1) * sizeof *o);
        if (!o)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        *off = o;
        *cap_pos = np + 1;
    }
    return LDB_OK;
}

/* Part B from b to bend (the CRC's start): the value symbols, each checked to be a
 * finite non-negative value's, kv, and, with `table` (format 3 and 4), the bit
 * offsets of its groups. */
static int parse_partb(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *b,
                       const uint8_t *bend, uint64_t ng, int table, ldb_fhdr *h)
{
    uint64_t nsym;
    if (b > bend || ldb_varint_get(&b, bend, &nsym) || nsym > LDB_VAL_NSYM ||
        (size_t)(bend - b) < 2 * nsym + 1 + (table ? 4 * (ng - 1) : 0))
        return corrupt(db, dd, start);
    h->sym = b;
    h->nsym = (uint32_t)nsym;
    for (uint64_t i = 0; i < nsym; i++) {
        uint16_t sym;
        memcpy(&sym, b + 2 * i, 2);
        if (!sym_ok(sym, db->values))
            return corrupt_why(db, dd, start, "a value that no code can have");
    }
    b += 2 * nsym;
    h->kv = *b++;
    if (h->kv > 16)
        return corrupt(db, dd, start);
    h->vgroups = table ? b : NULL;
    h->vbits = b + (table ? 4 * (ng - 1) : 0);
    h->vend = bend;
    return LDB_OK;
}

/* The start of a block: its part A's length checked against the block, the codec
 * byte, n (at most the dictionary's block of positions) and where part A ends. */
static int parse_head(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p,
                      size_t n, const uint8_t **q, const uint8_t **end, uint64_t *np)
{
    uint32_t alen;
    if (n < 4)
        return corrupt(db, dd, start);
    memcpy(&alen, p, 4);
    if ((size_t)alen > n - 4 || alen < 2 || p[4] != 0 || n < 4 + (size_t)alen + 4)
        return corrupt(db, dd, start);
    *q = p + 5;
    *end = p + 4 + alen;
    if (ldb_varint_get(q, *end, np) || *np == 0 || *np > (1u << 20))
        return corrupt(db, dd, start);
    if (*np > dd->block)
        return corrupt_why(db, dd, start, "more positions than a block holds");
    return LDB_OK;
}

/* Parses a format-3/4 block's header in place (see ldb_fhdr): the counts go as
 * prefix sums into *off. Checks everything the readers will index with: the block
 * holds at most the dictionary's block of positions, its R is the dictionary's
 * d_sae, no position has more codes than latents, every value symbol is a finite
 * non-negative value's, and every table lies inside the block. */
static int parse_block4(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p,
                        size_t n, uint64_t **off, size_t *cap_pos, ldb_fhdr *h)
{
    const uint8_t *q, *end;
    uint64_t np, total = 0, R;
    int rc = parse_head(db, dd, start, p, n, &q, &end, &np);
    if (rc || (rc = grow_off(db, np, off, cap_pos)))
        return rc;
    (*off)[0] = 0;
    for (uint64_t i = 0; i < np; i++) {
        uint64_t c;
        if (ldb_varint_get(&q, end, &c) || c > dd->d_sae)
            return corrupt(db, dd, start);
        total += c;
        (*off)[i + 1] = total;
    }
    if (ldb_varint_get(&q, end, &R) || R != dd->d_sae)
        return corrupt_why(db, dd, start, "not a block of this dictionary's latents");
    uint64_t ng = (np + LDB_FWD_GROUP - 1) / LDB_FWD_GROUP;
    if ((uint64_t)(end - q) < 4 * (ng - 1))
        return corrupt(db, dd, start);
    h->groups = q;
    q += 4 * (ng - 1);
    if (total > (size_t)(end - q) * 8)
        return corrupt(db, dd, start); /* each latent takes at least one bit */
    h->np = np;
    h->total = total;
    h->R = (uint32_t)R;
    h->bits = q;
    h->end = end;
    h->ptab = h->pend = NULL;
    /* part B, then the CRC (checked by the callers) */
    return parse_partb(db, dd, start, end, p + n - 4, ng, 1, h);
}

/* Parses a format-5 block's header in place: n, R, the group table and the
 * position table's place, the id stream, part B. Reads no position's entry: a
 * read finds its own (locate5), a whole decode walks them all (walk5). */
static int parse_block5(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p,
                        size_t n, ldb_fhdr *h)
{
    const uint8_t *q, *end;
    uint64_t np, R, P;
    int rc = parse_head(db, dd, start, p, n, &q, &end, &np);
    if (rc)
        return rc;
    if (ldb_varint_get(&q, end, &R) || R != dd->d_sae)
        return corrupt_why(db, dd, start, "not a block of this dictionary's latents");
    uint64_t ng = (np + LDB_FWD_GROUP - 1) / LDB_FWD_GROUP;
    if (ldb_varint_get(&q, end, &P) || (uint64_t)(end - q) < 12 * (ng - 1) ||
        P > (uint64_t)(end - q) - 12 * (ng - 1) || P < 3 * np)
        return corrupt(db, dd, start);
    h->groups = q;
    h->ptab = q + 12 * (ng - 1);
    h->pend = h->ptab + P;
    h->np = np;
    h->total = 0; /* known to walk5 */
    h->R = (uint32_t)R;
    h->bits = h->pend;
    h->end = end;
    return parse_partb(db, dd, start, end, p + n - 4, ng, 0, h);
}

/* Format 5: the bits of the value stream a code takes but the extra ones of its
 * entry: its unary stop bit, kv and the mantissa. */
static uint64_t vper5(const ldb_db *db, const ldb_fhdr *h)
{
    return 1 + h->kv + (uint64_t)ldb_val_mant(db->values);
}

/* A format-5 position's entry, read at *q (< pend): its count and the extra bits
 * of its ids and values. */
static int entry5(const uint8_t **q, const uint8_t *pend, uint32_t d_sae, uint64_t *c,
                  uint64_t *xi, uint64_t *xv)
{
    return ldb_varint_get(q, pend, c) || *c > d_sae || ldb_varint_get(q, pend, xi) ||
           *xi > UINT32_MAX || ldb_varint_get(q, pend, xv) || *xv > UINT32_MAX;
}

/* Rice-decodes the ids of positions [i0, i1) from a reader positioned at i0, into
 * lat[e - base] for code e. */
static int decode_ids(ldb_bitr *br, const uint64_t *off, uint64_t i0, uint64_t i1, uint32_t R,
                      uint32_t *lat, uint64_t base)
{
    for (uint64_t i = i0; i < i1; i++) {
        uint64_t prev = 0, c = off[i + 1] - off[i];
        unsigned k = ids_k(R, c);
        for (uint64_t e = off[i]; e < off[i + 1]; e++) {
            uint64_t v;
            if (ldb_rice_get_fast(br, k, &v) || v >= R)
                return -1;
            if (e != off[i] && (v = prev + v + 1) >= R) /* ascending; a latent of the dictionary */
                return -1;
            lat[e - base] = (uint32_t)v;
            prev = v;
        }
    }
    return 0;
}

/* Positions a bit reader at bit `bit` of [p, end). */
static int bitr_at(ldb_bitr *br, const uint8_t *p, const uint8_t *end, uint64_t bit)
{
    if (bit > (uint64_t)(end - p) * 8)
        return -1;
    *br = (ldb_bitr){p + bit / 8, end, 0, 0};
    if (bit % 8) { /* start mid-byte */
        br->acc = *br->p++ >> (bit % 8);
        br->nbits = 8 - bit % 8;
    }
    return 0;
}

/* Decodes the value bits of codes [off[i0], off[i1]) from a reader positioned at
 * code off[i0] of the value stream, into bits[e - base]. */
/* One value's stored bits from its code x = rank << M | mantissa (-1: no such rank). */
static int val_bits(const ldb_fhdr *h, uint32_t M, uint64_t x, uint32_t *bits)
{
    if ((x >> M) >= h->nsym)
        return -1;
    uint16_t sym;
    memcpy(&sym, h->sym + 2 * (x >> M), 2);
    *bits = (uint32_t)sym << M | (uint32_t)(x & ((1ull << M) - 1));
    return 0;
}

static int decode_vals(const ldb_db *db, const ldb_fhdr *h, ldb_bitr *br, const uint64_t *off,
                       uint64_t i0, uint64_t i1, uint32_t *bits, uint64_t base)
{
    uint32_t M = (uint32_t)ldb_val_mant(db->values);
    for (uint64_t e = off[i0]; e < off[i1]; e++) {
        uint64_t x;
        if (ldb_rice_get_fast(br, h->kv + M, &x) || val_bits(h, M, x, &bits[e - base]))
            return -1;
    }
    return 0;
}

/* The bit offset of group g in a stream with the given offset table. */
static uint32_t group_bit(const uint8_t *table, uint64_t g)
{
    uint32_t bit = 0;
    if (g)
        memcpy(&bit, table + 4 * (g - 1), 4);
    return bit;
}

int ldb_fwd_crc_ok(const uint8_t *p, size_t n)
{
    uint32_t crc;
    if (n < 4)
        return 0;
    memcpy(&crc, p + n - 4, 4);
    return ldb_crc32(p, n - 4) == crc;
}

/* Bits a reader has consumed since p, where it started. */
static uint64_t bitr_pos(const ldb_bitr *br, const uint8_t *p)
{
    return (uint64_t)(br->p - p) * 8 - br->nbits;
}

/* Format 5, the whole block: walks the position table into *off (prefix counts),
 * checking that it fills P exactly and that each group entry is where the walk
 * finds it; then decodes every position's ids (and values), checking that each
 * takes exactly the bits its entry says. */
static int decode5(ldb_db *db, const ldb_dbdict *dd, uint64_t start, ldb_fhdr *h, int values,
                   ldb_fblock *fb)
{
    int rc = grow_off(db, h->np, &fb->off, &fb->cap_pos);
    if (rc)
        return rc;
    const uint8_t *q = h->ptab;
    uint64_t ib = 0, vb = 0, total = 0, per = vper5(db, h);
    fb->off[0] = 0;
    for (uint64_t i = 0; i < h->np; i++) {
        uint64_t c, xi, xv;
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t ent[3];
            memcpy(ent, h->groups + 12 * (i / LDB_FWD_GROUP - 1), 12);
            if (ent[0] != (uint64_t)(q - h->ptab) || ent[1] != ib || ent[2] != vb)
                return corrupt_why(db, dd, start, "its group table does not match its positions");
        }
        if (entry5(&q, h->pend, dd->d_sae, &c, &xi, &xv))
            return corrupt(db, dd, start);
        fb->off[i + 1] = total += c;
        skip5(h->R, per, c, xi, xv, &ib, &vb);
        if (ib > UINT32_MAX || vb > UINT32_MAX)
            return corrupt(db, dd, start);
    }
    if (q != h->pend || ib > (uint64_t)(h->end - h->bits) * 8 ||
        vb > (uint64_t)(h->vend - h->vbits) * 8)
        return corrupt(db, dd, start);
    h->total = total;
    if ((rc = grow_codes(db, &fb->lat, &fb->bits, &fb->cap_nnz, total)))
        return rc;
    ldb_bitr br = {h->bits, h->end, 0, 0}, vr = {h->vbits, h->vend, 0, 0};
    q = h->ptab;
    ib = vb = 0;
    for (uint64_t i = 0; i < h->np; i++) {
        uint64_t c, xi, xv;
        (void)entry5(&q, h->pend, dd->d_sae, &c, &xi, &xv); /* read once above */
        skip5(h->R, per, c, xi, xv, &ib, &vb);
        if (decode_ids(&br, fb->off, i, i + 1, h->R, fb->lat, 0) || bitr_pos(&br, h->bits) != ib)
            return corrupt(db, dd, start);
        if (values && (decode_vals(db, h, &vr, fb->off, i, i + 1, fb->bits, 0) ||
                       bitr_pos(&vr, h->vbits) != vb))
            return corrupt(db, dd, start);
    }
    return LDB_OK;
}

int ldb_fwd_decode(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   int values, ldb_fblock *fb)
{
    ldb_fhdr h;
    fb->n = 0;
    if (db->format >= 5) {
        int rc = parse_block5(db, dd, start, p, n, &h);
        if (rc || (rc = decode5(db, dd, start, &h, values, fb)))
            return rc;
    } else {
        int rc = parse_block4(db, dd, start, p, n, &fb->off, &fb->cap_pos, &h);
        if (rc)
            return rc;
        if ((rc = grow_codes(db, &fb->lat, &fb->bits, &fb->cap_nnz, h.total)))
            return rc;
        ldb_bitr br = {h.bits, h.end, 0, 0};
        if (decode_ids(&br, fb->off, 0, h.np, h.R, fb->lat, 0))
            return corrupt(db, dd, start);
        if (values) {
            ldb_bitr vr = {h.vbits, h.vend, 0, 0};
            if (decode_vals(db, &h, &vr, fb->off, 0, h.np, fb->bits, 0))
                return corrupt(db, dd, start);
        }
    }
    fb->start = start;
    fb->n = (uint32_t)h.np;
    fb->has_values = values;
    return LDB_OK;
}

int ldb_fwd_counts(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   uint32_t *cnt, uint32_t *np)
{
    ldb_fhdr h;
    *np = 0;
    if (db->format < 5) {
        uint64_t *off = NULL;
        size_t cap = 0;
        int rc = parse_block4(db, dd, start, p, n, &off, &cap, &h);
        for (uint64_t i = 0; !rc && i < h.np; i++)
            cnt[i] = (uint32_t)(off[i + 1] - off[i]);
        free(off);
        if (!rc)
            *np = (uint32_t)h.np;
        return rc;
    }
    int rc = parse_block5(db, dd, start, p, n, &h);
    const uint8_t *q = h.ptab;
    for (uint64_t i = 0; !rc && i < h.np; i++) {
        uint64_t c, xi, xv;
        if (entry5(&q, h.pend, dd->d_sae, &c, &xi, &xv))
            return corrupt(db, dd, start);
        cnt[i] = (uint32_t)c;
    }
    if (!rc)
        *np = (uint32_t)h.np;
    return rc;
}

int ldb_fwd_counts_each(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd,
                        int (*fn)(void *ctx, uint64_t start, const uint32_t *cnt, uint32_t np),
                        void *ctx)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint32_t *cnt = malloc((dd->block ? dd->block : 1) * sizeof *cnt), np;
    if (!cnt)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, dd->fwd, &c);
    if (mrc) {
        free(cnt);
        return ldb_db_mdb_err(db, mrc, "fwd");
    }
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: table fwd:%u holds a key of %zu bytes; "
                             "run latentdb check", db->path, dd->id, k.mv_size);
            break;
        }
        uint64_t start = ldb_rd_be64(k.mv_data);
        if (!(rc = ldb_fwd_counts(db, dd, start, v.mv_data, v.mv_size, cnt, &np)))
            rc = fn(ctx, start, cnt, np);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = ldb_db_mdb_err(db, mrc, "fwd");
    mdb_cursor_close(c);
    free(cnt);
    return rc;
}

void ldb_fpos_free(ldb_fpos *fp)
{
    free(fp->off);
    free(fp->glat);
    free(fp->gbits);
    memset(fp, 0, sizeof *fp);
}

/* Makes fp hold the block of dd with gpos (parsed in place); LDB_ENOTFOUND when
 * no block holds it. */
static int load_block(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, ldb_fpos *fp)
{
    if (fp->n && gpos >= fp->start && gpos < fp->start + fp->n)
        return LDB_OK;
    MDB_val v;
    uint64_t s;
    fp->n = 0;
    int rc = ldb_floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
    if (rc)
        return rc;
    /* read in place: the block stays mapped while txn lives. Its CRC-32 is not
     * verified here: a read decodes one position or group, and the CRC covers the
     * whole block (cooc and search at 1M tokens: 29.6 -> 64.6 ms and 48 -> 82 ms);
     * every value decoded is validated instead, and check verifies the CRC. */
    ldb_fhdr h;
    rc = db->format >= 5 ? parse_block5(db, dd, s, v.mv_data, v.mv_size, &h)
                         : parse_block4(db, dd, s, v.mv_data, v.mv_size, &fp->off, &fp->cap_pos, &h);
    if (rc)
        return rc;
    if (gpos >= s + h.np)
        return LDB_ENOTFOUND;
    fp->start = s;
    fp->n = (uint32_t)h.np;
    fp->h = h;
    fp->g = 0;
    return LDB_OK;
}

/* Format 5: walks the position table from q, position j's entry (its codes at bits
 * *ib and *vb of the id and value streams), to position i's: *c its count, *ib and
 * *vb where its codes start. */
static int walk5(const ldb_fhdr *h, uint32_t d_sae, uint64_t per, const uint8_t *q, uint64_t j,
                 uint64_t i, uint64_t *c, uint64_t *ib, uint64_t *vb)
{
    for (uint64_t xi, xv;; j++) {
        if (entry5(&q, h->pend, d_sae, c, &xi, &xv))
            return -1;
        if (j == i)
            return 0;
        skip5(h->R, per, *c, xi, xv, ib, vb);
    }
}

/* Format 5: group g's entry (its first position's entry's place in the position
 * table, and where its ids and values start); all 0 for the first group. -1 when
 * the place is outside the table. */
static int group5(const ldb_fhdr *h, uint64_t g, uint32_t ent[3])
{
    ent[0] = ent[1] = ent[2] = 0;
    if (g)
        memcpy(ent, h->groups + 12 * (g - 1), 12);
    return ent[0] >= (uint64_t)(h->pend - h->ptab) ? -1 : 0;
}

/* Format 5: finds position i of fp's block: its entry through its group's, adding
 * the bits of the entries before it in the group. */
static int locate5(ldb_db *db, const ldb_dbdict *dd, ldb_fpos *fp, uint64_t i)
{
    const ldb_fhdr *h = &fp->h;
    uint64_t g = i / LDB_FWD_GROUP, c;
    uint32_t ent[3];
    if (group5(h, g, ent))
        return corrupt(db, dd, fp->start);
    uint64_t ib = ent[1], vb = ent[2];
    if (walk5(h, dd->d_sae, vper5(db, h), h->ptab + ent[0], g * LDB_FWD_GROUP, i, &c, &ib, &vb))
        return corrupt(db, dd, fp->start);
    int rc = grow_codes(db, &fp->glat, &fp->gbits, &fp->cap_nnz, c + 1);
    if (rc)
        return rc;
    fp->g = i + 1;
    fp->pc = c;
    fp->pib = ib;
    fp->pvb = vb;
    fp->idone = fp->vdone = 0;
    return LDB_OK;
}

/* Format 5: position i's ids (and values), decoded once. */
static int at5(ldb_db *db, const ldb_dbdict *dd, uint64_t i, int values, ldb_fpos *fp)
{
    int rc = fp->g == i + 1 ? LDB_OK : locate5(db, dd, fp, i);
    if (rc)
        return rc;
    uint64_t o[2] = {0, fp->pc};
    if (!fp->idone) {
        if (bitr_at(&fp->ibr, fp->h.bits, fp->h.end, fp->pib) ||
            decode_ids(&fp->ibr, o, 0, 1, fp->h.R, fp->glat, 0))
            return corrupt(db, dd, fp->start);
        fp->idone = 1;
    }
    if (values && !fp->vdone) {
        if (bitr_at(&fp->vbr, fp->h.vbits, fp->h.vend, fp->pvb) ||
            decode_vals(db, &fp->h, &fp->vbr, o, 0, 1, fp->gbits, 0))
            return corrupt(db, dd, fp->start);
        fp->vdone = 1;
    }
    fp->cnt = (uint32_t)fp->pc;
    fp->lat = fp->glat;
    fp->bits = fp->gbits;
    return LDB_OK;
}

int ldb_fwd_at(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
               ldb_fpos *fp)
{
    fp->cnt = 0;
    int rc = load_block(db, txn, dd, gpos, fp);
    if (rc)
        return rc;
    if (db->format >= 5)
        return at5(db, dd, gpos - fp->start, values, fp);
    uint64_t i = gpos - fp->start, g = i / LDB_FWD_GROUP, i0 = g * LDB_FWD_GROUP;
    uint64_t i1 = i0 + LDB_FWD_GROUP < fp->n ? i0 + LDB_FWD_GROUP : fp->n;
    if (fp->g != g + 1) { /* a new group: decoding starts at its first position */
        /* (at least one slot: a silent group must not leave glat NULL for the
         * pointer arithmetic below) */
        rc = grow_codes(db, &fp->glat, &fp->gbits, &fp->cap_nnz, fp->off[i1] - fp->off[i0] + 1);
        if (rc)
            return rc;
        if (bitr_at(&fp->ibr, fp->h.bits, fp->h.end, group_bit(fp->h.groups, g)))
            return corrupt(db, dd, fp->start);
        fp->g = g + 1;
        fp->idone = fp->vdone = i0;
    }
    /* decode only as far as gpos: a lookup costs half a group on average */
    if (i >= fp->idone) {
        if (decode_ids(&fp->ibr, fp->off, fp->idone, i + 1, fp->h.R, fp->glat, fp->off[i0]))
            return corrupt(db, dd, fp->start);
        fp->idone = i + 1;
    }
    if (values && i >= fp->vdone) {
        if (fp->vdone == i0 &&
            bitr_at(&fp->vbr, fp->h.vbits, fp->h.vend, group_bit(fp->h.vgroups, g)))
            return corrupt(db, dd, fp->start);
        if (decode_vals(db, &fp->h, &fp->vbr, fp->off, fp->vdone, i + 1, fp->gbits, fp->off[i0]))
            return corrupt(db, dd, fp->start);
        fp->vdone = i + 1;
    }
    uint64_t skip = fp->off[i] - fp->off[i0];
    fp->cnt = (uint32_t)(fp->off[i + 1] - fp->off[i]);
    fp->lat = fp->glat + skip;
    fp->bits = fp->gbits + skip;
    return LDB_OK;
}

/* The block holding gpos decoded into fb, its CRC-32 verified when crc. */
static int get_block(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
                     int crc, ldb_fblock *fb)
{
    if (fb->n && gpos >= fb->start && gpos < fb->start + fb->n && (!values || fb->has_values))
        return LDB_OK; /* already decoded */
    MDB_val v;
    uint64_t s;
    int rc = ldb_floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
    if (!rc && crc && !ldb_fwd_crc_ok(v.mv_data, v.mv_size))
        rc = corrupt_why(db, dd, s, "its CRC-32 does not match");
    if (!rc)
        rc = ldb_fwd_decode(db, dd, s, v.mv_data, v.mv_size, values, fb);
    if (!rc && (gpos < fb->start || gpos >= fb->start + fb->n)) {
        fb->n = 0;
        rc = LDB_ENOTFOUND;
    }
    return rc;
}

int ldb_fwd_get(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
                ldb_fblock *fb)
{
    return get_block(db, txn, dd, gpos, values, 1, fb);
}

int ldb_fwd_get_ids(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, ldb_fblock *fb)
{
    return get_block(db, txn, dd, gpos, 0, 0, fb);
}

/* The index of latent in the ascending lat[0..n), or n when it is not there. */
static uint32_t find_latent(const uint32_t *lat, uint32_t n, uint32_t latent)
{
    uint32_t a = 0, b = n;
    while (a < b) {
        uint32_t m = (a + b) / 2;
        if (lat[m] < latent)
            a = m + 1;
        else
            b = m;
    }
    return a < n && lat[a] == latent ? a : n;
}

/* Format 5: the value of latent among the c codes whose ids start at bit ib of the
 * id stream and values at bit vb of the value stream (a position of the block with
 * header h), decoding the ids only up to the latent and the values up to its code;
 * 0 when it does not fire there. */
static int value_at5(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const ldb_fhdr *h,
                     uint64_t c, uint64_t ib, uint64_t vb, uint32_t latent, float *out)
{
    ldb_bitr br;
    unsigned k = ids_k(h->R, c);
    uint64_t a = 0, id = UINT64_MAX, x;
    *out = 0;
    if (bitr_at(&br, h->bits, h->end, ib))
        return corrupt(db, dd, start);
    for (; a < c; a++) {
        uint64_t v;
        if (ldb_rice_get_fast(&br, k, &v) || (v = a ? id + v + 1 : v) >= h->R)
            return corrupt(db, dd, start);
        if ((id = v) >= latent)
            break;
    }
    if (a == c || id != latent)
        return LDB_OK;
    uint32_t M = (uint32_t)ldb_val_mant(db->values), bits;
    if (bitr_at(&br, h->vbits, h->vend, vb))
        return corrupt(db, dd, start);
    for (uint64_t e = 0; e <= a; e++)
        if (ldb_rice_get_fast(&br, h->kv + M, &x))
            return corrupt(db, dd, start);
    if (val_bits(h, M, x, &bits))
        return corrupt(db, dd, start);
    *out = ldb_val_float(bits, db->values);
    return LDB_OK;
}

static int value5(ldb_db *db, const ldb_dbdict *dd, uint64_t i, uint32_t latent, ldb_fpos *fp,
                  float *out)
{
    int rc = fp->g == i + 1 ? LDB_OK : locate5(db, dd, fp, i);
    if (rc)
        return rc;
    if (!fp->idone || !fp->vdone)
        return value_at5(db, dd, fp->start, &fp->h, fp->pc, fp->pib, fp->pvb, latent, out);
    uint32_t a = find_latent(fp->glat, (uint32_t)fp->pc, latent); /* decoded already */
    *out = a < fp->pc ? ldb_val_float(fp->gbits[a], db->values) : 0;
    return LDB_OK;
}

/* Format 5, ldb_fwd_values within fp's block: gpos[0..n) all in it. Each stage
 * asks for the memory the next one reads for every position at once (the group
 * entries, then the position entries, then the codes), so their cache misses
 * overlap instead of following one another. */
static int values_in5(ldb_db *db, const ldb_dbdict *dd, ldb_fpos *fp, const uint64_t *gpos,
                      size_t n, uint32_t latent, float *out, uint64_t *loc)
{
    const ldb_fhdr *h = &fp->h;
    uint64_t per = vper5(db, h);
    for (size_t t = 0; t < n; t++) {
        uint64_t g = (gpos[t] - fp->start) / LDB_FWD_GROUP;
        if (g)
            __builtin_prefetch(h->groups + 12 * (g - 1));
    }
    for (size_t t = 0; t < n; t++) { /* loc: the entry's place in the table, ib, vb */
        uint32_t ent[3];
        if (group5(h, (gpos[t] - fp->start) / LDB_FWD_GROUP, ent))
            return corrupt(db, dd, fp->start);
        loc[3 * t] = ent[0];
        loc[3 * t + 1] = ent[1];
        loc[3 * t + 2] = ent[2];
        __builtin_prefetch(h->ptab + ent[0]);
    }
    for (size_t t = 0; t < n; t++) { /* loc: c, ib, vb of the position itself */
        uint64_t i = gpos[t] - fp->start, c, ib = loc[3 * t + 1], vb = loc[3 * t + 2];
        if (walk5(h, dd->d_sae, per, h->ptab + loc[3 * t], i / LDB_FWD_GROUP * LDB_FWD_GROUP, i,
                  &c, &ib, &vb))
            return corrupt(db, dd, fp->start);
        loc[3 * t] = c;
        loc[3 * t + 1] = ib;
        loc[3 * t + 2] = vb;
        if (ib / 8 < (uint64_t)(h->end - h->bits))
            __builtin_prefetch(h->bits + ib / 8);
        if (vb / 8 < (uint64_t)(h->vend - h->vbits))
            __builtin_prefetch(h->vbits + vb / 8);
    }
    for (size_t t = 0; t < n; t++) {
        int rc = value_at5(db, dd, fp->start, h, loc[3 * t], loc[3 * t + 1], loc[3 * t + 2],
                           latent, &out[t]);
        if (rc)
            return rc;
    }
    return LDB_OK;
}

int ldb_fwd_values(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, const uint64_t *gpos, size_t n,
                   uint32_t latent, ldb_fpos *fp, float *out)
{
    uint64_t *loc = NULL;
    size_t cap = 0;
    int rc = LDB_OK;
    for (size_t i = 0; i < n && !rc;) {
        rc = load_block(db, txn, dd, gpos[i], fp);
        if (rc == LDB_ENOTFOUND) { /* not covered: no code */
            out[i++] = 0;
            rc = LDB_OK;
            continue;
        }
        size_t j = i + 1;
        while (j < n && gpos[j] >= fp->start && gpos[j] < fp->start + fp->n)
            j++;
        if (db->format < 5) {
            for (; i < j && !rc; i++)
                rc = ldb_fwd_value(db, txn, dd, gpos[i], latent, fp, &out[i]);
            continue;
        }
        if (ldb_wgrow((void **)&loc, &cap, 3 * (j - i), sizeof *loc))
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        if (!rc)
            rc = values_in5(db, dd, fp, gpos + i, j - i, latent, out + i, loc);
        i = j;
    }
    free(loc);
    return rc;
}

int ldb_fwd_value(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, uint32_t latent,
                  ldb_fpos *fp, float *out)
{
    *out = 0;
    int rc = load_block(db, txn, dd, gpos, fp);
    if (rc == LDB_ENOTFOUND)
        return LDB_OK;
    if (rc)
        return rc;
    if (db->format >= 5)
        return value5(db, dd, gpos - fp->start, latent, fp, out);
    if ((rc = ldb_fwd_at(db, txn, dd, gpos, 0, fp)))
        return rc;
    uint32_t a = find_latent(fp->lat, fp->cnt, latent);
    if (a == fp->cnt)
        return LDB_OK;
    if ((rc = ldb_fwd_at(db, txn, dd, gpos, 1, fp)))
        return rc;
    *out = ldb_val_float(fp->bits[a], db->values);
    return LDB_OK;
}
