/* k-means: planted clusters, a plain reference Lloyd loop, bit-identity across
 * thread counts and SIMD paths, degenerate inputs, option checks, quantisation. */
#include <math.h>
#include <omp.h>

#include "kmeans.h"
#include "simd/kmeans.h"
#include "simd/simd.h"
#include "tests/kmeans_harness.h"
#include "tests/testutil.h"
#include "util.h"

// rgb (n,3): blobs around the given centres (shade along the gray axis + noise),
// and a fraction `noise` of uniform pixels
static uint8_t *realistic_pixels(size_t n, uint64_t seed, float noise) {
    static const float centre[5][3] = {
        {50, 51, 39}, {110, 110, 84}, {157, 157, 137}, {207, 213, 212}, {120, 60, 40}};
    uint8_t *rgb = malloc(3 * n);
    rng_state rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        if (rng_uniform(&rng) < noise) {
            for (int d = 0; d < 3; d++)
                rgb[3 * i + d] = (uint8_t)rng_below(&rng, 256);
            continue;
        }
        const float *c = centre[rng_below(&rng, 5)];
        float shade = 20.0f * rng_normal(&rng);
        for (int d = 0; d < 3; d++)
            rgb[3 * i + d] = clamp_byte(c[d] + shade + 7.0f * rng_normal(&rng));
    }
    return rgb;
}

static double luminance(const float *c) {
    return 0.2125 * c[0] + 0.7154 * c[1] + 0.0721 * c[2];
}

static void fit_ok(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res) {
    kmeans_options rgb_opt = *opt;
    fit_in(KMEANS_RGB, rgb, n, &rgb_opt, res);
}

/* ==== A plain Lloyd loop over every pixel: the definition kmeans_lloyd must match. ==== */

static int ref_nearest(const uint8_t *p, const float (*c)[3], int k) {
    int best = 0;
    float best_d = 0.0f;
    for (int j = 0; j < k; j++) {
        float dr = (float)p[0] - c[j][0], dg = (float)p[1] - c[j][1], db = (float)p[2] - c[j][2];
        float d = (dr * dr + dg * dg) + db * db;
        if (j == 0 || d < best_d) best_d = d, best = j;
    }
    return best;
}

// returns the iterations; centres (k,3) updated in place; labels (n) at the final centres
static int ref_lloyd(const uint8_t *rgb, size_t n, int k, float (*centres)[3], int max_iterations,
                     double tolerance, uint8_t *labels, double *inertia) {
    int it = 0;
    while (it < max_iterations) {
        it++;
        uint64_t count[KMEANS_MAX_K] = {0}, sum[KMEANS_MAX_K][3] = {{0}};
        for (size_t i = 0; i < n; i++) {
            int j = ref_nearest(rgb + 3 * i, (const float(*)[3])centres, k);
            count[j]++;
            for (int d = 0; d < 3; d++)
                sum[j][d] += rgb[3 * i + d];
        }
        double largest = 0.0;
        for (int j = 0; j < k; j++) {
            ck_assert_msg(count[j] > 0,
                          "reference: cluster %d empty (the test data should avoid it)", j);
            double moved = 0.0;
            for (int d = 0; d < 3; d++) {
                float mean = (float)((double)sum[j][d] / (double)count[j]);
                moved += ((double)mean - centres[j][d]) * ((double)mean - centres[j][d]);
                centres[j][d] = mean;
            }
            if (sqrt(moved) > largest) largest = sqrt(moved);
        }
        if (largest < tolerance || largest == 0.0) break;
    }
    *inertia = 0.0;
    for (size_t i = 0; i < n; i++) {
        labels[i] = (uint8_t)ref_nearest(rgb + 3 * i, (const float(*)[3])centres, k);
        for (int d = 0; d < 3; d++) {
            double e = rgb[3 * i + d] - (double)centres[labels[i]][d];
            *inertia += e * e;
        }
    }
    return it;
}

