/* Per-pixel softmax and cross-entropy over k classes on channels-last
 * tensors (pixels, k): the network's output layer.
 *
 * One source, simd/softmax_impl.h, is compiled once per path:
 * softmax_scalar.c and softmax_portable.c for the target's baseline (the
 * compiler's SSE2 vectors on x86-64, NEON on aarch64: four lanes), and, on
 * x86-64 only, softmax_avx2.c with -mavx2 (eight lanes). It is plain C over
 * vm_exp and vm_log (simd/vmath.h): IEEE operations in a fixed order, never
 * fused nor reassociated, so every build gives the same bits (the tests hold
 * them equal) and the AVX2 one simply does twice the work per instruction. */
#ifndef COLORIZE_SIMD_SOFTMAX_H
#define COLORIZE_SIMD_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#include "simd/simd.h"

/* q = softmax of the logits z at each pixel: exp(z - max) / sum. */
void softmax_pixels(const float *z, float *q, size_t pixels, int k);
void softmax_pixels_scalar(const float *z, float *q, size_t pixels, int k);
void softmax_pixels_portable(const float *z, float *q, size_t pixels, int k);
#if SIMD_HAVE_AVX2
void softmax_pixels_avx2(const float *z, float *q, size_t pixels, int k);
#endif

/* Sum over the pixels, in pixel order, of -ln prob[p][t[p]] (a probability
 * below 1e-30 counts as 1e-30), each term times weights[t[p]] when weights
 * (k class weights) is not NULL. The product of a float weight and a float
 * logarithm is exact in double, so weights of one give the unweighted bits. */
double xent_pixels(const float *prob, const uint8_t *t, size_t pixels, int k, const float *weights);
double xent_pixels_scalar(const float *prob, const uint8_t *t, size_t pixels, int k,
                          const float *weights);
double xent_pixels_portable(const float *prob, const uint8_t *t, size_t pixels, int k,
                            const float *weights);
#if SIMD_HAVE_AVX2
double xent_pixels_avx2(const float *prob, const uint8_t *t, size_t pixels, int k,
                        const float *weights);
#endif

/* dz = (prob - onehot(t)) * scale at each pixel: the gradient of the
 * cross-entropy to the logits; with weights (not NULL), scale becomes
 * weights[t] * scale, rounded to float once per pixel. */
void xent_grad_pixels(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                      const float *weights, float *dz);
void xent_grad_pixels_scalar(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                             const float *weights, float *dz);
void xent_grad_pixels_portable(const float *prob, const uint8_t *t, size_t pixels, int k,
                               float scale, const float *weights, float *dz);
#if SIMD_HAVE_AVX2
void xent_grad_pixels_avx2(const float *prob, const uint8_t *t, size_t pixels, int k, float scale,
                           const float *weights, float *dz);
#endif

#endif
