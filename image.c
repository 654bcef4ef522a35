/* Pictures and plots: skimage's grayscale conversion, the PGM/PPM reader
 * and writer (netpbm, binary and plain), the comparison sheet, and the SVG
 * error plot. Every file is written atomically (util.h's atomic_file). */
#include "image.h"

#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest width or height read or made here: above any sheet the program
 * draws (100 rows at scale 5 is 16404 pixels high), small enough that
 * width * height * 3 fits even a 32-bit size_t. */
#define IMAGE_MAX_SIDE 32768

/* ==== Grayscale ==== */

/* skimage's rgb2gray on float32 input, i.e. rgb2gray(img_as_float32(rgb)):
 *   gray = (r * f(1/255)) * 0.2125f + (g * f(1/255)) * 0.7154f + (b * f(1/255)) * 0.0721f
 * with every operation rounded to float32 and summed left to right
 * (img_as_float32 multiplies by float32(1/255); rgb @ coeffs adds the three
 * products in order; the build forbids fused multiply-adds). On a million
 * random pixels this gives skimage 0.19.3's bits exactly. The float64 path,
 * rgb2gray(uint8 image) then cast to float32, differs in about half the
 * pixels by one ulp (white gives 1.0 there, 0.99999994 here). */
float gray_of_rgb(float r, float g, float b) {
    const float inv255 = 1.0f / 255.0f;
    return (r * inv255) * 0.2125f + (g * inv255) * 0.7154f + (b * inv255) * 0.0721f;
}

void gray_from_rgb(const uint8_t *rgb, size_t n, float *gray) {
    for (size_t i = 0; i < n; i++)
        gray[i] = gray_of_rgb(rgb[3 * i + 0], rgb[3 * i + 1], rgb[3 * i + 2]);
}

float gray_of_rgb16(float r, float g, float b) {
    const float inv65535 = 1.0f / 65535.0f;
    return (r * inv65535) * 0.2125f + (g * inv65535) * 0.7154f + (b * inv65535) * 0.0721f;
}

int image_check_size(const char *name, unsigned long width, unsigned long height, char *err,
                     size_t errlen) {
    if (width == 0 || height == 0)
        return set_error(err, errlen, "%s: empty image (%lu x %lu)", name, width, height);
    unsigned long long pixels = (unsigned long long)width * height;
    if (width > PICTURE_MAX_SIDE || height > PICTURE_MAX_SIDE || pixels > PICTURE_MAX_PIXELS)
        /* the picture and its colouring at 3 bytes a pixel each, at least */
        return set_error(err, errlen,
                         "%s: too large: %lu x %lu pixels would need %llu MB to colour "
                         "(the limit is %llu megapixels, %d a side)",
                         name, width, height, (pixels * 6 + (1 << 20) - 1) >> 20,
                         PICTURE_MAX_PIXELS / 1000000, PICTURE_MAX_SIDE);
    return 0;
}

void image_free(image *img) {
    if (!img) return;
    free(img->pixels);
    free(img->alpha);
    *img = (image){0};
}

/* ==== Reading netpbm ==== */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    const char *path;
    char *err;
    size_t errlen;
    int deep; /* a maxval above 255 keeps 16 bits */
} pnm_cursor;

static int is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static int is_digit(int c) {
    return c >= '0' && c <= '9';
}

/* Skips whitespace and # comments (which run to the end of the line). */
static void pnm_skip_blanks(pnm_cursor *c) {
    while (c->pos < c->size) {
        uint8_t ch = c->data[c->pos];
        if (is_space(ch)) {
            c->pos++;
        } else if (ch == '#') {
            while (c->pos < c->size && c->data[c->pos] != '\n' && c->data[c->pos] != '\r')
                c->pos++;
        } else {
            break;
        }
    }
}

/* Reads a decimal number in [0, max] that ends at whitespace, a comment or the
 * end of the file. `what` names it in errors ("width", "sample 7"). */
