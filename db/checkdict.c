/* checkdict.c — check's part for one dictionary: its forward blocks (the truth:
 * CRC, decode, placement) read into (latent, position) pairs and digested, then
 * every record derived from them against those pairs: coverage (cover), counters
 * (dstat), the inverted index, each latent's summary, count and top candidates
 * with their stored contexts, and format 6's window units and sequence latents. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_impl.h"
#include "coocsum.h"
#include "db_impl.h"

/* A dictionary's coverage (cover): which sequences it was ingested over, each
 * record right; *covered (n_starts flags) and the sums go to the dstat check. */
static int check_cover(chk *c, const ldb_dbdict *dd, uint8_t *covered, ldb_dstat *sum)
{
    MDB_cursor *cur;
    uint8_t kb[10];
    ldb_be16(kb, dd->id);
    ldb_be64(kb + 2, 0);
    MDB_val k = {10, kb}, v;
    int mrc = mdb_cursor_open(c->txn, c->db->cover, &cur);
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "cover"));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 10 || ldb_rd_be16(k.mv_data) != dd->id)
            break;
        uint64_t seq = ldb_rd_be64((uint8_t *)k.mv_data + 2);
        uint32_t np = 0, ord = 0;
        if (v.mv_size == 8) {
            memcpy(&np, v.mv_data, 4);
            memcpy(&ord, (uint8_t *)v.mv_data + 4, 4);
        }
        if (v.mv_size != 8 || seq >= c->n_starts || np != c->lens[seq] ||
            (c->tok_ok && ord != c->ords[seq])) {
            ldb_chk_problem(c, "%s: cover: the record of '%s' over sequence %llu is wrong", c->db->path,
                    dd->name, (unsigned long long)seq);
            continue;
        }
        covered[seq] = 1;
        sum->positions += np;
        sum->ordinary += ord;
        sum->seqs++;
    }
    ldb_chk_walk_end(c, mrc, "cover");
    mdb_cursor_close(cur);
    return LDB_OK;
}

/* Forward blocks in key order: each checked (CRC-32, decode), lying inside
 * sequences the dictionary covers, none overlapping; digested, and their codes
 * collected as (latent, gpos) pairs. *positions: the positions they hold. */
/* Sorts the pairs by latent, then position. They come in position order (blocks in
 * key order, each after the last, every id < d_sae: checked as they were read), so
 * a stable counting sort by latent is the whole sort: O(n + d_sae), where qsort
 * took a quarter of a check. (An order qsort would give too; the digest of a DB
 * does not depend on it.) */
static int sort_pairs(chk *c, const ldb_dbdict *dd, pair **pp, size_t np)
{
    uint64_t *at = calloc((size_t)dd->d_sae + 1, sizeof *at);
    pair *p = *pp, *q = malloc(np * sizeof *q);
    if (!at || !q) {
        free(at);
        free(q);
        return ldb_chk_nomem(c);
    }
    for (size_t i = 0; i < np; i++)
        at[p[i].lat + 1]++;
    for (uint32_t j = 0; j < dd->d_sae; j++)
        at[j + 1] += at[j];
    for (size_t i = 0; i < np; i++)
        q[at[p[i].lat]++] = p[i];
    free(at);
    free(p);
    *pp = q;
    return LDB_OK;
}

