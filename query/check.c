/* check.c — `latentdb check`: decodes every block (zstd checksums), verifies that
 * the forward and inverted indexes hold the same codes and that every summary
 * matches the codes, and computes the digest: SHA-256 over the logical records
 * (sequences, tokens, codes, summaries) in a canonical order that does not depend
 * on batch boundaries or physical layout (the codes an encoder produces can: a
 * GEMM's last bits depend on its shape, which is why a resumed ingest cuts the
 * batches an uninterrupted one would). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sha256.h"
#include "../db/reader.h"
#include "../db/writer.h"

typedef struct chk {
    ldb_db *db;
    MDB_txn *txn;
    ldb_sha sha;
    ldb_check_report *rep;
    uint8_t *skip;             /* bit per gpos: a skipped position */
    uint64_t n_pos;
    uint64_t *starts;          /* every sequence's first position, ascending */
    size_t n_starts, cap_starts;
    ldb_fpos fp;               /* forward reads of check_context */
} chk;

static void problem(chk *c, const char *fmt, const char *a, uint64_t x, uint64_t y)
{
    if (c->rep->n_problems++ < 20) {
        size_t o = strlen(c->rep->problems);
        snprintf(c->rep->problems + o, sizeof c->rep->problems - o, fmt, a, (unsigned long long)x,
                 (unsigned long long)y);
        o = strlen(c->rep->problems);
        if (o + 1 < sizeof c->rep->problems) {
            c->rep->problems[o] = '\n';
            c->rep->problems[o + 1] = 0;
        }
    }
}

static int check_seqs(chk *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint32_t *tok = NULL;
    size_t cap = 0;
    uint64_t expect_start = 0;
    int rc = LDB_OK, mrc = mdb_cursor_open(c->txn, c->db->seqs, &cur);
    if (mrc)
        return ldb_db_mdb_err(c->db, mrc, "seqs");
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        ldb_seqrec s;
        if (v.mv_size != 40) {
            problem(c, "%s: sequence record %llu of %llu bytes", "seqs", ldb_rd_be64(k.mv_data),
                    v.mv_size);
            continue;
        }
        ldb_seqrec_decode(ldb_rd_be64(k.mv_data), v.mv_data, &s);
        if (s.start != expect_start)
            problem(c, "%s: sequence %llu starts at %llu", "seqs", s.seq, s.start);
        expect_start = s.start + s.len;
        if (s.len > cap) {
            uint32_t *t = realloc(tok, s.len * sizeof *t);
            if (!t) {
                rc = ldb_err_set(&c->db->err, LDB_ENOMEM, "out of memory");
                break;
            }
            tok = t;
            cap = s.len;
        }
        if ((rc = ldb_seq_tokens_at(c->db, c->txn, s.start, 0, s.len, tok)))
            break;
        uint8_t h[16];
        ldb_tokens_hash(tok, s.len, h);
        if (memcmp(h, s.hash, 16))
            problem(c, "%s: sequence %llu tokens do not match their hash (%llu)", "tok", s.seq, 0);
        if (s.start + s.len > c->n_pos) { /* grow the skip bitmap */
            uint64_t n = (s.start + s.len + 7) / 8, old = (c->n_pos + 7) / 8;
            uint8_t *m = realloc(c->skip, n ? n : 1);
            if (!m) {
                rc = ldb_err_set(&c->db->err, LDB_ENOMEM, "out of memory");
                break;
            }
            memset(m + old, 0, n - old);
            c->skip = m;
            c->n_pos = s.start + s.len;
        }
        for (uint32_t i = 0; i < s.len; i++)
            if (ldb_db_is_skip(c->db, tok[i]))
                c->skip[(s.start + i) / 8] |= (uint8_t)(1u << ((s.start + i) % 8));
        if (c->n_starts == c->cap_starts) {
            size_t nc = c->cap_starts ? 2 * c->cap_starts : 1024;
            uint64_t *st = realloc(c->starts, nc * sizeof *st);
            if (!st) {
                rc = ldb_err_set(&c->db->err, LDB_ENOMEM, "out of memory");
                break;
            }
            c->starts = st;
            c->cap_starts = nc;
        }
        c->starts[c->n_starts++] = s.start;
        uint64_t rec[3] = {s.seq, s.start, s.len};
        ldb_sha_update(&c->sha, rec, sizeof rec);
        ldb_sha_update(&c->sha, tok, (size_t)s.len * 4);
        c->rep->n_seq++;
        c->rep->n_tokens += s.len;
    }
    mdb_cursor_close(cur);
    free(tok);
    return rc;
}

