/* check.c — `latentdb check`: every record of the store against what it is derived
 * from, and the digest.
 *
 * The truth is the sequences (seqs), their tokens (tok) and the forward index
 * (fwd:<dict>); everything else is derived and verified against it: the sequence
 * lookups (seqpos, seqhash), the token index (tokidx), each dictionary's coverage
 * (cover) and statistics (dstat), the meta counters, the inverted index, every
 * summary field, the counts record, every top candidate and its stored context,
 * the tokenizer tables (against the hash stored with them) and the catalog. A
 * record that does not decode, or a table LMDB cannot read to its end, is a
 * problem, and the check goes on with the next record or table: it lists every
 * problem it finds. Only running out of memory (or failing to begin the read
 * transaction) stops it.
 *
 * The digest is SHA-256 over the logical records (sequences, tokens, codes,
 * summaries) in a canonical order that does not depend on batch boundaries or
 * physical layout (exact codes do not depend on them; bf16 codes can, a GEMM's
 * last bits depending on its shape, which is why a resumed ingest cuts the batches
 * an uninterrupted one would). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sha256.h"
#include "../common/utf8.h"
#include "reader.h"
#include "writer.h"
#include "../text/tokenizer.h"
#include "check_impl.h"
#include "db_impl.h"

void ldb_chk_problem(chk *c, const char *fmt, ...)
{
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->rep->n_problems++;
    if (c->each)
        c->each(c->arg, line);
    size_t o = strlen(c->rep->problems), n = strlen(line);
    if (c->rep->n_problems <= 20 && o + n + 2 <= sizeof c->rep->problems) {
        memcpy(c->rep->problems + o, line, n);
        c->rep->problems[o + n] = '\n';
        c->rep->problems[o + n + 1] = 0;
    }
}

/* A library call's failure: a damaged record (LDB_EFORMAT, or another error LMDB
 * gave on a damaged page) becomes a problem and the check goes on; running out of
 * memory stops it (returned). */
int ldb_chk_failed(chk *c, int rc)
{
    if (rc == LDB_ENOMEM)
        return rc;
    ldb_chk_problem(c, "%s", ldb_db_errmsg(c->db));
    ldb_err_clear(ldb_db_err(c->db));
    return LDB_OK;
}

/* After a cursor walk: a table LMDB could not read to its end is a problem. */
void ldb_chk_walk_end(chk *c, int mrc, const char *table)
{
    if (mrc && mrc != MDB_NOTFOUND)
        ldb_chk_problem(c, "%s: table '%s' cannot be read to its end: %s (the LMDB file is damaged)",
                c->db->path, table, mdb_strerror(mrc));
}

int ldb_chk_nomem(chk *c)
{
    return ldb_err_set(ldb_db_err(c->db), LDB_ENOMEM, "out of memory");
}

/* Makes room for positions [0, n) in the per-position arrays. */
static int grow_pos(chk *c, uint64_t n)
{
    if (n <= c->cap_pos)
        return LDB_OK;
    uint64_t nc = c->cap_pos ? c->cap_pos : 65536;
    while (nc < n)
        nc *= 2;
    uint32_t *t = realloc(c->tok, nc * sizeof *t);
    if (!t)
        return ldb_chk_nomem(c);
    c->tok = t;
    uint8_t *m = realloc(c->skip, nc / 8 + 1);
    if (!m)
        return ldb_chk_nomem(c);
    memset(m + c->cap_pos / 8, 0, nc / 8 + 1 - c->cap_pos / 8);
    memset(t + c->cap_pos, 0, (nc - c->cap_pos) * sizeof *t);
    c->skip = m;
    c->cap_pos = nc;
    return LDB_OK;
}

