/* The network as a graph: the spec parser, the planner (fusion, gradient
 * order, parameter table, buffers) and the forward/backward drivers that
 * walk the layers through their descriptors (nn_layer.h). The built-in
 * architectures are in nn_builtins.c, training in nn_train.c, the model
 * file in nn_model.c.
 *
 * The planner makes every decision about how layers share work, once, and
 * records it in each nn_layer (run, relu_on_write, grads_per_image, reads),
 * so that no layer ever looks at its neighbours. */
#include "nn.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_layer.h"
#include "util.h"

/* ==== Spec parsing: whitespace-separated tokens KIND[:ARG][@LABEL] ==== */

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

/* The tensor a name refers to among the first n_layers layers: "input",
 * "prev" (the last one's output) or a label; -1 if none. */
static int find_label(const network *net, const char *name, int n_layers) {
    if (strcmp(name, "input") == 0) return 0;
    if (strcmp(name, "prev") == 0) return n_layers;
    for (int i = 0; i < n_layers; i++)
        if (strcmp(net->layers[i].label, name) == 0) return net->layers[i].output;
    return -1;
}

/* L's inputs from "a,b,c" (tensor labels); layer i is being parsed. */
static int parse_tensors(network *net, nn_layer *L, char *arg, int i, char *err, size_t errlen) {
    const char *kind = L->type->name;
    if (!arg) return set_error(err, errlen, "%s needs inputs, e.g. %s:input,c1,prev", kind, kind);
    L->n_inputs = 0;
    char *save = NULL;
    for (char *name = strtok_r(arg, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (L->n_inputs == NN_MAX_INPUTS)
            return set_error(err, errlen, "%s joins at most %d tensors", kind, NN_MAX_INPUTS);
        int t = find_label(net, name, i);
        if (t < 0) return set_error(err, errlen, "%s: no tensor labelled '%s'", kind, name);
        L->inputs[L->n_inputs++] = t;
    }
    return 0;
}

/* The argument after "kind:", as the kind's descriptor says to read it. */
static int parse_arg(network *net, nn_layer *L, char *arg, int i, char *err, size_t errlen) {
    const char *kind = L->type->name;
    switch (L->type->arg) {
    case ARG_NONE:
        if (arg) return set_error(err, errlen, "%s takes no argument (':%s')", kind, arg);
        return 0;
    case ARG_UNITS:
        if (!arg || parse_count(arg, net->k, &L->units) != 0)
            return set_error(err, errlen, "%s needs a positive size, e.g. %s:32", kind, kind);
        return 0;
    case ARG_STRIDE:
        L->stride = !arg ? 2 : !strcmp(arg, "1") ? 1 : !strcmp(arg, "2") ? 2 : 0;
        if (!L->stride)
            return set_error(err, errlen, "%s takes stride 1 or 2, not '%s'", kind, arg);
        return 0;
    case ARG_TENSORS: return parse_tensors(net, L, arg, i, err, errlen);
    }
    return set_error(err, errlen, "%s: unknown kind of argument", kind);
}

/* Layer i from one token: kind, label, argument, inputs and output shape. */
static int parse_layer(network *net, int i, char *tok, char *err, size_t errlen) {
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
    L->type = layer_type_named(tok);
    if (!L->type) return set_error(err, errlen, "unknown layer '%s'", tok);
    L->output = i + 1;
    L->n_inputs = 1;
    L->inputs[0] = i;
    if (parse_arg(net, L, arg, i, err, errlen) != 0) return -1;
    nn_shape in[NN_MAX_INPUTS];
    for (int j = 0; j < L->n_inputs; j++)
        in[j] = net->shapes[L->inputs[j]];
    layer_context ctx = {net->shapes[0].h, net->shapes[0].w, net->k};
    return L->type->out_shape(L, in, &ctx, &net->shapes[i + 1], err, errlen);
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
        if (i > 0 && net->layers[i - 1].type->is_loss)
            return set_error(err, errlen, "%s must be the last layer",
                             net->layers[i - 1].type->name);
        if (parse_layer(net, i, tok, err, errlen) != 0) return -1;
    }
    net->n_layers = i;
    if (i == 0 || !net->layers[i - 1].type->is_loss)
        return set_error(err, errlen, "the last layer must be softmax");
    return 0;
}

/* ==== The plan ==== */

/* Each tensor's gradient is overwritten by its last consumer (the first to
 * run backward) and added to by the others: overwrite[i][j] for input j of
 * layer i. A tensor nobody reads is a mistake in the spec. */
