/* repair.c — `latentdb check --repair`: a damaged database is recovered into a new
 * one, and the damaged file is kept.
 *
 * The truth is the sequences, their tokens and the forward blocks; they are read
 * and verified (as check does) while the old environment's write lock is held,
 * so no writer changes it meanwhile. A new environment is built in a folder
 * inside the DB's: the truth and the user's records (dictionaries, sources, runs,
 * labels, meta) are copied into it as they are, and everything derived is
 * written from the truth: the meta counters, the sequence lookups (seqpos,
 * seqhash), the token index, and for every dictionary its coverage, statistics,
 * inverted index, summaries, top lists (with their contexts) and counts record,
 * as the batch writer makes them, except that the inverted and token indexes get
 * one chunk per latent and per token (readers take chunks over any range of runs)
 * and a summary's sum and sum of squares are accumulated in one pass (the digest
 * does not cover them). Then the old data.mdb is renamed data.mdb.damaged-<time>
 * (nothing committed is lost) and the new one takes its place; the handle is
 * reopened on it and the catalog rebuilt.
 *
 * Nothing is written into the damaged environment: LMDB writing into a damaged
 * B-tree corrupts its own memory (a repair in place died of heap corruption and
 * of LMDB assertions in tests/corrupt.py). When the truth itself is damaged the
 * new folder is removed and the database is left as it was: a derived record
 * rebuilt from damaged truth would only hide the damage. Labels that are not one
 * line of UTF-8, or of no latent, are left out (named in the note). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/utf8.h"
#include "summary.h"
#include "coocsum.h"
#include "invrun.h"
#include "writer.h"
#include "check_impl.h"
#include "db_impl.h"

typedef struct rb {
    chk c;                     /* the old environment, read in c.txn (its write txn) */
    ldb_db *n;                 /* the new one */
    MDB_txn *w;                /* its write transaction */
    ldb_buf b;
    uint64_t *pos;
    size_t cap_pos;
    uint64_t dropped_labels;
    int set_skip;              /* ldb_db_set_skip: the handle's skip set is the new one */
} rb;

/* A put into the new environment; its errors are reported on the old handle. */
static int put(rb *r, MDB_dbi dbi, const void *k, size_t kn, const void *v, size_t vn,
               const char *table)
{
    MDB_val mk = {kn, (void *)k}, mv = {vn, (void *)v};
    int mrc = mdb_put(r->w, dbi, &mk, &mv, 0);
    return mrc ? ldb_db_mdb_err(r->c.db, mrc, table) : LDB_OK;
}

/* A Rice-coded position list (codec byte 0, then varint first - base when base
 * is not UINT64_MAX) of pos[0..n) into r->b. */
static int postings(rb *r, const uint64_t *pos, size_t n, uint64_t base)
{
    r->b.len = 0;
    if (ldb_buf_reserve(&r->b, 12))
        return ldb_chk_nomem(&r->c);
    r->b.data[r->b.len++] = 0;
    if (base != UINT64_MAX)
        r->b.len += ldb_varint_put(r->b.data + r->b.len, pos[0] - base);
    return ldb_posting_encode(pos, n, &r->b) ? ldb_chk_nomem(&r->c) : LDB_OK;
}

static int grow_pos(rb *r, size_t n)
{
    if (n <= r->cap_pos)
        return LDB_OK;
    uint64_t *p = realloc(r->pos, n * sizeof *p);
    if (!p)
        return ldb_chk_nomem(&r->c);
    r->pos = p;
    r->cap_pos = n;
    return LDB_OK;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_u16(const void *x, const void *y)
{
    return (int)*(const uint16_t *)x - (int)*(const uint16_t *)y;
}

static int cmp_cand(const void *x, const void *y)
{
    const ldb_cand *a = x, *b = y;
    return ldb_cand_before(a, b) ? -1 : ldb_cand_before(b, a);
}

/* Copies every record of table (old dbi src, new dbi dst) as it is; keep (NULL:
 * all) says which. */
static int copy_table(rb *r, MDB_dbi src, MDB_dbi dst, const char *table,
                      int (*keep)(rb *, const MDB_val *, const MDB_val *))
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(r->c.txn, src, &cur);
    if (mrc)
        return ldb_db_mdb_err(r->c.db, mrc, table);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (!keep || keep(r, &k, &v))
            rc = put(r, dst, k.mv_data, k.mv_size, v.mv_data, v.mv_size, table);
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND)
        rc = ldb_err_set(ldb_db_err(r->c.db), LDB_EFORMAT, "%s: table '%s' cannot be read to its end "
                         "(%s): repair cannot copy it; restore the database from a copy",
                         r->c.db->path, table, mdb_strerror(mrc));
    return rc;
}