static int pnm_read_number(pnm_cursor *c, const char *what, unsigned max, unsigned *out) {
    pnm_skip_blanks(c);
    if (c->pos >= c->size)
        return set_error(c->err, c->errlen, "%s: truncated: missing %s", c->path, what);
    if (!is_digit(c->data[c->pos]))
        return set_error(c->err, c->errlen, "%s: bad %s at byte %zu: not a number", c->path, what,
                         c->pos);
    unsigned long v = 0;
    while (c->pos < c->size && is_digit(c->data[c->pos])) {
        v = v * 10 + (unsigned long)(c->data[c->pos++] - '0');
        if (v > max) return set_error(c->err, c->errlen, "%s: %s exceeds %u", c->path, what, max);
    }
    if (c->pos < c->size && !is_space(c->data[c->pos]) && c->data[c->pos] != '#')
        return set_error(c->err, c->errlen, "%s: bad %s at byte %zu: not a number", c->path, what,
                         c->pos);
    *out = (unsigned)v;
    return 0;
}

/* Maps a sample in [0, maxval] to [0, 255], rounding to nearest. */
static uint8_t pnm_scale(unsigned v, unsigned maxval) {
    return (uint8_t)((v * 255u + maxval / 2) / maxval);
}

/* Room for count samples: bytes, or 16 bits when the cursor keeps them. */
static int pnm_alloc(pnm_cursor *c, unsigned maxval, size_t count, image *img) {
    img->depth = c->deep && maxval > 255 ? 16 : 8;
    img->pixels = malloc(count * (img->depth / 8));
    if (!img->pixels) return set_error(c->err, c->errlen, "%s: out of memory", c->path);
    return 0;
}

/* Sample i, v in [0, maxval], at the image's depth. */
static void pnm_store(image *img, size_t i, unsigned v, unsigned maxval) {
    if (img->depth == 16)
        ((uint16_t *)img->pixels)[i] = (uint16_t)(((uint64_t)v * 65535u + maxval / 2) / maxval);
    else
        img->pixels[i] = pnm_scale(v, maxval);
}

/* Binary raster: exactly one whitespace byte after maxval, then samples of one
 * byte (maxval < 256) or two big-endian bytes. Bytes after the raster are
 * ignored: netpbm streams may hold several images. */
static int pnm_read_binary(pnm_cursor *c, unsigned maxval, image *img) {
    size_t count = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    size_t bytes_per = maxval < 256 ? 1 : 2;
    if (c->pos >= c->size || !is_space(c->data[c->pos]))
        return set_error(c->err, c->errlen, "%s: truncated: no whitespace after maxval", c->path);
    c->pos++;
    size_t have = c->size - c->pos;
    if ((uint64_t)have < (uint64_t)count * bytes_per)
        return set_error(c->err, c->errlen, "%s: truncated pixel data: %zu of %llu bytes", c->path,
                         have, (unsigned long long)count * bytes_per);
    if (pnm_alloc(c, maxval, count, img) != 0) return -1;
    const uint8_t *src = c->data + c->pos;
    for (size_t i = 0; i < count; i++) {
        unsigned v = bytes_per == 1 ? src[i] : (unsigned)src[2 * i] << 8 | src[2 * i + 1];
        if (v > maxval)
            return set_error(c->err, c->errlen, "%s: sample %zu is %u, above maxval %u", c->path, i,
                             v, maxval);
        pnm_store(img, i, v, maxval);
    }
    return 0;
}

/* Plain raster: decimal samples separated by whitespace (comments allowed, as
 * netpbm allows); nothing but blanks may follow the last one. */
static int pnm_read_plain(pnm_cursor *c, unsigned maxval, image *img) {
    size_t count = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    /* Each sample takes at least one byte: refuse before allocating for a
     * header that promises more than the file can hold. */
    if (c->size - c->pos < count)
        return set_error(c->err, c->errlen,
                         "%s: truncated pixel data: %zu samples cannot fit in %zu bytes", c->path,
                         count, c->size - c->pos);
    if (pnm_alloc(c, maxval, count, img) != 0) return -1;
    for (size_t i = 0; i < count; i++) {
        pnm_skip_blanks(c);
        if (c->pos >= c->size)
            return set_error(c->err, c->errlen, "%s: truncated pixel data: %zu of %zu samples",
                             c->path, i, count);
        char what[48];
        snprintf(what, sizeof what, "sample %zu", i);
        unsigned v;
        if (pnm_read_number(c, what, maxval, &v) != 0) return -1;
        pnm_store(img, i, v, maxval);
    }
    pnm_skip_blanks(c);
    if (c->pos < c->size)
        return set_error(c->err, c->errlen, "%s: unexpected data after the last sample at byte %zu",
                         c->path, c->pos);
    return 0;
}