// kmeans_lloyd from the k centres init against ref_lloyd: centres, iterations, inertia, labels
static void check_lloyd_from(const uint8_t *rgb, size_t n, int k, const float (*init)[3],
                             int max_iterations, double tolerance) {
    float ref[KMEANS_MAX_K][3];
    memcpy(ref, init, (size_t)k * sizeof ref[0]);
    uint8_t *ref_labels = malloc(n), *labels = malloc(n);
    double ref_inertia;
    int ref_it = ref_lloyd(rgb, n, k, ref, max_iterations, tolerance, ref_labels, &ref_inertia);

    kmeans_result res;
    char err[256] = "";
    ck_assert_msg(kmeans_lloyd(rgb, n, k, &init[0][0], max_iterations, tolerance, &res, NULL, err,
                               sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(res.iterations, ref_it);
    for (int j = 0; j < k; j++)
        for (int d = 0; d < 3; d++)
            ck_assert_msg(memcmp(&res.centres[j][d], &ref[j][d], sizeof(float)) == 0,
                          "k %d centre %d[%d]: %.9g, reference %.9g", k, j, d, res.centres[j][d],
                          ref[j][d]);
    ck_assert_msg(fabs(res.inertia - ref_inertia) <= 1e-9 * ref_inertia, "inertia %.12g vs %.12g",
                  res.inertia, ref_inertia);
    kmeans_quantise(rgb, n, &res, labels);
    ck_assert_int_eq(memcmp(labels, ref_labels, n), 0);
    free(ref_labels);
    free(labels);
}

static void check_against_reference(const uint8_t *rgb, size_t n, int k, int max_iterations,
                                    double tolerance) {
    float init[KMEANS_MAX_K][3];
    for (int j = 0; j < k; j++) // spread-out pixels as initial centres
        for (int d = 0; d < 3; d++)
            init[j][d] = rgb[3 * ((size_t)j * (n / k)) + d];
    check_lloyd_from(rgb, n, k, (const float(*)[3])init, max_iterations, tolerance);
}

START_TEST(test_matches_reference_lloyd) {
    const size_t n = 40000;
    uint8_t *rgb = realistic_pixels(n, 11, 0.1f);
    check_against_reference(rgb, n, 4, 300, 1e-4);
    check_against_reference(rgb, n, 7, 300, 0.0); // to no change at all
    check_against_reference(rgb, n, 5, 3, 1e-4);  // stopped early
    check_against_reference(rgb, n, 24, 300, 1e-4);
    free(rgb);
}
END_TEST

/* ==== Planted clusters ==== */

START_TEST(test_planted_clusters) {
    const float planted[4][3] = {{200, 30, 40}, {30, 40, 50}, {220, 220, 230}, {40, 200, 60}};
    const size_t per = 5000, n = 4 * per;
    uint8_t *rgb = malloc(3 * n);
    double mean[4][3] = {{0}};
    rng_state rng;
    rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++) {
            rgb[3 * i + d] = (uint8_t)(planted[i / per][d] + (float)rng_below(&rng, 13) - 6.0f);
            mean[i / per][d] += rgb[3 * i + d] / (double)per;
        }
    kmeans_options opt;
    kmeans_default_options(&opt);
    kmeans_result res;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_int_eq(res.k, 4);
    ck_assert_uint_eq(res.n_points, n);
    ck_assert_int_ge(res.iterations, 1);
    ck_assert(res.seconds > 0);
    // order of the planted means by luminance: 1, 0, 3, 2
    const int order[4] = {1, 0, 3, 2};
    for (int j = 0; j < 4; j++)
        for (int d = 0; d < 3; d++)
            ck_assert_msg(fabs(res.centres[j][d] - mean[order[j]][d]) < 1e-3,
                          "centre %d[%d] = %g, planted mean %g", j, d, res.centres[j][d],
                          mean[order[j]][d]);
    double inertia = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++)
            inertia += (rgb[3 * i + d] - mean[i / per][d]) * (rgb[3 * i + d] - mean[i / per][d]);
    ck_assert_msg(fabs(res.inertia - inertia) < 1e-6 * inertia, "inertia %g, planted %g",
                  res.inertia, inertia);
    free(rgb);
}
END_TEST

START_TEST(test_sorted_by_luminance) {
    const size_t n = 30000;
    uint8_t *rgb = realistic_pixels(n, 5, 0.2f);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 12;
    kmeans_result res;
    fit_ok(rgb, n, &opt, &res);
    for (int j = 1; j < res.k; j++)
        ck_assert(luminance(res.centres[j - 1]) <= luminance(res.centres[j]));
    free(rgb);
}
END_TEST

