/* The program as a user meets it: `colorize info`, a whole run on a tiny
 * dataset in both layouts with every output checked, predict, resume, bad
 * command lines, thread-count determinism and Ctrl-C. */
#include <signal.h>
#include <stdarg.h>

#include "cifar.h"
#include "tests/cifar_fixtures.h"
#include "tests/testutil.h"
#include "util.h"

enum { PER_BATCH = 12, BIRDS_PER_BATCH = 4, TEST_RECORDS = 20, TEST_BIRDS = 10 };

/* A record: label, then planar RGB of a smooth coloured pattern whose
 * colour follows its brightness, so that there is something to learn. */
static void make_record(int index, int label, uint8_t *planes) {
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            int v = (x * (3 + index % 5) + y * (2 + index % 3) + 17 * index) % 256;
            int p = y * 32 + x;
            planes[p] = (uint8_t)v;
            planes[1024 + p] = (uint8_t)(v > 128 ? 255 - v / 3 : v / 2);
            planes[2048 + p] = (uint8_t)((v * 7 + label * 20) % 256);
        }
}

/* Labels of file f (0..4 training, 5 test): birds (2) at the even records
 * up to their count, other classes between them. */
static int record_label(int f, int i) {
    int birds = f < 5 ? BIRDS_PER_BATCH : TEST_BIRDS;
    return i % 2 == 0 && i < 2 * birds ? 2 : i % 2 == 0 ? 7 : i % 10;
}

static void write_dataset(const char *root, int py, char *dir, size_t len) {
    snprintf(dir, len, "%s/%s", root, py ? "cifar-10-batches-py" : "cifar-10-batches-bin");
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    static const char *names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck"};
    for (int f = 0; f < 6; f++) {
        int n = f < 5 ? PER_BATCH : TEST_RECORDS;
        uint8_t *rows = malloc((size_t)n * 3072);
        int labels[TEST_RECORDS];
        for (int i = 0; i < n; i++) {
            labels[i] = record_label(f, i);
            make_record(f * 100 + i, labels[i], rows + (size_t)i * 3072);
        }
        char name[64];
        if (f < 5) snprintf(name, sizeof name, "data_batch_%d%s", f + 1, py ? "" : ".bin");
        else snprintf(name, sizeof name, "test_batch%s", py ? "" : ".bin");
        fx_buf b = {0};
        if (py) {
            char label[64];
            snprintf(label, sizeof label, "training batch %d of 5", f + 1);
            fx_batch x = {n, 3072, rows, "u1", 0, n, labels, label};
            fx_pickle_py2(&b, &x);
        } else {
            fx_bin(&b, n, labels, rows);
        }
        tu_write(dir, name, b.p, b.n);
        fx_free(&b);
        free(rows);
    }
    fx_buf m = {0};
    if (py) {
        fx_meta_py2(&m, names, 10);
        tu_write(dir, "batches.meta", m.p, m.n);
    } else {
        for (int c = 0; c < 10; c++) {
            fx_put(&m, names[c], strlen(names[c]));
            fx_byte(&m, '\n');
        }
        tu_write(dir, "batches.meta.txt", m.p, m.n);
    }
    fx_free(&m);
}

static char root[64], bin_dir[200], py_dir[200];

static void setup(void) {
    tu_mkdtemp(root, sizeof root);
    write_dataset(root, 0, bin_dir, sizeof bin_dir);
    write_dataset(root, 1, py_dir, sizeof py_dir);
}

static void teardown(void) { tu_rmtree(root); }

static char out[1 << 16], err[1 << 14];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tu_run(args, out, sizeof out, err, sizeof err);
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *data;
    char e[256];
    ck_assert_msg(read_file(path, &data, len, e, sizeof e) == 0, "%s", e);
    data = realloc(data, *len + 1);
    data[*len] = 0;
    return (char *)data;
}

START_TEST(test_info_in_both_layouts) {
    const char *dirs[2] = {bin_dir, py_dir};
    for (int d = 0; d < 2; d++) {
        ck_assert_int_eq(run("info %s --val 4", dirs[d]), 0);
        ck_assert_ptr_nonnull(strstr(out, d ? "cifar-10-batches-py" : "cifar-10-batches-bin"));
        ck_assert_msg(strstr(out, "chosen  bird (class 2): 16 training, 4 validation, 10 test images"),
                      "%s", out);
        ck_assert_ptr_nonnull(strstr(out, "12 records"));
        ck_assert_ptr_nonnull(strstr(out, "20 records"));
    }
    ck_assert_int_eq(run("info %s --class 7 --val 2", bin_dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "chosen  horse (class 7)"));
}
END_TEST

