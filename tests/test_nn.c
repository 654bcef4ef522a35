/* The network as the planner builds it: every layer's forward against a
 * plain double-precision reference, every gradient against central finite
 * differences of that reference, the loss by hand, the fusions, the
 * built-ins, the network table and bad specs. Training is tested in
 * test_nn_train.c, the model file in test_nn_model.c. This file reads the
 * planner's own fields (nn_layer.h): the reference walks the same layer list
 * tensor by tensor. */
#include <math.h>
#include <omp.h>

#include "nn.h"
#include "nn_layer.h"
#include "simd/simd.h"
#include "tests/testutil.h"
#include "util.h"

/* Says so when a check needs AVX2+FMA and the CPU has not got them. */
static int skip_without_avx2(const char *test) {
    if (simd_avx2_supported()) return 0;
    printf("%s: skipped: this CPU has no AVX2+FMA\n", test);
    fflush(stdout);
    return 1;
}

/* ==== A double-precision reference that walks the same layer list ==== */

typedef struct {
    double *t[NN_MAX_LAYERS + 1]; /* per tensor, B images */
} ref_state;

static size_t numel(nn_shape s) {
    return (size_t)s.h * s.w * s.c;
}

static void ref_conv5(const network *net, const nn_layer *L, const double *p, const double *in,
                      double *out, int B) {
    nn_shape s = net->shapes[L->inputs[0]];
    const double *w = p + L->w_offset, *bias = p + L->b_offset;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < s.h; y++)
            for (int x = 0; x < s.w; x++)
                for (int co = 0; co < L->units; co++) {
                    double sum = bias[co];
                    for (int ky = 0; ky < 5; ky++)
                        for (int kx = 0; kx < 5; kx++) {
                            int yy = y + ky - 2, xx = x + kx - 2;
                            if (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) continue;
                            for (int ci = 0; ci < s.c; ci++)
                                sum += in[b * numel(s) + ((size_t)yy * s.w + xx) * s.c + ci] *
                                       w[((ky * 5 + kx) * s.c + ci) * L->units + co];
                        }
                    out[((size_t)b * s.h * s.w + (size_t)y * s.w + x) * L->units + co] = sum;
                }
}

static void ref_pool(const network *net, const nn_layer *L, const double *in, double *out, int B) {
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
    int stride = L->stride;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < o.h; y++)
            for (int x = 0; x < o.w; x++)
                for (int c = 0; c < o.c; c++) {
                    double m = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            int yy = stride * y + dy, xx = stride * x + dx;
                            if (yy < s.h && xx < s.w)
                                m = fmax(m, in[b * numel(s) + ((size_t)yy * s.w + xx) * s.c + c]);
                        }
                    out[b * numel(o) + ((size_t)y * o.w + x) * o.c + c] = m;
                }
}

static void ref_matmul(const double *in, int rows, int nin, const double *w, const double *bias,
                       int nout, double *out) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nout; j++) {
            double sum = bias[j];
            for (int i = 0; i < nin; i++)
                sum += in[(size_t)r * nin + i] * w[(size_t)i * nout + j];
            out[(size_t)r * nout + j] = sum;
        }
}

/* The kinds the reference knows, by their spec names; a kind it does not
 * know fails every test that uses it. */
enum {
    REF_CONV5,
    REF_RELU,
    REF_MAXPOOL,
    REF_UPSAMPLE,
    REF_CONCAT,
    REF_PIXEL,
    REF_DENSE,
    REF_SOFTMAX
};
static const char *const ref_kinds[] = {"conv5",  "relu",  "maxpool", "upsample",
                                        "concat", "pixel", "dense",   "softmax"};
enum { N_REF_KINDS = sizeof ref_kinds / sizeof ref_kinds[0] };

static int ref_kind(const nn_layer *L) {
    for (int r = 0; r < N_REF_KINDS; r++)
        if (strcmp(L->type->name, ref_kinds[r]) == 0) return r;
    return -1;
}

