/* The chroma palette: k-means on the a*b* of the pixels (kmeans_fit with
 * KMEANS_AB), and quantisation by it.
 *
 * A pixel's a*b* depends only on its colour, so kmeans.c hands over the
 * distinct colours of the sampled pixels with their pixel counts, and each
 * becomes one weighted point (a*, b*) (lab.h, as scikit-image). Coordinates
 * are rounded to multiples of 2^-24, which changes only those below 1 in
 * magnitude, by less than 3e-8: then every coordinate is an integer in units
 * of 2^-24, and every sum of the clustering is an exact integer sum, which no
 * thread count or order of adding can change.
 *
 * The points are stored in Morton order of a 2^16 x 2^16 grid over
 * [-128, 128)^2, under a quadtree split until a cell holds LEAF_POINTS points
 * or sits on one grid cell; each node keeps the exact sums of its points. A
 * Lloyd assignment walks the tree as kmeans.c walks its colour cubes (the
 * filtering algorithm of Kanungo et al.): a centre farther than another from
 * every point of a cell, by more than float rounding can blur, is dropped for
 * that cell and its sub-cells; a cell left with one centre gives it its sums
 * whole, and only leaves that straddle a boundary go point by point through
 * the kernel of simd/kmeans_ab.h. Each point lands on exactly the centre the
 * kernel would give it, so the result is exact Lloyd.
 * kmeans.c walks its colour cubes the same way, and the rest of the fit (the
 * filtering test, Lloyd iterations, reseeding, k-means++ with its chunk
 * skipping, restarts) is kmeans_driver.h's, built here for two coordinates.
 *
 * k-means++ is greedy as scikit-learn's, on the integer potentials of
 * simd/kmeans_ab.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "kmeans_internal.h"
#include "lab.h"
#include "simd/kmeans_ab.h"
#include "util.h"

#define GRID_BITS   16 /* grid cells per axis: 2^16 over [-128, 128), side 2^-8 */
#define ROOT_LEVEL  GRID_BITS
#define LEAF_POINTS 128 /* a cell with more points is split (measured: 64 to 256 are best) */
#define TASK_LEVEL  10  /* cells of side 4 (2^10 grid cells) are the parallel tasks */

/* For kmeans_driver.h: */
#define DIM   2
#define FIXED 0x1p24 /* the coordinates' unit is 1 / FIXED */
/* Squared-distance slack of the cell test: each float distance of the kernel
 * is within 4 roundings of 2^-24 relative of the exact one, d < 2 * 256^2,
 * so within 0.032; a centre pruned with this slack can never win in the kernel. */
#define DIST_SLACK 0.125
/* The kernel's potentials are of float distances (4 roundings of 2^-24
 * relative; 2^-20 to spare), in units of 2^-13, capped (simd/kmeans_ab.h). */
#define POT_SLACK 0x1p-20
#define POT_D2(d) ((uint64_t)(fmin((d), 131072.0) * 8192.0))

typedef unsigned __int128 u128;

typedef struct {
    uint64_t w;   /* pixels */
    int64_t s[2]; /* sums of w a*, w b*, in units of 2^-24 */
    u128 q;       /* sum of w (a*^2 + b*^2), in units of 2^-48 */
} moments;

typedef struct {
    moments m;
    uint32_t first, count; /* its points */
    int32_t child;         /* the first of its children, which are consecutive; -1: a leaf */
    uint8_t n_children;
    uint8_t level; /* side 2^level grid cells */
    uint16_t u, v; /* its lowest grid cell along a* and b* */
} ab_node;

typedef struct {
    int32_t node;
    int n_cand;
    uint8_t cand[KMEANS_MAX_K];
} lloyd_task;

