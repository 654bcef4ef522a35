/* PNG in and out through libpng. Its errors arrive by longjmp: each reader
 * and writer keeps everything it must release in a struct that belongs to
 * its caller's frame (objects local to the function that called setjmp are
 * indeterminate after the jump), so one cleanup serves success and failure. */
#include "photo.h"

#include "util.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ==== Reading ==== */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    const char *name;
    char *err;
    size_t errlen;
    png_structp png;
    png_infop info;
    image *img;
} png_reader;

static void png_reader_fail(png_structp png, png_const_charp message) {
    png_reader *r = png_get_error_ptr(png);
    set_error(r->err, r->errlen, "%s: damaged PNG: %s", r->name, message);
    png_longjmp(png, 1);
}

/* Warnings (an unknown chunk, a text too long) leave the pixels whole. */
static void png_ignore_warning(png_structp png, png_const_charp message) {
    (void)png, (void)message;
}

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (r->size - r->pos < n) png_error(png, "truncated file");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

/* Moves the last of every `channels` interleaved samples (of `bytes` bytes)
 * into its own plane, the colour closing up in place. */
static int split_alpha(image *img, int channels, int bytes) {
    size_t n = (size_t)img->width * img->height, colour = (size_t)(channels - 1) * bytes;
    img->alpha = malloc(n * bytes);
    if (!img->alpha) return -1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = img->pixels + i * channels * bytes;
        memmove(img->pixels + i * colour, src, colour);
        memcpy(img->alpha + i * bytes, src + colour, bytes);
    }
    uint8_t *shrunk = realloc(img->pixels, n * colour);
    if (shrunk) img->pixels = shrunk;
    return 0;
}

