/* The network: spec parsing, layers as forward/backward pairs, the loss, the
 * optimisers, training and evaluation loops, and the model file.
 *
 * Parallel work follows one rule so that training is bit-identical whatever
 * the number of threads: a loop is split either over images (each image's
 * outputs are computed by one thread) or over outputs whose every value is
 * summed in a fixed order by one thread (the simd/ kernels guarantee that a
 * value does not depend on how the outputs were split). */
#include "nn.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/conv5x5.h"
#include "simd/gemm.h"
#include "simd/softmax.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Built-in architectures                                                    */

/* Each with the Adam learning rate measured best for it on the bird images
 * (20 epochs, batch 32, cosine schedule). */
static const struct {
    const char *name, *spec;
    float lr;
} builtins[] = {
    {"default",
     "conv5:16 relu@c1 maxpool:2 conv5:32 relu upsample concat:input,c1,prev "
     "pixel:32 relu pixel:k softmax",
     0.01f},
    {"skip",
     "conv5:32 relu@c1 maxpool:2 conv5:64 relu upsample concat:input,c1,prev "
     "pixel:64 relu pixel:k softmax",
     0.003f},
    {"pixel", "conv5:64 relu maxpool:1 conv5:64 relu maxpool:1 pixel:32 relu pixel:k softmax",
     0.003f},
    {"dense",
     "conv5:32 relu maxpool:2 conv5:64 relu maxpool:2 dense:512 relu dense:1024*k softmax",
     0.001f},
};

enum { N_BUILTINS = sizeof builtins / sizeof builtins[0] };

const char *nn_builtin_spec(const char *name) {
    for (int i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name) == 0) return builtins[i].spec;
    return NULL;
}

float nn_builtin_lr(const char *name_or_spec) {
    for (int i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name_or_spec) == 0 || strcmp(builtins[i].spec, name_or_spec) == 0)
            return builtins[i].lr;
    return 0.01f;
}

const char *nn_builtin_names(void) { return "default, skip, pixel, dense"; }

/* ------------------------------------------------------------------------ */
/* Spec parsing: whitespace-separated tokens KIND[:ARG][@LABEL].             */

static size_t shape_size(nn_shape s) { return (size_t)s.h * s.w * s.c; }

/* An integer, "k", or a product of them: "1024*k"; at most 2^24. */
static int parse_count(const char *s, int k, int *out) {
    long v = 1;
    for (;;) {
        long f;
        char *end;
        if (*s == 'k') {
            f = k;
            end = (char *)s + 1;
        } else {
            if (!isdigit((unsigned char)*s)) return -1;
            f = strtol(s, &end, 10);
            if (f > 1 << 24) return -1;
        }
        if (f <= 0 || v * f > 1 << 24) return -1;
        v *= f;
        if (*end == 0) break;
        if (*end != '*') return -1;
        s = end + 1;
    }
    *out = (int)v;
    return 0;
}

static int find_label(const network *net, const char *name, int n_layers) {
    if (strcmp(name, "input") == 0) return 0;
    if (strcmp(name, "prev") == 0) return n_layers;
    for (int i = 0; i < n_layers; i++)
        if (strcmp(net->layers[i].label, name) == 0) return net->layers[i].output;
    return -1;
}

static int parse_concat(network *net, nn_layer *L, char *arg, int i, char *err, size_t errlen) {
    if (!arg) return set_error(err, errlen, "concat needs inputs, e.g. concat:input,c1,prev");
    char *save = NULL;
    for (char *name = strtok_r(arg, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (L->n_inputs == NN_MAX_INPUTS)
            return set_error(err, errlen, "concat joins at most %d tensors", NN_MAX_INPUTS);
        int t = find_label(net, name, i);
        if (t < 0) return set_error(err, errlen, "concat: no tensor labelled '%s'", name);
        L->inputs[L->n_inputs++] = t;
    }
    nn_shape s = net->shapes[L->inputs[0]];
    s.c = 0;
    for (int j = 0; j < L->n_inputs; j++) {
        nn_shape t = net->shapes[L->inputs[j]];
        if (t.h != s.h || t.w != s.w)
            return set_error(err, errlen, "concat: tensors of %dx%d and %dx%d cannot be joined",
                             s.h, s.w, t.h, t.w);
        s.c += t.c;
    }
    net->shapes[i + 1] = s;
    return 0;
}

/* Sets the layer's kind, inputs and output shape from one token. */
static int parse_layer(network *net, int i, char *tok, int h, int w, char *err, size_t errlen) {
    nn_layer *L = &net->layers[i];
    memset(L, 0, sizeof *L);
    char *at = strchr(tok, '@');
    if (at) {
        *at = 0;
        if (!at[1] || strlen(at + 1) >= sizeof L->label)
            return set_error(err, errlen, "'%s': a label must be 1 to %zu characters", tok,
                             sizeof L->label - 1);
        strcpy(L->label, at + 1);
        if (strcmp(L->label, "input") == 0 || strcmp(L->label, "prev") == 0 ||
            find_label(net, L->label, i) >= 0)
            return set_error(err, errlen, "label '%s' is taken", L->label);
    }
    char *arg = strchr(tok, ':');
    if (arg) *arg++ = 0;
    L->output = i + 1;
    L->n_inputs = 1;
    L->inputs[0] = i;
    nn_shape in = net->shapes[i], out = in;
    int n = 0;
    int needs_count = !strcmp(tok, "conv5") || !strcmp(tok, "dense") || !strcmp(tok, "pixel");
    int takes_arg = needs_count || !strcmp(tok, "maxpool") || !strcmp(tok, "concat");
    if (arg && !takes_arg) return set_error(err, errlen, "%s takes no argument (':%s')", tok, arg);
    if (needs_count && (!arg || parse_count(arg, net->k, &n) != 0))
        return set_error(err, errlen, "%s needs a positive size, e.g. %s:32", tok, tok);
    if (!strcmp(tok, "conv5")) {
        L->kind = LAYER_CONV5;
        out.c = n;
    } else if (!strcmp(tok, "pixel")) {
        L->kind = LAYER_PIXEL;
        out.c = n;
    } else if (!strcmp(tok, "dense")) {
        L->kind = LAYER_DENSE;
        out = (nn_shape){1, 1, n};
    } else if (!strcmp(tok, "relu")) {
        L->kind = LAYER_RELU;
    } else if (!strcmp(tok, "maxpool")) {
        int stride = !arg ? 2 : !strcmp(arg, "1") ? 1 : !strcmp(arg, "2") ? 2 : 0;
        if (!stride) return set_error(err, errlen, "maxpool takes stride 1 or 2, not '%s'", arg);
        L->kind = stride == 2 ? LAYER_MAXPOOL2 : LAYER_MAXPOOL1;
        if (stride == 2) out.h /= 2, out.w /= 2;
        if (out.h == 0 || out.w == 0)
            return set_error(err, errlen, "maxpool:2 on a %dx%d tensor", in.h, in.w);
    } else if (!strcmp(tok, "upsample")) {
        L->kind = LAYER_UPSAMPLE;
        if (in.h > 1 << 15 || in.w > 1 << 15)
            return set_error(err, errlen, "upsample of a %dx%d tensor is too large", in.h, in.w);
        out.h *= 2, out.w *= 2;
    } else if (!strcmp(tok, "concat")) {
        L->kind = LAYER_CONCAT;
        L->n_inputs = 0;
        return parse_concat(net, L, arg, i, err, errlen);
    } else if (!strcmp(tok, "softmax")) {
        L->kind = LAYER_SOFTMAX;
        if (!(in.h == h && in.w == w && in.c == net->k) && shape_size(in) != (size_t)h * w * net->k)
            return set_error(err, errlen, "softmax needs %dx%dx%d inputs, got %dx%dx%d", h, w,
                             net->k, in.h, in.w, in.c);
        out = (nn_shape){h, w, net->k};
    } else {
        return set_error(err, errlen, "unknown layer '%s'", tok);
    }
    L->units = n;
    net->shapes[i + 1] = out;
    return 0;
}

static int parse_spec(network *net, const char *spec, int h, int w, char *err, size_t errlen) {
    char buf[NN_SPEC_MAX];
    if (strlen(spec) >= sizeof buf) return set_error(err, errlen, "architecture spec too long");
    strcpy(buf, spec);
    net->shapes[0] = (nn_shape){h, w, 1};
    char *save = NULL;
    int i = 0;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save), i++) {
        if (i == NN_MAX_LAYERS) return set_error(err, errlen, "more than %d layers", NN_MAX_LAYERS);
        if (i > 0 && net->layers[i - 1].kind == LAYER_SOFTMAX)
            return set_error(err, errlen, "softmax must be the last layer");
        char token[NN_SPEC_MAX];
        snprintf(token, sizeof token, "%s", tok);
        if (parse_layer(net, i, token, h, w, err, errlen) != 0) return -1;
    }
    net->n_layers = i;
    if (i == 0 || net->layers[i - 1].kind != LAYER_SOFTMAX)
        return set_error(err, errlen, "the last layer must be softmax");
    return 0;
}

