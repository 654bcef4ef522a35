/* Chroma k-means (KMEANS_AB): a plain reference Lloyd loop, weighted and not,
 * near exact ties and on cell edges; planted chroma clusters; the sample the
 * RGB palette takes; sorting by chroma; bit-identity across thread counts and
 * SIMD paths; quantisation and the kernels against brute force; option
 * checks. */
#include <math.h>
#include <omp.h>

#include "kmeans.h"
#include "lab.h"
#include "simd/kmeans_ab.h"
#include "simd/simd.h"
#include "tests/kmeans_harness.h"
#include "tests/testutil.h"
#include "util.h"

// sum over pixels of the squared a*b* distance to the nearest centre, in double
static double inertia_of(const float *lab, size_t n, const kmeans_result *res) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (int j = 0; j < res->k; j++) {
            double da = lab[3 * i + 1] - (double)res->centres[j][0],
                   db = lab[3 * i + 2] - (double)res->centres[j][1];
            if (da * da + db * db < best) best = da * da + db * db;
        }
        total += best;
    }
    return total;
}

/* rgb (n,3): blobs around grayish and saturated colours (shade along the gray
 * axis, noise), and a fraction `noise` of uniform pixels. */
static uint8_t *colourful_pixels(size_t n, uint64_t seed, float noise) {
    static const float centre[7][3] = {{50, 51, 39},  {110, 110, 84}, {157, 157, 137},
                                       {120, 60, 40}, {200, 40, 50},  {40, 90, 190},
                                       {60, 170, 70}};
    uint8_t *rgb = malloc(3 * n);
    rng_state rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        if (rng_uniform(&rng) < noise) {
            for (int d = 0; d < 3; d++)
                rgb[3 * i + d] = (uint8_t)rng_below(&rng, 256);
            continue;
        }
        const float *c = centre[rng_below(&rng, 7)];
        float shade = 20.0f * rng_normal(&rng);
        for (int d = 0; d < 3; d++)
            rgb[3 * i + d] = clamp_byte(c[d] + shade + 7.0f * rng_normal(&rng));
    }
    return rgb;
}

/* ==== A plain weighted Lloyd loop: the definition kmeans_lloyd_ab must match ==== */

static int ref_nearest(float a, float b, const float (*c)[2], int k) {
    int best = 0;
    float best_d = 0.0f;
    for (int j = 0; j < k; j++) {
        float da = a - c[j][0], db = b - c[j][1];
        float d = da * da + db * db;
        if (j == 0 || d < best_d) best_d = d, best = j;
    }
    return best;
}

/* ab (n,2) on the grid, w (n) or NULL; returns the iterations; centres (k,2)
 * updated in place; labels (n) at the final centres. */
static int ref_lloyd(const float *ab, const uint32_t *w, size_t n, int k, float (*centres)[2],
                     int max_iterations, double tolerance, uint8_t *labels, double *inertia) {
    int it = 0;
    while (it < max_iterations) {
        it++;
        int64_t count[KMEANS_MAX_K] = {0}, sum[KMEANS_MAX_K][2] = {{0}};
        for (size_t i = 0; i < n; i++) {
            int j = ref_nearest(ab[2 * i], ab[2 * i + 1], (const float(*)[2])centres, k);
            int64_t wi = w ? w[i] : 1;
            count[j] += wi;
            for (int d = 0; d < 2; d++)
                sum[j][d] += wi * (int64_t)((double)ab[2 * i + d] * 0x1p24);
        }
        double largest = 0.0;
        for (int j = 0; j < k; j++) {
            ck_assert_msg(count[j] > 0,
                          "reference: cluster %d empty (the test data should avoid it)", j);
            double moved = 0.0;
            for (int d = 0; d < 2; d++) {
                float mean = (float)((double)sum[j][d] / 0x1p24 / (double)count[j]);
                moved += ((double)mean - centres[j][d]) * ((double)mean - centres[j][d]);
                centres[j][d] = mean;
            }
            if (sqrt(moved) > largest) largest = sqrt(moved);
        }
        if (largest < tolerance || largest == 0.0) break;
    }
    *inertia = 0.0;
    for (size_t i = 0; i < n; i++) {
        labels[i] = (uint8_t)ref_nearest(ab[2 * i], ab[2 * i + 1], (const float(*)[2])centres, k);
        double da = ab[2 * i] - (double)centres[labels[i]][0],
               db = ab[2 * i + 1] - (double)centres[labels[i]][1];
        *inertia += (w ? w[i] : 1) * (da * da + db * db);
    }
    return it;
}

