/* The class-rebalanced loss: the weights worked out by hand, the weighted
 * kernels against double maths and finite differences, their AVX2 build
 * against the portable one bit for bit, weights of one against no weights
 * bit for bit, and a small network's weighted gradient against finite
 * differences of a double-precision reference. */
#include <math.h>

#include "nn.h"
/* the layers' parameter offsets, the gradients and the class weights a network
 * holds: the finite-difference checks of the loss read and perturb them */
#include "nn_layer.h"
#include "simd/simd.h"
#include "simd/softmax.h"
#include "tests/testutil.h"
#include "util.h"

static int skip_without_avx2(const char *test) {
    if (simd_avx2_supported()) return 0;
    printf("%s: skipped: this CPU has no AVX2+FMA\n", test);
    fflush(stdout);
    return 1;
}

/* ==== The weights ==== */

static void expect_weights(const uint64_t *counts, int k, double lambda, const double *want) {
    float w[NN_MAX_CLASSES];
    char err[256] = "";
    ck_assert_msg(nn_class_weights(counts, k, lambda, w, err, sizeof err) == 0, "%s", err);
    for (int c = 0; c < k; c++)
        ck_assert_msg(fabs(w[c] - want[c]) <= 1e-6 * want[c],
                      "k %d lambda %g class %d: %.9g, want %.9g", k, lambda, c, (double)w[c],
                      want[c]);
}

/* Counts (1, 3): shares (1/4, 3/4). lambda 0: 1 / (k p) = (2, 2/3), already
 * of mean 1. lambda 1/2: 1 / (p/2 + 1/4) = (8/3, 8/5), mean 28/15, so
 * (10/7, 6/7). With an absent class first, (0, 1, 3): lambda 0 gives the
 * present ones 1 / (2 p) and the absent one 0; lambda 1/2 gives
 * 1 / (p/2 + 1/6), 6 times that is (2, 8/7, 8/13), mean 68/91: (91/34,
 * 26/17, 14/17). lambda 1: all 1, exactly. */
START_TEST(test_class_weights_by_hand) {
    const uint64_t two[2] = {1, 3}, three[3] = {0, 1, 3};
    expect_weights(two, 2, 0, (const double[]){2, 2.0 / 3});
    expect_weights(two, 2, 0.5, (const double[]){10.0 / 7, 6.0 / 7});
    expect_weights(three, 3, 0, (const double[]){0, 2, 2.0 / 3});
    expect_weights(three, 3, 0.5, (const double[]){91.0 / 34, 26.0 / 17, 14.0 / 17});
    float w[NN_MAX_CLASSES];
    char err[256];
    ck_assert_int_eq(nn_class_weights(three, 3, 1, w, err, sizeof err), 0);
    for (int c = 0; c < 3; c++)
        ck_assert(w[c] == 1.0f);
    /* many classes, lopsided counts: the mean weight over the pixels is 1,
     * and rarer classes weigh more */
    uint64_t counts[32], total = 0;
    for (int c = 0; c < 32; c++)
        total += counts[c] = (uint64_t)(c * c * 1000 + (c % 3 == 0 ? 0 : 7));
    for (int l = 0; l <= 4; l++) {
        ck_assert_int_eq(nn_class_weights(counts, 32, l / 4.0, w, err, sizeof err), 0);
        double mean = 0;
        for (int c = 0; c < 32; c++)
            mean += (double)counts[c] / (double)total * w[c];
        ck_assert_msg(fabs(mean - 1) < 1e-6, "lambda %g: mean weight %.9g", l / 4.0, mean);
        for (int c = 2; c < 32; c++)
            ck_assert(w[c] <= w[c - 1]);
    }
}
END_TEST

