/* k-means benchmark: k = 4 on 6,144,000 realistic pixels (the CIFAR-10 bird
 * pixels, extended by repeating them with a seeded jitter of +-2), then the
 * real 5,222,400 bird pixels alone against scikit-learn's published centres.
 *
 *   build/tests/bench_kmeans            (data: $COLORIZE_SHARED_CIFAR or ../shared/cifar)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kmeans.h"
#include "simd/simd.h"
#include "util.h"

#define BENCH_PIXELS 6144000
#define RUNS         5
#define BIRD         2

// the bird pixels of one CIFAR-10 .bin file appended to rgb (n,3); returns -1 if unreadable
static int read_birds(const char *path, uint8_t **rgb, size_t *n) {
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size, NULL, 0)) return -1;
    for (size_t rec = 0; rec + 3073 <= size; rec += 3073) {
        if (data[rec] != BIRD) continue;
        *rgb = realloc(*rgb, (*n + 1024) * 3);
        for (int p = 0; p < 1024; p++)
            for (int c = 0; c < 3; c++)
                (*rgb)[3 * (*n + p) + c] = data[rec + 1 + 1024 * c + p];
        *n += 1024;
    }
    free(data);
    return 0;
}

static uint8_t *load_real_birds(size_t *n) {
    const char *dir = getenv("COLORIZE_SHARED_CIFAR");
    if (!dir) dir = "../shared/cifar";
    const char *files[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                            "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    uint8_t *rgb = NULL;
    *n = 0;
    for (int f = 0; f < 6; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cifar-10-batches-bin/%s", dir, files[f]);
        if (read_birds(path, &rgb, n)) {
            printf("no %s: using synthetic pixels\n", path);
            free(rgb);
            *n = 0;
            return NULL;
        }
    }
    return rgb;
}

static uint8_t clamp_byte(int v) {
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// rgb (BENCH_PIXELS,3): the real pixels, then repeats of them with a jitter of +-2
static void extend_pixels(const uint8_t *real, size_t n_real, uint8_t *rgb) {
    rng_state rng;
    rng_seed(&rng, 7);
    memcpy(rgb, real, 3 * n_real);
    for (size_t i = n_real; i < BENCH_PIXELS; i++)
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = clamp_byte(real[3 * (i % n_real) + c] + (int)rng_below(&rng, 5) - 2);
}

// synthetic stand-in: four gray-ish clusters of natural-image spread
static void synthetic_pixels(uint8_t *rgb) {
    const float centre[4][3] = {{50, 51, 39}, {110, 110, 84}, {157, 157, 137}, {207, 213, 212}};
    rng_state rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < BENCH_PIXELS; i++) {
        const float *c = centre[rng_below(&rng, 4)];
        float shade = 25.0f * rng_normal(&rng);
        for (int d = 0; d < 3; d++)
            rgb[3 * i + d] = clamp_byte((int)lrintf(c[d] + shade + 8.0f * rng_normal(&rng)));
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int same_result(const kmeans_result *a, const kmeans_result *b) {
    return a->k == b->k && a->iterations == b->iterations && a->n_points == b->n_points &&
           memcmp(a->centres, b->centres, sizeof a->centres) == 0 &&
           memcmp(&a->inertia, &b->inertia, sizeof a->inertia) == 0;
}

static void fit(const uint8_t *rgb, size_t n, kmeans_result *res, kmeans_profile *prof) {
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = 4;
    char err[256];
    if (kmeans_fit_profiled(rgb, n, &opt, res, prof, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

// median of RUNS fits with the given threads; res gets the last result
static void time_fits(const uint8_t *rgb, size_t n, int threads, kmeans_result *res,
                      kmeans_profile *med) {
    double total[RUNS], prep[RUNS], seed[RUNS], lloyd[RUNS], per_it[RUNS];
    omp_set_num_threads(threads);
    for (int r = 0; r < RUNS; r++) {
        kmeans_profile p;
        fit(rgb, n, res, &p);
        total[r] = res->seconds, prep[r] = p.prepare_seconds, seed[r] = p.seed_seconds;
        lloyd[r] = p.lloyd_seconds, per_it[r] = p.lloyd_seconds / p.lloyd_iterations;
        med->n_colours = p.n_colours;
        med->lloyd_iterations = p.lloyd_iterations;
    }
    med->prepare_seconds = median(prep, RUNS);
    med->seed_seconds = median(seed, RUNS);
    med->lloyd_seconds = median(lloyd, RUNS);
    double best = total[0];
    for (int r = 1; r < RUNS; r++)
        best = total[r] < best ? total[r] : best;
    printf("| %7d | %7.1f | %6.1f | %7.1f | %7.1f | %7.1f | %10d | %11.3f | %9zu |\n", threads,
           1e3 * median(total, RUNS), 1e3 * best, 1e3 * med->prepare_seconds,
           1e3 * med->seed_seconds, 1e3 * med->lloyd_seconds, res->iterations,
           1e3 * median(per_it, RUNS), med->n_colours);
}

static void print_fit_header(void) {
    printf("| threads | fit ms  | min ms | prep ms | seed ms | lloyd ms| iterations | ms/Lloyd it "
           "| colours "
           "  |\n");
    printf("|---------|---------|--------|---------|---------|---------|------------|-------------|"
           "---------"
           "--|\n");
}

// brute-force nearest-centre pass over every pixel (kmeans_quantise): median ms
static double time_quantise(const uint8_t *rgb, size_t n, const kmeans_result *pal, int threads,
                            uint8_t *classes) {
    double t[RUNS];
    omp_set_num_threads(threads);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_seconds();
        kmeans_quantise(rgb, n, pal, classes);
        t[r] = now_seconds() - t0;
    }
    return 1e3 * median(t, RUNS);
}

// sum over pixels of the squared distance to the nearest centre, in double, serial
static double inertia_of(const uint8_t *rgb, size_t n, const float (*c)[3], int k) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (int j = 0; j < k; j++) {
            double d = 0.0;
            for (int e = 0; e < 3; e++)
                d += (rgb[3 * i + e] - c[j][e]) * (rgb[3 * i + e] - c[j][e]);
            if (d < best) best = d;
        }
        total += best;
    }
    return total;
}

static void print_centres(const kmeans_result *r) {
    for (int j = 0; j < r->k; j++)
        printf(" (%.2f, %.2f, %.2f)", r->centres[j][0], r->centres[j][1], r->centres[j][2]);
    printf("\n");
}

static void bench_bench_pixels(const uint8_t *rgb) {
    kmeans_result r1, r2;
    kmeans_profile p;
    printf("\nk = 4, sample 1.0, seed 1, %d pixels, %s, median of %d runs\n", BENCH_PIXELS,
           simd_path_name(simd_active()), RUNS);
    print_fit_header();
    time_fits(rgb, BENCH_PIXELS, 1, &r1, &p);
    time_fits(rgb, BENCH_PIXELS, 2, &r2, &p);
    printf("1 vs 2 threads bit-identical: %s\n", same_result(&r1, &r2) ? "yes" : "NO");

    uint8_t *classes = malloc(BENCH_PIXELS);
    printf("\nbrute-force nearest-centre pass over all %d pixels (kmeans_quantise, k = 4), "
           "median ms:\n| path     | 1 thread | 2 threads |\n|----------|----------|-----------|\n",
           BENCH_PIXELS);
    simd_path active = simd_active();
    for (int path = 0; path < SIMD_N_PATHS; path++) {
        if (simd_force((simd_path)path) != 0) continue; /* not in this build or CPU */
        double one = time_quantise(rgb, BENCH_PIXELS, &r2, 1, classes);
        double two = time_quantise(rgb, BENCH_PIXELS, &r2, 2, classes);
        printf("| %-8s | %8.2f | %9.2f |\n", simd_path_name((simd_path)path), one, two);
    }
    simd_force(active);
    free(classes);
}

