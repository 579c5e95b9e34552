/* writer.c — one batch: sequences and their tokens go in at once; codes are
 * buffered per dictionary and turned into indexes at commit (build.c). Nothing is
 * visible to readers until the commit, and a failed batch leaves the DB as it was. */
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "writer_impl.h"
#include "db_impl.h"


void ldb_tokens_hash(const uint32_t *tokens, uint32_t len, uint8_t hash[16])
{
    unsigned char md[32];
    SHA256((const unsigned char *)tokens, (size_t)len * 4, md); /* u32 LE on x86-64 */
    memcpy(hash, md, 16);
}

static void free_writer(ldb_writer *w)
{
    for (int i = 0; i < w->dcap; i++) {
        wdict *d = &w->d[i];
        free(d->seg);
        free(d->cnt);
        free(d->skipf);
        free(d->lat);
        free(d->bits);
    }
    free(w->d);
    free(w->tk_tok);
    free(w->tk_pos);
    ldb_buf_free(&w->a);
    ldb_buf_free(&w->b);
    ldb_build_scratch_free(w->bs);
    free(w);
}

/* A finished writer (its transaction ended) becomes the handle's spare, or is freed
 * when the handle has one already. */
static void retire(ldb_writer *w)
{
    ldb_db *db = w->db;
    if (db->wspare) {
        free_writer(w);
        return;
    }
    w->txn = NULL;
    w->nd = 0;
    w->ntk = 0;
    w->a.len = w->b.len = 0;
    db->wspare = w;
}

void ldb_writer_drop_spare(ldb_db *db)
{
    if (db && db->wspare) {
        free_writer(db->wspare);
        db->wspare = NULL;
    }
}

int ldb_writer_begin(ldb_db *db, ldb_writer **out)
{
    int rc, mrc;
    *out = NULL;
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    ldb_writer *w = db->wspare;
    db->wspare = NULL;
    if (!w && !(w = calloc(1, sizeof *w)))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    w->db = db;
    w->threads = 1;
    if ((mrc = ldb_txn_begin(db, 0, &w->txn))) {
        retire(w);
        return ldb_db_mdb_err(db, mrc, "cannot begin a write transaction");
    }
    if ((rc = ldb_db_meta_u64(db, w->txn, "n_seq", &w->n_seq)) ||
        (rc = ldb_db_meta_u64(db, w->txn, "n_pos", &w->n_pos)) ||
        (rc = ldb_db_meta_u64(db, w->txn, "n_ord", &w->n_ord))) {
        ldb_writer_abort(w);
        return rc;
    }
    w->first_new_pos = w->n_pos;
    *out = w;
    return LDB_OK;
}

void ldb_writer_abort(ldb_writer *w)
{
    if (!w)
        return;
    if (w->txn)
        ldb_txn_abort(w->db, w->txn);
    retire(w);
}

MDB_txn *ldb_writer_txn(ldb_writer *w)
{
    return w->txn;
}

void ldb_writer_set_threads(ldb_writer *w, int n)
{
    w->threads = n < 1 ? 1 : n;
}

uint64_t ldb_writer_pending(const ldb_writer *w)
{
    uint64_t n = 0;
    for (int i = 0; i < w->nd; i++)
        n += w->d[i].nnz;
    return n;
}

static int is_covered(ldb_writer *w, uint16_t dict, uint64_t seq, int *yes)
{
    uint8_t kb[10];
    ldb_be16(kb, dict);
    ldb_be64(kb + 2, seq);
    MDB_val k = {10, kb}, v;
    int mrc = mdb_get(w->txn, w->db->cover, &k, &v);
    *yes = mrc == 0;
    if (mrc && mrc != MDB_NOTFOUND)
        return ldb_db_mdb_err(w->db, mrc, "cover");
    /* also codes buffered in this batch */
    for (int i = 0; i < w->nd && !*yes; i++)
        if (w->d[i].dd->id == dict)
            for (size_t s = 0; s < w->d[i].nseg && !*yes; s++)
                *yes = w->d[i].seg[s].seq == seq;
    return LDB_OK;
}

