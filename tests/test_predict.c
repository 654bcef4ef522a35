/* predict in tiles: the tile geometry each network's layers give, every
 * output bit for bit the one the whole picture gives (probabilities and
 * colourings, RGB and Lab, odd sizes, several windows and thread counts),
 * a margin one pixel short that shows, the memory plan, networks for forward
 * passes only, many pictures at once, models without their optimiser
 * state, the model built into the program, and (when COLORIZE_BIG_PREDICT
 * is set) a 12-megapixel picture. */
#include <math.h>
#include <omp.h>

#include "builtin_model.h"
#include "chroma.h"
#include "guided.h"
#include "image.h"
#include "lab.h"
#include "nn.h"
/* the planner's own fields, for the checks that a forward-only network holds no
 * gradient or optimiser buffers and reads the weights it is given in place */
#include "nn_layer.h"
#include "predict.h"
#include "report.h"
#include "simd/simd.h"
#include "tests/testutil.h"
#include "util.h"

/* A spec of no built-in: two levels of pooling (one after a stride-1 pool),
 * two upsamplings back, and the input joined at the end. Its margin, by the
 * rule: 2, 3, 2 (pooled), 4, 2 (pooled again), 4, 8, 16; align 4. */
#define DEEP_SPEC                                                                                  \
    "conv5:6 relu maxpool:1 maxpool:2 conv5:6 relu maxpool:2 conv5:6 relu upsample upsample "      \
    "concat:input,prev pixel:k softmax"

/* A spec whose spoilt width, 3 (conv5 2, pooled to 1, upsampled 2, the
 * stride-1 pool's 1), is not a multiple of its alignment, 2: its margin
 * must be rounded up, to 4. */
#define ODD_MARGIN_SPEC "conv5:4 maxpool:2 upsample maxpool:1 pixel:k softmax"

static const char *const kinds[] = {"default", "skip",    "pixel",
                                    "chroma",  DEEP_SPEC, ODD_MARGIN_SPEC};
/* short names for files and messages */
static const char *const kind_names[] = {"default", "skip", "pixel",
                                         "chroma",  "deep", "odd-margin"};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

static char root[64];

/* An untrained model of a kind: random weights, distinct colours. */
static void model_path(const char *kind, colour_space space, char *path, size_t len) {
    int i = 0;
    while (i < N_KINDS && strcmp(kinds[i], kind) != 0)
        i++;
    snprintf(path, len, "%s/%s-%d.bin", root, i < N_KINDS ? kind_names[i] : kind, (int)space);
}

static void write_model(const char *kind, colour_space space) {
    int k = space == SPACE_LAB ? 16 : 4;
    network *net;
    char e[256], path[256];
    ck_assert_msg(nn_create(kind, 32, 32, k, 1, &net, e, sizeof e) == 0, "%s", e);
    nn_init_weights(net, 7 + (uint64_t)space);
    nn_model_meta meta = {.k = k, .space = space, .mean = 0.45f, .std = 0.22f};
    for (int c = 0; c < k; c++) {
        if (space == SPACE_LAB) {
            double angle = 6.283185307 * c / k, radius = 15.0 + 5 * (c % 4);
            meta.centres[c][0] = (float)(radius * cos(angle));
            meta.centres[c][1] = (float)(radius * sin(angle));
        } else {
            for (int d = 0; d < 3; d++)
                meta.centres[c][d] = (float)((c * 67 + d * 101) % 256) + 0.5f;
        }
    }
    if (space == SPACE_LAB) meta.rebalance = 0.5f, meta.temperature = 0.38f;
    model_path(kind, space, path, sizeof path);
    ck_assert_msg(nn_save(net, &meta, path, e, sizeof e) == 0, "%s", e);
    nn_free(net);
}

/* In the test's own process: OpenMP's threads do not survive Check's fork. */
static void setup(void) {
    simd_flush_subnormals(); /* as the program does */
    tu_mkdtemp(root, sizeof root);
    for (int i = 0; i < N_KINDS; i++) {
        write_model(kinds[i], SPACE_RGB);
        write_model(kinds[i], SPACE_LAB);
    }
    write_model("dense", SPACE_RGB);
}

static void teardown(void) {
    tu_rmtree(root);
}

/* A w x h picture, gray (1) or colour (3): smooth shapes with noise on them,
 * so that the network's outputs vary from pixel to pixel. */
static image picture(int w, int h, int channels, int seed) {
    image im = {
        .width = w, .height = h, .channels = channels, .pixels = malloc((size_t)w * h * channels)};
    rng_state r;
    rng_seed(&r, (uint64_t)seed);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++) {
                double v = 128 + 70 * sin(0.31 * x + seed + c) * cos(0.23 * y - c) +
                           (double)rng_below(&r, 60) - 30;
                im.pixels[((size_t)y * w + x) * channels + c] = (uint8_t)(v < 0     ? 0
                                                                          : v > 255 ? 255
                                                                                    : v);
            }
    return im;
}

static float *gray_plane(const image *in) {
    size_t n = (size_t)in->width * in->height;
    float *gray = malloc(n * sizeof(float));
    if (in->channels == 3)
        gray_from_rgb(in->pixels, n, gray);
    else
        for (size_t i = 0; i < n; i++)
            gray[i] = in->pixels[i] / 255.0f;
    return gray;
}

/* ==== The whole-picture path, as predict ran before tiles ==== */

/* The whole (h, w) plane, padded by repeating its last row and column to
 * the pooling's multiple, through one network with training buffers
 * (nn_load); (h, w, k) probabilities. */