static int pnm_parse(pnm_cursor *c, image *img) {
    if (c->size == 0) return set_error(c->err, c->errlen, "%s: empty file", c->path);
    const uint8_t *d = c->data;
    if (c->size < 2 || d[0] != 'P' || !(d[1] == '2' || d[1] == '3' || d[1] == '5' || d[1] == '6'))
        return set_error(c->err, c->errlen,
                         "%s: not a PGM/PPM file (magic must be P2, P3, P5 or P6)", c->path);
    int plain = d[1] == '2' || d[1] == '3';
    img->channels = d[1] == '3' || d[1] == '6' ? 3 : 1;
    c->pos = 2;
    if (c->pos < c->size && !is_space(d[c->pos]) && d[c->pos] != '#')
        return set_error(c->err, c->errlen, "%s: not a PGM/PPM file (bad magic number)", c->path);
    unsigned width, height, maxval;
    if (pnm_read_number(c, "width", IMAGE_MAX_SIDE, &width) != 0) return -1;
    if (pnm_read_number(c, "height", IMAGE_MAX_SIDE, &height) != 0) return -1;
    if (pnm_read_number(c, "maxval", 65535, &maxval) != 0) return -1;
    if (width == 0 || height == 0)
        return set_error(c->err, c->errlen, "%s: empty image (%u x %u)", c->path, width, height);
    if (maxval == 0) return set_error(c->err, c->errlen, "%s: maxval is 0", c->path);
    img->width = (int)width;
    img->height = (int)height;
    return plain ? pnm_read_plain(c, maxval, img) : pnm_read_binary(c, maxval, img);
}

static int parse_pnm(const uint8_t *data, size_t size, const char *name, int deep, image *img,
                     char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    pnm_cursor c = {
        .data = data, .size = size, .path = name, .err = err, .errlen = errlen, .deep = deep};
    int rc = pnm_parse(&c, img);
    if (rc != 0) image_free(img);
    return rc;
}

int image_parse_pnm(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                    size_t errlen) {
    return parse_pnm(data, size, name, 0, img, err, errlen);
}

int image_parse_pnm_deep(const uint8_t *data, size_t size, const char *name, image *img, char *err,
                         size_t errlen) {
    return parse_pnm(data, size, name, 1, img, err, errlen);
}

int image_read_pnm(const char *path, image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size, err, errlen) != 0) return -1;
    int rc = image_parse_pnm(data, size, path, img, err, errlen);
    free(data);
    return rc;
}

/* ==== Writing netpbm ==== */

int image_write_pnm(const char *path, const image *img, char *err, size_t errlen) {
    if (!img || !img->pixels || (img->channels != 1 && img->channels != 3) || img->width <= 0 ||
        img->height <= 0)
        return set_error(err, errlen,
                         "%s: cannot write an image without pixels or with %d channels", path,
                         img ? img->channels : 0);
    atomic_file af;
    if (atomic_open(&af, path, err, errlen) != 0) return -1;
    size_t count = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    int deep = img->depth == 16;
    fprintf(af.f, "P%c\n%d %d\n%d\n", img->channels == 1 ? '5' : '6', img->width, img->height,
            deep ? 65535 : 255);
    if (!deep) fwrite(img->pixels, 1, count, af.f); /* a failure is the commit's to report */
    for (size_t i = 0; deep && i < count; i++) {    /* big-endian */
        uint16_t v = ((const uint16_t *)img->pixels)[i];
        putc(v >> 8, af.f);
        putc(v & 0xff, af.f);
    }
    return atomic_commit(&af, err, errlen);
}

/* ==== The comparison sheet ==== */

#define SHEET_GUTTER_GRAY 128