int ldb_writer_attach(ldb_writer *w, const uint8_t hash[16], const uint16_t *dicts, int n,
                      ldb_seqrec *out, int *found)
{
    MDB_cursor *c;
    MDB_val k = {16, (void *)hash}, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(w->txn, w->db->seqhash, &c);
    *found = 0;
    if (mrc)
        return ldb_db_mdb_err(w->db, mrc, "seqhash");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); mrc == 0 && !*found;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        uint64_t seq = ldb_rd_be64(v.mv_data);
        int any = 0;
        for (int i = 0; i < n && !any && !rc; i++)
            rc = is_covered(w, dicts[i], seq, &any);
        if (rc)
            break;
        if (!any) {
            rc = ldb_db_get_seq(w->db, w->txn, seq, out);
            *found = rc == LDB_OK;
        }
    }
    mdb_cursor_close(c);
    return rc;
}

int ldb_seqs_covered(ldb_db *db, ldb_txn *txn, const uint8_t hash[16], const uint16_t *dicts,
                     int n, int (*each)(void *arg, uint64_t seq, int i), void *arg)
{
    MDB_cursor *c;
    MDB_val k = {16, (void *)hash}, v;
    int rc = 0, mrc = mdb_cursor_open(txn, db->seqhash, &c);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqhash");
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size < 8) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "seqhash: a record of %zu bytes",
                             v.mv_size);
            break;
        }
        uint64_t seq = ldb_rd_be64(v.mv_data);
        for (int i = 0; i < n; i++) {
            uint8_t kb[10];
            ldb_be16(kb, dicts[i]);
            ldb_be64(kb + 2, seq);
            MDB_val ck = {10, kb}, cv;
            int grc = mdb_get(txn, db->cover, &ck, &cv);
            if (grc == 0) {
                rc = each(arg, seq, i);
                break;
            }
            if (grc != MDB_NOTFOUND) {
                rc = ldb_db_mdb_err(db, grc, "cover");
                break;
            }
        }
    }
    mdb_cursor_close(c);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = ldb_db_mdb_err(db, mrc, "seqhash");
    return rc;
}

int ldb_writer_source(ldb_writer *w, const char *label, uint32_t *id)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint32_t next = 0;
    int mrc = mdb_cursor_open(w->txn, w->db->sources, &c);
    if (mrc)
        return ldb_db_mdb_err(w->db, mrc, "sources");
    size_t n = strlen(label);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint32_t sid = ldb_rd_be32(k.mv_data);
        if (v.mv_size == n && !memcmp(v.mv_data, label, n)) {
            *id = sid;
            mdb_cursor_close(c);
            return LDB_OK;
        }
        next = sid + 1;
    }
    mdb_cursor_close(c);
    uint8_t kb[4];
    ldb_be32(kb, next);
    MDB_val nk = {4, kb}, nv = {n, (void *)label};
    if ((mrc = mdb_put(w->txn, w->db->sources, &nk, &nv, 0)))
        return ldb_db_mdb_err(w->db, mrc, "sources");
    *id = next;
    return LDB_OK;
}