static float *whole_probabilities(const char *model, const float *gray, int h, int w,
                                  nn_model_meta *meta) {
    char e[256];
    network *net;
    ck_assert_msg(nn_load(model, 0, 0, 1, &net, meta, e, sizeof e) == 0, "%s", e);
    int th = net->shapes[0].h, tw = net->shapes[0].w;
    int m = nn_fixes_input_size(net->spec, th, tw, meta->k)
                ? 1
                : nn_side_multiple(net->spec, th, tw, meta->k);
    nn_free(net);
    int ph = (h + m - 1) / m * m, pw = (w + m - 1) / m * m;
    ck_assert_msg(nn_load(model, ph, pw, 1, &net, meta, e, sizeof e) == 0, "%s", e);
    float *x = malloc((size_t)ph * pw * sizeof(float));
    for (int y = 0; y < ph; y++)
        for (int xx = 0; xx < pw; xx++)
            x[(size_t)y * pw + xx] =
                (gray[(size_t)(y < h ? y : h - 1) * w + (xx < w ? xx : w - 1)] - meta->mean) /
                meta->std;
    nn_forward(net, x, 1);
    float *prob = malloc((size_t)h * w * meta->k * sizeof(float));
    for (int y = 0; y < h; y++)
        memcpy(prob + (size_t)y * w * meta->k, net->act[net->n_layers] + (size_t)y * pw * meta->k,
               (size_t)w * meta->k * sizeof(float));
    free(x);
    nn_free(net);
    return prob;
}

/* The colouring predict gave before tiles: RGB each pixel its class's
 * colour; Lab the chroma predicted on the picture resized to `scale` (the
 * training size when < 0, its own when 0), upsampled, with its lightness. */
