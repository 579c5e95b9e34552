/* layout.c — the corpus's layout for scans that cross many sequences: every
 * sequence start and every skipped position, read once per query (see
 * reader.h). */
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "db_impl.h"

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int ldb_layout_load(ldb_db *db, MDB_txn *txn, ldb_layout *L)
{
    size_t cap = 0;
    memset(L, 0, sizeof *L);
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->seqpos, &cur);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "seqpos");
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (L->nseq + 1 >= cap) {
            cap = cap ? 2 * cap : 1024;
            uint64_t *n = realloc(L->start, cap * sizeof *n);
            if (!n) {
                rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
                break;
            }
            L->start = n;
        }
        L->start[L->nseq++] = ldb_rd_be64(k.mv_data);
    }
    mdb_cursor_close(cur);
    if (mrc && mrc != MDB_NOTFOUND && !rc)
        rc = ldb_db_mdb_err(db, mrc, "seqpos");
    if (!rc && !L->start && !(L->start = malloc(sizeof *L->start)))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    if (!rc)
        rc = ldb_db_meta_u64(db, txn, "n_pos", &L->start[L->nseq]);
    if (!rc)
        rc = ldb_skip_positions(db, txn, &L->skip, &L->nskip);
    return rc;
}

int ldb_skip_positions(ldb_db *db, MDB_txn *txn, uint64_t **out, size_t *nout)
{
    uint64_t *all = NULL;
    size_t len = 0;
    int rc = LDB_OK;
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < db->n_skip && !rc; i++) {
        uint64_t *p;
        size_t n;
        if ((rc = ldb_tokidx_read(db, txn, db->skip[i], &p, &n)))
            break;
        uint64_t *m = n ? realloc(all, (len + n) * sizeof *m) : all;
        if (n && !m) {
            free(p);
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
            break;
        }
        all = m;
        if (n)
            memcpy(all + len, p, n * sizeof *p);
        len += n;
        free(p);
    }
    if (rc) {
        free(all);
        return rc;
    }
    if (db->n_skip > 1)
        qsort(all, len, sizeof *all, cmp_u64);
    *out = all;
    *nout = len;
    return LDB_OK;
}

void ldb_layout_free(ldb_layout *L)
{
    free(L->start);
    free(L->skip);
}

size_t ldb_lower_bound(const uint64_t *a, size_t lo, size_t hi, uint64_t x)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

