/* The program as a user meets it: `colorize info`, a whole run on a tiny
 * dataset in both layouts with every output checked, bad command lines,
 * thread-count determinism, a one-epoch model pinned, and the palettes of
 * another build (COLORIZE_REF_BIN). Predict, the Lab mode, stopped runs and
 * failing file systems have test_cli_*.c of their own. */
#include "tests/cli_util.h"

START_TEST(test_info_in_both_layouts) {
    const char *dirs[2] = {bin_dir, py_dir};
    for (int d = 0; d < 2; d++) {
        ck_assert_int_eq(run("info %s --val 4", dirs[d]), 0);
        ck_assert_ptr_nonnull(strstr(out, d ? "cifar-10-batches-py" : "cifar-10-batches-bin"));
        ck_assert_msg(
            strstr(out, "chosen  bird (class 2): 16 training, 4 validation, 10 test images"), "%s",
            out);
        ck_assert_ptr_nonnull(strstr(out, "12 records"));
        ck_assert_ptr_nonnull(strstr(out, "20 records"));
    }
    ck_assert_int_eq(run("info %s --class 7 --val 2", bin_dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "chosen  horse (class 7)"));
    ck_assert_int_eq(count(out, "<- chosen"), 1);
}
END_TEST

/* --class takes a list (cats are record 3 of every file and 13 of the test
 * file) or all; info marks every chosen class. */
START_TEST(test_info_class_lists) {
    const char *dirs[2] = {bin_dir, py_dir};
    for (int d = 0; d < 2; d++) {
        ck_assert_msg(run("info %s --class bird,cat --val 4", dirs[d]) == 0, "%s", err);
        ck_assert_msg(strstr(out, "chosen  bird+cat (classes 2, 3): 21 training, 4 validation, "
                                  "12 test images"),
                      "%s", out);
        ck_assert_int_eq(count(out, "<- chosen"), 2);
        ck_assert_ptr_nonnull(strstr(out, "class   2  bird              20      10  <- chosen\n"));
        ck_assert_ptr_nonnull(strstr(out, "class   3  cat                5       2  <- chosen\n"));
        ck_assert_msg(run("info %s --class All --val 4", dirs[d]) == 0, "%s", err);
        ck_assert_msg(
            strstr(out, "chosen  all classes (0..9): 56 training, 4 validation, 20 test images"),
            "%s", out);
        ck_assert_int_eq(count(out, "<- chosen"), 10);
    }
    ck_assert_int_eq(run("info %s --class 3,bird --val 0", bin_dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "chosen  bird+cat (classes 2, 3): 25 training"));
    /* A bad list: exit 2, one line naming the item, then the hint. */
    ck_assert_int_eq(run("info %s --class bird,,cat", bin_dir), 2);
    ck_assert_str_eq(err, "colorize: empty class name (item 2) in 'bird,,cat'\n"
                          "Try 'colorize --help' for more information.\n");
    ck_assert_int_eq(run("info %s --class cat,bird,3", bin_dir), 2);
    ck_assert_ptr_nonnull(
        strstr(err, "colorize: class '3' (cat) is listed twice in 'cat,bird,3'\n"));
    ck_assert_int_eq(count(err, "\n"), 2);
    ck_assert_str_eq(out, "");
}
END_TEST

/* A run over two classes names them in its load line, summary and plot. */
START_TEST(test_run_over_a_class_list) {
    char o[256];
    snprintf(o, sizeof o, "%s/out-list", root);
    ck_assert_msg(run("%s -o %s --class cat,bird --epochs 1 --val 4 -t 2", py_dir, o) == 0, "%s",
                  err);
    ck_assert_msg(strstr(out, "load     cifar-10-batches-py: bird+cat (classes 2, 3): 21 train, "
                              "4 validation, 12 test images"),
                  "%s", out);
    size_t len;
    char *sum = slurp(o, "summary.txt", &len);
    ck_assert_msg(strstr(sum, "(cifar-10-batches-py), bird+cat (classes 2, 3): 21 train, 4 val, "
                              "12 test images\n"),
                  "%s", sum);
    free(sum);
    char *svg = slurp(o, "errors.svg", &len);
    ck_assert_ptr_nonnull(strstr(svg, "colorize: pixel error per epoch (bird+cat, k = "));
    free(svg);
}
END_TEST