static image whole_colouring(const char *model, const image *in, int scale) {
    int h = in->height, w = in->width;
    size_t n = (size_t)h * w;
    float *gray = gray_plane(in);
    image out = {.width = w, .height = h, .channels = 3, .pixels = malloc(3 * n)};
    nn_model_meta meta;
    char e[256];
    network *net;
    ck_assert_msg(nn_load(model, 0, 0, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
    int side = net->shapes[0].h < net->shapes[0].w ? net->shapes[0].h : net->shapes[0].w;
    nn_free(net);
    if (meta.space == SPACE_RGB) {
        float *prob = whole_probabilities(model, gray, h, w, &meta);
        uint8_t *classes = malloc(n);
        for (size_t p = 0; p < n; p++) {
            int best = 0;
            for (int c = 1; c < meta.k; c++)
                best = prob[p * meta.k + c] > prob[p * meta.k + best] ? c : best;
            classes[p] = (uint8_t)best;
        }
        palette_paint(classes, n, meta.centres, out.pixels);
        free(classes);
        free(prob);
        free(gray);
        return out;
    }
    if (scale >= 0) side = scale;
    int sh = h, sw = w;
    if (side > 0) {
        if (h <= w)
            sh = side, sw = (int)lround((double)w * side / h);
        else
            sw = side, sh = (int)lround((double)h * side / w);
    }
    size_t sn = (size_t)sh * sw;
    float *small = gray, *L = malloc(n * sizeof(float));
    if (sh != h || sw != w) {
        small = malloc(sn * sizeof(float));
        resize_area(gray, h, w, small, sh, sw);
    }
    float *prob = whole_probabilities(model, small, sh, sw, &meta);
    float *ab_small = malloc(2 * sn * sizeof(float)), *ab = ab_small;
    chroma_decode(prob, sn, meta.k, (const float(*)[3])meta.centres, meta.temperature, ab_small);
    if (small != gray) {
        ab = malloc(2 * n * sizeof(float));
        resize_bilinear(ab_small, sh, sw, 2, ab, h, w);
    }
    for (size_t p = 0; p < n; p++)
        L[p] = lab_lightness_of_gray(gray[p]);
    chroma_paint(L, ab, n, out.pixels);
    if (ab != ab_small) free(ab);
    if (small != gray) free(small);
    free(ab_small);
    free(prob);
    free(L);
    free(gray);
    return out;
}

/* ==== The geometry ==== */

static void geometry(const char *spec, int k, int *margin, int *align) {
    network *net;
    char e[256];
    ck_assert_msg(nn_create_forward(spec, 32, 32, k, NULL, &net, e, sizeof e) == 0, "%s", e);
    ck_assert_msg(nn_tile_geometry(net, margin, align, e, sizeof e) == 0, "%s: %s", spec, e);
    nn_free(net);
}

START_TEST(test_geometry_follows_the_layers) {
    int margin, align;
    /* conv5 2, pooled to 1, conv5 3 at half size, upsampled 6 */
    const char *halved[] = {"default", "skip", "chroma"};
    for (int i = 0; i < 3; i++) {
        geometry(halved[i], 4, &margin, &align);
        ck_assert_msg(margin == 6 && align == 2, "%s: margin %d, align %d", halved[i], margin,
                      align);
    }
    /* conv5 2, maxpool:1 3, conv5 5, maxpool:1 6; nothing to align */
    geometry("pixel", 4, &margin, &align);
    ck_assert_int_eq(margin, 6);
    ck_assert_int_eq(align, 1);
    geometry(DEEP_SPEC, 4, &margin, &align);
    ck_assert_int_eq(margin, 16);
    ck_assert_int_eq(align, 4);
    /* rounded up to the alignment: 2 then pooled to 1, then 3 (at half size) is 6 */
    geometry("conv5:4 maxpool:2 conv5:4 upsample pixel:k softmax", 4, &margin, &align);
    ck_assert_int_eq(margin, 6);
    geometry("conv5:4 maxpool:2 upsample pixel:k softmax", 4, &margin, &align);
    ck_assert_int_eq(margin, 2);
    /* 3 rounded up to the alignment */
    geometry(ODD_MARGIN_SPEC, 4, &margin, &align);
    ck_assert(margin == 4 && align == 2);
    geometry("pixel:8 relu pixel:k softmax", 4, &margin, &align);
    ck_assert(margin == 0 && align == 1);
    /* a dense layer reads the whole picture: no tiles */
    network *net;
    char e[256];
    ck_assert(nn_create_forward("dense", 32, 32, 4, NULL, &net, e, sizeof e) == 0);
    ck_assert_int_eq(nn_tile_geometry(net, &margin, &align, e, sizeof e), -1);
    ck_assert_msg(strstr(e, "dense"), "%s", e);
    nn_free(net);
}
END_TEST

/* ==== Tiles against the whole picture ==== */

static const int sizes[][2] = {{1, 1}, {3, 2}, {5, 3}, {37, 23}, {50, 29}, {61, 47}};
enum { N_SIZES = sizeof sizes / sizeof sizes[0] };

static predict_model *load(const char *path, const predict_options *opt) {
    predict_model *m;
    char e[256];
    ck_assert_msg(predict_model_load(path, opt, &m, e, sizeof e) == 0, "%s", e);
    return m;
}

/* The first pixel where a and b (h, w, k) differ, as text; "" if none. */
static const char *first_difference(const float *a, const float *b, int h, int w, int k) {
    static char where[128];
    where[0] = 0;
    for (size_t i = 0; i < (size_t)h * w * k; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            snprintf(where, sizeof where, "pixel (%zu, %zu) class %zu: %.9g, not %.9g", i / k % w,
                     i / k / w, i % k, a[i], b[i]);
            break;
        }
    return where;
}

/* Windows from the smallest (which keeps align pixels) up. */
static int window_choice(const predict_tile_plan *plan, int i) {
    int least = 2 * plan->margin + plan->align;
    const int extra[4] = {8, 18, 30, 0};
    return extra[i % 4] ? least + extra[i % 4] : 0;
}

START_TEST(test_tiles_give_the_whole_pictures_probabilities) {
    int checked = 0;
    for (int kind = 0; kind < N_KINDS; kind++)
        for (int space = SPACE_RGB; space <= SPACE_LAB; space++) {
            char path[256];
            model_path(kinds[kind], (colour_space)space, path, sizeof path);
            predict_options opt;
            predict_default_options(&opt);
            if (space == SPACE_LAB) opt.scale = 0; /* the network sees the whole picture */
            predict_model *m = load(path, &opt);
            predict_tile_plan plan;
            predict_plan(m, &opt, &plan);
            ck_assert(plan.tiles);
            for (int s = 0; s < N_SIZES; s++) {
                int w = sizes[s][0], h = sizes[s][1];
                image in = picture(w, h, s % 2 ? 3 : 1, s);
                float *gray = gray_plane(&in);
                nn_model_meta meta;
                float *whole = whole_probabilities(path, gray, h, w, &meta);
                float *tiled = malloc((size_t)h * w * meta.k * sizeof(float));
                for (int run = 0; run < 2; run++) {
                    opt.window = window_choice(&plan, s + 2 * run + kind);
                    opt.threads = 1 + (s + run + kind) % 3;
                    char e[256];
                    memset(tiled, 0xff, (size_t)h * w * meta.k * sizeof(float));
                    ck_assert_msg(predict_probabilities(m, &in, &opt, tiled, e, sizeof e) == 0,
                                  "%s", e);
                    const char *diff = first_difference(tiled, whole, h, w, meta.k);
                    ck_assert_msg(!diff[0], "%s, %s, %dx%d, window %d, %d threads: %s", kinds[kind],
                                  space == SPACE_LAB ? "Lab" : "RGB", w, h, opt.window, opt.threads,
                                  diff);
                    checked++;
                }
                free(tiled);
                free(whole);
                free(gray);
                image_free(&in);
            }
            predict_model_free(m);
        }
    ck_assert_int_eq(checked, N_KINDS * 2 * N_SIZES * 2);
}
END_TEST

START_TEST(test_tiles_give_the_whole_pictures_colouring) {
    /* RGB; Lab at the picture's size, at the training size and at 40, one
     * pass each, upsampled bilinearly as before the guided filter */
    const struct {
        colour_space space;
        int scale;
    } modes[] = {{SPACE_RGB, -1}, {SPACE_LAB, 0}, {SPACE_LAB, 32}, {SPACE_LAB, 40}};
    const int pics[][2] = {{5, 3}, {61, 47}, {47, 90}};
    for (int kind = 0; kind < N_KINDS; kind++)
        for (int i = 0; i < 4; i++) {
            char path[256];
            model_path(kinds[kind], modes[i].space, path, sizeof path);
            predict_options opt;
            predict_default_options(&opt);
            if (modes[i].space == SPACE_LAB) opt.scale = modes[i].scale;
            opt.guide = 0;
            predict_model *m = load(path, &opt);
            predict_tile_plan plan;
            predict_plan(m, &opt, &plan);
            for (int p = 0; p < 3; p++) {
                image in = picture(pics[p][0], pics[p][1], p == 1 ? 3 : 1, 10 + p);
                image want = whole_colouring(path, &in, modes[i].scale), got;
                opt.window = window_choice(&plan, kind + i + p);
                opt.threads = 1 + (kind + i + p) % 3;
                char e[256];
                ck_assert_msg(predict_image(m, &in, &opt, &got, e, sizeof e) == 0, "%s", e);
                ck_assert(got.width == in.width && got.height == in.height && got.channels == 3);
                size_t n = 3 * (size_t)in.width * in.height, at = 0;
                while (at < n && got.pixels[at] == want.pixels[at])
                    at++;
                ck_assert_msg(at == n,
                              "%s, mode %d, %dx%d, window %d, %d threads: byte %zu (pixel %zu) is "
                              "%d, not %d",
                              kinds[kind], i, in.width, in.height, opt.window, opt.threads, at,
                              at / 3, got.pixels[at], want.pixels[at]);
                image_free(&got);
                image_free(&want);
                image_free(&in);
            }
            predict_model_free(m);
        }
}
END_TEST

/* The margin is needed: one pixel less (and, where it stays aligned, one
 * alignment step less) and some output differs from the whole picture's. */
START_TEST(test_a_margin_one_pixel_short_shows) {
    for (int kind = 0; kind < N_KINDS; kind++) {
        char path[256];
        model_path(kinds[kind], SPACE_RGB, path, sizeof path);
        predict_options opt;
        predict_default_options(&opt);
        predict_model *m = load(path, &opt);
        predict_tile_plan plan;
        predict_plan(m, &opt, &plan);
        int w = 61, h = 47;
        image in = picture(w, h, 1, 3);
        float *gray = gray_plane(&in);
        nn_model_meta meta;
        float *whole = whole_probabilities(path, gray, h, w, &meta);
        float *tiled = malloc((size_t)h * w * meta.k * sizeof(float));
        int shorter[2] = {plan.margin - 1, plan.margin - plan.align};
        for (int s = 0; s < 2; s++) {
            opt.margin = shorter[s];
            opt.window = 2 * plan.margin + 4 * plan.align; /* interior tiles on both axes */
            opt.threads = 2;
            char e[256];
            ck_assert_msg(predict_probabilities(m, &in, &opt, tiled, e, sizeof e) == 0, "%s", e);
            ck_assert_msg(first_difference(tiled, whole, h, w, meta.k)[0],
                          "%s: a margin of %d (not %d) gives the whole picture's outputs",
                          kinds[kind], opt.margin, plan.margin);
        }
        /* and the margin as planned, on the same windows, does not */
        opt.margin = -1;
        ck_assert_int_eq(predict_probabilities(m, &in, &opt, tiled, NULL, 0), 0);
        ck_assert_str_eq(first_difference(tiled, whole, h, w, meta.k), "");
        free(tiled);
        free(whole);
        free(gray);
        image_free(&in);
        predict_model_free(m);
    }
}
END_TEST

/* ==== Memory ==== */

START_TEST(test_memory_follows_the_tile) {
    const char *builtins[] = {"default", "skip", "pixel", "chroma"};
    const int ks[] = {4, 16, 64}, threads[] = {1, 2, 4, 16};
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < 3; i++) {
            char path[256];
            snprintf(path, sizeof path, "%s/budget.bin", root);
            network *net;
            char e[256];
            ck_assert(nn_create(builtins[b], 32, 32, ks[i], 1, &net, e, sizeof e) == 0);
            nn_model_meta meta = {.k = ks[i], .mean = 0.5f, .std = 0.25f};
            ck_assert_msg(nn_save(net, &meta, path, e, sizeof e) == 0, "%s", e);
            nn_free(net);
            for (int t = 0; t < 4; t++) {
                predict_options opt;
                predict_default_options(&opt);
                opt.threads = threads[t];
                predict_model *m = load(path, &opt);
                predict_tile_plan p;
                predict_plan(m, &opt, &p);
                /* what the tile networks hold, all together, is the budget */
                ck_assert_msg((size_t)p.workers * p.net_bytes <= PREDICT_NET_BUDGET,
                              "%s, k %d, %d threads: %d networks of %zu bytes", builtins[b], ks[i],
                              threads[t], p.workers, p.net_bytes);
                ck_assert_uint_eq(p.net_bytes,
                                  nn_forward_bytes(builtins[b], p.window, p.window, ks[i]));
                /* windows large enough that the margin costs little */
                ck_assert_int_ge(p.window, 4 * p.margin);
                if (threads[t] <= 2 && ks[i] <= 16) ck_assert_int_eq(p.workers, threads[t]);
                /* a 12-megapixel gray picture in and its colouring out, 48 MB, leave room under
                 * 300 MB */
                ck_assert((size_t)p.workers * p.net_bytes + 48000000 < 200000000);
                predict_model_free(m);
            }
        }
}
END_TEST

/* A network for forward passes only gives the training network's outputs
 * bit for bit, reading its weights in place, in far less memory. */
START_TEST(test_forward_only_networks) {
    const char *builtins[] = {"default", "skip", "pixel", "chroma", "dense"};
    for (int b = 0; b < 5; b++) {
        int h = b == 4 ? 32 : 24, w = b == 4 ? 32 : 40;
        network *train, *fwd;
        char e[256];
        ck_assert(nn_create(builtins[b], h, w, 8, 1, &train, e, sizeof e) == 0);
        nn_init_weights(train, 3);
        ck_assert_msg(nn_create_forward(builtins[b], h, w, 8, train->params, &fwd, e, sizeof e) ==
                          0,
                      "%s", e);
        ck_assert(fwd->params == train->params && fwd->forward_only && fwd->shares_params);
        ck_assert(!fwd->grads && !fwd->opt_m && !fwd->opt_v);
        for (int t = 0; t <= fwd->n_layers; t++)
            ck_assert_ptr_null(fwd->grad[t]);
        float *x = malloc((size_t)h * w * sizeof(float));
        for (int i = 0; i < h * w; i++)
            x[i] = (float)sin(i * 0.37) * 1.5f;
        nn_forward(train, x, 1);
        nn_forward(fwd, x, 1);
        size_t n = (size_t)h * w * 8;
        ck_assert_msg(
            memcmp(train->act[train->n_layers], fwd->act[fwd->n_layers], n * sizeof(float)) == 0,
            "%s: the forward-only network's outputs differ", builtins[b]);
        nn_free(fwd);
        nn_free(train);
        free(x);
    }
    /* the activations only: the input, the pixel layer's output (the ReLU in place), the
     * logits and the probabilities; no gradients */
    ck_assert_uint_eq(nn_forward_bytes("pixel:8 relu pixel:k softmax", 30, 20, 4),
                      (1 + 8 + 4 + 4) * 30 * 20 * sizeof(float));
    /* nn_load_forward reads the weights nn_load reads */
    char path[256], e[256];
    model_path("chroma", SPACE_LAB, path, sizeof path);
    network *a, *f;
    nn_model_meta ma, mf;
    ck_assert(nn_load(path, 0, 0, 1, &a, &ma, e, sizeof e) == 0);
    ck_assert_msg(nn_load_forward(path, &f, &mf, e, sizeof e) == 0, "%s", e);
    ck_assert(f->forward_only && !f->shares_params && !f->opt_m);
    ck_assert_uint_eq(a->n_params, f->n_params);
    ck_assert(memcmp(a->params, f->params, a->n_params * sizeof(float)) == 0);
    ck_assert(ma.k == mf.k && ma.space == mf.space && ma.temperature == mf.temperature);
    nn_free(a);
    nn_free(f);
}
END_TEST

/* Inside the loop over tiles, the layers' own parallel loops run on the
 * thread of their tile: OpenMP's nesting is off. */
START_TEST(test_layers_run_on_their_tiles_thread) {
    int inner[2] = {0, 0}, outer = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        outer = omp_get_num_threads();
        int t = omp_get_thread_num();
#pragma omp parallel
        {
#pragma omp single
            inner[t] = omp_get_num_threads();
        }
    }
    ck_assert_int_eq(outer, 2);
    ck_assert_int_eq(inner[0], 1);
    ck_assert_int_eq(inner[1], 1);
}
END_TEST

