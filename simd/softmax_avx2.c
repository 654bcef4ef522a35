/* The softmax kernels built with -mavx2 -mfma: the same source and the same
 * bits as softmax_scalar.c (see simd/softmax.h), eight lanes at a time. */
#include "simd/simd.h"

#if SIMD_HAVE_AVX2 /* the whole file: only x86-64 builds have these kernels */
#define SOFTMAX_NAME(f) f##_avx2
#include "simd/softmax_impl.h"

#endif
