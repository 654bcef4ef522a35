/* lab.c against scikit-image: rgb2lab and lab2rgb's own numbers for over a
 * thousand colours each way (tests/lab_reference.h, written by
 * tests/make_lab_reference.py), the 8-bit path against plain double maths on
 * a grid of the RGB cube and to float rounding at the sRGB threshold, round
 * trips both ways, and lab2xyz's negative Z. */
#include <math.h>
#include <omp.h>

#include "lab.h"
#include "tests/lab_reference.h"
#include "tests/testutil.h"
#include "util.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* How closely lab.c must agree with scikit-image: L*a*b* units one way, rgb
 * in [0, 1] the other. Storing float costs at most 4e-6 (half an ulp at 100). */
#define SKIMAGE_TOL 1e-4

/* Every 3rd level of each channel: 86^3 colours, 0 and 255 among them. */
#define GRID_STEP 3

/* Prints the largest |got - want| over n values and where, OK or NOT OK
 * against tol, and fails on NOT OK. */
static void check_max_diff(const char *what, const float *got, const double *want, size_t n,
                           double tol) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (d > worst || isnan(d)) worst = d, at = i;
    }
    int ok = worst <= tol;
    printf("%s: %zu values, max |diff| %.3g at [%zu] %s\n", what, n, worst, at,
           ok ? "OK" : "NOT OK");
    fflush(stdout);
    ck_assert_msg(ok, "%s: value %zu is %.9g, want %.9g (tolerance %g)", what, at, got[at],
                  want[at], tol);
}

static void check_corners_first(const float (*rgb)[3], const uint8_t (*rgb8)[3]) {
    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 3; c++) {
            int bit = (i >> (2 - c)) & 1;
            if (rgb) ck_assert_float_eq(rgb[i][c], (float)bit);
            if (rgb8) ck_assert_uint_eq(rgb8[i][c], 255u * bit);
        }
}

static uint8_t *grid_colours(size_t *n) {
    int levels = 255 / GRID_STEP + 1;
    *n = (size_t)levels * levels * levels;
    uint8_t *rgb = malloc(3 * *n);
    ck_assert_ptr_nonnull(rgb);
    size_t i = 0;
    for (int r = 0; r < 256; r += GRID_STEP)
        for (int g = 0; g < 256; g += GRID_STEP)
            for (int b = 0; b < 256; b += GRID_STEP) {
                rgb[i++] = (uint8_t)r;
                rgb[i++] = (uint8_t)g;
                rgb[i++] = (uint8_t)b;
            }
    return rgb;
}

// rgb in [0, 1] -> L*a*b*: skimage's formulas, in double with libm's pow and cbrt
static void plain_lab(const double rgb[3], double lab[3]) {
    static const double m[3][3] = {
        {0.412453, 0.357580, 0.180423},
        {0.212671, 0.715160, 0.072169},
        {0.019334, 0.119193, 0.950227},
    };
    static const double white[3] = {0.95047, 1.0, 1.08883};
    double lin[3], f[3];
    for (int c = 0; c < 3; c++)
        lin[c] = rgb[c] > 0.04045 ? pow((rgb[c] + 0.055) / 1.055, 2.4) : rgb[c] / 12.92;
    for (int i = 0; i < 3; i++) {
        double t = (m[i][0] * lin[0] + m[i][1] * lin[1] + m[i][2] * lin[2]) / white[i];
        f[i] = t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0;
    }
    lab[0] = 116 * f[1] - 16;
    lab[1] = 500 * (f[0] - f[1]);
    lab[2] = 200 * (f[1] - f[2]);
}

/* ==== scikit-image's numbers ==== */

START_TEST(test_rgb_to_lab_matches_skimage) {
    size_t n = COUNT(lab_ref_rgb);
    ck_assert_uint_ge(n, 1008);
    check_corners_first(lab_ref_rgb, NULL);
    float *lab = malloc(3 * n * sizeof *lab);
    ck_assert_ptr_nonnull(lab);
    for (size_t i = 0; i < n; i++)
        lab_from_rgb(lab_ref_rgb[i], lab + 3 * i);
    check_max_diff("lab_from_rgb vs skimage " LAB_REF_SKIMAGE_VERSION " rgb2lab", lab,
                   &lab_ref_rgb_lab[0][0], 3 * n, SKIMAGE_TOL);
    free(lab);
}
END_TEST

