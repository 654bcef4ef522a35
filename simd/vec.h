/* The portable kernels' vectors (the *_portable.c files): GCC and Clang
 * vector extensions, which the compiler maps onto the target's own SIMD
 * registers: SSE2 on any x86-64, NEON on aarch64, plain registers elsewhere.
 * No intrinsics, so the same source builds for every target.
 *
 * A vector of four floats (16 bytes, the width both SSE and NEON have) is the
 * unit; the register-blocked kernels keep up to 12 of them as accumulators.
 * The end of this file gives them, under the names simd/blocks.h lists, to
 * the kernels written once for both vector paths.
 * +, -, * on vectors are IEEE operations lane by lane and the build never
 * fuses a * b + c (-ffp-contract=off), so a kernel that adds the same
 * products in the same order as its scalar twin gives the same bits, on
 * every machine. */
#ifndef COLORIZE_SIMD_VEC_H
#define COLORIZE_SIMD_VEC_H

#include <stdint.h>
#include <string.h>

#define VEC_INLINE static inline __attribute__((always_inline))

typedef float vf4 __attribute__((vector_size(16)));
typedef int32_t vi4 __attribute__((vector_size(16)));
typedef uint32_t vu4 __attribute__((vector_size(16)));
typedef uint64_t vu64x4 __attribute__((vector_size(32)));

VEC_INLINE vf4 vf4_splat(float x) {
    return (vf4){x, x, x, x};
}

VEC_INLINE vi4 vi4_splat(int32_t x) {
    return (vi4){x, x, x, x};
}

/* Lanes [0, n) from p, n in 1..4; the others are zero and p[n..3] is never
 * read (the last lanes of a row may be the last floats of an allocation). */
VEC_INLINE vf4 vf4_load(const float *p, int n) {
    vf4 v = {0.0f, 0.0f, 0.0f, 0.0f};
    if (n == 4)
        memcpy(&v, p, sizeof v);
    else
        for (int i = 0; i < n; i++)
            v[i] = p[i];
    return v;
}

/* Lanes [0, n) of v to p; p[n..3] is left alone. */
VEC_INLINE void vf4_store(float *p, vf4 v, int n) {
    if (n == 4)
        memcpy(p, &v, sizeof v);
    else
        for (int i = 0; i < n; i++)
            p[i] = v[i];
}

VEC_INLINE vu4 vu4_load(const uint32_t *p) {
    vu4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

VEC_INLINE void vu4_store(uint32_t *p, vu4 v) {
    memcpy(p, &v, sizeof v);
}

/* Lanes of a where mask is all ones, of b where it is zero (masks come from
 * vector compares). */
VEC_INLINE vf4 vf4_select(vi4 mask, vf4 a, vf4 b) {
    return (vf4)((mask & (vi4)a) | (~mask & (vi4)b));
}

VEC_INLINE vi4 vi4_select(vi4 mask, vi4 a, vi4 b) {
    return (mask & a) | (~mask & b);
}

/* max(x, 0) as the scalar code writes it, relu && !(s > 0) ? 0 : s: zero for
 * NaN and -0 as well. */
VEC_INLINE vf4 vf4_relu(vf4 x) {
    const vf4 zero = vf4_splat(0.0f);
    return vf4_select(x > zero, x, zero);
}

/* Unsigned minimum, lane by lane. */
VEC_INLINE vu4 vu4_min(vu4 a, vu4 b) {
    return (vu4)vi4_select((vi4)(a < b), (vi4)a, (vi4)b);
}

/* *acc += the four products w * d, each exact in 64 bits. (32-byte vectors
 * go by pointer: by value their ABI would depend on AVX.) */
VEC_INLINE void vu64_add_products(vu64x4 *acc, vu4 w, vu4 d) {
    *acc += __builtin_convertvector(w, vu64x4) * __builtin_convertvector(d, vu64x4);
}

VEC_INLINE uint64_t vu64_sum(const vu64x4 *acc) {
    return (*acc)[0] + (*acc)[1] + (*acc)[2] + (*acc)[3];
}

/* ==== The kernels written once: the portable build ====
 * What simd/blocks.h asks of a vector path, with four-float vectors; a
 * masked vector is its first `vec_mask` lanes. */

#define VEC_NAME(f) f##_portable
#define VEC_LANES   4
typedef vf4 vecf;
typedef int vec_mask;

VEC_INLINE vec_mask vec_mask_of(int n) {
    return n;
}

VEC_INLINE vecf vecf_load(const float *p, int masked, vec_mask m) {
    return vf4_load(p, masked ? m : 4);
}

VEC_INLINE void vecf_store(float *p, vecf v, int masked, vec_mask m) {
    vf4_store(p, v, masked ? m : 4);
}

VEC_INLINE vecf vecf_zero(void) {
    return vf4_splat(0.0f);
}

VEC_INLINE vecf vecf_broadcast(const float *p) {
    return vf4_splat(*p);
}

/* acc + a * b, the product rounded before the sum, as the scalar twins do. */
VEC_INLINE vecf vecf_muladd(vecf a, vecf b, vecf acc) {
    return acc + a * b;
}

VEC_INLINE vecf vecf_relu(vecf x) {
    return vf4_relu(x);
}

/* Every block shape: nv of 1..4 vectors of four columns (the 16 of a panel),
 * masked or not, of a height (var: pixels or rows) up to 12 / nv. */
/* clang-format off */
#define VEC_CASES_1(var, CASE, M)                                                                  \
    switch (var) {                                                                                 \
        CASE(1, 1, M) CASE(2, 1, M) CASE(3, 1, M) CASE(4, 1, M) CASE(5, 1, M) CASE(6, 1, M)        \
        CASE(7, 1, M) CASE(8, 1, M) CASE(9, 1, M) CASE(10, 1, M) CASE(11, 1, M) CASE(12, 1, M)     \
    default: break;                                                                                \
    }
#define VEC_CASES_2(var, CASE, M)                                                                  \
    switch (var) {                                                                                 \
        CASE(1, 2, M) CASE(2, 2, M) CASE(3, 2, M) CASE(4, 2, M) CASE(5, 2, M) CASE(6, 2, M)        \
    default: break;                                                                                \
    }
#define VEC_CASES_3(var, CASE, M)                                                                  \
    switch (var) { CASE(1, 3, M) CASE(2, 3, M) CASE(3, 3, M) CASE(4, 3, M) default: break; }
#define VEC_CASES_4(var, CASE, M)                                                                  \
    switch (var) { CASE(1, 4, M) CASE(2, 4, M) CASE(3, 4, M) default: break; }
#define VEC_CASES(var, CASE, M)                                                                    \
    if (nv == 4) {                                                                                 \
        VEC_CASES_4(var, CASE, M)                                                                  \
    } else if (nv == 3) {                                                                          \
        VEC_CASES_3(var, CASE, M)                                                                  \
    } else if (nv == 2) {                                                                          \
        VEC_CASES_2(var, CASE, M)                                                                  \
    } else {                                                                                       \
        VEC_CASES_1(var, CASE, M)                                                                  \
    }
/* clang-format on */
#define VEC_BLOCK_SHAPES(var, CASE)                                                                \
    if (masked) {                                                                                  \
        VEC_CASES(var, CASE, 1)                                                                    \
    } else {                                                                                       \
        VEC_CASES(var, CASE, 0)                                                                    \
    }

#endif
