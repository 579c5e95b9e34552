/* dict_impl.h — the inside of ldb_dict, shared by dict.c (loading), encode.c and
 * decode.c. Invariant: nothing changes after ldb_dict_open but the parts made on
 * first need (sha, decode's skip view, the bf16 weights), each made once under mu
 * and immutable after; so one dictionary serves many threads and encoders at once. */
#ifndef LDB_SAE_DICT_IMPL_H
#define LDB_SAE_DICT_IMPL_H

#include <pthread.h>

#include "latentdb.h"
#include "tensors.h"

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
};

/* Checks a float tensor for NaN/Inf; names it in the message. */
int ldb_dict_check_finite(ldb_dict *d, const ldb_tensor *t);

/* ldb_err_set on d->err under d->mu: for failures after open, when other threads
 * may be using d. */
int ldb_dict_fail(ldb_dict *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* SAELens input normalisation of one row of d_in floats: the encoder sees
 * (x - sub) * mul, and decode returns x_hat * undo + sub. Identity for NORM_NONE. */
void ldb_dict_norm_stats(const ldb_dict *d, const float *row, float *mul, float *sub,
                         float *undo);

#endif