static void ref_layer(const network *net, int i, const double *p, ref_state *st, int B) {
    const nn_layer *L = &net->layers[i];
    nn_shape s = net->shapes[L->inputs[0]], o = net->shapes[L->output];
    const double *in = st->t[L->inputs[0]];
    double *out = st->t[L->output];
    switch (ref_kind(L)) {
    case REF_CONV5: ref_conv5(net, L, p, in, out, B); break;
    case REF_RELU:
        for (size_t j = 0; j < B * numel(o); j++)
            out[j] = in[j] > 0 ? in[j] : 0;
        break;
    case REF_MAXPOOL: ref_pool(net, L, in, out, B); break;
    case REF_UPSAMPLE:
        for (int b = 0; b < B; b++)
            for (int y = 0; y < o.h; y++)
                for (int x = 0; x < o.w; x++)
                    for (int c = 0; c < o.c; c++)
                        out[b * numel(o) + ((size_t)y * o.w + x) * o.c + c] =
                            in[b * numel(s) + ((size_t)(y / 2) * s.w + x / 2) * s.c + c];
        break;
    case REF_CONCAT:
        for (int b = 0; b < B; b++)
            for (int px = 0; px < o.h * o.w; px++) {
                int c0 = 0;
                for (int j = 0; j < L->n_inputs; j++) {
                    nn_shape sj = net->shapes[L->inputs[j]];
                    for (int c = 0; c < sj.c; c++)
                        out[b * numel(o) + (size_t)px * o.c + c0 + c] =
                            st->t[L->inputs[j]][b * numel(sj) + (size_t)px * sj.c + c];
                    c0 += sj.c;
                }
            }
        break;
    case REF_PIXEL:
        ref_matmul(in, B * s.h * s.w, s.c, p + L->w_offset, p + L->b_offset, L->units, out);
        break;
    case REF_DENSE:
        ref_matmul(in, B, (int)numel(s), p + L->w_offset, p + L->b_offset, L->units, out);
        break;
    case REF_SOFTMAX:
        for (size_t px = 0; px < (size_t)B * o.h * o.w; px++) {
            double m = -INFINITY, sum = 0;
            for (int c = 0; c < o.c; c++)
                m = fmax(m, in[px * o.c + c]);
            for (int c = 0; c < o.c; c++)
                sum += exp(in[px * o.c + c] - m);
            for (int c = 0; c < o.c; c++)
                out[px * o.c + c] = exp(in[px * o.c + c] - m) / sum;
        }
        break;
    default: ck_abort_msg("the reference has no layer '%s'", L->type->name);
    }
}

/* Runs the reference forward; returns the mean cross-entropy against targets. */
static double ref_forward(const network *net, const double *p, const float *x,
                          const uint8_t *targets, int B, ref_state *st) {
    for (size_t j = 0; j < B * numel(net->shapes[0]); j++)
        st->t[0][j] = x[j];
    for (int i = 0; i < net->n_layers; i++)
        ref_layer(net, i, p, st, B);
    nn_shape o = net->shapes[net->n_layers];
    double loss = 0;
    for (size_t px = 0; px < (size_t)B * o.h * o.w; px++)
        loss -= log(st->t[net->n_layers][px * o.c + targets[px]]);
    return loss / ((double)B * o.h * o.w);
}

static void ref_alloc(const network *net, int B, ref_state *st) {
    for (int t = 0; t <= net->n_layers; t++)
        st->t[t] = calloc((size_t)B * numel(net->shapes[t]), sizeof(double));
}

static void ref_free(const network *net, ref_state *st) {
    for (int t = 0; t <= net->n_layers; t++)
        free(st->t[t]);
}

static void random_batch(rng_state *rng, int n, int k, float *x, uint8_t *targets) {
    for (int j = 0; j < n; j++) {
        x[j] = rng_normal(rng);
        targets[j] = (uint8_t)rng_below(rng, (uint64_t)k);
    }
}

/* Small networks that use every kind of layer, at odd sizes; together they
 * take both ways of summing the weight gradients of conv5 and pixel layers. */
