/* `colorize predict` as a user meets it: pictures of any size coloured as
 * the network run here colours them, resume, tiles on any thread count, many
 * pictures at once, and a large picture in bounded memory. */
#include <dirent.h>
#include <sys/resource.h>

#include "tests/cli_util.h"

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
        run("predict -t 2 --format ppm %s %s/a.pgm %s/bad.pgm %s/b.ppm %s/missing.pgm %s/a.pgm "
            "-o %s",
            model, root, root, root, root, sub, dir),
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
    ck_assert_msg(run("predict --format ppm %s %s/a.pgm %s/b.ppm -o %s", model, root, root, dir) ==
                      0,
                  "%s", err);
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
    ck_assert_msg(run("predict --format ppm %s %s -o %s", a, b, dir) == 0, "%s", err);
    ck_assert_msg(run("predict --format ppm %s %s %s -o %s", file, a, b, dir2) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/a.ppm", dir);
    ck_assert(same_file(builtin, path));
    snprintf(path, sizeof path, "%s/a.ppm", dir2);
    ck_assert(same_file(builtin, path));
    ck_assert_msg(run("predict --format ppm -m %s %s -o %s", file, b, dir2) == 0, "%s", err);
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
    Suite *s = suite_create("cli_predict");
    TCase *tc = tcase_create("cli_predict");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_predict_and_resume);
    tcase_add_test(tc, test_predict_in_tiles_on_any_threads);
    tcase_add_test(tc, test_predict_many_pictures);
    tcase_add_test(tc, test_predict_with_the_builtin_model);
    tcase_add_test(tc, test_predict_a_large_picture_in_bounded_memory);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
