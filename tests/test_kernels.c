/* The convolution and matrix kernels: scalar twins against naive loops written
 * independently (unpadded images, explicit bounds, double sums), AVX2 kernels
 * against their scalar twins, and the determinism promise of the headers:
 * splitting rows, columns, channel ranges or pixel blocks gives the same bits.
 * Also exp/log against libm, and the softmax kernels against double maths and
 * their AVX2 build against the portable one, bit for bit. */
#include <float.h>
#include <math.h>

#include "simd/conv5x5.h"
#include "simd/gemm.h"
#include "simd/simd.h"
#include "simd/softmax.h"
#include "simd/vmath.h"
#include "tests/testutil.h"
#include "util.h"

/* Float sums of n terms stay within a small multiple of sqrt(n) eps of the
 * sum of the terms' magnitudes; this bound leaves room for unlucky draws. */
#define REL_TOL 2e-5

static float *alloc_random(rng_state *r, long n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (long i = 0; i < n; i++)
        p[i] = 2.0f * rng_uniform(r) - 1.0f;
    return p;
}

static float *alloc_filled(long n, float value) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (long i = 0; i < n; i++)
        p[i] = value;
    return p;
}

static float *abs_copy(const float *p, long n) {
    float *q = alloc_filled(n, 0.0f);
    for (long i = 0; i < n; i++)
        q[i] = fabsf(p[i]);
    return q;
}

/* An AVX2 test on a CPU without AVX2+FMA says so and passes (make
 * test-noavx2 looks for this line). */
static int skip_without_avx2(void) {
    if (simd_avx2_supported()) return 0;
    printf("skipped: this CPU has no AVX2+FMA\n");
    return 1;
}

static int rand_in(rng_state *r, int lo, int hi) {
    return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1));
}

/* Every got[i] must be within REL_TOL * mag[i] of want[i]; reports the worst. */
static void check_close(const char *what, const float *got, const double *want, const double *mag,
                        long n) {
    long worst = -1;
    double worst_ratio = 0.0;
    for (long i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - want[i]);
        const double ratio = err / (REL_TOL * mag[i] + 1e-30);
        if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = i;
        if (isnan(ratio)) break;
    }
    ck_assert_msg(worst_ratio <= 1.0, "%s: element %ld is %g, want %g (magnitude %g)", what, worst,
                  (double)got[worst], want[worst], mag[worst]);
}

static void check_close_f(const char *what, const float *got, const float *want, const float *mag,
                          long n) {
    double *w = malloc((size_t)(n > 0 ? n : 1) * sizeof *w),
           *m = malloc((size_t)(n > 0 ? n : 1) * sizeof *m);
    ck_assert(w && m);
    for (long i = 0; i < n; i++)
        w[i] = want[i], m[i] = mag[i];
    check_close(what, got, w, m, n);
    free(w);
    free(m);
}

static void check_same_bits(const char *what, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0,
                      "%s: element %ld differs: %.9g vs %.9g", what, i, (double)a[i], (double)b[i]);
}

/* The (H+4, W+4, C) zero-bordered copy of an (H, W, C) image. */
static float *pad_image(const float *img, int H, int W, int C) {
    float *p = alloc_filled((long)(H + 4) * (W + 4) * C, 0.0f);
    for (int y = 0; y < H; y++)
        memcpy(p + ((long)(y + 2) * (W + 4) + 2) * C, img + (long)y * W * C,
               (size_t)W * C * sizeof(float));
    return p;
}

/* Naive forward on the unpadded image: out and the magnitude sum |bias| + sum |in * w|. */
static void naive_forward(const float *img, int H, int W, int cin, const float *w,
                          const float *bias, int cout, double *out, double *mag) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int co = 0; co < cout; co++) {
                double s = bias ? bias[co] : 0.0, m = bias ? fabs(bias[co]) : 0.0;
                for (int ky = 0; ky < 5; ky++)
                    for (int kx = 0; kx < 5; kx++) {
                        const int iy = y + ky - 2, ix = x + kx - 2;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        for (int ci = 0; ci < cin; ci++) {
                            const double t = (double)img[((long)iy * W + ix) * cin + ci] *
                                             w[((ky * 5 + kx) * (long)cin + ci) * cout + co];
                            s += t;
                            m += fabs(t);
                        }
                    }
                out[((long)y * W + x) * cout + co] = s;
                mag[((long)y * W + x) * cout + co] = m;
            }
}

/* Naive input gradient: din[y][x][ci] = sum of dout[oy][ox][co] * w[ky][kx][ci][co]
 * over the outputs (oy, ox) = (y - ky + 2, x - kx + 2) that read (y, x). */
static void naive_backward_input(const float *dout, int H, int W, int cout, const float *w, int cin,
                                 double *din, double *mag) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ci = 0; ci < cin; ci++) {
                double s = 0.0, m = 0.0;
                for (int ky = 0; ky < 5; ky++)
                    for (int kx = 0; kx < 5; kx++) {
                        const int oy = y - ky + 2, ox = x - kx + 2;
                        if (oy < 0 || oy >= H || ox < 0 || ox >= W) continue;
                        for (int co = 0; co < cout; co++) {
                            const double t = (double)dout[((long)oy * W + ox) * cout + co] *
                                             w[((ky * 5 + kx) * (long)cin + ci) * cout + co];
                            s += t;
                            m += fabs(t);
                        }
                    }
                din[((long)y * W + x) * cin + ci] = s;
                mag[((long)y * W + x) * cin + ci] = m;
            }
}

/* Naive weight gradient of one tap over N unpadded images. */
static void naive_weight_grad(const float *img, const float *dout, int N, int H, int W, int cin,
                              int cout, int tap, double *g, double *mag) {
    const int ky = tap / 5, kx = tap % 5;
    for (int ci = 0; ci < cin; ci++)
        for (int co = 0; co < cout; co++) {
            double s = 0.0, m = 0.0;
            for (int n = 0; n < N; n++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        const int iy = y + ky - 2, ix = x + kx - 2;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        const double t = (double)img[(((long)n * H + iy) * W + ix) * cin + ci] *
                                         dout[(((long)n * H + y) * W + x) * cout + co];
                        s += t;
                        m += fabs(t);
                    }
            g[(long)ci * cout + co] = s;
            mag[(long)ci * cout + co] = m;
        }
}

typedef void (*forward_fn)(const float *, int, int, int, const float *, const float *, int,
                           float *);
typedef void (*wgrad_fn)(const float *, const float *, int, int, int, int, int, int, int, int,
                         float *);
typedef void (*gemm_fn)(int, int, int, const float *, int, const float *, int, float *, int, int);