/* Each tensor's gradient is overwritten by its last consumer (the first to
 * run backward) and added to by the others; a tensor nobody reads is a
 * mistake in the spec. */
static int plan_gradients(network *net, char *err, size_t errlen) {
    int last_consumer[NN_MAX_LAYERS + 1];
    for (int t = 0; t <= net->n_layers; t++) last_consumer[t] = -1;
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++)
            last_consumer[net->layers[i].inputs[j]] = i;
    int consumers[NN_MAX_LAYERS + 1] = {0};
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++) consumers[net->layers[i].inputs[j]]++;
    for (int t = 1; t < net->n_layers; t++)
        if (last_consumer[t] < 0)
            return set_error(err, errlen, "the output of layer %d is never used", t);
    /* A concatenation read only by the pixel layer after it is not copied:
     * that layer multiplies each piece by its rows of the weights. A ReLU
     * that is the only reader of a convolution's or pixel layer's output
     * works in place, applied by that layer as it writes each image. */
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer *L = &net->layers[i];
        if (L->kind == LAYER_CONCAT && i + 1 < net->n_layers)
            L->fused = net->layers[i + 1].kind == LAYER_PIXEL && consumers[L->output] == 1 &&
                       net->layers[i + 1].inputs[0] == L->output;
        if (L->kind == LAYER_RELU && i > 0) {
            layer_kind before = net->layers[i - 1].kind;
            L->fused = (before == LAYER_CONV5 || before == LAYER_PIXEL) && L->inputs[0] == i &&
                       consumers[i] == 1;
        }
    }
    /* An upsampling read only by a pixel layer (directly or through a fused
     * concatenation), whose input nobody else reads, is not filled either: a
     * 1x1 layer commutes with nearest-neighbour upsampling, so the pixel
     * layer multiplies the small tensor (a quarter of the work) and spreads
     * the product over each 2x2 block. */
    for (int u = 0; u < net->n_layers; u++) {
        nn_layer *U = &net->layers[u];
        int c = last_consumer[U->output];
        if (U->kind != LAYER_UPSAMPLE || consumers[U->output] != 1 || consumers[U->inputs[0]] != 1)
            continue;
        const nn_layer *C = &net->layers[c];
        U->fused = (C->kind == LAYER_CONCAT && C->fused) || (C->kind == LAYER_PIXEL && C->inputs[0] == U->output);
    }
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++) {
            int t = net->layers[i].inputs[j];
            /* Within one concat a tensor listed twice: only its first slot overwrites. */
            int first_in_layer = 1;
            for (int q = 0; q < j; q++) first_in_layer &= net->layers[i].inputs[q] != t;
            net->grad_overwrite[i][j] = last_consumer[t] == i && first_in_layer;
        }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Building: parameter table, activation and scratch buffers                 */

static int layer_fan_in(const network *net, const nn_layer *L) {
    nn_shape in = net->shapes[L->inputs[0]];
    switch (L->kind) {
    case LAYER_CONV5: return 25 * in.c;
    case LAYER_PIXEL: return in.c;
    case LAYER_DENSE: return (int)shape_size(in);
    default: return 0;
    }
}

static void plan_parameters(network *net) {
    size_t off = 0;
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer *L = &net->layers[i];
        int fan_in = layer_fan_in(net, L);
        L->n_weights = (size_t)fan_in * L->units;
        L->n_bias = fan_in ? (size_t)L->units : 0;
        L->w_offset = off;
        L->b_offset = off + L->n_weights;
        off += L->n_weights + L->n_bias;
    }
    net->n_params = off;
}

static size_t padded_size(nn_shape s, int c) { return (size_t)(s.h + 4) * (s.w + 4) * c; }

/* What a pixel layer reads: its input tensor, or, when a fused concatenation
 * feeds it, that concatenation's tensors, each multiplied by its own rows of
 * the weights. A piece that a fused upsampling makes is read at its small
 * size (low): its product is spread over 2x2 blocks, and its gradient is the
 * product of the 2x2 sums of the output gradient. overwrite[j]: whether
 * piece j's gradient is written or added. */
typedef struct {
    int n, tensor[NN_MAX_INPUTS], c0[NN_MAX_INPUTS], c[NN_MAX_INPUTS], overwrite[NN_MAX_INPUTS];
    int low[NN_MAX_INPUTS];
} pixel_pieces;

static pixel_pieces pieces_of(const network *net, int i) {
    const nn_layer *L = &net->layers[i];
    pixel_pieces pc = {0};
    const nn_layer *before = i > 0 ? &net->layers[i - 1] : NULL;
    const nn_layer *cat = before && before->kind == LAYER_CONCAT && before->fused ? before : NULL;
    const nn_layer *src = cat ? cat : L;
    for (int j = 0, c0 = 0; j < src->n_inputs; j++) {
        int t = src->inputs[j];
        const nn_layer *up = t > 0 && net->layers[t - 1].kind == LAYER_UPSAMPLE && net->layers[t - 1].fused
                                 ? &net->layers[t - 1] : NULL;
        pc.low[j] = up != NULL;
        pc.tensor[j] = up ? up->inputs[0] : t;
        pc.c0[j] = c0;
        pc.c[j] = net->shapes[t].c;
        pc.overwrite[j] = up ? net->grad_overwrite[t - 1][0] : net->grad_overwrite[cat ? i - 1 : i][j];
        c0 += pc.c[j];
    }
    pc.n = src->n_inputs;
    return pc;
}

/* Pixels of an image at the small size of layer i's low pieces; 0 if none. */
static size_t low_pixels(const network *net, int i) {
    if (net->layers[i].kind != LAYER_PIXEL) return 0;
    pixel_pieces pc = pieces_of(net, i);
    for (int j = 0; j < pc.n; j++)
        if (pc.low[j]) return shape_size(net->shapes[pc.tensor[j]]) / (size_t)pc.c[j];
    return 0;
}

/* Whether layer i sums its weight and bias gradients image by image, each
 * image's share written by the thread that holds that image's tensors in its
 * cache, then added over the images in order (see sum_images). It does so
 * when an image's share is no larger than the image's output, so that the
 * extra traffic is small. Otherwise threads split the gradient's outputs and
 * each sums the whole batch. Either order is fixed: the thread count never
 * changes a bit. */
static int per_image_grads(const network *net, const nn_layer *L) {
    nn_shape o = net->shapes[L->output];
    return (L->kind == LAYER_CONV5 || L->kind == LAYER_PIXEL) && L->n_weights + L->n_bias <= shape_size(o);
}

/* Floats of per-layer scratch for batches of B images. */
static size_t layer_scratch_size(const network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    size_t n = per_image_grads(net, L) ? (size_t)B * (L->n_weights + L->n_bias) : 0;
    if (L->kind == LAYER_PIXEL) return n + (size_t)B * low_pixels(net, i) * L->units;
    if (L->kind != LAYER_CONV5) return n;
    nn_shape in = net->shapes[L->inputs[0]];
    return n + (size_t)B * (padded_size(in, in.c) + padded_size(in, L->units) + shape_size(in)) +
           L->n_weights;
}

