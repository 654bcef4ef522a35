/* The kinds of layer: each one's descriptor (nn_layer.h) beside its
 * forward/backward pair, and the list of them all, layer_types[].
 *
 * A layer sees only its layer_args: its inputs, its output, its parameters
 * and their gradients, and its working memory; never the network around it.
 * Backward functions overwrite or add to an input's gradient as its
 * layer_input says, and skip inputs whose gradient is NULL.
 *
 * Parallel work follows one rule so that training is bit-identical whatever
 * the number of threads: a loop is split either over images (each image's
 * outputs are computed by one thread) or over outputs whose every value is
 * summed in a fixed order by one thread (the simd/ kernels guarantee that a
 * value does not depend on how the outputs were split). */
#include "nn_layer.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "simd/conv5x5.h"
#include "simd/gemm.h"
#include "simd/softmax.h"
#include "util.h"

/* ==== Helpers shared by several kinds ==== */

/* c channels at each of `pixels` pixels, from rows src_stride floats apart
 * to rows dst_stride apart; written (overwrite) or added. A plain loop: the
 * rows are short (often 1 to 64 floats), where memcpy's call costs most. */
static void copy_pixels(float *restrict dst, size_t dst_stride, const float *restrict src,
                        size_t src_stride, int c, size_t pixels, int overwrite) {
    for (size_t p = 0; p < pixels; p++, dst += dst_stride, src += src_stride)
        if (overwrite)
            for (int q = 0; q < c; q++)
                dst[q] = src[q];
        else
            for (int q = 0; q < c; q++)
                dst[q] += src[q];
}

/* One image (h, w, c) into the interior of its padded copy (h+4, w+4, c),
 * whose zero border is never written. */
static void pad_image(const float *in, int h, int w, int c, float *pad) {
    for (int y = 0; y < h; y++)
        memcpy(pad + ((size_t)(y + 2) * (w + 4) + 2) * c, in + (size_t)y * w * c,
               (size_t)w * c * sizeof(float));
}

static size_t padded_size(nn_shape s, int c) {
    return (size_t)(s.h + 4) * (s.w + 4) * c;
}

/* The share [lo, hi) of n columns that thread t of nt computes, in whole
 * groups of 8 so that vector blocks are not cut; the simd/ kernels make the
 * values independent of the split. */
static void thread_share(int n, int t, int nt, int *lo, int *hi) {
    int groups = (n + 7) / 8;
    *lo = (int)((long)groups * t / nt) * 8;
    *hi = (int)((long)groups * (t + 1) / nt) * 8;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* sums[j] = sum of column j of the (rows, n) block d whose rows are ld
 * apart, in row order. */
static void column_sums_in_order(const float *restrict d, size_t rows, int n, size_t ld,
                                 float *restrict sums) {
    for (int j = 0; j < n; j++)
        sums[j] = 0.0f;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
            sums[j] += d[r * ld + j];
}

/* The same for a (rows, n) block with ld = n, one image's bias gradient.
 * When n divides 64 the block is summed as flat runs of 64 floats (lane
 * e % 64 holds column e % n), which vectorises, and the lanes of a column
 * are added last: a fixed order, but not row order. */
static void column_sums(const float *restrict d, size_t rows, int n, float *restrict sums) {
    if (64 % n != 0) {
        column_sums_in_order(d, rows, n, (size_t)n, sums);
        return;
    }
    float lane[64] = {0};
    size_t len = rows * n, e = 0;
    for (; e + 64 <= len; e += 64)
        for (int q = 0; q < 64; q++)
            lane[q] += d[e + q];
    for (int q = 0; e + q < len; q++)
        lane[q] += d[e + q];
    for (int j = 0; j < n; j++) {
        float sum = lane[j];
        for (int q = j + n; q < 64; q += n)
            sum += lane[q];
        sums[j] = sum;
    }
}

/* db (n) = column sums of dout (rows, n), in row order, the whole batch at
 * once. Each thread owns a range of columns and reads its part of every row
 * once, 256 columns at a time. */
static void bias_grad(const float *dout, size_t rows, int n, float *db) {
#pragma omp parallel
    {
        int lo, hi;
        thread_share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += 256)
            column_sums_in_order(dout + j0, rows, hi - j0 < 256 ? hi - j0 : 256, (size_t)n,
                                 db + j0);
    }
}

/* Weight and bias gradients summed image by image (grads_per_image): image
 * b's share is written, while its tensors are in cache, to its row of
 * grad_parts, (B, n_weights + n_bias) with the bias share after the
 * weights'; image_share gives that row, or NULL when the layer splits its
 * gradient by outputs instead. */
static float *image_share(const layer_args *a, int b) {
    const nn_layer *L = a->layer;
    return a->grad_parts ? a->grad_parts + (size_t)b * (L->n_weights + L->n_bias) : NULL;
}

/* dw and db (which follows dw) = the sum of the images' shares, in image
 * order; threads split the values. Returns 0, doing nothing, when the layer
 * has no shares. */
