/* The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010,
 * TPAMI 2013): in every (2r+1)x(2r+1) window the output is a linear function
 * of the guide, q = a I + b, fitted by least squares to the input p with a
 * ridge eps on a; each pixel then takes the window means of a and b. Where
 * the guide has an edge the output gets one too, so chroma upsampled from a
 * coarse grid stops at the lightness edges instead of bleeding across them.
 *
 * predict fits a and b on a grid coarser than the picture and upsamples
 * them bilinearly to the picture's size, where q = a L* + b uses each
 * pixel's own lightness (He and Sun's "fast guided filter", 2015): memory
 * follows the grid, not the picture.
 *
 * Windows are clipped at the borders: a mean is over the pixels inside. */
#ifndef COLORIZE_GUIDED_H
#define COLORIZE_GUIDED_H

/* I is (h, w), p is (h, w, c); coef receives (h, w, c, 2): for each channel
 * the window means of a and of b. Row-parallel (OpenMP), O(h w c) for any r;
 * sums in double. Returns -1 when out of memory (coef untouched). */
int guided_coefficients(const float *I, const float *p, int h, int w, int c, int r, float eps,
                        float *coef);
/* The same by the definition, window by window: O(h w c r^2), for tests. */
void guided_coefficients_reference(const float *I, const float *p, int h, int w, int c, int r,
                                   float eps, float *coef);

#endif