/* A label is kept when it is one line of UTF-8 of a latent that exists. */
static int keep_label(rb *r, const MDB_val *k, const MDB_val *v)
{
    const ldb_db *db = r->c.db;
    uint16_t d = k->mv_size == 6 ? ldb_rd_be16(k->mv_data) : UINT16_MAX;
    uint32_t j = k->mv_size == 6 ? ldb_rd_be32((uint8_t *)k->mv_data + 2) : 0;
    int ok = d < db->n_dict && j < db->dict[d].d_sae &&
             ldb_utf8_check(v->mv_data, v->mv_size, 1, NULL) == v->mv_size;
    r->dropped_labels += !ok;
    return ok;
}

/* The meta counters, seqpos, seqhash and the token index from the sequences. */
static int rebuild_corpus(rb *r)
{
    chk *c = &r->c;
    ldb_db *n = r->n;
    uint64_t batch = 0;
    int rc = ldb_db_meta_u64(c->db, c->txn, "batch", &batch);
    if (rc || (rc = ldb_db_meta_put_u64(n, r->w, "n_seq", c->n_starts)) ||
        (rc = ldb_db_meta_put_u64(n, r->w, "n_pos", c->n_pos)) ||
        (rc = ldb_db_meta_put_u64(n, r->w, "n_ord", c->n_ord)) ||
        (rc = ldb_db_meta_put_u64(n, r->w, "batch", batch + 1))) /* catalogs see a change */
        return rc;
    for (size_t i = 0; i < c->n_starts && !rc; i++) {
        uint8_t kb[8], vb[8];
        uint64_t seq = i;
        ldb_be64(kb, c->starts[i]);
        memcpy(vb, &seq, 8);
        if (!(rc = put(r, n->seqpos, kb, 8, vb, 8, "seqpos"))) {
            ldb_be64(vb, seq);
            rc = put(r, n->seqhash, c->hash[i], 16, vb, 8, "seqhash");
        }
    }
    if (rc)
        return rc;
    if (c->n_pos >= 1ull << 40)
        return ldb_err_set(ldb_db_err(c->db), LDB_EUNSUPPORTED, "%s: repair of the token index needs "
                           "fewer than 2^40 positions", c->db->path);
    /* the token index: (token, position) sorted, one entry per token */
    uint64_t *tp = malloc((c->n_pos ? c->n_pos : 1) * sizeof *tp);
    if (!tp)
        return ldb_chk_nomem(c);
    for (uint64_t p = 0; p < c->n_pos; p++)
        tp[p] = (uint64_t)c->tok[p] << 40 | p;
    qsort(tp, c->n_pos, sizeof *tp, cmp_u64);
    for (uint64_t a = 0, b; a < c->n_pos && !rc; a = b) {
        uint64_t tok = tp[a] >> 40;
        for (b = a + 1; b < c->n_pos && tp[b] >> 40 == tok;)
            b++;
        if ((rc = grow_pos(r, b - a)))
            break;
        for (uint64_t i = a; i < b; i++)
            r->pos[i - a] = tp[i] & ((1ull << 40) - 1);
        uint8_t kb[12];
        ldb_be32(kb, (uint32_t)tok);
        ldb_be64(kb + 4, r->pos[0]);
        if (!(rc = postings(r, r->pos, b - a, UINT64_MAX)))
            rc = put(r, n->tokidx, kb, 12, r->b.data, r->b.len, "tokidx");
    }
    free(tp);
    return rc;
}

