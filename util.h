/* Small pieces every file needs: error messages in caller-owned buffers,
 * a seeded random generator, a wall clock, and files written atomically. */
#ifndef COLORIZE_UTIL_H
#define COLORIZE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Formats a message into err (if err is non-NULL) and returns -1, so that
 * library code can write `return set_error(err, errlen, "...", ...);`. */
int set_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* xoshiro256** seeded through splitmix64: fast, and the same stream on every
 * platform for a given seed. */
typedef struct {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *r, uint64_t seed);
uint64_t rng_next(rng_state *r);
/* Uniform in [0, 1) with 24 bits, so it is exact as a float. */
float rng_uniform(rng_state *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng_state *r, uint64_t n);
/* Standard normal (Box-Muller). */
float rng_normal(rng_state *r);

/* Seconds on a monotonic clock. */
double now_seconds(void);

/* dir/name into path, with one '/' between them; -1 with a message naming
 * dir if it does not fit in len bytes. */
int path_join(char *path, size_t len, const char *dir, const char *name, char *err, size_t errlen);

/* Reads a whole regular file into a fresh buffer (caller frees). Errors name
 * the file and the system's reason ("No such file or directory"). */
int read_file(const char *path, uint8_t **data, size_t *size, char *err, size_t errlen);

/* Atomic output: write through af->f into PATH.tmp, then atomic_commit
 * flushes it, syncs it to disk, renames it over PATH and syncs the folder, so
 * that PATH is always either the old file or the whole new one, even after a
 * crash. Any failure removes PATH.tmp and names PATH and the system's reason
 * ("No space left on device"): callers write without checking each call, and
 * the commit reports the first write that failed. af->f records that write's
 * errno in af itself, so an open atomic_file must not be copied or moved. */
typedef struct {
    FILE *f;
    int fd;
    int write_errno; /* of the first failed write; 0 while none has */
    char path[4096];
    char tmp_path[4100];
} atomic_file;

int atomic_open(atomic_file *af, const char *path, char *err, size_t errlen);
int atomic_commit(atomic_file *af, char *err, size_t errlen); /* closes; renames on success */
void atomic_abort(atomic_file *af);                           /* closes and removes the temporary */

#endif
