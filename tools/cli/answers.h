/* answers.h — the JSON answer of each query, built in one place: the CLI prints it
 * for --json and `latentdb serve` returns it from its API, so the two are byte for
 * byte the same (both print with cli_json_write).
 *
 * Each ans_* takes an open DB and arguments already parsed and checked for range
 * (the CLI from argv, the server from a query string), runs its queries in read
 * transactions of its own (so it may run on any thread sharing the handle), and
 * returns a cJSON document the caller owns, or NULL with *e filled: the message,
 * and the HTTP status it amounts to (404 a dictionary, latent or sequence that does
 * not exist; 400 any other fault of the arguments; 500 the store's or the
 * machine's). LATENT arguments are text, N or LAYER:INDEX, as a user writes them. */
#ifndef LDB_CLI_ANSWERS_H
#define LDB_CLI_ANSWERS_H

#include <stdint.h>

#include "latentdb.h"

struct cJSON;

typedef struct ans_err {
    int status;                /* 400, 404 or 500 */
    char msg[1024];
} ans_err;

/* Fills e from the library's code rc and message msg; returns NULL (for returns). */
struct cJSON *ans_fail(ans_err *e, int rc, const char *msg);
/* Fills e with a 400 and a formatted message; returns NULL. */
struct cJSON *ans_bad(ans_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The CLI's end of an answer: prints j (and frees it) and returns 0, or prints
 * e's message as a failure and returns 1. */
int cli_answer(struct cJSON *j, const ans_err *e);

/* A sequence id as text (digits only), or a 400. */
int ans_seq_arg(const char *text, uint64_t *seq, ans_err *e);

/* The latent named by text (N or LAYER:INDEX) in dict, or an error. */
int ans_latent_arg(ldb_db *db, const char *dict, const char *text, uint32_t *latent, ans_err *e);

struct cJSON *ans_info(ldb_db *db, ans_err *e);
struct cJSON *ans_dicts(ldb_db *db, ans_err *e);
struct cJSON *ans_top(ldb_db *db, const char *dict, const char *latent, const ldb_top_opts *o,
                      ans_err *e);
struct cJSON *ans_latent(ldb_db *db, const char *dict, const char *latent, uint32_t bins,
                         ans_err *e);
/* layer: LDB_ALL_LAYERS or one layer of a multi-layer dictionary; counts: with
 * every latent's count. */
struct cJSON *ans_density(ldb_db *db, const char *dict, uint32_t layer, uint32_t bins, int counts,
                          ans_err *e);

/* cooc's options as the user gives them: scope "token", "window:N" or "seq"; sort
 * "jaccard", "count" or "npmi"; with NULL (the same dictionary), DICT or DICT:LAYER. */
typedef struct ans_cooc_opts {
    const char *with, *scope, *sort;
    uint32_t k;
} ans_cooc_opts;
void ans_cooc_opts_init(ans_cooc_opts *o);
/* The options checked and read: the query's arguments. Messages name the option
 * without dashes ("scope takes ..."); the CLI prefixes "--". */
typedef struct ans_cooc_args {
    int scope, sort;
    uint32_t window, with_layer;
    const char *with;          /* the dictionary name alone */
    char withname[128];
} ans_cooc_args;
int ans_cooc_parse(const ans_cooc_opts *o, ans_cooc_args *a, ans_err *e);
struct cJSON *ans_cooc(ldb_db *db, const char *dict, const char *latent, const ans_cooc_opts *o,
                       ans_err *e);

/* samples' options: by "count" or "value". */
typedef struct ans_samples_opts {
    uint32_t groups, per_group, seed, context;
    const char *by;
} ans_samples_opts;
void ans_samples_opts_init(ans_samples_opts *o);
/* LDB_SAMPLES_BY_* of by, or -1 with e filled. */
int ans_samples_by(const char *by, ans_err *e);
struct cJSON *ans_samples(ldb_db *db, const char *dict, const char *latent,
                          const ans_samples_opts *o, ans_err *e);

/* One sequence with the k largest codes at each position (of dict, or of every
 * dictionary when dict is NULL). */
struct cJSON *ans_seq(ldb_db *db, uint64_t seq, const char *dict, uint32_t k, ans_err *e);

/* The DB's tokenizer and text's ids (at least one; the caller frees them), or -1
 * with e filled (no tokenizer, or no tokens). */
int ans_text_ids(ldb_db *db, const char *text, ldb_tokenizer **t, uint32_t **ids, size_t *n,
                 ans_err *e);
/* search by text through the DB's tokenizer; where_all: any token of the match. */
struct cJSON *ans_search(ldb_db *db, const char *dict, const char *text, uint32_t k, int where_all,
                         ans_err *e);

#endif
