/* half.h — IEEE half (f16) and bfloat16 to f32 conversion, exact.
 * bf16 -> f32 is bits << 16; f16 handles subnormals, Inf and NaN. */
#ifndef LDB_COMMON_HALF_H
#define LDB_COMMON_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "latentdb.h"

static inline float ldb_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ldb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ldb_find_nonfinite and ldb_to_f32 are public (latentdb.h). */

#endif