/* Checks a P6 header and returns the pixel bytes' offset. */
static size_t check_ppm(const char *data, size_t len, int want_w, int want_h) {
    int w, h, maxval, used = 0;
    ck_assert_int_eq(sscanf(data, "P6 %d %d %d%n", &w, &h, &maxval, &used), 3);
    ck_assert_int_eq(w, want_w);
    ck_assert_int_eq(h, want_h);
    ck_assert_int_eq(maxval, 255);
    ck_assert_uint_eq(len, (size_t)used + 1 + (size_t)w * h * 3);
    return (size_t)used + 1;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The TSV without its two seconds columns. */
static void strip_seconds(char *tsv) {
    char *w = tsv;
    for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
        int tabs = 0;
        for (char *p = line; *p && tabs < 7; p++) {
            tabs += *p == '\t';
            if (tabs < 7) *w++ = *p;
        }
        *w++ = '\n';
    }
    *w = 0;
}

START_TEST(test_full_run_outputs) {
    char o_bin[256], o_py[256];
    snprintf(o_bin, sizeof o_bin, "%s/out-bin", root);
    snprintf(o_py, sizeof o_py, "%s/out-py/nested", root);
    ck_assert_msg(run("%s -o %s --epochs 2 --val 4 -t 2", bin_dir, o_bin) == 0, "%s", err);
    ck_assert_msg(strstr(out, "epoch   2/2") && strstr(out, "final") && strstr(out, "baseline"), "%s", out);
    ck_assert_msg(run("%s -o %s --epochs 2 --val 4 -t 2", py_dir, o_py) == 0, "%s", err);
    size_t len;
    char *tsv = slurp(o_bin, "errors.tsv", &len);
    ck_assert_int_eq(strncmp(tsv, "epoch\ttrain_error\tval_error\ttest_error\ttrain_loss\tval_loss\t"
                                  "test_loss\ttrain_seconds\teval_seconds\n", 94), 0);
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

START_TEST(test_predict_and_resume) {
    char o[256], model[300], pic[300], res[300];
    snprintf(o, sizeof o, "%s/out", root);
    snprintf(model, sizeof model, "%s/model.bin", o);
    ck_assert_msg(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, o) == 0, "%s", err);
    /* A gray 48x40 picture and a colour 32x32 one. */
    const int sizes[2][2] = {{48, 40}, {32, 32}};
    for (int i = 0; i < 2; i++) {
        int w = sizes[i][0], h = sizes[i][1], ch = i ? 3 : 1;
        char head[64];
        int hl = snprintf(head, sizeof head, "P%d\n%d %d\n255\n", i ? 6 : 5, w, h);
        size_t n = (size_t)w * h * ch;
        uint8_t *buf = malloc(hl + n);
        memcpy(buf, head, hl);
        for (size_t j = 0; j < n; j++) buf[hl + j] = (uint8_t)(j * 7);
        tu_write(root, "in.pnm", buf, hl + n);
        free(buf);
        snprintf(pic, sizeof pic, "%s/in.pnm", root);
        snprintf(res, sizeof res, "%s/res.ppm", root);
        ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
        size_t len;
        char *got = slurp(root, "res.ppm", &len);
        check_ppm(got, len, w, h);
        free(got);
    }
    /* An odd size cannot pass the pooling and upsampling. */
    tu_write(root, "odd.pgm", "P5\n3 3\n255\n012345678", 20);
    snprintf(pic, sizeof pic, "%s/odd.pgm", root);
    ck_assert_int_eq(run("predict %s %s %s", model, pic, res), 2);
    ck_assert_ptr_nonnull(strstr(err, "odd.pgm"));
    /* Resume: one more epoch, appended. */
    ck_assert_msg(run("%s -o %s --epochs 1 --val 4 -q --resume %s", bin_dir, o, model) == 0, "%s", err);
    size_t len;
    char *tsv = slurp(o, "errors.tsv", &len);
    ck_assert_int_eq(count(tsv, "\n"), 3);
    ck_assert_ptr_nonnull(strstr(tsv, "\n2\t"));
    free(tsv);
    /* A foreign file as a model. */
    ck_assert_int_eq(run("%s -o %s --resume %s/in.pnm", bin_dir, o, root), 2);
    ck_assert_ptr_nonnull(strstr(err, "not a colorize model"));
}
END_TEST

