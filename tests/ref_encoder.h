/* ref_encoder.h - independent DENSE reference encoder/decoder for latentdb tests.
 * Loads a fixture's ref/ folder (meta.json + raw little-endian f32 arrays, written by
 * tests/fixtures/gen_fixtures.py) and encodes/decodes with plain double-precision loops.
 * Shares no code with sae/: it is the yardstick the library is compared against.
 * Build: cc -std=c11 ... tests/ref_encoder.c -lcjson -lm */
#ifndef LATENTDB_TESTS_REF_ENCODER_H
#define LATENTDB_TESTS_REF_ENCODER_H

typedef enum {
    REF_ARCH_JUMPRELU,  /* code = pre if pre > threshold && pre > 0 */
    REF_ARCH_RELU,      /* code = max(pre, 0) */
    REF_ARCH_GATED,     /* code = (x'W + b_gate > 0) * relu(exp(r_mag) * x'W + b_mag) */
    REF_ARCH_TOPK,      /* SAELens: top k of pre, then relu */
    REF_ARCH_RELU_TOPK, /* sparsify: relu, then top k */
    REF_ARCH_GROUPMAX   /* sparsify: relu, then max of each of k contiguous groups */
} ref_arch;

typedef enum {
    REF_NORM_NONE,
    REF_NORM_CONSTANT_NORM_RESCALE, /* x *= sqrt(d_in)/||x||; decode divides back */
    REF_NORM_LAYER_NORM             /* x = (x-mu)/(std_unbiased+1e-5); decode *std + mu */
} ref_norm;

typedef struct {
    char name[128];
    ref_arch arch;
    int k;                 /* topk / relu_topk: k; groupmax: number of groups; else 0 */
    int d_in, d_sae, d_out, n;
    int sub_b_dec;         /* subtract b_dec from the (normalized) input before encoding */
    ref_norm norm;
    int is_transcoder;
    /* canonical orientation, all float32 values exactly as stored on disk */
    float *W_enc;          /* [d_in][d_sae] */
    float *b_enc;          /* [d_sae] (zeros for gated) */
    float *threshold;      /* [d_sae], jumprelu only, else NULL */
    float *b_gate, *b_mag, *r_mag; /* [d_sae], gated only, else NULL */
    float *W_dec;          /* [d_sae][d_out] */
    float *b_dec;          /* [d_out] */
    float *skip;           /* [d_in][d_out]: skip term = x . skip (original x); NULL if none */
    float *x;              /* [n][d_in] activations (acts.npy as f32) */
    float *x_out;          /* [n][d_out] target activations (acts_out.npy), transcoders; else NULL */
    /* numbers the Python generator computed with numpy (meta.json "check"); NaN if absent */
    double check_mean_l0, check_sum_codes, check_sum_abs_xhat;
} ref_case;

/* Load CASE_DIR/ref/meta.json and CASE_DIR/ref/<array>.f32. Returns 0 on success, -1 on error
 * (message on stderr; *rc is left freed/zeroed). */
int ref_load(const char *case_dir, ref_case *rc);
void ref_free(ref_case *rc);

/* Encode all rc->n rows of rc->x. codes: [n][d_sae] dense. margin (may be NULL): [n][d_sae],
 * a lower bound on how far the deciding quantities must move before entry (t,j) switches between
 * zero and non-zero:
 *   jumprelu  min(|pre - threshold|, |pre|)
 *   relu      |pre|
 *   gated     min(|gate_pre|, |mag_pre|)
 *   topk / relu_topk / groupmax: with s the selection score (pre for topk, relu(pre) otherwise)
 *     and the boundary values s_k = k-th largest, s_k1 = (k+1)-th largest (within the group for
 *     groupmax, where k = 1):  pre > 0 ? min(pre, selected ? s_j - s_k1 : s_k - s_j) : |pre|.
 * Ties are broken by lower latent index. */
void ref_encode(const ref_case *rc, double *codes, double *margin);

/* xhat [n][d_out] = codes . W_dec + b_dec, with SAELens normalization undone using the
 * statistics of the matching row of rc->x, plus skip term x . skip (original x). */
void ref_decode(const ref_case *rc, const double *codes, double *xhat);

const char *ref_arch_name(ref_arch a);

#endif
