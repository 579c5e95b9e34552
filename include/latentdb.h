/* latentdb.h — the one public header of latentdb, and its manual.
 * latentdb keeps the sparse codes of dictionaries (SAEs, transcoders) over a corpus.
 *
 * Conventions, for every call below:
 * - Errors. Every fallible call returns LDB_OK (0) or a negative LDB_E* code; the
 *   detailed message (file, what was expected, what was found) is on the handle
 *   (ldb_db_errmsg, ldb_dict_errmsg, ...), valid until the next call on that handle
 *   from the same thread.
 * - Memory. A pointer returned as `const` is borrowed: it belongs to the handle and
 *   lives as long as the call's comment says. Results of queries are allocated and
 *   freed by their matching _free (which accepts NULL); plain buffers the library
 *   allocates for the caller (strings, id arrays) are freed with ldb_free().
 * - Options. Option structs start with `uint32_t size` and are initialised by their
 *   _init function (ldb_top_opts_init(&o)); then set the fields wanted. A NULL
 *   options pointer means all defaults. New fields are added at the end, so a
 *   program built against an older header keeps working.
 * - Threads. Each handle type says whether it may be shared between threads. */
#ifndef LATENTDB_H
#define LATENTDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: exactly what this header declares
 * is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The version this header belongs to; ldb_version() is the library's. */
#define LDB_VERSION "0.2.0"
const char *ldb_version(void);

/* Frees a buffer the library allocated for the caller (ldb_dict_describe's string,
 * ldb_tokenizer_encode's ids, ...). Accepts NULL. */
void ldb_free(void *p);

/* ---- Return codes ------------------------------------------------------- */
#define LDB_OK            0
#define LDB_ENOMEM       -1  /* out of memory */
#define LDB_EIO          -2  /* the OS refused a read, write, mmap or open */
#define LDB_EFORMAT      -3  /* a file is malformed: truncated, bad header, bad shape */
#define LDB_EUNSUPPORTED -4  /* well-formed, but a feature latentdb does not handle */
#define LDB_EINVAL       -5  /* bad argument from the caller */
#define LDB_EBLAS        -6  /* OpenBLAS could not be loaded */
#define LDB_ENOTFOUND    -7  /* a named file, tensor or object does not exist */
#define LDB_EBADVALUE    -8  /* a value is out of its domain (NaN/Inf in weights) */

/* Returns a static string naming rc, e.g. "malformed file". Never NULL. */
const char *ldb_strerror(int rc);

/* ---- Dictionaries --------------------------------------------------------
 * A dictionary is an SAE, transcoder or skip transcoder loaded from one of the
 * published formats:
 *   "saelens"      folder with cfg.json + sae_weights.safetensors
 *   "gemmascope"   Gemma Scope (v1) params.npz (or its folder)
 *   "gemmascope2"  folder with config.json + params.safetensors
 *   "sparsify"     EleutherAI sparsify folder with cfg.json + sae.safetensors
 * and the multi-layer ones (cross-layer transcoders, crosscoders), a folder of
 * per-layer files numbered from 0:
 *   "gemmascope2"  config.json + params_layer_{i}.safetensors (w_enc [d_in, d_sae],
 *                  b_enc, threshold, b_dec [d_out], w_dec [d_sae, n_layers, d_out],
 *                  optional affine_skip_connection [d_in, d_out])
 *   "circuit-tracer"  W_enc_{i}.safetensors (W_enc_{i} [d_sae, d_in], b_enc_{i},
 *                  b_dec_{i}, threshold_{i} or none for relu) + W_dec_{i}.safetensors
 *                  (W_dec_{i} [d_sae, n_layers - i, d_out])
 * Weight files are memory-mapped; F32 tensors are used in place, F16/BF16
 * encoder tensors are converted to F32 once. W_dec is never read to encode.
 *
 * Threads: an open ldb_dict is read-only (what it derives on first use, such as
 * the SHA-256 or a bf16 copy of W_enc, is made once under a lock), so it may be
 * shared: ldb_dict_get_info, ldb_dict_sha256, ldb_dict_describe, ldb_dict_decode
 * and ldb_encoder_new may be called on one dictionary from several threads at
 * once. Encoding runs on an ldb_encoder (below), one per thread. ldb_dict_close
 * comes last: after every other call on d has returned and every encoder made
 * from d has been freed. */
typedef struct ldb_dict ldb_dict;

typedef struct ldb_dict_info {
    const char *format;        /* "saelens", "gemmascope", "gemmascope2", "sparsify" */
    const char *architecture;  /* "jumprelu", "standard", "gated", "topk", "groupmax" */
    const char *type;          /* "sae" or "transcoder" */
    const char *dtype;         /* weights as stored: "float32", "float16", "bfloat16" */
    const char *hook_in;       /* "" when the files do not say */
    const char *hook_out;      /* "" when the files do not say */
    const char *model;         /* "" when the files do not say */
    const char *normalize;     /* "none", "constant_norm_rescale", "layer_norm" */
    const char *weights_path;  /* the file holding the tensors */
    const char *config_path;   /* "" when the format has no config file */
    uint32_t d_in, d_out, d_sae;
    uint32_t k;                /* topk / groupmax k, else 0 */
    double l0;                 /* L0 stated by the config, or -1 when absent */
    int sub_b_dec;             /* 1 when x - b_dec is encoded */
    int has_skip;              /* 1 when a skip/affine term is added on decode */
    int relu_first;            /* topk: 1 = relu then top-k (sparsify), 0 = top-k then relu */
    uint32_t n_layers;         /* 1, or the layers of a cross-layer transcoder / crosscoder */
    const char *kind;          /* "sae", "transcoder", "clt" or "crosscoder" (as the config
                                  says; "clt" when a multi-layer config does not) */
} ldb_dict_info;

/* One layer of a dictionary. A cross-layer transcoder (CLT) or crosscoder has one
 * encoder per layer, reading that layer's input, and a decoder that writes a
 * layer's latents into its own output and every later one. Its latents are
 * numbered globally through the layers in order: latent j of layer l is
 * offset + j. A single-layer dictionary has one layer, at offset 0. */
typedef struct ldb_dict_layer {
    uint32_t layer;            /* 0 .. n_layers-1: the dictionary's own layer number */
    uint32_t d_in, d_sae, d_out;
    uint32_t offset;           /* global id of the layer's first latent */
    const char *hook_in;       /* "" when the files do not say */
    const char *hook_out;
    const char *weights_path;  /* the layer's file (its encoder file in circuit-tracer's
                                  layout) */
} ldb_dict_layer;

/* Layer i of d (i < n_layers), owned by d; NULL when i is out of range. */
const ldb_dict_layer *ldb_dict_get_layer(const ldb_dict *d, uint32_t i);

/* Opens the dictionary at path (a folder or a weights file; the format is
 * detected). Like sqlite3_open, *out is set to a handle even on failure (unless
 * memory ran out, then NULL), so that ldb_dict_errmsg(*out) can say what was
 * wrong; close it with ldb_dict_close() either way.
 *   ldb_dict *d; if (ldb_dict_open("sae/", &d)) puts(ldb_dict_errmsg(d)); */
int ldb_dict_open(const char *path, ldb_dict **out);

/* Releases everything; accepts NULL. */
void ldb_dict_close(ldb_dict *d);