static int sum_image_shares(const layer_args *a) {
    if (!a->grad_parts) return 0;
    size_t n = a->layer->n_weights + a->layer->n_bias;
    const float *part = a->grad_parts;
#pragma omp parallel for schedule(static)
    for (size_t j0 = 0; j0 < n; j0 += 256) {
        size_t len = n - j0 < 256 ? n - j0 : 256;
        float sum[256];
        memcpy(sum, part + j0, len * sizeof(float));
        for (int b = 1; b < a->B; b++)
            for (size_t j = 0; j < len; j++)
                sum[j] += part[b * n + j0 + j];
        memcpy(a->dw + j0, sum, len * sizeof(float));
    }
    return 1;
}

/* out = max(in, 0); in place when out == in. */
static void relu_apply(const float *in, float *out, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++)
        out[j] = in[j] > 0 ? in[j] : 0.0f;
}

/* The ReLU's gradient from its output y: dx = dy where y > 0, else 0
 * (overwrite), or dx += that; in place when dx == dy. Both values are loaded
 * unconditionally so that the select vectorises. */
static void relu_mask(const float *y, const float *dy, float *dx, size_t n, int overwrite) {
    if (overwrite) {
#pragma omp simd
        for (size_t j = 0; j < n; j++) {
            float g = dy[j];
            dx[j] = y[j] > 0 ? g : 0.0f;
        }
        return;
    }
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        float g = dy[j], d = dx[j];
        dx[j] = y[j] > 0 ? d + g : d;
    }
}

/* One image: each pixel of the small (h, w, c) tensor written to (overwrite)
 * or added to the 2x2 block of the big (2h, 2w, c) one that it covers. */
static void spread_2x2(const float *small, nn_shape s, float *big, int overwrite) {
    size_t c = (size_t)s.c, row = 2 * (size_t)s.w * c;
    for (int y = 0; y < 2 * s.h; y++) {
        float *dst = big + (size_t)y * row;
        const float *src = small + (size_t)(y / 2) * s.w * c;
        /* even columns, then odd ones, both from column x / 2 */
        copy_pixels(dst, 2 * c, src, c, s.c, (size_t)s.w, overwrite);
        copy_pixels(dst + c, 2 * c, src, c, s.c, (size_t)s.w, overwrite);
    }
}

/* One image: small (h, w, c) gets (overwrite) or adds the sum of each 2x2
 * block of the big (2h, 2w, c) one, in a fixed order. */
static void sum_2x2(const float *big, nn_shape s, float *small, int overwrite) {
    size_t c = (size_t)s.c, row = 2 * (size_t)s.w * c;
    for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++) {
            const float *d = big + 2 * (size_t)y * row + 2 * (size_t)x * c;
            float *g = small + ((size_t)y * s.w + x) * c;
            for (size_t q = 0; q < c; q++)
                g[q] = (overwrite ? 0 : g[q]) + ((d[q] + d[c + q]) + (d[row + q] + d[row + c + q]));
        }
}

size_t layer_no_fan_in(const nn_layer *L, const nn_shape *in) {
    (void)L, (void)in;
    return 0;
}

double layer_no_flops(const nn_layer *L, const nn_shape *shapes) {
    (void)L, (void)shapes;
    return 0;
}

size_t layer_no_work(const nn_layer *L, const nn_shape *shapes, int B) {
    (void)L, (void)shapes, (void)B;
    return 0;
}

void layer_pointwise_reach(const nn_layer *L, layer_reach *r) {
    (void)L;
    *r = (layer_reach){.halo = 0, .shrink = 1, .grow = 1};
}

/* (h, w, units) for (h, w, c) in: conv5 and pixel. */
static int units_at_each_pixel(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                               nn_shape *out, char *err, size_t errlen) {
    (void)ctx, (void)err, (void)errlen;
    *out = (nn_shape){in[0].h, in[0].w, L->units};
    return 0;
}

void describe_title(const nn_layer *L, const nn_shape *shapes, int k, char *name, size_t len) {
    (void)shapes, (void)k;
    snprintf(name, len, "%s", L->type->title);
}

void describe_units(const nn_layer *L, const nn_shape *shapes, int k, char *name, size_t len) {
    (void)shapes, (void)k;
    snprintf(name, len, "%s %d", L->type->title, L->units);
}

static int same_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                      nn_shape *out, char *err, size_t errlen) {
    (void)L, (void)ctx, (void)err, (void)errlen;
    *out = in[0];
    return 0;
}

/* ==== conv5: 5x5 convolution, stride 1, zero "same" padding, bias ==== */

/* Its working memory, for batch_cap images of (h, w, cin) in and cout out
 * (laid out for the largest batch whatever the call's, so that the zero
 * borders of the padded copies stay where they were): the
 * padded input (kept from forward for the weight gradient), the padded
 * output gradient, the input gradient when it must be added rather than
 * written, and the turned weights. */
typedef struct {
    float *pad_in, *pad_grad, *din, *flipped;
} conv5_work;

static conv5_work conv5_carve(float *work, nn_shape in, int cout, int batch_cap) {
    int B = batch_cap;
    conv5_work cw;
    cw.pad_in = work, work += (size_t)B * padded_size(in, in.c);
    cw.pad_grad = work, work += (size_t)B * padded_size(in, cout);
    cw.din = work, work += (size_t)B * nn_shape_size(in);
    cw.flipped = work;
    return cw;
}

