/* Portable direct 5x5 convolution and its weight gradient, written once with
 * the vector extensions of simd/vec.h (SSE2 on x86-64, NEON on aarch64).
 *
 * The blocking is that of the AVX2 kernels with four-float vectors: a block
 * of output pixels (forward) or of (tap, input channel) rows (weight
 * gradient) times up to four vectors of output channels, at most 12
 * accumulators. Every output element is summed in the order of its scalar
 * twin (bias, then ky, kx, ci; or images, rows, columns) with a separate
 * multiply and add, so the results are the scalar twin's, bit for bit,
 * whatever the block, the tap range or the channel range. */
#include "simd/conv5x5.h"
#include "simd/vec.h"

#define MAX_ACC   12
#define L1_BUDGET 40000 /* bytes of a row group in the weight gradient */

/* npx output pixels, whose input windows start at in + pix[p] and outputs at
 * out + opix[p], times nv channel vectors from w/bias/out (already offset to
 * the first channel); when masked, one vector of `tail` channels. */
VEC_INLINE void forward_block(const int npx, const int nv, const int masked, int tail,
                              const float *in, const long *pix, long row, int cin, const float *w,
                              const float *bias, int cout, float *out, const long *opix) {
    const int lanes = masked ? tail : 4;
    vf4 acc[MAX_ACC];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        const vf4 b = bias ? vf4_load(bias + 4 * v, lanes) : vf4_splat(0.0f);
#pragma GCC unroll 12
        for (int p = 0; p < npx; p++)
            acc[p * nv + v] = b;
    }
    const int run = 5 * cin; /* (kx, ci) pairs of one kernel row, contiguous in in and w */
    for (int ky = 0; ky < 5; ky++) {
        const float *wk = w + (long)ky * run * cout;
        const float *ip[MAX_ACC];
#pragma GCC unroll 12
        for (int p = 0; p < npx; p++)
            ip[p] = in + pix[p] + ky * row;
        for (int j = 0; j < run; j++) {
            vf4 wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                wv[v] = vf4_load(wk + (long)j * cout + 4 * v, lanes);
#pragma GCC unroll 12
            for (int p = 0; p < npx; p++) {
                const vf4 a = vf4_splat(ip[p][j]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[p * nv + v] += a * wv[v];
            }
        }
    }
#pragma GCC unroll 12
    for (int p = 0; p < npx; p++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vf4_store(out + opix[p] + 4 * v, acc[p * nv + v], lanes);
}

#define FB(NPX, NV, MASKED)                                                                        \
    case NPX:                                                                                      \
        forward_block(NPX, NV, MASKED, tail, in, pix, row, cin, w, bias, cout, out, opix);         \
        break;

static void forward_dispatch(int npx, int nv, int masked, int tail, const float *in,
                             const long *pix, long row, int cin, const float *w, const float *bias,
                             int cout, float *out, const long *opix) {
    VEC_DISPATCH(npx, FB)
}

// in is (H+4, W+4, cin), w is (5, 5, cin, cout), out is (H, W, cout)
void conv5x5_forward_portable(const float *in, int H, int W, int cin, const float *w,
                              const float *bias, int cout, float *out) {
    const long row = (long)(W + 4) * cin;
    const int npix = H * W;
    for (int co = 0; co < cout;) {
        int nv, masked, tail;
        vec_block(cout - co, 4, &nv, &masked, &tail);
        const int block = MAX_ACC / nv;
        /* Output pixels are taken in raster order, blocks may span rows. */
        int y = 0, x = 0; /* of the next pixel */
        for (int p0 = 0; p0 < npix; p0 += block) {
            const int npx = npix - p0 < block ? npix - p0 : block;
            long pix[MAX_ACC], opix[MAX_ACC];
            for (int p = 0; p < npx; p++) {
                pix[p] = (long)y * row + (long)x * cin;
                opix[p] = (long)(p0 + p) * cout;
                if (++x == W) x = 0, y++;
            }
            forward_dispatch(npx, nv, masked, tail, in, pix, row, cin, w + co,
                             bias ? bias + co : NULL, cout, out + co, opix);
        }
        co += masked ? tail : 4 * nv;
    }
}

/* Adds, for rows r0..r1 of the flattened (image, y) order, the products of
 * nci input channels (at in + in_off + pixel * cin) and nv vectors of output
 * channels (at dout + co) into g[i * cout + 4 v], the tap's gradient. */
VEC_INLINE void grad_block(const int nci, const int nv, const int masked, int tail, const float *in,
                           long in_off, const float *dout, int co, int r0, int r1, int H, int W,
                           int cin, int cout, float *g) {
    const int lanes = masked ? tail : 4;
    vf4 acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < nci; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] = vf4_load(g + (long)i * cout + 4 * v, lanes);
    /* Rows of dout follow each other in memory; rows of in skip the 4
     * border rows between images. */
    const long in_row = (long)(W + 4) * cin, d_row = (long)W * cout;
    int y = r0 % H;
    const float *ip = in + ((long)(r0 / H) * (H + 4) + y) * in_row + in_off;
    const float *dp = dout + (long)r0 * d_row + co;
    for (int r = r0; r < r1; r++, dp += d_row) {
        const float *row_in = ip;
        ip += in_row;
        if (++y == H) y = 0, ip += 4 * in_row;
        for (int x = 0; x < W; x++) {
            vf4 dv[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                dv[v] = vf4_load(dp + (long)x * cout + 4 * v, lanes);
#pragma GCC unroll 12
            for (int i = 0; i < nci; i++) {
                const vf4 a = vf4_splat(row_in[(long)x * cin + i]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[i * nv + v] += a * dv[v];
            }
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < nci; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vf4_store(g + (long)i * cout + 4 * v, acc[i * nv + v], lanes);
}

#define GB(NCI, NV, MASKED)                                                                        \
    case NCI:                                                                                      \
        grad_block(NCI, NV, MASKED, tail, in, in_off, dout, co, r0, r1, H, W, cin, cout, g);       \
        break;

static void grad_dispatch(int nci, int nv, int masked, int tail, const float *in, long in_off,
                          const float *dout, int co, int r0, int r1, int H, int W, int cin,
                          int cout, float *g) {
    VEC_DISPATCH(nci, GB)
}

/* Within one kernel row ky, the (kx, ci) pairs of taps kx0..kx1-1 are one
 * contiguous run both in an input row and in dw, so a block of "input
 * channels" may span taps. Blocks of several taps read each output gradient
 * row once for all of them. */
// in is N x (H+4, W+4, cin), dout is N x (H, W, cout), dw is (25, cin, cout)
void conv5x5_weight_grad_taps_portable(const float *in, const float *dout, int N, int H, int W,
                                       int cin, int cout, int tap0, int tap1, int co0, int co1,
                                       float *dw) {
    for (int tap = tap0; tap < tap1; tap++)
        for (int ci = 0; ci < cin; ci++)
            for (int co = co0; co < co1; co++)
                dw[((long)tap * cin + ci) * cout + co] = 0.0f;
    /* Groups of rows small enough that their input and output gradient rows
     * stay in L1 while every block passes over them. */
    const long in_row = (long)(W + 4) * cin * (long)sizeof(float);
    const long d_row = (long)W * (co1 - co0) * (long)sizeof(float);
    const int ky_span = (tap1 - 1) / 5 - tap0 / 5; /* extra input rows the kernel rows need */
    int rows = (int)((L1_BUDGET - ky_span * in_row) / (in_row + d_row));
    if (rows < 1) rows = 1;
    const int nrows = N * H;
    for (int r0 = 0; r0 < nrows; r0 += rows) {
        const int r1 = nrows - r0 < rows ? nrows : r0 + rows;
        for (int ky = tap0 / 5; ky * 5 < tap1; ky++) {
            const int kx0 = tap0 > ky * 5 ? tap0 - ky * 5 : 0;
            const int kx1 = tap1 < ky * 5 + 5 ? tap1 - ky * 5 : 5;
            const int j1 = kx1 * cin; /* run of (kx, ci) pairs is [kx0 * cin, j1) */
            for (int co = co0; co < co1;) {
                int nv, masked, tail;
                vec_block(co1 - co, 4, &nv, &masked, &tail);
                const int nci_max = MAX_ACC / nv;
                for (int j = kx0 * cin; j < j1; j += nci_max) {
                    const int nci = j1 - j < nci_max ? j1 - j : nci_max;
                    const long in_off = (long)ky * (W + 4) * cin + j;
                    grad_dispatch(nci, nv, masked, tail, in, in_off, dout, co, r0, r1, H, W, cin,
                                  cout, dw + ((long)ky * 5 * cin + j) * cout + co);
                }
                co += masked ? tail : 4 * nv;
            }
        }
    }
}

void conv5x5_weight_grad_portable(const float *in, const float *dout, int N, int H, int W, int cin,
                                  int cout, int tap, int co0, int co1, float *dw) {
    conv5x5_weight_grad_taps_portable(in, dout, N, H, W, cin, cout, tap, tap + 1, co0, co1, dw);
}
