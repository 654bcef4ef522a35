/* The lab mode's colouring: a network's per-pixel class probabilities become
 * a*b* chroma (the annealed mean of Zhang, Isola and Efros, "Colorful Image
 * Colorization", ECCV 2016), joined with the input's lightness; the two
 * no-learning baselines; and the scores of a colouring against the
 * originals. */
#ifndef COLORIZE_CHROMA_H
#define COLORIZE_CHROMA_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

/* The annealed mean: at each pixel, q' = softmax(ln q / T) over the k
 * classes, then ab = sum_c q'_c centres[c]. T = 1 is the mean of the
 * distribution, T = 0 the most probable class's centre (the first one on a
 * tie). prob is (pixels, k); centres (k, 3) hold a*b* in [0] and [1]; ab gets
 * (pixels, 2). */
void chroma_decode(const float *prob, size_t pixels, int k, const float (*centres)[3],
                   float temperature, float *ab);

/* The colouring of one pixel: L* of the gray input with the chroma ab, in
 * 8-bit sRGB (clipped). L is lab_lightness_of_gray(g). */
void chroma_paint(const float *L, const float *ab, size_t pixels, uint8_t *rgb);

/* ==== The per-lightness baseline ==== */

/* Lightness bins of 5 L* units: [0, 5), [5, 10), ..., [95, 100]. */
#define CHROMA_BINS 20
int chroma_bin(float L);

/* Each bin's mean a*b* over the training pixels, and its most frequent
 * class (the class-error baseline); a bin no pixel falls in gets a*b* = 0
 * and class 0. Fitted from sums gathered a chunk of pixels at a time. */
typedef struct {
    double ab[CHROMA_BINS][2];
    uint64_t votes[CHROMA_BINS][64]; /* pixels of each class in each bin */
} chroma_lightness_sums;

typedef struct {
    float ab[CHROMA_BINS][2];
    uint8_t class_of[CHROMA_BINS];
} chroma_by_lightness;

/* bins (n) of the gray inputs' lightness, lab (n, 3) the originals' L*a*b*,
 * classes (n) their targets in 0..63. */
void chroma_lightness_add(chroma_lightness_sums *sums, const uint8_t *bins, const float *lab,
                          const uint8_t *classes, size_t n);
void chroma_lightness_fit(const chroma_lightness_sums *sums, int k, chroma_by_lightness *model);
/* ab (n, 2) of the bins of L (n). */
void chroma_by_lightness_ab(const chroma_by_lightness *model, const float *L, size_t n, float *ab);

/* ==== Scores ==== */

/* Sums over pixels, so that scores of image batches add up in order. */
typedef struct {
    double ab_error; /* sum of Euclidean a*b* distances to the original */
    double chroma;   /* sum of sqrt(a^2 + b^2) of the colouring */
    double sq_error; /* sum of squared 8-bit RGB differences, over the 3 channels */
    size_t pixels;
} chroma_tally;

/* Adds n pixels: ab (n, 2) the colouring's chroma, rgb (n, 3) its bytes,
 * against the originals' lab (n, 3) and bytes orig (n, 3). */
void chroma_tally_add(chroma_tally *t, const float *ab, const uint8_t *rgb, const float *lab,
                      const uint8_t *orig, size_t n);

typedef struct {
    double ab_error; /* mean a*b* error, Lab units */
    double psnr;     /* PSNR of the 8-bit RGB colouring over the whole set, dB (one mean
                        squared error over every pixel and channel) */
    double chroma;   /* mean chroma of the colouring */
} chroma_score;
chroma_score chroma_tally_score(const chroma_tally *t);

/* ==== A network's colouring of a set of images ==== */

/* The methods the run scores: the network decoded at the chosen temperature
 * and at its most likely class, and the two no-learning baselines. */
enum { CHROMA_NETWORK, CHROMA_ARGMAX, CHROMA_GRAY, CHROMA_BY_LIGHTNESS, CHROMA_METHODS };

/* What a set of n images of hw pixels holds: x (n, hw) the standardised
 * network inputs, L (n, hw) the gray inputs' lightness, and, for scoring,
 * lab (n, hw, 3) and rgb (n, hw, 3) the originals. */
typedef struct {
    const float *x, *L, *lab;
    const uint8_t *rgb;
    int n;
    size_t hw;
} chroma_set;

/* The network's colouring (n, hw, 3 bytes) of the images, its chroma decoded
 * at temperature t. */
void chroma_colour(network *net, const chroma_set *set, const float (*centres)[3], float t,
                   uint8_t *rgb);
/* Scores every method on the set. Returns -1 when out of memory. */
int chroma_score_set(network *net, const chroma_set *set, const float (*centres)[3], float t,
                     const chroma_by_lightness *baseline, chroma_score scores[CHROMA_METHODS]);

#endif