static size_t conv5_fan_in(const nn_layer *L, const nn_shape *in) {
    (void)L;
    return 25 * (size_t)in->c;
}

static double conv5_flops(const nn_layer *L, const nn_shape *shapes) {
    nn_shape o = shapes[L->output];
    return 2.0 * (double)L->n_weights * ((double)o.h * o.w);
}

static size_t conv5_work_floats(const nn_layer *L, const nn_shape *shapes, int B) {
    nn_shape in = shapes[L->inputs[0]];
    return (size_t)B * (padded_size(in, in.c) + padded_size(in, L->units) + nn_shape_size(in)) +
           L->n_weights;
}

/* Forward needs the padded input only, the first part of conv5_carve's. */
static size_t conv5_forward_work_floats(const nn_layer *L, const nn_shape *shapes, int B) {
    nn_shape in = shapes[L->inputs[0]];
    return (size_t)B * padded_size(in, in.c);
}

/* Each output reads the 5x5 around it. */
static void conv5_reach(const nn_layer *L, layer_reach *r) {
    (void)L;
    *r = (layer_reach){.halo = 2, .shrink = 1, .grow = 1};
}

// x is (B,h,w,cin), w is (5,5,cin,cout), y is (B,h,w,cout)
static void conv5_forward(const layer_args *a) {
    nn_shape s = a->in[0].shape;
    int cout = a->layer->units;
    float *pad_in = a->work; /* conv5_carve's first part: a forward-only network has no more */
    size_t in_sz = nn_shape_size(s), pad_sz = padded_size(s, s.c),
           out_sz = (size_t)s.h * s.w * cout;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        float *pad = pad_in + b * pad_sz, *y = a->y + b * out_sz;
        pad_image(a->in[0].x + b * in_sz, s.h, s.w, s.c, pad);
        conv5x5_forward(pad, s.h, s.w, s.c, a->w, a->bias, cout, y);
        if (a->layer->relu_on_write) relu_apply(y, y, out_sz);
    }
}

// dy is (B,h,w,cout); dw (5,5,cin,cout) and db (cout) overwritten; dx (B,h,w,cin)
static void conv5_backward(const layer_args *a) {
    const nn_layer *L = a->layer;
    nn_shape s = a->in[0].shape;
    int cin = s.c, cout = L->units;
    conv5_work cw = conv5_carve(a->work, s, cout, a->batch_cap);
    float *dx = a->in[0].dx;
    size_t pixels = (size_t)s.h * s.w, in_sz = nn_shape_size(s), out_sz = pixels * cout;
    size_t pad_in_sz = padded_size(s, cin), pad_sz = padded_size(s, cout);
    int overwrite = a->in[0].overwrite;
    if (dx) conv5x5_flip_weights(a->w, cin, cout, cw.flipped);
        /* Image by image, while its output gradient is in cache: the in-place
         * ReLU's mask on it, its share of dw and db (grads_per_image), then its
         * input gradient. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        float *dy = a->dy + b * out_sz, *part = image_share(a, b);
        if (L->relu_on_write) relu_mask(a->y + b * out_sz, dy, dy, out_sz, 1);
        if (part) {
            conv5x5_weight_grad_taps(cw.pad_in + b * pad_in_sz, dy, 1, s.h, s.w, cin, cout, 0, 25,
                                     0, cout, part);
            column_sums(dy, pixels, cout, part + L->n_weights);
        }
        if (!dx) continue;
        float *pad = cw.pad_grad + b * pad_sz, *din = dx + b * in_sz;
        float *dst = overwrite ? din : cw.din + b * in_sz;
        pad_image(dy, s.h, s.w, cout, pad);
        conv5x5_backward_input(pad, s.h, s.w, cout, cw.flipped, cin, dst);
        if (!overwrite)
            for (size_t j = 0; j < in_sz; j++)
                din[j] += dst[j];
    }
    if (sum_image_shares(a)) return;
    /* Work items: (range of taps, block of output channels), each summed over
     * the whole batch; the kernel reads the output gradient once for all the
     * taps of an item. About two items per thread; the split does not change
     * the values. */
    int threads = omp_get_max_threads();
    int groups = 2 * threads < 25 ? 2 * threads : 25, co_block = 64;
    while (groups * ((cout + co_block - 1) / co_block) < 2 * threads && co_block > 8)
        co_block /= 2;
    int blocks = (cout + co_block - 1) / co_block;
#pragma omp parallel for schedule(dynamic)
    for (int item = 0; item < groups * blocks; item++) {
        int g = item / blocks, co0 = (item % blocks) * co_block;
        int co1 = co0 + co_block < cout ? co0 + co_block : cout;
        conv5x5_weight_grad_taps(cw.pad_in, a->dy, a->B, s.h, s.w, cin, cout, 25 * g / groups,
                                 25 * (g + 1) / groups, co0, co1, a->dw);
    }
    bias_grad(a->dy, (size_t)a->B * pixels, cout, a->dbias);
}

