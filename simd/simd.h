/* Run-time choice between the kernel paths.
 *
 * Every kernel family in simd/ has up to four entry points:
 *   NAME_scalar    plain C that reads like the maths: the reference the tests
 *                  hold every other path against;
 *   NAME_portable  GCC/Clang vector extensions (simd/vec.h): SSE2 on any
 *                  x86-64, NEON on aarch64;
 *   NAME_avx2      AVX2+FMA, which only an x86-64 build compiles (with
 *                  -mavx2 -mfma) and declares;
 *   NAME           the dispatch: the path simd_active() names.
 * and one layout of files:
 *   NAME.h         the API: layouts, FLOPs, which paths agree bit for bit;
 *   NAME.c         the dispatch, each entry point one SIMD_DISPATCH, and the
 *                  pieces that are the same on every path;
 *   NAME_scalar.c  the scalar reference;
 *   NAME_portable.c, NAME_avx2.c
 *                  the vector paths. Where they are the same lines over other
 *                  vectors they are one source, NAME_impl.h, that each of
 *                  them includes after its vectors (simd/blocks.h says what
 *                  those give); what stays two says why where it does.
 * No other file calls a NAME_PATH function but the tests and benchmarks. */
#ifndef COLORIZE_SIMD_H
#define COLORIZE_SIMD_H

/* Whether this build has the AVX2 kernels: x86-64 targets only, unless the
 * build says otherwise (the Makefile defines COLORIZE_NO_AVX2 when it does
 * not compile the *_avx2.c files). */
#if defined(__x86_64__) && !defined(COLORIZE_NO_AVX2)
#define SIMD_HAVE_AVX2 1
#else
#define SIMD_HAVE_AVX2 0
#endif

typedef enum { SIMD_SCALAR = 0, SIMD_AVX2 = 1, SIMD_PORTABLE = 2 } simd_path;
#define SIMD_N_PATHS 3

/* The path in use, decided on the first call: COLORIZE_SIMD=scalar or
 * =portable in the environment forces that path; otherwise (or for =avx2)
 * AVX2 when the build has it and the CPU has AVX2 and FMA, else portable. */
simd_path simd_active(void);
/* Whether this build and this CPU can run the path. */
int simd_supported(simd_path path);
/* Whether this CPU can run the AVX2 path and this build has it. */
int simd_avx2_supported(void);
/* The path COLORIZE_SIMD names ("scalar", "portable", "avx2"), or -1 when it
 * is unset or names none; the caller compares it with simd_active(). */
int simd_requested(void);
/* Forces a path (tests and benchmarks). Forcing one that the build or the
 * CPU lacks is ignored and the call returns -1. */
int simd_force(simd_path path);
const char *simd_path_name(simd_path path);

/* Calls NAME_avx2, NAME_portable or NAME_scalar with the parenthesised ARGS,
 * as simd_active() says: the body of every dispatching function. */
#if SIMD_HAVE_AVX2
#define SIMD_DISPATCH(name, args)                                                                  \
    (simd_active() == SIMD_AVX2       ? name##_avx2 args                                           \
     : simd_active() == SIMD_PORTABLE ? name##_portable args                                       \
                                      : name##_scalar args)
#else
#define SIMD_DISPATCH(name, args)                                                                  \
    (simd_active() == SIMD_PORTABLE ? name##_portable args : name##_scalar args)
#endif

/* Treats subnormal floats as zero on this thread and every OpenMP thread
 * (x86 MXCSR flush-to-zero and denormals-are-zero, the aarch64 FPCR's FZ).
 * Training drives many gradients towards zero, and arithmetic on subnormals
 * is up to a hundred times slower: without this, a network's epochs can slow
 * down eightfold as it trains. Same setting on every thread, so results stay
 * reproducible. */
void simd_flush_subnormals(void);

#endif