/* An in-place ReLU's output shares its input's buffers. */
static int shares_buffers(const network *net, int t) {
    return t > 0 && net->layers[t - 1].kind == LAYER_RELU && net->layers[t - 1].fused;
}

/* A fused concatenation's or upsampling's output is never filled: no buffers. */
static int never_filled(const network *net, int t) {
    return t > 0 && net->layers[t - 1].fused &&
           (net->layers[t - 1].kind == LAYER_CONCAT || net->layers[t - 1].kind == LAYER_UPSAMPLE);
}

static int allocate_buffers(network *net, char *err, size_t errlen) {
    int B = net->batch_cap;
    size_t acts = 0, scratch = 0;
    for (int t = 0; t <= net->n_layers; t++)
        if (!shares_buffers(net, t) && !never_filled(net, t)) acts += 2 * (size_t)B * shape_size(net->shapes[t]);
    for (int i = 0; i < net->n_layers; i++) scratch += layer_scratch_size(net, i, B);
    size_t n = net->n_params;
    net->params = calloc(n, sizeof(float));
    net->grads = calloc(n, sizeof(float));
    net->opt_m = calloc(n, sizeof(float));
    net->opt_v = calloc(n, sizeof(float));
    /* calloc: the borders of the padded copies must start, and stay, zero. */
    net->activations = calloc(acts, sizeof(float));
    net->layer_scratch = calloc(scratch ? scratch : 1, sizeof(float));
    net->image_loss = calloc((size_t)B, sizeof(double));
    net->batch_targets = malloc((size_t)B * net->shapes[0].h * net->shapes[0].w);
    if (!net->batch_targets || !net->params || !net->grads || !net->opt_m || !net->opt_v || !net->activations ||
        !net->layer_scratch || !net->image_loss)
        return set_error(err, errlen, "out of memory for the network's buffers");
    float *p = net->activations;
    for (int t = 0; t <= net->n_layers; t++) {
        size_t sz = (size_t)B * shape_size(net->shapes[t]);
        if (shares_buffers(net, t)) {
            net->act[t] = net->act[t - 1];
            net->grad[t] = net->grad[t - 1];
            continue;
        }
        if (never_filled(net, t)) continue; /* act[t] and grad[t] stay NULL */
        net->act[t] = p, p += sz;
        net->grad[t] = p, p += sz;
    }
    float *q = net->layer_scratch;
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        if (per_image_grads(net, L)) net->partial[i] = q, q += (size_t)B * (L->n_weights + L->n_bias);
        if (L->kind == LAYER_PIXEL && low_pixels(net, i))
            net->scratch[i] = q, q += (size_t)B * low_pixels(net, i) * L->units;
        if (L->kind != LAYER_CONV5) continue;
        nn_shape in = net->shapes[L->inputs[0]];
        net->pad_in[i] = q, q += (size_t)B * padded_size(in, in.c);
        net->pad_grad[i] = q, q += (size_t)B * padded_size(in, L->units);
        net->scratch[i] = q, q += (size_t)B * shape_size(in);
        net->flipped[i] = q, q += L->n_weights;
    }
    return 0;
}

int nn_create(const char *spec_or_name, int h, int w, int k, int batch_cap, network **out,
              char *err, size_t errlen) {
    *out = NULL;
    if (h < 1 || w < 1 || k < 2 || k > 64 || batch_cap < 1)
        return set_error(err, errlen, "bad network size %dx%d, k %d, batch %d", h, w, k, batch_cap);
    const char *spec = nn_builtin_spec(spec_or_name);
    if (!spec) spec = spec_or_name;
    network *net = calloc(1, sizeof *net);
    if (!net) return set_error(err, errlen, "out of memory");
    snprintf(net->spec, sizeof net->spec, "%s", spec);
    net->k = k;
    net->batch_cap = batch_cap;
    char why[256];
    if (parse_spec(net, spec, h, w, why, sizeof why) != 0 ||
        plan_gradients(net, why, sizeof why) != 0) {
        nn_free(net);
        return set_error(err, errlen, "architecture '%s': %s", spec_or_name, why);
    }
    plan_parameters(net);
    if (allocate_buffers(net, err, errlen) != 0) {
        nn_free(net);
        return -1;
    }
    *out = net;
    return 0;
}

void nn_free(network *net) {
    if (!net) return;
    free(net->params);
    free(net->grads);
    free(net->opt_m);
    free(net->opt_v);
    free(net->activations);
    free(net->layer_scratch);
    free(net->image_loss);
    free(net->batch_targets);
    free(net);
}

void nn_init_weights(network *net, uint64_t seed) {
    rng_state rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        float std = sqrtf(2.0f / (float)(L->n_weights ? layer_fan_in(net, L) : 1));
        for (size_t j = 0; j < L->n_weights; j++)
            net->params[L->w_offset + j] = std * rng_normal(&rng);
        memset(net->params + L->b_offset, 0, L->n_bias * sizeof(float));
    }
    nn_reset_optimiser(net);
}

void nn_reset_optimiser(network *net) {
    memset(net->opt_m, 0, net->n_params * sizeof(float));
    memset(net->opt_v, 0, net->n_params * sizeof(float));
    net->step = 0;
}

void nn_layer_describe(const network *net, int i, nn_layer_info *info) {
    const nn_layer *L = &net->layers[i];
    nn_shape in = net->shapes[L->inputs[0]], out = net->shapes[L->output];
    double pixels = (double)out.h * out.w;
    info->in = in;
    info->out = out;
    info->params = L->n_weights + L->n_bias;
    info->flops = 2.0 * (double)L->n_weights * (L->kind == LAYER_DENSE ? 1.0 : pixels);
    if (L->kind == LAYER_PIXEL) { /* the pieces of a fused upsampling at their small size */
        pixel_pieces pc = pieces_of(net, i);
        info->flops = 0;
        for (int j = 0; j < pc.n; j++)
            info->flops += 2.0 * pc.c[j] * L->units * (pc.low[j] ? pixels / 4 : pixels);
    }
    switch (L->kind) {
    case LAYER_CONV5: snprintf(info->name, sizeof info->name, "conv5x5 %d", L->units); break;
    case LAYER_PIXEL: snprintf(info->name, sizeof info->name, "pixel %d", L->units); break;
    case LAYER_DENSE: snprintf(info->name, sizeof info->name, "dense %d", L->units); break;
    case LAYER_RELU: snprintf(info->name, sizeof info->name, "relu"); break;
    case LAYER_MAXPOOL2: snprintf(info->name, sizeof info->name, "maxpool 2/2"); break;
    case LAYER_MAXPOOL1: snprintf(info->name, sizeof info->name, "maxpool 2/1 same"); break;
    case LAYER_UPSAMPLE: snprintf(info->name, sizeof info->name, "upsample x2"); break;
    case LAYER_SOFTMAX:
        snprintf(info->name, sizeof info->name, "%ssoftmax %d", in.h == 1 && out.h > 1 ? "reshape, " : "", net->k);
        break;
    case LAYER_CONCAT: {
        int n = snprintf(info->name, sizeof info->name, "concat");
        for (int j = 0; j < L->n_inputs && n < (int)sizeof info->name; j++)
            n += snprintf(info->name + n, sizeof info->name - n, "%c%d", j ? '+' : ' ',
                          L->inputs[j]);
        break;
    }
    }
    if (L->fused && (L->kind == LAYER_CONCAT || L->kind == LAYER_UPSAMPLE)) {
        size_t n = strlen(info->name); /* done by the pixel layer after it */
        snprintf(info->name + n, sizeof info->name - n, ", fused");
    }
    if (L->label[0]) {
        size_t n = strlen(info->name);
        snprintf(info->name + n, sizeof info->name - n, " @%s", L->label);
    }
}

double nn_forward_flops(const network *net) {
    double total = 0;
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer_info info;
        nn_layer_describe(net, i, &info);
        total += info.flops;
    }
    return total;
}

/* ------------------------------------------------------------------------ */
/* Layers. Each is a forward/backward pair over (B, H, W, C) tensors.        */
/* Backward functions add into an input gradient unless told to overwrite.   */