int ldb_chk_forward(chk *c, const ldb_dbdict *dd, const uint8_t *covered, uint8_t *spanned,
                    pair **out, size_t *n, uint64_t *positions)
{
    MDB_cursor *cur;
    MDB_val k, v;
    ldb_fblock fb;
    pair *p = NULL;
    size_t np = 0, cap = 0;
    uint64_t end = 0;
    char table[16];
    snprintf(table, sizeof table, "fwd:%u", dd->id);
    memset(&fb, 0, sizeof fb);
    *positions = 0;
    uint64_t before = c->rep->n_problems;
    int rc = LDB_OK, mrc = mdb_cursor_open(c->txn, dd->fwd, &cur);
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, table));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            ldb_chk_problem(c, "%s: %s: a key of %zu bytes", c->db->path, table, k.mv_size);
            continue;
        }
        uint64_t start = ldb_rd_be64(k.mv_data);
        if (!ldb_fwd_crc_ok(v.mv_data, v.mv_size)) {
            ldb_chk_problem(c, "%s: %s: the forward block of '%s' at %llu fails its CRC-32 check",
                    c->db->path, table, dd->name, (unsigned long long)start);
            continue;
        }
        if ((rc = ldb_fwd_decode(c->db, dd, start, v.mv_data, v.mv_size, 1, &fb))) {
            rc = ldb_chk_failed(c, rc);
            continue;
        }
        /* inside covered sequences (a block may span several), after the last one */
        int inside = start >= end;
        for (uint64_t at = start; at < start + fb.n && inside;) {
            size_t s = ldb_chk_seq_of(c, at);
            inside = s != SIZE_MAX && covered[s];
            if (inside && spanned)
                spanned[s] = 1;
            if (inside)
                at = c->starts[s] + c->lens[s];
        }
        if (!inside) {
            ldb_chk_problem(c, "%s: %s: the forward block of '%s' at %llu (%u positions) lies outside "
                    "the sequences it covers", c->db->path, table, dd->name,
                    (unsigned long long)start, fb.n);
            continue;
        }
        end = start + fb.n;
        *positions += fb.n;
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
                rc = ldb_chk_nomem(c);
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
    ldb_chk_walk_end(c, mrc, table);
    mdb_cursor_close(cur);
    ldb_fblock_free(&fb);
    c->truth_bad += c->rep->n_problems - before;
    if (rc) {
        free(p);
        return rc;
    }
    if (np && (rc = sort_pairs(c, dd, &p, np))) {
        free(p);
        return rc;
    }
    *out = p;
    *n = np;
    return LDB_OK;
}

/* The dictionary's statistics record against its coverage and codes. */
static int check_dstat(chk *c, const ldb_dbdict *dd, const ldb_dstat *cov, uint64_t positions,
                       const pair *p, size_t np)
{
    ldb_dstat st;
    int rc = ldb_db_get_dstat(c->db, c->txn, dd->id, &st);
    if (rc)
        return ldb_chk_failed(c, rc);
    uint64_t ord = 0;
    for (size_t i = 0; i < np; i++)
        ord += !ldb_chk_is_skip(c, p[i].pos);
    if (positions != cov->positions)
        ldb_chk_problem(c, "%s: fwd:%u: the forward blocks of '%s' hold %llu positions; it covers %llu",
                c->db->path, dd->id, dd->name, (unsigned long long)positions,
                (unsigned long long)cov->positions);
    if (st.positions != cov->positions || st.seqs != cov->seqs ||
        (c->tok_ok && st.ordinary != cov->ordinary) || st.nnz != np ||
        (c->tok_ok && st.nnz_ordinary != ord))
        ldb_chk_problem(c, "%s: dstat: the statistics of '%s' (%llu positions, %llu ordinary, %llu "
                "sequences, %llu codes, %llu ordinary) differ from its coverage and codes (%llu, "
                "%llu, %llu, %llu, %llu)", c->db->path, dd->name,
                (unsigned long long)st.positions, (unsigned long long)st.ordinary,
                (unsigned long long)st.seqs, (unsigned long long)st.nnz,
                (unsigned long long)st.nnz_ordinary, (unsigned long long)cov->positions,
                (unsigned long long)cov->ordinary, (unsigned long long)cov->seqs,
                (unsigned long long)np, (unsigned long long)ord);
    return LDB_OK;
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
        while (at < np && p[at].lat < j)
            at++;
        if (rc) {
            if ((rc = ldb_chk_failed(c, rc)))
                return rc;
            while (at < np && p[at].lat == j)
                at++;
            continue;
        }
        ord[j] = 0;
        for (size_t i = 0; i < n; i++)
            ord[j] += !ldb_chk_is_skip(c, pos[i]);
        size_t i = 0;
        while (i < n && at < np && p[at].lat == j && p[at].pos == pos[i])
            i++, at++;
        if (i != n || (at < np && p[at].lat == j)) {
            ldb_chk_problem(c, "%s: inv:%u: latent %u of '%s': the inverted and forward indexes differ "
                    "near position %llu", c->db->path, dd->id, j, dd->name,
                    (unsigned long long)(i < n ? pos[i] : at < np ? p[at].pos : 0));
            while (at < np && p[at].lat == j)
                at++;
        }
        free(pos);
    }
    return LDB_OK;
}