/* The last error message, e.g. "sae/cfg.json: d_sae is 256 but b_enc has 257
 * elements". Valid until the next call on d. Never NULL (empty if no error).
 * Calls on a shared dictionary that fail all write this one message: it is the
 * caller's own only while no other thread's call on d fails meanwhile (the return
 * code always is). Encoders keep their own (ldb_encoder_errmsg). */
const char *ldb_dict_errmsg(const ldb_dict *d);

/* Facts about an open dictionary; owned by d, valid until ldb_dict_close(). */
const ldb_dict_info *ldb_dict_get_info(const ldb_dict *d);

/* SHA-256 of the weights file as 64 lowercase hex digits + NUL in hex[65]; of a
 * multi-layer dictionary, of its files' bytes one after another in layer order
 * (in circuit-tracer's layout W_enc_{i} then W_dec_{i}).
 * Reads the whole file; computed once, then cached (threads that
 * ask meanwhile wait for the first one's answer). */
int ldb_dict_sha256(ldb_dict *d, char hex[65]);

/* The description `dict show --json` prints, as a JSON object: format,
 * architecture, type, d_in, d_out, d_sae, dtype, hook_in, hook_out, model, l0,
 * k, normalize, subtract_b_dec, skip, weights, config, sha256 (computing it on
 * first use), and for a multi-layer dictionary kind, n_layers and layers: [{layer,
 * d_in, d_sae, d_out, offset, hook_in, hook_out, weights}]. Returns a string the caller frees with ldb_free, or NULL (message on d). */
char *ldb_dict_describe(ldb_dict *d);

/* ---- Encoding ------------------------------------------------------------
 * An encoder turns activations into sparse codes with one dictionary. It owns
 * what an encode needs (workspace, worker threads' buffers, the GEMM), so several
 * encoders may run on one dictionary at once, from different threads (multi-layer
 * dictionaries hold one per layer); the dictionary must outlive its encoders.
 * Activations go through the encoder in tiles: one GEMM per tile, then the
 * activation function turns each row into a sparse list of (latent, value) with
 * value > 0, ascending by latent. Dense codes of the whole input are never
 * materialised.
 *
 * Threads: an ldb_encoder is used by one thread at a time (its own encode runs
 * worker threads inside); many encoders on one dictionary may run at once. */
typedef struct ldb_encoder ldb_encoder;

/* Element types for activations handed to the encoder. */
#define LDB_F32  0
#define LDB_F16  1
#define LDB_BF16 2

/* Precision of the encoder. EXACT (the default) and F32 give the same codes, the
 * reference's (docs/ARCHITECTURE.md, "Exact encode"): a latent's pre-activation is
 * an f32 dot product of the prepared row and its encoder column in one fixed order,
 * so the codes depend on the row and the dictionary alone, never on the GEMM, the
 * tile or batch size, the thread count, the CPU or the build. A fast GEMM (the
 * screen) only finds the latents that could fire, with a proven bound on its error,
 * and the reference decides those. EXACT screens with oneDNN's bf16 matmul where the
 * CPU runs it natively (AMX, AVX512_BF16), else with OpenBLAS's sgemm; F32 always
 * screens with sgemm. BF16 is approximate: the codes of the bf16 matmul itself
 * (activations and W_enc rounded to bf16, f32 accumulation), which flip the decision
 * of codes within about 1% of their threshold and move every value; ldb_encoder_new
 * refuses it with LDB_EUNSUPPORTED, and the reason, when oneDNN (libdnnl.so.2) is
 * missing or has no bf16 matmul for this CPU. The bf16 copy of W_enc (half its f32
 * size) and, for the exact encoders of a [d_in, d_sae] W_enc, a transposed f32 copy
 * (its size) are made once per dictionary and shared by its encoders
 * (ldb_encoder_memory). Further modes get new values. */
#define LDB_PRECISION_F32   0
#define LDB_PRECISION_BF16  1
#define LDB_PRECISION_EXACT 2

typedef struct ldb_encoder_opts {
    uint32_t size;             /* set by ldb_encoder_opts_init */
    int precision;             /* LDB_PRECISION_EXACT (default), _F32 or _BF16 */
    int threads;               /* worker threads, at most 8; 0: ldb_blas_threads() */
    uint32_t tile_rows;        /* rows per tile; 0: the default from d_sae (below) */
} ldb_encoder_opts;

/* Zeroes o and sets its size: exact, as many workers as OpenBLAS threads, default
 * tiles. Rows per tile default to keeping a tile's dense pre-activations within
 * about 64 MiB, 64 to 4096 rows; each worker holds one tile. Above that budget (a
 * 64-row tile of more than 262144 latents) an f32 jumprelu or relu encoder
 * multiplies the tile a span of latents at a time, so a worker holds 64 MiB at any
 * width (other activations and bf16 hold the whole tile: 256 MiB at 1M latents).
 * Exact codes depend on nothing of this; BF16's depend on the tile size (a GEMM's
 * last bits depend on its shape), never on the thread count. */
void ldb_encoder_opts_init(ldb_encoder_opts *o);

/* Makes an encoder for d with options o (NULL: the defaults). It keeps a pointer
 * to d, which must stay open until ldb_encoder_free. Like ldb_dict_open, *out is
 * set even on failure (unless memory ran out, then NULL), so that
 * ldb_encoder_errmsg(*out) can say what was wrong; free it either way. LDB_EINVAL
 * for options not set up by ldb_encoder_opts_init (size 0), an unknown precision
 * or a tile over 2^20 rows; LDB_EUNSUPPORTED for bf16 where it cannot run.
 *   ldb_encoder_opts o; ldb_encoder_opts_init(&o); o.precision = LDB_PRECISION_BF16;
 *   ldb_encoder *e; if (ldb_encoder_new(d, &o, &e)) puts(ldb_encoder_errmsg(e)); */
int ldb_encoder_new(ldb_dict *d, const ldb_encoder_opts *o, ldb_encoder **out);

/* Releases the encoder (not its dictionary); accepts NULL. */
void ldb_encoder_free(ldb_encoder *e);

/* The last error message of e. Valid until the next call on e. Never NULL. */
const char *ldb_encoder_errmsg(const ldb_encoder *e);

/* One tile of sparse codes in CSR form. Row r (0-based, global row
 * = row0 + r) has nonzeros latent[start[r] .. start[r+1]) and the matching
 * value[]. Owned by the encoder; valid only during the callback. */
typedef struct ldb_codes {
    uint64_t row0;             /* global index of the first row of the tile */
    uint32_t n_rows;
    const uint64_t *start;     /* n_rows + 1 offsets */
    const uint32_t *latent;
    const float *value;
} ldb_codes;

/* Called once per tile, in row order, on the thread that called
 * ldb_encoder_encode. Return non-zero to stop the encode; that value is then
 * returned by ldb_encoder_encode. */
typedef int (*ldb_codes_fn)(void *ctx, const ldb_codes *tile);

/* Encodes n_rows rows of d_in elements of type dtype (LDB_F32/F16/BF16), row
 * r at x + r * d_in elements. Calls fn per tile, on the calling thread; the tiles
 * themselves run on the encoder's worker threads (the calling thread among them),
 * each with a single-threaded GEMM, so the codes do not depend on the thread count.
 * Loads OpenBLAS on first use (see ldb_blas_load). One encode at a time per
 * encoder.
 *   ldb_encoder_encode(e, acts, LDB_F32, n, print_tile, NULL); */