static int add_seq(chk *c, const ldb_seqrec *s, uint32_t ord)
{
    if (c->n_starts == c->cap_starts) {
        size_t nc = c->cap_starts ? 2 * c->cap_starts : 1024;
        uint64_t *st = realloc(c->starts, nc * sizeof *st);
        if (st)
            c->starts = st;
        uint32_t *l = st ? realloc(c->lens, nc * sizeof *l) : NULL;
        if (l)
            c->lens = l;
        uint32_t *o = l ? realloc(c->ords, nc * sizeof *o) : NULL;
        if (o)
            c->ords = o;
        uint8_t(*h)[16] = o ? realloc(c->hash, nc * sizeof *h) : NULL;
        if (!h)
            return ldb_chk_nomem(c);
        c->hash = h;
        c->cap_starts = nc;
    }
    c->starts[c->n_starts] = s->start;
    c->lens[c->n_starts] = s->len;
    c->ords[c->n_starts] = ord;
    memcpy(c->hash[c->n_starts++], s->hash, 16);
    return LDB_OK;
}

int ldb_chk_is_skip(const chk *c, uint64_t pos)
{
    return pos < c->n_pos && (c->skip[pos / 8] >> (pos % 8) & 1);
}

/* The index of the sequence holding pos, or SIZE_MAX. */
size_t ldb_chk_seq_of(const chk *c, uint64_t pos)
{
    size_t lo = 0, hi = c->n_starts;
    if (!hi || pos < c->starts[0])
        return SIZE_MAX;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (c->starts[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return pos < c->starts[lo] + c->lens[lo] ? lo : SIZE_MAX;
}

static uint64_t meta(chk *c, const char *key, int *ok)
{
    uint64_t v = 0;
    int rc = ldb_db_meta_u64(c->db, c->txn, key, &v);
    *ok = !rc;
    if (rc)
        (void)ldb_chk_failed(c, rc);
    return v;
}

/* Sequences and their tokens: ids from 0, each starting where the last ended, the
 * tokens there and matching their hash, a known source; then the meta counters. */
int ldb_chk_seqs(chk *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t expect_start = 0, expect_seq = 0;
    uint64_t before = c->rep->n_problems;
    int ok, rc = LDB_OK, mrc = mdb_cursor_open(c->txn, c->db->seqs, &cur);
    uint64_t n_pos = c->repair ? UINT64_MAX : meta(c, "n_pos", &ok);
    if (c->repair || !ok)
        n_pos = UINT64_MAX;
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "seqs"));
    c->tok_ok = 1;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        ldb_seqrec s;
        if (k.mv_size != 8 || v.mv_size != 40) {
            ldb_chk_problem(c, "%s: seqs: a record of %zu bytes under a key of %zu bytes", c->db->path,
                    v.mv_size, k.mv_size);
            c->tok_ok = 0;
            continue;
        }
        ldb_seqrec_decode(ldb_rd_be64(k.mv_data), v.mv_data, &s);
        if (s.seq != expect_seq)
            ldb_chk_problem(c, "%s: seqs: sequence %llu follows sequence %llu", c->db->path,
                    (unsigned long long)s.seq, (unsigned long long)expect_seq - 1);
        expect_seq = s.seq + 1;
        if (s.start != expect_start)
            ldb_chk_problem(c, "%s: seqs: sequence %llu starts at %llu, where the one before ends at "
                    "%llu", c->db->path, (unsigned long long)s.seq,
                    (unsigned long long)s.start, (unsigned long long)expect_start);
        if (s.start > n_pos || s.len > n_pos - s.start) {
            ldb_chk_problem(c, "%s: seqs: sequence %llu ([%llu, +%u)) lies past the %llu positions "
                    "the DB holds (meta n_pos)", c->db->path, (unsigned long long)s.seq,
                    (unsigned long long)s.start, s.len, (unsigned long long)n_pos);
            c->tok_ok = 0;
            expect_start = s.start + s.len;
            continue;
        }
        expect_start = s.start + s.len;
        if ((rc = grow_pos(c, s.start + s.len)))
            break;
        uint32_t *tok = c->tok + s.start, ord = 0;
        if ((rc = ldb_seq_tokens_at(c->db, c->txn, s.start, 0, s.len, tok))) {
            c->tok_ok = 0;
            memset(tok, 0, (size_t)s.len * 4);
            rc = ldb_chk_failed(c, rc);
        } else {
            uint8_t h[16];
            ldb_tokens_hash(tok, s.len, h);
            if (memcmp(h, s.hash, 16))
                ldb_chk_problem(c, "%s: tok: the tokens of sequence %llu do not match its hash",
                        c->db->path, (unsigned long long)s.seq);
        }
        for (uint32_t i = 0; i < s.len; i++) {
            int sk = ldb_db_is_skip(c->db, tok[i]);
            c->skip[(s.start + i) / 8] |= (uint8_t)(sk << ((s.start + i) % 8));
            ord += !sk;
        }
        if (s.start + s.len > c->n_pos)
            c->n_pos = s.start + s.len;
        c->n_ord += ord;
        uint8_t skb[4];
        ldb_be32(skb, s.source);
        MDB_val sk = {4, skb}, sv;
        int src = mdb_get(c->txn, c->db->sources, &sk, &sv);
        if (src == MDB_NOTFOUND)
            ldb_chk_problem(c, "%s: seqs: sequence %llu names source %u, which 'sources' does not hold",
                    c->db->path, (unsigned long long)s.seq, s.source);
        if (s.seq == c->n_starts && (rc = add_seq(c, &s, ord)))
            break;
        uint64_t rec[3] = {s.seq, s.start, s.len};
        ldb_sha_update(&c->sha, rec, sizeof rec);
        ldb_sha_update(&c->sha, tok, (size_t)s.len * 4);
        c->rep->n_seq++;
        c->rep->n_tokens += s.len;
    }
    ldb_chk_walk_end(c, mrc, "seqs");
    mdb_cursor_close(cur);
    c->truth_bad += c->rep->n_problems - before;
    if (rc || c->repair)
        return rc;
    uint64_t n_seq = meta(c, "n_seq", &ok), n_ord;
    if (ok && n_seq != expect_seq)
        ldb_chk_problem(c, "%s: meta: n_seq says %llu sequences, 'seqs' holds %llu", c->db->path,
                (unsigned long long)n_seq, (unsigned long long)expect_seq);
    if (n_pos != UINT64_MAX && n_pos != expect_start)
        ldb_chk_problem(c, "%s: meta: n_pos says %llu positions, the sequences hold %llu", c->db->path,
                (unsigned long long)n_pos, (unsigned long long)expect_start);
    n_ord = meta(c, "n_ord", &ok);
    if (ok && c->tok_ok && n_ord != c->n_ord)
        ldb_chk_problem(c, "%s: meta: n_ord says %llu ordinary positions, the tokens hold %llu",
                c->db->path, (unsigned long long)n_ord, (unsigned long long)c->n_ord);
    return LDB_OK;
}

