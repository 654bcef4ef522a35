/* colorize: learns to colour grayscale CIFAR-10 photographs.
 *
 *   colorize [options] DATA_DIR          the whole task (see --help)
 *   colorize info DATA_DIR               what the dataset folder holds
 *   colorize palette DATA_DIR            the k main colours only
 *   colorize predict MODEL IN OUT.ppm    colour a picture with a trained model
 *
 * This file owns the command line and everything the user sees; the library
 * files return errors and never print. Exit status: 0 done, 1 failure while
 * running, 2 bad command line or bad input, 130 interrupted. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cifar.h"
#include "image.h"
#include "kmeans.h"
#include "nn.h"
#include "report.h"
#include "simd/simd.h"
#include "util.h"

#define COLORIZE_VERSION "1.0.0"

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2, EXIT_INTERRUPTED = 130 };
/* Paths in the output folder fit an atomic_file; no output's name is longer
 * than OUT_NAME_MAX ("palette.ppm", "summary.txt", ".colorize-probe"). */
enum { OUT_PATH_MAX = sizeof((atomic_file *)0)->path, OUT_NAME_MAX = 16 };

typedef struct {
    const char *out_dir, *arch, *class_spec, *resume, *data_dir;
    int epochs, batch, k, val, threads, quiet, restarts;
    int optimizer_given;
    double sample;
    uint64_t seed;
    nn_optim_config optim;
} options;

static void default_options(options *o) {
    *o = (options){.out_dir = "colorize-out",
                   .arch = "default",
                   .class_spec = "bird",
                   .epochs = 20,
                   .batch = 32,
                   .k = 4,
                   .val = 500,
                   .threads = 0,
                   .sample = 1.0,
                   .seed = 1,
                   .restarts = 1,
                   .optim = {OPT_ADAM, 0, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0}};
}

static const char *program = "colorize";
static char command_line[4096];

/* One line to stderr, prefixed with the program name. */
static void say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

static void print_help(void) {
    options d;
    default_options(&d);
    printf("Usage: %s [OPTIONS] DATA_DIR\n"
           "       %s info DATA_DIR [--class C] [--val N]\n"
           "       %s palette DATA_DIR [-k K] [--sample F] [--seed S] [--threads T] [--class C]\n"
           "       %s predict MODEL IN.pgm|IN.ppm OUT.ppm\n\n"
           "Learns to colour grayscale CIFAR-10 images: k-means palette of the class's pixels,\n"
           "then a CNN that gives every pixel of the gray image one of the k colours.\n"
           "DATA_DIR is cifar-10-batches-py or cifar-10-batches-bin, as downloaded.\n\n"
           "Options (default in brackets):\n"
           "  -o, --out DIR          output folder [%s]\n"
           "  -e, --epochs N         training epochs [%d]\n"
           "  -b, --batch N          mini-batch size [%d]\n"
           "      --lr X             peak learning rate [the network's: default 0.01,\n"
           "                         skip 0.003, pixel 0.003, dense 0.001, a spec 0.01]\n"
           "      --optimizer NAME   adam or sgd (momentum 0.9) [adam]\n"
           "      --schedule NAME    constant or cosine [cosine]\n"
           "  -k, --colors K         palette size, 2..64 [%d]\n"
           "      --sample F         share of the pixels k-means uses, 0 < F <= 1 [%g]\n"
           "      --kmeans-restarts N  k-means runs, the lowest inertia kept [%d]\n"
           "      --class C          class name or number 0..9 [%s]\n"
           "      --val N            last N training images kept for validation [%d]\n"
           "  -t, --threads N        threads [all cores; OMP_NUM_THREADS honoured]\n"
           "      --seed N           seed of every random choice [%llu]\n"
           "      --arch NAME|SPEC   network: %s, or a spec (README) [%s]\n"
           "      --resume MODEL     continue training a saved model.bin\n"
           "  -q, --quiet            only the final summary\n"
           "  -h, --help             this help\n"
           "  -V, --version          the version\n\n"
           "Environment: COLORIZE_SIMD=scalar forces the portable kernels.\n",
           program, program, program, program, d.out_dir, d.epochs, d.batch, d.k, d.sample,
           d.restarts, d.class_spec, d.val, (unsigned long long)d.seed, nn_builtin_names(), d.arch);
}