static int plan_gradient_order(const network *net, int consumers[], int overwrite[][NN_MAX_INPUTS],
                               char *err, size_t errlen) {
    int last_consumer[NN_MAX_LAYERS + 1];
    for (int t = 0; t <= net->n_layers; t++)
        last_consumer[t] = -1, consumers[t] = 0;
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++) {
            last_consumer[net->layers[i].inputs[j]] = i;
            consumers[net->layers[i].inputs[j]]++;
        }
    for (int t = 1; t < net->n_layers; t++)
        if (last_consumer[t] < 0)
            return set_error(err, errlen, "the output of layer %d is never used", t);
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++) {
            int t = net->layers[i].inputs[j];
            /* Within one concat a tensor listed twice: only its first slot overwrites. */
            int first_in_layer = 1;
            for (int q = 0; q < j; q++)
                first_in_layer &= net->layers[i].inputs[q] != t;
            overwrite[i][j] = last_consumer[t] == i && first_in_layer;
        }
    return 0;
}

/* The layer that reads tensor t, when exactly one input of one layer does. */
static const nn_layer *sole_reader(const network *net, const int consumers[], int t) {
    if (consumers[t] != 1) return NULL;
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_inputs; j++)
            if (net->layers[i].inputs[j] == t) return &net->layers[i];
    return NULL;
}

/* Which layers' work is done by a neighbour (see layer_fusion):
 * - a concatenation read only by the per-pixel layer after it is not
 *   copied: that layer multiplies each piece by its rows of the weights;
 * - a ReLU that is the only reader of the output of a layer that can apply
 *   it works in place, applied by that layer as it writes each image;
 * - an upsampling read only by a per-pixel layer (directly or through such
 *   a concatenation), whose input nobody else reads, is not filled either:
 *   a 1x1 layer commutes with nearest-neighbour upsampling, so the reader
 *   multiplies the small tensor (a quarter of the work) and spreads the
 *   product over each 2x2 block. */
static void plan_fusion(network *net, const int consumers[], int reads_inputs_of[]) {
    for (int i = 0; i < net->n_layers; i++)
        reads_inputs_of[i] = i;
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer *L = &net->layers[i];
        nn_layer *next = i + 1 < net->n_layers ? &net->layers[i + 1] : NULL;
        nn_layer *before = i > 0 ? &net->layers[i - 1] : NULL;
        if (L->type->fusion == FUSE_JOIN && next && next->type->reads_pieces &&
            consumers[L->output] == 1 && next->inputs[0] == L->output) {
            L->run = LAYER_IN_CONSUMER;
            reads_inputs_of[i + 1] = i;
        }
        if (L->type->fusion == FUSE_RELU && before && before->type->applies_relu &&
            L->inputs[0] == i && consumers[i] == 1) {
            L->run = LAYER_IN_PRODUCER;
            before->relu_on_write = 1;
        }
    }
    for (int u = 0; u < net->n_layers; u++) {
        nn_layer *U = &net->layers[u];
        const nn_layer *reader = sole_reader(net, consumers, U->output);
        if (U->type->fusion != FUSE_UPSAMPLE || !reader || consumers[U->inputs[0]] != 1) continue;
        int joined = reader->type->fusion == FUSE_JOIN && reader->run == LAYER_IN_CONSUMER;
        if (joined || (reader->type->reads_pieces && reader->inputs[0] == U->output))
            U->run = LAYER_IN_CONSUMER;
    }
}

/* What each layer reads once the fusion is done: the inputs of layer
 * reads_inputs_of[i] (its own, or those of the concatenation it does in
 * place); and an upsampling done in place is read as its input, at half
 * size. The gradient order is the inputs' own. */
static void plan_reads(network *net, const int reads_inputs_of[], int overwrite[][NN_MAX_INPUTS]) {
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer *L = &net->layers[i];
        int src = reads_inputs_of[i];
        const nn_layer *S = &net->layers[src];
        for (int j = 0, c0 = 0; j < S->n_inputs; j++) {
            int t = S->inputs[j];
            const nn_layer *up = t > 0 ? &net->layers[t - 1] : NULL;
            if (!(up && L->type->reads_pieces && up->run == LAYER_IN_CONSUMER &&
                  up->type->fusion == FUSE_UPSAMPLE))
                up = NULL;
            layer_read *r = &L->reads[j];
            r->tensor = up ? up->inputs[0] : t;
            r->half_size = up != NULL;
            r->channel0 = c0;
            r->overwrite = up ? overwrite[t - 1][0] : overwrite[src][j];
            c0 += net->shapes[t].c;
        }
        L->n_reads = S->n_inputs;
    }
}