/* A NULL cell is left blank (gutter gray), so a short last row needs no filler. */
int image_sheet(const uint8_t *const *cells, int rows, int columns, int side, int scale, int gutter,
                image *sheet, char *err, size_t errlen) {
    memset(sheet, 0, sizeof *sheet);
    if (!cells || rows < 1 || columns < 1 || side < 1 || scale < 1 || gutter < 0)
        return set_error(
            err, errlen,
            "image_sheet: bad layout (rows %d, columns %d, side %d, scale %d, gutter %d)", rows,
            columns, side, scale, gutter);
    long long cell = (long long)side * scale;
    long long width = gutter + columns * (cell + gutter);
    long long height = gutter + rows * (cell + gutter);
    if (cell > IMAGE_MAX_SIDE || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return set_error(err, errlen,
                         "image_sheet: sheet of %lld x %lld pixels exceeds %d per side", width,
                         height, IMAGE_MAX_SIDE);
    size_t bytes = (size_t)width * (size_t)height * 3;
    uint8_t *px = malloc(bytes);
    if (!px)
        return set_error(err, errlen, "image_sheet: out of memory for a %lld x %lld sheet", width,
                         height);
    memset(px, SHEET_GUTTER_GRAY, bytes);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < columns; c++) {
            const uint8_t *src = cells[(size_t)r * columns + c];
            if (!src) continue;
            size_t x0 = (size_t)gutter + (size_t)c * (size_t)(cell + gutter);
            size_t y0 = (size_t)gutter + (size_t)r * (size_t)(cell + gutter);
            for (long long y = 0; y < cell; y++) {
                uint8_t *dst = px + ((y0 + (size_t)y) * (size_t)width + x0) * 3;
                const uint8_t *src_row = src + (size_t)(y / scale) * (size_t)side * 3;
                for (long long x = 0; x < cell; x++)
                    memcpy(dst + x * 3, src_row + (x / scale) * 3, 3);
            }
        }
    sheet->width = (int)width;
    sheet->height = (int)height;
    sheet->channels = 3;
    sheet->pixels = px;
    return 0;
}

/* ==== The SVG error plot ==== */

#define PLOT_WIDTH  720
#define PLOT_HEIGHT 440

/* Writes s as XML text or attribute content: markup characters escaped,
 * characters XML 1.0 forbids and bytes that are not UTF-8 become '?'.
 * Returns the number of characters written, for width estimates. */
static int xml_write_escaped(FILE *f, const char *s) {
    int chars = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned char ch = *p;
        int len = ch < 0x80             ? 1
                  : (ch & 0xE0) == 0xC0 ? 2
                  : (ch & 0xF0) == 0xE0 ? 3
                  : (ch & 0xF8) == 0xF0 ? 4
                                        : 0;
        int ok = len > 0 && (len == 1 || ch >= 0xC2) && ch <= 0xF4;
        for (int k = 1; ok && k < len; k++)
            ok = (p[k] & 0xC0) == 0x80;
        chars++;
        if (!ok) {
            fputc('?', f);
            p++;
            continue;
        }
        if (len > 1) {
            fwrite(p, 1, (size_t)len, f);
            p += len;
            continue;
        }
        switch (ch) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(ch < 0x20 && ch != '\t' ? '?' : (int)ch, f); break;
        }
        p++;
    }
    return chars;
}

/* Characters in a UTF-8 string (continuation bytes not counted). */
static int utf8_chars(const char *s) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* 1, 2 or 5 (or 2.5 when allow_quarter) times a power of ten, the smallest
 * such step not below raw. */
static double nice_step(double raw, int allow_quarter) {
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    double step = m <= 1.0                      ? 1.0
                  : m <= 2.0                    ? 2.0
                  : (allow_quarter && m <= 2.5) ? 2.5
                  : m <= 5.0                    ? 5.0
                                                : 10.0;
    return step * p;
}

/* Decimals needed to print multiples of step exactly (0.25 needs 2). */
static int step_decimals(double step) {
    for (int d = 0; d < 6; d++) {
        double scaled = step * pow(10.0, d);
        if (fabs(scaled - round(scaled)) < 1e-6 * scaled) return d;
    }
    return 6;
}

typedef struct {
    double left, right, top, bottom; /* the plot frame in pixels */
    double x_pad;                    /* keeps the first and last markers off the frame */
    int n_epochs;
    double y_lo, y_hi, y_step; /* percent */
} plot_frame;

