/* colorize: learns to colour grayscale CIFAR-10 photographs.
 *
 *   colorize [options] DATA_DIR          the whole task (see --help)
 *   colorize info DATA_DIR               what the dataset folder holds
 *   colorize palette DATA_DIR            the k main colours only
 *   colorize predict MODEL IN OUT.ppm    colour a picture with a trained model
 *   colorize predict MODEL IN... -o DIR  colour many, each into DIR/NAME.ppm
 *
 * This file owns the command line and everything the user sees; the library
 * files return errors and never print. Exit status: 0 done, 1 failure while
 * running, 2 bad command line or bad input, 128 + N stopped by signal N (130
 * Ctrl-C, 143 SIGTERM, 129 SIGHUP). */
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
#include "colorize.h"
#include "image.h"
#include "kmeans.h"
#include "nn.h"
#include "predict.h"
#include "report.h"
#include "simd/simd.h"
#include "util.h"

/* k and arch are 0 and NULL until given or defaulted by mode_defaults. */
void default_options(options *o) {
    *o = (options){.out_dir = "colorize-out",
                   .class_spec = "bird",
                   .epochs = 20,
                   .batch = 32,
                   .val = 500,
                   .threads = 0,
                   .sample = 1.0,
                   .rebalance = -1,
                   .temperature = -1,
                   .flip = -1,
                   .scale = -1,
                   .seed = 1,
                   .restarts = 1,
                   .optim = {OPT_ADAM, 0, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0}};
}

const char *program = "colorize";
char command_line[4096];

void say_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int usage_error(const char *fmt, ...) {
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
           "       %s palette DATA_DIR [--space S] [-k K] [--sample F] [--seed S] [--threads T]\n"
           "                 [--class C]\n"
           "       %s predict [--temperature T] [--scale N] [-t N] MODEL IN.pgm|IN.ppm OUT.ppm\n"
           "       %s predict [--temperature T] [--scale N] [-t N] MODEL IN... -o DIR\n"
           "                 (each IN into DIR/NAME.ppm, NAME its file name without extension)\n\n"
           "Learns to colour grayscale CIFAR-10 images. In the RGB mode (the default): k-means\n"
           "palette of the class's pixels, then a CNN that gives every pixel of the gray image\n"
           "one of the k colours. In the Lab mode: k-means on the pixels' CIE a*b* chroma, a\n"
           "CNN that gives every pixel a distribution over the k chroma classes, decoded into\n"
           "a*b* and joined with the gray image's own lightness.\n"
           "DATA_DIR is cifar-10-batches-py or cifar-10-batches-bin, as downloaded.\n\n"
           "Options (default in brackets):\n"
           "  -o, --out DIR          output folder [%s]\n"
           "      --space rgb|lab    what the classes are: RGB colours or a*b* chroma [rgb]\n"
           "  -e, --epochs N         training epochs [%d]\n"
           "  -b, --batch N          mini-batch size [%d]\n"
           "      --lr X             peak learning rate [the network's: default 0.01,\n"
           "                         skip 0.003, pixel 0.003, dense 0.001, chroma 0.003,\n"
           "                         a spec 0.01]\n"
           "      --optimizer NAME   adam or sgd (momentum 0.9) [adam]\n"
           "      --schedule NAME    constant or cosine [cosine]\n"
           "  -k, --colors K         palette size, 2..64 [4; Lab %d]\n"
           "      --sample F         share of the pixels k-means uses, 0 < F <= 1 [%g]\n"
           "      --kmeans-restarts N  k-means runs, the lowest inertia kept [%d]\n"
           "      --class C          class name or number 0..9, a comma list, or all [%s]\n"
           "      --val N            last N training images kept for validation [%d]\n"
           "  -t, --threads N        threads [all cores; OMP_NUM_THREADS honoured]\n"
           "      --seed N           seed of every random choice [%llu]\n"
           "      --arch NAME|SPEC   network: %s, or a spec (README)\n"
           "                         [default; Lab %s]\n"
           "      --flip, --no-flip  mirror a random half of the training images each epoch\n"
           "                         [off; Lab %s]\n"
           "      --rebalance S      Lab: class rebalancing strength, 0 (none) to 1 [%g]\n"
           "      --temperature T    Lab: decoding temperature, 0 = most likely class [%g]\n"
           "      --scale N          predict, Lab: short side the chroma is predicted at, in one\n"
           "                         pass, 0 = the picture's own [1, 1.5 and 2 times the\n"
           "                         training size and their mirror images, averaged]\n"
           "      --resume MODEL     continue training a saved model.bin\n"
           "  -q, --quiet            only the final summary\n"
           "  -h, --help             this help\n"
           "  -V, --version          the version\n\n"
           "Environment: COLORIZE_SIMD=avx2, portable or scalar asks for a kernel path.\n",
           program, program, program, program, program, d.out_dir, d.epochs, d.batch, LAB_DEFAULT_K,
           d.sample, d.restarts, d.class_spec, d.val, (unsigned long long)d.seed,
           nn_builtin_names(), LAB_DEFAULT_ARCH, LAB_DEFAULT_FLIP ? "on" : "off",
           LAB_DEFAULT_REBALANCE, LAB_DEFAULT_TEMPERATURE);
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
    OPT_RESUME,
    OPT_SPACE,
    OPT_REBALANCE,
    OPT_TEMPERATURE,
    OPT_FLIP,
    OPT_SCALE
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
    {"space", required_argument, 0, OPT_SPACE},
    {"rebalance", required_argument, 0, OPT_REBALANCE},
    {"temperature", required_argument, 0, OPT_TEMPERATURE},
    {"flip", no_argument, 0, OPT_FLIP},
    {"no-flip", no_argument, 0, OPT_FLIP + 1000},
    {"scale", required_argument, 0, OPT_SCALE},
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
    case 'e':
        o->epochs_given = 1;
        r = parse_int("--epochs", arg, 1, 100000, &o->epochs);
        break;
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
    case OPT_REBALANCE: r = parse_double("--rebalance", arg, 0, 1, 0, &o->rebalance); break;
    case OPT_TEMPERATURE: r = parse_double("--temperature", arg, 0, 1e6, 0, &o->temperature); break;
    case OPT_FLIP: o->flip = 1; break;
    case OPT_FLIP + 1000: o->flip = 0; break;
    case OPT_SCALE: r = parse_int("--scale", arg, 0, 65536, &o->scale); break;
    case OPT_SPACE:
        o->space_given = 1;
        if (strcmp(arg, "rgb") == 0)
            o->space = SPACE_RGB;
        else if (strcmp(arg, "lab") == 0)
            o->space = SPACE_LAB;
        else
            return usage_error("--space: '%s' is not rgb or lab", arg);
        break;
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