static const int conv_shapes[][4] = {/* H, W, cin, cout */
                                     {1, 1, 1, 1},   {1, 7, 1, 3},  {5, 1, 2, 9},   {3, 3, 1, 16},
                                     {7, 5, 3, 17},  {6, 9, 8, 8},  {9, 11, 5, 24}, {4, 13, 13, 33},
                                     {8, 8, 16, 32}, {2, 3, 1, 64}, {11, 6, 7, 12}};
#define N_CONV_SHAPES (int)(sizeof conv_shapes / sizeof conv_shapes[0])

static void check_forward_vs_naive(forward_fn fwd, const char *name) {
    rng_state r;
    rng_seed(&r, 11);
    for (int s = 0; s < N_CONV_SHAPES; s++) {
        const int H = conv_shapes[s][0], W = conv_shapes[s][1], cin = conv_shapes[s][2],
                  cout = conv_shapes[s][3];
        float *img = alloc_random(&r, (long)H * W * cin), *w = alloc_random(&r, 25L * cin * cout),
              *bias = alloc_random(&r, cout), *in = pad_image(img, H, W, cin);
        const long n = (long)H * W * cout;
        float *out = alloc_filled(n, NAN);
        double *want = malloc((size_t)n * sizeof *want), *mag = malloc((size_t)n * sizeof *mag);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            fwd(in, H, W, cin, w, with_bias ? bias : NULL, cout, out);
            naive_forward(img, H, W, cin, w, with_bias ? bias : NULL, cout, want, mag);
            char what[128];
            snprintf(what, sizeof what, "%s %dx%d cin %d cout %d bias %d", name, H, W, cin, cout,
                     with_bias);
            check_close(what, out, want, mag, n);
        }
        free(img), free(w), free(bias), free(in), free(out), free(want), free(mag);
    }
}

START_TEST(forward_scalar_matches_naive) {
    check_forward_vs_naive(conv5x5_forward_scalar, "scalar");
}
END_TEST

START_TEST(forward_avx2_matches_naive) {
    if (skip_without_avx2()) return;
    check_forward_vs_naive(AVX2_FN(conv5x5_forward), "avx2");
}
END_TEST

/* flip_weights + backward_input on either path, against the naive input gradient. */
static void check_backward_input(simd_path path) {
    ck_assert_int_eq(simd_force(path), 0);
    rng_state r;
    rng_seed(&r, 12);
    for (int s = 0; s < N_CONV_SHAPES; s++) {
        const int H = conv_shapes[s][0], W = conv_shapes[s][1], cin = conv_shapes[s][2],
                  cout = conv_shapes[s][3];
        float *dout = alloc_random(&r, (long)H * W * cout), *w = alloc_random(&r, 25L * cin * cout),
              *w_t = alloc_filled(25L * cin * cout, NAN), *dpad = pad_image(dout, H, W, cout);
        const long n = (long)H * W * cin;
        float *din = alloc_filled(n, NAN);
        double *want = malloc((size_t)n * sizeof *want), *mag = malloc((size_t)n * sizeof *mag);
        conv5x5_flip_weights(w, cin, cout, w_t);
        conv5x5_backward_input(dpad, H, W, cout, w_t, cin, din);
        naive_backward_input(dout, H, W, cout, w, cin, want, mag);
        char what[128];
        snprintf(what, sizeof what, "%s backward_input %dx%d cin %d cout %d", simd_path_name(path),
                 H, W, cin, cout);
        check_close(what, din, want, mag, n);
        free(dout), free(w), free(w_t), free(dpad), free(din), free(want), free(mag);
    }
}

START_TEST(backward_input_scalar_matches_naive) {
    check_backward_input(SIMD_SCALAR);
}
END_TEST

START_TEST(backward_input_avx2_matches_naive) {
    if (skip_without_avx2()) return;
    check_backward_input(SIMD_AVX2);
}
END_TEST

/* Weight gradient of every tap over a random channel range; outside the range
 * and the tap, dw must keep its old contents. */
static void check_weight_grad_vs_naive(wgrad_fn grad, const char *name) {
    rng_state r;
    rng_seed(&r, 13);
    for (int s = 0; s < N_CONV_SHAPES; s++) {
        const int H = conv_shapes[s][0], W = conv_shapes[s][1], cin = conv_shapes[s][2],
                  cout = conv_shapes[s][3], N = 1 + s % 3;
        float *img = alloc_random(&r, (long)N * H * W * cin),
              *dout = alloc_random(&r, (long)N * H * W * cout);
        float *in = alloc_filled((long)N * (H + 4) * (W + 4) * cin, 0.0f);
        for (int n = 0; n < N; n++) {
            float *p = pad_image(img + (long)n * H * W * cin, H, W, cin);
            memcpy(in + (long)n * (H + 4) * (W + 4) * cin, p,
                   (size_t)(H + 4) * (W + 4) * cin * sizeof(float));
            free(p);
        }
        const long per_tap = (long)cin * cout;
        float *dw = alloc_filled(25 * per_tap, -7.0f);
        double *want = malloc((size_t)per_tap * sizeof *want),
               *mag = malloc((size_t)per_tap * sizeof *mag);
        for (int tap = 0; tap < 25; tap++) {
            const int co0 = rand_in(&r, 0, cout - 1), co1 = rand_in(&r, co0 + 1, cout);
            grad(in, dout, N, H, W, cin, cout, tap, co0, co1, dw);
            naive_weight_grad(img, dout, N, H, W, cin, cout, tap, want, mag);
            for (int ci = 0; ci < cin; ci++)
                for (int co = 0; co < cout; co++) {
                    const long i = tap * per_tap + (long)ci * cout + co;
                    if (co < co0 || co >= co1) {
                        ck_assert_msg(dw[i] == -7.0f, "%s wrote outside [co0, co1) at tap %d", name,
                                      tap);
                        continue;
                    }
                    const double err = fabs(dw[i] - want[(long)ci * cout + co]);
                    ck_assert_msg(err <= REL_TOL * mag[(long)ci * cout + co] + 1e-30,
                                  "%s weight_grad %dx%d cin %d cout %d N %d tap %d [%d,%d): "
                                  "(%d,%d) is %g, want %g",
                                  name, H, W, cin, cout, N, tap, co0, co1, ci, co, (double)dw[i],
                                  want[(long)ci * cout + co]);
                }
            for (long i = 0; i < 25 * per_tap; i++)
                if (i / per_tap != tap)
                    ck_assert_msg(dw[i] == -7.0f, "%s wrote outside tap %d", name, tap);
            for (long i = 0; i < per_tap; i++)
                dw[tap * per_tap + i] = -7.0f;
        }
        free(img), free(dout), free(in), free(dw), free(want), free(mag);
    }
}

