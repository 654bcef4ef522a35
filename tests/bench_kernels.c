/* GFLOP/s of the convolution and matrix kernels at the shapes of the built-in
 * networks (batch 32), parallelised as the network does it, with 1 and 2
 * OpenMP threads, beside the multiply-add peak of the active kernel path
 * (simd_peak_gflops: AVX2 FMAs, or the portable path's vector multiplies and
 * adds) measured in this same binary.
 *   forward, backward_input: OpenMP over the 32 images of the batch
 *   weight_grad:             OpenMP over (tap, block of output channels) items,
 *                            each summing over the whole batch
 *   weight_grad_taps:        the same with items of several taps (the taps
 *                            split evenly over the threads), so that each item
 *                            reads the output gradient once for all its taps
 *   gemm:                    one call per thread on a contiguous piece of the
 *                            rows (or of the columns when there are few rows);
 *                            "pieces" is gemm_nn_pieces as the skip network's
 *                            pixel layer runs it: the 1 + 32 full-size
 *                            channels onto the bias, with the ReLU (its 64
 *                            upsampled channels: the nn line at 8192 rows)
 * Each figure is the median of 5 timed runs (each of at least 20 ms of
 * repeated calls) after one warm-up run. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/conv5x5.h"
#include "simd/gemm.h"
#include "simd/simd.h"
#include "util.h"

#define BATCH           32
#define RUNS            5
#define MIN_RUN_SECONDS 0.02
/* Output channels per weight-gradient work item: each item streams the whole
 * batch from L3, so wider items move fewer bytes per flop. */
#define WGRAD_CO_BLOCK 64

static const int conv_shapes[][4] = {/* H, W, cin, cout */
                                     {32, 32, 1, 32},  {16, 16, 32, 64}, {32, 32, 1, 64},
                                     {32, 32, 64, 64}, {32, 32, 1, 16},  {16, 16, 16, 32},
                                     {16, 16, 32, 32}};

static float *alloc_random(rng_state *r, long n) {
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++)
        p[i] = 2.0f * rng_uniform(r) - 1.0f;
    return p;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int H, W, cin, cout, threads;
    const float *in, *w, *bias, *dout_padded, *w_t, *dout;
    float *out, *din, *dw;
} conv_job;

static void run_forward(const conv_job *j) {
    const long in_img = (long)(j->H + 4) * (j->W + 4) * j->cin,
               out_img = (long)j->H * j->W * j->cout;
#pragma omp parallel for schedule(static) num_threads(j->threads)
    for (int n = 0; n < BATCH; n++)
        conv5x5_forward(j->in + n * in_img, j->H, j->W, j->cin, j->w, j->bias, j->cout,
                        j->out + n * out_img);
}

static void run_backward_input(const conv_job *j) {
    const long d_img = (long)(j->H + 4) * (j->W + 4) * j->cout,
               din_img = (long)j->H * j->W * j->cin;
#pragma omp parallel for schedule(static) num_threads(j->threads)
    for (int n = 0; n < BATCH; n++)
        conv5x5_backward_input(j->dout_padded + n * d_img, j->H, j->W, j->cout, j->w_t, j->cin,
                               j->din + n * din_img);
}

static void run_weight_grad_taps(const conv_job *j) {
    const int blocks = (j->cout + WGRAD_CO_BLOCK - 1) / WGRAD_CO_BLOCK, groups = j->threads;
#pragma omp parallel for schedule(dynamic) num_threads(j->threads)
    for (int item = 0; item < groups * blocks; item++) {
        const int group = item / blocks, co0 = item % blocks * WGRAD_CO_BLOCK;
        const int co1 = co0 + WGRAD_CO_BLOCK < j->cout ? co0 + WGRAD_CO_BLOCK : j->cout;
        conv5x5_weight_grad_taps(j->in, j->dout, BATCH, j->H, j->W, j->cin, j->cout,
                                 25 * group / groups, 25 * (group + 1) / groups, co0, co1, j->dw);
    }
}

static void run_weight_grad(const conv_job *j) {
    const int blocks = (j->cout + WGRAD_CO_BLOCK - 1) / WGRAD_CO_BLOCK;
#pragma omp parallel for schedule(dynamic) num_threads(j->threads)
    for (int item = 0; item < 25 * blocks; item++) {
        const int tap = item / blocks, co0 = item % blocks * WGRAD_CO_BLOCK;
        const int co1 = co0 + WGRAD_CO_BLOCK < j->cout ? co0 + WGRAD_CO_BLOCK : j->cout;
        conv5x5_weight_grad(j->in, j->dout, BATCH, j->H, j->W, j->cin, j->cout, tap, co0, co1,
                            j->dw);
    }
}

