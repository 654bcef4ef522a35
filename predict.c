/* Colouring a picture with a trained model (predict.h). */
#include "predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chroma.h"
#include "lab.h"
#include "report.h"
#include "util.h"

/* ==== Resampling ==== */

/* One axis of an area-averaging resize: output i covers [i n / m, (i+1) n / m)
 * of the n inputs; weights[i][j] for the inputs first[i]..first[i]+count[i]-1. */
typedef struct {
    int *first, *count;
    float *weights; /* m rows of at most max_count */
    int max_count;
} area_axis;

static int area_axis_make(int n, int m, area_axis *ax) {
    ax->max_count = n / m + 2;
    ax->first = malloc(sizeof(int) * (size_t)m);
    ax->count = malloc(sizeof(int) * (size_t)m);
    ax->weights = malloc(sizeof(float) * (size_t)m * ax->max_count);
    if (!ax->first || !ax->count || !ax->weights) return -1;
    for (int i = 0; i < m; i++) {
        double lo = (double)i * n / m, hi = (double)(i + 1) * n / m;
        int j0 = (int)floor(lo), j1 = (int)ceil(hi);
        if (j1 > n) j1 = n;
        ax->first[i] = j0;
        ax->count[i] = j1 - j0;
        for (int j = j0; j < j1; j++) {
            double a = j < lo ? lo : j, b = j + 1 > hi ? hi : j + 1;
            ax->weights[(size_t)i * ax->max_count + (j - j0)] = (float)((b - a) / (hi - lo));
        }
    }
    return 0;
}

static void area_axis_free(area_axis *ax) {
    free(ax->first);
    free(ax->count);
    free(ax->weights);
}

void resize_area(const float *src, int h, int w, float *dst, int oh, int ow) {
    area_axis ax = {0}, ay = {0};
    float *rows = malloc(sizeof(float) * (size_t)h * ow); /* resized along x */
    if (!rows || area_axis_make(w, ow, &ax) || area_axis_make(h, oh, &ay)) {
        /* Without memory for the tables, nearest neighbour. */
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                dst[(size_t)y * ow + x] = src[(size_t)(y * h / oh) * w + (x * w / ow)];
    } else {
#pragma omp parallel for schedule(static)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < ow; x++) {
                const float *wt = ax.weights + (size_t)x * ax.max_count;
                const float *s = src + (size_t)y * w + ax.first[x];
                float v = 0;
                for (int j = 0; j < ax.count[x]; j++)
                    v += wt[j] * s[j];
                rows[(size_t)y * ow + x] = v;
            }
#pragma omp parallel for schedule(static)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const float *wt = ay.weights + (size_t)y * ay.max_count;
                float v = 0;
                for (int j = 0; j < ay.count[y]; j++)
                    v += wt[j] * rows[(size_t)(ay.first[y] + j) * ow + x];
                dst[(size_t)y * ow + x] = v;
            }
    }
    free(rows);
    area_axis_free(&ax);
    area_axis_free(&ay);
}

/* Source position and weight of output coordinate x on an axis of n -> m. */
static void bilinear_tap(int x, int n, int m, int *i0, int *i1, float *t) {
    float s = ((float)x + 0.5f) * (float)n / (float)m - 0.5f;
    if (s < 0) s = 0;
    if (s > n - 1) s = (float)(n - 1);
    *i0 = (int)s;
    *i1 = *i0 + 1 < n ? *i0 + 1 : *i0;
    *t = s - (float)*i0;
}

void resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow) {
#pragma omp parallel for schedule(static)
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float ty;
        bilinear_tap(y, h, oh, &y0, &y1, &ty);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float tx;
            bilinear_tap(x, w, ow, &x0, &x1, &tx);
            for (int d = 0; d < c; d++) {
                float a = src[((size_t)y0 * w + x0) * c + d],
                      b = src[((size_t)y0 * w + x1) * c + d];
                float p = src[((size_t)y1 * w + x0) * c + d],
                      q = src[((size_t)y1 * w + x1) * c + d];
                float top = a + (b - a) * tx, bottom = p + (q - p) * tx;
                dst[((size_t)y * ow + x) * c + d] = top + (bottom - top) * ty;
            }
        }
    }
}

/* ==== The network on one plane ==== */

/* (h, w) padded to (ph, pw) by repeating the last row and column. */
static void pad_edges(const float *src, int h, int w, float *dst, int ph, int pw) {
    for (int y = 0; y < ph; y++) {
        const float *row = src + (size_t)(y < h ? y : h - 1) * w;
        for (int x = 0; x < pw; x++)
            dst[(size_t)y * pw + x] = row[x < w ? x : w - 1];
    }
}

/* Runs the model on a (h, w) plane of gray values in [0, 1]; prob gets
 * (h, w, k) class probabilities. */
