/* Dispatch between the two builds of the softmax kernels: the AVX2 one, and
 * the baseline one (softmax_scalar.c), which serves both the scalar and the
 * portable path: it is plain C that the compiler already vectorises for the
 * target (SSE2 on x86-64, NEON on aarch64), so a copy written with vector
 * extensions would add nothing. Both builds give the same bits. */
#include "simd/softmax.h"

#include "simd/simd.h"

void softmax_pixels(const float *z, float *q, size_t pixels, int k) {
#if SIMD_HAVE_AVX2
    if (simd_active() == SIMD_AVX2) {
        softmax_pixels_avx2(z, q, pixels, k);
        return;
    }
#endif
    softmax_pixels_scalar(z, q, pixels, k);
}

double xent_pixels(const float *prob, const uint8_t *t, size_t pixels, int k,
                   const float *weights) {
#if SIMD_HAVE_AVX2
    if (simd_active() == SIMD_AVX2) return xent_pixels_avx2(prob, t, pixels, k, weights);
#endif
    return xent_pixels_scalar(prob, t, pixels, k, weights);
}

void xent_grad_pixels(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                      const float *weights, float *dz) {
#if SIMD_HAVE_AVX2
    if (simd_active() == SIMD_AVX2) {
        xent_grad_pixels_avx2(prob, t, pixels, k, scale, weights, dz);
        return;
    }
#endif
    xent_grad_pixels_scalar(prob, t, pixels, k, scale, weights, dz);
}
