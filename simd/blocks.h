/* Register blocks for the kernels written once for both vector paths
 * (simd/conv5x5_impl.h, simd/gemm_impl.h), as simd/softmax_impl.h is for
 * softmax: the file of a path includes that path's vectors, then the
 * kernel's source, which this header opens.
 *
 * The vectors of a path, by the same names on each: simd/vec.h for the
 * portable path (four floats, a separate multiply and add: the scalar
 * twin's bits), simd/avx2_util.h for AVX2 (eight floats, fused):
 *   VEC_NAME(f)           f with the path's suffix (f_portable, f_avx2)
 *   VEC_LANES             floats in a vector
 *   vecf, vec_mask        a vector; which lanes a masked vector has
 *   vec_mask_of(n)        the first n lanes, n in 1..VEC_LANES
 *   vecf_load(p, masked, m), vecf_store(p, v, masked, m)
 *                         a whole vector, or when masked only m's lanes
 *                         (the others read as zero, left alone in memory)
 *   vecf_zero(), vecf_broadcast(p), vecf_relu(x)
 *   vecf_muladd(a, b, acc) acc + a * b: rounded twice on the portable path,
 *                         once on AVX2; the only difference in their bits
 *   VEC_BLOCK_SHAPES(var, CASE)
 *                         a switch over every block shape the path takes:
 *                         CASE(HEIGHT, NV, MASKED) for nv vectors of columns
 *                         (nv and masked in scope) and a height of var rows
 *                         up to MAX_ACC / nv, each shape compiled on its own so
 *                         that its accumulators stay in registers.
 * Every output element is one chain of vecf_muladd in the order of the
 * scalar twin, whatever block it falls in: the block shapes change the
 * speed, never the bits. */
#ifndef COLORIZE_SIMD_BLOCKS_H
#define COLORIZE_SIMD_BLOCKS_H

#ifndef VEC_LANES
#error "include simd/vec.h or simd/avx2_util.h (a path's vectors) before simd/blocks.h"
#endif

#define MAX_ACC    12 /* accumulators of a block: 16 registers less the operands */
#define PANEL      16 /* columns of a panel: two AVX2 vectors, four portable ones */
#define PANEL_VECS (PANEL / VEC_LANES)

/* Unrolls a loop over the vectors of a panel (GCC reads no macro in its
 * pragmas, hence one per width). */
#if VEC_LANES == 8
#define UNROLL_PANEL _Pragma("GCC unroll 2")
#else
#define UNROLL_PANEL _Pragma("GCC unroll 4")
#endif

/* The next columns of a panel, up to `most` of the `left` there are, as *nv
 * vectors, the last of them masked (*masked, *mask) when they do not fill
 * it. Returns how many columns that is. */
static inline int vec_columns(int left, int most, int *nv, int *masked, vec_mask *mask) {
    const int n = left < most ? left : most;
    *nv = (n + VEC_LANES - 1) / VEC_LANES;
    *masked = n % VEC_LANES != 0;
    *mask = vec_mask_of(n - VEC_LANES * (*nv - 1));
    return n;
}

#endif
