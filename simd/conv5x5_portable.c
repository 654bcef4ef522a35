/* The convolution kernels of simd/conv5x5_impl.h with the portable vectors
 * (SSE2 on x86-64, NEON on aarch64): four floats, a separate multiply and
 * add, so the results are the scalar twin's bit for bit. */
#include "simd/vec.h"

#include "simd/conv5x5_impl.h"
