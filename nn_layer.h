/* The engine's insides, which only nn*.c include: the network as the
 * planner builds it (the layers, their plan and the buffers), and the kinds
 * of layer, as the network sees them: one descriptor each.
 *
 * A descriptor holds everything the rest of the engine needs to know about a
 * kind: its spec token and argument, its output shape, its parameter count,
 * its FLOPs, its working memory, how it may be fused with its neighbours, and
 * its forward/backward pair. The graph (nn.c) parses, plans and drives the
 * layers through these descriptors alone; the kinds live in nn_layers.c,
 * which lists them in layer_types[]. README.md's "Adding a layer kind" says
 * the four places a new kind touches; tests/test_nn.c checks that every
 * descriptor is whole, known to its reference, and used by a gradient case. */
#ifndef COLORIZE_NN_LAYER_H
#define COLORIZE_NN_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

typedef struct layer_type layer_type; /* a kind of layer: below */

/* How a layer's work gets done; the planner (nn.c) decides it once, from the graph. */
typedef enum {
    LAYER_RUNS,        /* its own forward and backward */
    LAYER_IN_PRODUCER, /* an in-place ReLU that the layer writing its input applies as it
                          writes (and whose gradient mask it applies in backward) */
    LAYER_IN_CONSUMER, /* a concatenation or upsampling that the per-pixel layer reading it
                          does in place; its output tensor is never filled (no buffers) */
} layer_run;

/* One tensor that a layer reads, as the planner resolved it. A per-pixel
 * layer reads the inputs of a concatenation done in place as separate
 * pieces (each multiplied by its own rows of the weights), and the input of
 * an upsampling done in place at its half size (its product is spread over
 * 2x2 blocks). */
typedef struct {
    int tensor;
    int channel0;  /* where its channels start in the layer's (joined) input */
    int half_size; /* an upsampling's input, read at half size */
    int overwrite; /* this read's gradient overwrites the tensor's (it runs backward first) */
} layer_read;

typedef struct {
    const layer_type *type;
    int units;  /* output channels (conv5, pixel) or outputs (dense) */
    int stride; /* maxpool */
    int n_inputs;
    int inputs[NN_MAX_INPUTS]; /* tensor indices, as the spec names them */
    int output;                /* tensor index = layer index + 1 */
    char label[16];            /* name given with @label in the spec, or "" */
    /* The plan */
    layer_run run;
    int relu_on_write;   /* applies the in-place ReLU after it (LAYER_IN_PRODUCER) */
    int grads_per_image; /* sums weight gradients image by image (see nn.c) */
    int n_reads;
    layer_read reads[NN_MAX_INPUTS];
    size_t w_offset, b_offset; /* into the parameter arrays */
    size_t n_weights, n_bias;
} nn_layer;

typedef struct network {
    char spec[NN_SPEC_MAX];
    int k; /* colour classes */
    int n_layers;
    nn_layer layers[NN_MAX_LAYERS];
    nn_shape shapes[NN_MAX_LAYERS + 1]; /* per tensor, one image */
    int batch_cap;                      /* largest batch the buffers hold */

    /* Parameters, gradients and optimiser state: one allocation each. */
    size_t n_params;
    float *params, *grads, *opt_m, *opt_v;
    long step; /* optimiser steps taken */

    /* Activations and their gradients, batch_cap images per tensor, carved
     * out of one allocation (NULL for a tensor that is never filled; a ReLU
     * done in place shares its input's); and each layer's working memory,
     * out of another. */
    float *act[NN_MAX_LAYERS + 1], *grad[NN_MAX_LAYERS + 1];
    float *grad_parts[NN_MAX_LAYERS]; /* (B, n_weights + n_bias): each image's share of the
                                         weight and bias gradients when grads_per_image */
    float *work[NN_MAX_LAYERS];       /* the kind's own (layer_type.work_floats), or NULL */
    float *activations, *layer_work;
    double *image_loss;     /* (batch_cap) cross-entropy of each image, summed in order */
    uint8_t *batch_targets; /* (batch_cap, h, w) targets of the batch being trained */

    /* The loss's class weights (nn_set_class_weights); training only, not
     * saved in the model file. */
    int weighted;
    float class_weights[NN_MAX_CLASSES];

    int forward_only;  /* nn_create_forward's: activations and forward working memory only */
    int shares_params; /* params are another network's, read in place and never freed here */
} network;

/* The spec argument after "kind:". */
typedef enum {
    ARG_NONE,    /* "relu" */
    ARG_UNITS,   /* a positive size, "32", "k" or "1024*k": nn_layer.units */
    ARG_STRIDE,  /* 1 or 2, default 2: nn_layer.stride */
    ARG_TENSORS, /* labels of earlier tensors, "input,c1,prev": nn_layer.inputs */
} layer_arg;

/* How the planner may fold a kind into a neighbour, so that its work costs
 * no pass of its own (and, for concat and upsample, no buffers). */
typedef enum {
    FUSE_NEVER,
    FUSE_RELU,     /* an elementwise max(x, 0): its producer can apply it as it writes */
    FUSE_JOIN,     /* a channel concatenation: a per-pixel reader can take its inputs as pieces */
    FUSE_UPSAMPLE, /* nearest-neighbour x2: a per-pixel reader can work at the half size */
} layer_fusion;

