/* Photographs in and out: PNG (libpng), JPEG (libjpeg-turbo) and PGM/PPM
 * (image.h), recognised by their first bytes, never by their name; written
 * in the format an output's extension names. photo.c sniffs and dispatches,
 * photo_png.c and photo_jpeg.c hold the two libraries' readers and writers.
 *
 * What a reader gives: gray (1 channel) or RGB (3), 8 or 16 bits a sample
 * (PNG's 1, 2 and 4 bits widened to 8, a palette expanded to RGB, PNM's
 * maxval above 255 kept as 16 bits), and a PNG's alpha (or tRNS) as a
 * separate plane that a PNG output carries through unchanged. A JPEG's EXIF
 * orientation (read from its APP1 segment here, without libexif) is applied
 * as it decodes, so a phone's portrait comes out upright. CMYK and YCCK
 * JPEGs are refused: without their ICC profile any conversion guesses.
 *
 * Every failure is one line naming the file and what is wrong; a picture
 * larger than PICTURE_MAX_PIXELS (image.h) is refused before any pixel memory is taken,
 * saying what colouring it would need. Every write is atomic (util.h): a
 * failure, libpng's or libjpeg's included, leaves no file behind. */
#ifndef COLORIZE_PHOTO_H
#define COLORIZE_PHOTO_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef enum { PHOTO_UNKNOWN = 0, PHOTO_PNG, PHOTO_JPEG, PHOTO_PPM } photo_format;

#define PHOTO_DEFAULT_QUALITY 90

/* The format a file name's extension names (.png, .jpg, .jpeg, .ppm, any
 * case); PHOTO_UNKNOWN for any other or none. */
photo_format photo_format_of_path(const char *path);
/* The same for a --format word: png, jpeg, jpg, ppm. */
photo_format photo_format_of_name(const char *name);
/* The extension written for a format, without the dot: "png", "jpg", "ppm". */
const char *photo_extension(photo_format f);

/* Reads a PNG, JPEG, PGM or PPM file, whichever its bytes say it is. */
int photo_read(const char *path, image *img, char *err, size_t errlen);
/* The same on bytes in memory; name stands for the file in errors. */
int photo_parse(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                size_t errlen);

/* Writes img (1 or 3 channels, 8 or 16 bits, an alpha plane or none) as
 * format at path. JPEG: quality 1..100, 8 bits, no alpha. PPM: gray written
 * as P5, colour as P6, 16 bits as maxval 65535, no alpha. PNG: every sample
 * as it is; 16 bits a sample when the colour or the alpha has 16. */
int photo_write(const char *path, const image *img, photo_format format, int quality, char *err,
                size_t errlen);

/* ==== The two libraries' halves (photo_png.c, photo_jpeg.c) ==== */

int photo_parse_png(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                    size_t errlen);
int photo_parse_jpeg(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                     size_t errlen);
int photo_write_png(const char *path, const image *img, char *err, size_t errlen);
int photo_write_jpeg(const char *path, const image *img, int quality, char *err, size_t errlen);

/* The EXIF orientation (1..8; 1 when absent or unreadable) in the body of a
 * JPEG APP1 segment (from "Exif\0\0" on). */
int photo_exif_orientation(const uint8_t *app1, size_t size);

#endif
