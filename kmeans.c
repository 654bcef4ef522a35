/* The palette: k-means over the distinct colours of the pixels.
 *
 * Pixels only matter through their colour, so the clustered set is the
 * distinct colours with their pixel counts (weights), stored in Morton order
 * of (r, g, b). In that order every cube of side 4 (64 colours, one word of a
 * 2^24-bit presence bitmap), 8 or 16 aligned on its side is one contiguous run
 * of colours, and we keep exact integer sums per cube: pixels, sum of r, g, b
 * and of r^2 + g^2 + b^2.
 *
 * A Lloyd assignment then walks the cubes (the filtering algorithm of Kanungo
 * et al.): a centre that is farther than another centre from every point of a
 * cube, by more than float rounding can blur, is dropped for that cube and
 * its sub-cubes; when one centre is left, the whole cube's sums go to it. Only
 * cubes of side 4 that straddle a boundary are split into colours, which go
 * through the SIMD kernel of simd/kmeans.h. Each pixel thus lands on exactly
 * the centre the kernel would give it, and the result is exact Lloyd.
 *
 * Every sum is an integer sum, so neither the thread count nor the schedule
 * can change a bit of the result; k-means++ works in integers too (its
 * centres are pixels, so squared distances are integers).
 *
 * The cube is this file's own; Lloyd, reseeding, k-means++ and restarts are
 * kmeans_driver.h's, shared with the a*b* k-means of kmeans_ab.c. This file
 * also holds the API: sampling the pixels and finding their distinct colours
 * serve both spaces. */
#include "kmeans.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "simd/kmeans.h"
#include "util.h"

#define CUBE_WORDS (1u << 18) /* cubes of side 4: one 64-bit word of presence each */
#define TOP_CUBES  (1u << 12) /* cubes of side 16, where each Lloyd walk starts */
#define TOP_LEVEL  2          /* levels: 0 side 4, 1 side 8, 2 side 16 */

/* For kmeans_driver.h: colours are integer points, so the sums need no scale. */
#define DIM   3
#define FIXED 1.0
/* Squared-distance slack of the cube test: each float distance of the kernel is
 * within 0.06 of the exact one (5 roundings of 2^-24 relative, d <= 3 * 255^2),
 * so a centre pruned with this slack can never win in the kernel. */
#define DIST_SLACK 0.5
/* The potentials are exact integer squared distances, and so is the least
 * squared distance from a colour to a box of colours: no slack. */
#define POT_SLACK 0.0
#define POT_D2(d) ((uint64_t)(d))

typedef struct {
    uint64_t w;    /* pixels */
    uint64_t s[3]; /* sums of r, g, b */
    uint64_t q;    /* sum of r^2 + g^2 + b^2 */
} moments;

typedef struct {
    size_t n;              /* distinct colours */
    uint64_t n_points;     /* pixels */
    uint32_t *colours;     // (n) 0x00RRGGBB, Morton order
    uint32_t *w;           // (n) pixels of each colour
    uint32_t *start;       // (CUBE_WORDS + 1) first colour of each cube of side 4
    moments *cube[3];      // (2^18), (2^15), (2^12) sums over cubes of side 4, 8, 16
    size_t n_chunks;       /* of SEED_CHUNK colours */
    uint64_t *chunk_w;     // (n_chunks) pixels per chunk
    float (*chunk_box)[6]; // (n_chunks) their box: least r, g, b, most r, g, b
} colour_set;

typedef colour_set point_set; /* kmeans_driver.h's name for it */

static moments colour_moments(uint32_t colour, uint32_t weight) {
    uint64_t r = colour >> 16 & 255, g = colour >> 8 & 255, b = colour & 255, w = weight;
    return (moments){w, {w * r, w * g, w * b}, w * (r * r + g * g + b * b)};
}

static moments point_moments(const colour_set *cs, size_t i) {
    return colour_moments(cs->colours[i], cs->w[i]);
}

