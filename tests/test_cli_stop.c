/* Runs that stop before their end: Ctrl-C (SIGINT) keeps the epochs
 * completed, killed runs resume byte for byte, and one run per output
 * folder, whose lock holds until the run's outputs are written. */
#include <fcntl.h>

#include "tests/cli_util.h"

/* The epochs the program says it kept when interrupted, or -1. */
static int epochs_kept(const char *log) {
    char *text = read_text(log);
    const char *at = strstr(text, "stopped by Interrupt after ");
    int n = -1;
    if (at) sscanf(at, "stopped by Interrupt after %d epochs", &n);
    free(text);
    return n;
}

START_TEST(test_interrupt_keeps_completed_work) {
    char o[256], args[1024], log[300], tsv[300], model[300];
    snprintf(o, sizeof o, "%s/int", root);
    snprintf(log, sizeof log, "%s/int.log", root);
    snprintf(tsv, sizeof tsv, "%s/errors.tsv", o);
    snprintf(model, sizeof model, "%s/model.bin", o);
    /* Epochs without end on the tiny set; SIGINT once the first epoch is on
     * disk (errors.tsv appears, whole, when it is). */
    snprintf(args, sizeof args, "%s -o %s --epochs 100000 --val 4 -q -t 2", bin_dir, o);
    pid_t pid = start(args, log);
    wait_for(pid, log, tsv, NULL, 60);
    int code = stop_with(pid, SIGINT, 60);
    char *text = read_text(log);
    ck_assert_msg(code == 130, "exit status %d, not 130; log:\n%s", code, text);
    free(text);
    const char *files[] = {"errors.tsv",  "errors.svg", "compare.ppm",
                           "palette.txt", "model.bin",  "summary.txt"};
    size_t len;
    for (int i = 0; i < 6; i++)
        free(slurp(o, files[i], &len));
    /* As many epochs in errors.tsv and the model as the program says it kept. */
    int kept = epochs_kept(log);
    ck_assert_int_ge(kept, 1);
    char *rows = slurp(o, "errors.tsv", &len);
    ck_assert_int_eq(count(rows, "\n"), 1 + kept);
    free(rows);
    network *net;
    nn_model_meta meta;
    char e[512];
    ck_assert_msg(nn_load(model, 0, 0, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
    ck_assert_int_eq(meta.epochs, kept);
    nn_free(net);
}
END_TEST

/* A binary-layout dataset of birds only: per_batch records in each training
 * file, the usual test file. */
static void write_many_birds(const char *root_dir, int per_batch, char *dir, size_t len) {
    snprintf(dir, len, "%s/many/cifar-10-batches-bin", root_dir);
    char parent[300];
    snprintf(parent, sizeof parent, "%s/many", root_dir);
    ck_assert_int_eq(mkdir(parent, 0777), 0);
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    int n_max = per_batch > TEST_RECORDS ? per_batch : TEST_RECORDS;
    uint8_t *rows = malloc((size_t)n_max * 3072);
    int *labels = malloc((size_t)n_max * sizeof *labels);
    for (int f = 0; f < 6; f++) {
        int n = f < 5 ? per_batch : TEST_RECORDS;
        for (int i = 0; i < n; i++) {
            labels[i] = f < 5 ? 2 : record_label(f, i);
            make_record(f * 1000 + i, labels[i], rows + (size_t)i * 3072);
        }
        char name[64];
        if (f < 5)
            snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        fx_buf b = {0};
        fx_bin(&b, n, labels, rows);
        tu_write(dir, name, b.p, b.n);
        fx_free(&b);
    }
    free(rows);
    free(labels);
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    tu_write(dir, "batches.meta.txt", names, strlen(names));
}

START_TEST(test_interrupt_in_the_first_epoch_still_writes_a_model) {
    char many[300], o[256], args[1024], log[300], model[300];
    /* 1496 training images one at a time: an epoch of 1496 steps, hundreds
     * of times longer than the 10 ms poll, in which SIGINT, sent once the
     * network table is printed (the handler is in place by then), stops the
     * run after the step under way. */
    write_many_birds(root, 300, many, sizeof many);
    snprintf(o, sizeof o, "%s/first", root);
    snprintf(log, sizeof log, "%s/first.log", root);
    snprintf(model, sizeof model, "%s/model.bin", o);
    snprintf(args, sizeof args, "%s -o %s --batch 1 --epochs 5 --val 4 -t 2 --sample 0.1", many, o);
    pid_t pid = start(args, log);
    wait_for(pid, log, log, "     total", 120);
    int code = stop_with(pid, SIGINT, 120);
    char *text = read_text(log);
    ck_assert_msg(code == 130, "exit status %d, not 130; log:\n%s", code, text);
    ck_assert_msg(epochs_kept(log) == 0 && !strstr(text, "epoch   1/"),
                  "the first epoch was complete before SIGINT landed; log:\n%s", text);
    free(text);
    size_t len;
    char *tsv = slurp(o, "errors.tsv", &len);
    ck_assert_int_eq(count(tsv, "\n"), 1); /* the header only: no epoch was complete */
    free(tsv);
    /* The model holds the initial weights (seed 1) and predicts. */
    network *net, *init;
    nn_model_meta meta;
    char e[512];
    ck_assert_msg(nn_load(model, 0, 0, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
    ck_assert_int_eq(meta.epochs, 0);
    ck_assert_int_eq(nn_steps(net), 0);
    ck_assert_msg(nn_create("default", 32, 32, meta.k, 1, &init, e, sizeof e) == 0, "%s", e);
    nn_init_weights(init, 1);
    ck_assert_uint_eq(nn_param_count(net), nn_param_count(init));
    ck_assert_msg(memcmp(nn_params(net), nn_params(init), nn_param_count(net) * sizeof(float)) == 0,
                  "model.bin does not hold the initial weights");
    nn_free(net);
    nn_free(init);
    char pic[300], res[300];
    tu_write(root, "p.pgm", "P5\n2 2\n255\n0123", 15);
    snprintf(pic, sizeof pic, "%s/p.pgm", root);
    snprintf(res, sizeof res, "%s/p.ppm", root);
    ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
    check_predicted_colours(model, pic, res);
}
END_TEST

/* errors.tsv of dir without its seconds columns */
static char *tsv_without_seconds(const char *dir) {
    size_t len;
    char *tsv = slurp(dir, "errors.tsv", &len);
    strip_seconds(tsv);
    return tsv;
}

START_TEST(test_killed_runs_resume_byte_identical) {
    /* Five whole runs: natively a few seconds, under an emulator (make
     * test-noavx2, test-aarch64) minutes, for nothing the native run misses. */
    if (getenv("RUNNER") && getenv("RUNNER")[0]) {
        printf("test_killed_runs_resume_byte_identical: skipped under %s\n", getenv("RUNNER"));
        return;
    }
    char many[300], whole[256], o[256], log[300], model[300], args[1024];
    /* 496 images in batches of 2: epochs long enough that a signal sent as
     * the first checkpoint appears lands in the second or third */
    write_many_birds(root, 100, many, sizeof many);
    const char *common = "--batch 2 --val 4 -t 2 --sample 0.1 -q";
    snprintf(whole, sizeof whole, "%s/whole", root);
    ck_assert_msg(run("%s %s --epochs 3 -o %s", many, common, whole) == 0, "%s", err);
    size_t len_a, len_b;
    char *model_a = slurp(whole, "model.bin", &len_a), *tsv_a = tsv_without_seconds(whole);
    const int sigs[2] = {SIGKILL, SIGTERM};
    for (int i = 0; i < 2; i++) {
        snprintf(o, sizeof o, "%s/killed%d", root, i);
        snprintf(log, sizeof log, "%s/killed%d.log", root, i);
        snprintf(model, sizeof model, "%s/model.bin", o);
        snprintf(args, sizeof args, "%s %s --epochs 3 -o %s", many, common, o);
        pid_t pid = start(args, log);
        wait_for(pid, log, model, NULL, 120);
        int code = stop_with(pid, sigs[i], 120);
        char *text = read_text(log);
        ck_assert_msg(code == 128 + sigs[i], "signal %d: exit status %d; log:\n%s", sigs[i], code,
                      text);
        free(text);
        /* the rest of the plan, without --epochs: the same bytes as the run never stopped */
        ck_assert_msg(run("%s %s --resume %s -o %s", many, common, model, o) == 0, "%s", err);
        char *model_b = slurp(o, "model.bin", &len_b), *tsv_b = tsv_without_seconds(o);
        ck_assert_msg(len_a == len_b && memcmp(model_a, model_b, len_a) == 0,
                      "signal %d: the resumed model differs from the whole run's", sigs[i]);
        ck_assert_str_eq(tsv_a, tsv_b);
        free(model_b);
        free(tsv_b);
    }
    /* a finished plan has nothing left to train without --epochs: the outputs
     * are written again (a run killed after its last epoch lacks some), the
     * model byte for byte as it was */
    unlink(model);
    ck_assert_msg(run("%s --batch 2 --val 4 -t 2 --sample 0.1 --resume %s/model.bin -o %s", many,
                      whole, o) == 0,
                  "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "finished its plan of 3 epochs: nothing to train"));
    size_t len_c;
    char *model_c = slurp(o, "model.bin", &len_c), *tsv_c = tsv_without_seconds(o);
    ck_assert(len_c == len_a && memcmp(model_a, model_c, len_a) == 0);
    ck_assert_str_eq(tsv_a, tsv_c);
    free(model_c);
    free(tsv_c);
    free(model_a);
    free(tsv_a);
}
END_TEST

START_TEST(test_one_run_per_folder) {
    char o[256], args[1024], log[300], tsv[300];
    snprintf(o, sizeof o, "%s/locked", root);
    snprintf(log, sizeof log, "%s/locked.log", root);
    snprintf(tsv, sizeof tsv, "%s/errors.tsv", o);
    snprintf(args, sizeof args, "%s -o %s --epochs 100000 --val 4 -q -t 2", bin_dir, o);
    pid_t pid = start(args, log);
    wait_for(pid, log, tsv, NULL, 60);
    /* a second run into the folder a live run is writing is refused */
    ck_assert_int_eq(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, o), 2);
    ck_assert_msg(strstr(err, "another colorize run (pid ") && count(err, "\n") == 1, "%s", err);
    /* SIGHUP stops it as Ctrl-C does, with every output */
    int code = stop_with(pid, SIGHUP, 60);
    ck_assert_int_eq(code, 128 + SIGHUP);
    char *text = read_text(log);
    ck_assert_msg(strstr(text, "stopped by Hangup after") && strstr(text, "outputs written"), "%s",
                  text);
    free(text);
    size_t len;
    free(slurp(o, "summary.txt", &len));
    /* the lock of a run that has ended never blocks */
    ck_assert_msg(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, o) == 0, "%s", err);
}
END_TEST

/* The lock holds until the last output is written, past the Lab mode's
 * scoring: a run whose summary.txt.tmp is a FIFO stops in the open of its
 * last output (the open waits for a reader) once everything else, the
 * scores included, is done, and holds there for as long as the test likes;
 * a second run into the folder is refused then. */
START_TEST(test_the_lock_holds_through_scoring_and_outputs) {
    char o[256], args[1024], log[300], fifo[300], compare[300], log2[300];
    snprintf(o, sizeof o, "%s/scoring", root);
    snprintf(log, sizeof log, "%s/scoring.log", root);
    snprintf(log2, sizeof log2, "%s/second.log", root);
    snprintf(fifo, sizeof fifo, "%s/summary.txt.tmp", o);
    snprintf(compare, sizeof compare, "%s/compare.ppm", o);
    ck_assert_int_eq(mkdir(o, 0777), 0);
    ck_assert_int_eq(mkfifo(fifo, 0666), 0);
    snprintf(args, sizeof args, "%s -o %s --space lab -k 8 --epochs 1 --val 4 -q -t 2", bin_dir, o);
    pid_t first = start(args, log);
    /* compare.ppm is written after the scores, just before summary.txt */
    wait_for(first, log, compare, NULL, 120);
    snprintf(args, sizeof args, "%s -o %s --epochs 1 --val 4 -q", bin_dir, o);
    pid_t second = start(args, log2);
    /* refused at once; were it not, it would train and then wait on the FIFO too */
    double limit = 60 * time_scale(), t0 = now_seconds();
    int status, ended;
    while (!(ended = waitpid(second, &status, WNOHANG) == second) && now_seconds() - t0 < limit)
        usleep(10000);
    if (!ended) kill(second, SIGKILL), waitpid(second, &status, 0);
    /* let the first run finish: read its summary through the FIFO */
    int fd = open(fifo, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    int first_status;
    t0 = now_seconds();
    while (waitpid(first, &first_status, WNOHANG) != first) {
        char buf[4096];
        if (read(fd, buf, sizeof buf) <= 0) usleep(10000);
        ck_assert_msg(now_seconds() - t0 < limit, "the first run did not end");
    }
    close(fd);
    char *said = read_text(log2);
    ck_assert_msg(ended,
                  "a second run while the first wrote its outputs was not refused: still "
                  "running after %.0f s; it said:\n%s",
                  limit, said);
    ck_assert_msg(
        WIFEXITED(status) && WEXITSTATUS(status) == 2 && strstr(said, "another colorize run (pid "),
        "a second run while the first wrote its outputs was not refused; it said:\n%s", said);
    free(said);
    char *text = read_text(log);
    ck_assert_msg(WIFEXITED(first_status) && WEXITSTATUS(first_status) == 0, "%s", text);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_stop");
    TCase *tc = tcase_create("cli_stop");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_killed_runs_resume_byte_identical);
    tcase_add_test(tc, test_one_run_per_folder);
    tcase_add_test(tc, test_the_lock_holds_through_scoring_and_outputs);
    tcase_add_test(tc, test_interrupt_keeps_completed_work);
    tcase_add_test(tc, test_interrupt_in_the_first_epoch_still_writes_a_model);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
