/* Training speed of the built-in networks: images per second of full
 * training steps (forward, backward, Adam) at batch 32, with 1 and 2 threads
 * (and more when the machine has them), median of 5 runs. Synthetic inputs:
 * the speed does not depend on the pixel values. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "simd/simd.h"
#include "util.h"

enum { BATCH = 32, IMAGES = 256, RUNS = 5 };

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds for one pass over IMAGES images, median of RUNS. */
static double time_epoch(network *net, const float *x, const uint8_t *tg, const int *order) {
    nn_optim_config cfg = {OPT_ADAM, 1e-3f, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_CONSTANT, 0};
    double t[RUNS];
    char err[256];
    int done;
    nn_train_epoch(net, x, tg, order, BATCH * 2, BATCH, &cfg, 0, NULL, NULL, NULL, &done, err,
                   sizeof err); /* warm-up */
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_seconds();
        nn_train_epoch(net, x, tg, order, IMAGES, BATCH, &cfg, 0, NULL, NULL, NULL, &done, err,
                       sizeof err);
        t[r] = now_seconds() - t0;
    }
    qsort(t, RUNS, sizeof t[0], compare_doubles);
    return t[RUNS / 2];
}

/* bench_train [MAX_THREADS [NETWORK]] */
int main(int argc, char **argv) {
    const char *archs[] = {"dense", "pixel", "skip", "default"};
    int max_threads = omp_get_num_procs();
    if (argc > 1) max_threads = atoi(argv[1]);
    static float x[IMAGES * 1024];
    static uint8_t tg[IMAGES * 1024];
    static int order[IMAGES];
    rng_state rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < IMAGES * 1024; i++) {
        x[i] = rng_normal(&rng);
        tg[i] = (uint8_t)rng_below(&rng, 4);
    }
    for (int i = 0; i < IMAGES; i++) order[i] = i;
    simd_flush_subnormals();
    printf("training steps, batch %d, %s kernels, median of %d runs of %d images\n", BATCH,
           simd_path_name(simd_active()), RUNS, IMAGES);
    printf("%-8s %7s %10s %10s %12s %14s\n", "network", "threads", "img/s", "GFLOP/s",
           "speed-up", "epoch 4500 s");
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
        if (argc > 2 && strcmp(argv[2], archs[a]) != 0) continue;
        double base = 0;
        for (int threads = 1; threads <= max_threads; threads *= 2) {
            omp_set_num_threads(threads);
            network *net;
            char err[256];
            if (nn_create(archs[a], 32, 32, 4, BATCH, &net, err, sizeof err) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            nn_init_weights(net, 1);
            double s = time_epoch(net, x, tg, order), ips = IMAGES / s;
            if (threads == 1) base = ips;
            /* forward + input gradient + weight gradient: about 3x the forward FLOPs */
            double gflops = 3 * nn_forward_flops(net) * ips / 1e9;
            printf("%-8s %7d %10.0f %10.1f %11.2fx %14.2f\n", archs[a], threads, ips, gflops,
                   ips / base, 4500 / ips);
            nn_free(net);
            if (threads < max_threads && threads * 2 > max_threads) threads = max_threads / 2;
        }
    }
    return 0;
}
