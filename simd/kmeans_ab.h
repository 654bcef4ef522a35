/* The chroma k-means kernels: the nearest of k centres in the a*b* plane, and
 * the k-means++ potentials there.
 *
 * Points are (a*, b*) floats, |a*|, |b*| < 128; centres is (k, 2), a* then
 * b*. Distance, the same in every path, in float and in this order, never
 * fused:
 *   da = a - c[0], db = b - c[1]
 *   d  = da * da + db * db
 * The nearest centre is the first one with the smallest d (a tie goes to the
 * lower index). Every operation is an IEEE single-precision operation done in
 * the same order, so every path (scalar, portable,
 * AVX2) agrees bit for bit, on every machine.
 *
 * The k-means++ potentials are exact in integers, so every path and every
 * order of summing agrees: a point's squared distance counts as
 *   d2 = (uint32_t)(min(d, 2^17) * 2^13)     (truncated; 2^30 at most)
 * 2^-13 of a squared a*b* unit, and the sums are of weights[i] * d2 in 64 bits.
 *
 * The dispatching functions (no suffix) live in kmeans_ab.c. */
#ifndef COLORIZE_SIMD_KMEANS_AB_H
#define COLORIZE_SIMD_KMEANS_AB_H

#include <stddef.h>
#include <stdint.h>

#include "simd/simd.h"

/* a and b are (n) (a point's coordinates in two arrays), centres is (k, 2),
 * 1 <= k <= 255; labels is (n). */
void kmeans_nearest_ab(const float *a, const float *b, size_t n, const float *centres, int k,
                       uint8_t *labels);
void kmeans_nearest_ab_scalar(const float *a, const float *b, size_t n, const float *centres, int k,
                              uint8_t *labels);
void kmeans_nearest_ab_portable(const float *a, const float *b, size_t n, const float *centres,
                                int k, uint8_t *labels);
#if SIMD_HAVE_AVX2
void kmeans_nearest_ab_avx2(const float *a, const float *b, size_t n, const float *centres, int k,
                            uint8_t *labels);
#endif

/* The same on interleaved L*a*b* pixels: lab is (n, 3), L* ignored. */
void kmeans_nearest_lab(const float *lab, size_t n, const float *centres, int k, uint8_t *labels);
void kmeans_nearest_lab_scalar(const float *lab, size_t n, const float *centres, int k,
                               uint8_t *labels);
void kmeans_nearest_lab_portable(const float *lab, size_t n, const float *centres, int k,
                                 uint8_t *labels);
#if SIMD_HAVE_AVX2
void kmeans_nearest_lab_avx2(const float *lab, size_t n, const float *centres, int k,
                             uint8_t *labels);
#endif

/* With c the (a*, b*) of a candidate centre:
 *   kmeans_ab_potential:  returns sum of weights[i] * min(d2[i], d2 of point i to c)
 *   kmeans_ab_update_d2:  d2[i] = min(d2[i], d2 of point i to c) (just the distance
 *                         when first), returns sum of weights[i] * d2[i] */
uint64_t kmeans_ab_potential(const float *a, const float *b, const uint32_t *weights,
                             const uint32_t *d2, size_t n, const float *c);
uint64_t kmeans_ab_potential_scalar(const float *a, const float *b, const uint32_t *weights,
                                    const uint32_t *d2, size_t n, const float *c);
uint64_t kmeans_ab_potential_portable(const float *a, const float *b, const uint32_t *weights,
                                      const uint32_t *d2, size_t n, const float *c);
#if SIMD_HAVE_AVX2
uint64_t kmeans_ab_potential_avx2(const float *a, const float *b, const uint32_t *weights,
                                  const uint32_t *d2, size_t n, const float *c);
#endif
uint64_t kmeans_ab_update_d2(const float *a, const float *b, const uint32_t *weights, uint32_t *d2,
                             size_t n, const float *c, int first);
uint64_t kmeans_ab_update_d2_scalar(const float *a, const float *b, const uint32_t *weights,
                                    uint32_t *d2, size_t n, const float *c, int first);
uint64_t kmeans_ab_update_d2_portable(const float *a, const float *b, const uint32_t *weights,
                                      uint32_t *d2, size_t n, const float *c, int first);
#if SIMD_HAVE_AVX2
uint64_t kmeans_ab_update_d2_avx2(const float *a, const float *b, const uint32_t *weights,
                                  uint32_t *d2, size_t n, const float *c, int first);
#endif

#endif
