/* Small pieces every file needs: error messages in caller-owned buffers,
 * the seeded random generator, the clock, paths, whole-file reads and
 * atomic writes (util.h). */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int set_error(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(rng_state *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng_state *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rng_uniform(rng_state *r) {
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

uint64_t rng_below(rng_state *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

float rng_normal(rng_state *r) {
    /* 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int path_join(char *path, size_t len, const char *dir, const char *name, char *err, size_t errlen) {
    size_t d = strlen(dir);
    const char *sep = d > 0 && dir[d - 1] == '/' ? "" : "/";
    int n = snprintf(path, len, "%s%s%s", dir, sep, name);
    if (n < 0 || (size_t)n >= len) return set_error(err, errlen, "%s: path too long", dir);
    return 0;
}

int read_file(const char *path, uint8_t **data, size_t *size, char *err, size_t errlen) {
    *data = NULL;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (fstat refuses it). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return set_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return set_error(err, errlen, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size >= SIZE_MAX) {
        close(fd);
        return set_error(err, errlen, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (!buf) {
        close(fd);
        return set_error(err, errlen, "%s: out of memory for %zu bytes", path, len);
    }
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return set_error(err, errlen, "%s: read error: %s", path, strerror(e));
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != len) {
        free(buf);
        return set_error(err, errlen, "%s: read error: the file shrank to %zu of %zu bytes", path,
                         got, len);
    }
    *data = buf;
    *size = len;
    return 0;
}

/* The atomic file's stream writes through here, so that the reason for the
 * first write that fails is kept: stdio's ferror says only that one did.
 * After a failure nothing more is written (a short count tells stdio). */
static ssize_t atomic_stream_write(void *cookie, const char *buf, size_t n) {
    atomic_file *af = cookie;
    size_t done = 0;
    while (done < n && !af->write_errno) {
        ssize_t w = write(af->fd, buf + done, n - done);
        if (w > 0)
            done += (size_t)w;
        else if (w == 0)
            af->write_errno = EIO; /* a regular file never writes nothing */
        else if (errno != EINTR)
            af->write_errno = errno;
    }
    return (ssize_t)done;
}

int atomic_open(atomic_file *af, const char *path, char *err, size_t errlen) {
    af->f = NULL;
    af->fd = -1;
    af->write_errno = 0;
    if (strlen(path) >= sizeof af->path) return set_error(err, errlen, "%s: path too long", path);
    strcpy(af->path, path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
    af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (af->fd < 0) return set_error(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    af->f = fopencookie(af, "w", (cookie_io_functions_t){.write = atomic_stream_write});
    if (!af->f) {
        int e = errno;
        atomic_abort(af);
        return set_error(err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

/* A rename is on disk only once the folder that holds it is. A folder that
 * cannot be opened for reading cannot be synced either: nothing to do. */
static int sync_folder_of(const char *path) {
    char dir[sizeof((atomic_file *)0)->path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0; /* "/name" is in "/" */
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    int e = fsync(fd) != 0 && errno != EINVAL ? errno : 0;
    close(fd);
    return e;
}

int atomic_commit(atomic_file *af, char *err, size_t errlen) {
    /* The first failure's reason; a stream error without a failed write
     * (none is known to happen) reads as an I/O error. */
    int e = 0;
    if (fflush(af->f) != 0 || ferror(af->f)) e = af->write_errno ? af->write_errno : EIO;
    if (fclose(af->f) != 0 && !e) e = af->write_errno ? af->write_errno : EIO;
    af->f = NULL;
    /* EINVAL: a file system that cannot sync (nothing to do). */
    if (!e && fsync(af->fd) != 0 && errno != EINVAL) e = errno;
    if (close(af->fd) != 0 && !e) e = errno;
    af->fd = -1;
    if (e) {
        unlink(af->tmp_path);
        return set_error(err, errlen, "%s: write failed: %s", af->path, strerror(e));
    }
    if (rename(af->tmp_path, af->path) != 0) {
        e = errno;
        unlink(af->tmp_path);
        return set_error(err, errlen, "%s: cannot rename into place: %s", af->path, strerror(e));
    }
    if ((e = sync_folder_of(af->path)) != 0)
        return set_error(err, errlen, "%s: written, but its folder could not be synced: %s",
                         af->path, strerror(e));
    return 0;
}

void atomic_abort(atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->fd >= 0) close(af->fd);
    af->f = NULL;
    af->fd = -1;
    unlink(af->tmp_path);
}
