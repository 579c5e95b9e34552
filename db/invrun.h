/* invrun.h — the version-4 inverted record (docs/FORMAT.md, "Run record"): every
 * latent's positions in one batch run, its encoder beside its decoders.
 *
 * A run's latents may be coded in parts on several threads (latents [j0, j1) each,
 * j0 a multiple of the span), which ldb_invrun_join puts together bit to bit: the
 * value is the same however the latents were split. */
#ifndef LDB_DB_INVRUN_H
#define LDB_DB_INVRUN_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define LDB_INVRUN_CODEC 2
#define LDB_INVRUN_MAX_S 16

/* The parameters of one run, chosen from its totals before any part is coded. */
typedef struct ldb_invrun_params {
    uint64_t start, n;         /* positions [start, start + n) */
    uint32_t R;                /* latents */
    unsigned kc, s;            /* Rice parameter of the counts; log2 of latents per span */
} ldb_invrun_params;
void ldb_invrun_choose(ldb_invrun_params *p, uint64_t start, uint64_t n, uint32_t R,
                       uint64_t codes);

/* One part: latents [j0, j1) of a run, coded into its own stream. */
typedef struct ldb_invrun_part {
    ldb_invrun_params p;
    uint32_t j0, next;         /* first latent; the next latent to code */
    ldb_buf bits;              /* the stream (bytes, padded) ... */
    uint64_t nbits;            /* its length in bits (set by _end) */
    ldb_bitw w;                /* ... and its writer */
    uint64_t *span;            /* bit offsets (from the part's start) of its spans */
    size_t cap_span;
} ldb_invrun_part;

/* Starts a part at latent j0 (a multiple of 2^s; 0 or -1 when out of memory). Parts
 * are reused: their buffers are kept. */
int ldb_invrun_part_begin(ldb_invrun_part *t, const ldb_invrun_params *p, uint32_t j0);
/* Latent j's c positions (absolute, ascending, inside the run); latents are added
 * ascending, and those skipped are coded as not firing. 0 or -1 (out of memory). */
int ldb_invrun_part_add(ldb_invrun_part *t, uint32_t j, const uint64_t *pos, uint64_t c);
/* Ends the part at latent j1 (latents up to it that were not added do not fire). */
int ldb_invrun_part_end(ldb_invrun_part *t, uint32_t j1);
void ldb_invrun_part_free(ldb_invrun_part *t);

/* The run's value from its parts, in latent order, covering [0, R): appended to out.
 * 0, or -1 (out of memory, or a stream past 2^32 bits, which the caller reports). */
int ldb_invrun_join(ldb_invrun_part *const *parts, int nparts, ldb_buf *out);

/* A run record parsed: its header checked (codec, R, the span table inside the value
 * and ascending), not yet its codes. */
typedef struct ldb_invrun {
    uint64_t start, n;
    uint32_t R;
    unsigned kc, s;
    const uint8_t *table;      /* (ceil(R / 2^s) - 1) u32 LE */
    const uint8_t *stream, *end;
} ldb_invrun;
int ldb_invrun_open(ldb_invrun *r, uint64_t start, const uint8_t *p, size_t len, uint32_t R);

/* Latent j's positions, appended to *arr (growing it; *len, *cap): 0, -1 when the
 * record is malformed (counts past the run, positions not ascending or outside it),
 * -2 out of memory. */
int ldb_invrun_latent(const ldb_invrun *r, uint32_t j, uint64_t **arr, size_t *len, size_t *cap);

/* Every latent's positions: fn(ctx, j, pos, c) for each latent that fires, ascending;
 * fn returns nonzero to stop (returned). 0, -1 malformed, -2 out of memory. */
int ldb_invrun_each(const ldb_invrun *r, int (*fn)(void *ctx, uint32_t j, const uint64_t *pos,
                                                   uint64_t c), void *ctx);

#endif
