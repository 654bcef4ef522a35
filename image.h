/* Pictures and plots in, pictures and plots out: grayscale conversion,
 * PGM/PPM (netpbm) reading and writing, the comparison sheet and the SVG
 * error plot. Every file is written atomically (temporary name, then rename). */
#ifndef COLORIZE_IMAGE_H
#define COLORIZE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* scikit-image rgb2gray: 0.2125 R + 0.7154 G + 0.0721 B on values scaled to [0, 1].
 * rgb holds n pixels of 3 bytes; gray gets n floats in [0, 1]. */
void gray_from_rgb(const uint8_t *rgb, size_t n, float *gray);
/* The same for one colour whose channels are 0..255 floats (a palette centre). */
float gray_of_rgb(float r, float g, float b);

/* scikit-image rgb2gray of 16-bit samples (img_as_float32 divides by 65535). */
float gray_of_rgb16(float r, float g, float b);

/* An image, channels 1 (gray) or 3 (RGB interleaved), row-major. The
 * program's own pictures are 8-bit and opaque; a photograph read (photo.h)
 * may have 16-bit samples and an alpha plane, which colouring carries
 * through untouched. */
typedef struct {
    int width, height, channels;
    uint8_t *pixels; /* width * height * channels samples, owned: bytes, or
                        uint16_t in the machine's order when depth is 16 */
    int depth;       /* bits a sample: 8 (0 means 8 too) or 16 */
    uint8_t *alpha;  /* NULL, or width * height opacities of alpha_depth bits, owned */
    int alpha_depth; /* 8 or 16 */
} image;

void image_free(image *img);

/* 100 megapixels: colouring holds the picture and its colouring, 6 bytes a
 * pixel at 8 bits (600 MB there), besides the network's tiles. */
#define PICTURE_MAX_PIXELS 100000000ull
/* The longest side read: JPEG's own limit, and well within PNG's. */
#define PICTURE_MAX_SIDE 65535

/* Refuses a picture of width x height that is empty, longer than
 * PICTURE_MAX_SIDE a side or larger than PICTURE_MAX_PIXELS, saying what
 * colouring it would need. */
int image_check_size(const char *name, unsigned long width, unsigned long height, char *err,
                     size_t errlen);

/* Reads a PGM or PPM file, binary (P5/P6) or plain (P2/P3), comments allowed,
 * maxval 1..65535 (scaled to 0..255). Any other content is an error naming the file. */
int image_read_pnm(const char *path, image *img, char *err, size_t errlen);
/* The same on bytes in memory; name stands for the file in errors. */
int image_parse_pnm(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                    size_t errlen);
/* The same, but a maxval above 255 gives 16-bit samples (scaled to 0..65535)
 * instead of bytes: a photograph's full precision. */
int image_parse_pnm_deep(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                         size_t errlen);
/* Writes P5 for one channel, P6 for three; maxval 65535 for 16 bits. */
int image_write_pnm(const char *path, const image *img, char *err, size_t errlen);

/* The comparison sheet: one row per picture, `columns` 32x32 RGB pictures in
 * each row, every picture scaled up by `scale` (nearest neighbour), with a
 * gutter of `gutter` pixels of a neutral gray between pictures and around the
 * sheet. cells[r * columns + c] is the picture of row r, column c, each
 * side*side*3 bytes. The result is written into sheet (allocated). */
int image_sheet(const uint8_t *const *cells, int rows, int columns, int side, int scale, int gutter,
                image *sheet, char *err, size_t errlen);

/* The error plot: lines over epochs 1..n_epochs. */
typedef struct {
    const char *label;    /* legend text, e.g. "training" */
    const char *colour;   /* SVG colour, e.g. "#1f77b4" */
    const double *values; /* n_epochs values, fractions (0.112 is 11.2 %) */
} plot_line;

/* Writes an SVG of the lines (error in percent against epoch) with axes,
 * ticks, tick labels, axis titles, a legend and the title; baseline >= 0 adds
 * a dashed horizontal line labelled baseline_label. Must render correctly in
 * a browser and be well-formed XML. */
int plot_errors_svg(const char *path, const char *title, const plot_line *lines, int n_lines,
                    int n_epochs, double baseline, const char *baseline_label, char *err,
                    size_t errlen);

#endif
