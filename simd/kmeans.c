/* Dispatch between the k-means kernels of each path. */
#include "simd/kmeans.h"

#include "simd/simd.h"

void kmeans_nearest(const uint32_t *colours, size_t n, const float *centres, int k,
                    uint8_t *labels) {
    SIMD_DISPATCH(kmeans_nearest, (colours, n, centres, k, labels));
}

void kmeans_nearest_rgb(const uint8_t *rgb, size_t n, const float *centres, int k,
                        uint8_t *labels) {
    SIMD_DISPATCH(kmeans_nearest_rgb, (rgb, n, centres, k, labels));
}

uint64_t kmeans_potential(const uint32_t *colours, const uint32_t *weights, const uint32_t *d2,
                          size_t n, uint32_t c) {
    return SIMD_DISPATCH(kmeans_potential, (colours, weights, d2, n, c));
}

uint64_t kmeans_update_d2(const uint32_t *colours, const uint32_t *weights, uint32_t *d2, size_t n,
                          uint32_t c, int first) {
    return SIMD_DISPATCH(kmeans_update_d2, (colours, weights, d2, n, c, first));
}
