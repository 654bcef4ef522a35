/* Training speed of the built-in networks: images per second of full
 * training steps (forward, backward, Adam) at batch 32, with 1 and 2 threads
 * (and more when the machine has them). Synthetic inputs: the speed does not
 * depend on the pixel values.
 *
 * The machine is shared, so its speed drifts: the thread counts take turns,
 * one pass of IMAGES images each per round, and a speed-up is the median over
 * RUNS rounds of the ratio within a round, so that a slow spell hits both
 * sides of a ratio rather than one. Times are medians over the rounds.
 * GFLOP/s counts three times the forward FLOPs per image (forward, input
 * gradient, weight gradient), beside the multiply-add peak of the active
 * kernel path (simd_peak_gflops) of as many threads, measured in this same
 * binary. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "simd/gemm.h"
#include "simd/simd.h"
#include "util.h"

enum { BATCH = 32, IMAGES = 512, RUNS = 7, MAX_COUNTS = 8 };

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], compare_doubles);
    return v[n / 2];
}

/* Seconds for one pass of n images with the given thread count. */
static double time_pass(network *net, int threads, const float *x, const uint8_t *tg,
                        const int *order, int n) {
    nn_optim_config cfg = {OPT_ADAM, 1e-3f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_CONSTANT, 0};
    char err[256];
    int done;
    omp_set_num_threads(threads);
    double t0 = now_seconds();
    nn_train_epoch(net, x, tg, order, NULL, n, BATCH, &cfg, 0, NULL, NULL, NULL, &done, err,
                   sizeof err);
    return now_seconds() - t0;
}

/* bench_train [MAX_THREADS [NETWORK]] */
int main(int argc, char **argv) {
    /* each built-in at the palette size of its mode */
    const struct {
        const char *name;
        int k;
    } archs[] = {{"dense", 4}, {"pixel", 4}, {"skip", 4}, {"default", 4}, {"chroma", 16}};
    int max_threads = omp_get_num_procs();
    if (argc > 1) max_threads = atoi(argv[1]);
    if (max_threads < 1) max_threads = 1;
    /* 1, 2, 4, ... and max_threads itself */
    int counts[MAX_COUNTS], n_counts = 0;
    for (int t = 1; t < max_threads && n_counts < MAX_COUNTS - 1; t *= 2)
        counts[n_counts++] = t;
    counts[n_counts++] = max_threads;
    static float x[IMAGES * 1024];
    static uint8_t tg[IMAGES * 1024];
    static int order[IMAGES];
    rng_state rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < IMAGES * 1024; i++) {
        x[i] = rng_normal(&rng);
        tg[i] = (uint8_t)rng_below(&rng, 4); /* valid for every k */
    }
    for (int i = 0; i < IMAGES; i++)
        order[i] = i;
    simd_flush_subnormals();
    /* peak[c]: the summed multiply-add rate of counts[c] threads running the peak
     * loop at once, best of 5 tries */
    double peak[MAX_COUNTS] = {0};
    for (int c = 0; c < n_counts; c++)
        for (int try = 0; try < 5; try++) {
            double sum = 0.0;
#pragma omp parallel num_threads(counts[c]) reduction(+ : sum)
            sum += simd_peak_gflops(0.1);
            if (sum > peak[c]) peak[c] = sum;
        }
    printf("training steps, batch %d, %s kernels; %d rounds of %d images per thread count, "
           "taken in turn; medians\n",
           BATCH, simd_path_name(simd_active()), RUNS, IMAGES);
    printf("%-8s %3s %7s %10s %10s %7s %12s %14s\n", "network", "k", "threads", "img/s", "GFLOP/s",
           "%peak", "speed-up", "epoch 4500 s");
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
        if (argc > 2 && strcmp(argv[2], archs[a].name) != 0) continue;
        network *net;
        char err[256];
        if (nn_create(archs[a].name, 32, 32, archs[a].k, BATCH, &net, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        nn_init_weights(net, 1);
        for (int c = 0; c < n_counts; c++)
            time_pass(net, counts[c], x, tg, order, 2 * BATCH); /* warm-up */
        double t[MAX_COUNTS][RUNS], ratio[MAX_COUNTS][RUNS];
        for (int r = 0; r < RUNS; r++)
            for (int c = 0; c < n_counts; c++) {
                t[c][r] = time_pass(net, counts[c], x, tg, order, IMAGES);
                ratio[c][r] = t[0][r] / t[c][r];
            }
        /* forward + input gradient + weight gradient: about 3x the forward FLOPs */
        double flops = 3 * nn_forward_flops(net);
        for (int c = 0; c < n_counts; c++) {
            double ips = IMAGES / median(t[c], RUNS);
            double gflops = flops * ips / 1e9;
            printf("%-8s %3d %7d %10.0f %10.1f %7.1f %11.2fx %14.2f\n", archs[a].name, archs[a].k,
                   counts[c], ips, gflops, 100 * gflops / peak[c], median(ratio[c], RUNS),
                   4500 / ips);
        }
        nn_free(net);
    }
    return 0;
}
