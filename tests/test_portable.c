/* The portable kernels (the *_portable.c files, written with vector
 * extensions) against their scalar twins. Both add the same products in the
 * same order with a separate multiply and add, so the promise is the same
 * bits, on random shapes and data, whatever the block, range or edge; split
 * over OpenMP threads as the network splits them, for any thread count; and
 * a network trained on the portable path ends with the scalar path's
 * weights, bit for bit. Also the path choice itself (simd.h). */
#include <math.h>
#include <omp.h>

#include "nn.h"
#include "simd/conv5x5.h"
#include "simd/gemm.h"
#include "simd/kmeans.h"
#include "simd/kmeans_ab.h"
#include "simd/simd.h"
#include "simd/softmax.h"
#include "tests/testutil.h"
#include "util.h"

static float *alloc_random(rng_state *r, long n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (long i = 0; i < n; i++)
        p[i] = 2.0f * rng_uniform(r) - 1.0f;
    return p;
}

static float *alloc_copy(const float *p, long n) {
    float *q = malloc((size_t)(n > 0 ? n : 1) * sizeof *q);
    ck_assert_ptr_nonnull(q);
    memcpy(q, p, (size_t)n * sizeof *q);
    return q;
}

static int rand_in(rng_state *r, int lo, int hi) {
    return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1));
}

static void check_same_bits(const char *what, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0,
                      "%s: element %ld differs: %.9g (portable) vs %.9g (scalar)", what, i,
                      (double)a[i], (double)b[i]);
}

/* Channel counts that reach every block: whole 16-channel blocks, 1..3
 * whole vectors, a masked tail of 1..3, and cin = 1 (the first layer). */
static int random_channels(rng_state *r, int trial) {
    static const int common[] = {1, 4, 16, 32, 64};
    return trial % 3 == 0 ? common[trial / 3 % 5] : rand_in(r, 1, 40);
}

START_TEST(conv_forward_is_scalar) {
    rng_state r;
    rng_seed(&r, 41);
    for (int trial = 0; trial < 60; trial++) {
        const int H = rand_in(&r, 1, 12), W = rand_in(&r, 1, 12);
        const int cin = random_channels(&r, trial), cout = random_channels(&r, trial + 1);
        const long n = (long)H * W * cout;
        float *in = alloc_random(&r, (long)(H + 4) * (W + 4) * cin),
              *w = alloc_random(&r, 25L * cin * cout), *bias = alloc_random(&r, cout);
        float *a = alloc_random(&r, n), *b = alloc_copy(a, n);
        const float *bs = trial % 4 == 1 ? NULL : bias;
        conv5x5_forward_portable(in, H, W, cin, w, bs, cout, a);
        conv5x5_forward_scalar(in, H, W, cin, w, bs, cout, b);
        char what[128];
        snprintf(what, sizeof what, "forward %dx%d cin %d cout %d bias %d", H, W, cin, cout, !!bs);
        check_same_bits(what, a, b, n);
        free(in), free(w), free(bias), free(a), free(b);
    }
}
END_TEST

/* Through the dispatch, as the network calls it: flipped weights, padded gradient. */
START_TEST(conv_backward_input_is_scalar) {
    rng_state r;
    rng_seed(&r, 42);
    for (int trial = 0; trial < 30; trial++) {
        const int H = rand_in(&r, 1, 10), W = rand_in(&r, 1, 10);
        const int cin = random_channels(&r, trial), cout = random_channels(&r, trial + 2);
        const long n = (long)H * W * cin;
        float *dpad = alloc_random(&r, (long)(H + 4) * (W + 4) * cout),
              *w = alloc_random(&r, 25L * cin * cout), *w_t = alloc_copy(w, 25L * cin * cout);
        float *a = alloc_random(&r, n), *b = alloc_copy(a, n);
        conv5x5_flip_weights(w, cin, cout, w_t);
        ck_assert_int_eq(simd_force(SIMD_PORTABLE), 0);
        conv5x5_backward_input(dpad, H, W, cout, w_t, cin, a);
        ck_assert_int_eq(simd_force(SIMD_SCALAR), 0);
        conv5x5_backward_input(dpad, H, W, cout, w_t, cin, b);
        check_same_bits("backward_input", a, b, n);
        free(dpad), free(w), free(w_t), free(a), free(b);
    }
}
END_TEST

