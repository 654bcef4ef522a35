/* Which kernels run: the CPU's AVX2+FMA support, COLORIZE_SIMD, and the
 * flush-to-zero setting of every thread (simd.h). */
#include "simd/simd.h"

#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <stdlib.h>
#include <string.h>

static int chosen = -1;

int simd_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

simd_path simd_active(void) {
    if (chosen < 0) {
        const char *env = getenv("COLORIZE_SIMD");
        int want_scalar = env && strcmp(env, "scalar") == 0;
        chosen = (!want_scalar && simd_avx2_supported()) ? SIMD_AVX2 : SIMD_SCALAR;
    }
    return (simd_path)chosen;
}

int simd_force(simd_path path) {
    if (path == SIMD_AVX2 && !simd_avx2_supported()) return -1;
    chosen = (int)path;
    return 0;
}

const char *simd_path_name(simd_path path) {
    return path == SIMD_AVX2 ? "avx2+fma" : "scalar";
}

static void flush_this_thread(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
#endif
}

void simd_flush_subnormals(void) {
    flush_this_thread(); /* threads created later copy the creator's setting */
#pragma omp parallel
    flush_this_thread();
}