/* One latent's postings, summary and top list (with contexts) from its codes
 * p[a..b) (ascending positions), into the new dictionary nd; *count gets its
 * ordinary codes. */
static int rebuild_latent(rb *r, const ldb_dbdict *nd, uint32_t j, const pair *p, size_t a,
                          size_t b, ldb_cand *cand, ldb_tctx *ctx, uint16_t *keys,
                          uint64_t *count)
{
    chk *c = &r->c;
    ldb_db *db = c->db;
    ldb_lsum s;
    memset(&s, 0, sizeof s);
    size_t n = 0, lastseq = SIZE_MAX;
    int rc;
    if ((rc = grow_pos(r, b - a)))
        return rc;
    for (size_t i = a; i < b; i++)
        r->pos[i - a] = p[i].pos;
    uint8_t kb[12];
    ldb_be64(kb, 0);
    ldb_be32(kb + 8, j);
    if (db->format < 4 && ((rc = postings(r, r->pos, b - a, 0)) ||
                           (rc = put(r, nd->inv, kb, 12, r->b.data, r->b.len, "inv"))))
        return rc; /* format 4: rebuild_runs */
    for (size_t i = a; i < b; i++) {
        if (ldb_chk_is_skip(c, p[i].pos))
            continue;
        size_t si = ldb_chk_seq_of(c, p[i].pos);
        float v = ldb_val_float(p[i].bits, db->values);
        keys[n] = ldb_val_bf16key(p[i].bits, db->values);
        cand[n++] = (ldb_cand){p[i].pos, v};
        s.nseq += si != lastseq;
        lastseq = si;
        s.sum += v;
        s.sumsq += (double)v * v;
        if (v > s.max)
            s.max = v;
    }
    *count = s.count = n;
    if (!n) /* the writer keeps no summary of a latent without ordinary codes */
        return LDB_OK;
    qsort(keys, n, sizeof *keys, cmp_u16);
    uint16_t *hk = malloc(n * sizeof *hk);
    uint64_t *hc = malloc(n * sizeof *hc);
    if (!hk || !hc) {
        free(hk);
        free(hc);
        return ldb_chk_nomem(c);
    }
    for (size_t i = 0; i < n; i++) {
        if (s.nh && hk[s.nh - 1] == keys[i]) {
            hc[s.nh - 1]++;
        } else {
            hk[s.nh] = keys[i];
            hc[s.nh++] = 1;
        }
    }
    s.hk = hk;
    s.hc = hc;
    r->b.len = 0;
    uint8_t lk[6];
    ldb_key_latent(lk, nd->id, j);
    rc = ldb_lsum_encode(&s, db->format, &r->b) ? ldb_chk_nomem(c)
                                   : put(r, r->n->lsum, lk, 6, r->b.data, r->b.len, "lsum");
    ldb_lsum_free(&s);
    if (rc)
        return rc;
    qsort(cand, n, sizeof *cand, cmp_cand);
    int nt = n < LDB_TOPK ? (int)n : LDB_TOPK;
    for (int t = 0; t < nt; t++)
        ldb_chk_context(c, p, a, b, cand[t].gpos, &ctx[t]);
    r->b.len = 0;
    if (ldb_top_encode(cand, ctx, nt, db->format, db->values, &r->b))
        return ldb_chk_nomem(c);
    return put(r, r->n->ltop, lk, 6, r->b.data, r->b.len, "ltop");
}

/* Format 4: the inverted index as run records over ranges of positions, each holding
 * about as many codes as a batch (ranges need not follow the batches that wrote the
 * codes: a record covers a range of positions, and those without codes cost nothing). */
