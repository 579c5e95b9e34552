/* reader.h — decoding what the writer stored: forward blocks, postings, summaries.
 * Everything here runs inside a caller's read transaction and copies what it
 * returns (decoded data stays valid after the transaction ends). */
#ifndef LDB_DB_READER_H
#define LDB_DB_READER_H

#include "store.h"
#include "summary.h"

/* A decoded forward block. Position i (gpos start + i) has latents
 * lat[off[i] .. off[i+1]) and, when values were asked for, bits[...] alike. */
typedef struct ldb_fblock {
    uint64_t start;
    uint32_t n;
    uint64_t *off;
    uint32_t *lat;
    uint32_t *bits;
    uint64_t *run;             /* id decoding scratch */
    size_t cap_pos, cap_nnz, cap_run;
    int has_values;
} ldb_fblock;

void ldb_fblock_free(ldb_fblock *fb);

/* Decodes the block of dict holding gpos into fb (reusing its buffers). Returns
 * LDB_ENOTFOUND when no block holds gpos (the dict does not cover it). */
int ldb_fwd_get(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
                ldb_fblock *fb);

/* Whether a forward block's CRC-32 (its last 4 bytes) matches its bytes. */
int ldb_fwd_crc_ok(const uint8_t *p, size_t n);

/* Decodes a block of dictionary dd from its raw LMDB value (the CRC is the
 * caller's to check). Everything decoded is validated before use: ids ascend and
 * are below d_sae, counts and positions fit the block, values are finite and not
 * negative; anything else is LDB_EFORMAT naming the DB, the table and the key. */
int ldb_fwd_decode(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   int values, ldb_fblock *fb);

/* One position of a forward block, decoding only its group of LDB_FWD_GROUP
 * positions (the block's header is parsed once and kept while reads stay in it).
 * The block is read in place: one ldb_fpos serves one read transaction.
 * After ldb_fwd_at, lat[0..cnt) are the latents at gpos and, when values were
 * asked for, bits[0..cnt) their stored value bits. */
/* A forward block's header, pointing into the block's bytes. */
typedef struct ldb_fhdr {
    uint64_t np, total;        /* positions, codes */
    uint32_t R;                /* the dictionary's d_sae (Rice parameters) */
    const uint8_t *groups;     /* (ngroups - 1) u32 LE bit offsets */
    const uint8_t *bits, *end; /* the Rice bit stream */
    const uint8_t *sym;        /* part B: nsym u16 LE value symbols, by rank */
    uint32_t nsym;
    unsigned kv;               /* Rice parameter of the ranks */
    const uint8_t *vgroups;    /* (ngroups - 1) u32 LE bit offsets into the value stream */
    const uint8_t *vbits, *vend; /* the value stream */
} ldb_fhdr;

typedef struct ldb_fpos {
    uint64_t start;            /* block start; n = 0 when nothing is loaded */
    uint32_t n;
    ldb_fhdr h;                /* its header */
    uint64_t *off;             /* n + 1 prefix counts */
    size_t cap_pos, cap_nnz;
    uint64_t g;                /* the group being decoded + 1 (0: none) */
    uint64_t idone, vdone;     /* its positions before these have ids / values decoded */
    ldb_bitr ibr, vbr;         /* where their decoding goes on */
    uint32_t *glat, *gbits;    /* the group's codes */
    uint32_t cnt;              /* after ldb_fwd_at: the codes at gpos */
    const uint32_t *lat, *bits;
} ldb_fpos;

int ldb_fwd_at(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t gpos, int values,
               ldb_fpos *fp);
void ldb_fpos_free(ldb_fpos *fp);

/* The value of latent at gpos (0 when it does not fire there); the block's values
 * are unpacked only when it does. */
int ldb_fwd_value(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t gpos, uint32_t latent,
                  ldb_fpos *fp, float *out);

/* All positions where latent fires, ascending (malloc'd; *n of them). */
int ldb_inv_read(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint32_t latent, uint64_t **out,
                 size_t *n);

/* All positions holding token, ascending (malloc'd; *n of them; none: NULL, 0). */
int ldb_tokidx_read(ldb_db *db, ldb_txn *txn, uint32_t token, uint64_t **out, size_t *n);

/* Token of gpos through a cache of the last decoded token block. */
typedef struct ldb_tokcache {
    uint64_t start;
    uint64_t n;                /* tokens at data (0: empty) */
    const uint8_t *data;       /* in place (raw blocks) or buf.data */
    ldb_buf buf;
} ldb_tokcache;

/* Tokens [pos, pos + n) of the sequence starting at gpos start, by exact key (token
 * records start at the sequence's start and every LDB_TOK_BLOCK positions after
 * it); raw records are read in place. */
int ldb_seq_tokens_at(ldb_db *db, ldb_txn *txn, uint64_t start, uint32_t pos, uint32_t n,
                      uint32_t *out);
int ldb_tok_at(ldb_db *db, ldb_txn *txn, ldb_tokcache *tc, uint64_t gpos, uint32_t *tok);
void ldb_tokcache_free(ldb_tokcache *tc);

/* A latent's summary; a latent that never fired gives a zeroed one. */
int ldb_lsum_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, ldb_lsum *s);
/* Every latent's firing count (ordinary positions), d_sae of them: the `lcnt`
 * record, kept equal to the summaries' counts (check verifies it). */
int ldb_lsum_counts(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t *counts);

/* A latent's best max (<= LDB_TOPK) top candidates (and their contexts, when ctx is
 * not NULL); returns their number (>= 0) or a negative error. */
int ldb_ltop_get(ldb_db *db, ldb_txn *txn, uint16_t dict, uint32_t latent, ldb_cand *out,
                 ldb_tctx *ctx, int max);

/* The corpus's layout: every sequence's start, ascending, with the end of the
 * corpus as a sentinel (start[nseq]), and every skipped position, ascending (from
 * the token index). Scans over many sequences look bounds up here instead of
 * seeking per position. */
typedef struct ldb_layout {
    uint64_t *start, *skip;
    size_t nseq, nskip;
} ldb_layout;

int ldb_layout_load(ldb_db *db, ldb_txn *txn, ldb_layout *L);
void ldb_layout_free(ldb_layout *L);

/* First index in a[lo, hi) with a[i] >= x. */
size_t ldb_lower_bound(const uint64_t *a, size_t lo, size_t hi, uint64_t x);

/* The sequence holding gpos p: index si with start[si] <= p < start[si + 1],
 * searching from hint (positions visited in ascending order stay O(1)). */
static inline size_t ldb_layout_seq(const ldb_layout *L, size_t hint, uint64_t p)
{
    if (hint < L->nseq && L->start[hint] <= p && p < L->start[hint + 1])
        return hint;
    return ldb_lower_bound(L->start, 0, L->nseq, p + 1) - 1;
}

#endif
