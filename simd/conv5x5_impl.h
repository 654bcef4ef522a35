/* The direct 5x5 convolution and its weight gradient, written once for both
 * vector paths (simd/blocks.h): conv5x5_avx2.c builds it with AVX2 vectors,
 * conv5x5_portable.c with the portable ones.
 *
 * Forward: a block of up to 12 output pixels times one or more vectors of
 * output channels lives in accumulators; for each input value the weights
 * are loaded as vectors over cout and the input is broadcast. Every output
 * element is one chain of multiply-adds starting from its bias, over ky,
 * then (kx, ci): the order of its scalar twin, whatever block it falls in,
 * so edge blocks and masked channel tails give the same bits as full ones.
 *
 * Weight gradient: a block of up to 12 (tap, input channel) rows of dw times
 * vectors of output channels is accumulated over pixels in the order images,
 * rows, columns; the input value is broadcast, the output gradient loaded as
 * vectors. The accumulators go back to dw between groups of rows (so the data
 * of a group stays in L1); storing and reloading a float does not change it,
 * so the chain per element is the same as one long sum, whatever the blocks,
 * the tap range or the channel range of the call. */
#include "simd/blocks.h"
#include "simd/conv5x5.h"

#define L1_BUDGET 40000 /* bytes of a row group in the weight gradient */

/* npx output pixels, whose input windows start at in + pix[p] and outputs at
 * out + opix[p], times nv channel vectors from w/bias/out (already offset to
 * the first channel); the last vector is masked when `masked`. */
static inline __attribute__((always_inline)) void
forward_block(const int npx, const int nv, const int masked, vec_mask mask, const float *in,
              const long *pix, long row, int cin, const float *w, const float *bias, int cout,
              float *out, const long *opix) {
    vecf acc[MAX_ACC];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        const int mv = masked && v == nv - 1;
        const vecf b = bias ? vecf_load(bias + VEC_LANES * v, mv, mask) : vecf_zero();
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
            vecf wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                wv[v] = vecf_load(wk + (long)j * cout + VEC_LANES * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
            for (int p = 0; p < npx; p++) {
                const vecf a = vecf_broadcast(ip[p] + j);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[p * nv + v] = vecf_muladd(a, wv[v], acc[p * nv + v]);
            }
        }
    }
#pragma GCC unroll 12
    for (int p = 0; p < npx; p++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vecf_store(out + opix[p] + VEC_LANES * v, acc[p * nv + v], masked && v == nv - 1, mask);
}

#define FB(NPX, NV, MASKED)                                                                        \
    case NPX:                                                                                      \
        forward_block(NPX, NV, MASKED, mask, in, pix, row, cin, w, bias, cout, out, opix);         \
        break;

static void forward_dispatch(int npx, int nv, int masked, vec_mask mask, const float *in,
                             const long *pix, long row, int cin, const float *w, const float *bias,
                             int cout, float *out, const long *opix) {
    VEC_BLOCK_SHAPES(npx, FB)
}

// in is (H+4, W+4, cin), w is (5, 5, cin, cout), out is (H, W, cout)
void VEC_NAME(conv5x5_forward)(const float *in, int H, int W, int cin, const float *w,
                               const float *bias, int cout, float *out) {
    const long row = (long)(W + 4) * cin;
    const int npix = H * W;
    for (int co = 0; co < cout;) {
        int nv, masked;
        vec_mask mask;
        const int nco = vec_columns(cout - co, PANEL, &nv, &masked, &mask);
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
            forward_dispatch(npx, nv, masked, mask, in, pix, row, cin, w + co,
                             bias ? bias + co : NULL, cout, out + co, opix);
        }
        co += nco;
    }
}

/* Adds, for rows r0..r1 of the flattened (image, y) order, the products of
 * nci input channels (at in + in_off + pixel * cin) and nv vectors of output
 * channels (at dout + co) into g[i * cout + VEC_LANES v], the tap's gradient. */
static inline __attribute__((always_inline)) void
grad_block(const int nci, const int nv, const int masked, vec_mask mask, const float *in,
           long in_off, const float *dout, int co, int r0, int r1, int H, int W, int cin, int cout,
           float *g) {
    vecf acc[MAX_ACC];
#pragma GCC unroll 12
    for (int i = 0; i < nci; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i * nv + v] =
                vecf_load(g + (long)i * cout + VEC_LANES * v, masked && v == nv - 1, mask);
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
            vecf dv[8];
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                dv[v] = vecf_load(dp + (long)x * cout + VEC_LANES * v, masked && v == nv - 1, mask);
#pragma GCC unroll 12
            for (int i = 0; i < nci; i++) {
                const vecf a = vecf_broadcast(row_in + (long)x * cin + i);
#pragma GCC unroll 8
                for (int v = 0; v < nv; v++)
                    acc[i * nv + v] = vecf_muladd(a, dv[v], acc[i * nv + v]);
            }
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < nci; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            vecf_store(g + (long)i * cout + VEC_LANES * v, acc[i * nv + v], masked && v == nv - 1,
                       mask);
}

