/* Between kmeans.c and kmeans_ab.c (not an API): kmeans.c samples the pixels
 * and finds their distinct colours, for either space; kmeans_ab.c clusters
 * those colours' a*b*. */
#ifndef COLORIZE_KMEANS_INTERNAL_H
#define COLORIZE_KMEANS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kmeans.h"
#include "util.h"

/* colours (n_colours) 0x00RRGGBB and their pixel counts weights, which sum to
 * n_points; the restarts of opt on their a*b*, drawing from rng. Fills res
 * whole (centres sorted by chroma) but for seconds; adds to prof's prepare,
 * seed and Lloyd times. */
int kmeans_ab_fit_colours(const uint32_t *colours, const uint32_t *weights, size_t n_colours,
                          size_t n_points, const kmeans_options *opt, rng_state *rng,
                          kmeans_result *res, kmeans_profile *prof, char *err, size_t errlen);

#endif
