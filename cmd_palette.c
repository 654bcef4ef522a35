/* colorize palette DATA_DIR: the k main colours only. */
#include <omp.h>
#include <stdio.h>

#include "cifar.h"
#include "cli.h"
#include "commands.h"
#include "kmeans.h"
#include "simd/simd.h"

static void print_centres(const kmeans_result *pal, colour_space space) {
    for (int c = 0; c < pal->k; c++)
        if (space == SPACE_LAB)
            printf("  %8.3f %8.3f\n", pal->centres[c][0], pal->centres[c][1]);
        else
            printf("  %8.3f %8.3f %8.3f\n", pal->centres[c][0], pal->centres[c][1],
                   pal->centres[c][2]);
}

int cmd_palette(int argc, char **argv) {
    options o;
    int r = parse_data_command(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    if ((r = mode_defaults(&o, NULL)) != 0) return r;
    o.val = 0;
    cifar_dataset ds;
    kmeans_result pal;
    if ((r = load_dataset(&o, &ds)) != 0) return r;
    r = fit_palette(&o, &ds, &pal);
    cifar_free(&ds);
    if (r) return r;
    printf("pixels      %zu\n", pal.n_points);
    printf("iterations  %d\n", pal.iterations);
    printf("inertia     %.6e\n", pal.inertia);
    printf("time        %.3f s (k-means, %d threads, %s)\n", pal.seconds, omp_get_max_threads(),
           simd_path_name(simd_active()));
    printf("centres     %s\n",
           o.space == SPACE_LAB ? "(a* b*, least chroma first)" : "(R G B, darkest first)");
    print_centres(&pal, o.space);
    return 0;
}
