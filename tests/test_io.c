/* Reading and writing when the system says no. Every failure names the file
 * and the system's reason in one line, and a failed write leaves neither a
 * temporary nor a damaged file: the file it was to replace is still whole.
 * Full file systems come from /dev/full (always) and from a 64 KiB tmpfs
 * (where the tests may mount one); read-only folders from permission bits
 * (as root, in a child that is the user nobody) and from a tmpfs remounted
 * read-only. Each writer of the library is tried: atomic_file itself, the
 * PGM/PPM writer, the model file, the SVG plot and errors.tsv; and the
 * output folder's making and lock. */
#include "image.h"
#include "nn.h"
#include "out_dir.h"
#include "report.h"
#include "util.h"

#include "testutil.h"

#include <fcntl.h>

static char dir[64], mnt[128];

static void setup(void) {
    tu_mkdtemp(dir, sizeof dir);
    chmod(dir, 0755); /* the user nobody must reach the folders inside */
    mnt[0] = 0;
}

static void teardown(void) {
    if (mnt[0]) tu_umount(mnt);
    tu_rmtree(dir);
}

static void path_in(char *path, size_t len, const char *folder, const char *name) {
    snprintf(path, len, "%s/%s", folder, name);
}

/* ==== The writers ==== */

typedef int (*writer_fn)(const char *path, char *err, size_t errlen);

/* 256 KiB through the stream in pieces, as the report writers do. */
static int write_atomic(const char *path, char *err, size_t errlen) {
    atomic_file af;
    if (atomic_open(&af, path, err, errlen) != 0) return -1;
    char line[1024];
    memset(line, 'x', sizeof line);
    for (int i = 0; i < 256; i++)
        fwrite(line, 1, sizeof line, af.f);
    return atomic_commit(&af, err, errlen);
}

/* A 200x200 colour picture: 120 KB. */
static int write_pnm(const char *path, char *err, size_t errlen) {
    static uint8_t px[200 * 200 * 3];
    image img = {.width = 200, .height = 200, .channels = 3, .pixels = px};
    return image_write_pnm(path, &img, err, errlen);
}

/* The default network's model: about 180 KB. */
static int write_model(const char *path, char *err, size_t errlen) {
    network *net;
    if (nn_create("default", 32, 32, 4, 1, &net, err, errlen) != 0) return -2;
    nn_init_weights(net, 1);
    nn_model_meta meta = {.k = 4, .mean = 0.5f, .std = 0.25f};
    int rc = nn_save(net, &meta, path, err, errlen);
    nn_free(net);
    return rc;
}

static epoch_row rows[200];

static void fill_rows(void) {
    for (int i = 0; i < 200; i++) {
        rows[i].epoch = i + 1;
        for (int s = 0; s < N_SPLITS; s++)
            rows[i].score[s] = (nn_score){0.3 - 0.001 * i - 0.01 * s, 1.0 - 0.002 * i};
    }
}

static int write_svg(const char *path, char *err, size_t errlen) {
    fill_rows();
    return report_write_errors_svg(path, "io test", rows, 200, 0.11, "baseline", err, errlen);
}

static int write_tsv(const char *path, char *err, size_t errlen) {
    fill_rows();
    return report_write_errors_tsv(path, rows, 200, err, errlen);
}

static const struct {
    const char *name;
    writer_fn write;
} writers[] = {
    {"atomic.bin", write_atomic}, {"picture.ppm", write_pnm}, {"model.bin", write_model},
    {"errors.svg", write_svg},    {"errors.tsv", write_tsv},
};
enum { N_WRITERS = sizeof writers / sizeof writers[0] };

static const char old_contents[] = "the file as it was before";

/* Puts the old version of every writer's file into folder. */
static void write_old_files(const char *folder) {
    for (int i = 0; i < N_WRITERS; i++)
        tu_write(folder, writers[i].name, old_contents, sizeof old_contents);
}

/* Why writer i's failure in folder is not what it must be ("" if it is):
 * -1, one line naming the file and saying `reason`, the old file whole when
 * there was one, and no temporary. Needs no Check, so a child may ask. */
