/* Dispatch between the convolution kernels of each path, and the pieces that
 * are the same on every path. */
#include "simd/conv5x5.h"

#include <stddef.h>

#include "simd/simd.h"

void conv5x5_forward(const float *in, int H, int W, int cin, const float *w, const float *bias,
                     int cout, float *out) {
    SIMD_DISPATCH(conv5x5_forward, (in, H, W, cin, w, bias, cout, out));
}

// w is (5, 5, cin, cout), w_t is (5, 5, cout, cin)
void conv5x5_flip_weights(const float *w, int cin, int cout, float *w_t) {
    for (int ky = 0; ky < 5; ky++)
        for (int kx = 0; kx < 5; kx++)
            for (int ci = 0; ci < cin; ci++)
                for (int co = 0; co < cout; co++)
                    w_t[(((long)ky * 5 + kx) * cout + co) * cin + ci] =
                        w[(((long)(4 - ky) * 5 + (4 - kx)) * cin + ci) * cout + co];
}

// dout_padded is (H+4, W+4, cout), w_t is (5, 5, cout, cin), din is (H, W, cin)
void conv5x5_backward_input(const float *dout_padded, int H, int W, int cout, const float *w_t,
                            int cin, float *din) {
    conv5x5_forward(dout_padded, H, W, cout, w_t, NULL, cin, din);
}

void conv5x5_weight_grad(const float *in, const float *dout, int N, int H, int W, int cin, int cout,
                         int tap, int co0, int co1, float *dw) {
    SIMD_DISPATCH(conv5x5_weight_grad, (in, dout, N, H, W, cin, cout, tap, co0, co1, dw));
}

void conv5x5_weight_grad_taps(const float *in, const float *dout, int N, int H, int W, int cin,
                              int cout, int tap0, int tap1, int co0, int co1, float *dw) {
    SIMD_DISPATCH(conv5x5_weight_grad_taps,
                  (in, dout, N, H, W, cin, cout, tap0, tap1, co0, co1, dw));
}