/* seqpos (start -> seq) and seqhash (tokens hash -> seqs): exactly one entry per
 * sequence, each right. */
static int check_lookups(chk *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t i = 0, bad = 0;
    int mrc = mdb_cursor_open(c->txn, c->db->seqpos, &cur);
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "seqpos"));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        uint64_t seq = UINT64_MAX;
        if (v.mv_size == 8)
            memcpy(&seq, v.mv_data, 8);
        if (k.mv_size != 8 || i >= c->n_starts || ldb_rd_be64(k.mv_data) != c->starts[i] ||
            seq != i)
            bad++;
    }
    ldb_chk_walk_end(c, mrc, "seqpos");
    mdb_cursor_close(cur);
    if (bad || i != c->n_starts)
        ldb_chk_problem(c, "%s: seqpos: %zu entries for %zu sequences, %zu of them wrong", c->db->path,
                i, c->n_starts, bad);
    if ((mrc = mdb_cursor_open(c->txn, c->db->seqhash, &cur)))
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "seqhash"));
    i = bad = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        uint64_t seq = v.mv_size == 8 ? ldb_rd_be64(v.mv_data) : UINT64_MAX;
        if (k.mv_size != 16 || seq >= c->n_starts || memcmp(k.mv_data, c->hash[seq], 16))
            bad++;
    }
    ldb_chk_walk_end(c, mrc, "seqhash");
    mdb_cursor_close(cur);
    if (bad || i != c->n_starts)
        ldb_chk_problem(c, "%s: seqhash: %zu entries for %zu sequences, %zu of them wrong", c->db->path,
                i, c->n_starts, bad);
    return LDB_OK;
}

