/* fwdblock.c — forward blocks (fwdblock.h): the encoder the batch writer calls,
 * the decoders, and reads of one block or one position by gpos. Every decode
 * checks what it reads before use: a damaged block is an LDB_EFORMAT error naming
 * the DB, the table and the key, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "fwdblock.h"

/* ---- Encoder ---------------------------------------------------------------- */
int ldb_fwd_encode(const uint32_t *cnt, uint32_t n, const uint32_t *lat, const uint32_t *bits,
                   uint32_t d_sae, int values, ldb_buf *a, ldb_buf *out, ldb_err *err)
{
    size_t ne = 0;
    for (uint32_t i = 0; i < n; i++)
        ne += cnt[i];
    a->len = out->len = 0;
    if (ldb_buf_reserve(a, 16 + (size_t)n * 9 + ne * 5))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    /* part A (stored raw: Rice bits do not compress, and raw bits can be read in
     * place): codec 0, n, the counts, R, the bit offset of every group of
     * LDB_FWD_GROUP positions after the first, then the bit stream */
    uint8_t *p = a->data;
    size_t o = 0;
    p[o++] = 0;
    o += ldb_varint_put(p + o, n);
    for (uint32_t i = 0; i < n; i++)
        o += ldb_varint_put(p + o, cnt[i]);
    /* latent ids: per position the first id, then gaps - 1, Rice-coded with a
     * parameter from the position's count (a BOS row firing thousands of latents has
     * small gaps, an ordinary one large gaps: one k for both would waste bits) */
    uint32_t R = d_sae;
    o += ldb_varint_put(p + o, R);
    uint32_t ngroups = (n + LDB_FWD_GROUP - 1) / LDB_FWD_GROUP;
    size_t goff = o;
    o += 4 * (size_t)(ngroups - 1);
    a->len = o;
    ldb_bitw bw = {a, 0, 0};
    size_t e = 0;
    int bad = 0;
    for (uint32_t i = 0; i < n && !bad; i++) {
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t bit = (uint32_t)((a->len - o) * 8 + bw.nbits);
            memcpy(a->data + goff + 4 * (size_t)(i / LDB_FWD_GROUP - 1), &bit, 4);
        }
        uint32_t c = cnt[i];
        unsigned k = ldb_rice_k((double)R / (c + 1));
        for (uint32_t j = 0; j < c && !bad; j++, e++)
            bad = ldb_rice_put(&bw, j ? lat[e] - lat[e - 1] - 1 : lat[e], k);
    }
    if (bad || ldb_bitw_flush(&bw))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    /* part B: the values. A value's symbol (the bits above its mantissa) is coded by
     * its frequency rank in the block, so x = rank << M | mantissa is Rice-coded with
     * parameter k + M: near the entropy of the exponents, the mantissa raw, and a
     * group of LDB_FWD_GROUP positions decodes alone (a bit offset per group). */
    int M = ldb_val_mant(values);
    uint32_t freq[LDB_VAL_NSYM] = {0};
    uint16_t sym[LDB_VAL_NSYM], rank[LDB_VAL_NSYM];
    for (size_t i = 0; i < ne; i++)
        freq[bits[i] >> M]++;
    uint32_t nsym = 0;
    for (uint32_t x = 0; x < LDB_VAL_NSYM; x++)
        if (freq[x])
            sym[nsym++] = (uint16_t)x;
    for (uint32_t i = 1; i < nsym; i++) { /* by count descending, then symbol */
        uint16_t x = sym[i];
        uint32_t j = i;
        for (; j > 0 && freq[sym[j - 1]] < freq[x]; j--)
            sym[j] = sym[j - 1];
        sym[j] = x;
    }
    uint64_t best = UINT64_MAX;
    unsigned kv = 0;
    for (unsigned k = 0; k < 6; k++) { /* the k that codes the ranks shortest */
        uint64_t bits = 0;
        for (uint32_t r = 0; r < nsym; r++)
            bits += (uint64_t)freq[sym[r]] * ((r >> k) + 1 + k);
        if (bits < best)
            best = bits, kv = k;
    }
    for (uint32_t r = 0; r < nsym; r++)
        rank[sym[r]] = (uint16_t)r;
    size_t bstart = a->len;
    if (ldb_buf_reserve(a, 16 + 2 * (size_t)nsym + 4 * (size_t)ngroups))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    o = a->len;
    o += ldb_varint_put(a->data + o, nsym);
    for (uint32_t r = 0; r < nsym; r++, o += 2)
        memcpy(a->data + o, &sym[r], 2);
    a->data[o++] = (uint8_t)kv;
    goff = o;
    o += 4 * (size_t)(ngroups - 1);
    a->len = o;
    bw = (ldb_bitw){a, 0, 0};
    e = 0;
    uint64_t mmask = (1ull << M) - 1;
    for (uint32_t i = 0; i < n && !bad; i++) {
        if (i && i % LDB_FWD_GROUP == 0) {
            uint32_t bit = (uint32_t)((a->len - o) * 8 + bw.nbits);
            memcpy(a->data + goff + 4 * (size_t)(i / LDB_FWD_GROUP - 1), &bit, 4);
        }
        for (uint32_t j = 0; j < cnt[i] && !bad; j++, e++) {
            uint32_t v = bits[e];
            bad = ldb_rice_put(&bw, (uint64_t)rank[v >> M] << M | (v & mmask), kv + (unsigned)M);
        }
    }
    if (bad || ldb_bitw_flush(&bw))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    /* value = u32 length of part A, part A, part B, u32 CRC-32 of all before it */
    uint32_t alen = (uint32_t)bstart, blen = (uint32_t)(a->len - bstart);
    if (ldb_buf_reserve(out, 8 + (size_t)alen + blen))
        return ldb_err_set(err, LDB_ENOMEM, "out of memory");
    memcpy(out->data, &alen, 4);
    memcpy(out->data + 4, a->data, (size_t)alen + blen);
    uint32_t crc = ldb_crc32(out->data, 4 + (size_t)alen + blen);
    memcpy(out->data + 4 + alen + blen, &crc, 4);
    out->len = 8 + (size_t)alen + blen;
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

