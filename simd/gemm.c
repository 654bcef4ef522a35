/* Dispatch between the matrix products of each path. */
#include "simd/gemm.h"

#include "simd/simd.h"

void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    SIMD_DISPATCH(gemm_nn, (M, N, K, A, lda, B, ldb, C, ldc, accumulate));
}

void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    SIMD_DISPATCH(gemm_tn, (M, N, K, A, lda, B, ldb, C, ldc, accumulate));
}

void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    SIMD_DISPATCH(gemm_nt, (M, N, K, A, lda, B, ldb, C, ldc, accumulate));
}

void gemm_nn_pieces(int M, int N, int n, const gemm_piece *pieces, int ldb, const float *bias,
                    float *C, int ldc, int relu) {
    SIMD_DISPATCH(gemm_nn_pieces, (M, N, n, pieces, ldb, bias, C, ldc, relu));
}

double simd_peak_gflops(double seconds) {
    return SIMD_DISPATCH(simd_peak_gflops, (seconds));
}