typedef struct pair {
    uint32_t lat;
    uint32_t bits;             /* the stored value */
    uint64_t pos;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->lat != y->lat)
        return x->lat < y->lat ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Forward blocks in key order: digest them and collect (latent, gpos) pairs. */
static int scan_forward(chk *c, const ldb_dbdict *dd, pair **out, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    ldb_fblock fb;
    pair *p = NULL;
    size_t np = 0, cap = 0;
    memset(&fb, 0, sizeof fb);
    int rc = LDB_OK, mrc = mdb_cursor_open(c->txn, dd->fwd, &cur);
    if (mrc)
        return ldb_db_mdb_err(c->db, mrc, "fwd");
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t start = ldb_rd_be64(k.mv_data);
        if (!ldb_fwd_crc_ok(v.mv_data, v.mv_size)) {
            problem(c, "%s: forward block at %llu fails its CRC-32 check (%llu)", dd->name, start,
                    0);
            continue;
        }
        if (ldb_fwd_decode(c->db, start, v.mv_data, v.mv_size, 1, &fb)) {
            problem(c, "%s: forward block at %llu does not decode (%llu)", dd->name, start, 0);
            continue;
        }
        c->rep->n_blocks++;
        for (uint32_t i = 0; i < fb.n; i++) {
            uint64_t g = start + i, cnt = fb.off[i + 1] - fb.off[i];
            ldb_sha_update(&c->sha, &g, 8);
            ldb_sha_update(&c->sha, &cnt, 8);
            ldb_sha_update(&c->sha, fb.lat + fb.off[i], cnt * 4);
            ldb_sha_update(&c->sha, fb.bits + fb.off[i], cnt * 4);
        }
        if (np + fb.off[fb.n] > cap) {
            size_t nc = cap ? cap : 65536;
            while (nc < np + fb.off[fb.n])
                nc *= 2;
            pair *q = realloc(p, nc * sizeof *q);
            if (!q) {
                rc = ldb_err_set(&c->db->err, LDB_ENOMEM, "out of memory");
                break;
            }
            p = q;
            cap = nc;
        }
        for (uint32_t i = 0; i < fb.n; i++)
            for (uint64_t e = fb.off[i]; e < fb.off[i + 1]; e++) {
                p[np].lat = fb.lat[e];
                p[np].bits = fb.bits[e];
                p[np++].pos = start + i;
            }
    }
    mdb_cursor_close(cur);
    ldb_fblock_free(&fb);
    if (rc) {
        free(p);
        return rc;
    }
    if (np)
        qsort(p, np, sizeof *p, cmp_pair);
    *out = p;
    *n = np;
    return LDB_OK;
}

static int is_skip(const chk *c, uint64_t pos)
{
    return pos < c->n_pos && (c->skip[pos / 8] >> (pos % 8) & 1);
}

/* The inverted index must hold exactly the forward index's pairs. Counts each
 * latent's ordinary postings into ord[] for the summary check (UINT64_MAX when its
 * postings do not decode), so postings are read once. */
