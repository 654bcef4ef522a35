/* AVX2 k-means kernels: simd/kmeans_impl.h built with -mavx2 -mfma and the
 * suffix _avx2, and a byte shuffle that loads interleaved pixels. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include "simd/kmeans.h"

#include <immintrin.h>
#include <string.h>

#define KMEANS_NAME(f) f##_avx2
#define KMEANS_RGB_KERNELS
#include "simd/kmeans_impl.h"

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
        uint32_t colours[8];
        _mm256_storeu_si256((__m256i *)colours, packed);
        nearest8(colours, centres, k, labels + i);
    }
    uint32_t tail[16];
    size_t left = n - i;
    for (size_t j = 0; j < left; j++) {
        const uint8_t *p = rgb + 3 * (i + j);
        tail[j] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    if (left) kmeans_nearest_avx2(tail, left, centres, k, labels + i);
}

#endif