/* c channels at each of `pixels` pixels, from rows src_stride floats apart
 * to rows dst_stride apart; written (overwrite) or added. A plain loop: the
 * rows are short (often 1 to 64 floats), where memcpy's call costs most. */
static void copy_pixels(float *restrict dst, size_t dst_stride, const float *restrict src,
                        size_t src_stride, int c, size_t pixels, int overwrite) {
    for (size_t p = 0; p < pixels; p++, dst += dst_stride, src += src_stride)
        if (overwrite)
            for (int q = 0; q < c; q++) dst[q] = src[q];
        else
            for (int q = 0; q < c; q++) dst[q] += src[q];
}

/* in (B,h,w,cin) -> pad (B,h+4,w+4,cin), interior only: the border stays zero. */
static void pad_image(const float *in, int h, int w, int c, float *pad) {
    for (int y = 0; y < h; y++)
        memcpy(pad + ((size_t)(y + 2) * (w + 4) + 2) * c, in + (size_t)y * w * c,
               (size_t)w * c * sizeof(float));
}

/* The share [lo, hi) of n columns that thread t of nt computes, in whole
 * groups of 8 so that vector blocks are not cut; the simd/ kernels make the
 * values independent of the split. */
static void thread_share(int n, int t, int nt, int *lo, int *hi) {
    int groups = (n + 7) / 8;
    *lo = (int)((long)groups * t / nt) * 8;
    *hi = (int)((long)groups * (t + 1) / nt) * 8;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* db[j] = sum over the rows of dout (rows, n), in row order. Each thread
 * owns a range of columns and reads its part of every row once. */
static void bias_grad(const float *dout, size_t rows, int n, float *db) {
#pragma omp parallel
    {
        int lo, hi;
        thread_share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += 256) {
            int len = hi - j0 < 256 ? hi - j0 : 256;
            float sum[256] = {0};
            for (size_t r = 0; r < rows; r++)
                for (int j = 0; j < len; j++) sum[j] += dout[r * n + j0 + j];
            memcpy(db + j0, sum, (size_t)len * sizeof(float));
        }
    }
}

/* sums[j] = sum of column j of the (rows, n) block d, in row order. When n
 * divides 64 the block is summed as flat runs of 64 floats (lane e % 64 holds
 * column e % n), which vectorises, and the lanes of a column are added last. */
static void column_sums(const float *restrict d, size_t rows, int n, float *restrict sums) {
    if (64 % n != 0) {
        for (int j = 0; j < n; j++) sums[j] = 0.0f;
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) sums[j] += d[r * n + j];
        return;
    }
    float lane[64] = {0};
    size_t len = rows * n, e = 0;
    for (; e + 64 <= len; e += 64)
        for (int q = 0; q < 64; q++) lane[q] += d[e + q];
    for (int q = 0; e + q < len; q++) lane[q] += d[e + q];
    for (int j = 0; j < n; j++) {
        float sum = lane[j];
        for (int q = j + n; q < 64; q += n) sum += lane[q];
        sums[j] = sum;
    }
}

/* out[j] = sum over images b < B of part[b * n + j], in image order; threads
 * split j. Adds up the per-image shares of a gradient (per_image_grads). */
static void sum_images(const float *part, int B, size_t n, float *out) {
#pragma omp parallel for schedule(static)
    for (size_t j0 = 0; j0 < n; j0 += 256) {
        size_t len = n - j0 < 256 ? n - j0 : 256;
        float sum[256];
        memcpy(sum, part + j0, len * sizeof(float));
        for (int b = 1; b < B; b++)
            for (size_t j = 0; j < len; j++) sum[j] += part[b * n + j0 + j];
        memcpy(out + j0, sum, len * sizeof(float));
    }
}

static void relu_in_place(float *restrict a, size_t n) {
    for (size_t j = 0; j < n; j++) a[j] = a[j] > 0 ? a[j] : 0.0f;
}

/* g = g where out > 0, else 0: an in-place ReLU's gradient. Both values are
 * loaded unconditionally so that the select vectorises. */
static void relu_grad_in_place(const float *restrict out, float *restrict g, size_t n) {
    for (size_t j = 0; j < n; j++) {
        float v = g[j];
        g[j] = out[j] > 0 ? v : 0.0f;
    }
}

/* Whether layer i's output goes through an in-place ReLU that layer i
 * applies itself, image by image, while the image is in cache: to its output
 * in forward, and its mask to its output gradient in backward. */
static int applies_relu(const network *net, int i) {
    return i + 1 < net->n_layers && net->layers[i + 1].kind == LAYER_RELU && net->layers[i + 1].fused;
}

// in is (B,h,w,cin), w is (5,5,cin,cout), out is (B,h,w,cout)
static void conv5_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]];
    const float *in = net->act[L->inputs[0]], *w = net->params + L->w_offset;
    size_t in_sz = shape_size(s), pad_sz = padded_size(s, s.c), out_sz = (size_t)s.h * s.w * L->units;
    int relu = applies_relu(net, i);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *pad = net->pad_in[i] + b * pad_sz;
        pad_image(in + b * in_sz, s.h, s.w, s.c, pad);
        conv5x5_forward(pad, s.h, s.w, s.c, w, net->params + L->b_offset, L->units,
                        net->act[L->output] + b * out_sz);
        if (relu) relu_in_place(net->act[L->output] + b * out_sz, out_sz);
    }
}

// dout is (B,h,w,cout); dw (5,5,cin,cout) and db (cout) overwritten; din (B,h,w,cin)
static void conv5_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]];
    int cin = s.c, cout = L->units;
    const float *dout = net->grad[L->output];
    float *dw = net->grads + L->w_offset, *db = net->grads + L->b_offset;
    size_t pixels = (size_t)s.h * s.w, in_sz = shape_size(s), out_sz = pixels * cout;
    size_t pad_in_sz = padded_size(s, cin), pad_sz = padded_size(s, cout);
    size_t share = L->n_weights + L->n_bias;
    int need_din = L->inputs[0] != 0; /* nobody needs the gradient of the gray input */
    int overwrite = net->grad_overwrite[i][0], relu = applies_relu(net, i);
    if (need_din) conv5x5_flip_weights(net->params + L->w_offset, cin, cout, net->flipped[i]);
    /* Image by image: the in-place ReLU's mask on its output gradient, its
     * share of dw and db (when per_image_grads), then its input gradient,
     * while its output gradient is in cache. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *d = dout + b * out_sz;
        if (relu) relu_grad_in_place(net->act[L->output] + b * out_sz, net->grad[L->output] + b * out_sz, out_sz);
        if (net->partial[i]) {
            float *part = net->partial[i] + b * share;
            conv5x5_weight_grad_taps(net->pad_in[i] + b * pad_in_sz, d, 1, s.h, s.w, cin, cout, 0,
                                     25, 0, cout, part);
            column_sums(d, pixels, cout, part + L->n_weights);
        }
        if (!need_din) continue;
        float *pad = net->pad_grad[i] + b * pad_sz;
        float *din = net->grad[L->inputs[0]] + b * in_sz;
        float *dst = overwrite ? din : net->scratch[i] + b * in_sz;
        pad_image(d, s.h, s.w, cout, pad);
        conv5x5_backward_input(pad, s.h, s.w, cout, net->flipped[i], cin, dst);
        if (!overwrite)
            for (size_t j = 0; j < in_sz; j++) din[j] += dst[j];
    }
    if (net->partial[i]) {
        sum_images(net->partial[i], B, share, dw); /* db follows dw */
        return;
    }
    /* Work items: (range of taps, block of output channels), each summed over
     * the whole batch; the kernel reads the output gradient once for all the
     * taps of an item. About two items per thread; the split does not change
     * the values. */
    int threads = omp_get_max_threads();
    int groups = 2 * threads < 25 ? 2 * threads : 25, co_block = 64;
    while (groups * ((cout + co_block - 1) / co_block) < 2 * threads && co_block > 8) co_block /= 2;
    int blocks = (cout + co_block - 1) / co_block;
