/* The k-means driver, one source built twice: kmeans.c includes it for RGB
 * (the colour cube), kmeans_ab.c for a*b* (the quadtree). It holds all that
 * does not depend on how a space stores its points: the filtering test of
 * the Lloyd walk, a leaf's points through the kernel, empty-cluster
 * reseeding, Lloyd iterations, greedy k-means++ with its chunk skipping,
 * restarts and inertia. Compiled in each space's file, it inlines that
 * space's kernels and sums as if written there.
 *
 * Points are weighted, stored in an order that keeps near points together
 * (Morton order), with integer coordinates in units of 1 / FIXED, so that
 * every sum below is an exact integer sum: no thread count or order of adding
 * changes a bit of the result.
 *
 * The file that includes this defines first:
 *   DIM           coordinates per point (3: r, g, b; 2: a*, b*)
 *   FIXED         the unit of the sums (1.0; 2^24)
 *   DIST_SLACK    squared distance by which the kernel's float distance can
 *                 be off the exact one (the filtering test's margin)
 *   POT_SLACK     the same for the potentials, relative
 *   POT_D2(d)     an exact squared distance d in the potentials' units
 *   moments       { uint64_t w; integer s[DIM]; integer q; }: the weight, the
 *                 sums of w x FIXED and of w |x|^2 FIXED^2 of a set of points
 *   point_set     with at least these fields:
 *                   size_t n;                      points
 *                   uint64_t n_points;             their total weight
 *                   uint32_t *w;                   (n) their weights
 *                   size_t n_chunks;               SEED_CHUNK points each
 *                   uint64_t *chunk_w;             (n_chunks) their weight
 *                   float (*chunk_box)[2 * DIM];   (n_chunks) least then most x
 *   and the static functions
 *   point_moments(s, i)       the moments of point i alone
 *   point_coord(s, i, d)      coordinate d of point i
 *   nearest_points(s, first, count, centres, k, labels)      the kernel
 *   potential_points(s, first, count, d2, c)                 the kernels of
 *   update_d2_points(s, first, count, d2, c, first_centre)   k-means++, c a point
 * and after it assign_all (declared here): the walk over its points' tree. */
#ifndef COLORIZE_KMEANS_DRIVER_H
#define COLORIZE_KMEANS_DRIVER_H

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kmeans.h"
#include "util.h"

#define POINT_BLOCK 256  /* points per call of the kernel in a leaf */
#define SEED_CHUNK  4096 /* points per chunk of the k-means++ running sums */
#define MAX_TRIALS  8    /* greedy k-means++ candidates per centre: 2 + ln k */

/* A large buffer, on 2 MB pages where the system has them: the first touch of
 * each fresh 4 KB page costs up to 25 us on the virtual machines this runs
 * on, more than sorting the points into it. */
static void *alloc_big(size_t bytes) {
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        size_t size = (bytes + huge - 1) / huge * huge;
        void *p = aligned_alloc(huge, size);
        if (p) madvise(p, size, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}

static void add_moments(moments *to, const moments *m) {
    to->w += m->w;
    for (int d = 0; d < DIM; d++)
        to->s[d] += m->s[d];
    to->q += m->q;
}

static void sub_moments(moments *from, const moments *m) {
    from->w -= m->w;
    for (int d = 0; d < DIM; d++)
        from->s[d] -= m->s[d];
    from->q -= m->q;
}

// chunk_w, chunk_box and n_points from the points' weights and coordinates
static void sum_chunks(point_set *s) {
    s->n_points = 0;
    for (size_t c = 0; c < s->n_chunks; c++) {
        size_t end = (c + 1) * SEED_CHUNK < s->n ? (c + 1) * SEED_CHUNK : s->n;
        uint64_t sum = 0;
        float *box = s->chunk_box[c];
        for (int d = 0; d < DIM; d++)
            box[d] = box[DIM + d] = point_coord(s, c * SEED_CHUNK, d);
        for (size_t i = c * SEED_CHUNK; i < end; i++) {
            sum += s->w[i];
            for (int d = 0; d < DIM; d++) {
                float x = point_coord(s, i, d);
                box[d] = fminf(box[d], x), box[DIM + d] = fmaxf(box[DIM + d], x);
            }
        }
        s->chunk_w[c] = sum;
        s->n_points += sum;
    }
}

/* ==== Lloyd assignment by filtering (Kanungo et al.) ==== */

/* Per Lloyd iteration: for each pair of centres (a, b), the terms of
 * |x-a|^2 - |x-b|^2 = sum 2 x (b - a) + a^2 - b^2, linear in x. */
typedef struct {
    double diff[DIM]; // b - a
    double rise;      // sum of the positive parts of b - a
    double base;      // a^2 - b^2
} centre_pair;

typedef struct {
    int k;
    const float *centres;                         // (k,DIM)
    centre_pair pair[KMEANS_MAX_K][KMEANS_MAX_K]; // [a][b]: a's row is one run
} centre_pairs;

static void pair_centres(const float *centres, int k, centre_pairs *cp) {
    cp->k = k;
    cp->centres = centres;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            const float *ca = centres + DIM * a, *cb = centres + DIM * b;
            centre_pair *p = &cp->pair[a][b];
            p->rise = 0.0;
            p->base = 0.0;
            for (int d = 0; d < DIM; d++) {
                double diff = (double)cb[d] - ca[d];
                p->diff[d] = diff;
                p->rise += diff > 0 ? diff : 0.0;
                p->base += (double)ca[d] * ca[d] - (double)cb[d] * cb[d];
            }
        }
}