START_TEST(test_rgb8_to_lab_matches_skimage) {
    size_t n = COUNT(lab_ref_rgb8);
    ck_assert_uint_ge(n, 1008);
    check_corners_first(NULL, lab_ref_rgb8);
    float *lab = malloc(3 * n * sizeof *lab);
    ck_assert_ptr_nonnull(lab);
    lab_from_rgb8(&lab_ref_rgb8[0][0], n, lab);
    check_max_diff("lab_from_rgb8 vs skimage rgb2lab (uint8)", lab, &lab_ref_rgb8_lab[0][0], 3 * n,
                   SKIMAGE_TOL);
    free(lab);
}
END_TEST

/* The Lab table must reach lab2xyz's clamp of Z and xyz2rgb's clipping often
 * enough to test them: counted here, not taken from the generator's word. */
static void check_lab_table_reaches_every_branch(void) {
    size_t n = COUNT(lab_ref_lab), negative_z = 0, clipped = 0;
    for (size_t i = 0; i < n; i++) {
        double fy = (lab_ref_lab[i][0] + 16.0) / 116.0;
        negative_z += fy - lab_ref_lab[i][2] / 200.0 < 0;
        int edge = 0;
        for (int c = 0; c < 3; c++)
            edge |= lab_ref_lab_rgb[i][c] == 0.0 || lab_ref_lab_rgb[i][c] == 1.0;
        clipped += edge;
    }
    printf("Lab table: %zu values, %zu with Z < 0, %zu with a channel on 0 or 1\n", n, negative_z,
           clipped);
    ck_assert_uint_ge(n, 1008);
    ck_assert_uint_ge(negative_z, 100);
    ck_assert_uint_ge(clipped, 500);
}

START_TEST(test_lab_to_rgb_matches_skimage) {
    check_lab_table_reaches_every_branch();
    size_t n = COUNT(lab_ref_lab);
    float *rgb = malloc(3 * n * sizeof *rgb);
    ck_assert_ptr_nonnull(rgb);
    for (size_t i = 0; i < n; i++)
        rgb_from_lab(lab_ref_lab[i], rgb + 3 * i);
    check_max_diff("rgb_from_lab vs skimage lab2rgb", rgb, &lab_ref_lab_rgb[0][0], 3 * n,
                   SKIMAGE_TOL);
    // the Lab of the 8 corners come back as the corners
    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_float_eq_tol(rgb[3 * i + c], (float)((i >> (2 - c)) & 1), SKIMAGE_TOL);
    free(rgb);
}
END_TEST

/* rgb8_from_lab rounds as numpy's rint would round skimage's lab2rgb * 255,
 * wherever that is not within a hair of a tie. */
START_TEST(test_rgb8_from_lab_rounds_skimage_result) {
    size_t n = COUNT(lab_ref_lab), compared = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t got[3];
        rgb8_from_lab(lab_ref_lab[i], got);
        for (int c = 0; c < 3; c++) {
            double scaled = lab_ref_lab_rgb[i][c] * 255;
            if (fabs(scaled - floor(scaled) - 0.5) < 1e-3) continue;
            compared++;
            ck_assert_msg(got[c] == nearbyint(scaled), "Lab %zu channel %d: %u, skimage %.6f", i, c,
                          got[c], scaled);
        }
    }
    ck_assert_uint_ge(compared, 3 * n - 10);
}
END_TEST

START_TEST(test_lightness_of_gray_matches_skimage) {
    size_t n = COUNT(lab_ref_gray);
    float *L = malloc(n * sizeof *L);
    ck_assert_ptr_nonnull(L);
    for (size_t i = 0; i < n; i++)
        L[i] = lab_lightness_of_gray(lab_ref_gray[i]);
    check_max_diff("lab_lightness_of_gray vs skimage rgb2lab L", L, lab_ref_gray_L, n, SKIMAGE_TOL);
    free(L);
}
END_TEST