static float point_coord(const colour_set *cs, size_t i, int d) {
    return (float)(cs->colours[i] >> (16 - 8 * d) & 255);
}

static void nearest_points(const colour_set *cs, size_t first, size_t count, const float *centres,
                           int k, uint8_t *labels) {
    kmeans_nearest(cs->colours + first, count, centres, k, labels);
}

static uint64_t potential_points(const colour_set *cs, size_t first, size_t count,
                                 const uint32_t *d2, size_t c) {
    return kmeans_potential(cs->colours + first, cs->w + first, d2, count, cs->colours[c]);
}

static uint64_t update_d2_points(const colour_set *cs, size_t first, size_t count, uint32_t *d2,
                                 size_t c, int first_centre) {
    return kmeans_update_d2(cs->colours + first, cs->w + first, d2, count, cs->colours[c],
                            first_centre);
}

#include "kmeans_driver.h"

void kmeans_default_options(kmeans_options *opt) {
    opt->k = 4;
    opt->sample = 1.0;
    opt->seed = 1;
    opt->max_iterations = 300;
    opt->tolerance = 1e-4;
    opt->restarts = 1;
    opt->space = KMEANS_RGB;
}

/* ==== Morton order: bits r7 g7 b7 r6 g6 b6 ... r0 g0 b0 ==== */

#define SPREAD(x)                                                                                  \
    (((x)&1u) | ((x)&2u) << 2 | ((x)&4u) << 4 | ((x)&8u) << 6 | ((x)&16u) << 8 | ((x)&32u) << 10 | \
     ((x)&64u) << 12 | ((x)&128u) << 14)
#define SPREAD4(x)  SPREAD(x), SPREAD(x + 1), SPREAD(x + 2), SPREAD(x + 3)
#define SPREAD16(x) SPREAD4(x), SPREAD4(x + 4), SPREAD4(x + 8), SPREAD4(x + 12)
#define SPREAD64(x) SPREAD16(x), SPREAD16(x + 16), SPREAD16(x + 32), SPREAD16(x + 48)
static const uint32_t spread8[256] = {SPREAD64(0u), SPREAD64(64u), SPREAD64(128u), SPREAD64(192u)};

static uint32_t compact8(uint32_t x) {
    x &= 0x249249u;
    x = (x | x >> 2) & 0x0C30C3u;
    x = (x | x >> 4) & 0x00F00Fu;
    x = (x | x >> 8) & 0x0000FFu;
    return x;
}

static uint32_t morton(const uint8_t *p) {
    return spread8[p[0]] << 2 | spread8[p[1]] << 1 | spread8[p[2]];
}

static uint32_t morton_to_packed(uint32_t key) {
    return compact8(key >> 2) << 16 | compact8(key >> 1) << 8 | compact8(key);
}

static int is_selected(const uint64_t *selected, size_t i) {
    return !selected || (selected[i >> 6] >> (i & 63) & 1);
}

/* ==== The distinct colours and their cube sums ==== */

/* A counting sort of the pixels by their cube of side 16 (the top 12 bits of
 * the Morton key; 4096 buckets), keeping the low 12 bits; then each bucket's
 * colours are counted in a 16 KB table that stays in L1. */

#define BUCKET_BITS 12
#define BUCKETS     (1u << BUCKET_BITS)
#define BUCKET_SIZE (1u << 12) /* colours per bucket */

typedef struct {
    uint16_t *low;    // (m) low 12 bits of each selected pixel's key, grouped by bucket
    uint32_t *first;  // (BUCKETS + 1) first pixel of each bucket in low
    uint64_t *bitmap; // (CUBE_WORDS) which colours occur
    uint32_t *hist;   // (threads, BUCKETS)
} pixel_buckets;

