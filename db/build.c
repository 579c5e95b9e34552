/* build.c — turns one dictionary's buffered batch into its indexes: forward blocks
 * (token-major, ids and values), inverted chunks (latent-major positions), merged
 * summaries and top candidates, cover and dstat, and in format 6 the window units and
 * the latents of each sequence (coocsum.h). Invariant: no block or chunk crosses
 * a run (a maximal range of consecutive positions written by the batch). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "coocsum.h"
#include "invrun.h"
#include "reader.h"
#include "summary.h"
#include "writer_impl.h"
#include "db_impl.h"

static int cmp_seg(const void *a, const void *b)
{
    const wseg *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Positions per forward block, from the batch's mean L0: about 26,000 codes a block
 * (~60 KB), so a compressed block spans many whole overflow pages and the half page
 * lost at its end is ~3% (13,000 codes lost ~7%: 3.92 against 3.82 bytes/nnz). */
static uint32_t choose_block(const wdict *wd)
{
    double l0 = wd->npos ? (double)wd->nnz / (double)wd->npos : 1;
    uint32_t b = 64;
    while (b < 4096 && (double)(b * 2) * (l0 > 1 ? l0 : 1) <= 26000)
        b *= 2;
    return b;
}

static int set_block(ldb_writer *w, wdict *wd)
{
    ldb_db *db = w->db;
    cJSON *o = cJSON_Parse(wd->dd->json);
    if (!o)
        return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: dictionary record is not JSON", db->path);
    uint32_t block = choose_block(wd);
    cJSON_DeleteItemFromObject(o, "block");
    cJSON_AddNumberToObject(o, "block", block);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    uint8_t kb[2];
    ldb_be16(kb, wd->dd->id);
    MDB_val k = {2, kb}, v = {strlen(s), s};
    int mrc = mdb_put(w->txn, db->dicts, &k, &v, 0);
    if (mrc) {
        free(s);
        return ldb_db_mdb_err(db, mrc, "dicts");
    }
    free(wd->dd->json);
    wd->dd->json = s;
    wd->dd->block = block;
    return LDB_OK;
}

typedef struct sum_scratch {
    uint16_t *keys, *tmp;
    uint16_t *hk;
    uint64_t *hc;
    size_t cap;
    ldb_cand heap[LDB_TOPK], old[LDB_TOPK], merged[LDB_TOPK];
    ldb_tctx old_ctx[LDB_TOPK], merged_ctx[LDB_TOPK];
    int src[LDB_TOPK];
} sum_scratch;

/* One thread's part of a build (forward blocks, or a range of latents): its scratch,
 * the transaction it reads the latents' stored summaries in, where its errors go, and
 * where its records go. The writer's part reads and puts in the write transaction as
 * it goes; a helper's part (an import, see forward_and_sort and latent_pass) reads a
 * read-only snapshot of the last commit, which holds the same summaries (the batch
 * changes a latent's only when it reaches it), and appends its records to out for
 * the writer to put afterwards, in order. */
typedef struct bthread {
    ldb_db *db;
    MDB_txn *rtxn;
    ldb_err *e;                /* ldb_db_err(db) for the writer's part */
    ldb_err err;               /* the helper's own */
    ldb_buf *out;              /* NULL: put now */
    ldb_buf a, b, c, out_buf;  /* scratch (a, c: a block; b: postings; c: a summary) */
    uint64_t *pos;             /* one run's positions of a latent */
    size_t cap_pos;
    sum_scratch sc;
    ldb_invrun_part *runs;     /* format 4: its part of each run's record */
    size_t cap_runs;
    uint64_t *pairs;           /* format 6: (segment << 32 | latent) where the latent fires */
    size_t npairs, cap_pairs;  /* in that segment, in latent order */
} bthread;

enum { REC_FWD, REC_INV, REC_LSUM, REC_LTOP };

static size_t rec_klen(int kind)
{
    return kind == REC_FWD ? 8 : kind == REC_INV ? 12 : 6;
}

static int put_rec(ldb_writer *w, const wdict *wd, int kind, const uint8_t *key,
                   const void *val, size_t len)
{
    ldb_db *db = w->db;
    static const char *what[] = {"fwd", "inv", "lsum", "ltop"};
    MDB_dbi dbi = kind == REC_FWD ? wd->dd->fwd : kind == REC_INV ? wd->dd->inv
                : kind == REC_LSUM ? db->lsum : db->ltop;
    MDB_val k = {rec_klen(kind), (void *)key}, v = {len, (void *)val};
    int mrc = mdb_put(w->txn, dbi, &k, &v, kind == REC_INV ? MDB_APPEND : 0);
    if (mrc == MDB_KEYEXIST && kind == REC_INV) /* not after the last key (an attached run) */
        mrc = mdb_put(w->txn, dbi, &k, &v, 0);
    return mrc ? ldb_db_mdb_err(db, mrc, what[kind]) : LDB_OK;
}

/* A record: put now, or kept as kind (1 byte), key (8, 12 or 6 bytes), length
 * (u32), value. */
