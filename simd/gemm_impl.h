/* The matrix products, written once for both vector paths (simd/blocks.h):
 * gemm_avx2.c builds them with AVX2 vectors, gemm_portable.c with the
 * portable ones. A register-blocked microkernel of up to 12 accumulators
 * over a panel of 16 columns (AVX2: 6 rows x 2 vectors, or 12 x 1 at a
 * narrow right edge; portable: 3 x 4, 4 x 3, 6 x 2 or 12 x 1), A broadcast,
 * B loaded as vectors over columns.
 *
 * Every element of C is one chain of multiply-adds over k = 0..K-1 in order,
 * starting from its old value (accumulate) or zero: the scalar twin's order.
 * Blocking over K only parks the chain in C between blocks, edge blocks run
 * the same chain with fewer rows or masked columns, so an element never
 * depends on M, N or its block. gemm_nt packs a block of B^T into a buffer
 * (pack_bt, which the including file defines) and runs the same microkernel. */
#include "simd/blocks.h"
#include "simd/gemm.h"
#include "util.h"

#define KC 256 /* k-block: a 16-column panel of B is 16 KiB */

/* C[mr rows][nv vectors] (+)= sum over kc of a(i, k) * B[k][...], where
 * a(i, k) = A[i * sai + k * sak]. */
static inline __attribute__((always_inline)) void
gemm_block(const int mr, const int nv, const int masked, vec_mask mask, int kc, const float *A,
           long sai, long sak, const float *B, long ldb, float *C, long ldc, int load_c) {
    vecf acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
        UNROLL_PANEL
    for (int v = 0; v < nv; v++)
        acc[i * nv + v] = load_c
                              ? vecf_load(C + i * ldc + VEC_LANES * v, masked && v == nv - 1, mask)
                              : vecf_zero();
    for (int k = 0; k < kc; k++) {
        vecf b[PANEL_VECS];
        UNROLL_PANEL
        for (int v = 0; v < nv; v++)
            b[v] = vecf_load(B + k * ldb + VEC_LANES * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const vecf a = vecf_broadcast(A + i * sai + k * sak);
            UNROLL_PANEL
            for (int v = 0; v < nv; v++)
                acc[i * nv + v] = vecf_muladd(a, b[v], acc[i * nv + v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
        UNROLL_PANEL
    for (int v = 0; v < nv; v++)
        vecf_store(C + i * ldc + VEC_LANES * v, acc[i * nv + v], masked && v == nv - 1, mask);
}

#define GM(MR, NV, MASKED)                                                                         \
    case MR: gemm_block(MR, NV, MASKED, mask, kc, A, sai, sak, B, ldb, C, ldc, load_c); break;

static void gemm_dispatch(int mr, int nv, int masked, vec_mask mask, int kc, const float *A,
                          long sai, long sak, const float *B, long ldb, float *C, long ldc,
                          int load_c) {
    VEC_BLOCK_SHAPES(mr, GM)
}

/* The rows of one panel of up to 16 columns over one k-block. */
static void panel_rows(int M, int nj, int kc, const float *A, long sai, long sak, const float *B,
                       long ldb, float *C, long ldc, int load_c) {
    int nv, masked;
    vec_mask mask;
    vec_columns(nj, PANEL, &nv, &masked, &mask);
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
        for (int j0 = 0; j0 < N; j0 += PANEL) {
            const int nj = N - j0 < PANEL ? N - j0 : PANEL;
            panel_rows(M, nj, kc, A + k0 * sak, sai, sak, B + (long)k0 * ldb + j0, ldb, C + j0, ldc,
                       accumulate || k0 > 0);
        }
    }
}

void VEC_NAME(gemm_nn)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate) {
    gemm_strided(M, N, K, A, lda, 1, B, ldb, C, ldc, accumulate);
}

void VEC_NAME(gemm_tn)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate) {
    gemm_strided(M, N, K, A, 1, lda, B, ldb, C, ldc, accumulate);
}

void VEC_NAME(gemm_nt)(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate) {
    float pack[KC * PANEL] __attribute__((aligned(32)));
    if (K == 0 && !accumulate) zero_rows(M, N, C, ldc);
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        for (int j0 = 0; j0 < N; j0 += PANEL) {
            const int nj = N - j0 < PANEL ? N - j0 : PANEL;
            pack_bt(B + (long)j0 * ldb + k0, ldb, nj, kc, pack);
            panel_rows(M, nj, kc, A + k0, lda, 1, pack, PANEL, C + j0, ldc, accumulate || k0 > 0);
        }
    }
}

