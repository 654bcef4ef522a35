/* The Lab mode's colouring: annealed-mean decoding by hand, painting, the
 * per-lightness baseline, the scores, and the resampling predict uses. */
#include <math.h>

#include "chroma.h"
#include "lab.h"
#include "predict.h"
#include "tests/testutil.h"
#include "util.h"

static const float centres3[3][3] = {{10, 0, 0}, {0, 20, 0}, {-30, -30, 0}};

/* ==== Decoding ==== */

START_TEST(test_decode_by_hand) {
    const float q[3] = {0.5f, 0.3f, 0.2f};
    float ab[2];
    /* T = 1: the mean of the centres under q */
    chroma_decode(q, 1, 3, centres3, 1.0f, ab);
    ck_assert_float_eq_tol(ab[0], 0.5f * 10 + 0.2f * -30, 1e-5f);
    ck_assert_float_eq_tol(ab[1], 0.3f * 20 + 0.2f * -30, 1e-5f);
    /* T = 0.5: q squared, renormalised */
    double w[3] = {0.25, 0.09, 0.04}, sum = 0.38;
    chroma_decode(q, 1, 3, centres3, 0.5f, ab);
    ck_assert_float_eq_tol(ab[0], (w[0] * 10 + w[2] * -30) / sum, 1e-5);
    ck_assert_float_eq_tol(ab[1], (w[1] * 20 + w[2] * -30) / sum, 1e-5);
    /* T = 0: exactly the most likely centre */
    chroma_decode(q, 1, 3, centres3, 0.0f, ab);
    ck_assert(ab[0] == 10 && ab[1] == 0);
    /* a tiny T comes out as the argmax too, without overflow */
    chroma_decode(q, 1, 3, centres3, 1e-6f, ab);
    ck_assert_float_eq_tol(ab[0], 10, 1e-4);
    ck_assert_float_eq_tol(ab[1], 0, 1e-4);
    /* a huge T is the plain average of the centres a pixel has some probability on */
    chroma_decode(q, 1, 3, centres3, 1e6f, ab);
    ck_assert_float_eq_tol(ab[0], -20.0f / 3, 1e-3);
    ck_assert_float_eq_tol(ab[1], -10.0f / 3, 1e-3);
}
END_TEST

START_TEST(test_decode_ties_zeros_and_many_pixels) {
    /* a tie goes to the first class; a zero probability adds nothing */
    const float q[2][3] = {{0.4f, 0.4f, 0.2f}, {0.0f, 1.0f, 0.0f}};
    float ab[4];
    chroma_decode(&q[0][0], 2, 3, centres3, 0.0f, ab);
    ck_assert(ab[0] == 10 && ab[1] == 0);
    ck_assert(ab[2] == 0 && ab[3] == 20);
    chroma_decode(&q[0][0], 2, 3, centres3, 0.38f, ab);
    ck_assert_float_eq_tol(ab[2], 0, 1e-6);
    ck_assert_float_eq_tol(ab[3], 20, 1e-5);
    /* pixel by pixel, the same as one at a time (the parallel loop owns each pixel) */
    enum { N = 1000, K = 3 };
    float *prob = malloc(sizeof(float) * N * K), *all = malloc(sizeof(float) * 2 * N);
    rng_state rng;
    rng_seed(&rng, 5);
    for (int p = 0; p < N; p++) {
        float s = 0;
        for (int c = 0; c < K; c++)
            s += prob[p * K + c] = rng_uniform(&rng) + 1e-3f;
        for (int c = 0; c < K; c++)
            prob[p * K + c] /= s;
    }
    chroma_decode(prob, N, K, centres3, 0.38f, all);
    for (int p = 0; p < N; p += 97) {
        float one[2];
        chroma_decode(prob + p * K, 1, K, centres3, 0.38f, one);
        ck_assert(one[0] == all[2 * p] && one[1] == all[2 * p + 1]);
    }
    free(prob);
    free(all);
}
END_TEST

/* ==== Painting ==== */

