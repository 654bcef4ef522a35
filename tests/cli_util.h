/* What the whole-program tests (test_cli*.c) share: a tiny CIFAR-10 in both
 * layouts written fresh for each test, running the program and reading what
 * it wrote, checking a predicted colouring against the network run here, and
 * starting a run in the background to signal it. */
#ifndef COLORIZE_CLI_UTIL_H
#define COLORIZE_CLI_UTIL_H

#include <math.h>
#include <signal.h>
#include <stdarg.h>

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
static inline void make_record(int index, int label, uint8_t *planes) {
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
static inline int record_label(int f, int i) {
    int birds = f < 5 ? BIRDS_PER_BATCH : TEST_BIRDS;
    return i % 2 == 0 && i < 2 * birds ? 2 : i % 2 == 0 ? 7 : i % 10;
}

static inline void write_dataset(const char *root, int py, char *dir, size_t len) {
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

static inline void setup(void) {
    tu_mkdtemp(root, sizeof root);
    write_dataset(root, 0, bin_dir, sizeof bin_dir);
    write_dataset(root, 1, py_dir, sizeof py_dir);
    mnt[0] = 0;
}

static inline void teardown(void) {
    if (mnt[0]) tu_umount(mnt);
    tu_rmtree(root);
}

static char out[1 << 16], err[1 << 14];

static inline int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int run(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tu_run(args, out, sizeof out, err, sizeof err);
}

/* The file dir/name, NUL-terminated (caller frees); its length in *len. */
static inline char *slurp(const char *dir, const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *data;
    char e[256];
    ck_assert_msg(read_file(path, &data, len, e, sizeof e) == 0, "%s", e);
    char *text = malloc(*len + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, data, *len);
    text[*len] = 0;
    free(data);
    return text;
}

static inline int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Each of the command lines (a format with one %s for the binary data
 * folder) is a usage error: exit 2, the message and the pointer to --help,
 * and nothing else. */
static inline void expect_usage_errors(const char *const *bad, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char args[512];
        snprintf(args, sizeof args, bad[i], bin_dir);
        ck_assert_msg(run("%s -o %s/never", args, root) == 2, "'%s' did not exit 2", args);
        ck_assert_msg(strstr(err, "Try 'colorize --help'"), "'%s': %s", args, err);
        ck_assert_msg(count(err, "\n") == 2, "'%s' printed more than one line: %s", args, err);
    }
}

/* Checks a P6 header and returns the pixel bytes' offset. */
static inline size_t check_ppm(const char *data, size_t len, int want_w, int want_h) {
    int w, h, maxval, used = 0;
    ck_assert_int_eq(sscanf(data, "P6 %d %d %d%n", &w, &h, &maxval, &used), 3);
    ck_assert_int_eq(w, want_w);
    ck_assert_int_eq(h, want_h);
    ck_assert_int_eq(maxval, 255);
    ck_assert_uint_eq(len, (size_t)used + 1 + (size_t)w * h * 3);
    return (size_t)used + 1;
}

/* The TSV without its two seconds columns. */
static inline void strip_seconds(char *tsv) {
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

/* The colours `colorize predict MODEL PIC RES` must have written: at each
 * pixel, the palette colour (rounded to bytes, as the program paints) of the
 * class to which the network, run here on the same standardised gray input
 * (gray in [0, 1], then (gray - mean) / std with the model's mean and std),
 * gives the most probability (the first, on a tie). Returns how many
 * different classes the picture got. */
static inline int check_predicted_colours(const char *model, const char *pic, const char *res) {
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
    const float *prob = nn_output(net);
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
static inline void write_untrained_model(const char *path) {
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

/* A PGM (channels 1) or PPM (3) of w x h with a smooth pattern, in root. */
static inline void write_picture(const char *name, int w, int h, int channels) {
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

/* ==== Runs in the background, whatever the machine's speed ==== */

/* CK_TIMEOUT_MULTIPLIER (1 when unset): sanitizer and emulated runs, which
 * the Makefile gives 10 and 20, wait proportionally longer. */
static inline double time_scale(void) {
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    double v = m ? strtod(m, NULL) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

/* Starts `colorize ARGS` with stdout and stderr into log; the shell execs
 * it, so the pid is the program's (or that of the emulator running it, which
 * passes signals on). */
static inline pid_t start(const char *args, const char *log) {
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

static inline char *read_text(const char *path) {
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
static inline void wait_for(pid_t pid, const char *log, const char *path, const char *needle,
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

/* Sends sig and waits for the program to end; its exit status, 128 + the
 * signal if a signal ended it, or -1 if it had not ended within seconds
 * (times the multiplier) and was killed. */
static inline int stop_with(pid_t pid, int sig, double seconds) {
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

#endif
