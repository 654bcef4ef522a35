/* When the system says no, and writing files safely: a full output folder
 * and a full standard output, a read-only folder, and every output synced
 * before it is renamed into place. */
#include "tests/cli_util.h"

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

/* ==== Atomic writes, in order ==== */

/* The shim beside this test program (the Makefile builds it there). */
static void shim_path(char *path, size_t len) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(path, len, "%s/shim_sync.so", exe);
}

/* Whether the log's lines from..to-1 hold `fsync path`. */
static int synced_between(char **lines, int from, int to, const char *path) {
    for (int i = from; i < to; i++)
        if (strncmp(lines[i], "fsync ", 6) == 0 && strcmp(lines[i] + 6, path) == 0) return 1;
    return 0;
}

/* Every file the program writes is synced before it is renamed into place,
 * and its folder after: else a crash can leave an empty or partial file
 * under the real name. tests/shim_sync.so, preloaded, logs the program's
 * fsync and rename calls in order; a run of two epochs (the checkpoint
 * thread writes model.bin) and a predict. */
START_TEST(test_every_output_is_synced_before_its_rename) {
    if (getenv("RUNNER") && getenv("RUNNER")[0]) {
        printf("test_every_output_is_synced_before_its_rename: skipped under %s: LD_PRELOAD "
               "would reach the emulator, or not reach a static program\n",
               getenv("RUNNER"));
        return;
    }
    char shim[4200], log[300], o[256], pic[300], res[300];
    shim_path(shim, sizeof shim);
    struct stat st;
    ck_assert_msg(stat(shim, &st) == 0, "%s: %s (make builds it with the test)", shim,
                  strerror(errno));
    snprintf(log, sizeof log, "%s/sync.log", root);
    snprintf(o, sizeof o, "%s/synced", root);
    snprintf(pic, sizeof pic, "%s/in.pgm", root);
    snprintf(res, sizeof res, "%s/res.ppm", o);
    tu_write(root, "in.pgm", "P5\n2 2\n255\n0123", 15);
    /* An AddressSanitizer program wants its runtime first among its libraries. */
    char asan[1024];
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0",
             getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
             getenv("ASAN_OPTIONS") ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("COLORIZE_SHIM_LOG", log, 1);
    setenv("LD_PRELOAD", shim, 1);
    int ran = run("%s -o %s --epochs 2 --val 4 -q -t 2", bin_dir, o);
    if (ran == 0) ran = run("predict %s/model.bin %s %s", o, pic, res);
    unsetenv("LD_PRELOAD");
    ck_assert_msg(ran == 0, "%s", err);
    size_t len;
    char *text = stat(log, &st) == 0 ? slurp(root, "sync.log", &len) : strdup("");
    if (!strstr(text, "rename ")) {
        printf("test_every_output_is_synced_before_its_rename: skipped: %s never loaded the "
               "shim (a static program?)\n",
               tu_binary());
        free(text);
        return;
    }
    char *lines[1024];
    int n = 0;
    for (char *l = strtok(text, "\n"); l && n < 1024; l = strtok(NULL, "\n"))
        lines[n++] = l;
    int renames = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(lines[i], "rename ", 7) != 0) continue;
        const char *path = lines[i] + 7;
        /* synced since its last rename (the same temporary is written again each epoch) */
        int from = 0;
        for (int j = 0; j < i; j++)
            if (strcmp(lines[j], lines[i]) == 0) from = j + 1;
        ck_assert_msg(synced_between(lines, from, i, path),
                      "%s was renamed into place without an fsync of it before", path);
        char folder[4200];
        snprintf(folder, sizeof folder, "%s", path);
        *strrchr(folder, '/') = 0;
        ck_assert_msg(synced_between(lines, i + 1, n, folder),
                      "%s was renamed, but its folder %s was not synced after", path, folder);
        renames++;
    }
    /* each epoch errors.tsv, errors.svg and model.bin; then the outputs; then the picture */
    ck_assert_msg(renames >= 12, "only %d renames", renames);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_files");
    TCase *tc = tcase_create("cli_files");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_full_output_folder);
    tcase_add_test(tc, test_read_only_folder);
    tcase_add_test(tc, test_full_standard_output);
    tcase_add_test(tc, test_every_output_is_synced_before_its_rename);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
