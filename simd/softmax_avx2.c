/* The softmax kernels built with -mavx2 -mfma: the same source and the same
 * bits as softmax_scalar.c (see simd/softmax.h), eight lanes at a time. */
#define SOFTMAX_NAME(f) f##_avx2
#include "simd/softmax_impl.h"