static const layer_type conv5_layer = {
    .name = "conv5",
    .title = "conv5x5",
    .arg = ARG_UNITS,
    .out_shape = units_at_each_pixel,
    .fan_in = conv5_fan_in,
    .flops = conv5_flops,
    .work_floats = conv5_work_floats,
    .forward_work_floats = conv5_forward_work_floats,
    .reach = conv5_reach,
    .describe = describe_units,
    .forward = conv5_forward,
    .backward = conv5_backward,
    .applies_relu = 1,
    .grads_per_image_ok = 1,
};

/* ==== relu: max(x, 0), elementwise ==== */

/* ReLU works on chunks of a tensor, so that threads split it evenly. */
enum { CHUNK = 1 << 14 };

// y = max(x, 0), elementwise over (B,h,w,c)
static void relu_forward(const layer_args *a) {
    size_t n = (size_t)a->B * nn_shape_size(a->out_shape);
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j += CHUNK)
        relu_apply(a->in[0].x + j, a->y + j, n - j < CHUNK ? n - j : CHUNK);
}

// dy is (B,h,w,c): dx = dy where y > 0
static void relu_backward(const layer_args *a) {
    size_t n = (size_t)a->B * nn_shape_size(a->out_shape);
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j += CHUNK)
        relu_mask(a->y + j, a->dy + j, a->in[0].dx + j, n - j < CHUNK ? n - j : CHUNK,
                  a->in[0].overwrite);
}

static const layer_type relu_layer = {
    .name = "relu",
    .title = "relu",
    .arg = ARG_NONE,
    .out_shape = same_shape,
    .fan_in = layer_no_fan_in,
    .flops = layer_no_flops,
    .reach = layer_pointwise_reach,
    .work_floats = layer_no_work,
    .describe = describe_title,
    .forward = relu_forward,
    .backward = relu_backward,
    .fusion = FUSE_RELU,
};

/* ==== maxpool: 2x2 max, stride 2, or stride 1 "same" ==== */

/* The four input pixels of the window of output (y, x): rows and columns
 * start at stride*y, stride*x; at the right and bottom edges of a stride-1
 * ("same") pool the window is clamped, which repeats a pixel. */
static void pool_window(const float *base, nn_shape s, int stride, int y, int x,
                        const float *win[4]) {
    int y0 = stride * y, x0 = stride * x;
    int y1 = y0 + 1 < s.h ? y0 + 1 : y0, x1 = x0 + 1 < s.w ? x0 + 1 : x0;
    win[0] = base + ((size_t)y0 * s.w + x0) * s.c;
    win[1] = base + ((size_t)y0 * s.w + x1) * s.c;
    win[2] = base + ((size_t)y1 * s.w + x0) * s.c;
    win[3] = base + ((size_t)y1 * s.w + x1) * s.c;
}

static int maxpool_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                         nn_shape *out, char *err, size_t errlen) {
    (void)ctx;
    *out = in[0];
    if (L->stride == 2) out->h /= 2, out->w /= 2;
    if (out->h == 0 || out->w == 0)
        return set_error(err, errlen, "maxpool:2 on a %dx%d tensor", in[0].h, in[0].w);
    return 0;
}

/* A stride-2 pool halves the size, its windows at even pixels; a stride-1
 * one reads the pixel to the right and the one below (its reach to the left
 * and above is 0: taking 1 there too costs a pixel of margin and keeps the
 * rule symmetric). */
static void maxpool_reach(const nn_layer *L, layer_reach *r) {
    *r = L->stride == 2 ? (layer_reach){.halo = 0, .shrink = 2, .grow = 1}
                        : (layer_reach){.halo = 1, .shrink = 1, .grow = 1};
}

static void maxpool_describe(const nn_layer *L, const nn_shape *shapes, int k, char *name,
                             size_t len) {
    (void)shapes, (void)k;
    snprintf(name, len, "%s %s", L->type->title, L->stride == 2 ? "2/2" : "2/1 same");
}

// x is (B,h,w,c), y is (B,h/2,w/2,c) for stride 2 or (B,h,w,c) for stride 1
static void maxpool_forward(const layer_args *a) {
    nn_shape s = a->in[0].shape, o = a->out_shape;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        const float *in = a->in[0].x + b * nn_shape_size(s), *w[4];
        for (int y = 0; y < o.h; y++)
            for (int x = 0; x < o.w; x++) {
                float *out = a->y + b * nn_shape_size(o) + ((size_t)y * o.w + x) * o.c;
                pool_window(in, s, a->layer->stride, y, x, w);
                for (int c = 0; c < o.c; c++) {
                    float m01 = w[0][c] >= w[1][c] ? w[0][c] : w[1][c];
                    float m23 = w[2][c] >= w[3][c] ? w[2][c] : w[3][c];
                    out[c] = m01 >= m23 ? m01 : m23;
                }
            }
    }
}

/* The gradient of one pooling window over c channels, its four pixels
 * distinct (restrict lets the loop vectorise): to the first pixel holding
 * the maximum m, else to the fourth, whose value need not be read. */