/* Parameter offsets and counts, and the way each layer sums its weight
 * gradients: image by image, each image's share written by the thread that
 * holds that image's tensors in its cache, then added over the images in
 * order; or with threads splitting the gradient's outputs, each summing the
 * whole batch. Image by image when an image's share is no larger than the
 * image's output, so that the extra traffic is small. Either order is
 * fixed: the thread count never changes a bit. */
static int plan_parameters(network *net, char *err, size_t errlen) {
    size_t off = 0;
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer *L = &net->layers[i];
        size_t fan_in = L->type->fan_in(L, &net->shapes[L->inputs[0]]);
        /* A count that does not fit is no network anyone can hold. */
        if (L->units && fan_in > NN_MAX_PARAMS / (size_t)L->units)
            return set_error(err, errlen, "layer %d (%s) has more than 2^40 weights", i + 1,
                             L->type->name);
        L->n_weights = fan_in * L->units;
        L->n_bias = fan_in ? (size_t)L->units : 0;
        L->w_offset = off;
        L->b_offset = off + L->n_weights;
        off += L->n_weights + L->n_bias;
        L->grads_per_image = L->type->grads_per_image_ok &&
                             L->n_weights + L->n_bias <= nn_shape_size(net->shapes[L->output]);
        if (off > NN_MAX_PARAMS) return set_error(err, errlen, "more than 2^40 parameters");
    }
    net->n_params = off;
    return 0;
}

/* Tensor t shares its input's buffers (an in-place ReLU's output). */
static int shares_buffers(const network *net, int t) {
    return t > 0 && net->layers[t - 1].run == LAYER_IN_PRODUCER;
}

/* Tensor t is never filled (the output of a layer done by its reader): no buffers. */
static int never_filled(const network *net, int t) {
    return t > 0 && net->layers[t - 1].run == LAYER_IN_CONSUMER;
}

static size_t grad_parts_floats(const nn_layer *L, int B) {
    return L->grads_per_image ? (size_t)B * (L->n_weights + L->n_bias) : 0;
}

/* Layer L's own working memory: a forward-only network holds the part that
 * forward uses. */
static size_t own_work_floats(const network *net, const nn_layer *L) {
    const layer_type *kind = L->type;
    if (net->forward_only && kind->forward_work_floats)
        return kind->forward_work_floats(L, net->shapes, net->batch_cap);
    return kind->work_floats(L, net->shapes, net->batch_cap);
}

/* The floats of activations (and their gradients, when training) and of
 * working memory that the network's buffers hold: for training, every
 * tensor its activations and gradient, but the gray input no gradient, and
 * each layer its working memory and gradient shares; for forward passes
 * only, the activations and the forward working memory. */
static void buffer_floats(const network *net, size_t *acts, size_t *work) {
    int B = net->batch_cap, grads = !net->forward_only;
    *acts = *work = 0;
    for (int t = 0; t <= net->n_layers; t++)
        if (!shares_buffers(net, t) && !never_filled(net, t))
            *acts += (t && grads ? 2 : 1) * (size_t)B * nn_shape_size(net->shapes[t]);
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        *work += (grads ? grad_parts_floats(L, B) : 0) + own_work_floats(net, L);
    }
}

