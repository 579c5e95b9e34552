/* reader.c — reading what the writer stored, forward blocks aside (fwdblock.c):
 * inverted chunks, the token index and token blocks, summaries and top lists.
 * Every decode checks lengths against the data it reads: a corrupt record is an
 * LDB_EFORMAT error naming it, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "invrun.h"
#include "reader.h"
#include "db_impl.h"

/* The entry of a u64-keyed (block start) database holding gpos: the greatest key
 * <= gpos. LDB_ENOTFOUND when there is none. */
int ldb_floor_get(ldb_db *db, MDB_txn *txn, MDB_dbi dbi, uint64_t gpos, uint64_t *start,
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
    if (ldb_wgrow((void **)arr, cap, *len + cnt, sizeof **arr))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (ldb_posting_decode(q, n, first, *arr + *len, *cap - *len, &got) || got != cnt)
        return LDB_EFORMAT;
    *len += cnt;
    return LDB_OK;
}

/* Format 4: one run record a key; the latent's positions from each, in key order. */
static int inv_read_runs(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint32_t latent,
                         uint64_t **out, size_t *n)
{
    MDB_cursor *c;
    uint64_t *arr = NULL;
    size_t len = 0, cap = 0;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, dd->inv, &c);
    *out = NULL;
    *n = 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "inv");
    MDB_val k, v;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ldb_invrun r;
        uint64_t start = k.mv_size == 8 ? ldb_rd_be64(k.mv_data) : 0;
        int drc = k.mv_size != 8 ? -1 : ldb_invrun_open(&r, start, v.mv_data, v.mv_size, dd->d_sae);
        if (!drc)
            drc = ldb_invrun_latent(&r, latent, &arr, &len, &cap);
        if (drc == -2) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        if (drc) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the postings of latent %u of '%s' "
                             "(table inv:%u, run %llu) are corrupt; run latentdb check", db->path,
                             latent, dd->name, dd->id, (unsigned long long)start);
            break;
        }
    }
    if (mrc && mrc != MDB_NOTFOUND && !rc)
        rc = ldb_db_mdb_err(db, mrc, "inv");
    mdb_cursor_close(c);
    if (rc) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return LDB_OK;
}

int ldb_inv_read(ldb_db *db, MDB_txn *txn, const ldb_dbdict *dd, uint32_t latent, uint64_t **out,
                 size_t *n)
{
    if (db->format >= 4)
        return inv_read_runs(db, txn, dd, latent, out, n);
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
        if (ldb_db_unpack(db, v.mv_data, v.mv_size, &buf) ||
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
    if (ldb_db_unpack(db, p, v->mv_size, buf) || buf->len % 4)
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
        int rc = ldb_floor_get(db, txn, db->tok, gpos, &s, &v, "tok");
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
        uint32_t b = pos / ldb_tok_block(db) * ldb_tok_block(db); /* the record holding pos */
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
    if (ldb_lsum_decode(v.mv_data, v.mv_size, db->format, s))
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
    int n = ldb_top_decode(v.mv_data, v.mv_size, db->format, db->values, out, ctx, max);
    return n >= 0 ? n : ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the top list of latent %u (table "
                                    "ltop, key %u:%u) is corrupt; run latentdb check", db->path,
                                    latent, dict, latent);
}