#define REPAIR_RUN_CODES 6000000
static int rebuild_runs(rb *r, const ldb_dbdict *nd, const pair *p, size_t np)
{
    chk *c = &r->c;
    uint64_t npos = c->n_pos ? c->n_pos : 1;
    uint64_t W = np ? (uint64_t)((double)npos * REPAIR_RUN_CODES / (double)np) : npos;
    W = W < 4096 ? 4096 : W;
    uint64_t nrange = (npos + W - 1) / W, *codes = calloc(nrange, sizeof *codes);
    size_t ng = 0, *grp = NULL; /* each latent's first pair, then its cursor */
    for (size_t i = 0; i < np; i++)
        ng += !i || p[i].lat != p[i - 1].lat;
    grp = malloc((ng + 1) * sizeof *grp);
    size_t *cur = malloc((ng ? ng : 1) * sizeof *cur);
    ldb_invrun_part part = {0};
    ldb_invrun_part *pp = &part;
    int rc = codes && grp && cur ? LDB_OK : ldb_chk_nomem(c);
    if (!rc) {
        for (size_t i = 0, g = 0; i < np; i++) {
            codes[p[i].pos / W]++;
            if (!i || p[i].lat != p[i - 1].lat)
                grp[g++] = i;
        }
        grp[ng] = np;
        memcpy(cur, grp, ng * sizeof *cur);
    }
    for (uint64_t q = 0; q < nrange && !rc && np; q++) {
        uint64_t r0 = q * W, r1 = r0 + W < c->n_pos ? r0 + W : c->n_pos;
        ldb_invrun_params prm;
        ldb_invrun_choose(&prm, r0, r1 - r0, nd->d_sae, codes[q]);
        ldb_invrun_part_begin(&part, &prm, 0);
        for (size_t g = 0; g < ng && !rc; g++) {
            size_t e = cur[g];
            while (e < grp[g + 1] && p[e].pos < r1)
                e++;
            if (e == cur[g])
                continue;
            if ((rc = grow_pos(r, e - cur[g])))
                break;
            for (size_t i = cur[g]; i < e; i++)
                r->pos[i - cur[g]] = p[i].pos;
            if (ldb_invrun_part_add(&part, p[cur[g]].lat, r->pos, e - cur[g]))
                rc = ldb_chk_nomem(c);
            cur[g] = e;
        }
        r->b.len = 0;
        if (!rc && (ldb_invrun_part_end(&part, nd->d_sae) || ldb_invrun_join(&pp, 1, &r->b)))
            rc = ldb_chk_nomem(c);
        uint8_t kb[8];
        ldb_be64(kb, r0);
        if (!rc)
            rc = put(r, nd->inv, kb, 8, r->b.data, r->b.len, "inv");
    }
    ldb_invrun_part_free(&part);
    free(codes);
    free(grp);
    free(cur);
    return rc;
}

/* Dictionary dd of the old environment into nd of the new: its forward blocks
 * verified and copied, its coverage (the sequences its blocks lie in),
 * statistics, inverted index, summaries, top lists and counts written. */
/* Format 6: the window units and the sequences' latents, as the codes make them. */
static int rebuild_coocsum(rb *r, const ldb_dbdict *dd, const ldb_dbdict *nd, const pair *p,
                           size_t np)
{
    chk *c = &r->c;
    size_t ds = dd->d_sae;
    uint64_t *wins = malloc((LDB_NWIN * ds + 1) * sizeof *wins), *ids = NULL;
    uint64_t *off = malloc((c->n_starts + 1) * sizeof *off);
    int rc = wins && off ? ldb_chk_coocsum(c, dd, p, np, wins, &ids, off) : ldb_chk_nomem(c);
    for (int s = 0; s < LDB_NWIN && !rc; s++) {
        uint8_t kb[4];
        ldb_lwin_key(kb, nd->id, (uint16_t)ldb_wins[s]);
        rc = put(r, r->n->lwin, kb, 4, wins + s * ds, ds * sizeof *wins, "lwin");
    }
    for (size_t q = 0; q < c->n_starts && !rc; q++) {
        if (off[q + 1] == off[q])
            continue;
        r->b.len = 0;
        if (ldb_lseq_encode(ids + off[q], (size_t)(off[q + 1] - off[q]), &r->b)) {
            rc = ldb_chk_nomem(c);
            break;
        }
        uint8_t kb[10];
        ldb_lseq_key(kb, nd->id, q);
        rc = put(r, r->n->lseq, kb, 10, r->b.data, r->b.len, "lseq");
    }
    free(wins);
    free(ids);
    free(off);
    return rc;
}

