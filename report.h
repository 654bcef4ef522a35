/* The files a run leaves in its output folder, apart from model.bin
 * (nn_model.c) and summary.txt (the front end's run_outputs.c, which knows
 * the run's settings): the per-epoch table and plot, the palette, and the
 * comparison sheet. Each is written atomically (util.h's atomic_file); errors name the
 * file. */
#ifndef COLORIZE_REPORT_H
#define COLORIZE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, N_SPLITS };

/* One epoch's scores; epoch 0 marks an earlier epoch whose row was lost. */
typedef struct {
    int epoch;
    nn_score score[N_SPLITS];
    double train_seconds, eval_seconds;
} epoch_row;

/* classes (n) -> RGB bytes (n, 3): each class's palette colour (0..255), rounded. */
void palette_paint(const uint8_t *classes, size_t n, const float centres[][3], uint8_t *rgb);

/* errors.tsv: a header, then one row per epoch (rows with epoch 0 left out). */
int report_write_errors_tsv(const char *path, const epoch_row *rows, int n_rows, char *err,
                            size_t errlen);
/* rows[0..epochs) from the errors.tsv a run wrote; a row not there keeps
 * epoch 0, and a missing file reads as no rows. */
void report_read_errors_tsv(const char *path, epoch_row *rows, int epochs);
/* errors.svg: each split's error per epoch, and a baseline's as a dashed line. */
int report_write_errors_svg(const char *path, const char *title, const epoch_row *rows, int n_rows,
                            double baseline, const char *baseline_label, char *err, size_t errlen);
/* palette.txt (the first dims values of each centre per line, three
 * decimals: R G B, or a* b*) and palette.ppm (a swatch of each colour
 * swatch[c], RGB 0..255). */
int report_write_palette(const char *txt_path, const char *ppm_path, const float centres[][3],
                         int dims, const float swatch[][3], int k, char *err, size_t errlen);

/* A sheet of pictures, scaled x4: row r holds picture r of each column;
 * columns[c] is (rows, side, side, 3). */
int report_write_columns(const char *path, const uint8_t *const *columns, int n_columns, int rows,
                         int side, char *err, size_t errlen);
/* rgb (n, 3) -> gray (n, 3): each pixel's rgb2gray value in all three channels. */
void report_gray_pictures(const uint8_t *rgb, size_t n, uint8_t *gray);
/* compare.ppm of the RGB mode: one row per picture: the original (side,
 * side, 3), its gray, and the target and predicted classes (side, side)
 * painted. */
int report_write_compare(const char *path, const uint8_t *originals, const uint8_t *targets,
                         const uint8_t *predicted, int rows, int side, const float centres[][3],
                         char *err, size_t errlen);

#endif