START_TEST(weight_grad_scalar_matches_naive) {
    check_weight_grad_vs_naive(conv5x5_weight_grad_scalar, "scalar");
}
END_TEST

START_TEST(weight_grad_avx2_matches_naive) {
    if (skip_without_avx2()) return;
    check_weight_grad_vs_naive(AVX2_FN(conv5x5_weight_grad), "avx2");
}
END_TEST

/* Random shapes, AVX2 against scalar; the magnitude comes from the scalar
 * kernel run on absolute values. */
START_TEST(forward_avx2_matches_scalar_random) {
    if (skip_without_avx2()) return;
    rng_state r;
    rng_seed(&r, 14);
    for (int trial = 0; trial < 60; trial++) {
        const int H = rand_in(&r, 1, 12), W = rand_in(&r, 1, 12);
        const int cin = trial % 4 == 0 ? 1 : rand_in(&r, 1, 40), cout = rand_in(&r, 1, 40);
        const long nin = (long)(H + 4) * (W + 4) * cin, nw = 25L * cin * cout,
                   n = (long)H * W * cout;
        float *in = alloc_random(&r, nin), *w = alloc_random(&r, nw),
              *bias = alloc_random(&r, cout);
        float *a = alloc_filled(n, NAN), *b = alloc_filled(n, NAN), *m = alloc_filled(n, NAN);
        float *ain = abs_copy(in, nin), *aw = abs_copy(w, nw), *ab = abs_copy(bias, cout);
        AVX2_FN(conv5x5_forward)(in, H, W, cin, w, bias, cout, a);
        conv5x5_forward_scalar(in, H, W, cin, w, bias, cout, b);
        conv5x5_forward_scalar(ain, H, W, cin, aw, ab, cout, m);
        char what[128];
        snprintf(what, sizeof what, "forward avx2 vs scalar %dx%d cin %d cout %d", H, W, cin, cout);
        check_close_f(what, a, b, m, n);
        free(in), free(w), free(bias), free(a), free(b), free(m), free(ain), free(aw), free(ab);
    }
}
END_TEST

START_TEST(weight_grad_avx2_matches_scalar_random) {
    if (skip_without_avx2()) return;
    rng_state r;
    rng_seed(&r, 15);
    for (int trial = 0; trial < 60; trial++) {
        const int N = rand_in(&r, 1, 3), H = rand_in(&r, 1, 10), W = rand_in(&r, 1, 10);
        const int cin = trial % 4 == 0 ? 1 : rand_in(&r, 1, 40), cout = rand_in(&r, 1, 70);
        const int tap = rand_in(&r, 0, 24), co0 = rand_in(&r, 0, cout - 1),
                  co1 = rand_in(&r, co0 + 1, cout);
        const long nin = (long)N * (H + 4) * (W + 4) * cin, nd = (long)N * H * W * cout,
                   nw = 25L * cin * cout;
        float *in = alloc_random(&r, nin), *dout = alloc_random(&r, nd);
        float *ain = abs_copy(in, nin), *ad = abs_copy(dout, nd);
        float *a = alloc_filled(nw, 0.0f), *b = alloc_filled(nw, 0.0f), *m = alloc_filled(nw, 0.0f);
        AVX2_FN(conv5x5_weight_grad)(in, dout, N, H, W, cin, cout, tap, co0, co1, a);
        conv5x5_weight_grad_scalar(in, dout, N, H, W, cin, cout, tap, co0, co1, b);
        conv5x5_weight_grad_scalar(ain, ad, N, H, W, cin, cout, tap, co0, co1, m);
        char what[160];
        snprintf(what, sizeof what,
                 "weight_grad avx2 vs scalar N %d %dx%d cin %d cout %d tap %d [%d,%d)", N, H, W,
                 cin, cout, tap, co0, co1);
        check_close_f(what, a, b, m, nw);
        free(in), free(dout), free(ain), free(ad), free(a), free(b), free(m);
    }
}
END_TEST

/* A window of the output computed from the matching window of the padded
 * input, and a slice of the output channels computed from a slice of the
 * weights, must reproduce the full result bit for bit: each pixel lands in a
 * different register block and channel vector. */
static void check_forward_blocks_deterministic(forward_fn fwd, const char *name) {
    rng_state r;
    rng_seed(&r, 16);
    for (int trial = 0; trial < 30; trial++) {
        const int H = rand_in(&r, 1, 14), W = rand_in(&r, 1, 14);
        const int cin = trial % 3 == 0 ? 1 : rand_in(&r, 1, 20), cout = rand_in(&r, 1, 40);
        const int Wp = W + 4;
        float *in = alloc_random(&r, (long)(H + 4) * Wp * cin),
              *w = alloc_random(&r, 25L * cin * cout), *bias = alloc_random(&r, cout),
              *full = alloc_filled((long)H * W * cout, NAN);
        fwd(in, H, W, cin, w, bias, cout, full);
        /* window [y0, y0 + h) x [x0, x0 + w) */
        const int y0 = rand_in(&r, 0, H - 1), x0 = rand_in(&r, 0, W - 1);
        const int h = rand_in(&r, 1, H - y0), wd = rand_in(&r, 1, W - x0);
        float *win = alloc_filled((long)(h + 4) * (wd + 4) * cin, 0.0f),
              *wout = alloc_filled((long)h * wd * cout, NAN);
        for (int y = 0; y < h + 4; y++)
            memcpy(win + (long)y * (wd + 4) * cin, in + ((long)(y0 + y) * Wp + x0) * cin,
                   (size_t)(wd + 4) * cin * sizeof(float));
        fwd(win, h, wd, cin, w, bias, cout, wout);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < wd; x++)
                check_same_bits(name, wout + ((long)y * wd + x) * cout,
                                full + ((long)(y0 + y) * W + x0 + x) * cout, cout);
        /* channels [c0, c1) */
        const int c0 = rand_in(&r, 0, cout - 1), c1 = rand_in(&r, c0 + 1, cout), nc = c1 - c0;
        float *ws = alloc_filled(25L * cin * nc, 0.0f), *sout = alloc_filled((long)H * W * nc, NAN);
        for (long k = 0; k < 25L * cin; k++)
            memcpy(ws + k * nc, w + k * cout + c0, (size_t)nc * sizeof(float));
        fwd(in, H, W, cin, ws, bias + c0, nc, sout);
        for (long p = 0; p < (long)H * W; p++)
            check_same_bits(name, sout + p * nc, full + p * cout + c0, nc);
        free(in), free(w), free(bias), free(full), free(win), free(wout), free(ws), free(sout);
    }
}

START_TEST(forward_scalar_blocks_deterministic) {
    check_forward_blocks_deterministic(conv5x5_forward_scalar, "scalar forward window/slice");
}
END_TEST

