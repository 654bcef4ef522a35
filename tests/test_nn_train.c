/* Training: a small network learns, the weights do not depend on the
 * thread count or (beyond rounding) the kernel path, flips train like
 * flipped copies and are drawn from the seed and the epoch, and a diverged
 * step leaves the last good weights. */
#include <math.h>
#include <omp.h>

#include "nn.h"
/* the planner's own fields: the divergence check spoils a layer's bias in place */
#include "nn_layer.h"
#include "simd/simd.h"
#include "tests/testutil.h"
#include "util.h"

/* Says so when a check needs AVX2+FMA and the CPU has not got them. */
static int skip_without_avx2(const char *test) {
    if (simd_avx2_supported()) return 0;
    printf("%s: skipped: this CPU has no AVX2+FMA\n", test);
    fflush(stdout);
    return 1;
}

/* 8 images whose targets depend on brightness and on the neighbours. */
static void learnable_set(int n, int h, int w, float *x, uint8_t *tg) {
    rng_state rng;
    rng_seed(&rng, 5);
    for (int j = 0; j < n * h * w; j++)
        x[j] = rng_normal(&rng);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                const float *im = x + (size_t)i * h * w;
                float v = im[y * w + xx] + 0.5f * im[y * w + (xx + 1) % w];
                tg[(size_t)i * h * w + y * w + xx] = v < -0.7f ? 0 : v < 0 ? 1 : v < 0.7f ? 2 : 3;
            }
}