/* Random tap and channel ranges; what lies outside them must stay as it was
 * (both start from the same contents, so comparing everything checks that). */
START_TEST(conv_weight_grad_is_scalar) {
    rng_state r;
    rng_seed(&r, 43);
    for (int trial = 0; trial < 60; trial++) {
        const int N = rand_in(&r, 1, 3), H = rand_in(&r, 1, 9), W = rand_in(&r, 1, 9);
        const int cin = random_channels(&r, trial), cout = random_channels(&r, trial + 1);
        const int tap0 = rand_in(&r, 0, 24), tap1 = trial % 5 == 0 ? 25 : rand_in(&r, tap0 + 1, 25);
        const int co0 = trial % 2 ? 0 : rand_in(&r, 0, cout - 1),
                  co1 = trial % 2 ? cout : rand_in(&r, co0 + 1, cout);
        const long nw = 25L * cin * cout;
        float *in = alloc_random(&r, (long)N * (H + 4) * (W + 4) * cin),
              *dout = alloc_random(&r, (long)N * H * W * cout);
        float *a = alloc_random(&r, nw), *b = alloc_copy(a, nw);
        char what[160];
        snprintf(what, sizeof what,
                 "weight_grad_taps N %d %dx%d cin %d cout %d taps [%d,%d) [%d,%d)", N, H, W, cin,
                 cout, tap0, tap1, co0, co1);
        conv5x5_weight_grad_taps_portable(in, dout, N, H, W, cin, cout, tap0, tap1, co0, co1, a);
        conv5x5_weight_grad_taps_scalar(in, dout, N, H, W, cin, cout, tap0, tap1, co0, co1, b);
        check_same_bits(what, a, b, nw);
        conv5x5_weight_grad_portable(in, dout, N, H, W, cin, cout, tap0, co0, co1, a);
        conv5x5_weight_grad_scalar(in, dout, N, H, W, cin, cout, tap0, co0, co1, b);
        check_same_bits(what, a, b, nw);
        free(in), free(dout), free(a), free(b);
    }
}
END_TEST

typedef void (*gemm_fn)(int, int, int, const float *, int, const float *, int, float *, int, int);

/* nn, tn and nt; K beyond one k-block (256) now and then, K = 0 too; padded
 * leading dimensions, whose padding must stay as it was. */
START_TEST(gemm_is_scalar) {
    static gemm_fn const portable[3] = {gemm_nn_portable, gemm_tn_portable, gemm_nt_portable};
    static gemm_fn const scalar[3] = {gemm_nn_scalar, gemm_tn_scalar, gemm_nt_scalar};
    static const char *name[3] = {"nn", "tn", "nt"};
    rng_state r;
    rng_seed(&r, 44);
    for (int trial = 0; trial < 150; trial++) {
        const int v = trial % 3, accumulate = trial / 3 % 2;
        const int M = rand_in(&r, 1, 40), N = random_channels(&r, trial / 6),
                  K = trial % 11 == 0 ? 0 : rand_in(&r, 1, trial % 7 ? 60 : 600);
        const int a_rows = v == 1 ? K : M, a_cols = v == 1 ? M : K;
        const int b_rows = v == 2 ? N : K, b_cols = v == 2 ? K : N;
        const int lda = a_cols + rand_in(&r, 0, 3), ldb = b_cols + rand_in(&r, 0, 3),
                  ldc = N + rand_in(&r, 0, 3);
        float *A = alloc_random(&r, (long)a_rows * lda), *B = alloc_random(&r, (long)b_rows * ldb);
        float *a = alloc_random(&r, (long)M * ldc), *b = alloc_copy(a, (long)M * ldc);
        portable[v](M, N, K, A, lda, B, ldb, a, ldc, accumulate);
        scalar[v](M, N, K, A, lda, B, ldb, b, ldc, accumulate);
        char what[128];
        snprintf(what, sizeof what, "gemm_%s M %d N %d K %d acc %d", name[v], M, N, K, accumulate);
        check_same_bits(what, a, b, (long)M * ldc);
        free(A), free(B), free(a), free(b);
    }
}
END_TEST

/* Pieces of any width (none at all too), from the bias or from C, with and
 * without the ReLU; zeros and NaN in C reach the ReLU's edge cases. */
