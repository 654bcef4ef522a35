/* Training a run: the epochs in their seeded orders, with a live progress
 * bar, the scores after each epoch, and the checkpoint (errors.tsv,
 * errors.svg, and model.bin written by a thread of its own while the next
 * epoch trains); and the stop signals, which end training at the end of a
 * batch. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cifar.h"
#include "cli.h"
#include "nn.h"
#include "report.h"
#include "run.h"
#include "util.h"

volatile sig_atomic_t interrupted = 0;

void on_interrupt(int sig) {
    interrupted = sig;
    signal(sig, SIG_DFL); /* a second signal ends the program at once */
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

void catch_stop_signals(void (*handler)(int)) {
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        signal(stop_signals[i], handler);
}

typedef struct {
    double start;
    int epoch, epochs;
} progress_state;

/* A live bar on stderr, only when it is a terminal. */
static void show_progress(void *ctx, int done, int total) {
    progress_state *p = ctx;
    double spent = now_seconds() - p->start, eta = done ? spent * (total - done) / done : 0;
    int width = 30, filled = (int)((long)width * done / total);
    fprintf(stderr, "\r  epoch %d/%d [%.*s%*s] %5d/%d  %5.1f s  ETA %5.1f s ", p->epoch, p->epochs,
            filled, "##############################", width - filled, "", done, total, spent, eta);
    if (done == total) fprintf(stderr, "\r%*s\r", 90, "");
    fflush(stderr);
}

