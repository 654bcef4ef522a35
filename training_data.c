/* What a run trains and scores on, made from the dataset and the palette:
 * each pixel's class (the targets), the standardised gray inputs, the
 * no-learning baseline's class error per split, and in the Lab mode the
 * validation and test images as the colour scores need them, the
 * per-lightness baseline and the class weights. */
#include "training_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chroma.h"
#include "cifar.h"
#include "image.h"
#include "kmeans.h"
#include "lab.h"
#include "nn.h"
#include "util.h"

/* (n) gray values in [0, 1] -> standardised network inputs */
static void standardise(const float *gray, size_t n, float mean, float std, float *x) {
    for (size_t i = 0; i < n; i++)
        x[i] = (gray[i] - mean) / std;
}

/* Each pixel gets the centre whose luminance is nearest its gray value;
 * td->x holds the gray values (not yet standardised). */
static void luminance_baseline(training_data *td, const kmeans_result *pal) {
    float lum[KMEANS_MAX_K];
    for (int c = 0; c < pal->k; c++) /* rgb2gray of the centre, as for the images */
        lum[c] = gray_of_rgb(pal->centres[c][0], pal->centres[c][1], pal->centres[c][2]);
    for (int s = 0; s < N_SPLITS; s++) {
        long wrong = 0;
        size_t first = (size_t)td->first[s] * CIFAR_PIXELS, n = (size_t)td->count[s] * CIFAR_PIXELS;
        for (size_t i = first; i < first + n; i++) {
            int best = 0;
            for (int c = 1; c < pal->k; c++)
                if (fabsf(td->x[i] - lum[c]) < fabsf(td->x[i] - lum[best])) best = c;
            wrong += best != td->classes[i];
        }
        td->baseline[s].error = n ? (double)wrong / (double)n : 0;
        td->baseline[s].loss = NAN;
    }
}

/* Mean and standard deviation of the training images' gray values (the
 * resumed model's when resuming): the network's input standardisation. */
static void input_statistics(training_data *td, int n_train, const nn_model_meta *resumed) {
    if (resumed) {
        td->mean = resumed->mean, td->std = resumed->std;
        return;
    }
    double sum = 0, sq = 0;
    size_t m = (size_t)n_train * CIFAR_PIXELS;
    for (size_t i = 0; i < m; i++)
        sum += td->x[i], sq += (double)td->x[i] * td->x[i];
    double mean = sum / (double)m, var = sq / (double)m - mean * mean;
    td->mean = (float)mean;
    td->std = var > 1e-12 ? (float)sqrt(var) : 1.0f;
}

/* The pictures compare.ppm shows, kept for when the dataset's are gone. */
static int keep_shown_images(training_data *td, const cifar_dataset *ds, char *err, size_t errlen) {
    td->n_shown = ds->n_test < 10 ? ds->n_test : 10;
    td->shown = malloc((size_t)td->n_shown * CIFAR_IMAGE_BYTES + 1);
    if (!td->shown) return set_error(err, errlen, "out of memory");
    memcpy(td->shown, ds->test, (size_t)td->n_shown * CIFAR_IMAGE_BYTES);
    return 0;
}

/* The Lab mode's targets (each pixel's nearest a*b* centre), the
 * per-lightness baseline fitted on the training pixels and its class error,
 * the validation and test images kept for the final scores, and the class
 * weights. td->x holds the gray values (not yet standardised). The L*a*b*
 * of the pixels is computed a chunk of images at a time, so that memory
 * stays small with every class loaded. */
