/* The command line's services, shared by every command: the options and
 * their parsing, the defaults each colour space brings, the error and usage
 * messages, the command line as the summary records it, and the two steps
 * more than one command takes (loading the dataset, fitting the palette).
 * The commands (cmd_*.c) stand on this file; it knows none of them. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "cli.h"
#include "kmeans.h"
#include "nn.h"
#include "photo.h"
#include "simd/simd.h"

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
                   .quality = -1,
                   .seed = 1,
                   .restarts = 1,
                   .optim = {OPT_ADAM, 0, 0.9f, 0.9f, 0.999f, 1e-8f, SCHED_COSINE, 0}};
}

const char *program = "colorize";
char command_line[4096];

void record_command_line(int argc, char **argv) {
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof command_line - 1; i++)
        len += (size_t)snprintf(command_line + len, sizeof command_line - len, "%s%s", i ? " " : "",
                                argv[i]);
}

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
           "       %s predict [--temperature T] [--scale N] [-t N] [--quality Q] [MODEL] IN OUT\n"
           "       %s predict [...] [--format png|jpeg|ppm] [MODEL] IN... -o DIR\n"
           "                 (IN: PNG, JPEG, PGM or PPM; OUT: .png, .jpg, .jpeg or .ppm;\n"
           "                 each IN into DIR/NAME.png, NAME its file name without extension)\n"
           "                 Without MODEL (or -m MODEL), the model built into the program\n"
           "                 (a Lab model trained on CIFAR-10's pictures of every class). With\n"
           "                 -o DIR, the first operand is MODEL if its file is a colorize model\n"
           "                 (begins with CLRZMODL), else a picture.\n\n"
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
           "      --quality Q        predict: JPEG quality, 1..100 [%d]\n"
           "      --format F         predict -o DIR: png, jpeg or ppm [png]\n"
           "  -m, --model MODEL      predict: colour with this model file [the built-in one]\n"
           "      --resume MODEL     continue training a saved model.bin\n"
           "  -q, --quiet            only the final summary\n"
           "  -h, --help             this help\n"
           "  -V, --version          the version\n\n"
           "Environment: COLORIZE_SIMD=avx2, portable or scalar asks for a kernel path.\n",
           program, program, program, program, program, d.out_dir, d.epochs, d.batch, LAB_DEFAULT_K,
           d.sample, d.restarts, d.class_spec, d.val, (unsigned long long)d.seed,
           nn_builtin_names(), LAB_DEFAULT_ARCH, LAB_DEFAULT_FLIP ? "on" : "off",
           LAB_DEFAULT_REBALANCE, LAB_DEFAULT_TEMPERATURE, PHOTO_DEFAULT_QUALITY);
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
    OPT_SCALE,
    OPT_QUALITY,
    OPT_FORMAT
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
    {"model", required_argument, 0, 'm'},
    {"quality", required_argument, 0, OPT_QUALITY},
    {"format", required_argument, 0, OPT_FORMAT},
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
    case 'm':
        if (!arg[0]) return usage_error("--model: the file name is empty");
        o->model = arg;
        break;
    case OPT_QUALITY: r = parse_int("--quality", arg, 1, 100, &o->quality); break;
    case OPT_FORMAT:
        if (!photo_format_of_name(arg))
            return usage_error("--format: '%s' is not png, jpeg or ppm", arg);
        o->format = arg;
        break;
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

int parse_options(int argc, char **argv, options *o) {
    opterr = 0;
    optind = 1;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":o:e:b:k:t:m:qhV", long_options, &idx)) != -1) {
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

void apply_options(const options *o) {
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
    if (o->model) return usage_error("--model is an option of predict");
    if (o->quality >= 0 || o->format)
        return usage_error("--quality and --format are options of predict");
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

/* ==== The dataset and the palette ==== */

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

int parse_data_command(int argc, char **argv, options *o) {
    default_options(o);
    return parse_command_line(argc, argv, o, &o->data_dir, 1, "DATA_DIR");
}

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