/* kmeans_lloyd_ab on raw (n,2) from init (k,2) against ref_lloyd on raw put
 * on the grid: centres bit for bit, iterations, inertia, and the labels
 * kmeans_quantise_ab gives. */
static void check_lloyd_from(const float *raw, const uint32_t *w, size_t n, int k,
                             const float (*init)[2], int max_iterations, double tolerance) {
    float *ab = malloc(2 * n * sizeof *ab), *lab = malloc(3 * n * sizeof *lab);
    uint8_t *ref_labels = malloc(n), *labels = malloc(n);
    for (size_t i = 0; i < n; i++) {
        ab[2 * i] = on_grid(raw[2 * i]), ab[2 * i + 1] = on_grid(raw[2 * i + 1]);
        lab[3 * i] = 50.0f, lab[3 * i + 1] = ab[2 * i], lab[3 * i + 2] = ab[2 * i + 1];
    }
    float ref[KMEANS_MAX_K][2];
    memcpy(ref, init, (size_t)k * sizeof ref[0]);
    double ref_inertia;
    int ref_it = ref_lloyd(ab, w, n, k, ref, max_iterations, tolerance, ref_labels, &ref_inertia);

    kmeans_result res;
    char err[256] = "";
    ck_assert_msg(kmeans_lloyd_ab(raw, w, n, k, &init[0][0], max_iterations, tolerance, &res, NULL,
                                  err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(res.iterations, ref_it);
    for (int j = 0; j < k; j++) {
        for (int d = 0; d < 2; d++)
            ck_assert_msg(memcmp(&res.centres[j][d], &ref[j][d], sizeof(float)) == 0,
                          "k %d centre %d[%d]: %.9g, reference %.9g", k, j, d, res.centres[j][d],
                          ref[j][d]);
        ck_assert(res.centres[j][2] == 0.0f);
    }
    ck_assert_msg(fabs(res.inertia - ref_inertia) <= 1e-9 * ref_inertia + 1e-9,
                  "inertia %.12g vs %.12g", res.inertia, ref_inertia);
    kmeans_quantise_ab(lab, n, &res, labels);
    ck_assert_int_eq(memcmp(labels, ref_labels, n), 0);
    free(ab);
    free(lab);
    free(ref_labels);
    free(labels);
}

// (n,2) chroma blobs: around `blobs` centres within 80 of gray, spread 6, rounded to 1/64 or not
static float *chroma_points(size_t n, uint64_t seed, int blobs) {
    float *ab = malloc(2 * n * sizeof *ab), centre[16][2];
    rng_state rng;
    rng_seed(&rng, seed);
    for (int j = 0; j < blobs; j++)
        for (int d = 0; d < 2; d++)
            centre[j][d] = 160.0f * rng_uniform(&rng) - 80.0f;
    for (size_t i = 0; i < n; i++) {
        const float *c = centre[rng_below(&rng, (uint64_t)blobs)];
        for (int d = 0; d < 2; d++) {
            float x = c[d] + 6.0f * rng_normal(&rng);
            ab[2 * i + d] = i % 3 ? x : roundf(x * 64.0f) / 64.0f;
        }
    }
    return ab;
}

static void init_from_points(const float *ab, size_t n, int k, float (*init)[2]) {
    for (int j = 0; j < k; j++) // spread-out points as initial centres
        for (int d = 0; d < 2; d++)
            init[j][d] = ab[2 * ((size_t)j * (n / k)) + d];
}

START_TEST(test_matches_reference_lloyd) {
    const size_t n = 30000;
    float *ab = chroma_points(n, 11, 9);
    uint32_t *w = malloc(n * sizeof *w);
    rng_state rng;
    rng_seed(&rng, 12);
    for (size_t i = 0; i < n; i++)
        w[i] = 1 + (uint32_t)rng_below(&rng, 50);
    const int ks[4] = {4, 7, 16, 40};
    const int max_its[4] = {300, 300, 3, 300};
    const double tols[4] = {1e-4, 0.0, 1e-4, 1e-4}; // to no change at all; stopped early
    for (int q = 0; q < 4; q++) {
        float init[KMEANS_MAX_K][2];
        init_from_points(ab, n, ks[q], init);
        check_lloyd_from(ab, NULL, n, ks[q], (const float(*)[2])init, max_its[q], tols[q]);
        check_lloyd_from(ab, w, n, ks[q], (const float(*)[2])init, max_its[q], tols[q]);
    }
    free(ab);
    free(w);
}
END_TEST

/* A weighted point is its weight's worth of copies, to the last bit: the sums
 * are exact. */
START_TEST(test_weights_are_copies) {
    const size_t n = 3000;
    float *ab = chroma_points(n, 5, 6);
    uint32_t *w = malloc(n * sizeof *w);
    rng_state rng;
    rng_seed(&rng, 6);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += w[i] = 1 + (uint32_t)rng_below(&rng, 7);
    float *copies = malloc(2 * m * sizeof *copies);
    for (size_t i = 0, c = 0; i < n; i++)
        for (uint32_t r = 0; r < w[i]; r++, c++)
            copies[2 * c] = ab[2 * i], copies[2 * c + 1] = ab[2 * i + 1];
    float init[8][2];
    init_from_points(ab, n, 8, init);
    kmeans_result weighted, copied;
    ck_assert_int_eq(kmeans_lloyd_ab(ab, w, n, 8, &init[0][0], 300, 0.0, &weighted, NULL, NULL, 0),
                     0);
    ck_assert_int_eq(
        kmeans_lloyd_ab(copies, NULL, m, 8, &init[0][0], 300, 0.0, &copied, NULL, NULL, 0), 0);
    ck_assert_uint_eq(weighted.n_points, m);
    ck_assert_msg(same_result(&weighted, &copied), "weighted: inertia %.12g, copies %.12g",
                  weighted.inertia, copied.inertia);
    free(ab);
    free(w);
    free(copies);
}
END_TEST

/* Cell filtering near exact ties: every point of a 1/64 grid around centres
 * half a unit apart (bisectors through cells of every size, and points on
 * them), one a last bit nearer; two centres a last bit apart, with points far
 * from them where float distances tie and exact ones do not; points on the
 * edges of the grid and of the task cells (multiples of 4). */
START_TEST(test_lloyd_between_close_centres) {
    const int side = 129;
    const size_t n = (size_t)side * side;
    float *ab = malloc(2 * n * sizeof *ab);
    const float at[2] = {0.0f, 4.0f}; // a cell corner of every size; a task cell's edge
    for (int v = 0; v < 2; v++) {
        float c = at[v];
        for (size_t i = 0; i < n; i++) {
            ab[2 * i] = c - 1.0f + (float)(i / side) / 64.0f;
            ab[2 * i + 1] = c - 1.0f + (float)(i % side) / 64.0f;
        }
        float init[4][2];
        for (int j = 0; j < 4; j++) // a square of radius 0.5 around (c, c)
            for (int d = 0; d < 2; d++)
                init[j][d] = d == j / 2 ? c + (j % 2 ? -0.5f : 0.5f) : c;
        init[2][1] = nextafterf(init[2][1], 0); // a last bit nearer than the others
        check_lloyd_from(ab, NULL, n, 4, (const float(*)[2])init, 1, 0.0);
        check_lloyd_from(ab, NULL, n, 4, (const float(*)[2])init, 300, 0.0);
        check_lloyd_from(ab, NULL, n, 3, (const float(*)[2])init, 1, 0.0);
    }
    // far along b* from two centres a last bit apart along a*
    for (size_t i = 0; i < n; i++) {
        ab[2 * i] = 10.0f + (float)(i / side) / 64.0f;
        ab[2 * i + 1] = -120.0f + (float)(i % side) * (240.0f / (float)side);
    }
    float pair[2][2] = {{10.75f, 0.0f}, {nextafterf(10.75f, 0), 0.0f}};
    check_lloyd_from(ab, NULL, n, 2, (const float(*)[2])pair, 1, 0.0);
    check_lloyd_from(ab, NULL, n, 2, (const float(*)[2])pair, 300, 0.0);
    // the corners of the grid, and the largest distances there are
    const float edge = nextafterf(128.0f, 0);
    for (size_t i = 0; i < n; i++) {
        ab[2 * i] = i % 2 ? edge - (float)(i % 7) : -edge + (float)(i % 5);
        ab[2 * i + 1] = i % 3 ? -edge + (float)(i % 11) : edge - (float)(i % 13);
    }
    float corners[4][2] = {{-edge, -edge}, {edge, edge}, {-edge, edge}, {edge, -edge}};
    check_lloyd_from(ab, NULL, n, 4, (const float(*)[2])corners, 300, 0.0);
    free(ab);
}
END_TEST

START_TEST(test_empty_cluster_reseeded) {
    // three blobs; the third initial centre is nearest to no point
    const size_t per = 2000, n = 3 * per;
    const float blob[3][2] = {{0, 0}, {30, 0}, {-30, 20}};
    float *ab = malloc(2 * n * sizeof *ab);
    rng_state rng;
    rng_seed(&rng, 8);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 2; d++)
            ab[2 * i + d] = blob[i / per][d] + 2.0f * rng_normal(&rng);
    const float init[3][2] = {{0, 0}, {0.5f, 0}, {100, 100}};
    kmeans_result res;
    ck_assert_int_eq(kmeans_lloyd_ab(ab, NULL, n, 3, &init[0][0], 300, 1e-4, &res, NULL, NULL, 0),
                     0);
    int found[3] = {0};
    for (int j = 0; j < 3; j++)
        for (int b = 0; b < 3; b++)
            if (fabsf(res.centres[j][0] - blob[b][0]) < 0.5f &&
                fabsf(res.centres[j][1] - blob[b][1]) < 0.5f)
                found[b] = 1;
    ck_assert_msg(found[0] && found[1] && found[2], "centres (%g %g) (%g %g) (%g %g)",
                  res.centres[0][0], res.centres[0][1], res.centres[1][0], res.centres[1][1],
                  res.centres[2][0], res.centres[2][1]);
    free(ab);
}
END_TEST

/* ==== kmeans_fit in a*b* ==== */

START_TEST(test_planted_chroma_clusters) {
    // gray, red, blue, green, yellow: far apart in a*b*; RGB noise of +-3
    const float planted[5][3] = {
        {128, 128, 128}, {200, 30, 40}, {40, 60, 190}, {40, 170, 60}, {220, 200, 40}};
    const size_t per = 4000, n = 5 * per;
    uint8_t *rgb = malloc(3 * n);
    rng_state rng;
    rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 3; d++)
            rgb[3 * i + d] = (uint8_t)(planted[i / per][d] + (float)rng_below(&rng, 7) - 3.0f);
    float *lab = grid_lab(rgb, n);
    double mean[5][2] = {{0}}, planted_inertia = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 2; d++)
            mean[i / per][d] += lab[3 * i + 1 + d] / (double)per;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 2; d++)
            planted_inertia +=
                (lab[3 * i + 1 + d] - mean[i / per][d]) * (lab[3 * i + 1 + d] - mean[i / per][d]);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 5;
    kmeans_result res;
    fit_in(KMEANS_AB, rgb, n, &opt, &res);
    ck_assert_int_eq(res.k, 5);
    ck_assert_uint_eq(res.n_points, n);
    ck_assert_int_ge(res.iterations, 1);
    ck_assert(res.seconds > 0);
    for (int j = 0; j < 5; j++) {
        int match = -1;
        for (int p = 0; p < 5; p++)
            if (fabs(res.centres[j][0] - mean[p][0]) < 1e-3 &&
                fabs(res.centres[j][1] - mean[p][1]) < 1e-3)
                match = p;
        ck_assert_msg(match >= 0, "centre %d (%g, %g) is no planted mean", j, res.centres[j][0],
                      res.centres[j][1]);
        ck_assert(res.centres[j][2] == 0.0f);
        if (j == 0) ck_assert_msg(match == 0, "the grayest centre is not the gray cluster's");
    }
    ck_assert_msg(fabs(res.inertia - planted_inertia) < 1e-6 * planted_inertia,
                  "inertia %.9g, planted %.9g", res.inertia, planted_inertia);
    free(rgb);
    free(lab);
}
END_TEST