static void pool_grad_window(const float *restrict w0, const float *restrict w1,
                             const float *restrict w2, const float *restrict m,
                             const float *restrict g, float *restrict d0, float *restrict d1,
                             float *restrict d2, float *restrict d3, int c) {
    for (int q = 0; q < c; q++) {
        /* r: the gradient not yet given to an earlier pixel; selects, no branches */
        float mq = m[q], r = g[q], v0 = w0[q], v1 = w1[q], v2 = w2[q];
        float a0 = v0 == mq ? r : 0.0f;
        r = v0 == mq ? 0.0f : r;
        float a1 = v1 == mq ? r : 0.0f;
        r = v1 == mq ? 0.0f : r;
        float a2 = v2 == mq ? r : 0.0f;
        r = v2 == mq ? 0.0f : r;
        d0[q] += a0;
        d1[q] += a1;
        d2[q] += a2;
        d3[q] += r;
    }
}

// dy is (B,ho,wo,c), dx (B,h,w,c): each window's gradient to the first pixel
// (in row-major order) holding its maximum; stride-1 windows overlap, so
// contributions are added, in output order.
static void maxpool_backward(const layer_args *a) {
    nn_shape s = a->in[0].shape, o = a->out_shape;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        const float *in = a->in[0].x + b * nn_shape_size(s), *w[4];
        float *din = a->in[0].dx + b * nn_shape_size(s);
        if (a->in[0].overwrite) memset(din, 0, nn_shape_size(s) * sizeof(float));
        for (int y = 0; y < o.h; y++)
            for (int x = 0; x < o.w; x++) {
                size_t at = b * nn_shape_size(o) + ((size_t)y * o.w + x) * o.c;
                const float *m = a->y + at, *g = a->dy + at;
                pool_window(in, s, a->layer->stride, y, x, w);
                float *d[4];
                for (int q = 0; q < 4; q++)
                    d[q] = din + (w[q] - in);
                if (w[0] != w[1] && w[0] != w[2]) { /* four distinct pixels: the common case */
                    pool_grad_window(w[0], w[1], w[2], m, g, d[0], d[1], d[2], d[3], o.c);
                    continue;
                }
                for (int c = 0; c < o.c; c++) {
                    float gc = g[c];
                    int t0 = w[0][c] == m[c], t1 = !t0 && w[1][c] == m[c];
                    int t2 = !t0 && !t1 && w[2][c] == m[c], t3 = !t0 && !t1 && !t2;
                    d[0][c] += t0 ? gc : 0;
                    d[1][c] += t1 ? gc : 0;
                    d[2][c] += t2 ? gc : 0;
                    d[3][c] += t3 ? gc : 0;
                }
            }
    }
}

static const layer_type maxpool_layer = {
    .name = "maxpool",
    .title = "maxpool",
    .arg = ARG_STRIDE,
    .out_shape = maxpool_shape,
    .reach = maxpool_reach,
    .fan_in = layer_no_fan_in,
    .flops = layer_no_flops,
    .work_floats = layer_no_work,
    .describe = maxpool_describe,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

/* ==== upsample: nearest neighbour x2 ==== */

static int upsample_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                          nn_shape *out, char *err, size_t errlen) {
    (void)L, (void)ctx;
    if (in[0].h > 1 << 15 || in[0].w > 1 << 15)
        return set_error(err, errlen, "upsample of a %dx%d tensor is too large", in[0].h, in[0].w);
    *out = (nn_shape){2 * in[0].h, 2 * in[0].w, in[0].c};
    return 0;
}

static void upsample_reach(const nn_layer *L, layer_reach *r) {
    (void)L;
    *r = (layer_reach){.halo = 0, .shrink = 1, .grow = 2};
}

// x is (B,h,w,c), y is (B,2h,2w,c): each input pixel fills a 2x2 block
static void upsample_forward(const layer_args *a) {
    nn_shape s = a->in[0].shape, o = a->out_shape;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++)
        spread_2x2(a->in[0].x + b * nn_shape_size(s), s, a->y + b * nn_shape_size(o), 1);
}

// dy is (B,2h,2w,c), dx (B,h,w,c): the sum of each 2x2 block
static void upsample_backward(const layer_args *a) {
    nn_shape s = a->in[0].shape, o = a->out_shape;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++)
        sum_2x2(a->dy + b * nn_shape_size(o), s, a->in[0].dx + b * nn_shape_size(s),
                a->in[0].overwrite);
}

static const layer_type upsample_layer = {
    .name = "upsample",
    .title = "upsample x2",
    .arg = ARG_NONE,
    .out_shape = upsample_shape,
    .reach = upsample_reach,
    .fan_in = layer_no_fan_in,
    .flops = layer_no_flops,
    .work_floats = layer_no_work,
    .describe = describe_title,
    .forward = upsample_forward,
    .backward = upsample_backward,
    .fusion = FUSE_UPSAMPLE,
};

/* ==== concat: the channels of several earlier tensors, in the order listed ==== */

