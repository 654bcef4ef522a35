/* AVX2+FMA matrix products with a register-blocked microkernel: up to 12
 * accumulators (6 rows x 16 columns, or 12 rows x 8 columns at a narrow
 * right edge), A broadcast, B loaded as vectors over columns.
 *
 * Every element of C is one chain of fused multiply-adds over k = 0..K-1 in
 * order, starting from its old value (accumulate) or zero. Blocking over K
 * only parks the chain in C between blocks, edge blocks run the same chain
 * with fewer rows or masked columns, so an element never depends on M, N or
 * its block. gemm_nt packs a block of B^T into a buffer and runs the same
 * microkernel. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include <immintrin.h>

#include "simd/avx2_util.h"
#include "simd/gemm.h"
#include "util.h"

#define MAX_ACC 12
#define KC      256 /* k-block: a 16-column panel of B is 16 KiB */

/* C[mr rows][nv vectors] (+)= sum over kc of a(i, k) * B[k][...], where
 * a(i, k) = A[i * sai + k * sak]. */
INLINE void gemm_block(const int mr, const int nv, const int masked, __m256i mask, int kc,
                       const float *A, long sai, long sak, const float *B, long ldb, float *C,
                       long ldc, int load_c) {
    __m256 acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] = load_c ? load_vec(C + i * ldc + 8 * v, masked && v == nv - 1, mask)
                                     : _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            b[v] = load_vec(B + k * ldb + 8 * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(A + i * sai + k * sak);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i * nv + v] = _mm256_fmadd_ps(a, b[v], acc[i * nv + v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            store_vec(C + i * ldc + 8 * v, acc[i * nv + v], masked && v == nv - 1, mask);
}

#define GM(MR, NV, MASKED)                                                                         \
    case MR: gemm_block(MR, NV, MASKED, mask, kc, A, sai, sak, B, ldb, C, ldc, load_c); break;

static void gemm_dispatch(int mr, int nv, int masked, __m256i mask, int kc, const float *A,
                          long sai, long sak, const float *B, long ldb, float *C, long ldc,
                          int load_c) {
    BLOCK_DISPATCH(mr, GM)
}

/* The rows of one panel of up to 16 columns over one k-block. */
static void panel_rows(int M, int nj, int kc, const float *A, long sai, long sak, const float *B,
                       long ldb, float *C, long ldc, int load_c) {
    const int nv = (nj + 7) / 8, masked = nj % 8 != 0;
    const __m256i mask = lane_mask(nj - 8 * (nv - 1));
    const int mr_max = MAX_ACC / nv;
    for (int i0 = 0; i0 < M; i0 += mr_max) {
        const int mr = M - i0 < mr_max ? M - i0 : mr_max;
        gemm_dispatch(mr, nv, masked, mask, kc, A + i0 * sai, sai, sak, B, ldb, C + i0 * ldc, ldc,
                      load_c);
    }
}

static void zero_rows(int M, int N, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(long)i * ldc + j] = 0.0f;
}

/* C (+)= op(A) B with op(A)(i, k) = A[i * sai + k * sak]. */
static void gemm_strided(int M, int N, int K, const float *A, long sai, long sak, const float *B,
                         int ldb, float *C, int ldc, int accumulate) {
    if (K == 0 && !accumulate) zero_rows(M, N, C, ldc);
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        for (int j0 = 0; j0 < N; j0 += 16) {
            const int nj = N - j0 < 16 ? N - j0 : 16;
            panel_rows(M, nj, kc, A + k0 * sak, sai, sak, B + (long)k0 * ldb + j0, ldb, C + j0, ldc,
                       accumulate || k0 > 0);
        }
    }
}

void gemm_nn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate) {
    gemm_strided(M, N, K, A, lda, 1, B, ldb, C, ldc, accumulate);
}

void gemm_tn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate) {
    gemm_strided(M, N, K, A, 1, lda, B, ldb, C, ldc, accumulate);
}

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