/* params: shared weights (forward-only networks), or NULL to allocate them. */
static int allocate_buffers(network *net, const float *params, char *err, size_t errlen) {
    int B = net->batch_cap, grads = !net->forward_only;
    size_t acts, work, n = net->n_params;
    buffer_floats(net, &acts, &work);
    /* read only: a forward-only network has no optimiser to write them */
    net->shares_params = params != NULL;
    net->params = params ? (float *)params : calloc(n, sizeof(float));
    if (grads) {
        net->grads = calloc(n, sizeof(float));
        net->opt_m = calloc(n, sizeof(float));
        net->opt_v = calloc(n, sizeof(float));
        net->image_loss = calloc((size_t)B, sizeof(double));
        net->batch_targets = malloc((size_t)B * net->shapes[0].h * net->shapes[0].w);
    }
    /* calloc: the borders of the padded copies must start, and stay, zero. */
    net->activations = calloc(acts, sizeof(float));
    net->layer_work = calloc(work ? work : 1, sizeof(float));
    if (!net->params || !net->activations || !net->layer_work ||
        (grads &&
         (!net->batch_targets || !net->grads || !net->opt_m || !net->opt_v || !net->image_loss)))
        return set_error(err, errlen, "out of memory for the network's buffers");
    float *p = net->activations;
    for (int t = 0; t <= net->n_layers; t++) {
        size_t sz = (size_t)B * nn_shape_size(net->shapes[t]);
        if (shares_buffers(net, t)) {
            net->act[t] = net->act[t - 1];
            net->grad[t] = net->grad[t - 1];
            continue;
        }
        if (never_filled(net, t)) continue; /* act[t] and grad[t] stay NULL */
        net->act[t] = p, p += sz;
        if (t && grads) net->grad[t] = p, p += sz; /* grad[0] stays NULL */
    }
    float *q = net->layer_work;
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        size_t parts = grads ? grad_parts_floats(L, B) : 0, own = own_work_floats(net, L);
        if (parts) net->grad_parts[i] = q, q += parts;
        if (own) net->work[i] = q, q += own;
    }
    return 0;
}

/* Parses and plans; no buffers. */
static int plan_network(network *net, const char *spec, int h, int w, char *err, size_t errlen) {
    int consumers[NN_MAX_LAYERS + 1], overwrite[NN_MAX_LAYERS][NN_MAX_INPUTS];
    int reads_inputs_of[NN_MAX_LAYERS];
    if (parse_spec(net, spec, h, w, err, errlen) != 0 ||
        plan_gradient_order(net, consumers, overwrite, err, errlen) != 0)
        return -1;
    plan_fusion(net, consumers, reads_inputs_of);
    plan_reads(net, reads_inputs_of, overwrite);
    return plan_parameters(net, err, errlen);
}

static int create(const char *spec_or_name, int h, int w, int k, int batch_cap, int forward_only,
                  const float *params, network **out, char *err, size_t errlen) {
    *out = NULL;
    if (h < 1 || w < 1 || k < 2 || k > NN_MAX_CLASSES || batch_cap < 1)
        return set_error(err, errlen, "bad network size %dx%d, k %d, batch %d", h, w, k, batch_cap);
    const char *spec = nn_builtin_spec(spec_or_name);
    if (!spec) spec = spec_or_name;
    network *net = calloc(1, sizeof *net);
    if (!net) return set_error(err, errlen, "out of memory");
    snprintf(net->spec, sizeof net->spec, "%s", spec);
    net->k = k;
    net->batch_cap = batch_cap;
    net->forward_only = forward_only;
    char why[256];
    if (plan_network(net, spec, h, w, why, sizeof why) != 0) {
        nn_free(net);
        return set_error(err, errlen, "architecture '%s': %s", spec_or_name, why);
    }
    if (allocate_buffers(net, params, err, errlen) != 0) {
        nn_free(net);
        return -1;
    }
    *out = net;
    return 0;
}

int nn_create(const char *spec_or_name, int h, int w, int k, int batch_cap, network **out,
              char *err, size_t errlen) {
    return create(spec_or_name, h, w, k, batch_cap, 0, NULL, out, err, errlen);
}

int nn_create_forward(const char *spec_or_name, int h, int w, int k, const float *params,
                      network **out, char *err, size_t errlen) {
    return create(spec_or_name, h, w, k, 1, 1, params, out, err, errlen);
}

/* The plan of a spec for (h, w) inputs, without buffers; NULL, with the
 * reason in err when given, if it does not parse. */
static network *plan_only(const char *spec_or_name, int h, int w, int k, char *err, size_t errlen) {
    const char *spec = nn_builtin_spec(spec_or_name);
    network *net = calloc(1, sizeof *net);
    if (!net) {
        set_error(err, errlen, "out of memory");
        return NULL;
    }
    net->k = k;
    if (plan_network(net, spec ? spec : spec_or_name, h, w, err, errlen) == 0) return net;
    free(net);
    return NULL;
}

int nn_count_params(const char *spec_or_name, int h, int w, int k, size_t *n_params, char *err,
                    size_t errlen) {
    char why[256];
    network *net = plan_only(spec_or_name, h, w, k, why, sizeof why);
    if (!net) return set_error(err, errlen, "architecture '%s': %s", spec_or_name, why);
    *n_params = net->n_params;
    free(net);
    return 0;
}