static void bench_real_pixels(const uint8_t *rgb, size_t n) {
    kmeans_result r[2], scalar;
    kmeans_profile p;
    printf("\nreal bird pixels: %zu, k = 4, sample 1.0, seed 1, median of %d runs\n", n, RUNS);
    print_fit_header();
    for (int t = 0; t < 2; t++)
        time_fits(rgb, n, t + 1, &r[t], &p);
    for (int t = 0; t < 2; t++) {
        printf("%d thread%s: %d iterations, inertia %.6e, centres:", t + 1, t ? "s" : "",
               r[t].iterations, r[t].inertia);
        print_centres(&r[t]);
    }
    simd_path active = simd_active();
    simd_force(SIMD_SCALAR);
    fit(rgb, n, &scalar, &p);
    simd_force(active);
    printf("bit-identical: 1 vs 2 threads %s; %s vs scalar %s\n",
           same_result(&r[0], &r[1]) ? "yes" : "NO", simd_path_name(active),
           same_result(&r[1], &scalar) ? "yes" : "NO");

    const float sklearn[4][3] = {{49.8f, 50.8f, 39.2f},
                                 {110.3f, 109.9f, 83.9f},
                                 {157.5f, 156.7f, 137.5f},
                                 {207.6f, 212.9f, 212.6f}};
    double ours = inertia_of(rgb, n, (const float(*)[3])r[1].centres, 4);
    double theirs = inertia_of(rgb, n, sklearn, 4);
    printf("inertia, per pixel in double: ours %.6e (reported %.6e), scikit-learn's centres "
           "%.6e: ours is %.4f %% %s\n",
           ours, r[1].inertia, theirs, 100.0 * fabs(theirs - ours) / theirs,
           ours <= theirs ? "lower" : "HIGHER");

    printf("\nother seeds, 2 threads:\n| seed | iterations | inertia      | fit ms |\n"
           "|------|------------|--------------|--------|\n");
    for (uint64_t seed = 2; seed <= 6; seed++) {
        kmeans_options opt;
        kmeans_default_options(&opt);
        opt.seed = seed;
        kmeans_result res;
        if (kmeans_fit(rgb, n, &opt, &res, NULL, 0)) exit(1);
        printf("| %4d | %10d | %.6e | %6.1f |\n", (int)seed, res.iterations, res.inertia,
               1e3 * res.seconds);
    }
}

int main(void) {
    size_t n_real;
    uint8_t *real = load_real_birds(&n_real);
    uint8_t *rgb = malloc(3 * (size_t)BENCH_PIXELS);
    if (real)
        extend_pixels(real, n_real, rgb);
    else
        synthetic_pixels(rgb);
    printf("kmeans benchmark: %d threads available, %s\n", omp_get_max_threads(),
           simd_path_name(simd_active()));
    bench_bench_pixels(rgb);
    if (real) bench_real_pixels(real, n_real);
    free(rgb);
    free(real);
    return 0;
}