/* Whether centre b is farther than centre a, by more than DIST_SLACK in
 * squared distance, from every point of the box [lo, lo + extent]^DIM: the
 * largest |x-a|^2 - |x-b|^2 is at the corner taking the high side where
 * b - a > 0. */
static int dominated(const centre_pairs *cp, int a, int b, const double *lo, double extent) {
    const centre_pair *p = &cp->pair[a][b];
    double dot = lo[0] * p->diff[0];
    for (int d = 1; d < DIM; d++)
        dot += lo[d] * p->diff[d];
    double worst = 2.0 * dot + 2.0 * extent * p->rise + p->base;
    return worst < -DIST_SLACK;
}

/* Keeps in keep (increasing index order) the candidates not dominated over
 * the box [lo, lo + extent]^DIM by the one nearest its middle mid, which goes
 * to *nearest; returns how many. */
static int filter_candidates(const centre_pairs *cp, const double *lo, double extent,
                             const float *mid, const uint8_t *cand, int n_cand, uint8_t *keep,
                             int *nearest) {
    int z = cand[0];
    float z_d = INFINITY;
    for (int j = 0; j < n_cand; j++) {
        const float *c = cp->centres + DIM * cand[j];
        float dx = mid[0] - c[0], d = dx * dx;
        for (int e = 1; e < DIM; e++)
            dx = mid[e] - c[e], d += dx * dx;
        if (d < z_d) z_d = d, z = cand[j];
    }
    int n_keep = 0;
    for (int j = 0; j < n_cand; j++)
        if (cand[j] == z || !dominated(cp, z, cand[j], lo, extent)) keep[n_keep++] = cand[j];
    *nearest = z;
    return n_keep;
}

/* The points [first, first + count) of a leaf whose sums are all, each to its
 * nearest among the candidates (the kernel); those of centre z are counted as
 * all minus the others'. */
static void assign_points(const point_set *s, uint32_t first, uint32_t count, const moments *all,
                          const centre_pairs *cp, const uint8_t *cand, int n_cand, int z,
                          moments *acc) {
    float sub[KMEANS_MAX_K * DIM];
    uint8_t labels[POINT_BLOCK];
    for (int j = 0; j < n_cand; j++)
        memcpy(sub + DIM * j, cp->centres + DIM * cand[j], DIM * sizeof(float));
    moments others = {0};
    for (uint32_t at = first; at < first + count; at += POINT_BLOCK) {
        uint32_t n = first + count - at < POINT_BLOCK ? first + count - at : POINT_BLOCK;
        nearest_points(s, at, n, sub, n_cand, labels);
        for (uint32_t i = 0; i < n; i++) {
            int j = cand[labels[i]];
            if (j == z) continue;
            moments one = point_moments(s, at + i);
            add_moments(&acc[j], &one);
            add_moments(&others, &one);
        }
    }
    moments rest = *all;
    sub_moments(&rest, &others);
    add_moments(&acc[z], &rest);
}

// sums[j] = moments of the points nearest to centre j of cp (the space's walk)
static void assign_all(const point_set *s, const centre_pairs *cp, moments *sums);

/* ==== Empty clusters ==== */