typedef struct {
    size_t n;          /* points */
    uint64_t n_points; /* their total weight (pixels) */
    void *block;       /* one allocation (16 n bytes) holding a, b, w and keys */
    float *a, *b;      // (n) on the 2^-24 grid, in Morton order
    uint32_t *w;       // (n)
    uint32_t *keys;    // (n) Morton keys of their grid cells
    ab_node *nodes;    // (n_nodes) nodes[0] is the root
    int32_t n_nodes, cap_nodes;
    int32_t max_tasks;     /* nodes at TASK_LEVEL, and leaves above it */
    lloyd_task *tasks;     // (max_tasks) a Lloyd walk's scratch
    size_t n_chunks;       /* of SEED_CHUNK points */
    uint64_t *chunk_w;     // (n_chunks) weight per chunk
    float (*chunk_box)[4]; // (n_chunks) their box: least a*, b*, most a*, b*
} ab_set;

typedef ab_set point_set; /* kmeans_driver.h's name for it */

static int64_t fixed_of(float x) {
    return (int64_t)((double)x * FIXED); // exact for a point on the grid
}

static moments moments_of(float a, float b, uint32_t w) {
    int64_t fa = fixed_of(a), fb = fixed_of(b);
    u128 sq = (u128)(uint64_t)(fa * fa) + (uint64_t)(fb * fb);
    return (moments){w, {(int64_t)w * fa, (int64_t)w * fb}, sq * w};
}

static moments point_moments(const ab_set *s, size_t i) {
    return moments_of(s->a[i], s->b[i], s->w[i]);
}

static float point_coord(const ab_set *s, size_t i, int d) {
    return d ? s->b[i] : s->a[i];
}

static void nearest_points(const ab_set *s, size_t first, size_t count, const float *centres, int k,
                           uint8_t *labels) {
    kmeans_nearest_ab(s->a + first, s->b + first, count, centres, k, labels);
}

static uint64_t potential_points(const ab_set *s, size_t first, size_t count, const uint32_t *d2,
                                 size_t c) {
    float at[2] = {s->a[c], s->b[c]};
    return kmeans_ab_potential(s->a + first, s->b + first, s->w + first, d2, count, at);
}

static uint64_t update_d2_points(const ab_set *s, size_t first, size_t count, uint32_t *d2,
                                 size_t c, int first_centre) {
    float at[2] = {s->a[c], s->b[c]};
    return kmeans_ab_update_d2(s->a + first, s->b + first, s->w + first, d2, count, at,
                               first_centre);
}

#include "kmeans_driver.h"

/* ==== The points and their quadtree ==== */

static uint32_t spread16(uint32_t x) {
    x = (x | x << 8) & 0x00FF00FFu;
    x = (x | x << 4) & 0x0F0F0F0Fu;
    x = (x | x << 2) & 0x33333333u;
    x = (x | x << 1) & 0x55555555u;
    return x;
}

// Morton key of the grid cell of (a, b): bits a15 b15 a14 b14 ... a0 b0
static uint32_t cell_key(int64_t a, int64_t b) {
    uint32_t u = (uint32_t)((a + ((int64_t)1 << 31)) >> (32 - GRID_BITS));
    uint32_t v = (uint32_t)((b + ((int64_t)1 << 31)) >> (32 - GRID_BITS));
    return spread16(u) << 1 | spread16(v);
}

static void free_set(ab_set *s) {
    free(s->block);
    free(s->nodes);
    free(s->chunk_w);
    free(s->chunk_box);
    free(s->tasks);
    memset(s, 0, sizeof *s);
}

// the index of the first of how_many new consecutive nodes, or -1 out of memory
static int32_t new_nodes(ab_set *s, int32_t how_many) {
    if (s->n_nodes + how_many > s->cap_nodes) {
        // a first guess seldom outgrown: the bird pixels' 1.6 M colours make n / 50 nodes
        int32_t cap = s->cap_nodes ? 2 * s->cap_nodes : (int32_t)(s->n / 16) + 1024;
        ab_node *grown = s->nodes ? realloc(s->nodes, (size_t)cap * sizeof *grown)
                                  : alloc_big((size_t)cap * sizeof *grown);
        if (!grown) return -1;
        s->nodes = grown;
        s->cap_nodes = cap;
    }
    s->n_nodes += how_many;
    return s->n_nodes - how_many;
}

// the first of the points [first, end) whose key is at least key (keys sorted)
static uint32_t lower_bound(const uint32_t *keys, uint32_t first, uint32_t end, uint64_t key) {
    while (first < end) {
        uint32_t mid = first + (end - first) / 2;
        if (keys[mid] < key)
            first = mid + 1;
        else
            end = mid;
    }
    return first;
}