static int rebuild_dict(rb *r, const ldb_dbdict *dd, const ldb_dbdict *nd)
{
    chk *c = &r->c;
    ldb_db *db = c->db;
    pair *p = NULL;
    size_t np = 0, ns = c->n_starts ? c->n_starts : 1;
    uint64_t positions = 0, *counts = NULL, truth = c->truth_bad;
    uint8_t *all = malloc(ns), *spanned = calloc(ns, 1);
    ldb_cand *cand = NULL;
    ldb_tctx *ctx = malloc(LDB_TOPK * sizeof *ctx);
    uint16_t *keys = NULL;
    int rc = all && spanned && ctx ? LDB_OK : ldb_chk_nomem(c);
    if (!rc) {
        memset(all, 1, ns);
        rc = ldb_chk_forward(c, dd, all, spanned, &p, &np, &positions);
    }
    if (!rc && c->truth_bad != truth)
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the forward index of '%s' is damaged "
                         "(%llu problems, the first: %.300s): repair rebuilds only what is "
                         "derived from it; restore the database from a copy, or ingest again",
                         db->path, dd->name, (unsigned long long)(c->truth_bad - truth),
                         c->rep->problems);
    if (!rc)
        rc = copy_table(r, dd->fwd, nd->fwd, "fwd", NULL);
    ldb_dstat st = {0};
    for (size_t i = 0; i < c->n_starts && !rc; i++) {
        if (!spanned[i])
            continue;
        uint8_t kb[10], vb[8];
        ldb_be16(kb, nd->id);
        ldb_be64(kb + 2, i);
        memcpy(vb, &c->lens[i], 4);
        memcpy(vb + 4, &c->ords[i], 4);
        rc = put(r, r->n->cover, kb, 10, vb, 8, "cover");
        st.positions += c->lens[i];
        st.ordinary += c->ords[i];
        st.seqs++;
    }
    if (!rc && st.positions != positions)
        rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the forward blocks of '%s' hold %llu "
                         "positions of sequences of %llu: repair cannot tell which sequences "
                         "the dictionary covers; restore the database from a copy", db->path,
                         dd->name, (unsigned long long)positions,
                         (unsigned long long)st.positions);
    if (!rc) {
        st.nnz = np;
        for (size_t i = 0; i < np; i++)
            st.nnz_ordinary += !ldb_chk_is_skip(c, p[i].pos);
        uint8_t kb[2];
        ldb_be16(kb, nd->id);
        rc = put(r, r->n->dstat, kb, 2, &st, sizeof st, "dstat");
    }
    size_t most = 1;
    for (size_t a = 0, b; a < np; a = b) {
        for (b = a + 1; b < np && p[b].lat == p[a].lat;)
            b++;
        most = b - a > most ? b - a : most;
    }
    if (!rc && (!(counts = calloc(dd->d_sae ? dd->d_sae : 1, sizeof *counts)) ||
                !(cand = malloc(most * sizeof *cand)) || !(keys = malloc(most * sizeof *keys))))
        rc = ldb_chk_nomem(c);
    for (size_t a = 0, b; a < np && !rc; a = b) {
        for (b = a + 1; b < np && p[b].lat == p[a].lat;)
            b++;
        rc = rebuild_latent(r, nd, p[a].lat, p, a, b, cand, ctx, keys, &counts[p[a].lat]);
    }
    if (!rc && db->format >= 4)
        rc = rebuild_runs(r, nd, p, np);
    if (!rc) {
        uint8_t kb[2];
        ldb_be16(kb, nd->id);
        rc = put(r, r->n->lcnt, kb, 2, counts, (size_t)dd->d_sae * sizeof *counts, "lcnt");
    }
    if (!rc && ldb_coocsum_has(r->n))
        rc = rebuild_coocsum(r, dd, nd, p, np);
    free(p);
    free(all);
    free(spanned);
    free(ctx);
    free(cand);
    free(keys);
    free(counts);
    return rc;
}

