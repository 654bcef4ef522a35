/* The palette: k main colours of a set of RGB pixels, by k-means.
 *
 * k-means++ seeding from a seeded generator, then Lloyd iterations, in
 * parallel over pixels with an AVX2 assignment step. The result is
 * bit-identical for a given seed whatever the number of threads and whichever
 * SIMD path runs. */
#ifndef COLORIZE_KMEANS_H
#define COLORIZE_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#define KMEANS_MAX_K 64

typedef struct {
    int k;         /* 2..64 */
    double sample; /* fraction of the pixels used, 0 < sample <= 1 */
    uint64_t seed;
    int max_iterations; /* 300 */
    double tolerance;   /* stop when the largest centre move is below this (1e-4) */
    int restarts;       /* keep the lowest inertia of this many runs (1) */
} kmeans_options;

void kmeans_default_options(kmeans_options *opt);

typedef struct {
    int k;
    float centres[KMEANS_MAX_K][3]; /* RGB in 0..255, sorted by luminance: class 0 the darkest */
    size_t n_points;                /* P, pixels clustered */
    int iterations;                 /* Lloyd iterations of the kept run */
    double inertia;                 /* sum of squared distances of the P pixels to their centres */
    double seconds;                 /* wall time of sampling + k-means */
} kmeans_result;

/* rgb holds n pixels, 3 bytes each. */
int kmeans_fit(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res,
               char *err, size_t errlen);

/* classes[i] = index of the nearest centre to pixel i (Euclidean RGB; a tie
 * goes to the lower class). Parallel. */
void kmeans_quantise(const uint8_t *rgb, size_t n, const kmeans_result *palette, uint8_t *classes);

/* ==== For tests and benchmarks ==== */

/* Where kmeans_fit's time goes. */
typedef struct {
    size_t n_colours;       /* distinct colours among the clustered pixels */
    double prepare_seconds; /* sampling, distinct colours, sums per colour cube */
    double seed_seconds;    /* k-means++, all restarts */
    double lloyd_seconds;   /* Lloyd iterations and the final inertia, all restarts */
    int lloyd_iterations;   /* Lloyd iterations, all restarts */
} kmeans_profile;

/* kmeans_fit, also filling prof (may be NULL). */
int kmeans_fit_profiled(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res,
                        kmeans_profile *prof, char *err, size_t errlen);

/* Lloyd alone on all n pixels, from the k centres init (k, 3), without
 * k-means++ or sorting: res->centres[j] is where init[j] ended. One iteration
 * assigns each pixel to its nearest centre (the float distance and tie rule of
 * simd/kmeans.h), then moves each centre to (float)(sum / count) of its pixels,
 * sums exact in integers. It stops after the iteration in which no centre
 * moved by tolerance or more (Euclidean, in double), or after max_iterations. */
int kmeans_lloyd(const uint8_t *rgb, size_t n, int k, const float *init, int max_iterations,
                 double tolerance, kmeans_result *res, kmeans_profile *prof, char *err,
                 size_t errlen);

#endif
