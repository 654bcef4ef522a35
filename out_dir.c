/* A run's output folder: made and proved writable before any work starts,
 * and locked so that one run at a time writes it. */
#include "out_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int out_dir_prepare(const char *dir, char *err, size_t errlen) {
    char path[OUT_PATH_MAX];
    /* every output's path, with atomic_open's ".tmp", fits an atomic_file */
    if (strlen(dir) + 1 + OUT_NAME_MAX + 4 >= sizeof path)
        return set_error(err, errlen, "%.64s...: output folder path too long", dir);
    snprintf(path, sizeof path, "%s", dir);
    /* Each folder on the way, so that an error names the one that failed. */
    for (char *p = path + (path[0] != 0);; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return set_error(err, errlen, "%s: cannot create the output folder: %s", path,
                             strerror(errno));
        if (!c) break;
        *p = c;
    }
    path_join(path, sizeof path, dir, ".colorize-probe", NULL, 0);
    FILE *f = fopen(path, "w");
    if (!f)
        return set_error(err, errlen, "%s: cannot write into the output folder: %s", dir,
                         strerror(errno));
    fclose(f);
    unlink(path);
    return 0;
}

/* One run per output folder: an advisory lock on DIR/.colorize-lock, held
 * until the process ends (the system drops it with the process, so a lock
 * left by a run that died never blocks). Returns the lock's descriptor, or
 * -1 with err set. */
int out_dir_lock(const char *dir, char *err, size_t errlen) {
    char path[OUT_PATH_MAX];
    path_join(path, sizeof path, dir, ".colorize-lock", NULL, 0);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return set_error(err, errlen, "%s: cannot create the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char holder[24] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        close(fd);
        if (why != EWOULDBLOCK)
            return set_error(err, errlen, "%s: cannot lock the output folder: %s", dir,
                             strerror(why));
        if (holder[0])
            return set_error(err, errlen,
                             "%s: another colorize run (pid %s) is writing this folder", dir,
                             holder);
        return set_error(err, errlen, "%s: another colorize run is writing this folder", dir);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid only makes the message better; the lock holds without it */
    }
    return fd;
}
