/* libFuzzer target: the PNG reader (photo_parse_png) on any bytes; the
 * checks are fuzz_photo.h's. */
#include "fuzz_photo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_photo_reader(photo_parse_png, "fuzz.png", data, size);
}
