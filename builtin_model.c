/* models/builtin.bin's bytes. The build writes them as a list of numbers
 * into builtin_model.inc (tools/bin2c.c, a host program: the same list
 * serves a cross build) in its own folder, on the include path: plain C,
 * so any compiler, object format and target takes it. */
#include "builtin_model.h"

/* 8-aligned, as a model file read from disk is */
_Alignas(8) const uint8_t builtin_model[] = {
#include "builtin_model.inc"
};
const size_t builtin_model_size = sizeof builtin_model;
