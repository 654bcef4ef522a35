/* Helpers shared by the Check programs: scratch folders, files, running the binary. */
#ifndef COLORIZE_TESTUTIL_H
#define COLORIZE_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simd/simd.h"

/* NAME_avx2 where the build has the AVX2 kernels (x86-64). Elsewhere there
 * is no such function: a null pointer of the scalar twin's type stands in,
 * which is never called, since every AVX2 check skips first when
 * simd_avx2_supported() says no, as it always does there. */
#if SIMD_HAVE_AVX2
#define AVX2_FN(name) name##_avx2
#else
#define AVX2_FN(name) ((__typeof__(&name##_scalar))0)
#endif

/* A fresh folder under /tmp; the caller removes it with tu_rmtree. */
static inline void tu_mkdtemp(char *path, size_t len) {
    snprintf(path, len, "/tmp/colorize-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(path));
}

static inline void tu_rmtree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

static inline void tu_write(const char *dir, const char *name, const void *data, size_t len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The colorize binary under test: $COLORIZE_BIN, else ./colorize. */
static inline const char *tu_binary(void) {
    const char *b = getenv("COLORIZE_BIN");
    return b ? b : "./colorize";
}

/* Runs `colorize ARGS` through the shell with stdout and stderr captured into
 * out/err (NUL-terminated, truncated to their sizes); returns the exit status
 * (or 128 + signal). */
static inline int tu_run(const char *args, char *out, size_t outlen, char *err, size_t errlen) {
    char dir[64];
    tu_mkdtemp(dir, sizeof dir);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s >'%s/out' 2>'%s/err' </dev/null", tu_binary(), args, dir, dir);
    int st = system(cmd);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    const char *names[2] = {"out", "err"};
    char *bufs[2] = {out, err};
    size_t lens[2] = {outlen, errlen};
    for (int i = 0; i < 2; i++) {
        if (!bufs[i] || !lens[i]) continue;
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(bufs[i], 1, lens[i] - 1, f) : 0;
        bufs[i][got] = 0;
        if (f) fclose(f);
    }
    tu_rmtree(dir);
    return code;
}

/* The real CIFAR files beside the repository, or NULL (the caller skips). */
static inline const char *tu_shared_cifar(void) {
    const char *d = getenv("COLORIZE_SHARED_CIFAR");
    if (!d) d = "../shared/cifar";
    struct stat st;
    return stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? d : NULL;
}

/* The folder tu_shared_cifar looks for, as a full path, for skip messages. */
static inline const char *tu_shared_cifar_wanted(void) {
    static char path[4200];
    const char *d = getenv("COLORIZE_SHARED_CIFAR");
    if (!d) d = "../shared/cifar";
    char cwd[4096];
    if (d[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(path, sizeof path, "%s", d);
    else
        snprintf(path, sizeof path, "%s/%s", cwd, d);
    return path;
}

/* ==== File systems that fail: full, read-only, forbidden ==== */

/* Mounts a tmpfs of size_kb KiB on the folder dir; 0, or -1 with the reason
 * in why (only root with CAP_SYS_ADMIN may mount: a container may refuse).
 * The caller unmounts with tu_umount. */
static inline int tu_mount_tmpfs(const char *dir, int size_kb, char *why, size_t len) {
    char opts[64];
    snprintf(opts, sizeof opts, "size=%dk,mode=0777", size_kb);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) == 0) return 0;
    snprintf(why, len, "cannot mount a tmpfs on %s: %s", dir, strerror(errno));
    return -1;
}

/* Makes a tmpfs that tu_mount_tmpfs mounted read-only. */
static inline void tu_remount_read_only(const char *dir) {
    ck_assert_msg(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0,
                  "remount %s read-only: %s", dir, strerror(errno));
}

/* Detaches a mount; nothing if dir is none (a teardown after a failed check). */
static inline void tu_umount(const char *dir) {
    umount2(dir, MNT_DETACH);
}

/* The names in dir that end in ".tmp", each followed by a space, into list
 * ("" if none): what a failed atomic write must not leave behind. */
static inline void tu_tmp_files(const char *dir, char *list, size_t len) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    size_t used = 0;
    list[0] = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n >= 4 && strcmp(e->d_name + n - 4, ".tmp") == 0 && used + n + 2 <= len) {
            memcpy(list + used, e->d_name, n);
            used += n;
            list[used++] = ' ';
            list[used] = 0;
        }
    }
    closedir(d);
}

/* The user that permission bits apply to when the tests run as root. */
enum { TU_NOBODY = 65534 };

/* Runs fn(arg, msg, msglen) in a child process that is not root (as root,
 * it becomes the user nobody first: root ignores permission bits). Returns
 * fn's value (0..125) with whatever it wrote into msg, or -1 with the reason
 * in msg when the child could not give up root (the caller skips). */
static inline int tu_as_unprivileged(int (*fn)(void *arg, char *msg, size_t msglen), void *arg,
                                     char *msg, size_t msglen) {
    char *shared = mmap(NULL, msglen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shared, MAP_FAILED);
    shared[0] = 0;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(TU_NOBODY) != 0 ||
                               setuid(TU_NOBODY) != 0 || geteuid() == 0)) {
            snprintf(shared, msglen, "cannot become the user nobody (%d): %s", TU_NOBODY,
                     strerror(errno));
            _exit(126);
        }
        _exit(fn(arg, shared, msglen));
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    snprintf(msg, msglen, "%s", shared);
    munmap(shared, msglen);
    ck_assert_msg(WIFEXITED(st), "the unprivileged child died");
    return WEXITSTATUS(st) == 126 ? -1 : WEXITSTATUS(st);
}

/* Runs a Check suite; the exit status of the test program. */
static inline int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
