/* fuzz_npy.c — libFuzzer target for the .npy header parser (common/npy.c):
 * ldb_npy_parse on the input buffer as a whole .npy file. On success the
 * parser's promises are checked: the data lies inside the buffer and its size is
 * count x elsize. */
#include <stdint.h>
#include <stdlib.h>

#include "../../common/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ldb_npy a;
    ldb_err e;
    e.msg[0] = 0;
    if (ldb_npy_parse(&a, data, size, "fuzz.npy", &e) != LDB_OK)
        return 0;
    if (a.data != data + a.data_offset || a.data_offset > size ||
        a.count * a.elsize > size - a.data_offset || a.ndim < 0 || a.ndim > LDB_NPY_MAX_DIMS)
        abort();
    uint64_t prod = 1;
    for (int i = 0; i < a.ndim; i++)
        prod *= a.shape[i];
    if (prod != a.count)
        abort();
    (void)ldb_npy_type_name(a.type);
    /* touch the last data byte: ASan checks it lies in the input */
    if (a.count && a.elsize) {
        volatile uint8_t last = a.data[a.count * a.elsize - 1];
        (void)last;
    }
    return 0;
}