static int emit(bthread *t, ldb_writer *w, const wdict *wd, int kind, const uint8_t *key,
                const ldb_buf *val)
{
    if (!t->out)
        return put_rec(w, wd, kind, key, val->data, val->len);
    size_t kn = rec_klen(kind);
    uint32_t len = (uint32_t)val->len;
    if (val->len > UINT32_MAX || ldb_buf_reserve(t->out, 5 + kn + val->len))
        return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    uint8_t *p = t->out->data + t->out->len;
    p[0] = (uint8_t)kind;
    memcpy(p + 1, key, kn);
    memcpy(p + 1 + kn, &len, 4);
    memcpy(p + 5 + kn, val->data, val->len);
    t->out->len += 5 + kn + val->len;
    return LDB_OK;
}

/* Puts a helper's records, in the order it made them. */
static int put_kept(ldb_writer *w, const wdict *wd, const ldb_buf *out)
{
    for (size_t o = 0; o < out->len;) {
        int kind = out->data[o];
        size_t kn = rec_klen(kind);
        uint32_t len;
        memcpy(&len, out->data + o + 1 + kn, 4);
        int rc = put_rec(w, wd, kind, out->data + o + 1, out->data + o + 5 + kn, len);
        if (rc)
            return rc;
        o += 5 + kn + len;
    }
    return LDB_OK;
}

/* An LMDB error of a read: the writer's part reports it as the DB does; a helper's
 * in its own error. */
static int read_err(bthread *t, int mrc, const char *what)
{
    if (t->e == ldb_db_err(t->db))
        return ldb_db_mdb_err(t->db, mrc, what);
    return ldb_err_set(t->e, mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND ? LDB_EFORMAT
                                                                              : LDB_EIO,
                       "%s: %s: %s", t->db->path, what, mdb_strerror(mrc));
}

/* One forward block: positions [p0, p0 + n) of the batch buffers, codes from e0. */
static int put_block(bthread *t, ldb_writer *w, const wdict *wd, uint64_t gpos, size_t p0,
                     uint32_t n, size_t e0)
{
    int rc = ldb_fwd_encode(wd->cnt + p0, n, wd->lat + e0, wd->bits + e0, wd->dd->d_sae,
                            w->db->values, w->db->format, &t->a, &t->b, &t->c, t->e);
    if (rc)
        return rc;
    uint8_t kb[8];
    ldb_be64(kb, gpos);
    return emit(t, w, wd, REC_FWD, kb, &t->c);
}

static int build_forward(bthread *t, ldb_writer *w, const wdict *wd)
{
    uint32_t B = wd->dd->block;
    for (size_t s = 0; s < wd->nseg; s++) {
        const wseg *g = &wd->seg[s];
        /* a block may continue into the next segment of the same run */
        size_t p = g->pos_off, e = g->nnz_off;
        uint32_t off = 0;
        while (off < g->len) {
            uint32_t n = g->len - off < B ? g->len - off : B;
            int rc = put_block(t, w, wd, g->start + off, p, n, e);
            if (rc)
                return rc;
            for (uint32_t i = 0; i < n; i++)
                e += wd->cnt[p + i];
            p += n;
            off += n;
        }
    }
    return LDB_OK;
}

/* One code in latent order: its batch position (index into cnt/skipf) and value
 * bits, 8 bytes. The counting sort scatters into d_sae streams and its cost is
 * cache misses, so the record is one stream, as small as it can be: gpos and segment
 * come from per-position tables (pos_of, seg_of; the batch's positions fit L2).
 * With the earlier 16-byte record (gpos, bits, segment) ldb_build_dict took ~15%
 * longer in an import. */
typedef struct lcode {
    uint32_t bp;               /* batch position */
    uint32_t bits;             /* stored value bits */
} lcode;

typedef struct lat_sort {
    lcode *c;                  /* codes grouped by latent, by gpos within one */
    uint64_t *off;             /* d_sae + 1 group offsets */
    uint64_t *fill;            /* d_sae + 1: the sort's next slot per latent */
    uint64_t *pos_of;          /* batch position -> gpos */
    uint32_t *seg_of;          /* batch position -> segment (skip flag, seq, run) */
    size_t cap_c, cap_off, cap_fill, cap_pos_of, cap_seg_of;
    /* format 4: the batch's runs (ascending), and each segment's run among them */
    ldb_invrun_params *runp;
    uint32_t *run_ix;
    size_t nrun, cap_runp, cap_run_ix;
    uint32_t span;             /* the largest span of the runs: helpers split at its multiples */
} lat_sort;

/* Counting sort of the batch's codes by latent; within a latent, by gpos. */
static int sort_by_latent(ldb_db *db, const wdict *wd, lat_sort *ls)
{
    uint32_t ds = wd->dd->d_sae;
    if (wd->npos > UINT32_MAX)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "a batch of %zu positions is too large "
                           "(at most %u)", wd->npos, UINT32_MAX);
    if (ldb_wgrow((void **)&ls->off, &ls->cap_off, (size_t)ds + 1, sizeof *ls->off) ||
        ldb_wgrow((void **)&ls->fill, &ls->cap_fill, (size_t)ds + 1, sizeof *ls->fill) ||
        ldb_wgrow((void **)&ls->c, &ls->cap_c, wd->nnz, sizeof *ls->c) ||
        ldb_wgrow((void **)&ls->pos_of, &ls->cap_pos_of, wd->npos, sizeof *ls->pos_of) ||
        ldb_wgrow((void **)&ls->seg_of, &ls->cap_seg_of, wd->npos, sizeof *ls->seg_of))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory sorting %zu codes", wd->nnz);
    uint64_t *off = ls->off, *fill = ls->fill;
    memset(off, 0, ((size_t)ds + 1) * sizeof *off);
    for (size_t i = 0; i < wd->nnz; i++)
        off[wd->lat[i] + 1]++;
    for (uint32_t j = 0; j < ds; j++)
        off[j + 1] += off[j];
    memcpy(fill, off, ((size_t)ds + 1) * sizeof *fill);
    for (size_t s = 0; s < wd->nseg; s++) {
        const wseg *g = &wd->seg[s];
        size_t e = g->nnz_off;
        for (uint32_t i = 0; i < g->len; i++) {
            uint32_t bp = (uint32_t)(g->pos_off + i);
            ls->pos_of[bp] = g->start + i;
            ls->seg_of[bp] = (uint32_t)s;
            for (uint32_t j = 0; j < wd->cnt[bp]; j++, e++)
                ls->c[fill[wd->lat[e]]++] = (lcode){bp, wd->bits[e]};
        }
    }
    return LDB_OK;
}

