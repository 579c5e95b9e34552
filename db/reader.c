/* reader.c — decoders for forward blocks and inverted chunks, and summary lookups.
 * Every decode checks lengths against the data it reads: a corrupt block is an
 * LDB_EFORMAT error naming the block, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "db_impl.h"

void ldb_fblock_free(ldb_fblock *fb)
{
    free(fb->off);
    free(fb->lat);
    free(fb->bits);
    free(fb->run);
    memset(fb, 0, sizeof *fb);
}

/* The entry of a u64-keyed (block start) database holding gpos: the greatest key
 * <= gpos. LDB_ENOTFOUND when there is none. */
static int floor_get(ldb_db *db, MDB_txn *txn, MDB_dbi dbi, uint64_t gpos, uint64_t *start,
                     MDB_val *v, const char *what)
{
    MDB_cursor *c;
    uint8_t kb[8];
    ldb_be64(kb, gpos);
    MDB_val k = {8, kb};
    int mrc = mdb_cursor_open(txn, dbi, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, what);
    mrc = ldb_cursor_floor(c, &k, v);
    mdb_cursor_close(c);
    if (mrc || k.mv_size != 8)
        return LDB_ENOTFOUND;
    *start = ldb_rd_be64(k.mv_data);
    return LDB_OK;
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
        int frc = floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
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
    int rc = floor_get(db, txn, dd->fwd, gpos, &s, &v, "fwd");
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

/* Keys are (run start, latent): one seek finds the latent's chunk in the next run
 * that has one, another skips a run where it is silent. */
/* Appends a decoded position list (first position `first`) to *arr. */
static int append_postings(ldb_db *db, const uint8_t *q, size_t n, uint64_t first, uint64_t **arr,
                           size_t *len, size_t *cap)
{
    uint64_t cnt, got;
    if (ldb_posting_count(q, n, &cnt) || cnt == 0 || cnt > n * 8 + 1 ||
        (*len && first <= (*arr)[*len - 1]))
        return LDB_EFORMAT;
    if (*len + cnt > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + cnt)
            nc *= 2;
        uint64_t *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        *arr = na;
        *cap = nc;
    }
    if (ldb_posting_decode(q, n, first, *arr + *len, *cap - *len, &got) || got != cnt)
        return LDB_EFORMAT;
    *len += cnt;
    return LDB_OK;
}

int ldb_inv_read(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint32_t latent, uint64_t **out,
                 size_t *n)
{
    MDB_cursor *c;
    ldb_buf buf = {0};
    uint8_t kb[12];
    uint64_t *arr = NULL, r = 0;
    size_t len = 0, cap = 0;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, dd->inv, &c);
    *out = NULL;
    *n = 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "inv");
    for (;;) {
        ldb_be64(kb, r);
        ldb_be32(kb + 8, latent);
        MDB_val k = {12, kb}, v;
        if ((mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)))
            break;
        if (k.mv_size != 12) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: bad inverted key", db->path);
            break;
        }
        uint64_t kr = ldb_rd_be64(k.mv_data);
        uint32_t kl = ldb_rd_be32((uint8_t *)k.mv_data + 8);
        if (kl != latent) {
            if (kl < latent) {
                r = kr; /* a later run: look for the latent in it */
            } else {
                if (kr == UINT64_MAX)
                    break;
                r = kr + 1; /* silent in run kr */
            }
            continue;
        }
        const uint8_t *q;
        uint64_t off;
        if (ldb_zc_unpack(db->zc, v.mv_data, v.mv_size, &buf) ||
            (q = buf.data, ldb_varint_get(&q, buf.data + buf.len, &off)) ||
            (rc = append_postings(db, q, (size_t)(buf.data + buf.len - q), kr + off, &arr, &len,
                                  &cap)) == LDB_EFORMAT) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the postings of latent %u of '%s' "
                             "(table inv:%u, key %llu:%u) are corrupt; run latentdb check",
                             db->path, latent, dd->name, dd->id, (unsigned long long)kr, latent);
            break;
        }
        if (rc)
            break;
        if (kr == UINT64_MAX)
            break;
        r = kr + 1;
    }
    if (mrc && mrc != MDB_NOTFOUND && !rc)
        rc = ldb_db_mdb_err(db, mrc, "inv");
    mdb_cursor_close(c);
    ldb_buf_free(&buf);
    if (rc) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return LDB_OK;
}

int ldb_tokidx_read(ldb_db *db, MDB_txn *txn, uint32_t token, uint64_t **out, size_t *n)
{
    MDB_cursor *c;
    uint8_t kb[12];
    uint64_t *arr = NULL;
    size_t len = 0, cap = 0;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->tokidx, &c);
    *out = NULL;
    *n = 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "tokidx");
    ldb_be32(kb, token);
    ldb_be64(kb + 4, 0);
    MDB_val k = {12, kb}, v;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !mrc && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || ldb_rd_be32(k.mv_data) != token)
            break;
        const uint8_t *p = v.mv_data;
        if (v.mv_size < 2 || p[0] != 0 ||
            (rc = append_postings(db, p + 1, v.mv_size - 1, ldb_rd_be64((uint8_t *)k.mv_data + 4),
                                  &arr, &len, &cap)) == LDB_EFORMAT)
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the token index of token %u (table "
                             "tokidx, key %u:%llu) is corrupt; run latentdb check", db->path,
                             token, token, (unsigned long long)ldb_rd_be64((uint8_t *)k.mv_data + 4));
    }
    if (mrc && mrc != MDB_NOTFOUND && !rc)
        rc = ldb_db_mdb_err(db, mrc, "tokidx");
    mdb_cursor_close(c);
    if (rc) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return LDB_OK;
}

