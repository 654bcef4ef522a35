/* AVX2 k-means kernels: eight colours at a time, the same float operations in
 * the same order as the scalar twins (mul and add are never fused). */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include "simd/kmeans.h"

#include <immintrin.h>
#include <string.h>

#include "simd/avx2_util.h"

// packed is 8 colours 0x00RRGGBB; returns their labels as 8 int32
static __m256i nearest8(__m256i packed, const float *centres, int k) {
    const __m256i byte = _mm256_set1_epi32(255);
    __m256 r = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(packed, 16), byte));
    __m256 g = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(packed, 8), byte));
    __m256 b = _mm256_cvtepi32_ps(_mm256_and_si256(packed, byte));
    __m256 best_d = _mm256_setzero_ps(), best = _mm256_setzero_ps();
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        __m256 dr = _mm256_sub_ps(r, _mm256_set1_ps(c[0]));
        __m256 dg = _mm256_sub_ps(g, _mm256_set1_ps(c[1]));
        __m256 db = _mm256_sub_ps(b, _mm256_set1_ps(c[2]));
        __m256 d = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(dr, dr), _mm256_mul_ps(dg, dg)),
                                 _mm256_mul_ps(db, db));
        if (j == 0) {
            best_d = d;
            continue;
        }
        __m256 closer = _mm256_cmp_ps(d, best_d, _CMP_LT_OQ);
        best_d = _mm256_blendv_ps(best_d, d, closer);
        best = _mm256_blendv_ps(best, _mm256_set1_ps((float)j), closer);
    }
    return _mm256_cvtps_epi32(best);
}

// colours is (n) 0x00RRGGBB, centres is (k,3), labels is (n)
void kmeans_nearest_avx2(const uint32_t *colours, size_t n, const float *centres, int k,
                         uint8_t *labels) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(colours + i));
        store_labels8(nearest8(packed, centres, k), labels + i);
    }
    if (i < n) { // the tail, zero-padded to 8 lanes
        uint32_t tail[8] = {0};
        uint8_t tail_labels[8];
        memcpy(tail, colours + i, (n - i) * sizeof *colours);
        store_labels8(nearest8(_mm256_loadu_si256((const __m256i *)tail), centres, k), tail_labels);
        memcpy(labels + i, tail_labels, n - i);
    }
}

// rgb is (n,3), centres is (k,3), labels is (n)
void kmeans_nearest_rgb_avx2(const uint8_t *rgb, size_t n, const float *centres, int k,
                             uint8_t *labels) {
    // Each 128-bit half turns 4 pixels (12 bytes) into 4 dwords 0x00RRGGBB.
    const __m256i to_packed =
        _mm256_setr_epi8(2, 1, 0, -1, 5, 4, 3, -1, 8, 7, 6, -1, 11, 10, 9, -1, //
                         2, 1, 0, -1, 5, 4, 3, -1, 8, 7, 6, -1, 11, 10, 9, -1);
    size_t i = 0;
    // The second 16-byte load reads bytes 12..27 of the 24-byte group: keep 10 pixels ahead.
    for (; i + 10 <= n; i += 8) {
        const uint8_t *p = rgb + 3 * i;
        __m256i raw =
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                    _mm_loadu_si128((const __m128i *)(p + 12)), 1);
        __m256i packed = _mm256_shuffle_epi8(raw, to_packed);
        store_labels8(nearest8(packed, centres, k), labels + i);
    }
    uint32_t tail[16];
    size_t left = n - i;
    for (size_t j = 0; j < left; j++) {
        const uint8_t *p = rgb + 3 * (i + j);
        tail[j] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    if (left) kmeans_nearest_avx2(tail, left, centres, k, labels + i);
}

// 8 squared distances |x - c|^2 as int32; c is (r, g, b) broadcast
static __m256i dist2_8(__m256i x, __m256i cr, __m256i cg, __m256i cb) {
    const __m256i byte = _mm256_set1_epi32(255);
    __m256i dr = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(x, 16), byte), cr);
    __m256i dg = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(x, 8), byte), cg);
    __m256i db = _mm256_sub_epi32(_mm256_and_si256(x, byte), cb);
    return _mm256_add_epi32(
        _mm256_add_epi32(_mm256_mullo_epi32(dr, dr), _mm256_mullo_epi32(dg, dg)),
        _mm256_mullo_epi32(db, db));
}

uint64_t kmeans_potential_avx2(const uint32_t *colours, const uint32_t *weights, const uint32_t *d2,
                               size_t n, uint32_t c) {
    __m256i cr = _mm256_set1_epi32((int)(c >> 16 & 255)),
            cg = _mm256_set1_epi32((int)(c >> 8 & 255)), cb = _mm256_set1_epi32((int)(c & 255)),
            acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = dist2_8(_mm256_loadu_si256((const __m256i *)(colours + i)), cr, cg, cb);
        d = _mm256_min_epu32(d, _mm256_loadu_si256((const __m256i *)(d2 + i)));
        acc = add_products(acc, _mm256_loadu_si256((const __m256i *)(weights + i)), d);
    }
    return sum4_u64(acc) + kmeans_potential_scalar(colours + i, weights + i, d2 + i, n - i, c);
}

uint64_t kmeans_update_d2_avx2(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                               size_t n, uint32_t c, int first) {
    __m256i cr = _mm256_set1_epi32((int)(c >> 16 & 255)),
            cg = _mm256_set1_epi32((int)(c >> 8 & 255)), cb = _mm256_set1_epi32((int)(c & 255)),
            acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = dist2_8(_mm256_loadu_si256((const __m256i *)(colours + i)), cr, cg, cb);
        if (!first) d = _mm256_min_epu32(d, _mm256_loadu_si256((const __m256i *)(d2 + i)));
        _mm256_storeu_si256((__m256i *)(d2 + i), d);
        acc = add_products(acc, _mm256_loadu_si256((const __m256i *)(weights + i)), d);
    }
    return sum4_u64(acc) +
           kmeans_update_d2_scalar(colours + i, weights + i, d2 + i, n - i, c, first);
}

#endif