int ldb_encoder_encode(ldb_encoder *e, const void *x, int dtype, uint64_t n_rows,
                       ldb_codes_fn fn, void *ctx);

/* Encodes n_rows rows of a multi-layer dictionary: layer l's input row r at
 * x[l] + r * row_stride elements (row_stride 0: d_in, rows back to back). The
 * tiles handed to fn carry global latent ids (ldb_dict_layer.offset + index),
 * ascending within a row; each layer's codes are those its own encoder gives on
 * the same tile. For a single-layer dictionary x[0] alone is read.
 * ldb_encoder_encode on a multi-layer dictionary reads one array
 * [n_rows][n_layers][d_in] (x[l] = x + l * d_in, row_stride = n_layers * d_in). */
int ldb_encoder_encode_layers(ldb_encoder *e, const void *const *x, size_t row_stride, int dtype,
                              uint64_t n_rows, ldb_codes_fn fn, void *ctx);

/* ldb_encoder_encode fails with LDB_EBADVALUE when a row's pre-activations hold NaN
 * or Inf (finite inputs and weights whose f32 sum overflows); the tile that holds the
 * row and those after it are not handed to fn. This says where: the row (counted
 * from x), the latent and the value. LDB_ENOTFOUND when the last encode did not fail
 * so. */
int ldb_encoder_fault(const ldb_encoder *e, uint64_t *row, uint32_t *latent, float *value);

/* The GEMM in use: "exact, screen onednn bf16 (IMPL)", "exact, screen openblas
 * f32" or "onednn bf16 (IMPL)". Owned by e, valid until ldb_encoder_free. */
const char *ldb_encoder_gemm_name(const ldb_encoder *e);

/* The exact encoder's screen over every encode of e so far: *pairs (rows x latents)
 * screened and *refined, how many of them the reference computed (the candidate
 * fraction is their ratio). Both 0 for BF16. */
void ldb_encoder_screen_counts(const ldb_encoder *e, uint64_t *pairs, uint64_t *refined);

/* Bytes of the per-dictionary copies e's precision holds (the bf16 W_enc, the
 * exact encoder's transposed W_enc and row norms), shared with the dictionary's
 * other encoders; not the per-worker tiles. */
size_t ldb_encoder_memory(const ldb_encoder *e);

/* Reconstructs x_hat (n_rows x d_out floats) from one tile of codes and the
 * tile's input rows x (needed for the skip term and to undo SAELens input
 * normalisation). Reads W_dec (converted row by row when not F32). Safe from
 * several threads on one dictionary (its scratch is per call; the first call
 * scans W_dec for NaN/Inf once while the others wait). */
int ldb_dict_decode(ldb_dict *d, const ldb_codes *tile, const void *x, int dtype,
                    float *x_hat);

/* The reconstruction of each output layer of a multi-layer dictionary: output
 * layer o's row r at x_hat[o] + r * out_stride floats (0: d_out), from the codes
 * of the tile (global ids) and the layers' inputs (as ldb_encoder_encode_layers
 * reads them; needed for the affine skip term). The causal rule: latents of layer
 * l write outputs l..n_layers-1 only, x_hat_o = sum over l <= o of codes_l .
 * W_dec_l[:, o, :] + b_dec_o (+ x_o . A_o). The decoder's blocks for outputs before
 * a latent's layer are never read; the first call counts their non-zero entries
 * (ldb_dict_ignored_decoder). ldb_dict_decode on a multi-layer dictionary takes x
 * as [n_rows][n_layers][d_in] and x_hat as [n_rows][n_layers][d_out]. */
int ldb_dict_decode_layers(ldb_dict *d, const ldb_codes *tile, const void *const *x,
                           size_t row_stride, int dtype, float *const *x_hat, size_t out_stride);

/* How many non-zero decoder entries a multi-layer dictionary holds for outputs
 * before their latent's layer (ignored by the causal decode), after the first
 * decode; 0 before it and for a single-layer dictionary. */
uint64_t ldb_dict_ignored_decoder(const ldb_dict *d);

/* ---- BLAS ----------------------------------------------------------------
 * OpenBLAS is loaded with dlopen on the first encode, so that commands which do
 * not encode never pay for it. If OPENBLAS_CORETYPE is unset and the CPU has
 * AVX-512 F/BW/VL/DQ, it is set to "SkylakeX" (or "Cooperlake" with AVX512_BF16)
 * before loading: Debian's OpenBLAS 0.3.21 does not know AMD Zen 5 and would
 * fall back to its slower Haswell kernels. This changes the process
 * environment once. Returns LDB_OK or LDB_EBLAS. */
int ldb_blas_load(void);

/* The kernel set OpenBLAS runs ("Cooperlake", "Haswell", "Zen", ...), or
 * "not loaded". Static string. */
const char *ldb_blas_corename(void);

/* The thread count OpenBLAS was loaded with (OPENBLAS_NUM_THREADS, else the
 * cores), after ldb_blas_load: the encoder's worker count. While an encode runs,
 * OpenBLAS itself is held at one thread. */
int ldb_blas_threads(void);

/* Where the core choice came from: "user" (OPENBLAS_CORETYPE was set),
 * "latentdb" (set by ldb_blas_load from the CPU's features) or "openblas"
 * (OpenBLAS detected the CPU itself). */
const char *ldb_blas_core_origin(void);

/* After ldb_blas_load: the AVX-512 core latentdb would have chosen ("SkylakeX" or
 * "Cooperlake") when OPENBLAS_CORETYPE holds OpenBLAS to a core without AVX-512
 * on a CPU that has it (a machine-wide OPENBLAS_CORETYPE=Haswell, say); else NULL.
 * For a note to the user: the choice stays theirs. */
const char *ldb_blas_better_core(void);

/* C = A (m x k, row-major) * B (k x n, row-major, or n x k when trans_b) in
 * f32 through the loaded OpenBLAS; for benchmarks and tools. */
int ldb_blas_sgemm(int m, int n, int k, const float *a, const float *b,
                   int trans_b, float *c);

/* ---- Databases -----------------------------------------------------------
 * A database is a folder: an LMDB environment (the truth: sequences, tokens,
 * forward and inverted code indexes, per-latent summaries) and catalog.sqlite (a
 * SQL mirror of the catalog). Layouts: docs/FORMAT.md. */
typedef struct ldb_db ldb_db;

/* How code values are stored. */
#define LDB_VALUES_BF16 0
#define LDB_VALUES_F16  1
#define LDB_VALUES_F32  2

/* Creates a database at path (the folder may exist but must hold no database).
 * skip: token ids whose positions are left out of statistics (BOS, PAD).
 * *out is set even on failure (message via ldb_db_errmsg); close it either way.
 * The same as ldb_db_create with these options and no tokenizer. */
int ldb_db_init(const char *path, const uint32_t *skip, size_t n_skip, int values, ldb_db **out);

struct ldb_tokenizer;
typedef struct ldb_create_opts {
    uint32_t size;             /* set by ldb_create_opts_init */
    const uint32_t *skip;      /* token ids left out of statistics (BOS, PAD) */
    size_t n_skip;
    int values;                /* LDB_VALUES_*; default bf16 */
    struct ldb_tokenizer *tokenizer; /* stored in the database, or NULL */
    int skip_from_tokenizer;   /* the tokenizer's BOS, EOS and PAD are the skip set */
    int format;                /* on-disk version: 0 the newest (5); 4 or 3 an older one
                                  that latentdb still reads and writes (docs/FORMAT.md) */
} ldb_create_opts;
/* Defaults: no skip set, bf16 values, no tokenizer, the newest format. */
void ldb_create_opts_init(ldb_create_opts *o);

