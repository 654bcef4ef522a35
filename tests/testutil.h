/* Helpers shared by the Check programs: scratch folders, files, running the binary. */
#ifndef COLORIZE_TESTUTIL_H
#define COLORIZE_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs a Check suite; the exit status of the test program. */
static inline int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
