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
} ldb_cfg;

/* Detects the format of path (folder or file) and reads its config. */
int ldb_cfg_detect(const char *path, ldb_cfg *cfg, ldb_err *e);

void ldb_cfg_free(ldb_cfg *cfg);

#endif
