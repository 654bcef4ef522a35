/* What a run trains and scores on, made from the dataset and the palette:
 * the targets, the inputs, the no-learning baselines and, in the Lab mode,
 * what the colour scores need. The front end prints it; nothing here does. */
#ifndef COLORIZE_TRAINING_DATA_H
#define COLORIZE_TRAINING_DATA_H

#include <stdint.h>

#include "chroma.h"
#include "cifar.h"
#include "kmeans.h"
#include "nn.h"
#include "report.h"

typedef struct {
    int first[N_SPLITS], count[N_SPLITS]; /* image ranges of the splits */
    int n_images;
    uint8_t *classes; /* (n_images, 32, 32) palette class of every pixel */
    float *x;         /* (n_images, 32, 32) standardised gray */
    uint8_t *shown;   /* (n_shown, 32, 32, 3) the first test images, for compare.ppm */
    int n_shown;
    float mean, std;
    nn_score baseline[N_SPLITS]; /* no-learning class error: luminance (RGB), per-lightness (Lab) */
    /* The Lab mode: the validation and test images (contiguous, val first) as
     * the scores need them, the per-lightness baseline, and the class
     * weights. */
    chroma_set eval; /* x points into the inputs above */
    float *eval_lab, *eval_L;
    uint8_t *eval_rgb;
    chroma_by_lightness by_lightness;
    float class_weights[KMEANS_MAX_K];
} training_data;

/* The palette pal's class of each pixel of ds (its nearest colour, or its
 * nearest a*b* centre in the Lab mode), the gray inputs standardised by the
 * training images' mean and deviation (the resumed model's when resumed is
 * given), the baseline's class error of each split, and the pictures
 * compare.ppm shows; in the Lab mode also the per-lightness baseline, the
 * class weights at rebalancing strength rebalance (the paper's lambda is
 * 1 - rebalance), and the validation and test images' L*a*b*, lightness and
 * bytes. The dataset's pixels are not needed afterwards. -1 with err set
 * (out of memory, or weights that cannot be made); td is then partly made,
 * and training_data_free frees it either way. */
int training_data_prepare(training_data *td, const cifar_dataset *ds, const kmeans_result *pal,
                          colour_space space, double rebalance, const nn_model_meta *resumed,
                          char *err, size_t errlen);
void training_data_free(training_data *td);

#endif