START_TEST(test_full_run_outputs) {
    char o_bin[256], o_py[256];
    snprintf(o_bin, sizeof o_bin, "%s/out-bin", root);
    snprintf(o_py, sizeof o_py, "%s/out-py/nested", root);
    ck_assert_msg(run("%s -o %s --epochs 2 --val 4 -t 2", bin_dir, o_bin) == 0, "%s", err);
    ck_assert_msg(strstr(out, "epoch   2/2") && strstr(out, "final") && strstr(out, "baseline"),
                  "%s", out);
    ck_assert_msg(run("%s -o %s --epochs 2 --val 4 -t 2", py_dir, o_py) == 0, "%s", err);
    size_t len;
    char *tsv = slurp(o_bin, "errors.tsv", &len);
    ck_assert_int_eq(strncmp(tsv,
                             "epoch\ttrain_error\tval_error\ttest_error\ttrain_loss\tval_loss\t"
                             "test_loss\ttrain_seconds\teval_seconds\n",
                             94),
                     0);
    ck_assert_int_eq(count(tsv, "\n"), 3);
    ck_assert_int_eq(count(tsv, "\t"), 3 * 8);
    double e1, e2, e3;
    ck_assert_int_eq(sscanf(strchr(tsv, '\n') + 1, "1 %lf %lf %lf", &e1, &e2, &e3), 3);
    ck_assert(e1 >= 0 && e1 <= 1 && e3 >= 0 && e3 <= 1);
    /* Same data in the other layout: the same numbers. */
    char *tsv_py = slurp(o_py, "errors.tsv", &len);
    strip_seconds(tsv);
    strip_seconds(tsv_py);
    ck_assert_str_eq(tsv, tsv_py);
    free(tsv);
    free(tsv_py);
    char *svg = slurp(o_bin, "errors.svg", &len);
    ck_assert_ptr_nonnull(strstr(svg, "<svg"));
    ck_assert_ptr_nonnull(strstr(svg, "</svg>"));
    ck_assert_int_eq(count(svg, "<polyline"), 3);
    free(svg);
    char *ppm = slurp(o_bin, "compare.ppm", &len);
    check_ppm(ppm, len, 4 + 4 * (128 + 4), 4 + 10 * (128 + 4));
    free(ppm);
    char *pal = slurp(o_bin, "palette.txt", &len);
    ck_assert_int_eq(count(pal, "\n"), 4);
    float r, g, b;
    ck_assert_int_eq(sscanf(pal, "%f %f %f", &r, &g, &b), 3);
    free(pal);
    ppm = slurp(o_bin, "palette.ppm", &len);
    check_ppm(ppm, len, 4 + 4 * (32 + 4), 4 + 32 + 4);
    free(ppm);
    char *sum = slurp(o_bin, "summary.txt", &len);
    ck_assert_ptr_nonnull(strstr(sum, "command"));
    ck_assert_ptr_nonnull(strstr(sum, "--epochs 2"));
    ck_assert_ptr_nonnull(strstr(sum, "simd"));
    free(sum);
    free(slurp(o_bin, "model.bin", &len));
    ck_assert_uint_gt(len, 1000);
}
END_TEST

