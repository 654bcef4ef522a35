/* The palette: k main colours of a set of RGB pixels, by k-means, either on
 * the pixels' RGB or on their CIE a*b* chroma (lab.h).
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

typedef enum {
    KMEANS_RGB, /* the pixels' RGB bytes */
    KMEANS_AB   /* the pixels' a*b* (lab_from_rgb8), L* left out */
} kmeans_space;

typedef struct {
    int k;         /* 2..64 */
    double sample; /* fraction of the pixels used, 0 < sample <= 1 */
    uint64_t seed;
    int max_iterations; /* 300 */
    double tolerance;   /* stop when the largest centre move is below this (1e-4) */
    int restarts;       /* keep the lowest inertia of this many runs (1) */
    kmeans_space space; /* what is clustered (KMEANS_RGB) */
} kmeans_options;

void kmeans_default_options(kmeans_options *opt);

typedef struct {
    int k;
    /* KMEANS_RGB: RGB in 0..255, sorted by luminance: class 0 the darkest.
     * KMEANS_AB: (a*, b*, 0), sorted by chroma sqrt(a*^2 + b*^2), class 0 the
     * grayest; equal chromas by a*, then b*. */
    float centres[KMEANS_MAX_K][3];
    size_t n_points; /* P, pixels clustered */
    int iterations;  /* Lloyd iterations of the kept run */
    double inertia;  /* sum of squared distances (RGB or a*b*) of the P pixels to their centres */
    double seconds;  /* wall time of sampling + k-means */
} kmeans_result;

/* rgb holds n pixels, 3 bytes each. Both spaces cluster the same sampled
 * pixels (the same sample for the same seed). KMEANS_AB clusters their a*b*
 * with coordinates rounded to multiples of 2^-24 (so that its sums are exact
 * integers: this moves only those below 1 in magnitude, by less than 3e-8). */
int kmeans_fit(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res,
               char *err, size_t errlen);

/* classes[i] = index of the nearest centre to pixel i (Euclidean RGB; a tie
 * goes to the lower class). Parallel. */
void kmeans_quantise(const uint8_t *rgb, size_t n, const kmeans_result *palette, uint8_t *classes);

/* A KMEANS_AB palette: lab is (n, 3) L*a*b* (as lab_from_rgb8 gives);
 * classes[i] = index of the nearest centre to pixel i in (a*, b*) (the float
 * distance of simd/kmeans_ab.h; a tie goes to the lower class). Parallel. */
void kmeans_quantise_ab(const float *lab, size_t n, const kmeans_result *palette, uint8_t *classes);

/* ==== For tests and benchmarks ==== */

/* Where kmeans_fit's time goes. */
typedef struct {
    size_t n_colours;       /* distinct colours among the clustered pixels (a*b* points) */
    double prepare_seconds; /* sampling, distinct colours, sums per colour cube (a*b*: and
                               their a*b* and its quadtree) */
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

/* The same in a*b*: Lloyd alone on the n points ab (n, 2) with weights (n)
 * (NULL: 1 each; else each at least 1, summing to at most 2^32 - 1), from the
 * k centres init (k, 2), every coordinate within (-128, 128); res->centres[j]
 * = (a*, b*, 0) where init[j] ended, unsorted; res->n_points the total weight.
 * Coordinates are rounded to multiples of 2^-24 first, as kmeans_fit's. One
 * iteration assigns each point to its nearest centre (simd/kmeans_ab.h), then
 * moves each centre to (float)((sum / 2^24) / weight) of its points, where
 * sum, of weight * coordinate * 2^24, is exact in integers; the rest as
 * kmeans_lloyd. */
int kmeans_lloyd_ab(const float *ab, const uint32_t *weights, size_t n, int k, const float *init,
                    int max_iterations, double tolerance, kmeans_result *res, kmeans_profile *prof,
                    char *err, size_t errlen);

#endif