#pragma omp parallel for schedule(dynamic)
    for (int item = 0; item < groups * blocks; item++) {
        int g = item / blocks, co0 = (item % blocks) * co_block;
        int co1 = co0 + co_block < cout ? co0 + co_block : cout;
        conv5x5_weight_grad_taps(net->pad_in[i], dout, B, s.h, s.w, cin, cout, 25 * g / groups,
                                 25 * (g + 1) / groups, co0, co1, dw);
    }
    bias_grad(dout, (size_t)B * pixels, cout, db);
}

/* ReLU works on chunks of a tensor; restrict lets each chunk's loop vectorise. */
enum { CHUNK = 1 << 14 };

static void relu_chunk(const float *restrict in, float *restrict out, size_t n) {
    for (size_t j = 0; j < n; j++) out[j] = in[j] > 0 ? in[j] : 0.0f;
}

static void relu_grad_chunk(const float *restrict out, const float *restrict dout,
                            float *restrict din, size_t n, int overwrite) {
    /* Both values are loaded unconditionally so that the select vectorises. */
    if (overwrite)
        for (size_t j = 0; j < n; j++) {
            float g = dout[j];
            din[j] = out[j] > 0 ? g : 0.0f;
        }
    else
        for (size_t j = 0; j < n; j++) {
            float g = dout[j], d = din[j];
            din[j] = out[j] > 0 ? d + g : d;
        }
}

// out = max(in, 0), elementwise over (B,h,w,c)
static void relu_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->fused) return; /* applied by the layer before */
    size_t n = (size_t)B * shape_size(net->shapes[L->output]);
    const float *in = net->act[L->inputs[0]];
    float *out = net->act[L->output];
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j += CHUNK) relu_chunk(in + j, out + j, n - j < CHUNK ? n - j : CHUNK);
}

static void relu_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    /* a fused ReLU's mask is applied by the layer before, image by image */
    if (L->inputs[0] == 0 || L->fused) return;
    size_t n = (size_t)B * shape_size(net->shapes[L->output]);
    const float *out = net->act[L->output], *dout = net->grad[L->output];
    float *din = net->grad[L->inputs[0]];
    int overwrite = net->grad_overwrite[i][0];
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j += CHUNK)
        relu_grad_chunk(out + j, dout + j, din + j, n - j < CHUNK ? n - j : CHUNK, overwrite);
}

/* The four input pixels of the window of output (y, x): rows and columns
 * start at stride*y, stride*x; at the right and bottom edges of a stride-1
 * ("same") pool the window is clamped, which repeats a pixel. */
static void pool_window(const float *base, nn_shape s, int stride, int y, int x,
                        const float *win[4]) {
    int y0 = stride * y, x0 = stride * x;
    int y1 = y0 + 1 < s.h ? y0 + 1 : y0, x1 = x0 + 1 < s.w ? x0 + 1 : x0;
    win[0] = base + ((size_t)y0 * s.w + x0) * s.c;
    win[1] = base + ((size_t)y0 * s.w + x1) * s.c;
    win[2] = base + ((size_t)y1 * s.w + x0) * s.c;
    win[3] = base + ((size_t)y1 * s.w + x1) * s.c;
}

// in is (B,h,w,c), out is (B,h/2,w/2,c) for stride 2 or (B,h,w,c) for stride 1
static void maxpool_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
    int stride = L->kind == LAYER_MAXPOOL2 ? 2 : 1;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *in = net->act[L->inputs[0]] + b * shape_size(s), *w[4];
        for (int y = 0; y < o.h; y++)
            for (int x = 0; x < o.w; x++) {
                float *out = net->act[L->output] + b * shape_size(o) + ((size_t)y * o.w + x) * o.c;
                pool_window(in, s, stride, y, x, w);
                for (int c = 0; c < o.c; c++) {
                    float m01 = w[0][c] >= w[1][c] ? w[0][c] : w[1][c];
                    float m23 = w[2][c] >= w[3][c] ? w[2][c] : w[3][c];
                    out[c] = m01 >= m23 ? m01 : m23;
                }
            }
    }
}

/* The gradient of one pooling window over c channels, its four pixels
 * distinct (restrict lets the loop vectorise): to the first pixel holding
 * the maximum m, else to the fourth, whose value need not be read. */
static void pool_grad_window(const float *restrict w0, const float *restrict w1,
                             const float *restrict w2, const float *restrict m, const float *restrict g, float *restrict d0,
                             float *restrict d1, float *restrict d2, float *restrict d3, int c) {
    for (int q = 0; q < c; q++) {
        /* r: the gradient not yet given to an earlier pixel; selects, no branches */
        float mq = m[q], r = g[q], v0 = w0[q], v1 = w1[q], v2 = w2[q];
        float a0 = v0 == mq ? r : 0.0f;
        r = v0 == mq ? 0.0f : r;
        float a1 = v1 == mq ? r : 0.0f;
        r = v1 == mq ? 0.0f : r;
        float a2 = v2 == mq ? r : 0.0f;
        r = v2 == mq ? 0.0f : r;
        d0[q] += a0;
        d1[q] += a1;
        d2[q] += a2;
        d3[q] += r;
    }
}

/* The gradient goes to the first pixel of the window (in row-major order)
 * that holds the maximum. Windows overlap at stride 1, so contributions are
 * added, in output order. */
static void maxpool_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->inputs[0] == 0) return;
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
    int stride = L->kind == LAYER_MAXPOOL2 ? 2 : 1;
    int overwrite = net->grad_overwrite[i][0];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *in = net->act[L->inputs[0]] + b * shape_size(s), *w[4];
        float *din = net->grad[L->inputs[0]] + b * shape_size(s);
        if (overwrite) memset(din, 0, shape_size(s) * sizeof(float));
        for (int y = 0; y < o.h; y++)
            for (int x = 0; x < o.w; x++) {
                size_t at = ((size_t)y * o.w + x) * o.c;
                const float *m = net->act[L->output] + b * shape_size(o) + at;
                const float *g = net->grad[L->output] + b * shape_size(o) + at;
                pool_window(in, s, stride, y, x, w);
                float *d[4];
                for (int q = 0; q < 4; q++) d[q] = din + (w[q] - in);
                if (w[0] != w[1] && w[0] != w[2]) { /* four distinct pixels: the common case */
                    pool_grad_window(w[0], w[1], w[2], m, g, d[0], d[1], d[2], d[3], o.c);
                    continue;
                }
                for (int c = 0; c < o.c; c++) {
                    float gc = g[c];
                    int t0 = w[0][c] == m[c], t1 = !t0 && w[1][c] == m[c];
                    int t2 = !t0 && !t1 && w[2][c] == m[c], t3 = !t0 && !t1 && !t2;
                    d[0][c] += t0 ? gc : 0;
                    d[1][c] += t1 ? gc : 0;
                    d[2][c] += t2 ? gc : 0;
                    d[3][c] += t3 ? gc : 0;
                }
            }
    }
}

/* One image: each pixel of the small (h, w, c) tensor written to (overwrite)
 * or added to the 2x2 block of the big (2h, 2w, c) one that it covers. */
static void spread_2x2(const float *small, nn_shape s, float *big, int overwrite) {
    size_t c = (size_t)s.c, row = 2 * (size_t)s.w * c;
    for (int y = 0; y < 2 * s.h; y++) {
        float *dst = big + (size_t)y * row;
        const float *src = small + (size_t)(y / 2) * s.w * c;
        /* even columns, then odd ones, both from column x / 2 */
        copy_pixels(dst, 2 * c, src, c, s.c, (size_t)s.w, overwrite);
        copy_pixels(dst + c, 2 * c, src, c, s.c, (size_t)s.w, overwrite);
    }
}

/* One image: small (h, w, c) gets (overwrite) or adds the sum of each 2x2
 * block of the big (2h, 2w, c) one, in a fixed order. */
static void sum_2x2(const float *big, nn_shape s, float *small, int overwrite) {
    size_t c = (size_t)s.c, row = 2 * (size_t)s.w * c;
    for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++) {
            const float *d = big + 2 * (size_t)y * row + 2 * (size_t)x * c;
            float *g = small + ((size_t)y * s.w + x) * c;
            for (size_t q = 0; q < c; q++)
                g[q] = (overwrite ? 0 : g[q]) + ((d[q] + d[c + q]) + (d[row + q] + d[row + c + q]));
        }
}

