/* The k-means assignment kernel: the nearest of k centres to each colour.
 *
 * Distance, the same in every path, in float and in this order, never fused:
 *   dr = (float)r - c[0], dg = (float)g - c[1], db = (float)b - c[2]
 *   d  = (dr * dr + dg * dg) + db * db
 * The nearest centre is the first one with the smallest d (a tie goes to the
 * lower index). Since every operation is an IEEE single-precision operation
 * done in the same order, every path (scalar, portable,
 * AVX2) agrees bit for bit, on every machine.
 *
 * The dispatching functions (no suffix) live in kmeans.c. */
#ifndef COLORIZE_SIMD_KMEANS_H
#define COLORIZE_SIMD_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "simd/simd.h"

/* colours is (n) packed 0x00RRGGBB, centres is (k, 3) RGB, 1 <= k <= 255;
 * labels is (n). */
void kmeans_nearest(const uint32_t *colours, size_t n, const float *centres, int k,
                    uint8_t *labels);
void kmeans_nearest_scalar(const uint32_t *colours, size_t n, const float *centres, int k,
                           uint8_t *labels);
void kmeans_nearest_portable(const uint32_t *colours, size_t n, const float *centres, int k,
                             uint8_t *labels);
#if SIMD_HAVE_AVX2
void kmeans_nearest_avx2(const uint32_t *colours, size_t n, const float *centres, int k,
                         uint8_t *labels);
#endif

/* The same on interleaved pixels: rgb is (n, 3) bytes. */
void kmeans_nearest_rgb(const uint8_t *rgb, size_t n, const float *centres, int k, uint8_t *labels);
void kmeans_nearest_rgb_scalar(const uint8_t *rgb, size_t n, const float *centres, int k,
                               uint8_t *labels);
void kmeans_nearest_rgb_portable(const uint8_t *rgb, size_t n, const float *centres, int k,
                                 uint8_t *labels);
#if SIMD_HAVE_AVX2
void kmeans_nearest_rgb_avx2(const uint8_t *rgb, size_t n, const float *centres, int k,
                             uint8_t *labels);
#endif

/* k-means++ potentials, exact in integers (so every path agrees): with
 * |x - c|^2 the squared distance between the packed colours x and c,
 *   kmeans_potential:  returns sum of weights[i] * min(d2[i], |colours[i] - c|^2)
 *   kmeans_update_d2:  d2[i] = min(d2[i], |colours[i] - c|^2) (just the distance
 *                      when first), returns sum of weights[i] * d2[i] */
uint64_t kmeans_potential(const uint32_t *colours, const uint32_t *weights, const uint32_t *d2,
                          size_t n, uint32_t c);
uint64_t kmeans_potential_scalar(const uint32_t *colours, const uint32_t *weights,
                                 const uint32_t *d2, size_t n, uint32_t c);
uint64_t kmeans_potential_portable(const uint32_t *colours, const uint32_t *weights,
                                   const uint32_t *d2, size_t n, uint32_t c);
#if SIMD_HAVE_AVX2
uint64_t kmeans_potential_avx2(const uint32_t *colours, const uint32_t *weights, const uint32_t *d2,
                               size_t n, uint32_t c);
#endif
uint64_t kmeans_update_d2(const uint32_t *colours, const uint32_t *weights, uint32_t *d2, size_t n,
                          uint32_t c, int first);
uint64_t kmeans_update_d2_scalar(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                                 size_t n, uint32_t c, int first);
uint64_t kmeans_update_d2_portable(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                                   size_t n, uint32_t c, int first);
#if SIMD_HAVE_AVX2
uint64_t kmeans_update_d2_avx2(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                               size_t n, uint32_t c, int first);
#endif

#endif
