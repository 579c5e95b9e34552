/* activate.h — the activation functions of the encoder (activate.c): a row of
 * pre-activations into sorted sparse (latent, value) codes. */
#ifndef LDB_SAE_ACTIVATE_H
#define LDB_SAE_ACTIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "dict_impl.h"

/* The most codes one row can have: k for topk and groupmax, else d_sae. */
size_t ldb_activate_bound(const ldb_dict *d);

/* Bytes of scratch ldb_activate_row needs (topk's candidates; 0 for the others). */
size_t ldb_activate_scratch(const ldb_dict *d);

/* d's activation function over the row c (d_sae pre-activations x'.W_enc, b_enc not
 * yet added): the codes that fire go to lat/val (room for ldb_activate_bound), in
 * ascending latent order, and *n says how many. LDB_EBADVALUE when a pre-activation
 * is NaN or Inf (the f32 sum overflowed): *bad is its latent, *bad_val its value.
 * The activation function would drop a NaN silently, and an Inf that does not fire
 * may hide a sum that should have. jumprelu and relu notice it inside their vector
 * loop; the scalar ones scan the row first, which pulls it into cache for them. */
int ldb_activate_row(const ldb_dict *d, float *c, void *scratch, uint32_t *lat, float *val,
                     size_t *n, uint32_t *bad, float *bad_val);

/* jumprelu and relu only (each latent on its own): latents [j0, j0 + span) of a row,
 * c holding their span pre-activations; codes as ldb_activate_row gives them for
 * those latents (ids j0 + i). For wide dictionaries, whose tiles are multiplied a
 * span of latents at a time. */
int ldb_activate_span(const ldb_dict *d, float *c, uint32_t j0, uint32_t span, uint32_t *lat,
                      float *val, size_t *n, uint32_t *bad, float *bad_val);

/* d's activation function over the latents ids[0 .. m) alone (ascending ids of d),
 * c[i] the pre-activation (before b_enc) of latent ids[i]: the codes those latents
 * give, in ascending order, as ldb_activate_row gives them when every latent that
 * could fire (or enter a top k, or win a group) is in the list, which is what the
 * exact encoder's candidates are (screen.c). LDB_EBADVALUE as ldb_activate_row, *bad
 * a latent id. */
int ldb_activate_list(const ldb_dict *d, const float *c, const uint32_t *ids, uint32_t m,
                      void *scratch, uint32_t *lat, float *val, size_t *n, uint32_t *bad,
                      float *bad_val);

#endif