// one parallel region: histogram per thread, prefix, then scatter (same pixel ranges)
static void sort_into_buckets(const uint8_t *rgb, size_t n, const uint64_t *selected,
                              pixel_buckets *pb) {
#pragma omp parallel
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        uint32_t *h = pb->hist + t * BUCKETS;
        for (size_t i = lo; i < hi; i++)
            if (is_selected(selected, i)) h[morton(rgb + 3 * i) >> BUCKET_BITS]++;
#pragma omp barrier
#pragma omp single
        {
            uint32_t total = 0;
            for (uint32_t b = 0; b < BUCKETS; b++) {
                pb->first[b] = total;
                for (size_t u = 0; u < nt; u++) {
                    uint32_t count = pb->hist[u * BUCKETS + b];
                    pb->hist[u * BUCKETS + b] = total;
                    total += count;
                }
            }
            pb->first[BUCKETS] = total;
        }
        for (size_t i = lo; i < hi; i++) {
            if (!is_selected(selected, i)) continue;
            uint32_t key = morton(rgb + 3 * i);
            pb->low[h[key >> BUCKET_BITS]++] = (uint16_t)(key & (BUCKET_SIZE - 1));
        }
    }
}

// bitmap of the colours present; cs->start[c] = colours in cube c of side 4 (a count, for now)
static void mark_colours(const pixel_buckets *pb, colour_set *cs, uint32_t *bucket_colours) {
#pragma omp parallel for schedule(dynamic, 16)
    for (uint32_t b = 0; b < BUCKETS; b++) {
        uint64_t *bits = pb->bitmap + (size_t)b * (BUCKET_SIZE / 64);
        for (uint32_t i = pb->first[b]; i < pb->first[b + 1]; i++)
            bits[pb->low[i] >> 6] |= 1ull << (pb->low[i] & 63);
        uint32_t count = 0;
        for (uint32_t w = 0; w < BUCKET_SIZE / 64; w++) {
            cs->start[b * (BUCKET_SIZE / 64) + w] = (uint32_t)__builtin_popcountll(bits[w]);
            count += cs->start[b * (BUCKET_SIZE / 64) + w];
        }
        bucket_colours[b] = count;
    }
}

// colours, w, start and the sums of the cubes of side 4, bucket by bucket
static void count_colours(const pixel_buckets *pb, const uint32_t *bucket_first, colour_set *cs) {
#pragma omp parallel
    {
        uint32_t count[BUCKET_SIZE] = {0}; // 16 KB: back to zeros after each bucket
#pragma omp for schedule(dynamic, 16)
        for (uint32_t b = 0; b < BUCKETS; b++) {
            for (uint32_t i = pb->first[b]; i < pb->first[b + 1]; i++)
                count[pb->low[i]]++;
            uint32_t out = bucket_first[b];
            for (uint32_t w = 0; w < BUCKET_SIZE / 64; w++) {
                uint32_t cube = b * (BUCKET_SIZE / 64) + w;
                moments m = {0};
                cs->start[cube] = out;
                for (uint64_t bits = pb->bitmap[cube]; bits; bits &= bits - 1) {
                    uint32_t low = w << 6 | (uint32_t)__builtin_ctzll(bits);
                    cs->colours[out] = morton_to_packed(b << BUCKET_BITS | low);
                    cs->w[out] = count[low];
                    count[low] = 0;
                    moments one = colour_moments(cs->colours[out], cs->w[out]);
                    add_moments(&m, &one);
                    out++;
                }
                cs->cube[0][cube] = m;
            }
        }
    }
    cs->start[CUBE_WORDS] = (uint32_t)cs->n;
}

static void sum_upper_cubes(colour_set *cs) {
    for (int level = 1; level <= TOP_LEVEL; level++) {
        uint32_t n_cubes = CUBE_WORDS >> (3 * level);
        for (uint32_t c = 0; c < n_cubes; c++) {
            moments m = {0};
            for (int o = 0; o < 8; o++)
                add_moments(&m, &cs->cube[level - 1][8 * c + o]);
            cs->cube[level][c] = m;
        }
    }
}

