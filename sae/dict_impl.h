/* dict_impl.h — the inside of ldb_dict, shared by dict.c (loading), encode.c and
 * decode.c. Encoder vectors are always owned, aligned f32 copies; W_enc points into
 * the file mapping when it is F32 and aligned, else into an owned f32 copy. What is
 * made on first need (sha, decode's skip view, the bf16 weights) is made under mu. */
#ifndef LDB_SAE_DICT_IMPL_H
#define LDB_SAE_DICT_IMPL_H

#include <pthread.h>

#include "latentdb.h"
#include "tensors.h"

#define LDB_WORKERS 8

enum { ARCH_JUMPRELU, ARCH_RELU, ARCH_GATED, ARCH_TOPK, ARCH_GROUPMAX };
enum { NORM_NONE, NORM_CONSTANT, NORM_LAYER };
enum { SKIP_NONE, SKIP_XAT /* x . A^T, A [d_out, d_in] */, SKIP_XA /* x . A, A [d_in, d_out] */ };

struct ldb_dict {
    ldb_err err;
    ldb_dict_info info;
    char *strs[8];             /* owned strings behind info */
    int n_strs;
    ldb_tensors ts;
    int arch, norm, skip;

    /* encoder: pre = x' . W_enc (+ b_enc), W_enc [d_in][d_sae] or, when
     * enc_trans, [d_sae][d_in] (sparsify's encoder.weight) */
    const float *W_enc;
    float *W_enc_owned;
    int enc_trans;
    float *b_enc;              /* d_sae; zeros for gated */
    float *thr;                /* jumprelu: max(threshold, 0), so fire iff pre > thr */
    float *b_gate, *b_mag, *exp_r_mag; /* gated */
    float *dec_norm;           /* topk with rescale_acts_by_decoder_norm: |W_dec row|, else NULL */
    float *b_dec_in;           /* d_in, subtracted from x when sub_b_dec */
    float *b_dec;              /* d_out */
    const ldb_tensor *W_dec;   /* [d_sae][d_out], read only to decode */
    const ldb_tensor *A_skip;  /* skip / affine matrix, or NULL */

    /* Made on first need, under mu; never changed after. Messages of failures after
     * open go to err under mu too. */
    pthread_mutex_t mu;
    int dec_checked;           /* W_dec and A_skip were scanned for NaN */
    float *A_owned;            /* A_skip as f32 when it is not F32 in the file */
    int have_sha;
    char sha[65];
    struct ldb_bf16w *bf16w;   /* W_enc in bf16, per oneDNN layout (bf16mm.h) */

    /* encode workspace, grown on demand (encode.c). Each worker thread owns a tile's
     * input and dense pre-activations; finished tiles wait in slots, in a ring of
     * 2 x workers, until the caller hands them on in row order. */
    struct ldb_worker {
        float *xbuf;           /* tile_rows x d_in */
        float *cbuf;           /* tile_rows x d_sae */
        void *heap;            /* topk candidates, k entries */
    } work[LDB_WORKERS];
    struct ldb_slot {
        uint64_t *start;       /* tile_rows + 1 */
        uint32_t *lat;
        float *val;
        size_t cap;            /* capacity of lat/val */
        int state;             /* free, claimed or done */
        int rc;                /* the worker's result for its tile */
        char msg[160];         /* its message, when rc */
        uint32_t bad_row, bad_lat; /* rc LDB_EBADVALUE: the row (in the tile) and latent */
        float bad_val;         /* whose pre-activation is NaN or Inf */
    } slot[2 * LDB_WORKERS];
    struct {                   /* the last encode's LDB_EBADVALUE (ldb_dict_encode_fault) */
        int set;
        uint64_t row;
        uint32_t latent;
        float value;
    } fault;
    uint32_t tile_rows;        /* 0 = default */
    uint32_t ws_rows;          /* rows the workspace was sized for */
    int ws_workers;            /* workers it was sized for */

    int precision;             /* LDB_PRECISION_F32 / _BF16 */
    struct ldb_bf16mm *bf16;   /* the bf16 GEMM (made by ldb_dict_set_precision) */
    char gemm_name[96];
};

/* Checks a float tensor for NaN/Inf; names it in the message. */
int ldb_dict_check_finite(ldb_dict *d, const ldb_tensor *t);

/* ldb_err_set on d->err under d->mu: for failures after open, when other threads
 * may be using d. */
int ldb_dict_fail(ldb_dict *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Frees the encode workspace (workers' buffers and slots). */
void ldb_dict_free_workspace(ldb_dict *d);

/* The tile size in effect. */
uint32_t ldb_dict_tile_rows(const ldb_dict *d);

/* SAELens input normalisation of one row of d_in floats: the encoder sees
 * (x - sub) * mul, and decode returns x_hat * undo + sub. Identity for NORM_NONE. */
void ldb_dict_norm_stats(const ldb_dict *d, const float *row, float *mul, float *sub,
                         float *undo);

#endif