static double plot_x(const plot_frame *p, double epoch) {
    if (p->n_epochs == 1) return 0.5 * (p->left + p->right);
    return p->left + p->x_pad +
           (epoch - 1) / (p->n_epochs - 1) * (p->right - p->left - 2 * p->x_pad);
}

static double plot_y(const plot_frame *p, double percent) {
    return p->bottom - (percent - p->y_lo) / (p->y_hi - p->y_lo) * (p->bottom - p->top);
}

/* Chooses a y range in round steps that covers every finite value and the
 * baseline with a little room, never below 0 % or above 100 % when the data
 * are not. */
static void plot_choose_y(plot_frame *p, const plot_line *lines, int n_lines, double baseline) {
    double lo = INFINITY, hi = -INFINITY;
    for (int l = 0; l < n_lines; l++)
        for (int e = 0; e < p->n_epochs; e++) {
            double v = lines[l].values[e] * 100.0;
            if (!isfinite(v)) continue;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    if (baseline >= 0 && isfinite(baseline * 100.0)) {
        lo = fmin(lo, baseline * 100.0);
        hi = fmax(hi, baseline * 100.0);
    }
    if (!(lo <= hi) || !isfinite(hi - lo)) lo = 0, hi = 100;
    double data_lo = lo, data_hi = hi;
    double pad = hi - lo > 1e-9 ? 0.08 * (hi - lo) : fmax(0.05 * fabs(hi), 0.5);
    lo -= pad;
    hi += pad;
    if (lo < 0 && data_lo >= 0) lo = 0;
    if (hi > 100 && data_hi <= 100) hi = 100;
    double step = nice_step((hi - lo) / 5.0, 1);
    p->y_step = step;
    p->y_lo = floor(lo / step + 1e-9) * step;
    p->y_hi = ceil(hi / step - 1e-9) * step;
    if (p->y_hi <= p->y_lo) p->y_hi = p->y_lo + step;
}

static void svg_axes(FILE *f, const plot_frame *p) {
    /* Horizontal grid and y tick labels. */
    int decimals = step_decimals(p->y_step);
    long n_ticks = lround((p->y_hi - p->y_lo) / p->y_step);
    for (long i = 0; i <= n_ticks; i++) {
        double v = p->y_lo + (double)i * p->y_step;
        if (fabs(v) < 1e-9 * p->y_step) v = 0; /* never print "-0" */
        double y = plot_y(p, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
                p->left, y, p->right, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                p->left - 5, y, p->left, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" dy=\"0.35em\">%.*f</text>\n",
                p->left - 8, y, decimals, v);
    }
    /* Vertical grid at whole epochs: every epoch when few, else multiples of a
     * round step. */
    long step = lround(nice_step(p->n_epochs / 10.0 < 1 ? 1 : p->n_epochs / 10.0, 0));
    for (long e = step == 1 ? 1 : step; e <= p->n_epochs; e += step) {
        double x = plot_x(p, (double)e);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
                x, p->top, x, p->bottom);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x,
                p->bottom, x, p->bottom + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%ld</text>\n", x,
                p->bottom + 19, e);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            p->left, p->top, p->right - p->left, p->bottom - p->top);
}

static void svg_line(FILE *f, const plot_frame *p, const plot_line *line, const char *colour) {
    fputs("<polyline fill=\"none\" stroke=\"", f);
    xml_write_escaped(f, colour);
    fputs("\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"", f);
    int first = 1;
    for (int e = 0; e < p->n_epochs; e++) {
        double v = line->values[e] * 100.0;
        if (!isfinite(v)) continue;
        fprintf(f, "%s%.1f,%.1f", first ? "" : " ", plot_x(p, e + 1), plot_y(p, v));
        first = 0;
    }
    fputs("\"/>\n", f);
    /* Markers shrink as epochs crowd together. */
    double r = p->n_epochs <= 40 ? 3.0 : p->n_epochs <= 120 ? 2.0 : 1.3;
    fputs("<g fill=\"", f);
    xml_write_escaped(f, colour);
    fputs("\">\n", f);
    for (int e = 0; e < p->n_epochs; e++) {
        double v = line->values[e] * 100.0;
        if (!isfinite(v)) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n", plot_x(p, e + 1), plot_y(p, v),
                r);
    }
    fputs("</g>\n", f);
}

