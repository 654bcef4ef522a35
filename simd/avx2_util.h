/* Small AVX2 helpers shared by the *_avx2.c kernels (and only by them: they
 * are compiled with -mavx2 -mfma). */
#ifndef COLORIZE_SIMD_AVX2_UTIL_H
#define COLORIZE_SIMD_AVX2_UTIL_H

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* All-ones in lanes [0, n), n in 1..8. */
static __m256i lane_mask(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

INLINE __m256 load_vec(const float *p, int masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

INLINE void store_vec(float *p, __m256 v, int masked, __m256i mask) {
    if (masked)
        _mm256_maskstore_ps(p, mask, v);
    else
        _mm256_storeu_ps(p, v);
}

#endif