// in is (B,h,w,c), out is (B,2h,2w,c): each input pixel fills a 2x2 block
static void upsample_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->fused) return; /* the pixel layer after it spreads its product instead */
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        spread_2x2(net->act[L->inputs[0]] + b * shape_size(s), s, net->act[L->output] + b * shape_size(o), 1);
}

static void upsample_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->inputs[0] == 0 || L->fused) return;
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
    int overwrite = net->grad_overwrite[i][0];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        sum_2x2(net->grad[L->output] + b * shape_size(o), s, net->grad[L->inputs[0]] + b * shape_size(s), overwrite);
}

// inputs (B,h,w,c_j) -> out (B,h,w,sum c_j), channels in the order listed
static void concat_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->fused) return;
    nn_shape o = net->shapes[L->output];
    size_t pixels = (size_t)o.h * o.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int c0 = 0;
        for (int j = 0; j < L->n_inputs; j++) {
            int c = net->shapes[L->inputs[j]].c;
            const float *in = net->act[L->inputs[j]] + b * pixels * c;
            float *out = net->act[L->output] + b * pixels * o.c + c0;
            copy_pixels(out, (size_t)o.c, in, (size_t)c, c, pixels, 1);
            c0 += c;
        }
    }
}

static void concat_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    if (L->fused) return;
    nn_shape o = net->shapes[L->output];
    size_t pixels = (size_t)o.h * o.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int c0 = 0;
        for (int j = 0; j < L->n_inputs; j++) {
            int t = L->inputs[j], c = net->shapes[t].c, overwrite = net->grad_overwrite[i][j];
            const float *dout = net->grad[L->output] + b * pixels * o.c + c0;
            float *din = net->grad[t] + b * pixels * c;
            c0 += c;
            if (t == 0) continue;
            copy_pixels(din, (size_t)c, dout, (size_t)o.c, c, pixels, overwrite);
        }
    }
}

/* Adds bias to every row of the (rows, n) block whose rows are ld apart, by
 * starting the row from the bias: the product is then accumulated onto it. */
static void fill_rows(float *c, int rows, int n, int ld, const float *bias) {
    copy_pixels(c, (size_t)ld, bias, 0, n, (size_t)rows, 1);
}

// in is (B,h,w,cin), w is (cin,cout), out is (B,h,w,cout)
static void pixel_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]];
    int pixels = s.h * s.w, cout = L->units, small = (int)low_pixels(net, i);
    nn_shape low = {s.h / 2, s.w / 2, cout};
    const float *w = net->params + L->w_offset, *bias = net->params + L->b_offset;
    pixel_pieces pc = pieces_of(net, i);
    int relu = applies_relu(net, i);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        /* Each piece times its rows of w. The low pieces' products start from
         * the bias at the small size and are spread over the output; the
         * others are added to that (or to the bias) in one pass. */
        gemm_piece full[NN_MAX_INPUTS], lows[NN_MAX_INPUTS];
        int n_full = 0, n_low = 0;
        for (int j = 0; j < pc.n; j++) {
            size_t n = (size_t)(pc.low[j] ? small : pixels);
            gemm_piece piece = {net->act[pc.tensor[j]] + b * n * pc.c[j], w + (size_t)pc.c0[j] * cout,
                                pc.c[j], pc.c[j]};
            if (pc.low[j]) lows[n_low++] = piece;
            else full[n_full++] = piece;
        }
        float *out = net->act[L->output] + (size_t)b * pixels * cout;
        if (n_low) {
            float *product = net->scratch[i] + (size_t)b * small * cout;
            gemm_nn_pieces(small, cout, n_low, lows, cout, bias, product, cout, 0);
            spread_2x2(product, low, out, 1);
        }
        gemm_nn_pieces(pixels, cout, n_full, full, cout, n_low ? NULL : bias, out, cout, relu);
    }
}

static void pixel_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]];
    int pixels = s.h * s.w, cin = s.c, cout = L->units, small = (int)low_pixels(net, i);
    int relu = applies_relu(net, i);
    nn_shape low = {s.h / 2, s.w / 2, cout};
    const float *dout = net->grad[L->output], *w = net->params + L->w_offset;
    float *dw = net->grads + L->w_offset, *dsum = net->scratch[i];
    size_t share = L->n_weights + L->n_bias;
    pixel_pieces pc = pieces_of(net, i);
    /* Image by image, while its output gradient is in cache: the in-place
     * ReLU's mask on it; for the low pieces, its 2x2 sums (B, h/2, w/2,
     * cout); its share of dw and db (when per_image_grads); the gradient of
     * each piece. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t at = (size_t)b * pixels * cout;
        if (relu) relu_grad_in_place(net->act[L->output] + at, net->grad[L->output] + at, (size_t)pixels * cout);
        if (small) sum_2x2(dout + at, low, dsum + (size_t)b * small * cout, 1);
        float *part = net->partial[i] ? net->partial[i] + b * share : NULL;
        for (int j = 0; j < pc.n; j++) {
            int n = pc.low[j] ? small : pixels;
            const float *in = net->act[pc.tensor[j]] + (size_t)b * n * pc.c[j];
            const float *d = (pc.low[j] ? dsum : dout) + (size_t)b * n * cout;
            if (part) gemm_tn(pc.c[j], cout, n, in, pc.c[j], d, cout, part + (size_t)pc.c0[j] * cout, cout, 0);
            if (pc.tensor[j] == 0) continue; /* the gray input needs no gradient */
            gemm_nt(n, pc.c[j], cout, d, cout, w + (size_t)pc.c0[j] * cout, cout,
                    net->grad[pc.tensor[j]] + (size_t)b * n * pc.c[j], pc.c[j], !pc.overwrite[j]);
        }
        if (part) column_sums(dout + at, (size_t)pixels, cout, part + L->n_weights);
    }
    if (net->partial[i]) {
        sum_images(net->partial[i], B, share, dw); /* db follows dw */
        return;
    }
    /* dw (cin, cout) = in^T (cin, rows) dout (rows, cout): threads split the
     * cin rows, each taking its rows from the pieces that hold them. */
#pragma omp parallel
    {
        int lo, hi;
        thread_share(cin, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int j = 0; j < pc.n; j++) {
            int r0 = lo > pc.c0[j] ? lo : pc.c0[j];
            int r1 = hi < pc.c0[j] + pc.c[j] ? hi : pc.c0[j] + pc.c[j];
            if (r1 > r0)
                gemm_tn(r1 - r0, cout, B * (pc.low[j] ? small : pixels),
                        net->act[pc.tensor[j]] + (r0 - pc.c0[j]), pc.c[j], pc.low[j] ? dsum : dout,
                        cout, dw + (size_t)r0 * cout, cout, 0);
        }
    }
    bias_grad(dout, (size_t)B * pixels, cout, net->grads + L->b_offset);
}

// in is (B, n_in) flattened, w is (n_in, n_out), out is (B, n_out)
static void dense_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    int nin = (int)shape_size(net->shapes[L->inputs[0]]), nout = L->units;
    const float *w = net->params + L->w_offset, *bias = net->params + L->b_offset;
    float *out = net->act[L->output];
    /* Few rows (the batch), many columns: threads split the columns. */
#pragma omp parallel
    {
        int lo, hi;
        thread_share(nout, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            fill_rows(out + lo, B, hi - lo, nout, bias + lo);
            gemm_nn(B, hi - lo, nin, net->act[L->inputs[0]], nin, w + lo, nout, out + lo, nout, 1);
        }
    }
}

static void dense_backward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    int nin = (int)shape_size(net->shapes[L->inputs[0]]), nout = L->units;
    const float *in = net->act[L->inputs[0]], *dout = net->grad[L->output];
    const float *w = net->params + L->w_offset;
    float *dw = net->grads + L->w_offset, *din = net->grad[L->inputs[0]];
    int need_din = L->inputs[0] != 0, overwrite = net->grad_overwrite[i][0];
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), lo, hi;
        /* dw (nin, nout) = in^T (nin, B) dout (B, nout): split the nin rows. */
        thread_share(nin, t, nt, &lo, &hi);
        if (hi > lo) gemm_tn(hi - lo, nout, B, in + lo, nin, dout, nout, dw + (size_t)lo * nout, nout, 0);
        /* din (B, nin) = dout (B, nout) w^T: split the nin columns. */
        if (need_din && hi > lo)
            gemm_nt(B, hi - lo, nout, dout, nout, w + (size_t)lo * nout, nout, din + lo, nin, !overwrite);
    }
    bias_grad(dout, (size_t)B, nout, net->grads + L->b_offset);
}

