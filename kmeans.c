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
 * centres are pixels, so squared distances are integers). */
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
#define SEED_CHUNK 4096       /* colours per chunk of the k-means++ running sums */
#define MAX_TRIALS 8          /* greedy k-means++ candidates per centre: 2 + ln k */
/* Squared-distance slack of the cube test: each float distance of the kernel is
 * within 0.06 of the exact one (5 roundings of 2^-24 relative, d <= 3 * 255^2),
 * so a centre pruned with this slack can never win in the kernel. */
#define DIST_SLACK 0.5

typedef struct {
    uint64_t w, r, g, b, q; /* pixels, sums of r, g, b, and of r^2 + g^2 + b^2 */
} moments;

typedef struct {
    size_t n_points;
    size_t n_colours;
    uint32_t *colours; // (n_colours) 0x00RRGGBB, Morton order
    uint32_t *weights; // (n_colours) pixels of each colour
    uint32_t *start;   // (CUBE_WORDS + 1) first colour of each cube of side 4
    moments *cube[3];  // (2^18), (2^15), (2^12) sums over cubes of side 4, 8, 16
    uint64_t *chunk_w; // (n_chunks) pixels per SEED_CHUNK colours
    size_t n_chunks;
} colour_set;

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

static void add_moments(moments *to, const moments *m) {
    to->w += m->w;
    to->r += m->r;
    to->g += m->g;
    to->b += m->b;
    to->q += m->q;
}

static moments colour_moments(uint32_t colour, uint32_t weight) {
    uint64_t r = colour >> 16 & 255, g = colour >> 8 & 255, b = colour & 255, w = weight;
    return (moments){w, w * r, w * g, w * b, w * (r * r + g * g + b * b)};
}

// colours, weights, start and the sums of the cubes of side 4, bucket by bucket
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
                    cs->weights[out] = count[low];
                    count[low] = 0;
                    moments one = colour_moments(cs->colours[out], cs->weights[out]);
                    add_moments(&m, &one);
                    out++;
                }
                cs->cube[0][cube] = m;
            }
        }
    }
    cs->start[CUBE_WORDS] = (uint32_t)cs->n_colours;
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
    for (size_t c = 0; c < cs->n_chunks; c++) {
        size_t end = (c + 1) * SEED_CHUNK < cs->n_colours ? (c + 1) * SEED_CHUNK : cs->n_colours;
        uint64_t s = 0;
        for (size_t i = c * SEED_CHUNK; i < end; i++)
            s += cs->weights[i];
        cs->chunk_w[c] = s;
    }
}

static void free_colour_set(colour_set *cs) {
    free(cs->colours);
    free(cs->weights);
    free(cs->start);
    for (int l = 0; l <= TOP_LEVEL; l++)
        free(cs->cube[l]);
    free(cs->chunk_w);
    memset(cs, 0, sizeof *cs);
}

static int alloc_colour_set(colour_set *cs, size_t n_colours) {
    cs->n_colours = n_colours;
    cs->n_chunks = (n_colours + SEED_CHUNK - 1) / SEED_CHUNK;
    cs->colours = malloc(n_colours * sizeof *cs->colours);
    cs->weights = malloc(n_colours * sizeof *cs->weights);
    cs->chunk_w = malloc((cs->n_chunks ? cs->n_chunks : 1) * sizeof *cs->chunk_w);
    for (int l = 0; l <= TOP_LEVEL; l++)
        cs->cube[l] = malloc((CUBE_WORDS >> (3 * l)) * sizeof(moments));
    return cs->colours && cs->weights && cs->chunk_w && cs->cube[0] && cs->cube[1] && cs->cube[2]
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

/* ==== Lloyd assignment by cube filtering ==== */

/* Per Lloyd iteration: for each pair of centres (a, b), the terms of
 * |x-a|^2 - |x-b|^2 = sum 2 x (b - a) + a^2 - b^2, linear in x. */
typedef struct {
    int k;
    const float *centres;                       // (k,3)
    double diff[KMEANS_MAX_K][KMEANS_MAX_K][3]; // b - a
    double rise[KMEANS_MAX_K][KMEANS_MAX_K];    // sum of the positive parts of b - a
    double base[KMEANS_MAX_K][KMEANS_MAX_K];    // a^2 - b^2
} centre_pairs;

static void pair_centres(const float *centres, int k, centre_pairs *cp) {
    cp->k = k;
    cp->centres = centres;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            const float *ca = centres + 3 * a, *cb = centres + 3 * b;
            cp->rise[a][b] = 0.0;
            cp->base[a][b] = 0.0;
            for (int d = 0; d < 3; d++) {
                double diff = (double)cb[d] - ca[d];
                cp->diff[a][b][d] = diff;
                cp->rise[a][b] += diff > 0 ? diff : 0.0;
                cp->base[a][b] += (double)ca[d] * ca[d] - (double)cb[d] * cb[d];
            }
        }
}

