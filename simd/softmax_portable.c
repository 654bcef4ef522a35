/* The softmax kernels of simd/softmax_impl.h for the portable path: the same
 * build as softmax_scalar.c (the target's baseline vectors, which the
 * compiler finds in this plain C on its own), under the portable names that
 * the dispatch calls, so that softmax keeps the convention of every kernel
 * family. Same source, same flags: the same bits as the scalar path. */
#define SOFTMAX_NAME(f) f##_portable
#include "simd/softmax_impl.h"
