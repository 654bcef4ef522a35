/* The whole task's front end (colorize [options] DATA_DIR), in floors:
 * run_outputs.c writes the outputs and the summary, run_train.c trains with
 * a checkpoint after each epoch, run_plan.c builds or resumes the network
 * and its plan, and cmd_run.c runs them in order. This header is what they
 * share: the run's state, and its messages and paths. */
#ifndef COLORIZE_RUN_H
#define COLORIZE_RUN_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

#include "chroma.h"
#include "cifar.h"
#include "cli.h"
#include "kmeans.h"
#include "nn.h"
#include "out_dir.h"
#include "report.h"
#include "training_data.h"
#include "util.h"

typedef struct {
    options o;
    cifar_dataset ds;
    kmeans_result pal;
    training_data data;                     /* targets, inputs, baselines (training_data.h) */
    chroma_score chroma[2][CHROMA_METHODS]; /* the Lab mode's final scores: validation, test */
    int chroma_scored;
    network *net;
    epoch_row
        *rows; /* one per epoch the model has been trained; a resumed run's earlier ones too */
    int n_rows;
    nn_plan plan; /* the epochs this run trains belong to it (see nn.h) */
    double seconds_load, seconds_palette, seconds_prepare, seconds_train, seconds_eval;
    /* The checkpoints between epochs: the time training waited for them
     * (errors.tsv and errors.svg written, the state copied, model.bin handed
     * over), and the time model.bin took to write in the background. The
     * last epoch's model is an output like the others. */
    double seconds_checkpoint, seconds_checkpoint_behind;
    int model_written; /* model.bin holds the network as it is now */
} run_state;

/* A line of the run's progress on stdout, unless --quiet. */
static inline void say(const run_state *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void say(const run_state *rs, const char *fmt, ...) {
    if (rs->o.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* A file's path in the output folder; out_dir_prepare has made sure that
 * every output's name fits. */
typedef struct {
    char s[OUT_PATH_MAX];
} out_path_buf;

static inline out_path_buf out_path(const run_state *rs, const char *name) {
    out_path_buf p;
    path_join(p.s, sizeof p.s, rs->o.out_dir, name, NULL, 0);
    return p;
}

/* ==== run_outputs.c: each output written to a temporary name, then renamed ==== */

/* The no-learning baseline's name: "luminance only" or "per-lightness". */
const char *baseline_name(const run_state *rs);
int write_errors_tsv(run_state *rs, char *err, size_t errlen);
int write_errors_svg(run_state *rs, char *err, size_t errlen);
int write_model(run_state *rs, char *err, size_t errlen);
/* What model.bin records besides the network, as the run stands now. */
nn_model_meta model_meta(const run_state *rs);
/* The Lab mode's final scores on the validation and test images; 0 or an
 * exit status, said. */
int score_chroma(run_state *rs);
/* The colour scores' table, once score_chroma has made them. */
void print_chroma_table(const run_state *rs, FILE *f);
/* Every output, the model first unless train() has just written it; 0 or
 * EXIT_RUN_FAILED with the first failure said. */
int write_outputs(run_state *rs);

/* ==== run_train.c ==== */

/* The signal that asked the run to stop (SIGINT, SIGTERM, SIGHUP), or 0. */
extern volatile sig_atomic_t interrupted;
/* handler for each of those signals: on_interrupt, or SIG_DFL. */
void catch_stop_signals(void (*handler)(int));
void on_interrupt(int sig);
/* Trains `epochs` more epochs, with errors.tsv, errors.svg and model.bin
 * written after each; 0 or an exit status, said. */
int train(run_state *rs, int epochs);

/* ==== run_plan.c ==== */

/* Builds the network (fresh or resumed) and the run's plan, and fills in the
 * options the colour space or the resumed model decides; 0 or an exit
 * status, said. */
int build_network(run_state *rs, nn_model_meta *resumed);

#endif