static int compare_inverted(chk *c, const ldb_dbdict *dd, const pair *p, size_t np, uint64_t *ord)
{
    size_t at = 0;
    for (uint32_t j = 0; j < dd->d_sae; j++) {
        uint64_t *pos;
        size_t n;
        int rc = ldb_inv_read(c->db, c->txn, dd, j, &pos, &n);
        ord[j] = UINT64_MAX;
        if (rc) {
            problem(c, "%s: postings of latent %llu do not decode (%llu)", dd->name, j, 0);
            ldb_err_clear(&c->db->err);
            while (at < np && p[at].lat == j)
                at++;
            continue;
        }
        ord[j] = 0;
        for (size_t i = 0; i < n; i++)
            ord[j] += !is_skip(c, pos[i]);
        size_t i = 0;
        while (i < n && at < np && p[at].lat == j && p[at].pos == pos[i])
            i++, at++;
        if (i != n || (at < np && p[at].lat == j)) {
            problem(c, "%s: latent %llu: inverted and forward indexes differ near position %llu",
                    dd->name, j, i < n ? pos[i] : at < np ? p[at].pos : 0);
            while (at < np && p[at].lat == j)
                at++;
        }
        free(pos);
    }
    return LDB_OK;
}

/* A top candidate's stored context against the forward index. */
static int check_context(chk *c, const ldb_dbdict *dd, uint32_t latent, const ldb_cand *t,
                         const ldb_tctx *tc)
{
    ldb_seqrec s;
    int rc = ldb_db_seq_at(c->db, c->txn, t->gpos, &s);
    if (!rc && (s.seq != tc->seq || s.len != tc->len || t->gpos - s.start != tc->pos)) {
        problem(c, "%s: latent %llu: its top example at position %llu records another sequence",
                dd->name, latent, t->gpos);
        return LDB_OK;
    }
    for (int off = -LDB_TOPCTX; off <= LDB_TOPCTX && !rc; off++) {
        uint64_t p = t->gpos + (uint64_t)(int64_t)off;
        if (off == 0 || p < s.start || p >= s.start + s.len)
            continue;
        float v, w = tc->mask >> ldb_tctx_bit(off) & 1
                         ? ldb_val_float(tc->bits[ldb_tctx_bit(off)], c->db->values) : 0;
        if (!(rc = ldb_fwd_value(c->db, c->txn, dd, p, latent, &c->fp, &v)) && v != w) {
            problem(c, "%s: latent %llu: the context stored with its top example at position "
                    "%llu differs from the forward index", dd->name, latent, t->gpos);
            break;
        }
    }
    return rc;
}


static uint64_t mix64(uint64_t x) /* splitmix64's finaliser: a multiset hash's term */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int close_to(double a, double b)
{
    double d = a > b ? a - b : b - a, m = b > 0 ? b : -b;
    return d <= 1e-9 * (m > 1 ? m : 1);
}

/* One latent's summary and top list against its codes in the forward index
 * (p[a..b), ascending positions): count, sequences, sum, sum of squares, max, the
 * exact histogram (as a multiset hash) and the top list (each candidate is a code
 * of this latent with its value, and no code left out comes before the last). */