/* Fills node at (its points, level and corner set): a leaf, or its non-empty
 * children, recursively; then its sums. */
static int fill_node(ab_set *s, int32_t at) {
    ab_node nd = s->nodes[at];
    nd.child = -1;
    nd.n_children = 0;
    memset(&nd.m, 0, sizeof nd.m);
    if (nd.count <= LEAF_POINTS || nd.level == 0) {
        for (uint32_t i = nd.first; i < nd.first + nd.count; i++) {
            moments one = moments_of(s->a[i], s->b[i], s->w[i]);
            add_moments(&nd.m, &one);
        }
        s->nodes[at] = nd;
        return 0;
    }
    int half = 1 << (nd.level - 1);
    uint64_t key = (uint64_t)(spread16(nd.u) << 1 | spread16(nd.v)),
             quarter = 1ull << 2 * (nd.level - 1);
    uint32_t bound[5] = {nd.first, 0, 0, 0, nd.first + nd.count};
    for (int c = 1; c < 4; c++)
        bound[c] = lower_bound(s->keys, bound[c - 1], bound[4], key + c * quarter);
    int n_children = 0;
    for (int c = 0; c < 4; c++)
        n_children += bound[c + 1] > bound[c];
    int32_t child = new_nodes(s, n_children);
    if (child < 0) return -1;
    nd.child = child;
    nd.n_children = (uint8_t)n_children;
    for (int c = 0, j = child; c < 4; c++) {
        if (bound[c + 1] == bound[c]) continue;
        ab_node *ch = &s->nodes[j++];
        ch->first = bound[c];
        ch->count = bound[c + 1] - bound[c];
        ch->level = (uint8_t)(nd.level - 1);
        ch->u = (uint16_t)(nd.u + (c >> 1) * half);
        ch->v = (uint16_t)(nd.v + (c & 1) * half);
    }
    for (int j = child; j < child + n_children; j++) {
        if (fill_node(s, j)) return -1;
        add_moments(&nd.m, &s->nodes[j].m);
    }
    s->nodes[at] = nd;
    return 0;
}

/* A point on its way into the set: its cell's Morton key, and itself. */
typedef struct {
    uint32_t key;
    float a, b;
    uint32_t w;
} ab_record;

// the point (a, b) rounded to the 2^-24 grid, with its key
static ab_record make_record(float a, float b, uint32_t w) {
    int64_t fa = llrint((double)a * FIXED), fb = llrint((double)b * FIXED);
    return (ab_record){cell_key(fa, fb), (float)((double)fa / FIXED), (float)((double)fb / FIXED),
                       w};
}

#define RADIX_BITS 11
#define RADIX      (1u << RADIX_BITS)

/* One stable counting pass of an LSD radix sort on the digit of key at shift:
 * each thread counts its range, then scatters it to its place (the same
 * output for any thread count). hist is (threads, RADIX). */
static void radix_pass(const ab_record *in, ab_record *out, size_t n, int shift, uint32_t *hist) {
#pragma omp parallel
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        uint32_t *h = hist + t * RADIX;
        memset(h, 0, RADIX * sizeof *h);
        for (size_t i = lo; i < hi; i++)
            h[in[i].key >> shift & (RADIX - 1)]++;
#pragma omp barrier
#pragma omp single
        {
            uint32_t total = 0;
            for (uint32_t d = 0; d < RADIX; d++)
                for (size_t u = 0; u < nt; u++) {
                    uint32_t count = hist[u * RADIX + d];
                    hist[u * RADIX + d] = total;
                    total += count;
                }
        }
        for (size_t i = lo; i < hi; i++)
            out[h[in[i].key >> shift & (RADIX - 1)]++] = in[i];
    }
}

/* The set of the n points in block (n records, from alloc_big), which it
 * takes over: sorted by key (three radix passes), stored there as the arrays
 * keys, a, b, w, then the quadtree over them. */