// in is (B,h,w,k) logits (or (B, h*w*k) flat), out is (B,h,w,k) probabilities
static void softmax_forward(network *net, int i, int B) {
    const nn_layer *L = &net->layers[i];
    int k = net->k;
    size_t pixels = (size_t)net->shapes[L->output].h * net->shapes[L->output].w, n = pixels * k;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *z = net->act[L->inputs[0]] + b * n;
        float *q = net->act[L->output] + b * n;
        softmax_pixels(z, q, pixels, k);
    }
}

/* Cross-entropy of the softmax against the targets, per image, and its
 * gradient to the logits: (p - onehot) / pixels of the batch. */
static double softmax_xent_backward(network *net, int i, const uint8_t *targets, int B) {
    const nn_layer *L = &net->layers[i];
    int k = net->k;
    size_t hw = (size_t)net->shapes[L->output].h * net->shapes[L->output].w;
    float scale = 1.0f / ((float)B * (float)hw);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *prob = net->act[L->output] + b * hw * k;
        const uint8_t *t = targets + b * hw;
        float *dz = net->grad[L->inputs[0]] + b * hw * k;
        net->image_loss[b] = xent_pixels(prob, t, hw, k);
        xent_grad_pixels(prob, t, hw, k, scale, dz);
    }
    double total = 0;
    for (int b = 0; b < B; b++) total += net->image_loss[b];
    return total / ((double)B * hw);
}

/* ------------------------------------------------------------------------ */
/* The network as a whole                                                    */

typedef void (*layer_fn)(network *, int, int);

static const struct {
    layer_fn forward, backward;
} layer_table[] = {
    [LAYER_CONV5] = {conv5_forward, conv5_backward},
    [LAYER_RELU] = {relu_forward, relu_backward},
    [LAYER_MAXPOOL2] = {maxpool_forward, maxpool_backward},
    [LAYER_MAXPOOL1] = {maxpool_forward, maxpool_backward},
    [LAYER_UPSAMPLE] = {upsample_forward, upsample_backward},
    [LAYER_CONCAT] = {concat_forward, concat_backward},
    [LAYER_DENSE] = {dense_forward, dense_backward},
    [LAYER_PIXEL] = {pixel_forward, pixel_backward},
    [LAYER_SOFTMAX] = {softmax_forward, NULL},
};

void nn_forward(network *net, const float *x, int B) {
    size_t n = (size_t)B * shape_size(net->shapes[0]);
    if (x != net->act[0]) memcpy(net->act[0], x, n * sizeof(float));
    for (int i = 0; i < net->n_layers; i++) layer_table[net->layers[i].kind].forward(net, i, B);
}

double nn_backward(network *net, const uint8_t *targets, int B) {
    int last = net->n_layers - 1;
    double loss = softmax_xent_backward(net, last, targets, B);
    for (int i = last - 1; i >= 0; i--) layer_table[net->layers[i].kind].backward(net, i, B);
    return loss;
}

float nn_schedule_lr(const nn_optim_config *cfg, long t, long total) {
    if (cfg->schedule == SCHED_CONSTANT || total <= 0) return cfg->lr;
    double progress = (double)t / (double)total;
    if (progress > 1) progress = 1;
    return (float)(cfg->lr * 0.5 * (1.0 + cos(M_PI * progress)));
}

/* The check of the new weights rides along in the update's own pass rather
 * than taking another pass over them. */
int nn_update(network *net, const nn_optim_config *cfg, float lr) {
    net->step++;
    float *p = net->params, *g = net->grads, *m = net->opt_m, *v = net->opt_v;
    long n = (long)net->n_params;
    int bad = 0;
    if (cfg->optimizer == OPT_SGD) {
        float mu = cfg->momentum;
#pragma omp parallel for schedule(static) reduction(| : bad)
        for (long j = 0; j < n; j++) {
            m[j] = mu * m[j] + g[j];
            p[j] -= lr * m[j];
            bad |= !(fabsf(p[j]) <= FLT_MAX);
        }
        return !bad;
    }
    float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)net->step));
    float c2 = 1.0f / (1.0f - powf(b2, (float)net->step));
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (long j = 0; j < n; j++) {
        m[j] = b1 * m[j] + (1 - b1) * g[j];
        v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
        p[j] -= lr * (m[j] * c1) / (sqrtf(v[j] * c2) + eps);
        bad |= !(fabsf(p[j]) <= FLT_MAX);
    }
    return !bad;
}

/* ------------------------------------------------------------------------ */
/* Training and evaluation                                                   */

static int all_finite(const float *a, size_t n) {
    int ok = 1;
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (size_t j = 0; j < n; j++) ok = ok && isfinite(a[j]);
    return ok;
}

double nn_train_epoch(network *net, const float *x, const uint8_t *targets, const int *order, int n,
                      int batch, const nn_optim_config *cfg, long total_steps,
                      volatile sig_atomic_t *stop, nn_progress_fn progress, void *ctx,
                      int *images_done, char *err, size_t errlen) {
    size_t hw = (size_t)net->shapes[0].h * net->shapes[0].w;
    double loss_sum = 0;
    int done = 0, batches = 0;
    if (batch > net->batch_cap) batch = net->batch_cap;
    while (done < n && !(stop && *stop)) {
        int B = n - done < batch ? n - done : batch;
        for (int b = 0; b < B; b++) {
            int idx = order[done + b];
            memcpy(net->act[0] + b * hw, x + (size_t)idx * hw, hw * sizeof(float));
            memcpy(net->batch_targets + b * hw, targets + (size_t)idx * hw, hw);
        }
        nn_forward(net, net->act[0], B);
        double loss = nn_backward(net, net->batch_targets, B);
        if (!isfinite(loss)) {
            *images_done = done;
            set_error(err, errlen, "training diverged at step %ld: the loss is %g", net->step + 1, loss);
            return NAN;
        }
        if (!all_finite(net->grads, net->n_params)) {
            *images_done = done;
            set_error(err, errlen, "training diverged at step %ld: a gradient is no longer finite",
                      net->step + 1);
            return NAN;
        }
        if (!nn_update(net, cfg, nn_schedule_lr(cfg, net->step - cfg->first_step, total_steps))) {
            *images_done = done;
            set_error(err, errlen,
                      "training diverged at step %ld: a weight is no longer finite (learning rate "
                      "too high?)",
                      net->step);
            return NAN;
        }
        loss_sum += loss;
        batches++;
        done += B;
        if (progress) progress(ctx, done, n);
    }
    *images_done = done;
    return batches ? loss_sum / batches : 0.0;
}

void nn_evaluate(network *net, const float *x, const uint8_t *targets, int n, nn_score *score,
                 uint8_t *classes) {
    int k = net->k, hw = net->shapes[0].h * net->shapes[0].w;
    const float *prob = net->act[net->n_layers];
    double loss = 0;
    long wrong = 0;
    for (int first = 0; first < n; first += net->batch_cap) {
        int B = n - first < net->batch_cap ? n - first : net->batch_cap;
        nn_forward(net, x + (size_t)first * hw, B);
        /* Image by image; the losses are added in image order, the counts
         * of wrong pixels are integers. */
#pragma omp parallel for schedule(static) reduction(+ : wrong)
        for (int b = 0; b < B; b++) {
            const float *q = prob + (size_t)b * hw * k;
            size_t at = ((size_t)first + b) * hw;
            for (int p = 0; p < hw; p++) {
                int best = 0;
                for (int c = 1; c < k; c++) best = q[p * k + c] > q[p * k + best] ? c : best;
                if (targets) wrong += best != targets[at + p];
                if (classes) classes[at + p] = (uint8_t)best;
            }
            net->image_loss[b] = targets ? xent_pixels(q, targets + at, (size_t)hw, k) : 0;
        }
        for (int b = 0; b < B; b++) loss += net->image_loss[b];
    }
    /* An empty set has no error rate: NAN, which the plot skips. */
    score->error = n ? (double)wrong / ((double)n * hw) : NAN;
    score->loss = n ? loss / ((double)n * hw) : NAN;
}