/* Parses a block's part A header in place (see ldb_fhdr): the counts go as prefix
 * sums into *off. Checks everything the readers will index with: the block holds
 * at most the dictionary's block of positions, its R is the dictionary's d_sae, no
 * position has more codes than latents, every value symbol is a finite
 * non-negative value's, and every table lies inside the block. */
static int parse_block(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p,
                       size_t n, uint64_t **off, size_t *cap_pos, ldb_fhdr *h)
{
    uint32_t alen;
    if (n < 4)
        return corrupt(db, dd, start);
    memcpy(&alen, p, 4);
    if ((size_t)alen > n - 4 || alen < 2 || p[4] != 0)
        return corrupt(db, dd, start);
    const uint8_t *q = p + 5, *end = p + 4 + alen;
    uint64_t np, total = 0, R;
    if (ldb_varint_get(&q, end, &np) || np == 0 || np > (1u << 20))
        return corrupt(db, dd, start);
    if (np > dd->block)
        return corrupt_why(db, dd, start, "more positions than a block holds");
    if (np + 1 > *cap_pos) {
        uint64_t *o = realloc(*off, (np + 1) * sizeof *o);
        if (!o)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        *off = o;
        *cap_pos = np + 1;
    }
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
    /* part B, then the CRC (checked by the callers) */
    const uint8_t *b = p + 4 + alen, *bend = p + n - 4;
    uint64_t nsym;
    if (n < 4 + (size_t)alen + 4 || ldb_varint_get(&b, bend, &nsym) || nsym > LDB_VAL_NSYM ||
        (size_t)(bend - b) < 2 * nsym + 1 + 4 * (ng - 1))
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
    h->vgroups = b;
    h->vbits = b + 4 * (ng - 1);
    h->vend = bend;
    return LDB_OK;
}

/* Rice-decodes the ids of positions [i0, i1) from a reader positioned at i0, into
 * lat[e - base] for code e. */
