/* dict_impl.h — the inside of ldb_dict, shared by dict.c (loading), encode.c and
 * decode.c. Invariant: nothing changes after ldb_dict_open but the parts made on
 * first need (sha, decode's skip view, the bf16 weights, the exact encoder's
 * refinement data), each made once under mu
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
    int dec_checked;           /* W_dec (a layer's W_dec3) and A_skip were scanned for NaN */
    float *A_owned;            /* A_skip as f32 when it is not F32 in the file */
    int have_sha;
    char sha[65];
    struct ldb_bf16w *bf16w;   /* W_enc in bf16, per oneDNN layout (bf16mm.h) */
    struct ldb_refine *refine; /* the exact encoder's refinement data (screen.h) */

    /* Layers (multi.c). A multi-layer dictionary (n_layers > 0) encodes and decodes
     * through its layers, each a single-layer dictionary of its own whose W_dec is
     * the 3-D [d_sae, outputs, d_out] block of that layer (W_dec3, output dec_first
     * at index 0); the parent's own tensors stay empty. A single-layer dictionary
     * has n_layers 0 and its one layer in linfo[0] (one). */
    uint32_t n_layers;
    struct ldb_dict **layers;
    ldb_dict_layer *linfo;     /* n_layers entries, or &one */
    ldb_dict_layer one;
    ldb_tensors dec_ts;        /* a layer's decoder file (circuit-tracer's W_dec_{i}) */
    const ldb_tensor *W_dec3;
    uint32_t dec_first;        /* 0 (Gemma Scope 2: every output) or the layer (circuit-tracer) */
    uint32_t layer_index;
    uint64_t dec_ignored;      /* non-zero decoder entries for outputs before the layer */
};

/* Keeps a copy of s for the lifetime of d (info fields point here); "" for NULL. */
const char *ldb_dict_keep(ldb_dict *d, const char *s);

/* Binding helpers of dict.c, messages on d naming d->info.weights_path: a vector
 * of n elements as an owned f32 copy; W_enc (in place when F32 and aligned; its
 * orientation from d->enc_trans); a 2-D shape check; a float dtype check. */
int ldb_dict_bind_vec_t(ldb_dict *d, const ldb_tensor *t, uint64_t n, float **out);
int ldb_dict_bind_wenc_t(ldb_dict *d, const ldb_tensor *we);
/* jumprelu's effective threshold max(threshold, 0) (exp of a log_threshold), d_sae of
 * them, into d->thr. */
int ldb_dict_bind_threshold_t(ldb_dict *d, const ldb_tensor *t);
int ldb_dict_check_mat(ldb_dict *d, const ldb_tensor *t, uint64_t r, uint64_t c, const char *what);
int ldb_dict_need_float(ldb_dict *d, const ldb_tensor *t);
const char *ldb_dict_shape_str(const ldb_tensor *t, char *buf, size_t cap);

/* multi.c: opens the layers cfg names into d (n_layers > 0); frees them; the
 * SHA-256 of every layer file in order. */
struct ldb_cfg;
int ldb_multi_open(ldb_dict *d, const struct ldb_cfg *cfg);
void ldb_multi_close(ldb_dict *d);
int ldb_multi_sha256(ldb_dict *d, char hex[65]);

/* decode.c, the skip term shared by single- and multi-layer decodes: checks the skip
 * matrix and makes its f32 view (mu held; once, from decode's first use); adds
 * x . A (or x . A^T) of m rows (row r at x + r * ldx elements) into out (row r at
 * out + r * ldo). ldb_dict_skip_add returns LDB_ENOMEM or LDB_EBLAS without a
 * message: the caller reports on its own dictionary. */
int ldb_dict_skip_view(ldb_dict *d);
int ldb_dict_skip_add(const ldb_dict *d, const void *x, size_t ldx, int dtype, uint32_t m,
                      float *out, size_t ldo);

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
