/* The Lab model compiled into the program: models/builtin.bin, made by
 * `make model` (README, "The built-in model"), turned into a C array at
 * build time by tools/bin2c.c. `colorize predict IN OUT` colours with it
 * when no model is named. */
#ifndef COLORIZE_BUILTIN_MODEL_H
#define COLORIZE_BUILTIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t builtin_model[];
extern const size_t builtin_model_size;

#endif
