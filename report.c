/* The run's report files (report.h). */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util.h"

void palette_paint(const uint8_t *classes, size_t n, const float centres[][3], uint8_t *rgb) {
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)lrintf(centres[classes[i]][c]);
}

int report_write_errors_tsv(const char *path, const epoch_row *rows, int n_rows, char *err,
                            size_t errlen) {
    atomic_file af;
    if (atomic_open(&af, path, err, errlen) != 0) return -1;
    fprintf(af.f, "epoch\ttrain_error\tval_error\ttest_error\ttrain_loss\tval_loss\ttest_loss\t"
                  "train_seconds\teval_seconds\n");
    for (int i = 0; i < n_rows; i++) {
        const epoch_row *r = &rows[i];
        if (r->epoch == 0) continue;
        fprintf(af.f, "%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.3f\t%.3f\n", r->epoch,
                r->score[0].error, r->score[1].error, r->score[2].error, r->score[0].loss,
                r->score[1].loss, r->score[2].loss, r->train_seconds, r->eval_seconds);
    }
    return atomic_commit(&af, err, errlen);
}

void report_read_errors_tsv(const char *path, epoch_row *rows, int epochs) {
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        epoch_row r;
        if (sscanf(line, "%d %lf %lf %lf %lf %lf %lf %lf %lf", &r.epoch, &r.score[0].error,
                   &r.score[1].error, &r.score[2].error, &r.score[0].loss, &r.score[1].loss,
                   &r.score[2].loss, &r.train_seconds, &r.eval_seconds) == 9 &&
            r.epoch >= 1 && r.epoch <= epochs)
            rows[r.epoch - 1] = r;
    }
    fclose(f);
}

int report_write_errors_svg(const char *path, const char *title, const epoch_row *rows, int n_rows,
                            double baseline, const char *baseline_label, char *err, size_t errlen) {
    static const char *colours[N_SPLITS] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
    static const char *labels[N_SPLITS] = {"training", "validation", "test"};
    if (n_rows == 0) return 0; /* nothing to plot yet */
    double *v = malloc(sizeof(double) * N_SPLITS * (size_t)n_rows);
    if (!v) return set_error(err, errlen, "%s: out of memory for the plot", path);
    plot_line lines[N_SPLITS];
    for (int s = 0; s < N_SPLITS; s++) {
        for (int i = 0; i < n_rows; i++)
            v[s * n_rows + i] = rows[i].epoch ? rows[i].score[s].error : NAN;
        lines[s] = (plot_line){labels[s], colours[s], v + s * n_rows};
    }
    int r = plot_errors_svg(path, title, lines, N_SPLITS, n_rows, baseline, baseline_label, err,
                            errlen);
    free(v);
    return r;
}

int report_write_palette(const char *txt_path, const char *ppm_path, const float centres[][3],
                         int dims, const float swatch[][3], int k, char *err, size_t errlen) {
    enum { SIDE = 32, MAX_K = 64 };
    atomic_file af;
    if (k > MAX_K) return set_error(err, errlen, "%s: more than %d colours", txt_path, MAX_K);
    if (atomic_open(&af, txt_path, err, errlen) != 0) return -1;
    for (int c = 0; c < k; c++)
        for (int d = 0; d < dims; d++)
            fprintf(af.f, "%.3f%c", centres[c][d], d + 1 < dims ? ' ' : '\n');
    if (atomic_commit(&af, err, errlen) != 0) return -1;
    /* Swatches: one 32x32 square per colour, in palette order. */
    uint8_t *swatches = malloc((size_t)k * SIDE * SIDE * 3);
    if (!swatches) return set_error(err, errlen, "%s: out of memory", ppm_path);
    const uint8_t *cells[MAX_K];
    uint8_t cls[SIDE * SIDE];
    for (int c = 0; c < k; c++) {
        memset(cls, c, sizeof cls);
        cells[c] = swatches + (size_t)c * SIDE * SIDE * 3;
        palette_paint(cls, SIDE * SIDE, swatch, swatches + (size_t)c * SIDE * SIDE * 3);
    }
    image sheet;
    int r = image_sheet(cells, 1, k, SIDE, 1, 4, &sheet, err, errlen);
    if (r == 0) {
        r = image_write_pnm(ppm_path, &sheet, err, errlen);
        image_free(&sheet);
    }
    free(swatches);
    return r;
}

int report_write_columns(const char *path, const uint8_t *const *columns, int n_columns, int rows,
                         int side, char *err, size_t errlen) {
    enum { MAX_COLUMNS = 8 };
    if (rows == 0) return 0;
    if (n_columns > MAX_COLUMNS) return set_error(err, errlen, "%s: too many columns", path);
    const uint8_t **cells = malloc(sizeof *cells * (size_t)rows * n_columns);
    if (!cells) return set_error(err, errlen, "%s: out of memory", path);
    size_t bytes = 3 * (size_t)side * side;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < n_columns; c++)
            cells[r * n_columns + c] = columns[c] + (size_t)r * bytes;
    image sheet;
    int rc = image_sheet(cells, rows, n_columns, side, 4, 4, &sheet, err, errlen);
    if (rc == 0) {
        rc = image_write_pnm(path, &sheet, err, errlen);
        image_free(&sheet);
    }
    free(cells);
    return rc;
}

void report_gray_pictures(const uint8_t *rgb, size_t n, uint8_t *gray) {
    for (size_t i = 0; i < n; i++) {
        float g;
        gray_from_rgb(rgb + 3 * i, 1, &g);
        gray[3 * i] = gray[3 * i + 1] = gray[3 * i + 2] = (uint8_t)lrintf(255 * g);
    }
}

int report_write_compare(const char *path, const uint8_t *originals, const uint8_t *targets,
                         const uint8_t *predicted, int rows, int side, const float centres[][3],
                         char *err, size_t errlen) {
    size_t n = (size_t)rows * side * side;
    uint8_t *pics = malloc(3 * n * 3 + 1);
    if (!pics) return set_error(err, errlen, "%s: out of memory", path);
    uint8_t *gray = pics, *target = pics + 3 * n, *colour = pics + 6 * n;
    report_gray_pictures(originals, n, gray);
    palette_paint(targets, n, centres, target);
    palette_paint(predicted, n, centres, colour);
    const uint8_t *columns[] = {originals, gray, target, colour};
    int rc = report_write_columns(path, columns, 4, rows, side, err, errlen);
    free(pics);
    return rc;
}
