/* Colouring pictures of any size with a trained model (colorize predict).
 *
 * RGB models paint each pixel its class's palette colour. Lab models keep
 * the picture's own lightness at full resolution and predict only its
 * chroma, on the picture resized (area-averaged) to a few small sizes: by
 * default, short sides of 1, 1.5 and 2 times the training size (never
 * larger than the picture), each also mirrored, and the class
 * probabilities of all these passes averaged on the finest one's grid before
 * they are decoded (measured on photographs: docs/photographs.md). --scale N
 * asks for one pass at N (0: the picture's own size), as before. The a*b*
 * are then upsampled to the full size by a guided filter (guided.h) whose
 * guide is the picture's lightness, so that colour stops at its edges, or
 * bilinearly (guide 0), as Zhang, Isola and Efros's demo does. A picture
 * whose sides the network's pooling does not divide is padded by repeating
 * its edge pixels, and the padding cut off again. A picture seen once at
 * its own size is painted straight from its tiles.
 *
 * The network runs in tiles. Each tile keeps a block of the (padded)
 * picture's outputs and computes them from a window that reaches the
 * network's margin beyond the block, or to the picture's edge, and that sits
 * on its pooling's grid (nn_tile_geometry): every output is then, bit for
 * bit, the one the network gives on the whole picture. Threads colour a tile
 * each at a time, each with a small network for forward passes only over the
 * model's shared weights, so memory follows the tile, not the picture, and
 * the bytes are the same for any thread count. Several pictures are
 * coloured at once by sharing out the tiles of all of them. */
#ifndef COLORIZE_PREDICT_H
#define COLORIZE_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "nn.h"
#include "resample.h" /* resize_area and resize_bilinear, which the tests use */

/* Bytes of the tile networks' buffers, all threads together; with a picture
 * of 12 megapixels in and its colouring out (48 MB), the process stays well
 * under 300 MB. */
#define PREDICT_NET_BUDGET ((size_t)96 << 20)

typedef struct {
    float temperature; /* Lab: the annealed mean's T; < 0 means the model's own */
    int scale;         /* Lab: short side of the one pass the chroma is predicted at; 0 the
                          native size, < 0 the default passes */
    int threads;       /* tiles coloured at once; 0: omp_get_max_threads() */
    int guide;         /* Lab: upsample the chroma guided by the lightness (1, the default),
                          or bilinearly (0) */
    /* For tests; predict_default_options sets them to "as planned". */
    int window; /* side of the tile windows; 0: the largest the memory budget allows */
    int margin; /* < 0: the network's; else this many pixels (a test that it is needed) */
} predict_options;

void predict_default_options(predict_options *opt);

/* A model read for colouring: its weights, read by every tile. */
typedef struct predict_model predict_model;

/* Reads the model file at path for colouring with opt; an RGB model with
 * the Lab options (temperature, scale) is an error. */
int predict_model_load(const char *path, const predict_options *opt, predict_model **out, char *err,
                       size_t errlen);
/* The same from a model file's bytes in memory (the built-in model,
 * builtin_model.h); name stands for the path in errors. */
int predict_model_load_buffer(const uint8_t *data, size_t len, const char *name,
                              const predict_options *opt, predict_model **out, char *err,
                              size_t errlen);
void predict_model_free(predict_model *m);

/* Colours the n pictures in[i] (gray, or RGB made gray as rgb2gray does)
 * into out[i] (RGB, allocated), the tiles of all of them shared out among
 * the threads. A picture that cannot be coloured leaves out[i] empty
 * (pixels NULL) and its reason, without its name, in errs + i * errlen.
 * Returns the number of pictures that failed. */
int predict_images(const predict_model *m, const image *in, int n, const predict_options *opt,
                   image *out, char *errs, size_t errlen);
/* One picture; -1 with err set when it cannot be coloured. */
int predict_image(const predict_model *m, const image *in, const predict_options *opt, image *out,
                  char *err, size_t errlen);

/* ==== For tests ==== */

/* How predict_images cuts pictures with these options. */
typedef struct {
    int tiles;        /* whether the network runs in tiles (no dense layer) */
    int margin;       /* pixels a window reaches beyond the outputs it keeps */
    int align;        /* what windows' positions and sides are multiples of */
    int window;       /* the windows' side (at most: a smaller picture is one window) */
    int threads;      /* threads of the parallel loops */
    int workers;      /* tiles at once, each with its own network: threads, unless
                         the budget does not allow as many */
    size_t net_bytes; /* the buffers of one worker's network */
} predict_tile_plan;
void predict_plan(const predict_model *m, const predict_options *opt, predict_tile_plan *plan);

/* The class probabilities (h, w, k) that the network gives the picture's
 * pixels at its own size (an RGB model's, or a Lab model's at --scale 0),
 * computed in tiles as predict_images does. */
int predict_probabilities(const predict_model *m, const image *in, const predict_options *opt,
                          float *prob, char *err, size_t errlen);

#endif