static void free_colour_set(colour_set *cs) {
    free(cs->colours);
    free(cs->w);
    free(cs->start);
    for (int l = 0; l <= TOP_LEVEL; l++)
        free(cs->cube[l]);
    free(cs->chunk_w);
    free(cs->chunk_box);
    memset(cs, 0, sizeof *cs);
}

static int alloc_colour_set(colour_set *cs, size_t n) {
    cs->n = n;
    cs->n_chunks = (n + SEED_CHUNK - 1) / SEED_CHUNK;
    cs->colours = malloc(n * sizeof *cs->colours);
    cs->w = malloc(n * sizeof *cs->w);
    cs->chunk_w = malloc((cs->n_chunks ? cs->n_chunks : 1) * sizeof *cs->chunk_w);
    cs->chunk_box = malloc((cs->n_chunks ? cs->n_chunks : 1) * sizeof *cs->chunk_box);
    for (int l = 0; l <= TOP_LEVEL; l++)
        cs->cube[l] = malloc((CUBE_WORDS >> (3 * l)) * sizeof(moments));
    return cs->colours && cs->w && cs->chunk_w && cs->chunk_box && cs->cube[0] && cs->cube[1] &&
                   cs->cube[2]
               ? 0
               : -1;
}

/* The distinct colours of the m selected pixels (all when selected is NULL). */
static int build_colour_set(const uint8_t *rgb, size_t n, const uint64_t *selected, size_t m,
                            colour_set *cs, char *err, size_t errlen) {
    memset(cs, 0, sizeof *cs);
    cs->n_points = m;
    pixel_buckets pb;
    pb.low = malloc(m * sizeof *pb.low);
    pb.first = malloc((BUCKETS + 1) * sizeof *pb.first);
    pb.bitmap = calloc(CUBE_WORDS, sizeof *pb.bitmap);
    pb.hist = calloc((size_t)omp_get_max_threads() * BUCKETS, sizeof *pb.hist);
    uint32_t *bucket_first = malloc((BUCKETS + 1) * sizeof *bucket_first);
    cs->start = malloc((CUBE_WORDS + 1) * sizeof *cs->start);
    int rc = -1;
    if (pb.low && pb.first && pb.bitmap && pb.hist && bucket_first && cs->start) {
        sort_into_buckets(rgb, n, selected, &pb);
        mark_colours(&pb, cs, bucket_first);
        size_t total = 0;
        for (uint32_t b = 0; b < BUCKETS; b++) {
            uint32_t count = bucket_first[b];
            bucket_first[b] = (uint32_t)total;
            total += count;
        }
        if (alloc_colour_set(cs, total) == 0) {
            count_colours(&pb, bucket_first, cs);
            sum_upper_cubes(cs);
            sum_chunks(cs);
            rc = 0;
        }
    }
    free(pb.low);
    free(pb.first);
    free(pb.bitmap);
    free(pb.hist);
    free(bucket_first);
    if (rc == 0) return 0;
    free_colour_set(cs);
    return set_error(err, errlen, "k-means: out of memory for the colours of %zu pixels", n);
}

// acc[j] += the sums of the cube's pixels whose nearest centre is j
static void assign_cube(const colour_set *cs, int level, uint32_t cube, const int *lo,
                        const centre_pairs *cp, const uint8_t *cand, int n_cand, moments *acc) {
    const moments *m = &cs->cube[level][cube];
    if (m->w == 0) return;
    int side = 4 << level, z;
    float half_side = 0.5f * (float)(side - 1);
    double box_lo[3] = {lo[0], lo[1], lo[2]};
    float mid[3] = {(float)lo[0] + half_side, (float)lo[1] + half_side, (float)lo[2] + half_side};
    uint8_t keep[KMEANS_MAX_K];
    int n_keep = filter_candidates(cp, box_lo, side - 1, mid, cand, n_cand, keep, &z);
    if (n_keep == 1) {
        add_moments(&acc[z], m);
        return;
    }
    if (level == 0) {
        uint32_t first = cs->start[cube];
        assign_points(cs, first, cs->start[cube + 1] - first, m, cp, keep, n_keep, z, acc);
        return;
    }
    int half = side / 2;
    for (int o = 0; o < 8; o++) {
        int child_lo[3] = {lo[0] + (o >> 2 & 1) * half, lo[1] + (o >> 1 & 1) * half,
                           lo[2] + (o & 1) * half};
        assign_cube(cs, level - 1, 8 * cube + (uint32_t)o, child_lo, cp, keep, n_keep, acc);
    }
}