/* One image's tensors are (h, w, c), channels last; a call works on B
 * images, each tensor's images one after another. */
typedef struct {
    nn_shape shape; /* one image */
    const float *x;
    float *dx;    /* its gradient; NULL when nobody needs it (the gray input) */
    int channel0; /* layer_read's */
    int half_size;
    int overwrite; /* dx is overwritten (else added to) */
} layer_input;

typedef struct {
    int B;         /* images in this call */
    int batch_cap; /* images the working memory is laid out for (B <= batch_cap) */
    int n_in;
    layer_input in[NN_MAX_INPUTS];
    nn_shape out_shape; /* one image */
    float *y, *dy;
    const float *w, *bias;      /* the layer's parameters, if any */
    float *dw, *dbias;          /* and their gradients, overwritten by backward; dbias follows dw */
    const nn_layer *layer;      /* units, stride and the plan */
    int k;                      /* colour classes */
    float *grad_parts;          /* (B, n_weights + n_bias) when layer->grads_per_image, else NULL */
    float *work;                /* the kind's working memory, work_floats(B) of it */
    const uint8_t *targets;     /* (B, h, w) classes: the loss layer's backward */
    const float *class_weights; /* (k) the loss's weight of each class, or NULL (unweighted) */
    double *image_loss;         /* (B): the loss layer's backward writes each image's loss sum */
} layer_args;

/* How far a kind's outputs reach into its inputs, which is what cutting a
 * picture into tiles needs to know (nn_tile_geometry): each output reads
 * the input pixels up to `halo` away from its own on every side; the output
 * has `shrink` times fewer pixels per side than the input (2: a stride-2
 * pool, whose windows start at even pixels) or `grow` times more (2: an
 * upsampling); `whole` when every output reads the whole input (dense). */
typedef struct {
    int halo, shrink, grow, whole;
} layer_reach;

/* What a kind's size functions see of the network being built. */
typedef struct {
    int h, w, k; /* input image size and colour classes */
} layer_context;

struct layer_type {
    const char *name;  /* the spec token */
    const char *title; /* its name in the network table: "conv5x5" */
    layer_arg arg;
    /* The output shape of one image from the shapes of its inputs (already
     * checked to exist); an error message for inputs the kind cannot take. */
    int (*out_shape)(const nn_layer *L, const nn_shape *in, const layer_context *ctx, nn_shape *out,
                     char *err, size_t errlen);
    /* Inputs of each output unit (the He initialisation's fan-in): the
     * layer has fan_in * units weights and, if fan_in > 0, units biases. */
    size_t (*fan_in)(const nn_layer *L, const nn_shape *in);
    /* Forward FLOPs of one image, after the plan. */
    double (*flops)(const nn_layer *L, const nn_shape *shapes);
    /* Floats of working memory for B images, after the plan; zeroed once
     * when it is allocated, and kept between forward and backward. */
    size_t (*work_floats)(const nn_layer *L, const nn_shape *shapes, int B);
    /* The part of it, at its start, that forward uses: all a network built
     * for forward passes only (nn_create_forward) holds. NULL: all of it. */
    size_t (*forward_work_floats)(const nn_layer *L, const nn_shape *shapes, int B);
    void (*reach)(const nn_layer *L, layer_reach *r);
    /* Its row's name in the network table: "conv5x5 32" (describe_units),
     * "relu" (describe_title), or the kind's own. */
    void (*describe)(const nn_layer *L, const nn_shape *shapes, int k, char *name, size_t len);
    void (*forward)(const layer_args *a);
    /* Gradients of the inputs (where dx is not NULL) and of the parameters
     * from dy; the last layer's (the loss) from the targets instead. */
    void (*backward)(const layer_args *a);
    layer_fusion fusion;    /* how it may be folded into a neighbour */
    int applies_relu;       /* can apply a FUSE_RELU layer after it as it writes */
    int reads_pieces;       /* a per-pixel product: takes FUSE_JOIN and FUSE_UPSAMPLE inputs */
    int grads_per_image_ok; /* can sum its weight gradients image by image */
    int fixes_input_size;   /* its weights fit one image size only (dense) */
    int is_loss;            /* the last layer: softmax with cross-entropy */
};

/* Every kind, in the order the README lists them. */
extern const layer_type *const layer_types[];
extern const int n_layer_types;

const layer_type *layer_type_named(const char *name); /* NULL if none */

/* Helpers for descriptors of kinds without parameters, work or FLOPs, of
 * kinds whose outputs read their own pixel only, and for the common ways of
 * naming a row of the network table. */
size_t layer_no_fan_in(const nn_layer *L, const nn_shape *in);
void layer_pointwise_reach(const nn_layer *L, layer_reach *r);
double layer_no_flops(const nn_layer *L, const nn_shape *shapes);
size_t layer_no_work(const nn_layer *L, const nn_shape *shapes, int B);
void describe_title(const nn_layer *L, const nn_shape *shapes, int k, char *name, size_t len);
void describe_units(const nn_layer *L, const nn_shape *shapes, int k, char *name, size_t len);

#endif
