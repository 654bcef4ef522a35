/* CIE L*a*b*, exactly as scikit-image's rgb2lab and lab2rgb: sRGB with its
 * gamma (IEC 61966-2-1), the D65 white point, the 2 degree observer.
 *
 * L* is 0..100; a* and b* are about -128..128. Each conversion computes in
 * double and stores float, so it agrees with scikit-image's float64 results
 * to float precision (the tests hold it to 1e-4 on scikit-image's own
 * numbers). */
#ifndef COLORIZE_LAB_H
#define COLORIZE_LAB_H

#include <stddef.h>
#include <stdint.h>

/* rgb in [0, 1] -> L*a*b*. */
void lab_from_rgb(const float rgb[3], float lab[3]);
/* L*a*b* -> rgb in [0, 1]: as lab2rgb, a negative Z is taken as 0 and the
 * result is clipped to [0, 1]. */
void rgb_from_lab(const float lab[3], float rgb[3]);
/* The same, rounded to the nearest byte (ties to even, as numpy's rint). */
void rgb8_from_lab(const float lab[3], uint8_t rgb[3]);

/* (n, 3) bytes -> (n, 3) L*a*b* floats. Parallel. */
void lab_from_rgb8(const uint8_t *rgb, size_t n, float *lab);

/* L* of the gray pixel (g, g, g), g in [0, 1]: the lightness a gray input
 * gives its colouring. */
float lab_lightness_of_gray(float g);

#endif