// sums[j] = moments of the pixels nearest to centre j of cp
static void assign_all(const point_set *cs, const centre_pairs *cp, moments *sums) {
    int k = cp->k;
    uint8_t all[KMEANS_MAX_K];
    for (int j = 0; j < k; j++)
        all[j] = (uint8_t)j;
    memset(sums, 0, (size_t)k * sizeof *sums);
#pragma omp parallel
    {
        moments acc[KMEANS_MAX_K];
        memset(acc, 0, sizeof acc);
#pragma omp for schedule(dynamic, 16) nowait
        for (uint32_t cube = 0; cube < TOP_CUBES; cube++) {
            uint32_t key = cube << 12; // Morton key of the cube's first colour
            int lo[3] = {(int)compact8(key >> 2), (int)compact8(key >> 1), (int)compact8(key)};
            assign_cube(cs, TOP_LEVEL, cube, lo, cp, all, k, acc);
        }
        // Integer sums: the order in which threads add does not matter.
#pragma omp critical(kmeans_sums)
        for (int j = 0; j < k; j++)
            add_moments(&sums[j], &acc[j]);
    }
}

/* ==== The API ==== */

/* selected (n bits): m pixels chosen uniformly without replacement (Knuth's
 * selection sampling: one draw per pixel, in pixel order). */
static uint64_t *sample_pixels(size_t n, size_t m, rng_state *rng) {
    uint64_t *selected = calloc((n + 63) / 64, sizeof *selected);
    if (!selected) return NULL;
    size_t chosen = 0;
    for (size_t i = 0; i < n && chosen < m; i++)
        if (rng_below(rng, n - i) < m - chosen) {
            selected[i >> 6] |= 1ull << (i & 63);
            chosen++;
        }
    return selected;
}

static int check_options(const uint8_t *rgb, size_t n, const kmeans_options *opt, char *err,
                         size_t errlen) {
    if (opt->k < 2 || opt->k > KMEANS_MAX_K)
        return set_error(err, errlen, "k-means: k must be 2..%d, not %d", KMEANS_MAX_K, opt->k);
    if (!(opt->sample > 0.0 && opt->sample <= 1.0))
        return set_error(err, errlen, "k-means: the sample fraction must be in (0, 1], not %g",
                         opt->sample);
    if (opt->max_iterations < 1)
        return set_error(err, errlen, "k-means: max_iterations must be at least 1, not %d",
                         opt->max_iterations);
    if (!(opt->tolerance >= 0.0 && opt->tolerance < INFINITY))
        return set_error(err, errlen, "k-means: the tolerance must be finite and >= 0, not %g",
                         opt->tolerance);
    if (opt->restarts < 1)
        return set_error(err, errlen, "k-means: restarts must be at least 1, not %d",
                         opt->restarts);
    if (opt->space != KMEANS_RGB && opt->space != KMEANS_AB)
        return set_error(err, errlen, "k-means: unknown space %d", (int)opt->space);
    if (!rgb || n == 0) return set_error(err, errlen, "k-means: no pixels");
    if (n > UINT32_MAX)
        return set_error(err, errlen, "k-means: %zu pixels, more than %u", n, UINT32_MAX);
    return 0;
}

