/* Direct 5x5 convolution, stride 1, on channels-last tensors; no im2col.
 *
 * Layouts (one image):
 *   padded input  (H+4, W+4, cin): the image with a zero border of 2
 *   weights       (5, 5, cin, cout)
 *   output        (H, W, cout)
 * FLOPs: 2 * 25 * cin * cout per output pixel.
 *
 * Every path (simd/simd.h) sums each output element in the same order; the
 * scalar and portable kernels round each product and each sum, so they give
 * the same bits, while the AVX2 ones fuse each multiply-add and differ from
 * them by float rounding. */
#ifndef COLORIZE_SIMD_CONV5X5_H
#define COLORIZE_SIMD_CONV5X5_H

#include "simd/simd.h"

/* out = bias + sum over (ky, kx, ci) of in[y+ky][x+kx][ci] * w[ky][kx][ci][co].
 * bias may be NULL (zero). out is overwritten. */
void conv5x5_forward(const float *in, int H, int W, int cin, const float *w, const float *bias,
                     int cout, float *out);
void conv5x5_forward_scalar(const float *in, int H, int W, int cin, const float *w,
                            const float *bias, int cout, float *out);
void conv5x5_forward_portable(const float *in, int H, int W, int cin, const float *w,
                              const float *bias, int cout, float *out);
#if SIMD_HAVE_AVX2
void conv5x5_forward_avx2(const float *in, int H, int W, int cin, const float *w, const float *bias,
                          int cout, float *out);
#endif

/* The gradient to the input is a forward convolution of the zero-padded
 * output gradient with the kernel turned 180 degrees and transposed:
 * w_t[ky][kx][co][ci] = w[4-ky][4-kx][ci][co]. */
void conv5x5_flip_weights(const float *w, int cin, int cout, float *w_t);
/* din (H, W, cin) = full correlation of dout_padded (H+4, W+4, cout) with w_t; overwritten. */
void conv5x5_backward_input(const float *dout_padded, int H, int W, int cout, const float *w_t,
                            int cin, float *din);

/* Weight gradient for one tap (tap = ky * 5 + kx) and output channels [co0, co1):
 *   dw[tap][ci][co] = sum over images n = 0..N-1, then pixels y, x:
 *                     in_n[y + ky][x + kx][ci] * dout_n[y][x][co]
 * in is N images of (H+4, W+4, cin), padded; dout is N images of (H, W, cout);
 * dw is (25, cin, cout) and only dw[tap][*][co0..co1) is written (overwritten).
 * The value of every element depends only on its own inputs, never on co0,
 * co1 or the thread that computes it, so callers may split taps and channel
 * ranges across threads and get bit-identical results. */
void conv5x5_weight_grad(const float *in, const float *dout, int N, int H, int W, int cin, int cout,
                         int tap, int co0, int co1, float *dw);
void conv5x5_weight_grad_scalar(const float *in, const float *dout, int N, int H, int W, int cin,
                                int cout, int tap, int co0, int co1, float *dw);
void conv5x5_weight_grad_portable(const float *in, const float *dout, int N, int H, int W, int cin,
                                  int cout, int tap, int co0, int co1, float *dw);
#if SIMD_HAVE_AVX2
void conv5x5_weight_grad_avx2(const float *in, const float *dout, int N, int H, int W, int cin,
                              int cout, int tap, int co0, int co1, float *dw);
#endif

/* The same for taps [tap0, tap1) in one call, bit-identical to one call per
 * tap. The output gradient is read once for all of them instead of once per
 * tap, which is what bounds layers with few input channels (cin = 1: 0.5 flop
 * per byte read per tap). */
void conv5x5_weight_grad_taps(const float *in, const float *dout, int N, int H, int W, int cin,
                              int cout, int tap0, int tap1, int co0, int co1, float *dw);
void conv5x5_weight_grad_taps_scalar(const float *in, const float *dout, int N, int H, int W,
                                     int cin, int cout, int tap0, int tap1, int co0, int co1,
                                     float *dw);
void conv5x5_weight_grad_taps_portable(const float *in, const float *dout, int N, int H, int W,
                                       int cin, int cout, int tap0, int tap1, int co0, int co1,
                                       float *dw);
#if SIMD_HAVE_AVX2
void conv5x5_weight_grad_taps_avx2(const float *in, const float *dout, int N, int H, int W, int cin,
                                   int cout, int tap0, int tap1, int co0, int co1, float *dw);
#endif

#endif
