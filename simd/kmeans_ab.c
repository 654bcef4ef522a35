/* Dispatch between the chroma k-means kernels of each path. */
#include "simd/kmeans_ab.h"

#include "simd/simd.h"

void kmeans_nearest_ab(const float *a, const float *b, size_t n, const float *centres, int k,
                       uint8_t *labels) {
    SIMD_DISPATCH(kmeans_nearest_ab, (a, b, n, centres, k, labels));
}

void kmeans_nearest_lab(const float *lab, size_t n, const float *centres, int k, uint8_t *labels) {
    SIMD_DISPATCH(kmeans_nearest_lab, (lab, n, centres, k, labels));
}

uint64_t kmeans_ab_potential(const float *a, const float *b, const uint32_t *weights,
                             const uint32_t *d2, size_t n, const float *c) {
    return SIMD_DISPATCH(kmeans_ab_potential, (a, b, weights, d2, n, c));
}

uint64_t kmeans_ab_update_d2(const float *a, const float *b, const uint32_t *weights, uint32_t *d2,
                             size_t n, const float *c, int first) {
    return SIMD_DISPATCH(kmeans_ab_update_d2, (a, b, weights, d2, n, c, first));
}