static const struct {
    const char *spec;
    int h, w, k, batch;
} gradient_cases[] = {
    {"conv5:3 relu@a maxpool:2 conv5:5 relu upsample concat:input,a,prev pixel:6 relu pixel:k "
     "softmax",
     6, 10, 3, 2},
    {"conv5:2 relu maxpool:1 conv5:3 maxpool:2 dense:7 relu dense:35*k softmax", 7, 5, 4, 3},
    {"conv5:9@a maxpool:1 concat:a,prev,a,input conv5:2 relu pixel:3 pixel:k softmax", 5, 3, 2, 2},
    /* a concatenation read in place by a pixel layer, one tensor in it twice */
    {"conv5:3@a relu concat:a,input,a,prev pixel:4 relu pixel:k softmax", 4, 6, 3, 2},
    /* images so small that every layer splits its weight gradient by outputs
     * instead of summing image by image (grads_per_image) */
    {"conv5:6 pixel:5 relu pixel:k softmax", 2, 2, 3, 3},
    /* an upsampling read by a pixel layer directly (fused), and one read
     * twice (filled as usual) */
    {"conv5:2 relu maxpool:2 conv5:3 upsample pixel:k softmax", 6, 4, 3, 2},
    {"conv5:3 maxpool:2 upsample@u conv5:2 concat:u,prev pixel:k softmax", 4, 6, 2, 2},
    /* fused upsamplings: of the gray input itself; at an odd small size
     * (3x5) inside a concatenation; in a pixel layer that splits its
     * gradient by outputs */
    {"upsample pixel:4 relu maxpool:2 pixel:k softmax", 3, 5, 3, 2},
    {"conv5:3@a maxpool:2 upsample concat:a,prev,input pixel:4 relu pixel:k softmax", 6, 10, 3, 2},
    {"conv5:6 maxpool:2 upsample pixel:3 relu pixel:k softmax", 2, 2, 2, 3},
    /* a layer without parameters on the gray input: nothing to do in backward */
    {"maxpool:1 conv5:3 relu pixel:k softmax", 5, 3, 3, 2},
};

#define N_CASES (int)(sizeof gradient_cases / sizeof gradient_cases[0])

/* Case c's network with buffers for batch images; weights zero. */
static network *create_case(int c, int batch) {
    network *net;
    char err[256];
    ck_assert_msg(nn_create(gradient_cases[c].spec, gradient_cases[c].h, gradient_cases[c].w,
                            gradient_cases[c].k, batch, &net, err, sizeof err) == 0,
                  "case %d: %s", c, err);
    return net;
}

/* Case c's network with random weights and non-zero biases, and a random batch. */
static network *build_case(int c, uint64_t seed, float **x, uint8_t **tg) {
    int B = gradient_cases[c].batch, k = gradient_cases[c].k;
    network *net = create_case(c, B);
    nn_init_weights(net, seed);
    rng_state rng;
    rng_seed(&rng, seed + 1000);
    for (size_t j = 0; j < net->n_params; j++)
        net->params[j] += 0.1f * rng_normal(&rng);
    size_t n_in = (size_t)B * numel(net->shapes[0]);
    *x = malloc(n_in * sizeof(float));
    *tg = malloc(n_in);
    random_batch(&rng, (int)n_in, k, *x, *tg);
    return net;
}

static double *params_as_double(const network *net) {
    double *p = malloc(net->n_params * sizeof(double));
    for (size_t j = 0; j < net->n_params; j++)
        p[j] = net->params[j];
    return p;
}

/* The two reference tests run once per SIMD path (_i: 0 scalar, 1 AVX2). */
START_TEST(test_forward_matches_reference) {
    simd_path previous = simd_active();
    if (_i == SIMD_AVX2 && skip_without_avx2("test_forward_matches_reference (AVX2 path)")) return;
    ck_assert_int_eq(simd_force((simd_path)_i), 0);
    for (int c = 0; c < N_CASES; c++) {
        float *x;
        uint8_t *tg;
        network *net = build_case(c, 7 + c, &x, &tg);
        int B = gradient_cases[c].batch;
        double *p = params_as_double(net);
        ref_state st;
        ref_alloc(net, B, &st);
        ref_forward(net, p, x, tg, B, &st);
        nn_forward(net, x, B);
        for (int t = 1; t <= net->n_layers; t++) {
            if (!net->act[t]) continue; /* a fused concatenation or upsampling: never filled */
            if (t < net->n_layers && net->layers[t].run == LAYER_IN_PRODUCER)
                continue; /* shared with the in-place ReLU after it, which is checked */
            double worst = 0;
            for (size_t j = 0; j < B * numel(net->shapes[t]); j++)
                worst = fmax(worst, fabs(net->act[t][j] - st.t[t][j]) / (1 + fabs(st.t[t][j])));
            ck_assert_msg(worst < 1e-5, "%s path, case %d tensor %d: largest difference %g",
                          simd_path_name((simd_path)_i), c, t, worst);
        }
        ref_free(net, &st);
        free(p);
        free(x);
        free(tg);
        nn_free(net);
    }
    simd_force(previous);
}
END_TEST