static int decode_ids(ldb_bitr *br, const uint64_t *off, uint64_t i0, uint64_t i1, uint32_t R,
                      uint32_t *lat, uint64_t base)
{
    for (uint64_t i = i0; i < i1; i++) {
        uint64_t prev = 0, c = off[i + 1] - off[i];
        unsigned k = ldb_rice_k((double)R / (double)(c + 1));
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
static int bitr_at(ldb_bitr *br, const uint8_t *p, const uint8_t *end, uint32_t bit)
{
    if ((uint64_t)bit > (uint64_t)(end - p) * 8)
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
static int decode_vals(const ldb_db *db, const ldb_fhdr *h, ldb_bitr *br, const uint64_t *off,
                       uint64_t i0, uint64_t i1, uint32_t *bits, uint64_t base)
{
    uint32_t M = (uint32_t)ldb_val_mant(db->values);
    uint64_t mmask = (1ull << M) - 1;
    for (uint64_t e = off[i0]; e < off[i1]; e++) {
        uint64_t x;
        if (ldb_rice_get_fast(br, h->kv + M, &x) || (x >> M) >= h->nsym)
            return -1;
        uint16_t sym;
        memcpy(&sym, h->sym + 2 * (x >> M), 2);
        bits[e - base] = (uint32_t)sym << M | (uint32_t)(x & mmask);
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

int ldb_fwd_decode(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   int values, ldb_fblock *fb)
{
    ldb_fhdr h;
    fb->n = 0;
    int rc = parse_block(db, dd, start, p, n, &fb->off, &fb->cap_pos, &h);
    if (rc)
        return rc;
    if ((rc = grow_codes(db, &fb->lat, &fb->bits, &fb->cap_nnz, h.total)))
        return rc;
    ldb_bitr br = {h.bits, h.end, 0, 0};
    if (decode_ids(&br, fb->off, 0, h.np, h.R, fb->lat, 0))
        return corrupt(db, dd, start);
    fb->start = start;
    fb->n = (uint32_t)h.np;
    fb->has_values = 0;
    if (values) {
        ldb_bitr vr = {h.vbits, h.vend, 0, 0};
        if (decode_vals(db, &h, &vr, fb->off, 0, h.np, fb->bits, 0))
            return corrupt(db, dd, start);
        fb->has_values = 1;
    }
    return LDB_OK;
}

void ldb_fpos_free(ldb_fpos *fp)
{
    free(fp->off);
    free(fp->glat);
    free(fp->gbits);
    memset(fp, 0, sizeof *fp);
}

int ldb_fwd_at(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
               ldb_fpos *fp)
{
    fp->cnt = 0;
    if (!(fp->n && gpos >= fp->start && gpos < fp->start + fp->n)) {
        MDB_val v;
        uint64_t s;
        fp->n = 0;
        int frc = ldb_floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
        if (frc)
            return frc;
        /* read in place: the block stays mapped while txn lives. Its CRC-32 is
         * not verified here: a read decodes one group of 8 positions, and the CRC
         * covers the whole block (cooc and search at 1M tokens: 29.6 -> 64.6 ms
         * and 48 -> 82 ms); every value decoded is validated instead, and check
         * verifies the CRC. */
        ldb_fhdr h;
        int rc = parse_block(db, dd, s, v.mv_data, v.mv_size, &fp->off, &fp->cap_pos, &h);
        if (rc)
            return rc;
        if (gpos >= s + h.np)
            return LDB_ENOTFOUND;
        fp->start = s;
        fp->n = (uint32_t)h.np;
        fp->h = h;
        fp->g = 0;
    }
    uint64_t i = gpos - fp->start, g = i / LDB_FWD_GROUP, i0 = g * LDB_FWD_GROUP;
    uint64_t i1 = i0 + LDB_FWD_GROUP < fp->n ? i0 + LDB_FWD_GROUP : fp->n;
    if (fp->g != g + 1) { /* a new group: decoding starts at its first position */
        /* (at least one slot: a silent group must not leave glat NULL for the
         * pointer arithmetic below) */
        int rc = grow_codes(db, &fp->glat, &fp->gbits, &fp->cap_nnz,
                            fp->off[i1] - fp->off[i0] + 1);
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

int ldb_fwd_get(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
                ldb_fblock *fb)
{
    if (fb->n && gpos >= fb->start && gpos < fb->start + fb->n && (!values || fb->has_values))
        return LDB_OK; /* already decoded */
    MDB_val v;
    uint64_t s;
    int rc = ldb_floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
    if (!rc && !ldb_fwd_crc_ok(v.mv_data, v.mv_size))
        rc = corrupt_why(db, dd, s, "its CRC-32 does not match");
    if (!rc)
        rc = ldb_fwd_decode(db, dd, s, v.mv_data, v.mv_size, values, fb);
    if (!rc && (gpos < fb->start || gpos >= fb->start + fb->n)) {
        fb->n = 0;
        rc = LDB_ENOTFOUND;
    }
    return rc;
}

int ldb_fwd_value(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t gpos, uint32_t latent,
                  ldb_fpos *fp, float *out)
{
    *out = 0;
    int rc = ldb_fwd_at(db, txn, dd, gpos, 0, fp);
    if (rc == LDB_ENOTFOUND)
        return LDB_OK;
    if (rc)
        return rc;
    uint32_t a = 0, b = fp->cnt;
    while (a < b) { /* latents ascend: binary search */
        uint32_t m = (a + b) / 2;
        if (fp->lat[m] < latent)
            a = m + 1;
        else
            b = m;
    }
    if (a == fp->cnt || fp->lat[a] != latent)
        return LDB_OK;
    if ((rc = ldb_fwd_at(db, txn, dd, gpos, 1, fp)))
        return rc;
    *out = ldb_val_float(fp->bits[a], db->values);
    return LDB_OK;
}