START_TEST(forward_avx2_blocks_deterministic) {
    if (skip_without_avx2()) return;
    check_forward_blocks_deterministic(AVX2_FN(conv5x5_forward), "avx2 forward window/slice");
}
END_TEST

/* The full channel range against random splits of it into pieces, bit for bit. */
static void check_weight_grad_split(wgrad_fn grad, const char *name) {
    rng_state r;
    rng_seed(&r, 17);
    for (int trial = 0; trial < 30; trial++) {
        const int N = rand_in(&r, 1, 3), H = rand_in(&r, 1, 9), W = rand_in(&r, 1, 9);
        const int cin = trial % 3 == 0 ? 1 : rand_in(&r, 1, 30), cout = rand_in(&r, 1, 70);
        const long nw = 25L * cin * cout;
        float *in = alloc_random(&r, (long)N * (H + 4) * (W + 4) * cin),
              *dout = alloc_random(&r, (long)N * H * W * cout);
        float *full = alloc_filled(nw, NAN), *split = alloc_filled(nw, NAN);
        for (int tap = 0; tap < 25; tap++) {
            grad(in, dout, N, H, W, cin, cout, tap, 0, cout, full);
            for (int co0 = 0; co0 < cout;) {
                const int co1 = rand_in(&r, co0 + 1, cout);
                grad(in, dout, N, H, W, cin, cout, tap, co0, co1, split);
                co0 = co1;
            }
        }
        check_same_bits(name, full, split, nw);
        free(in), free(dout), free(full), free(split);
    }
}

/* Tap ranges in one call against one call per tap, bit for bit. */
typedef void (*wgrad_taps_fn)(const float *, const float *, int, int, int, int, int, int, int, int,
                              int, float *);

static void check_weight_grad_taps(wgrad_fn grad, wgrad_taps_fn taps, const char *name) {
    rng_state r;
    rng_seed(&r, 22);
    for (int trial = 0; trial < 30; trial++) {
        const int N = rand_in(&r, 1, 3), H = rand_in(&r, 1, 9), W = rand_in(&r, 1, 9);
        const int cin = trial % 3 == 0 ? 1 : rand_in(&r, 1, 20), cout = rand_in(&r, 1, 70);
        const long nw = 25L * cin * cout;
        float *in = alloc_random(&r, (long)N * (H + 4) * (W + 4) * cin),
              *dout = alloc_random(&r, (long)N * H * W * cout);
        float *one = alloc_filled(nw, NAN), *many = alloc_filled(nw, NAN);
        for (int tap = 0; tap < 25; tap++)
            grad(in, dout, N, H, W, cin, cout, tap, 0, cout, one);
        if (trial % 2) {
            taps(in, dout, N, H, W, cin, cout, 0, 25, 0, cout, many);
        } else {
            for (int t0 = 0; t0 < 25;) {
                const int t1 = rand_in(&r, t0 + 1, 25);
                for (int co0 = 0; co0 < cout;) {
                    const int co1 = rand_in(&r, co0 + 1, cout);
                    taps(in, dout, N, H, W, cin, cout, t0, t1, co0, co1, many);
                    co0 = co1;
                }
                t0 = t1;
            }
        }
        check_same_bits(name, one, many, nw);
        free(in), free(dout), free(one), free(many);
    }
}

START_TEST(weight_grad_taps_scalar_matches_per_tap) {
    check_weight_grad_taps(conv5x5_weight_grad_scalar, conv5x5_weight_grad_taps_scalar,
                           "scalar taps");
}
END_TEST

START_TEST(weight_grad_taps_avx2_matches_per_tap) {
    if (skip_without_avx2()) return;
    check_weight_grad_taps(AVX2_FN(conv5x5_weight_grad), AVX2_FN(conv5x5_weight_grad_taps),
                           "avx2 taps");
}
END_TEST

START_TEST(weight_grad_scalar_split_deterministic) {
    check_weight_grad_split(conv5x5_weight_grad_scalar, "scalar weight_grad split");
}
END_TEST

START_TEST(weight_grad_avx2_split_deterministic) {
    if (skip_without_avx2()) return;
    check_weight_grad_split(AVX2_FN(conv5x5_weight_grad), "avx2 weight_grad split");
}
END_TEST

/* ==== matrix products ==== */

/* op(A)(i, k) and op(B)(k, j) for each variant: 0 nn, 1 tn, 2 nt. */
static float op_a(int variant, const float *A, int lda, int i, int k) {
    return variant == 1 ? A[(long)k * lda + i] : A[(long)i * lda + k];
}
static float op_b(int variant, const float *B, int ldb, int k, int j) {
    return variant == 2 ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
}

typedef struct {
    int M, N, K, lda, ldb, ldc;
    float *A, *B, *C0;
} gemm_case;

static gemm_case make_gemm_case(rng_state *r, int variant, int M, int N, int K) {
    gemm_case g = {M, N, K, 0, 0, 0, NULL, NULL, NULL};
    const int a_rows = variant == 1 ? K : M, a_cols = variant == 1 ? M : K;
    const int b_rows = variant == 2 ? N : K, b_cols = variant == 2 ? K : N;
    g.lda = a_cols + rand_in(r, 0, 5), g.ldb = b_cols + rand_in(r, 0, 5),
    g.ldc = N + rand_in(r, 0, 5);
    g.A = alloc_random(r, (long)a_rows * g.lda);
    g.B = alloc_random(r, (long)b_rows * g.ldb);
    g.C0 = alloc_random(r, (long)M * g.ldc);
    return g;
}

static void free_gemm_case(gemm_case *g) {
    free(g->A), free(g->B), free(g->C0);
}

static const char *variant_name[3] = {"nn", "tn", "nt"};

/* Naive triple loop in double; the padding columns of C must stay as they were. */
static void check_gemm_vs_naive(gemm_fn const fns[3], const char *name) {
    rng_state r;
    rng_seed(&r, 18);
    for (int trial = 0; trial < 90; trial++) {
        const int variant = trial % 3, accumulate = (trial / 3) % 2;
        const int M = rand_in(&r, 1, 40), N = rand_in(&r, 1, 40);
        const int K = trial % 10 == 9 ? rand_in(&r, 257, 600) : rand_in(&r, 0, 40);
        gemm_case g = make_gemm_case(&r, variant, M, N, K);
        const long nc = (long)M * g.ldc;
        float *C = alloc_filled(nc, 0.0f);
        memcpy(C, g.C0, (size_t)nc * sizeof(float));
        fns[variant](M, N, K, g.A, g.lda, g.B, g.ldb, C, g.ldc, accumulate);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < g.ldc; j++) {
                const long at = (long)i * g.ldc + j;
                if (j >= N) {
                    ck_assert_msg(C[at] == g.C0[at], "%s %s wrote C(%d,%d) beyond N %d", name,
                                  variant_name[variant], i, j, N);
                    continue;
                }
                double s = accumulate ? g.C0[at] : 0.0, m = accumulate ? fabs(g.C0[at]) : 0.0;
                for (int k = 0; k < K; k++) {
                    const double t =
                        (double)op_a(variant, g.A, g.lda, i, k) * op_b(variant, g.B, g.ldb, k, j);
                    s += t;
                    m += fabs(t);
                }
                ck_assert_msg(fabs(C[at] - s) <= REL_TOL * m + 1e-30,
                              "%s gemm_%s M %d N %d K %d acc %d: C(%d,%d) is %g, want %g", name,
                              variant_name[variant], M, N, K, accumulate, i, j, (double)C[at], s);
            }
        free(C);
        free_gemm_case(&g);
    }
}

