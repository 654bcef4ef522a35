/* The body of the two photograph fuzz targets (fuzz_png.c, fuzz_jpeg.c):
 * one reader on any bytes. Nothing may crash, leak or read outside the
 * input, whatever libpng or libjpeg says by longjmp; a failure is one line
 * that names the file and keeps no pixels or alpha; a success holds as many
 * pixels as it says. */
#include "photo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*photo_reader)(const uint8_t *data, size_t size, const char *name, image *img,
                            char *err, size_t errlen);

static int fuzz_photo_reader(photo_reader read, const char *name, const uint8_t *data,
                             size_t size) {
    /* An exact-size copy: the fuzzer's own buffer may be longer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256] = "", prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", name);
    image img;
    if (read(buf, size, name, &img, err, sizeof err) == 0) {
        if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) ||
            !img.pixels || (img.depth != 8 && img.depth != 16))
            abort();
        size_t n = (size_t)img.width * img.height * img.channels * (img.depth / 8);
        volatile unsigned sum = img.pixels[0] + img.pixels[n - 1];
        if (img.alpha) sum += img.alpha[(size_t)img.width * img.height * (img.alpha_depth / 8) - 1];
        (void)sum;
        image_free(&img);
    } else if (strncmp(err, prefix, strlen(prefix)) != 0 || strchr(err, '\n') || img.pixels ||
               img.alpha) {
        /* a failure says why, in one line naming the file, and keeps nothing */
        fprintf(stderr, "bad failure: '%s'\n", err);
        abort();
    }
    free(buf);
    return 0;
}
