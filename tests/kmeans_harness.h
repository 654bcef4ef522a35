/* The k-means checks that hold in both spaces, written once over the space:
 * test_kmeans.c runs them on RGB, test_kmeans_ab.c on a*b*, each on pixels
 * of its own making. kmeans_fit shares its driver between the spaces
 * (kmeans_driver.h), so what one space must do the other must too:
 * bit-identity across thread counts and SIMD paths, restarts that keep the
 * lowest inertia, one colour in every centre. What differs stays in each
 * file: the reference Lloyd loops (kmeans_lloyd on pixels, kmeans_lloyd_ab on
 * weighted points), the sort orders, the kernels' own checks. */
#ifndef COLORIZE_TESTS_KMEANS_HARNESS_H
#define COLORIZE_TESTS_KMEANS_HARNESS_H

#include <math.h>
#include <omp.h>

#include "kmeans.h"
#include "lab.h"
#include "simd/simd.h"
#include "tests/testutil.h"

static uint8_t clamp_byte(float v) {
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrintf(v));
}

static int same_result(const kmeans_result *a, const kmeans_result *b) {
    return a->k == b->k && a->iterations == b->iterations && a->n_points == b->n_points &&
           memcmp(a->centres, b->centres, sizeof a->centres) == 0 &&
           memcmp(&a->inertia, &b->inertia, sizeof a->inertia) == 0;
}

static const char *space_name(kmeans_space space) {
    return space == KMEANS_AB ? "a*b*" : "RGB";
}

// kmeans_fit of opt in space, which must succeed
static void fit_in(kmeans_space space, const uint8_t *rgb, size_t n, kmeans_options *opt,
                   kmeans_result *res) {
    char err[256] = "";
    opt->space = space;
    int rc = kmeans_fit(rgb, n, opt, res, err, sizeof err);
    ck_assert_msg(rc == 0, "kmeans_fit (%s) failed: %s", space_name(space), err);
}

/* Says so when the AVX2 checks cannot run (make test-noavx2 looks for the line). */
static int skip_without_avx2(const char *test) {
    if (simd_avx2_supported()) return 0;
    printf("%s: skipped: this CPU has no AVX2+FMA\n", test);
    fflush(stdout);
    return 1;
}

// x on the 2^-24 grid, as kmeans_fit and kmeans_lloyd_ab round coordinates
static float on_grid(float x) {
    return (float)((double)llrint((double)x * 0x1p24) / 0x1p24);
}

// lab (n,3) of rgb (n,3), each a* and b* on the grid
static float *grid_lab(const uint8_t *rgb, size_t n) {
    float *lab = malloc(3 * n * sizeof *lab);
    lab_from_rgb8(rgb, n, lab);
    for (size_t i = 0; i < n; i++)
        lab[3 * i + 1] = on_grid(lab[3 * i + 1]), lab[3 * i + 2] = on_grid(lab[3 * i + 2]);
    return lab;
}

// labels (n) of the pixels rgb (n,3) by palette, quantised in space
static void quantise_in(kmeans_space space, const uint8_t *rgb, size_t n,
                        const kmeans_result *palette, uint8_t *labels) {
    if (space == KMEANS_RGB) {
        kmeans_quantise(rgb, n, palette, labels);
        return;
    }
    float *lab = malloc(3 * n * sizeof *lab);
    lab_from_rgb8(rgb, n, lab);
    kmeans_quantise_ab(lab, n, palette, labels);
    free(lab);
}

/* kmeans_fit on rgb (n,3) for each case (k[q], sample[q], restarts[q]): every
 * SIMD path with 1 to 3 threads gives the scalar path's result on one thread,
 * bit for bit, and so do the quantised labels. */
static void check_threads_and_simd_bit_identical(kmeans_space space, const uint8_t *rgb, size_t n,
                                                 int n_cases, const int *k, const double *sample,
                                                 const int *restarts) {
    uint8_t *base_labels = malloc(n), *labels = malloc(n);
    skip_without_avx2("test_threads_and_simd_bit_identical (AVX2 path)");
    for (int q = 0; q < n_cases; q++) {
        kmeans_options opt;
        kmeans_default_options(&opt);
        opt.k = k[q];
        opt.sample = sample[q];
        opt.seed = 99;
        opt.restarts = restarts[q];
        kmeans_result base, res;
        simd_force(SIMD_SCALAR);
        omp_set_num_threads(1);
        fit_in(space, rgb, n, &opt, &base);
        quantise_in(space, rgb, n, &base, base_labels);
        for (int path = 0; path < SIMD_N_PATHS; path++)
            for (int threads = 1; threads <= 3; threads++) {
                if (simd_force((simd_path)path) != 0) continue; /* not in this build or CPU */
                omp_set_num_threads(threads);
                fit_in(space, rgb, n, &opt, &res);
                ck_assert_msg(same_result(&base, &res),
                              "%s, k %d sample %g: %s with %d threads differs from scalar, "
                              "1 thread",
                              space_name(space), opt.k, opt.sample, simd_path_name((simd_path)path),
                              threads);
                quantise_in(space, rgb, n, &res, labels);
                ck_assert_int_eq(memcmp(labels, base_labels, n), 0);
            }
    }
    simd_force(SIMD_SCALAR);
    free(base_labels);
    free(labels);
}

/* 1000 pixels of one colour, k = 2 and 3: every centre is that colour (in
 * a*b*, its a*b* on the grid), with no inertia. */
static void check_one_colour(kmeans_space space) {
    const size_t n = 1000;
    const uint8_t colour[3] = {77, 88, 99};
    uint8_t *rgb = malloc(3 * n);
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, colour, 3);
    float *lab = grid_lab(rgb, 1), want[3] = {77, 88, 99};
    if (space == KMEANS_AB) want[0] = lab[1], want[1] = lab[2], want[2] = 0.0f;
    for (int k = 2; k <= 3; k++) {
        kmeans_options opt;
        kmeans_default_options(&opt);
        opt.k = k;
        kmeans_result res;
        fit_in(space, rgb, n, &opt, &res);
        for (int j = 0; j < k; j++)
            ck_assert_msg(res.centres[j][0] == want[0] && res.centres[j][1] == want[1] &&
                              res.centres[j][2] == want[2],
                          "%s, k %d: centre %d is (%g, %g, %g)", space_name(space), k, j,
                          res.centres[j][0], res.centres[j][1], res.centres[j][2]);
        ck_assert(res.inertia == 0.0);
        ck_assert_int_ge(res.iterations, 1);
        ck_assert_uint_eq(res.n_points, n);
    }
    free(rgb);
    free(lab);
}

/* Four restarts, the first of which is the single run, end no higher than
 * one, and repeat themselves bit for bit. */
static void check_restarts_keep_lowest(kmeans_space space, const uint8_t *rgb, size_t n) {
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 8;
    kmeans_result one, four, again;
    fit_in(space, rgb, n, &opt, &one);
    opt.restarts = 4;
    fit_in(space, rgb, n, &opt, &four);
    ck_assert(four.inertia <= one.inertia);
    fit_in(space, rgb, n, &opt, &again);
    ck_assert_msg(same_result(&four, &again), "%s: restarts = 4 is not reproducible",
                  space_name(space));
}

#endif