/* Creates a database at path, all or nothing: it is built (LMDB, meta, skip set,
 * tokenizer, catalog) in a folder beside path and renamed into place, or, when
 * path is an existing folder, built in a folder inside it and its files moved up,
 * data.mdb last. A failure leaves no database at path and nothing init cannot
 * redo (a process killed meanwhile leaves its hidden ".NAME.init-PID-N" folder
 * beside path or inside it, which may be deleted). Then opens it for writing;
 * *out is set even on failure, as for ldb_db_init. */
int ldb_db_create(const char *path, const ldb_create_opts *o, ldb_db **out);

#define LDB_OPEN_READ  0
#define LDB_OPEN_WRITE 1
/* Opens an existing database. Readers never block the writer and see committed
 * batches only. *out is set even on failure, as for ldb_db_init.
 *
 * Threads: one handle serves many threads at once. Queries (ldb_query_*,
 * ldb_seq_tokens, ldb_db_tokenizer, ldb_db_check) may run concurrently from any
 * threads, each in a read transaction of its own, also while another thread or
 * process writes. Writes (ldb_db_dict_add, ldb_ingest, ldb_db_label,
 * ldb_db_set_tokenizer, ldb_db_repair) on one handle are one thread at a time (LMDB
 * has one writer per database anyway; they may run beside queries).
 *
 * One environment per process: LMDB forbids opening a database twice in one
 * process, so opening a folder that is already open returns the same handle, and
 * each ldb_db_open needs its ldb_db_close (the last one closes it). A handle open
 * for writing serves read opens too; asking for writing while it is open read-only
 * is refused (LDB_EINVAL, saying so). */
int ldb_db_open(const char *path, int flags, ldb_db **out);
void ldb_db_close(ldb_db *db);      /* accepts NULL */
/* The message of the last failed call on db made by the calling thread ("" when
 * none failed); valid until that thread's next call on db. Each thread has its own. */
const char *ldb_db_errmsg(const ldb_db *db);
/* What the last open repaired on its own, for the user ("" when nothing): a
 * writable open moves a catalog.sqlite that is not a database aside and rebuilds
 * it from LMDB. Owned by db. */
const char *ldb_db_note(const ldb_db *db);

/* Registers the dictionary at path under name (letters, digits, '_', '-', '.').
 * Reads it to check it and to record its description and the SHA-256 of its
 * weights. The path is kept as given (made absolute; symlinks not resolved). */
int ldb_db_dict_add(ldb_db *db, const char *name, const char *path);

/* Removes dictionary name and everything stored of it: its codes (forward and
 * inverted indexes), summaries, top lists, counts, labels, co-occurrence summaries,
 * coverage, and the run records that wrote it (ingesting the same inputs again is
 * then a new run). Sequences and their tokens stay. One transaction: a kill leaves
 * the dictionary whole or gone. Its id is not given to a later dictionary.
 * LDB_ENOTFOUND when there is no such dictionary. */
int ldb_db_dict_rm(ldb_db *db, const char *name);

/* Points dictionary name at path after its files moved: the weights there must have
 * the recorded SHA-256 (else LDB_EINVAL naming both). */
int ldb_db_dict_set_path(ldb_db *db, const char *name, const char *path);

/* Makes skip[0..n) the skip set (token ids whose positions statistics leave out):
 * every summary over ordinary positions (counts, histograms, top lists, density,
 * co-occurrence summaries, coverage) is written again from the sequences, tokens and
 * forward blocks into a new data.mdb that replaces the old in one rename (a kill
 * leaves the old database or the new one). Needs the database to itself, as
 * ldb_db_repair does. Nothing is rewritten when the set is the one stored. */
int ldb_db_set_skip(ldb_db *db, const uint32_t *skip, size_t n);

/* The largest token id stored (*any = 0 when no token is). */
int ldb_db_max_token(ldb_db *db, uint32_t *max, int *any);

/* Registered dictionaries as this handle knows them (those added since it opened,
 * by another process, appear after the next write through it or a new open): count,
 * and the i-th one's record as JSON (the fields of `dict show` plus "name" and
 * "block"; NULL when i is out of range), owned by db and valid until ldb_db_close. */
int ldb_db_dict_count(const ldb_db *db);
const char *ldb_db_dict_json(const ldb_db *db, int i);

/* Latents of multi-layer dictionaries (cross-layer transcoders, crosscoders) are
 * numbered globally through the layers: latent j of layer l is the layer's first
 * latent + j. Every call that takes a latent takes the global id. */
#define LDB_ALL_LAYERS UINT32_MAX

/* The layers of dict: 1 for a single-layer dictionary; 0 when there is no such
 * dictionary (message on db). */
uint32_t ldb_db_dict_layers(ldb_db *db, const char *dict);

/* The latents of layer `layer` of dict: [*first, *end) (layer 0 of a single-layer
 * dictionary: all of them). LDB_EINVAL when the layer is out of range. */
int ldb_db_layer_latents(ldb_db *db, const char *dict, uint32_t layer, uint32_t *first,
                         uint32_t *end);

/* The global id of a latent written "N" (a global id) or "LAYER:INDEX" (latent INDEX
 * of layer LAYER; a single-layer dictionary has layer 0). LDB_EINVAL, naming the
 * range, for anything else. */
int ldb_db_latent_parse(ldb_db *db, const char *dict, const char *text, uint32_t *latent);

/* The layer of global latent id `latent` of dict and its index in that layer
 * (layer 0 and the id itself for a single-layer dictionary). */
int ldb_db_latent_layer(ldb_db *db, const char *dict, uint32_t latent, uint32_t *layer,
                        uint32_t *index);

/* ---- Ingest --------------------------------------------------------------
 * Encodes a corpus's activations through registered dictionaries and stores every
 * nonzero code. Batches commit atomically; a run interrupted at any point resumes,
 * when started again with the same arguments, after its last committed batch. */
typedef struct ldb_ingest_opts {
    uint32_t size;             /* set by ldb_ingest_opts_init */
    const char *const *dicts;  /* names of registered dictionaries */
    int n_dicts;
    const char *tokens;        /* T.npy: int32/int64 [n_seq, ctx] or [n_tokens] */
    const char *acts;          /* A.npy: float32/float16 [n_seq, ctx, d_in] or [n_tokens, d_in] */
    const char *codes;         /* instead of acts: precomputed codes, a scipy CSR .npz
                                  [n_tokens, d_sae] (import; one dictionary) */
    uint32_t ctx;              /* cut [n_tokens] inputs into rows of ctx; 0: from the shape */
    const char *source;        /* label of the sequences' source; NULL: the tokens path */
    int again;                 /* run a finished run again (new sequences) */
    uint64_t batch_tokens;     /* positions per batch; 0: a default bounded by memory */
    int precision;             /* LDB_PRECISION_EXACT (default), _F32 (exact codes too, over
                                  the f32 screen) or _BF16 (ldb_encoder_opts); exact or bf16
                                  is part of the run's identity, so a run resumes only in the
                                  codes it began with */
    /* progress: called after each committed batch with positions done and in all,
       on ldb_ingest's commit thread (not the caller's): it must not call into db. A
       resumed run also calls it once on the caller's thread before its first batch,
       with the positions stored before (report's resume fields are set by then). */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    /* A multi-layer dictionary's inputs, instead of acts: one file per layer in layer
       order, each [n_seq, ctx, d_in] or [n_tokens, d_in] over the same positions. (acts
       may hold them all instead: [n_seq, ctx, n_layers, d_in] or [n_tokens, n_layers, d_in].) */
    const char *const *layer_acts;
    int n_layer_acts;
    /* When set, filled as the ingest ends (after an error too): what encoded; its run
       fields as soon as the inputs are checked and the run found (before any batch). */
    struct ldb_ingest_report *report;
    /* Duplicates: before its first batch, a run looks for rows whose tokens (by content
       hash) sequences of other runs already hold with codes of one of its dictionaries.
       A new run all of whose rows do is refused (LDB_EINVAL, naming those runs: their
       ids as ldb_runs_list gives them, sources and times), and nothing is written;
       again (above) stores them as new sequences, as before. Some of them are reported
       (report->rows_covered) and stored as new sequences, or, with skip_covered set,
       skipped: neither stored again nor given codes. A run's own rows never count, so a
       resumed run skips what the uninterrupted one would have. */
    int skip_covered;
} ldb_ingest_opts;

