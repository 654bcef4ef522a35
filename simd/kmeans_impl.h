/* The k-means kernels of simd/kmeans.h and simd/kmeans_ab.h that the AVX2 and
 * portable paths share, written once with GCC/Clang vector extensions of
 * eight lanes and compiled once per path: kmeans_avx2.c and kmeans_ab_avx2.c
 * with -mavx2 -mfma (a vector is one 256-bit register), kmeans_portable.c and
 * kmeans_ab_portable.c for SSE2 or NEON (two halves). The file that includes
 * this defines KMEANS_NAME(f) to give the functions its suffix, and
 * KMEANS_RGB_KERNELS or KMEANS_AB_KERNELS for which set it builds. What
 * differs between the paths, the loading of interleaved pixels (byte and lane
 * shuffles in AVX2), stays in each file.
 *
 * The float operations are those of the scalar twins, in their order (the
 * build never fuses a * b + c), so every path gives the same labels; the
 * potentials are exact integers. 32-byte vectors go by pointer or stay inside
 * a function: by value their ABI would depend on AVX. */
#include <stdint.h>
#include <string.h>

#define KMEANS_INLINE static inline __attribute__((always_inline))

typedef float kf8 __attribute__((vector_size(32)));
typedef int32_t ki8 __attribute__((vector_size(32)));
typedef uint32_t ku8 __attribute__((vector_size(32)));
typedef uint64_t ku64x8 __attribute__((vector_size(64)));
typedef uint8_t kb8 __attribute__((vector_size(8)));

// *acc += the eight products w[i] * d[i], exact in 64 bits
KMEANS_INLINE void add_products8(ku64x8 *acc, const uint32_t *w, const ku8 *d) {
    ku8 wv;
    memcpy(&wv, w, sizeof wv);
    *acc += __builtin_convertvector(wv, ku64x8) * __builtin_convertvector(*d, ku64x8);
}

KMEANS_INLINE uint64_t sum8(const ku64x8 *acc) {
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s += (*acc)[i];
    return s;
}

// *d = the unsigned minimum of *d and other (8), lane by lane
KMEANS_INLINE void min8(ku8 *d, const uint32_t *other) {
    ku8 o;
    memcpy(&o, other, sizeof o);
    const ki8 less = *d < o;
    *d = (ku8)((less & (ki8)*d) | (~less & (ki8)o));
}

// labels (8) of the lane indices best
KMEANS_INLINE void store_labels(const ki8 *best, uint8_t *labels) {
    const kb8 bytes = __builtin_convertvector(*best, kb8);
    memcpy(labels, &bytes, sizeof bytes);
}

#ifdef KMEANS_RGB_KERNELS
#include "simd/kmeans.h"

// packed is 8 colours 0x00RRGGBB; writes their 8 labels
KMEANS_INLINE void nearest8(const uint32_t *packed, const float *centres, int k, uint8_t *labels) {
    ki8 x;
    memcpy(&x, packed, sizeof x);
    const kf8 r = __builtin_convertvector(x >> 16 & 255, kf8);
    const kf8 g = __builtin_convertvector(x >> 8 & 255, kf8);
    const kf8 b = __builtin_convertvector(x & 255, kf8);
    kf8 best_d = {0};
    ki8 best = {0};
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        const kf8 dr = r - c[0], dg = g - c[1], db = b - c[2];
        const kf8 d = (dr * dr + dg * dg) + db * db;
        if (j == 0) {
            best_d = d;
            continue;
        }
        const ki8 closer = d < best_d;
        best_d = (kf8)((closer & (ki8)d) | (~closer & (ki8)best_d));
        best = (closer & j) | (~closer & best);
    }
    store_labels(&best, labels);
}

// colours is (n) 0x00RRGGBB, centres is (k,3), labels is (n)
void KMEANS_NAME(kmeans_nearest)(const uint32_t *colours, size_t n, const float *centres, int k,
                                 uint8_t *labels) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        nearest8(colours + i, centres, k, labels + i);
    if (i < n) { // the tail, zero-padded to 8 lanes
        uint32_t tail[8] = {0};
        uint8_t tail_labels[8];
        memcpy(tail, colours + i, (n - i) * sizeof *colours);
        nearest8(tail, centres, k, tail_labels);
        memcpy(labels + i, tail_labels, n - i);
    }
}

// *d = the 8 squared distances |x - c|^2 of the colours x (8) to the colour c
KMEANS_INLINE void dist2_8(const uint32_t *colours, uint32_t c, ku8 *d) {
    ki8 x;
    memcpy(&x, colours, sizeof x);
    const ki8 dr = (x >> 16 & 255) - (int32_t)(c >> 16 & 255),
              dg = (x >> 8 & 255) - (int32_t)(c >> 8 & 255), db = (x & 255) - (int32_t)(c & 255);
    *d = (ku8)(dr * dr + dg * dg + db * db);
}

