/* Small AVX2 helpers shared by the *_avx2.c kernels (and only by them: they
 * are compiled with -mavx2 -mfma), and at the end of the file, the names
 * simd/blocks.h lists for the kernels written once. */
#ifndef COLORIZE_SIMD_AVX2_UTIL_H
#define COLORIZE_SIMD_AVX2_UTIL_H

#include "simd/simd.h"
#if !SIMD_HAVE_AVX2
#error "simd/avx2_util.h is for the x86-64 AVX2 kernels only"
#endif

#include <immintrin.h>
#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))

/* All-ones in lanes [0, n), n in 1..8. */
static inline __m256i lane_mask(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

INLINE __m256 load_vec(const float *p, int masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

INLINE void store_vec(float *p, __m256 v, int masked, __m256i mask) {
    if (masked)
        _mm256_maskstore_ps(p, mask, v);
    else
        _mm256_storeu_ps(p, v);
}

/* The low byte of each of 8 int32 lanes, stored as 8 bytes (the k-means labels). */
INLINE void store_labels8(__m256i lab, uint8_t *out) {
    const __m256i low_bytes =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
                         0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i packed = _mm256_shuffle_epi8(lab, low_bytes);
    packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    _mm_storel_epi64((__m128i *)out, _mm256_castsi256_si128(packed));
}

/* acc (4 x uint64) += the 8 products w * d of uint32 lanes, each exact in 64 bits. */
INLINE __m256i add_products(__m256i acc, __m256i w, __m256i d) {
    acc = _mm256_add_epi64(acc, _mm256_mul_epu32(w, d));
    return _mm256_add_epi64(acc,
                            _mm256_mul_epu32(_mm256_srli_epi64(w, 32), _mm256_srli_epi64(d, 32)));
}

INLINE uint64_t sum4_u64(__m256i acc) {
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

/* ==== The kernels written once: the AVX2 build ====
 * What simd/blocks.h asks of a vector path, with eight-float ymm vectors; a
 * masked vector's lanes are those of a lane_mask. */

#define VEC_NAME(f) f##_avx2
#define VEC_LANES   8
typedef __m256 vecf;
typedef __m256i vec_mask;

INLINE vec_mask vec_mask_of(int n) {
    return lane_mask(n);
}

INLINE vecf vecf_load(const float *p, int masked, vec_mask m) {
    return load_vec(p, masked, m);
}

INLINE void vecf_store(float *p, vecf v, int masked, vec_mask m) {
    store_vec(p, v, masked, m);
}

INLINE vecf vecf_zero(void) {
    return _mm256_setzero_ps();
}

INLINE vecf vecf_broadcast(const float *p) {
    return _mm256_broadcast_ss(p);
}

/* acc + a * b rounded once (a fused multiply-add): these bits differ from
 * the scalar twins', by design. */
INLINE vecf vecf_muladd(vecf a, vecf b, vecf acc) {
    return _mm256_fmadd_ps(a, b, acc);
}

/* max(x, 0), which gives 0 for NaN and -0 as the scalar select does. */
INLINE vecf vecf_relu(vecf x) {
    return _mm256_max_ps(x, _mm256_setzero_ps());
}

/* Every block shape: nv of 1..2 vectors of eight columns (the 16 of a
 * panel), masked or not, of a height (var: pixels or rows) up to 12 / nv. */
/* clang-format off */
#define BLOCK_CASES_2(var, CASE, M)                                                                \
    switch (var) {                                                                                 \
        CASE(1, 2, M) CASE(2, 2, M) CASE(3, 2, M) CASE(4, 2, M) CASE(5, 2, M) CASE(6, 2, M)        \
    default: break;                                                                                \
    }
#define BLOCK_CASES_1(var, CASE, M)                                                                \
    switch (var) {                                                                                 \
        CASE(1, 1, M) CASE(2, 1, M) CASE(3, 1, M) CASE(4, 1, M) CASE(5, 1, M) CASE(6, 1, M)        \
        CASE(7, 1, M) CASE(8, 1, M) CASE(9, 1, M) CASE(10, 1, M) CASE(11, 1, M) CASE(12, 1, M)     \
    default: break;                                                                                \
    }
/* clang-format on */
#define VEC_BLOCK_SHAPES(var, CASE)                                                                \
    if (nv == 2 && !masked) {                                                                      \
        BLOCK_CASES_2(var, CASE, 0)                                                                \
    } else if (nv == 2) {                                                                          \
        BLOCK_CASES_2(var, CASE, 1)                                                                \
    } else if (!masked) {                                                                          \
        BLOCK_CASES_1(var, CASE, 0)                                                                \
    } else {                                                                                       \
        BLOCK_CASES_1(var, CASE, 1)                                                                \
    }

#endif