/* Everything into the new environment r->n (its folder exists and is empty). */
static int build(rb *r)
{
    chk *c = &r->c;
    ldb_db *db = c->db, *n = r->n;
    int rc, mrc;
    n->values = db->values;
    n->format = db->format;
    if ((rc = ldb_env_open(n, 0)))
        return rc;
    MDB_envinfo oi, ni; /* room for at least twice the old file's use */
    MDB_stat os;
    if (!mdb_env_info(db->env, &oi) && !mdb_env_stat(db->env, &os) && !mdb_env_info(n->env, &ni)) {
        size_t want = 2 * (oi.me_last_pgno + 1) * (size_t)os.ms_psize + (1u << 30);
        if (ni.me_mapsize < want)
            mdb_env_set_mapsize(n->env, want);
    }
    if ((mrc = ldb_txn_begin(n, 0, &r->w)))
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction in the new database");
    if ((rc = ldb_env_open_dbis(n, r->w, MDB_CREATE)))
        return rc;
    if ((rc = ldb_chk_seqs(c)))
        return rc;
    if (c->truth_bad)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: the sequences or their tokens are "
                           "damaged (%llu problems, the first: %.300s): repair rebuilds only "
                           "what is derived from them; restore the database from a copy",
                           db->path, (unsigned long long)c->truth_bad, c->rep->problems);
    /* the truth and the user's records, as they are */
    MDB_val sk = {4, "skip"}, sv = {db->n_skip * 4, db->skip};
    if ((rc = copy_table(r, db->meta, n->meta, "meta", NULL)) ||
        (r->set_skip && (rc = put(r, n->meta, sk.mv_data, sk.mv_size, sv.mv_data, sv.mv_size,
                                  "meta"))) ||
        (rc = copy_table(r, db->dicts, n->dicts, "dicts", NULL)) ||
        (rc = copy_table(r, db->seqs, n->seqs, "seqs", NULL)) ||
        (rc = copy_table(r, db->sources, n->sources, "sources", NULL)) ||
        (rc = copy_table(r, db->tok, n->tok, "tok", NULL)) ||
        (rc = copy_table(r, db->runs, n->runs, "runs", NULL)) ||
        (rc = copy_table(r, db->labels, n->labels, "labels", keep_label)) ||
        (rc = rebuild_corpus(r)))
        return rc;
    for (int i = 0; i < db->n_dict && !rc; i++) {
        MDB_dbi f, v;
        rc = ldb_db_dict_dbis(n, r->w, db->dict[i].id, 1, &f, &v);
    }
    if (rc || (rc = ldb_db_load_dicts(n, r->w)))
        return rc;
    for (int i = 0; i < db->n_dict && !rc; i++)
        rc = rebuild_dict(r, &db->dict[i], &n->dict[i]);
    if (rc)
        return rc;
    mrc = ldb_txn_commit(r->n, r->w);
    r->w = NULL;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot commit the new database");
    mdb_env_close(n->env); /* synced: LMDB's commit is synchronous */
    n->env = NULL;
    return LDB_OK;
}

/* Puts the new data.mdb in place of the old, which is kept beside it (kept NULL:
 * replaced by one rename, compact's commit). */
