/* A small CNN engine: a network is an ordered list of layers built from a
 * one-line spec, trained with Adam or SGD on per-pixel softmax cross-entropy.
 *
 * Tensors are channels-last, one image after another: (B, H, W, C). Tensor 0
 * is the (standardised) gray input; layer i writes tensor i + 1. Training is
 * bit-identical for a seed whatever the number of OpenMP threads: every sum
 * runs in a fixed order and every output has one owner. */
#ifndef COLORIZE_NN_H
#define COLORIZE_NN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define NN_MAX_LAYERS  32
#define NN_MAX_INPUTS  8 /* tensors a concat can join */
#define NN_SPEC_MAX    512
#define NN_MAX_CLASSES 64
#define NN_MAX_PARAMS  ((size_t)1 << 40) /* far above any network, far below overflow */

typedef struct {
    int h, w, c;
} nn_shape;

static inline size_t nn_shape_size(nn_shape s) {
    return (size_t)s.h * s.w * s.c;
}

typedef enum { OPT_ADAM, OPT_SGD } nn_optimizer;
typedef enum { SCHED_CONSTANT, SCHED_COSINE } nn_schedule;

typedef struct {
    nn_optimizer optimizer;
    float lr;                /* peak learning rate */
    float momentum;          /* SGD */
    float beta1, beta2, eps; /* Adam */
    nn_schedule schedule;
    long first_step; /* the optimiser step at which the schedule starts (resumed runs) */
} nn_optim_config;

/* A network: its layers, their plan and every buffer, built by nn_create
 * (or nn_create_forward, nn_load) and freed by nn_free. What it holds is
 * the planner's (nn_layer.h); the rest of the program reads it through the
 * functions below. */
typedef struct network network;

/* The built-in architectures by name; NULL if none. */
const char *nn_builtin_spec(const char *name);
/* The learning rate a built-in (by name or spec) trains best with; 0.01 for any other spec. */
float nn_builtin_lr(const char *name_or_spec);
/* Names of the built-ins, for --help: "default, skip, pixel, dense". */
const char *nn_builtin_names(void);

/* Builds a network for (h, w, 1) gray inputs and k classes from a spec or a
 * built-in name, with buffers for batches of up to batch_cap images. The
 * weights are zero until nn_init_weights. */
int nn_create(const char *spec_or_name, int h, int w, int k, int batch_cap, network **out,
              char *err, size_t errlen);
void nn_free(network *net);

/* What a built network is. */
const char *nn_spec(const network *net); /* the spec it was built from, a built-in's expanded */
int nn_classes(const network *net);      /* k */
int nn_layer_count(const network *net);
nn_shape nn_input_shape(const network *net);  /* one image: (h, w, 1) */
nn_shape nn_output_shape(const network *net); /* one image: (h, w, k) */
int nn_batch_capacity(const network *net);    /* the most images one call takes */
size_t nn_param_count(const network *net);
const float *nn_params(const network *net); /* nn_param_count(net) floats, layer after layer */
long nn_steps(const network *net);          /* optimiser steps taken */
/* The input tensor's buffer (batch capacity images): a caller may fill it
 * in place and pass it to nn_forward as x, which then copies nothing. */
float *nn_input(network *net);
/* After nn_forward on B images: their class probabilities (B, h, w, k). */
const float *nn_output(const network *net);
/* A network for forward passes only, one image at a time (nn_forward): the
 * activations and the working memory its layers' forward passes use; no
 * gradients, optimiser state or training buffers. With params (n_params floats: the weights
 * of a network of the same spec and k, and of the same size if it fixes its
 * size) it reads them in place and never writes or frees them, so that
 * networks for tiles of several sizes share one set of weights; with NULL it
 * owns zeroed ones. */
int nn_create_forward(const char *spec_or_name, int h, int w, int k, const float *params,
                      network **out, char *err, size_t errlen);
/* The bytes nn_create_forward allocates for (h, w) images besides the
 * parameters; 0 when the spec does not plan at that size. */
size_t nn_forward_bytes(const char *spec_or_name, int h, int w, int k);
/* How to cut a picture into tiles that each give exactly the outputs the
 * whole picture gives. A tile's window must reach `margin` input pixels
 * beyond the outputs it keeps on every side that is not the picture's edge
 * (the layers' reaches, layer_reach, added up through the graph: each conv5
 * adds 2 pixels at its resolution, a stride-2 pool halves what reaches
 * through it, an upsampling doubles it), and a window's position and sides
 * must be multiples of `align` input pixels, so that its pools' windows are
 * the whole picture's (margin is one too). -1 with err set when no tile can
 * stand in for the whole picture: a layer that reads its whole input
 * (dense), or tensors of different resolutions joined. */
