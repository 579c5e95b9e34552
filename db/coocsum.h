/* coocsum.h — the co-occurrence summaries of format 6 (docs/FORMAT.md, `lwin` and
 * `lseq`): a latent's window units at the stored windows, and the latents of each
 * sequence. The batch writer adds a batch's units and writes its sequences' sets;
 * repair writes both again from the truth; check verifies them; cooc reads them. */
#ifndef LDB_DB_COOCSUM_H
#define LDB_DB_COOCSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "reader.h"

/* The windows (±w) whose units `lwin` stores. */
#define LDB_NWIN 6
extern const uint32_t ldb_wins[LDB_NWIN]; /* 1, 2, 3, 5, 10, 20 */

/* Whether the DB keeps these summaries (format 6 and later). */
int ldb_coocsum_has(const ldb_db *db);

/* The slot of w among ldb_wins, or -1 when it is not stored. */
int ldb_win_slot(uint32_t w);

/* Window units at ±ws[0..nw) (nw <= LDB_NWIN) of a latent firing at the ascending
 * positions pos[0..n) (all positions, skipped ones included: they are dropped here):
 * for each w, the ordinary positions c with an ordinary firing within w of c in c's
 * sequence, into out[0..nw). L's start[] bounds the sequences (a start that is no
 * sequence's, e.g. a gap between a batch's runs, is harmless: nothing fires there)
 * and skip[] lists the skipped positions. One pass: O(n × nw) plus a galloping walk
 * over skip[]. */
void ldb_window_units(const uint64_t *pos, size_t n, const ldb_layout *L, const uint32_t *ws,
                      int nw, uint64_t *out);

/* The `lwin` key of (dict, w). */
static inline void ldb_lwin_key(uint8_t kb[4], uint16_t dict, uint16_t w)
{
    ldb_be16(kb, dict);
    ldb_be16(kb + 2, w);
}

/* The `lwin` record of dd at ±w, in place (valid while txn lives): d_sae u64 LE, read
 * with ldb_lwin_at. LDB_ENOTFOUND when there is none (a DB before format 6, a w not
 * stored, or no batch yet); LDB_EFORMAT when its size is not d_sae × 8. */
int ldb_lwin_get(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint32_t w, const uint8_t **rec);

static inline uint64_t ldb_lwin_at(const uint8_t *rec, uint32_t latent)
{
    uint64_t v;
    memcpy(&v, rec + (size_t)latent * 8, 8); /* LE: every platform latentdb builds on */
    return v;
}

/* `lseq`: the key of (dict, seq); the record of the ascending latents ids[0..n)
 * (n >= 1) appended to out; its decode into ids (capacity cap, every id below d_sae,
 * ascending), *n the count. 0, or -1 (out of memory; malformed). */
static inline void ldb_lseq_key(uint8_t kb[10], uint16_t dict, uint64_t seq)
{
    ldb_be16(kb, dict);
    ldb_be64(kb + 2, seq);
}
/* The `lseq` record of (dd, seq) in place; LDB_ENOTFOUND when there is none. */
int ldb_lseq_get(ldb_db *db, ldb_txn *txn, const ldb_dbdict *dd, uint64_t seq, const uint8_t **p,
                 size_t *len);
int ldb_lseq_encode(const uint64_t *ids, size_t n, ldb_buf *out);
int ldb_lseq_decode(const uint8_t *p, size_t len, uint32_t d_sae, uint64_t *ids, uint64_t cap,
                    uint64_t *n);

/* Groups pairs (group << 32 | id) by group, stably: the lists lists[0..nlists) (of
 * n[i] pairs each) in that order, so ids ascending in every list, and every list's
 * ids above the last's, give each group's ids ascending. Group g's ids land in
 * ids[off[g] .. off[g + 1]) (ids: room for every pair; off: ngroups + 1). */
void ldb_group_pairs(const uint64_t *const *lists, const size_t *n, int nlists, size_t ngroups,
                     uint64_t *ids, uint64_t *off);

#endif