uint64_t KMEANS_NAME(kmeans_potential)(const uint32_t *colours, const uint32_t *weights,
                                       const uint32_t *d2, size_t n, uint32_t c) {
    ku64x8 acc = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ku8 d;
        dist2_8(colours + i, c, &d);
        min8(&d, d2 + i);
        add_products8(&acc, weights + i, &d);
    }
    return sum8(&acc) + kmeans_potential_scalar(colours + i, weights + i, d2 + i, n - i, c);
}

uint64_t KMEANS_NAME(kmeans_update_d2)(const uint32_t *colours, const uint32_t *weights,
                                       uint32_t *d2, size_t n, uint32_t c, int first) {
    ku64x8 acc = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ku8 d;
        dist2_8(colours + i, c, &d);
        if (!first) min8(&d, d2 + i);
        memcpy(d2 + i, &d, sizeof d);
        add_products8(&acc, weights + i, &d);
    }
    return sum8(&acc) + kmeans_update_d2_scalar(colours + i, weights + i, d2 + i, n - i, c, first);
}
#endif

#ifdef KMEANS_AB_KERNELS
#include "simd/kmeans_ab.h"

// *d = the 8 distances (a - c[0])^2 + (b - c[1])^2 of the points (pa[i], pb[i])
KMEANS_INLINE void distance8(const float *pa, const float *pb, const float *c, kf8 *d) {
    kf8 a, b;
    memcpy(&a, pa, sizeof a);
    memcpy(&b, pb, sizeof b);
    const kf8 da = a - c[0], db = b - c[1];
    *d = da * da + db * db;
}

// the labels of the 8 points (pa[i], pb[i])
KMEANS_INLINE void nearest8(const float *pa, const float *pb, const float *centres, int k,
                            uint8_t *labels) {
    kf8 best_d, d;
    distance8(pa, pb, centres, &best_d);
    ki8 best = {0};
    for (int j = 1; j < k; j++) {
        distance8(pa, pb, centres + 2 * j, &d);
        const ki8 closer = d < best_d;
        best_d = (kf8)((closer & (ki8)d) | (~closer & (ki8)best_d));
        best = (closer & j) | (~closer & best);
    }
    store_labels(&best, labels);
}

// a, b are (n), centres is (k,2), labels is (n)
void KMEANS_NAME(kmeans_nearest_ab)(const float *a, const float *b, size_t n, const float *centres,
                                    int k, uint8_t *labels) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        nearest8(a + i, b + i, centres, k, labels + i);
    if (i < n) { // the tail, zero-padded to 8 lanes
        float ta[8] = {0}, tb[8] = {0};
        uint8_t tail_labels[8];
        memcpy(ta, a + i, (n - i) * sizeof *a);
        memcpy(tb, b + i, (n - i) * sizeof *b);
        nearest8(ta, tb, centres, k, tail_labels);
        memcpy(labels + i, tail_labels, n - i);
    }
}

// *d = the 8 potential squared distances (simd/kmeans_ab.h); a NaN distance counts as the cap
KMEANS_INLINE void potential_d2_8(const float *a, const float *b, const float *c, ku8 *d) {
    kf8 dist;
    distance8(a, b, c, &dist);
    const kf8 cap = {131072.0f, 131072.0f, 131072.0f, 131072.0f,
                     131072.0f, 131072.0f, 131072.0f, 131072.0f};
    const ki8 below = dist < cap;
    const kf8 capped = (kf8)((below & (ki8)dist) | (~below & (ki8)cap));
    *d = (ku8) __builtin_convertvector(capped * 8192.0f, ki8);
}

uint64_t KMEANS_NAME(kmeans_ab_potential)(const float *a, const float *b, const uint32_t *weights,
                                          const uint32_t *d2, size_t n, const float *c) {
    ku64x8 acc = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ku8 d;
        potential_d2_8(a + i, b + i, c, &d);
        min8(&d, d2 + i);
        add_products8(&acc, weights + i, &d);
    }
    return sum8(&acc) + kmeans_ab_potential_scalar(a + i, b + i, weights + i, d2 + i, n - i, c);
}

uint64_t KMEANS_NAME(kmeans_ab_update_d2)(const float *a, const float *b, const uint32_t *weights,
                                          uint32_t *d2, size_t n, const float *c, int first) {
    ku64x8 acc = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ku8 d;
        potential_d2_8(a + i, b + i, c, &d);
        if (!first) min8(&d, d2 + i);
        memcpy(d2 + i, &d, sizeof d);
        add_products8(&acc, weights + i, &d);
    }
    return sum8(&acc) +
           kmeans_ab_update_d2_scalar(a + i, b + i, weights + i, d2 + i, n - i, c, first);
}
#endif
