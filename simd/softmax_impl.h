/* The kernels of simd/softmax.h, compiled once per path: the file that
 * includes this defines SOFTMAX_NAME(f) to give the functions its suffix.
 * Each body is inlined twice, once with k = 4 a constant (the task's
 * palette), where the compiler vectorises the per-pixel loops too. */
#include "simd/softmax.h"
#include "simd/vmath.h"

#define SOFTMAX_BODY static inline __attribute__((always_inline))

// z and q are (pixels, k)
SOFTMAX_BODY void softmax_body(const float *restrict z, float *restrict q, size_t pixels, int k) {
    for (size_t p = 0; p < pixels; p++) {
        float max = z[p * k];
        for (int c = 1; c < k; c++)
            max = z[p * k + c] > max ? z[p * k + c] : max;
        for (int c = 0; c < k; c++)
            q[p * k + c] = z[p * k + c] - max;
    }
    for (size_t e = 0; e < pixels * k; e++)
        q[e] = vm_exp(q[e]); /* one vectorised pass */
    for (size_t p = 0; p < pixels; p++) {
        float sum = 0;
        for (int c = 0; c < k; c++)
            sum += q[p * k + c];
        for (int c = 0; c < k; c++)
            q[p * k + c] /= sum;
    }
}

void SOFTMAX_NAME(softmax_pixels)(const float *z, float *q, size_t pixels, int k) {
    if (k == 4)
        softmax_body(z, q, pixels, 4);
    else
        softmax_body(z, q, pixels, k);
}

/* The target's probabilities are gathered into runs, their logs taken in
 * one vectorised pass per run, and added in pixel order, each times its
 * class's weight when there are weights. The weighted loss is the chroma
 * mode's (many classes), so only the unweighted one gets the k = 4 copy. */
SOFTMAX_BODY double xent_body(const float *restrict prob, const uint8_t *restrict t, size_t pixels,
                              int k, const float *restrict weights) {
    enum { RUN = 256 };
    float lp[RUN];
    double loss = 0;
    for (size_t p0 = 0; p0 < pixels; p0 += RUN) {
        size_t len = pixels - p0 < RUN ? pixels - p0 : RUN;
        for (size_t p = 0; p < len; p++)
            lp[p] = prob[(p0 + p) * k + t[p0 + p]];
        for (size_t p = 0; p < len; p++)
            lp[p] = vm_log(lp[p]);
        if (weights)
            for (size_t p = 0; p < len; p++)
                loss -= (double)weights[t[p0 + p]] * lp[p];
        else
            for (size_t p = 0; p < len; p++)
                loss -= lp[p];
    }
    return loss;
}

double SOFTMAX_NAME(xent_pixels)(const float *prob, const uint8_t *t, size_t pixels, int k,
                                 const float *weights) {
    if (weights) return xent_body(prob, t, pixels, k, weights);
    return k == 4 ? xent_body(prob, t, pixels, 4, NULL) : xent_body(prob, t, pixels, k, NULL);
}

// prob and dz are (pixels, k), t is (pixels), weights (k) or NULL
SOFTMAX_BODY void xent_grad_body(const float *restrict prob, const uint8_t *restrict t,
                                 size_t pixels, int k, float scale, const float *restrict weights,
                                 float *restrict dz) {
    for (size_t p = 0; p < pixels; p++) {
        float s = weights ? weights[t[p]] * scale : scale;
        for (int c = 0; c < k; c++)
            dz[p * k + c] = (prob[p * k + c] - (float)(c == t[p])) * s;
    }
}

void SOFTMAX_NAME(xent_grad_pixels)(const float *prob, const uint8_t *t, size_t pixels, int k,
                                    float scale, const float *weights, float *dz) {
    if (weights)
        xent_grad_body(prob, t, pixels, k, scale, weights, dz);
    else if (k == 4)
        xent_grad_body(prob, t, pixels, 4, scale, NULL, dz);
    else
        xent_grad_body(prob, t, pixels, k, scale, NULL, dz);
}
