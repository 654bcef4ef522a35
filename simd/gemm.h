/* Small single-threaded matrix products for the dense and per-pixel layers.
 * All matrices are row-major with a leading dimension (elements between rows).
 * If accumulate is 0, C is overwritten; otherwise the product is added to it.
 *
 * The value of each element of C depends only on its row of op(A), its column
 * of op(B), K and its old value: never on M, N or where it falls in a
 * register block. Callers may therefore split rows or columns across threads
 * and get bit-identical results. The scalar and portable paths give the same
 * bits (separate multiply and add, the same order); the AVX2 path fuses each
 * multiply-add and differs from them by float rounding. */
#ifndef COLORIZE_SIMD_GEMM_H
#define COLORIZE_SIMD_GEMM_H

#include "simd/simd.h"

/* C (M, N) (+)= A (M, K) * B (K, N) */
void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);
/* C (M, N) (+)= A^T * B, A stored as (K, M) */
void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);
/* C (M, N) (+)= A * B^T, B stored as (N, K) */
void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);

/* One block of columns of A for gemm_nn_pieces: A_j (M, k), rows lda apart,
 * and the k rows of B it multiplies, b (k, N), rows ldb apart. */
typedef struct {
    const float *a, *b;
    int lda, k;
} gemm_piece;

/* C (M, N) = start + sum over pieces j in order of A_j B_j, then max(., 0)
 * when relu: start is bias (N) on every row, or C's old value when bias is
 * NULL. The product of a concatenation taken in one pass over C (the
 * per-pixel layers). Each element is one chain over the pieces in order, k
 * in order, whatever M, N or its block. */
void gemm_nn_pieces(int M, int N, int n, const gemm_piece *pieces, int ldb, const float *bias,
                    float *C, int ldc, int relu);
void gemm_nn_pieces_scalar(int M, int N, int n, const gemm_piece *pieces, int ldb,
                           const float *bias, float *C, int ldc, int relu);
void gemm_nn_pieces_portable(int M, int N, int n, const gemm_piece *pieces, int ldb,
                             const float *bias, float *C, int ldc, int relu);
#if SIMD_HAVE_AVX2
void gemm_nn_pieces_avx2(int M, int N, int n, const gemm_piece *pieces, int ldb, const float *bias,
                         float *C, int ldc, int relu);
#endif

void gemm_nn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_tn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_nt_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_nn_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate);
void gemm_tn_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate);
void gemm_nt_portable(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, int accumulate);
#if SIMD_HAVE_AVX2
void gemm_nn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);
void gemm_tn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);
void gemm_nt_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);
#endif

/* Single-thread multiply-add throughput of this CPU in GFLOP/s on the active
 * path (AVX2 fused multiply-adds, the portable path's vector multiplies and
 * adds, or scalar ones), measured over about `seconds` of a dependency-free
 * loop: the peak the benchmarks hold the kernels against. */
double simd_peak_gflops(double seconds);
double simd_peak_gflops_scalar(double seconds);
double simd_peak_gflops_portable(double seconds);
#if SIMD_HAVE_AVX2
double simd_peak_gflops_avx2(double seconds);
#endif

#endif