static int prepare_chroma(training_data *td, const cifar_dataset *ds, const kmeans_result *pal,
                          double rebalance, char *err, size_t errlen) {
    enum { CHUNK = 256 };
    const size_t hw = CIFAR_PIXELS;
    int eval_first = td->first[SPLIT_VAL], n_eval = td->count[SPLIT_VAL] + td->count[SPLIT_TEST];
    size_t n = (size_t)td->n_images * hw, m_eval = (size_t)n_eval * hw;
    float *lab = malloc(CHUNK * hw * 3 * sizeof(float));
    uint8_t *bins = malloc(n);
    chroma_lightness_sums *sums = calloc(1, sizeof *sums);
    td->eval_lab = malloc(m_eval * 3 * sizeof(float) + 1);
    td->eval_L = malloc(m_eval * sizeof(float) + 1);
    td->eval_rgb = malloc(m_eval * 3 + 1);
    int rc = 0;
    if (!lab || !bins || !sums || !td->eval_lab || !td->eval_L || !td->eval_rgb) {
        rc = set_error(err, errlen, "out of memory for %d images", td->n_images);
        goto done;
    }
    for (int first = 0; first < td->n_images; first += CHUNK) {
        int B = td->n_images - first < CHUNK ? td->n_images - first : CHUNK;
        size_t at = (size_t)first * hw, m = (size_t)B * hw;
        lab_from_rgb8(ds->pixels + 3 * at, m, lab);
        kmeans_quantise_ab(lab, m, pal, td->classes + at);
#pragma omp parallel for schedule(static)
        for (size_t i = at; i < at + m; i++)
            bins[i] = (uint8_t)chroma_bin(lab_lightness_of_gray(td->x[i]));
        int train = td->count[SPLIT_TRAIN] - first;
        train = train < 0 ? 0 : train > B ? B : train;
        chroma_lightness_add(sums, bins + at, lab, td->classes + at, (size_t)train * hw);
        for (int i = first > eval_first ? first : eval_first; i < first + B; i++) {
            size_t e = (size_t)(i - eval_first) * hw, src = (size_t)(i - first) * hw;
            memcpy(td->eval_lab + 3 * e, lab + 3 * src, 3 * hw * sizeof(float));
            memcpy(td->eval_rgb + 3 * e, ds->pixels + 3 * (size_t)i * hw, 3 * hw);
            for (size_t p = 0; p < hw; p++)
                td->eval_L[e + p] = lab_lightness_of_gray(td->x[(size_t)i * hw + p]);
        }
    }
    chroma_lightness_fit(sums, pal->k, &td->by_lightness);
    for (int s = 0; s < N_SPLITS; s++) {
        long wrong = 0;
        size_t first = (size_t)td->first[s] * hw, m = (size_t)td->count[s] * hw;
        for (size_t i = first; i < first + m; i++)
            wrong += td->by_lightness.class_of[bins[i]] != td->classes[i];
        td->baseline[s].error = m ? (double)wrong / (double)m : 0;
        td->baseline[s].loss = NAN;
    }
    uint64_t counts[KMEANS_MAX_K] = {0};
    for (int bin = 0; bin < CHROMA_BINS; bin++)
        for (int c = 0; c < pal->k; c++)
            counts[c] += sums->votes[bin][c];
    /* --rebalance S is the strength: the paper's lambda is 1 - S (README). */
    if (nn_class_weights(counts, pal->k, 1.0 - rebalance, td->class_weights, err, errlen) != 0) {
        rc = -1;
        goto done;
    }
    td->eval = (chroma_set){
        td->x + (size_t)eval_first * hw, td->eval_L, td->eval_lab, td->eval_rgb, n_eval, hw};
done:
    free(lab);
    free(bins);
    free(sums);
    return rc;
}

int training_data_prepare(training_data *td, const cifar_dataset *ds, const kmeans_result *pal,
                          colour_space space, double rebalance, const nn_model_meta *resumed,
                          char *err, size_t errlen) {
    *td = (training_data){0};
    td->n_images = ds->n_train + ds->n_val + ds->n_test;
    int counts[N_SPLITS] = {ds->n_train, ds->n_val, ds->n_test};
    for (int s = 0, first = 0; s < N_SPLITS; first += counts[s], s++)
        td->first[s] = first, td->count[s] = counts[s];
    size_t n = (size_t)td->n_images * CIFAR_PIXELS;
    td->classes = malloc(n);
    td->x = malloc(n * sizeof(float));
    if (!td->classes || !td->x)
        return set_error(err, errlen, "out of memory for %d images", td->n_images);
    gray_from_rgb(ds->pixels, n, td->x);
    input_statistics(td, ds->n_train, resumed);
    if (space == SPACE_LAB) {
        if (prepare_chroma(td, ds, pal, rebalance, err, errlen) != 0) return -1;
    } else {
        kmeans_quantise(ds->pixels, n, pal, td->classes);
        luminance_baseline(td, pal);
    }
    standardise(td->x, n, td->mean, td->std, td->x);
    return keep_shown_images(td, ds, err, errlen);
}

void training_data_free(training_data *td) {
    free(td->classes);
    free(td->x);
    free(td->shown);
    free(td->eval_lab);
    free(td->eval_L);
    free(td->eval_rgb);
    *td = (training_data){0};
}