typedef struct ldb_ingest_report {
    char gemm[96];             /* ldb_encoder_gemm_name of the first dictionary's encoder
                                  ("" for an import of codes) */
    uint64_t pairs, refined;   /* ldb_encoder_screen_counts, summed over the dictionaries */
    size_t encoder_bytes;      /* ldb_encoder_memory, summed: the copies of W_enc held */
    char run[13];              /* the run's id as `latentdb runs` shows it: the first 12 hex
                                  digits of its 32-byte key ("" before it is found) */
    int resumed;               /* 1: an unfinished run went on after its last batch */
    uint32_t ctx;              /* positions per sequence (row) */
    uint64_t n_rows, n_tokens; /* the input's sequences and positions */
    uint64_t rows_before;      /* sequences the run had stored before this call */
    uint64_t rows_done;        /* sequences it has stored now (n_rows when it finished) */
    uint64_t rows_covered;     /* input rows whose tokens held codes of its dictionaries
                                  from other runs (0 with again and not skip_covered) */
    int covered_dict;          /* index in opts->dicts of the dictionary found first */
    uint64_t rows_skipped;     /* of rows_done - rows_before, the covered ones left out
                                  (skip_covered): stored neither again nor attached */
} ldb_ingest_report;

/* Zeroes o and sets its size: no dictionaries or inputs yet, exact codes, default
 * batches. */
void ldb_ingest_opts_init(ldb_ingest_opts *o);

/* Runs an ingest. On error the database keeps every batch committed so far. */
int ldb_ingest(ldb_db *db, const ldb_ingest_opts *opts);

/* ---- Streaming ingest ------------------------------------------------------
 * An ingest whose rows come from the caller, batch by batch (a model loop), instead
 * of from files: the same sequences and codes as ldb_ingest of the same arrays, so
 * the same digest. The stream is a run named by its source label: each add commits
 * its rows with the run's progress, so a killed process loses at most the add in
 * flight, and opening a stream of the same source, dictionaries, ctx and precision
 * goes on with it. One thread at a time; the database's write rules hold (one
 * writer at a time, queries beside it). */
typedef struct ldb_stream ldb_stream;

typedef struct ldb_stream_opts {
    uint32_t size;             /* set by ldb_stream_opts_init */
    const char *const *dicts;  /* names of registered dictionaries (one layer count) */
    int n_dicts;
    const char *source;        /* required: the run's name, and its sequences' source label */
    uint32_t ctx;              /* positions per row: every add gives rows of ctx tokens; 0:
                                  the ctx of the stream of this source that exists
                                  (LDB_ENOTFOUND when there is none) */
    int precision;             /* LDB_PRECISION_EXACT (default), _F32 or _BF16, as ingest */
} ldb_stream_opts;

void ldb_stream_opts_init(ldb_stream_opts *o);

/* Opens (or goes on with) the stream. Sets *out even on failure, so that
 * ldb_stream_close can free it; the message is ldb_db_errmsg's. */
int ldb_stream_open(ldb_db *db, const ldb_stream_opts *o, ldb_stream **out);

/* Rows the run has committed (by this process or an earlier one), and its ctx. */
uint64_t ldb_stream_committed_rows(const ldb_stream *s);
uint32_t ldb_stream_ctx(const ldb_stream *s);

/* Rows [row0, row0 + rows) of the run: tokens [rows, ctx], and the activations of
 * each row's positions as n_acts arrays of dtype LDB_F32/F16/BF16: one [rows, ctx,
 * d_in] (or [rows, ctx, n_layers, d_in] for a multi-layer dictionary), or one
 * [rows, ctx, d_in] per layer. Rows come in order: row0 is the row after the last
 * one given (0 first), or, while that is below the committed rows, the committed
 * count (skipping ahead). Rows below the committed count are not written again:
 * their tokens are hashed, and once the given rows reach the committed count the
 * hash must equal the run's (LDB_EINVAL otherwise: different data). The rest is
 * checked (finite activations), encoded and committed in one transaction. On
 * error nothing of this call is written; the stream then refuses further adds. */
int ldb_stream_add(ldb_stream *s, uint64_t row0, const uint32_t *tokens,
                   const void *const *acts, int n_acts, int dtype, uint64_t rows);

/* Closes the stream; with finish set first marks the run finished (a finished
 * stream is not opened again). Accepts NULL. */
int ldb_stream_close(ldb_stream *s, int finish);

/* ---- Runs ----------------------------------------------------------------
 * Every ingest, import and stream is a run with a record in the database
 * (docs/FORMAT.md, "Run record"): its dictionaries, inputs, progress, times and the
 * sequences it wrote codes for. */

/* The runs as one JSON array, in the order they started (then by id). Each object
 * holds "id" (the run's 32-byte key as 64 hex digits; `latentdb runs` and messages
 * show the first 12), every field of its record ("dicts", "tokens", "source",
 * "rows", "rows_done", "status" ("running" or "done"), "started" and "finished" in
 * Unix seconds (0: not yet), "seqs" as [[first, last], ...] ranges, ...), and
 * "n_seqs": the sequences it wrote codes for, null for a record made before runs
 * recorded them (2026-12). A record that is not JSON is listed with its id and
 * "status": "damaged". *json is the caller's, freed with ldb_free. */
int ldb_runs_list(ldb_db *db, char **json);

/* ---- Queries -------------------------------------------------------------
 * Each query runs in its own read transaction (a consistent committed state).
 * Results are allocated by the call and freed by the matching _free (which
 * accepts NULL); they stay valid after the database is closed. */

typedef struct ldb_example {
    uint64_t seq;              /* sequence id */
    uint32_t pos;              /* position in it */
    float value;               /* the latent's stored value there */
    uint32_t ctx_start;        /* context: positions [ctx_start, ctx_start + ctx_len) */
    uint32_t ctx_len;
    uint32_t *tokens;          /* ctx_len token ids */
    float *values;             /* ctx_len values of the latent (0 where it is silent); it shares
                                  the allocation of tokens (both NULL when ctx_len is 0) */
} ldb_example;

typedef struct ldb_examples {
    uint32_t n;
    ldb_example *ex;
} ldb_examples;