START_TEST(test_threads_and_simd_bit_identical) {
    const size_t n = 60000;
    uint8_t *rgb = realistic_pixels(n, 21, 0.15f);
    const int ks[6] = {4, 9, 64, 4, 9, 64}, restarts[6] = {1, 1, 1, 1, 1, 1};
    const double samples[6] = {1.0, 1.0, 1.0, 0.3, 0.3, 0.3};
    check_threads_and_simd_bit_identical(KMEANS_RGB, rgb, n, 6, ks, samples, restarts);
    free(rgb);
}
END_TEST

START_TEST(test_more_centres_than_colours) {
    const uint8_t colours[3][3] = {{10, 20, 30}, {200, 100, 50}, {90, 90, 90}};
    const size_t n = 300;
    uint8_t rgb[3 * 300];
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, colours[i % 3], 3);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 5;
    kmeans_result res;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_int_eq(res.k, 5);
    ck_assert(res.inertia == 0.0);
    int seen[3] = {0};
    for (int j = 0; j < 5; j++) {
        int match = -1;
        for (int c = 0; c < 3; c++)
            if (res.centres[j][0] == colours[c][0] && res.centres[j][1] == colours[c][1] &&
                res.centres[j][2] == colours[c][2])
                match = c;
        ck_assert_msg(match >= 0, "centre %d (%g, %g, %g) is not a pixel colour", j,
                      res.centres[j][0], res.centres[j][1], res.centres[j][2]);
        seen[match] = 1;
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
}
END_TEST

START_TEST(test_one_colour) {
    check_one_colour(KMEANS_RGB);
}
END_TEST

START_TEST(test_empty_cluster_reseeded) {
    // blobs on the gray axis; the third initial centre is nearest to no pixel
    const size_t per = 2000, n = 3 * per;
    const int level[3] = {10, 60, 110};
    uint8_t *rgb = malloc(3 * n);
    rng_state rng;
    rng_seed(&rng, 8);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++)
            rgb[3 * i + d] = (uint8_t)(level[i / per] + (int)rng_below(&rng, 7) - 3);
    const float init[3][3] = {{10, 10, 10}, {11, 10, 10}, {255, 255, 255}};
    kmeans_result res;
    ck_assert_int_eq(kmeans_lloyd(rgb, n, 3, &init[0][0], 300, 1e-4, &res, NULL, NULL, 0), 0);
    int found[3] = {0};
    for (int j = 0; j < 3; j++)
        for (int b = 0; b < 3; b++)
            if (fabs(res.centres[j][0] - level[b]) < 1.0 &&
                fabs(res.centres[j][1] - level[b]) < 1.0)
                found[b] = 1;
    ck_assert_msg(found[0] && found[1] && found[2], "centres (%g) (%g) (%g)", res.centres[0][0],
                  res.centres[1][0], res.centres[2][0]);
    free(rgb);
}
END_TEST

START_TEST(test_sample_fraction) {
    const size_t n = 10000;
    uint8_t *rgb = realistic_pixels(n, 4, 0.5f);
    kmeans_options opt;
    kmeans_default_options(&opt);
    kmeans_result res, again;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_uint_eq(res.n_points, n);
    opt.sample = 0.5;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_uint_eq(res.n_points, 5000);
    fit_ok(rgb, n, &opt, &again);
    ck_assert(same_result(&res, &again)); // deterministic for a seed
    opt.sample = 0.0003;                  // 3 pixels
    fit_ok(rgb, n, &opt, &res);
    ck_assert_uint_eq(res.n_points, 3);
    ck_assert(isfinite(res.inertia));

    const double bad[5] = {0.0, 1.5, -0.5, 1e-9, NAN}; // 1e-9 of 10000 pixels is none
    for (int i = 0; i < 5; i++) {
        char err[256] = "";
        opt.sample = bad[i];
        ck_assert_int_eq(kmeans_fit(rgb, n, &opt, &res, err, sizeof err), -1);
        ck_assert_msg(strlen(err) > 0, "no message for sample %g", bad[i]);
    }
    free(rgb);
}
END_TEST

START_TEST(test_k_limits) {
    const size_t n = 20000;
    uint8_t *rgb = realistic_pixels(n, 6, 0.5f);
    kmeans_options opt;
    kmeans_default_options(&opt);
    kmeans_result res;
    const int bad[4] = {1, 65, 0, -3};
    for (int i = 0; i < 4; i++) {
        char err[256] = "";
        opt.k = bad[i];
        ck_assert_int_eq(kmeans_fit(rgb, n, &opt, &res, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "k") != NULL, "message for k = %d: '%s'", bad[i], err);
    }
    opt.k = 2;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_int_eq(res.k, 2);
    opt.k = 64;
    fit_ok(rgb, n, &opt, &res);
    ck_assert_int_eq(res.k, 64);
    ck_assert(res.inertia > 0);
    free(rgb);
}
END_TEST

