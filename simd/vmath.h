/* exp and log of floats by range reduction and a short polynomial (the
 * Cephes expf and logf), in plain C without branches or calls so that loops
 * over arrays vectorise, where libm's expf and logf are one call per value.
 * They serve the softmax and the cross-entropy; tests/test_kernels.c holds
 * them against libm in double. Plain IEEE arithmetic in a fixed order
 * (the build sets -ffp-contract=off): the same bits on every machine. */
#ifndef COLORIZE_SIMD_VMATH_H
#define COLORIZE_SIMD_VMATH_H

#include <float.h>
#include <stdint.h>
#include <string.h>

/* A float's bits as an integer that orders as the floats do: negative
 * floats have their magnitude bits flipped. Its own inverse. Compares and
 * selects on these vectorise where float ones may not (GCC keeps a float
 * compare that may trap inside a branch). */
static inline int32_t vm_order_key(int32_t bits) {
    return bits ^ ((bits >> 31) & 0x7FFFFFFF);
}

/* x clamped to [lo, hi] (x not NaN), by integer compares. */
static inline float vm_clamp(float x, float lo, float hi) {
    int32_t k, klo, khi;
    memcpy(&k, &x, sizeof k);
    memcpy(&klo, &lo, sizeof klo);
    memcpy(&khi, &hi, sizeof khi);
    k = vm_order_key(k), klo = vm_order_key(klo), khi = vm_order_key(khi);
    k = k < klo ? klo : k;
    k = k > khi ? khi : k;
    k = vm_order_key(k);
    memcpy(&x, &k, sizeof x);
    return x;
}

/* result, or in itself when in is NaN: a NaN must reach the loss, where the
 * trainer looks for it. */
static inline float vm_keep_nan(float in, float result) {
    int32_t a, r;
    memcpy(&a, &in, sizeof a);
    memcpy(&r, &result, sizeof r);
    int32_t nan = -((a & 0x7FFFFFFF) > 0x7F800000); /* all ones for NaN */
    r = (a & nan) | (r & ~nan);                     /* a blend: a ?: here would become a branch */
    memcpy(&result, &r, sizeof result);
    return result;
}

/* e^x, x clamped to [-87, 88] so that the result is a normal float; NaN
 * stays NaN. */
static inline float vm_exp(float in) {
    float x = vm_clamp(in, -87.0f, 88.0f);
    /* n = round(x / ln 2): adding 1.5 * 2^23 leaves n in the low bits */
    const float shift = 12582912.0f;
    float t = x * 1.44269504088896341f + shift, n = t - shift;
    /* r = x - n ln 2 in two steps (Cody and Waite), |r| <= ln 2 / 2 */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* times 2^n, built from n's bits */
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    int32_t e = (bits - 0x4B400000 + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return vm_keep_nan(in, p * scale);
}

/* ln x, x clamped to [1e-30, FLT_MAX] (1e-30: a probability that has
 * underflowed); NaN stays NaN. Integer compares and selects only. */
static inline float vm_log(float in) {
    float x = vm_clamp(in, 1e-30f, FLT_MAX);
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)): a mantissa below that of
     * sqrt(1/2) takes exponent 0, else -1 */
    int32_t mant = bits & 0x007FFFFF, small = mant < 0x003504F3;
    float e = (float)((bits >> 23) - 126 - small);
    bits = mant | (0x3F000000 + small * 0x00800000);
    float m;
    memcpy(&m, &bits, sizeof m);
    float f = m - 1.0f, z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    return vm_keep_nan(in, f + y + e * 0.693359375f);
}

#endif
