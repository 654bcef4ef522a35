/* The whole task (colorize [options] DATA_DIR): the palette, the targets and
 * inputs, training with a per-epoch log and plot, and every output; in the
 * Lab mode also the colour scores against the no-learning baselines. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chroma.h"
#include "cifar.h"
#include "colorize.h"
#include "image.h"
#include "kmeans.h"
#include "lab.h"
#include "nn.h"
#include "report.h"
#include "simd/simd.h"
#include "util.h"

/* Paths in the output folder fit an atomic_file; no output's name is longer
 * than OUT_NAME_MAX ("palette.ppm", "summary.txt", ".colorize-probe"). */
enum { OUT_PATH_MAX = sizeof((atomic_file *)0)->path, OUT_NAME_MAX = 16 };

/* (n) gray values in [0, 1] -> standardised network inputs */
static void standardise(const float *gray, size_t n, float mean, float std, float *x) {
    for (size_t i = 0; i < n; i++)
        x[i] = (gray[i] - mean) / std;
}

/* ==== The run ==== */

static const char *split_names[N_SPLITS] = {"train", "val", "test"};

typedef struct {
    options o;
    cifar_dataset ds;
    kmeans_result pal;
    int first[N_SPLITS], count[N_SPLITS]; /* image ranges of the splits */
    int n_images;
    uint8_t *classes; /* (n_images, 32, 32) palette class of every pixel */
    float *x;         /* (n_images, 32, 32) standardised gray */
    uint8_t *shown;   /* (n_shown, 32, 32, 3) the first test images, for compare.ppm */
    int n_shown;
    float mean, std;
    nn_score baseline[N_SPLITS]; /* no-learning class error: luminance (RGB), per-lightness (Lab) */
    /* The Lab mode: the validation and test images (contiguous, val first) as
     * the scores need them, the per-lightness baseline, the class weights, and
     * the final scores. */
    chroma_set eval; /* x points into the run's inputs */
    float *eval_lab, *eval_L;
    uint8_t *eval_rgb;
    chroma_by_lightness by_lightness;
    float class_weights[KMEANS_MAX_K];
    chroma_score chroma[2][CHROMA_METHODS]; /* validation, test */
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

/* The signal that asked the run to stop (SIGINT, SIGTERM, SIGHUP), or 0. */
static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int sig) {
    interrupted = sig;
    signal(sig, SIG_DFL); /* a second signal ends the program at once */
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void catch_stop_signals(void (*handler)(int)) {
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        signal(stop_signals[i], handler);
}

static void say(const run_state *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run_state *rs, const char *fmt, ...) {
    if (rs->o.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* A file's path in the output folder; prepare_out_dir has made sure that
 * every output's name fits. */
typedef struct {
    char s[OUT_PATH_MAX];
} out_path_buf;

static out_path_buf out_path(const run_state *rs, const char *name) {
    out_path_buf p;
    path_join(p.s, sizeof p.s, rs->o.out_dir, name, NULL, 0);
    return p;
}

/* mkdir -p, then proves the folder writable, before any work starts. */
static int prepare_out_dir(const char *dir) {
    char path[OUT_PATH_MAX];
    /* every output's path, with atomic_open's ".tmp", fits an atomic_file */
    if (strlen(dir) + 1 + OUT_NAME_MAX + 4 >= sizeof path) {
        say_error("%.64s...: output folder path too long", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s", dir);
    /* Each folder on the way, so that an error names the one that failed. */
    for (char *p = path + (path[0] != 0);; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            say_error("%s: cannot create the output folder: %s", path, strerror(errno));
            return -1;
        }
        if (!c) break;
        *p = c;
    }
    path_join(path, sizeof path, dir, ".colorize-probe", NULL, 0);
    FILE *f = fopen(path, "w");
    if (!f) {
        say_error("%s: cannot write into the output folder: %s", dir, strerror(errno));
        return -1;
    }
    fclose(f);
    unlink(path);
    return 0;
}

/* One run per output folder: an advisory lock on DIR/.colorize-lock, held
 * until the process ends (the system drops it with the process, so a lock
 * left by a run that died never blocks). Returns the lock's descriptor, or
 * -1 after saying why. */
static int lock_out_dir(const char *dir) {
    char path[OUT_PATH_MAX];
    path_join(path, sizeof path, dir, ".colorize-lock", NULL, 0);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        say_error("%s: cannot create the lock file: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char holder[24] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        if (why != EWOULDBLOCK)
            say_error("%s: cannot lock the output folder: %s", dir, strerror(why));
        else if (holder[0])
            say_error("%s: another colorize run (pid %s) is writing this folder", dir, holder);
        else
            say_error("%s: another colorize run is writing this folder", dir);
        close(fd);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid only makes the message better; the lock holds without it */
    }
    return fd;
}

/* Each pixel gets the centre whose luminance is nearest its gray value;
 * rs->x holds the gray values (not yet standardised). */
static void luminance_baseline(run_state *rs) {
    float lum[KMEANS_MAX_K];
    for (int c = 0; c < rs->pal.k; c++) /* rgb2gray of the centre, as for the images */
        lum[c] = gray_of_rgb(rs->pal.centres[c][0], rs->pal.centres[c][1], rs->pal.centres[c][2]);
    for (int s = 0; s < N_SPLITS; s++) {
        long wrong = 0;
        size_t first = (size_t)rs->first[s] * CIFAR_PIXELS, n = (size_t)rs->count[s] * CIFAR_PIXELS;
        for (size_t i = first; i < first + n; i++) {
            int best = 0;
            for (int c = 1; c < rs->pal.k; c++)
                if (fabsf(rs->x[i] - lum[c]) < fabsf(rs->x[i] - lum[best])) best = c;
            wrong += best != rs->classes[i];
        }
        rs->baseline[s].error = n ? (double)wrong / (double)n : 0;
        rs->baseline[s].loss = NAN;
    }
}

/* The palette: fitted by k-means, or the resumed model's. */
static int choose_palette(run_state *rs, const nn_model_meta *resumed) {
    if (resumed) {
        rs->pal.k = resumed->k;
        memcpy(rs->pal.centres, resumed->centres, sizeof rs->pal.centres);
        say(rs, "palette  from the resumed model: %d colours\n", rs->pal.k);
        return 0;
    }
    int r = fit_palette(&rs->o, &rs->ds, &rs->pal);
    if (r) return r;
    say(rs, "palette  k-means k=%d on %zu pixels: %d iterations, inertia %.4e  %.2f s\n", rs->pal.k,
        rs->pal.n_points, rs->pal.iterations, rs->pal.inertia, rs->pal.seconds);
    for (int c = 0; c < rs->pal.k; c++)
        if (rs->o.space == SPACE_LAB)
            say(rs, "         class %-2d a*b* %7.2f %7.2f\n", c, rs->pal.centres[c][0],
                rs->pal.centres[c][1]);
        else
            say(rs, "         class %d  RGB %6.1f %6.1f %6.1f\n", c, rs->pal.centres[c][0],
                rs->pal.centres[c][1], rs->pal.centres[c][2]);
    return 0;
}

/* Mean and standard deviation of the training images' gray values (the
 * resumed model's when resuming): the network's input standardisation. */
static void input_statistics(run_state *rs, const nn_model_meta *resumed) {
    if (resumed) {
        rs->mean = resumed->mean, rs->std = resumed->std;
        return;
    }
    double sum = 0, sq = 0;
    size_t m = (size_t)rs->ds.n_train * CIFAR_PIXELS;
    for (size_t i = 0; i < m; i++)
        sum += rs->x[i], sq += (double)rs->x[i] * rs->x[i];
    double mean = sum / (double)m, var = sq / (double)m - mean * mean;
    rs->mean = (float)mean;
    rs->std = var > 1e-12 ? (float)sqrt(var) : 1.0f;
}

/* Training needs only classes and inputs: keeps the pictures that
 * compare.ppm shows and frees the dataset's. */
static int keep_shown_images(run_state *rs) {
    rs->n_shown = rs->ds.n_test < 10 ? rs->ds.n_test : 10;
    rs->shown = malloc((size_t)rs->n_shown * CIFAR_IMAGE_BYTES + 1);
    if (!rs->shown) {
        say_error("out of memory");
        return EXIT_RUN_FAILED;
    }
    memcpy(rs->shown, rs->ds.test, (size_t)rs->n_shown * CIFAR_IMAGE_BYTES);
    free(rs->ds.pixels);
    rs->ds.pixels = rs->ds.train = rs->ds.test = NULL;
    return 0;
}

static const char *baseline_name(const run_state *rs) {
    return rs->o.space == SPACE_LAB ? "per-lightness" : "luminance only";
}

/* The Lab mode's targets (each pixel's nearest a*b* centre), the
 * per-lightness baseline fitted on the training pixels and its class error,
 * the validation and test images kept for the final scores, and the class
 * weights. rs->x holds the gray values (not yet standardised). The L*a*b*
 * of the pixels is computed a chunk of images at a time, so that memory
 * stays small with every class loaded. */
static int prepare_chroma(run_state *rs) {
    enum { CHUNK = 256 };
    const size_t hw = CIFAR_PIXELS;
    int eval_first = rs->first[SPLIT_VAL], n_eval = rs->count[SPLIT_VAL] + rs->count[SPLIT_TEST];
    size_t n = (size_t)rs->n_images * hw, m_eval = (size_t)n_eval * hw;
    float *lab = malloc(CHUNK * hw * 3 * sizeof(float));
    uint8_t *bins = malloc(n);
    chroma_lightness_sums *sums = calloc(1, sizeof *sums);
    rs->eval_lab = malloc(m_eval * 3 * sizeof(float) + 1);
    rs->eval_L = malloc(m_eval * sizeof(float) + 1);
    rs->eval_rgb = malloc(m_eval * 3 + 1);
    int rc = 0;
    if (!lab || !bins || !sums || !rs->eval_lab || !rs->eval_L || !rs->eval_rgb) {
        say_error("out of memory for %d images", rs->n_images);
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    for (int first = 0; first < rs->n_images; first += CHUNK) {
        int B = rs->n_images - first < CHUNK ? rs->n_images - first : CHUNK;
        size_t at = (size_t)first * hw, m = (size_t)B * hw;
        lab_from_rgb8(rs->ds.pixels + 3 * at, m, lab);
        kmeans_quantise_ab(lab, m, &rs->pal, rs->classes + at);
#pragma omp parallel for schedule(static)
        for (size_t i = at; i < at + m; i++)
            bins[i] = (uint8_t)chroma_bin(lab_lightness_of_gray(rs->x[i]));
        int train = rs->count[SPLIT_TRAIN] - first;
        train = train < 0 ? 0 : train > B ? B : train;
        chroma_lightness_add(sums, bins + at, lab, rs->classes + at, (size_t)train * hw);
        for (int i = first > eval_first ? first : eval_first; i < first + B; i++) {
            size_t e = (size_t)(i - eval_first) * hw, src = (size_t)(i - first) * hw;
            memcpy(rs->eval_lab + 3 * e, lab + 3 * src, 3 * hw * sizeof(float));
            memcpy(rs->eval_rgb + 3 * e, rs->ds.pixels + 3 * (size_t)i * hw, 3 * hw);
            for (size_t p = 0; p < hw; p++)
                rs->eval_L[e + p] = lab_lightness_of_gray(rs->x[(size_t)i * hw + p]);
        }
    }
    chroma_lightness_fit(sums, rs->pal.k, &rs->by_lightness);
    for (int s = 0; s < N_SPLITS; s++) {
        long wrong = 0;
        size_t first = (size_t)rs->first[s] * hw, m = (size_t)rs->count[s] * hw;
        for (size_t i = first; i < first + m; i++)
            wrong += rs->by_lightness.class_of[bins[i]] != rs->classes[i];
        rs->baseline[s].error = m ? (double)wrong / (double)m : 0;
        rs->baseline[s].loss = NAN;
    }
    uint64_t counts[KMEANS_MAX_K] = {0};
    for (int bin = 0; bin < CHROMA_BINS; bin++)
        for (int c = 0; c < rs->pal.k; c++)
            counts[c] += sums->votes[bin][c];
    /* --rebalance S is the strength: the paper's lambda is 1 - S (README). */
    char err[256];
    if (nn_class_weights(counts, rs->pal.k, 1.0 - rs->o.rebalance, rs->class_weights, err,
                         sizeof err) != 0) {
        say_error("%s", err);
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    rs->eval = (chroma_set){
        rs->x + (size_t)eval_first * hw, rs->eval_L, rs->eval_lab, rs->eval_rgb, n_eval, hw};
done:
    free(lab);
    free(bins);
    free(sums);
    return rc;
}

/* The palette, each pixel's class (the targets), the gray inputs and their
 * standardisation, and the no-learning baseline's errors. */
static int prepare_data(run_state *rs, const nn_model_meta *resumed) {
    const cifar_dataset *ds = &rs->ds;
    rs->n_images = ds->n_train + ds->n_val + ds->n_test;
    int counts[N_SPLITS] = {ds->n_train, ds->n_val, ds->n_test};
    for (int s = 0, first = 0; s < N_SPLITS; first += counts[s], s++)
        rs->first[s] = first, rs->count[s] = counts[s];
    double t0 = now_seconds();
    int r = choose_palette(rs, resumed);
    if (r) return r;
    rs->seconds_palette = now_seconds() - t0;
    t0 = now_seconds();
    size_t n = (size_t)rs->n_images * CIFAR_PIXELS;
    rs->classes = malloc(n);
    rs->x = malloc(n * sizeof(float));
    if (!rs->classes || !rs->x) {
        say_error("out of memory for %d images", rs->n_images);
        return EXIT_RUN_FAILED;
    }
    gray_from_rgb(ds->pixels, n, rs->x);
    input_statistics(rs, resumed);
    if (rs->o.space == SPACE_LAB) {
        if ((r = prepare_chroma(rs)) != 0) return r;
    } else {
        kmeans_quantise(ds->pixels, n, &rs->pal, rs->classes);
        luminance_baseline(rs);
    }
    standardise(rs->x, n, rs->mean, rs->std, rs->x);
    if ((r = keep_shown_images(rs)) != 0) return r;
    rs->seconds_prepare = now_seconds() - t0;
    say(rs, "prepare  quantised and gray: %d images, input mean %.4f std %.4f  %.2f s\n",
        rs->n_images, rs->mean, rs->std, rs->seconds_prepare);
    say(rs, "baseline %s: error train %.2f%%  val %.2f%%  test %.2f%%\n", baseline_name(rs),
        100 * rs->baseline[0].error, 100 * rs->baseline[1].error, 100 * rs->baseline[2].error);
    return 0;
}

static void print_network(const run_state *rs) {
    const network *net = rs->net;
    say(rs, "network  %s\n", net->spec);
    say(rs, "  #  %-28s %-14s    %-14s %10s %12s\n", "layer", "input", "output", "params",
        "MFLOP/img");
    size_t params = 0;
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer_info li;
        nn_layer_describe(net, i, &li);
        char in[32], out[32];
        snprintf(in, sizeof in, "%d x %d x %d", li.in.h, li.in.w, li.in.c);
        snprintf(out, sizeof out, "%d x %d x %d", li.out.h, li.out.w, li.out.c);
        say(rs, " %2d  %-28s %-14s -> %-14s %10zu %12.3f\n", i + 1, li.name, in, out, li.params,
            li.flops / 1e6);
        params += li.params;
    }
    say(rs, "     %-28s %-14s    %-14s %10zu %12.3f\n", "total", "", "", params,
        nn_forward_flops(net) / 1e6);
}

/* ==== Outputs: each written to a temporary name, then renamed ==== */

static int write_errors_tsv(run_state *rs, char *err, size_t errlen) {
    out_path_buf path = out_path(rs, "errors.tsv");
    return report_write_errors_tsv(path.s, rs->rows, rs->n_rows, err, errlen);
}

static int write_errors_svg(run_state *rs, char *err, size_t errlen) {
    char title[CIFAR_CHOICE_MAX + 64], name[CIFAR_CHOICE_MAX];
    int lab = rs->o.space == SPACE_LAB;
    snprintf(title, sizeof title, "colorize: %s error per epoch (%s, k = %d)",
             lab ? "a*b* class" : "pixel", cifar_choice_name(&rs->ds, name, sizeof name),
             rs->pal.k);
    out_path_buf path = out_path(rs, "errors.svg");
    return report_write_errors_svg(
        path.s, title, rs->rows, rs->n_rows, rs->baseline[SPLIT_TEST].error,
        lab ? "per-lightness baseline (test)" : "luminance baseline (test)", err, errlen);
}

static int write_palette(run_state *rs, char *err, size_t errlen) {
    out_path_buf txt = out_path(rs, "palette.txt"), ppm = out_path(rs, "palette.ppm");
    if (rs->o.space == SPACE_RGB)
        return report_write_palette(txt.s, ppm.s, rs->pal.centres, 3, rs->pal.centres, rs->pal.k,
                                    err, errlen);
    /* a*b* centres are shown at a middle lightness */
    float swatch[KMEANS_MAX_K][3];
    for (int c = 0; c < rs->pal.k; c++) {
        float lab[3] = {60, rs->pal.centres[c][0], rs->pal.centres[c][1]};
        rgb_from_lab(lab, swatch[c]);
        for (int d = 0; d < 3; d++)
            swatch[c][d] *= 255;
    }
    return report_write_palette(txt.s, ppm.s, rs->pal.centres, 2, swatch, rs->pal.k, err, errlen);
}

/* Lab: the first 10 test images: original, gray input, per-lightness
 * baseline, network. */
static int write_compare_lab(run_state *rs, char *err, size_t errlen) {
    size_t n = (size_t)rs->n_shown * CIFAR_PIXELS,
           test = (size_t)rs->count[SPLIT_VAL] * CIFAR_PIXELS;
    uint8_t *pics = malloc(3 * n * 3 + 1);
    float *ab = malloc(2 * n * sizeof(float) + 1);
    int rc = -1;
    if (!pics || !ab) {
        set_error(err, errlen, "out of memory for compare.ppm");
        goto done;
    }
    uint8_t *gray = pics, *baseline = pics + 3 * n, *colour = pics + 6 * n;
    report_gray_pictures(rs->shown, n, gray);
    chroma_by_lightness_ab(&rs->by_lightness, rs->eval_L + test, n, ab);
    chroma_paint(rs->eval_L + test, ab, n, baseline);
    chroma_set shown = rs->eval;
    shown.x += test, shown.L += test, shown.n = rs->n_shown;
    chroma_colour(rs->net, &shown, (const float(*)[3])rs->pal.centres, (float)rs->o.temperature,
                  colour);
    const uint8_t *columns[] = {rs->shown, gray, baseline, colour};
    out_path_buf path = out_path(rs, "compare.ppm");
    rc = report_write_columns(path.s, columns, 4, rs->n_shown, CIFAR_SIDE, err, errlen);
done:
    free(pics);
    free(ab);
    return rc;
}

/* RGB: the first 10 test images: original, gray input, k-colour target, network. */
static int write_compare(run_state *rs, char *err, size_t errlen) {
    if (rs->o.space == SPACE_LAB) return write_compare_lab(rs, err, errlen);
    size_t first = (size_t)rs->first[SPLIT_TEST] * CIFAR_PIXELS;
    uint8_t *predicted = malloc((size_t)rs->n_shown * CIFAR_PIXELS + 1);
    if (!predicted) return set_error(err, errlen, "out of memory for compare.ppm");
    nn_score unused;
    nn_evaluate(rs->net, rs->x + first, NULL, rs->n_shown, &unused, predicted);
    out_path_buf path = out_path(rs, "compare.ppm");
    int rc = report_write_compare(path.s, rs->shown, rs->classes + first, predicted, rs->n_shown,
                                  CIFAR_SIDE, rs->pal.centres, err, errlen);
    free(predicted);
    return rc;
}

static nn_model_meta model_meta(const run_state *rs) {
    nn_model_meta meta = {.k = rs->pal.k,
                          .mean = rs->mean,
                          .std = rs->std,
                          .epochs = rs->n_rows,
                          .optimizer = rs->o.optim.optimizer,
                          .space = rs->o.space,
                          .rebalance = (float)rs->o.rebalance,
                          .temperature = rs->o.space == SPACE_LAB ? (float)rs->o.temperature : 0,
                          .plan = rs->plan};
    memcpy(meta.centres, rs->pal.centres, sizeof meta.centres);
    return meta;
}

static int write_model(run_state *rs, char *err, size_t errlen) {
    nn_model_meta meta = model_meta(rs);
    out_path_buf path = out_path(rs, "model.bin");
    return nn_save(rs->net, &meta, path.s, err, errlen);
}

/* The Lab mode's final scores on the validation and test images. */
static int score_chroma(run_state *rs) {
    for (int s = 0; s < 2; s++) {
        chroma_set set = rs->eval;
        if (s == 1) {
            size_t off = (size_t)rs->count[SPLIT_VAL] * CIFAR_PIXELS;
            set.x += off, set.L += off, set.lab += 3 * off, set.rgb += 3 * off;
        }
        set.n = rs->count[SPLIT_VAL + s];
        if (chroma_score_set(rs->net, &set, (const float(*)[3])rs->pal.centres,
                             (float)rs->o.temperature, &rs->by_lightness, rs->chroma[s]) != 0) {
            say_error("out of memory for the colour scores");
            return EXIT_RUN_FAILED;
        }
    }
    rs->chroma_scored = 1;
    return 0;
}

static void print_chroma_table(const run_state *rs, FILE *f) {
    if (!rs->chroma_scored) return;
    char network[48];
    snprintf(network, sizeof network, "network, T = %.2f", rs->o.temperature);
    const char *methods[CHROMA_METHODS] = {network, "network, argmax", "gray (the input)",
                                           "per-lightness"};
    fprintf(f, "colour   %-5s %-22s %10s %9s %8s\n", "set", "method", "a*b* err", "PSNR dB",
            "chroma");
    for (int s = 0; s < 2; s++) {
        for (int m = 0; m < CHROMA_METHODS; m++) {
            const chroma_score *c = &rs->chroma[s][m];
            fprintf(f, "colour   %-5s %-22s %10.2f %9.2f %8.2f\n", split_names[SPLIT_VAL + s],
                    methods[m], c->ab_error, c->psnr, c->chroma);
        }
        /* the originals' chroma is the gray colouring's a*b* error */
        fprintf(f, "colour   %-5s %-22s %10s %9s %8.2f\n", split_names[SPLIT_VAL + s], "originals",
                "", "", rs->chroma[s][CHROMA_GRAY].ab_error);
    }
}

static int write_summary(run_state *rs, char *err, size_t errlen) {
    out_path_buf path = out_path(rs, "summary.txt");
    atomic_file af;
    if (atomic_open(&af, path.s, err, errlen) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "command      %s\n", command_line);
    fprintf(f, "version      colorize %s\n", COLORIZE_VERSION);
    char chosen[CIFAR_CHOICE_MAX];
    fprintf(f, "data         %s (%s), %s: %d train, %d val, %d test images\n", rs->o.data_dir,
            cifar_layout_name(rs->ds.layout), cifar_choice_label(&rs->ds, chosen, sizeof chosen),
            rs->count[0], rs->count[1], rs->count[2]);
    fprintf(f, "network      %s\n", rs->net->spec);
    fprintf(f, "parameters   %zu\n", rs->net->n_params);
    fprintf(f, "epochs       %d\n", rs->n_rows);
    fprintf(f, "threads      %d\n", omp_get_max_threads());
    fprintf(f, "simd         %s\n", simd_path_name(simd_active()));
    fprintf(f, "seed         %llu\n", (unsigned long long)rs->o.seed);
    if (rs->n_rows && rs->rows[rs->n_rows - 1].epoch) {
        const epoch_row *last = &rs->rows[rs->n_rows - 1];
        for (int s = 0; s < N_SPLITS; s++)
            fprintf(f, "%-5s error  %.4f  loss %.4f  (%s baseline %.4f)\n", split_names[s],
                    last->score[s].error, last->score[s].loss,
                    rs->o.space == SPACE_LAB ? "per-lightness" : "luminance",
                    rs->baseline[s].error);
    }
    if (rs->o.space == SPACE_LAB) {
        fprintf(f, "space        lab: rebalance %.3f, temperature %.3f, flip %s\n", rs->o.rebalance,
                rs->o.temperature, rs->o.flip ? "on" : "off");
        print_chroma_table(rs, f);
    }
    fprintf(f, "time load    %.3f s\n", rs->seconds_load);
    fprintf(f, "time palette %.3f s\n", rs->seconds_palette);
    fprintf(f, "time prepare %.3f s\n", rs->seconds_prepare);
    fprintf(f, "time train   %.3f s\n", rs->seconds_train);
    fprintf(f, "time eval    %.3f s\n", rs->seconds_eval);
    fprintf(f,
            "time checkpoint %.3f s (training's wait for the checkpoints between epochs; "
            "model.bin written alongside in %.3f s)\n",
            rs->seconds_checkpoint, rs->seconds_checkpoint_behind);
    for (int c = 0; c < rs->pal.k; c++)
        if (rs->o.space == SPACE_LAB)
            fprintf(f, "colour %-5d %.3f %.3f\n", c, rs->pal.centres[c][0], rs->pal.centres[c][1]);
        else
            fprintf(f, "colour %-5d %.3f %.3f %.3f\n", c, rs->pal.centres[c][0],
                    rs->pal.centres[c][1], rs->pal.centres[c][2]);
    return atomic_commit(&af, err, errlen);
}

/* Every output is tried, the model first unless train() has just written
 * it; the first failure is reported. */
static int write_outputs(run_state *rs) {
    int (*writers[])(run_state *, char *, size_t) = {write_model,      write_errors_tsv,
                                                     write_errors_svg, write_palette,
                                                     write_compare,    write_summary};
    int rc = 0;
    for (size_t i = rs->model_written ? 1 : 0; i < sizeof writers / sizeof writers[0]; i++) {
        char err[512];
        if (writers[i](rs, err, sizeof err) != 0 && rc == 0) {
            say_error("%s", err);
            rc = EXIT_RUN_FAILED;
        }
    }
    return rc;
}

/* ==== Training ==== */

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
        size_t off = (size_t)rs->first[s] * CIFAR_PIXELS;
        nn_evaluate(rs->net, rs->x + off, rs->classes + off, rs->count[s], &row->score[s], NULL);
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
static int train(run_state *rs, int epochs) {
    int n = rs->count[SPLIT_TRAIN];
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
        nn_set_class_weights(rs->net, rs->class_weights);
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
        double loss =
            nn_train_epoch(rs->net, rs->x, rs->classes, order, flip, n, batch, &cfg, total_steps,
                           &interrupted, show ? show_progress : NULL, &ps, &done, err, sizeof err);
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

static void free_run(run_state *rs) {
    cifar_free(&rs->ds);
    free(rs->classes);
    free(rs->x);
    free(rs->shown);
    free(rs->eval_lab);
    free(rs->eval_L);
    free(rs->eval_rgb);
    free(rs->rows);
    nn_free(rs->net);
}

/* --resume without --epochs: the rest of the model's plan, with the plan's
 * own seed, batch, learning rate, schedule and flips, so that the result is
 * the one the run would have given had it never stopped. */
static int finish_plan(run_state *rs, const nn_model_meta *resumed) {
    const nn_plan *p = &resumed->plan;
    options *o = &rs->o;
    if (p->epochs == 0)
        return usage_error("--resume %s: the model records no training plan (an older file); "
                           "give --epochs N",
                           o->resume);
    int left = p->first_epoch + p->epochs - resumed->epochs;
    rs->plan = *p;
    if (left <= 0) { /* killed after its last epoch: the outputs it may lack */
        o->epochs = 0;
        say(rs,
            "resume   the model has finished its plan of %d epochs: nothing to train, the "
            "outputs are written again (--epochs N trains more)\n",
            p->epochs);
        return 0;
    }
    o->epochs = left, o->seed = p->seed, o->optim.lr = p->lr, o->optim.schedule = p->schedule;
    o->flip = p->flip;
    if (p->batch != o->batch) { /* the buffers hold the plan's batch */
        char err[512];
        o->batch = p->batch;
        nn_free(rs->net);
        nn_model_meta again;
        if (nn_load(o->resume, CIFAR_SIDE, CIFAR_SIDE, o->batch, &rs->net, &again, err,
                    sizeof err)) {
            say_error("%s", err);
            return EXIT_BAD_INPUT;
        }
    }
    say(rs, "resume   finishing the model's plan: epochs %d to %d of %d\n", resumed->epochs + 1,
        p->first_epoch + p->epochs, p->first_epoch + p->epochs);
    return 0;
}

/* Builds the network (fresh or resumed) before any data is read, so that a
 * bad --arch or --resume is reported at once. */
static int build_network(run_state *rs, nn_model_meta *resumed) {
    char err[512];
    const options *o = &rs->o;
    int batch_cap = o->batch, r; /* evaluation runs a batch at a time too */
    if (o->resume) {
        if (nn_load(o->resume, CIFAR_SIDE, CIFAR_SIDE, batch_cap, &rs->net, resumed, err,
                    sizeof err)) {
            say_error("%s", err);
            return EXIT_BAD_INPUT;
        }
        if ((r = mode_defaults(&rs->o, resumed)) != 0) return r;
        if (!o->epochs_given && (r = finish_plan(rs, resumed)) != 0) return r;
        /* The optimiser state fits one optimiser: keep the model's, or start afresh. */
        if (!o->optimizer_given) {
            rs->o.optim.optimizer = resumed->optimizer;
        } else if (o->optim.optimizer != resumed->optimizer) {
            nn_reset_optimiser(rs->net);
            say(rs,
                "resume   the model was trained with another optimiser: its state starts afresh\n");
        }
    } else if ((r = mode_defaults(&rs->o, NULL)) != 0) {
        return r;
    } else if (nn_create(o->arch, CIFAR_SIDE, CIFAR_SIDE, o->k, batch_cap, &rs->net, err,
                         sizeof err)) {
        if (strstr(err, "out of memory")) {
            say_error("%s (batch %d)", err, o->batch);
            return EXIT_RUN_FAILED;
        }
        return usage_error("--arch: %s", err);
    } else {
        nn_init_weights(rs->net, o->seed);
    }
    /* Without --lr, the rate the network was measured to train best with. */
    if (rs->o.optim.lr == 0) rs->o.optim.lr = nn_builtin_lr(rs->net->spec);
    if (!o->resume || o->epochs_given) /* a new plan: this run's epochs */
        rs->plan = (nn_plan){.first_epoch = o->resume ? resumed->epochs : 0,
                             .epochs = o->epochs,
                             .first_step = rs->net->step,
                             .seed = o->seed,
                             .batch = o->batch,
                             .lr = o->optim.lr,
                             .schedule = o->optim.schedule,
                             .flip = o->flip};
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_state rs = {0};
    int lock_fd = -1;
    default_options(&rs.o);
    const char *dir;
    int r = parse_command_line(argc, argv, &rs.o, &dir, 1, "DATA_DIR");
    if (r) return r < 0 ? 0 : r;
    rs.o.data_dir = dir;
    nn_model_meta resumed;
    if ((r = build_network(&rs, &resumed)) != 0) goto done;
    /* Reading the data checks the class too; the output folder is made and
     * proved writable before any long work starts. */
    double t0 = now_seconds();
    if ((r = load_dataset(&rs.o, &rs.ds)) != 0) goto done;
    rs.seconds_load = now_seconds() - t0;
    char chosen[CIFAR_CHOICE_MAX];
    cifar_choice_label(&rs.ds, chosen, sizeof chosen);
    if (rs.ds.n_train == 0) {
        say_error("%s: no training images of %s", dir, chosen);
        r = EXIT_BAD_INPUT;
        goto done;
    }
    if (prepare_out_dir(rs.o.out_dir) != 0 || (lock_fd = lock_out_dir(rs.o.out_dir)) < 0) {
        r = EXIT_BAD_INPUT;
        goto done;
    }
    rs.rows =
        calloc((size_t)rs.o.epochs + (rs.o.resume ? resumed.epochs : 0) + 1, sizeof(epoch_row));
    if (!rs.rows) {
        r = EXIT_RUN_FAILED;
        goto done;
    }
    if (rs.o.resume) {
        rs.n_rows = resumed.epochs; /* the earlier epochs' rows, from the folder's errors.tsv */
        report_read_errors_tsv(out_path(&rs, "errors.tsv").s, rs.rows, resumed.epochs);
    }
    say(&rs, "colorize %s: %d threads, %s kernels\n", COLORIZE_VERSION, omp_get_max_threads(),
        simd_path_name(simd_active()));
    say(&rs, "load     %s: %s: %d train, %d validation, %d test images  %.2f s\n",
        cifar_layout_name(rs.ds.layout), chosen, rs.ds.n_train, rs.ds.n_val, rs.ds.n_test,
        rs.seconds_load);
    if ((r = prepare_data(&rs, rs.o.resume ? &resumed : NULL)) != 0) goto done;
    catch_stop_signals(on_interrupt);
    print_network(&rs);
    int train_rc = train(&rs, rs.o.epochs);
    catch_stop_signals(SIG_DFL);
    if (rs.o.space == SPACE_LAB && rs.n_rows && (r = score_chroma(&rs)) != 0) goto done;
    if ((r = write_outputs(&rs)) != 0) goto done;
    if (rs.n_rows && rs.rows[rs.n_rows - 1].epoch) {
        const epoch_row *last = &rs.rows[rs.n_rows - 1];
        printf("final    error  train %.2f%%  val %.2f%%  test %.2f%%   loss %.3f / %.3f / %.3f\n",
               100 * last->score[0].error, 100 * last->score[1].error, 100 * last->score[2].error,
               last->score[0].loss, last->score[1].loss, last->score[2].loss);
    }
    printf("baseline error  train %.2f%%  val %.2f%%  test %.2f%%   (%s)\n",
           100 * rs.baseline[0].error, 100 * rs.baseline[1].error, 100 * rs.baseline[2].error,
           baseline_name(&rs));
    print_chroma_table(&rs, stdout);
    printf("time     %.1f s: load %.2f, palette %.2f, prepare %.2f, train %.1f, eval %.1f\n",
           rs.seconds_load + rs.seconds_palette + rs.seconds_prepare + rs.seconds_train +
               rs.seconds_eval,
           rs.seconds_load, rs.seconds_palette, rs.seconds_prepare, rs.seconds_train,
           rs.seconds_eval);
    printf("outputs  %s/: errors.tsv errors.svg compare.ppm palette.txt palette.ppm model.bin "
           "summary.txt\n",
           rs.o.out_dir);
    r = train_rc;
    if (interrupted && r == 0) {
        fprintf(stderr, "%s: stopped by %s after %d epochs; outputs written\n", program,
                strsignal(interrupted), rs.n_rows);
        r = 128 + interrupted; /* as the shell reports a program the signal ended */
    }
done:
    if (lock_fd >= 0) close(lock_fd);
    free_run(&rs);
    return r;
}