/* The token index: each listed position holds the token, lists ascend, and there
 * are as many positions as tokens, so it is the tokens' exact inverse. */
static int check_tokidx(chk *c)
{
    if (!c->tok_ok)
        return LDB_OK; /* the tokens themselves are damaged (reported) */
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t *pos = NULL, cap = 0, total = 0, last = 0;
    uint32_t last_tok = UINT32_MAX;
    int rc = LDB_OK, mrc = mdb_cursor_open(c->txn, c->db->tokidx, &cur);
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "tokidx"));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        uint64_t n = 0;
        if (k.mv_size != 12 || v.mv_size < 2 || p[0] != 0 ||
            ldb_posting_count(p + 1, v.mv_size - 1, &n) || n == 0 || n > v.mv_size * 8) {
            ldb_chk_problem(c, "%s: tokidx: an entry (%zu bytes) does not decode", c->db->path,
                    v.mv_size);
            continue;
        }
        uint32_t token = ldb_rd_be32(k.mv_data);
        uint64_t first = ldb_rd_be64((uint8_t *)k.mv_data + 4);
        if (n > cap) {
            uint64_t *q = realloc(pos, n * sizeof *q);
            if (!q) {
                rc = ldb_chk_nomem(c);
                break;
            }
            pos = q;
            cap = n;
        }
        if (ldb_posting_decode(p + 1, v.mv_size - 1, first, pos, cap, &n)) {
            ldb_chk_problem(c, "%s: tokidx: the entry of token %u at position %llu does not decode",
                    c->db->path, token, (unsigned long long)first);
            continue;
        }
        int bad = token == last_tok && first <= last;
        for (uint64_t i = 0; i < n && !bad; i++)
            bad = pos[i] >= c->n_pos || c->tok[pos[i]] != token;
        if (bad)
            ldb_chk_problem(c, "%s: tokidx: the entry of token %u at position %llu lists positions that "
                    "do not hold it", c->db->path, token, (unsigned long long)first);
        last_tok = token;
        last = pos[n - 1];
        total += n;
    }
    ldb_chk_walk_end(c, mrc, "tokidx");
    mdb_cursor_close(cur);
    free(pos);
    if (!rc && total != c->n_pos)
        ldb_chk_problem(c, "%s: tokidx: lists %llu positions; the sequences hold %llu", c->db->path,
                (unsigned long long)total, (unsigned long long)c->n_pos);
    return rc;
}

/* The tokenizer tables: the SHA-256 stored beside them when there is one (every DB
 * made since it was added), else their own checks when they are opened. */
static int check_tokenizer(chk *c)
{
    MDB_val k = {9, "tokenizer"}, v, hk = {16, "tokenizer_sha256"}, hv;
    int mrc = mdb_get(c->txn, c->db->meta, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return LDB_OK;
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "meta"));
    mrc = mdb_get(c->txn, c->db->meta, &hk, &hv);
    if (mrc == 0) {
        unsigned char md[32];
        ldb_sha s;
        if (ldb_sha_init(&s))
            return ldb_chk_nomem(c);
        ldb_sha_update(&s, v.mv_data, v.mv_size);
        ldb_sha_final(&s, md);
        if (hv.mv_size != 32 || memcmp(md, hv.mv_data, 32))
            ldb_chk_problem(c, "%s: meta: the tokenizer tables do not match their SHA-256", c->db->path);
        return LDB_OK;
    }
    if (mrc != MDB_NOTFOUND)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "meta"));
    ldb_err e = {0};
    ldb_tokenizer *t = ldb_tokenizer_from_blob(v.mv_data, v.mv_size, c->db->path, &e);
    if (!t)
        ldb_chk_problem(c, "%s", e.msg);
    ldb_tokenizer_close(t);
    size_t o = strlen(c->rep->notes);
    snprintf(c->rep->notes + o, sizeof c->rep->notes - o, "the tokenizer tables have no stored "
             "hash (made before 2026-12): checked by their structure only\n");
    return LDB_OK;
}