/* Inverted chunks of one latent: postings [a, b), one per run, keyed (run start,
 * latent). Keys ascend within a batch, so MDB_APPEND fills pages completely. A chunk
 * costs ~25 bytes of key, node and header, so a rare latent pays that once per batch;
 * batches are sized by codes (millions) to keep it small. Extending older chunks in
 * place instead was tried and cost more: rewriting a grown value in the middle of a
 * full page splits it, and the index ended at ~63% page fill (4.29 against 3.92
 * bytes/nnz on the planted 640 -> 16384 fixture). */
static int put_postings(bthread *t, ldb_writer *w, const wdict *wd, uint32_t latent,
                        const lat_sort *ls, uint64_t a, uint64_t b)
{
    uint8_t kb[12];
    ldb_be32(kb + 8, latent);
    while (a < b) {
        uint64_t e = a + 1;
        uint32_t run_seg = wd->seg[ls->seg_of[ls->c[a].bp]].run;
        while (e < b && wd->seg[ls->seg_of[ls->c[e].bp]].run == run_seg)
            e++;
        if (ldb_wgrow((void **)&t->pos, &t->cap_pos, e - a, sizeof *t->pos))
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        for (uint64_t i = a; i < e; i++)
            t->pos[i - a] = ls->pos_of[ls->c[i].bp];
        t->b.len = 0;
        if (ldb_buf_reserve(&t->b, 11))
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        uint64_t run = wd->seg[run_seg].start;
        t->b.data[t->b.len++] = 0; /* codec: raw (Rice codes do not compress further) */
        t->b.len += ldb_varint_put(t->b.data + t->b.len, t->pos[0] - run);
        if (ldb_posting_encode(t->pos, e - a, &t->b))
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        ldb_be64(kb, run);
        int rc = emit(t, w, wd, REC_INV, kb, &t->b);
        if (rc)
            return rc;
        a = e;
    }
    return LDB_OK;
}

/* Format 4: the batch's runs and their record parameters, from the sorted segments
 * (before the latent pass, which codes each latent into every run's record). */
static int plan_runs(ldb_db *db, const wdict *wd, lat_sort *ls)
{
    if (ldb_wgrow((void **)&ls->run_ix, &ls->cap_run_ix, wd->nseg ? wd->nseg : 1, sizeof *ls->run_ix) ||
        ldb_wgrow((void **)&ls->runp, &ls->cap_runp, wd->nseg ? wd->nseg : 1, sizeof *ls->runp))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    ls->nrun = 0;
    ls->span = 1;
    for (size_t s = 0; s < wd->nseg;) {
        const wseg *g = &wd->seg[s];
        uint64_t n = 0, codes = 0;
        size_t e = s;
        for (; e < wd->nseg && wd->seg[e].run == g->run; e++) {
            n += wd->seg[e].len;
            for (uint32_t i = 0; i < wd->seg[e].len; i++)
                codes += wd->cnt[wd->seg[e].pos_off + i];
            ls->run_ix[e] = (uint32_t)ls->nrun;
        }
        ldb_invrun_params *p = &ls->runp[ls->nrun++];
        ldb_invrun_choose(p, g->start, n, wd->dd->d_sae, codes);
        if (1u << p->s > ls->span)
            ls->span = 1u << p->s;
        s = e;
    }
    return LDB_OK;
}

/* Format 4: starts (j0) or ends (j1) a thread's part of every run's record. */
static int runs_begin(bthread *t, const lat_sort *ls, uint32_t j0)
{
    if (ls->nrun > t->cap_runs) { /* parts own buffers: new ones start empty */
        ldb_invrun_part *nr = realloc(t->runs, ls->nrun * sizeof *nr);
        if (!nr)
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        memset(nr + t->cap_runs, 0, (ls->nrun - t->cap_runs) * sizeof *nr);
        t->runs = nr;
        t->cap_runs = ls->nrun;
    }
    for (size_t r = 0; r < ls->nrun; r++)
        ldb_invrun_part_begin(&t->runs[r], &ls->runp[r], j0);
    return LDB_OK;
}

static int runs_end(bthread *t, const lat_sort *ls, uint32_t j1)
{
    for (size_t r = 0; r < ls->nrun; r++)
        if (ldb_invrun_part_end(&t->runs[r], j1))
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    return LDB_OK;
}

