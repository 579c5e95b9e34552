/* cli.h — shared pieces of the latentdb command-line tool: error reporting with the
 * exit-status convention (1 = failure, 2 = usage) and small option helpers. */
#ifndef LDB_CLI_H
#define LDB_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "latentdb.h"

#define EXIT_USAGE 2

/* Prints "latentdb: <message>" on stderr and returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "latentdb: <message>" and the usage hint on stderr and returns 2. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a warning line "latentdb: warning: ..." on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Once per process, after OpenBLAS is loaded: a note on stderr when the user's
 * OPENBLAS_CORETYPE keeps an AVX-512 CPU on slower kernels (ldb_blas_better_core). */
void cli_blas_note(void);

/* Progress on stderr, only when it is a terminal; at most ~4 updates a second. done/total counted in unit ("tokens", "documents"); label
 * like "ingest". cli_progress_end clears the line. */
void cli_progress(const char *label, const char *unit, unsigned long long done,
                  unsigned long long total);
void cli_progress_end(void);

/* ingest's and import's progress callback (progress_ctx: a cli_run): the bar, and once,
 * when the run resumes, "resuming run R at sequence N of M" on stderr. (cmd_db.c) */
typedef struct cli_run {
    const char *label;         /* "ingest" or "import" */
    const struct ldb_ingest_report *rep;
    int told;
} cli_run;
void cli_run_progress(void *ctx, uint64_t done, uint64_t total);
/* The summary object --json prints when a run ends (cmd_db.c). */
struct cJSON *cli_run_json(struct ldb_db *db, const char *path, const ldb_ingest_opts *o,
                           const struct ldb_ingest_report *rep, double secs);

double cli_now(void);

/* An activations file: [n, d] or [n_seq, ctx, d], float32 or float16, mapped. */
typedef struct acts {
    ldb_array *arr;
    const ldb_array_info *a;
    const uint8_t *data;       /* the elements */
    int dtype;                 /* LDB_F32 or LDB_F16 */
    uint64_t rows;
} acts;
/* Opens and checks one (width = d_in, named `what` in messages); prints errors.
 * Close it with cli_acts_close either way. (files.c) */
int cli_acts_open(acts *x, const char *path, uint32_t width, const char *what);
void cli_acts_close(acts *x);

/* The inputs (or targets) of a dictionary of `layers` layers: for one layer, one file
 * as cli_acts_open reads it; for more, one file per layer "A0.npy,A1.npy,..." or one
 * array [n, layers, width]. Layer l's row r is at xs[l] + r * stride elements.
 * Prints errors; close it with cli_layer_acts_close either way. (files.c) */
typedef struct layer_acts {
    acts f[256];
    int n_files;
    const void *xs[256];
    size_t stride;
    uint64_t rows;
    int dtype;
} layer_acts;
int cli_layer_acts_open(layer_acts *la, const char *spec, uint32_t layers, uint32_t width,
                        const char *what);
void cli_layer_acts_close(layer_acts *la);

/* The positions to leave out of dict eval's figures and search --acts's ranking
 * (skipset.c): rows of the activations whose token (from a tokens file of one id per
 * row) is one of ids. cli_skip_open prints its errors; close it either way. */
typedef struct cli_skip {
    ldb_array *tok;            /* the tokens file, or NULL */
    const ldb_array_info *t;
    uint8_t *row;              /* row[r] = 1: left out (NULL: no skip set) */
    uint32_t ids[1024];
    size_t n_ids;
    uint64_t n_skipped;
} cli_skip;
int cli_skip_open(cli_skip *s, const char *tokens, uint64_t rows, const uint32_t *ids, size_t n);
void cli_skip_close(cli_skip *s);
uint32_t cli_skip_token(const cli_skip *s, uint64_t r); /* the token of row r (tokens given) */
/* When no skip set was given: a warning when the rows look like BOS rows (every row
 * of a [rows, ctx] tokens file starts with the same token, or else rows of x, stride
 * elements apart, of a norm over 8x the median); what: "FVU and L0", advice: what to
 * pass. 1 when it warned. */