static int concat_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                        nn_shape *out, char *err, size_t errlen) {
    (void)ctx;
    *out = in[0];
    out->c = 0;
    for (int j = 0; j < L->n_inputs; j++) {
        if (in[j].h != out->h || in[j].w != out->w)
            return set_error(err, errlen, "concat: tensors of %dx%d and %dx%d cannot be joined",
                             out->h, out->w, in[j].h, in[j].w);
        if (in[j].c > (1 << 24) - out->c)
            return set_error(err, errlen, "concat: more than 2^24 channels");
        out->c += in[j].c;
    }
    return 0;
}

static void concat_describe(const nn_layer *L, const nn_shape *shapes, int k, char *name,
                            size_t len) {
    (void)shapes, (void)k;
    int n = snprintf(name, len, "%s", L->type->title);
    for (int j = 0; j < L->n_inputs && n < (int)len; j++)
        n += snprintf(name + n, len - n, "%c%d", j ? '+' : ' ', L->inputs[j]);
}

// inputs (B,h,w,c_j) -> y (B,h,w,sum c_j), channels in the order listed
static void concat_forward(const layer_args *a) {
    nn_shape o = a->out_shape;
    size_t pixels = (size_t)o.h * o.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++)
        for (int j = 0; j < a->n_in; j++) {
            const layer_input *in = &a->in[j];
            int c = in->shape.c;
            copy_pixels(a->y + b * pixels * o.c + in->channel0, (size_t)o.c, in->x + b * pixels * c,
                        (size_t)c, c, pixels, 1);
        }
}

// dy is (B,h,w,sum c_j): each input's channels of it, to dx_j (B,h,w,c_j)
static void concat_backward(const layer_args *a) {
    nn_shape o = a->out_shape;
    size_t pixels = (size_t)o.h * o.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++)
        for (int j = 0; j < a->n_in; j++) {
            const layer_input *in = &a->in[j];
            int c = in->shape.c;
            if (!in->dx) continue;
            copy_pixels(in->dx + b * pixels * c, (size_t)c, a->dy + b * pixels * o.c + in->channel0,
                        (size_t)o.c, c, pixels, in->overwrite);
        }
}

static const layer_type concat_layer = {
    .name = "concat",
    .title = "concat",
    .arg = ARG_TENSORS,
    .out_shape = concat_shape,
    .fan_in = layer_no_fan_in,
    .flops = layer_no_flops,
    .reach = layer_pointwise_reach,
    .work_floats = layer_no_work,
    .describe = concat_describe,
    .forward = concat_forward,
    .backward = concat_backward,
    .fusion = FUSE_JOIN,
};

/* ==== pixel: one dense layer at every pixel, a 1x1 convolution ==== */

/* A pixel layer reads pieces (nn.h's layer_read): the inputs of a
 * concatenation done in place, each multiplied by its own rows of the
 * weights, and the input of an upsampling done in place at its half size. */

/* Pixels of one image at the half size of the layer's half-size pieces; 0
 * if it has none. */
static size_t half_pixels(const nn_layer *L, const nn_shape *shapes) {
    for (int j = 0; j < L->n_reads; j++)
        if (L->reads[j].half_size) {
            nn_shape s = shapes[L->reads[j].tensor];
            return (size_t)s.h * s.w;
        }
    return 0;
}

static size_t pixel_fan_in(const nn_layer *L, const nn_shape *in) {
    (void)L;
    return (size_t)in->c;
}

/* The half-size pieces cost a quarter. */
static double pixel_flops(const nn_layer *L, const nn_shape *shapes) {
    nn_shape o = shapes[L->output];
    double pixels = (double)o.h * o.w, flops = 0;
    for (int j = 0; j < L->n_reads; j++)
        flops += 2.0 * shapes[L->reads[j].tensor].c * L->units *
                 (L->reads[j].half_size ? pixels / 4 : pixels);
    return flops;
}

/* (B, h/2, w/2, units): the half-size pieces' product, then in backward the
 * 2x2 sums of the output gradient. */
static size_t pixel_work_floats(const nn_layer *L, const nn_shape *shapes, int B) {
    return (size_t)B * half_pixels(L, shapes) * L->units;
}

/* (h/2, w/2, cout): the size of the half-size pieces and of their product,
 * or (0, 0, cout) if the layer has none. */
static nn_shape half_shape(const layer_args *a) {
    nn_shape low = {0, 0, a->out_shape.c};
    for (int j = 0; j < a->n_in; j++)
        if (a->in[j].half_size) low.h = a->in[j].shape.h, low.w = a->in[j].shape.w;
    return low;
}

