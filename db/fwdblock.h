/* fwdblock.h — the forward block (docs/FORMAT.md, "Forward blocks"): the codes of
 * up to `block` consecutive positions of one dictionary, latent ids Rice-coded by
 * position and values by frequency rank, groups of LDB_FWD_GROUP positions
 * decodable alone, a CRC-32 over it all. Encoder, decoders and reads in one place,
 * so a format change is one edit. */
#ifndef LDB_DB_FWDBLOCK_H
#define LDB_DB_FWDBLOCK_H

#include "store.h"

/* Encodes the codes of n positions (cnt[i] codes each: latents ascending in lat,
 * value bits in bits, the DB's value type `values`) of a dictionary of d_sae
 * latents into out (the record's value) in the layout of format fmt (3 and 4
 * alike, or 5), using a and b as scratch. */
int ldb_fwd_encode(const uint32_t *cnt, uint32_t n, const uint32_t *lat, const uint32_t *bits,
                   uint32_t d_sae, int values, int fmt, ldb_buf *a, ldb_buf *b, ldb_buf *out,
                   ldb_err *err);

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

/* The code count of each position of a block (its raw value p[0..n), at start),
 * into cnt (room for the dictionary's block of positions), *np positions: the
 * block's header alone, no code decoded. */
int ldb_fwd_counts(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   uint32_t *cnt, uint32_t *np);

/* Calls fn for each forward block of dd in order, with its positions' code counts;
 * stops at fn's first nonzero return, which it returns. */
int ldb_fwd_counts_each(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd,
                        int (*fn)(void *ctx, uint64_t start, const uint32_t *cnt, uint32_t np),
                        void *ctx);

/* The latent ids of the whole block holding gpos, as ldb_fwd_get without values and
 * without its CRC-32 (as reads of one position: each id decoded is validated, and
 * check verifies the CRC), for scans that read every position of many blocks. */
int ldb_fwd_get_ids(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t gpos, ldb_fblock *fb);

/* Whether a forward block's CRC-32 (its last 4 bytes) matches its bytes. */
int ldb_fwd_crc_ok(const uint8_t *p, size_t n);

/* Decodes a block of dictionary dd from its raw LMDB value (the CRC is the
 * caller's to check). Everything decoded is validated before use: ids ascend and
 * are below d_sae, counts and positions fit the block, values are finite and not
 * negative; anything else is LDB_EFORMAT naming the DB, the table and the key. */
int ldb_fwd_decode(ldb_db *db, const ldb_dbdict *dd, uint64_t start, const uint8_t *p, size_t n,
                   int values, ldb_fblock *fb);

/* A forward block's header, pointing into the block's bytes. */
typedef struct ldb_fhdr {
    uint64_t np, total;        /* positions, codes (format 5: 0 until a whole decode) */
    uint32_t R;                /* the dictionary's d_sae (Rice parameters) */
    const uint8_t *groups;     /* (ngroups - 1) u32 LE bit offsets (format 5: 3 u32 each) */
    const uint8_t *ptab, *pend; /* format 5: the position table */
    const uint8_t *bits, *end; /* the Rice bit stream */
    const uint8_t *sym;        /* part B: nsym u16 LE value symbols, by rank */
    uint32_t nsym;
    unsigned kv;               /* Rice parameter of the ranks */
    const uint8_t *vgroups;    /* (ngroups - 1) u32 LE bit offsets into the value stream */
    const uint8_t *vbits, *vend; /* the value stream */
} ldb_fhdr;

/* One position of a forward block: format 5 decodes only that position, formats 3
 * and 4 its group of LDB_FWD_GROUP positions up to it (the block's header is parsed
 * once and kept while reads stay in it). The block is read in place: one ldb_fpos
 * serves one read transaction. After ldb_fwd_at, lat[0..cnt) are the latents at
 * gpos and, when values were asked for, bits[0..cnt) their stored value bits. */
typedef struct ldb_fpos {
    uint64_t start;            /* block start; n = 0 when nothing is loaded */
    uint32_t n;
    ldb_fhdr h;                /* its header */
    uint64_t *off;             /* n + 1 prefix counts */
    size_t cap_pos, cap_nnz;
    uint64_t g;                /* the group being decoded + 1 (format 5: the position + 1; 0: none) */
    uint64_t idone, vdone;     /* its positions before these have ids / values decoded
                                * (format 5: whether the position's are) */
    uint64_t pc, pib, pvb;     /* format 5: the position's count, id and value bit offsets */
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

/* The values of latent at gpos[0..n) (ascending), into out (0 where it does not
 * fire): ldb_fwd_value for each, but that in format 5 the reads of the positions
 * one block holds are made together, so their cache misses overlap (a latent's
 * 100k codes at 10M tokens, format 5: 72-77 ms read one by one, 33-35 ms so). */
int ldb_fwd_values(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, const uint64_t *gpos, size_t n,
                   uint32_t latent, ldb_fpos *fp, float *out);

#endif
