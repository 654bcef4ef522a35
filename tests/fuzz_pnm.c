/* libFuzzer target: the PGM/PPM reader (image_parse_pnm) on any bytes.
 * Nothing may crash, leak or read outside the input; a failure is one line
 * that names the file; a success holds as many pixels as it says. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy: the fuzzer's own buffer may be longer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256] = "";
    image img;
    if (image_parse_pnm(buf, size, "fuzz.pnm", &img, err, sizeof err) == 0) {
        if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) ||
            !img.pixels)
            abort();
        size_t n = (size_t)img.width * img.height * img.channels;
        volatile unsigned sum = img.pixels[0] + img.pixels[n - 1];
        (void)sum;
        image_free(&img);
    } else if (strncmp(err, "fuzz.pnm: ", 10) != 0 || strchr(err, '\n') || img.pixels) {
        abort(); /* a failure says why, in one line naming the file, and keeps nothing */
    }
    free(buf);
    return 0;
}