// centres (k,3) sorted by luminance, darkest first (stable)
static void sort_by_luminance(float (*centres)[3], int k) {
    for (int i = 1; i < k; i++) {
        float c[3] = {centres[i][0], centres[i][1], centres[i][2]};
        double lum = 0.2125 * c[0] + 0.7154 * c[1] + 0.0721 * c[2];
        int j = i;
        for (; j > 0; j--) {
            float *p = centres[j - 1];
            if (0.2125 * p[0] + 0.7154 * p[1] + 0.0721 * p[2] <= lum) break;
            memcpy(centres[j], p, sizeof centres[j]);
        }
        memcpy(centres[j], c, sizeof c);
    }
}

// restarts of k-means++ then Lloyd on cs; res gets the lowest inertia
int kmeans_fit_profiled(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res,
                        kmeans_profile *prof, char *err, size_t errlen) {
    kmeans_profile unused;
    if (!prof) prof = &unused;
    memset(prof, 0, sizeof *prof);
    if (check_options(rgb, n, opt, err, errlen)) return -1;
    double t0 = now_seconds();
    size_t m = opt->sample >= 1.0 ? n : (size_t)llround(opt->sample * (double)n);
    if (m == 0)
        return set_error(err, errlen, "k-means: a sample fraction of %g of %zu pixels is no pixel",
                         opt->sample, n);
    rng_state rng;
    rng_seed(&rng, opt->seed);
    uint64_t *selected = NULL;
    if (m < n && !(selected = sample_pixels(n, m, &rng)))
        return set_error(err, errlen, "k-means: out of memory sampling %zu pixels", n);
    colour_set cs;
    int rc = build_colour_set(rgb, n, selected, m, &cs, err, errlen);
    free(selected);
    if (rc) return rc;
    prof->n_colours = cs.n;
    prof->prepare_seconds = now_seconds() - t0;

    memset(res, 0, sizeof *res);
    if (opt->space == KMEANS_AB) {
        rc = kmeans_ab_fit_colours(cs.colours, cs.w, cs.n, m, opt, &rng, res, prof, err, errlen);
    } else {
        rc = fit_restarts(&cs, opt, &rng, res, prof, err, errlen);
        res->k = opt->k;
        res->n_points = m;
        sort_by_luminance(res->centres, res->k);
    }
    free_colour_set(&cs);
    if (rc) return rc;
    res->seconds = now_seconds() - t0;
    return 0;
}

int kmeans_fit(const uint8_t *rgb, size_t n, const kmeans_options *opt, kmeans_result *res,
               char *err, size_t errlen) {
    return kmeans_fit_profiled(rgb, n, opt, res, NULL, err, errlen);
}

int kmeans_lloyd(const uint8_t *rgb, size_t n, int k, const float *init, int max_iterations,
                 double tolerance, kmeans_result *res, kmeans_profile *prof, char *err,
                 size_t errlen) {
    kmeans_profile unused;
    if (!prof) prof = &unused;
    memset(prof, 0, sizeof *prof);
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = k;
    opt.max_iterations = max_iterations;
    opt.tolerance = tolerance;
    if (check_options(rgb, n, &opt, err, errlen)) return -1;
    double t0 = now_seconds();
    colour_set cs;
    if (build_colour_set(rgb, n, NULL, n, &cs, err, errlen)) return -1;
    double t1 = now_seconds();
    int rc = lloyd_alone(&cs, k, init, max_iterations, tolerance, res, err, errlen);
    prof->n_colours = cs.n;
    free_colour_set(&cs);
    if (rc) return rc;
    res->seconds = now_seconds() - t0;
    prof->prepare_seconds = t1 - t0;
    prof->lloyd_seconds = res->seconds - prof->prepare_seconds;
    prof->lloyd_iterations = res->iterations;
    return 0;
}

void kmeans_quantise(const uint8_t *rgb, size_t n, const kmeans_result *palette, uint8_t *classes) {
    const size_t chunk = 16384;
    size_t n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t first = c * chunk, count = n - first < chunk ? n - first : chunk;
        kmeans_nearest_rgb(rgb + 3 * first, count, &palette->centres[0][0], palette->k,
                           classes + first);
    }
}
