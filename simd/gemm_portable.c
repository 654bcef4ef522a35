/* The matrix products of simd/gemm_impl.h with the portable vectors (SSE2
 * on x86-64, NEON on aarch64): four floats, a separate multiply and add, so
 * the results are the scalar twin's bit for bit. */
#include "simd/vec.h"

/* pack[k][jj] = B[jj][k] for jj < nj, k < kc: four rows of B at a time, so
 * that each pass reads four streams and writes whole vectors. B^T's packing
 * is the one piece each path writes for itself (see gemm_avx2.c); it only
 * moves floats, so it changes no result. */
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

#include "simd/gemm_impl.h"
