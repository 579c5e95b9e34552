/* half.c — bulk conversion to f32 (F16C when the build targets it). */
#include "half.h"

#include "latentdb.h"

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#endif

void ldb_to_f32(float *dst, const void *src, int dtype, size_t n)
{
    const uint8_t *s = src;
    size_t i = 0;
    if (dtype == LDB_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    if (dtype == LDB_BF16) {
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = ldb_bf16_to_f32(h);
        }
        return;
    }
#if defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
#endif
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = ldb_f16_to_f32(h);
    }
}

/* Blocks of 64 values are tested without a branch (the compiler vectorizes the
 * fixed-length loop); only a block that holds a NaN or Inf is searched one by one.
 * An all-ones exponent is NaN or Inf in all three formats. */
#define SCAN_BLOCK 64

uint64_t ldb_find_nonfinite(const void *p, int dtype, uint64_t n)
{
    const uint8_t *s = p;
    uint64_t i = 0;
    if (dtype == LDB_F32) {
        for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
            uint32_t any = 0;
            for (int k = 0; k < SCAN_BLOCK; k++) {
                uint32_t u;
                memcpy(&u, s + 4 * (i + k), 4);
                any |= (u & 0x7f800000u) == 0x7f800000u;
            }
            if (any)
                break;
        }
        for (; i < n; i++) {
            uint32_t u;
            memcpy(&u, s + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u)
                return i;
        }
        return UINT64_MAX;
    }
    uint16_t mask = dtype == LDB_F16 ? 0x7c00 : 0x7f80;
    for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
        uint16_t any = 0;
        for (int k = 0; k < SCAN_BLOCK; k++) {
            uint16_t u;
            memcpy(&u, s + 2 * (i + k), 2);
            any |= (u & mask) == mask;
        }
        if (any)
            break;
    }
    for (; i < n; i++) {
        uint16_t u;
        memcpy(&u, s + 2 * i, 2);
        if ((u & mask) == mask)
            return i;
    }
    return UINT64_MAX;
}
