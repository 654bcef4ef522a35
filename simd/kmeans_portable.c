/* Portable k-means kernels, written once with GCC/Clang vector extensions
 * (SSE2 on x86-64, NEON on aarch64): eight colours at a time, the same float
 * operations in the same order as the scalar twins (mul and add never
 * fused), so every path gives the same labels; the potentials are exact
 * integers. */
#include "simd/kmeans.h"

#include <string.h>

#include "simd/vec.h"

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef uint8_t vu8x8 __attribute__((vector_size(8)));

// packed is 8 colours 0x00RRGGBB; writes their 8 labels
static void nearest8(const uint32_t *packed, const float *centres, int k, uint8_t *labels) {
    vi8 x;
    memcpy(&x, packed, sizeof x);
    const vf8 r = __builtin_convertvector(x >> 16 & 255, vf8);
    const vf8 g = __builtin_convertvector(x >> 8 & 255, vf8);
    const vf8 b = __builtin_convertvector(x & 255, vf8);
    vf8 best_d = {0};
    vi8 best = {0};
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        const vf8 dr = r - c[0], dg = g - c[1], db = b - c[2];
        const vf8 d = (dr * dr + dg * dg) + db * db;
        if (j == 0) {
            best_d = d;
            continue;
        }
        const vi8 closer = d < best_d;
        best_d = (vf8)((closer & (vi8)d) | (~closer & (vi8)best_d));
        best = (closer & j) | (~closer & best);
    }
    const vu8x8 bytes = __builtin_convertvector(best, vu8x8);
    memcpy(labels, &bytes, sizeof bytes);
}

// colours is (n) 0x00RRGGBB, centres is (k,3), labels is (n)
void kmeans_nearest_portable(const uint32_t *colours, size_t n, const float *centres, int k,
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

// rgb is (n,3), centres is (k,3), labels is (n)
void kmeans_nearest_rgb_portable(const uint8_t *rgb, size_t n, const float *centres, int k,
                                 uint8_t *labels) {
    for (size_t i = 0; i < n; i += 8) {
        const size_t m = n - i < 8 ? n - i : 8;
        uint32_t packed[8] = {0};
        uint8_t got[8];
        for (size_t j = 0; j < m; j++) {
            const uint8_t *p = rgb + 3 * (i + j);
            packed[j] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
        nearest8(packed, centres, k, got);
        memcpy(labels + i, got, m);
    }
}

// 4 squared distances |x - c|^2; c is (r, g, b) in every lane
VEC_INLINE vu4 dist2_4(vu4 x, vi4 cr, vi4 cg, vi4 cb) {
    const vi4 dr = (vi4)(x >> 16 & 255) - cr, dg = (vi4)(x >> 8 & 255) - cg,
              db = (vi4)(x & 255) - cb;
    return (vu4)(dr * dr + dg * dg + db * db);
}

uint64_t kmeans_potential_portable(const uint32_t *colours, const uint32_t *weights,
                                   const uint32_t *d2, size_t n, uint32_t c) {
    const vi4 cr = vi4_splat((int32_t)(c >> 16 & 255)), cg = vi4_splat((int32_t)(c >> 8 & 255)),
              cb = vi4_splat((int32_t)(c & 255));
    vu64x4 acc = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const vu4 d = vu4_min(dist2_4(vu4_load(colours + i), cr, cg, cb), vu4_load(d2 + i));
        vu64_add_products(&acc, vu4_load(weights + i), d);
    }
    return vu64_sum(&acc) + kmeans_potential_scalar(colours + i, weights + i, d2 + i, n - i, c);
}

uint64_t kmeans_update_d2_portable(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                                   size_t n, uint32_t c, int first) {
    const vi4 cr = vi4_splat((int32_t)(c >> 16 & 255)), cg = vi4_splat((int32_t)(c >> 8 & 255)),
              cb = vi4_splat((int32_t)(c & 255));
    vu64x4 acc = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vu4 d = dist2_4(vu4_load(colours + i), cr, cg, cb);
        if (!first) d = vu4_min(d, vu4_load(d2 + i));
        vu4_store(d2 + i, d);
        vu64_add_products(&acc, vu4_load(weights + i), d);
    }
    return vu64_sum(&acc) +
           kmeans_update_d2_scalar(colours + i, weights + i, d2 + i, n - i, c, first);
}
