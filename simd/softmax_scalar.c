/* The softmax kernels of simd/softmax_impl.h for the scalar path, the
 * references (see simd/softmax.h). */
#define SOFTMAX_NAME(f) f##_scalar
#include "simd/softmax_impl.h"