static void judge_failure(const char *folder, int i, int rc, const char *err, const char *reason,
                          int had_old, char *why, size_t len) {
    char path[256], tmp[300];
    path_in(path, sizeof path, folder, writers[i].name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t *data = NULL;
    size_t size = 0;
    char e[512];
    struct stat st;
    why[0] = 0;
    if (rc != -1)
        snprintf(why, len, "%s: returned %d, not -1 (%s)", writers[i].name, rc, err);
    else if (!strstr(err, path) || !strstr(err, reason) || strchr(err, '\n'))
        snprintf(why, len, "%s: the message '%s' does not name %s and say '%s' in one line",
                 writers[i].name, err, path, reason);
    else if (lstat(tmp, &st) == 0)
        snprintf(why, len, "%s: the temporary %s was left behind", writers[i].name, tmp);
    else if (had_old && (read_file(path, &data, &size, e, sizeof e) != 0 ||
                         size != sizeof old_contents || memcmp(data, old_contents, size) != 0))
        snprintf(why, len, "%s: the old file was not kept whole", writers[i].name);
    else if (!had_old && lstat(path, &st) == 0)
        snprintf(why, len, "%s: a file was left where none was", writers[i].name);
    free(data);
}

/* Every writer fails in folder with `reason`. */
static void assert_every_writer_fails(const char *folder, const char *reason, int had_old) {
    for (int i = 0; i < N_WRITERS; i++) {
        char path[256], err[512] = "", why[1024];
        path_in(path, sizeof path, folder, writers[i].name);
        int rc = writers[i].write(path, err, sizeof err);
        judge_failure(folder, i, rc, err, reason, had_old, why, sizeof why);
        ck_assert_msg(!why[0], "%s", why);
    }
}

/* ==== Full ==== */

/* Each writer works where there is room (so that the failures below are the
 * file system's doing) and leaves no temporary. */
START_TEST(test_writers_work_where_there_is_room) {
    for (int i = 0; i < N_WRITERS; i++) {
        char path[256], err[512] = "";
        path_in(path, sizeof path, dir, writers[i].name);
        ck_assert_msg(writers[i].write(path, err, sizeof err) == 0, "%s", err);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_gt(st.st_size, 1000);
    }
    char tmps[256];
    tu_tmp_files(dir, tmps, sizeof tmps);
    ck_assert_str_eq(tmps, "");
}
END_TEST

/* The temporary is a link to /dev/full, whose every write fails with ENOSPC:
 * a full disk on any machine, root or not. */
START_TEST(test_full_disk_via_dev_full) {
    write_old_files(dir);
    for (int i = 0; i < N_WRITERS; i++) {
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, writers[i].name);
        ck_assert_int_eq(symlink("/dev/full", tmp), 0);
    }
    assert_every_writer_fails(dir, "No space left on device", 1);
}
END_TEST

/* Fills the file system holding folder: the last write fails with ENOSPC. */
static void fill_up(const char *folder) {
    char path[256];
    path_in(path, sizeof path, folder, "filler");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    char block[4096] = {0};
    ssize_t n;
    while ((n = write(fd, block, sizeof block)) > 0)
        ;
    ck_assert_int_eq(errno, ENOSPC);
    close(fd);
}

/* A real full file system: a 64 KiB tmpfs. */
START_TEST(test_full_file_system) {
    snprintf(mnt, sizeof mnt, "%s/full", dir);
    ck_assert_int_eq(mkdir(mnt, 0777), 0);
    char why[256];
    if (tu_mount_tmpfs(mnt, 64, why, sizeof why) != 0) {
        printf("test_full_file_system: skipped: %s (needs root with CAP_SYS_ADMIN)\n", why);
        mnt[0] = 0;
        return;
    }
    /* The model (180 KB) does not fit at all; its temporary is removed, and
     * with it the 64 KiB it had taken. */
    char path[256], err[512] = "";
    path_in(path, sizeof path, mnt, "model.bin");
    ck_assert_int_eq(write_model(path, err, sizeof err), -1);
    judge_failure(mnt, 2, -1, err, "No space left on device", 0, why, sizeof why);
    ck_assert_msg(!why[0], "%s", why);
    path_in(path, sizeof path, mnt, "picture.ppm");
    static uint8_t px[100 * 100 * 3];
    image img = {.width = 100, .height = 100, .channels = 3, .pixels = px};
    ck_assert_msg(image_write_pnm(path, &img, err, sizeof err) == 0, "%s", err);
    unlink(path);
    /* Full to the last byte: every writer fails, every old file stays. */
    write_old_files(mnt);
    fill_up(mnt);
    assert_every_writer_fails(mnt, "No space left on device", 1);
}
END_TEST

/* ==== Read-only ==== */

/* In the unprivileged child: every writer fails in the folder arg with
 * "Permission denied", and nothing is created. */
static int writers_fail_in(void *arg, char *msg, size_t msglen) {
    const char *folder = arg;
    for (int i = 0; i < N_WRITERS; i++) {
        char path[256], err[512] = "";
        path_in(path, sizeof path, folder, writers[i].name);
        int rc = writers[i].write(path, err, sizeof err);
        judge_failure(folder, i, rc, err, "Permission denied", 0, msg, msglen);
        if (msg[0]) return 1;
    }
    return 0;
}