/* ==== Models for colouring only, and the built-in one ==== */

/* Colours in with the model m; the caller frees the result. */
static image colour_with(predict_model *m, const image *in) {
    predict_options opt;
    predict_default_options(&opt);
    image out;
    char e[256];
    ck_assert_msg(predict_image(m, in, &opt, &out, e, sizeof e) == 0, "%s", e);
    return out;
}

static int same_pixels(const image *a, const image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * a->channels) == 0;
}

START_TEST(test_weights_only_models) {
    char full[256], weights[256], e[256];
    model_path("chroma", SPACE_LAB, full, sizeof full);
    snprintf(weights, sizeof weights, "%s/weights.bin", root);
    network *net, *back;
    nn_model_meta meta, got;
    ck_assert(nn_load(full, 0, 0, 1, &net, &meta, e, sizeof e) == 0);
    ck_assert_msg(nn_save_weights(net, &meta, weights, e, sizeof e) == 0, "%s", e);
    /* format 5: version 4 without the two optimiser arrays */
    uint8_t *a, *b;
    size_t la, lb;
    ck_assert(read_file(full, &a, &la, e, sizeof e) == 0);
    ck_assert(read_file(weights, &b, &lb, e, sizeof e) == 0);
    ck_assert_uint_eq(lb, la - 2 * net->n_params * sizeof(float));
    ck_assert_int_eq(b[8], 5);
    ck_assert(memcmp(a + 12, b + 12, lb - 8 - 12) == 0); /* the rest as it was, to the weights */
    ck_assert(nn_is_model_file(weights) && nn_is_model_file(full));
    ck_assert(!nn_is_model_file(root) && !nn_is_model_file("/nonexistent"));
    /* it colours as the full file does */
    ck_assert_msg(nn_load_forward(weights, &back, &got, e, sizeof e) == 0, "%s", e);
    ck_assert(memcmp(back->params, net->params, net->n_params * sizeof(float)) == 0);
    ck_assert(got.k == meta.k && got.space == meta.space && got.temperature == meta.temperature &&
              got.mean == meta.mean && got.std == meta.std && got.epochs == meta.epochs);
    nn_free(back);
    predict_options opt;
    predict_default_options(&opt);
    predict_model *mf = load(full, &opt), *mw = load(weights, &opt);
    image in = picture(45, 38, 1, 3), cf = colour_with(mf, &in), cw = colour_with(mw, &in);
    ck_assert(same_pixels(&cf, &cw));
    /* but cannot be trained further */
    ck_assert(nn_load(weights, 0, 0, 1, &back, &got, e, sizeof e) != 0);
    ck_assert_msg(strstr(e, "weights.bin") && strstr(e, "cannot be trained further"), "%s", e);
    /* a cut, or a full file's length claimed for it, is damage */
    ck_assert(nn_load_forward_buffer(b, lb - 12, "cut", &back, &got, e, sizeof e) != 0);
    uint8_t *grown = malloc(la);
    memcpy(grown, b, lb - 8);
    memset(grown + lb - 8, 0, la - lb);
    uint64_t sum = nn_model_checksum(grown, la - 8);
    memcpy(grown + la - 8, &sum, 8);
    ck_assert(nn_load_forward_buffer(grown, la, "grown", &back, &got, e, sizeof e) != 0);
    ck_assert_msg(strstr(e, "parameter count"), "%s", e);
    free(grown);
    image_free(&in), image_free(&cf), image_free(&cw);
    predict_model_free(mf), predict_model_free(mw);
    free(a), free(b);
    nn_free(net);
}
END_TEST

