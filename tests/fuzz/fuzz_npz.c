/* fuzz_npz.c — libFuzzer target for the .npz reader (sae/npz.c): a zip of .npy
 * members read through libzip, each member parsed by ldb_npy_parse.
 * ldb_npz_open takes a path, so the input is written to a memfd, opened as
 * /proc/self/fd/N.
 *
 * ldb_npz_open allocates each member's claimed uncompressed size before reading
 * it; it refuses claims a member cannot hold (stored: its compressed size;
 * deflate: 1032 times it), so a 100-byte archive can no longer ask for a
 * terabyte (regress/npz-huge-claimed-size). A 256 KiB input can still claim
 * ~264 MB per member legitimately (a deflate bomb is valid zip), and several of
 * them exceed libFuzzer's RSS limit: unless FUZZ_ALLOW_HUGE is defined, inputs
 * claiming more than FZ_NPZ_MAX_CLAIM bytes for a member are skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "../../sae/tensors.h"
#include "fuzz_common.h"

#define FZ_NPZ_MAX_CLAIM ((zip_uint64_t)256 << 20)

static fz_memfile mf;

#ifndef FUZZ_ALLOW_HUGE
/* 1 when some member claims more than FZ_NPZ_MAX_CLAIM bytes uncompressed. */
static int claims_huge(const char *path)
{
    int zerr = 0, huge = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!z)
        return 0;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n && !huge; i++) {
        zip_stat_t st;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
            st.size > FZ_NPZ_MAX_CLAIM)
            huge = 1;
    }
    zip_discard(z);
    return huge;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_memfile_init(&mf, "fuzz.npz");
    fz_memfile_set(&mf, data, size);
#ifndef FUZZ_ALLOW_HUGE
    if (claims_huge(mf.path))
        return -1; /* not added to the corpus */
#endif
    ldb_tensors ts;
    ldb_err e;
    e.msg[0] = 0;
    if (ldb_npz_open(&ts, mf.path, &e) != LDB_OK) {
        if (!e.msg[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < ts.n; i++) {
        const ldb_tensor *t = &ts.t[i];
        uint64_t bytes = t->count * t->elsize;
        if (!t->name || t->ndim < 0 || t->ndim > LDB_TENSOR_MAX_DIMS)
            abort();
        if (bytes) {
            volatile uint8_t a = t->data[0], b = t->data[bytes - 1];
            (void)a, (void)b;
        }
        if (!ldb_tensors_find(&ts, t->name))
            abort();
    }
    ldb_tensors_close(&ts);
    return 0;
}