typedef struct ldb_top_opts {
    uint32_t size;             /* set by ldb_top_opts_init */
    uint32_t k;                /* examples wanted (default 20) */
    uint32_t context;          /* tokens of context each side (default 8) */
    int distinct_seq;          /* the best position per sequence only */
    int include_special;       /* consider skipped positions too */
    int positions_only;        /* seq, pos and value only: no context, not even the token there
                                  (ctx_len 0); context is then ignored */
} ldb_top_opts;

/* Defaults: k 20, context 8, every position, ordinary positions only. */
void ldb_top_opts_init(ldb_top_opts *o);

/* Top examples of a latent: by stored value descending, ties by (seq, pos).
 * k <= 100 comes from precomputed candidates; larger k, --distinct-seq beyond the
 * candidates, and include_special scan the latent's postings. */
int ldb_query_top(ldb_db *db, const char *dict, uint32_t latent, const ldb_top_opts *o,
                  ldb_examples **out);
void ldb_examples_free(ldb_examples *e);

/* Every example's context back to back, in example order: tokens (room for the sum
 * of ctx_len) and values alike; either may be NULL. Returns that sum. One call for
 * array clients, instead of one per example. */
uint64_t ldb_examples_contexts(const ldb_examples *e, uint32_t *tokens, float *values);

typedef struct ldb_bin {
    double lo, hi;
    uint64_t count;
} ldb_bin;

typedef struct ldb_latent_info {
    uint64_t count;            /* firing ordinary positions */
    uint64_t nseq;             /* sequences where it fires */
    double density, max, mean, std;
    char *label;               /* NULL when unlabelled */
    uint32_t nbins;
    ldb_bin *hist;             /* linear bins from 0 to max, exact */
} ldb_latent_info;

int ldb_query_latent(ldb_db *db, const char *dict, uint32_t latent, uint32_t bins,
                     ldb_latent_info **out);
void ldb_latent_info_free(ldb_latent_info *l);

typedef struct ldb_density {
    uint64_t n_tokens;         /* ordinary positions the dictionary covers */
    uint32_t n_latents;        /* d_sae */
    uint32_t dead;             /* latents that never fired */
    uint32_t nbins;
    ldb_bin *bins;             /* over log10(density) of live latents */
    uint64_t *counts;          /* per latent firing counts (n_latents): counts[i] is latent
                                  first + i */
    uint32_t first;            /* 0, or the layer's first latent (ldb_query_density_layer) */
} ldb_density;

int ldb_query_density(ldb_db *db, const char *dict, uint32_t bins, ldb_density **out);

/* The density of one layer of a multi-layer dictionary (LDB_ALL_LAYERS: all of
 * them, as ldb_query_density): n_latents is the layer's width, first its first
 * latent. A layer out of range is LDB_EINVAL. */
int ldb_query_density_layer(ldb_db *db, const char *dict, uint32_t layer, uint32_t bins,
                            ldb_density **out);
void ldb_density_free(ldb_density *d);

/* How many codes each ordinary position of a dictionary has: counts[l] positions
 * have l codes (l = 0..max_l0). Reads every forward block's header and the
 * skipped positions, no code: 19-22 ms for 1.54M positions (make demo's DB, warm). */
typedef struct ldb_l0 {
    uint64_t n_positions;      /* ordinary positions the dictionary covers */
    uint32_t max_l0;
    uint64_t *counts;          /* max_l0 + 1 */
    double mean;
} ldb_l0;
int ldb_query_l0(ldb_db *db, const char *dict, ldb_l0 **out);
void ldb_l0_free(ldb_l0 *l);

/* The sources of the DB's sequences (ingest --source, a stream's source): each
 * label with its sequences and tokens, in the order they were first written. */
typedef struct ldb_source_usage {
    const char *label;         /* owned by the ldb_sources */
    uint64_t n_seq, n_tokens;
} ldb_source_usage;
typedef struct ldb_sources {
    uint32_t n;
    ldb_source_usage *src;
} ldb_sources;
int ldb_query_sources(ldb_db *db, ldb_sources **out);
void ldb_sources_free(ldb_sources *s);

typedef struct ldb_dict_usage {
    const char *name;          /* owned by the ldb_info */
    uint32_t d_sae;
    uint64_t nnz;              /* all stored codes */
    uint64_t bytes;            /* LMDB pages of its forward + inverted indexes */
    uint64_t positions;        /* positions it covers */
} ldb_dict_usage;

typedef struct ldb_info {
    uint64_t n_seq, n_tokens, n_ordinary;
    uint64_t bytes;            /* data.mdb bytes in use */
    uint32_t n_dicts;
    ldb_dict_usage *dicts;
    int values;                /* LDB_VALUES_* */
    uint32_t n_skip;
    uint32_t *skip;
} ldb_info;

int ldb_query_info(ldb_db *db, ldb_info **out);
void ldb_info_free(ldb_info *i);

/* Co-occurrence of a latent with every latent of dict (or with_dict), exact over
 * the whole corpus. Scopes: LDB_COOC_TOKEN (same position), LDB_COOC_WINDOW (any
 * positions within +-window in the same sequence; units are windows centred on
 * ordinary positions), LDB_COOC_SEQ (same sequence). */
#define LDB_COOC_TOKEN  0
#define LDB_COOC_WINDOW 1
#define LDB_COOC_SEQ    2
#define LDB_SORT_JACCARD 0
#define LDB_SORT_COUNT   1
#define LDB_SORT_NPMI    2

typedef struct ldb_cooc_item {
    uint32_t latent;
    uint64_t count;            /* units where both fire */
    uint64_t count_other;      /* units where this latent fires */
    double jaccard, npmi;
} ldb_cooc_item;

typedef struct ldb_cooc {
    uint64_t count;            /* units where the query latent fires */
    uint64_t units;            /* n: ordinary positions, windows or sequences */
    uint32_t n;
    ldb_cooc_item *items;
} ldb_cooc;

int ldb_query_cooc(ldb_db *db, const char *dict, uint32_t latent, const char *with_dict,
                   uint32_t k, int scope, uint32_t window, int sort, ldb_cooc **out);

/* ldb_query_cooc ranking only the latents of one layer of with_dict (a multi-layer
 * dictionary; the query's own dictionary when with_dict is NULL): e.g. a layer-3
 * latent of a CLT with that CLT's layer-9 latents. LDB_ALL_LAYERS ranks them all. */
int ldb_query_cooc_layer(ldb_db *db, const char *dict, uint32_t latent, const char *with_dict,
                         uint32_t with_layer, uint32_t k, int scope, uint32_t window, int sort,
                         ldb_cooc **out);
void ldb_cooc_free(ldb_cooc *c);

/* Quantile samples: groups of a latent's firing (ordinary) positions, by equal
 * counts of the sorted values (delphi) or equal-width value bins 0..max (sae_vis),
 * with examples drawn uniformly within each group (seeded). */
#define LDB_SAMPLES_BY_COUNT 0
#define LDB_SAMPLES_BY_VALUE 1

typedef struct ldb_sample_group {
    double lo, hi;             /* value range of the group */
    uint64_t count;            /* positions in the group */
    ldb_examples ex;
} ldb_sample_group;

typedef struct ldb_samples {
    uint32_t n;
    ldb_sample_group *groups;  /* ascending values */
} ldb_samples;

int ldb_query_samples(ldb_db *db, const char *dict, uint32_t latent, uint32_t groups,
                      uint32_t per_group, int by, uint64_t seed, uint32_t context,
                      ldb_samples **out);