/* ==== Properties that need no reference ==== */

/* lab2xyz takes a negative Z as 0, so past the b* where Z reaches 0 a larger
 * b* changes nothing. */
START_TEST(test_negative_z_taken_as_zero) {
    rng_state rng;
    rng_seed(&rng, 5);
    for (int i = 0; i < 10000; i++) {
        float L = 100 * rng_uniform(&rng), a = 256 * rng_uniform(&rng) - 128;
        float b_zero = 200 * (L + 16) / 116;
        float beyond[3] = {L, a, b_zero + 0.01f + 50 * rng_uniform(&rng)};
        float further[3] = {L, a, beyond[2] + 100 * rng_uniform(&rng)};
        float rgb_beyond[3], rgb_further[3];
        rgb_from_lab(beyond, rgb_beyond);
        rgb_from_lab(further, rgb_further);
        ck_assert_mem_eq(rgb_beyond, rgb_further, sizeof rgb_beyond);
        for (int c = 0; c < 3; c++)
            ck_assert(rgb_beyond[c] >= 0 && rgb_beyond[c] <= 1);
    }
}
END_TEST

/* At the sRGB linearisation threshold (c > 0.04045: the power law; below it,
 * c / 12.92) the two branches differ by 2.3e-9 in linear light, 2.1e-6 in
 * L*, and by 6.3e-5 in L* at 0.0405: under the 1e-4 the comparisons with
 * scikit-image allow, so a threshold moved a little, or a branch taken on
 * the wrong side of it, shows only at a tighter tolerance. Dark grays, whose
 * L* is linear in Y (so L* < 4, where a float's step is 2.4e-7), every 1e-7
 * from 0.0400 to 0.0410, and the floats either side of 0.04045, against
 * plain double maths within float rounding. */
START_TEST(test_linearisation_threshold_to_float_rounding) {
    enum { n = 10000 + 3 };
    float *lab = malloc(3 * n * sizeof *lab);
    double *want = malloc(3 * n * sizeof *want);
    ck_assert_ptr_nonnull(lab);
    ck_assert_ptr_nonnull(want);
    float at = 0.04045f;
    const float around[3] = {nextafterf(at, 0), at, nextafterf(at, 1)};
    for (int i = 0; i < n; i++) {
        float c = i < 3 ? around[i] : 0.0400f + (float)(i - 3) * 1e-7f;
        float rgb[3] = {c, c, c};
        double rgb_d[3] = {c, c, c};
        lab_from_rgb(rgb, lab + 3 * i);
        plain_lab(rgb_d, want + 3 * i);
        ck_assert_float_eq(lab_lightness_of_gray(c), lab[3 * i]);
    }
    check_max_diff("lab_from_rgb of grays around the sRGB threshold 0.04045", lab, want, 3 * n,
                   2.5e-7);
    free(want);
    free(lab);
}
END_TEST

START_TEST(test_rgb8_grid_matches_plain_maths) {
    size_t n;
    uint8_t *rgb = grid_colours(&n);
    float *lab = malloc(3 * n * sizeof *lab);
    double *want = malloc(3 * n * sizeof *want);
    ck_assert_ptr_nonnull(lab);
    ck_assert_ptr_nonnull(want);
    lab_from_rgb8(rgb, n, lab);
    for (size_t i = 0; i < n; i++) {
        double c[3] = {rgb[3 * i] / 255.0, rgb[3 * i + 1] / 255.0, rgb[3 * i + 2] / 255.0};
        plain_lab(c, want + 3 * i);
    }
    // float storage alone costs up to 3.8e-6 near L = 100
    check_max_diff("lab_from_rgb8 vs plain double maths, grid", lab, want, 3 * n, 1e-5);
    free(want);
    free(lab);
    free(rgb);
}
END_TEST