static double chroma2(const float *c) {
    return (double)c[0] * c[0] + (double)c[1] * c[1];
}

START_TEST(test_sorted_by_chroma_and_inertia_checked) {
    const size_t n = 30000;
    uint8_t *rgb = colourful_pixels(n, 5, 0.2f);
    float *lab = grid_lab(rgb, n);
    kmeans_options opt;
    kmeans_default_options(&opt);
    const int ks[3] = {2, 12, 64};
    for (int q = 0; q < 3; q++) {
        opt.k = ks[q];
        kmeans_result res;
        fit_in(KMEANS_AB, rgb, n, &opt, &res);
        for (int j = 1; j < res.k; j++) {
            const float *p = res.centres[j - 1], *c = res.centres[j];
            int in_order =
                chroma2(p) < chroma2(c) ||
                (chroma2(p) == chroma2(c) && (p[0] < c[0] || (p[0] == c[0] && p[1] <= c[1])));
            ck_assert_msg(in_order, "k %d: centre %d (%g, %g) before centre %d (%g, %g)", res.k,
                          j - 1, p[0], p[1], j, c[0], c[1]);
        }
        double brute = inertia_of(lab, n, &res);
        ck_assert_msg(fabs(res.inertia - brute) <= 1e-9 * brute,
                      "k %d: inertia %.12g, pixels %.12g", res.k, res.inertia, brute);
    }
    free(rgb);
    free(lab);
}
END_TEST

