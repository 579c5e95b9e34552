/* writer.h — the batch writer: everything an ingest or import writes goes through
 * one ldb_writer, which owns the LMDB write transaction of one batch. Sequences are
 * whole within a batch. At commit the batch's codes become forward blocks, inverted
 * chunks, merged latent summaries and top candidates, atomically. */
#ifndef LDB_DB_WRITER_H
#define LDB_DB_WRITER_H

#include "store.h"

typedef struct ldb_writer ldb_writer;

/* Begins a batch (one write transaction). */
int ldb_writer_begin(ldb_db *db, ldb_writer **out);

/* Aborts the batch and ends the writer; accepts NULL. (Its buffers stay with the
 * handle for the next batch: see ldb_writer_drop_spare.) */
void ldb_writer_abort(ldb_writer *w);

/* The batch's transaction, for records the caller adds (runs). */
ldb_txn *ldb_writer_txn(ldb_writer *w);

/* Threads the commit may build with (default 1). An import passes 2: its encode side
 * only copies codes, so a second core is free for a helper that encodes the forward
 * blocks and part of the latents' records. An ingest leaves 1: the encoder's threads
 * have the cores. */
void ldb_writer_set_threads(ldb_writer *w, int n);

/* Finds a sequence with these tokens (hash) that none of dicts[0..n) covers yet;
 * *found = 0 when there is none. */
int ldb_writer_attach(ldb_writer *w, const uint8_t hash[16], const uint16_t *dicts, int n,
                      ldb_seqrec *out, int *found);

/* Each sequence with these tokens (hash) that one of dicts[0..n) covers, in txn (a
 * snapshot's or a writer's): each(arg, seq, i) with i the index in dicts of the first
 * that covers it, until each returns nonzero, which is returned. What an ingest asks
 * before its first batch: do these rows hold codes of its dictionaries already? */
int ldb_seqs_covered(ldb_db *db, ldb_txn *txn, const uint8_t hash[16], const uint16_t *dicts,
                     int n, int (*each)(void *arg, uint64_t seq, int i), void *arg);

/* Appends a sequence: allocates its gpos range, stores its tokens (and the token
 * index). *out receives the record. source: an id from ldb_writer_source. */
int ldb_writer_add_seq(ldb_writer *w, const uint32_t *tokens, uint32_t len, uint32_t source,
                       uint64_t row, const uint8_t hash[16], ldb_seqrec *out);

/* The id of a source label, created when new. */
int ldb_writer_source(ldb_writer *w, const char *label, uint32_t *id);

/* Adds the codes of one sequence for dict: rows 0..seq->len of a CSR (start has
 * len + 1 entries, latents ascending per row). tokens: the sequence's tokens (for the
 * skip set). The sequence must not be covered by dict yet. */
int ldb_writer_codes(ldb_writer *w, uint16_t dict, const ldb_seqrec *seq, const uint32_t *tokens,
                     const uint64_t *start, const uint32_t *latent, const float *value);

/* Codes buffered in this batch so far (to bound its memory). */
uint64_t ldb_writer_pending(const ldb_writer *w);

/* Writes the batch's indexes and summaries and commits; ends the writer. */
int ldb_writer_commit(ldb_writer *w);

/* Frees the buffers the handle keeps from its last batch for the next one (an ingest
 * calls it when its run ends; ldb_db_close does too). */
void ldb_writer_drop_spare(ldb_db *db);

/* Computes the tokens hash of a sequence (SHA-256 of u32 LE ids, first 16 bytes). */
void ldb_tokens_hash(const uint32_t *tokens, uint32_t len, uint8_t hash[16]);

#endif