/* The index in p[a..b) (ascending positions) of the first code at or after pos. */
size_t ldb_chk_code_at(const pair *p, size_t a, size_t b, uint64_t pos)
{
    while (a < b) {
        size_t m = (a + b) / 2;
        if (p[m].pos < pos)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

int ldb_chk_context(const chk *c, const pair *p, size_t a, size_t b, uint64_t gpos, ldb_tctx *x)
{
    memset(x, 0, sizeof *x);
    size_t s = ldb_chk_seq_of(c, gpos);
    if (s == SIZE_MAX)
        return -1;
    uint64_t s0 = c->starts[s], s1 = s0 + c->lens[s];
    x->seq = s;
    x->pos = (uint32_t)(gpos - s0);
    x->len = c->lens[s];
    size_t i = ldb_chk_code_at(p, a, b, gpos >= s0 + LDB_TOPCTX ? gpos - LDB_TOPCTX : s0);
    for (; i < b && p[i].pos <= gpos + LDB_TOPCTX && p[i].pos < s1; i++) {
        if (p[i].pos == gpos)
            continue;
        int bit = ldb_tctx_bit((int)((int64_t)p[i].pos - (int64_t)gpos));
        x->mask |= (uint16_t)(1u << bit);
        x->bits[bit] = p[i].bits;
    }
    return 0;
}

/* A top candidate's sequence, position and stored context (format 3) against the
 * sequences and the latent's codes p[a..b). */
static int context_ok(const chk *c, const pair *p, size_t a, size_t b, const ldb_cand *t,
                      const ldb_tctx *tc)
{
    ldb_tctx x;
    if (ldb_chk_context(c, p, a, b, t->gpos, &x))
        return 0;
    int where = !tc->len || (x.seq == tc->seq && x.pos == tc->pos && x.len == tc->len); /* format 3 */
    return where && x.mask == tc->mask && !memcmp(x.bits, tc->bits, sizeof x.bits);
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
 * of this latent with its value, its sequence and context as stored, and no code
 * left out comes before the last). */
static void check_stats(chk *c, const ldb_dbdict *dd, uint32_t j, const pair *p, size_t a,
                        size_t b, const ldb_lsum *s, const ldb_cand *top, const ldb_tctx *ctx,
                        int nt)
{
    uint64_t n = 0, nseq = 0, hh = 0, hs = 0, lastseq = UINT64_MAX, before = 0;
    double sum = 0, sumsq = 0;
    float max = 0;
    size_t si = a < b ? ldb_chk_seq_of(c, p[a].pos) : 0;
    if (si == SIZE_MAX)
        si = 0;
    for (size_t i = a; i < b; i++) {
        if (ldb_chk_is_skip(c, p[i].pos))
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
        ldb_chk_problem(c, "%s: lsum: latent %u of '%s': its summary says %llu firing positions in %llu "
                "sequences; the forward index has %llu in %llu", c->db->path, j, dd->name,
                (unsigned long long)s->count, (unsigned long long)s->nseq,
                (unsigned long long)n, (unsigned long long)nseq);
    else if (max != s->max || !close_to(s->sum, sum) || !close_to(s->sumsq, sumsq))
        ldb_chk_problem(c, "%s: lsum: latent %u of '%s': the max, sum or sum of squares of its summary "
                "differ from the forward index (%llu codes)", c->db->path, j, dd->name,
                (unsigned long long)n);
    else if (hh != hs || hn != n)
        ldb_chk_problem(c, "%s: lsum: latent %u of '%s': its value histogram differs from the forward "
                "index (%llu codes)", c->db->path, j, dd->name, (unsigned long long)n);
    if (nt != (int)(n < LDB_TOPK ? n : LDB_TOPK) || (nt && before != (uint64_t)nt - 1)) {
        ldb_chk_problem(c, "%s: ltop: latent %u of '%s': its top list (%d candidates) is not the top "
                "of the forward index", c->db->path, j, dd->name, nt);
        return;
    }
    for (int t = 0; t < nt; t++) { /* each candidate is one of the latent's codes */
        size_t l = ldb_chk_code_at(p, a, b, top[t].gpos);
        if (l == b || p[l].pos != top[t].gpos ||
            ldb_val_float(p[l].bits, c->db->values) != top[t].value || ldb_chk_is_skip(c, p[l].pos)) {
            ldb_chk_problem(c, "%s: ltop: latent %u of '%s': its top candidate at position %llu is not "
                    "in the forward index", c->db->path, j, dd->name,
                    (unsigned long long)top[t].gpos);
            return;
        }
        if (ctx && !context_ok(c, p, a, b, &top[t], &ctx[t])) {
            ldb_chk_problem(c, "%s: ltop: latent %u of '%s': the sequence or context stored with its "
                    "top example at position %llu differs from the sequences and the forward "
                    "index", c->db->path, j, dd->name, (unsigned long long)top[t].gpos);
            return;
        }
    }
}

/* Summaries: digest them, recount each latent's firing ordinary positions, check
 * its statistics and top list against the forward index, and its count against
 * the counts record. */
static int check_summaries(chk *c, const ldb_dbdict *dd, const uint64_t *ord, const pair *p,
                           size_t np)
{
    size_t a = 0;
    uint64_t *cnt = malloc((size_t)dd->d_sae * sizeof *cnt);
    ldb_cand *top = malloc(LDB_TOPK * sizeof *top);
    ldb_tctx *ctx = malloc(LDB_TOPK * sizeof *ctx);
    int rc = LDB_OK, have_cnt = 1;
    if (!cnt || !top || !ctx) {
        rc = ldb_chk_nomem(c);
        goto out;
    }
    if ((rc = ldb_lsum_counts(c->db, c->txn, dd, cnt))) {
        have_cnt = 0;
        if ((rc = ldb_chk_failed(c, rc)))
            goto out;
    }
    for (uint32_t j = 0; j < dd->d_sae; j++) {
        ldb_lsum s;
        while (a < np && p[a].lat < j)
            a++;
        size_t b = a;
        while (b < np && p[b].lat == j)
            b++;
        int nt = 0, lrc = ldb_lsum_get(c->db, c->txn, dd->id, j, &s);
        if (!lrc && (nt = ldb_ltop_get(c->db, c->txn, dd->id, j, top, ctx, LDB_TOPK)) < 0)
            lrc = nt;
        if (lrc) { /* a record that does not decode */
            ldb_lsum_free(&s);
            if ((rc = ldb_chk_failed(c, lrc)))
                goto out;
            a = b;
            continue;
        }
        /* format 4 stores no sequences: the digest takes the candidates' contexts from
         * the codes (and check compares the stored ones), so it is the digest a format-3
         * DB of the same codes has */
        ldb_tctx stored[LDB_TOPK];
        memcpy(stored, ctx, (size_t)nt * sizeof *stored);
        for (int i = 0; i < nt && c->db->format >= 4; i++)
            ldb_chk_context(c, p, a, b, top[i].gpos, &ctx[i]);
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
        check_stats(c, dd, j, p, a, b, &s, top, stored, nt);
        a = b;
        if (have_cnt && cnt[j] != s.count)
            ldb_chk_problem(c, "%s: lcnt: latent %u of '%s': the counts record says %llu firing "
                    "positions, its summary %llu", c->db->path, j, dd->name,
                    (unsigned long long)cnt[j], (unsigned long long)s.count);
        if (s.count && ord[j] != UINT64_MAX && ord[j] != s.count) /* recounted from postings */
            ldb_chk_problem(c, "%s: inv:%u: latent %u of '%s': its postings hold %llu ordinary "
                    "positions, its summary %llu", c->db->path, dd->id, j, dd->name,
                    (unsigned long long)ord[j], (unsigned long long)s.count);
        ldb_lsum_free(&s);
    }
out:
    free(cnt);
    free(top);
    free(ctx);
    return rc;
}

int ldb_chk_coocsum(chk *c, const ldb_dbdict *dd, const pair *p, size_t np, uint64_t *wins,
                    uint64_t **ids, uint64_t *off)
{
    size_t ds = dd->d_sae, npairs = 0, cap = 0, si = 0;
    ldb_layout L = {0};
    uint64_t *pos = NULL, *pairs = NULL;
    int rc = LDB_OK;
    *ids = NULL;
    L.nseq = c->n_starts;
    if (!(L.start = malloc((c->n_starts + 1) * sizeof *L.start)))
        return ldb_chk_nomem(c);
    if (c->n_starts) /* (an empty DB has no array) */
        memcpy(L.start, c->starts, c->n_starts * sizeof *L.start);
    L.start[c->n_starts] = c->n_pos;
    for (uint64_t q = 0; q < c->n_pos; q++) /* the skipped positions, ascending */
        if (ldb_chk_is_skip(c, q)) {
            if (ldb_wgrow((void **)&L.skip, &cap, L.nskip + 1, sizeof *L.skip)) {
                rc = ldb_chk_nomem(c);
                goto out;
            }
            L.skip[L.nskip++] = q;
        }
    memset(wins, 0, LDB_NWIN * ds * sizeof *wins);
    cap = 0;
    size_t pcap = 0;
    for (size_t a = 0, b; a < np; a = b) {
        uint32_t j = p[a].lat;
        for (b = a + 1; b < np && p[b].lat == j;)
            b++;
        if (ldb_wgrow((void **)&pos, &pcap, b - a, sizeof *pos)) {
            rc = ldb_chk_nomem(c);
            goto out;
        }
        uint64_t last = UINT64_MAX;
        for (size_t i = a; i < b; i++) {
            pos[i - a] = p[i].pos;
            if (ldb_chk_is_skip(c, p[i].pos) || p[i].pos >= c->n_pos)
                continue;
            si = ldb_layout_seq(&L, si, p[i].pos);
            if (si == last)
                continue;
            last = si;
            if (ldb_wgrow((void **)&pairs, &cap, npairs + 1, sizeof *pairs)) {
                rc = ldb_chk_nomem(c);
                goto out;
            }
            pairs[npairs++] = (uint64_t)si << 32 | j;
        }
        uint64_t u[LDB_NWIN];
        ldb_window_units(pos, b - a, &L, ldb_wins, LDB_NWIN, u);
        for (int s = 0; s < LDB_NWIN; s++)
            wins[s * ds + j] = u[s];
    }
    if (!(*ids = malloc((npairs ? npairs : 1) * sizeof **ids))) {
        rc = ldb_chk_nomem(c);
        goto out;
    }
    const uint64_t *lists[1] = {pairs};
    ldb_group_pairs(lists, &npairs, 1, c->n_starts, *ids, off);
out:
    ldb_layout_free(&L);
    free(pos);
    free(pairs);
    return rc;
}

/* Format 6: the stored window units and sequence latents against the codes. */
static int check_coocsum(chk *c, const ldb_dbdict *dd, const pair *p, size_t np)
{
    size_t ds = dd->d_sae;
    uint64_t *wins = malloc((LDB_NWIN * ds + 1) * sizeof *wins), *ids = NULL;
    uint64_t *off = malloc((c->n_starts + 1) * sizeof *off), *got = malloc((ds ? ds : 1) * 8);
    int rc = wins && off && got ? ldb_chk_coocsum(c, dd, p, np, wins, &ids, off) : ldb_chk_nomem(c);
    for (int s = 0; s < LDB_NWIN && !rc; s++) {
        const uint8_t *rec;
        int lrc = ldb_lwin_get(c->db, c->txn, dd, ldb_wins[s], &rec);
        if (lrc == LDB_ENOTFOUND) {
            if (np)
                ldb_chk_problem(c, "%s: lwin: '%s' has no window units at %u", c->db->path,
                                dd->name, ldb_wins[s]);
            continue;
        }
        if (lrc) {
            rc = ldb_chk_failed(c, lrc);
            continue;
        }
        for (uint32_t j = 0; j < ds; j++)
            if (ldb_lwin_at(rec, j) != wins[s * ds + j]) {
                ldb_chk_problem(c, "%s: lwin: latent %u of '%s': %llu window units at %u; its "
                                "codes make %llu", c->db->path, j, dd->name,
                                (unsigned long long)ldb_lwin_at(rec, j), ldb_wins[s],
                                (unsigned long long)wins[s * ds + j]);
                break; /* one a window is enough */
            }
    }
    for (size_t q = 0; q < c->n_starts && !rc; q++) {
        const uint8_t *rec;
        size_t len;
        uint64_t n = 0, want = off[q + 1] - off[q];
        int lrc = ldb_lseq_get(c->db, c->txn, dd, q, &rec, &len);
        if (lrc && lrc != LDB_ENOTFOUND) {
            rc = ldb_chk_failed(c, lrc);
            continue;
        }
        if (!lrc && ldb_lseq_decode(rec, len, dd->d_sae, got, ds, &n))
            ldb_chk_problem(c, "%s: lseq: sequence %zu of '%s': the record does not decode",
                            c->db->path, q, dd->name);
        else if (n != want || memcmp(got, ids + off[q], n * sizeof *got))
            ldb_chk_problem(c, "%s: lseq: sequence %zu of '%s': %llu latents stored, its codes "
                            "make %llu%s", c->db->path, q, dd->name, (unsigned long long)n,
                            (unsigned long long)want, n == want ? " (other ones)" : "");
    }
    free(wins);
    free(ids);
    free(off);
    free(got);
    return rc;
}

int ldb_chk_dict(chk *c, const ldb_dbdict *dd)
{
    pair *p = NULL;
    size_t np = 0;
    uint64_t positions = 0, *ord = NULL;
    ldb_dstat cov = {0};
    uint8_t *covered = calloc(c->n_starts ? c->n_starts : 1, 1);
    if (!covered)
        return ldb_chk_nomem(c);
    ldb_sha_update(&c->sha, dd->name, strlen(dd->name) + 1);
    int rc = check_cover(c, dd, covered, &cov);
    if (!rc)
        rc = ldb_chk_forward(c, dd, covered, NULL, &p, &np, &positions);
    if (!rc) {
        c->rep->nnz += np;
        rc = check_dstat(c, dd, &cov, positions, p, np);
    }
    if (!rc && !(ord = malloc((size_t)dd->d_sae * sizeof *ord)))
        rc = ldb_chk_nomem(c);
    if (!rc)
        rc = compare_inverted(c, dd, p, np, ord);
    if (!rc)
        rc = check_summaries(c, dd, ord, p, np);
    if (!rc && ldb_coocsum_has(c->db))
        rc = check_coocsum(c, dd, p, np);
    free(p);
    free(ord);
    free(covered);
    return rc;
}