static void shuffle(int *order, int n, rng_state *rng) {
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void evaluate_splits(run_state *rs, epoch_row *row) {
    for (int s = 0; s < N_SPLITS; s++) {
        size_t off = (size_t)rs->data.first[s] * CIFAR_PIXELS;
        nn_evaluate(rs->net, rs->data.x + off, rs->data.classes + off, rs->data.count[s],
                    &row->score[s], NULL);
    }
}

/* The model of the epoch just finished, written by a thread of its own
 * while the next epoch trains: a `dense` checkpoint is 51 MB with the
 * optimiser state, and writing and syncing it takes a few hundred
 * milliseconds on a busy disk. It writes from the state the next epoch
 * starts from, which train() keeps anyway (to go back to on Ctrl-C), and is
 * waited for before that copy is taken again, before any other write of
 * model.bin, and at the end. */
typedef struct {
    pthread_t thread;
    int running;
    const network *net;
    const float *state;
    long step;
    nn_model_meta meta;
    out_path_buf path;
    int rc;
    double seconds;
    char err[512];
} checkpoint;

static void *checkpoint_write(void *arg) {
    checkpoint *c = arg;
    double t0 = now_seconds();
    c->rc = nn_save_state(c->net, c->state, c->step, &c->meta, c->path.s, c->err, sizeof c->err);
    c->seconds = now_seconds() - t0;
    return NULL;
}

static void checkpoint_start(run_state *rs, checkpoint *c, const float *state, long step) {
    *c = (checkpoint){.net = rs->net,
                      .state = state,
                      .step = step,
                      .meta = model_meta(rs),
                      .path = out_path(rs, "model.bin")};
    /* The stop signals are the main thread's (a write interrupted in the
     * writer would fail): the writer starts with them blocked. */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        sigaddset(&block, stop_signals[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    c->running = pthread_create(&c->thread, NULL, checkpoint_write, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!c->running) checkpoint_write(c); /* no thread to be had: here and now */
}

/* 0, or EXIT_RUN_FAILED with the write's error said. */
static int checkpoint_wait(run_state *rs, checkpoint *c) {
    if (c->running) pthread_join(c->thread, NULL);
    c->running = 0;
    rs->seconds_checkpoint_behind += c->seconds;
    c->seconds = 0;
    if (c->rc == 0) return 0;
    say_error("%s", c->err);
    c->rc = 0;
    return EXIT_RUN_FAILED;
}

/* Trains `epochs` more epochs. Ctrl-C, or divergence, takes the network back
 * to the end of its last complete epoch, so that the model written matches
 * errors.tsv. After each epoch errors.tsv and errors.svg are rewritten, and
 * model.bin while the next epoch trains, or at once after the last. Returns
 * 0, or EXIT_RUN_FAILED (diverged, out of memory, a write failed). */
int train(run_state *rs, int epochs) {
    int n = rs->data.count[SPLIT_TRAIN];
    int *order = malloc(sizeof(int) * (size_t)n);
    uint8_t *flip = rs->o.flip ? malloc((size_t)n) : NULL;
    long saved_step;
    float *saved = malloc(nn_state_floats(rs->net) * sizeof(float));
    if (!order || !saved || (rs->o.flip && !flip)) {
        say_error("out of memory for the training state");
        free(order);
        free(flip);
        free(saved);
        return EXIT_RUN_FAILED;
    }
    if (rs->o.space == SPACE_LAB && rs->o.rebalance > 0)
        nn_set_class_weights(rs->net, rs->data.class_weights);
    int batch = rs->o.batch < n ? rs->o.batch : n;
    long steps_per_epoch = (n + batch - 1) / batch;
    nn_optim_config cfg = rs->o.optim;
    cfg.first_step = rs->plan.first_step; /* the schedule spans the plan's epochs */
    long total_steps = steps_per_epoch * rs->plan.epochs;
    int show = !rs->o.quiet && isatty(STDERR_FILENO), rc = 0;
    int last_epoch = rs->plan.first_epoch + rs->plan.epochs;
    checkpoint ck = {0};
    int unsaved = 0; /* an epoch has finished whose model is not being written */
    for (int e = 0; e < epochs && !interrupted; e++) {
        epoch_row row = {.epoch = rs->n_rows + 1};
        progress_state ps = {now_seconds(), row.epoch, last_epoch};
        /* Each epoch's order depends on the seed and the epoch's number only. */
        rng_state rng;
        rng_seed(&rng, rs->o.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)row.epoch));
        shuffle(order, n, &rng);
        if (flip) nn_draw_flips(rs->o.seed, row.epoch, n, flip);
        double t0 = now_seconds();
        if ((rc = checkpoint_wait(rs, &ck)) != 0) break;
        nn_state_save(rs->net, saved, &saved_step);
        if (unsaved) checkpoint_start(rs, &ck, saved, saved_step);
        unsaved = 0;
        rs->seconds_checkpoint += now_seconds() - t0;
        ps.start = now_seconds();
        char err[512];
        int done;
        double loss = nn_train_epoch(rs->net, rs->data.x, rs->data.classes, order, flip, n, batch,
                                     &cfg, total_steps, &interrupted, show ? show_progress : NULL,
                                     &ps, &done, err, sizeof err);
        row.train_seconds = now_seconds() - ps.start;
        rs->seconds_train += row.train_seconds;
        if (isnan(loss) || done < n) {
            if (show) fputc('\n', stderr);
            nn_state_restore(rs->net, saved, saved_step);
            if (isnan(loss)) {
                say_error("%s; keeping the weights of epoch %d", err, rs->n_rows);
                rc = EXIT_RUN_FAILED;
            }
            break;
        }
        t0 = now_seconds();
        evaluate_splits(rs, &row);
        row.eval_seconds = now_seconds() - t0;
        rs->seconds_eval += row.eval_seconds;
        rs->rows[rs->n_rows++] = row;
        unsaved = 1;
        say(rs,
            "epoch %3d/%d  loss %.3f  error  train %5.2f%%  val %5.2f%%  test %5.2f%%  %5.1f s  "
            "%4.0f img/s\n",
            row.epoch, last_epoch, loss, 100 * row.score[0].error, 100 * row.score[1].error,
            100 * row.score[2].error, row.train_seconds, n / row.train_seconds);
        /* model.bin after these: a model never has an epoch errors.tsv lacks. */
        t0 = now_seconds();
        if (write_errors_tsv(rs, err, sizeof err) || write_errors_svg(rs, err, sizeof err)) {
            say_error("%s", err);
            rc = EXIT_RUN_FAILED;
            break;
        }
        rs->seconds_checkpoint += now_seconds() - t0;
    }
    double t0 = now_seconds();
    int written = checkpoint_wait(rs, &ck);
    rs->seconds_checkpoint += now_seconds() - t0;
    if (rc == 0 && written == 0 && unsaved) { /* the last epoch's, before anything else */
        char err[512];
        if (write_model(rs, err, sizeof err) == 0) {
            rs->model_written = 1;
        } else {
            say_error("%s", err);
            written = EXIT_RUN_FAILED;
        }
    }
    free(order);
    free(flip);
    free(saved);
    return rc ? rc : written;
}