START_TEST(test_bad_command_lines) {
    const char *bad[] = {
        "--epochs 0 %s",
        "-k 1 %s",
        "--colors 65 %s",
        "--sample 0 %s",
        "--sample 1.5 %s",
        "--threads 0 %s",
        "--batch 0 %s",
        "--class ostrich %s",
        "--class 10 %s",
        "--class bird,,cat %s",
        "--class bird,2 %s",
        "--class all,cat %s",
        "--class bird, %s",
        "--arch nonsense %s",
        "--frobnicate %s",
        "--epochs 3x %s",
        "--lr -1 %s",
        "--optimizer rmsprop %s",
        "--schedule wavy %s",
        "%s extra",
        "",
    };
    expect_usage_errors(bad, sizeof bad / sizeof bad[0]);
    char never[300];
    snprintf(never, sizeof never, "%s/never", root);
    struct stat st;
    ck_assert_int_ne(stat(never, &st), 0);
    ck_assert_int_eq(run("--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "--epochs N"));
    ck_assert_int_eq(run("--version"), 0);
    /* Bad data and output folders: one line naming the path, exit 2. */
    ck_assert_int_eq(run("%s/nowhere -o %s/o", root, root), 2);
    ck_assert_ptr_nonnull(strstr(err, "nowhere"));
    ck_assert_int_eq(run("%s --val 4 -o /proc/colorize-cannot", bin_dir), 2);
    ck_assert_ptr_nonnull(strstr(err, "/proc/colorize-cannot"));
}
END_TEST

START_TEST(test_threads_give_identical_results) {
    char o1[256], o3[256];
    snprintf(o1, sizeof o1, "%s/t1", root);
    snprintf(o3, sizeof o3, "%s/t3", root);
    ck_assert(run("%s -o %s --epochs 2 --val 4 -q -t 1", bin_dir, o1) == 0);
    ck_assert(run("%s -o %s --epochs 2 --val 4 -q -t 3", bin_dir, o3) == 0);
    size_t l1, l3;
    char *a = slurp(o1, "model.bin", &l1), *b = slurp(o3, "model.bin", &l3);
    ck_assert_uint_eq(l1, l3);
    ck_assert_msg(memcmp(a, b, l1) == 0, "model.bin differs between 1 and 3 threads");
    free(a);
    free(b);
    a = slurp(o1, "errors.tsv", &l1);
    b = slurp(o3, "errors.tsv", &l3);
    strip_seconds(a);
    strip_seconds(b);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}
END_TEST

/* Drops the lines that start with `prefix` (a timing) from text, in place. */
static void drop_lines(char *text, const char *prefix) {
    char *w = text;
    for (const char *r = text; *r;) {
        const char *end = strchr(r, '\n');
        size_t len = end ? (size_t)(end - r) + 1 : strlen(r);
        if (strncmp(r, prefix, strlen(prefix)) != 0) memmove(w, r, len), w += len;
        r += len;
    }
    *w = 0;
}

/* The program under test gives the same palettes as another build of it,
 * $COLORIZE_REF_BIN (make test-aarch64: the emulated aarch64 program against
 * the native x86-64 one): k-means is exact on every kernel path and machine.
 * Everything but the timing line must match. */
START_TEST(test_palette_matches_reference_binary) {
    const char *ref = getenv("COLORIZE_REF_BIN");
    if (!ref || !*ref) {
        printf("test_palette_matches_reference_binary: skipped: COLORIZE_REF_BIN is not set\n");
        return;
    }
    char *mine_bin = strdup(tu_binary());
    const char *modes[] = {"", "--space lab -k 8", "--class all -k 6"};
    for (int m = 0; m < 3; m++) {
        ck_assert_int_eq(run("palette %s %s", bin_dir, modes[m]), 0);
        char *mine = strdup(out);
        setenv("COLORIZE_BIN", ref, 1);
        int status = run("palette %s %s", bin_dir, modes[m]);
        setenv("COLORIZE_BIN", mine_bin, 1);
        ck_assert_int_eq(status, 0);
        drop_lines(mine, "time");
        drop_lines(out, "time");
        ck_assert_msg(strcmp(mine, out) == 0, "palette %s: %s gives\n%s%s gives\n%s", modes[m],
                      mine_bin, mine, ref, out);
        free(mine);
    }
    free(mine_bin);
}
END_TEST

/* The model a short run gives, pinned: resume and thread counts only hold a
 * run against itself, so a change in what training draws from the seed (the
 * order each epoch's shuffle gives, the initial weights) shows only here.
 * The scalar kernels (COLORIZE_SIMD=scalar) round the same on every machine
 * and build; the AVX2 and portable ones round otherwise, and are held
 * against the scalar ones by test_kernels. The number is the checksum that
 * ends model.bin (nn_save), over every byte before it. */
START_TEST(test_two_epochs_give_the_pinned_model) {
    const uint64_t golden = 0x4e808364629c4e4aull;
    char o[256];
    snprintf(o, sizeof o, "%s/pinned", root);
    setenv("COLORIZE_SIMD", "scalar", 1);
    ck_assert_msg(run("%s -o %s --epochs 2 --batch 2 --val 4 -q -t 2", bin_dir, o) == 0, "%s", err);
    size_t len;
    char *model = slurp(o, "model.bin", &len);
    ck_assert_uint_gt(len, 8);
    uint64_t sum;
    memcpy(&sum, model + len - 8, 8);
    free(model);
    ck_assert_msg(sum == golden,
                  "model.bin of 2 epochs on the scalar kernels ends in checksum 0x%016llx, not the "
                  "pinned 0x%016llx: training draws other numbers from the seed",
                  (unsigned long long)sum, (unsigned long long)golden);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_info_in_both_layouts);
    tcase_add_test(tc, test_info_class_lists);
    tcase_add_test(tc, test_run_over_a_class_list);
    tcase_add_test(tc, test_full_run_outputs);
    tcase_add_test(tc, test_bad_command_lines);
    tcase_add_test(tc, test_threads_give_identical_results);
    tcase_add_test(tc, test_palette_matches_reference_binary);
    tcase_add_test(tc, test_two_epochs_give_the_pinned_model);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
