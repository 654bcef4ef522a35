/* Small pieces every file needs: error messages in caller-owned buffers,
 * the seeded random generator, the clock, paths, whole-file reads and
 * atomic writes (util.h). */
#include "util.h"

#include <errno.h>
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
    struct stat st;
    if (stat(path, &st) != 0)
        return set_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return set_error(err, errlen, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return set_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return set_error(err, errlen, "%s: cannot seek: %s", path, strerror(errno));
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return set_error(err, errlen, "%s: not a regular file", path);
    }
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf) {
        fclose(f);
        return set_error(err, errlen, "%s: out of memory for %ld bytes", path, len);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)len) {
        free(buf);
        return set_error(err, errlen, "%s: read error", path);
    }
    *data = buf;
    *size = (size_t)len;
    return 0;
}

int atomic_open(atomic_file *af, const char *path, char *err, size_t errlen) {
    if (strlen(path) >= sizeof af->path) return set_error(err, errlen, "%s: path too long", path);
    strcpy(af->path, path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f)
        return set_error(err, errlen, "%s: cannot write: %s", af->tmp_path, strerror(errno));
    return 0;
}

int atomic_commit(atomic_file *af, char *err, size_t errlen) {
    /* The first failure's errno; a write error seen only by ferror has none. */
    int e = 0;
    if (ferror(af->f)) e = EIO;
    if (fflush(af->f) != 0 && !e) e = errno;
    if (fclose(af->f) != 0 && !e) e = errno;
    af->f = NULL;
    if (e) {
        unlink(af->tmp_path);
        return set_error(err, errlen, "%s: write failed: %s", af->path, strerror(e));
    }
    if (rename(af->tmp_path, af->path) != 0) {
        int e = errno;
        unlink(af->tmp_path);
        return set_error(err, errlen, "%s: cannot rename into place: %s", af->path, strerror(e));
    }
    return 0;
}

void atomic_abort(atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    unlink(af->tmp_path);
}