int ldb_writer_add_seq(ldb_writer *w, const uint32_t *tokens, uint32_t len, uint32_t source,
                       uint64_t row, const uint8_t hash[16], ldb_seqrec *out)
{
    ldb_db *db = w->db;
    int mrc;
    memset(out, 0, sizeof *out);
    out->seq = w->n_seq;
    out->start = w->n_pos;
    out->len = len;
    out->source = source;
    out->row = row;
    memcpy(out->hash, hash, 16);
    uint8_t kb[8], vb[40], sb[8];
    ldb_be64(kb, out->seq);
    ldb_seqrec_encode(out, vb);
    MDB_val k = {8, kb}, v = {40, vb};
    if ((mrc = mdb_put(w->txn, db->seqs, &k, &v, MDB_APPEND)))
        return ldb_db_mdb_err(db, mrc, "seqs");
    uint8_t pk[8];
    ldb_be64(pk, out->start);
    MDB_val kp = {8, pk}, vp = {8, &out->seq};
    if (len && (mrc = mdb_put(w->txn, db->seqpos, &kp, &vp, MDB_APPEND)))
        return ldb_db_mdb_err(db, mrc, "seqpos");
    ldb_be64(sb, out->seq);
    MDB_val kh = {16, (void *)hash}, vh = {8, sb};
    if ((mrc = mdb_put(w->txn, db->seqhash, &kh, &vh, 0)))
        return ldb_db_mdb_err(db, mrc, "seqhash");
    uint32_t tb = ldb_tok_block(db);
    for (uint32_t off = 0; off < len; off += tb) {
        uint32_t m = len - off < tb ? len - off : tb;
        w->a.len = 0;
        /* raw: queries read token ids in place (about 0.1 byte per code) */
        if (ldb_zc_store((const uint8_t *)(tokens + off), (size_t)m * 4, &w->a))
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        ldb_be64(kb, out->start + off);
        MDB_val kt = {8, kb}, vt = {w->a.len, w->a.data};
        if ((mrc = mdb_put(w->txn, db->tok, &kt, &vt, MDB_APPEND)))
            return ldb_db_mdb_err(db, mrc, "tok");
    }
    if (w->ntk + len > w->captk) {
        size_t cap = w->captk ? w->captk : 65536;
        while (cap < w->ntk + len)
            cap *= 2;
        uint32_t *t = realloc(w->tk_tok, cap * sizeof *t);
        if (t)
            w->tk_tok = t;
        uint64_t *p = realloc(w->tk_pos, cap * sizeof *p);
        if (p)
            w->tk_pos = p;
        if (!t || !p)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        w->captk = cap;
    }
    for (uint32_t i = 0; i < len; i++) {
        w->n_ord += !ldb_db_is_skip(db, tokens[i]);
        w->tk_tok[w->ntk] = tokens[i];
        w->tk_pos[w->ntk++] = out->start + i;
    }
    w->n_seq++;
    w->n_pos += len;
    return LDB_OK;
}


int ldb_writer_codes(ldb_writer *w, uint16_t dict, const ldb_seqrec *seq, const uint32_t *tokens,
                     const uint64_t *start, const uint32_t *latent, const float *value)
{
    ldb_db *db = w->db;
    wdict *wd = NULL;
    for (int i = 0; i < w->nd; i++)
        if (w->d[i].dd->id == dict)
            wd = &w->d[i];
    if (!wd) {
        ldb_dbdict *dd = NULL;
        for (int i = 0; i < db->n_dict; i++)
            if (db->dict[i].id == dict)
                dd = &db->dict[i];
        if (!dd)
            return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "no dictionary %u", dict);
        if (w->nd == w->dcap) {
            wdict *n = realloc(w->d, (size_t)(w->dcap + 1) * sizeof *n);
            if (!n)
                return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            w->d = n;
            memset(&w->d[w->dcap++], 0, sizeof *n);
        }
        wd = &w->d[w->nd++]; /* its buffers, if any, are an earlier batch's: reused */
        wd->nseg = wd->npos = wd->nnz = 0;
        wd->dd = dd;
    }
    uint64_t nnz = start[seq->len] - start[0];
    if (ldb_wgrow((void **)&wd->seg, &wd->capseg, wd->nseg + 1, sizeof *wd->seg) ||
        ldb_wgrow((void **)&wd->cnt, &wd->cappos, wd->npos + seq->len, sizeof *wd->cnt) ||
        ldb_wgrow((void **)&wd->skipf, &wd->capskip, wd->npos + seq->len, 1) ||
        ldb_wgrow((void **)&wd->lat, &wd->capnnz, wd->nnz + nnz, sizeof *wd->lat) ||
        ldb_wgrow((void **)&wd->bits, &wd->capbits, wd->nnz + nnz, sizeof *wd->bits))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    wseg *s = &wd->seg[wd->nseg++];
    s->seq = seq->seq;
    s->start = seq->start;
    s->len = seq->len;
    s->pos_off = wd->npos;
    s->nnz_off = wd->nnz;
    for (uint32_t r = 0; r < seq->len; r++) {
        wd->cnt[wd->npos] = (uint32_t)(start[r + 1] - start[r]);
        wd->skipf[wd->npos++] = (uint8_t)ldb_db_is_skip(db, tokens[r]);
        for (uint64_t i = start[r]; i < start[r + 1]; i++) {
            if (latent[i] >= wd->dd->d_sae || (i > start[r] && latent[i] <= latent[i - 1]) ||
                !(value[i] > 0))
                return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "codes of sequence %llu, position %u: "
                                   "latents must ascend below d_sae (%u) with values > 0",
                                   (unsigned long long)seq->seq, r, wd->dd->d_sae);
            wd->lat[wd->nnz] = latent[i];
            wd->bits[wd->nnz++] = ldb_val_bits(value[i], db->values);
        }
    }
    return LDB_OK;
}

