/* The matrix products of simd/gemm_impl.h with AVX2 vectors: eight floats,
 * each multiply-add fused. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include <immintrin.h>

#include "simd/avx2_util.h"

/* dst[k][j] = src[j][k] for an 8 x 8 tile (src rows ld apart, dst rows 16 apart). */
static void transpose8x8(const float *src, long ld, float *dst) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + i * ld);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + i * 16, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * 16, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

/* pack[k][jj] = B[jj][k] for jj < nj, k < kc; columns nj..15 are zero.
 * B^T's packing is the one piece each path writes for itself: here 8 x 8
 * tiles turn in registers with shuffles that the portable vectors have no
 * words for (gemm_portable.c gathers four rows at a time instead). It only
 * moves floats, so it changes no result. */
static void pack_bt(const float *B, long ldb, int nj, int kc, float *pack) {
    int k = 0;
    if (nj == 16 || nj == 8) {
        for (; k + 8 <= kc; k += 8)
            for (int jj = 0; jj < nj; jj += 8)
                transpose8x8(B + jj * ldb + k, ldb, pack + k * 16 + jj);
    }
    for (; k < kc; k++)
        for (int jj = 0; jj < 16; jj++)
            pack[k * 16 + jj] = jj < nj ? B[jj * ldb + k] : 0.0f;
}

#include "simd/gemm_impl.h"
#endif
