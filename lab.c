/* CIE L*a*b* as scikit-image computes it (skimage.color.rgb2lab, lab2rgb):
 *
 *   rgb -> linear:  c > 0.04045 ? ((c + 0.055) / 1.055)^2.4 : c / 12.92
 *   linear -> XYZ:  the sRGB matrix below, then divided by the D65 white
 *   XYZ -> Lab:     f(t) = t > 0.008856 ? cbrt(t) : 7.787 t + 16/116
 *                   L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z))
 *
 * and back through the inverse of each step, with scikit-image's constants
 * (7.787 and 0.008856, not the exact 841/108 and 216/24389) so that the
 * numbers match its own. */
#include <math.h>
#include <string.h>

#include "lab.h"

static const double xyz_from_rgb[3][3] = {
    {0.412453, 0.357580, 0.180423},
    {0.212671, 0.715160, 0.072169},
    {0.019334, 0.119193, 0.950227},
};
static const double white[3] = {0.95047, 1.0, 1.08883};

/* The inverse of xyz_from_rgb exactly as scikit-image holds it (scipy.linalg.inv, printed
 * to 17 digits): a constant, so no thread has to set it up. */
static const double rgb_from_xyz[3][3] = {
    {3.2404813432005266, -1.5371515162713183, -0.4985363261688878},
    {-0.9692549499965682, 1.8759900014898907, 0.04155592655829284},
    {0.055646639135177166, -0.20404133836651123, 1.0573110696453443},
};

static double linear_of_srgb(double c) {
    return c > 0.04045 ? pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
}

static double srgb_of_linear(double c) {
    return c > 0.0031308 ? 1.055 * pow(c, 1 / 2.4) - 0.055 : c * 12.92;
}

/* cbrt(t) for a finite t > 0, about three times faster than libm's, which
 * would be most of lab_from_rgb8's time. The bits of a double, read as an
 * integer, are roughly 2^52 (log2 t + 1023); a third of them plus a constant
 * is roughly the bits of t^(1/3), within 3.2%. Each of Halley's steps for
 * y^3 = t cubes the relative error: 2e-5, then 7e-15, far below float. */
static double cube_root(double t) {
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = bits / 3 + 0x2A9F7893782DA1CEu;
    double y;
    memcpy(&y, &bits, sizeof y);
    for (int step = 0; step < 2; step++) {
        double y3 = y * y * y;
        y *= (y3 + 2 * t) / (2 * y3 + t);
    }
    return y;
}

static double lab_f(double t) {
    return t > 0.008856 ? cube_root(t) : 7.787 * t + 16.0 / 116.0;
}

static double lab_f_inverse(double f) {
    return f > 0.2068966 ? f * f * f : (f - 16.0 / 116.0) / 7.787;
}

static void lab_from_linear(const double lin[3], float lab[3]) {
    double f[3];
    for (int i = 0; i < 3; i++) {
        double t =
            xyz_from_rgb[i][0] * lin[0] + xyz_from_rgb[i][1] * lin[1] + xyz_from_rgb[i][2] * lin[2];
        f[i] = lab_f(t / white[i]);
    }
    lab[0] = (float)(116 * f[1] - 16);
    lab[1] = (float)(500 * (f[0] - f[1]));
    lab[2] = (float)(200 * (f[1] - f[2]));
}

void lab_from_rgb(const float rgb[3], float lab[3]) {
    double lin[3];
    for (int i = 0; i < 3; i++)
        lin[i] = linear_of_srgb(rgb[i]);
    lab_from_linear(lin, lab);
}

void rgb_from_lab(const float lab[3], float rgb[3]) {
    double fy = (lab[0] + 16.0) / 116.0;
    double f[3] = {lab[1] / 500.0 + fy, fy, fy - lab[2] / 200.0};
    if (f[2] < 0) f[2] = 0;
    double xyz[3];
    for (int i = 0; i < 3; i++)
        xyz[i] = lab_f_inverse(f[i]) * white[i];
    for (int i = 0; i < 3; i++) {
        double lin =
            rgb_from_xyz[i][0] * xyz[0] + rgb_from_xyz[i][1] * xyz[1] + rgb_from_xyz[i][2] * xyz[2];
        double c = srgb_of_linear(lin);
        rgb[i] = (float)(c < 0 ? 0 : c > 1 ? 1 : c);
    }
}

void rgb8_from_lab(const float lab[3], uint8_t rgb[3]) {
    float c[3];
    rgb_from_lab(lab, c);
    for (int i = 0; i < 3; i++)
        rgb[i] = (uint8_t)lrintf(c[i] * 255.0f);
}

void lab_from_rgb8(const uint8_t *rgb, size_t n, float *lab) {
    double linear[256];
    for (int v = 0; v < 256; v++)
        linear[v] = linear_of_srgb(v / 255.0);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double lin[3] = {linear[rgb[3 * i]], linear[rgb[3 * i + 1]], linear[rgb[3 * i + 2]]};
        lab_from_linear(lin, lab + 3 * i);
    }
}

float lab_lightness_of_gray(float g) {
    float rgb[3] = {g, g, g}, lab[3];
    lab_from_rgb(rgb, lab);
    return lab[0];
}
