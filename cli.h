/* The command line's services (cli.c), which every command's front end
 * (cmd_*.c) uses. The front end alone prints and chooses exit statuses; the
 * library files return errors. */
#ifndef COLORIZE_CLI_H
#define COLORIZE_CLI_H

#include <stdint.h>

#include "cifar.h"
#include "kmeans.h"
#include "nn.h"

#define COLORIZE_VERSION "1.0.0"

enum { EXIT_RUN_FAILED = 1, EXIT_BAD_INPUT = 2 }; /* a signal that stops a run: 128 + its number */

/* The Lab mode's defaults, chosen by validation error and the look of the
 * pictures (README). */
#define LAB_DEFAULT_K           16
#define LAB_DEFAULT_ARCH        "chroma"
#define LAB_DEFAULT_REBALANCE   0.5
#define LAB_DEFAULT_TEMPERATURE 0.38
#define LAB_DEFAULT_FLIP        1

typedef struct {
    const char *out_dir, *arch, *class_spec, *resume, *data_dir;
    int epochs, batch, k, val, threads, quiet, restarts;
    int optimizer_given, space_given, epochs_given;
    colour_space space;
    double sample;
    double rebalance, temperature; /* Lab; < 0 until given or defaulted */
    int flip;                      /* < 0 until given or defaulted */
    int scale;                     /* predict, Lab; < 0 the model's training size */
    int quality;                   /* predict, JPEG output; < 0 until given */
    const char *format;            /* predict -o DIR: the outputs' format; NULL until given */
    const char *model;             /* predict: -m MODEL; NULL: an operand, or the built-in */
    uint64_t seed;
    nn_optim_config optim;
} options;

void default_options(options *o);
/* Parses options and `positional` operands from argv (getopt permutes, so
 * options may follow operands). Returns 0, an exit status, or -1 for "done,
 * exit 0" (help, version). */
int parse_command_line(int argc, char **argv, options *o, const char **operands, int positional,
                       const char *what);
/* The default options and the one operand, DATA_DIR, of `info` and `palette`. */
int parse_data_command(int argc, char **argv, options *o);
/* The two steps of parse_command_line for a command whose operands vary
 * (predict): the options in argv, optind then the first operand (0, an exit
 * status, or -1 for "done, exit 0"); and what they set for the whole
 * process (threads, subnormals, the COLORIZE_SIMD warning). */
int parse_options(int argc, char **argv, options *o);
void apply_options(const options *o);
/* Fills in what the colour space decides (palette size, network,
 * rebalancing, temperature, flips) where the command line has not, and
 * refuses the Lab options in the RGB mode, where they mean nothing. A
 * resumed model's own settings come first. */
int mode_defaults(options *o, const nn_model_meta *resumed);

extern const char *program;
/* argv joined by spaces, as summary.txt records it (record_command_line). */
extern char command_line[4096];
void record_command_line(int argc, char **argv);
/* One line to stderr, prefixed with the program name. */
void say_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a pointer to --help; returns EXIT_BAD_INPUT. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The dataset o->data_dir holds, of o's classes; 0 or an exit status, said. */
int load_dataset(const options *o, cifar_dataset *ds);
/* k-means on every pixel of ds as o asks; 0 or an exit status, said. */
int fit_palette(const options *o, const cifar_dataset *ds, kmeans_result *pal);

#endif