int nn_tile_geometry(const network *net, int *margin, int *align, char *err, size_t errlen);
/* Whether a network only takes images of the size it is built for (its
 * weights fix it: a dense layer); 0 also when the spec does not parse. */
int nn_fixes_input_size(const char *spec_or_name, int h, int w, int k);
/* What the sides of an input must be multiples of for a network that does not
 * fix its size: the product of its pooling strides (1 when the spec does not
 * parse at (h, w)). */
int nn_side_multiple(const char *spec_or_name, int h, int w, int k);
/* The parameter count nn_create would give, without building the network
 * (so without its buffers); -1 with err set when the spec does not parse at
 * (h, w) or would have more than NN_MAX_PARAMS parameters. */
int nn_count_params(const char *spec_or_name, int h, int w, int k, size_t *n_params, char *err,
                    size_t errlen);
/* He initialisation (normal, std sqrt(2 / fan_in)), zero biases, from seed. */
void nn_init_weights(network *net, uint64_t seed);

/* One row of the network table. */
typedef struct {
    char name[48]; /* "conv5x5 32", "maxpool 2/2", "concat 0+2+6" (tensor numbers) */
    nn_shape in, out;
    size_t params;
    double flops; /* forward, one image */
} nn_layer_info;
void nn_layer_describe(const network *net, int i, nn_layer_info *info);
double nn_forward_flops(const network *net); /* one image */

/* x is (B, h, w) standardised gray; fills every activation; the last tensor
 * (nn_output) holds the class probabilities (B, h, w, k). */
void nn_forward(network *net, const float *x, int B);
/* After nn_forward: loss (mean cross-entropy over the B*h*w pixels, each
 * pixel's times its target's class weight when the network has weights)
 * against targets (B, h, w) in 0..k-1, and the gradient of every parameter. */
double nn_backward(network *net, const uint8_t *targets, int B);
/* One optimiser step with learning rate lr. Returns 0 if a weight is no
 * longer finite (a step that overflowed). */
int nn_update(network *net, const nn_optim_config *cfg, float lr);
/* The learning rate of the schedule t steps into it, of total steps. */
float nn_schedule_lr(const nn_optim_config *cfg, long t, long total);

/* Class rebalancing (Zhang, Isola and Efros, 2016): from the pixel count of
 * each of the k classes in the training targets, weights proportional to
 * 1 / ((1 - lambda) p + lambda / k), p the class's share of the pixels,
 * scaled so that the mean weight over the pixels (sum of p w) is 1. lambda
 * 1 gives every class 1; lambda 0 gives 1 / (k' p), k' the classes present.
 * A class with no pixels is never a target: it gets the formula's weight
 * when lambda > 0, and 0 when lambda is 0 (where the formula's is infinite).
 * Returns -1 with err set when lambda is outside [0, 1], k outside
 * 1..NN_MAX_CLASSES, or there are no pixels. */
int nn_class_weights(const uint64_t *counts, int k, double lambda, float *weights, char *err,
                     size_t errlen);
/* The loss weighs each pixel by its target's class weight: weights holds
 * nn_classes(net) finite non-negative floats (copied); NULL goes back to the plain
 * cross-entropy, bit for bit. */
void nn_set_class_weights(network *net, const float *weights);

/* Pixel error and mean cross-entropy of the network on n images (never
 * class-weighted: the scores of all runs stay comparable). */
typedef struct {
    double error; /* share of pixels whose most probable class is not the target */
    double loss;  /* mean cross-entropy per pixel */
} nn_score;
/* classes, if not NULL, receives (n, h, w) predicted classes; targets may be
 * NULL when only the classes are wanted. */
void nn_evaluate(network *net, const float *x, const uint8_t *targets, int n, nn_score *score,
                 uint8_t *classes);

/* One epoch of mini-batch training over n images in the given order
 * (a permutation of 0..n-1). flip, if not NULL, holds a flag per image (by
 * image index, not position in order): image i is trained mirrored left to
 * right, its targets with it, when flip[i] is non-zero. Stops after the
 * current batch when *stop becomes non-zero. progress, if given, is called
 * after each batch with images done so far. Returns the mean training loss of the batches run, or
 * NAN with err set if the loss or a gradient stopped being finite (the
 * weights are then those before that step) or a weight did (the weights are
 * then unusable: restore a saved state). *images_done gets
 * the images trained on. */