/* The model compiled into the program is models/builtin.bin (tests run in
 * the source folder), byte for byte: a build that embedded a stale or other
 * file fails here. It is a Lab model for colouring only, small enough to
 * ship, and colours a picture as the file does. */
START_TEST(test_the_builtin_model_is_the_committed_file) {
    uint8_t *file;
    size_t len;
    char e[256];
    ck_assert_msg(read_file("models/builtin.bin", &file, &len, e, sizeof e) == 0, "%s", e);
    ck_assert_uint_eq(builtin_model_size, len);
    ck_assert_msg(memcmp(builtin_model, file, len) == 0,
                  "the program's built-in model is not models/builtin.bin: rebuild");
    free(file);
    ck_assert_int_eq(builtin_model[8], 5); /* no optimiser state */
    ck_assert_uint_lt(builtin_model_size, 2u << 20);
    predict_options opt;
    predict_default_options(&opt);
    predict_model *mb, *mf = load("models/builtin.bin", &opt);
    ck_assert_msg(predict_model_load_buffer(builtin_model, builtin_model_size, "built-in", &opt,
                                            &mb, e, sizeof e) == 0,
                  "%s", e);
    image in = picture(70, 52, 1, 5), cb = colour_with(mb, &in), cf = colour_with(mf, &in);
    ck_assert(same_pixels(&cb, &cf));
    /* colour, and the picture's own lightness (but for rounding, and clipping to sRGB) */
    size_t n = (size_t)in.width * in.height, coloured = 0;
    double off = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = cb.pixels + 3 * i;
        coloured += p[0] != p[1] || p[1] != p[2];
        float lab[3];
        lab_from_rgb8(p, 1, lab);
        off += fabsf(lab[0] - lab_lightness_of_gray(in.pixels[i] / 255.0f));
    }
    ck_assert_msg(coloured > n / 2, "%zu of %zu pixels coloured", coloured, n);
    ck_assert_msg(off / n < 1, "L* off by %g on average", off / n);
    image_free(&in), image_free(&cb), image_free(&cf);
    predict_model_free(mb), predict_model_free(mf);
}
END_TEST

