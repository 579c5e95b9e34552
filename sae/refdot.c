/* refdot.c — the reference dot product (refdot.h). Three paths, one result: an
 * AVX-512 register holds the 16 lanes; AVX2 holds them in two registers; the plain
 * loop keeps an array of 16 (which a compiler may vectorise, lane for lane). A
 * vector add or multiply rounds each lane exactly as the scalar operation does, and
 * the project compiles with -ffp-contract=off, so no multiply and add are fused. */
#include "refdot.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* The fold of 16 lanes and the tail, shared by every path: a[] holds the lanes. */
static float finish(float a[16], const float *x, const float *w, uint32_t n16, uint32_t n)
{
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            a[l] = a[l] + a[l + h];
    float s = a[0];
    for (uint32_t i = n16; i < n; i++)
        s = s + x[i] * w[i];
    return s;
}

#if defined(__AVX512F__)
float ldb_refdot(const float *x, const float *w, uint32_t n)
{
    uint32_t n16 = n & ~15u;
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t i = 0; i < n16; i += 16)
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i)));
    float a[16];
    _mm512_storeu_ps(a, acc);
    return finish(a, x, w, n16, n);
}

void ldb_refdot4(const float *const x[4], const float *const w[4], uint32_t n, float out[4])
{
    uint32_t n16 = n & ~15u;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t i = 0; i < n16; i += 16) {
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(x[0] + i), _mm512_loadu_ps(w[0] + i)));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(x[1] + i), _mm512_loadu_ps(w[1] + i)));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_loadu_ps(x[2] + i), _mm512_loadu_ps(w[2] + i)));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_loadu_ps(x[3] + i), _mm512_loadu_ps(w[3] + i)));
    }
    float a[16];
    _mm512_storeu_ps(a, a0);
    out[0] = finish(a, x[0], w[0], n16, n);
    _mm512_storeu_ps(a, a1);
    out[1] = finish(a, x[1], w[1], n16, n);
    _mm512_storeu_ps(a, a2);
    out[2] = finish(a, x[2], w[2], n16, n);
    _mm512_storeu_ps(a, a3);
    out[3] = finish(a, x[3], w[3], n16, n);
}
#elif defined(__AVX2__)
float ldb_refdot(const float *x, const float *w, uint32_t n)
{
    uint32_t n16 = n & ~15u;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (uint32_t i = 0; i < n16; i += 16) {
        lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i)));
        hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(w + i + 8)));
    }
    float a[16];
    _mm256_storeu_ps(a, lo);
    _mm256_storeu_ps(a + 8, hi);
    return finish(a, x, w, n16, n);
}
#else
float ldb_refdot(const float *x, const float *w, uint32_t n)
{
    uint32_t n16 = n & ~15u;
    float a[16] = {0};
    for (uint32_t i = 0; i < n16; i += 16)
        for (int l = 0; l < 16; l++)
            a[l] = a[l] + x[i + l] * w[i + l];
    return finish(a, x, w, n16, n);
}
#endif

#if !defined(__AVX512F__)
/* Without AVX-512 the four products are four calls. */
void ldb_refdot4(const float *const x[4], const float *const w[4], uint32_t n, float out[4])
{
    for (int k = 0; k < 4; k++)
        out[k] = ldb_refdot(x[k], w[k], n);
}
#endif
