/* seqcache.c — every sequence's start in memory, for finding the sequence of a
 * position without two B-tree lookups (a top list of format 4 stores no sequences:
 * 20 examples cost 40 µs through seqpos and seqs, ~1 µs here).
 *
 * Sequences are append-only and never move, so a cache read from any snapshot
 * answers every position below its end for every snapshot that holds the position.
 * One cache per handle, published whole through an atomic pointer; a position past
 * its end (a newer snapshot) makes a new one from the caller's snapshot, and the
 * replaced ones are kept until close, as a query may still read them. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"

struct ldb_seqcache {
    uint64_t n;                /* sequences with positions (seqpos holds no empty one) */
    uint64_t *start;           /* n + 1: their starts, then the end of the last */
    uint64_t *seq;             /* n: their ids */
    struct ldb_seqcache *older;
};

static int build(ldb_db *db, MDB_txn *txn, struct ldb_seqcache **out)
{
    MDB_stat st;
    MDB_cursor *c;
    MDB_val k, v;
    int mrc = mdb_stat(txn, db->seqpos, &st);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqpos");
    struct ldb_seqcache *s = calloc(1, sizeof *s);
    if (!s || !(s->start = malloc((st.ms_entries + 1) * sizeof *s->start)) ||
        !(s->seq = malloc((st.ms_entries + 1) * sizeof *s->seq))) {
        ldb_seqcache_free(s);
        return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    if ((mrc = mdb_cursor_open(txn, db->seqpos, &c))) {
        ldb_seqcache_free(s);
        return ldb_db_mdb_err(db, mrc, "seqpos");
    }
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc && s->n < st.ms_entries;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || v.mv_size != 8)
            break; /* damage (check reports it): callers take the B-tree path */
        memcpy(&s->seq[s->n], v.mv_data, 8);
        s->start[s->n++] = ldb_rd_be64(k.mv_data);
    }
    mdb_cursor_close(c);
    ldb_seqrec last;
    if (s->n != st.ms_entries || !s->n || ldb_db_get_seq(db, txn, s->seq[s->n - 1], &last) ||
        last.start != s->start[s->n - 1]) {
        ldb_seqcache_free(s);
        *out = NULL;
        return LDB_OK;
    }
    s->start[s->n] = last.start + last.len;
    *out = s;
    return LDB_OK;
}

/* Publishes s as the handle's cache; the one it replaces hangs on it (freed at close). */
static void publish(ldb_db *db, struct ldb_seqcache *s)
{
    struct ldb_seqcache *cur = atomic_load_explicit(&db->seqcache, memory_order_acquire);
    do
        s->older = cur;
    while (!atomic_compare_exchange_weak_explicit(&db->seqcache, &cur, s, memory_order_acq_rel,
                                                  memory_order_acquire));
}

int ldb_seq_find(ldb_db *db, MDB_txn *txn, uint64_t gpos, uint64_t *seq, uint64_t *start,
                 uint32_t *len)
{
    struct ldb_seqcache *s = atomic_load_explicit(&db->seqcache, memory_order_acquire);
    if (!s || gpos >= s->start[s->n]) {
        struct ldb_seqcache *fresh = NULL;
        int rc = build(db, txn, &fresh);
        if (rc)
            return rc;
        if (fresh) {
            publish(db, fresh);
            s = fresh;
        }
    }
    if (!s || gpos >= s->start[s->n]) { /* no usable cache: the B-tree path */
        ldb_seqrec r;
        int rc = ldb_db_seq_at(db, txn, gpos, &r);
        if (!rc) {
            *seq = r.seq;
            *start = r.start;
            *len = r.len;
        }
        return rc;
    }
    uint64_t lo = 0, hi = s->n; /* the last start <= gpos */
    while (hi - lo > 1) {
        uint64_t m = lo + (hi - lo) / 2;
        if (s->start[m] <= gpos)
            lo = m;
        else
            hi = m;
    }
    if (gpos < s->start[lo])
        return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no sequence holds position %llu",
                           db->path, (unsigned long long)gpos);
    *seq = s->seq[lo];
    *start = s->start[lo];
    *len = (uint32_t)(s->start[lo + 1] - s->start[lo]); /* sequences are contiguous */
    return LDB_OK;
}

void ldb_seqcache_free(struct ldb_seqcache *s)
{
    while (s) {
        struct ldb_seqcache *o = s->older;
        free(s->start);
        free(s->seq);
        free(s);
        s = o;
    }
}