START_TEST(test_backward_matches_finite_differences) {
    simd_path previous = simd_active();
    if (_i == SIMD_AVX2 &&
        skip_without_avx2("test_backward_matches_finite_differences (AVX2 path)"))
        return;
    ck_assert_int_eq(simd_force((simd_path)_i), 0);
    for (int c = 0; c < N_CASES; c++) {
        float *x;
        uint8_t *tg;
        network *net = build_case(c, 11 + c, &x, &tg);
        int B = gradient_cases[c].batch;
        nn_forward(net, x, B);
        double loss = nn_backward(net, tg, B);
        double *p = params_as_double(net);
        ref_state st;
        ref_alloc(net, B, &st);
        double ref_loss = ref_forward(net, p, x, tg, B, &st);
        ck_assert_msg(fabs(loss - ref_loss) < 1e-5 * (1 + ref_loss),
                      "%s path, case %d: loss %g vs %g", simd_path_name((simd_path)_i), c, loss,
                      ref_loss);
        double worst = 0;
        size_t worst_j = 0;
        for (size_t j = 0; j < net->n_params; j++) {
            double keep = p[j], h = 1e-6;
            p[j] = keep + h;
            double up = ref_forward(net, p, x, tg, B, &st);
            p[j] = keep - h;
            double down = ref_forward(net, p, x, tg, B, &st);
            p[j] = keep;
            double fd = (up - down) / (2 * h), diff = fabs(fd - net->grads[j]) / (1e-3 + fabs(fd));
            if (diff > worst) worst = diff, worst_j = j;
        }
        ck_assert_msg(worst < 2e-3, "%s path, case %d: parameter %zu gradient off by %g (relative)",
                      simd_path_name((simd_path)_i), c, worst_j, worst);
        ref_free(net, &st);
        free(p);
        free(x);
        free(tg);
        nn_free(net);
    }
    simd_force(previous);
}
END_TEST

/* The finite-difference cases check both ways of summing a weight gradient
 * (image by image, or split by outputs) for conv5 layers, pixel layers and
 * pixel layers that read a fused upsampling, and upsamplings both fused and
 * filled. */
START_TEST(test_cases_take_every_path) {
    int seen[4][2] = {
        {0}}; /* [conv5, pixel, upsample, fused upsample's reader][image by image, or fused?] */
    for (int c = 0; c < N_CASES; c++) {
        network *net = create_case(c, gradient_cases[c].batch);
        for (int i = 0; i < net->n_layers; i++) {
            const nn_layer *L = &net->layers[i];
            int kind = ref_kind(L), half = 0;
            for (int j = 0; j < L->n_reads; j++)
                half |= L->reads[j].half_size;
            if (kind == REF_CONV5 || kind == REF_PIXEL)
                seen[kind == REF_PIXEL][L->grads_per_image] = 1;
            if (kind == REF_UPSAMPLE) seen[2][L->run == LAYER_IN_CONSUMER] = 1;
            if (kind == REF_PIXEL && half) seen[3][L->grads_per_image] = 1;
        }
        nn_free(net);
    }
    ck_assert_msg(seen[0][0] && seen[0][1], "conv5: split %d, image by image %d", seen[0][0],
                  seen[0][1]);
    ck_assert_msg(seen[1][0] && seen[1][1], "pixel: split %d, image by image %d", seen[1][0],
                  seen[1][1]);
    ck_assert_msg(seen[2][0] && seen[2][1], "upsample: filled %d, fused %d", seen[2][0],
                  seen[2][1]);
    ck_assert_msg(seen[3][0] && seen[3][1],
                  "pixel reading a fused upsampling: split %d, image by image %d", seen[3][0],
                  seen[3][1]);
}
END_TEST

/* Every kind of layer has a whole descriptor, the reference knows it, and
 * some gradient case uses it: a kind added without its test fails here. */
START_TEST(test_every_layer_kind_is_whole_and_tested) {
    int used[64] = {0};
    ck_assert_int_le(n_layer_types, 64);
    for (int c = 0; c < N_CASES; c++) {
        network *net = create_case(c, gradient_cases[c].batch);
        for (int i = 0; i < net->n_layers; i++)
            for (int t = 0; t < n_layer_types; t++)
                used[t] |= net->layers[i].type == layer_types[t];
        nn_free(net);
    }
    for (int t = 0; t < n_layer_types; t++) {
        const layer_type *k = layer_types[t];
        ck_assert_msg(k->name && k->title && k->out_shape && k->fan_in && k->flops &&
                          k->work_floats && k->reach && k->describe && k->forward && k->backward,
                      "layer kind %d (%s) has a missing entry", t, k->name ? k->name : "?");
        ck_assert_msg(layer_type_named(k->name) == k, "two kinds are named '%s'", k->name);
        ck_assert_msg(ref_kind(&(nn_layer){.type = k}) >= 0, "the reference has no '%s'", k->name);
        ck_assert_msg(used[t], "no gradient case uses '%s'", k->name);
    }
}
END_TEST