/* Whether centre b is farther than centre a, by more than DIST_SLACK in squared
 * distance, from every point of the cube [lo, lo + side - 1]^3: the largest
 * |x-a|^2 - |x-b|^2 is at the corner taking the high side where b - a > 0. */
static int dominated(const centre_pairs *cp, int a, int b, const int *lo, int side) {
    const double *diff = cp->diff[a][b];
    double worst = 2.0 * (lo[0] * diff[0] + lo[1] * diff[1] + lo[2] * diff[2]) +
                   2.0 * (side - 1) * cp->rise[a][b] + cp->base[a][b];
    return worst < -DIST_SLACK;
}

/* Keeps in keep (increasing index order) the candidates not dominated over the
 * cube by the one nearest its middle, which goes to *nearest; returns how many. */
static int filter_candidates(const centre_pairs *cp, const uint8_t *cand, int n_cand, const int *lo,
                             int side, uint8_t *keep, int *nearest) {
    float half = 0.5f * (float)(side - 1);
    float mid[3] = {(float)lo[0] + half, (float)lo[1] + half, (float)lo[2] + half};
    int z = cand[0];
    float z_d = INFINITY;
    for (int j = 0; j < n_cand; j++) {
        const float *c = cp->centres + 3 * cand[j];
        float dr = mid[0] - c[0], dg = mid[1] - c[1], db = mid[2] - c[2];
        float d = dr * dr + dg * dg + db * db;
        if (d < z_d) z_d = d, z = cand[j];
    }
    int n_keep = 0;
    for (int j = 0; j < n_cand; j++)
        if (cand[j] == z || !dominated(cp, z, cand[j], lo, side)) keep[n_keep++] = cand[j];
    *nearest = z;
    return n_keep;
}

/* The colours of one cube of side 4, each to its nearest among the candidates;
 * those of centre z are counted as the cube's sums minus the others'. */
static void assign_colours(const colour_set *cs, uint32_t cube, const centre_pairs *cp,
                           const uint8_t *cand, int n_cand, int z, moments *acc) {
    float sub[KMEANS_MAX_K * 3];
    uint8_t labels[64];
    for (int j = 0; j < n_cand; j++)
        memcpy(sub + 3 * j, cp->centres + 3 * cand[j], 3 * sizeof(float));
    uint32_t first = cs->start[cube], count = cs->start[cube + 1] - first;
    kmeans_nearest(cs->colours + first, count, sub, n_cand, labels);
    moments others = {0};
    for (uint32_t i = 0; i < count; i++) {
        int j = cand[labels[i]];
        if (j == z) continue;
        moments one = colour_moments(cs->colours[first + i], cs->weights[first + i]);
        add_moments(&acc[j], &one);
        add_moments(&others, &one);
    }
    const moments *all = &cs->cube[0][cube];
    moments *to = &acc[z];
    to->w += all->w - others.w, to->r += all->r - others.r, to->g += all->g - others.g;
    to->b += all->b - others.b, to->q += all->q - others.q;
}