static int build_set(void *block, size_t n, ab_set *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->block = block;
    s->n_chunks = (n + SEED_CHUNK - 1) / SEED_CHUNK;
    s->chunk_w = malloc(s->n_chunks * sizeof *s->chunk_w);
    s->chunk_box = malloc(s->n_chunks * sizeof *s->chunk_box);
    ab_record *rec = block, *tmp = alloc_big(n * sizeof *tmp);
    uint32_t *hist = malloc((size_t)omp_get_max_threads() * RADIX * sizeof *hist);
    int rc = -1;
    if (s->chunk_w && s->chunk_box && tmp && hist) {
        radix_pass(rec, tmp, n, 0, hist);
        radix_pass(tmp, rec, n, RADIX_BITS, hist);
        radix_pass(rec, tmp, n, 2 * RADIX_BITS, hist);
        s->keys = block;
        s->a = (float *)(s->keys + n);
        s->b = s->a + n;
        s->w = (uint32_t *)(s->b + n);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            s->keys[i] = tmp[i].key;
            s->a[i] = tmp[i].a;
            s->b[i] = tmp[i].b;
            s->w[i] = tmp[i].w;
        }
        sum_chunks(s);
        rc = new_nodes(s, 1); // the root, 0
        if (rc == 0) {
            s->nodes[0] = (ab_node){.first = 0, .count = (uint32_t)n, .level = ROOT_LEVEL};
            rc = fill_node(s, 0);
        }
    }
    free(tmp);
    free(hist);
    if (rc == 0) {
        for (int32_t j = 0; j < s->n_nodes; j++) {
            const ab_node *nd = &s->nodes[j];
            s->max_tasks += nd->level == TASK_LEVEL || (nd->level > TASK_LEVEL && nd->child < 0);
        }
        s->tasks = malloc((size_t)s->max_tasks * sizeof *s->tasks);
        if (s->tasks) return 0;
    }
    free_set(s);
    return set_error(err, errlen, "k-means: out of memory for the a*b* of %zu points", n);
}
/* ==== Lloyd assignment by cell filtering ==== */

/* filter_candidates over the node's cell. */
static int filter_node(const centre_pairs *cp, const ab_node *nd, const uint8_t *cand, int n_cand,
                       uint8_t *keep, int *nearest) {
    double side = (double)(1u << nd->level) * 0x1p-8; // grid cells are 2^-8 wide
    double lo[2] = {-128.0 + nd->u * 0x1p-8, -128.0 + nd->v * 0x1p-8};
    float mid[2] = {(float)(lo[0] + 0.5 * side), (float)(lo[1] + 0.5 * side)};
    return filter_candidates(cp, lo, side, mid, cand, n_cand, keep, nearest);
}

// acc[j] += the sums of the node's points whose nearest centre is j
static void assign_node(const ab_set *s, int32_t at, const centre_pairs *cp, const uint8_t *cand,
                        int n_cand, moments *acc) {
    const ab_node *nd = &s->nodes[at];
    uint8_t keep[KMEANS_MAX_K];
    int z, n_keep = filter_node(cp, nd, cand, n_cand, keep, &z);
    if (n_keep == 1)
        add_moments(&acc[z], &nd->m);
    else if (nd->child < 0)
        assign_points(s, nd->first, nd->count, &nd->m, cp, keep, n_keep, z, acc);
    else
        for (int32_t c = nd->child; c < nd->child + nd->n_children; c++)
            assign_node(s, c, cp, keep, n_keep, acc);
}

/* The walk above TASK_LEVEL, on one thread: a cell with one centre left goes
 * to sums; each cell at TASK_LEVEL (or a leaf above it) becomes a task with
 * its candidates. */
static void collect_tasks(const ab_set *s, int32_t at, const centre_pairs *cp, const uint8_t *cand,
                          int n_cand, lloyd_task *tasks, int32_t *n_tasks, moments *sums) {
    const ab_node *nd = &s->nodes[at];
    if (nd->level <= TASK_LEVEL || nd->child < 0) {
        lloyd_task *t = &tasks[(*n_tasks)++];
        t->node = at;
        t->n_cand = n_cand;
        memcpy(t->cand, cand, (size_t)n_cand);
        return;
    }
    uint8_t keep[KMEANS_MAX_K];
    int z, n_keep = filter_node(cp, nd, cand, n_cand, keep, &z);
    if (n_keep == 1) {
        add_moments(&sums[z], &nd->m);
        return;
    }
    for (int32_t c = nd->child; c < nd->child + nd->n_children; c++)
        collect_tasks(s, c, cp, keep, n_keep, tasks, n_tasks, sums);
}