START_TEST(gemm_pieces_is_scalar) {
    rng_state r;
    rng_seed(&r, 45);
    for (int trial = 0; trial < 80; trial++) {
        const int M = rand_in(&r, 1, 40), N = random_channels(&r, trial), n = rand_in(&r, 0, 4);
        const int use_bias = trial % 2, relu = trial / 2 % 2;
        const int ldb = N + rand_in(&r, 0, 3), ldc = N + rand_in(&r, 0, 3);
        gemm_piece pc[4];
        for (int q = 0; q < n; q++) {
            pc[q].k = rand_in(&r, 0, 40);
            pc[q].lda = pc[q].k + rand_in(&r, 0, 3);
            pc[q].a = alloc_random(&r, (long)M * pc[q].lda);
            pc[q].b = alloc_random(&r, (long)pc[q].k * ldb);
        }
        float *bias = alloc_random(&r, N), *a = alloc_random(&r, (long)M * ldc);
        if (!use_bias) a[0] = NAN, a[(long)(M - 1) * ldc] = -0.0f;
        float *b = alloc_copy(a, (long)M * ldc);
        gemm_nn_pieces_portable(M, N, n, pc, ldb, use_bias ? bias : NULL, a, ldc, relu);
        gemm_nn_pieces_scalar(M, N, n, pc, ldb, use_bias ? bias : NULL, b, ldc, relu);
        char what[128];
        snprintf(what, sizeof what, "pieces M %d N %d n %d bias %d relu %d", M, N, n, use_bias,
                 relu);
        check_same_bits(what, a, b, (long)M * ldc);
        for (int q = 0; q < n; q++)
            free((void *)pc[q].a), free((void *)pc[q].b);
        free(bias), free(a), free(b);
    }
}
END_TEST

/* The portable build of the softmax source, and the dispatch on the
 * portable path, give the scalar bits: probabilities, the loss with and
 * without class weights, the gradient; odd pixel counts, the task's k = 4
 * and the chroma mode's many classes, NaN logits included. */
START_TEST(softmax_is_scalar) {
    rng_state r;
    rng_seed(&r, 46);
    ck_assert_int_eq(simd_force(SIMD_PORTABLE), 0);
    for (int trial = 0; trial < 30; trial++) {
        const int k = trial % 3 == 0 ? 4 : trial % 3 == 1 ? rand_in(&r, 2, 9) : 313;
        const size_t pixels = (size_t)rand_in(&r, 1, 700);
        const long n = (long)pixels * k;
        float *z = alloc_random(&r, n), *w = alloc_random(&r, k);
        float *q1 = alloc_random(&r, n), *q2 = alloc_random(&r, n), *q3 = alloc_random(&r, n);
        uint8_t *t = malloc(pixels);
        ck_assert_ptr_nonnull(t);
        for (long e = 0; e < n; e++)
            z[e] *= 30.0f;
        for (size_t p = 0; p < pixels; p++)
            t[p] = (uint8_t)rng_below(&r, (uint64_t)k);
        if (trial % 7 == 0) z[n / 2] = NAN;
        char what[96];
        snprintf(what, sizeof what, "softmax k %d, %zu pixels", k, pixels);
        softmax_pixels_portable(z, q1, pixels, k);
        softmax_pixels(z, q2, pixels, k);
        softmax_pixels_scalar(z, q3, pixels, k);
        check_same_bits(what, q1, q3, n);
        check_same_bits(what, q2, q3, n);
        for (int weighted = 0; weighted < 2; weighted++) {
            const float *cw = weighted ? w : NULL;
            const double l1 = xent_pixels_portable(q3, t, pixels, k, cw),
                         l2 = xent_pixels(q3, t, pixels, k, cw),
                         l3 = xent_pixels_scalar(q3, t, pixels, k, cw);
            ck_assert_msg(memcmp(&l1, &l3, sizeof l1) == 0 && memcmp(&l2, &l3, sizeof l2) == 0,
                          "%s: loss %.17g, %.17g against %.17g", what, l1, l2, l3);
            xent_grad_pixels_portable(q3, t, pixels, k, 0.001f, cw, q1);
            xent_grad_pixels(q3, t, pixels, k, 0.001f, cw, q2);
            xent_grad_pixels_scalar(q3, t, pixels, k, 0.001f, cw, z);
            check_same_bits(what, q1, z, n);
            check_same_bits(what, q2, z, n);
        }
        free(z), free(w), free(q1), free(q2), free(q3), free(t);
    }
}
END_TEST

