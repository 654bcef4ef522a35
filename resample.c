/* Resampling for predict: area averaging (a picture's gray values or a
 * plane of floats, made smaller) and bilinear interpolation (made larger),
 * both over OpenMP's threads, the same values for any thread count. */
#include "resample.h"

#include <math.h>
#include <stdlib.h>

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

void picture_gray_span(const image *in, int y, int x0, int n, float *dst) {
    size_t at = (size_t)y * in->width + x0;
    const uint16_t *deep = in->depth == 16 ? (const uint16_t *)in->pixels : NULL;
    if (deep && in->channels == 3)
        for (int i = 0; i < n; i++) {
            const uint16_t *p = deep + 3 * (at + i);
            dst[i] = gray_of_rgb16(p[0], p[1], p[2]);
        }
    else if (deep)
        for (int i = 0; i < n; i++)
            dst[i] = deep[at + i] / 65535.0f;
    else if (in->channels == 3)
        gray_from_rgb(in->pixels + 3 * at, (size_t)n, dst);
    else
        for (int i = 0; i < n; i++)
            dst[i] = in->pixels[at + i] / 255.0f;
}

/* Where a resize reads its rows: a plane of floats, or a picture's gray
 * values, made a row at a time so that the picture needs no float copy. */
typedef struct {
    const float *plane;
    const image *picture;
} gray_source;

/* Row y of w values: in the plane, or made in buf. */
static const float *source_row(const gray_source *src, int y, int w, float *buf) {
    if (src->plane) return src->plane + (size_t)y * w;
    picture_gray_span(src->picture, y, 0, w, buf);
    return buf;
}

/* resize_area from a source; -1 when out of memory. */
static int resize_area_from(const gray_source *src, int h, int w, float *dst, int oh, int ow) {
    area_axis ax = {0}, ay = {0};
    float *rows = malloc(sizeof(float) * (size_t)h * ow); /* resized along x */
    int failed = !rows || area_axis_make(w, ow, &ax) || area_axis_make(h, oh, &ay);
    if (!failed) {
#pragma omp parallel
        {
            float *buf = src->plane ? NULL : malloc(sizeof(float) * (size_t)w);
            if (!src->plane && !buf) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int y = 0; y < h; y++) {
                if (!src->plane && !buf) continue;
                const float *row = source_row(src, y, w, buf);
                for (int x = 0; x < ow; x++) {
                    const float *wt = ax.weights + (size_t)x * ax.max_count;
                    const float *s = row + ax.first[x];
                    float v = 0;
                    for (int j = 0; j < ax.count[x]; j++)
                        v += wt[j] * s[j];
                    rows[(size_t)y * ow + x] = v;
                }
            }
            free(buf);
        }
    }
    if (!failed) {
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
    return failed ? -1 : 0;
}

void resize_area(const float *src, int h, int w, float *dst, int oh, int ow) {
    gray_source plane = {src, NULL};
    if (resize_area_from(&plane, h, w, dst, oh, ow) == 0) return;
    /* Without memory for the tables, nearest neighbour. */
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            dst[(size_t)y * ow + x] = src[(size_t)(y * h / oh) * w + (x * w / ow)];
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

void resize_bilinear_row(const float *src, int h, int w, int c, int y, int oh, float *dst, int ow) {
    int y0, y1;
    float ty;
    bilinear_tap(y, h, oh, &y0, &y1, &ty);
    for (int x = 0; x < ow; x++) {
        int x0, x1;
        float tx;
        bilinear_tap(x, w, ow, &x0, &x1, &tx);
        for (int d = 0; d < c; d++) {
            float a = src[((size_t)y0 * w + x0) * c + d], b = src[((size_t)y0 * w + x1) * c + d];
            float p = src[((size_t)y1 * w + x0) * c + d], q = src[((size_t)y1 * w + x1) * c + d];
            float top = a + (b - a) * tx, bottom = p + (q - p) * tx;
            dst[(size_t)x * c + d] = top + (bottom - top) * ty;
        }
    }
}

void resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow) {
#pragma omp parallel for schedule(static)
    for (int y = 0; y < oh; y++)
        resize_bilinear_row(src, h, w, c, y, oh, dst + (size_t)y * ow * c, ow);
}

int resize_area_of_picture(const image *in, float *dst, int oh, int ow) {
    gray_source picture = {NULL, in};
    return resize_area_from(&picture, in->height, in->width, dst, oh, ow);
}

/* The size whose shorter side is `side`, keeping the aspect ratio; -1 if
 * the longer one would exceed RESIZE_MAX_SIDE. */
int resize_scaled_size(int h, int w, int side, int *oh, int *ow) {
    double longer = (double)(h > w ? h : w) * side / (h < w ? h : w);
    if (longer > RESIZE_MAX_SIDE) return -1;
    if (h <= w) {
        *oh = side;
        *ow = (int)lround((double)w * side / h);
    } else {
        *ow = side;
        *oh = (int)lround((double)h * side / w);
    }
    if (*oh < 1) *oh = 1;
    if (*ow < 1) *ow = 1;
    return 0;
}