void ldb_tokcache_free(ldb_tokcache *tc)
{
    ldb_buf_free(&tc->buf);
    memset(tc, 0, sizeof *tc);
}

/* A token record's ids: read in place when stored raw, else unpacked into buf.
 * 0, or -1 when the record is malformed. */
static int tok_record(ldb_db *db, const MDB_val *v, ldb_buf *buf, const uint8_t **ids,
                      uint64_t *n)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size >= 1 && p[0] == 0 && (v->mv_size - 1) % 4 == 0) {
        *ids = p + 1; /* valid while the transaction lives */
        *n = (v->mv_size - 1) / 4;
        return 0;
    }
    if (ldb_zc_unpack(db->zc, p, v->mv_size, buf) || buf->len % 4)
        return -1;
    *ids = buf->data;
    *n = buf->len / 4;
    return 0;
}

int ldb_tok_at(ldb_db *db, MDB_txn *txn, ldb_tokcache *tc, uint64_t gpos, uint32_t *tok)
{
    if (!(tc->n && gpos >= tc->start && gpos < tc->start + tc->n)) {
        MDB_val v;
        uint64_t s;
        int rc = floor_get(db, txn, db->tok, gpos, &s, &v, "tok");
        tc->n = 0;
        if (rc && rc != LDB_ENOTFOUND)
            return rc;
        if (!rc && !tok_record(db, &v, &tc->buf, &tc->data, &tc->n))
            tc->start = s;
        if (!(tc->n && gpos >= tc->start && gpos < tc->start + tc->n)) {
            tc->n = 0;
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: no token block holds position %llu",
                               db->path, (unsigned long long)gpos);
        }
    }
    memcpy(tok, tc->data + 4 * (gpos - tc->start), 4);
    return LDB_OK;
}

int ldb_seq_tokens_at(ldb_db *db, MDB_txn *txn, uint64_t start, uint32_t pos, uint32_t n,
                      uint32_t *out)
{
    ldb_buf buf = {0};
    int rc = LDB_OK;
    while (n && !rc) {
        uint32_t b = pos / LDB_TOK_BLOCK * LDB_TOK_BLOCK; /* the record holding pos */
        uint8_t kb[8];
        ldb_be64(kb, start + b);
        MDB_val k = {8, kb}, v;
        const uint8_t *ids;
        uint64_t have = 0;
        int mrc = mdb_get(txn, db->tok, &k, &v);
        if (mrc && mrc != MDB_NOTFOUND) {
            rc = ldb_db_mdb_err(db, mrc, "tok");
        } else if (mrc || tok_record(db, &v, &buf, &ids, &have) || pos - b >= have) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: no token block holds position %llu",
                             db->path, (unsigned long long)(start + pos));
        } else {
            uint32_t at = pos - b, take = have - at < n ? (uint32_t)(have - at) : n;
            memcpy(out, ids + 4 * (size_t)at, (size_t)take * 4);
            out += take, pos += take, n -= take;
        }
    }
    ldb_buf_free(&buf);
    return rc;
}

int ldb_lsum_counts(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint64_t *counts)
{
    uint8_t kb[2];
    ldb_be16(kb, dd->id);
    MDB_val k = {2, kb}, v;
    int mrc = mdb_get(txn, db->lcnt, &k, &v);
    if (mrc == MDB_NOTFOUND) { /* nothing ingested yet */
        memset(counts, 0, (size_t)dd->d_sae * sizeof *counts);
        return LDB_OK;
    }
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "lcnt");
    if (v.mv_size != (size_t)dd->d_sae * sizeof *counts)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the latent counts of '%s' (table lcnt, "
                           "key %u) are corrupt (%zu bytes); run latentdb check", db->path,
                           dd->name, dd->id, v.mv_size);
    memcpy(counts, v.mv_data, v.mv_size);
    return LDB_OK;
}

int ldb_lsum_get(ldb_db *db, MDB_txn *txn, uint16_t dict, uint32_t latent, ldb_lsum *s)
{
    uint8_t kb[6];
    ldb_key_latent(kb, dict, latent);
    MDB_val k = {6, kb}, v;
    memset(s, 0, sizeof *s);
    int mrc = mdb_get(txn, db->lsum, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_OK;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "lsum");
    if (ldb_lsum_decode(v.mv_data, v.mv_size, s))
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the summary of latent %u (table lsum, key "
                           "%u:%u) is corrupt; run latentdb check", db->path, latent, dict,
                           latent);
    return LDB_OK;
}

int ldb_ltop_get(ldb_db *db, MDB_txn *txn, uint16_t dict, uint32_t latent, ldb_cand *out,
                 ldb_tctx *ctx, int max)
{
    uint8_t kb[6];
    ldb_key_latent(kb, dict, latent);
    MDB_val k = {6, kb}, v;
    int mrc = mdb_get(txn, db->ltop, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "ltop");
    int n = ldb_top_decode(v.mv_data, v.mv_size, ldb_val_bytes(db->values), out, ctx, max);
    return n >= 0 ? n : ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the top list of latent %u (table "
                                    "ltop, key %u:%u) is corrupt; run latentdb check", db->path,
                                    latent, dict, latent);
}
