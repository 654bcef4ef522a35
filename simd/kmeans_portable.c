/* Portable k-means kernels (SSE2 on x86-64, NEON on aarch64): simd/kmeans_impl.h
 * with the suffix _portable, and the loading of interleaved pixels. */
#include "simd/kmeans.h"

#include <string.h>

#define KMEANS_NAME(f) f##_portable
#define KMEANS_RGB_KERNELS
#include "simd/kmeans_impl.h"

// rgb is (n,3), centres is (k,3), labels is (n)
void kmeans_nearest_rgb_portable(const uint8_t *rgb, size_t n, const float *centres, int k,
                                 uint8_t *labels) {
    for (size_t i = 0; i < n; i += 8) {
        const size_t m = n - i < 8 ? n - i : 8;
        uint32_t packed[8] = {0};
        uint8_t got[8];
        for (size_t j = 0; j < m; j++) {
            const uint8_t *p = rgb + 3 * (i + j);
            packed[j] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
        nearest8(packed, centres, k, got);
        memcpy(labels + i, got, m);
    }
}