static int swap(ldb_db *db, const char *tmp, char *kept, size_t cap)
{
    if (!kept) {
        char *old = ldb_path_join(db->path, "data.mdb"), *nw = ldb_path_join(tmp, "data.mdb");
        char *lock = ldb_path_join(db->path, "lock.mdb");
        int rc = LDB_OK;
        if (!old || !nw || !lock)
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        else if (ldb_sync_path(nw, 0))
            rc = ldb_err_os(ldb_db_err(db), "%s: cannot sync the new data.mdb", db->path);
        else if (rename(nw, old)) /* before it the old database stands, after it the new */
            rc = ldb_err_os(ldb_db_err(db), "%s: cannot move the new data.mdb into place",
                            db->path);
        else {
            unlink(lock); /* it describes the old file: the next open makes one */
            ldb_sync_path(db->path, 1);
        }
        free(old);
        free(nw);
        free(lock);
        return rc;
    }
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime(&now));
    snprintf(kept, cap, "%s/data.mdb.damaged-%s", db->path, stamp);
    char *old = ldb_path_join(db->path, "data.mdb"), *nw = ldb_path_join(tmp, "data.mdb");
    char *olock = ldb_path_join(db->path, "lock.mdb"), *nlock = ldb_path_join(tmp, "lock.mdb");
    int rc = LDB_OK;
    if (!old || !nw || !olock || !nlock)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    else if (rename(old, kept))
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot keep the damaged data.mdb as %s", db->path, kept);
    else if (rename(nw, old)) {
        rc = ldb_err_os(ldb_db_err(db), "%s: cannot move the repaired data.mdb into place", db->path);
        rename(kept, old); /* as it was */
    } else {
        rename(nlock, olock); /* the new file's lock; openers from now on use both */
        ldb_sync_path(db->path, 1);
    }
    free(old);
    free(nw);
    free(olock);
    free(nlock);
    return rc;
}

/* Whether another process holds a reader slot of db's environment. */
static int others_cb(const char *msg, void *ctx)
{
    long pid = 0;
    if (sscanf(msg, " %ld", &pid) == 1 && pid != (long)getpid())
        *(int *)ctx = 1;
    return 0;
}

int ldb_db_workdir(ldb_db *db, const char *tag, const char *doing, char **out)
{
    /* A process that died meanwhile (a kill, LMDB's assertion hook) left its folder:
     * the caller holds the write lock and is alone on the database, so no such folder
     * is in use; each goes, with only the files a build puts in it. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".latentdb.%s-", tag);
    DIR *d = opendir(db->path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        char *old = ldb_path_join(db->path, e->d_name);
        if (old)
            ldb_build_remove(old);
        free(old);
    }
    if (d)
        closedir(d);
    size_t len = strlen(db->path) + strlen(tag) + 24;
    char *tmp = malloc(len);
    *out = NULL;
    if (!tmp)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    snprintf(tmp, len, "%s/.latentdb.%s-XXXXXX", db->path, tag);
    if (!mkdtemp(tmp)) {
        free(tmp);
        return ldb_err_os(ldb_db_err(db), "%s: cannot create a folder to %s in", db->path, doing);
    }
    *out = tmp;
    return LDB_OK;
}

/* Whether another process has the environment open, idle or not: LMDB holds a shared
 * fcntl lock on byte 0 of lock.mdb for as long as an environment is open. It is
 * probed through LMDB's own descriptor of that file (found in /proc/self/fd): closing
 * any other descriptor of it would drop this process's locks. */
static int others_locked(ldb_db *db)
{
    char *lock = ldb_path_join(db->path, "lock.mdb"), *real = lock ? realpath(lock, NULL) : NULL;
    DIR *d = real ? opendir("/proc/self/fd") : NULL;
    int others = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char link[300], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strcmp(target, real))
            continue;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        if (!fcntl(atoi(e->d_name), F_GETLK, &fl) && fl.l_type != F_UNLCK && fl.l_pid != getpid())
            others = 1;
        break;
    }
    if (d)
        closedir(d);
    free(real);
    free(lock);
    return others;
}

int ldb_db_others_open(ldb_db *db)
{
    int others = 0;
    mdb_reader_list(db->env, others_cb, &others);
    return others || others_locked(db);
}

/* The rebuild of the whole store from its truth into a new file that takes the old
 * one's place: kept (repair) keeps the old file there, NULL (set-skip) replaces it.
 * The old environment's write lock is held throughout. */
