/* JPEG in and out through libjpeg-turbo, and the EXIF orientation read from
 * the APP1 segment (a dozen lines of TIFF, no libexif). libjpeg's errors
 * arrive by longjmp, as libpng's do: what must be released lives in a struct
 * of the caller's frame. Its warnings (corrupt data, a premature end, which
 * it would paint gray) are errors here: a damaged picture is refused, not
 * coloured half. Decoding streams a row at a time into the picture's place,
 * turned as EXIF says; encoding a row at a time from it. */
#include "photo.h"

#include "util.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* ==== EXIF orientation ==== */

static unsigned tiff16(const uint8_t *p, int le) {
    return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
}
static uint32_t tiff32(const uint8_t *p, int le) {
    return le ? (uint32_t)tiff16(p, 1) | (uint32_t)tiff16(p + 2, 1) << 16
              : (uint32_t)tiff16(p, 0) << 16 | (uint32_t)tiff16(p + 2, 0);
}

/* "Exif\0\0", then a TIFF header (II or MM, 42, the offset of IFD0) and
 * IFD0's entries of 12 bytes: tag 0x0112 of type SHORT is the orientation. */
int photo_exif_orientation(const uint8_t *app1, size_t size) {
    enum { TAG_ORIENTATION = 0x0112, TYPE_SHORT = 3 };
    if (size < 6 + 8 || memcmp(app1, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = app1 + 6;
    size_t n = size - 6;
    int le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
    if (tiff16(t + 2, le) != 42) return 1;
    uint32_t ifd = tiff32(t + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned entries = tiff16(t + ifd, le);
    for (unsigned i = 0; i < entries; i++) {
        size_t e = ifd + 2 + (size_t)12 * i;
        if (e + 12 > n) break;
        if (tiff16(t + e, le) != TAG_ORIENTATION) continue;
        unsigned v = tiff16(t + e + 8, le);
        return tiff16(t + e + 2, le) == TYPE_SHORT && v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Where stored pixel (x, y) of a w x h picture goes once turned upright, as
 * EXIF's orientation 1..8 says (5..8 swap the sides). */
static void orient(int orientation, int w, int h, int x, int y, int *ox, int *oy) {
    switch (orientation) {
    case 2: *ox = w - 1 - x, *oy = y; break;         /* mirrored */
    case 3: *ox = w - 1 - x, *oy = h - 1 - y; break; /* upside down */
    case 4: *ox = x, *oy = h - 1 - y; break;         /* mirrored upside down */
    case 5: *ox = y, *oy = x; break;                 /* transposed */
    case 6: *ox = h - 1 - y, *oy = x; break;         /* turned a quarter clockwise */
    case 7: *ox = h - 1 - y, *oy = w - 1 - x; break; /* transversed */
    case 8: *ox = y, *oy = w - 1 - x; break;         /* turned a quarter anticlockwise */
    default: *ox = x, *oy = y; break;
    }
}

/* ==== Errors ==== */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    const char *name, *doing;
    char *err;
    size_t errlen;
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    f->pub.format_message(cinfo, message);
    set_error(f->err, f->errlen, "%s: %s: %s", f->name, f->doing, message);
    longjmp(f->jump, 1);
}

/* level -1 is a warning: data libjpeg would go on past (corrupt, cut
 * short). Stray bytes between segments leave the pixels whole. */
static void jpeg_warning_fails(j_common_ptr cinfo, int level) {
    if (level == -1 && cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA) jpeg_fail(cinfo);
}

static void jpeg_failure_init(jpeg_failure *f, const char *name, const char *doing, char *err,
                              size_t errlen) {
    jpeg_std_error(&f->pub);
    f->pub.error_exit = jpeg_fail;
    f->pub.emit_message = jpeg_warning_fails;
    f->name = name, f->doing = doing, f->err = err, f->errlen = errlen;
}

/* ==== Reading ==== */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    uint8_t *row;
    image *img;
} jpeg_reader;

static int exif_orientation_of(j_decompress_ptr cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif", 4) == 0)
            return photo_exif_orientation(m->data, m->data_length);
    return 1;
}

static int jpeg_decode(jpeg_reader *r, const uint8_t *data, size_t size) {
    j_decompress_ptr cinfo = &r->cinfo;
    image *img = r->img;
    jpeg_failure *f = &r->failure;
    if (setjmp(f->jump)) return -1;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
        return set_error(f->err, f->errlen,
                         "%s: a CMYK JPEG, which is not supported: convert it to RGB first",
                         f->name);
    if (image_check_size(f->name, cinfo->image_width, cinfo->image_height, f->err, f->errlen) != 0)
        return -1;
    int orientation = exif_orientation_of(cinfo);
    cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(cinfo);
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height;
    int c = cinfo->output_components;
    int turned = orientation >= 5;
    img->width = turned ? h : w, img->height = turned ? w : h;
    img->channels = c, img->depth = 8;
    img->pixels = malloc((size_t)w * h * c);
    r->row = malloc((size_t)w * c);
    if (!img->pixels || !r->row)
        return set_error(f->err, f->errlen, "%s: out of memory for %d x %d pixels (%zu MB)",
                         f->name, w, h, ((size_t)w * h * c) >> 20);
    while (cinfo->output_scanline < cinfo->output_height) {
        int y = (int)cinfo->output_scanline;
        JSAMPROW row = orientation == 1 ? img->pixels + (size_t)y * w * c : r->row;
        jpeg_read_scanlines(cinfo, &row, 1);
        for (int x = 0; orientation != 1 && x < w; x++) {
            int ox, oy;
            orient(orientation, w, h, x, y, &ox, &oy);
            memcpy(img->pixels + ((size_t)oy * img->width + ox) * c, r->row + (size_t)x * c,
                   (size_t)c);
        }
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

int photo_parse_jpeg(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                     size_t errlen) {
    memset(img, 0, sizeof *img);
    jpeg_reader r;
    memset(&r, 0, sizeof r);
    r.img = img;
    jpeg_failure_init(&r.failure, name, "damaged JPEG", err, errlen);
    r.cinfo.err = &r.failure.pub;
    int rc = jpeg_decode(&r, data, size);
    jpeg_destroy_decompress(&r.cinfo);
    free(r.row);
    if (rc != 0) image_free(img);
    return rc;
}

/* ==== Writing ==== */

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    atomic_file af;
    uint8_t *row;
    const image *img;
} jpeg_writer;

static int jpeg_encode(jpeg_writer *w, int quality) {
    j_compress_ptr cinfo = &w->cinfo;
    const image *img = w->img;
    if (setjmp(w->failure.jump)) return -1;
    jpeg_create_compress(cinfo);
    jpeg_stdio_dest(cinfo, w->af.f);
    cinfo->image_width = (JDIMENSION)img->width;
    cinfo->image_height = (JDIMENSION)img->height;
    cinfo->input_components = img->channels;
    cinfo->in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    size_t n = (size_t)img->width * img->channels;
    if (img->depth == 16 && !(w->row = malloc(n)))
        return set_error(w->failure.err, w->failure.errlen, "%s: out of memory", w->failure.name);
    for (int y = 0; y < img->height; y++) {
        JSAMPROW row = img->pixels + (size_t)y * n;
        if (img->depth == 16) { /* to 8 bits, rounded */
            const uint16_t *src = (const uint16_t *)img->pixels + (size_t)y * n;
            for (size_t i = 0; i < n; i++)
                w->row[i] = (uint8_t)((src[i] * 255u + 32767u) / 65535u);
            row = w->row;
        }
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return 0;
}

int photo_write_jpeg(const char *path, const image *img, int quality, char *err, size_t errlen) {
    jpeg_writer *w = calloc(1, sizeof *w); /* atomic_file is large; the struct must stay put */
    if (!w) return set_error(err, errlen, "%s: out of memory", path);
    w->img = img;
    jpeg_failure_init(&w->failure, path, "cannot write the JPEG", err, errlen);
    w->cinfo.err = &w->failure.pub;
    int rc = atomic_open(&w->af, path, err, errlen);
    if (rc == 0) {
        rc = jpeg_encode(w, quality < 1 ? 1 : quality > 100 ? 100 : quality);
        jpeg_destroy_compress(&w->cinfo);
        rc = rc != 0 ? (atomic_abort(&w->af), -1) : atomic_commit(&w->af, err, errlen);
    }
    free(w->row);
    free(w);
    return rc;
}