// pieces (B,h,w,c_j) or (B,h/2,w/2,c_j), w is (sum c_j, cout), y is (B,h,w,cout)
static void pixel_forward(const layer_args *a) {
    nn_shape o = a->out_shape, low = half_shape(a);
    int pixels = o.h * o.w, cout = o.c, half = low.h * low.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        /* Each piece times its rows of w. The half-size pieces' products
         * start from the bias at the half size and are spread over the
         * output; the others are added to that (or to the bias) in one pass. */
        gemm_piece full[NN_MAX_INPUTS], lows[NN_MAX_INPUTS];
        int n_full = 0, n_low = 0;
        for (int j = 0; j < a->n_in; j++) {
            const layer_input *in = &a->in[j];
            int c = in->shape.c;
            size_t n = (size_t)(in->half_size ? half : pixels);
            gemm_piece piece = {in->x + b * n * c, a->w + (size_t)in->channel0 * cout, c, c};
            if (in->half_size)
                lows[n_low++] = piece;
            else
                full[n_full++] = piece;
        }
        float *y = a->y + (size_t)b * pixels * cout;
        if (n_low) {
            float *product = a->work + (size_t)b * half * cout;
            gemm_nn_pieces(half, cout, n_low, lows, cout, a->bias, product, cout, 0);
            spread_2x2(product, low, y, 1);
        }
        gemm_nn_pieces(pixels, cout, n_full, full, cout, n_low ? NULL : a->bias, y, cout,
                       a->layer->relu_on_write);
    }
}

// dy is (B,h,w,cout); dw (sum c_j, cout) and db (cout) overwritten; dx_j like piece j
static void pixel_backward(const layer_args *a) {
    const nn_layer *L = a->layer;
    nn_shape o = a->out_shape, low = half_shape(a);
    int pixels = o.h * o.w, cout = o.c, half = low.h * low.w, cin = 0;
    for (int j = 0; j < a->n_in; j++)
        cin += a->in[j].shape.c;
    float *dsum = a->work; /* (B, h/2, w/2, cout) */
    /* Image by image, while its output gradient is in cache: the in-place
     * ReLU's mask on it; for the half-size pieces, its 2x2 sums; its share
     * of dw and db (grads_per_image); the gradient of each piece. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        float *dy = a->dy + (size_t)b * pixels * cout, *part = image_share(a, b);
        if (L->relu_on_write)
            relu_mask(a->y + (size_t)b * pixels * cout, dy, dy, (size_t)pixels * cout, 1);
        if (half) sum_2x2(dy, low, dsum + (size_t)b * half * cout, 1);
        for (int j = 0; j < a->n_in; j++) {
            const layer_input *in = &a->in[j];
            int n = in->half_size ? half : pixels, c = in->shape.c;
            const float *x = in->x + (size_t)b * n * c;
            const float *d = (in->half_size ? dsum : a->dy) + (size_t)b * n * cout;
            if (part)
                gemm_tn(c, cout, n, x, c, d, cout, part + (size_t)in->channel0 * cout, cout, 0);
            if (in->dx)
                gemm_nt(n, c, cout, d, cout, a->w + (size_t)in->channel0 * cout, cout,
                        in->dx + (size_t)b * n * c, c, !in->overwrite);
        }
        if (part) column_sums(dy, (size_t)pixels, cout, part + L->n_weights);
    }
    if (sum_image_shares(a)) return;

        /* dw (cin, cout) = x^T (cin, rows) dy (rows, cout): threads split the
         * cin rows, each taking its rows from the pieces that hold them. */
#pragma omp parallel
    {
        int lo, hi;
        thread_share(cin, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int j = 0; j < a->n_in; j++) {
            const layer_input *in = &a->in[j];
            int c0 = in->channel0, c = in->shape.c;
            int r0 = lo > c0 ? lo : c0, r1 = hi < c0 + c ? hi : c0 + c;
            if (r1 > r0)
                gemm_tn(r1 - r0, cout, a->B * (in->half_size ? half : pixels), in->x + (r0 - c0), c,
                        in->half_size ? dsum : a->dy, cout, a->dw + (size_t)r0 * cout, cout, 0);
        }
    }
    bias_grad(a->dy, (size_t)a->B * pixels, cout, a->dbias);
}

static const layer_type pixel_layer = {
    .name = "pixel",
    .title = "pixel",
    .arg = ARG_UNITS,
    .out_shape = units_at_each_pixel,
    .fan_in = pixel_fan_in,
    .flops = pixel_flops,
    .reach = layer_pointwise_reach,
    .work_floats = pixel_work_floats,
    .describe = describe_units,
    .forward = pixel_forward,
    .backward = pixel_backward,
    .applies_relu = 1,
    .reads_pieces = 1,
    .grads_per_image_ok = 1,
};

/* ==== dense: fully connected on the flattened tensor; output (1, 1, n) ==== */

static int dense_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                       nn_shape *out, char *err, size_t errlen) {
    (void)in, (void)ctx, (void)err, (void)errlen;
    *out = (nn_shape){1, 1, L->units};
    return 0;
}

static size_t dense_fan_in(const nn_layer *L, const nn_shape *in) {
    (void)L;
    return nn_shape_size(*in);
}

static double dense_flops(const nn_layer *L, const nn_shape *shapes) {
    (void)shapes;
    return 2.0 * (double)L->n_weights;
}

static void dense_reach(const nn_layer *L, layer_reach *r) {
    (void)L;
    *r = (layer_reach){.whole = 1};
}

