/* The softmax kernels for any x86-64 CPU (see simd/softmax.h). */
#define SOFTMAX_NAME(f) f##_scalar
#include "simd/softmax_impl.h"