/* More distinct colours than kmeans_ab.c converts to a*b* at a time (65,536),
 * each with its own pixel count: a colour past the first batch that took
 * another's count (an index cut to 16 bits, or one that forgets the batch's
 * start) would move the centres and the inertia away from the pixels'. */
START_TEST(test_many_colours_keep_their_counts) {
    const size_t n_colours = 100000; // colours i * 40503 mod 2^24: all distinct
    rng_state rng;
    rng_seed(&rng, 17);
    uint32_t *count = malloc(n_colours * sizeof *count);
    size_t n = 0;
    for (size_t i = 0; i < n_colours; i++)
        n += count[i] = 1 + (uint32_t)rng_below(&rng, 4);
    uint8_t *rgb = malloc(3 * n);
    for (size_t i = 0, p = 0; i < n_colours; i++) {
        uint32_t c = (uint32_t)(i * 40503u) & 0xFFFFFFu;
        for (uint32_t r = 0; r < count[i]; r++, p++)
            rgb[3 * p] = (uint8_t)(c >> 16), rgb[3 * p + 1] = (uint8_t)(c >> 8),
                    rgb[3 * p + 2] = (uint8_t)c;
    }
    float *lab = grid_lab(rgb, n);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 8;
    kmeans_profile prof;
    kmeans_result res;
    char err[256] = "";
    opt.space = KMEANS_AB;
    ck_assert_msg(kmeans_fit_profiled(rgb, n, &opt, &res, &prof, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(prof.n_colours, n_colours);
    ck_assert_uint_eq(res.n_points, n);
    double brute = inertia_of(lab, n, &res);
    ck_assert_msg(fabs(res.inertia - brute) <= 1e-9 * brute, "inertia %.12g, pixels %.12g",
                  res.inertia, brute);
    free(count);
    free(rgb);
    free(lab);
}
END_TEST

/* The a*b* palette clusters the pixels the RGB palette samples: with as many
 * centres as sampled pixels of distinct colours, each palette is those
 * pixels, in its own space. */
START_TEST(test_same_sample_as_rgb) {
    const size_t n = 64;
    uint8_t rgb[3 * 64];
    float lab[3 * 64];
    rng_state rng;
    rng_seed(&rng, 9);
    for (size_t i = 0; i < n; i++) { // colours at least 1 apart in a*b*
        double nearest;
        do {
            for (int d = 0; d < 3; d++)
                rgb[3 * i + d] = (uint8_t)rng_below(&rng, 256);
            lab_from_rgb8(rgb + 3 * i, 1, lab + 3 * i);
            nearest = INFINITY;
            for (size_t j = 0; j < i; j++) {
                double da = lab[3 * i + 1] - lab[3 * j + 1], db = lab[3 * i + 2] - lab[3 * j + 2];
                nearest = fmin(nearest, da * da + db * db);
            }
        } while (nearest < 1.0);
    }
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 32;
    opt.sample = 0.5;
    opt.seed = 4;
    kmeans_result by_rgb, by_ab;
    char err[256] = "";
    ck_assert_msg(kmeans_fit(rgb, n, &opt, &by_rgb, err, sizeof err) == 0, "%s", err);
    fit_in(KMEANS_AB, rgb, n, &opt, &by_ab);
    ck_assert_uint_eq(by_rgb.n_points, 32);
    ck_assert_uint_eq(by_ab.n_points, 32);
    ck_assert(by_rgb.inertia == 0.0 && by_ab.inertia == 0.0);
    int used[32] = {0};
    for (int j = 0; j < 32; j++) {
        uint8_t c[3];
        for (int d = 0; d < 3; d++)
            c[d] = (uint8_t)by_rgb.centres[j][d];
        float c_lab[3];
        lab_from_rgb8(c, 1, c_lab);
        int match = -1;
        for (int m = 0; m < 32; m++)
            if (!used[m] && by_ab.centres[m][0] == on_grid(c_lab[1]) &&
                by_ab.centres[m][1] == on_grid(c_lab[2]))
                match = m;
        ck_assert_msg(match >= 0, "RGB centre (%d %d %d) is not among the a*b* centres", c[0], c[1],
                      c[2]);
        used[match] = 1;
    }
}
END_TEST

START_TEST(test_one_colour) {
    check_one_colour(KMEANS_AB);
}
END_TEST

START_TEST(test_restarts_keep_lowest) {
    const size_t n = 30000;
    uint8_t *rgb = colourful_pixels(n, 12, 0.3f);
    check_restarts_keep_lowest(KMEANS_AB, rgb, n);
    free(rgb);
}
END_TEST

START_TEST(test_threads_and_simd_bit_identical) {
    const size_t n = 60000;
    uint8_t *rgb = colourful_pixels(n, 21, 0.15f);
    const int ks[3] = {4, 16, 64}, restarts[3] = {1, 2, 1};
    const double samples[3] = {1.0, 0.3, 1.0};
    check_threads_and_simd_bit_identical(KMEANS_AB, rgb, n, 3, ks, samples, restarts);
    free(rgb);
}
END_TEST

/* ==== Quantisation and the kernels ==== */

// the documented float rule on lab (n,3), centres (k,2); checked against double distances
static void brute_labels(const float *lab, size_t n, const float *centres, int k, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        float a = lab[3 * i + 1], b = lab[3 * i + 2];
        out[i] = (uint8_t)ref_nearest(a, b, (const float(*)[2])centres, k);
        double dmin = INFINITY, d[KMEANS_MAX_K];
        for (int j = 0; j < k; j++) {
            double da = a - (double)centres[2 * j], db = b - (double)centres[2 * j + 1];
            d[j] = da * da + db * db;
            if (d[j] < dmin) dmin = d[j];
        }
        if (!(d[out[i]] <= dmin + 1e-6 * (1.0 + dmin)))
            ck_abort_msg("pixel (%g, %g): label %d at %.17g, nearest %.17g", a, b, out[i],
                         d[out[i]], dmin);
    }
}

static void check_labels(const char *what, int k, size_t off, const uint8_t *got,
                         const uint8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            ck_abort_msg("%s, k %d, from pixel %zu: pixel %zu got %d, want %d", what, k, off, i,
                         got[i], want[i]);
}

START_TEST(test_quantise_matches_brute_force) {
    const size_t n = 20011;
    float *lab = malloc(3 * n * sizeof *lab), *a = malloc(n * sizeof *a),
          *b = malloc(n * sizeof *b);
    uint8_t *want = malloc(n), *got = malloc(n);
    rng_state rng;
    rng_seed(&rng, 17);
    for (size_t i = 0; i < n; i++) {
        lab[3 * i] = 100.0f * rng_uniform(&rng);
        for (int d = 1; d < 3; d++) // half-integers make exact ties
            lab[3 * i + d] = i % 2 ? 0.5f * (float)rng_below(&rng, 400) - 100.0f
                                   : 200.0f * rng_uniform(&rng) - 100.0f;
        a[i] = lab[3 * i + 1], b[i] = lab[3 * i + 2];
    }
    int avx2 = !skip_without_avx2("test_quantise_matches_brute_force (AVX2 path)");
    const int ks[6] = {2, 3, 4, 7, 33, 64};
    for (int q = 0; q < 6; q++) {
        kmeans_result pal;
        memset(&pal, 0, sizeof pal);
        pal.k = ks[q];
        float centres[KMEANS_MAX_K * 2];
        for (int j = 0; j < pal.k; j++)
            for (int d = 0; d < 2; d++) { // some centres repeat
                pal.centres[j][d] = j % 5 == 4 ? pal.centres[j - 1][d]
                                               : 0.5f * (float)rng_below(&rng, 400) - 100.0f;
                centres[2 * j + d] = pal.centres[j][d];
            }
        brute_labels(lab, n, centres, pal.k, want);
        for (int path = 0; path < SIMD_N_PATHS; path++) {
            if (simd_force((simd_path)path) != 0) continue;
            memset(got, 0xff, n);
            kmeans_quantise_ab(lab, n, &pal, got);
            check_labels("kmeans_quantise_ab", pal.k, 0, got, want, n);
        }
        for (size_t off = 0; off < 8; off++) // every lane offset, short runs and tails
            for (size_t len = 0; len < 40; len++) {
                kmeans_nearest_lab_scalar(lab + 3 * off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_lab_scalar", pal.k, off, got, want + off, len);
                kmeans_nearest_ab_scalar(a + off, b + off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_ab_scalar", pal.k, off, got, want + off, len);
                kmeans_nearest_lab_portable(lab + 3 * off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_lab_portable", pal.k, off, got, want + off, len);
                kmeans_nearest_ab_portable(a + off, b + off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_ab_portable", pal.k, off, got, want + off, len);
                if (!avx2) continue;
                AVX2_FN(kmeans_nearest_lab)(lab + 3 * off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_lab_avx2", pal.k, off, got, want + off, len);
                AVX2_FN(kmeans_nearest_ab)(a + off, b + off, len, centres, pal.k, got);
                check_labels("kmeans_nearest_ab_avx2", pal.k, off, got, want + off, len);
            }
        for (int path = 0; path < SIMD_N_PATHS; path++) {
            if (simd_force((simd_path)path) != 0) continue;
            kmeans_nearest_ab(a, b, n, centres, pal.k, got);
            check_labels("kmeans_nearest_ab", pal.k, 0, got, want, n);
        }
    }
    free(lab);
    free(a);
    free(b);
    free(want);
    free(got);
}
END_TEST

START_TEST(test_quantise_ties_to_lower_class) {
    kmeans_result pal;
    memset(&pal, 0, sizeof pal);
    pal.k = 3;
    const float centres[3][3] = {{10, 0, 0}, {-10, 0, 0}, {0, 10, 0}};
    memcpy(pal.centres, centres, sizeof centres);
    const size_t n = 37;
    float lab[3 * 37];
    uint8_t classes[37];
    for (size_t i = 0; i < n; i++)
        lab[3 * i] = 50, lab[3 * i + 1] = lab[3 * i + 2] = 0;
    skip_without_avx2("test_quantise_ties_to_lower_class (AVX2 path)");
    for (int path = 0; path < SIMD_N_PATHS; path++) {
        if (simd_force((simd_path)path) != 0) continue;
        memset(classes, 9, n);
        kmeans_quantise_ab(lab, n, &pal, classes);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(classes[i], 0);
        pal.centres[0][0] = 20; // now classes 1 and 2 tie
        kmeans_quantise_ab(lab, n, &pal, classes);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(classes[i], 1);
        pal.centres[0][0] = 10;
    }
}
END_TEST

START_TEST(test_potentials) {
    const size_t n = 1003;
    float a[1003], b[1003];
    uint32_t weights[1003], d2a[1003], d2b[1003];
    rng_state rng;
    rng_seed(&rng, 23);
    for (size_t i = 0; i < n; i++) {
        // the far corners too: distances up to 2 * 255^2, the clamp's edge
        a[i] = i % 17 ? 200.0f * rng_uniform(&rng) - 100.0f : (i % 2 ? 127.5f : -127.5f);
        b[i] = i % 17 ? 200.0f * rng_uniform(&rng) - 100.0f : (i % 4 < 2 ? 127.5f : -127.5f);
        weights[i] = (uint32_t)rng_below(&rng, 4000000000u) + 1;
        d2a[i] = d2b[i] = (uint32_t)rng_below(&rng, 1u << 30);
    }
    // the definition on one point: (3, 4) from (0, 0) is 25, 25 * 2^13 in the potential's units
    const float origin[2] = {0, 0}, one_a = 3, one_b = 4;
    uint32_t one_d2 = UINT32_MAX, one_w = 2;
    ck_assert_uint_eq(kmeans_ab_update_d2_scalar(&one_a, &one_b, &one_w, &one_d2, 1, origin, 0),
                      2u * 25 * 8192);
    ck_assert_uint_eq(one_d2, 25 * 8192);
    /* the portable kernels, then the AVX2 ones where the CPU has them */
    typedef uint64_t (*potential_fn)(const float *, const float *, const uint32_t *,
                                     const uint32_t *, size_t, const float *);
    typedef uint64_t (*update_fn)(const float *, const float *, const uint32_t *, uint32_t *,
                                  size_t, const float *, int);
    const potential_fn potential[2] = {kmeans_ab_potential_portable, AVX2_FN(kmeans_ab_potential)};
    const update_fn update[2] = {kmeans_ab_update_d2_portable, AVX2_FN(kmeans_ab_update_d2)};
    for (int path = 0; path < 2; path++) {
        if (path == 1 && skip_without_avx2("test_potentials (AVX2 path)")) return;
        for (int t = 0; t < 4; t++) {
            float c[2] = {t == 3 ? -127.5f : 200.0f * rng_uniform(&rng) - 100.0f,
                          t == 3 ? -127.5f : 200.0f * rng_uniform(&rng) - 100.0f};
            for (size_t len = n - 20; len <= n; len++)
                ck_assert_uint_eq(kmeans_ab_potential_scalar(a, b, weights, d2a, len, c),
                                  potential[path](a, b, weights, d2a, len, c));
            uint64_t x = kmeans_ab_update_d2_scalar(a, b, weights, d2a, n, c, t == 0);
            uint64_t y = update[path](a, b, weights, d2b, n, c, t == 0);
            ck_assert_uint_eq(x, y);
            ck_assert_int_eq(memcmp(d2a, d2b, sizeof d2a), 0);
        }
    }
}
END_TEST

/* ==== Options ==== */

static void expect_lloyd_error(const float *ab, const uint32_t *w, size_t n, int k, int max_it,
                               double tol, const char *word) {
    const float init[3][2] = {{0, 0}, {1, 1}, {2, 2}};
    kmeans_result res;
    char err[256] = "";
    ck_assert_int_eq(
        kmeans_lloyd_ab(ab, w, n, k, &init[0][0], max_it, tol, &res, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, word) != NULL, "message '%s' does not say '%s'", err, word);
}

START_TEST(test_option_errors) {
    kmeans_options opt;
    kmeans_default_options(&opt);
    ck_assert_int_eq(opt.space, KMEANS_RGB);
    const size_t n = 2000;
    uint8_t *rgb = colourful_pixels(n, 6, 0.5f);
    kmeans_result res;
    char err[256] = "";
    opt.space = (kmeans_space)7;
    ck_assert_int_eq(kmeans_fit(rgb, n, &opt, &res, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "space") != NULL, "message '%s'", err);
    opt.space = KMEANS_AB;
    const int bad_k[3] = {1, 65, 0};
    for (int i = 0; i < 3; i++) {
        opt.k = bad_k[i];
        ck_assert_int_eq(kmeans_fit(rgb, n, &opt, &res, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "k must") != NULL, "k = %d: '%s'", bad_k[i], err);
    }
    opt.k = 4;
    opt.sample = 1.5;
    ck_assert_int_eq(kmeans_fit(rgb, n, &opt, &res, err, sizeof err), -1);
    opt.sample = 1.0;
    ck_assert_int_eq(kmeans_fit(rgb, 0, &opt, &res, err, sizeof err), -1);

    float ab[6] = {1, 2, 3, 4, -5, 6};
    uint32_t w[3] = {1, 2, 3};
    expect_lloyd_error(ab, w, 3, 1, 300, 1e-4, "k must");
    expect_lloyd_error(ab, w, 3, 65, 300, 1e-4, "k must");
    expect_lloyd_error(ab, w, 3, 3, 0, 1e-4, "max_iterations");
    expect_lloyd_error(ab, w, 3, 3, 300, -1.0, "tolerance");
    expect_lloyd_error(ab, w, 3, 3, 300, NAN, "tolerance");
    expect_lloyd_error(ab, w, 0, 3, 300, 1e-4, "no points");
    expect_lloyd_error(NULL, w, 3, 3, 300, 1e-4, "no points");
    const float bad[3] = {128.0f, -128.0f, NAN};
    for (int i = 0; i < 3; i++) {
        ab[3] = bad[i];
        expect_lloyd_error(ab, w, 3, 3, 300, 1e-4, "b* =");
    }
    ab[3] = 4;
    ab[4] = INFINITY;
    expect_lloyd_error(ab, w, 3, 3, 300, 1e-4, "a* =");
    ab[4] = -5;
    w[1] = 0;
    expect_lloyd_error(ab, w, 3, 3, 300, 1e-4, "weight 0");
    w[0] = w[1] = w[2] = 1u << 31;
    expect_lloyd_error(ab, w, 3, 3, 300, 1e-4, "total weight");
    w[0] = w[1] = w[2] = 1;
    float init[3][2] = {{0, 0}, {1, 1}, {2, 2}};
    for (int i = 0; i < 3; i++) {
        init[1][1] = bad[i];
        ck_assert_int_eq(
            kmeans_lloyd_ab(ab, w, 3, 3, &init[0][0], 300, 1e-4, &res, NULL, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "initial centre 1: b*") != NULL, "message '%s'", err);
    }
    init[1][1] = 1;
    ck_assert_int_eq(kmeans_lloyd_ab(ab, w, 3, 3, &init[0][0], 300, 1e-4, &res, NULL, err, 0), 0);
    ck_assert(res.inertia == 0.0);
    free(rgb);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kmeans_ab");
    TCase *tc = tcase_create("kmeans_ab");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_matches_reference_lloyd);
    tcase_add_test(tc, test_weights_are_copies);
    tcase_add_test(tc, test_lloyd_between_close_centres);
    tcase_add_test(tc, test_empty_cluster_reseeded);
    tcase_add_test(tc, test_planted_chroma_clusters);
    tcase_add_test(tc, test_sorted_by_chroma_and_inertia_checked);
    tcase_add_test(tc, test_same_sample_as_rgb);
    tcase_add_test(tc, test_many_colours_keep_their_counts);
    tcase_add_test(tc, test_one_colour);
    tcase_add_test(tc, test_restarts_keep_lowest);
    tcase_add_test(tc, test_threads_and_simd_bit_identical);
    tcase_add_test(tc, test_quantise_matches_brute_force);
    tcase_add_test(tc, test_quantise_ties_to_lower_class);
    tcase_add_test(tc, test_potentials);
    tcase_add_test(tc, test_option_errors);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