size_t nn_state_floats(const network *net) { return 3 * net->n_params; }

void nn_state_save(const network *net, float *state, long *step) {
    size_t n = net->n_params;
    memcpy(state, net->params, n * sizeof(float));
    memcpy(state + n, net->opt_m, n * sizeof(float));
    memcpy(state + 2 * n, net->opt_v, n * sizeof(float));
    *step = net->step;
}

void nn_state_restore(network *net, const float *state, long step) {
    size_t n = net->n_params;
    net->step = step;
    memcpy(net->params, state, n * sizeof(float));
    memcpy(net->opt_m, state + n, n * sizeof(float));
    memcpy(net->opt_v, state + 2 * n, n * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* The model file, little-endian:                                            */
/*   "CLRZMODL" u32 version, u32 h, u32 w, u32 spec length, spec bytes,       */
/*   u32 k, k*3 f32 palette, f32 mean, f32 std, u32 epochs, u32 optimiser    */
/*   (0 Adam, 1 SGD), i64 step,                                              */
/*   u64 n_params, then params, Adam/momentum m, v (n_params f32 each),      */
/*   and u64 FNV-1a of every byte before it.                                  */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is written in the host's byte order, which must be little-endian"
#endif

static const char model_magic[8] = {'C', 'L', 'R', 'Z', 'M', 'O', 'D', 'L'};
enum { MODEL_VERSION = 1 };

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} byte_writer;

static void put(byte_writer *bw, const void *p, size_t n) {
    if (bw->buf && bw->len + n <= bw->cap) memcpy(bw->buf + bw->len, p, n);
    bw->len += n;
}

static void put_u32(byte_writer *bw, uint32_t v) { put(bw, &v, 4); }

/* Serialises into bw; with bw->buf NULL it only measures. */
static void model_serialise(const network *net, const nn_model_meta *meta, byte_writer *bw) {
    uint32_t spec_len = (uint32_t)strlen(net->spec);
    put(bw, model_magic, 8);
    put_u32(bw, MODEL_VERSION);
    put_u32(bw, (uint32_t)net->shapes[0].h);
    put_u32(bw, (uint32_t)net->shapes[0].w);
    put_u32(bw, spec_len);
    put(bw, net->spec, spec_len);
    put_u32(bw, (uint32_t)meta->k);
    put(bw, meta->centres, (size_t)meta->k * 3 * sizeof(float));
    put(bw, &meta->mean, 4);
    put(bw, &meta->std, 4);
    put_u32(bw, (uint32_t)meta->epochs);
    put_u32(bw, (uint32_t)meta->optimizer);
    int64_t step = net->step;
    put(bw, &step, 8);
    uint64_t n = net->n_params;
    put(bw, &n, 8);
    put(bw, net->params, n * sizeof(float));
    put(bw, net->opt_m, n * sizeof(float));
    put(bw, net->opt_v, n * sizeof(float));
}

int nn_save(const network *net, const nn_model_meta *meta, const char *path, char *err,
            size_t errlen) {
    byte_writer bw = {0};
    model_serialise(net, meta, &bw);
    bw.cap = bw.len + 8;
    bw.buf = malloc(bw.cap);
    if (!bw.buf) return set_error(err, errlen, "%s: out of memory", path);
    bw.len = 0;
    model_serialise(net, meta, &bw);
    uint64_t sum = fnv1a(bw.buf, bw.len);
    put(&bw, &sum, 8);
    atomic_file af;
    int rc = atomic_open(&af, path, err, errlen);
    if (rc == 0) {
        fwrite(bw.buf, 1, bw.len, af.f);
        rc = atomic_commit(&af, err, errlen);
    }
    free(bw.buf);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} byte_reader;

static int take(byte_reader *br, void *out, size_t n) {
    if (n > br->len - br->pos) return -1;
    memcpy(out, br->p + br->pos, n);
    br->pos += n;
    return 0;
}

/* Reads the header up to the parameter count; checks what can be checked. */
static int model_read_header(byte_reader *br, const char *path, int *h, int *w, char *spec,
                             nn_model_meta *meta, int64_t *step, uint64_t *n_params, char *err,
                             size_t errlen) {
    char magic[8];
    uint32_t version = 0, uh = 0, uw = 0, spec_len = 0, k = 0, epochs = 0, optimizer = 0;
    if (take(br, magic, 8) || memcmp(magic, model_magic, 8) != 0)
        return set_error(err, errlen, "%s: not a colorize model file", path);
    if (take(br, &version, 4) || version != MODEL_VERSION)
        return set_error(err, errlen, "%s: model format version %u, this program reads %d", path,
                         version, MODEL_VERSION);
    if (take(br, &uh, 4) || take(br, &uw, 4) || take(br, &spec_len, 4) || spec_len >= NN_SPEC_MAX ||
        take(br, spec, spec_len))
        return set_error(err, errlen, "%s: damaged model header", path);
    spec[spec_len] = 0;
    if (take(br, &k, 4) || k < 2 || k > 64 || take(br, meta->centres, (size_t)k * 12) ||
        take(br, &meta->mean, 4) || take(br, &meta->std, 4) || take(br, &epochs, 4) ||
        take(br, &optimizer, 4) || take(br, step, 8) || take(br, n_params, 8))
        return set_error(err, errlen, "%s: damaged model header", path);
    if (!(meta->std > 0) || !isfinite(meta->mean) || uh == 0 || uw == 0 || uh > 65536 ||
        uw > 65536 || epochs > 1000000000 || optimizer > OPT_SGD || *step < 0)
        return set_error(err, errlen, "%s: damaged model header", path);
    meta->optimizer = (nn_optimizer)optimizer;
    meta->k = (int)k;
    meta->epochs = (int)epochs;
    *h = (int)uh;
    *w = (int)uw;
    return 0;
}

int nn_load(const char *path, int h, int w, int batch_cap, network **out, nn_model_meta *meta,
            char *err, size_t errlen) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, errlen) != 0) return -1;
    byte_reader br = {buf, len >= 8 ? len - 8 : 0, 0};
    uint64_t stored;
    if (len < 8 || (memcpy(&stored, buf + len - 8, 8), stored != fnv1a(buf, len - 8))) {
        int rc = len >= 8 && memcmp(buf, model_magic, 8) != 0
                     ? set_error(err, errlen, "%s: not a colorize model file", path)
                     : set_error(err, errlen, "%s: damaged or truncated model (checksum mismatch)", path);
        free(buf);
        return rc;
    }
    char spec[NN_SPEC_MAX];
    int th = 0, tw = 0;
    int64_t step = 0;
    uint64_t n_params = 0;
    network *net = NULL;
    int rc = model_read_header(&br, path, &th, &tw, spec, meta, &step, &n_params, err, errlen);
    if (rc == 0 && h == 0) h = th, w = tw;
    /* A dense layer's weights fix the image size. */
    if (rc == 0 && strstr(spec, "dense:") && (h != th || w != tw))
        rc = set_error(err, errlen,
                       "%s: this network has a dense layer and accepts %dx%d images only, not %dx%d",
                       path, tw, th, w, h);
    if (rc == 0) rc = nn_create(spec, h, w, meta->k, batch_cap, &net, err, errlen);
    if (rc == 0 && (n_params != net->n_params || br.len - br.pos != 3 * n_params * sizeof(float)))
        rc = set_error(err, errlen, "%s: damaged model (parameter count does not match the architecture)", path);
    if (rc == 0) {
        take(&br, net->params, n_params * sizeof(float));
        take(&br, net->opt_m, n_params * sizeof(float));
        take(&br, net->opt_v, n_params * sizeof(float));
        net->step = step;
        *out = net;
    } else {
        nn_free(net);
    }
    free(buf);
    return rc;
}