static int classify(const char *path, const float *gray, int h, int w, nn_model_meta *meta,
                    float **prob, char *err, size_t errlen) {
    network *net = NULL;
    if (nn_load(path, 0, 0, 1, &net, meta, err, errlen) != 0) return -1;
    int th = net->shapes[0].h, tw = net->shapes[0].w;
    int m = nn_fixes_input_size(net->spec, th, tw, meta->k)
                ? 1
                : nn_side_multiple(net->spec, th, tw, meta->k);
    nn_free(net);
    int ph = (h + m - 1) / m * m, pw = (w + m - 1) / m * m;
    if (nn_load(path, ph, pw, 1, &net, meta, err, errlen) != 0) return -1;
    size_t n = (size_t)ph * pw;
    float *x = malloc(n * sizeof(float));
    *prob = malloc((size_t)h * w * meta->k * sizeof(float));
    if (!x || !*prob) {
        free(x);
        free(*prob);
        *prob = NULL;
        nn_free(net);
        return set_error(err, errlen, "out of memory for a %dx%d image", w, h);
    }
    pad_edges(gray, h, w, x, ph, pw);
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - meta->mean) / meta->std;
    nn_forward(net, x, 1);
    const float *q = net->act[net->n_layers];
    size_t row = (size_t)w * meta->k;
    for (int y = 0; y < h; y++)
        memcpy(*prob + y * row, q + (size_t)y * pw * meta->k, row * sizeof(float));
    free(x);
    nn_free(net);
    return 0;
}

/* ==== The two modes ==== */

static int predict_rgb(const char *path, const float *gray, int h, int w, image *out, char *err,
                       size_t errlen) {
    nn_model_meta meta;
    float *prob;
    if (classify(path, gray, h, w, &meta, &prob, err, errlen) != 0) return -1;
    size_t n = (size_t)h * w;
    uint8_t *classes = malloc(n);
    if (!classes) {
        free(prob);
        return set_error(err, errlen, "out of memory for a %dx%d image", w, h);
    }
    for (size_t p = 0; p < n; p++) {
        const float *q = prob + p * meta.k;
        int best = 0;
        for (int c = 1; c < meta.k; c++)
            best = q[c] > q[best] ? c : best;
        classes[p] = (uint8_t)best;
    }
    palette_paint(classes, n, meta.centres, out->pixels);
    free(classes);
    free(prob);
    return 0;
}

/* The size whose shorter side is `side`, keeping the aspect ratio. */
static void scaled_size(int h, int w, int side, int *oh, int *ow) {
    if (h <= w) {
        *oh = side;
        *ow = (int)lround((double)w * side / h);
    } else {
        *ow = side;
        *oh = (int)lround((double)h * side / w);
    }
    if (*oh < 1) *oh = 1;
    if (*ow < 1) *ow = 1;
}

static int predict_lab(const char *path, int train_side, const float *gray, int h, int w,
                       const predict_options *opt, image *out, char *err, size_t errlen) {
    int side = opt->scale < 0 ? train_side : opt->scale;
    int sh = h, sw = w;
    if (side > 0) scaled_size(h, w, side, &sh, &sw);
    size_t n = (size_t)h * w, sn = (size_t)sh * sw;
    float *small = sn == n ? NULL : malloc(sn * sizeof(float));
    float *ab_small = malloc(2 * sn * sizeof(float));
    float *ab = sn == n ? ab_small : malloc(2 * n * sizeof(float));
    float *L = malloc(n * sizeof(float));
    float *prob = NULL;
    nn_model_meta meta;
    int rc = 0;
    if ((sn != n && !small) || !ab_small || !ab || !L) {
        rc = set_error(err, errlen, "out of memory for a %dx%d image", w, h);
        goto done;
    }
    if (small) resize_area(gray, h, w, small, sh, sw);
    if ((rc = classify(path, small ? small : gray, sh, sw, &meta, &prob, err, errlen)) != 0)
        goto done;
    float t = opt->temperature >= 0 ? opt->temperature : meta.temperature;
    chroma_decode(prob, sn, meta.k, (const float(*)[3])meta.centres, t, ab_small);
    if (ab != ab_small) resize_bilinear(ab_small, sh, sw, 2, ab, h, w);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < n; p++)
        L[p] = lab_lightness_of_gray(gray[p]);
    chroma_paint(L, ab, n, out->pixels);
done:
    free(small);
    if (ab != ab_small) free(ab);
    free(ab_small);
    free(L);
    free(prob);
    return rc;
}

int predict_image(const char *model_path, const image *in, const predict_options *opt, image *out,
                  char *err, size_t errlen) {
    nn_model_meta meta;
    network *net;
    /* The model's mode and training size first. */
    if (nn_load(model_path, 0, 0, 1, &net, &meta, err, errlen) != 0) return -1;
    int train_side = net->shapes[0].h < net->shapes[0].w ? net->shapes[0].h : net->shapes[0].w;
    nn_free(net);
    if (meta.space == SPACE_RGB && (opt->temperature >= 0 || opt->scale >= 0))
        return set_error(err, errlen,
                         "%s: an RGB model has no --temperature or --scale (they are for Lab "
                         "models)",
                         model_path);
    size_t n = (size_t)in->width * in->height;
    float *gray = malloc(n * sizeof(float));
    *out = (image){in->width, in->height, 3, malloc(3 * n)};
    if (!gray || !out->pixels) {
        free(gray);
        image_free(out);
        return set_error(err, errlen, "out of memory for a %dx%d image", in->width, in->height);
    }
    if (in->channels == 3)
        gray_from_rgb(in->pixels, n, gray);
    else
        for (size_t i = 0; i < n; i++)
            gray[i] = in->pixels[i] / 255.0f;
    int rc = meta.space == SPACE_LAB
                 ? predict_lab(model_path, train_side, gray, in->height, in->width, opt, out, err,
                               errlen)
                 : predict_rgb(model_path, gray, in->height, in->width, out, err, errlen);
    free(gray);
    if (rc != 0) image_free(out);
    return rc;
}
