/* opts.c — the size-prefixed option structs of the public API (opts.h). */
#include "opts.h"

#include <stdint.h>
#include <string.h>

int ldb_opts_load(void *dst, size_t dst_size, const void *src, const char *what, ldb_err *e)
{
    if (!src)
        return LDB_OK;
    uint32_t size;
    memcpy(&size, src, sizeof size);
    if (size < sizeof size)
        return ldb_err_set(e, LDB_EINVAL, "%s: its size field is %u; initialise it with %s_init()",
                           what, size, what);
    if (size > dst_size) {
        const unsigned char *p = src;
        for (size_t i = dst_size; i < size; i++)
            if (p[i])
                return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: byte %zu is set, a field this "
                                   "library (%s) does not have", what, i, LDB_VERSION);
        size = (uint32_t)dst_size;
    }
    memcpy(dst, src, size);
    memcpy(dst, &(uint32_t){(uint32_t)dst_size}, sizeof size);
    return LDB_OK;
}
