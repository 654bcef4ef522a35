/* Colouring a picture of any size with a trained model (colorize predict).
 *
 * RGB models paint each pixel its class's palette colour. Lab models keep
 * the picture's own lightness at full resolution and predict only its
 * chroma, on the picture resized (area-averaged) so that its shorter side is
 * `scale` pixels (the training size by default, where the network learned
 * its colours), then upsample the a*b* bilinearly to the full size, as
 * Zhang, Isola and Efros's demo does. A picture whose sides the network's
 * pooling does not divide is padded by repeating its edge pixels, and the
 * padding cut off again. */
#ifndef COLORIZE_PREDICT_H
#define COLORIZE_PREDICT_H

#include <stddef.h>

#include "image.h"
#include "nn.h"

typedef struct {
    float temperature; /* Lab: the annealed mean's T; < 0 means the model's own */
    int scale;         /* Lab: short side the chroma is predicted at; 0 the native size,
                          < 0 the model's training size */
} predict_options;

/* Colours `in` (gray, or RGB made gray as rgb2gray does) into out (RGB,
 * allocated) with the model file at model_path. */
int predict_image(const char *model_path, const image *in, const predict_options *opt, image *out,
                  char *err, size_t errlen);

/* ==== For tests ==== */

/* Area-averaging resize of a (h, w) plane to (oh, ow): each output pixel is
 * the mean of the input it covers, partial pixels weighted by their share. */
void resize_area(const float *src, int h, int w, float *dst, int oh, int ow);
/* Bilinear resize of a (h, w, c) image to (oh, ow, c), pixel centres aligned
 * (x_src = (x + 0.5) * w / ow - 0.5), edges clamped. */
void resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow);

#endif
