/* Chroma k-means benchmark: every bird pixel of CIFAR-10 (5,222,400 pixels,
 * through colorize's own loader), k = 16, 32 and 64, sample 1: the a*b* fit
 * (time, its parts, inertia) beside the RGB fit of the same pixels, the
 * a*b* quantisation of them all, and the bit-identity checks. Compare with
 * scikit-learn by tests/compare_sklearn_ab.py.
 *
 *   build/tests/bench_kmeans_ab [--runs N] [--centres FILE] [K...]
 *
 * (data: $COLORIZE_SHARED_CIFAR or ../shared/cifar). --centres writes each
 * a*b* palette as a line 'k=K a0 b0 a1 b1 ...' for compare_sklearn_ab.py. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "kmeans.h"
#include "lab.h"
#include "simd/simd.h"
#include "util.h"

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

static void fit(const uint8_t *rgb, size_t n, int k, kmeans_space space, kmeans_result *res,
                kmeans_profile *prof) {
    kmeans_options opt;
    kmeans_default_options(&opt);
    opt.k = k;
    opt.space = space;
    char err[256];
    if (kmeans_fit_profiled(rgb, n, &opt, res, prof, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

// median over runs of the fit's wall time and parts (ms); res gets the last result
static void time_fit(const uint8_t *rgb, size_t n, int k, kmeans_space space, int runs,
                     kmeans_result *res) {
    double total[64], prep[64], seed[64], lloyd[64];
    kmeans_profile p;
    for (int r = 0; r < runs; r++) {
        fit(rgb, n, k, space, res, &p);
        total[r] = 1e3 * res->seconds, prep[r] = 1e3 * p.prepare_seconds;
        seed[r] = 1e3 * p.seed_seconds, lloyd[r] = 1e3 * p.lloyd_seconds;
    }
    double first = total[0]; // the process's first fit of this k: fresh memory, as colorize's
    printf("| %-3s | %2d | %8.1f | %8.1f | %7.1f | %7.1f | %8.1f | %10d | %9.3f | %.6e |\n",
           space == KMEANS_AB ? "ab" : "rgb", k, median(total, runs), first, median(prep, runs),
           median(seed, runs), median(lloyd, runs), res->iterations,
           median(lloyd, runs) / res->iterations, res->inertia);
}

int main(int argc, char **argv) {
    int runs = 3, ks[16] = {16, 32, 64}, n_k = 0;
    const char *centres_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--centres") && i + 1 < argc)
            centres_file = argv[++i];
        else if (n_k < 16)
            ks[n_k++] = atoi(argv[i]);
    }
    if (runs < 1 || runs > 64) runs = 3;
    if (n_k == 0) n_k = 3;
    const char *dir = getenv("COLORIZE_SHARED_CIFAR");
    char path[4200];
    snprintf(path, sizeof path, "%s/cifar-10-batches-py", dir ? dir : "../shared/cifar");
    cifar_dataset ds;
    char err[512];
    if (cifar_load(path, "bird", 0, &ds, err, sizeof err)) {
        printf("bench_kmeans_ab: skipped: %s\n", err); // make bench runs on without the data
        return 0;
    }
    size_t n = (size_t)(ds.n_train + ds.n_val + ds.n_test) * CIFAR_PIXELS;
    printf("chroma k-means benchmark: %zu bird pixels, %d threads, %s, median of %d runs\n", n,
           omp_get_max_threads(), simd_path_name(simd_active()), runs);
    printf(
        "| sp  | k  | fit ms   | first ms | prep ms | seed ms | lloyd ms | iterations | ms/it  "
        "   | inertia      |\n|-----|----|----------|----------|---------|---------|----------|--"
        "----------|-----------|--------------|\n");
    kmeans_result ab[16];
    for (int q = 0; q < n_k; q++) {
        kmeans_result rgb;
        time_fit(ds.pixels, n, ks[q], KMEANS_AB, runs, &ab[q]);
        time_fit(ds.pixels, n, ks[q], KMEANS_RGB, runs, &rgb);
    }
    FILE *f = centres_file ? fopen(centres_file, "w") : NULL;
    for (int q = 0; q < n_k; q++) {
        printf("k %d a*b* centres:", ks[q]);
        for (int j = 0; j < ab[q].k; j++)
            printf(" (%.2f, %.2f)", ab[q].centres[j][0], ab[q].centres[j][1]);
        printf("\n");
        if (!f) continue;
        fprintf(f, "k=%d", ks[q]);
        for (int j = 0; j < ab[q].k; j++)
            fprintf(f, " %.9g %.9g", ab[q].centres[j][0], ab[q].centres[j][1]);
        fprintf(f, "\n");
    }
    if (f) fclose(f);

    // quantisation of every pixel by the k = first palette
    float *lab = malloc(3 * n * sizeof *lab);
    uint8_t *classes = malloc(n), *again = malloc(n);
    double t0 = now_seconds();
    lab_from_rgb8(ds.pixels, n, lab);
    printf("\nlab_from_rgb8 of all pixels: %.1f ms\n", 1e3 * (now_seconds() - t0));
    simd_path active = simd_active();
    int identical = 1;
    for (int path = 0; path < SIMD_N_PATHS; path++) {
        double t[64];
        if (simd_force((simd_path)path) != 0) continue; /* not in this build or CPU */
        for (int r = 0; r < runs; r++) {
            double s0 = now_seconds();
            kmeans_quantise_ab(lab, n, &ab[0], path ? again : classes);
            t[r] = 1e3 * (now_seconds() - s0);
        }
        printf("kmeans_quantise_ab, k = %d, %s: %.1f ms\n", ab[0].k,
               simd_path_name((simd_path)path), median(t, runs));
        if (path) identical &= memcmp(classes, again, n) == 0;
    }
    printf("quantise: every path identical to scalar: %s\n", identical ? "yes" : "NO");

    // bit-identity of the fit: 1 and 2 threads, both paths
    kmeans_result base, res;
    kmeans_profile p;
    simd_force(SIMD_SCALAR);
    omp_set_num_threads(1);
    fit(ds.pixels, n, ks[0], KMEANS_AB, &base, &p);
    int same = 1;
    for (int path = 0; path < SIMD_N_PATHS; path++)
        for (int threads = 1; threads <= 2; threads++) {
            if (simd_force((simd_path)path) != 0) continue;
            omp_set_num_threads(threads);
            fit(ds.pixels, n, ks[0], KMEANS_AB, &res, &p);
            same &= same_result(&base, &res);
        }
    simd_force(active);
    printf("a*b* fit, k = %d: scalar 1 thread, every path and 1 or 2 threads bit-identical: %s\n",
           ks[0], same ? "yes" : "NO");
    free(lab);
    free(classes);
    free(again);
    cifar_free(&ds);
    return 0;
}