/* Says so when COLORIZE_SIMD asks for a path this build or CPU lacks, or
 * names none, and which kernels run instead. */
static void warn_about_simd_request(void) {
    const char *env = getenv("COLORIZE_SIMD");
    const int want = simd_requested();
    if (!env || want == (int)simd_active()) return;
    fprintf(stderr, "%s: warning: COLORIZE_SIMD=%s %s; running the %s kernels\n", program, env,
            want < 0 ? "names no kernel path (scalar, portable, avx2)"
                     : "is not available on this CPU or in this build",
            simd_path_name(simd_active()));
}

/* The options in argv (getopt permutes, so options may follow operands);
 * optind is then the first operand. Returns 0, an exit status, or -1 for
 * "done, exit 0" (help, version). */
static int parse_options(int argc, char **argv, options *o) {
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
    return 0;
}

/* What the options set for the whole process. */
static void apply_options(const options *o) {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    simd_flush_subnormals();
    warn_about_simd_request();
}

int parse_command_line(int argc, char **argv, options *o, const char **operands, int positional,
                       const char *what) {
    int r = parse_options(argc, argv, o);
    if (r) return r;
    if (argc - optind != positional)
        return usage_error("expected %s, got %d argument%s", what, argc - optind,
                           argc - optind == 1 ? "" : "s");
    for (int i = 0; i < positional; i++)
        operands[i] = argv[optind + i];
    apply_options(o);
    return 0;
}

int mode_defaults(options *o, const nn_model_meta *resumed) {
    if (resumed) {
        if (o->space_given && o->space != resumed->space)
            return usage_error("--space %s: the resumed model is a %s model",
                               o->space == SPACE_LAB ? "lab" : "rgb",
                               resumed->space == SPACE_LAB ? "Lab" : "RGB");
        o->space = resumed->space;
        if (o->space == SPACE_LAB && o->rebalance < 0) o->rebalance = resumed->rebalance;
        if (o->space == SPACE_LAB && o->temperature < 0) o->temperature = resumed->temperature;
    }
    if (o->scale >= 0) return usage_error("--scale is an option of predict");
    if (o->space == SPACE_RGB) {
        if (o->rebalance >= 0) return usage_error("--rebalance is for the Lab mode (--space lab)");
        if (o->temperature >= 0)
            return usage_error("--temperature is for the Lab mode (--space lab)");
        o->rebalance = 0;
        if (!o->k) o->k = 4;
        if (!o->arch) o->arch = "default";
        if (o->flip < 0) o->flip = 0;
    } else {
        if (o->rebalance < 0) o->rebalance = LAB_DEFAULT_REBALANCE;
        if (o->temperature < 0) o->temperature = LAB_DEFAULT_TEMPERATURE;
        if (!o->k) o->k = LAB_DEFAULT_K;
        if (!o->arch) o->arch = LAB_DEFAULT_ARCH;
        if (o->flip < 0) o->flip = LAB_DEFAULT_FLIP;
    }
    return 0;
}