/* Six tight blobs and k = 6: the best clustering puts one centre on each
 * blob. From seed 14 a single k-means++ run puts two centres on the light
 * blob and one between the two dark ones, a local minimum Lloyd cannot leave
 * (2.2 times the inertia); a later restart finds the planted clustering. */
static uint8_t *six_blobs(size_t n, double mean[6][3]) {
    static const float centre[6][3] = {{40, 40, 40},  {80, 40, 40},  {200, 60, 60},
                                       {60, 200, 60}, {60, 60, 200}, {220, 220, 220}};
    uint8_t *rgb = malloc(3 * n);
    rng_state rng;
    rng_seed(&rng, 1);
    memset(mean, 0, 6 * sizeof mean[0]);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++) {
            rgb[3 * i + d] = clamp_byte(centre[i % 6][d] + 6.0f * rng_normal(&rng));
            mean[i % 6][d] += rgb[3 * i + d] / (double)(n / 6);
        }
    return rgb;
}

START_TEST(test_restarts_leave_a_local_minimum) {
    const size_t n = 6000;
    double mean[6][3];
    uint8_t *rgb = six_blobs(n, mean);
    double planted = 0.0; // of the planted labels: the best clustering is at most this
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++)
            planted += (rgb[3 * i + d] - mean[i % 6][d]) * (rgb[3 * i + d] - mean[i % 6][d]);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 6;
    opt.seed = 14;
    kmeans_result one, again, four;
    fit_ok(rgb, n, &opt, &one);
    fit_ok(rgb, n, &opt, &again);
    ck_assert_msg(same_result(&one, &again), "restarts = 1 is not reproducible");
    ck_assert_msg(one.inertia > 1.5 * planted,
                  "seed 14 no longer lands in the local minimum (inertia %.6g, planted %.6g): "
                  "choose another seed for this test",
                  one.inertia, planted);
    opt.restarts = 4;
    fit_ok(rgb, n, &opt, &four);
    ck_assert_msg(four.inertia < one.inertia, "4 restarts: inertia %.6g, one run %.6g",
                  four.inertia, one.inertia);
    ck_assert_msg(four.inertia <= planted, "4 restarts: inertia %.6g, planted clustering %.6g",
                  four.inertia, planted);
    fit_ok(rgb, n, &opt, &again);
    ck_assert_msg(same_result(&four, &again), "restarts = 4 is not reproducible");
    free(rgb);
}
END_TEST

START_TEST(test_restarts_keep_lowest) {
    const size_t n = 30000;
    uint8_t *rgb = realistic_pixels(n, 12, 0.3f);
    check_restarts_keep_lowest(KMEANS_RGB, rgb, n);
    free(rgb);
}
END_TEST

/* ==== Quantisation ==== */