/* C[mr rows][nv vectors] = start + sum over the pieces of a_j(i, k) b_j[k][...],
 * start loaded from bias or C; relu on store. */
static inline __attribute__((always_inline)) void
pieces_block(const int mr, const int nv, const int masked, vec_mask mask, int n,
             const gemm_piece *pieces, long row0, long col0, long ldb, const float *bias, float *C,
             long ldc, int relu) {
    vecf acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
        UNROLL_PANEL
    for (int v = 0; v < nv; v++)
        acc[i * nv + v] = vecf_load(bias ? bias + VEC_LANES * v : C + i * ldc + VEC_LANES * v,
                                    masked && v == nv - 1, mask);
    for (int q = 0; q < n; q++) {
        const float *A = pieces[q].a + row0 * pieces[q].lda, *B = pieces[q].b + col0;
        const long lda = pieces[q].lda;
        for (int k = 0; k < pieces[q].k; k++) {
            vecf b[PANEL_VECS];
            UNROLL_PANEL
            for (int v = 0; v < nv; v++)
                b[v] = vecf_load(B + k * ldb + VEC_LANES * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
            for (int i = 0; i < mr; i++) {
                const vecf a = vecf_broadcast(A + i * lda + k);
                UNROLL_PANEL
                for (int v = 0; v < nv; v++)
                    acc[i * nv + v] = vecf_muladd(a, b[v], acc[i * nv + v]);
            }
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
        UNROLL_PANEL
    for (int v = 0; v < nv; v++)
        vecf_store(C + i * ldc + VEC_LANES * v, relu ? vecf_relu(acc[i * nv + v]) : acc[i * nv + v],
                   masked && v == nv - 1, mask);
}

#define PB(MR, NV, MASKED)                                                                         \
    case MR:                                                                                       \
        pieces_block(MR, NV, MASKED, mask, n, pieces, row0, col0, ldb, bias, C, ldc, relu);        \
        break;

static void pieces_dispatch(int mr, int nv, int masked, vec_mask mask, int n,
                            const gemm_piece *pieces, long row0, long col0, long ldb,
                            const float *bias, float *C, long ldc, int relu) {
    VEC_BLOCK_SHAPES(mr, PB)
}

void VEC_NAME(gemm_nn_pieces)(int M, int N, int n, const gemm_piece *pieces, int ldb,
                              const float *bias, float *C, int ldc, int relu) {
    for (int j0 = 0; j0 < N; j0 += PANEL) {
        int nv, masked;
        vec_mask mask;
        vec_columns(N - j0, PANEL, &nv, &masked, &mask);
        const int mr_max = MAX_ACC / nv;
        for (int i0 = 0; i0 < M; i0 += mr_max) {
            const int mr = M - i0 < mr_max ? M - i0 : mr_max;
            pieces_dispatch(mr, nv, masked, mask, n, pieces, i0, j0, ldb, bias ? bias + j0 : NULL,
                            C + (long)i0 * ldc + j0, ldc, relu);
        }
    }
}

/* Twelve independent chains of multiply-adds, enough to cover their latency
 * on every port: the rate this path's kernels can reach. */
double VEC_NAME(simd_peak_gflops)(double seconds) {
    vecf acc[12];
    for (int i = 0; i < 12; i++) {
        const float x = (float)i;
        acc[i] = vecf_broadcast(&x);
    }
    const float a_val = 0.999999f, b_val = 1e-7f;
    const vecf a = vecf_broadcast(&a_val), b = vecf_broadcast(&b_val);
    long iters = 0;
    const double t0 = now_seconds();
    double t = t0;
    while (t - t0 < seconds) {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 12; i++)
                acc[i] = vecf_muladd(acc[i], a, b);
        iters += 4096;
        t = now_seconds();
    }
    float lanes[VEC_LANES], sum = 0.0f;
    for (int i = 0; i < 12; i++) {
        vecf_store(lanes, acc[i], 0, vec_mask_of(VEC_LANES));
        sum += lanes[0];
    }
    volatile float sink = sum;
    (void)sink;
    return (double)iters * 12 * 2 * VEC_LANES / (t - t0) / 1e9;
}
