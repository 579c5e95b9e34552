/* run_impl.h — the inside of an ingest run, shared by ingest.c (the pipeline),
 * source.c (inputs and codes) and runrec.c (the run record: its key, lookup and
 * progress). Private to ingest/. */
#ifndef LDB_INGEST_RUN_IMPL_H
#define LDB_INGEST_RUN_IMPL_H

#include <cjson/cJSON.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "../db/writer.h"
#include "../sae/tensors.h"
#include "inputid.h"

#define LDB_MAX_LAYERS 256 /* activations files of one run (a multi-layer dictionary's) */

typedef struct input {
    ldb_mfile f;
    ldb_npy a;
    char sig[LDB_STATSIG_LEN]; /* stat signature when opened (inputid.h) */
    uint8_t sampled[32];       /* hash of sampled blocks: the run key's part */
    uint8_t content[32];       /* hash of every byte, once have_content */
    int have_content;
} input;

/* Sequence ids as ascending, disjoint, non-adjacent ranges [a[2i], a[2i+1]]: the
 * sequences a run wrote codes for (the record's "seqs"). */
typedef struct seqset {
    uint64_t *a;
    size_t n, cap;             /* ranges; room for cap of them */
} seqset;

typedef struct run {
    ldb_db *db;
    const ldb_ingest_opts *o;
    input tok;
    input *act;                /* n_act: the activations (one file, or one per layer of a
                                  multi-layer dictionary) or the codes of an import */
    int n_act;
    uint64_t n_tokens, n_rows;
    uint32_t ctx, d_in;        /* d_in: one layer's */
    uint32_t n_layers;         /* layers per position in the activations (1 for a plain SAE) */
    char *acts_name;           /* the activations' path(s), for messages and the run record */
    int act_dtype;
    const ldb_dbdict **dd;
    ldb_dict **dict;
    ldb_encoder **enc;         /* one per dictionary (not for an import) */
    uint16_t *ids;
    uint8_t id[32];
    ldb_err perr;              /* errors of the encode side (a thread of its own) */
    cJSON *rec;                /* the run record */
    uint64_t rows_done;
    uint64_t next_rows;        /* a resumed run: the rows its next batch had (0: none) */
    int new_run;               /* find_run made a new record: check_values hashes the inputs */
    /* duplicates (covered.c): rows whose tokens another run stored with codes of one of
       the run's dictionaries */
    uint8_t *covered;          /* n_rows flags, or NULL when not looked for (--again) */
    uint64_t n_covered;
    int covered_dict;          /* index of the first dictionary found covering a row */
    int track;                 /* the record keeps "seqs" (not a record of before) */
    uint64_t n_skipped;        /* covered rows this call's committed batches left out */
    seqset seqs, pend;         /* the run's committed sequences; with the batch in flight */
    /* import: CSR codes instead of activations */
    ldb_tensors csr;
    const ldb_tensor *data, *indices, *indptr;
} run;

/* ---- The sources (source.c): the tokens, and codes made by the dictionaries'
 * encoders from activations or imported from a CSR .npz ---- */

typedef struct csr {           /* a batch's codes for one dictionary */
    uint64_t *start;           /* positions + 1 */
    uint32_t *lat;
    float *val;
    size_t npos, nnz, cap_pos, cap_nnz;
} csr;

/* Opens the run's inputs and checks their shapes (tokens; activations, with each
 * dictionary and its encoder, or the codes of an import); closes them. */
int ingest_open_sources(run *r);
/* The dictionaries' layer count (one for plain ones); refuses a mix. */
int ingest_dict_layers(run *r, uint32_t *n);
/* Each dictionary opened, checked against its record, and its encoder made. */
int ingest_open_encoders(run *r);
void ingest_close_sources(run *r);
/* Every value the run will read (token ids, activations or codes), before anything
 * is written: NaN, Inf, ids out of range, codes the value type cannot hold. */