START_TEST(test_quantise_ties_to_lower_class) {
    kmeans_result pal;
    memset(&pal, 0, sizeof pal);
    pal.k = 3;
    const float centres[3][3] = {{110, 100, 100}, {90, 100, 100}, {100, 110, 100}};
    memcpy(pal.centres, centres, sizeof centres);
    const size_t n = 37;
    uint8_t rgb[3 * 37], classes[37];
    for (size_t i = 0; i < n; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = 100;
    skip_without_avx2("test_quantise_ties_to_lower_class (AVX2 path)");
    for (int path = 0; path < SIMD_N_PATHS; path++) {
        if (simd_force((simd_path)path) != 0) continue;
        memset(classes, 9, n);
        kmeans_quantise(rgb, n, &pal, classes);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(classes[i], 0);
        pal.centres[0][0] = 120; // now classes 1 and 2 tie
        kmeans_quantise(rgb, n, &pal, classes);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(classes[i], 1);
        pal.centres[0][0] = 110;
    }
}
END_TEST

START_TEST(test_quantise_avx2_matches_scalar) {
    if (skip_without_avx2("test_quantise_avx2_matches_scalar")) return;
    const size_t n = 100003;
    uint8_t *rgb = malloc(3 * n), *a = malloc(n), *b = malloc(n);
    uint32_t *packed = malloc(n * sizeof *packed);
    rng_state rng;
    rng_seed(&rng, 17);
    for (size_t i = 0; i < 3 * n; i++)
        rgb[i] = (uint8_t)rng_below(&rng, 256);
    for (size_t i = 0; i < n; i++)
        packed[i] = (uint32_t)rgb[3 * i] << 16 | (uint32_t)rgb[3 * i + 1] << 8 | rgb[3 * i + 2];
    const int ks[6] = {2, 3, 4, 7, 33, 64};
    for (int q = 0; q < 6; q++) {
        kmeans_result pal;
        memset(&pal, 0, sizeof pal);
        pal.k = ks[q];
        for (int j = 0; j < pal.k; j++)
            for (int d = 0; d < 3; d++) // half-integers make exact ties; some centres repeat
                pal.centres[j][d] =
                    j % 5 == 4 ? pal.centres[j - 1][d] : (float)rng_below(&rng, 511) * 0.5f;
        simd_force(SIMD_SCALAR);
        kmeans_quantise(rgb, n, &pal, a);
        simd_force(SIMD_AVX2);
        kmeans_quantise(rgb, n, &pal, b);
        ck_assert_int_eq(memcmp(a, b, n), 0);
        for (size_t len = 0; len < 40; len++) { // short runs and tails
            kmeans_nearest_rgb_scalar(rgb + 3 * 5, len, &pal.centres[0][0], pal.k, a);
            AVX2_FN(kmeans_nearest_rgb)(rgb + 3 * 5, len, &pal.centres[0][0], pal.k, b);
            ck_assert_int_eq(memcmp(a, b, len), 0);
        }
        kmeans_nearest_scalar(packed, n, &pal.centres[0][0], pal.k, a);
        AVX2_FN(kmeans_nearest)(packed, n, &pal.centres[0][0], pal.k, b);
        ck_assert_int_eq(memcmp(a, b, n), 0);
        for (size_t i = 0; i < n; i += 997) { // and both are the nearest centre
            double best = INFINITY;
            for (int j = 0; j < pal.k; j++) {
                double e = 0.0;
                for (int d = 0; d < 3; d++)
                    e +=
                        (rgb[3 * i + d] - pal.centres[j][d]) * (rgb[3 * i + d] - pal.centres[j][d]);
                if (e < best) best = e;
            }
            double mine = 0.0;
            for (int d = 0; d < 3; d++)
                mine += (rgb[3 * i + d] - pal.centres[a[i]][d]) *
                        (rgb[3 * i + d] - pal.centres[a[i]][d]);
            ck_assert(mine == best);
        }
    }
    free(rgb);
    free(a);
    free(b);
    free(packed);
}
END_TEST

START_TEST(test_potential_avx2_matches_scalar) {
    if (skip_without_avx2("test_potential_avx2_matches_scalar")) return;
    const size_t n = 1003;
    uint32_t colours[1003], weights[1003], d2a[1003], d2b[1003];
    rng_state rng;
    rng_seed(&rng, 23);
    for (size_t i = 0; i < n; i++) {
        colours[i] = (uint32_t)rng_below(&rng, 1u << 24);
        weights[i] = (uint32_t)rng_below(&rng, 4000000000u) + 1;
        d2a[i] = d2b[i] = (uint32_t)rng_below(&rng, 200000);
    }
    for (int t = 0; t < 4; t++) {
        uint32_t c = (uint32_t)rng_below(&rng, 1u << 24);
        for (size_t len = n - 20; len <= n; len++)
            ck_assert_uint_eq(kmeans_potential_scalar(colours, weights, d2a, len, c),
                              AVX2_FN(kmeans_potential)(colours, weights, d2a, len, c));
        uint64_t a = kmeans_update_d2_scalar(colours, weights, d2a, n, c, t == 0);
        uint64_t b = AVX2_FN(kmeans_update_d2)(colours, weights, d2b, n, c, t == 0);
        ck_assert_uint_eq(a, b);
        ck_assert_int_eq(memcmp(d2a, d2b, sizeof d2a), 0);
    }
}
END_TEST

/* ==== The choice between close centres: exact ties, centres a last bit apart, ==== */

/* pixels nearly equidistant, at every position among the k centres. */

/* The brute-force reference in double, applied to the float reference's
 * labels: the label is within float rounding of the nearest distance, and
 * where float computes every candidate's distance exactly, it is the lowest
 * index among the exactly nearest. */
static void check_double_reference(const uint8_t *p, const float *centres, int k, int label) {
    double d[KMEANS_MAX_K] = {0}, dmin = INFINITY;
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        double dr = p[0] - (double)c[0], dg = p[1] - (double)c[1], db = p[2] - (double)c[2];
        d[j] = dr * dr + dg * dg + db * db;
        if (d[j] < dmin) dmin = d[j];
    }
    double tol = 1e-6 * (1.0 + dmin); // float distances: a few roundings of 2^-24 each
    int lowest = -1, float_exact = 1;
    for (int j = 0; j < k; j++) {
        if (d[j] == dmin && lowest < 0) lowest = j;
        if (d[j] > dmin + tol) continue;
        const float *c = centres + 3 * j;
        float dr = (float)p[0] - c[0], dg = (float)p[1] - c[1], db = (float)p[2] - c[2];
        float_exact &= (double)((dr * dr + dg * dg) + db * db) == d[j];
    }
    // (ck_assert only on failure: each passing one costs a message to the runner)
    if (!(d[label] <= dmin + tol))
        ck_abort_msg("pixel (%d %d %d): label %d at %.17g, nearest %.17g", p[0], p[1], p[2], label,
                     d[label], dmin);
    if (float_exact && label != lowest)
        ck_abort_msg("pixel (%d %d %d): label %d, lowest nearest %d", p[0], p[1], p[2], label,
                     lowest);
}