static int rebuild(ldb_db *db, rb *r, char *kept, size_t cap, const char *doing)
{
    chk *c = &r->c;
    char *tmp = NULL;
    int rc = LDB_OK, mrc;
    if (ldb_sha_init(&c->sha))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    /* the old environment's write lock, held to the end: no writer meanwhile */
    if ((mrc = ldb_txn_begin(db, 0, &c->txn))) {
        rc = ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
        goto out;
    }
    if (ldb_db_others_open(db)) {
        rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: other processes have the database open; "
                         "%s replaces its file, so stop them and run it again", db->path, doing);
        goto out;
    }
    if ((rc = ldb_db_workdir(db, "repair", "rebuild the database", &tmp)))
        goto out;
    if (!(r->n = ldb_db_alloc(tmp))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    rc = build(r);
    if (r->w)
        ldb_txn_abort(r->n, r->w);
    ldb_db_close(r->n);
    if (!rc)
        rc = swap(db, tmp, kept, cap);
out:
    if (tmp)
        ldb_build_remove(tmp);
    if (c->txn)
        ldb_txn_abort(db, c->txn);
    unsigned char md[32];
    ldb_sha_final(&c->sha, md);
    free(c->skip);
    free(c->tok);
    free(c->starts);
    free(c->lens);
    free(c->ords);
    free(c->hash);
    ldb_buf_free(&r->b);
    free(r->pos);
    free(tmp);
    return rc;
}

static int alone(ldb_db *db, const char *doing)
{
    if (db->rdonly)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened read-only", db->path);
    if (ldb_open_refs(db) > 1)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: opened %d times in this process; "
                           "%s replaces its file, so close the other handles first",
                           db->path, ldb_open_refs(db), doing);
    return LDB_OK;
}

int ldb_db_repair(ldb_db *db)
{
    int rc = alone(db, "repair");
    if (rc)
        return rc;
    rb r;
    memset(&r, 0, sizeof r);
    ldb_check_report *rep = calloc(1, sizeof *rep);
    char kept[1200];
    if (!rep)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    /* only a catalog to rebuild? (check runs in a read transaction of its own) */
    if ((rc = ldb_db_check(db, rep)) || !rep->n_store_problems) {
        free(rep);
        return rc ? rc : ldb_catalog_sync(db, 1);
    }
    memset(rep, 0, sizeof *rep);
    r.c.db = db;
    r.c.rep = rep;
    r.c.repair = 1;
    rc = rebuild(db, &r, kept, sizeof kept, "check --repair");
    free(rep);
    if (rc)
        return rc;
    /* the handle, on the new file; the catalog rebuilt from it */
    if ((rc = ldb_db_reopen(db)) || (rc = ldb_catalog_sync(db, 1)))
        return rc;
    snprintf(db->note, sizeof db->note, "the database was rebuilt from its sequences, tokens "
             "and forward blocks; the damaged file is kept as %.300s (delete it when the repaired "
             "database serves you)%s", kept,
             r.dropped_labels ? "; labels that were not one line of UTF-8 were left out" : "");
    return LDB_OK;
}

int ldb_db_rebuild_skip(ldb_db *db, const uint32_t *skip, size_t n)
{
    int rc = alone(db, "set-skip");
    if (rc)
        return rc;
    uint32_t *ns = malloc((n ? n : 1) * sizeof *ns), *keep = db->skip;
    size_t nkeep = db->n_skip;
    ldb_check_report *rep = calloc(1, sizeof *rep);
    if (!ns || !rep) {
        free(ns);
        free(rep);
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    memcpy(ns, skip, n * sizeof *ns);
    qsort(ns, n, sizeof *ns, ldb_cmp_u32);
    rb r;
    memset(&r, 0, sizeof r);
    r.c.db = db;
    r.c.rep = rep;
    r.c.repair = 1;
    r.set_skip = 1;
    db->skip = ns; /* the truth is read with the new set (ldb_db_is_skip) */
    db->n_skip = n;
    rc = rebuild(db, &r, NULL, 0, "set-skip");
    db->skip = keep;
    db->n_skip = nkeep;
    free(ns);
    free(rep);
    if (rc)
        return rc;
    /* the handle, on the new file (its skip set from it); the catalog rebuilt */
    if ((rc = ldb_db_reopen(db)) || (rc = ldb_catalog_sync(db, 1)))
        return rc;
    return LDB_OK;
}