/* Format 4: latent j's codes [a, b) (ascending gpos) into its thread's part of each
 * run they lie in. */
static int add_postings(bthread *t, uint32_t j, const lat_sort *ls, uint64_t a, uint64_t b)
{
    if (ldb_wgrow((void **)&t->pos, &t->cap_pos, b - a, sizeof *t->pos))
        return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    while (a < b) {
        uint32_t r = ls->run_ix[ls->seg_of[ls->c[a].bp]];
        uint64_t e = a;
        for (; e < b && ls->run_ix[ls->seg_of[ls->c[e].bp]] == r; e++)
            t->pos[e - a] = ls->pos_of[ls->c[e].bp];
        if (ldb_invrun_part_add(&t->runs[r], j, t->pos, e - a))
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        a = e;
    }
    return LDB_OK;
}

/* Format 4: each run's record, its parts joined (the writer's, then a helper's). */
static int put_runs(ldb_writer *w, const wdict *wd, const lat_sort *ls, bthread *t0, bthread *t1,
                    int parts)
{
    ldb_db *db = w->db;
    for (size_t r = 0; r < ls->nrun; r++) {
        ldb_invrun_part *pp[2] = {&t0->runs[r], t1->runs ? &t1->runs[r] : NULL}; /* (no helper: none) */
        t0->b.len = 0;
        if (ldb_invrun_join(pp, parts, &t0->b))
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory, or the postings of "
                               "run %llu of '%s' pass 2^32 bits (a smaller batch would fit)",
                               (unsigned long long)ls->runp[r].start, wd->dd->name);
        uint8_t kb[8];
        ldb_be64(kb, ls->runp[r].start);
        MDB_val k = {8, kb}, v = {t0->b.len, t0->b.data};
        int mrc = mdb_put(w->txn, wd->dd->inv, &k, &v, MDB_APPEND);
        if (mrc == MDB_KEYEXIST) /* not after the last key (an attached run) */
            mrc = mdb_put(w->txn, wd->dd->inv, &k, &v, MDB_NOOVERWRITE);
        if (mrc)
            return ldb_db_mdb_err(db, mrc, "inv");
    }
    return LDB_OK;
}

/* Sifts a min-heap (by candidate order: the worst candidate at the root). */
static void heap_down(ldb_cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, s = i;
        if (l < n && ldb_cand_before(&h[s], &h[l]))
            s = l;
        if (l + 1 < n && ldb_cand_before(&h[s], &h[l + 1]))
            s = l + 1;
        if (s == i)
            return;
        ldb_cand t = h[i];
        h[i] = h[s];
        h[s] = t;
        i = s;
    }
}

static int cmp_cand(const void *a, const void *b)
{
    const ldb_cand *x = a, *y = b;
    return ldb_cand_before(x, y) ? -1 : ldb_cand_before(y, x) ? 1 : 0;
}


/* What ldb_build_dict needs per batch, kept by the writer across batches. */
struct wbuild {
    lat_sort ls;
    bthread t[2];              /* the writer's part of the latent pass, and a helper's */
    uint64_t *counts;          /* every latent's count (lcnt) */
    size_t cap_counts;
    /* format 6: every latent's window units (lwin) at each stored w, [w slot][latent];
     * the batch's layout (its segments' bounds, its skipped positions); the latents of
     * each segment (grouped pairs) */
    uint64_t *wins, *ids, *goff;
    size_t cap_wins, cap_ids, cap_goff;
    ldb_layout lay;
    size_t cap_start, cap_skip;
};

void ldb_build_scratch_free(struct wbuild *bs)
{
    if (!bs)
        return;
    free(bs->ls.c);
    free(bs->ls.off);
    free(bs->ls.fill);
    free(bs->ls.pos_of);
    free(bs->ls.seg_of);
    free(bs->ls.runp);
    free(bs->ls.run_ix);
    for (int i = 0; i < 2; i++) {
        bthread *t = &bs->t[i];
        for (size_t r = 0; r < t->cap_runs; r++)
            ldb_invrun_part_free(&t->runs[r]);
        free(t->runs);
        free(t->pos);
        free(t->pairs);
        free(t->sc.keys);
        free(t->sc.tmp);
        free(t->sc.hk);
        free(t->sc.hc);
        ldb_buf_free(&t->a);
        ldb_buf_free(&t->b);
        ldb_buf_free(&t->c);
        ldb_buf_free(&t->out_buf);
    }
    free(bs->counts);
    free(bs->wins);
    free(bs->ids);
    free(bs->goff);
    ldb_layout_free(&bs->lay);
    free(bs);
}

/* The context of a candidate at gpos: the latent's codes at most LDB_TOPCTX
 * positions away in the same sequence, found among its batch codes [a, b)
 * (ascending gpos; a sequence lies in one batch). */