// x is (B, nin) flattened, w is (nin, nout), y is (B, nout)
static void dense_forward(const layer_args *a) {
    int nin = (int)nn_shape_size(a->in[0].shape), nout = a->layer->units;
    /* Few rows (the batch), many columns: threads split the columns; each
     * row starts from the bias and the product is accumulated onto it. */
#pragma omp parallel
    {
        int lo, hi;
        thread_share(nout, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            copy_pixels(a->y + lo, (size_t)nout, a->bias + lo, 0, hi - lo, (size_t)a->B, 1);
            gemm_nn(a->B, hi - lo, nin, a->in[0].x, nin, a->w + lo, nout, a->y + lo, nout, 1);
        }
    }
}

// dy is (B, nout); dw (nin, nout) and db (nout) overwritten; dx (B, nin)
static void dense_backward(const layer_args *a) {
    int nin = (int)nn_shape_size(a->in[0].shape), nout = a->layer->units;
    const float *x = a->in[0].x;
    float *dx = a->in[0].dx;
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
        /* dw (nin, nout) = x^T (nin, B) dy (B, nout): split the nin rows. */
        thread_share(nin, t, nt, &lo, &hi);
        if (hi > lo)
            gemm_tn(hi - lo, nout, a->B, x + lo, nin, a->dy, nout, a->dw + (size_t)lo * nout, nout,
                    0);
        /* dx (B, nin) = dy (B, nout) w^T: split the nin columns. */
        if (dx && hi > lo)
            gemm_nt(a->B, hi - lo, nout, a->dy, nout, a->w + (size_t)lo * nout, nout, dx + lo, nin,
                    !a->in[0].overwrite);
    }
    bias_grad(a->dy, (size_t)a->B, nout, a->dbias);
}

static const layer_type dense_layer = {
    .name = "dense",
    .title = "dense",
    .arg = ARG_UNITS,
    .out_shape = dense_shape,
    .reach = dense_reach,
    .fan_in = dense_fan_in,
    .flops = dense_flops,
    .work_floats = layer_no_work,
    .describe = describe_units,
    .forward = dense_forward,
    .backward = dense_backward,
    .fixes_input_size = 1,
};

/* ==== softmax: per-pixel softmax over k, with the cross-entropy loss ==== */

/* A flat input of h*w*k values is read as (h, w, k). */
static int softmax_shape(const nn_layer *L, const nn_shape *in, const layer_context *ctx,
                         nn_shape *out, char *err, size_t errlen) {
    (void)L;
    int h = ctx->h, w = ctx->w, k = ctx->k;
    if (!(in[0].h == h && in[0].w == w && in[0].c == k) &&
        nn_shape_size(in[0]) != (size_t)h * w * k)
        return set_error(err, errlen, "softmax needs %dx%dx%d inputs, got %dx%dx%d", h, w, k,
                         in[0].h, in[0].w, in[0].c);
    *out = (nn_shape){h, w, k};
    return 0;
}

static void softmax_describe(const nn_layer *L, const nn_shape *shapes, int k, char *name,
                             size_t len) {
    nn_shape in = shapes[L->inputs[0]], out = shapes[L->output];
    snprintf(name, len, "%s%s %d", in.h == 1 && out.h > 1 ? "reshape, " : "", L->type->title, k);
}

// x is (B,h,w,k) logits (or (B, h*w*k) flat), y is (B,h,w,k) probabilities
static void softmax_forward(const layer_args *a) {
    size_t pixels = (size_t)a->out_shape.h * a->out_shape.w, n = pixels * a->k;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++)
        softmax_pixels(a->in[0].x + b * n, a->y + b * n, pixels, a->k);
}

// targets (B,h,w): each image's cross-entropy sum to image_loss; the
// gradient to the logits, (y - onehot) / pixels of the batch, overwrites dx;
// with class weights, each pixel's loss and gradient times its target's
static void softmax_backward(const layer_args *a) {
    int k = a->k;
    size_t hw = (size_t)a->out_shape.h * a->out_shape.w;
    float scale = 1.0f / ((float)a->B * (float)hw);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < a->B; b++) {
        const float *prob = a->y + b * hw * k;
        const uint8_t *t = a->targets + b * hw;
        a->image_loss[b] = xent_pixels(prob, t, hw, k, a->class_weights);
        xent_grad_pixels(prob, t, hw, k, scale, a->class_weights, a->in[0].dx + b * hw * k);
    }
}

static const layer_type softmax_layer = {
    .name = "softmax",
    .title = "softmax",
    .arg = ARG_NONE,
    .out_shape = softmax_shape,
    .fan_in = layer_no_fan_in,
    .flops = layer_no_flops,
    .reach = layer_pointwise_reach,
    .work_floats = layer_no_work,
    .describe = softmax_describe,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .is_loss = 1,
};

/* ==== Every kind ==== */

const layer_type *const layer_types[] = {
    &conv5_layer,  &relu_layer,  &maxpool_layer, &upsample_layer,
    &concat_layer, &pixel_layer, &dense_layer,   &softmax_layer,
};
const int n_layer_types = (int)(sizeof layer_types / sizeof layer_types[0]);

const layer_type *layer_type_named(const char *name) {
    for (int i = 0; i < n_layer_types; i++)
        if (strcmp(layer_types[i]->name, name) == 0) return layer_types[i];
    return NULL;
}