static void check_labels(const char *what, int k, size_t off, const uint8_t *got,
                         const uint8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            ck_abort_msg("%s, k %d, from pixel %zu: pixel %zu got %d, want %d", what, k, off, i,
                         got[i], want[i]);
}

/* Every entry point that picks the nearest centre, on every path and at every
 * lane offset (each pixel lands in each of the eight AVX2 lanes and in the
 * tails), against the documented float rule (ref_nearest), which is itself
 * checked against the double reference. */
static void check_nearest_everywhere(const uint8_t *rgb, size_t n, const float *centres, int k) {
    uint8_t *want = malloc(n), *got = malloc(n);
    uint32_t *packed = malloc(n * sizeof *packed);
    kmeans_result pal;
    memset(&pal, 0, sizeof pal);
    pal.k = k;
    memcpy(pal.centres, centres, (size_t)k * sizeof pal.centres[0]);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        want[i] = (uint8_t)ref_nearest(p, (const float(*)[3])centres, k);
        check_double_reference(p, centres, k, want[i]);
        packed[i] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    int avx2 = simd_avx2_supported(); // the caller says when it is not
    for (size_t off = 0; off < 8 && off < n; off++) {
        const uint8_t *px = rgb + 3 * off, *w = want + off;
        size_t m = n - off;
        kmeans_nearest_scalar(packed + off, m, centres, k, got);
        check_labels("kmeans_nearest_scalar", k, off, got, w, m);
        kmeans_nearest_rgb_scalar(px, m, centres, k, got);
        check_labels("kmeans_nearest_rgb_scalar", k, off, got, w, m);
        kmeans_nearest_portable(packed + off, m, centres, k, got);
        check_labels("kmeans_nearest_portable", k, off, got, w, m);
        kmeans_nearest_rgb_portable(px, m, centres, k, got);
        check_labels("kmeans_nearest_rgb_portable", k, off, got, w, m);
        if (avx2) {
            AVX2_FN(kmeans_nearest)(packed + off, m, centres, k, got);
            check_labels("kmeans_nearest_avx2", k, off, got, w, m);
            AVX2_FN(kmeans_nearest_rgb)(px, m, centres, k, got);
            check_labels("kmeans_nearest_rgb_avx2", k, off, got, w, m);
        }
        for (int path = 0; path < SIMD_N_PATHS; path++) {
            if (simd_force((simd_path)path) != 0) continue;
            kmeans_nearest(packed + off, m, centres, k, got);
            check_labels("kmeans_nearest", k, off, got, w, m);
            kmeans_nearest_rgb(px, m, centres, k, got);
            check_labels("kmeans_nearest_rgb", k, off, got, w, m);
            kmeans_quantise(px, m, &pal, got);
            check_labels("kmeans_quantise", k, off, got, w, m);
        }
    }
    free(want);
    free(got);
    free(packed);
}