static int cand_context(const wdict *wd, const lat_sort *ls, uint64_t a, uint64_t b,
                        uint64_t gpos, ldb_tctx *t)
{
    const uint64_t *pos_of = ls->pos_of;
    const lcode *c = ls->c;
    uint64_t lo = a, hi = b;
    while (lo < hi) { /* first code at or after gpos */
        uint64_t m = lo + (hi - lo) / 2;
        if (pos_of[c[m].bp] < gpos)
            lo = m + 1;
        else
            hi = m;
    }
    memset(t, 0, sizeof *t);
    if (lo == b || pos_of[c[lo].bp] != gpos)
        return -1;
    const wseg *g = &wd->seg[ls->seg_of[c[lo].bp]];
    t->seq = g->seq;
    t->pos = (uint32_t)(gpos - g->start);
    t->len = g->len;
    for (uint64_t i = lo; i-- > a && pos_of[c[i].bp] + LDB_TOPCTX >= gpos &&
                          pos_of[c[i].bp] >= g->start;) {
        int j = ldb_tctx_bit(-(int)(gpos - pos_of[c[i].bp]));
        t->mask |= (uint16_t)(1u << j);
        t->bits[j] = c[i].bits;
    }
    for (uint64_t i = lo + 1; i < b && pos_of[c[i].bp] <= gpos + LDB_TOPCTX &&
                              pos_of[c[i].bp] < g->start + g->len; i++) {
        int j = ldb_tctx_bit((int)(pos_of[c[i].bp] - gpos));
        t->mask |= (uint16_t)(1u << j);
        t->bits[j] = c[i].bits;
    }
    return 0;
}

/* Format 6: adds the window units of the latent's batch codes [a, b) (their
 * sequences lie in the batch) at each stored w to the batch builder's. */
static int add_window_units(bthread *t, ldb_writer *w, const wdict *wd, const lat_sort *ls,
                            uint32_t latent, uint64_t a, uint64_t b)
{
    struct wbuild *bs = w->bs;
    if (ldb_wgrow((void **)&t->pos, &t->cap_pos, (size_t)(b - a), sizeof *t->pos))
        return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    for (uint64_t i = a; i < b; i++)
        t->pos[i - a] = ls->pos_of[ls->c[i].bp];
    uint64_t u[LDB_NWIN];
    ldb_window_units(t->pos, (size_t)(b - a), &bs->lay, ldb_wins, LDB_NWIN, u);
    for (int s = 0; s < LDB_NWIN; s++)
        bs->wins[(size_t)s * wd->dd->d_sae + latent] += u[s];
    return LDB_OK;
}

/* Merges the batch's ordinary codes of one latent into its summary and top list. */
static int merge_summary(bthread *t, ldb_writer *w, const wdict *wd, uint32_t latent,
                         const lat_sort *ls, uint64_t a, uint64_t b, uint64_t *counts)
{
    ldb_db *db = t->db;
    sum_scratch *sc = &t->sc;
    uint64_t n = 0, nseq = 0, lastseq = UINT64_MAX;
    double sum = 0, sumsq = 0;
    float max = 0;
    int nh = 0, rc;
    if (b - a > sc->cap) {
        size_t cap = (size_t)(b - a);
        uint16_t *k = realloc(sc->keys, cap * sizeof *k), *hk = realloc(sc->hk, cap * sizeof *hk);
        uint16_t *tm = realloc(sc->tmp, cap * sizeof *tm);
        if (k)
            sc->keys = k;
        if (hk)
            sc->hk = hk;
        if (tm)
            sc->tmp = tm;
        uint64_t *hc = realloc(sc->hc, cap * sizeof *hc);
        if (hc)
            sc->hc = hc;
        if (!k || !hk || !hc || !tm)
            return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
        sc->cap = cap;
    }
    uint8_t kb[6];
    ldb_key_latent(kb, wd->dd->id, latent);
    MDB_val k = {6, kb}, v;
    int no = 0, mrc = mdb_get(t->rtxn, db->ltop, &k, &v);
    if (mrc == 0 && (no = ldb_top_decode(v.mv_data, v.mv_size, db->format, db->values, sc->old,
                                         sc->old_ctx, LDB_TOPK)) < 0)
        return ldb_err_set(t->e, LDB_EFORMAT, "%s: top list of latent %u is corrupt",
                           db->path, latent);
    if (mrc && mrc != MDB_NOTFOUND)
        return read_err(t, mrc, "ltop");
    for (uint64_t i = a; i < b; i++) {
        const lcode *lc = &ls->c[i];
        if (wd->skipf[lc->bp])
            continue;
        const wseg *g = &wd->seg[ls->seg_of[lc->bp]];
        float val = ldb_val_float(lc->bits, db->values);
        ldb_cand c = {ls->pos_of[lc->bp], val};
        sc->keys[n++] = ldb_val_bf16key(lc->bits, db->values);
        sum += val;
        sumsq += (double)val * val;
        if (val > max)
            max = val;
        if (g->seq != lastseq) {
            nseq++;
            lastseq = g->seq;
            if (db->format >= 6) {
                if (ldb_wgrow((void **)&t->pairs, &t->cap_pairs, t->npairs + 1, sizeof *t->pairs))
                    return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
                t->pairs[t->npairs++] = (uint64_t)ls->seg_of[lc->bp] << 32 | latent;
            }
        }
        if (no == LDB_TOPK && !ldb_cand_before(&c, &sc->old[LDB_TOPK - 1]))
            continue; /* cannot enter the stored list */
        if (nh < LDB_TOPK) {
            sc->heap[nh++] = c;
            if (nh == LDB_TOPK)
                for (int j = LDB_TOPK / 2; j-- > 0;)
                    heap_down(sc->heap, nh, j);
        } else if (ldb_cand_before(&c, &sc->heap[0])) {
            sc->heap[0] = c;
            heap_down(sc->heap, nh, 0);
        }
    }
    if (n == 0)
        return LDB_OK;
    counts[latent] += n;
    if (db->format >= 6 && (rc = add_window_units(t, w, wd, ls, latent, a, b)))
        return rc;
    uint32_t m = ldb_hist_of_keys(sc->keys, sc->tmp, n, sc->hk, sc->hc);
    ldb_lsum s;
    mrc = mdb_get(t->rtxn, db->lsum, &k, &v);
    if (mrc == 0) {
        if (ldb_lsum_decode(v.mv_data, v.mv_size, db->format, &s))
            return ldb_err_set(t->e, LDB_EFORMAT, "%s: summary of latent %u is corrupt",
                               db->path, latent);
    } else if (mrc == MDB_NOTFOUND) {
        memset(&s, 0, sizeof s);
    } else {
        return read_err(t, mrc, "lsum");
    }
    ldb_lsum add = {.count = n, .nseq = nseq, .sum = sum, .sumsq = sumsq, .max = max,
                    .nh = m, .hk = sc->hk, .hc = sc->hc};
    t->c.len = 0;
    int bad = ldb_lsum_add(&s, &add) || ldb_lsum_encode(&s, db->format, &t->c);
    ldb_lsum_free(&s);
    if (bad)
        return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    rc = emit(t, w, wd, REC_LSUM, kb, &t->c);
    if (rc)
        return rc;
    /* top candidates: merge and write only when they change */
    if (nh == 0)
        return LDB_OK; /* nothing new makes the list */
    qsort(sc->heap, (size_t)nh, sizeof *sc->heap, cmp_cand);
    int nm = ldb_top_merge(sc->old, no, sc->heap, nh, sc->merged, LDB_TOPK, sc->src);
    for (int i = 0; i < nm; i++)
        if (sc->src[i] >= 0)
            sc->merged_ctx[i] = sc->old_ctx[sc->src[i]];
        else if (cand_context(wd, ls, a, b, sc->merged[i].gpos, &sc->merged_ctx[i]))
            return ldb_err_set(t->e, LDB_EINVAL, "latent %u: a new top candidate at %llu "
                               "is not among the batch's codes", latent,
                               (unsigned long long)sc->merged[i].gpos);
    t->c.len = 0;
    if (ldb_top_encode(sc->merged, sc->merged_ctx, nm, db->format, db->values, &t->c))
        return ldb_err_set(t->e, LDB_ENOMEM, "out of memory");
    return emit(t, w, wd, REC_LTOP, kb, &t->c);
}