int cli_bos_hint(const char *what, const char *advice, const char *tokens, const cli_skip *s,
                 const void *x, int dtype, uint64_t rows, size_t stride, uint32_t width);

/* Small file helpers (files.c): stat tests, "dir/name" (malloc'd), and a whole file
 * of at most max bytes, NUL-terminated (malloc'd; prints the error and returns 1);
 * path "-" reads standard input. */
int cli_is_dir(const char *path);
int cli_is_file(const char *path);
char *cli_path_join(const char *dir, const char *name);
int cli_read_file(const char *path, size_t max, char **out, size_t *len);

struct cJSON;
struct ldb_db;
/* Output of strings the CLI did not write (output.c). cli_json_write prints o on
 * one line to f and frees it; every string in it is valid UTF-8 (each invalid
 * sequence -> U+FFFD) with every control character escaped, whatever o holds.
 * 0, or -1 on a write error. cli_print_json is cli_json_write(stdout, o). */
int cli_json_write(FILE *f, struct cJSON *o);
void cli_print_json(struct cJSON *o);
/* Prints s[0..n) on one line: invalid UTF-8 as U+FFFD, newlines as ↵, tabs and
 * other controls escaped (\t, \x1b, \u009b). */
void cli_put_text(FILE *f, const char *s, size_t n);
void cli_put_oneline(const char *s, size_t n); /* to stdout */
/* s as cli_put_text would print it, for a printf("%s"): s itself when it needs no
 * change, else a malloc'd copy left in *tmp for the caller to free (*tmp is NULL
 * otherwise).  char *t; printf("%s\n", cli_safe(label, &t)); free(t); */
const char *cli_safe(const char *s, char **tmp);
/* After a DB at path is opened: a SIGSEGV inside liblmdb (a damaged page) or a
 * SIGBUS on a mapped file (cut short, unreadable) prints what was damaged and
 * what to do, and exits with status 1; other faults go to the handler before
 * (fault.c). */
void cli_fault_guard(const char *path);
/* Opens a DB, printing the error; returns 0 or the exit status. */
int cli_open_db(const char *path, int flags, struct ldb_db **db);
/* Closes db, first printing a note a writer's catalog update left (ldb_db_note). */
void cli_close_db(struct ldb_db *db);
/* Parses a non-negative decimal integer < 2^32; 0 or -1. */
/* "f32" or "bf16" into LDB_PRECISION_*; 0 or -1. */
int cli_parse_precision(const char *s, int *out);
int cli_parse_u32(const char *s, uint32_t *out);
/* A command's arguments: want positional ones into pos, --json, and one flag of its
 * own (NULL: none); 0, or the exit status after the usage (need: what to say when
 * positional ones are missing). */
int cli_args(int argc, char **argv, const char *usage, int want, const char **pos, int *json,
             const char *flag, int *set, const char *need);
/* Comma-separated token ids ("" for none) into ids (at most cap); 0 or -1. */
int cli_parse_ids(const char *s, uint32_t *ids, size_t cap, size_t *n);

/* latents.c: a LATENT argument ("N" or "LAYER:INDEX") to its global id (0, or an exit
 * code after the message); "latent" (+ "layer", "index" in a multi-layer dictionary)
 * into a JSON object; the latent as printed ("17", or "3:17"). */
int cli_latent_syntax(const char *text); /* 1 when text reads as N or LAYER:INDEX */
int cli_latent_arg(struct ldb_db *db, const char *dict, const char *text, uint32_t *latent);
void cli_latent_json(struct cJSON *o, struct ldb_db *db, const char *dict, uint32_t latent);
const char *cli_latent_str(struct ldb_db *db, const char *dict, uint32_t latent, char buf[32]);

