/* colorize [options] DATA_DIR: the whole task. The network is built (or
 * resumed) first, then the data read and the output folder made and
 * locked, the palette and the training data prepared, the network trained,
 * and every output written; in the Lab mode also the colour scores against
 * the no-learning baselines. */
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "cli.h"
#include "commands.h"
#include "kmeans.h"
#include "nn.h"
#include "out_dir.h"
#include "run.h"
#include "simd/simd.h"
#include "training_data.h"
#include "util.h"

/* The palette: fitted by k-means, or the resumed model's. */
static int choose_palette(run_state *rs, const nn_model_meta *resumed) {
    if (resumed) {
        rs->pal.k = resumed->k;
        memcpy(rs->pal.centres, resumed->centres, sizeof rs->pal.centres);
        say(rs, "palette  from the resumed model: %d colours\n", rs->pal.k);
        return 0;
    }
    int r = fit_palette(&rs->o, &rs->ds, &rs->pal);
    if (r) return r;
    say(rs, "palette  k-means k=%d on %zu pixels: %d iterations, inertia %.4e  %.2f s\n", rs->pal.k,
        rs->pal.n_points, rs->pal.iterations, rs->pal.inertia, rs->pal.seconds);
    for (int c = 0; c < rs->pal.k; c++)
        if (rs->o.space == SPACE_LAB)
            say(rs, "         class %-2d a*b* %7.2f %7.2f\n", c, rs->pal.centres[c][0],
                rs->pal.centres[c][1]);
        else
            say(rs, "         class %d  RGB %6.1f %6.1f %6.1f\n", c, rs->pal.centres[c][0],
                rs->pal.centres[c][1], rs->pal.centres[c][2]);
    return 0;
}

/* The palette, each pixel's class (the targets), the gray inputs and their
 * standardisation, and the no-learning baseline's errors. */
static int prepare_data(run_state *rs, const nn_model_meta *resumed) {
    double t0 = now_seconds();
    int r = choose_palette(rs, resumed);
    if (r) return r;
    rs->seconds_palette = now_seconds() - t0;
    t0 = now_seconds();
    char err[512];
    if (training_data_prepare(&rs->data, &rs->ds, &rs->pal, rs->o.space, rs->o.rebalance, resumed,
                              err, sizeof err) != 0) {
        say_error("%s", err);
        return EXIT_RUN_FAILED;
    }
    /* Training needs only the classes and inputs: the dataset's pictures go. */
    free(rs->ds.pixels);
    rs->ds.pixels = rs->ds.train = rs->ds.test = NULL;
    rs->seconds_prepare = now_seconds() - t0;
    say(rs, "prepare  quantised and gray: %d images, input mean %.4f std %.4f  %.2f s\n",
        rs->data.n_images, rs->data.mean, rs->data.std, rs->seconds_prepare);
    say(rs, "baseline %s: error train %.2f%%  val %.2f%%  test %.2f%%\n", baseline_name(rs),
        100 * rs->data.baseline[0].error, 100 * rs->data.baseline[1].error,
        100 * rs->data.baseline[2].error);
    return 0;
}

static void print_network(const run_state *rs) {
    const network *net = rs->net;
    say(rs, "network  %s\n", nn_spec(net));
    say(rs, "  #  %-28s %-14s    %-14s %10s %12s\n", "layer", "input", "output", "params",
        "MFLOP/img");
    size_t params = 0;
    for (int i = 0; i < nn_layer_count(net); i++) {
        nn_layer_info li;
        nn_layer_describe(net, i, &li);
        char in[32], out[32];
        snprintf(in, sizeof in, "%d x %d x %d", li.in.h, li.in.w, li.in.c);
        snprintf(out, sizeof out, "%d x %d x %d", li.out.h, li.out.w, li.out.c);
        say(rs, " %2d  %-28s %-14s -> %-14s %10zu %12.3f\n", i + 1, li.name, in, out, li.params,
            li.flops / 1e6);
        params += li.params;
    }
    say(rs, "     %-28s %-14s    %-14s %10zu %12.3f\n", "total", "", "", params,
        nn_forward_flops(net) / 1e6);
}

static void free_run(run_state *rs) {
    cifar_free(&rs->ds);
    training_data_free(&rs->data);
    free(rs->rows);
    nn_free(rs->net);
}