/* ==== Many pictures ==== */

START_TEST(test_many_pictures_at_once) {
    char path[256];
    model_path("default", SPACE_LAB, path, sizeof path);
    predict_options opt;
    predict_default_options(&opt);
    predict_model *m = load(path, &opt);
    image in[5] = {picture(70, 50, 1, 1), picture(3, 5, 3, 2), picture(32, 32, 1, 3),
                   picture(120, 33, 3, 4), picture(1, 1, 1, 5)};
    image out[5];
    char errs[5][128], e[128];
    opt.window = 40;
    opt.threads = 3;
    ck_assert_int_eq(predict_images(m, in, 5, &opt, out, errs[0], sizeof errs[0]), 0);
    for (int i = 0; i < 5; i++) {
        image alone;
        opt.threads = 1;
        opt.window = 0;
        ck_assert_msg(predict_image(m, &in[i], &opt, &alone, e, sizeof e) == 0, "%s", e);
        ck_assert(out[i].width == in[i].width && out[i].height == in[i].height);
        ck_assert_msg(memcmp(out[i].pixels, alone.pixels, 3 * (size_t)in[i].width * in[i].height) ==
                          0,
                      "picture %d coloured with others differs from it alone", i);
        image_free(&alone);
        image_free(&out[i]);
    }
    predict_model_free(m);
    /* a dense network takes 32x32 only: the others fail, each with its reason */
    model_path("dense", SPACE_RGB, path, sizeof path);
    m = load(path, &opt);
    ck_assert_int_eq(predict_images(m, in, 5, &opt, out, errs[0], sizeof errs[0]), 4);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(out[i].pixels != NULL, i == 2);
        if (i != 2) ck_assert_msg(strstr(errs[i], "dense layer"), "%s", errs[i]);
    }
    image want = whole_colouring(path, &in[2], -1);
    ck_assert(memcmp(out[2].pixels, want.pixels, 3 * 32 * 32) == 0);
    image_free(&want);
    image_free(&out[2]);
    predict_model_free(m);
    for (int i = 0; i < 5; i++)
        image_free(&in[i]);
    /* Lab options with an RGB model */
    opt.scale = 0;
    predict_model *none;
    ck_assert_int_eq(predict_model_load(path, &opt, &none, e, sizeof e), -1);
    ck_assert_msg(strstr(e, "Lab"), "%s", e);
}
END_TEST

/* ==== Photographs: passes averaged, chroma guided by the lightness ==== */

/* The guided filter's running sums against its definition, window by
 * window: sizes smaller and larger than the window, one and two channels. */
START_TEST(test_guided_filter_matches_its_reference) {
    const struct {
        int h, w, c, r;
        float eps;
    } cases[] = {{1, 1, 1, 1, 1},
                 {3, 7, 2, 1, 10},
                 {17, 9, 2, 2, 100},
                 {40, 33, 1, 5, 0.5f},
                 {12, 50, 2, 30, 25}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int h = cases[t].h, w = cases[t].w, c = cases[t].c;
        size_t n = (size_t)h * w;
        float *I = malloc(n * sizeof(float)), *p = malloc(n * c * sizeof(float));
        float *fast = malloc(n * c * 2 * sizeof(float)), *ref = malloc(n * c * 2 * sizeof(float));
        rng_state r;
        rng_seed(&r, 3 + t);
        for (size_t i = 0; i < n; i++) /* L*-like guide with an edge, a*b*-like input */
            I[i] = (float)((i % w < (size_t)w / 2 ? 30 : 70) + rng_below(&r, 1000) / 100.0);
        for (size_t i = 0; i < n * c; i++)
            p[i] = (float)rng_below(&r, 8000) / 100.0f - 40;
        ck_assert_int_eq(guided_coefficients(I, p, h, w, c, cases[t].r, cases[t].eps, fast), 0);
        guided_coefficients_reference(I, p, h, w, c, cases[t].r, cases[t].eps, ref);
        double worst = 0;
        for (size_t i = 0; i < n * c * 2; i++) {
            double d = fabs(fast[i] - ref[i]) / (1 + fabs(ref[i]));
            worst = d > worst ? d : worst;
        }
        printf("guided filter %dx%dx%d r %d: largest difference from the reference %.2g: %s\n", w,
               h, c, cases[t].r, worst, worst < 1e-3 ? "OK" : "NOT OK");
        ck_assert_msg(worst < 1e-3, "case %zu: %g", t, worst);
        free(I), free(p), free(fast), free(ref);
    }
}
END_TEST

/* Chroma upsampled from a coarse grid across a lightness edge, as predict
 * does it (the coarse grid the area mean of the truth, a window of one
 * coarse pixel): bilinearly it fades across the edge over two coarse
 * pixels; guided by the lightness it jumps at the edge. */
