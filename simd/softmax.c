/* Dispatch between the two builds of the softmax kernels. */
#include "simd/softmax.h"

#include "simd/simd.h"

void softmax_pixels(const float *z, float *q, size_t pixels, int k) {
    if (simd_active() == SIMD_AVX2)
        softmax_pixels_avx2(z, q, pixels, k);
    else
        softmax_pixels_scalar(z, q, pixels, k);
}

double xent_pixels(const float *prob, const uint8_t *t, size_t pixels, int k,
                   const float *weights) {
    return simd_active() == SIMD_AVX2 ? xent_pixels_avx2(prob, t, pixels, k, weights)
                                      : xent_pixels_scalar(prob, t, pixels, k, weights);
}

void xent_grad_pixels(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                      const float *weights, float *dz) {
    if (simd_active() == SIMD_AVX2)
        xent_grad_pixels_avx2(prob, t, pixels, k, scale, weights, dz);
    else
        xent_grad_pixels_scalar(prob, t, pixels, k, scale, weights, dz);
}
