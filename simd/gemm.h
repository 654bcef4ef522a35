/* Small single-threaded matrix products for the dense and per-pixel layers.
 * All matrices are row-major with a leading dimension (elements between rows).
 * If accumulate is 0, C is overwritten; otherwise the product is added to it.
 *
 * The value of each element of C depends only on its row of op(A), its column
 * of op(B), K and its old value: never on M, N or where it falls in a
 * register block. Callers may therefore split rows or columns across threads
 * and get bit-identical results. */
#ifndef COLORIZE_SIMD_GEMM_H
#define COLORIZE_SIMD_GEMM_H

/* C (M, N) (+)= A (M, K) * B (K, N) */
void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);
/* C (M, N) (+)= A^T * B, A stored as (K, M) */
void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);
/* C (M, N) (+)= A * B^T, B stored as (N, K) */
void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate);

void gemm_nn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_tn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_nt_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate);
void gemm_nn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);
void gemm_tn_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);
void gemm_nt_avx2(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                  int ldc, int accumulate);

/* Single-thread FMA throughput of this CPU in GFLOP/s (AVX2 if available,
 * else scalar), measured over about `seconds` of a dependency-free FMA loop. */
double simd_peak_gflops(double seconds);
double simd_peak_gflops_scalar(double seconds);
double simd_peak_gflops_avx2(double seconds);

#endif