START_TEST(test_small_network_learns) {
    enum { N = 8, H = 8, W = 8 };
    float x[N * H * W];
    uint8_t tg[N * H * W];
    learnable_set(N, H, W, x, tg);
    network *net;
    char err[256];
    ck_assert_msg(nn_create("default", H, W, 4, N, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 3);
    nn_optim_config cfg = {OPT_ADAM, 0.01f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_CONSTANT, 0};
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    double first = 0, last = 0;
    for (int epoch = 0; epoch < 400; epoch++) {
        int done;
        last = nn_train_epoch(net, x, tg, order, NULL, N, N, &cfg, 400, NULL, NULL, NULL, &done,
                              err, sizeof err);
        if (epoch == 0) first = last;
    }
    nn_score score;
    nn_evaluate(net, x, tg, N, &score, NULL);
    ck_assert_msg(first > 1.0 && last < 0.05, "loss %g -> %g", first, last);
    ck_assert_msg(score.error < 0.01, "error %g", score.error);
    nn_free(net);
}
END_TEST

/* Trains three steps with the given thread count; returns the weights. */
static float *train_three_steps(const char *arch, int threads, size_t *n_params) {
    enum { N = 12, H = 32, W = 32 };
    static float x[N * H * W];
    static uint8_t tg[N * H * W];
    learnable_set(N, H, W, x, tg);
    omp_set_num_threads(threads);
    network *net;
    char err[256];
    ck_assert_msg(nn_create(arch, H, W, 4, 5, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 9);
    nn_optim_config cfg = {OPT_ADAM, 0.003f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0};
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = (i * 5) % N;
    int done;
    nn_train_epoch(net, x, tg, order, NULL, N, 5, &cfg, 3, NULL, NULL, NULL, &done, err,
                   sizeof err);
    ck_assert_int_eq(done, N);
    ck_assert_int_eq(nn_steps(net), 3);
    float *w = malloc(nn_param_count(net) * sizeof(float));
    memcpy(w, nn_params(net), nn_param_count(net) * sizeof(float));
    *n_params = nn_param_count(net);
    nn_free(net);
    return w;
}

START_TEST(test_thread_count_does_not_change_weights) {
    const char *archs[] = {"default", "skip", "pixel", "dense"};
    for (int a = 0; a < 4; a++) {
        size_t n1, n2, n3;
        float *w1 = train_three_steps(archs[a], 1, &n1);
        float *w2 = train_three_steps(archs[a], 2, &n2);
        float *w3 = train_three_steps(archs[a], 3, &n3);
        ck_assert(n1 == n2 && n2 == n3);
        ck_assert_msg(memcmp(w1, w2, n1 * sizeof(float)) == 0, "%s: 1 and 2 threads differ",
                      archs[a]);
        ck_assert_msg(memcmp(w1, w3, n1 * sizeof(float)) == 0, "%s: 1 and 3 threads differ",
                      archs[a]);
        free(w1);
        free(w2);
        free(w3);
    }
    omp_set_num_threads(2);
}
END_TEST

/* One epoch of the default network (seed 9, Adam, batches of two, the last
 * one short) over five 6x10 images; returns the weights and the loss. */
static float *train_epoch_flipped(const float *x, const uint8_t *tg, const uint8_t *flip,
                                  size_t *n_params, double *loss) {
    network *net;
    char err[256];
    ck_assert_msg(nn_create("default", 6, 10, 4, 2, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 9);
    nn_optim_config cfg = {OPT_ADAM, 0.01f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0};
    int order[5] = {3, 0, 4, 1, 2}, done;
    *loss = nn_train_epoch(net, x, tg, order, flip, 5, 2, &cfg, 3, NULL, NULL, NULL, &done, err,
                           sizeof err);
    ck_assert_msg(isfinite(*loss) && done == 5, "%s", err);
    float *w = malloc(nn_param_count(net) * sizeof(float));
    memcpy(w, nn_params(net), nn_param_count(net) * sizeof(float));
    *n_params = nn_param_count(net);
    nn_free(net);
    return w;
}

/* A flip mirrors an image and its targets as the batch is gathered: an
 * epoch with flips trains the same bits as one over copies flipped
 * beforehand (by a loop of the test's own), some images flipped or all; a
 * flip array of zeros trains as NULL does. */
START_TEST(test_flips_train_like_flipped_copies) {
    enum { N = 5, H = 6, W = 10 };
    static float x[N * H * W], copy[N * H * W];
    static uint8_t tg[N * H * W], copy_tg[N * H * W];
    learnable_set(N, H, W, x, tg);
    const uint8_t some[N] = {1, 0, 0, 1, 1}, all[N] = {1, 1, 1, 1, 1}, none[N] = {0};
    const uint8_t *flips[2] = {some, all};
    size_t n1, n2;
    double l1, l2;
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < N; i++)
            for (int y = 0; y < H; y++)
                for (int c = 0; c < W; c++) {
                    int from = (i * H + y) * W + (flips[f][i] ? W - 1 - c : c);
                    copy[(i * H + y) * W + c] = x[from];
                    copy_tg[(i * H + y) * W + c] = tg[from];
                }
        float *flipped = train_epoch_flipped(x, tg, flips[f], &n1, &l1);
        float *copied = train_epoch_flipped(copy, copy_tg, NULL, &n2, &l2);
        ck_assert(n1 == n2);
        ck_assert_msg(l1 == l2, "flips %d: loss %.17g, copies %.17g", f, l1, l2);
        ck_assert_msg(memcmp(flipped, copied, n1 * sizeof(float)) == 0, "flips %d: weights differ",
                      f);
        free(flipped);
        free(copied);
    }
    float *plain = train_epoch_flipped(x, tg, NULL, &n1, &l1);
    float *zeros = train_epoch_flipped(x, tg, none, &n2, &l2);
    ck_assert(l1 == l2 && memcmp(plain, zeros, n1 * sizeof(float)) == 0);
    free(plain);
    free(zeros);
}
END_TEST

/* An epoch's flips depend on the seed and the epoch alone (the draw is
 * serial: no thread count enters), an image's not on how many there are;
 * about half are flipped, and the stream is not the shuffles' (seeded
 * from seed ^ golden * epoch). */
START_TEST(test_flips_are_drawn_from_seed_and_epoch) {
    enum { N = 1000 };
    static uint8_t a[N], b[N], other_epoch[N], other_seed[N], fewer[300];
    nn_draw_flips(1, 1, N, a);
    nn_draw_flips(1, 1, N, b);
    nn_draw_flips(1, 2, N, other_epoch);
    nn_draw_flips(2, 1, N, other_seed);
    nn_draw_flips(1, 1, 300, fewer);
    ck_assert(memcmp(a, b, N) == 0 && memcmp(a, fewer, 300) == 0);
    ck_assert(memcmp(a, other_epoch, N) != 0 && memcmp(a, other_seed, N) != 0);
    rng_state shuffles;
    rng_seed(&shuffles, 1 ^ 0x9e3779b97f4a7c15ull);
    int ones = 0, same_as_shuffles = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(a[i] <= 1);
        ones += a[i];
        same_as_shuffles += a[i] == rng_next(&shuffles) >> 63;
    }
    ck_assert_msg(ones > 430 && ones < 570, "%d of %d flipped", ones, N);
    ck_assert_msg(same_as_shuffles < 570, "%d of %d as the shuffles' stream", same_as_shuffles, N);
}
END_TEST

