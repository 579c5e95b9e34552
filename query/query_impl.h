/* query_impl.h — what the query files share: a read transaction with the dict it
 * is about, the full ranking of a latent's firing positions, and example filling. */
#ifndef LDB_QUERY_IMPL_H
#define LDB_QUERY_IMPL_H

#include "../db/reader.h"

typedef struct qctx {
    ldb_db *db;
    ldb_txn *txn;
    const ldb_dbdict *dd;      /* NULL when the query names no dict */
} qctx;

/* Begins a read transaction; checks the dict (when named) and the latent. */
int ldb_q_begin(ldb_db *db, const char *dict, uint32_t latent, int need_latent, qctx *q);
void ldb_q_end(qctx *q);

/* Every firing position of the latent with its value, in corpus order (gpos
 * ascending); skipped positions left out unless include_special. */
int ldb_q_latent_codes(qctx *q, uint32_t latent, int include_special, ldb_cand **out, size_t *n);
/* The same, by value descending then gpos (as top ranks them). */
int ldb_q_scan_latent(qctx *q, uint32_t latent, int include_special, ldb_cand **out, size_t *n);

/* Fills an example (sequence, position, context tokens and values) for a candidate;
 * the context values come from tc (its stored context) when given, else from the
 * forward index. */
int ldb_q_fill_example(qctx *q, uint32_t latent, const ldb_cand *c, const ldb_tctx *tc,
                       uint32_t context, ldb_fpos *fp, ldb_example *e);

#endif
