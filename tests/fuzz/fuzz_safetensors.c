/* fuzz_safetensors.c — libFuzzer target for the validating safetensors reader
 * (sae/safetensors.c). ldb_safetensors_open takes a path and maps the file, so
 * the input is written to a memfd, opened as /proc/self/fd/N. On success the
 * reader's invariants are checked: every tensor's bytes lie inside the mapping,
 * count x elsize each, and the tensors tile the data section. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sae/tensors.h"
#include "fuzz_common.h"

static fz_memfile mf;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_memfile_init(&mf, "fuzz.safetensors");
    fz_memfile_set(&mf, data, size);
    ldb_tensors ts;
    ldb_err e;
    e.msg[0] = 0;
    if (ldb_safetensors_open(&ts, mf.path, &e) != LDB_OK) {
        if (!e.msg[0]) /* every failure explains itself */
            abort();
        return 0;
    }
    const uint8_t *lo = ts.file.data, *hi = ts.file.data + ts.file.size;
    uint64_t total = 0;
    for (size_t i = 0; i < ts.n; i++) {
        const ldb_tensor *t = &ts.t[i];
        uint64_t bytes = t->count * t->elsize;
        if (!t->name || t->ndim < 0 || t->ndim > LDB_TENSOR_MAX_DIMS || t->elsize == 0 ||
            (bytes && (t->data < lo || t->data > hi || bytes > (uint64_t)(hi - t->data))))
            abort();
        total += bytes;
        if (bytes) {
            volatile uint8_t a = t->data[0], b = t->data[bytes - 1];
            (void)a, (void)b;
        }
        if (!ldb_tensors_find(&ts, t->name))
            abort();
    }
    /* the tensors cover the data after the 8-byte length and the header exactly */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lo[i];
    if (total != ts.file.size - 8 - hlen)
        abort();
    if (ts.metadata_json)
        (void)strlen(ts.metadata_json);
    ldb_tensors_close(&ts);
    return 0;
}
