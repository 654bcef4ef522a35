/* The convolution kernels of simd/conv5x5_impl.h with AVX2 vectors: eight
 * floats, each multiply-add fused. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#include "simd/avx2_util.h"

#include "simd/conv5x5_impl.h"
#endif