size_t nn_forward_bytes(const char *spec_or_name, int h, int w, int k) {
    network *net = plan_only(spec_or_name, h, w, k, NULL, 0);
    if (!net) return 0;
    net->batch_cap = 1;
    net->forward_only = 1;
    size_t acts, work;
    buffer_floats(net, &acts, &work);
    free(net);
    return (acts + work) * sizeof(float);
}

int nn_fixes_input_size(const char *spec_or_name, int h, int w, int k) {
    network *net = plan_only(spec_or_name, h, w, k, NULL, 0);
    int fixed = 0;
    for (int i = 0; net && i < net->n_layers; i++)
        fixed |= net->layers[i].type->fixes_input_size;
    free(net);
    return fixed;
}

int nn_side_multiple(const char *spec_or_name, int h, int w, int k) {
    network *net = plan_only(spec_or_name, h, w, k, NULL, 0);
    int multiple = 1;
    for (int i = 0; net && i < net->n_layers; i++)
        if (net->layers[i].stride > 1) multiple *= net->layers[i].stride;
    free(net);
    return multiple;
}

/* Walks the graph with, for every tensor, its resolution (level: a pixel of
 * it spans 2^level input pixels a side; upsampling makes it negative) and
 * how many of its pixels next to a window's inner edge can differ from the
 * whole picture's (spoilt): the window's zero padding and clamped pooling
 * stand where the picture has real pixels. A layer's spoilt pixels are its
 * inputs' and its halo, then halved (rounded up) by a stride-2 pool or
 * doubled by an upsampling. A stride-2 pool at level l needs windows that
 * start at multiples of 2^(l+1) input pixels. */
int nn_tile_geometry(const network *net, int *margin, int *align, char *err, size_t errlen) {
    int level[NN_MAX_LAYERS + 1], spoilt[NN_MAX_LAYERS + 1], align_level = 0;
    level[0] = spoilt[0] = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        layer_reach r;
        L->type->reach(L, &r);
        if (r.whole)
            return set_error(err, errlen, "its %s layer reads the whole picture at once",
                             L->type->name);
        if (r.shrink < 1 || r.shrink > 2 || r.grow < 1 || r.grow > 2)
            return set_error(err, errlen, "its %s layer scales by other than 2", L->type->name);
        int lv = level[L->inputs[0]], e = 0;
        for (int j = 0; j < L->n_inputs; j++) {
            if (level[L->inputs[j]] != lv)
                return set_error(err, errlen, "its %s layer joins tensors of different scales",
                                 L->type->name);
            if (spoilt[L->inputs[j]] > e) e = spoilt[L->inputs[j]];
        }
        e += r.halo;
        if (r.shrink == 2) {
            if (lv + 1 > align_level) align_level = lv + 1;
            e = (e + 1) / 2, lv++;
        }
        if (r.grow == 2) e *= 2, lv--;
        level[L->output] = lv;
        spoilt[L->output] = e;
    }
    if (level[net->n_layers] != 0)
        return set_error(err, errlen, "its output is not at the input's resolution");
    *align = 1 << align_level;
    *margin = (spoilt[net->n_layers] + *align - 1) / *align * *align;
    return 0;
}

void nn_free(network *net) {
    if (!net) return;
    if (!net->shares_params) free(net->params);
    free(net->grads);
    free(net->opt_m);
    free(net->opt_v);
    free(net->activations);
    free(net->layer_work);
    free(net->image_loss);
    free(net->batch_targets);
    free(net);
}

/* ==== What a built network is ==== */

const char *nn_spec(const network *net) {
    return net->spec;
}

int nn_classes(const network *net) {
    return net->k;
}

int nn_layer_count(const network *net) {
    return net->n_layers;
}

nn_shape nn_input_shape(const network *net) {
    return net->shapes[0];
}

nn_shape nn_output_shape(const network *net) {
    return net->shapes[net->n_layers];
}

int nn_batch_capacity(const network *net) {
    return net->batch_cap;
}

size_t nn_param_count(const network *net) {
    return net->n_params;
}

const float *nn_params(const network *net) {
    return net->params;
}

long nn_steps(const network *net) {
    return net->step;
}

float *nn_input(network *net) {
    return net->act[0];
}

const float *nn_output(const network *net) {
    return net->act[net->n_layers];
}

/* The optimiser state lives with the buffers nn_create allocates; training
 * (nn_train.c) steps it, and nn_init_weights starts it afresh. */
void nn_reset_optimiser(network *net) {
    memset(net->opt_m, 0, net->n_params * sizeof(float));
    memset(net->opt_v, 0, net->n_params * sizeof(float));
    net->step = 0;
}