/* ==== colorize info ==== */

int load_dataset(const options *o, cifar_dataset *ds) {
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
               ds.test_class_counts[c], cifar_class_chosen(&ds, c) ? "  <- chosen" : "");
    char chosen[CIFAR_CHOICE_MAX];
    printf("chosen  %s: %d training, %d validation, %d test images\n",
           cifar_choice_label(&ds, chosen, sizeof chosen), ds.n_train, ds.n_val, ds.n_test);
    cifar_free(&ds);
    return 0;
}

/* ==== colorize palette ==== */

int fit_palette(const options *o, const cifar_dataset *ds, kmeans_result *pal) {
    kmeans_options ko;
    kmeans_default_options(&ko);
    ko.k = o->k;
    ko.sample = o->sample;
    ko.seed = o->seed;
    ko.restarts = o->restarts;
    ko.space = o->space == SPACE_LAB ? KMEANS_AB : KMEANS_RGB;
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

static void print_centres(const kmeans_result *pal, colour_space space) {
    for (int c = 0; c < pal->k; c++)
        if (space == SPACE_LAB)
            printf("  %8.3f %8.3f\n", pal->centres[c][0], pal->centres[c][1]);
        else
            printf("  %8.3f %8.3f %8.3f\n", pal->centres[c][0], pal->centres[c][1],
                   pal->centres[c][2]);
}

static int cmd_palette(int argc, char **argv) {
    options o;
    int r = parse_data_command(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    if ((r = mode_defaults(&o, NULL)) != 0) return r;
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
    printf("centres     %s\n",
           o.space == SPACE_LAB ? "(a* b*, least chroma first)" : "(R G B, darkest first)");
    print_centres(&pal, o.space);
    return 0;
}

/* ==== colorize predict ==== */

/* Pictures coloured together, their tiles shared out among the threads:
 * until they hold this many pixels (24 MB in and out) or this many pictures. */
enum { GROUP_PIXELS = 4 << 20, GROUP_PICTURES = 256 };

static void say_colour_error(const char *in, const image *pic, const char *why) {
    if (strstr(why, "out of memory"))
        say_error("%s: %s", in, why);
    else
        say_error("%s: cannot colour a %dx%d image with this model: %s", in, pic->width,
                  pic->height, why);
}

/* colorize predict MODEL IN OUT.ppm */
static int predict_one(const predict_model *m, const predict_options *po, const char *in,
                       const char *out_path) {
    char err[512];
    image pic = {0}, out = {0};
    if (image_read_pnm(in, &pic, err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    int r = 0;
    if (predict_image(m, &pic, po, &out, err, sizeof err) != 0) {
        say_colour_error(in, &pic, err);
        r = strstr(err, "out of memory") ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
    } else if (image_write_pnm(out_path, &out, err, sizeof err) != 0) {
        say_error("%s", err);
        r = EXIT_RUN_FAILED;
    }
    image_free(&out);
    image_free(&pic);
    return r;
}

/* mkdir -p */
static int make_folder(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(path, 0777);
        *p = '/';
    }
    struct stat st;
    if (mkdir(path, 0777) != 0 && !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return -1;
    return 0;
}

/* DIR/NAME.ppm for IN = .../NAME.EXT; -1 if it does not fit. */
static int output_path(const char *dir, const char *in, char *path, size_t len) {
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    const char *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    int n = snprintf(path, len, "%s%s%.*s.ppm", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", stem,
                     base);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Colours a group of pictures and writes each; returns how many failed. */
static int colour_group(const predict_model *m, const predict_options *po, image *pics,
                        const int *which, int n, char **inputs, char (*outputs)[4096]) {
    enum { ERRLEN = 512 };
    image *outs = calloc((size_t)n, sizeof *outs);
    char *errs = calloc((size_t)n, ERRLEN);
    int failed = 0;
    if (!outs || !errs) {
        for (int i = 0; i < n; i++)
            say_error("%s: out of memory", inputs[which[i]]);
        failed = n;
    } else {
        predict_images(m, pics, n, po, outs, errs, ERRLEN);
        for (int i = 0; i < n; i++) {
            char err[512];
            if (!outs[i].pixels) {
                say_colour_error(inputs[which[i]], &pics[i], errs + (size_t)i * ERRLEN);
                failed++;
            } else if (image_write_pnm(outputs[which[i]], &outs[i], err, sizeof err) != 0) {
                say_error("%s", err);
                failed++;
            }
            image_free(&outs[i]);
        }
    }
    for (int i = 0; i < n; i++)
        image_free(&pics[i]);
    free(outs);
    free(errs);
    return failed;
}

/* colorize predict MODEL IN... -o DIR: every picture into DIR/NAME.ppm;
 * a picture that cannot be read, coloured or written is said, and the
 * others still coloured. Pictures are read in order into groups that are
 * coloured together. */
static int predict_many(const predict_model *m, const predict_options *po, char **inputs, int n,
                        const char *dir) {
    if (make_folder(dir) != 0) {
        say_error("%s: cannot create the output folder: %s", dir, strerror(errno));
        return EXIT_RUN_FAILED;
    }
    char(*outputs)[4096] = calloc((size_t)n, sizeof *outputs);
    image *pics = calloc(GROUP_PICTURES, sizeof *pics);
    int *which = calloc(GROUP_PICTURES, sizeof *which);
    if (!outputs || !pics || !which) {
        say_error("out of memory for %d pictures", n);
        free(outputs), free(pics), free(which);
        return EXIT_RUN_FAILED;
    }
    int failed = 0, count = 0;
    size_t pixels = 0;
    for (int i = 0; i <= n; i++) {
        image pic = {0};
        if (i < n) {
            char err[512];
            int same = -1;
            if (output_path(dir, inputs[i], outputs[i], sizeof outputs[i]) != 0) {
                say_error("%s: the output path in %s is too long", inputs[i], dir);
                failed++;
                continue;
            }
            for (int j = 0; j < i && same < 0; j++)
                if (strcmp(outputs[j], outputs[i]) == 0) same = j;
            if (same >= 0) {
                say_error("%s: not coloured: its output %s is %s's", inputs[i], outputs[i],
                          inputs[same]);
                failed++;
                continue;
            }
            if (image_read_pnm(inputs[i], &pic, err, sizeof err) != 0) {
                say_error("%s", err);
                failed++;
                continue;
            }
        }
        size_t px = (size_t)pic.width * pic.height;
        if (count > 0 && (i == n || count == GROUP_PICTURES || pixels + px > GROUP_PIXELS)) {
            failed += colour_group(m, po, pics, which, count, inputs, outputs);
            count = 0, pixels = 0;
        }
        if (i < n) pics[count] = pic, which[count++] = i, pixels += px;
    }
    free(outputs), free(pics), free(which);
    return failed ? EXIT_RUN_FAILED : 0;
}

static int cmd_predict(int argc, char **argv) {
    options o;
    default_options(&o);
    o.out_dir = NULL; /* -o DIR chooses the form with many pictures */
    int r = parse_options(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    int n = argc - optind;
    char **operands = argv + optind;
    if (o.out_dir ? n < 2 : n != 3)
        return usage_error("expected MODEL IN OUT.ppm, or MODEL IN... -o DIR, got %d argument%s", n,
                           n == 1 ? "" : "s");
    apply_options(&o);
    predict_options po;
    predict_default_options(&po);
    po.temperature = (float)o.temperature;
    po.scale = o.scale;
    char err[512];
    predict_model *m;
    if (predict_model_load(operands[0], &po, &m, err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    r = o.out_dir ? predict_many(m, &po, operands + 1, n - 1, o.out_dir)
                  : predict_one(m, &po, operands[1], operands[2]);
    predict_model_free(m);
    return r;
}

/* What was printed must have arrived: standard output on a full disk is a
 * failed write like any other. */
static int check_stdout(int status) {
    errno = 0;
    int flushed = fflush(stdout) == 0;
    if (flushed && !ferror(stdout)) return status;
    /* an earlier write's reason is gone; the flush's is the same one */
    say_error("standard output: %s", !flushed && errno ? strerror(errno) : "a write failed");
    return status ? status : EXIT_RUN_FAILED;
}

int main(int argc, char **argv) {
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof command_line - 1; i++)
        len += (size_t)snprintf(command_line + len, sizeof command_line - len, "%s%s", i ? " " : "",
                                argv[i]);
    if (argc >= 2 && strcmp(argv[1], "info") == 0)
        return check_stdout(cmd_info(argc - 1, argv + 1));
    if (argc >= 2 && strcmp(argv[1], "palette") == 0)
        return check_stdout(cmd_palette(argc - 1, argv + 1));
    if (argc >= 2 && strcmp(argv[1], "predict") == 0)
        return check_stdout(cmd_predict(argc - 1, argv + 1));
    return check_stdout(cmd_run(argc, argv));
}