/* Median seconds of one call over RUNS runs after a warm-up. A batch's call
 * can take well under a millisecond, where one interruption by the shared
 * machine would move the figure by tens of percent, so each run repeats the
 * call as often as the warm-up says fits in MIN_RUN_SECONDS. */
static double median_seconds(void (*fn)(const void *), const void *arg) {
    double t[RUNS];
    double t0 = now_seconds();
    fn(arg);
    const double once = now_seconds() - t0;
    const int reps = once >= MIN_RUN_SECONDS ? 1 : (int)(MIN_RUN_SECONDS / (once + 1e-9)) + 1;
    for (int i = 0; i < RUNS; i++) {
        t0 = now_seconds();
        for (int r = 0; r < reps; r++)
            fn(arg);
        t[i] = (now_seconds() - t0) / reps;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    return t[RUNS / 2];
}

static void forward_thunk(const void *a) {
    run_forward(a);
}
static void backward_thunk(const void *a) {
    run_backward_input(a);
}
static void wgrad_thunk(const void *a) {
    run_weight_grad(a);
}
static void wgrad_taps_thunk(const void *a) {
    run_weight_grad_taps(a);
}

static void bench_conv(const double *peak, int max_threads) {
    printf("\n%-22s %-16s", "conv5x5, batch 32", "kernel");
    for (int t = 1; t <= max_threads; t++)
        printf("   %d thr GFLOP/s  %%peak", t);
    printf("\n");
    rng_state r;
    rng_seed(&r, 1);
    for (size_t s = 0; s < sizeof conv_shapes / sizeof conv_shapes[0]; s++) {
        conv_job j = {.H = conv_shapes[s][0],
                      .W = conv_shapes[s][1],
                      .cin = conv_shapes[s][2],
                      .cout = conv_shapes[s][3]};
        const long pad_px = (long)BATCH * (j.H + 4) * (j.W + 4), px = (long)BATCH * j.H * j.W;
        float *in = alloc_random(&r, pad_px * j.cin), *w = alloc_random(&r, 25L * j.cin * j.cout),
              *bias = alloc_random(&r, j.cout), *dpad = alloc_random(&r, pad_px * j.cout),
              *w_t = alloc_random(&r, 25L * j.cin * j.cout), *dout = alloc_random(&r, px * j.cout),
              *out = alloc_random(&r, px * j.cout), *din = alloc_random(&r, px * j.cin),
              *dw = alloc_random(&r, 25L * j.cin * j.cout);
        j.in = in, j.w = w, j.bias = bias, j.dout_padded = dpad, j.w_t = w_t, j.dout = dout;
        j.out = out, j.din = din, j.dw = dw;
        const double gflop = 2.0 * 25 * j.cin * j.cout * px / 1e9;
        const char *names[4] = {"forward", "backward_input", "weight_grad", "weight_grad_taps"};
        void (*fns[4])(const void *) = {forward_thunk, backward_thunk, wgrad_thunk,
                                        wgrad_taps_thunk};
        for (int k = 0; k < 4; k++) {
            char shape[64];
            snprintf(shape, sizeof shape, "%dx%d cin %d cout %d", j.H, j.W, j.cin, j.cout);
            printf("%-22s %-16s", shape, names[k]);
            for (int t = 1; t <= max_threads; t++) {
                j.threads = t;
                const double g = gflop / median_seconds(fns[k], &j);
                printf("   %12.1f  %5.1f", g, 100.0 * g / peak[t]);
            }
            printf("\n");
        }
        free(in), free(w), free(bias), free(dpad), free(w_t), free(dout), free(out), free(din),
            free(dw);
    }
}

typedef struct {
    int variant; /* 0 nn, 1 tn, 2 nt, 3 nn_pieces */
    int M, N, K, threads;
    const float *A, *B;
    float *C;
} gemm_job;

/* Thread t takes a contiguous piece of the rows, or of the columns when M is small. */
static void run_gemm(const void *arg) {
    const gemm_job *g = arg;
    const int lda = g->variant == 1 ? g->M : g->K, ldb = g->variant == 2 ? g->K : g->N;
    const int by_rows = g->M >= 64 * g->threads;
#pragma omp parallel num_threads(g->threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int len = by_rows ? g->M : g->N, a = (int)((long)len * t / T),
                  b = (int)((long)len * (t + 1) / T);
        const float *A = g->A, *B = g->B;
        float *C = g->C;
        int M = g->M, N = g->N;
        if (by_rows) {
            A += g->variant == 1 ? a : (long)a * lda;
            C += (long)a * g->N;
            M = b - a;
        } else {
            B += g->variant == 2 ? (long)a * ldb : a;
            C += a;
            N = b - a;
        }
        if (g->variant == 0) gemm_nn(M, N, g->K, A, lda, B, ldb, C, g->N, 0);
        if (g->variant == 1) gemm_tn(M, N, g->K, A, lda, B, ldb, C, g->N, 0);
        if (g->variant == 2) gemm_nt(M, N, g->K, A, lda, B, ldb, C, g->N, 0);
        if (g->variant == 3) { /* as the pixel layer: the gray channel, then the rest; bias, ReLU */
            gemm_piece pc[2] = {{A, B, lda, 1}, {A + 1, B + ldb, lda, g->K - 1}};
            gemm_nn_pieces(M, N, 2, pc, ldb, B, C, g->N, 1);
        }
    }
}