START_TEST(test_class_weights_refuse_bad_input) {
    const uint64_t counts[3] = {5, 1, 2}, none[3] = {0, 0, 0};
    float w[NN_MAX_CLASSES];
    char err[256];
    ck_assert_int_eq(nn_class_weights(counts, 3, -0.1, w, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "outside [0, 1]"), "%s", err);
    ck_assert_int_eq(nn_class_weights(counts, 3, 1.5, w, err, sizeof err), -1);
    ck_assert_int_eq(nn_class_weights(counts, 3, NAN, w, err, sizeof err), -1);
    ck_assert_int_eq(nn_class_weights(none, 3, 0.5, w, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no pixels"), "%s", err);
    ck_assert_int_eq(nn_class_weights(counts, 0, 0.5, w, err, sizeof err), -1);
    ck_assert_int_eq(nn_class_weights(counts, NN_MAX_CLASSES + 1, 0.5, w, err, sizeof err), -1);
}
END_TEST

/* ==== The kernels ==== */

/* Logits over [-scale, scale] with a few large ones, targets, and weights
 * between 0.1 and 4 (one class 0). */
static void weighted_case(rng_state *r, size_t pixels, int k, float *z, uint8_t *t, float *w) {
    const float scale = 1.0f + (float)rng_below(r, 20);
    for (size_t e = 0; e < pixels * k; e++)
        z[e] = scale * (2.0f * rng_uniform(r) - 1.0f);
    for (size_t p = 0; p < pixels; p += 7)
        z[p * k + rng_below(r, (uint64_t)k)] = 200.0f;
    for (size_t p = 0; p < pixels; p++)
        t[p] = (uint8_t)rng_below(r, (uint64_t)k);
    for (int c = 0; c < k; c++)
        w[c] = 0.1f + 3.9f * rng_uniform(r);
    w[rng_below(r, (uint64_t)k)] = 0;
}

/* scale times the weighted cross-entropy of the logits z, in double. */
static double weighted_loss_double(const float *z, const uint8_t *t, size_t pixels, int k,
                                   const float *w, double scale, size_t bumped, double bump) {
    double loss = 0;
    for (size_t p = 0; p < pixels; p++) {
        double max = -INFINITY, sum = 0;
        for (int c = 0; c < k; c++)
            max = fmax(max, z[p * k + c]);
        for (int c = 0; c < k; c++)
            sum += exp(z[p * k + c] + (p * k + c == bumped ? bump : 0) - max);
        double zt = z[p * k + t[p]] + (p * k + t[p] == bumped ? bump : 0);
        loss += w[t[p]] * -(zt - max - log(sum));
    }
    return loss * scale;
}

/* The portable build: the loss against double maths, the gradient against
 * central differences of that loss. */
START_TEST(test_weighted_kernels_match_double) {
    rng_state r;
    rng_seed(&r, 41);
    static const int ks[] = {2, 3, 4, 5, 16, 32, 64};
    for (int i = 0; i < 7; i++) {
        const int k = ks[i];
        const size_t pixels = 1 + rng_below(&r, 600);
        const size_t n = pixels * k;
        float *z = malloc(n * sizeof *z), *q = malloc(n * sizeof *q), *dz = malloc(n * sizeof *dz);
        uint8_t *t = malloc(pixels);
        float w[NN_MAX_CLASSES];
        weighted_case(&r, pixels, k, z, t, w);
        /* keep the logits small enough that no probability rounds to 0 */
        for (size_t e = 0; e < n; e++)
            z[e] = fminf(z[e], 10.0f);
        softmax_pixels_scalar(z, q, pixels, k);
        const float scale = 1.0f / (float)pixels;
        xent_grad_pixels_scalar(q, t, pixels, k, scale, w, dz);
        const double loss = xent_pixels_scalar(q, t, pixels, k, w);
        const double want = weighted_loss_double(z, t, pixels, k, w, 1, n, 0);
        ck_assert_msg(fabs(loss - want) <= 1e-5 * want + 1e-6, "k %d: loss %.9g, want %.9g", k,
                      loss, want);
        /* 40 logits, the target's among them */
        for (int j = 0; j < 40; j++) {
            size_t p = rng_below(&r, pixels), e = p * k + (j % 2 ? t[p] : rng_below(&r, k));
            const double h = 1e-3;
            double up = weighted_loss_double(z, t, pixels, k, w, scale, e, h),
                   down = weighted_loss_double(z, t, pixels, k, w, scale, e, -h);
            double fd = (up - down) / (2 * h);
            ck_assert_msg(fabs(fd - dz[e]) <= 1e-4 * fabs(fd) + 1e-6 * scale,
                          "k %d pixel %zu class %zu: gradient %.9g, finite differences %.9g", k, p,
                          e % k, (double)dz[e], fd);
        }
        free(z), free(q), free(dz), free(t);
    }
}
END_TEST

/* The AVX2 build of the same source gives the same bits, weighted as
 * unweighted, NaN logits included. */
START_TEST(test_weighted_avx2_matches_scalar) {
    if (skip_without_avx2("test_weighted_avx2_matches_scalar")) return;
    rng_state r;
    rng_seed(&r, 42);
    for (int i = 0; i < 40; i++) {
        const int k = i % 4 == 0 ? 32 : i % 10 == 9 ? 64 : 2 + (int)rng_below(&r, 8);
        const size_t pixels = 1 + rng_below(&r, 1100), n = pixels * k;
        float *z = malloc(n * sizeof *z), *q = malloc(n * sizeof *q), *d1 = malloc(n * sizeof *d1),
              *d2 = malloc(n * sizeof *d2);
        uint8_t *t = malloc(pixels);
        float w[NN_MAX_CLASSES];
        weighted_case(&r, pixels, k, z, t, w);
        if (i % 8 == 0) z[n / 2] = NAN;
        softmax_pixels_scalar(z, q, pixels, k);
        const double l1 = xent_pixels_scalar(q, t, pixels, k, w),
                     l2 = AVX2_FN(xent_pixels)(q, t, pixels, k, w);
        ck_assert_msg(memcmp(&l1, &l2, sizeof l1) == 0, "k %d: loss %.17g against %.17g", k, l1,
                      l2);
        xent_grad_pixels_scalar(q, t, pixels, k, 0.001f, w, d1);
        AVX2_FN(xent_grad_pixels)(q, t, pixels, k, 0.001f, w, d2);
        ck_assert_msg(memcmp(d1, d2, n * sizeof(float)) == 0, "gradient, k %d, %zu pixels", k,
                      pixels);
        free(z), free(q), free(d1), free(d2), free(t);
    }
}
END_TEST

/* Weights of one give the unweighted bits (the product of two floats is
 * exact in double, and 1 * scale is scale). */
START_TEST(test_weights_of_one_are_unweighted) {
    rng_state r;
    rng_seed(&r, 43);
    const int k = 32;
    const size_t pixels = 333, n = pixels * k;
    float *z = malloc(n * sizeof *z), *q = malloc(n * sizeof *q), *d1 = malloc(n * sizeof *d1),
          *d2 = malloc(n * sizeof *d2);
    uint8_t *t = malloc(pixels);
    float w[NN_MAX_CLASSES];
    weighted_case(&r, pixels, k, z, t, w);
    for (int c = 0; c < k; c++)
        w[c] = 1;
    softmax_pixels(z, q, pixels, k);
    const double l1 = xent_pixels(q, t, pixels, k, NULL), l2 = xent_pixels(q, t, pixels, k, w);
    ck_assert(memcmp(&l1, &l2, sizeof l1) == 0);
    xent_grad_pixels(q, t, pixels, k, 0.01f, NULL, d1);
    xent_grad_pixels(q, t, pixels, k, 0.01f, w, d2);
    ck_assert(memcmp(d1, d2, n * sizeof(float)) == 0);
    free(z), free(q), free(d1), free(d2), free(t);
}
END_TEST

/* ==== Through a network ==== */

/* "pixel:H relu pixel:k softmax" on (B, h, w) images, in double:
 * scale times the weighted cross-entropy. */
enum { NET_H = 5, NET_W = 3, NET_K = 6, NET_B = 2, HIDDEN = 7 };
static const char *const net_spec = "pixel:7 relu pixel:k softmax";

static double reference_loss(const network *net, const double *p, const float *x, const uint8_t *t,
                             const float *w) {
    const double *w1 = p + net->layers[0].w_offset, *b1 = p + net->layers[0].b_offset;
    const double *w2 = p + net->layers[2].w_offset, *b2 = p + net->layers[2].b_offset;
    const int pixels = NET_B * NET_H * NET_W;
    double loss = 0;
    for (int px = 0; px < pixels; px++) {
        double hidden[HIDDEN], z[NET_K], max = -INFINITY, sum = 0;
        for (int j = 0; j < HIDDEN; j++)
            hidden[j] = fmax(0, x[px] * w1[j] + b1[j]);
        for (int c = 0; c < NET_K; c++) {
            z[c] = b2[c];
            for (int j = 0; j < HIDDEN; j++)
                z[c] += hidden[j] * w2[j * NET_K + c];
            max = fmax(max, z[c]);
        }
        for (int c = 0; c < NET_K; c++)
            sum += exp(z[c] - max);
        loss += w[t[px]] * -(z[t[px]] - max - log(sum));
    }
    return loss / pixels;
}

/* The network's weighted loss and gradient against the reference and its
 * finite differences, once per SIMD path (_i); weights from the batch's own
 * counts (lambda 1/2). */
START_TEST(test_weighted_network_gradient_matches_finite_differences) {
    simd_path previous = simd_active();
    if (_i == SIMD_AVX2 && skip_without_avx2("weighted network gradient (AVX2 path)")) return;
    ck_assert_int_eq(simd_force((simd_path)_i), 0);
    network *net;
    char err[256];
    ck_assert_msg(nn_create(net_spec, NET_H, NET_W, NET_K, NET_B, &net, err, sizeof err) == 0, "%s",
                  err);
    nn_init_weights(net, 5);
    rng_state r;
    rng_seed(&r, 44);
    for (size_t j = 0; j < net->n_params; j++)
        net->params[j] += 0.1f * rng_normal(&r);
    enum { N = NET_B * NET_H * NET_W };
    float x[N], w[NN_MAX_CLASSES];
    uint8_t t[N];
    uint64_t counts[NET_K] = {0};
    for (int j = 0; j < N; j++) {
        x[j] = rng_normal(&r);
        t[j] = (uint8_t)(j % 3 ? rng_below(&r, NET_K) : 1); /* class 1 common */
        counts[t[j]]++;
    }
    ck_assert_int_eq(nn_class_weights(counts, NET_K, 0.5, w, err, sizeof err), 0);
    nn_set_class_weights(net, w);
    nn_forward(net, x, NET_B);
    double loss = nn_backward(net, t, NET_B);
    double *p = malloc(net->n_params * sizeof *p);
    for (size_t j = 0; j < net->n_params; j++)
        p[j] = net->params[j];
    double want = reference_loss(net, p, x, t, w);
    ck_assert_msg(fabs(loss - want) < 1e-5 * want, "loss %.9g, reference %.9g", loss, want);
    double worst = 0;
    size_t worst_j = 0;
    for (size_t j = 0; j < net->n_params; j++) {
        double keep = p[j], h = 1e-6;
        p[j] = keep + h;
        double up = reference_loss(net, p, x, t, w);
        p[j] = keep - h;
        double down = reference_loss(net, p, x, t, w);
        p[j] = keep;
        double fd = (up - down) / (2 * h), diff = fabs(fd - net->grads[j]) / (1e-3 + fabs(fd));
        if (diff > worst) worst = diff, worst_j = j;
    }
    ck_assert_msg(worst < 2e-3, "%s path: parameter %zu gradient off by %g (relative)",
                  simd_path_name((simd_path)_i), worst_j, worst);
    free(p);
    nn_free(net);
    simd_force(previous);
}
END_TEST

/* Two steps from the same weights; returns the weights after. */
static float *train_two_steps(const float *weights, size_t *n_params) {
    enum { N = 4, H = 8, W = 8, K = 5 };
    float x[N * H * W];
    uint8_t t[N * H * W];
    rng_state r;
    rng_seed(&r, 45);
    for (int j = 0; j < N * H * W; j++) {
        x[j] = rng_normal(&r);
        t[j] = (uint8_t)rng_below(&r, K);
    }
    network *net;
    char err[256];
    ck_assert_msg(nn_create("default", H, W, K, 2, &net, err, sizeof err) == 0, "%s", err);
    nn_init_weights(net, 9);
    if (weights) {
        float other[NN_MAX_CLASSES] = {3, 0.5f, 2, 1, 0.25f};
        nn_set_class_weights(net, other); /* replaced: the last call counts */
        nn_set_class_weights(net, weights);
    }
    nn_optim_config cfg = {OPT_ADAM, 0.01f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_CONSTANT, 0};
    int order[N] = {2, 0, 3, 1}, done;
    double loss = nn_train_epoch(net, x, t, order, NULL, N, 2, &cfg, 2, NULL, NULL, NULL, &done,
                                 err, sizeof err);
    ck_assert_msg(isfinite(loss) && done == N, "%s", err);
    float *out = malloc(net->n_params * sizeof(float));
    memcpy(out, net->params, net->n_params * sizeof(float));
    *n_params = net->n_params;
    nn_free(net);
    return out;
}

/* A network without weights, with weights of one, and with weights set then
 * cleared all train the same bits; other weights train other weights. */
START_TEST(test_network_weights_set_and_cleared) {
    const float ones[NN_MAX_CLASSES] = {1, 1, 1, 1, 1}, rare[NN_MAX_CLASSES] = {1, 1, 1, 1, 4};
    size_t n0, n1, n2;
    float *plain = train_two_steps(NULL, &n0), *one = train_two_steps(ones, &n1);
    ck_assert(n0 == n1 && memcmp(plain, one, n0 * sizeof(float)) == 0);
    float *weighted = train_two_steps(rare, &n2);
    ck_assert(memcmp(plain, weighted, n0 * sizeof(float)) != 0);
    free(weighted);
    network *net;
    char err[256];
    ck_assert(nn_create("pixel:k softmax", 2, 2, 5, 1, &net, err, sizeof err) == 0);
    ck_assert_int_eq(net->weighted, 0);
    nn_set_class_weights(net, rare);
    ck_assert_int_eq(net->weighted, 1);
    ck_assert(net->class_weights[4] == 4.0f && net->class_weights[5] == 0.0f);
    nn_set_class_weights(net, NULL);
    ck_assert_int_eq(net->weighted, 0);
    nn_free(net);
    free(plain);
    free(one);
}
END_TEST

int main(void) {
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_class_weights_by_hand);
    tcase_add_test(tc, test_class_weights_refuse_bad_input);
    tcase_add_test(tc, test_weighted_kernels_match_double);
    tcase_add_test(tc, test_weighted_avx2_matches_scalar);
    tcase_add_test(tc, test_weights_of_one_are_unweighted);
    tcase_add_loop_test(tc, test_weighted_network_gradient_matches_finite_differences, SIMD_SCALAR,
                        SIMD_N_PATHS);
    tcase_add_test(tc, test_network_weights_set_and_cleared);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
