/* Resampling for predict (resample.c): area averaging, bilinear
 * interpolation, and the gray values of a picture's rows. */
#ifndef COLORIZE_RESAMPLE_H
#define COLORIZE_RESAMPLE_H

#include "image.h"

/* Area-averaging resize of a (h, w) plane to (oh, ow): each output pixel is
 * the mean of the input it covers, partial pixels weighted by their share. */
void resize_area(const float *src, int h, int w, float *dst, int oh, int ow);
/* Bilinear resize of a (h, w, c) image to (oh, ow, c), pixel centres aligned
 * (x_src = (x + 0.5) * w / ow - 0.5), edges clamped. */
void resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow);

/* Row y of resize_bilinear's output: (ow, c) into dst. */
void resize_bilinear_row(const float *src, int h, int w, int c, int y, int oh, float *dst, int ow);

/* Gray values in [0, 1] of the pixels x0..x0+n-1 of row y of a picture:
 * rgb2gray's of a colour one, from all 16 bits of a 16-bit one. */
void picture_gray_span(const image *in, int y, int x0, int n, float *dst);

/* resize_area of the picture's gray values to (oh, ow), made a row at a
 * time, so that the picture needs no float copy; -1 when out of memory. */
int resize_area_of_picture(const image *in, float *dst, int oh, int ow);

/* The longest side a picture is resized to. */
#define RESIZE_MAX_SIDE 65536

/* The size (oh, ow) whose shorter side is `side`, keeping the aspect ratio
 * of (h, w); -1 if the longer one would exceed RESIZE_MAX_SIDE. */
int resize_scaled_size(int h, int w, int side, int *oh, int *ow);

#endif