static gemm_fn const gemm_scalar_fns[3] = {gemm_nn_scalar, gemm_tn_scalar, gemm_nt_scalar};
static gemm_fn const gemm_avx2_fns[3] = {AVX2_FN(gemm_nn), AVX2_FN(gemm_tn), AVX2_FN(gemm_nt)};

START_TEST(gemm_scalar_matches_naive) {
    check_gemm_vs_naive(gemm_scalar_fns, "scalar");
}
END_TEST

START_TEST(gemm_avx2_matches_naive) {
    if (skip_without_avx2()) return;
    check_gemm_vs_naive(gemm_avx2_fns, "avx2");
}
END_TEST

START_TEST(gemm_avx2_matches_scalar_random) {
    if (skip_without_avx2()) return;
    rng_state r;
    rng_seed(&r, 19);
    for (int trial = 0; trial < 120; trial++) {
        const int variant = trial % 3, accumulate = (trial / 3) % 2;
        const int M = rand_in(&r, 1, 70), N = rand_in(&r, 1, 70),
                  K = rand_in(&r, 0, trial % 7 ? 90 : 700);
        gemm_case g = make_gemm_case(&r, variant, M, N, K);
        const long nc = (long)M * g.ldc;
        float *a = alloc_filled(nc, 0.0f), *b = alloc_filled(nc, 0.0f), *m = alloc_filled(nc, 0.0f);
        memcpy(a, g.C0, (size_t)nc * sizeof(float));
        memcpy(b, g.C0, (size_t)nc * sizeof(float));
        for (long i = 0; i < nc; i++)
            m[i] = fabsf(g.C0[i]);
        const int a_rows = variant == 1 ? K : M, b_rows = variant == 2 ? N : K;
        float *aA = abs_copy(g.A, (long)a_rows * g.lda), *aB = abs_copy(g.B, (long)b_rows * g.ldb);
        gemm_avx2_fns[variant](M, N, K, g.A, g.lda, g.B, g.ldb, a, g.ldc, accumulate);
        gemm_scalar_fns[variant](M, N, K, g.A, g.lda, g.B, g.ldb, b, g.ldc, accumulate);
        gemm_scalar_fns[variant](M, N, K, aA, g.lda, aB, g.ldb, m, g.ldc, accumulate);
        char what[128];
        snprintf(what, sizeof what, "gemm_%s avx2 vs scalar M %d N %d K %d acc %d",
                 variant_name[variant], M, N, K, accumulate);
        check_close_f(what, a, b, m, nc);
        free(a), free(b), free(m), free(aA), free(aB);
        free_gemm_case(&g);
    }
}
END_TEST

/* The full product against the same computed in random row pieces and then
 * random column pieces, bit for bit. */
static void check_gemm_split(gemm_fn const fns[3], const char *name) {
    rng_state r;
    rng_seed(&r, 20);
    for (int trial = 0; trial < 60; trial++) {
        const int variant = trial % 3, accumulate = (trial / 3) % 2;
        const int M = rand_in(&r, 1, 60), N = rand_in(&r, 1, 60),
                  K = rand_in(&r, 1, trial % 5 ? 80 : 600);
        gemm_case g = make_gemm_case(&r, variant, M, N, K);
        const long nc = (long)M * g.ldc;
        float *full = alloc_filled(nc, 0.0f), *split = alloc_filled(nc, 0.0f);
        memcpy(full, g.C0, (size_t)nc * sizeof(float));
        fns[variant](M, N, K, g.A, g.lda, g.B, g.ldb, full, g.ldc, accumulate);
        char what[128];
        snprintf(what, sizeof what, "%s gemm_%s split M %d N %d K %d acc %d", name,
                 variant_name[variant], M, N, K, accumulate);
        /* rows i0..i1: op(A) starts at row i0 */
        memcpy(split, g.C0, (size_t)nc * sizeof(float));
        for (int i0 = 0; i0 < M;) {
            const int i1 = rand_in(&r, i0 + 1, M);
            const float *A = variant == 1 ? g.A + i0 : g.A + (long)i0 * g.lda;
            fns[variant](i1 - i0, N, K, A, g.lda, g.B, g.ldb, split + (long)i0 * g.ldc, g.ldc,
                         accumulate);
            i0 = i1;
        }
        check_same_bits(what, full, split, nc);
        /* columns j0..j1: op(B) starts at column j0 */
        memcpy(split, g.C0, (size_t)nc * sizeof(float));
        for (int j0 = 0; j0 < N;) {
            const int j1 = rand_in(&r, j0 + 1, N);
            const float *B = variant == 2 ? g.B + (long)j0 * g.ldb : g.B + j0;
            fns[variant](M, j1 - j0, K, g.A, g.lda, B, g.ldb, split + j0, g.ldc, accumulate);
            j0 = j1;
        }
        check_same_bits(what, full, split, nc);
        free(full), free(split);
        free_gemm_case(&g);
    }
}

START_TEST(gemm_scalar_split_deterministic) {
    check_gemm_split(gemm_scalar_fns, "scalar");
}
END_TEST

START_TEST(gemm_avx2_split_deterministic) {
    if (skip_without_avx2()) return;
    check_gemm_split(gemm_avx2_fns, "avx2");
}
END_TEST

typedef void (*pieces_fn)(int, int, int, const gemm_piece *, int, const float *, float *, int, int);

/* gemm_nn_pieces against a naive double loop (start, pieces, relu; padding
 * columns untouched), and bit for bit against gemm_nn of the same pieces
 * joined into one A (the same chain per element), and against itself split
 * into random row and column ranges. */
