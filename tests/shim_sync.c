/* An LD_PRELOAD shim for test_cli_files: logs each fsync and rename the
 * program makes, in order, one line each, to the file $COLORIZE_SHIM_LOG:
 *
 *   fsync PATH     the file or folder the descriptor is open on
 *   rename PATH    the file renamed (the old name), resolved as fsync's are
 *
 * then does the call. Each line is one write to a file opened for appending,
 * so the threads' lines never mix. Built by the Makefile as
 * tests/shim_sync.so beside the test programs; a program linked statically
 * (the aarch64 leg) never loads it, which the test sees as an empty log. */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void log_line(const char *what, const char *path) {
    const char *log = getenv("COLORIZE_SHIM_LOG");
    if (!log) return;
    char line[PATH_MAX + 16];
    int n = snprintf(line, sizeof line, "%s %s\n", what, path);
    if (n < 0 || n >= (int)sizeof line) return;
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return;
    ssize_t written = write(fd, line, (size_t)n);
    (void)written;
    close(fd);
}

int fsync(int fd) {
    static int (*real_fsync)(int);
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    log_line("fsync", path);
    return real_fsync(fd);
}

int rename(const char *from, const char *to) {
    static int (*real_rename)(const char *, const char *);
    if (!real_rename) real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    char path[PATH_MAX];
    log_line("rename", realpath(from, path) ? path : from);
    return real_rename(from, to);
}