START_TEST(test_round_trip_float) {
    enum { n = 100000 };
    float *rgb = malloc(3 * n * sizeof *rgb), *back = malloc(3 * n * sizeof *back);
    double *want = malloc(3 * n * sizeof *want);
    ck_assert_ptr_nonnull(rgb);
    ck_assert_ptr_nonnull(back);
    ck_assert_ptr_nonnull(want);
    rng_state rng;
    rng_seed(&rng, 11);
    for (size_t i = 0; i < 3 * n; i++)
        rgb[i] = i < 3 * COUNT(lab_ref_rgb) ? (&lab_ref_rgb[0][0])[i] : rng_uniform(&rng);
    for (size_t i = 0; i < n; i++) {
        float lab[3];
        lab_from_rgb(rgb + 3 * i, lab);
        rgb_from_lab(lab, back + 3 * i);
    }
    for (size_t i = 0; i < 3 * n; i++)
        want[i] = rgb[i];
    check_max_diff("rgb -> lab -> rgb, [0, 1]", back, want, 3 * n, SKIMAGE_TOL);
    free(want);
    free(back);
    free(rgb);
}
END_TEST

START_TEST(test_round_trip_rgb8) {
    size_t n_grid;
    uint8_t *grid = grid_colours(&n_grid);
    size_t n = n_grid + 100000;
    uint8_t *rgb = malloc(3 * n);
    float *lab = malloc(3 * n * sizeof *lab);
    ck_assert_ptr_nonnull(rgb);
    ck_assert_ptr_nonnull(lab);
    memcpy(rgb, grid, 3 * n_grid);
    rng_state rng;
    rng_seed(&rng, 13);
    for (size_t i = 3 * n_grid; i < 3 * n; i++)
        rgb[i] = (uint8_t)rng_below(&rng, 256);
    lab_from_rgb8(rgb, n, lab);
    for (size_t i = 0; i < n; i++) {
        uint8_t back[3];
        rgb8_from_lab(lab + 3 * i, back);
        ck_assert_msg(memcmp(back, rgb + 3 * i, 3) == 0, "(%u,%u,%u) came back as (%u,%u,%u)",
                      rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], back[0], back[1], back[2]);
    }
    printf("rgb8 -> lab -> rgb8: %zu colours, all exact\n", n);
    free(lab);
    free(rgb);
    free(grid);
}
END_TEST

START_TEST(test_rgb8_same_bits_any_thread_count) {
    enum { n = 50001 };
    uint8_t *rgb = malloc(3 * n);
    float *one = malloc(3 * n * sizeof *one), *many = malloc(3 * n * sizeof *many);
    ck_assert_ptr_nonnull(rgb);
    ck_assert_ptr_nonnull(one);
    ck_assert_ptr_nonnull(many);
    rng_state rng;
    rng_seed(&rng, 17);
    for (size_t i = 0; i < 3 * n; i++)
        rgb[i] = (uint8_t)rng_below(&rng, 256);
    omp_set_num_threads(1);
    lab_from_rgb8(rgb, n, one);
    for (int threads = 2; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        lab_from_rgb8(rgb, n, many);
        ck_assert_mem_eq(one, many, 3 * n * sizeof *one);
    }
    lab_from_rgb8(rgb, 0, many); // nothing to do, nothing touched
    ck_assert_mem_eq(one, many, 3 * n * sizeof *one);
    free(many);
    free(one);
    free(rgb);
}
END_TEST

int main(void) {
    Suite *s = suite_create("lab");
    TCase *tc = tcase_create("lab");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rgb_to_lab_matches_skimage);
    tcase_add_test(tc, test_rgb8_to_lab_matches_skimage);
    tcase_add_test(tc, test_lab_to_rgb_matches_skimage);
    tcase_add_test(tc, test_rgb8_from_lab_rounds_skimage_result);
    tcase_add_test(tc, test_lightness_of_gray_matches_skimage);
    tcase_add_test(tc, test_negative_z_taken_as_zero);
    tcase_add_test(tc, test_rgb8_grid_matches_plain_maths);
    tcase_add_test(tc, test_linearisation_threshold_to_float_rounding);
    tcase_add_test(tc, test_round_trip_float);
    tcase_add_test(tc, test_round_trip_rgb8);
    tcase_add_test(tc, test_rgb8_same_bits_any_thread_count);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