START_TEST(test_paint_is_lab_to_rgb) {
    float L[3] = {0, 53.2f, 100}, ab[6] = {0, 0, 40, -20, 0, 0};
    uint8_t rgb[9], want[3];
    chroma_paint(L, ab, 3, rgb);
    ck_assert(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
    float lab[3] = {53.2f, 40, -20};
    rgb8_from_lab(lab, want);
    ck_assert(memcmp(rgb + 3, want, 3) == 0);
    ck_assert(rgb[3] > rgb[4]); /* a* > 0 is red, b* < 0 blue */
    ck_assert(rgb[6] == 255 && rgb[7] == 255 && rgb[8] == 255);
    /* a gray input with no chroma comes back as its own gray (to a byte) */
    for (int v = 0; v < 256; v += 5) {
        float Lg = lab_lightness_of_gray(v / 255.0f), zero[2] = {0, 0};
        uint8_t out[3];
        chroma_paint(&Lg, zero, 1, out);
        for (int c = 0; c < 3; c++)
            ck_assert_int_le(abs(out[c] - v), 1);
    }
}
END_TEST

/* ==== The per-lightness baseline ==== */

START_TEST(test_bins) {
    ck_assert_int_eq(chroma_bin(-1), 0);
    ck_assert_int_eq(chroma_bin(0), 0);
    ck_assert_int_eq(chroma_bin(4.999f), 0);
    ck_assert_int_eq(chroma_bin(5), 1);
    ck_assert_int_eq(chroma_bin(52.5f), 10);
    ck_assert_int_eq(chroma_bin(99.9f), 19);
    ck_assert_int_eq(chroma_bin(100), 19);
    ck_assert_int_eq(chroma_bin(130), 19);
}
END_TEST

START_TEST(test_lightness_fit_by_hand) {
    /* bin 2: a*b* (10, 0), (20, 4), (0, -1) with classes 1, 1, 0; bin 7: (-6, 6) class 2 */
    const uint8_t bins[4] = {2, 2, 7, 2}, classes[4] = {1, 1, 2, 0};
    const float lab[12] = {12, 10, 0, 13, 20, 4, 37, -6, 6, 11, 0, -1};
    chroma_lightness_sums sums;
    memset(&sums, 0, sizeof sums);
    chroma_lightness_add(&sums, bins, lab, classes, 2); /* in two chunks */
    chroma_lightness_add(&sums, bins + 2, lab + 6, classes + 2, 2);
    chroma_by_lightness m;
    chroma_lightness_fit(&sums, 3, &m);
    ck_assert_float_eq_tol(m.ab[2][0], 10, 1e-6);
    ck_assert_float_eq_tol(m.ab[2][1], 1, 1e-6);
    ck_assert_int_eq(m.class_of[2], 1);
    ck_assert(m.ab[7][0] == -6 && m.ab[7][1] == 6);
    ck_assert_int_eq(m.class_of[7], 2);
    ck_assert(m.ab[0][0] == 0 && m.ab[0][1] == 0 && m.class_of[0] == 0); /* empty bin */
    float L[2] = {12.5f, 36}, ab[4];
    chroma_by_lightness_ab(&m, L, 2, ab);
    ck_assert(ab[0] == m.ab[2][0] && ab[1] == m.ab[2][1] && ab[2] == -6 && ab[3] == 6);
}
END_TEST

/* ==== Scores ==== */

START_TEST(test_tally_by_hand) {
    /* two pixels: a*b* errors 5 (3-4-5) and 0; chroma 5 and 0; RGB off by 3 in one channel */
    const float ab[4] = {3, 4, 0, 0}, lab[6] = {50, 0, 0, 50, 0, 0};
    const uint8_t rgb[6] = {10, 10, 10, 20, 20, 20}, orig[6] = {13, 10, 10, 20, 20, 20};
    chroma_tally t = {0};
    chroma_tally_add(&t, ab, rgb, lab, orig, 1);
    chroma_tally_add(&t, ab + 2, rgb + 3, lab + 3, orig + 3, 1);
    chroma_score s = chroma_tally_score(&t);
    ck_assert_double_eq_tol(s.ab_error, 2.5, 1e-12);
    ck_assert_double_eq_tol(s.chroma, 2.5, 1e-12);
    /* MSE over 2 pixels x 3 channels = 9 / 6 */
    ck_assert_double_eq_tol(s.psnr, 10 * log10(255.0 * 255.0 / 1.5), 1e-9);
    chroma_tally exact = {0};
    chroma_tally_add(&exact, ab, orig, lab, orig, 1);
    ck_assert(isinf(chroma_tally_score(&exact).psnr));
    chroma_tally empty = {0};
    ck_assert(isnan(chroma_tally_score(&empty).ab_error));
}
END_TEST

/* ==== Resampling ==== */

START_TEST(test_resize_area_by_hand) {
    /* 1 x 3 -> 1 x 2: each output covers 1.5 inputs */
    const float row[3] = {1, 2, 4};
    float out[2];
    resize_area(row, 1, 3, out, 1, 2);
    ck_assert_float_eq_tol(out[0], (1 + 0.5f * 2) / 1.5f, 1e-6);
    ck_assert_float_eq_tol(out[1], (0.5f * 2 + 4) / 1.5f, 1e-6);
    /* 4 x 4 -> 2 x 2: means of 2 x 2 blocks */
    float img[16], small[4];
    for (int i = 0; i < 16; i++)
        img[i] = (float)i;
    resize_area(img, 4, 4, small, 2, 2);
    ck_assert_float_eq_tol(small[0], (0 + 1 + 4 + 5) / 4.0f, 1e-6);
    ck_assert_float_eq_tol(small[3], (10 + 11 + 14 + 15) / 4.0f, 1e-6);
    /* the mean is kept, at any size, up or down */
    enum { H = 37, W = 23 };
    float big[H * W], other[11 * 50], copy[H * W];
    double mean = 0;
    rng_state rng;
    rng_seed(&rng, 9);
    for (int i = 0; i < H * W; i++)
        mean += big[i] = rng_uniform(&rng);
    resize_area(big, H, W, other, 11, 50);
    double m2 = 0;
    for (int i = 0; i < 11 * 50; i++)
        m2 += other[i];
    ck_assert_double_eq_tol(m2 / (11 * 50), mean / (H * W), 1e-5);
    /* the same size is a copy */
    resize_area(big, H, W, copy, H, W);
    for (int i = 0; i < H * W; i++)
        ck_assert_float_eq_tol(copy[i], big[i], 1e-6);
}
END_TEST

START_TEST(test_resize_bilinear_by_hand) {
    /* 1 x 2 -> 1 x 4, two channels: source positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) */
    const float src[4] = {0, 10, 8, 30};
    float out[8];
    resize_bilinear(src, 1, 2, 2, out, 1, 4);
    const float want0[4] = {0, 2, 6, 8}, want1[4] = {10, 15, 25, 30};
    for (int x = 0; x < 4; x++) {
        ck_assert_float_eq_tol(out[2 * x], want0[x], 1e-6);
        ck_assert_float_eq_tol(out[2 * x + 1], want1[x], 1e-6);
    }
    /* a constant stays constant; the same size is a copy */
    float c[6 * 5], big[13 * 17];
    for (int i = 0; i < 30; i++)
        c[i] = 3.5f;
    resize_bilinear(c, 6, 5, 1, big, 13, 17);
    for (int i = 0; i < 13 * 17; i++)
        ck_assert_float_eq_tol(big[i], 3.5f, 1e-6);
    for (int i = 0; i < 30; i++)
        c[i] = (float)i;
    float same[30];
    resize_bilinear(c, 6, 5, 1, same, 6, 5);
    for (int i = 0; i < 30; i++)
        ck_assert_float_eq_tol(same[i], c[i], 1e-5);
}
END_TEST

int main(void) {
    Suite *s = suite_create("chroma");
    TCase *decode = tcase_create("decode");
    tcase_add_test(decode, test_decode_by_hand);
    tcase_add_test(decode, test_decode_ties_zeros_and_many_pixels);
    tcase_add_test(decode, test_paint_is_lab_to_rgb);
    suite_add_tcase(s, decode);

    TCase *baseline = tcase_create("baseline");
    tcase_add_test(baseline, test_bins);
    tcase_add_test(baseline, test_lightness_fit_by_hand);
    tcase_add_test(baseline, test_tally_by_hand);
    suite_add_tcase(s, baseline);

    TCase *resize = tcase_create("resize");
    tcase_add_test(resize, test_resize_area_by_hand);
    tcase_add_test(resize, test_resize_bilinear_by_hand);
    suite_add_tcase(s, resize);
    return tu_run_suite(s);
}