/* RGB labels at every length up to 40 (tails) and on a long run, ties made
 * likely by half-integer centres; the k-means++ potentials, exact integers. */
START_TEST(kmeans_is_scalar) {
    enum { n = 5003 };
    static uint8_t rgb[3 * n], la[n], lb[n];
    static uint32_t packed[n], weights[n], d2a[n], d2b[n];
    rng_state r;
    rng_seed(&r, 46);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)rng_below(&r, 256);
        packed[i] = (uint32_t)rgb[3 * i] << 16 | (uint32_t)rgb[3 * i + 1] << 8 | rgb[3 * i + 2];
        weights[i] = (uint32_t)rng_below(&r, 4000000000u) + 1;
        d2a[i] = d2b[i] = (uint32_t)rng_below(&r, 200000);
    }
    static const int ks[] = {1, 2, 4, 9, 16, 64, 255};
    for (int q = 0; q < 7; q++) {
        float centres[255 * 3];
        for (int j = 0; j < 3 * ks[q]; j++)
            centres[j] = 0.5f * (float)rng_below(&r, 511);
        for (int len = 0; len <= 40; len++) {
            kmeans_nearest_portable(packed + 3, (size_t)len, centres, ks[q], la);
            kmeans_nearest_scalar(packed + 3, (size_t)len, centres, ks[q], lb);
            ck_assert_msg(memcmp(la, lb, (size_t)len) == 0, "nearest k %d len %d", ks[q], len);
            kmeans_nearest_rgb_portable(rgb + 3, (size_t)len, centres, ks[q], la);
            kmeans_nearest_rgb_scalar(rgb + 3, (size_t)len, centres, ks[q], lb);
            ck_assert_msg(memcmp(la, lb, (size_t)len) == 0, "nearest_rgb k %d len %d", ks[q], len);
        }
        kmeans_nearest_rgb_portable(rgb, n, centres, ks[q], la);
        kmeans_nearest_rgb_scalar(rgb, n, centres, ks[q], lb);
        ck_assert_msg(memcmp(la, lb, n) == 0, "nearest_rgb k %d", ks[q]);
    }
    for (int t = 0; t < 4; t++) {
        const uint32_t c = (uint32_t)rng_below(&r, 1u << 24);
        for (size_t len = n - 9; len <= n; len++)
            ck_assert_uint_eq(kmeans_potential_portable(packed, weights, d2a, len, c),
                              kmeans_potential_scalar(packed, weights, d2a, len, c));
        ck_assert_uint_eq(kmeans_update_d2_portable(packed, weights, d2a, n, c, t == 0),
                          kmeans_update_d2_scalar(packed, weights, d2b, n, c, t == 0));
        ck_assert_int_eq(memcmp(d2a, d2b, sizeof d2a), 0);
    }
}
END_TEST

/* a*b* labels on random points and centres, NaN included: a NaN distance is
 * never nearer, on every path. */
START_TEST(kmeans_ab_is_scalar) {
    enum { n = 2001 };
    static float a[n], b[n], lab[3 * n];
    static uint8_t la[n], lb[n];
    rng_state r;
    rng_seed(&r, 47);
    for (int i = 0; i < n; i++) {
        a[i] = i % 97 == 5 ? NAN : 256.0f * rng_uniform(&r) - 128.0f;
        b[i] = 256.0f * rng_uniform(&r) - 128.0f;
        lab[3 * i] = 50.0f, lab[3 * i + 1] = a[i], lab[3 * i + 2] = b[i];
    }
    static const int ks[] = {1, 3, 16, 64, 255};
    for (int q = 0; q < 5; q++) {
        float centres[255 * 2];
        for (int j = 0; j < 2 * ks[q]; j++)
            centres[j] = 0.5f * (float)rng_below(&r, 400) - 100.0f;
        for (size_t len = n - 17; len <= n; len++) {
            kmeans_nearest_ab_portable(a, b, len, centres, ks[q], la);
            kmeans_nearest_ab_scalar(a, b, len, centres, ks[q], lb);
            ck_assert_msg(memcmp(la, lb, len) == 0, "nearest_ab k %d len %zu", ks[q], len);
            kmeans_nearest_lab_portable(lab, len, centres, ks[q], la);
            kmeans_nearest_lab_scalar(lab, len, centres, ks[q], lb);
            ck_assert_msg(memcmp(la, lb, len) == 0, "nearest_lab k %d len %zu", ks[q], len);
        }
    }
}
END_TEST

