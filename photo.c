/* Photographs in and out: the format told by a file's first bytes or by a
 * name's extension, the size limits, and the dispatch to the PNG, JPEG and
 * PGM/PPM halves. */
#include "photo.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    photo_format format;
} format_names[] = {
    {"png", PHOTO_PNG}, {"jpg", PHOTO_JPEG}, {"jpeg", PHOTO_JPEG}, {"ppm", PHOTO_PPM}};

photo_format photo_format_of_name(const char *name) {
    for (size_t i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (strcasecmp(name, format_names[i].name) == 0) return format_names[i].format;
    return PHOTO_UNKNOWN;
}

photo_format photo_format_of_path(const char *path) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? photo_format_of_name(dot + 1) : PHOTO_UNKNOWN;
}

const char *photo_extension(photo_format f) {
    return f == PHOTO_PNG ? "png" : f == PHOTO_JPEG ? "jpg" : f == PHOTO_PPM ? "ppm" : "";
}

int photo_parse(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                size_t errlen) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(img, 0, sizeof *img);
    if (size == 0) return set_error(err, errlen, "%s: empty file", name);
    if (size >= 8 && memcmp(data, png_signature, 8) == 0)
        return photo_parse_png(data, size, name, img, err, errlen);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return photo_parse_jpeg(data, size, name, img, err, errlen);
    if (size >= 2 && data[0] == 'P' && strchr("2356", data[1]) && data[1])
        return image_parse_pnm_deep(data, size, name, img, err, errlen);
    return set_error(err, errlen, "%s: not a picture: neither PNG, JPEG, PGM nor PPM", name);
}

int photo_read(const char *path, image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size, err, errlen) != 0) return -1;
    int rc = photo_parse(data, size, path, img, err, errlen);
    free(data);
    return rc;
}

int photo_write(const char *path, const image *img, photo_format format, int quality, char *err,
                size_t errlen) {
    if (!img || !img->pixels || (img->channels != 1 && img->channels != 3) || img->width <= 0 ||
        img->height <= 0 || (img->depth != 0 && img->depth != 8 && img->depth != 16))
        return set_error(err, errlen,
                         "%s: cannot write an image without pixels or with %d channels", path,
                         img ? img->channels : 0);
    switch (format) {
    case PHOTO_PNG: return photo_write_png(path, img, err, errlen);
    case PHOTO_JPEG: return photo_write_jpeg(path, img, quality, err, errlen);
    case PHOTO_PPM: return image_write_pnm(path, img, err, errlen);
    default: return set_error(err, errlen, "%s: no format to write it in", path);
    }
}
