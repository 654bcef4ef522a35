/* AVX2 chroma k-means kernels: eight points at a time, the same float
 * operations in the same order as the scalar twins (mul and add are never
 * fused). */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include <immintrin.h>
#include <string.h>

#include "simd/avx2_util.h"
#include "simd/kmeans_ab.h"

// 8 distances (a - c[0])^2 + (b - c[1])^2
static __m256 distance8(__m256 a, __m256 b, const float *c) {
    __m256 da = _mm256_sub_ps(a, _mm256_set1_ps(c[0]));
    __m256 db = _mm256_sub_ps(b, _mm256_set1_ps(c[1]));
    return _mm256_add_ps(_mm256_mul_ps(da, da), _mm256_mul_ps(db, db));
}

// the labels of 8 points as 8 int32
static __m256i nearest8(__m256 a, __m256 b, const float *centres, int k) {
    __m256 best_d = distance8(a, b, centres), best = _mm256_setzero_ps();
    for (int j = 1; j < k; j++) {
        __m256 d = distance8(a, b, centres + 2 * j);
        __m256 closer = _mm256_cmp_ps(d, best_d, _CMP_LT_OQ);
        best_d = _mm256_blendv_ps(best_d, d, closer);
        best = _mm256_blendv_ps(best, _mm256_set1_ps((float)j), closer);
    }
    return _mm256_cvtps_epi32(best);
}

// a, b are (n), centres is (k,2), labels is (n)
void kmeans_nearest_ab_avx2(const float *a, const float *b, size_t n, const float *centres, int k,
                            uint8_t *labels) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        store_labels8(nearest8(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), centres, k),
                      labels + i);
    if (i < n) { // the tail, zero-padded to 8 lanes
        float ta[8] = {0}, tb[8] = {0};
        uint8_t tail_labels[8];
        memcpy(ta, a + i, (n - i) * sizeof *a);
        memcpy(tb, b + i, (n - i) * sizeof *b);
        store_labels8(nearest8(_mm256_loadu_ps(ta), _mm256_loadu_ps(tb), centres, k), tail_labels);
        memcpy(labels + i, tail_labels, n - i);
    }
}

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
        store_labels8(nearest8(a, b, centres, k), labels + i);
    }
    if (i < n) kmeans_nearest_lab_scalar(lab + 3 * i, n - i, centres, k, labels + i);
}

// 8 potential squared distances as uint32 (simd/kmeans_ab.h)
static __m256i potential_d2_8(const float *a, const float *b, const float *c) {
    __m256 d = distance8(_mm256_loadu_ps(a), _mm256_loadu_ps(b), c);
    d = _mm256_min_ps(d, _mm256_set1_ps(131072.0f));
    return _mm256_cvttps_epi32(_mm256_mul_ps(d, _mm256_set1_ps(8192.0f)));
}

uint64_t kmeans_ab_potential_avx2(const float *a, const float *b, const uint32_t *weights,
                                  const uint32_t *d2, size_t n, const float *c) {
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = potential_d2_8(a + i, b + i, c);
        d = _mm256_min_epu32(d, _mm256_loadu_si256((const __m256i *)(d2 + i)));
        acc = add_products(acc, _mm256_loadu_si256((const __m256i *)(weights + i)), d);
    }
    return sum4_u64(acc) + kmeans_ab_potential_scalar(a + i, b + i, weights + i, d2 + i, n - i, c);
}

uint64_t kmeans_ab_update_d2_avx2(const float *a, const float *b, const uint32_t *weights,
                                  uint32_t *d2, size_t n, const float *c, int first) {
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = potential_d2_8(a + i, b + i, c);
        if (!first) d = _mm256_min_epu32(d, _mm256_loadu_si256((const __m256i *)(d2 + i)));
        _mm256_storeu_si256((__m256i *)(d2 + i), d);
        acc = add_products(acc, _mm256_loadu_si256((const __m256i *)(weights + i)), d);
    }
    return sum4_u64(acc) +
           kmeans_ab_update_d2_scalar(a + i, b + i, weights + i, d2 + i, n - i, c, first);
}

#endif
