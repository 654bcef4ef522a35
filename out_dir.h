/* A run's output folder and its lock. */
#ifndef COLORIZE_OUT_DIR_H
#define COLORIZE_OUT_DIR_H

#include <stddef.h>

#include "util.h"

/* Paths in the output folder fit an atomic_file; no output's name is longer
 * than OUT_NAME_MAX ("palette.ppm", "summary.txt", ".colorize-probe"). */
enum { OUT_PATH_MAX = sizeof((atomic_file *)0)->path, OUT_NAME_MAX = 16 };

/* mkdir -p, then proves the folder writable (a probe file written and
 * removed). -1 with err set naming the folder that failed. */
int out_dir_prepare(const char *dir, char *err, size_t errlen);
/* One run per output folder: an advisory lock on DIR/.colorize-lock, held
 * until the process ends or the descriptor it returns is closed. -1 with err
 * set (another run holds it: its pid, when the lock file names it). */
int out_dir_lock(const char *dir, char *err, size_t errlen);

#endif