static void check_stats(chk *c, const ldb_dbdict *dd, uint32_t j, const pair *p, size_t a,
                        size_t b, const ldb_lsum *s, const ldb_cand *top, int nt)
{
    uint64_t n = 0, nseq = 0, hh = 0, hs = 0, lastseq = UINT64_MAX, before = 0;
    double sum = 0, sumsq = 0;
    float max = 0;
    size_t si = 0, lo = 0, hi = c->n_starts;
    if (a < b) { /* the sequence of the first code, then walk */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (c->starts[mid] <= p[a].pos)
                lo = mid;
            else
                hi = mid;
        }
        si = lo;
    }
    for (size_t i = a; i < b; i++) {
        if (is_skip(c, p[i].pos))
            continue;
        while (si + 1 < c->n_starts && c->starts[si + 1] <= p[i].pos)
            si++;
        if (si != lastseq) {
            nseq++;
            lastseq = si;
        }
        float v = ldb_val_float(p[i].bits, c->db->values);
        n++;
        sum += v;
        sumsq += (double)v * v;
        if (v > max)
            max = v;
        hh += mix64(ldb_val_bf16key(p[i].bits, c->db->values));
        ldb_cand x = {p[i].pos, v};
        before += nt > 0 && ldb_cand_before(&x, &top[nt - 1]);
    }
    uint64_t hn = 0;
    for (uint32_t i = 0; i < s->nh; i++) {
        hs += s->hc[i] * mix64(s->hk[i]);
        hn += s->hc[i];
    }
    if (n != s->count || nseq != s->nseq)
        problem(c, "%s: latent %llu: its summary says %llu firing positions in its sequences; "
                "the forward index differs", dd->name, j, s->count);
    else if (max != s->max || !close_to(s->sum, sum) || !close_to(s->sumsq, sumsq))
        problem(c, "%s: latent %llu: the max, sum or sum of squares of its summary differ from "
                "the forward index (%llu codes)", dd->name, j, n);
    else if (hh != hs || hn != n)
        problem(c, "%s: latent %llu: its value histogram differs from the forward index "
                "(%llu codes)", dd->name, j, n);
    if (nt != (int)(n < LDB_TOPK ? n : LDB_TOPK) || (nt && before != (uint64_t)nt - 1)) {
        problem(c, "%s: latent %llu: its top list (%llu candidates) is not the top of the "
                "forward index", dd->name, j, (uint64_t)nt);
        return;
    }
    for (int t = 0; t < nt; t++) { /* each candidate is one of the latent's codes */
        size_t l = a, h = b;
        while (l < h) {
            size_t m = (l + h) / 2;
            if (p[m].pos < top[t].gpos)
                l = m + 1;
            else
                h = m;
        }
        if (l == b || p[l].pos != top[t].gpos ||
            ldb_val_float(p[l].bits, c->db->values) != top[t].value || is_skip(c, p[l].pos)) {
            problem(c, "%s: latent %llu: its top candidate at position %llu is not in the "
                    "forward index", dd->name, j, top[t].gpos);
            return;
        }
    }
}

/* Summaries: digest them, recount each latent's firing ordinary positions, check
 * its statistics and top list against the forward index, and compare the contexts
 * of its best top candidates with it. */
static int check_summaries(chk *c, const ldb_dbdict *dd, const uint64_t *ord, const pair *p,
                           size_t np)
{
    size_t a = 0;
    uint64_t *cnt = malloc((size_t)dd->d_sae * sizeof *cnt);
    if (!cnt)
        return ldb_err_set(&c->db->err, LDB_ENOMEM, "out of memory");
    int crc = ldb_lsum_counts(c->db, c->txn, dd, cnt);
    if (crc) {
        free(cnt);
        return crc;
    }
    for (uint32_t j = 0; j < dd->d_sae; j++) {
        ldb_lsum s;
        ldb_cand top[LDB_TOPK];
        ldb_tctx ctx[LDB_TOPK];
        size_t b = a;
        while (b < np && p[b].lat == j)
            b++;
        int rc = ldb_lsum_get(c->db, c->txn, dd->id, j, &s);
        int nt = rc ? rc : ldb_ltop_get(c->db, c->txn, dd->id, j, top, ctx, LDB_TOPK);
        if (rc == LDB_EFORMAT || nt == LDB_EFORMAT) { /* a record that does not decode */
            char msg[1100];
            snprintf(msg, sizeof msg, "%s: latent %u: %s", dd->name, j, ldb_db_errmsg(c->db));
            problem(c, "%s", msg, 0, 0);
            ldb_err_clear(&c->db->err);
            ldb_lsum_free(&s);
            a = b;
            continue;
        }
        if (rc || nt < 0) {
            ldb_lsum_free(&s);
            free(cnt);
            return rc ? rc : nt;
        }
        uint64_t rec[2] = {s.count, s.nseq};
        ldb_sha_update(&c->sha, &j, 4);
        ldb_sha_update(&c->sha, rec, sizeof rec);
        ldb_sha_update(&c->sha, &s.max, 4);
        ldb_sha_update(&c->sha, s.hk, s.nh * sizeof *s.hk);
        ldb_sha_update(&c->sha, s.hc, s.nh * sizeof *s.hc);
        for (int i = 0; i < nt; i++) {
            ldb_sha_update(&c->sha, &top[i].gpos, 8);
            ldb_sha_update(&c->sha, &top[i].value, 4);
            ldb_sha_update(&c->sha, &ctx[i].mask, 2);
            ldb_sha_update(&c->sha, ctx[i].bits, sizeof ctx[i].bits);
            uint64_t where[3] = {ctx[i].seq, ctx[i].pos, ctx[i].len};
            ldb_sha_update(&c->sha, where, sizeof where);
        }
        check_stats(c, dd, j, p, a, b, &s, top, nt);
        a = b;
        for (int i = 0; i < nt && i < 10 && !rc; i++) /* stored contexts = the forward index */
            rc = check_context(c, dd, j, &top[i], &ctx[i]);
        if (rc) {
            ldb_lsum_free(&s);
            free(cnt);
            return rc;
        }
        if (cnt[j] != s.count)
            problem(c, "%s: latent %llu: the counts record says %llu firing positions, its "
                    "summary differs", dd->name, j, cnt[j]);
        if (s.count && ord[j] != UINT64_MAX && ord[j] != s.count) /* recounted from postings */
            problem(c, "%s: latent %llu: summary counts %llu firing positions", dd->name, j,
                    s.count);
        ldb_lsum_free(&s);
    }
    free(cnt);
    return LDB_OK;
}

