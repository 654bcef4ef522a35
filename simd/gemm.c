/* Dispatch between the AVX2 and scalar matrix products. */
#include "simd/gemm.h"

#include "simd/simd.h"

void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    if (simd_active() == SIMD_AVX2)
        gemm_nn_avx2(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else
        gemm_nn_scalar(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    if (simd_active() == SIMD_AVX2)
        gemm_tn_avx2(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else
        gemm_tn_scalar(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc, int accumulate) {
    if (simd_active() == SIMD_AVX2)
        gemm_nt_avx2(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else
        gemm_nt_scalar(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_nn_pieces(int M, int N, int n, const gemm_piece *pieces, int ldb, const float *bias,
                    float *C, int ldc, int relu) {
    if (simd_active() == SIMD_AVX2)
        gemm_nn_pieces_avx2(M, N, n, pieces, ldb, bias, C, ldc, relu);
    else
        gemm_nn_pieces_scalar(M, N, n, pieces, ldb, bias, C, ldc, relu);
}

double simd_peak_gflops(double seconds) {
    return simd_avx2_supported() ? simd_peak_gflops_avx2(seconds)
                                 : simd_peak_gflops_scalar(seconds);
}
