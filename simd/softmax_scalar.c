/* The softmax kernels for any CPU, the scalar and the portable path's (see
 * simd/softmax.h). */
#define SOFTMAX_NAME(f) f##_scalar
#include "simd/softmax_impl.h"