START_TEST(test_colour_stops_at_an_edge) {
    enum { H = 64, W = 64, EDGE = 29, GH = 8, GW = 8, R = W / GW };
    float truth[H * W], coarse[GH * GW], I[H * W], p[H * W], coef[H * W * 2], q[H * W];
    for (int y = 0; y < H; y++) /* a* +30 left of the edge, -30 right; L* 35 and 75 */
        for (int x = 0; x < W; x++)
            truth[y * W + x] = x < EDGE ? 30.0f : -30.0f, I[y * W + x] = x < EDGE ? 35.0f : 75.0f;
    resize_area(truth, H, W, coarse, GH, GW);
    resize_bilinear(coarse, GH, GW, 1, p, H, W);
    ck_assert_int_eq(guided_coefficients(I, p, H, W, 1, R, 100, coef), 0);
    double bleed_bilinear = 0, bleed_guided = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int at = y * W + x;
            q[at] = coef[2 * at] * I[at] + coef[2 * at + 1];
            if (abs(x - EDGE) > 3) continue;
            bleed_bilinear += fabs(p[at] - truth[at]) / (H * 7);
            bleed_guided += fabs(q[at] - truth[at]) / (H * 7);
        }
    float jump_bilinear = p[EDGE - 1] - p[EDGE], jump_guided = q[EDGE - 1] - q[EDGE];
    printf("colour at an edge: a* jumps %.1f bilinear, %.1f guided (truth 60); mean error within 3 "
           "pixels %.1f bilinear, %.1f guided\n",
           jump_bilinear, jump_guided, bleed_bilinear, bleed_guided);
    ck_assert_msg(jump_guided > 4 * jump_bilinear && jump_guided > 15, "%g vs %g", jump_guided,
                  jump_bilinear);
    ck_assert_msg(bleed_guided < 0.8 * bleed_bilinear, "%g vs %g", bleed_guided, bleed_bilinear);
}
END_TEST

/* Mirror averaging: a mirrored picture gets the mirrored colouring, up to
 * a rounding of the bytes (the network's own pass is not mirror-exact). */
START_TEST(test_mirror_averaging_is_symmetric) {
    char path[256], e[256];
    model_path("default", SPACE_LAB, path, sizeof path);
    predict_options opt;
    predict_default_options(&opt);
    predict_model *m = load(path, &opt);
    image in = picture(161, 97, 1, 4),
          flipped = {.width = 161, .height = 97, .channels = 1, .pixels = malloc(161 * 97)}, a, b;
    for (int y = 0; y < 97; y++)
        for (int x = 0; x < 161; x++)
            flipped.pixels[y * 161 + x] = in.pixels[y * 161 + 160 - x];
    ck_assert_msg(predict_image(m, &in, &opt, &a, e, sizeof e) == 0, "%s", e);
    ck_assert_msg(predict_image(m, &flipped, &opt, &b, e, sizeof e) == 0, "%s", e);
    int worst = 0;
    for (int y = 0; y < 97; y++)
        for (int x = 0; x < 161; x++)
            for (int c = 0; c < 3; c++) {
                int d =
                    abs(a.pixels[3 * (y * 161 + x) + c] - b.pixels[3 * (y * 161 + 160 - x) + c]);
                worst = d > worst ? d : worst;
            }
    ck_assert_msg(worst <= 1, "mirrored colouring differs by %d", worst);
    /* without the mirror pass it is not symmetric: the test can see a difference */
    opt.scale = 32;
    image c, d;
    ck_assert_msg(predict_image(m, &in, &opt, &c, e, sizeof e) == 0, "%s", e);
    ck_assert_msg(predict_image(m, &flipped, &opt, &d, e, sizeof e) == 0, "%s", e);
    worst = 0;
    for (int y = 0; y < 97; y++)
        for (int x = 0; x < 161; x++)
            for (int ch = 0; ch < 3; ch++) {
                int diff =
                    abs(c.pixels[3 * (y * 161 + x) + ch] - d.pixels[3 * (y * 161 + 160 - x) + ch]);
                worst = diff > worst ? diff : worst;
            }
    ck_assert_int_gt(worst, 1);
    image_free(&a), image_free(&b), image_free(&c), image_free(&d);
    image_free(&in), image_free(&flipped);
    predict_model_free(m);
}
END_TEST

/* The defaults against their parts: on a 32x32 picture --scale 32 is the
 * one pass of before, guided or not; on a larger one the default averages
 * passes (it differs from --scale 32) and the guide changes the upsampling. */
START_TEST(test_default_passes_and_overrides) {
    char path[256], e[256];
    model_path("default", SPACE_LAB, path, sizeof path);
    predict_options opt;
    predict_default_options(&opt);
    predict_model *m = load(path, &opt);
    image small = picture(32, 32, 1, 6), got;
    image want = whole_colouring(path, &small, 32);
    opt.scale = 32;
    ck_assert_msg(predict_image(m, &small, &opt, &got, e, sizeof e) == 0, "%s", e);
    ck_assert(memcmp(got.pixels, want.pixels, 3 * 32 * 32) == 0);
    image_free(&got);
    image big = picture(200, 120, 3, 7), one, guided, defaults;
    image bilinear = whole_colouring(path, &big, 32);
    ck_assert_msg(predict_image(m, &big, &opt, &guided, e, sizeof e) == 0, "%s", e);
    opt.guide = 0;
    ck_assert_msg(predict_image(m, &big, &opt, &one, e, sizeof e) == 0, "%s", e);
    ck_assert(memcmp(one.pixels, bilinear.pixels, 3 * 200 * 120) == 0);
    ck_assert(memcmp(guided.pixels, bilinear.pixels, 3 * 200 * 120) != 0);
    predict_default_options(&opt);
    ck_assert_msg(predict_image(m, &big, &opt, &defaults, e, sizeof e) == 0, "%s", e);
    ck_assert(memcmp(defaults.pixels, guided.pixels, 3 * 200 * 120) != 0);
    image_free(&want), image_free(&small), image_free(&big), image_free(&one);
    image_free(&guided), image_free(&defaults), image_free(&bilinear);
    predict_model_free(m);
}
END_TEST

/* ==== A 12-megapixel picture (COLORIZE_BIG_PREDICT) ==== */