#define GB(NV, NCI, MASKED)                                                                        \
    case NV * 16 + NCI:                                                                            \
        grad_block(NCI, NV, MASKED, mask, in, in_off, dout, co, r0, r1, H, W, cin, cout, g);       \
        break;
/* Every (nv, nci) shape with nv * nci <= 12 and nci = 1 beyond nv = 4: the
 * shapes the weight gradient below can ask for. */
/* clang-format off */
#define GRAD_CASES(M)                                                                              \
    switch (nv * 16 + nci) {                                                                       \
        GB(1, 1, M) GB(1, 2, M) GB(1, 3, M) GB(1, 4, M) GB(1, 5, M) GB(1, 6, M) GB(1, 7, M)        \
        GB(1, 8, M) GB(1, 9, M) GB(1, 10, M) GB(1, 11, M) GB(1, 12, M)                             \
        GB(2, 1, M) GB(2, 2, M) GB(2, 3, M) GB(2, 4, M) GB(2, 5, M) GB(2, 6, M)                    \
        GB(3, 1, M) GB(3, 2, M) GB(3, 3, M) GB(3, 4, M)                                            \
        GB(4, 1, M) GB(4, 2, M) GB(4, 3, M)                                                        \
        GB(5, 1, M) GB(6, 1, M) GB(7, 1, M) GB(8, 1, M)                                            \
    default: break;                                                                                \
    }
/* clang-format on */

static void grad_dispatch(int nci, int nv, int masked, vec_mask mask, const float *in, long in_off,
                          const float *dout, int co, int r0, int r1, int H, int W, int cin,
                          int cout, float *g) {
    if (masked) {
        GRAD_CASES(1)
    } else {
        GRAD_CASES(0)
    }
}

/* Within one kernel row ky, the (kx, ci) pairs of taps kx0..kx1-1 are one
 * contiguous run both in an input row and in dw, so a block of "input
 * channels" may span taps. Blocks of several taps read each output gradient
 * row once for all of them. */
// in is N x (H+4, W+4, cin), dout is N x (H, W, cout), dw is (25, cin, cout)
void VEC_NAME(conv5x5_weight_grad_taps)(const float *in, const float *dout, int N, int H, int W,
                                        int cin, int cout, int tap0, int tap1, int co0, int co1,
                                        float *dw) {
    for (int tap = tap0; tap < tap1; tap++)
        for (int ci = 0; ci < cin; ci++)
            for (int co = co0; co < co1; co++)
                dw[((long)tap * cin + ci) * cout + co] = 0.0f;
    /* Few pairs per run give few accumulators per channel vector: widen the
     * block over output channels instead, up to 8 vectors. */
    const int run_max = (tap1 - tap0 < 5 ? tap1 - tap0 : 5) * cin;
    int nco_max = PANEL * (run_max >= 4 ? 1 : run_max >= 2 ? 2 : 4);
    if (nco_max > 8 * VEC_LANES) nco_max = 8 * VEC_LANES;
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
                int nv, masked;
                vec_mask mask;
                const int nco = vec_columns(co1 - co, nco_max, &nv, &masked, &mask);
                const int nci_max = nv > 4 ? 1 : MAX_ACC / nv;
                for (int j = kx0 * cin; j < j1; j += nci_max) {
                    const int nci = j1 - j < nci_max ? j1 - j : nci_max;
                    const long in_off = (long)ky * (W + 4) * cin + j;
                    grad_dispatch(nci, nv, masked, mask, in, in_off, dout, co, r0, r1, H, W, cin,
                                  cout, dw + ((long)ky * 5 * cin + j) * cout + co);
                }
                co += nco;
            }
        }
    }
}

void VEC_NAME(conv5x5_weight_grad)(const float *in, const float *dout, int N, int H, int W, int cin,
                                   int cout, int tap, int co0, int co1, float *dw) {
    VEC_NAME(conv5x5_weight_grad_taps)(in, dout, N, H, W, cin, cout, tap, tap + 1, co0, co1, dw);
}