/* A batch smaller than the buffers (an epoch's last) gives the same
 * activations, loss and gradients, bit for bit, as buffers of its size. */
START_TEST(test_smaller_batch_than_buffers) {
    for (int c = 0; c < N_CASES; c++) {
        float *x;
        uint8_t *tg;
        network *exact = build_case(c, 23 + c, &x, &tg);
        int B = gradient_cases[c].batch;
        network *roomy = create_case(c, B + 3);
        memcpy(roomy->params, exact->params, exact->n_params * sizeof(float));
        /* A full batch first leaves its values all over the roomy working memory. */
        size_t px = (size_t)gradient_cases[c].h * gradient_cases[c].w;
        float *full = malloc((B + 3) * px * sizeof(float));
        uint8_t *full_tg = malloc((B + 3) * px);
        for (size_t j = 0; j < (B + 3) * px; j++)
            full[j] = x[j % (B * px)] + 1, full_tg[j] = tg[j % (B * px)];
        nn_forward(roomy, full, B + 3);
        nn_backward(roomy, full_tg, B + 3);
        free(full);
        free(full_tg);
        /* twice, so that what a call leaves in the working memory is used */
        for (int pass = 0; pass < 2; pass++) {
            nn_forward(exact, x, B);
            nn_forward(roomy, x, B);
            double l1 = nn_backward(exact, tg, B), l2 = nn_backward(roomy, tg, B);
            ck_assert_msg(l1 == l2, "case %d: loss %.9g with buffers for %d, %.9g for %d", c, l1, B,
                          l2, B + 3);
            ck_assert_msg(memcmp(exact->grads, roomy->grads, exact->n_params * sizeof(float)) == 0,
                          "case %d: gradients differ with buffers for %d images", c, B + 3);
            for (int j = 0; j < B * gradient_cases[c].h * gradient_cases[c].w; j++)
                x[j] *= -0.5f;
        }
        free(x);
        free(tg);
        nn_free(exact);
        nn_free(roomy);
    }
}
END_TEST

START_TEST(test_softmax_cross_entropy_by_hand) {
    /* One 1x1 image, k = 3, logits set through the biases of a pixel layer
     * whose weights are zero: logits (0, ln 2, ln 5) give p = (1, 2, 5) / 8. */
    network *net;
    char err[256];
    ck_assert_msg(nn_create("pixel:k softmax", 1, 1, 3, 1, &net, err, sizeof err) == 0, "%s", err);
    memset(net->params, 0, net->n_params * sizeof(float));
    float *bias = net->params + net->layers[0].b_offset;
    bias[1] = logf(2.0f);
    bias[2] = logf(5.0f);
    float x = 0.5f;
    uint8_t target = 1;
    nn_forward(net, &x, 1);
    const float *p = net->act[2];
    ck_assert_float_eq_tol(p[0], 1.0f / 8, 1e-6);
    ck_assert_float_eq_tol(p[1], 2.0f / 8, 1e-6);
    ck_assert_float_eq_tol(p[2], 5.0f / 8, 1e-6);
    double loss = nn_backward(net, &target, 1);
    ck_assert_double_eq_tol(loss, log(4.0), 1e-6);
    /* d loss / d bias = p - onehot. */
    float *db = net->grads + net->layers[0].b_offset;
    ck_assert_float_eq_tol(db[0], 1.0f / 8, 1e-6);
    ck_assert_float_eq_tol(db[1], 2.0f / 8 - 1, 1e-6);
    ck_assert_float_eq_tol(db[2], 5.0f / 8, 1e-6);
    /* and d loss / d w = x (p - onehot). */
    float *dw = net->grads + net->layers[0].w_offset;
    ck_assert_float_eq_tol(dw[1], 0.5f * (2.0f / 8 - 1), 1e-6);
    nn_free(net);
}
END_TEST