// a centre at least 20 from p in every direction, on the half-integer grid
static void far_centre(rng_state *rng, const uint8_t *p, float *c) {
    double d2;
    do {
        d2 = 0.0;
        for (int d = 0; d < 3; d++) {
            c[d] = 0.5f * (float)rng_below(rng, 511);
            d2 += (c[d] - p[d]) * (c[d] - p[d]);
        }
    } while (d2 < 400.0);
}

/* Centres a and b (a < b) close to pixel p, as kind says; m, if not -1, a
 * third one. Kinds: 0 a tie across p on one axis; 1 a tie on two axes; 2 b a
 * last bit nearer than the tie; 3 a a last bit farther than the tie (b wins
 * both); 4 a tie of a, m and b on three axes. */
static void place_close(const uint8_t *p, int kind, float e, int axis, int a, int b, int m,
                        float *centres) {
    float *ca = centres + 3 * a, *cb = centres + 3 * b;
    for (int d = 0; d < 3; d++)
        ca[d] = cb[d] = p[d];
    int other = (axis + 1) % 3;
    ca[axis] = p[axis] + e;
    switch (kind) {
    case 0: cb[axis] = p[axis] - e; break;
    case 1: cb[other] = p[other] + e; break;
    case 2: cb[axis] = nextafterf(p[axis] - e, INFINITY); break;
    case 3:
        cb[axis] = p[axis] - e;
        ca[axis] = nextafterf(ca[axis], INFINITY);
        break;
    case 4: {
        cb[other] = p[other] + e;
        float *cm = centres + 3 * m;
        for (int d = 0; d < 3; d++)
            cm[d] = p[d];
        cm[(axis + 2) % 3] = p[(axis + 2) % 3] + e;
        break;
    }
    }
}

START_TEST(test_nearest_between_close_centres) {
    skip_without_avx2("test_nearest_between_close_centres (AVX2 path)");
    // Short inputs: one chunk, one thread's work. A team of threads for each of
    // the many kmeans_quantise calls would only wait for a busy machine's cores.
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    rng_state rng;
    rng_seed(&rng, 31);
    const int ks[6] = {2, 3, 8, 9, 17, 64};
    const float offsets[5] = {0.5f, 0.25f, 1.0f, 2.5f, 0.125f};
    enum { N = 40 };
    uint8_t rgb[3 * N];
    float centres[KMEANS_MAX_K * 3];
    for (int q = 0; q < 6; q++) {
        int k = ks[q];
        // where the close centres sit: first, last, neighbours, middle
        const int pairs[5][2] = {{0, 1}, {0, k - 1}, {k - 2, k - 1}, {k / 2, k - 1}, {1, k / 2}};
        for (int pr = 0; pr < 5; pr++) {
            int a = pairs[pr][0], b = pairs[pr][1];
            if (a >= b) continue;
            for (int kind = 0; kind < 5; kind++) {
                int m = (a + b) / 2;
                if (kind == 4 && (m == a || m == b)) continue;
                uint8_t p[3];
                for (int d = 0; d < 3; d++)
                    p[d] = (uint8_t)(16 + rng_below(&rng, 224));
                for (int j = 0; j < k; j++)
                    far_centre(&rng, p, centres + 3 * j);
                float e = offsets[(q + pr + kind) % 5];
                place_close(p, kind, e, (pr + kind) % 3, a, b, kind == 4 ? m : -1, centres);
                // p itself every fifth pixel, and pixels around it
                for (int i = 0; i < N; i++)
                    for (int d = 0; d < 3; d++)
                        rgb[3 * i + d] =
                            i % 5 == 0 ? p[d] : (uint8_t)(p[d] + rng_below(&rng, 5) - 2);
                int want = kind == 2 || kind == 3 ? b : a,
                    got = ref_nearest(p, (const float(*)[3])centres, k);
                ck_assert_msg(got == want, "k %d kind %d: the test's reference picks %d, not %d", k,
                              kind, got, want);
                check_nearest_everywhere(rgb, N, centres, k);
            }
        }
        // groups of centres a few last bits apart, and pixels all around them
        for (int j = 0; j < k; j++)
            for (int d = 0; d < 3; d++) {
                float *c = centres + 3 * j;
                if (j % 3 == 0) {
                    c[d] = 40.0f + 0.5f * (float)rng_below(&rng, 352);
                } else {
                    c[d] = c[d - 3 * (j % 3)];
                    for (int s = (int)rng_below(&rng, 4); s > 0; s--)
                        c[d] = nextafterf(c[d], 0);
                }
            }
        for (int t = 0; t < 8; t++) {
            const float *c = centres + 3 * (3 * (int)rng_below(&rng, (uint64_t)(k + 2) / 3) % k);
            for (int i = 0; i < N; i++)
                for (int d = 0; d < 3; d++)
                    rgb[3 * i + d] = clamp_byte(c[d] + (float)rng_below(&rng, 7) - 3.0f);
            check_nearest_everywhere(rgb, N, centres, k);
        }
    }
    omp_set_num_threads(threads);
}
END_TEST