int cmd_dict(int argc, char **argv);
int cmd_dict_add(int argc, char **argv);
int cmd_dict_ls(int argc, char **argv);
int cmd_dict_rm(int argc, char **argv);         /* cmd_manage.c */
int cmd_dict_set_path(int argc, char **argv);
int cmd_set_skip(int argc, char **argv);
int cmd_set_tokenizer(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_runs(int argc, char **argv);            /* cmd_runs.c */
/* After an ingest or import: "N of M sequences already hold codes of D" on stderr
 * when some did (what was done with them: stored again, or skipped). (cmd_runs.c) */
void cli_run_covered(const ldb_ingest_opts *o, const struct ldb_ingest_report *rep);
int cmd_check(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_latent(int argc, char **argv);
int cmd_density(int argc, char **argv);
int cmd_cooc(int argc, char **argv);
int cmd_samples(int argc, char **argv);
int cmd_seq(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_serve(int argc, char **argv);  /* tools/web/serve.c */
int cmd_page(int argc, char **argv);   /* tools/web/pages.c */
struct ldb_bin;
/* Writes a histogram as an SVG file (tools/web/svg.c, the pages' plot); logx: the
 * bins are log10 values. 0, or 1 with the message out. */
int cli_svg_file(const char *path, const struct ldb_bin *bins, uint32_t n, int logx,
                 const char *xlabel);

/* Examples as JSON and as lines (textview.c): with a tokenizer, contexts read as
 * text with the firing token in [[ ]]; JSON adds "text" and "pieces". */
struct ldb_example;
struct ldb_examples;
struct ldb_samples;
struct ldb_tokenizer *cli_db_text(struct ldb_db *db); /* the DB's tokenizer or NULL */
struct cJSON *cli_example_json(const struct ldb_example *e, struct ldb_tokenizer *t);
struct cJSON *cli_examples_json(const struct ldb_examples *e, struct ldb_tokenizer *t);
struct cJSON *cli_samples_json(const struct ldb_samples *s, struct ldb_tokenizer *t);
/* An example on one line; with cli_color, each token of its context shaded by its
 * value (mx: the latent's largest), else the firing token marked [[so]]. */
void cli_print_example(int rank, const struct ldb_example *e, struct ldb_tokenizer *t, double mx);
/* Terminal colours (--color auto|always|never; auto: stdout is a terminal, TERM is
 * not dumb and NO_COLOR is unset): cli_color_arg sets cli_color, -1 for a bad word. */
extern int cli_color;
int cli_color_arg(const char *s);
/* The background of a token of value v where the latent's largest is mx: white
 * through orange (pages and terminal alike). */
void cli_shade_rgb(double v, double mx, int rgb[3]);
/* One token's text on a background shaded by v, bold and underlined when mark. */
void cli_put_shaded(struct ldb_tokenizer *t, uint32_t id, float v, double mx, int mark);
/* Adds "pieces" (each token as it reads) and, when text, "text" (the decoded ids) to o. */
void cli_text_json(struct cJSON *o, struct ldb_tokenizer *t, const uint32_t *ids, size_t n, int text);
/* Token id as it reads in text (ldb_tokenizer_piece_text), or with text = 0 its
 * stored piece (ldb_tokenizer_piece), whole however long: buf[cap] when it fits,
 * else a malloc'd copy left in *tmp for the caller to free (*tmp is NULL otherwise;
 * without memory, the cut text in buf). Its length in *n.
 *   char b[512], *tmp; size_t n; const char *s = cli_piece(t, id, 1, b, sizeof b, &tmp, &n); */
const char *cli_piece(const struct ldb_tokenizer *t, uint32_t id, int text, char *buf, size_t cap,
                      char **tmp, size_t *n);

struct ldb_tokenizer;
/* A tokenizer.json, or the tokenizer stored in a DB (then *db is open and owns
 * it; close *db, not the tokenizer). Prints the error; returns 0 or 1. */
int cli_open_tokenizer(const char *path, struct ldb_tokenizer **t, struct ldb_db **db);

#endif