/* Two epochs of SGD, batches of two, for a built-in on one SIMD path and
 * thread count, from seed 9 on small random images (four 8x8 ones; two 32x32
 * for dense, whose last layer is sized for them): the weights after, the loss
 * of each epoch, and the probabilities the trained network gives the first
 * two images. */
typedef struct {
    size_t n_params, n_probs;
    float *weights, *probs;
    double loss[2];
} few_steps;

static few_steps train_few_steps(const char *arch, simd_path path, int threads) {
    enum { N = 4, K = 4, BATCH = 2 };
    int side = strcmp(arch, "dense") == 0 ? 32 : 8, n = side == 32 ? 2 : N;
    float *x = malloc((size_t)N * side * side * sizeof *x);
    uint8_t *tg = malloc((size_t)N * side * side);
    learnable_set(n, side, side, x, tg);
    ck_assert_int_eq(simd_force(path), 0);
    omp_set_num_threads(threads);
    network *net;
    char err[256] = "";
    ck_assert_msg(nn_create(arch, side, side, K, BATCH, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 9);
    nn_optim_config cfg = {OPT_SGD, 0.01f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0};
    int order[N] = {1, 3, 0, 2}, done;
    if (n == 2) order[0] = 1, order[1] = 0;
    few_steps r = {0};
    for (int epoch = 0; epoch < 2; epoch++) {
        r.loss[epoch] = nn_train_epoch(net, x, tg, order, NULL, n, BATCH, &cfg, 2L * n / BATCH,
                                       NULL, NULL, NULL, &done, err, sizeof err);
        ck_assert_msg(isfinite(r.loss[epoch]) && done == n, "%s: %s", arch, err);
    }
    nn_forward(net, x, BATCH);
    r.n_params = nn_param_count(net);
    r.n_probs = (size_t)BATCH * side * side * K;
    r.weights = malloc(r.n_params * sizeof(float));
    r.probs = malloc(r.n_probs * sizeof(float));
    memcpy(r.weights, nn_params(net), r.n_params * sizeof(float));
    memcpy(r.probs, nn_output(net), r.n_probs * sizeof(float));
    nn_free(net);
    free(x);
    free(tg);
    return r;
}

static void free_few_steps(few_steps *r) {
    free(r->weights);
    free(r->probs);
}

/* Largest |a - b| over n floats, relative to the largest |b| (at least 1e-30). */
static double relative_gap(const float *a, const float *b, size_t n) {
    double gap = 0, scale = 1e-30;
    for (size_t j = 0; j < n; j++) {
        gap = fmax(gap, fabs((double)a[j] - b[j]));
        scale = fmax(scale, fabs((double)b[j]));
    }
    return gap / scale;
}

/* The portable kernels train every built-in network, not only under
 * emulation (make test-noavx2 leaves test_nn out): bit for bit the same for
 * any thread count, and the same network as the AVX2 path to float rounding.
 * Not to the bit: the AVX2 convolutions and products fuse each multiply-add
 * (FMA) and sum in another order, while the scalar twins round every
 * product; only the softmax and cross-entropy promise the same bits on both
 * paths (simd/softmax.h). Measured: losses and weights agree to about 1e-7
 * (relative), probabilities to 1e-6 or better; the bounds below (1e-5 and
 * 1e-4) leave a margin of 60 or more. SGD keeps the rounding differences as
 * small as they start (Adam's m / sqrt(v) can blow one up on a gradient that
 * is zero but for rounding). */
START_TEST(test_scalar_path_trains_like_avx2) {
    const char *archs[] = {"default", "skip", "pixel", "dense"};
    simd_path previous = simd_active();
    int threads = omp_get_max_threads();
    int avx2 = !skip_without_avx2("test_scalar_path_trains_like_avx2 (comparison with AVX2)");
    for (int a = 0; a < 4; a++) {
        few_steps s1 = train_few_steps(archs[a], SIMD_SCALAR, 1);
        few_steps s2 = train_few_steps(archs[a], SIMD_SCALAR, 2);
        ck_assert_uint_eq(s1.n_params, s2.n_params);
        ck_assert_msg(memcmp(s1.weights, s2.weights, s1.n_params * sizeof(float)) == 0,
                      "%s, scalar path: 1 and 2 threads differ", archs[a]);
        if (avx2) {
            few_steps v = train_few_steps(archs[a], SIMD_AVX2, 1);
            ck_assert_uint_eq(v.n_params, s1.n_params);
            for (int e = 0; e < 2; e++)
                ck_assert_msg(fabs(s1.loss[e] - v.loss[e]) <= 1e-5 * v.loss[e],
                              "%s epoch %d: loss %.9g scalar, %.9g AVX2", archs[a], e + 1,
                              s1.loss[e], v.loss[e]);
            double w = relative_gap(s1.weights, v.weights, v.n_params);
            double q = relative_gap(s1.probs, v.probs, v.n_probs);
            ck_assert_msg(w < 1e-4, "%s: weights differ by %.3g of the largest", archs[a], w);
            ck_assert_msg(q < 1e-4, "%s: probabilities differ by %.3g", archs[a], q);
            free_few_steps(&v);
        }
        free_few_steps(&s1);
        free_few_steps(&s2);
    }
    simd_force(previous);
    omp_set_num_threads(threads);
}
END_TEST

START_TEST(test_divergence_stops_with_the_last_good_weights) {
    enum { N = 4, H = 8, W = 8 };
    float x[N * H * W];
    uint8_t tg[N * H * W];
    learnable_set(N, H, W, x, tg);
    x[5] = NAN; /* one bad input poisons the gradients of the first batch (a ReLU stops it
                   before the loss) */
    network *net;
    char err[256];
    ck_assert(nn_create("default", H, W, 4, N, &net, err, sizeof err) == 0);
    nn_init_weights(net, 1);
    float *before = malloc(nn_param_count(net) * sizeof(float));
    memcpy(before, nn_params(net), nn_param_count(net) * sizeof(float));
    nn_optim_config cfg = {OPT_SGD, 0.1f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_CONSTANT, 0};
    int order[N] = {0, 1, 2, 3}, done = -1;
    double loss = nn_train_epoch(net, x, tg, order, NULL, N, N, &cfg, 10, NULL, NULL, NULL, &done,
                                 err, sizeof err);
    ck_assert(isnan(loss));
    ck_assert_int_eq(done, 0);
    ck_assert_ptr_nonnull(strstr(err, "diverged"));
    ck_assert_msg(strstr(err, "a gradient is no longer finite"), "%s", err);
    ck_assert(memcmp(before, nn_params(net), nn_param_count(net) * sizeof(float)) == 0);
    /* a NaN logit reaches the loss through the softmax and the logarithm */
    x[5] = 0.5f;
    const nn_layer *last = &net->layers[net->n_layers - 2];
    net->params[last->b_offset] = NAN;
    loss = nn_train_epoch(net, x, tg, order, NULL, N, N, &cfg, 10, NULL, NULL, NULL, &done, err,
                          sizeof err);
    ck_assert(isnan(loss));
    ck_assert_msg(strstr(err, "the loss is nan") || strstr(err, "the loss is -nan"), "%s", err);
    free(before);
    nn_free(net);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nn_train");
    TCase *tc = tcase_create("nn_train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_small_network_learns);
    tcase_add_test(tc, test_thread_count_does_not_change_weights);
    tcase_add_test(tc, test_flips_train_like_flipped_copies);
    tcase_add_test(tc, test_flips_are_drawn_from_seed_and_epoch);
    tcase_add_test(tc, test_scalar_path_trains_like_avx2);
    tcase_add_test(tc, test_divergence_stops_with_the_last_good_weights);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
