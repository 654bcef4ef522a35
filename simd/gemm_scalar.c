/* Scalar twins of the matrix products, the references: every element of C
 * starts from its old value (accumulate) or zero and adds a[k] * b[k] for
 * k = 0..K-1 in order, the sequence the portable kernels follow to the bit
 * and the AVX2 ones with each multiply-add fused. */
#include "simd/gemm.h"

#include "util.h"

static void start_rows(int M, int N, float *C, int ldc, int accumulate) {
    if (accumulate) return;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(long)i * ldc + j] = 0.0f;
}

// C (M, N) (+)= A (M, K) * B (K, N)
void gemm_nn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate) {
    start_rows(M, N, C, ldc, accumulate);
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        for (int k = 0; k < K; k++) {
            const float a = A[(long)i * lda + k];
            const float *b = B + (long)k * ldb;
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

// C (M, N) (+)= A^T * B, A is (K, M)
void gemm_tn_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate) {
    start_rows(M, N, C, ldc, accumulate);
    for (int k = 0; k < K; k++) {
        const float *b = B + (long)k * ldb;
        for (int i = 0; i < M; i++) {
            const float a = A[(long)k * lda + i];
            float *c = C + (long)i * ldc;
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

// C (M, N) (+)= A * B^T, B is (N, K)
void gemm_nt_scalar(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int accumulate) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float s = accumulate ? C[(long)i * ldc + j] : 0.0f;
            for (int k = 0; k < K; k++)
                s += A[(long)i * lda + k] * B[(long)j * ldb + k];
            C[(long)i * ldc + j] = s;
        }
    }
}

// C (M, N) = (bias or C) + sum over pieces of A_j (M, k_j) * B_j (k_j, N), then relu
void gemm_nn_pieces_scalar(int M, int N, int n, const gemm_piece *pieces, int ldb,
                           const float *bias, float *C, int ldc, int relu) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = bias ? bias[j] : C[(long)i * ldc + j];
            for (int q = 0; q < n; q++) {
                const gemm_piece *pc = &pieces[q];
                for (int k = 0; k < pc->k; k++)
                    s += pc->a[(long)i * pc->lda + k] * pc->b[(long)k * ldb + j];
            }
            C[(long)i * ldc + j] = relu && !(s > 0) ? 0.0f : s;
        }
}

/* Two flops per multiply-add over independent chains, so the loop measures
 * throughput rather than latency. */
double simd_peak_gflops_scalar(double seconds) {
    float acc[32];
    for (int i = 0; i < 32; i++)
        acc[i] = (float)i;
    const float a = 0.999999f, b = 1e-7f;
    long iters = 0;
    const double t0 = now_seconds();
    double t = t0;
    while (t - t0 < seconds) {
        for (int r = 0; r < 4096; r++)
            for (int i = 0; i < 32; i++)
                acc[i] = acc[i] * a + b;
        iters += 4096;
        t = now_seconds();
    }
    float sum = 0.0f;
    for (int i = 0; i < 32; i++)
        sum += acc[i];
    volatile float sink = sum;
    (void)sink;
    return (double)iters * 32 * 2 / (t - t0) / 1e9;
}
