/* The guided filter's coefficients (guided.h), by box means of running sums. */
#include "guided.h"

#include <stdlib.h>

/* The first and one past the last index of the window of radius r around i
 * on an axis of n. */
static void window_of(int i, int r, int n, int *lo, int *hi) {
    *lo = i - r < 0 ? 0 : i - r;
    *hi = i + r + 1 > n ? n : i + r + 1;
}

/* src and dst are (h, w, n): each value the mean of its channel over the
 * clipped (2r+1)x(2r+1) window. Sums along rows, then running sums down the
 * columns, in double. -1 when out of memory. */
static int box_mean(const float *src, int h, int w, int n, int r, float *dst) {
    size_t cols = (size_t)w * n;
    double *rows = malloc(sizeof(double) * (size_t)h * cols); /* window sums along x */
    if (!rows) return -1;
    int failed = 0;
#pragma omp parallel
    {
        double *prefix = malloc(sizeof(double) * ((size_t)(w > h ? w : h) + 1));
        if (!prefix) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int y = 0; y < h; y++) {
            for (int d = 0; prefix && d < n; d++) {
                const float *s = src + (size_t)y * cols + d;
                prefix[0] = 0;
                for (int x = 0; x < w; x++)
                    prefix[x + 1] = prefix[x] + s[(size_t)x * n];
                for (int x = 0; x < w; x++) {
                    int lo, hi;
                    window_of(x, r, w, &lo, &hi);
                    rows[(size_t)y * cols + (size_t)x * n + d] = prefix[hi] - prefix[lo];
                }
            }
        }
#pragma omp for schedule(static)
        for (size_t j = 0; j < cols; j++) {
            if (!prefix) continue;
            int x = (int)(j / n), xlo, xhi;
            window_of(x, r, w, &xlo, &xhi);
            prefix[0] = 0;
            for (int y = 0; y < h; y++)
                prefix[y + 1] = prefix[y] + rows[(size_t)y * cols + j];
            for (int y = 0; y < h; y++) {
                int lo, hi;
                window_of(y, r, h, &lo, &hi);
                dst[(size_t)y * cols + j] =
                    (float)((prefix[hi] - prefix[lo]) / ((double)(hi - lo) * (xhi - xlo)));
            }
        }
        free(prefix);
    }
    free(rows);
    return failed ? -1 : 0;
}

int guided_coefficients(const float *I, const float *p, int h, int w, int c, int r, float eps,
                        float *coef) {
    size_t pixels = (size_t)h * w;
    int n = 2 + 2 * c; /* I, I^2, then p and I p of each channel */
    float *planes = malloc(sizeof(float) * pixels * n), *means = malloc(sizeof(float) * pixels * n);
    float *ab = malloc(sizeof(float) * pixels * 2 * c);
    int failed = !planes || !means || !ab;
    if (!failed) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < pixels; i++) {
            float *q = planes + i * n;
            q[0] = I[i], q[1] = I[i] * I[i];
            for (int d = 0; d < c; d++)
                q[2 + d] = p[i * c + d], q[2 + c + d] = I[i] * p[i * c + d];
        }
        failed = box_mean(planes, h, w, n, r, means);
    }
    if (!failed) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < pixels; i++) {
            const float *m = means + i * n;
            float var = m[1] - m[0] * m[0];
            for (int d = 0; d < c; d++) {
                float a = (m[2 + c + d] - m[0] * m[2 + d]) / (var + eps);
                ab[(i * c + d) * 2] = a, ab[(i * c + d) * 2 + 1] = m[2 + d] - a * m[0];
            }
        }
        failed = box_mean(ab, h, w, 2 * c, r, coef);
    }
    free(planes);
    free(means);
    free(ab);
    return failed ? -1 : 0;
}

/* The mean of channel d of the (h, w, n) values v over the window around (y, x). */
static double window_mean(const float *v, int h, int w, int n, int d, int y, int x, int r) {
    int ylo, yhi, xlo, xhi;
    window_of(y, r, h, &ylo, &yhi);
    window_of(x, r, w, &xlo, &xhi);
    double sum = 0;
    for (int yy = ylo; yy < yhi; yy++)
        for (int xx = xlo; xx < xhi; xx++)
            sum += v[((size_t)yy * w + xx) * n + d];
    return sum / ((double)(yhi - ylo) * (xhi - xlo));
}

void guided_coefficients_reference(const float *I, const float *p, int h, int w, int c, int r,
                                   float eps, float *coef) {
    float *ab = malloc(sizeof(float) * (size_t)h * w * 2 * c);
    if (!ab) return;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int d = 0; d < c; d++) {
                /* a = cov(I, p) / (var(I) + eps), b = mean(p) - a mean(I), over the window */
                int ylo, yhi, xlo, xhi;
                window_of(y, r, h, &ylo, &yhi);
                window_of(x, r, w, &xlo, &xhi);
                double sI = 0, sII = 0, sp = 0, sIp = 0, count = (double)(yhi - ylo) * (xhi - xlo);
                for (int yy = ylo; yy < yhi; yy++)
                    for (int xx = xlo; xx < xhi; xx++) {
                        double i = I[(size_t)yy * w + xx], v = p[((size_t)yy * w + xx) * c + d];
                        sI += i, sII += i * i, sp += v, sIp += i * v;
                    }
                double mI = sI / count, mp = sp / count;
                double a = (sIp / count - mI * mp) / (sII / count - mI * mI + eps);
                size_t at = (((size_t)y * w + x) * c + d) * 2;
                ab[at] = (float)a, ab[at + 1] = (float)(mp - a * mI);
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int e = 0; e < 2 * c; e++)
                coef[((size_t)y * w + x) * 2 * c + e] =
                    (float)window_mean(ab, h, w, 2 * c, e, y, x, r);
    free(ab);
}