int ingest_check_values(run *r);
/* Tokens of row `row` (the last row may be short); token ids of [pos, pos + n). */
uint64_t ingest_row_len(const run *r, uint64_t row);
int ingest_read_tokens(run *r, uint64_t pos, uint64_t n, uint32_t *out);
/* Dictionary i's codes at positions [p0, p1), into c (emptied first): encoded from
 * the activations, or the imported ones. The encode side runs beside a commit, so
 * its errors go in r->perr. */
int ingest_codes(run *r, int i, uint64_t p0, uint64_t p1, csr *c);
void ingest_csr_free(csr *c);

/* The run's inputs, tokens first then the activations (or codes): in[0 .. return). */
int ingest_inputs(run *r, input **in);

/* ---- Batches (ingest.c) ---- */

/* A batch in flight: rows [r0, r1), their tokens and each dictionary's codes. Two
 * of them alternate: one is encoded while the other is written. */
typedef struct bbuf {
    uint64_t r0, r1;
    uint64_t next_rows;        /* rows of the batch after this one (the run record keeps it) */
    uint32_t *toks;
    csr *codes;                /* one per dictionary */
} bbuf;

/* The run's dictionaries by name (r->o->n_dicts of them, each once): their records
 * and ids, with room for their handles and encoders; ingest_free_dicts frees those
 * arrays (after ingest_close_sources). */
int ingest_name_dicts(run *r, const char *const *names);
void ingest_free_dicts(run *r);

/* Writes batch bb (its sequences, codes and the run's progress, done marking the
 * run finished) in one transaction, growing the map when it fills. */
int ingest_commit_batch(run *r, const bbuf *bb, int done);

/* ---- The run record (runrec.c) ---- */

/* Finds the run to do: a new one (r->new_run, a fresh r->rec), or an unfinished one
 * to resume (r->rec, rows_done, next_rows); "done already" is an error. r->id is its
 * key. Reads the inputs again only when their stat signatures changed. */
int ingest_find_run(run *r);

/* Finds a stream's run by its source label (r->o->source), dictionaries, ctx and
 * precision: a new one (r->new_run), or an unfinished one to go on with (rows_done,
 * and rows_sha, the chain hash of its rows' tokens); a finished one is refused. */
int ingest_find_stream(run *r, uint8_t rows_sha[32]);

/* The ctx of a stream named r->o->source of r's dictionaries and precision, or 0
 * when there is none. */
int ingest_stream_ctx(run *r, uint32_t *ctx);

/* Records, in w's transaction, that rows [from, rows_done) are stored, and that the
 * run has written codes for seqs (NULL: r->seqs, none in this transaction); refuses
 * when the record in the database no longer says from (another ingest of the run). */
int ingest_put_run(run *r, ldb_writer *w, uint64_t from, uint64_t rows_done, uint64_t next_rows,
                   int done, const seqset *seqs);

/* Puts the inputs' path, size, content hash and stat signature into r->rec. */
int ingest_put_inputs(run *r);

/* The content hash of an input, computed once (a whole read, on several threads). */
int ingest_input_content(run *r, input *in);

/* ---- Sequences a run wrote codes for, and duplicates (covered.c) ---- */

/* Adds sequence id to s (ranges merged); 1 when it holds id already. */
int seqset_add(seqset *s, uint64_t id);
int seqset_has(const seqset *s, uint64_t id);
uint64_t seqset_count(const seqset *s);
int seqset_copy(seqset *dst, const seqset *src);
void seqset_free(seqset *s);
/* "seqs" of a record: into s (0 when the record has none: *have = 0); LDB_EFORMAT
 * when it is not ascending ranges. As JSON: [[first, last], ...]. */
int seqset_from_json(seqset *s, const cJSON *a, int *have);
cJSON *seqset_to_json(const seqset *s);

/* The run's sequences from its record (r->seqs; r->track unless it is a record of
 * before, resumed, that has none). */
int ingest_load_seqs(run *r);

/* Takes the run's sequences from its record (a resumed run's) or starts them (a new
 * run's), then looks, unless --again, for rows whose tokens already hold codes of
 * the run's dictionaries from other runs (r->covered): a new run all of whose rows
 * are is refused, naming those runs; nothing is written either way. */
int ingest_find_covered(run *r);

#endif