/* matplotlib's tab10, for lines that name no colour. */
static const char *const default_colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                              "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                              "#bcbd22", "#17becf"};

static const char *line_colour(const plot_line *line, int index) {
    return line->colour ? line->colour : default_colours[index % 10];
}

static void svg_legend(FILE *f, double x, double y, double width, const plot_line *lines,
                       int n_lines, int has_baseline, const char *baseline_label) {
    int entries = n_lines + has_baseline;
    if (entries == 0) return;
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" rx=\"4\" fill=\"#fff\" "
            "stroke=\"#ccc\"/>\n",
            x, y, width, 12 + 20 * entries);
    for (int i = 0; i < entries; i++) {
        double cy = y + 16 + 20 * i;
        int is_baseline = i == n_lines;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"", x + 10, cy,
                x + 34, cy);
        xml_write_escaped(f, is_baseline ? "#555" : line_colour(&lines[i], i));
        fputs(is_baseline ? "\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
                          : "\" stroke-width=\"2\"/>\n",
              f);
        if (!is_baseline) {
            fputs("<circle fill=\"", f);
            xml_write_escaped(f, line_colour(&lines[i], i));
            fprintf(f, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", x + 22, cy);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" dy=\"0.35em\">", x + 42, cy);
        xml_write_escaped(f, is_baseline ? baseline_label : lines[i].label);
        fputs("</text>\n", f);
    }
}

int plot_errors_svg(const char *path, const char *title, const plot_line *lines, int n_lines,
                    int n_epochs, double baseline, const char *baseline_label, char *err,
                    size_t errlen) {
    if (n_epochs < 1 || n_lines < 0 || (n_lines > 0 && !lines))
        return set_error(err, errlen, "%s: cannot plot %d lines over %d epochs", path, n_lines,
                         n_epochs);
    for (int l = 0; l < n_lines; l++)
        if (!lines[l].values) return set_error(err, errlen, "%s: line %d has no values", path, l);
    int has_baseline = baseline >= 0 && isfinite(baseline);
    if (!baseline_label) baseline_label = "baseline";

    /* The legend sits right of the plot, as wide as its longest label (12 px
     * text is about 6 px a character), so it never hides data. */
    int longest = has_baseline ? utf8_chars(baseline_label) : 0;
    for (int l = 0; l < n_lines; l++)
        longest = longest > utf8_chars(lines[l].label) ? longest : utf8_chars(lines[l].label);
    double legend_w = fmin(fmax(50 + 6.2 * longest, 100), 300);
    int has_legend = n_lines + has_baseline > 0;

    plot_frame p = {
        .left = 72, .top = 48, .bottom = PLOT_HEIGHT - 58, .x_pad = 12, .n_epochs = n_epochs};
    p.right = PLOT_WIDTH - 20 - (has_legend ? legend_w + 16 : 0);
    plot_choose_y(&p, lines, n_lines, baseline);

    atomic_file af;
    if (atomic_open(&af, path, err, errlen) != 0) return -1;
    FILE *f = af.f;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\" "
            "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" fill=\"#222\">\n",
            PLOT_WIDTH, PLOT_HEIGHT, PLOT_WIDTH, PLOT_HEIGHT);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", PLOT_WIDTH, PLOT_HEIGHT);
    fprintf(
        f,
        "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">",
        0.5 * (p.left + p.right));
    xml_write_escaped(f, title);
    fputs("</text>\n", f);
    svg_axes(f, &p);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n",
            0.5 * (p.left + p.right), PLOT_HEIGHT - 16);
    fprintf(f,
            "<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\" "
            "font-size=\"13\">pixel error (%%)</text>\n",
            0.5 * (p.top + p.bottom));
    if (has_baseline)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
                p.left, plot_y(&p, baseline * 100.0), p.right, plot_y(&p, baseline * 100.0));
    for (int l = 0; l < n_lines; l++)
        svg_line(f, &p, &lines[l], line_colour(&lines[l], l));
    svg_legend(f, p.right + 16, p.top, legend_w, lines, n_lines, has_baseline, baseline_label);
    fputs("</svg>\n", f);
    return atomic_commit(&af, err, errlen);
}