// acc[j] += the sums of the cube's pixels whose nearest centre is j
static void assign_cube(const colour_set *cs, int level, uint32_t cube, const int *lo,
                        const centre_pairs *cp, const uint8_t *cand, int n_cand, moments *acc) {
    const moments *m = &cs->cube[level][cube];
    if (m->w == 0) return;
    int side = 4 << level, z;
    uint8_t keep[KMEANS_MAX_K];
    int n_keep = filter_candidates(cp, cand, n_cand, lo, side, keep, &z);
    if (n_keep == 1) {
        add_moments(&acc[z], m);
        return;
    }
    if (level == 0) {
        assign_colours(cs, cube, cp, keep, n_keep, z, acc);
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
static void assign_all(const colour_set *cs, const centre_pairs *cp, moments *sums) {
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

/* ==== Empty clusters ==== */

/* The colour farthest (squared distance, in double) from its nearest centre,
 * ties to the lower index, skipping those in taken; returns -1 if all are at
 * distance 0. */
static long farthest_colour(const colour_set *cs, const float *centres, int k, const long *taken,
                            int n_taken, int *label) {
    double best_d = 0.0;
    long best = -1;
    int best_label = 0;
#pragma omp parallel
    {
        double my_d = 0.0;
        long my = -1;
        int my_label = 0;
        uint8_t labels[SEED_CHUNK];
#pragma omp for schedule(static)
        for (size_t c = 0; c < cs->n_chunks; c++) {
            size_t first = c * SEED_CHUNK;
            size_t count = cs->n_colours - first < SEED_CHUNK ? cs->n_colours - first : SEED_CHUNK;
            kmeans_nearest(cs->colours + first, count, centres, k, labels);
            for (size_t i = 0; i < count; i++) {
                uint32_t col = cs->colours[first + i];
                const float *z = centres + 3 * labels[i];
                double dr = (double)(col >> 16 & 255) - z[0], dg = (double)(col >> 8 & 255) - z[1],
                       db = (double)(col & 255) - z[2];
                double d = dr * dr + dg * dg + db * db;
                int was_taken = 0;
                for (int t = 0; t < n_taken; t++)
                    was_taken |= taken[t] == (long)(first + i);
                if (d > my_d && !was_taken) my_d = d, my = (long)(first + i), my_label = labels[i];
            }
        }
#pragma omp critical(kmeans_farthest)
        if (my >= 0 && (my_d > best_d || (my_d == best_d && my < best)))
            best_d = my_d, best = my, best_label = my_label;
    }
    *label = best_label;
    return best;
}

/* An empty cluster takes the colour farthest from its centre, moved out of
 * that centre's sums (centres are those of the assignment that gave sums).
 * Returns how many clusters were given a colour. */
static int reseed_empty(const colour_set *cs, const float *centres, int k, moments *sums) {
    long taken[KMEANS_MAX_K];
    int n_taken = 0;
    for (int j = 0; j < k; j++) {
        if (sums[j].w) continue;
        int from;
        long i = farthest_colour(cs, centres, k, taken, n_taken, &from);
        if (i < 0) break; // every pixel sits on a centre: nothing to give
        taken[n_taken++] = i;
        moments one = colour_moments(cs->colours[i], cs->weights[i]);
        moments *f = &sums[from];
        f->w -= one.w, f->r -= one.r, f->g -= one.g, f->b -= one.b, f->q -= one.q;
        sums[j] = one;
    }
    return n_taken;
}

/* ==== Lloyd ==== */

// centres (k,3) = the means of sums (a centre without pixels stays); returns the largest move
static double move_centres(const moments *sums, int k, float *centres) {
    double largest = 0.0;
    for (int j = 0; j < k; j++) {
        if (sums[j].w == 0) continue;
        double w = (double)sums[j].w, moved = 0.0;
        float mean[3] = {(float)(sums[j].r / w), (float)(sums[j].g / w), (float)(sums[j].b / w)};
        for (int d = 0; d < 3; d++) {
            double step = (double)mean[d] - centres[3 * j + d];
            moved += step * step;
            centres[3 * j + d] = mean[d];
        }
        if (sqrt(moved) > largest) largest = sqrt(moved);
    }
    return largest;
}

// sum over pixels of |x - c|^2 = q - 2 c.s + w |c|^2 per cluster
static double inertia_of(const moments *sums, const float *centres, int k) {
    double total = 0.0;
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        double cs = (double)c[0] * sums[j].r + (double)c[1] * sums[j].g + (double)c[2] * sums[j].b;
        double cc = (double)c[0] * c[0] + (double)c[1] * c[1] + (double)c[2] * c[2];
        double e = (double)sums[j].q - 2.0 * cs + (double)sums[j].w * cc;
        total += e > 0 ? e : 0.0;
    }
    return total;
}

// Lloyd from centres (k,3), updated in place; returns the iterations run
static int lloyd(const colour_set *cs, int k, float *centres, int max_iterations, double tolerance,
                 double *inertia, centre_pairs *cp) {
    moments sums[KMEANS_MAX_K];
    int it = 0, sums_current = 0; // whether sums belong to the current centres
    while (it < max_iterations) {
        it++;
        pair_centres(centres, k, cp);
        assign_all(cs, cp, sums);
        int reseeded = reseed_empty(cs, centres, k, sums);
        double moved = move_centres(sums, k, centres);
        // moved == 0: no assignment changed (none that changed any sum)
        sums_current = moved == 0.0 && !reseeded;
        if (moved < tolerance || moved == 0.0) break;
    }
    if (!sums_current) {
        pair_centres(centres, k, cp);
        assign_all(cs, cp, sums);
    }
    *inertia = inertia_of(sums, centres, k);
    return it;
}

/* ==== k-means++ (greedy, as scikit-learn: the best of 2 + ln k candidates) ==== */

/* The colour at which the running sum of weights[i] * (d2 ? d2[i] : 1), in
 * colour order, first exceeds r; chunk_sum holds that sum per SEED_CHUNK. */
static size_t locate(const colour_set *cs, const uint32_t *d2, const uint64_t *chunk_sum,
                     uint64_t r) {
    size_t c = 0;
    while (c + 1 < cs->n_chunks && r >= chunk_sum[c])
        r -= chunk_sum[c++];
    size_t end = (c + 1) * SEED_CHUNK < cs->n_colours ? (c + 1) * SEED_CHUNK : cs->n_colours;
    for (size_t i = c * SEED_CHUNK; i < end; i++) {
        uint64_t v = (uint64_t)cs->weights[i] * (d2 ? d2[i] : 1);
        if (r < v) return i;
        r -= v;
    }
    return end - 1; // not reached: r < the total
}

// d2[i] = min(d2[i], |colour i - centre|^2) (first: overwrite); chunk_pot = sums of w * d2
static void update_d2(const colour_set *cs, uint32_t centre, int first, uint32_t *d2,
                      uint64_t *chunk_pot) {
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < cs->n_chunks; c++) {
        size_t i = c * SEED_CHUNK,
               count = cs->n_colours - i < SEED_CHUNK ? cs->n_colours - i : SEED_CHUNK;
        chunk_pot[c] =
            kmeans_update_d2(cs->colours + i, cs->weights + i, d2 + i, count, centre, first);
    }
}

// pot[t] = sum of w * min(d2, |x - cand[t]|^2): the potential if cand[t] were added
static void trial_potentials(const colour_set *cs, const uint32_t *d2, const uint32_t *cand,
                             int n_cand, uint64_t *pot) {
    uint64_t p[MAX_TRIALS] = {0};
#pragma omp parallel for schedule(static) reduction(+ : p[:MAX_TRIALS])
    for (size_t c = 0; c < cs->n_chunks; c++) {
        size_t i = c * SEED_CHUNK,
               count = cs->n_colours - i < SEED_CHUNK ? cs->n_colours - i : SEED_CHUNK;
        for (int t = 0; t < n_cand; t++)
            p[t] += kmeans_potential(cs->colours + i, cs->weights + i, d2 + i, count, cand[t]);
    }
    memcpy(pot, p, sizeof p);
}

static uint32_t pick_by_weight(const colour_set *cs, rng_state *rng) {
    return cs->colours[locate(cs, NULL, cs->chunk_w, rng_below(rng, cs->n_points))];
}

// centres (k,3) from k-means++; d2 (n_colours) and chunk_pot (n_chunks) are scratch
static void seed_centres(const colour_set *cs, int k, rng_state *rng, float *centres, uint32_t *d2,
                         uint64_t *chunk_pot) {
    int trials = 2 + (int)log((double)k);
    if (trials > MAX_TRIALS) trials = MAX_TRIALS;
    uint32_t chosen = pick_by_weight(cs, rng);
    for (int j = 0; j < k; j++) {
        if (j > 0) {
            uint64_t total = 0;
            for (size_t c = 0; c < cs->n_chunks; c++)
                total += chunk_pot[c];
            if (total == 0) { // every pixel is a centre already
                chosen = pick_by_weight(cs, rng);
            } else {
                uint32_t cand[MAX_TRIALS];
                uint64_t pot[MAX_TRIALS];
                for (int t = 0; t < trials; t++)
                    cand[t] = cs->colours[locate(cs, d2, chunk_pot, rng_below(rng, total))];
                trial_potentials(cs, d2, cand, trials, pot);
                int best = 0;
                for (int t = 1; t < trials; t++)
                    if (pot[t] < pot[best]) best = t;
                chosen = cand[best];
            }
        }
        centres[3 * j + 0] = (float)(chosen >> 16 & 255);
        centres[3 * j + 1] = (float)(chosen >> 8 & 255);
        centres[3 * j + 2] = (float)(chosen & 255);
        if (j + 1 < k) update_d2(cs, chosen, j == 0, d2, chunk_pot);
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
static int fit_colours(const colour_set *cs, const kmeans_options *opt, rng_state *rng,
                       kmeans_result *res, kmeans_profile *prof, char *err, size_t errlen) {
    uint32_t *d2 = malloc((cs->n_colours ? cs->n_colours : 1) * sizeof *d2);
    uint64_t *chunk_pot = malloc((cs->n_chunks ? cs->n_chunks : 1) * sizeof *chunk_pot);
    if (!d2 || !chunk_pot) {
        free(d2);
        free(chunk_pot);
        return set_error(err, errlen, "k-means: out of memory for %zu colours", cs->n_colours);
    }
    centre_pairs *cp = malloc(sizeof *cp);
    if (!cp) {
        free(d2);
        free(chunk_pot);
        return set_error(err, errlen, "k-means: out of memory");
    }
    res->inertia = INFINITY;
    for (int run = 0; run < opt->restarts; run++) {
        float centres[KMEANS_MAX_K][3];
        double inertia, t0 = now_seconds();
        seed_centres(cs, opt->k, rng, &centres[0][0], d2, chunk_pot);
        double t1 = now_seconds();
        int it =
            lloyd(cs, opt->k, &centres[0][0], opt->max_iterations, opt->tolerance, &inertia, cp);
        prof->seed_seconds += t1 - t0;
        prof->lloyd_seconds += now_seconds() - t1;
        prof->lloyd_iterations += it;
        if (inertia < res->inertia) {
            res->inertia = inertia;
            res->iterations = it;
            memcpy(res->centres, centres, (size_t)opt->k * sizeof centres[0]);
        }
    }
    free(d2);
    free(chunk_pot);
    free(cp);
    return 0;
}

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
    prof->n_colours = cs.n_colours;
    prof->prepare_seconds = now_seconds() - t0;

    memset(res, 0, sizeof *res);
    if (opt->space == KMEANS_AB) {
        rc = kmeans_ab_fit_colours(cs.colours, cs.weights, cs.n_colours, m, opt, &rng, res, prof,
                                   err, errlen);
    } else {
        rc = fit_colours(&cs, opt, &rng, res, prof, err, errlen);
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
    centre_pairs *cp = malloc(sizeof *cp);
    if (!cp) return set_error(err, errlen, "k-means: out of memory");
    if (build_colour_set(rgb, n, NULL, n, &cs, err, errlen)) {
        free(cp);
        return -1;
    }
    double t1 = now_seconds();
    memset(res, 0, sizeof *res);
    res->k = k;
    res->n_points = n;
    memcpy(res->centres, init, (size_t)k * sizeof res->centres[0]);
    res->iterations =
        lloyd(&cs, k, &res->centres[0][0], max_iterations, tolerance, &res->inertia, cp);
    free(cp);
    prof->n_colours = cs.n_colours;
    free_colour_set(&cs);
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
