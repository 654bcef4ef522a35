/* AVX2 chroma k-means kernels: simd/kmeans_impl.h built with -mavx2 -mfma and
 * the suffix _avx2, and lane shuffles that load interleaved L*a*b* pixels. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include <immintrin.h>
#include <string.h>

#include "simd/kmeans_ab.h"

#define KMEANS_NAME(f) f##_avx2
#define KMEANS_AB_KERNELS
#include "simd/kmeans_impl.h"

// lab is (n,3), centres is (k,2), labels is (n)
void kmeans_nearest_lab_avx2(const float *lab, size_t n, const float *centres, int k,
                             uint8_t *labels) {
    // Eight pixels are 24 floats in three vectors; a* sits at positions {1,4,7}
    // of the first, {2,5} of the second and {0,3,6} of the third, b* at {2,5},
    // {0,3,6} and {1,4,7}: two blends gather each, a permutation orders them.
    const __m256i a_order = _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6);
    const __m256i b_order = _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *p = lab + 3 * i;
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8), v2 = _mm256_loadu_ps(p + 16);
        __m256 a = _mm256_blend_ps(_mm256_blend_ps(v0, v1, 0x24), v2, 0x49);
        __m256 b = _mm256_blend_ps(_mm256_blend_ps(v0, v1, 0x49), v2, 0x92);
        a = _mm256_permutevar8x32_ps(a, a_order);
        b = _mm256_permutevar8x32_ps(b, b_order);
        float pa[8], pb[8];
        _mm256_storeu_ps(pa, a);
        _mm256_storeu_ps(pb, b);
        nearest8(pa, pb, centres, k, labels + i);
    }
    if (i < n) kmeans_nearest_lab_scalar(lab + 3 * i, n - i, centres, k, labels + i);
}

#endif