static void check_gemm_pieces(pieces_fn fn, gemm_fn nn, const char *name) {
    rng_state r;
    rng_seed(&r, 22);
    for (int trial = 0; trial < 80; trial++) {
        const int M = rand_in(&r, 1, 40), N = rand_in(&r, 1, 40), n = rand_in(&r, 0, 4);
        const int use_bias = trial % 2, relu = (trial / 2) % 2, ldb = N + rand_in(&r, 0, 5);
        const int ldc = N + rand_in(&r, 0, 5);
        gemm_piece pc[4];
        float *A[4], *B[4];
        int K = 0;
        for (int q = 0; q < n; q++) {
            pc[q].k = rand_in(&r, 0, 20);
            pc[q].lda = pc[q].k + rand_in(&r, 0, 5);
            A[q] = alloc_random(&r, (long)M * pc[q].lda);
            B[q] = alloc_random(&r, (long)pc[q].k * ldb);
            pc[q].a = A[q], pc[q].b = B[q];
            K += pc[q].k;
        }
        float *bias = alloc_random(&r, N), *C0 = alloc_random(&r, (long)M * ldc);
        float *C = alloc_filled((long)M * ldc, 0.0f), *D = alloc_filled((long)M * ldc, 0.0f);
        memcpy(C, C0, (size_t)M * ldc * sizeof(float));
        fn(M, N, n, pc, ldb, use_bias ? bias : NULL, C, ldc, relu);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                const long at = (long)i * ldc + j;
                if (j >= N) {
                    ck_assert_msg(C[at] == C0[at], "%s pieces wrote C(%d,%d) beyond N %d", name, i,
                                  j, N);
                    continue;
                }
                double sum = use_bias ? bias[j] : C0[at], mag = fabs(sum);
                for (int q = 0; q < n; q++)
                    for (int k = 0; k < pc[q].k; k++) {
                        const double t =
                            (double)A[q][(long)i * pc[q].lda + k] * B[q][(long)k * ldb + j];
                        sum += t, mag += fabs(t);
                    }
                if (relu && sum < 0) sum = 0;
                ck_assert_msg(fabs(C[at] - sum) <= REL_TOL * mag + 1e-30,
                              "%s pieces M %d N %d n %d bias %d relu %d: C(%d,%d) is %g, want %g",
                              name, M, N, n, use_bias, relu, i, j, (double)C[at], sum);
            }
        char what[128];
        snprintf(what, sizeof what, "%s pieces M %d N %d n %d K %d", name, M, N, n, K);
        if (!relu) { /* one A of all the pieces' columns, one B of their rows */
            float *AJ = alloc_filled((long)M * (K + 1), 0.0f),
                  *BJ = alloc_filled((long)(K + 1) * ldb, 0.0f);
            for (int q = 0, k0 = 0; q < n; k0 += pc[q].k, q++)
                for (int k = 0; k < pc[q].k; k++) {
                    for (int i = 0; i < M; i++)
                        AJ[(long)i * (K + 1) + k0 + k] = A[q][(long)i * pc[q].lda + k];
                    memcpy(BJ + (long)(k0 + k) * ldb, B[q] + (long)k * ldb,
                           (size_t)N * sizeof(float));
                }
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++)
                    D[(long)i * ldc + j] = use_bias && j < N ? bias[j] : C0[(long)i * ldc + j];
            nn(M, N, K, AJ, K + 1, BJ, ldb, D, ldc, 1);
            check_same_bits(what, C, D, (long)M * ldc);
            free(AJ), free(BJ);
        }
        /* rows, then columns, in random ranges */
        memcpy(D, C0, (size_t)M * ldc * sizeof(float));
        for (int i0 = 0; i0 < M;) {
            const int i1 = rand_in(&r, i0 + 1, M);
            gemm_piece sub[4];
            for (int q = 0; q < n; q++)
                sub[q] = pc[q], sub[q].a = pc[q].a + (long)i0 * pc[q].lda;
            fn(i1 - i0, N, n, sub, ldb, use_bias ? bias : NULL, D + (long)i0 * ldc, ldc, relu);
            i0 = i1;
        }
        check_same_bits(what, C, D, (long)M * ldc);
        memcpy(D, C0, (size_t)M * ldc * sizeof(float));
        for (int j0 = 0; j0 < N;) {
            const int j1 = rand_in(&r, j0 + 1, N);
            gemm_piece sub[4];
            for (int q = 0; q < n; q++)
                sub[q] = pc[q], sub[q].b = pc[q].b + j0;
            fn(M, j1 - j0, n, sub, ldb, use_bias ? bias + j0 : NULL, D + j0, ldc, relu);
            j0 = j1;
        }
        check_same_bits(what, C, D, (long)M * ldc);
        for (int q = 0; q < n; q++)
            free(A[q]), free(B[q]);
        free(bias), free(C0), free(C), free(D);
    }
}

START_TEST(gemm_pieces_scalar) {
    check_gemm_pieces(gemm_nn_pieces_scalar, gemm_nn_scalar, "scalar");
}
END_TEST

START_TEST(gemm_pieces_avx2) {
    if (skip_without_avx2()) return;
    check_gemm_pieces(AVX2_FN(gemm_nn_pieces), AVX2_FN(gemm_nn), "avx2");
}
END_TEST