/* The kernels split over threads as the network splits them (images of a
 * batch; (tap range, channel block) items of the weight gradient; row
 * pieces of a product), on the portable path, for 1, 2 and 3 threads: the
 * same bits each time, and the scalar twin's. */
START_TEST(threads_split_deterministically) {
    enum { B = 5, H = 9, W = 7, CIN = 6, COUT = 20, M = 77, N = 13, K = 300 };
    const long in_img = (long)(H + 4) * (W + 4) * CIN, out_img = (long)H * W * COUT,
               nw = 25L * CIN * COUT;
    rng_state r;
    rng_seed(&r, 48);
    float *in = alloc_random(&r, B * in_img), *w = alloc_random(&r, nw),
          *bias = alloc_random(&r, COUT), *dout = alloc_random(&r, B * out_img);
    float *A = alloc_random(&r, (long)M * K), *Bm = alloc_random(&r, (long)K * N);
    float *out[3], *dw[3], *C[3];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        out[t] = alloc_random(&r, B * out_img), dw[t] = alloc_random(&r, nw);
        C[t] = alloc_random(&r, (long)M * N);
        ck_assert_int_eq(simd_force(SIMD_PORTABLE), 0);
        omp_set_num_threads(t + 1);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            conv5x5_forward(in + b * in_img, H, W, CIN, w, bias, COUT, out[t] + b * out_img);
        /* (t + 2) tap groups times 8-channel blocks, dynamically scheduled */
        const int groups = t + 2, blocks = (COUT + 7) / 8;
#pragma omp parallel for schedule(dynamic)
        for (int item = 0; item < groups * blocks; item++) {
            const int g = item / blocks, co0 = item % blocks * 8;
            conv5x5_weight_grad_taps(in, dout, B, H, W, CIN, COUT, 25 * g / groups,
                                     25 * (g + 1) / groups, co0, co0 + 8 < COUT ? co0 + 8 : COUT,
                                     dw[t]);
        }
#pragma omp parallel
        {
            const int T = omp_get_num_threads(), i0 = M * omp_get_thread_num() / T,
                      i1 = M * (omp_get_thread_num() + 1) / T;
            gemm_nn(i1 - i0, N, K, A + (long)i0 * K, K, Bm, N, C[t] + (long)i0 * N, N, 0);
        }
    }
    for (int t = 1; t < 3; t++) {
        check_same_bits("forward, threads", out[t], out[0], B * out_img);
        check_same_bits("weight_grad_taps, threads", dw[t], dw[0], nw);
        check_same_bits("gemm_nn, threads", C[t], C[0], (long)M * N);
    }
    ck_assert_int_eq(simd_force(SIMD_SCALAR), 0);
    float *ref = alloc_random(&r, out_img);
    for (int b = 0; b < B; b++) {
        conv5x5_forward(in + b * in_img, H, W, CIN, w, bias, COUT, ref);
        check_same_bits("forward, scalar", out[0] + b * out_img, ref, out_img);
    }
    omp_set_num_threads(saved);
    for (int t = 0; t < 3; t++)
        free(out[t]), free(dw[t]), free(C[t]);
    free(in), free(w), free(bias), free(dout), free(A), free(Bm), free(ref);
}
END_TEST

/* Two epochs of SGD on a few 8x8 images: the weights after them and the
 * probabilities of a last forward pass. */
