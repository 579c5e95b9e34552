/* writer_impl.h — the batch writer's buffers, shared by writer.c (sequences,
 * tokens, buffering) and build.c (forward blocks, inverted chunks, summaries). */
#ifndef LDB_DB_WRITER_IMPL_H
#define LDB_DB_WRITER_IMPL_H

#include "writer.h"
#include "db_impl.h"

typedef struct wseg {
    uint64_t seq, start;       /* sequence and its first gpos */
    uint32_t len;
    uint64_t pos_off;          /* into cnt / skipf */
    uint64_t nnz_off;          /* into lat / bits */
    uint32_t run;              /* batch run it belongs to (after sorting) */
} wseg;

typedef struct wdict {
    ldb_dbdict *dd;
    wseg *seg;
    size_t nseg, capseg;
    uint32_t *cnt;             /* codes per position */
    uint8_t *skipf;            /* 1 = skipped position */
    size_t npos, cappos, capskip;
    uint32_t *lat, *bits;      /* codes, stored representation */
    size_t nnz, capnnz, capbits;
} wdict;

struct wbuild;                 /* build.c's scratch: the latent sort and summaries */

/* A writer's buffers outlive its batch: the handle keeps the last writer (db->wspare)
 * and the next batch reuses its capacity instead of faulting in fresh pages (a
 * 6M-code batch allocates ~200 MB; import of 1M tokens took 423k page faults). */
struct ldb_writer {
    ldb_db *db;
    MDB_txn *txn;
    uint64_t n_seq, n_pos, n_ord, first_new_pos;
    wdict *d;
    int nd, dcap;              /* dicts in this batch; slots of d that hold buffers */
    struct wbuild *bs;
    uint32_t *tk_tok;          /* (token, gpos) pairs of new positions, for tokidx */
    uint64_t *tk_pos;
    size_t ntk, captk;
    ldb_buf a, b;              /* scratch: token blocks, token-index postings */
    int threads;               /* for the build at commit: 1, or 2 when a core is free */
};

/* Writes one dict's forward blocks, inverted chunks, summaries, top candidates,
 * cover and dstat records for the batch. */
int ldb_build_dict(ldb_writer *w, wdict *wd);

/* Frees build.c's scratch; accepts NULL. */
void ldb_build_scratch_free(struct wbuild *bs);

#endif
