/* Portable matrix products, written once with the vector extensions of
 * simd/vec.h (SSE2 on x86-64, NEON on aarch64): the register-blocked
 * microkernel of the AVX2 products with four-float vectors, up to 12
 * accumulators (3 rows x 16 columns, 6 x 8, 4 x 12 or 12 x 4; a right edge
 * of 1..3 columns as one masked vector), A broadcast, B loaded as vectors.
 *
 * Every element of C is one chain over k = 0..K-1 in order, starting from
 * its old value (accumulate) or zero, with a separate multiply and add: the
 * scalar twin's sequence, so the same bits. Blocking over K parks the chain
 * in C; gemm_nt packs a block of B^T and runs the same microkernel. */
#include "simd/gemm.h"
#include "simd/vec.h"
#include "util.h"

#define MAX_ACC 12
#define KC      256 /* k-block: a 16-column panel of B is 16 KiB */

/* C[mr rows][nv vectors] (+)= sum over kc of a(i, k) * B[k][...], where
 * a(i, k) = A[i * sai + k * sak]. */
VEC_INLINE void gemm_block(const int mr, const int nv, const int masked, int tail, int kc,
                           const float *A, long sai, long sak, const float *B, long ldb, float *C,
                           long ldc, int load_c) {
    const int lanes = masked ? tail : 4;
    vf4 acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] = load_c ? vf4_load(C + i * ldc + 4 * v, lanes) : vf4_splat(0.0f);
    for (int k = 0; k < kc; k++) {
        vf4 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            b[v] = vf4_load(B + k * ldb + 4 * v, lanes);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) {
            const vf4 a = vf4_splat(A[i * sai + k * sak]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[i * nv + v] += a * b[v];
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vf4_store(C + i * ldc + 4 * v, acc[i * nv + v], lanes);
}

#define GM(MR, NV, MASKED)                                                                         \
    case MR: gemm_block(MR, NV, MASKED, tail, kc, A, sai, sak, B, ldb, C, ldc, load_c); break;

static void gemm_dispatch(int mr, int nv, int masked, int tail, int kc, const float *A, long sai,
                          long sak, const float *B, long ldb, float *C, long ldc, int load_c) {
    VEC_DISPATCH(mr, GM)
}

/* Columns [0, nj) of a panel (nj <= 16), every row, over one k-block. */
static void panel_rows(int M, int nj, int kc, const float *A, long sai, long sak, const float *B,
                       long ldb, float *C, long ldc, int load_c) {
    for (int j = 0; j < nj;) {
        int nv, masked, tail;
        vec_block(nj - j, 4, &nv, &masked, &tail);
        const int mr_max = MAX_ACC / nv;
        for (int i0 = 0; i0 < M; i0 += mr_max) {
            const int mr = M - i0 < mr_max ? M - i0 : mr_max;
            gemm_dispatch(mr, nv, masked, tail, kc, A + i0 * sai, sai, sak, B + j, ldb,
                          C + i0 * ldc + j, ldc, load_c);
        }
        j += masked ? tail : 4 * nv;
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

void gemm_nn_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate) {
    gemm_strided(M, N, K, A, lda, 1, B, ldb, C, ldc, accumulate);
}

void gemm_tn_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate) {
    gemm_strided(M, N, K, A, 1, lda, B, ldb, C, ldc, accumulate);
}

/* pack[k][jj] = B[jj][k] for jj < nj, k < kc: four rows of B at a time, so
 * that each pass reads four streams and writes whole vectors. */
static void pack_bt(const float *B, long ldb, int nj, int kc, float *pack) {
    int jj = 0;
    for (; jj + 4 <= nj; jj += 4) {
        const float *b0 = B + jj * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        for (int k = 0; k < kc; k++)
            vf4_store(pack + k * 16 + jj, (vf4){b0[k], b1[k], b2[k], b3[k]}, 4);
    }
    for (; jj < nj; jj++)
        for (int k = 0; k < kc; k++)
            pack[k * 16 + jj] = B[jj * ldb + k];
}

void gemm_nt_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate) {
    float pack[KC * 16] __attribute__((aligned(16)));
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
 * start loaded from bias or C; relu on store. */
VEC_INLINE void pieces_block(const int mr, const int nv, const int masked, int tail, int n,
                             const gemm_piece *pieces, long row0, long col0, long ldb,
                             const float *bias, float *C, long ldc, int relu) {
    const int lanes = masked ? tail : 4;
    vf4 acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] = vf4_load(bias ? bias + 4 * v : C + i * ldc + 4 * v, lanes);
    for (int q = 0; q < n; q++) {
        const float *A = pieces[q].a + row0 * pieces[q].lda, *B = pieces[q].b + col0;
        const long lda = pieces[q].lda;
        for (int k = 0; k < pieces[q].k; k++) {
            vf4 b[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                b[v] = vf4_load(B + k * ldb + 4 * v, lanes);
#pragma GCC unroll 12
            for (int i = 0; i < mr; i++) {
                const vf4 a = vf4_splat(A[i * lda + k]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[i * nv + v] += a * b[v];
            }
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vf4_store(C + i * ldc + 4 * v, relu ? vf4_relu(acc[i * nv + v]) : acc[i * nv + v],
                      lanes);
}

#define PB(MR, NV, MASKED)                                                                         \
    case MR:                                                                                       \
        pieces_block(MR, NV, MASKED, tail, n, pieces, row0, col0, ldb, bias, C, ldc, relu);        \
        break;

static void pieces_dispatch(int mr, int nv, int masked, int tail, int n, const gemm_piece *pieces,
                            long row0, long col0, long ldb, const float *bias, float *C, long ldc,
                            int relu) {
    VEC_DISPATCH(mr, PB)
}

void gemm_nn_pieces_portable(int M, int N, int n, const gemm_piece *pieces, int ldb,
                             const float *bias, float *C, int ldc, int relu) {
    for (int j0 = 0; j0 < N;) {
        int nv, masked, tail;
        vec_block(N - j0, 4, &nv, &masked, &tail);
        const int mr_max = MAX_ACC / nv;
        for (int i0 = 0; i0 < M; i0 += mr_max) {
            const int mr = M - i0 < mr_max ? M - i0 : mr_max;
            pieces_dispatch(mr, nv, masked, tail, n, pieces, i0, j0, ldb, bias ? bias + j0 : NULL,
                            C + (long)i0 * ldc + j0, ldc, relu);
        }
        j0 += masked ? tail : 4 * nv;
    }
}

/* Twelve independent chains of a separate multiply and add, four lanes each:
 * the rate this path's kernels can reach. */
double simd_peak_gflops_portable(double seconds) {
    vf4 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = vf4_splat((float)i);
    const vf4 a = vf4_splat(0.999999f), b = vf4_splat(1e-7f);
    long iters = 0;
    const double t0 = now_seconds();
    double t = t0;
    while (t - t0 < seconds) {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 12; i++)
                acc[i] = acc[i] * a + b;
        iters += 4096;
        t = now_seconds();
    }
    vf4 sum = acc[0];
    for (int i = 1; i < 12; i++)
        sum += acc[i];
    volatile float sink = sum[0] + sum[1] + sum[2] + sum[3];
    (void)sink;
    return (double)iters * 12 * 8 / (t - t0) / 1e9;
}
