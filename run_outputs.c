/* The run's outputs, each written to a temporary name, then renamed: the
 * per-epoch table and plot, the palette, the comparison sheet, the model
 * and summary.txt; and the Lab mode's colour scores, which the summary and
 * the final lines show. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma.h"
#include "cifar.h"
#include "cli.h"
#include "lab.h"
#include "nn.h"
#include "report.h"
#include "run.h"
#include "simd/simd.h"
#include "util.h"

static const char *split_names[N_SPLITS] = {"train", "val", "test"};

const char *baseline_name(const run_state *rs) {
    return rs->o.space == SPACE_LAB ? "per-lightness" : "luminance only";
}

int write_errors_tsv(run_state *rs, char *err, size_t errlen) {
    out_path_buf path = out_path(rs, "errors.tsv");
    return report_write_errors_tsv(path.s, rs->rows, rs->n_rows, err, errlen);
}

int write_errors_svg(run_state *rs, char *err, size_t errlen) {
    char title[CIFAR_CHOICE_MAX + 64], name[CIFAR_CHOICE_MAX];
    int lab = rs->o.space == SPACE_LAB;
    snprintf(title, sizeof title, "colorize: %s error per epoch (%s, k = %d)",
             lab ? "a*b* class" : "pixel", cifar_choice_name(&rs->ds, name, sizeof name),
             rs->pal.k);
    out_path_buf path = out_path(rs, "errors.svg");
    return report_write_errors_svg(
        path.s, title, rs->rows, rs->n_rows, rs->data.baseline[SPLIT_TEST].error,
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
    size_t n = (size_t)rs->data.n_shown * CIFAR_PIXELS,
           test = (size_t)rs->data.count[SPLIT_VAL] * CIFAR_PIXELS;
    uint8_t *pics = malloc(3 * n * 3 + 1);
    float *ab = malloc(2 * n * sizeof(float) + 1);
    int rc = -1;
    if (!pics || !ab) {
        set_error(err, errlen, "out of memory for compare.ppm");
        goto done;
    }
    uint8_t *gray = pics, *baseline = pics + 3 * n, *colour = pics + 6 * n;
    report_gray_pictures(rs->data.shown, n, gray);
    chroma_by_lightness_ab(&rs->data.by_lightness, rs->data.eval_L + test, n, ab);
    chroma_paint(rs->data.eval_L + test, ab, n, baseline);
    chroma_set shown = rs->data.eval;
    shown.x += test, shown.L += test, shown.n = rs->data.n_shown;
    chroma_colour(rs->net, &shown, (const float(*)[3])rs->pal.centres, (float)rs->o.temperature,
                  colour);
    const uint8_t *columns[] = {rs->data.shown, gray, baseline, colour};
    out_path_buf path = out_path(rs, "compare.ppm");
    rc = report_write_columns(path.s, columns, 4, rs->data.n_shown, CIFAR_SIDE, err, errlen);
done:
    free(pics);
    free(ab);
    return rc;
}

/* RGB: the first 10 test images: original, gray input, k-colour target, network. */
static int write_compare(run_state *rs, char *err, size_t errlen) {
    if (rs->o.space == SPACE_LAB) return write_compare_lab(rs, err, errlen);
    size_t first = (size_t)rs->data.first[SPLIT_TEST] * CIFAR_PIXELS;
    uint8_t *predicted = malloc((size_t)rs->data.n_shown * CIFAR_PIXELS + 1);
    if (!predicted) return set_error(err, errlen, "out of memory for compare.ppm");
    nn_score unused;
    nn_evaluate(rs->net, rs->data.x + first, NULL, rs->data.n_shown, &unused, predicted);
    out_path_buf path = out_path(rs, "compare.ppm");
    int rc = report_write_compare(path.s, rs->data.shown, rs->data.classes + first, predicted,
                                  rs->data.n_shown, CIFAR_SIDE, rs->pal.centres, err, errlen);
    free(predicted);
    return rc;
}

nn_model_meta model_meta(const run_state *rs) {
    nn_model_meta meta = {.k = rs->pal.k,
                          .mean = rs->data.mean,
                          .std = rs->data.std,
                          .epochs = rs->n_rows,
                          .optimizer = rs->o.optim.optimizer,
                          .space = rs->o.space,
                          .rebalance = (float)rs->o.rebalance,
                          .temperature = rs->o.space == SPACE_LAB ? (float)rs->o.temperature : 0,
                          .plan = rs->plan};
    memcpy(meta.centres, rs->pal.centres, sizeof meta.centres);
    return meta;
}

int write_model(run_state *rs, char *err, size_t errlen) {
    nn_model_meta meta = model_meta(rs);
    out_path_buf path = out_path(rs, "model.bin");
    return nn_save(rs->net, &meta, path.s, err, errlen);
}

int score_chroma(run_state *rs) {
    for (int s = 0; s < 2; s++) {
        chroma_set set = rs->data.eval;
        if (s == 1) {
            size_t off = (size_t)rs->data.count[SPLIT_VAL] * CIFAR_PIXELS;
            set.x += off, set.L += off, set.lab += 3 * off, set.rgb += 3 * off;
        }
        set.n = rs->data.count[SPLIT_VAL + s];
        if (chroma_score_set(rs->net, &set, (const float(*)[3])rs->pal.centres,
                             (float)rs->o.temperature, &rs->data.by_lightness,
                             rs->chroma[s]) != 0) {
            say_error("out of memory for the colour scores");
            return EXIT_RUN_FAILED;
        }
    }
    rs->chroma_scored = 1;
    return 0;
}

void print_chroma_table(const run_state *rs, FILE *f) {
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
            rs->data.count[0], rs->data.count[1], rs->data.count[2]);
    fprintf(f, "network      %s\n", nn_spec(rs->net));
    fprintf(f, "parameters   %zu\n", nn_param_count(rs->net));
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
                    rs->data.baseline[s].error);
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

/* Every output is tried; the first failure is reported. */
int write_outputs(run_state *rs) {
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