/* The point farthest (squared distance, in double) from its nearest centre,
 * ties to the lower index, skipping those in taken; returns -1 if all are at
 * distance 0. */
static long farthest_point(const point_set *s, const float *centres, int k, const long *taken,
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
        for (size_t c = 0; c < s->n_chunks; c++) {
            size_t first = c * SEED_CHUNK;
            size_t count = s->n - first < SEED_CHUNK ? s->n - first : SEED_CHUNK;
            nearest_points(s, first, count, centres, k, labels);
            for (size_t i = 0; i < count; i++) {
                const float *z = centres + DIM * labels[i];
                double dx = (double)point_coord(s, first + i, 0) - z[0], d = dx * dx;
                for (int e = 1; e < DIM; e++)
                    dx = (double)point_coord(s, first + i, e) - z[e], d += dx * dx;
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

/* An empty cluster takes the point farthest from its centre, moved out of that
 * centre's sums (centres are those of the assignment that gave sums). Returns
 * how many clusters were given a point. */
static int reseed_empty(const point_set *s, const float *centres, int k, moments *sums) {
    long taken[KMEANS_MAX_K];
    int n_taken = 0;
    for (int j = 0; j < k; j++) {
        if (sums[j].w) continue;
        int from;
        long i = farthest_point(s, centres, k, taken, n_taken, &from);
        if (i < 0) break; // every point sits on a centre: nothing to give
        taken[n_taken++] = i;
        moments one = point_moments(s, (size_t)i);
        sub_moments(&sums[from], &one);
        sums[j] = one;
    }
    return n_taken;
}

/* ==== Lloyd ==== */

// centres (k,DIM) = the means of sums (a centre without points stays); returns the largest move
static double move_centres(const moments *sums, int k, float *centres) {
    double largest = 0.0;
    for (int j = 0; j < k; j++) {
        if (sums[j].w == 0) continue;
        double w = (double)sums[j].w, moved = 0.0;
        float mean[DIM];
        for (int d = 0; d < DIM; d++)
            mean[d] = (float)((double)sums[j].s[d] / FIXED / w);
        for (int d = 0; d < DIM; d++) {
            double step = (double)mean[d] - centres[DIM * j + d];
            moved += step * step;
            centres[DIM * j + d] = mean[d];
        }
        if (sqrt(moved) > largest) largest = sqrt(moved);
    }
    return largest;
}

// sum over points of w |x - c|^2 = q - 2 c.s + w |c|^2 per cluster
static double inertia_of(const moments *sums, const float *centres, int k) {
    double total = 0.0;
    for (int j = 0; j < k; j++) {
        const float *c = centres + DIM * j;
        double cs = (double)c[0] * (double)sums[j].s[0], cc = (double)c[0] * c[0];
        for (int d = 1; d < DIM; d++) {
            cs += (double)c[d] * (double)sums[j].s[d];
            cc += (double)c[d] * c[d];
        }
        double e =
            (double)sums[j].q / (FIXED * FIXED) - 2.0 * (cs / FIXED) + (double)sums[j].w * cc;
        total += e > 0 ? e : 0.0;
    }
    return total;
}

// Lloyd from centres (k,DIM), updated in place; returns the iterations run
static int lloyd(const point_set *s, int k, float *centres, int max_iterations, double tolerance,
                 double *inertia, centre_pairs *cp) {
    moments sums[KMEANS_MAX_K];
    int it = 0, sums_current = 0; // whether sums belong to the current centres
    while (it < max_iterations) {
        it++;
        pair_centres(centres, k, cp);
        assign_all(s, cp, sums);
        int reseeded = reseed_empty(s, centres, k, sums);
        double moved = move_centres(sums, k, centres);
        // moved == 0: no assignment changed (none that changed any sum)
        sums_current = moved == 0.0 && !reseeded;
        if (moved < tolerance || moved == 0.0) break;
    }
    if (!sums_current) {
        pair_centres(centres, k, cp);
        assign_all(s, cp, sums);
    }
    *inertia = inertia_of(sums, centres, k);
    return it;
}

/* ==== k-means++ (greedy, as scikit-learn: the best of 2 + ln k candidates) ==== */

/* The point at which the running sum of w[i] * (d2 ? d2[i] : 1), in point
 * order, first exceeds r; chunk_sum holds that sum per SEED_CHUNK. */
static size_t locate(const point_set *s, const uint32_t *d2, const uint64_t *chunk_sum,
                     uint64_t r) {
    size_t c = 0;
    while (c + 1 < s->n_chunks && r >= chunk_sum[c])
        r -= chunk_sum[c++];
    size_t end = (c + 1) * SEED_CHUNK < s->n ? (c + 1) * SEED_CHUNK : s->n;
    for (size_t i = c * SEED_CHUNK; i < end; i++) {
        uint64_t v = (uint64_t)s->w[i] * (d2 ? d2[i] : 1);
        if (r < v) return i;
        r -= v;
    }
    return end - 1; // not reached: r < the total
}

/* What k-means++ keeps: each point's d2 to its nearest centre so far, and per
 * chunk the sum of w * d2 and the largest d2. */
typedef struct {
    uint32_t *d2;        // (n)
    uint64_t *chunk_pot; // (n_chunks)
    uint32_t *chunk_max; // (n_chunks)
} seed_state;

/* Whether no point of chunk ch can come nearer to c than its d2 already is:
 * the least exact squared distance from c to the chunk's box, less the
 * kernel's rounding, in the potential's units, is at least the chunk's
 * largest d2. Points are in Morton order, so a chunk's box is small, and
 * most chunks are far from a new centre. */
static int chunk_unaffected(const point_set *s, const seed_state *st, size_t ch, const float *c) {
    const float *box = s->chunk_box[ch];
    double d = 0.0;
    for (int e = 0; e < DIM; e++) {
        double out = fmax(fmax((double)box[e] - c[e], (double)c[e] - box[DIM + e]), 0.0);
        d += out * out;
    }
    return POT_D2(d * (1.0 - POT_SLACK)) >= st->chunk_max[ch];
}

// the coordinates of point i as a centre
static void centre_at(const point_set *s, size_t i, float *c) {
    for (int d = 0; d < DIM; d++)
        c[d] = point_coord(s, i, d);
}

// d2[i] = min(d2[i], d2 of point i to point c) (first: overwrite), and the chunks' sums and maxima
static void update_d2(const point_set *s, size_t c, int first, seed_state *st) {
    float at[DIM];
    centre_at(s, c, at);
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t ch = 0; ch < s->n_chunks; ch++) {
        if (!first && chunk_unaffected(s, st, ch, at)) continue;
        size_t i = ch * SEED_CHUNK, count = s->n - i < SEED_CHUNK ? s->n - i : SEED_CHUNK;
        uint32_t *d2 = st->d2 + i, most = 0;
        st->chunk_pot[ch] = update_d2_points(s, i, count, d2, c, first);
        for (size_t j = 0; j < count; j++)
            most = d2[j] > most ? d2[j] : most;
        st->chunk_max[ch] = most;
    }
}

// pot[t] = sum of w * min(d2, d2 to point cand[t]): the potential if cand[t] were added
static void trial_potentials(const point_set *s, const seed_state *st, const size_t *cand,
                             int n_cand, uint64_t *pot) {
    float at[MAX_TRIALS][DIM];
    for (int t = 0; t < n_cand; t++)
        centre_at(s, cand[t], at[t]);
    uint64_t p[MAX_TRIALS] = {0};
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : p[:MAX_TRIALS])
    for (size_t ch = 0; ch < s->n_chunks; ch++) {
        size_t i = ch * SEED_CHUNK, count = s->n - i < SEED_CHUNK ? s->n - i : SEED_CHUNK;
        for (int t = 0; t < n_cand; t++)
            p[t] += chunk_unaffected(s, st, ch, at[t])
                        ? st->chunk_pot[ch]
                        : potential_points(s, i, count, st->d2 + i, cand[t]);
    }
    memcpy(pot, p, sizeof p);
}

static size_t pick_by_weight(const point_set *s, rng_state *rng) {
    return locate(s, NULL, s->chunk_w, rng_below(rng, s->n_points));
}

// centres (k,DIM) from k-means++; st is scratch
static void seed_centres(const point_set *s, int k, rng_state *rng, float *centres,
                         seed_state *st) {
    int trials = 2 + (int)log((double)k);
    if (trials > MAX_TRIALS) trials = MAX_TRIALS;
    size_t chosen = pick_by_weight(s, rng);
    for (int j = 0; j < k; j++) {
        if (j > 0) {
            uint64_t total = 0;
            for (size_t c = 0; c < s->n_chunks; c++)
                total += st->chunk_pot[c];
            if (total == 0) { // every pixel is a centre already
                chosen = pick_by_weight(s, rng);
            } else {
                size_t cand[MAX_TRIALS];
                uint64_t pot[MAX_TRIALS];
                for (int t = 0; t < trials; t++)
                    cand[t] = locate(s, st->d2, st->chunk_pot, rng_below(rng, total));
                trial_potentials(s, st, cand, trials, pot);
                int best = 0;
                for (int t = 1; t < trials; t++)
                    if (pot[t] < pot[best]) best = t;
                chosen = cand[best];
            }
        }
        centre_at(s, chosen, centres + DIM * j);
        if (j + 1 < k) update_d2(s, chosen, j == 0, st);
    }
}

/* ==== Restarts ==== */

typedef struct {
    centre_pairs *pairs;
    seed_state seed;
} fit_scratch;

static void free_scratch(fit_scratch *fs) {
    free(fs->pairs);
    free(fs->seed.d2);
    free(fs->seed.chunk_pot);
    free(fs->seed.chunk_max);
}

static int alloc_scratch(const point_set *s, int seeding, fit_scratch *fs, char *err,
                         size_t errlen) {
    memset(fs, 0, sizeof *fs);
    fs->pairs = malloc(sizeof *fs->pairs);
    seed_state *st = &fs->seed;
    if (seeding) {
        st->d2 = alloc_big(s->n * sizeof *st->d2);
        st->chunk_pot = malloc((s->n_chunks ? s->n_chunks : 1) * sizeof *st->chunk_pot);
        st->chunk_max = malloc((s->n_chunks ? s->n_chunks : 1) * sizeof *st->chunk_max);
    }
    if (fs->pairs && (!seeding || (st->d2 && st->chunk_pot && st->chunk_max))) return 0;
    free_scratch(fs);
    return set_error(err, errlen, "k-means: out of memory for %zu points", s->n);
}

/* opt's restarts of k-means++ then Lloyd on s; res gets the k centres
 * (coordinates past DIM 0, unsorted), the inertia and iterations of the run
 * with the lowest inertia; prof the seed and Lloyd times. */
static int fit_restarts(const point_set *s, const kmeans_options *opt, rng_state *rng,
                        kmeans_result *res, kmeans_profile *prof, char *err, size_t errlen) {
    fit_scratch fs;
    if (alloc_scratch(s, 1, &fs, err, errlen)) return -1;
    res->inertia = INFINITY;
    for (int run = 0; run < opt->restarts; run++) {
        float centres[KMEANS_MAX_K][DIM];
        double inertia, t0 = now_seconds();
        seed_centres(s, opt->k, rng, &centres[0][0], &fs.seed);
        double t1 = now_seconds();
        int it = lloyd(s, opt->k, &centres[0][0], opt->max_iterations, opt->tolerance, &inertia,
                       fs.pairs);
        prof->seed_seconds += t1 - t0;
        prof->lloyd_seconds += now_seconds() - t1;
        prof->lloyd_iterations += it;
        if (inertia < res->inertia) {
            res->inertia = inertia;
            res->iterations = it;
            for (int j = 0; j < opt->k; j++)
                for (int d = 0; d < 3; d++)
                    res->centres[j][d] = d < DIM ? centres[j][d] : 0.0f;
        }
    }
    free_scratch(&fs);
    return 0;
}

/* Lloyd alone on s from init (k,DIM): res gets where each centre ended
 * (unsorted), the inertia and iterations; prof the Lloyd time. */
static int lloyd_alone(const point_set *s, int k, const float *init, int max_iterations,
                       double tolerance, kmeans_result *res, char *err, size_t errlen) {
    fit_scratch fs;
    if (alloc_scratch(s, 0, &fs, err, errlen)) return -1;
    float centres[KMEANS_MAX_K][DIM];
    memcpy(centres, init, (size_t)k * sizeof centres[0]);
    memset(res, 0, sizeof *res);
    res->k = k;
    res->n_points = s->n_points;
    res->iterations =
        lloyd(s, k, &centres[0][0], max_iterations, tolerance, &res->inertia, fs.pairs);
    for (int j = 0; j < k; j++)
        for (int d = 0; d < DIM; d++)
            res->centres[j][d] = centres[j][d];
    free_scratch(&fs);
    return 0;
}

#endif
