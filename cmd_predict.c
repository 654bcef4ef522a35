/* colorize predict MODEL IN OUT, or MODEL IN... -o DIR: colours
 * pictures with a trained model (the work is predict.c's). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "builtin_model.h"
#include "cli.h"
#include "commands.h"
#include "image.h"
#include "photo.h"
#include "predict.h"

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

/* How the colourings are written: the format OUT's extension or --format
 * names, and the JPEG quality. */
typedef struct {
    photo_format format;
    int quality;
} output_format;

/* Writes pic's colouring out, with pic's alpha (a PNG output keeps it). */
static int write_colouring(const char *path, image *out, image *pic, const output_format *of,
                           char *err, size_t errlen) {
    out->alpha = pic->alpha, out->alpha_depth = pic->alpha_depth;
    pic->alpha = NULL;
    return photo_write(path, out, of->format, of->quality, err, errlen);
}

/* colorize predict MODEL IN OUT */
static int predict_one(const predict_model *m, const predict_options *po, const char *in,
                       const char *out_path, const output_format *of) {
    char err[512];
    image pic = {0}, out = {0};
    if (photo_read(in, &pic, err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    int r = 0;
    if (predict_image(m, &pic, po, &out, err, sizeof err) != 0) {
        say_colour_error(in, &pic, err);
        r = strstr(err, "out of memory") ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
    } else if (write_colouring(out_path, &out, &pic, of, err, sizeof err) != 0) {
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

/* DIR/NAME.png (or the format's extension) for IN = .../NAME.EXT; -1 if it
 * does not fit. */
static int output_path(const char *dir, const char *in, photo_format f, char *path, size_t len) {
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    const char *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    int n = snprintf(path, len, "%s%s%.*s.%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", stem,
                     base, photo_extension(f));
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Colours a group of pictures and writes each; returns how many failed. */
static int colour_group(const predict_model *m, const predict_options *po, image *pics,
                        const int *which, int n, char **inputs, char (*outputs)[4096],
                        const output_format *of) {
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
            } else if (write_colouring(outputs[which[i]], &outs[i], &pics[i], of, err,
                                       sizeof err) != 0) {
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

/* colorize predict MODEL IN... -o DIR: every picture into DIR/NAME.png;
 * a picture that cannot be read, coloured or written is said, and the
 * others still coloured. Pictures are read in order into groups that are
 * coloured together. */
static int predict_many(const predict_model *m, const predict_options *po, char **inputs, int n,
                        const char *dir, const output_format *of) {
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
            if (output_path(dir, inputs[i], of->format, outputs[i], sizeof outputs[i]) != 0) {
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
            if (photo_read(inputs[i], &pic, err, sizeof err) != 0) {
                say_error("%s", err);
                failed++;
                continue;
            }
        }
        size_t px = (size_t)pic.width * pic.height;
        if (count > 0 && (i == n || count == GROUP_PICTURES || pixels + px > GROUP_PIXELS)) {
            failed += colour_group(m, po, pics, which, count, inputs, outputs, of);
            count = 0, pixels = 0;
        }
        if (i < n) pics[count] = pic, which[count++] = i, pixels += px;
    }
    free(outputs), free(pics), free(which);
    return failed ? EXIT_RUN_FAILED : 0;
}

int cmd_predict(int argc, char **argv) {
    options o;
    default_options(&o);
    o.out_dir = NULL; /* -o DIR chooses the form with many pictures */
    int r = parse_options(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    int n = argc - optind;
    char **operands = argv + optind;
    const char *model = o.model;
    if (!model && (o.out_dir ? n >= 2 && nn_is_model_file(operands[0]) : n == 3))
        model = operands[0], operands++, n--;
    else if (!model && !o.out_dir && n == 2 && nn_is_model_file(operands[0]))
        return usage_error("expected MODEL IN OUT: %s is a model, and OUT is missing", operands[0]);
    else if (!model && o.out_dir && n == 1 && nn_is_model_file(operands[0]))
        return usage_error("expected [MODEL] IN... -o DIR: %s is a model, and no picture is named",
                           operands[0]);
    if (o.out_dir ? n < 1 : n != 2)
        return usage_error("expected %sIN OUT, or %sIN... -o DIR, got %d argument%s",
                           o.model ? "" : "[MODEL] ", o.model ? "" : "[MODEL] ", argc - optind,
                           argc - optind == 1 ? "" : "s");
    output_format of = {PHOTO_PNG, o.quality >= 0 ? o.quality : PHOTO_DEFAULT_QUALITY};
    if (o.out_dir && o.format) of.format = photo_format_of_name(o.format);
    if (!o.out_dir && o.format)
        return usage_error("--format is for -o DIR; OUT's extension names its format");
    if (!o.out_dir && !(of.format = photo_format_of_path(operands[1])))
        return usage_error("%s: unknown output format: name it .png, .jpg, .jpeg or .ppm",
                           operands[1]);
    if (o.quality >= 0 && of.format != PHOTO_JPEG)
        return usage_error("--quality is for a JPEG output");
    apply_options(&o);
    predict_options po;
    predict_default_options(&po);
    po.temperature = (float)o.temperature;
    po.scale = o.scale;
    char err[512];
    predict_model *m;
    if ((model ? predict_model_load(model, &po, &m, err, sizeof err)
               : predict_model_load_buffer(builtin_model, builtin_model_size, "the built-in model",
                                           &po, &m, err, sizeof err)) != 0) {
        say_error("%s", err);
        return EXIT_BAD_INPUT;
    }
    r = o.out_dir ? predict_many(m, &po, operands, n, o.out_dir, &of)
                  : predict_one(m, &po, operands[0], operands[1], &of);
    predict_model_free(m);
    return r;
}