/* Where the whole-picture reference would fill more than this, it is not
 * computed. */
#define BIG_REFERENCE_LIMIT ((size_t)16 << 30)

/* README, issue 12: predict at any size. A 4000x3000 picture, every kind,
 * RGB, Lab at --scale 0 and Lab at the training size, coloured in tiles as
 * `colorize predict` does (the planned windows, all cores) and by the whole
 * picture at once, byte for byte. The whole picture's network takes
 * gigabytes and minutes (9.2 GB resident at most, 6 to 13 minutes on two
 * busy cores), so the test only runs when COLORIZE_BIG_PREDICT is set, with
 * a timeout of an hour (or CK_DEFAULT_TIMEOUT's). `pixel` at the full size
 * would fill 17-18 GiB: only its Lab colouring at the training size is
 * compared. */
START_TEST(test_a_12_megapixel_picture_colours_as_the_whole) {
    if (!getenv("COLORIZE_BIG_PREDICT")) {
        printf("test_a_12_megapixel_picture_colours_as_the_whole: skipped (set "
               "COLORIZE_BIG_PREDICT=1 to run it: 6-13 minutes and 9 GB on 2 busy cores)\n");
        return;
    }
    const int w = 4000, h = 3000;
    const size_t n = (size_t)w * h;
    const struct {
        colour_space space;
        int scale;
        const char *name;
    } modes[] = {
        {SPACE_RGB, -1, "RGB"}, {SPACE_LAB, 0, "Lab --scale 0"}, {SPACE_LAB, 32, "Lab --scale 32"}};
    int compared = 0, skipped = 0;
    for (int kind = 0; kind < N_KINDS; kind++)
        for (int i = 0; i < 3; i++) {
            const char *label = kind_names[kind];
            int k = modes[i].space == SPACE_LAB ? 16 : 4;
            /* A network at the full size (4000 and 3000 are multiples of every kind's
             * pooling, so nothing is padded) fills its activations and forward working
             * memory; besides, the planes of the picture: gray, the network's input, the
             * probabilities, the colourings. The training buffers nn_load also reserves
             * are never touched by a forward pass. */
            size_t need = n * (4 * (size_t)k + 40);
            if (modes[i].scale == 0 || modes[i].space == SPACE_RGB)
                need += nn_forward_bytes(kinds[kind], h, w, k);
            if (need > BIG_REFERENCE_LIMIT) {
                printf("big predict: %s, %s: skipped, the whole-picture reference would fill "
                       "%.1f GiB (limit %.0f GiB)\n",
                       label, modes[i].name, need / 1073741824.0,
                       BIG_REFERENCE_LIMIT / 1073741824.0);
                fflush(stdout);
                skipped++;
                continue;
            }
            char path[256], e[256];
            model_path(kinds[kind], modes[i].space, path, sizeof path);
            image in = picture(w, h, i == 2 ? 3 : 1, 20 + kind);
            double t0 = omp_get_wtime();
            image want = whole_colouring(path, &in, modes[i].scale), got;
            double t1 = omp_get_wtime();
            predict_options opt;
            predict_default_options(&opt);
            if (modes[i].space == SPACE_LAB) opt.scale = modes[i].scale;
            opt.guide = 0;
            predict_model *m = load(path, &opt);
            ck_assert_msg(predict_image(m, &in, &opt, &got, e, sizeof e) == 0, "%s", e);
            double t2 = omp_get_wtime();
            ck_assert(got.width == w && got.height == h && got.channels == 3);
            size_t at = 0;
            while (at < 3 * n && got.pixels[at] == want.pixels[at])
                at++;
            ck_assert_msg(at == 3 * n,
                          "%s, %s, %dx%d: byte %zu (pixel (%zu, %zu) channel %zu) is %d, not %d",
                          label, modes[i].name, w, h, at, at / 3 % w, at / 3 / w, at % 3,
                          got.pixels[at], want.pixels[at]);
            printf("big predict: %s, %s: tiles and whole picture identical (whole %.1f s, tiles "
                   "%.1f s)\n",
                   label, modes[i].name, t1 - t0, t2 - t1);
            fflush(stdout);
            compared++;
            predict_model_free(m);
            image_free(&got);
            image_free(&want);
            image_free(&in);
        }
    ck_assert_int_eq(compared + skipped, N_KINDS * 3);
    /* the Lab mode at the training size colours every kind */
    ck_assert_int_ge(compared, N_KINDS);
}
END_TEST

int main(void) {
    Suite *s = suite_create("predict");
    TCase *tc = tcase_create("predict");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_geometry_follows_the_layers);
    tcase_add_test(tc, test_tiles_give_the_whole_pictures_probabilities);
    tcase_add_test(tc, test_tiles_give_the_whole_pictures_colouring);
    tcase_add_test(tc, test_a_margin_one_pixel_short_shows);
    tcase_add_test(tc, test_memory_follows_the_tile);
    tcase_add_test(tc, test_forward_only_networks);
    tcase_add_test(tc, test_layers_run_on_their_tiles_thread);
    tcase_add_test(tc, test_many_pictures_at_once);
    tcase_add_test(tc, test_weights_only_models);
    tcase_add_test(tc, test_the_builtin_model_is_the_committed_file);
    tcase_add_test(tc, test_guided_filter_matches_its_reference);
    tcase_add_test(tc, test_colour_stops_at_an_edge);
    tcase_add_test(tc, test_mirror_averaging_is_symmetric);
    tcase_add_test(tc, test_default_passes_and_overrides);
    suite_add_tcase(s, tc);
    TCase *big = tcase_create("big");
    if (!getenv("CK_DEFAULT_TIMEOUT")) tcase_set_timeout(big, 3600);
    tcase_add_checked_fixture(big, setup, teardown);
    tcase_add_test(big, test_a_12_megapixel_picture_colours_as_the_whole);
    suite_add_tcase(s, big);
    return tu_run_suite(s);
}
