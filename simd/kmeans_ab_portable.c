/* Portable chroma k-means kernels (SSE2 on x86-64, NEON on aarch64):
 * simd/kmeans_impl.h with the suffix _portable, and the loading of
 * interleaved L*a*b* pixels. */
#include "simd/kmeans_ab.h"

#include <string.h>

#define KMEANS_NAME(f) f##_portable
#define KMEANS_AB_KERNELS
#include "simd/kmeans_impl.h"

// lab is (n,3), centres is (k,2), labels is (n)
void kmeans_nearest_lab_portable(const float *lab, size_t n, const float *centres, int k,
                                 uint8_t *labels) {
    for (size_t i = 0; i < n; i += 8) {
        const size_t m = n - i < 8 ? n - i : 8;
        float a[8] = {0}, b[8] = {0};
        uint8_t got[8];
        for (size_t j = 0; j < m; j++)
            a[j] = lab[3 * (i + j) + 1], b[j] = lab[3 * (i + j) + 2];
        nearest8(a, b, centres, k, got);
        memcpy(labels + i, got, m);
    }
}
