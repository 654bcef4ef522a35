/* make run's download (tools/fetch_cifar.sh) without a network: a fake curl,
 * first on PATH, serves an archive made here, whole, cut short, or failing
 * as curl does. The script must check the MD5 before unpacking, delete a bad
 * download and say so, leave nothing half-there, and start afresh the next
 * time; make run must call it with the official MD5. */
#include "testutil.h"

static char dir[64], good_md5[33];

/* Stands in for curl: writes $FAKE_ARCHIVE (its first $FAKE_BYTES bytes when
 * set) to the file after -o, then exits with $FAKE_STATUS (0 unless set). */
static const char fake_curl[] = "#!/bin/sh\n"
                                "out=\n"
                                "while [ $# -gt 0 ]; do\n"
                                "    if [ \"$1\" = -o ]; then out=$2; shift; fi\n"
                                "    shift\n"
                                "done\n"
                                "if [ -n \"${FAKE_BYTES:-}\" ]; then\n"
                                "    head -c \"$FAKE_BYTES\" \"$FAKE_ARCHIVE\" >\"$out\"\n"
                                "else\n"
                                "    cat \"$FAKE_ARCHIVE\" >\"$out\"\n"
                                "fi\n"
                                "exit \"${FAKE_STATUS:-0}\"\n";

/* Runs a shell command in which %1$s stands for the scratch folder. */
static void shell(const char *fmt) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, dir);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

static void setup(void) {
    tu_mkdtemp(dir, sizeof dir);
    /* An archive laid out as the real one: cifar-10-batches-py/ and its files. */
    shell("mkdir -p '%1$s/src/cifar-10-batches-py' '%1$s/bin' && "
          "echo batch >'%1$s/src/cifar-10-batches-py/data_batch_1' && "
          "tar czf '%1$s/served.tar.gz' -C '%1$s/src' cifar-10-batches-py");
    tu_write(dir, "bin/curl", fake_curl, strlen(fake_curl));
    char path[128];
    snprintf(path, sizeof path, "%s/bin/curl", dir);
    ck_assert_int_eq(chmod(path, 0755), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "md5sum <'%s/served.tar.gz'", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%32s", good_md5), 1);
    pclose(p);
}

static void teardown(void) {
    tu_rmtree(dir);
}

static char said[8192];

/* Runs the script in dir for dest cifar-10-batches-py, expecting md5, with
 * the fake curl's settings in env ("FAKE_BYTES=100" or ""); its output goes
 * to said. Returns its exit status. */
static int fetch(const char *md5, const char *env) {
    char cwd[2048], cmd[8192];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PATH=\"$PWD/bin:$PATH\" FAKE_ARCHIVE=\"$PWD/served.tar.gz\" %s "
             "sh '%s/tools/fetch_cifar.sh' https://example.invalid/cifar-10-python.tar.gz %s "
             "cifar-10-batches-py >said 2>&1",
             dir, env, cwd, md5);
    int st = system(cmd);
    char path[128];
    snprintf(path, sizeof path, "%s/said", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(said, 1, sizeof said - 1, f);
    said[got] = 0;
    fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int exists(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Nothing of a failed download is left: no data folder, no work folder. */
static void assert_nothing_left(void) {
    ck_assert_msg(!exists("cifar-10-batches-py"), "a data folder after a failure: %s", said);
    ck_assert_msg(!exists(".cifar-download"), "the download was kept: %s", said);
}

static void assert_unpacked(void) {
    ck_assert_msg(exists("cifar-10-batches-py/data_batch_1"), "%s", said);
    ck_assert_msg(!exists(".cifar-download"), "the work folder stayed: %s", said);
}

START_TEST(test_good_download_is_checked_and_unpacked) {
    ck_assert_msg(fetch(good_md5, "") == 0, "%s", said);
    assert_unpacked();
    ck_assert_msg(strstr(said, good_md5) && strstr(said, "as expected"), "%s", said);
}
END_TEST

START_TEST(test_md5_mismatch_is_deleted) {
    ck_assert_int_eq(fetch("0123456789abcdef0123456789abcdef", ""), 1);
    ck_assert_msg(strstr(said, "MD5 ") && strstr(said, "expected 0123456789abcdef") &&
                      strstr(said, "deleted"),
                  "%s", said);
    assert_nothing_left();
    /* The next call starts afresh. */
    ck_assert_msg(fetch(good_md5, "") == 0, "%s", said);
    assert_unpacked();
}
END_TEST

START_TEST(test_truncated_download_is_deleted) {
    /* Cut short with curl content (a connection that closed early). */
    ck_assert_int_eq(fetch(good_md5, "FAKE_BYTES=60"), 1);
    ck_assert_msg(strstr(said, "truncated or damaged") && strstr(said, "deleted"), "%s", said);
    assert_nothing_left();
    /* Cut short, and curl says so (18: partial file). */
    ck_assert_int_eq(fetch(good_md5, "FAKE_BYTES=60 FAKE_STATUS=18"), 1);
    ck_assert_msg(strstr(said, "download failed (curl exit status 18)") && strstr(said, "deleted"),
                  "%s", said);
    assert_nothing_left();
    /* What a killed make left behind is not reused: neither the archive nor
     * a half-unpacked folder. */
    shell("mkdir -p '%1$s/.cifar-download/cifar-10-batches-py' && "
          "echo junk >'%1$s/.cifar-download/cifar-10-python.tar.gz' && "
          "echo stale >'%1$s/.cifar-download/cifar-10-batches-py/stale'");
    ck_assert_msg(fetch(good_md5, "") == 0, "%s", said);
    assert_unpacked();
    ck_assert(!exists("cifar-10-batches-py/stale"));
}
END_TEST

/* make run hands the script the official URL and MD5, and stops if it fails. */
START_TEST(test_make_run_checks_the_official_md5) {
    char out[8192];
    FILE *p = popen("make -n run 2>&1", "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    pclose(p);
    ck_assert_msg(strstr(out, "sh tools/fetch_cifar.sh "
                              "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
                              "c58f30108f718f92721af3b95e74349a cifar-10-batches-py || exit 1"),
                  "%s", out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("fetch");
    TCase *tc = tcase_create("fetch");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_good_download_is_checked_and_unpacked);
    tcase_add_test(tc, test_md5_mismatch_is_deleted);
    tcase_add_test(tc, test_truncated_download_is_deleted);
    tcase_add_test(tc, test_make_run_checks_the_official_md5);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