void nn_init_weights(network *net, uint64_t seed) {
    rng_state rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < net->n_layers; i++) {
        const nn_layer *L = &net->layers[i];
        size_t fan_in = L->n_weights ? L->type->fan_in(L, &net->shapes[L->inputs[0]]) : 1;
        float std = sqrtf(2.0f / (float)fan_in);
        for (size_t j = 0; j < L->n_weights; j++)
            net->params[L->w_offset + j] = std * rng_normal(&rng);
        memset(net->params + L->b_offset, 0, L->n_bias * sizeof(float));
    }
    nn_reset_optimiser(net);
}

void nn_layer_describe(const network *net, int i, nn_layer_info *info) {
    const nn_layer *L = &net->layers[i];
    info->in = net->shapes[L->inputs[0]];
    info->out = net->shapes[L->output];
    info->params = L->n_weights + L->n_bias;
    info->flops = L->type->flops(L, net->shapes);
    L->type->describe(L, net->shapes, net->k, info->name, sizeof info->name);
    size_t n = strlen(info->name);
    if (L->run == LAYER_IN_CONSUMER) /* done by the per-pixel layer that reads it */
        n += snprintf(info->name + n, sizeof info->name - n, ", fused");
    if (L->label[0] && n < sizeof info->name)
        snprintf(info->name + n, sizeof info->name - n, " @%s", L->label);
}

double nn_forward_flops(const network *net) {
    double total = 0;
    for (int i = 0; i < net->n_layers; i++)
        total += net->layers[i].type->flops(&net->layers[i], net->shapes);
    return total;
}

/* ==== Forward and backward ==== */

/* Layer i's operands for a batch of B images. */
static layer_args args_of(network *net, int i, int B, const uint8_t *targets) {
    const nn_layer *L = &net->layers[i];
    layer_args a;
    memset(&a, 0, sizeof a);
    a.B = B;
    a.batch_cap = net->batch_cap;
    a.n_in = L->n_reads;
    for (int j = 0; j < L->n_reads; j++) {
        const layer_read *r = &L->reads[j];
        a.in[j] = (layer_input){net->shapes[r->tensor],
                                net->act[r->tensor],
                                net->grad[r->tensor], /* NULL for the gray input */
                                r->channel0,
                                r->half_size,
                                r->overwrite};
    }
    a.out_shape = net->shapes[L->output];
    a.y = net->act[L->output];
    a.dy = net->grad[L->output];
    a.w = net->params + L->w_offset;
    a.bias = net->params + L->b_offset;
    a.dw = net->grads ? net->grads + L->w_offset : NULL; /* NULL: forward only */
    a.dbias = net->grads ? net->grads + L->b_offset : NULL;
    a.layer = L;
    a.k = net->k;
    a.grad_parts = net->grad_parts[i];
    a.work = net->work[i];
    a.targets = targets;
    a.class_weights = net->weighted ? net->class_weights : NULL;
    a.image_loss = net->image_loss;
    return a;
}

/* Whether layer i has any gradient to compute: of its parameters, or of an
 * input that needs one (the loss layer always: it computes the loss). */
static int has_gradients(const layer_args *a) {
    if (a->layer->type->is_loss || a->layer->n_weights + a->layer->n_bias > 0) return 1;
    for (int j = 0; j < a->n_in; j++)
        if (a->in[j].dx) return 1;
    return 0;
}

void nn_forward(network *net, const float *x, int B) {
    size_t n = (size_t)B * nn_shape_size(net->shapes[0]);
    if (x != net->act[0]) memcpy(net->act[0], x, n * sizeof(float));
    for (int i = 0; i < net->n_layers; i++) {
        if (net->layers[i].run != LAYER_RUNS) continue;
        layer_args a = args_of(net, i, B, NULL);
        net->layers[i].type->forward(&a);
    }
}

double nn_backward(network *net, const uint8_t *targets, int B) {
    for (int i = net->n_layers - 1; i >= 0; i--) {
        if (net->layers[i].run != LAYER_RUNS) continue;
        layer_args a = args_of(net, i, B, targets);
        if (has_gradients(&a)) net->layers[i].type->backward(&a);
    }
    /* The loss layer wrote each image's loss; summed in image order. */
    nn_shape out = net->shapes[net->n_layers];
    double total = 0;
    for (int b = 0; b < B; b++)
        total += net->image_loss[b];
    return total / ((double)B * out.h * out.w);
}