/* ==== Parsing numbers: the whole string, within range, or a usage error ==== */

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        usage_error("%s: '%s' is not a whole number from %ld to %ld", opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, int lo_open,
                        double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v > hi || v < lo || (lo_open && v == lo)) {
        usage_error("%s: '%s' is not a number in %s%g, %g]", opt, s, lo_open ? "(" : "[", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_LR = 256,
    OPT_OPTIMIZER,
    OPT_SCHEDULE,
    OPT_SAMPLE,
    OPT_RESTARTS,
    OPT_CLASS,
    OPT_VAL,
    OPT_SEED,
    OPT_ARCH,
    OPT_RESUME
};

static const struct option long_options[] = {
    {"out", required_argument, 0, 'o'},
    {"epochs", required_argument, 0, 'e'},
    {"batch", required_argument, 0, 'b'},
    {"lr", required_argument, 0, OPT_LR},
    {"optimizer", required_argument, 0, OPT_OPTIMIZER},
    {"schedule", required_argument, 0, OPT_SCHEDULE},
    {"colors", required_argument, 0, 'k'},
    {"sample", required_argument, 0, OPT_SAMPLE},
    {"kmeans-restarts", required_argument, 0, OPT_RESTARTS},
    {"class", required_argument, 0, OPT_CLASS},
    {"val", required_argument, 0, OPT_VAL},
    {"threads", required_argument, 0, 't'},
    {"seed", required_argument, 0, OPT_SEED},
    {"arch", required_argument, 0, OPT_ARCH},
    {"resume", required_argument, 0, OPT_RESUME},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

/* Returns 0 to go on, or an exit status (0 after --help / --version). */
static int parse_option(int c, const char *arg, options *o) {
    double d = 0;
    int r = 0;
    switch (c) {
    case 'o':
        if (!arg[0]) return usage_error("--out: the folder name is empty");
        o->out_dir = arg;
        break;
    case 'e': r = parse_int("--epochs", arg, 1, 100000, &o->epochs); break;
    case 'b': r = parse_int("--batch", arg, 1, 4096, &o->batch); break;
    case 'k': r = parse_int("--colors", arg, 2, KMEANS_MAX_K, &o->k); break;
    case 't': r = parse_int("--threads", arg, 1, 1024, &o->threads); break;
    case 'q': o->quiet = 1; break;
    case OPT_LR:
        r = parse_double("--lr", arg, 0, 10, 1, &d);
        o->optim.lr = (float)d;
        break;
    case OPT_SAMPLE: r = parse_double("--sample", arg, 0, 1, 1, &o->sample); break;
    case OPT_RESTARTS: r = parse_int("--kmeans-restarts", arg, 1, 1000, &o->restarts); break;
    case OPT_VAL: r = parse_int("--val", arg, 0, 1000000, &o->val); break;
    case OPT_CLASS: o->class_spec = arg; break;
    case OPT_ARCH: o->arch = arg; break;
    case OPT_RESUME: o->resume = arg; break;
    case OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || !isdigit((unsigned char)arg[0]) || *end)
            return usage_error("--seed: '%s' is not a whole number >= 0", arg);
        o->seed = v;
        break;
    }
    case OPT_OPTIMIZER:
        o->optimizer_given = 1;
        if (strcmp(arg, "adam") == 0)
            o->optim.optimizer = OPT_ADAM;
        else if (strcmp(arg, "sgd") == 0)
            o->optim.optimizer = OPT_SGD;
        else
            return usage_error("--optimizer: '%s' is not adam or sgd", arg);
        break;
    case OPT_SCHEDULE:
        if (strcmp(arg, "constant") == 0)
            o->optim.schedule = SCHED_CONSTANT;
        else if (strcmp(arg, "cosine") == 0)
            o->optim.schedule = SCHED_COSINE;
        else
            return usage_error("--schedule: '%s' is not constant or cosine", arg);
        break;
    case 'h': print_help(); return -1;
    case 'V': printf("colorize %s\n", COLORIZE_VERSION); return -1;
    default: return EXIT_BAD_INPUT; /* getopt has said what was wrong */
    }
    return r ? EXIT_BAD_INPUT : 0;
}

/* Parses options and `positional` operands from argv (getopt permutes, so
 * options may follow operands). Returns 0, an exit status, or -1 for "done,
 * exit 0" (help, version). */