static int put_cover(ldb_writer *w, wdict *wd, ldb_dstat *st)
{
    ldb_db *db = w->db;
    for (size_t s = 0; s < wd->nseg; s++) {
        const wseg *g = &wd->seg[s];
        uint32_t ord = 0;
        for (uint32_t i = 0; i < g->len; i++)
            ord += !wd->skipf[g->pos_off + i];
        uint8_t kb[10], vb[8];
        ldb_be16(kb, wd->dd->id);
        ldb_be64(kb + 2, g->seq);
        memcpy(vb, &g->len, 4);
        memcpy(vb + 4, &ord, 4);
        MDB_val k = {10, kb}, v = {8, vb};
        int mrc = mdb_put(w->txn, db->cover, &k, &v, MDB_NOOVERWRITE);
        if (mrc == MDB_KEYEXIST)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: dictionary '%s' already has codes for "
                               "sequence %llu", db->path, wd->dd->name,
                               (unsigned long long)g->seq);
        if (mrc)
            return ldb_db_mdb_err(db, mrc, "cover");
        st->positions += g->len;
        st->ordinary += ord;
        st->seqs++;
    }
    return LDB_OK;
}

/* The latents [j0, j1) of a batch: their inverted chunks, summaries and top lists. */
static int latents(bthread *t, ldb_writer *w, const wdict *wd, uint32_t j0, uint32_t j1,
                   uint64_t *counts)
{
    const lat_sort *ls = &w->bs->ls;
    int v4 = t->db->format >= 4;
    int rc = v4 ? runs_begin(t, ls, j0) : LDB_OK;
    for (uint32_t j = j0; j < j1 && !rc; j++) {
        if (ls->off[j] == ls->off[j + 1])
            continue;
        rc = v4 ? add_postings(t, j, ls, ls->off[j], ls->off[j + 1])
                : put_postings(t, w, wd, j, ls, ls->off[j], ls->off[j + 1]);
        if (!rc)
            rc = merge_summary(t, w, wd, j, ls, ls->off[j], ls->off[j + 1], counts);
    }
    return !rc && v4 ? runs_end(t, ls, j1) : rc;
}

typedef struct helper_job {
    bthread *t;
    ldb_writer *w;
    const wdict *wd;
    uint32_t j0, j1;           /* latents [j0, j1) ... */
    uint64_t *counts;          /* ... or, when NULL, the forward blocks */
    int rc;
} helper_job;

static void *helper_main(void *arg)
{
    helper_job *h = arg;
    h->rc = h->counts ? latents(h->t, h->w, h->wd, h->j0, h->j1, h->counts)
                      : build_forward(h->t, h->w, h->wd);
    return NULL;
}