typedef void (*nn_progress_fn)(void *ctx, int done, int total);
double nn_train_epoch(network *net, const float *x, const uint8_t *targets, const int *order,
                      const uint8_t *flip, int n, int batch, const nn_optim_config *cfg,
                      long total_steps, volatile sig_atomic_t *stop, nn_progress_fn progress,
                      void *ctx, int *images_done, char *err, size_t errlen);
/* The flips of an epoch (the first is 1) for n images, a fair coin each:
 * they depend on the seed and the epoch only, drawn apart from the seed's
 * other streams (the shuffles). */
void nn_draw_flips(uint64_t seed, int epoch, int n, uint8_t *flip);

/* The trainable state (weights, optimiser state and step count), copied out
 * and back: a run goes back to the end of its last complete epoch when it is
 * interrupted or diverges. state holds nn_state_floats(net) floats. */
size_t nn_state_floats(const network *net);
void nn_state_save(const network *net, float *state, long *step);
void nn_state_restore(network *net, const float *state, long step);
/* Zeroes the optimiser state and step count; the weights stay. */
void nn_reset_optimiser(network *net);

/* What the classes are: RGB colours (the seed's task) or a*b* chroma. */
typedef enum { SPACE_RGB, SPACE_LAB } colour_space;

/* The training plan a model records after every epoch, so that a run
 * killed part way can be finished exactly as if it had never stopped: the
 * learning-rate schedule spans the plan's epochs from its first step, and
 * epoch e's shuffle and flips depend on (seed, e) alone. */
typedef struct {
    int first_epoch; /* epochs the model had when the plan began */
    int epochs;      /* the plan's length; 0: no plan recorded (format 1 and 2 files) */
    long first_step; /* the optimiser step at which its schedule began */
    uint64_t seed;
    int batch;
    float lr; /* peak */
    nn_schedule schedule;
    int flip;
} nn_plan;

/* Everything needed to use a trained network again (model.bin). */
typedef struct {
    int k;
    colour_space space;
    float centres[64][3];   /* palette: RGB 0..255, or a*b* in [0] and [1] (and 0) */
    float mean, std;        /* gray input standardisation */
    int epochs;             /* epochs trained so far */
    nn_optimizer optimizer; /* whose state the model holds */
    float rebalance;        /* SPACE_LAB: the class rebalancing it was trained with */
    float temperature;      /* SPACE_LAB: the decoding's default temperature */
    nn_plan plan;
} nn_model_meta;

int nn_save(const network *net, const nn_model_meta *meta, const char *path, char *err,
            size_t errlen);
/* The same for the state nn_state_save took (state, step) instead of the
 * network's own. It reads net's architecture and size only, so the network
 * may go on training meanwhile (a checkpoint written in the background). */
int nn_save_state(const network *net, const float *state, long step, const nn_model_meta *meta,
                  const char *path, char *err, size_t errlen);
/* The model without its optimiser state (format version 5, a third of the
 * size): enough to colour with (nn_load_forward), not to train further. */
int nn_save_weights(const network *net, const nn_model_meta *meta, const char *path, char *err,
                    size_t errlen);
/* Whether the file at path begins as a model file does (its magic); no
 * other check. 0 for a file that cannot be read. */
int nn_is_model_file(const char *path);
/* The checksum a model file holds after its first n bytes, by the format
 * version those bytes give (for tests and the fuzzer, which damage files and
 * make the checksum good again). */
uint64_t nn_model_checksum(const uint8_t *buf, size_t n);
/* Reads a model file and builds its network for (h, w) inputs; h = w = 0
 * means the size it was trained on. */
int nn_load(const char *path, int h, int w, int batch_cap, network **net, nn_model_meta *meta,
            char *err, size_t errlen);
/* The same on the file's bytes in memory; path names it in errors. */
int nn_load_buffer(const uint8_t *data, size_t len, const char *path, int h, int w, int batch_cap,
                   network **net, nn_model_meta *meta, char *err, size_t errlen);
/* The same at the size it was trained on, as a network for forward passes
 * only (nn_create_forward) that owns its weights; the optimiser state in the
 * file is checked and skipped. */
int nn_load_forward(const char *path, network **net, nn_model_meta *meta, char *err, size_t errlen);
int nn_load_forward_buffer(const uint8_t *data, size_t len, const char *path, network **net,
                           nn_model_meta *meta, char *err, size_t errlen);

#endif