typedef struct tkpair {
    uint32_t tok;
    uint64_t pos;
} tkpair;

static int cmp_tk(const void *a, const void *b)
{
    const tkpair *x = a, *y = b;
    if (x->tok != y->tok)
        return x->tok < y->tok ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The token index of the batch's new positions (one run: they are consecutive). */
static int build_tokidx(ldb_writer *w)
{
    ldb_db *db = w->db;
    if (!w->ntk)
        return LDB_OK;
    tkpair *p = malloc(w->ntk * sizeof *p);
    if (!p)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->ntk; i++) {
        p[i].tok = w->tk_tok[i];
        p[i].pos = w->tk_pos[i];
    }
    qsort(p, w->ntk, sizeof *p, cmp_tk);
    uint64_t *ps = malloc(w->ntk * sizeof *ps); /* one token's positions at a time */
    if (!ps) {
        free(p);
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    int rc = LDB_OK;
    for (size_t a = 0; a < w->ntk && !rc;) {
        size_t b = a + 1;
        while (b < w->ntk && p[b].tok == p[a].tok)
            b++;
        w->b.len = 0;
        if (ldb_buf_reserve(&w->b, 1)) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = a; i < b; i++)
            ps[i - a] = p[i].pos;
        w->b.data[w->b.len++] = 0; /* codec: raw Rice-coded positions */
        if (ldb_posting_encode(ps, b - a, &w->b)) {
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        uint8_t kb[12];
        ldb_be32(kb, p[a].tok);
        ldb_be64(kb + 4, p[a].pos);
        MDB_val k = {12, kb}, v = {w->b.len, w->b.data};
        int mrc = mdb_put(w->txn, db->tokidx, &k, &v, 0);
        if (mrc)
            rc = ldb_db_mdb_err(db, mrc, "tokidx");
        a = b;
    }
    free(ps);
    free(p);
    return rc;
}

/* After a failed batch: the dict records as committed, keeping the batch's error. */
static void reload_dicts(ldb_db *db)
{
    ldb_err keep = *ldb_db_err(db);
    ldb_db_reload_dicts(db);
    *ldb_db_err(db) = keep;
}

int ldb_writer_commit(ldb_writer *w)
{
    ldb_db *db = w->db;
    uint64_t batch = 0;
    int rc = build_tokidx(w);
    for (int i = 0; i < w->nd && !rc; i++)
        rc = ldb_build_dict(w, &w->d[i]);
    if (!rc && !(rc = ldb_db_meta_u64(db, w->txn, "batch", &batch)))
        if (!(rc = ldb_db_meta_put_u64(db, w->txn, "n_seq", w->n_seq)) &&
            !(rc = ldb_db_meta_put_u64(db, w->txn, "n_pos", w->n_pos)) &&
            !(rc = ldb_db_meta_put_u64(db, w->txn, "n_ord", w->n_ord)))
            rc = ldb_db_meta_put_u64(db, w->txn, "batch", batch + 1);
    if (rc) {
        ldb_writer_abort(w);
        reload_dicts(db); /* build may have set a block size in memory */
        return rc;
    }
    int mrc = ldb_txn_commit(w->db, w->txn);
    w->txn = NULL;
    ldb_writer_abort(w); /* keeps the buffers for the next batch */
    if (mrc) {
        /* the batch is gone as a whole; reload dict records it may have changed */
        rc = ldb_db_mdb_err(db, mrc, "cannot commit the batch");
        reload_dicts(db);
        return rc;
    }
    /* LMDB holds the batch; a catalog that fails to follow is rebuilt on next open */
    ldb_catalog_sync(db, 0);
    return LDB_OK;
}