/* Most of a batch's build is CPU work on the batch alone: the forward blocks, the
 * sort by latent, and the pass over latents. With w->threads > 1 (an import, where
 * nothing else wants the second core) and enough codes, a helper thread does part of
 * it: the forward blocks while the writer sorts, then the latents holding the last
 * LDB_HELPER_SHARE of the codes while the writer does the first ones. The helper
 * keeps its records and the writer puts them where it would have put its own, so the
 * DB receives the same puts in the same order as with one thread. */
#define LDB_HELPER_SHARE 0.55
#define LDB_HELPER_MIN_CODES 65536

static void writer_part(bthread *t, ldb_writer *w)
{
    t->db = w->db, t->rtxn = w->txn, t->e = ldb_db_err(w->db), t->out = NULL;
}

static void helper_part(bthread *t, ldb_writer *w, MDB_txn *snap)
{
    t->db = w->db, t->rtxn = snap, t->e = &t->err, t->out = &t->out_buf;
    t->out_buf.len = 0;
    ldb_err_clear(&t->err);
}

/* The helper's result: its error as the writer's, or its records put. */
static int helper_done(ldb_writer *w, const wdict *wd, const bthread *t, int rc, int hrc)
{
    if (!rc && hrc)
        rc = ldb_err_set(ldb_db_err(w->db), hrc, "%s", t->err.msg);
    return rc ? rc : put_kept(w, wd, t->out);
}

static int forward_and_sort(ldb_writer *w, const wdict *wd, lat_sort *ls)
{
    ldb_db *db = w->db;
    bthread *t0 = &w->bs->t[0], *t1 = &w->bs->t[1];
    writer_part(t0, w);
    if (w->threads > 1 && wd->nnz >= LDB_HELPER_MIN_CODES) {
        helper_job f = {t1, w, wd, 0, 0, NULL, LDB_OK}; /* the forward blocks */
        pthread_t th;
        helper_part(t1, w, NULL); /* they read nothing stored */
        if (pthread_create(&th, NULL, helper_main, &f) == 0) {
            int rc = sort_by_latent(db, wd, ls);
            pthread_join(th, NULL);
            return helper_done(w, wd, t1, rc, f.rc);
        }
    }
    int rc = build_forward(t0, w, wd);
    return rc ? rc : sort_by_latent(db, wd, ls);
}

static int latent_pass(ldb_writer *w, const wdict *wd, uint64_t *counts)
{
    ldb_db *db = w->db;
    const lat_sort *ls = &w->bs->ls;
    uint32_t ds = wd->dd->d_sae, mid = ds;
    bthread *t0 = &w->bs->t[0], *t1 = &w->bs->t[1];
    writer_part(t0, w);
    MDB_txn *snap = NULL;
    pthread_t th;
    helper_job h = {t1, w, wd, 0, ds, counts, LDB_OK};
    int helper = 0;
    if (w->threads > 1 && wd->nnz >= LDB_HELPER_MIN_CODES &&
        ldb_txn_begin(db, MDB_RDONLY, &snap) == MDB_SUCCESS) {
        uint64_t from = (uint64_t)((1 - LDB_HELPER_SHARE) * (double)ls->off[ds]);
        while (mid > 0 && ls->off[mid - 1] >= from) /* the first latent of the helper's */
            mid--;
        if (db->format >= 4) /* run records join their parts at a span */
            mid &= ~(ls->span - 1);
        helper_part(t1, w, snap);
        h.j0 = mid;
        if (mid < ds && pthread_create(&th, NULL, helper_main, &h) == 0)
            helper = 1;
        else
            mid = ds;
    }
    int rc = latents(t0, w, wd, 0, mid, counts);
    if (helper) {
        pthread_join(th, NULL);
        rc = helper_done(w, wd, t1, rc, h.rc);
    }
    if (snap)
        ldb_txn_abort(db, snap);
    if (!rc && db->format >= 4)
        rc = put_runs(w, wd, ls, t0, t1, helper ? 2 : 1);
    return rc;
}

/* Format 6, before the latent pass: the batch's layout for window units (its
 * segments' bounds, where a gap between runs is a "sequence" where nothing fires, and
 * its skipped positions, ascending), the stored units to add to, no pairs yet. */
static int coocsum_begin(ldb_writer *w, const wdict *wd)
{
    ldb_db *db = w->db;
    struct wbuild *bs = w->bs;
    ldb_layout *L = &bs->lay;
    size_t ds = wd->dd->d_sae;
    if (ldb_wgrow((void **)&L->start, &bs->cap_start, 2 * wd->nseg + 2, sizeof *L->start) ||
        ldb_wgrow((void **)&L->skip, &bs->cap_skip, wd->npos + 1, sizeof *L->skip) ||
        ldb_wgrow((void **)&bs->wins, &bs->cap_wins, LDB_NWIN * ds, sizeof *bs->wins))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    size_t n = 0;
    L->nskip = 0;
    for (size_t s = 0; s < wd->nseg; s++) { /* sorted by start */
        const wseg *g = &wd->seg[s];
        if (!n || L->start[n - 1] != g->start)
            L->start[n++] = g->start;
        L->start[n++] = g->start + g->len;
        for (uint32_t i = 0; i < g->len; i++)
            if (wd->skipf[g->pos_off + i])
                L->skip[L->nskip++] = g->start + i;
    }
    if (!n)
        L->start[n++] = 0;
    L->nseq = n - 1;
    for (int s = 0; s < LDB_NWIN; s++) {
        const uint8_t *rec;
        int rc = ldb_lwin_get(db, w->txn, wd->dd, ldb_wins[s], &rec);
        if (rc == LDB_ENOTFOUND) {
            memset(bs->wins + s * ds, 0, ds * sizeof *bs->wins);
            continue;
        }
        if (rc)
            return rc;
        memcpy(bs->wins + s * ds, rec, ds * sizeof *bs->wins);
    }
    bs->t[0].npairs = bs->t[1].npairs = 0;
    return LDB_OK;
}

