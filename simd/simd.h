/* Run-time choice between the AVX2+FMA kernels and their portable twins.
 *
 * Every kernel family in simd/ has three entry points: NAME_scalar (plain C
 * that reads like the maths), NAME_avx2 (in a *_avx2.c file, the only files
 * compiled with -mavx2 -mfma) and NAME, which calls one of the two according
 * to simd_active(). */
#ifndef COLORIZE_SIMD_H
#define COLORIZE_SIMD_H

typedef enum { SIMD_SCALAR = 0, SIMD_AVX2 = 1 } simd_path;

/* The path in use: AVX2 when the CPU has AVX2 and FMA, unless the environment
 * sets COLORIZE_SIMD=scalar. Decided on the first call. */
simd_path simd_active(void);
/* Whether this CPU can run the AVX2 path at all. */
int simd_avx2_supported(void);
/* Forces a path (tests and benchmarks). Forcing AVX2 on a CPU without it is
 * ignored and the call returns -1. */
int simd_force(simd_path path);
const char *simd_path_name(simd_path path);

/* Treats subnormal floats as zero on this thread and every OpenMP thread
 * (x86 MXCSR flush-to-zero and denormals-are-zero). Training drives many
 * gradients towards zero, and arithmetic on subnormals is up to a hundred
 * times slower: without this, a network's epochs can slow down eightfold as
 * it trains. Same setting on every thread, so results stay reproducible. */
void simd_flush_subnormals(void);

#endif
