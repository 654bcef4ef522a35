/* The program as a user meets it: `colorize info`, a whole run on a tiny
 * dataset in both layouts with every output checked, predict, resume, bad
 * command lines, thread-count determinism, the palettes of another build
 * (COLORIZE_REF_BIN), killed and resumed runs, the folder lock, full and
 * read-only folders, and predict in tiles. */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>

#include "cifar.h"
#include "image.h"
#include "lab.h"
#include "nn.h"
#include "simd/simd.h"
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
    static const char *names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                    "dog",      "frog",       "horse", "ship", "truck"};
    for (int f = 0; f < 6; f++) {
        int n = f < 5 ? PER_BATCH : TEST_RECORDS;
        uint8_t *rows = malloc((size_t)n * 3072);
        int labels[TEST_RECORDS];
        for (int i = 0; i < n; i++) {
            labels[i] = record_label(f, i);
            make_record(f * 100 + i, labels[i], rows + (size_t)i * 3072);
        }
        char name[64];
        if (f < 5)
            snprintf(name, sizeof name, "data_batch_%d%s", f + 1, py ? "" : ".bin");
        else
            snprintf(name, sizeof name, "test_batch%s", py ? "" : ".bin");
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

static char root[64], bin_dir[200], py_dir[200], mnt[128];

static void setup(void) {
    tu_mkdtemp(root, sizeof root);
    write_dataset(root, 0, bin_dir, sizeof bin_dir);
    write_dataset(root, 1, py_dir, sizeof py_dir);
    mnt[0] = 0;
}

static void teardown(void) {
    if (mnt[0]) tu_umount(mnt);
    tu_rmtree(root);
}

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

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

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

/* The colours `colorize predict MODEL PIC RES` must have written: at each
 * pixel, the palette colour (rounded to bytes, as the program paints) of the
 * class to which the network, run here on the same standardised gray input
 * (gray in [0, 1], then (gray - mean) / std with the model's mean and std),
 * gives the most probability (the first, on a tie). Returns how many
 * different classes the picture got. */
static int check_predicted_colours(const char *model, const char *pic, const char *res) {
    char e[512];
    image in;
    ck_assert_msg(image_read_pnm(pic, &in, e, sizeof e) == 0, "%s", e);
    network *net;
    nn_model_meta meta;
    /* A side the pooling does not divide is padded by repeating the last row and column. */
    int w = in.width, h = in.height, pw = (w + 1) / 2 * 2, ph = (h + 1) / 2 * 2;
    ck_assert_msg(nn_load(model, ph, pw, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
    size_t n = (size_t)w * h;
    float *gray = malloc(n * sizeof *gray), *x = malloc((size_t)pw * ph * sizeof *x);
    if (in.channels == 3)
        gray_from_rgb(in.pixels, n, gray);
    else
        for (size_t i = 0; i < n; i++)
            gray[i] = in.pixels[i] / 255.0f;
    for (int y = 0; y < ph; y++)
        for (int xx = 0; xx < pw; xx++)
            x[y * pw + xx] =
                (gray[(y < h ? y : h - 1) * w + (xx < w ? xx : w - 1)] - meta.mean) / meta.std;
    simd_flush_subnormals(); /* as the program does */
    nn_forward(net, x, 1);
    const float *prob = net->act[net->n_layers];
    uint8_t *got;
    size_t len;
    ck_assert_msg(read_file(res, &got, &len, e, sizeof e) == 0, "%s", e);
    char *text = malloc(len + 1);
    memcpy(text, got, len);
    text[len] = 0;
    size_t at = check_ppm(text, len, in.width, in.height);
    free(text);
    int used[64] = {0}, n_used = 0;
    for (size_t i = 0; i < n; i++) {
        const float *q = prob + ((i / w) * pw + i % w) * meta.k;
        int best = 0;
        for (int c = 1; c < meta.k; c++)
            if (q[c] > q[best]) best = c;
        n_used += !used[best];
        used[best] = 1;
        for (int c = 0; c < 3; c++) {
            int want = (uint8_t)lrintf(meta.centres[best][c]), have = got[at + 3 * i + c];
            if (have != want)
                ck_abort_msg("%s: pixel (%zu, %zu) channel %d is %d; class %d's colour has %d", res,
                             i % in.width, i / in.width, c, have, best, want);
        }
    }
    free(got);
    free(x);
    free(gray);
    nn_free(net);
    image_free(&in);
    return n_used;
}

/* A model that was never trained: random weights, a palette of distinct
 * colours with halves and fractions to round, an unusual mean and std. */
static void write_untrained_model(const char *path) {
    network *net;
    char e[256];
    ck_assert_msg(nn_create("default", 32, 32, 4, 1, &net, e, sizeof e) == 0, "%s", e);
    nn_init_weights(net, 5);
    nn_model_meta meta = {.k = 4, .mean = 0.35f, .std = 0.2f};
    const float centres[4][3] = {{200.7f, 10.2f, 30.5f},
                                 {15.4f, 180.6f, 90.5f},
                                 {60.5f, 70.49f, 220.8f},
                                 {128.5f, 127.5f, 0.6f}};
    memcpy(meta.centres, centres, sizeof centres);
    ck_assert_msg(nn_save(net, &meta, path, e, sizeof e) == 0, "%s", e);
    nn_free(net);
}

START_TEST(test_predict_and_resume) {
    char o[256], model[300], pic[300], res[300], untrained[300];
    snprintf(o, sizeof o, "%s/out", root);
    snprintf(model, sizeof model, "%s/model.bin", o);
    snprintf(untrained, sizeof untrained, "%s/untrained.bin", root);
    write_untrained_model(untrained);
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
        for (size_t j = 0; j < n; j++)
            buf[hl + j] = (uint8_t)(j * 7);
        tu_write(root, "in.pnm", buf, hl + n);
        free(buf);
        snprintf(pic, sizeof pic, "%s/in.pnm", root);
        snprintf(res, sizeof res, "%s/res.ppm", root);
        ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
        check_predicted_colours(model, pic, res);
        /* This one gives the pixels several classes, so that a wrong class shows. */
        ck_assert_msg(run("predict %s %s %s", untrained, pic, res) == 0, "%s", err);
        int classes = check_predicted_colours(untrained, pic, res);
        ck_assert_msg(classes >= 2, "the untrained model gives %dx%d pixels one class", w, h);
    }
    /* An odd size is padded for the pooling and upsampling, and cut again. */
    tu_write(root, "odd.pgm", "P5\n3 3\n255\n012345678", 20);
    snprintf(pic, sizeof pic, "%s/odd.pgm", root);
    ck_assert_msg(run("predict %s %s %s", untrained, pic, res) == 0, "%s", err);
    check_predicted_colours(untrained, pic, res);
    /* Lab options mean nothing to an RGB model. */
    ck_assert_int_eq(run("predict --temperature 1 %s %s %s", model, pic, res), 2);
    ck_assert_ptr_nonnull(strstr(err, "Lab"));
    /* Resume: one more epoch, appended. */
    ck_assert_msg(run("%s -o %s --epochs 1 --val 4 -q --resume %s", bin_dir, o, model) == 0, "%s",
                  err);
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

/* ==== Ctrl-C, whatever the machine's speed ==== */

/* CK_TIMEOUT_MULTIPLIER (1 when unset): sanitizer and emulated runs, which
 * the Makefile gives 10 and 20, wait proportionally longer. */
static double time_scale(void) {
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    double v = m ? strtod(m, NULL) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

/* Starts `colorize ARGS` with stdout and stderr into log; the shell execs
 * it, so the pid is the program's (or that of the emulator running it, which
 * passes signals on). */
static pid_t start(const char *args, const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s %s >'%s' 2>&1 </dev/null", tu_binary(), args, log);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static char *read_text(const char *path) {
    uint8_t *data;
    size_t len;
    char e[256];
    if (read_file(path, &data, &len, e, sizeof e) != 0) return strdup("");
    char *text = realloc(data, len + 1);
    text[len] = 0;
    return text;
}

/* Polls every 10 ms until the file at path exists and, if needle is given,
 * holds it. Fails the test, with the log, if the program ends first or
 * seconds (times the multiplier) pass. */
static void wait_for(pid_t pid, const char *log, const char *path, const char *needle,
                     double seconds) {
    double limit = seconds * time_scale(), t0 = now_seconds();
    for (;;) {
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!needle) return;
            char *text = read_text(path);
            int found = strstr(text, needle) != NULL;
            free(text);
            if (found) return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char *text = read_text(log);
            ck_abort_msg("colorize ended (wait status %d) before %s held '%s'; log:\n%s", status,
                         path, needle ? needle : "", text);
        }
        if (now_seconds() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            char *text = read_text(log);
            ck_abort_msg("%s did not hold '%s' within %.0f s; log:\n%s", path, needle ? needle : "",
                         limit, text);
        }
        usleep(10000);
    }
}

/* SIGINT, then the exit status; -1 if it had not ended within seconds (times
 * the multiplier) and was killed, 128 + N if signal N ended it. */
/* Sends sig and waits for the program to end; its exit status, 128 + the
 * signal if a signal ended it, or -1 if it did not end in time. */
static int stop_with(pid_t pid, int sig, double seconds) {
    ck_assert_int_eq(kill(pid, sig), 0);
    double limit = seconds * time_scale(), t0 = now_seconds();
    int status;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (now_seconds() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

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
    ck_assert_int_eq(net->step, 0);
    ck_assert_msg(nn_create("default", 32, 32, meta.k, 1, &init, e, sizeof e) == 0, "%s", e);
    nn_init_weights(init, 1);
    ck_assert_uint_eq(net->n_params, init->n_params);
    ck_assert_msg(memcmp(net->params, init->params, net->n_params * sizeof(float)) == 0,
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

/* ==== The Lab mode ==== */

/* A PGM (channels 1) or PPM (3) of w x h with a smooth pattern. */
static void write_picture(const char *name, int w, int h, int channels) {
    char head[64];
    int hl = snprintf(head, sizeof head, "P%d\n%d %d\n255\n", channels == 3 ? 6 : 5, w, h);
    size_t n = (size_t)w * h * channels;
    uint8_t *buf = malloc(hl + n);
    memcpy(buf, head, hl);
    for (size_t j = 0; j < n; j++)
        buf[hl + j] =
            (uint8_t)((j / channels % w) * 3 + (j / channels / w) * 5 + j % channels * 40);
    tu_write(root, name, buf, hl + n);
    free(buf);
}

START_TEST(test_lab_run_outputs) {
    char o_bin[256], o_py[256];
    snprintf(o_bin, sizeof o_bin, "%s/lab-bin", root);
    snprintf(o_py, sizeof o_py, "%s/lab-py", root);
    const char *args = "--space lab -k 8 --epochs 2 --val 4 -t 2";
    ck_assert_msg(run("%s -o %s %s", bin_dir, o_bin, args) == 0, "%s", err);
    ck_assert_msg(strstr(out, "epoch   2/2") && strstr(out, "per-lightness"), "%s", out);
    /* the colour table: validation and test, every method, and the originals */
    ck_assert_int_eq(count(out, "colour   val"), 5);
    ck_assert_int_eq(count(out, "colour   test"), 5);
    ck_assert_ptr_nonnull(strstr(out, "network, T = 0.38"));
    ck_assert_msg(run("%s -o %s %s", py_dir, o_py, args) == 0, "%s", err);
    size_t len, len_py;
    char *tsv = slurp(o_bin, "errors.tsv", &len), *tsv_py = slurp(o_py, "errors.tsv", &len_py);
    ck_assert_int_eq(count(tsv, "\n"), 3);
    strip_seconds(tsv);
    strip_seconds(tsv_py);
    ck_assert_str_eq(tsv, tsv_py);
    free(tsv);
    free(tsv_py);
    char *svg = slurp(o_bin, "errors.svg", &len);
    ck_assert_int_eq(count(svg, "<polyline"), 3);
    ck_assert_ptr_nonnull(strstr(svg, "per-lightness"));
    free(svg);
    char *ppm = slurp(o_bin, "compare.ppm", &len);
    check_ppm(ppm, len, 4 + 4 * (128 + 4), 4 + 10 * (128 + 4));
    free(ppm);
    /* a* b* per line, least chroma first */
    char *pal = slurp(o_bin, "palette.txt", &len);
    ck_assert_int_eq(count(pal, "\n"), 8);
    float a0, b0, a7, b7;
    const char *last = pal;
    for (int i = 0; i < 7; i++)
        last = strchr(last, '\n') + 1;
    ck_assert_int_eq(sscanf(pal, "%f %f\n", &a0, &b0), 2);
    ck_assert_int_eq(sscanf(last, "%f %f\n", &a7, &b7), 2);
    ck_assert(hypotf(a0, b0) <= hypotf(a7, b7));
    free(pal);
    ppm = slurp(o_bin, "palette.ppm", &len);
    check_ppm(ppm, len, 4 + 8 * (32 + 4), 4 + 32 + 4);
    free(ppm);
    char *sum = slurp(o_bin, "summary.txt", &len);
    ck_assert_ptr_nonnull(strstr(sum, "space        lab"));
    ck_assert_int_eq(count(sum, "colour   "), 11); /* the header and ten rows */
    free(sum);
    /* the model says it is a Lab model: predict colours with it, at odd sizes too */
    char model[300], pic[300], res[300], res2[300];
    snprintf(model, sizeof model, "%s/model.bin", o_bin);
    snprintf(res, sizeof res, "%s/res.ppm", root);
    snprintf(res2, sizeof res2, "%s/res2.ppm", root);
    const int sizes[3][3] = {{37, 23, 1}, {50, 29, 3}, {5, 3, 1}};
    for (int i = 0; i < 3; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        write_picture("lab.pnm", w, h, sizes[i][2]);
        snprintf(pic, sizeof pic, "%s/lab.pnm", root);
        ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
        char *got = slurp(root, "res.ppm", &len);
        size_t at = check_ppm(got, len, w, h);
        /* At the native size and T = 0, each pixel is the input's lightness with one
         * centre's chroma, exactly. */
        ck_assert_msg(run("predict --scale 0 --temperature 0 %s %s %s", model, pic, res2) == 0,
                      "%s", err);
        char *native = slurp(root, "res2.ppm", &len);
        size_t at2 = check_ppm(native, len, w, h);
        char e[256];
        image in;
        network *net;
        nn_model_meta meta;
        ck_assert_msg(image_read_pnm(pic, &in, e, sizeof e) == 0, "%s", e);
        ck_assert_msg(nn_load(model, 0, 0, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
        ck_assert_int_eq(meta.space, SPACE_LAB);
        nn_free(net);
        double lightness_off = 0;
        for (int p = 0; p < w * h; p++) {
            float g, rgb[3], lab[3];
            if (in.channels == 3)
                gray_from_rgb(in.pixels + 3 * p, 1, &g);
            else
                g = in.pixels[p] / 255.0f;
            float L = lab_lightness_of_gray(g);
            int found = 0;
            for (int c = 0; c < meta.k && !found; c++) {
                float want[3] = {L, meta.centres[c][0], meta.centres[c][1]};
                uint8_t bytes[3];
                rgb8_from_lab(want, bytes);
                found = memcmp(bytes, native + at2 + 3 * p, 3) == 0;
            }
            ck_assert_msg(found,
                          "%dx%d, pixel %d: not the input's lightness with a centre's chroma", w, h,
                          p);
            /* by default the chroma is smooth, the lightness still the input's (to rounding
             * and the clipping of out-of-gamut colours) */
            for (int c = 0; c < 3; c++)
                rgb[c] = (uint8_t)got[at + 3 * p + c] / 255.0f;
            lab_from_rgb(rgb, lab);
            lightness_off += fabsf(lab[0] - L);
        }
        ck_assert_msg(lightness_off / (w * h) < 4, "%dx%d: L* is %.2f off on average", w, h,
                      lightness_off / (w * h));
        image_free(&in);
        free(got);
        free(native);
    }
    ck_assert_int_eq(run("predict --scale -1 %s %s %s", model, pic, res), 2);
}
END_TEST

START_TEST(test_lab_bad_options) {
    const char *bad[] = {
        "--space hsv %s",
        "--space lab --rebalance 1.5 %s",
        "--space lab --rebalance -0.1 %s",
        "--space lab --temperature -1 %s",
        "--space lab --temperature nan %s",
        "--space lab --temperature inf %s",
        "--rebalance 0.5 %s",
        "--temperature 1 %s",
        "--space rgb --temperature 1 %s",
        "--space lab --scale 32 %s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, bad[i], bin_dir);
        ck_assert_msg(run("%s -o %s/never", args, root) == 2, "'%s' did not exit 2", args);
        ck_assert_msg(count(err, "\n") == 2, "'%s' printed more than one line: %s", args, err);
    }
}
END_TEST

/* ==== Killed runs, resumed; one run per folder ==== */

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

/* ==== When the system says no ==== */

/* A run whose output folder fills up: exit 1, the file named with the
 * system's reason, and no temporary left. Everywhere, compare.ppm's
 * temporary is a link to /dev/full (every write fails with ENOSPC); where the
 * tests may mount one, the output folder is a 64 KiB tmpfs, too small for
 * the model. */
START_TEST(test_full_output_folder) {
    char o[256], link[300], tmps[256];
    snprintf(o, sizeof o, "%s/full", root);
    ck_assert_int_eq(mkdir(o, 0777), 0);
    snprintf(link, sizeof link, "%s/compare.ppm.tmp", o);
    ck_assert_int_eq(symlink("/dev/full", link), 0);
    ck_assert_int_eq(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, o), 1);
    ck_assert_msg(strstr(err, "/full/compare.ppm: write failed: No space left on device\n"), "%s",
                  err);
    tu_tmp_files(o, tmps, sizeof tmps);
    ck_assert_msg(!tmps[0], "left behind: %s", tmps);
    size_t len;
    free(slurp(o, "model.bin", &len)); /* the other outputs are still written */

    snprintf(mnt, sizeof mnt, "%s/tmpfs", root);
    ck_assert_int_eq(mkdir(mnt, 0777), 0);
    char why[256];
    if (tu_mount_tmpfs(mnt, 64, why, sizeof why) != 0) {
        printf("test_full_output_folder on a tmpfs: skipped: %s (needs root with "
               "CAP_SYS_ADMIN)\n",
               why);
        mnt[0] = 0;
        return;
    }
    ck_assert_int_eq(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, mnt), 1);
    ck_assert_msg(strstr(err, mnt) && strstr(err, "No space left on device"), "%s", err);
    tu_tmp_files(mnt, tmps, sizeof tmps);
    ck_assert_msg(!tmps[0], "left behind: %s", tmps);
}
END_TEST

/* Standard output on a full disk: exit 1 and the reason, not silence. */
START_TEST(test_full_standard_output) {
    char cmd[1024], path[300];
    snprintf(path, sizeof path, "%s/said", root);
    snprintf(cmd, sizeof cmd, "%s info %s --val 4 >/dev/full 2>'%s'", tu_binary(), bin_dir, path);
    int st = system(cmd), code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    size_t len;
    char *said = slurp(root, "said", &len);
    ck_assert_msg(code == 1, "exit status %d: %s", code, said);
    ck_assert_str_eq(said, "colorize: standard output: No space left on device\n");
    free(said);
}
END_TEST

/* Writing into a read-only folder: predict exits 1, a run refuses the folder
 * before any work (exit 2), each naming the path and "Permission denied". As
 * root (whom permission bits do not stop) the program runs as the user nobody. */
START_TEST(test_read_only_folder) {
    char ro[256], model[300], pic[300];
    snprintf(ro, sizeof ro, "%s/ro", root);
    snprintf(model, sizeof model, "%s/model.bin", root);
    snprintf(pic, sizeof pic, "%s/in.pgm", root);
    write_untrained_model(model);
    tu_write(root, "in.pgm", "P5\n2 2\n255\n0123", 15);
    ck_assert_int_eq(mkdir(ro, 0777), 0);
    ck_assert_int_eq(chmod(ro, 0555), 0);
    if (geteuid() == 0) {
        if (system("setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null") != 0) {
            printf("test_read_only_folder: skipped: running as root, and setpriv cannot run the "
                   "program as the user nobody\n");
            return;
        }
        ck_assert_int_eq(chmod(root, 0755), 0);
        char as_nobody[4200];
        snprintf(as_nobody, sizeof as_nobody,
                 "setpriv --reuid=65534 --regid=65534 --clear-groups %s", tu_binary());
        setenv("COLORIZE_BIN", as_nobody, 1);
    }
    ck_assert_int_eq(run("predict %s %s %s/out.ppm", model, pic, ro), 1);
    ck_assert_msg(strstr(err, "/ro/out.ppm: cannot write: Permission denied\n"), "%s", err);
    ck_assert_int_eq(run("%s -o %s --epochs 1 --val 4 -q", bin_dir, ro), 2);
    ck_assert_msg(strstr(err, "/ro: cannot write into the output folder: Permission denied\n"),
                  "%s", err);
    ck_assert_int_eq(run("%s -o %s/new/deeper --epochs 1 --val 4 -q", bin_dir, ro), 2);
    ck_assert_msg(strstr(err, "/ro/new: cannot create the output folder: Permission denied\n"),
                  "%s", err);
    char tmps[256];
    tu_tmp_files(ro, tmps, sizeof tmps);
    ck_assert_str_eq(tmps, "");
}
END_TEST

/* ==== Predict in tiles, and many pictures at once ==== */

static int same_file(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    char e[256];
    ck_assert_msg(read_file(a, &x, &nx, e, sizeof e) == 0, "%s", e);
    ck_assert_msg(read_file(b, &y, &ny, e, sizeof e) == 0, "%s", e);
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

/* A picture wider than one tile's window at any thread count: coloured
 * exactly as the whole picture is (check_predicted_colours runs the network
 * on the whole of it), and the same bytes on 1, 2 and 3 threads. */
START_TEST(test_predict_in_tiles_on_any_threads) {
    char model[300], pic[300], res[300], first[300];
    snprintf(model, sizeof model, "%s/untrained.bin", root);
    write_untrained_model(model);
    write_picture("wide.pgm", 1001, 91, 1);
    snprintf(pic, sizeof pic, "%s/wide.pgm", root);
    snprintf(first, sizeof first, "%s/wide-1.ppm", root);
    ck_assert_msg(run("predict -t 1 %s %s %s", model, pic, first) == 0, "%s", err);
    check_predicted_colours(model, pic, first);
    for (int t = 2; t <= 3; t++) {
        snprintf(res, sizeof res, "%s/wide-%d.ppm", root, t);
        ck_assert_msg(run("predict -t %d %s %s %s", t, model, pic, res) == 0, "%s", err);
        ck_assert_msg(same_file(first, res), "-t %d colours differently from -t 1", t);
    }
}
END_TEST

/* The names in a folder, sorted, space-separated. */
static void folder_names(const char *dir, char *names, size_t len) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char list[16][256];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 16;)
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
            snprintf(list[n++], sizeof list[0], "%s", e->d_name);
    closedir(d);
    qsort(list, (size_t)n, sizeof list[0], (int (*)(const void *, const void *))strcmp);
    names[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t at = strlen(names), name_len = strlen(list[i]);
        ck_assert(at + 1 + name_len < len);
        if (i) names[at++] = ' ';
        memcpy(names + at, list[i], name_len + 1);
    }
}

START_TEST(test_predict_many_pictures) {
    char model[300], dir[300], sub[300], single[300], path[400];
    snprintf(model, sizeof model, "%s/untrained.bin", root);
    write_untrained_model(model);
    write_picture("a.pgm", 48, 40, 1);
    write_picture("b.ppm", 33, 17, 3);
    /* damaged: the header promises more pixels than the file holds */
    tu_write(root, "bad.pgm", "P5\n10 10\n255\nshort", 19);
    snprintf(sub, sizeof sub, "%s/sub", root);
    ck_assert_int_eq(mkdir(sub, 0777), 0);
    tu_write(sub, "a.pgm", "P5\n2 2\n255\n0123", 15); /* a second a.ppm */
    snprintf(dir, sizeof dir, "%s/coloured/deeper", root);
    ck_assert_int_eq(
        run("predict -t 2 %s %s/a.pgm %s/bad.pgm %s/b.ppm %s/missing.pgm %s/a.pgm -o %s", model,
            root, root, root, root, sub, dir),
        1);
    /* one line for each picture that failed, naming it */
    ck_assert_msg(count(err, "\n") == 3, "%s", err);
    ck_assert_msg(strstr(err, "bad.pgm") && strstr(err, "missing.pgm") && strstr(err, "sub/a.pgm"),
                  "%s", err);
    char names[1024];
    folder_names(dir, names, sizeof names);
    ck_assert_str_eq(names, "a.ppm b.ppm");
    /* each as the single form colours it */
    const char *good[2] = {"a.pgm", "b.ppm"}, *out_names[2] = {"a.ppm", "b.ppm"};
    for (int i = 0; i < 2; i++) {
        char pic[300];
        snprintf(pic, sizeof pic, "%s/%s", root, good[i]);
        snprintf(single, sizeof single, "%s/single.ppm", root);
        ck_assert_msg(run("predict %s %s %s", model, pic, single) == 0, "%s", err);
        snprintf(path, sizeof path, "%s/%s", dir, out_names[i]);
        ck_assert_msg(same_file(single, path), "%s differs from the single form's", path);
        check_predicted_colours(model, pic, path);
    }
    /* all good: exit 0, and the output folder may exist already */
    ck_assert_msg(run("predict %s %s/a.pgm %s/b.ppm -o %s", model, root, root, dir) == 0, "%s",
                  err);
    ck_assert_str_eq(err, "");
    /* without -o, exactly [MODEL] IN OUT.ppm: a model and one picture is not IN OUT */
    ck_assert_int_eq(run("predict %s %s/a.pgm", model, root), 2);
    ck_assert_msg(strstr(err, "OUT is missing"), "%s", err);
    ck_assert_int_eq(run("predict %s %s/a.pgm %s/b.ppm %s/x.ppm", model, root, root, root), 2);
    ck_assert_int_eq(run("predict %s -o %s", model, dir), 2);
}
END_TEST

/* Without a model named, predict colours with the one built into the program
 * (models/builtin.bin; the tests run in the source folder): as that file
 * does, named as an operand or with -m, in both forms. With -o, the first
 * operand is the model if its content says so. */
START_TEST(test_predict_with_the_builtin_model) {
    const char *file = "models/builtin.bin";
    char a[300], b[300], named[300], with_m[300], dir[300], dir2[300], path[400];
    write_picture("a.pgm", 57, 43, 1);
    write_picture("b.ppm", 30, 41, 3);
    snprintf(a, sizeof a, "%s/a.pgm", root);
    snprintf(b, sizeof b, "%s/b.ppm", root);
    char builtin[300];
    snprintf(builtin, sizeof builtin, "%s/builtin.ppm", root);
    snprintf(named, sizeof named, "%s/named.ppm", root);
    snprintf(with_m, sizeof with_m, "%s/with-m.ppm", root);
    ck_assert_msg(run("predict %s %s", a, builtin) == 0, "%s", err);
    ck_assert_msg(run("predict %s %s %s", file, a, named) == 0, "%s", err);
    ck_assert_msg(run("predict -m %s %s %s", file, a, with_m) == 0, "%s", err);
    ck_assert(same_file(builtin, named) && same_file(builtin, with_m));
    size_t len;
    char *pic = slurp(root, "builtin.ppm", &len);
    size_t at = check_ppm(pic, len, 57, 43), coloured = 0;
    for (size_t i = at; i + 2 < len; i += 3)
        coloured += pic[i] != pic[i + 1] || pic[i + 1] != pic[i + 2];
    ck_assert_msg(coloured > 57 * 43 / 2, "%zu pixels coloured", coloured);
    free(pic);
    /* many pictures: the built-in, or the model file first, or -m */
    snprintf(dir, sizeof dir, "%s/many", root);
    snprintf(dir2, sizeof dir2, "%s/many2", root);
    ck_assert_msg(run("predict %s %s -o %s", a, b, dir) == 0, "%s", err);
    ck_assert_msg(run("predict %s %s %s -o %s", file, a, b, dir2) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/a.ppm", dir);
    ck_assert(same_file(builtin, path));
    snprintf(path, sizeof path, "%s/a.ppm", dir2);
    ck_assert(same_file(builtin, path));
    ck_assert_msg(run("predict -m %s %s -o %s", file, b, dir2) == 0, "%s", err);
    char b_many[400];
    snprintf(b_many, sizeof b_many, "%s/b.ppm", dir);
    snprintf(path, sizeof path, "%s/b.ppm", dir2);
    ck_assert(same_file(b_many, path));
    /* -m takes no model operand; --model is predict's alone */
    ck_assert_int_eq(run("predict -m %s %s %s %s", file, file, a, named), 2);
    ck_assert_int_eq(run("predict -m %s/none.bin %s %s", root, a, named), 2);
    ck_assert_msg(strstr(err, "none.bin"), "%s", err);
    ck_assert_int_eq(run("--model %s %s", file, py_dir), 2);
    ck_assert_msg(strstr(err, "--model is an option of predict"), "%s", err);
}
END_TEST

/* Runs colorize ARGS in a child and returns the peak resident memory, in
 * kB, of the processes that child waited for; *status gets the exit status. */
static long peak_rss_kb(const char *args, int *status) {
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        long v[2] = {tu_run(args, NULL, 0, NULL, 0), 0};
        struct rusage ru;
        getrusage(RUSAGE_CHILDREN, &ru);
        v[1] = ru.ru_maxrss;
        _exit(write(fd[1], v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    long v[2] = {-1, -1};
    ck_assert_int_eq(read(fd[0], v, sizeof v), (ssize_t)sizeof v);
    close(fd[0]);
    waitpid(pid, NULL, 0);
    *status = (int)v[0];
    return v[1];
}

/* A 12-megapixel picture is coloured in well under 300 MB. */
START_TEST(test_predict_a_large_picture_in_bounded_memory) {
#ifdef __SANITIZE_ADDRESS__
    printf("test_predict_a_large_picture_in_bounded_memory: skipped under AddressSanitizer, "
           "whose shadow memory is not the program's\n");
    return;
#endif
    /* Under an emulator the 12 megapixels take minutes, and the memory
     * measured would be the emulator's. */
    if (getenv("RUNNER") && getenv("RUNNER")[0]) {
        printf("test_predict_a_large_picture_in_bounded_memory: skipped under %s\n",
               getenv("RUNNER"));
        return;
    }
    char model[300], pic[300], res[300], args[1024];
    snprintf(model, sizeof model, "%s/untrained.bin", root);
    write_untrained_model(model);
    write_picture("large.pgm", 4000, 3000, 1);
    snprintf(pic, sizeof pic, "%s/large.pgm", root);
    snprintf(res, sizeof res, "%s/large.ppm", root);
    snprintf(args, sizeof args, "predict -t 2 %s %s %s", model, pic, res);
    int status;
    long kb = peak_rss_kb(args, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_msg(kb > 0 && kb < 300 * 1024, "peak resident memory %ld kB", kb);
    struct stat st;
    ck_assert_int_eq(stat(res, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)strlen("P6\n4000 3000\n255\n") + 3L * 4000 * 3000);
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
    tcase_add_test(tc, test_predict_and_resume);
    tcase_add_test(tc, test_bad_command_lines);
    tcase_add_test(tc, test_threads_give_identical_results);
    tcase_add_test(tc, test_palette_matches_reference_binary);
    tcase_add_test(tc, test_lab_run_outputs);
    tcase_add_test(tc, test_lab_bad_options);
    tcase_add_test(tc, test_killed_runs_resume_byte_identical);
    tcase_add_test(tc, test_one_run_per_folder);
    tcase_add_test(tc, test_interrupt_keeps_completed_work);
    tcase_add_test(tc, test_interrupt_in_the_first_epoch_still_writes_a_model);
    tcase_add_test(tc, test_full_output_folder);
    tcase_add_test(tc, test_read_only_folder);
    tcase_add_test(tc, test_full_standard_output);
    tcase_add_test(tc, test_predict_in_tiles_on_any_threads);
    tcase_add_test(tc, test_predict_many_pictures);
    tcase_add_test(tc, test_predict_with_the_builtin_model);
    tcase_add_test(tc, test_predict_a_large_picture_in_bounded_memory);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