/* Format 6, after the latent pass: the units at each w, and each segment's latents
 * (the writer's pairs hold the first latents, the helper's the rest) as its
 * sequence's `lseq` record. */
static int coocsum_put(ldb_writer *w, const wdict *wd)
{
    ldb_db *db = w->db;
    struct wbuild *bs = w->bs;
    size_t ds = wd->dd->d_sae;
    int mrc = 0;
    for (int s = 0; s < LDB_NWIN && !mrc; s++) {
        uint8_t kb[4];
        ldb_lwin_key(kb, wd->dd->id, (uint16_t)ldb_wins[s]);
        MDB_val k = {4, kb}, v = {ds * sizeof *bs->wins, bs->wins + s * ds};
        mrc = mdb_put(w->txn, db->lwin, &k, &v, 0);
    }
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "lwin");
    const uint64_t *lists[2] = {bs->t[0].pairs, bs->t[1].pairs};
    size_t nl[2] = {bs->t[0].npairs, bs->t[1].npairs};
    if (ldb_wgrow((void **)&bs->ids, &bs->cap_ids, nl[0] + nl[1] + 1, sizeof *bs->ids) ||
        ldb_wgrow((void **)&bs->goff, &bs->cap_goff, wd->nseg + 1, sizeof *bs->goff))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    ldb_group_pairs(lists, nl, 2, wd->nseg, bs->ids, bs->goff);
    ldb_buf *out = &bs->t[0].c;
    for (size_t g = 0; g < wd->nseg; g++) {
        uint64_t a = bs->goff[g], b = bs->goff[g + 1];
        if (a == b)
            continue; /* nothing fires at its ordinary positions */
        out->len = 0;
        if (ldb_lseq_encode(bs->ids + a, (size_t)(b - a), out))
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        uint8_t kb[10];
        ldb_lseq_key(kb, wd->dd->id, wd->seg[g].seq);
        MDB_val k = {10, kb}, v = {out->len, out->data};
        if ((mrc = mdb_put(w->txn, db->lseq, &k, &v, 0)))
            return ldb_db_mdb_err(db, mrc, "lseq");
    }
    return LDB_OK;
}

int ldb_build_dict(ldb_writer *w, wdict *wd)
{
    ldb_db *db = w->db;
    ldb_dstat st;
    int rc;
    if (!wd->dd->block && (rc = set_block(w, wd)))
        return rc;
    if (!w->bs && !(w->bs = calloc(1, sizeof *w->bs)))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    lat_sort *ls = &w->bs->ls;
    qsort(wd->seg, wd->nseg, sizeof *wd->seg, cmp_seg);
    for (size_t s = 0; s < wd->nseg; s++) /* runs: consecutive positions */
        wd->seg[s].run = s && wd->seg[s - 1].start + wd->seg[s - 1].len == wd->seg[s].start
                             ? wd->seg[s - 1].run : (uint32_t)s;
    if ((rc = forward_and_sort(w, wd, ls)) || (db->format >= 4 && (rc = plan_runs(db, wd, ls))))
        return rc;
    uint32_t ds = wd->dd->d_sae;
    if (ldb_wgrow((void **)&w->bs->counts, &w->bs->cap_counts, ds, sizeof *w->bs->counts))
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    uint64_t *counts = w->bs->counts;
    if ((rc = ldb_lsum_counts(db, w->txn, wd->dd, counts)))
        return rc;
    if (db->format >= 6 && (rc = coocsum_begin(w, wd)))
        return rc;
    rc = latent_pass(w, wd, counts);
    if (!rc && db->format >= 6)
        rc = coocsum_put(w, wd);
    if (!rc) { /* every latent's count in one record, for density and search */
        uint8_t ck[2];
        ldb_be16(ck, wd->dd->id);
        MDB_val k = {2, ck}, v = {(size_t)ds * sizeof *counts, counts};
        int mrc = mdb_put(w->txn, db->lcnt, &k, &v, 0);
        if (mrc)
            rc = ldb_db_mdb_err(db, mrc, "lcnt");
    }
    if (rc || (rc = ldb_db_get_dstat(db, w->txn, wd->dd->id, &st)) ||
        (rc = put_cover(w, wd, &st)))
        return rc;
    st.nnz += wd->nnz;
    for (size_t s = 0; s < wd->nseg; s++) {
        const wseg *g = &wd->seg[s];
        for (uint32_t i = 0; i < g->len; i++)
            if (!wd->skipf[g->pos_off + i])
                st.nnz_ordinary += wd->cnt[g->pos_off + i];
    }
    uint8_t kb[2];
    ldb_be16(kb, wd->dd->id);
    MDB_val k = {2, kb}, v = {sizeof st, &st};
    int mrc = mdb_put(w->txn, db->dstat, &k, &v, 0);
    if (mrc)
        rc = ldb_db_mdb_err(db, mrc, "dstat");
    return rc;
}