START_TEST(test_concat_and_upsample_before_pixel_are_fused) {
    network *net;
    char err[256];
    ck_assert(nn_create("default", 32, 32, 4, 2, &net, err, sizeof err) == 0);
    int fused = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (ref_kind(&net->layers[i]) == REF_CONCAT || ref_kind(&net->layers[i]) == REF_UPSAMPLE) {
            ck_assert(net->layers[i].run == LAYER_IN_CONSUMER);
            ck_assert(net->act[i + 1] == NULL && net->grad[i + 1] == NULL); /* no buffers */
            fused++;
        }
    ck_assert_int_eq(fused, 2);
    nn_free(net);
    /* read by a convolution: copied as usual */
    ck_assert(nn_create("conv5:4@a concat:input,a conv5:4 pixel:k softmax", 8, 8, 4, 2, &net, err,
                        sizeof err) == 0);
    for (int i = 0; i < net->n_layers; i++)
        ck_assert_int_eq(net->layers[i].run, LAYER_RUNS);
    nn_free(net);
    /* in-place ReLUs: after conv1 and conv2 and the first pixel layer; not
     * the one whose input is also read by the concatenation */
    ck_assert(
        nn_create("conv5:4@a relu maxpool:2 conv5:4 relu upsample concat:input,a,prev pixel:4 "
                  "relu pixel:k softmax",
                  8, 8, 4, 2, &net, err, sizeof err) == 0);
    int relus = 0;
    for (int i = 0; i < net->n_layers; i++)
        relus += ref_kind(&net->layers[i]) == REF_RELU && net->layers[i].run == LAYER_IN_PRODUCER;
    ck_assert_int_eq(relus, 2);
    ck_assert(net->act[5] == net->act[4] && net->grad[5] == net->grad[4]); /* conv5:4 relu */
    ck_assert(net->act[2] != net->act[1]); /* its input is read by the concatenation too */
    nn_free(net);
}
END_TEST

START_TEST(test_builtins_keep_the_task_rules) {
    const char *names[] = {"default", "skip", "pixel", "dense"};
    for (int a = 0; a < 4; a++) {
        network *net;
        char err[256];
        ck_assert_msg(nn_create(names[a], 32, 32, 4, 2, &net, err, sizeof err) == 0, "%s", err);
        int conv = 0, pool = 0, mlp = 0;
        for (int i = 0; i < net->n_layers; i++) {
            int kd = ref_kind(&net->layers[i]);
            conv += kd == REF_CONV5;
            pool += kd == REF_MAXPOOL;
            mlp += kd == REF_DENSE || kd == REF_PIXEL;
        }
        ck_assert_msg(conv >= 2 && pool >= 1 && mlp >= 2, "%s breaks the task's rules", names[a]);
        ck_assert_int_eq(ref_kind(&net->layers[net->n_layers - 1]), REF_SOFTMAX);
        nn_shape o = net->shapes[net->n_layers];
        ck_assert(o.h == 32 && o.w == 32 && o.c == 4);
        nn_free(net);
    }
}
END_TEST

/* The network table: the default network's rows, and every built-in's
 * forward FLOPs counted by hand (2 per multiply-add; a pixel layer's
 * upsampled piece at its half size). */