static void bench_gemm(const double *peak, int max_threads) {
    static const struct {
        const char *what;
        int variant, M, N, K;
    } shapes[] = {
        {"per-pixel fwd", 0, 32768, 64, 97}, {"per-pixel fwd", 3, 32768, 64, 33},
        {"per-pixel fwd", 0, 8192, 64, 64},  {"per-pixel dX", 2, 32768, 97, 64},
        {"per-pixel dW", 1, 97, 64, 32768},  {"per-pixel fwd", 0, 32768, 4, 64},
        {"per-pixel dX", 2, 32768, 64, 4},   {"per-pixel dW", 1, 64, 4, 32768},
        {"dense fwd", 0, 32, 512, 4096},     {"dense dX", 2, 32, 4096, 512},
        {"dense dW", 1, 4096, 512, 32},      {"dense fwd", 0, 32, 4096, 512},
        {"dense dX", 2, 32, 512, 4096},      {"dense dW", 1, 512, 4096, 32},
    };
    const char *vname[4] = {"nn", "tn", "nt", "pieces"};
    printf("\n%-14s %-24s", "gemm", "M x N x K");
    for (int t = 1; t <= max_threads; t++)
        printf("   %d thr GFLOP/s  %%peak", t);
    printf("\n");
    rng_state r;
    rng_seed(&r, 2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_job g = {
            shapes[s].variant, shapes[s].M, shapes[s].N, shapes[s].K, 1, NULL, NULL, NULL};
        float *A = alloc_random(&r, (long)g.M * g.K), *B = alloc_random(&r, (long)g.K * g.N),
              *C = alloc_random(&r, (long)g.M * g.N);
        g.A = A, g.B = B, g.C = C;
        char shape[64];
        snprintf(shape, sizeof shape, "%s %d x %d x %d", vname[g.variant], g.M, g.N, g.K);
        printf("%-14s %-24s", shapes[s].what, shape);
        for (int t = 1; t <= max_threads; t++) {
            g.threads = t;
            const double gf = 2.0 * g.M * g.N * g.K / 1e9 / median_seconds(run_gemm, &g);
            printf("   %12.1f  %5.1f", gf, 100.0 * gf / peak[t]);
        }
        printf("\n");
        free(A), free(B), free(C);
    }
}

int main(void) {
    const int max_threads = omp_get_max_threads() < 2 ? omp_get_max_threads() : 2;
    printf("kernel path: %s, OpenMP threads: 1..%d\n", simd_path_name(simd_active()), max_threads);
    /* peak[t]: the summed multiply-add rate of t threads running the peak loop at
     * once, best of 5 tries so that a moment's disturbance does not count */
    double peak[3] = {0, 0, 0};
    for (int t = 1; t <= max_threads; t++) {
        for (int try = 0; try < 5; try++) {
            double sum = 0.0;
#pragma omp parallel num_threads(t) reduction(+ : sum)
            sum += simd_peak_gflops(0.1);
            if (sum > peak[t]) peak[t] = sum;
        }
        const double sum = peak[t];
        printf("measured multiply-add peak, %d thread%s: %.1f GFLOP/s (%.1f per core)\n", t,
               t > 1 ? "s" : "", sum, sum / t);
    }
    if (max_threads > 1 && peak[max_threads] < 0.85 * max_threads * peak[1])
        printf("warning: %d threads reach only %.0f%% of %d x the one-thread peak; other processes "
               "are probably using the CPUs, so multi-thread figures below are unreliable\n",
               max_threads, 100.0 * peak[max_threads] / (max_threads * peak[1]), max_threads);
    bench_conv(peak, max_threads);
    bench_gemm(peak, max_threads);
    return 0;
}