/* Labels: UTF-8 text of one line, of a latent the dictionary has. */
static int check_labels(chk *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(c->txn, c->db->labels, &cur);
    if (mrc)
        return ldb_chk_failed(c, ldb_db_mdb_err(c->db, mrc, "labels"));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint16_t d = k.mv_size == 6 ? ldb_rd_be16(k.mv_data) : UINT16_MAX;
        uint32_t j = k.mv_size == 6 ? ldb_rd_be32((uint8_t *)k.mv_data + 2) : 0;
        int nd;
        const ldb_dbdict *dicts = ldb_db_dicts(c->db, &nd);
        if (d >= nd || j >= dicts[d].d_sae)
            ldb_chk_problem(c, "%s: labels: a label of no latent (key of %zu bytes)", c->db->path,
                    k.mv_size);
        else if (ldb_utf8_check(v.mv_data, v.mv_size, 1, NULL) != v.mv_size)
            ldb_chk_problem(c, "%s: labels: the label of latent %u of '%s' is not one line of UTF-8 "
                    "text", c->db->path, j, dicts[d].name);
    }
    ldb_chk_walk_end(c, mrc, "labels");
    mdb_cursor_close(cur);
    return LDB_OK;
}

int ldb_db_check_each(ldb_db *db, ldb_check_report *rep, void (*each)(void *, const char *),
                      void *arg)
{
    chk c;
    memset(&c, 0, sizeof c);
    c.db = db;
    c.rep = rep;
    c.each = each;
    c.arg = arg;
    memset(rep, 0, sizeof *rep);
    int rc, mrc = ldb_txn_begin(db, MDB_RDONLY, &c.txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a read transaction");
    if (ldb_sha_init(&c.sha)) {
        ldb_txn_abort(db, c.txn);
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    rc = ldb_chk_seqs(&c);
    if (!rc)
        rc = check_lookups(&c);
    if (!rc)
        rc = check_tokidx(&c);
    if (!rc)
        rc = check_tokenizer(&c);
    int nd;
    const ldb_dbdict *dicts = ldb_db_dicts(db, &nd);
    for (int i = 0; i < nd && !rc; i++)
        rc = ldb_chk_dict(&c, &dicts[i]);
    if (!rc)
        rc = check_labels(&c);
    rep->n_store_problems = rep->n_problems;
    if (!rc) { /* the SQL mirror, against the same snapshot */
        char msg[1024];
        int stale;
        if (!(rc = ldb_catalog_verify(db, c.txn, msg, sizeof msg, &stale)) && *msg) {
            size_t o = strlen(rep->notes);
            if (stale)
                snprintf(rep->notes + o, sizeof rep->notes - o, "%s\n", msg);
            else
                ldb_chk_problem(&c, "%s", msg);
        } else if (rc) {
            rc = ldb_chk_failed(&c, rc);
        }
    }
    unsigned char md[32];
    ldb_sha_final(&c.sha, md);
    for (int i = 0; i < 32; i++)
        snprintf(rep->digest + 2 * i, 3, "%02x", md[i]);
    ldb_txn_abort(db, c.txn);
    free(c.skip);
    free(c.tok);
    free(c.starts);
    free(c.lens);
    free(c.ords);
    free(c.hash);
    return rc;
}

int ldb_db_check(ldb_db *db, ldb_check_report *rep)
{
    return ldb_db_check_each(db, rep, NULL, NULL);
}