int ldb_db_check(ldb_db *db, ldb_check_report *rep)
{
    chk c = {db, NULL, {0}, rep, NULL, 0, NULL, 0, 0, {0}};
    memset(rep, 0, sizeof *rep);
    int rc, mrc = ldb_txn_begin(db, MDB_RDONLY, &c.txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a read transaction");
    if (ldb_sha_init(&c.sha)) {
        mdb_txn_abort(c.txn);
        return ldb_err_set(&db->err, LDB_ENOMEM, "out of memory");
    }
    rc = check_seqs(&c);
    for (int i = 0; i < db->n_dict && !rc; i++) {
        const ldb_dbdict *dd = &db->dict[i];
        pair *p = NULL;
        size_t np = 0;
        ldb_sha_update(&c.sha, dd->name, strlen(dd->name) + 1);
        if ((rc = scan_forward(&c, dd, &p, &np)))
            break;
        rep->nnz += np;
        uint64_t *ord = malloc((size_t)dd->d_sae * sizeof *ord);
        rc = ord ? compare_inverted(&c, dd, p, np, ord)
                 : ldb_err_set(&db->err, LDB_ENOMEM, "out of memory");
        c.fp.n = 0; /* its cached block belongs to another dictionary */
        if (!rc)
            rc = check_summaries(&c, dd, ord, p, np);
        free(p);
        free(ord);
    }
    if (!rc) { /* the SQL mirror, against the same snapshot */
        char msg[512];
        int stale;
        if (!(rc = ldb_catalog_verify(db, c.txn, msg, sizeof msg, &stale)) && *msg) {
            if (stale)
                snprintf(rep->notes, sizeof rep->notes, "%s\n", msg);
            else
                problem(&c, "%s", msg, 0, 0);
        }
    }
    unsigned char md[32];
    ldb_sha_final(&c.sha, md);
    for (int i = 0; i < 32; i++)
        snprintf(rep->digest + 2 * i, 3, "%02x", md[i]);
    mdb_txn_abort(c.txn);
    free(c.skip);
    free(c.starts);
    ldb_fpos_free(&c.fp);
    return rc;
}

int ldb_db_repair(ldb_db *db)
{
    if (db->rdonly)
        return ldb_err_set(&db->err, LDB_EINVAL, "%s: opened read-only", db->path);
    return ldb_catalog_sync(db, 1);
}