START_TEST(test_network_table) {
    static const struct {
        const char *name;
        size_t params;
        double flops;
    } rows[] = {
        {"conv5x5 16", 416, 2.0 * 25 * 16 * 1024},
        {"relu @c1", 0, 0},
        {"maxpool 2/2", 0, 0},
        {"conv5x5 32", 12832, 2.0 * 25 * 16 * 32 * 256},
        {"relu", 0, 0},
        {"upsample x2, fused", 0, 0},
        {"concat 0+2+6, fused", 0, 0},
        {"pixel 32", 1600, 2.0 * (1 * 32 * 1024 + 16 * 32 * 1024 + 32 * 32 * 256)},
        {"relu", 0, 0},
        {"pixel 4", 132, 2.0 * 32 * 4 * 1024},
        {"softmax 4", 0, 0},
    };
    static const struct {
        const char *arch;
        double flops;
    } totals[] = {
        {"default", 2.0 * (25 * 16 * 1024 + 25 * 16 * 32 * 256 + 17 * 32 * 1024 + 32 * 32 * 256 +
                           32 * 4 * 1024)},
        {"skip", 2.0 * (25 * 32 * 1024 + 25 * 32 * 64 * 256 + 33 * 64 * 1024 + 64 * 64 * 256 +
                        64 * 4 * 1024)},
        {"pixel", 2.0 * (25 * 64 * 1024 + 25 * 64 * 64 * 1024 + 64 * 32 * 1024 + 32 * 4 * 1024)},
        {"dense", 2.0 * (25 * 32 * 1024 + 25 * 32 * 64 * 256 + 4096 * 512 + 512 * 4096)},
        {"chroma", 2.0 * (25 * 32 * 1024 + 25 * 32 * 32 * 256 + 33 * 32 * 1024 + 32 * 32 * 256 +
                          32 * 4 * 1024)},
    };
    network *net;
    char err[256];
    ck_assert_msg(nn_create("default", 32, 32, 4, 1, &net, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(net->n_layers, (int)(sizeof rows / sizeof rows[0]));
    for (int i = 0; i < net->n_layers; i++) {
        nn_layer_info info;
        nn_layer_describe(net, i, &info);
        ck_assert_str_eq(info.name, rows[i].name);
        ck_assert_uint_eq(info.params, rows[i].params);
        ck_assert_msg(info.flops == rows[i].flops, "row %d: %g FLOPs, by hand %g", i + 1,
                      info.flops, rows[i].flops);
    }
    nn_free(net);
    for (size_t a = 0; a < sizeof totals / sizeof totals[0]; a++) {
        ck_assert_msg(nn_create(totals[a].arch, 32, 32, 4, 1, &net, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_msg(nn_forward_flops(net) == totals[a].flops, "%s: %g FLOPs, by hand %g",
                      totals[a].arch, nn_forward_flops(net), totals[a].flops);
        nn_free(net);
    }
}
END_TEST

START_TEST(test_bad_specs_are_rejected) {
    const char *bad[] = {
        "",                                                    /* nothing */
        "conv5:8 relu",                                        /* no softmax */
        "conv5:8 softmax",                                     /* 8 channels, k = 4 */
        "conv5 pixel:k softmax",                               /* conv5 without size */
        "conv5:0 pixel:k softmax",                             /* zero size */
        "conv5:8 frobnicate pixel:k softmax",                  /* unknown layer */
        "maxpool:3 pixel:k softmax",                           /* bad stride */
        "conv5:8 maxpool:2 concat:input,prev pixel:k softmax", /* 16x16 beside 32x32 */
        "conv5:8 concat:nothere,prev pixel:k softmax",         /* unknown label */
        "conv5:8@a conv5:8 concat:a pixel:k softmax",          /* a tensor nobody reads */
        "pixel:k softmax pixel:k softmax",                     /* softmax in the middle */
        "dense:100 softmax",                                   /* wrong size for the output */
        "conv5: pixel:k softmax",                              /* empty size */
        "conv5:8* pixel:k softmax",                            /* dangling product */
        "conv5:99999999999999999999 pixel:k softmax",          /* overflow */
        "conv5:4096*4096*4096 pixel:k softmax",                /* product overflow */
        "maxpool:2x pixel:k softmax",                          /* junk after the stride */
        "relu:5 pixel:k softmax",                              /* an argument where none is taken */
        "conv5:8@a conv5:8@a concat:a,prev pixel:k softmax",   /* label used twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        network *net = (network *)1;
        char err[256] = "";
        ck_assert_msg(nn_create(bad[i], 32, 32, 4, 2, &net, err, sizeof err) != 0, "accepted '%s'",
                      bad[i]);
        ck_assert_ptr_null(net);
        ck_assert_msg(strlen(err) > 0 && strchr(err, '\n') == NULL, "message for '%s': '%s'",
                      bad[i], err);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_forward_matches_reference, SIMD_SCALAR, SIMD_N_PATHS);
    tcase_add_loop_test(tc, test_backward_matches_finite_differences, SIMD_SCALAR, SIMD_N_PATHS);
    tcase_add_test(tc, test_cases_take_every_path);
    tcase_add_test(tc, test_every_layer_kind_is_whole_and_tested);
    tcase_add_test(tc, test_smaller_batch_than_buffers);
    tcase_add_test(tc, test_softmax_cross_entropy_by_hand);
    tcase_add_test(tc, test_concat_and_upsample_before_pixel_are_fused);
    tcase_add_test(tc, test_builtins_keep_the_task_rules);
    tcase_add_test(tc, test_network_table);
    tcase_add_test(tc, test_bad_specs_are_rejected);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