// sums[j] = moments of the points nearest to centre j of cp
static void assign_all(const ab_set *s, const centre_pairs *cp, moments *sums) {
    lloyd_task *tasks = s->tasks;
    int k = cp->k;
    uint8_t all[KMEANS_MAX_K];
    for (int j = 0; j < k; j++)
        all[j] = (uint8_t)j;
    memset(sums, 0, (size_t)k * sizeof *sums);
    int32_t n_tasks = 0;
    collect_tasks(s, 0, cp, all, k, tasks, &n_tasks, sums);
#pragma omp parallel
    {
        moments acc[KMEANS_MAX_K];
        memset(acc, 0, sizeof acc);
#pragma omp for schedule(dynamic, 1) nowait
        for (int32_t t = 0; t < n_tasks; t++) {
            assign_node(s, tasks[t].node, cp, tasks[t].cand, tasks[t].n_cand, acc);
        }
        // Integer sums: the order in which threads add does not matter.
#pragma omp critical(kmeans_ab_sums)
        for (int j = 0; j < k; j++)
            add_moments(&sums[j], &acc[j]);
    }
}
/* ==== The fit ==== */

// centres (k,3) = (a*, b*, 0), sorted by chroma, lowest first; ties by a* then b*
static void sort_by_chroma(float (*centres)[3], int k) {
    for (int i = 1; i < k; i++) {
        float c[3] = {centres[i][0], centres[i][1], 0.0f};
        double chroma2 = (double)c[0] * c[0] + (double)c[1] * c[1];
        int j = i;
        for (; j > 0; j--) {
            const float *p = centres[j - 1];
            double p2 = (double)p[0] * p[0] + (double)p[1] * p[1];
            if (p2 < chroma2 || (p2 == chroma2 && (p[0] < c[0] || (p[0] == c[0] && p[1] <= c[1]))))
                break;
            memcpy(centres[j], p, sizeof centres[j]);
        }
        memcpy(centres[j], c, sizeof c);
    }
}

/* Records of the a*b* of colours (n) 0x00RRGGBB with weights (n), into
 * block (n records): lab_from_rgb8 on LAB_CHUNK colours at a time. */
static int chroma_records(const uint32_t *colours, const uint32_t *weights, size_t n,
                          ab_record *block) {
    enum { LAB_CHUNK = 65536 };
    uint8_t *rgb = malloc(3 * LAB_CHUNK);
    float *lab = malloc(3 * LAB_CHUNK * sizeof *lab);
    for (size_t first = 0; first < n && rgb && lab; first += LAB_CHUNK) {
        size_t count = n - first < LAB_CHUNK ? n - first : LAB_CHUNK;
        for (size_t i = 0; i < count; i++) {
            uint32_t c = colours[first + i];
            rgb[3 * i] = (uint8_t)(c >> 16), rgb[3 * i + 1] = (uint8_t)(c >> 8);
            rgb[3 * i + 2] = (uint8_t)c;
        }
        lab_from_rgb8(rgb, count, lab);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < count; i++)
            block[first + i] = make_record(lab[3 * i + 1], lab[3 * i + 2], weights[first + i]);
    }
    int rc = rgb && lab ? 0 : -1;
    free(rgb);
    free(lab);
    return rc;
}

