/* Dispatch between the softmax and cross-entropy kernels of each path
 * (simd/simd.h). */
#include "simd/softmax.h"

#include "simd/simd.h"

void softmax_pixels(const float *z, float *q, size_t pixels, int k) {
    SIMD_DISPATCH(softmax_pixels, (z, q, pixels, k));
}

double xent_pixels(const float *prob, const uint8_t *t, size_t pixels, int k,
                   const float *weights) {
    return SIMD_DISPATCH(xent_pixels, (prob, t, pixels, k, weights));
}

void xent_grad_pixels(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                      const float *weights, float *dz) {
    SIMD_DISPATCH(xent_grad_pixels, (prob, t, pixels, k, scale, weights, dz));
}