/* Lloyd's cube filtering near exact ties: every colour of [88, 112]^3, whose
 * cubes of side 4, 8 and 16 the bisectors of centres half a unit from a
 * pixel cut through, and centres a last bit from a tie. */
START_TEST(test_lloyd_between_close_centres) {
    const int lo = 88, side = 25;
    const size_t n = (size_t)side * side * side;
    uint8_t *rgb = malloc(3 * n);
    for (size_t i = 0; i < n; i++) {
        rgb[3 * i] = (uint8_t)(lo + i / (side * side));
        rgb[3 * i + 1] = (uint8_t)(lo + i / side % side);
        rgb[3 * i + 2] = (uint8_t)(lo + i % side);
    }
    const float at[2] = {100.0f, 102.0f}; // on a cube boundary, inside a cube of side 4
    for (int v = 0; v < 2; v++) {
        float c = at[v], init[6][3];
        for (int j = 0; j < 6; j++) // an octahedron of radius 0.5 around (c, c, c)
            for (int d = 0; d < 3; d++)
                init[j][d] = d == j / 2 ? c + (j % 2 ? -0.5f : 0.5f) : c;
        init[4][2] = nextafterf(init[4][2], 0); // a last bit nearer than the others
        check_lloyd_from(rgb, n, 6, (const float(*)[3])init, 1, 0.0);
        check_lloyd_from(rgb, n, 6, (const float(*)[3])init, 300, 0.0);
        check_lloyd_from(rgb, n, 4, (const float(*)[3])init, 1, 0.0);
    }
    free(rgb);
    /* Two centres a last bit apart on the red axis. Far from them along green
     * and blue the float distances tie where the exact ones do not (centre 1
     * is nearer by less than a rounding), and the tie goes to centre 0: cube
     * filtering must not prune centre 0 on the exact distances alone. */
    const size_t m = 22 * 86 * 86;
    rgb = malloc(3 * m);
    for (size_t i = 0; i < m; i++) {
        rgb[3 * i] = (uint8_t)(90 + i / (86 * 86));
        rgb[3 * i + 1] = (uint8_t)(3 * (i / 86 % 86));
        rgb[3 * i + 2] = (uint8_t)(3 * (i % 86));
    }
    float pair[2][3] = {{100.5f, 128, 128}, {nextafterf(100.5f, 0), 128, 128}};
    check_lloyd_from(rgb, m, 2, (const float(*)[3])pair, 1, 0.0);
    check_lloyd_from(rgb, m, 2, (const float(*)[3])pair, 300, 0.0);
    free(rgb);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kmeans");
    TCase *tc = tcase_create("kmeans");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_planted_clusters);
    tcase_add_test(tc, test_matches_reference_lloyd);
    tcase_add_test(tc, test_sorted_by_luminance);
    tcase_add_test(tc, test_threads_and_simd_bit_identical);
    tcase_add_test(tc, test_more_centres_than_colours);
    tcase_add_test(tc, test_one_colour);
    tcase_add_test(tc, test_empty_cluster_reseeded);
    tcase_add_test(tc, test_sample_fraction);
    tcase_add_test(tc, test_k_limits);
    tcase_add_test(tc, test_restarts_keep_lowest);
    tcase_add_test(tc, test_restarts_leave_a_local_minimum);
    tcase_add_test(tc, test_quantise_ties_to_lower_class);
    tcase_add_test(tc, test_quantise_avx2_matches_scalar);
    tcase_add_test(tc, test_potential_avx2_matches_scalar);
    tcase_add_test(tc, test_nearest_between_close_centres);
    tcase_add_test(tc, test_lloyd_between_close_centres);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