int cmd_run(int argc, char **argv) {
    run_state rs = {0};
    int lock_fd = -1;
    default_options(&rs.o);
    const char *dir;
    int r = parse_command_line(argc, argv, &rs.o, &dir, 1, "DATA_DIR");
    if (r) return r < 0 ? 0 : r;
    rs.o.data_dir = dir;
    nn_model_meta resumed;
    if ((r = build_network(&rs, &resumed)) != 0) goto done;
    /* Reading the data checks the class too; the output folder is made and
     * proved writable before any long work starts. */
    double t0 = now_seconds();
    if ((r = load_dataset(&rs.o, &rs.ds)) != 0) goto done;
    rs.seconds_load = now_seconds() - t0;
    char chosen[CIFAR_CHOICE_MAX];
    cifar_choice_label(&rs.ds, chosen, sizeof chosen);
    if (rs.ds.n_train == 0) {
        say_error("%s: no training images of %s", dir, chosen);
        r = EXIT_BAD_INPUT;
        goto done;
    }
    char err[512];
    if (out_dir_prepare(rs.o.out_dir, err, sizeof err) != 0 ||
        (lock_fd = out_dir_lock(rs.o.out_dir, err, sizeof err)) < 0) {
        say_error("%s", err);
        r = EXIT_BAD_INPUT;
        goto done;
    }
    rs.rows =
        calloc((size_t)rs.o.epochs + (rs.o.resume ? resumed.epochs : 0) + 1, sizeof(epoch_row));
    if (!rs.rows) {
        r = EXIT_RUN_FAILED;
        goto done;
    }
    if (rs.o.resume) {
        rs.n_rows = resumed.epochs; /* the earlier epochs' rows, from the folder's errors.tsv */
        report_read_errors_tsv(out_path(&rs, "errors.tsv").s, rs.rows, resumed.epochs);
    }
    say(&rs, "colorize %s: %d threads, %s kernels\n", COLORIZE_VERSION, omp_get_max_threads(),
        simd_path_name(simd_active()));
    say(&rs, "load     %s: %s: %d train, %d validation, %d test images  %.2f s\n",
        cifar_layout_name(rs.ds.layout), chosen, rs.ds.n_train, rs.ds.n_val, rs.ds.n_test,
        rs.seconds_load);
    if ((r = prepare_data(&rs, rs.o.resume ? &resumed : NULL)) != 0) goto done;
    catch_stop_signals(on_interrupt);
    print_network(&rs);
    int train_rc = train(&rs, rs.o.epochs);
    catch_stop_signals(SIG_DFL);
    if (rs.o.space == SPACE_LAB && rs.n_rows && (r = score_chroma(&rs)) != 0) goto done;
    if ((r = write_outputs(&rs)) != 0) goto done;
    if (rs.n_rows && rs.rows[rs.n_rows - 1].epoch) {
        const epoch_row *last = &rs.rows[rs.n_rows - 1];
        printf("final    error  train %.2f%%  val %.2f%%  test %.2f%%   loss %.3f / %.3f / %.3f\n",
               100 * last->score[0].error, 100 * last->score[1].error, 100 * last->score[2].error,
               last->score[0].loss, last->score[1].loss, last->score[2].loss);
    }
    printf("baseline error  train %.2f%%  val %.2f%%  test %.2f%%   (%s)\n",
           100 * rs.data.baseline[0].error, 100 * rs.data.baseline[1].error,
           100 * rs.data.baseline[2].error, baseline_name(&rs));
    print_chroma_table(&rs, stdout);
    printf("time     %.1f s: load %.2f, palette %.2f, prepare %.2f, train %.1f, eval %.1f\n",
           rs.seconds_load + rs.seconds_palette + rs.seconds_prepare + rs.seconds_train +
               rs.seconds_eval,
           rs.seconds_load, rs.seconds_palette, rs.seconds_prepare, rs.seconds_train,
           rs.seconds_eval);
    printf("outputs  %s/: errors.tsv errors.svg compare.ppm palette.txt palette.ppm model.bin "
           "summary.txt\n",
           rs.o.out_dir);
    r = train_rc;
    if (interrupted && r == 0) {
        fprintf(stderr, "%s: stopped by %s after %d epochs; outputs written\n", program,
                strsignal(interrupted), rs.n_rows);
        r = 128 + interrupted; /* as the shell reports a program the signal ended */
    }
done:
    if (lock_fd >= 0) close(lock_fd);
    free_run(&rs);
    return r;
}
