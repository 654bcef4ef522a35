/* Which kernels run: what the build and the CPU have, COLORIZE_SIMD, and the
 * flush-to-zero setting of every thread (simd.h). */
#include "simd/simd.h"

#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int chosen = -1;

int simd_avx2_supported(void) {
#if SIMD_HAVE_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int simd_supported(simd_path path) {
    switch (path) {
    case SIMD_SCALAR:
    case SIMD_PORTABLE: return 1;
    case SIMD_AVX2: return simd_avx2_supported();
    }
    return 0;
}

int simd_requested(void) {
    const char *env = getenv("COLORIZE_SIMD");
    if (!env) return -1;
    if (strcmp(env, "scalar") == 0) return SIMD_SCALAR;
    if (strcmp(env, "portable") == 0) return SIMD_PORTABLE;
    if (strcmp(env, "avx2") == 0) return SIMD_AVX2;
    return -1;
}

simd_path simd_active(void) {
    if (chosen < 0) {
        const int want = simd_requested();
        if (want >= 0 && simd_supported((simd_path)want))
            chosen = want;
        else
            chosen = simd_avx2_supported() ? SIMD_AVX2 : SIMD_PORTABLE;
    }
    return (simd_path)chosen;
}

int simd_force(simd_path path) {
    if (!simd_supported(path)) return -1;
    chosen = (int)path;
    return 0;
}

const char *simd_path_name(simd_path path) {
    switch (path) {
    case SIMD_AVX2: return "avx2+fma";
    case SIMD_PORTABLE: return "portable";
    case SIMD_SCALAR: break;
    }
    return "scalar";
}

static void flush_this_thread(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (UINT64_C(1) << 24))); /* FZ */
#endif
}

void simd_flush_subnormals(void) {
    flush_this_thread(); /* threads created later copy the creator's setting */
#pragma omp parallel
    flush_this_thread();
}