void ldb_samples_free(ldb_samples *s);

/* One sequence: its tokens and, per position, the top k latents by value of each
 * dictionary that covers it (or only of dict). */
typedef struct ldb_seq_latent {
    uint16_t dict;             /* index into ldb_seqview.dict_names */
    uint32_t latent;
    float value;
} ldb_seq_latent;

typedef struct ldb_seqview {
    uint64_t seq;
    char *source;
    uint32_t len;
    uint32_t *tokens;
    uint64_t *start;           /* len + 1 offsets into lat */
    ldb_seq_latent *lat;
    uint32_t n_dicts;
    char **dict_names;
} ldb_seqview;

int ldb_query_seq(ldb_db *db, uint64_t seq, const char *dict, uint32_t k, ldb_seqview **out);
void ldb_seqview_free(ldb_seqview *s);

/* Labels a latent (stored in LMDB, mirrored in the catalog); "" removes it. The
 * text must be valid UTF-8 with no control characters (C0, DEL, C1: a label is one
 * line); otherwise LDB_EINVAL, a message naming the byte offset, and nothing written. */
int ldb_db_label(ldb_db *db, const char *dict, uint32_t latent, const char *text);

/* Search by activating text: the occurrences of a token sequence in the corpus
 * (found through the token index) and the latents that fire there, ranked by how
 * specifically they do. For each latent: hits = occurrences where it fires (at
 * the last token of the match, or at any token with where_all), precision =
 * hits / occurrences, density = its base density, score = precision *
 * log2(precision / density). Only occurrences at ordinary positions in sequences
 * the dictionary covers count. */
typedef struct ldb_search_item {
    uint32_t latent;
    uint64_t hits;
    double score, precision, density;
    double mean_value;         /* mean code where it fires (the largest over the match with where_all) */
} ldb_search_item;

typedef struct ldb_search {
    uint64_t occurrences;
    uint32_t n;                /* items, best first (at most k) */
    ldb_search_item *items;
} ldb_search;

int ldb_query_search(ldb_db *db, const char *dict, const uint32_t *tokens, size_t n_tokens,
                     int where_all, uint32_t k, ldb_search **out);
void ldb_search_free(ldb_search *s);

/* ---- Arrays ---------------------------------------------------------------
 * Whole results as flat arrays, for numpy and other array clients: one call
 * instead of one per element. Freed by the matching _free (which accepts NULL). */

/* Every code of a latent, in corpus order (sequence, then position): at ordinary
 * positions only (those density counts), or at every position with include_special. */
typedef struct ldb_activations {
    uint64_t n;
    uint64_t *seq;             /* n sequence ids */
    uint32_t *pos;             /* n positions in them */
    float *value;              /* n stored values */
} ldb_activations;

int ldb_query_activations(ldb_db *db, const char *dict, uint32_t latent, int include_special,
                          ldb_activations **out);
void ldb_activations_free(ldb_activations *a);

/* The codes of sequences [seq0, seq1) as a CSR matrix [positions, d_sae]: one row
 * per position, every position (skipped ones too: their codes are stored), in
 * order. A sequence the dictionary was not ingested over is LDB_ENOTFOUND, naming
 * it; a sequence id past the last is LDB_ENOTFOUND too. */
typedef struct ldb_csr {
    uint64_t n_rows;           /* positions */
    uint32_t n_cols;           /* the dictionary's d_sae */
    uint64_t *indptr;          /* n_rows + 1: row r's codes are [indptr[r], indptr[r + 1]) */
    uint32_t *indices;         /* latents, ascending within a row */
    float *data;               /* their stored values */
    uint64_t n_seq;
    uint64_t *seq_row;         /* n_seq + 1: the row of each sequence's first position */
} ldb_csr;

int ldb_query_codes(ldb_db *db, const char *dict, uint64_t seq0, uint64_t seq1, ldb_csr **out);
void ldb_csr_free(ldb_csr *c);

/* The token ids of sequences [seq0, seq1), back to back. */
typedef struct ldb_tokens {
    uint64_t n;                /* tokens */
    uint32_t *tokens;
    uint64_t n_seq;
    uint64_t *seq_off;         /* n_seq + 1: each sequence's first token in tokens */
} ldb_tokens;

int ldb_query_tokens(ldb_db *db, uint64_t seq0, uint64_t seq1, ldb_tokens **out);
void ldb_tokens_free(ldb_tokens *t);

/* A dictionary's labels, by latent ascending. */
typedef struct ldb_labels {
    uint32_t n;
    uint32_t *latent;
    char **text;               /* UTF-8, one line each */
} ldb_labels;

int ldb_query_labels(ldb_db *db, const char *dict, ldb_labels **out);
void ldb_labels_free(ldb_labels *l);

/* ---- Checking ------------------------------------------------------------ */
typedef struct ldb_check_report {
    uint64_t n_seq, n_tokens, nnz, n_blocks;
    uint64_t n_problems;       /* 0 when everything agrees */
    uint64_t n_store_problems; /* of them, in LMDB (the others: the catalog) */
    char problems[4096];       /* the first problems, one a line */
    char notes[1024];          /* not problems: e.g. a catalog that lags behind LMDB
                                  after a crash (rebuilt on the next writable open) */
    char digest[65];           /* SHA-256 of the logical content, hex */
} ldb_check_report;

/* Decodes every block (forward blocks carry a CRC-32), checks that the forward and
 * inverted indexes hold the same codes, that summaries and counts match them, that
 * catalog.sqlite mirrors LMDB, and computes the digest (independent of batch
 * boundaries and physical layout). Returns an error only when the check itself
 * could not run; problems go in the report. */
int ldb_db_check(ldb_db *db, ldb_check_report *rep);

/* The same, calling each(arg, line) on the calling thread with every problem as it
 * is found (the report
 * keeps only the first ones), so that a caller can list them all. */
int ldb_db_check_each(ldb_db *db, ldb_check_report *rep, void (*each)(void *arg, const char *line),
                      void *arg);

/* Repairs what check finds (needs a handle opened with LDB_OPEN_WRITE, and the
 * database to itself). When LMDB has problems, the database is rebuilt from its
 * truth (sequences, tokens, forward blocks) into a new data.mdb, which replaces
 * the old one, kept as data.mdb.damaged-<time> (ldb_db_note names it); when the
 * truth itself is damaged nothing is changed and the error says so. Then
 * catalog.sqlite is rebuilt from LMDB. */
int ldb_db_repair(ldb_db *db);

/* Gives back the space LMDB keeps free inside data.mdb (pages freed by rewritten
 * summaries and top lists, which later batches reuse but the file never returns):
 * the live pages are copied into a new file, which replaces data.mdb. Needs a handle
 * opened with LDB_OPEN_WRITE and the database to itself, as repair does; on failure
 * the database is as it was. *before and *after (either may be NULL) get the file's
 * size in bytes. */
int ldb_db_compact(ldb_db *db, uint64_t *before, uint64_t *after);

/* Token ids of [pos, pos + n) of a sequence (n clipped to its end). */
int ldb_seq_tokens(ldb_db *db, uint64_t seq, uint32_t pos, uint32_t n, uint32_t *out,
                   uint32_t *got);