int kmeans_ab_fit_colours(const uint32_t *colours, const uint32_t *weights, size_t n_colours,
                          size_t n_points, const kmeans_options *opt, rng_state *rng,
                          kmeans_result *res, kmeans_profile *prof, char *err, size_t errlen) {
    double t0 = now_seconds();
    ab_record *block = alloc_big(n_colours * sizeof *block);
    if (!block || chroma_records(colours, weights, n_colours, block)) {
        free(block);
        return set_error(err, errlen, "k-means: out of memory for the a*b* of %zu colours",
                         n_colours);
    }
    ab_set s;
    int rc = build_set(block, n_colours, &s, err, errlen);
    if (rc) return rc;
    prof->prepare_seconds += now_seconds() - t0;
    memset(res, 0, sizeof *res);
    rc = fit_restarts(&s, opt, rng, res, prof, err, errlen);
    free_set(&s);
    if (rc) return rc;
    res->k = opt->k;
    res->n_points = n_points;
    sort_by_chroma(res->centres, res->k);
    return 0;
}

/* ==== The API ==== */

int kmeans_lloyd_ab(const float *ab, const uint32_t *weights, size_t n, int k, const float *init,
                    int max_iterations, double tolerance, kmeans_result *res, kmeans_profile *prof,
                    char *err, size_t errlen) {
    kmeans_profile unused;
    if (!prof) prof = &unused;
    memset(prof, 0, sizeof *prof);
    if (k < 2 || k > KMEANS_MAX_K)
        return set_error(err, errlen, "k-means: k must be 2..%d, not %d", KMEANS_MAX_K, k);
    if (max_iterations < 1)
        return set_error(err, errlen, "k-means: max_iterations must be at least 1, not %d",
                         max_iterations);
    if (!(tolerance >= 0.0 && tolerance < INFINITY))
        return set_error(err, errlen, "k-means: the tolerance must be finite and >= 0, not %g",
                         tolerance);
    if (!ab || n == 0) return set_error(err, errlen, "k-means: no points");
    if (!init) return set_error(err, errlen, "k-means: no initial centres");
    for (int j = 0; j < 2 * k; j++) // also what keeps DIST_SLACK sound
        if (!(fabsf(init[j]) < 128.0f))
            return set_error(err, errlen,
                             "k-means: initial centre %d: %s* = %g is not in (-128, 128)", j / 2,
                             j % 2 ? "b" : "a", init[j]);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        for (int d = 0; d < 2; d++)
            if (!(fabsf(ab[2 * i + d]) < 128.0f))
                return set_error(err, errlen, "k-means: point %zu: %s* = %g is not in (-128, 128)",
                                 i, d ? "b" : "a", ab[2 * i + d]);
        if (weights && weights[i] == 0)
            return set_error(err, errlen, "k-means: point %zu has weight 0", i);
        total += weights ? weights[i] : 1;
    }
    if (total > UINT32_MAX)
        return set_error(err, errlen, "k-means: a total weight of %llu, more than %u",
                         (unsigned long long)total, UINT32_MAX);
    double t0 = now_seconds();
    ab_record *block = alloc_big(n * sizeof *block);
    if (!block) return set_error(err, errlen, "k-means: out of memory for %zu a*b* points", n);
    for (size_t i = 0; i < n; i++)
        block[i] = make_record(ab[2 * i], ab[2 * i + 1], weights ? weights[i] : 1);
    ab_set s;
    if (build_set(block, n, &s, err, errlen)) return -1;
    double t1 = now_seconds();
    int rc = lloyd_alone(&s, k, init, max_iterations, tolerance, res, err, errlen);
    prof->n_colours = s.n;
    free_set(&s);
    if (rc) return rc;
    res->seconds = now_seconds() - t0;
    prof->prepare_seconds = t1 - t0;
    prof->lloyd_seconds = res->seconds - prof->prepare_seconds;
    prof->lloyd_iterations = res->iterations;
    return 0;
}

void kmeans_quantise_ab(const float *lab, size_t n, const kmeans_result *palette,
                        uint8_t *classes) {
    float centres[KMEANS_MAX_K * 2];
    for (int j = 0; j < palette->k; j++) {
        centres[2 * j] = palette->centres[j][0];
        centres[2 * j + 1] = palette->centres[j][1];
    }
    const size_t chunk = 16384;
    size_t n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t first = c * chunk, count = n - first < chunk ? n - first : chunk;
        kmeans_nearest_lab(lab + 3 * first, count, centres, palette->k, classes + first);
    }
}