/* Everything after the signature; -1 with r->err set. */
static int png_decode(png_reader *r) {
    image *img = r->img;
    if (setjmp(png_jmpbuf(r->png))) return -1;
    png_set_user_limits(r->png, PICTURE_MAX_SIDE, PICTURE_MAX_SIDE);
    /* too little image data (which libpng would fill with zeros) or too
     * much are damage, not warnings */
    png_set_benign_errors(r->png, 0);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* a fuzzer's mutations would almost all stop at the first checksum */
    png_set_crc_action(r->png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#else
    /* a damaged ancillary chunk is a damaged file too, not a warning */
    png_set_crc_action(r->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
#endif
    png_read_info(r->png, r->info);
    png_uint_32 w, h;
    int bit_depth, colour_type, interlace;
    png_get_IHDR(r->png, r->info, &w, &h, &bit_depth, &colour_type, &interlace, NULL, NULL);
    if (image_check_size(r->name, w, h, r->err, r->errlen) != 0) return -1;
    if (colour_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (colour_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (png_get_valid(r->png, r->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(r->png);
    if (bit_depth == 16 && little_endian()) png_set_swap(r->png);
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    int channels = png_get_channels(r->png, r->info), bytes = bit_depth == 16 ? 2 : 1;
    size_t row_bytes = png_get_rowbytes(r->png, r->info);
    if (row_bytes != (size_t)w * channels * bytes)
        return set_error(r->err, r->errlen, "%s: unexpected PNG layout", r->name);
    img->width = (int)w, img->height = (int)h;
    img->depth = 8 * bytes;
    img->channels = channels >= 3 ? 3 : 1;
    /* interlaced rows come back a pass at a time: the whole picture is the buffer */
    img->pixels = malloc(row_bytes * h);
    if (!img->pixels)
        return set_error(r->err, r->errlen, "%s: out of memory for %lu x %lu pixels (%zu MB)",
                         r->name, (unsigned long)w, (unsigned long)h, (row_bytes * h) >> 20);
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(r->png, img->pixels + row_bytes * y, NULL);
    png_read_end(r->png, NULL);
    if (channels == 2 || channels == 4) {
        if (split_alpha(img, channels, bytes) != 0)
            return set_error(r->err, r->errlen, "%s: out of memory", r->name);
        img->alpha_depth = img->depth;
    }
    return 0;
}

int photo_parse_png(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                    size_t errlen) {
    memset(img, 0, sizeof *img);
    /* the size first, from IHDR's bytes: a huge picture is refused as such
     * even when little of it follows */
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        unsigned long w = (unsigned long)data[16] << 24 | data[17] << 16 | data[18] << 8 | data[19];
        unsigned long h = (unsigned long)data[20] << 24 | data[21] << 16 | data[22] << 8 | data[23];
        if (w && h && image_check_size(name, w, h, err, errlen) != 0) return -1;
    }
    png_reader r = {.data = data, .size = size, .name = name, .err = err, .errlen = errlen};
    r.img = img;
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_reader_fail, png_ignore_warning);
    r.info = r.png ? png_create_info_struct(r.png) : NULL;
    int rc = -1;
    if (!r.info)
        set_error(err, errlen, "%s: out of memory", name);
    else {
        png_set_read_fn(r.png, &r, png_read_memory);
        rc = png_decode(&r);
    }
    png_destroy_read_struct(r.png ? &r.png : NULL, r.info ? &r.info : NULL, NULL);
    if (rc != 0) image_free(img);
    return rc;
}

/* ==== Writing ==== */

typedef struct {
    atomic_file af;
    const char *path;
    char *err;
    size_t errlen;
    png_structp png;
    png_infop info;
    uint8_t *row;
    const image *img;
} png_writer;

static void png_writer_fail(png_structp png, png_const_charp message) {
    png_writer *w = png_get_error_ptr(png);
    set_error(w->err, w->errlen, "%s: cannot write the PNG: %s", w->path, message);
    png_longjmp(png, 1);
}

/* Sample i of a plane of the given depth, at 16 bits when wide. */
static unsigned sample(const uint8_t *plane, int depth, size_t i, int wide) {
    unsigned v = depth == 16 ? ((const uint16_t *)plane)[i] : plane[i];
    return wide && depth != 16 ? v * 257 : v;
}

/* Row y interleaved as PNG has it: colour then alpha, big-endian when wide. */
static void png_pack_row(const image *img, int y, int wide, uint8_t *row) {
    int c = img->channels, out = c + (img->alpha != NULL);
    for (int x = 0; x < img->width; x++) {
        size_t at = (size_t)y * img->width + x;
        for (int k = 0; k <= c; k++) {
            if (k == c && !img->alpha) break;
            unsigned v = k < c ? sample(img->pixels, img->depth, at * c + k, wide)
                               : sample(img->alpha, img->alpha_depth, at, wide);
            size_t o = (size_t)x * out + k;
            if (wide)
                row[2 * o] = (uint8_t)(v >> 8), row[2 * o + 1] = (uint8_t)v;
            else
                row[o] = (uint8_t)v;
        }
    }
}

static int png_encode(png_writer *w) {
    const image *img = w->img;
    if (setjmp(png_jmpbuf(w->png))) return -1;
    int wide = img->depth == 16 || (img->alpha && img->alpha_depth == 16);
    int out = img->channels + (img->alpha != NULL);
    static const int colour_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                        PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    w->row = malloc((size_t)img->width * out * (wide ? 2 : 1));
    if (!w->row) return set_error(w->err, w->errlen, "%s: out of memory", w->path);
    png_init_io(w->png, w->af.f);
    png_set_IHDR(w->png, w->info, (png_uint_32)img->width, (png_uint_32)img->height, wide ? 16 : 8,
                 colour_types[out], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    /* zlib's level 3, not its default 6: on a 12-megapixel photograph a
     * third of the time (1.9 s against 5.4) for a file 5 % larger */
    png_set_compression_level(w->png, 3);
    png_write_info(w->png, w->info);
    for (int y = 0; y < img->height; y++) {
        png_pack_row(img, y, wide, w->row);
        png_write_row(w->png, w->row);
    }
    png_write_end(w->png, NULL);
    return 0;
}

int photo_write_png(const char *path, const image *img, char *err, size_t errlen) {
    png_writer w = {.path = path, .err = err, .errlen = errlen, .img = img};
    if (atomic_open(&w.af, path, err, errlen) != 0) return -1;
    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_writer_fail, png_ignore_warning);
    w.info = w.png ? png_create_info_struct(w.png) : NULL;
    int rc = w.info ? png_encode(&w) : set_error(err, errlen, "%s: out of memory", path);
    png_destroy_write_struct(w.png ? &w.png : NULL, w.info ? &w.info : NULL);
    free(w.row);
    if (rc != 0) {
        atomic_abort(&w.af);
        return -1;
    }
    return atomic_commit(&w.af, err, errlen);
}