/* ---- Text ----------------------------------------------------------------
 * A Hugging Face tokenizer.json of the BPE family (Gemma, Llama 2 style), encoded
 * and decoded as the reference implementation does.
 * Threads: any number of threads may use one handle at once (the database's
 * tokenizer, ldb_db_tokenizer, is shared so). The tables are fixed at open;
 * ldb_tokenizer_encode takes caches (~4 MB) from a pool in the handle, one per encode
 * running, and returns them after. A failing encode's message is the handle's
 * (ldb_tokenizer_errmsg): with several threads encoding, the last failure's. */
typedef struct ldb_tokenizer ldb_tokenizer;

/* Opens a tokenizer.json (tokenizer_config.json beside it names BOS/EOS/PAD).
 * Sets *out even on failure so the message can be read; close it either way. */
int ldb_tokenizer_open(const char *path, ldb_tokenizer **out);
/* The message of the last call on t that failed, e.g. "tokenizer.json: merge 3
 * ("a" + "b") uses a token that is not in the vocabulary"; empty if none has.
 * Owned by t: the pointer is valid until ldb_tokenizer_close(t), and its text is
 * replaced when a later call on t fails. Never NULL; "out of memory" for t = NULL
 * (ldb_tokenizer_open could not allocate the handle). */
const char *ldb_tokenizer_errmsg(const ldb_tokenizer *t);
void ldb_tokenizer_close(ldb_tokenizer *t);

/* Token ids of text (no BOS) in *ids (free with ldb_free), *n of them. Invalid
 * UTF-8 is read as a WHATWG TextDecoder reads it (each maximal invalid subsequence
 * is U+FFFD). */
int ldb_tokenizer_encode(ldb_tokenizer *t, const char *text, size_t len, uint32_t **ids,
                         size_t *n);

/* Text of ids (NUL-terminated, free with ldb_free); byte tokens become their UTF-8 bytes.
 * Fails only when out of memory: LDB_ENOMEM, and t's message is left as it was
 * (decode writes nothing in t, so that threads may share it). */
int ldb_tokenizer_decode(const ldb_tokenizer *t, const uint32_t *ids, size_t n, char **text,
                         size_t *len);

/* The stored piece of id ("▁the", "<0x0A>", "<bos>"; empty for an id outside the
 * vocabulary) in buf: at most cap - 1 bytes and a NUL (nothing when cap is 0).
 * Returns the piece's full length, as snprintf does: a result >= cap means buf holds
 * only its first cap - 1 bytes (possibly a partial UTF-8 character); call again
 * with result + 1 bytes for the whole. */
size_t ldb_tokenizer_piece(const ldb_tokenizer *t, uint32_t id, char *buf, size_t cap);

/* The piece as it reads in text (" the" for "▁the"; the byte token of a control
 * or non-ASCII byte as its hex form, "<0x0A>", "<0xE2>"; "<?>" for an id outside
 * the vocabulary), with ldb_tokenizer_piece's contract: at most cap - 1 bytes and
 * a NUL, the full length returned (>= cap: truncated). */
size_t ldb_tokenizer_piece_text(const ldb_tokenizer *t, uint32_t id, char *buf, size_t cap);

/* Stores t's compiled tables in the DB (meta "tokenizer"), so queries show text
 * and search encodes it; refused (LDB_EINVAL, with both numbers) when a stored token
 * id is outside its vocabulary. skip_from_tokenizer = 1 also makes its BOS, EOS and
 * PAD ids the skip set: before the first ingest at once, after it through
 * ldb_db_set_skip (a rebuild; the database to itself). */
int ldb_db_set_tokenizer(ldb_db *db, ldb_tokenizer *t, int skip_from_tokenizer);

/* The DB's tokenizer (owned by db; valid until ldb_db_close), or *out = NULL when
 * it has none. */
int ldb_db_tokenizer(ldb_db *db, ldb_tokenizer **out);

typedef struct ldb_tokenizer_info {
    uint32_t n_vocab, n_merges, n_added;
    uint32_t bos, eos, pad, unk;   /* UINT32_MAX when absent */
} ldb_tokenizer_info;
/* Facts about an open tokenizer; owned by t, valid until ldb_tokenizer_close(t). */
const ldb_tokenizer_info *ldb_tokenizer_get_info(const ldb_tokenizer *t);

/* ---- Arrays --------------------------------------------------------------
 * .npy files (versions 1-3, C order, little-endian numeric types), memory-mapped
 * read-only and checked (the data is all there; the shape product does not
 * overflow): what ingest reads, for callers that look at their inputs first. Element
 * types: LDB_F32, LDB_F16, LDB_BF16 (above) and these. */
#define LDB_F64  3
#define LDB_I32  4
#define LDB_I64  5
#define LDB_U32  6
#define LDB_I16  7
#define LDB_U16  8
#define LDB_U8   9
#define LDB_I8   10
#define LDB_BOOL 11

typedef struct ldb_array ldb_array;
typedef struct ldb_array_info {
    int dtype;                 /* LDB_F32, LDB_F16, LDB_I32, ... */
    const char *dtype_name;    /* "float32", "float16", "int32", ... */
    int ndim;                  /* 0..8 */
    uint64_t shape[8];
    uint64_t count;            /* elements: the product of shape (1 when ndim is 0) */
    size_t elsize;             /* bytes per element */
    const void *data;          /* the elements, in the mapping (possibly unaligned) */
} ldb_array_info;

/* Opens the .npy at path. *out is set even on failure (NULL only when memory ran
 * out) so that ldb_array_errmsg can say what was wrong; close it either way. An
 * array is immutable: many threads may read one. */
int ldb_array_open(const char *path, ldb_array **out);
const char *ldb_array_errmsg(const ldb_array *a);   /* valid until close */
/* Owned by a (data included), valid until ldb_array_close. */
const ldb_array_info *ldb_array_get_info(const ldb_array *a);
void ldb_array_close(ldb_array *a);                  /* accepts NULL */

/* Index of the first NaN or Inf among n elements at p (LDB_F32/F16/BF16, possibly
 * unaligned), or UINT64_MAX when all are finite. */
uint64_t ldb_find_nonfinite(const void *p, int dtype, uint64_t n);

/* Converts n elements of src (LDB_F32/F16/BF16, possibly unaligned) to f32, exactly. */
void ldb_to_f32(float *dst, const void *src, int dtype, size_t n);

/* ---- UTF-8 ---------------------------------------------------------------
 * UTF-8 read as the WHATWG Encoding Standard (and so a browser's TextDecoder) reads
 * it: a valid sequence is the shortest form of a scalar value, and each maximal
 * invalid subsequence reads as one U+FFFD. The reader behind the tokenizer, labels
 * and the CLI's output. */
#define LDB_UTF8_BAD UINT32_MAX /* *cp of an invalid sequence */

/* Reads the character at p[0..n) (n >= 1): returns its length (1..4) and sets
 * *cp; when it is not valid, returns the length of the maximal invalid
 * subsequence (1..3, what one U+FFFD replaces) and sets *cp = LDB_UTF8_BAD.
 *   for (size_t i = 0, l; i < n; i += l) l = ldb_utf8_next(s + i, n - i, &cp); */
size_t ldb_utf8_next(const uint8_t *p, size_t n, uint32_t *cp);

/* The offset of the first character of p[0..n) that is not valid UTF-8 or, with
 * no_controls, is a control character (C0, DEL, C1); n when there is none. *cp
 * (may be NULL) gets that character's code point, or LDB_UTF8_BAD. */
size_t ldb_utf8_check(const uint8_t *p, size_t n, int no_controls, uint32_t *cp);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* LATENTDB_H */
