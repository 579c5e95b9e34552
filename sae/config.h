/* config.h — format detection and config-file parsing for the four dictionary
 * formats. Produces plain facts (ldb_cfg); dict.c checks them against the tensors. */
#ifndef LDB_SAE_CONFIG_H
#define LDB_SAE_CONFIG_H

#include <stdint.h>

#include "../common/err.h"

typedef struct ldb_cfg {
    const char *format;        /* static: "saelens", "gemmascope", "gemmascope2", "sparsify" */
    char *config_path;         /* owned; NULL when the format has none */
    char *weights_path;        /* owned */
    char *hook_in, *hook_out, *model; /* owned, may be NULL */
    uint64_t d_in, d_sae, d_out; /* 0 when the config does not say */
    uint32_t k;
    double l0;                 /* -1 when unknown */
    int arch, norm, skip;      /* ARCH_*, NORM_*, SKIP_* of dict_impl.h */
    int sub_b_dec;
    int relu_first;
    int transcoder;            /* 1 yes, -1 the config says sae, 0 not said */
    int rescale_dec_norm;      /* SAELens topk rescale_acts_by_decoder_norm */

    /* Multi-layer dictionaries (n_layers > 0): one file per layer, or two in
     * circuit-tracer's layout (enc_paths[i] holds the encoder and biases, dec_paths[i]
     * the decoder); the hooks of each layer when the config lists them. */
    uint32_t n_layers;
    int layout;                /* LAYOUT_* */
    char **enc_paths, **dec_paths; /* n_layers each; dec_paths NULL for Gemma Scope 2 */
    char **hooks_in, **hooks_out;  /* n_layers each, or NULL */
    char *kind;                /* the config's "type" ("clt", "crosscoder", ...), or NULL */
} ldb_cfg;

enum { LAYOUT_SINGLE, LAYOUT_GS2_LAYERS /* params_layer_{i} */, LAYOUT_CT /* W_enc_{i}, W_dec_{i} */ };

/* Detects the format of path (folder or file) and reads its config. A folder of
 * per-layer files (a cross-layer transcoder or crosscoder) sets n_layers. */
int ldb_cfg_detect(const char *path, ldb_cfg *cfg, ldb_err *e);

void ldb_cfg_free(ldb_cfg *cfg);

#endif
