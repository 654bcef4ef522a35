/* Scalar twins of the 5x5 convolution kernels, the references: plain loops
 * that read like the maths. Each output element is summed in the same order
 * as the portable and AVX2 kernels (bias, then ky, kx, ci; or images, rows,
 * columns for the weight gradient); the portable ones give the same bits,
 * the AVX2 ones round a*b+c once where these never fuse it. */
#include "simd/conv5x5.h"

// in is (H+4, W+4, cin), w is (5, 5, cin, cout), out is (H, W, cout)
void conv5x5_forward_scalar(const float *in, int H, int W, int cin, const float *w,
                            const float *bias, int cout, float *out) {
    const int Wp = W + 4;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            float *o = out + ((long)y * W + x) * cout;
            for (int co = 0; co < cout; co++)
                o[co] = bias ? bias[co] : 0.0f;
            for (int ky = 0; ky < 5; ky++) {
                for (int kx = 0; kx < 5; kx++) {
                    const float *px = in + ((long)(y + ky) * Wp + x + kx) * cin;
                    const float *wk = w + (long)(ky * 5 + kx) * cin * cout;
                    for (int ci = 0; ci < cin; ci++) {
                        const float a = px[ci];
                        for (int co = 0; co < cout; co++)
                            o[co] += a * wk[(long)ci * cout + co];
                    }
                }
            }
        }
    }
}

// in is N x (H+4, W+4, cin), dout is N x (H, W, cout), dw is (25, cin, cout)
void conv5x5_weight_grad_scalar(const float *in, const float *dout, int N, int H, int W, int cin,
                                int cout, int tap, int co0, int co1, float *dw) {
    const int ky = tap / 5, kx = tap % 5, Wp = W + 4;
    float *g = dw + (long)tap * cin * cout;
    for (int ci = 0; ci < cin; ci++)
        for (int co = co0; co < co1; co++)
            g[(long)ci * cout + co] = 0.0f;
    for (int n = 0; n < N; n++) {
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                const float *px = in + (((long)n * (H + 4) + y + ky) * Wp + x + kx) * cin;
                const float *d = dout + (((long)n * H + y) * W + x) * cout;
                for (int ci = 0; ci < cin; ci++) {
                    const float a = px[ci];
                    for (int co = co0; co < co1; co++)
                        g[(long)ci * cout + co] += a * d[co];
                }
            }
        }
    }
}

void conv5x5_weight_grad_taps_scalar(const float *in, const float *dout, int N, int H, int W,
                                     int cin, int cout, int tap0, int tap1, int co0, int co1,
                                     float *dw) {
    for (int tap = tap0; tap < tap1; tap++)
        conv5x5_weight_grad_scalar(in, dout, N, H, W, cin, cout, tap, co0, co1, dw);
}