static float *train(const char *arch, simd_path path, int threads, size_t *n_out) {
    enum { IMAGES = 4, SIDE = 8, K = 4, BATCH = 2 };
    float x[IMAGES * SIDE * SIDE];
    uint8_t tg[IMAGES * SIDE * SIDE];
    rng_state r;
    rng_seed(&r, 49);
    for (int i = 0; i < IMAGES * SIDE * SIDE; i++) {
        x[i] = rng_normal(&r);
        tg[i] = (uint8_t)(x[i] > 0.5f ? 3 : x[i] > 0 ? 2 : x[i] > -0.5f ? 1 : 0);
    }
    ck_assert_int_eq(simd_force(path), 0);
    omp_set_num_threads(threads);
    network *net;
    char err[256] = "";
    ck_assert_msg(nn_create(arch, SIDE, SIDE, K, BATCH, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 5);
    nn_optim_config cfg = {OPT_ADAM, 0.01f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0};
    int order[IMAGES] = {2, 0, 3, 1}, done;
    for (int epoch = 0; epoch < 2; epoch++) {
        double loss = nn_train_epoch(net, x, tg, order, NULL, IMAGES, BATCH, &cfg,
                                     2L * IMAGES / BATCH, NULL, NULL, NULL, &done, err, sizeof err);
        ck_assert_msg(isfinite(loss) && done == IMAGES, "%s: %s", arch, err);
    }
    nn_forward(net, x, BATCH);
    const size_t n_probs = (size_t)BATCH * SIDE * SIDE * K;
    const size_t n_params = nn_param_count(net);
    *n_out = n_params + n_probs;
    float *got = malloc(*n_out * sizeof *got);
    ck_assert_ptr_nonnull(got);
    memcpy(got, nn_params(net), n_params * sizeof *got);
    memcpy(got + n_params, nn_output(net), n_probs * sizeof *got);
    nn_free(net);
    return got;
}

START_TEST(network_trains_like_scalar) {
    static const char *archs[] = {"default", "skip", "pixel"};
    const int saved = omp_get_max_threads();
    for (int a = 0; a < 3; a++) {
        size_t n, m;
        float *want = train(archs[a], SIMD_SCALAR, 1, &n);
        for (int threads = 1; threads <= 3; threads++) {
            float *got = train(archs[a], SIMD_PORTABLE, threads, &m);
            ck_assert_uint_eq(m, n);
            char what[96];
            snprintf(what, sizeof what, "%s, portable with %d threads", archs[a], threads);
            check_same_bits(what, got, want, (long)n);
            free(got);
        }
        free(want);
    }
    omp_set_num_threads(saved);
}
END_TEST

/* COLORIZE_SIMD's names, what this build offers, and forcing. */
START_TEST(paths_and_names) {
    static const struct {
        const char *env;
        int path;
    } names[] = {{"scalar", SIMD_SCALAR},
                 {"portable", SIMD_PORTABLE},
                 {"avx2", SIMD_AVX2},
                 {"sse", -1},
                 {"", -1}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ck_assert_int_eq(setenv("COLORIZE_SIMD", names[i].env, 1), 0);
        ck_assert_int_eq(simd_requested(), names[i].path);
    }
    unsetenv("COLORIZE_SIMD");
    ck_assert_int_eq(simd_requested(), -1);
    ck_assert(simd_supported(SIMD_SCALAR) && simd_supported(SIMD_PORTABLE));
    ck_assert_int_eq(simd_supported(SIMD_AVX2), SIMD_HAVE_AVX2 && simd_avx2_supported());
    ck_assert_int_eq(simd_force(SIMD_AVX2), simd_supported(SIMD_AVX2) ? 0 : -1);
    ck_assert_int_eq(simd_force(SIMD_PORTABLE), 0);
    ck_assert_int_eq(simd_active(), SIMD_PORTABLE);
    ck_assert_str_eq(simd_path_name(SIMD_PORTABLE), "portable");
    ck_assert_str_eq(simd_path_name(SIMD_SCALAR), "scalar");
    const double peak = simd_peak_gflops(0.02);
    ck_assert_msg(peak > 1e-3 && peak < 1e5, "portable peak %g GFLOP/s", peak);
#if !SIMD_HAVE_AVX2
    printf("this build has no AVX2 kernels (not x86-64): portable and scalar paths only\n");
#endif
}
END_TEST

int main(void) {
    Suite *s = suite_create("portable");
    TCase *tc = tcase_create("portable");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, paths_and_names);
    tcase_add_test(tc, conv_forward_is_scalar);
    tcase_add_test(tc, conv_backward_input_is_scalar);
    tcase_add_test(tc, conv_weight_grad_is_scalar);
    tcase_add_test(tc, gemm_is_scalar);
    tcase_add_test(tc, gemm_pieces_is_scalar);
    tcase_add_test(tc, softmax_is_scalar);
    tcase_add_test(tc, kmeans_is_scalar);
    tcase_add_test(tc, kmeans_ab_is_scalar);
    tcase_add_test(tc, threads_split_deterministically);
    tcase_add_test(tc, network_trains_like_scalar);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