START_TEST(test_bad_command_lines) {
    const char *bad[] = {
        "--epochs 0 %s", "-k 1 %s", "--colors 65 %s", "--sample 0 %s", "--sample 1.5 %s",
        "--threads 0 %s", "--batch 0 %s", "--class ostrich %s", "--class 10 %s",
        "--arch nonsense %s", "--frobnicate %s", "--epochs 3x %s", "--lr -1 %s",
        "--optimizer rmsprop %s", "--schedule wavy %s", "%s extra", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, bad[i], bin_dir);
        ck_assert_msg(run("%s -o %s/never", args, root) == 2, "'%s' did not exit 2", args);
        ck_assert_msg(strstr(err, "Try 'colorize --help'"), "'%s': %s", args, err);
        ck_assert_msg(count(err, "\n") == 2, "'%s' printed more than one line: %s", args, err);
    }
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

START_TEST(test_interrupt_keeps_completed_work) {
    char o[256], cmd[1024];
    snprintf(o, sizeof o, "%s/int", root);
    /* Many epochs on the tiny set; SIGINT once the first epoch is on disk. */
    snprintf(cmd, sizeof cmd,
             "%s %s -o %s --epochs 100000 --val 4 -q -t 2 >/dev/null 2>&1 & pid=$!; "
             "for i in $(seq 600); do [ -f %s/errors.tsv ] && break; sleep 0.05; done; "
             "kill -INT $pid; wait $pid; echo \"status $?\" > %s/status",
             tu_binary(), bin_dir, o, o, root);
    ck_assert_int_eq(system(cmd), 0);
    size_t len;
    char *st = slurp(root, "status", &len);
    ck_assert_str_eq(st, "status 130\n");
    free(st);
    const char *files[] = {"errors.tsv", "errors.svg", "compare.ppm", "palette.txt", "model.bin", "summary.txt"};
    for (int i = 0; i < 6; i++) free(slurp(o, files[i], &len));
    char *tsv = slurp(o, "errors.tsv", &len);
    ck_assert_int_ge(count(tsv, "\n"), 2);
    free(tsv);
}
END_TEST

START_TEST(test_interrupt_in_the_first_epoch_still_writes_a_model) {
    char o[256], cmd[1024];
    snprintf(o, sizeof o, "%s/first", root);
    /* A heavy network one image at a time: the first epoch lasts long enough
     * for SIGINT to land in it once the network table is printed. */
    snprintf(cmd, sizeof cmd,
             "%s %s -o %s --arch pixel --batch 1 --epochs 5 --val 4 -t 2 >%s/log 2>&1 & pid=$!; "
             "for i in $(seq 600); do grep -q total %s/log 2>/dev/null && break; sleep 0.01; done; "
             "kill -INT $pid; wait $pid; echo \"status $?\" > %s/status",
             tu_binary(), bin_dir, o, root, root, root);
    ck_assert_int_eq(system(cmd), 0);
    size_t len;
    char *st = slurp(root, "status", &len);
    ck_assert_str_eq(st, "status 130\n");
    free(st);
    char *tsv = slurp(o, "errors.tsv", &len);
    ck_assert_int_eq(count(tsv, "\n"), 1); /* the header only: no epoch was complete */
    free(tsv);
    /* The model holds the initial weights and predicts. */
    char model[300], pic[300], res[300];
    snprintf(model, sizeof model, "%s/model.bin", o);
    tu_write(root, "p.pgm", "P5\n2 2\n255\n0123", 15);
    snprintf(pic, sizeof pic, "%s/p.pgm", root);
    snprintf(res, sizeof res, "%s/p.ppm", root);
    ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_info_in_both_layouts);
    tcase_add_test(tc, test_full_run_outputs);
    tcase_add_test(tc, test_predict_and_resume);
    tcase_add_test(tc, test_bad_command_lines);
    tcase_add_test(tc, test_threads_give_identical_results);
    tcase_add_test(tc, test_interrupt_keeps_completed_work);
    tcase_add_test(tc, test_interrupt_in_the_first_epoch_still_writes_a_model);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