START_TEST(test_read_only_folder) {
    char ro[128], msg[1024];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    ck_assert_int_eq(mkdir(ro, 0777), 0);
    ck_assert_int_eq(chmod(ro, 0555), 0);
    int rc = tu_as_unprivileged(writers_fail_in, ro, msg, sizeof msg);
    if (rc < 0) {
        printf("test_read_only_folder: skipped: %s\n", msg);
        return;
    }
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* A read-only file system (where the tests may mount one): the old files stay. */
START_TEST(test_read_only_file_system) {
    snprintf(mnt, sizeof mnt, "%s/rofs", dir);
    ck_assert_int_eq(mkdir(mnt, 0777), 0);
    char why[256];
    if (tu_mount_tmpfs(mnt, 1024, why, sizeof why) != 0) {
        printf("test_read_only_file_system: skipped: %s (needs root with CAP_SYS_ADMIN)\n", why);
        mnt[0] = 0;
        return;
    }
    write_old_files(mnt);
    tu_remount_read_only(mnt);
    assert_every_writer_fails(mnt, "Read-only file system", 1);
}
END_TEST

/* ==== Reading ==== */

typedef int (*reader_fn)(const char *path, char *err, size_t errlen);

static int read_whole(const char *path, char *err, size_t errlen) {
    uint8_t *data;
    size_t size;
    int rc = read_file(path, &data, &size, err, errlen);
    if (rc == 0) free(data);
    return rc;
}

static int read_picture(const char *path, char *err, size_t errlen) {
    image img;
    int rc = image_read_pnm(path, &img, err, errlen);
    image_free(&img);
    return rc;
}

static int read_model(const char *path, char *err, size_t errlen) {
    network *net;
    nn_model_meta meta;
    int rc = nn_load(path, 0, 0, 1, &net, &meta, err, errlen);
    nn_free(net);
    return rc;
}

static const reader_fn readers[] = {read_whole, read_picture, read_model};
enum { N_READERS = sizeof readers / sizeof readers[0] };

/* Why reader r's answer for path is not -1 with one line naming path and
 * saying reason ("" if it is). */
static void judge_read(int r, const char *path, const char *reason, char *why, size_t len) {
    char err[512] = "";
    int rc = readers[r](path, err, sizeof err);
    why[0] = 0;
    if (rc != -1 || !strstr(err, path) || !strstr(err, reason) || strchr(err, '\n'))
        snprintf(why, len, "reader %d on %s: %d '%s', wanted -1 and '%s'", r, path, rc, err,
                 reason);
}

START_TEST(test_read_errors_say_why) {
    char path[256], why[1024];
    path_in(path, sizeof path, dir, "missing");
    for (int r = 0; r < N_READERS; r++) {
        judge_read(r, path, "No such file or directory", why, sizeof why);
        ck_assert_msg(!why[0], "%s", why);
        judge_read(r, dir, "not a regular file", why, sizeof why);
        ck_assert_msg(!why[0], "%s", why);
    }
    /* A FIFO is refused at once, not waited on. */
    path_in(path, sizeof path, dir, "fifo");
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    for (int r = 0; r < N_READERS; r++) {
        judge_read(r, path, "not a regular file", why, sizeof why);
        ck_assert_msg(!why[0], "%s", why);
    }
}
END_TEST

static int readers_refused(void *arg, char *msg, size_t msglen) {
    for (int r = 0; r < N_READERS; r++) {
        judge_read(r, arg, "Permission denied", msg, msglen);
        if (msg[0]) return 1;
    }
    return 0;
}

START_TEST(test_unreadable_file) {
    char path[256], msg[1024], err[512];
    path_in(path, sizeof path, dir, "secret.bin");
    ck_assert_msg(write_model(path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(chmod(path, 0), 0);
    int rc = tu_as_unprivileged(readers_refused, path, msg, sizeof msg);
    if (rc < 0) {
        printf("test_unreadable_file: skipped: %s\n", msg);
        return;
    }
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* ==== The output folder ==== */

/* out_dir_prepare makes every folder on the way, and refuses a path too
 * long for the outputs' names; out_dir_lock lets one holder at a time (a
 * second open of the lock file, even in this process, is refused, naming
 * the holder's pid), and the next once the first has closed it. */
START_TEST(test_output_folder_made_and_locked) {
    char out[256], err[512], pid[32];
    path_in(out, sizeof out, dir, "a/b/c");
    ck_assert_msg(out_dir_prepare(out, err, sizeof err) == 0, "%s", err);
    int fd = out_dir_lock(out, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    ck_assert_int_eq(out_dir_lock(out, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "another colorize run") && strstr(err, pid), "%s", err);
    close(fd);
    fd = out_dir_lock(out, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    close(fd);
    static char deep[OUT_PATH_MAX];
    memset(deep, 'd', sizeof deep - 1);
    ck_assert_int_eq(out_dir_prepare(deep, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "output folder path too long"), "%s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_writers_work_where_there_is_room);
    tcase_add_test(tc, test_full_disk_via_dev_full);
    tcase_add_test(tc, test_full_file_system);
    tcase_add_test(tc, test_read_only_folder);
    tcase_add_test(tc, test_read_only_file_system);
    tcase_add_test(tc, test_read_errors_say_why);
    tcase_add_test(tc, test_unreadable_file);
    tcase_add_test(tc, test_output_folder_made_and_locked);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