/* pack[k][jj] = B[jj][k] for jj < nj, k < kc; columns nj..15 are zero. */
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

void gemm_nt_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate) {
    float pack[KC * 16] __attribute__((aligned(32)));
    if (K == 0 && !accumulate) zero_rows(M, N, C, ldc);
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        for (int j0 = 0; j0 < N; j0 += 16) {
            const int nj = N - j0 < 16 ? N - j0 : 16;
            pack_bt(B + (long)j0 * ldb + k0, ldb, nj, kc, pack);
            panel_rows(M, nj, kc, A + k0, lda, 1, pack, 16, C + j0, ldc, accumulate || k0 > 0);
        }
    }
}

/* C[mr rows][nv vectors] = start + sum over the pieces of a_j(i, k) b_j[k][...],
 * start loaded from bias or C; relu on store (max with 0, which gives 0 for
 * NaN as the scalar select does). */
INLINE void pieces_block(const int mr, const int nv, const int masked, __m256i mask, int n,
                         const gemm_piece *pieces, long row0, long col0, long ldb,
                         const float *bias, float *C, long ldc, int relu) {
    __m256 acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] =
                load_vec(bias ? bias + 8 * v : C + i * ldc + 8 * v, masked && v == nv - 1, mask);
    for (int q = 0; q < n; q++) {
        const float *A = pieces[q].a + row0 * pieces[q].lda, *B = pieces[q].b + col0;
        const long lda = pieces[q].lda;
        for (int k = 0; k < pieces[q].k; k++) {
            __m256 b[2];
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                b[v] = load_vec(B + k * ldb + 8 * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
            for (int i = 0; i < mr; i++) {
                const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++)
                    acc[i * nv + v] = _mm256_fmadd_ps(a, b[v], acc[i * nv + v]);
            }
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            store_vec(C + i * ldc + 8 * v,
                      relu ? _mm256_max_ps(acc[i * nv + v], zero) : acc[i * nv + v],
                      masked && v == nv - 1, mask);
}

#define PB(MR, NV, MASKED)                                                                         \
    case MR:                                                                                       \
        pieces_block(MR, NV, MASKED, mask, n, pieces, row0, col0, ldb, bias, C, ldc, relu);        \
        break;

static void pieces_dispatch(int mr, int nv, int masked, __m256i mask, int n,
                            const gemm_piece *pieces, long row0, long col0, long ldb,
                            const float *bias, float *C, long ldc, int relu) {
    BLOCK_DISPATCH(mr, PB)
}

void gemm_nn_pieces_avx2(int M, int N, int n, const gemm_piece *pieces, int ldb, const float *bias,
                         float *C, int ldc, int relu) {
    for (int j0 = 0; j0 < N; j0 += 16) {
        const int nj = N - j0 < 16 ? N - j0 : 16;
        const int nv = (nj + 7) / 8, masked = nj % 8 != 0, mr_max = MAX_ACC / nv;
        const __m256i mask = lane_mask(nj - 8 * (nv - 1));
        for (int i0 = 0; i0 < M; i0 += mr_max) {
            const int mr = M - i0 < mr_max ? M - i0 : mr_max;
            pieces_dispatch(mr, nv, masked, mask, n, pieces, i0, j0, ldb, bias ? bias + j0 : NULL,
                            C + (long)i0 * ldc + j0, ldc, relu);
        }
    }
}

/* Twelve independent chains cover the FMA latency on both ports. */
double simd_peak_gflops_avx2(double seconds) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    long iters = 0;
    const double t0 = now_seconds();
    double t = t0;
    while (t - t0 < seconds) {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 12; i++)
                acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        iters += 4096;
        t = now_seconds();
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; i++)
        sum = _mm256_add_ps(sum, acc[i]);
    volatile float sink = _mm256_cvtss_f32(sum);
    (void)sink;
    return (double)iters * 12 * 16 / (t - t0) / 1e9;
}

#endif