static int parse_command_line(int argc, char **argv, options *o, const char **operands,
                              int positional, const char *what) {
    opterr = 0;
    optind = 1;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":o:e:b:k:t:qhV", long_options, &idx)) != -1) {
        if (c == '?') {
            const char *word = argv[optind - 1];
            if (strncmp(word, "--", 2) == 0 && strchr(word, '='))
                return usage_error("option '%.*s' takes no value", (int)(strchr(word, '=') - word),
                                   word);
            if (strncmp(word, "--", 2) == 0)
                return usage_error("unknown or ambiguous option '%s'", word);
            return usage_error("unknown option '-%c'", optopt);
        }
        if (c == ':') return usage_error("option '%s' needs a value", argv[optind - 1]);
        int r = parse_option(c, optarg, o);
        if (r) return r;
    }
    if (argc - optind != positional)
        return usage_error("expected %s, got %d argument%s", what, argc - optind,
                           argc - optind == 1 ? "" : "s");
    for (int i = 0; i < positional; i++)
        operands[i] = argv[optind + i];
    if (o->threads > 0) omp_set_num_threads(o->threads);
    simd_flush_subnormals();
    return 0;
}

/* ==== colorize info ==== */

static int load_dataset(const options *o, cifar_dataset *ds) {
    char err[512];
    int rc = cifar_load(o->data_dir, o->class_spec, o->val, ds, err, sizeof err);
    if (rc != 0) {
        if (rc == CIFAR_BAD_CLASS) return usage_error("%s", err);
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    return 0;
}

/* Options and the one operand, DATA_DIR, of `info` and `palette`. */
static int parse_data_command(int argc, char **argv, options *o) {
    default_options(o);
    return parse_command_line(argc, argv, o, &o->data_dir, 1, "DATA_DIR");
}

static int cmd_info(int argc, char **argv) {
    options o;
    int r = parse_data_command(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    const char *dir = o.data_dir;
    cifar_dataset ds;
    if ((r = load_dataset(&o, &ds)) != 0) return r;
    printf("layout  %s (%s)\n", cifar_layout_name(ds.layout), dir);
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        printf("file    %-18s %6d records\n", ds.file_names[f], ds.file_records[f]);
    printf("class   %-2s %-12s %7s %7s\n", "#", "name", "train", "test");
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        printf("class   %-2d %-12s %7d %7d%s\n", c, ds.class_names[c], ds.train_class_counts[c],
               ds.test_class_counts[c], c == ds.class_index ? "  <- chosen" : "");
    printf("chosen  %s (class %d): %d training, %d validation, %d test images\n",
           ds.class_names[ds.class_index], ds.class_index, ds.n_train, ds.n_val, ds.n_test);
    cifar_free(&ds);
    return 0;
}

/* ==== colorize palette ==== */

static int fit_palette(const options *o, const cifar_dataset *ds, kmeans_result *pal) {
    kmeans_options ko;
    kmeans_default_options(&ko);
    ko.k = o->k;
    ko.sample = o->sample;
    ko.seed = o->seed;
    ko.restarts = o->restarts;
    size_t n = (size_t)(ds->n_train + ds->n_val + ds->n_test) * CIFAR_PIXELS;
    char err[512];
    if (o->sample < 0.1)
        fprintf(
            stderr,
            "%s: warning: --sample %g uses less than the task's minimum of 10 %% of the pixels\n",
            program, o->sample);
    if (kmeans_fit(ds->pixels, n, &ko, pal, err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    return 0;
}

static void print_centres(const kmeans_result *pal) {
    for (int c = 0; c < pal->k; c++)
        printf("  %8.3f %8.3f %8.3f\n", pal->centres[c][0], pal->centres[c][1], pal->centres[c][2]);
}

static int cmd_palette(int argc, char **argv) {
    options o;
    int r = parse_data_command(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    o.val = 0;
    cifar_dataset ds;
    kmeans_result pal;
    if ((r = load_dataset(&o, &ds)) != 0) return r;
    r = fit_palette(&o, &ds, &pal);
    cifar_free(&ds);
    if (r) return r;
    printf("pixels      %zu\n", pal.n_points);
    printf("iterations  %d\n", pal.iterations);
    printf("inertia     %.6e\n", pal.inertia);
    printf("time        %.3f s (k-means, %d threads, %s)\n", pal.seconds, omp_get_max_threads(),
           simd_path_name(simd_active()));
    printf("centres     (R G B, darkest first)\n");
    print_centres(&pal);
    return 0;
}

/* ==== colorize predict ==== */

/* (n) gray values in [0, 1] -> standardised network inputs */
static void standardise(const float *gray, size_t n, float mean, float std, float *x) {
    for (size_t i = 0; i < n; i++)
        x[i] = (gray[i] - mean) / std;
}

static int cmd_predict(int argc, char **argv) {
    options o;
    default_options(&o);
    const char *arg[3];
    int r = parse_command_line(argc, argv, &o, arg, 3, "MODEL IN OUT.ppm");
    if (r) return r < 0 ? 0 : r;
    char err[512];
    image in = {0};
    if (image_read_pnm(arg[1], &in, err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    network *net;
    nn_model_meta meta;
    char why[512];
    if (nn_load(arg[0], in.height, in.width, 1, &net, &meta, why, sizeof why) != 0) {
        if (strstr(why, arg[0]) == why)
            say_error("%s", why);
        else
            say_error("%s: cannot colour a %dx%d image with this model: %s", arg[1], in.width,
                      in.height, why);
        image_free(&in);
        return EXIT_BAD_INPUT;
    }
    size_t n = (size_t)in.width * in.height;
    float *gray = malloc(n * sizeof(float));
    uint8_t *classes = malloc(n);
    image out = {in.width, in.height, 3, malloc(3 * n)};
    if (!gray || !classes || !out.pixels) {
        say_error("out of memory for a %dx%d image", in.width, in.height);
        r = EXIT_RUN_FAILED;
    } else {
        if (in.channels == 3)
            gray_from_rgb(in.pixels, n, gray);
        else
            for (size_t i = 0; i < n; i++)
                gray[i] = in.pixels[i] / 255.0f;
        standardise(gray, n, meta.mean, meta.std, gray);
        nn_score unused;
        nn_evaluate(net, gray, NULL, 1, &unused, classes);
        palette_paint(classes, n, meta.centres, out.pixels);
        if (image_write_pnm(arg[2], &out, err, sizeof err) != 0) {
            say_error("%s", err);
            r = EXIT_RUN_FAILED;
        }
    }
    free(gray);
    free(classes);
    image_free(&out);
    image_free(&in);
    nn_free(net);
    return r;
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
    nn_score baseline[N_SPLITS];
    network *net;
    epoch_row
        *rows; /* one per epoch the model has been trained; a resumed run's earlier ones too */
    int n_rows;
    double seconds_load, seconds_palette, seconds_prepare, seconds_train, seconds_eval;
} run_state;

static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int sig) {
    interrupted = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C ends the program at once */
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
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(path, 0777);
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        say_error("%s: cannot create the output folder: %s", dir, strerror(errno));
        return -1;
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

/* The palette, each pixel's class (the targets), the gray inputs and their
 * standardisation, and the luminance baseline's errors. */
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
    kmeans_quantise(ds->pixels, n, &rs->pal, rs->classes);
    gray_from_rgb(ds->pixels, n, rs->x);
    input_statistics(rs, resumed);
    luminance_baseline(rs);
    standardise(rs->x, n, rs->mean, rs->std, rs->x);
    if ((r = keep_shown_images(rs)) != 0) return r;
    rs->seconds_prepare = now_seconds() - t0;
    say(rs, "prepare  quantised and gray: %d images, input mean %.4f std %.4f  %.2f s\n",
        rs->n_images, rs->mean, rs->std, rs->seconds_prepare);
    say(rs, "baseline luminance only: error train %.2f%%  val %.2f%%  test %.2f%%\n",
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
    char title[128];
    snprintf(title, sizeof title, "colorize: pixel error per epoch (%s, k = %d)",
             rs->ds.class_names[rs->ds.class_index], rs->pal.k);
    out_path_buf path = out_path(rs, "errors.svg");
    return report_write_errors_svg(path.s, title, rs->rows, rs->n_rows,
                                   rs->baseline[SPLIT_TEST].error, "luminance baseline (test)", err,
                                   errlen);
}

static int write_palette(run_state *rs, char *err, size_t errlen) {
    out_path_buf txt = out_path(rs, "palette.txt"), ppm = out_path(rs, "palette.ppm");
    return report_write_palette(txt.s, ppm.s, rs->pal.centres, rs->pal.k, err, errlen);
}

/* The first 10 test images: original, gray input, k-colour target, network. */
static int write_compare(run_state *rs, char *err, size_t errlen) {
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

static int write_model(run_state *rs, char *err, size_t errlen) {
    nn_model_meta meta = {.k = rs->pal.k,
                          .mean = rs->mean,
                          .std = rs->std,
                          .epochs = rs->n_rows,
                          .optimizer = rs->o.optim.optimizer};
    memcpy(meta.centres, rs->pal.centres, sizeof meta.centres);
    out_path_buf path = out_path(rs, "model.bin");
    return nn_save(rs->net, &meta, path.s, err, errlen);
}

static int write_summary(run_state *rs, char *err, size_t errlen) {
    out_path_buf path = out_path(rs, "summary.txt");
    atomic_file af;
    if (atomic_open(&af, path.s, err, errlen) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "command      %s\n", command_line);
    fprintf(f, "version      colorize %s\n", COLORIZE_VERSION);
    fprintf(f, "data         %s (%s), class %s: %d train, %d val, %d test images\n", rs->o.data_dir,
            cifar_layout_name(rs->ds.layout), rs->ds.class_names[rs->ds.class_index], rs->count[0],
            rs->count[1], rs->count[2]);
    fprintf(f, "network      %s\n", rs->net->spec);
    fprintf(f, "parameters   %zu\n", rs->net->n_params);
    fprintf(f, "epochs       %d\n", rs->n_rows);
    fprintf(f, "threads      %d\n", omp_get_max_threads());
    fprintf(f, "simd         %s\n", simd_path_name(simd_active()));
    fprintf(f, "seed         %llu\n", (unsigned long long)rs->o.seed);
    if (rs->n_rows && rs->rows[rs->n_rows - 1].epoch) {
        const epoch_row *last = &rs->rows[rs->n_rows - 1];
        for (int s = 0; s < N_SPLITS; s++)
            fprintf(f, "%-5s error  %.4f  loss %.4f  (luminance baseline %.4f)\n", split_names[s],
                    last->score[s].error, last->score[s].loss, rs->baseline[s].error);
    }
    fprintf(f, "time load    %.3f s\n", rs->seconds_load);
    fprintf(f, "time palette %.3f s\n", rs->seconds_palette);
    fprintf(f, "time prepare %.3f s\n", rs->seconds_prepare);
    fprintf(f, "time train   %.3f s\n", rs->seconds_train);
    fprintf(f, "time eval    %.3f s\n", rs->seconds_eval);
    for (int c = 0; c < rs->pal.k; c++)
        fprintf(f, "colour %-5d %.3f %.3f %.3f\n", c, rs->pal.centres[c][0], rs->pal.centres[c][1],
                rs->pal.centres[c][2]);
    return atomic_commit(&af, err, errlen);
}

/* Every output is tried, the model first; the first failure is reported. */
static int write_outputs(run_state *rs) {
    int (*writers[])(run_state *, char *, size_t) = {write_model,      write_errors_tsv,
                                                     write_errors_svg, write_palette,
                                                     write_compare,    write_summary};
    int rc = 0;
    for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++) {
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

/* Trains `epochs` more epochs. Ctrl-C, or divergence, takes the network back
 * to the end of its last complete epoch, so that the model written matches
 * errors.tsv. Returns 0, or EXIT_RUN_FAILED (diverged, out of memory, a
 * write failed). */
static int train(run_state *rs, int epochs) {
    int n = rs->count[SPLIT_TRAIN];
    int *order = malloc(sizeof(int) * (size_t)n);
    long saved_step;
    float *saved = malloc(nn_state_floats(rs->net) * sizeof(float));
    if (!order || !saved) {
        say_error("out of memory for the training state");
        free(order);
        free(saved);
        return EXIT_RUN_FAILED;
    }
    int batch = rs->o.batch < n ? rs->o.batch : n;
    long steps_per_epoch = (n + batch - 1) / batch;
    nn_optim_config cfg = rs->o.optim;
    cfg.first_step = rs->net->step; /* a resumed run's schedule spans its own epochs */
    int show = !rs->o.quiet && isatty(STDERR_FILENO), rc = 0;
    int last_epoch = rs->n_rows + epochs;
    for (int e = 0; e < epochs && !interrupted; e++) {
        epoch_row row = {.epoch = rs->n_rows + 1};
        progress_state ps = {now_seconds(), row.epoch, last_epoch};
        /* Each epoch's order depends on the seed and the epoch's number only. */
        rng_state rng;
        rng_seed(&rng, rs->o.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)row.epoch));
        shuffle(order, n, &rng);
        nn_state_save(rs->net, saved, &saved_step);
        char err[512];
        int done;
        double loss = nn_train_epoch(rs->net, rs->x, rs->classes, order, NULL, n, batch, &cfg,
                                     steps_per_epoch * epochs, &interrupted,
                                     show ? show_progress : NULL, &ps, &done, err, sizeof err);
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
        double t0 = now_seconds();
        evaluate_splits(rs, &row);
        row.eval_seconds = now_seconds() - t0;
        rs->seconds_eval += row.eval_seconds;
        rs->rows[rs->n_rows++] = row;
        say(rs,
            "epoch %3d/%d  loss %.3f  error  train %5.2f%%  val %5.2f%%  test %5.2f%%  %5.1f s  "
            "%4.0f img/s\n",
            row.epoch, last_epoch, loss, 100 * row.score[0].error, 100 * row.score[1].error,
            100 * row.score[2].error, row.train_seconds, n / row.train_seconds);
        if (write_errors_tsv(rs, err, sizeof err) || write_errors_svg(rs, err, sizeof err)) {
            say_error("%s", err);
            rc = EXIT_RUN_FAILED;
            break;
        }
    }
    free(order);
    free(saved);
    return rc;
}

static void free_run(run_state *rs) {
    cifar_free(&rs->ds);
    free(rs->classes);
    free(rs->x);
    free(rs->shown);
    free(rs->rows);
    nn_free(rs->net);
}

/* Builds the network (fresh or resumed) before any data is read, so that a
 * bad --arch or --resume is reported at once. */
static int build_network(run_state *rs, nn_model_meta *resumed) {
    char err[512];
    const options *o = &rs->o;
    int batch_cap = o->batch; /* evaluation runs a batch at a time too */
    if (o->resume) {
        if (nn_load(o->resume, CIFAR_SIDE, CIFAR_SIDE, batch_cap, &rs->net, resumed, err,
                    sizeof err)) {
            say_error("%s", err);
            return EXIT_BAD_INPUT;
        }
        /* The optimiser state fits one optimiser: keep the model's, or start afresh. */
        if (!o->optimizer_given) {
            rs->o.optim.optimizer = resumed->optimizer;
        } else if (o->optim.optimizer != resumed->optimizer) {
            nn_reset_optimiser(rs->net);
            say(rs,
                "resume   the model was trained with another optimiser: its state starts afresh\n");
        }
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
    return 0;
}

static int cmd_run(int argc, char **argv) {
    run_state rs = {0};
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
    if (rs.ds.n_train == 0) {
        say_error("%s: no training images of class %s", dir, rs.ds.class_names[rs.ds.class_index]);
        r = EXIT_BAD_INPUT;
        goto done;
    }
    if (prepare_out_dir(rs.o.out_dir) != 0) {
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
    say(&rs, "load     %s: %s (class %d): %d train, %d validation, %d test images  %.2f s\n",
        cifar_layout_name(rs.ds.layout), rs.ds.class_names[rs.ds.class_index], rs.ds.class_index,
        rs.ds.n_train, rs.ds.n_val, rs.ds.n_test, rs.seconds_load);
    if ((r = prepare_data(&rs, rs.o.resume ? &resumed : NULL)) != 0) goto done;
    signal(SIGINT, on_interrupt);
    print_network(&rs);
    int train_rc = train(&rs, rs.o.epochs);
    signal(SIGINT, SIG_DFL);
    if ((r = write_outputs(&rs)) != 0) goto done;
    if (rs.n_rows && rs.rows[rs.n_rows - 1].epoch) {
        const epoch_row *last = &rs.rows[rs.n_rows - 1];
        printf("final    error  train %.2f%%  val %.2f%%  test %.2f%%   loss %.3f / %.3f / %.3f\n",
               100 * last->score[0].error, 100 * last->score[1].error, 100 * last->score[2].error,
               last->score[0].loss, last->score[1].loss, last->score[2].loss);
    }
    printf("baseline error  train %.2f%%  val %.2f%%  test %.2f%%   (luminance only)\n",
           100 * rs.baseline[0].error, 100 * rs.baseline[1].error, 100 * rs.baseline[2].error);
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
        fprintf(stderr, "%s: interrupted after %d epochs; outputs written\n", program, rs.n_rows);
        r = EXIT_INTERRUPTED;
    }
done:
    free_run(&rs);
    return r;
}

int main(int argc, char **argv) {
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof command_line - 1; i++)
        len += (size_t)snprintf(command_line + len, sizeof command_line - len, "%s%s", i ? " " : "",
                                argv[i]);
    if (argc >= 2 && strcmp(argv[1], "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "palette") == 0) return cmd_palette(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "predict") == 0) return cmd_predict(argc - 1, argv + 1);
    return cmd_run(argc, argv);
}
