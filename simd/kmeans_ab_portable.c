/* Portable chroma k-means kernels, written once with GCC/Clang vector
 * extensions (SSE2 on x86-64, NEON on aarch64): eight points at a time, the
 * same float operations in the same order as the scalar twins (mul and add
 * never fused), so every path gives the same labels; the potentials are
 * exact integers. */
#include "simd/kmeans_ab.h"

#include <string.h>

#include "simd/vec.h"

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef uint8_t vu8x8 __attribute__((vector_size(8)));

// 8 distances (a - c[0])^2 + (b - c[1])^2 (pointers: a 32-byte vector's ABI depends on AVX)
VEC_INLINE void distance8(const vf8 *a, const vf8 *b, const float *c, vf8 *d) {
    const vf8 da = *a - c[0], db = *b - c[1];
    *d = da * da + db * db;
}

// the labels of the 8 points (a[i], b[i])
static void nearest8(const float *pa, const float *pb, const float *centres, int k,
                     uint8_t *labels) {
    vf8 a, b;
    memcpy(&a, pa, sizeof a);
    memcpy(&b, pb, sizeof b);
    vf8 best_d, d;
    distance8(&a, &b, centres, &best_d);
    vi8 best = {0};
    for (int j = 1; j < k; j++) {
        distance8(&a, &b, centres + 2 * j, &d);
        const vi8 closer = d < best_d;
        best_d = (vf8)((closer & (vi8)d) | (~closer & (vi8)best_d));
        best = (closer & j) | (~closer & best);
    }
    const vu8x8 bytes = __builtin_convertvector(best, vu8x8);
    memcpy(labels, &bytes, sizeof bytes);
}

// a, b are (n), centres is (k,2), labels is (n)
void kmeans_nearest_ab_portable(const float *a, const float *b, size_t n, const float *centres,
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

// lab is (n,3), centres is (k,2), labels is (n)
void kmeans_nearest_lab_portable(const float *lab, size_t n, const float *centres, int k,
                                 uint8_t *labels) {
    for (size_t i = 0; i < n; i += 8) {
        const size_t m = n - i < 8 ? n - i : 8;
        float a[8] = {0}, b[8] = {0};
        uint8_t got[8];
        for (size_t j = 0; j < m; j++)
            a[j] = lab[3 * (i + j) + 1], b[j] = lab[3 * (i + j) + 2];
        nearest8(a, b, centres, k, got);
        memcpy(labels + i, got, m);
    }
}

// 4 potential squared distances (simd/kmeans_ab.h); a NaN distance counts as the cap
VEC_INLINE vu4 potential_d2_4(const float *a, const float *b, const float *c) {
    vf4 va, vb;
    memcpy(&va, a, sizeof va);
    memcpy(&vb, b, sizeof vb);
    const vf4 da = va - c[0], db = vb - c[1], cap = vf4_splat(131072.0f);
    const vf4 d = da * da + db * db;
    return (vu4) __builtin_convertvector(vf4_select(d < cap, d, cap) * 8192.0f, vi4);
}

uint64_t kmeans_ab_potential_portable(const float *a, const float *b, const uint32_t *weights,
                                      const uint32_t *d2, size_t n, const float *c) {
    vu64x4 acc = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const vu4 d = vu4_min(potential_d2_4(a + i, b + i, c), vu4_load(d2 + i));
        vu64_add_products(&acc, vu4_load(weights + i), d);
    }
    return vu64_sum(&acc) + kmeans_ab_potential_scalar(a + i, b + i, weights + i, d2 + i, n - i, c);
}

uint64_t kmeans_ab_update_d2_portable(const float *a, const float *b, const uint32_t *weights,
                                      uint32_t *d2, size_t n, const float *c, int first) {
    vu64x4 acc = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vu4 d = potential_d2_4(a + i, b + i, c);
        if (!first) d = vu4_min(d, vu4_load(d2 + i));
        vu4_store(d2 + i, d);
        vu64_add_products(&acc, vu4_load(weights + i), d);
    }
    return vu64_sum(&acc) +
           kmeans_ab_update_d2_scalar(a + i, b + i, weights + i, d2 + i, n - i, c, first);
}