/* The dispatching entry points run the kernel of the forced path. */
START_TEST(dispatch_follows_forced_path) {
    rng_state r;
    rng_seed(&r, 21);
    const int H = 5, W = 6, cin = 3, cout = 10, N = 2;
    float *in = alloc_random(&r, (long)N * (H + 4) * (W + 4) * cin),
          *w = alloc_random(&r, 25L * cin * cout);
    float *dout = alloc_random(&r, (long)N * H * W * cout);
    float *a = alloc_filled((long)H * W * cout, 0.0f), *b = alloc_filled((long)H * W * cout, 0.0f);
    float *ga = alloc_filled(25L * cin * cout, 0.0f), *gb = alloc_filled(25L * cin * cout, 0.0f);
    float *ca = alloc_filled(30, 0.0f), *cb = alloc_filled(30, 0.0f);
    /* the scalar path always; the AVX2 one where the CPU has it (says so if not) */
    const int n_paths = skip_without_avx2() ? 1 : 2;
    for (int p = 0; p < n_paths; p++) {
        const simd_path path = p ? SIMD_AVX2 : SIMD_SCALAR;
        ck_assert_int_eq(simd_force(path), 0);
        ck_assert_int_eq(simd_active(), path);
        conv5x5_forward(in, H, W, cin, w, NULL, cout, a);
        (p ? AVX2_FN(conv5x5_forward) : conv5x5_forward_scalar)(in, H, W, cin, w, NULL, cout, b);
        check_same_bits("conv5x5_forward dispatch", a, b, (long)H * W * cout);
        conv5x5_weight_grad(in, dout, N, H, W, cin, cout, 7, 0, cout, ga);
        (p ? AVX2_FN(conv5x5_weight_grad) : conv5x5_weight_grad_scalar)(in, dout, N, H, W, cin,
                                                                        cout, 7, 0, cout, gb);
        check_same_bits("conv5x5_weight_grad dispatch", ga, gb, 25L * cin * cout);
        conv5x5_weight_grad_taps(in, dout, N, H, W, cin, cout, 3, 17, 2, cout, ga);
        (p ? AVX2_FN(conv5x5_weight_grad_taps)
           : conv5x5_weight_grad_taps_scalar)(in, dout, N, H, W, cin, cout, 3, 17, 2, cout, gb);
        check_same_bits("conv5x5_weight_grad_taps dispatch", ga, gb, 25L * cin * cout);
        gemm_fn const *fns = p ? gemm_avx2_fns : gemm_scalar_fns;
        gemm_nn(5, 6, 7, w, 7, dout, 6, ca, 6, 0);
        fns[0](5, 6, 7, w, 7, dout, 6, cb, 6, 0);
        check_same_bits("gemm_nn dispatch", ca, cb, 30);
        gemm_tn(5, 6, 7, w, 5, dout, 6, ca, 6, 0);
        fns[1](5, 6, 7, w, 5, dout, 6, cb, 6, 0);
        check_same_bits("gemm_tn dispatch", ca, cb, 30);
        gemm_nt(5, 6, 7, w, 7, dout, 7, ca, 6, 0);
        fns[2](5, 6, 7, w, 7, dout, 7, cb, 6, 0);
        check_same_bits("gemm_nt dispatch", ca, cb, 30);
    }
    free(in), free(w), free(dout), free(a), free(b), free(ga), free(gb), free(ca), free(cb);
}
END_TEST

START_TEST(flip_weights_turns_and_transposes) {
    const int cin = 2, cout = 3;
    float w[25 * 2 * 3], w_t[25 * 2 * 3];
    for (int i = 0; i < 150; i++)
        w[i] = (float)i;
    conv5x5_flip_weights(w, cin, cout, w_t);
    /* w_t[ky][kx][co][ci] = w[4-ky][4-kx][ci][co] */
    ck_assert_float_eq(w_t[((0 * 5 + 0) * cout + 2) * cin + 1],
                       w[((4 * 5 + 4) * cin + 1) * cout + 2]);
    ck_assert_float_eq(w_t[((1 * 5 + 3) * cout + 1) * cin + 0],
                       w[((3 * 5 + 1) * cin + 0) * cout + 1]);
    ck_assert_float_eq(w_t[((2 * 5 + 2) * cout + 0) * cin + 1],
                       w[((2 * 5 + 2) * cin + 1) * cout + 0]);
}
END_TEST

/* vm_exp and vm_log against libm in double: a sweep of 2 million points over
 * exp's range, and every 257th float from 1e-30 to 1e30 for log. Both stay
 * within 2e-7 relative (about 3 units in the last place; measured 8e-8).
 * Outside their ranges they clamp, as documented; NaN stays NaN. */
START_TEST(vmath_matches_libm) {
    double worst_exp = 0, worst_log = 0;
    for (long i = 0; i <= 2000000; i++) {
        float x = -87.0f + (float)(175.0 * (double)i / 2000000);
        double want = exp((double)x);
        worst_exp = fmax(worst_exp, fabs(vm_exp(x) - want) / want);
    }
    for (int32_t bits = 0x0DA24260; bits <= 0x7149F2CA; bits += 257) { /* 1e-30f .. 1e30f */
        float x;
        memcpy(&x, &bits, sizeof x);
        double want = log((double)x);
        worst_log =
            fmax(worst_log, want == 0 ? fabs(vm_log(x)) : fabs(vm_log(x) - want) / fabs(want));
    }
    ck_assert_msg(worst_exp < 2e-7, "vm_exp: relative error %g", worst_exp);
    ck_assert_msg(worst_log < 2e-7, "vm_log: relative error %g", worst_log);
    ck_assert(vm_log(1.0f) == 0.0f && vm_exp(0.0f) == 1.0f);
    /* the clamps: results stay normal floats, an underflowed probability is 1e-30 */
    ck_assert(vm_exp(-1000.0f) == vm_exp(-87.0f) && vm_exp(-87.0f) > FLT_MIN);
    ck_assert(vm_exp(1000.0f) == vm_exp(88.0f) && isfinite(vm_exp(88.0f)));
    ck_assert(vm_log(0.0f) == vm_log(1e-30f) && fabsf(vm_log(0.0f) - logf(1e-30f)) < 1e-4f);
    ck_assert(vm_log(-1.0f) == vm_log(1e-30f) && vm_log(INFINITY) == vm_log(FLT_MAX));
    ck_assert(isnan(vm_exp(NAN)) && isnan(vm_exp(-NAN)) && isnan(vm_log(NAN)) &&
              isnan(vm_log(-NAN)));
    ck_assert(vm_clamp(-0.0f, -1.0f, 1.0f) == 0.0f && vm_clamp(-2.5f, -1.0f, 1.0f) == -1.0f);
    ck_assert(vm_clamp(0.5f, -1.0f, 1.0f) == 0.5f && vm_clamp(-0.5f, -1.0f, 1.0f) == -0.5f);
}
END_TEST

/* Logits for the softmax tests: spread over [-scale, scale], with a few
 * large ones (the max subtraction must keep exp in range) and, for a
 * pixel, a tie between classes. */
static void softmax_case(rng_state *r, size_t pixels, int k, float *z, uint8_t *t) {
    const float scale = (float)rand_in(r, 1, 30);
    for (size_t e = 0; e < pixels * k; e++)
        z[e] = scale * (2.0f * rng_uniform(r) - 1.0f);
    for (size_t p = 0; p < pixels; p += 7)
        z[p * k + rng_below(r, (uint64_t)k)] = 200.0f;
    if (k > 1) z[1] = z[0];
    for (size_t p = 0; p < pixels; p++)
        t[p] = (uint8_t)rng_below(r, (uint64_t)k);
}

