/* check_impl.h — what check.c, checkdict.c and repair.c share: the store's truth (sequences,
 * tokens, forward index) read once, in one transaction, with each problem found
 * on the way. */
#ifndef LDB_DB_CHECK_IMPL_H
#define LDB_DB_CHECK_IMPL_H

#include "../common/sha256.h"
#include "reader.h"
#include "db_impl.h"

typedef struct chk {
    ldb_db *db;
    MDB_txn *txn;
    ldb_sha sha;
    ldb_check_report *rep;
    void (*each)(void *, const char *);
    void *arg;
    uint8_t *skip;             /* bit per gpos: a skipped position */
    uint32_t *tok;             /* the token at each gpos */
    size_t cap_pos;            /* of skip (bits) and tok */
    uint64_t n_pos, n_ord;     /* positions of the sequences read; ordinary ones */
    int tok_ok;                /* every sequence's tokens were read */
    uint64_t *starts;          /* every sequence's first position, ascending (seq i at i) */
    uint32_t *lens, *ords;     /* its length and ordinary positions */
    uint8_t (*hash)[16];       /* its tokens hash */
    size_t n_starts, cap_starts;
    uint64_t truth_bad;        /* problems in the sequences, tokens or forward blocks */
    int repair;                /* reading for a rebuild: meta counters are not trusted */
} chk;

typedef struct pair {
    uint32_t lat;
    uint32_t bits;             /* the stored value */
    uint64_t pos;
} pair;

/* Reports a problem: counted, passed to each(), the first ones kept in the report. */
void ldb_chk_problem(chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A library call's failure: a damaged record becomes a problem (LDB_OK is
 * returned, and the check goes on); running out of memory is returned. */
int ldb_chk_failed(chk *c, int rc);
int ldb_chk_nomem(chk *c);
/* After a cursor walk: a table LMDB could not read to its end is a problem. */
void ldb_chk_walk_end(chk *c, int mrc, const char *table);

/* Reads every sequence and its tokens (starts, lens, ords, hash, tok, skip), with
 * the meta counters; problems reported. */
int ldb_chk_seqs(chk *c);
/* Whether pos is a skipped position; the index of the sequence holding pos
 * (SIZE_MAX: none); the first code at or after pos in p[a..b) (ascending). */
int ldb_chk_is_skip(const chk *c, uint64_t pos);
size_t ldb_chk_seq_of(const chk *c, uint64_t pos);
size_t ldb_chk_code_at(const pair *p, size_t a, size_t b, uint64_t pos);
/* The context of a code of the latent at gpos, from its codes p[a..b) (ascending) and
 * the sequences: what a format-3 top list stores with it. -1 when gpos is in no
 * sequence. */
int ldb_chk_context(const chk *c, const pair *p, size_t a, size_t b, uint64_t gpos,
                    struct ldb_tctx *x);
/* Every forward block of dd, checked (CRC-32, decode, inside the sequences flagged
 * in covered, not overlapping), digested, its codes as (latent, gpos) pairs sorted
 * by latent then position; *positions: the positions the blocks hold; spanned
 * (NULL, or a flag per sequence) gets the sequences the blocks lie in. */
int ldb_chk_forward(chk *c, const ldb_dbdict *dd, const uint8_t *covered, uint8_t *spanned,
                    pair **out, size_t *n, uint64_t *positions);
/* Format 6's co-occurrence summaries of dd as its codes p[0..np) (by latent, then
 * position) make them: every latent's window units at each stored w into wins
 * (LDB_NWIN × d_sae, [slot][latent]), and the latents of sequence s (ascending) in
 * (*ids)[off[s] .. off[s + 1]) (off: n_starts + 1; *ids malloc'd). Check compares
 * the stored records with them; repair writes them. */
int ldb_chk_coocsum(chk *c, const ldb_dbdict *dd, const pair *p, size_t np, uint64_t *wins,
                    uint64_t **ids, uint64_t *off);
/* Every record of dictionary dd against its forward blocks (checkdict.c). */
int ldb_chk_dict(chk *c, const ldb_dbdict *dd);

#endif