/* The portable build against softmax and cross-entropy in double. */
START_TEST(softmax_scalar_matches_double) {
    rng_state r;
    rng_seed(&r, 31);
    static const int ks[] = {2, 3, 4, 5, 7, 16, 64};
    for (int c = 0; c < 7; c++) {
        const int k = ks[c];
        const size_t pixels = (size_t)rand_in(&r, 1, 700);
        float *z = alloc_filled((long)(pixels * k), 0), *q = alloc_filled((long)(pixels * k), 0),
              *dz = alloc_filled((long)(pixels * k), 0);
        uint8_t *t = malloc(pixels);
        ck_assert_ptr_nonnull(t);
        softmax_case(&r, pixels, k, z, t);
        softmax_pixels_scalar(z, q, pixels, k);
        const float scale = 1.0f / (float)pixels;
        xent_grad_pixels_scalar(q, t, pixels, k, scale, NULL, dz);
        double want_loss = 0;
        for (size_t p = 0; p < pixels; p++) {
            double max = z[p * k], sum = 0;
            for (int j = 1; j < k; j++)
                max = fmax(max, z[p * k + j]);
            for (int j = 0; j < k; j++)
                sum += exp(z[p * k + j] - max);
            for (int j = 0; j < k; j++) {
                /* z - max is rounded to float first: up to 2^-24 |z - max| in the exponent */
                const double want = exp(z[p * k + j] - max) / sum;
                const double tol = (1e-6 + 1.2e-7 * (max - z[p * k + j])) * want + 1e-37;
                ck_assert_msg(fabs(q[p * k + j] - want) <= tol,
                              "k %d pixel %zu class %d: %g, want %g", k, p, j, (double)q[p * k + j],
                              want);
                const double want_d = (want - (j == t[p])) * scale;
                ck_assert_msg(fabs(dz[p * k + j] - want_d) <= 1e-6 * scale, "gradient k %d", k);
            }
            want_loss -= log(fmax(exp(z[p * k + t[p]] - max) / sum, 1e-30));
        }
        const double loss = xent_pixels_scalar(q, t, pixels, k, NULL);
        ck_assert_msg(fabs(loss - want_loss) <= 1e-5 * want_loss + 1e-6,
                      "k %d: loss %.9g, want %.9g", k, loss, want_loss);
        free(z), free(q), free(dz), free(t);
    }
}
END_TEST

/* The AVX2 build of the same source gives the same bits: probabilities,
 * loss and gradient, on odd pixel counts and every k, NaN logits included. */
START_TEST(softmax_avx2_matches_scalar) {
    if (skip_without_avx2()) return;
    rng_state r;
    rng_seed(&r, 32);
    for (int c = 0; c < 40; c++) {
        const int k = c % 10 == 9 ? 64 : rand_in(&r, 2, 9);
        const size_t pixels = (size_t)rand_in(&r, 1, 1100);
        const long n = (long)(pixels * k);
        float *z = alloc_filled(n, 0), *q1 = alloc_filled(n, 0), *q2 = alloc_filled(n, 0),
              *d1 = alloc_filled(n, 0), *d2 = alloc_filled(n, 0);
        uint8_t *t = malloc(pixels);
        ck_assert_ptr_nonnull(t);
        softmax_case(&r, pixels, k, z, t);
        if (c % 8 == 0) z[n / 2] = NAN;
        softmax_pixels_scalar(z, q1, pixels, k);
        AVX2_FN(softmax_pixels)(z, q2, pixels, k);
        ck_assert_msg(memcmp(q1, q2, (size_t)n * sizeof(float)) == 0, "softmax, k %d, %zu pixels",
                      k, pixels);
        const double l1 = xent_pixels_scalar(q1, t, pixels, k, NULL),
                     l2 = AVX2_FN(xent_pixels)(q1, t, pixels, k, NULL);
        ck_assert_msg(memcmp(&l1, &l2, sizeof l1) == 0, "loss %.17g against %.17g", l1, l2);
        ck_assert(c % 8 != 0 || isnan(l1));
        xent_grad_pixels_scalar(q1, t, pixels, k, 0.001f, NULL, d1);
        AVX2_FN(xent_grad_pixels)(q1, t, pixels, k, 0.001f, NULL, d2);
        ck_assert_msg(memcmp(d1, d2, (size_t)n * sizeof(float)) == 0, "gradient, k %d", k);
        free(z), free(q1), free(q2), free(d1), free(d2), free(t);
    }
}
END_TEST

START_TEST(peak_gflops_is_measured) {
    const double g = simd_peak_gflops(0.05); /* emulated CPUs (make test-aarch64) are slow */
    ck_assert_msg(g > 1e-3 && g < 1e5, "peak %g GFLOP/s is not plausible", g);
    if (simd_avx2_supported())
        ck_assert(AVX2_FN(simd_peak_gflops)(0.05) > simd_peak_gflops_scalar(0.05) * 0.5);
}
END_TEST

static Suite *kernels_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *conv = tcase_create("conv5x5");
    tcase_set_timeout(conv, 120);
    tcase_add_test(conv, forward_scalar_matches_naive);
    tcase_add_test(conv, forward_avx2_matches_naive);
    tcase_add_test(conv, backward_input_scalar_matches_naive);
    tcase_add_test(conv, backward_input_avx2_matches_naive);
    tcase_add_test(conv, weight_grad_scalar_matches_naive);
    tcase_add_test(conv, weight_grad_avx2_matches_naive);
    tcase_add_test(conv, forward_avx2_matches_scalar_random);
    tcase_add_test(conv, weight_grad_avx2_matches_scalar_random);
    tcase_add_test(conv, forward_scalar_blocks_deterministic);
    tcase_add_test(conv, forward_avx2_blocks_deterministic);
    tcase_add_test(conv, weight_grad_scalar_split_deterministic);
    tcase_add_test(conv, weight_grad_avx2_split_deterministic);
    tcase_add_test(conv, weight_grad_taps_scalar_matches_per_tap);
    tcase_add_test(conv, weight_grad_taps_avx2_matches_per_tap);
    tcase_add_test(conv, flip_weights_turns_and_transposes);
    suite_add_tcase(s, conv);
    TCase *gemm = tcase_create("gemm");
    tcase_set_timeout(gemm, 120);
    tcase_add_test(gemm, gemm_scalar_matches_naive);
    tcase_add_test(gemm, gemm_avx2_matches_naive);
    tcase_add_test(gemm, gemm_avx2_matches_scalar_random);
    tcase_add_test(gemm, gemm_scalar_split_deterministic);
    tcase_add_test(gemm, gemm_avx2_split_deterministic);
    tcase_add_test(gemm, gemm_pieces_scalar);
    tcase_add_test(gemm, gemm_pieces_avx2);
    suite_add_tcase(s, gemm);
    TCase *misc = tcase_create("dispatch");
    tcase_add_test(misc, dispatch_follows_forced_path);
    tcase_add_test(misc, peak_gflops_is_measured);
    tcase_add_test(misc, vmath_matches_libm);
    tcase_add_test(misc, softmax_scalar_matches_double);
    tcase_add_test(misc, softmax_avx2_matches_scalar);
    suite_add_tcase(s, misc);
    return s;
}

int main(void) {
    return tu_run_suite(kernels_suite());
}
