/* Photographs in and out (photo.h): every PNG colour type and bit depth,
 * interlaced or not, gray, colour and progressive JPEGs, EXIF orientations,
 * damaged and fake files, and the writers; then `colorize predict` on them
 * through the program. Every fixture is made here with libpng and libjpeg. */
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>

#include <jpeglib.h>

#include "image.h"
#include "nn.h"
#include "photo.h"
#include "predict.h"
#include "tests/testutil.h"
#include "util.h"

static char root[64], mnt[128];

static void setup(void) {
    tu_mkdtemp(root, sizeof root);
    mnt[0] = 0;
}

static void teardown(void) {
    if (mnt[0]) tu_umount(mnt);
    tu_rmtree(root);
}

static const char *in_root(const char *name) {
    static char path[16][300];
    static int next;
    char *p = path[next++ % 16];
    snprintf(p, sizeof path[0], "%s/%s", root, name);
    return p;
}

/* ==== PNG fixtures, written with libpng as they are stored ==== */

/* Sample k of pixel (x, y) at a depth: a pattern that reaches every value. */
static unsigned pattern(int x, int y, int k, int depth) {
    return (unsigned)(x * 7 + y * 13 + k * 5 + x * y) % (1u << depth);
}

static const png_color test_palette[4] = {{10, 20, 30}, {200, 100, 0}, {0, 255, 128}, {77, 1, 250}};
static const png_byte test_trns[4] = {255, 0, 128, 7};

/* w x h pixels of colour_type at depth (PNG's own numbers), the pattern's
 * samples packed as PNG stores them; a palette of test_palette (with
 * test_trns when trns). */
static void write_png_fixture(const char *path, int w, int h, int colour_type, int depth,
                              int interlace, int trns) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, colour_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (colour_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_PLTE(png, info, test_palette, 1 << (depth < 2 ? depth : 2));
        if (trns) png_set_tRNS(png, info, test_trns, 1 << (depth < 2 ? depth : 2), NULL);
    }
    png_write_info(png, info);
    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    uint8_t *rows = calloc((size_t)h, row_bytes);
    png_bytep *pointers = malloc(sizeof *pointers * h);
    for (int y = 0; y < h; y++) {
        pointers[y] = rows + row_bytes * y;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < channels; k++) {
                unsigned v = pattern(x, y, k, colour_type == PNG_COLOR_TYPE_PALETTE ? 2 : depth);
                if (colour_type == PNG_COLOR_TYPE_PALETTE && depth == 1) v &= 1;
                size_t bit = ((size_t)x * channels + k) * depth;
                if (depth == 16) {
                    pointers[y][bit / 8] = (uint8_t)(v >> 8), pointers[y][bit / 8 + 1] = (uint8_t)v;
                } else {
                    pointers[y][bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                }
            }
    }
    png_write_image(png, pointers);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(pointers);
    free(rows);
    ck_assert_int_eq(fclose(f), 0);
}

/* What the reader must give for sample k of (x, y) (k == channels: alpha). */
static unsigned expected_sample(int x, int y, int k, int colour_type, int depth, int trns) {
    if (colour_type == PNG_COLOR_TYPE_PALETTE) {
        unsigned i = pattern(x, y, 0, 2) & (depth == 1 ? 1 : 3);
        if (k == 3) return trns ? test_trns[i] : 255;
        const png_color *c = &test_palette[i];
        return k == 0 ? c->red : k == 1 ? c->green : c->blue;
    }
    unsigned v = pattern(x, y, k, depth);
    return depth < 8 ? v * 255 / ((1u << depth) - 1) : v;
}

static unsigned image_sample(const image *img, int x, int y, int k) {
    size_t at = (size_t)y * img->width + x;
    if (k == img->channels)
        return img->alpha_depth == 16 ? ((uint16_t *)img->alpha)[at] : img->alpha[at];
    at = at * img->channels + k;
    return img->depth == 16 ? ((uint16_t *)img->pixels)[at] : img->pixels[at];
}

START_TEST(test_png_every_colour_type_and_depth) {
    static const struct {
        int colour_type, depth;
    } kinds[] = {{PNG_COLOR_TYPE_GRAY, 1},        {PNG_COLOR_TYPE_GRAY, 2},
                 {PNG_COLOR_TYPE_GRAY, 4},        {PNG_COLOR_TYPE_GRAY, 8},
                 {PNG_COLOR_TYPE_GRAY, 16},       {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
                 {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB, 8},
                 {PNG_COLOR_TYPE_RGB, 16},        {PNG_COLOR_TYPE_RGB_ALPHA, 8},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 16},  {PNG_COLOR_TYPE_PALETTE, 1},
                 {PNG_COLOR_TYPE_PALETTE, 2},     {PNG_COLOR_TYPE_PALETTE, 4},
                 {PNG_COLOR_TYPE_PALETTE, 8}};
    char err[512];
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        for (int interlace = 0; interlace < 2; interlace++)
            for (int trns = 0; trns < 1 + (kinds[i].colour_type == PNG_COLOR_TYPE_PALETTE);
                 trns++) {
                int ct = kinds[i].colour_type, depth = kinds[i].depth, w = 13, h = 11;
                const char *path = in_root("fixture.png");
                write_png_fixture(path, w, h, ct, depth, interlace, trns);
                image img;
                ck_assert_msg(photo_read(path, &img, err, sizeof err) == 0, "%s", err);
                int colour = ct == PNG_COLOR_TYPE_RGB || ct == PNG_COLOR_TYPE_RGB_ALPHA ||
                             ct == PNG_COLOR_TYPE_PALETTE;
                int alpha = (ct & PNG_COLOR_MASK_ALPHA) || trns;
                ck_assert_int_eq(img.width, w);
                ck_assert_int_eq(img.height, h);
                ck_assert_int_eq(img.channels, colour ? 3 : 1);
                ck_assert_int_eq(img.depth, depth == 16 ? 16 : 8);
                ck_assert_int_eq(img.alpha != NULL, alpha);
                if (alpha) ck_assert_int_eq(img.alpha_depth, img.depth);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        for (int k = 0; k < img.channels + alpha; k++) {
                            unsigned want = expected_sample(x, y, k, ct, depth, trns);
                            unsigned have = image_sample(&img, x, y, k);
                            ck_assert_msg(have == want,
                                          "type %d depth %d interlace %d trns %d: (%d, %d) "
                                          "sample %d is %u, not %u",
                                          ct, depth, interlace, trns, x, y, k, have, want);
                        }
                image_free(&img);
            }
}
END_TEST

/* ==== JPEG fixtures ==== */

/* A w x h JPEG of the smooth pattern, gray (channels 1), colour (3) or CMYK
 * (4), baseline or progressive, with an APP1 segment of app1_len bytes
 * (none when 0). */
static void write_jpeg_fixture(const char *path, int w, int h, int channels, int progressive,
                               const uint8_t *app1, size_t app1_len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = w, c.image_height = h, c.input_components = channels;
    c.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (app1_len) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    uint8_t *row = malloc((size_t)w * channels);
    while (c.next_scanline < c.image_height) {
        int y = (int)c.next_scanline;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < channels; k++)
                row[x * channels + k] = (uint8_t)(x * 255 / w * (k + 1) / 4 + y * 2 + k * 40);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    ck_assert_int_eq(fclose(f), 0);
}

/* An APP1 body with an EXIF orientation: "Exif\0\0", a TIFF header in
 * either byte order, IFD0 with one SHORT entry 0x0112. */
static size_t exif_app1(uint8_t *out, int orientation, int little_endian) {
    static const uint8_t mm[] = {'E',  'x',  'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                                 0x01, 0x12, 0,   3,   0, 0, 0,   1,   0, 0,  0, 0, 0, 0, 0, 0};
    static const uint8_t ii[] = {'E',  'x',  'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                                 0x12, 0x01, 3,   0,   1, 0, 0,   0,   0,  0, 0, 0, 0, 0, 0, 0};
    memcpy(out, little_endian ? ii : mm, sizeof mm);
    out[little_endian ? 24 : 25] = (uint8_t)orientation;
    return sizeof mm;
}

START_TEST(test_jpeg_gray_colour_progressive) {
    char err[512];
    for (int channels = 1; channels <= 3; channels += 2) {
        image base, prog;
        write_jpeg_fixture(in_root("base.jpg"), 37, 21, channels, 0, NULL, 0);
        write_jpeg_fixture(in_root("prog.jpg"), 37, 21, channels, 1, NULL, 0);
        ck_assert_msg(photo_read(in_root("base.jpg"), &base, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(photo_read(in_root("prog.jpg"), &prog, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(base.width, 37);
        ck_assert_int_eq(base.height, 21);
        ck_assert_int_eq(base.channels, channels);
        ck_assert_int_eq(base.depth, 8);
        ck_assert_ptr_null(base.alpha);
        /* the same coefficients, stored in another order: the same pixels */
        ck_assert_mem_eq(base.pixels, prog.pixels, (size_t)37 * 21 * channels);
        /* near the pattern (quality 95) */
        for (int x = 0; x < 37; x += 5) {
            int want = x * 255 / 37 / 4 + 20 * 2, have = base.pixels[(20 * 37 + x) * channels];
            ck_assert_msg(abs(have - want) <= 6, "(%d, 20) is %d, not near %d", x, have, want);
        }
        image_free(&base);
        image_free(&prog);
    }
}
END_TEST

START_TEST(test_jpeg_exif_orientations) {
    char err[512];
    int w = 24, h = 10;
    image plain;
    write_jpeg_fixture(in_root("plain.jpg"), w, h, 3, 0, NULL, 0);
    ck_assert_msg(photo_read(in_root("plain.jpg"), &plain, err, sizeof err) == 0, "%s", err);
    for (int o = 1; o <= 8; o++)
        for (int le = 0; le < 2; le++) {
            uint8_t app1[64];
            size_t n = exif_app1(app1, o, le);
            ck_assert_int_eq(photo_exif_orientation(app1, n), o);
            write_jpeg_fixture(in_root("turned.jpg"), w, h, 3, 0, app1, n);
            image img;
            ck_assert_msg(photo_read(in_root("turned.jpg"), &img, err, sizeof err) == 0, "%s", err);
            int turned = o >= 5;
            ck_assert_int_eq(img.width, turned ? h : w);
            ck_assert_int_eq(img.height, turned ? w : h);
            /* where stored (x, y) lands, as the EXIF specification words it:
             * 2 mirrored, 3 turned half, 4 mirrored upside down, 5 transposed,
             * 6 turned a quarter clockwise to be upright, 7 transversed, 8 a
             * quarter anticlockwise */
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const int to[9][2] = {
                        {0, 0},         {x, y}, {w - 1 - x, y}, {w - 1 - x, h - 1 - y},
                        {x, h - 1 - y}, {y, x}, {h - 1 - y, x}, {h - 1 - y, w - 1 - x},
                        {y, w - 1 - x}};
                    int ox = to[o][0], oy = to[o][1];
                    ck_assert_mem_eq(img.pixels + ((size_t)oy * img.width + ox) * 3,
                                     plain.pixels + ((size_t)y * w + x) * 3, 3);
                }
            image_free(&img);
        }
    /* damaged EXIF is ignored, never trusted: an IFD offset past the end */
    uint8_t app1[64];
    size_t n = exif_app1(app1, 6, 0);
    app1[13] = 200;
    ck_assert_int_eq(photo_exif_orientation(app1, n), 1);
    ck_assert_int_eq(photo_exif_orientation(app1, 10), 1);
    image_free(&plain);
}
END_TEST

/* ==== Damaged and fake pictures ==== */

static void write_bytes(const char *name, const void *data, size_t len) {
    tu_write(root, name, data, len);
}

static uint8_t *read_bytes(const char *path, size_t *len) {
    uint8_t *data;
    char err[512];
    ck_assert_msg(read_file(path, &data, len, err, sizeof err) == 0, "%s", err);
    return data;
}

/* PNG's CRC-32 (ISO 3309), bit by bit: fixtures need only a few. */
static uint32_t png_crc(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* A PNG that is only a signature and an IHDR of w x h (CRC right). */
static size_t png_header_only(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[17] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++)
        ihdr[8 + i] = (uint8_t)(w >> (24 - 8 * i)), ihdr[12 + i] = (uint8_t)(h >> (24 - 8 * i));
    memcpy(out, sig, 8);
    memcpy(out + 8, ihdr, 4);
    memcpy(out + 12, ihdr + 4, 4);
    memcpy(out + 16, ihdr + 8, 8);
    const uint8_t rest[5] = {8, 2, 0, 0, 0}; /* 8-bit RGB, no interlace */
    memcpy(out + 24, rest, 5);
    uint32_t crc = png_crc(out + 12, 17);
    for (int i = 0; i < 4; i++)
        out[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
    return 33;
}

/* photo_read refuses name with a message naming it and containing why. */
static void check_refused(const char *name, const char *why) {
    char err[512] = "";
    image img;
    ck_assert_msg(photo_read(in_root(name), &img, err, sizeof err) == -1, "%s was read", name);
    ck_assert_msg(strstr(err, in_root(name)) == err && strstr(err, why) && !strchr(err, '\n'),
                  "%s: '%s' does not say '%s'", name, err, why);
    ck_assert_ptr_null(img.pixels);
    ck_assert_ptr_null(img.alpha);
}

/* Damaged copies of good fixtures, each refused with its reason. */
static void write_damaged_fixtures(void) {
    size_t len;
    write_png_fixture(in_root("good.png"), 40, 30, PNG_COLOR_TYPE_RGB, 8, 0, 0);
    uint8_t *png = read_bytes(in_root("good.png"), &len);
    write_bytes("truncated.png", png, len / 2);
    write_bytes("no-end.png", png, len - 12); /* IEND cut off */
    /* IDAT cut to half its data, its length and CRC made to match: the
     * file's chunks are whole, the picture is not */
    size_t idat = 8;
    while (memcmp(png + idat + 4, "IDAT", 4) != 0)
        idat += 12 + ((size_t)png[idat] << 24 | png[idat + 1] << 16 | png[idat + 2] << 8 |
                      png[idat + 3]);
    uint32_t half = ((uint32_t)png[idat + 2] << 8 | png[idat + 3]) / 2; /* a small fixture */
    uint8_t *cut = malloc(len);
    memcpy(cut, png, idat + 8 + half);
    cut[idat + 2] = (uint8_t)(half >> 8), cut[idat + 3] = (uint8_t)half;
    uint32_t crc = png_crc(cut + idat + 4, 4 + half);
    for (int i = 0; i < 4; i++)
        cut[idat + 8 + half + i] = (uint8_t)(crc >> (24 - 8 * i));
    memcpy(cut + idat + 12 + half, png + len - 12, 12); /* IEND */
    write_bytes("short-idat.png", cut, idat + 24 + half);
    free(cut);
    png[len - 30] ^= 0x55; /* inside IDAT: its CRC no longer matches */
    write_bytes("bad-crc.png", png, len);
    free(png);
    write_jpeg_fixture(in_root("good.jpg"), 40, 30, 3, 0, NULL, 0);
    uint8_t *jpg = read_bytes(in_root("good.jpg"), &len);
    write_bytes("truncated.jpg", jpg, len * 2 / 3);
    write_bytes("header-only.jpg", jpg, 200);
    free(jpg);
    write_jpeg_fixture(in_root("cmyk.jpg"), 16, 16, 4, 0, NULL, 0);
    write_bytes("empty.png", "", 0);
    write_bytes("text.jpg", "these are not the pixels you are looking for\n", 45);
    uint8_t big[64];
    write_bytes("huge.png", big, png_header_only(big, 20000, 20000));
    write_bytes("wide.png", big, png_header_only(big, 70000, 10));
}

START_TEST(test_damaged_and_fake_pictures_refused) {
    write_damaged_fixtures();
    check_refused("truncated.png", "damaged PNG");
    check_refused("no-end.png", "damaged PNG: truncated file");
    check_refused("bad-crc.png", "CRC error");
    check_refused("short-idat.png", "damaged PNG: Not enough image data");
    check_refused("truncated.jpg", "damaged JPEG");
    check_refused("header-only.jpg", "damaged JPEG");
    check_refused("cmyk.jpg", "CMYK JPEG, which is not supported");
    check_refused("empty.png", "empty file");
    check_refused("text.jpg", "not a picture");
    check_refused("huge.png", "too large: 20000 x 20000 pixels would need 2289 MB");
    check_refused("wide.png", "too large: 70000 x 10 pixels");
    check_refused("missing.png", "No such file or directory");
}
END_TEST

/* ==== Writing ==== */

START_TEST(test_writers_round_trip) {
    char err[512];
    for (int deep = 0; deep < 2; deep++)
        for (int channels = 1; channels <= 3; channels += 2)
            for (int alpha = 0; alpha < 2; alpha++) {
                int w = 9, h = 7, bytes = deep ? 2 : 1;
                image img = {.width = w, .height = h, .channels = channels, .depth = 8 * bytes};
                size_t n = (size_t)w * h;
                img.pixels = malloc(n * channels * bytes);
                for (size_t i = 0; i < n * channels; i++)
                    if (deep)
                        ((uint16_t *)img.pixels)[i] = (uint16_t)(i * 2999 + 1);
                    else
                        img.pixels[i] = (uint8_t)(i * 29 + 1);
                if (alpha) {
                    img.alpha = malloc(n * 2); /* 16 bits beside 8-bit colour, once */
                    img.alpha_depth = deep || channels == 1 ? 16 : 8;
                    for (size_t i = 0; i < n * 2; i++)
                        img.alpha[i] = (uint8_t)(i * 7);
                }
                image back;
                const char *png = in_root("out.png");
                ck_assert_msg(photo_write(png, &img, PHOTO_PNG, 0, err, sizeof err) == 0, "%s",
                              err);
                ck_assert_msg(photo_read(png, &back, err, sizeof err) == 0, "%s", err);
                int wide = deep || (alpha && img.alpha_depth == 16);
                ck_assert_int_eq(back.depth, wide ? 16 : 8);
                ck_assert_int_eq(back.alpha != NULL, alpha);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        for (int k = 0; k < channels + alpha; k++) {
                            unsigned want = image_sample(&img, x, y, k);
                            if (wide && (k < channels ? !deep : img.alpha_depth != 16)) want *= 257;
                            ck_assert_uint_eq(image_sample(&back, x, y, k), want);
                        }
                image_free(&back);
                const char *ppm = in_root("out.ppm");
                ck_assert_msg(photo_write(ppm, &img, PHOTO_PPM, 0, err, sizeof err) == 0, "%s",
                              err);
                ck_assert_msg(photo_read(ppm, &back, err, sizeof err) == 0, "%s", err);
                ck_assert_int_eq(back.depth, img.depth);
                ck_assert_mem_eq(back.pixels, img.pixels, n * channels * bytes);
                image_free(&back);
                const char *jpg = in_root("out.jpg");
                ck_assert_msg(photo_write(jpg, &img, PHOTO_JPEG, 100, err, sizeof err) == 0, "%s",
                              err);
                size_t len;
                uint8_t *data = read_bytes(jpg, &len);
                ck_assert(len > 4 && data[0] == 0xff && data[1] == 0xd8 && data[len - 2] == 0xff &&
                          data[len - 1] == 0xd9);
                free(data);
                ck_assert_msg(photo_read(jpg, &back, err, sizeof err) == 0, "%s", err);
                ck_assert_int_eq(back.channels, channels);
                image_free(&back);
                image_free(&img);
            }
    ck_assert_int_eq(photo_format_of_path("a/b.JPEG"), PHOTO_JPEG);
    ck_assert_int_eq(photo_format_of_path("x.jpg"), PHOTO_JPEG);
    ck_assert_int_eq(photo_format_of_path("x.png"), PHOTO_PNG);
    ck_assert_int_eq(photo_format_of_path("x.ppm"), PHOTO_PPM);
    ck_assert_int_eq(photo_format_of_path("x.gif"), PHOTO_UNKNOWN);
    ck_assert_int_eq(photo_format_of_path("dir.png/x"), PHOTO_UNKNOWN);
    ck_assert_int_eq(photo_format_of_path(".png"), PHOTO_UNKNOWN);
}
END_TEST

/* A write that fails inside libpng or libjpeg (a full disk) leaves no file
 * and no temporary, and says which file. */
START_TEST(test_failed_writes_leave_nothing) {
    snprintf(mnt, sizeof mnt, "%s/tmpfs", root);
    ck_assert_int_eq(mkdir(mnt, 0777), 0);
    char why[256], err[512], tmps[256], path[300];
    if (tu_mount_tmpfs(mnt, 16, why, sizeof why) != 0) {
        printf("test_failed_writes_leave_nothing: skipped: %s (needs root with CAP_SYS_ADMIN)\n",
               why);
        mnt[0] = 0;
        return;
    }
    int w = 300, h = 200;
    image img = {.width = w, .height = h, .channels = 3, .depth = 8};
    img.pixels = malloc((size_t)w * h * 3);
    rng_state rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        img.pixels[i] = (uint8_t)rng_next(&rng); /* noise: nothing to compress */
    for (int f = PHOTO_PNG; f <= PHOTO_PPM; f++) {
        snprintf(path, sizeof path, "%s/out.%s", mnt, photo_extension(f));
        ck_assert_int_eq(photo_write(path, &img, f, 100, err, sizeof err), -1);
        ck_assert_msg(strstr(err, path) == err && !strchr(err, '\n'), "%s", err);
        struct stat st;
        ck_assert_msg(stat(path, &st) != 0, "%s was left", path);
        tu_tmp_files(mnt, tmps, sizeof tmps);
        ck_assert_msg(!tmps[0], "left behind: %s", tmps);
    }
    image_free(&img);
}
END_TEST

/* ==== Through the program ==== */

static char out[1 << 14], err[1 << 14];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tu_run(args, out, sizeof out, err, sizeof err);
}

/* An untrained RGB model (random weights, four distinct colours): every
 * pixel is painted one of them, so two inputs that decode alike give the
 * same bytes. */
static const char *untrained_model(void) {
    static char path[300];
    snprintf(path, sizeof path, "%s/model.bin", root);
    network *net;
    char e[256];
    ck_assert_msg(nn_create("default", 32, 32, 4, 1, &net, e, sizeof e) == 0, "%s", e);
    nn_init_weights(net, 5);
    nn_model_meta meta = {.k = 4, .mean = 0.35f, .std = 0.2f};
    const float centres[4][3] = {
        {200.7f, 10.2f, 30.5f}, {15.4f, 180.6f, 90.5f}, {60.5f, 70.49f, 220.8f}, {128, 127, 0}};
    memcpy(meta.centres, centres, sizeof centres);
    ck_assert_msg(nn_save(net, &meta, path, e, sizeof e) == 0, "%s", e);
    nn_free(net);
    return path;
}

static image read_photo(const char *path) {
    image img;
    char e[512];
    ck_assert_msg(photo_read(path, &img, e, sizeof e) == 0, "%s", e);
    return img;
}

static int same_pixels(const image *a, const image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           a->depth == b->depth &&
           memcmp(a->pixels, b->pixels,
                  (size_t)a->width * a->height * a->channels * (a->depth == 16 ? 2 : 1)) == 0;
}

static int starts_with(const char *path, const void *magic, size_t n) {
    size_t len;
    uint8_t *data = read_bytes(path, &len);
    int same = len >= n && memcmp(data, magic, n) == 0;
    free(data);
    return same;
}

/* The network's probabilities for a gray picture of w x h samples. */
static float *probabilities_of(const predict_model *m, const image *in) {
    predict_options opt;
    predict_default_options(&opt);
    opt.threads = 1;
    float *prob = malloc(sizeof(float) * in->width * in->height * 4);
    char e[512];
    ck_assert_msg(predict_probabilities(m, in, &opt, prob, e, sizeof e) == 0, "%s", e);
    return prob;
}

/* A 16-bit picture is made gray from its 16 bits: v * 257 is exactly the
 * byte v, and a change below the 8th bit changes what the network sees. */
START_TEST(test_sixteen_bits_seen_whole) {
    const char *model = untrained_model();
    predict_options opt;
    predict_default_options(&opt);
    predict_model *m;
    char e[512];
    ck_assert_msg(predict_model_load(model, &opt, &m, e, sizeof e) == 0, "%s", e);
    int w = 20, h = 12;
    size_t n = (size_t)w * h;
    image bytes = {.width = w, .height = h, .channels = 1, .pixels = malloc(n)};
    image deep = {.width = w, .height = h, .channels = 1, .depth = 16, .pixels = malloc(2 * n)};
    image nudged = deep;
    nudged.pixels = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        bytes.pixels[i] = (uint8_t)(i * 37);
        ((uint16_t *)deep.pixels)[i] = (uint16_t)(bytes.pixels[i] * 257);
        ((uint16_t *)nudged.pixels)[i] = (uint16_t)(bytes.pixels[i] * 256 + 100);
    }
    float *p8 = probabilities_of(m, &bytes), *p16 = probabilities_of(m, &deep),
          *pn = probabilities_of(m, &nudged);
    ck_assert_mem_eq(p8, p16, sizeof(float) * n * 4);
    ck_assert(memcmp(p8, pn, sizeof(float) * n * 4) != 0);
    free(p8), free(p16), free(pn);
    image_free(&bytes), image_free(&deep), image_free(&nudged);
    predict_model_free(m);
}
END_TEST

START_TEST(test_predict_png_and_pgm_colour_alike) {
    const char *model = untrained_model();
    char e[512];
    for (int depth = 8; depth <= 16; depth += 8) {
        /* the same gray picture as PNG and as PGM */
        write_png_fixture(in_root("pic.png"), 45, 33, PNG_COLOR_TYPE_GRAY, depth, depth == 16, 0);
        image pic = read_photo(in_root("pic.png"));
        ck_assert_msg(photo_write(in_root("pic.pgm"), &pic, PHOTO_PPM, 0, e, sizeof e) == 0, "%s",
                      e);
        ck_assert_msg(run("predict %s %s %s", model, in_root("pic.png"), in_root("a.ppm")) == 0,
                      "%s", err);
        ck_assert_msg(run("predict %s %s %s", model, in_root("pic.pgm"), in_root("b.png")) == 0,
                      "%s", err);
        ck_assert(starts_with(in_root("a.ppm"), "P6\n45 33\n255\n", 13));
        ck_assert(starts_with(in_root("b.png"), "\x89PNG\r\n\x1a\n", 8));
        image a = read_photo(in_root("a.ppm")), b = read_photo(in_root("b.png"));
        ck_assert_msg(same_pixels(&a, &b), "%d bits: the PNG and the PGM coloured differently",
                      depth);
        image_free(&a), image_free(&b), image_free(&pic);
    }
    /* a JPEG output, with --quality: whole, from SOI to EOI */
    ck_assert_msg(
        run("predict --quality 80 %s %s %s", model, in_root("pic.png"), in_root("c.jpg")) == 0,
        "%s", err);
    size_t len;
    uint8_t *jpg = read_bytes(in_root("c.jpg"), &len);
    ck_assert(len > 4 && jpg[0] == 0xff && jpg[1] == 0xd8 && jpg[len - 2] == 0xff &&
              jpg[len - 1] == 0xd9);
    free(jpg);
}
END_TEST

START_TEST(test_predict_keeps_alpha_and_turns_upright) {
    const char *model = untrained_model();
    write_png_fixture(in_root("rgba.png"), 30, 20, PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0);
    ck_assert_msg(run("predict %s %s %s", model, in_root("rgba.png"), in_root("o.png")) == 0, "%s",
                  err);
    image in = read_photo(in_root("rgba.png")), o = read_photo(in_root("o.png"));
    ck_assert_ptr_nonnull(o.alpha);
    ck_assert_int_eq(o.alpha_depth, 16);
    ck_assert_mem_eq(o.alpha, in.alpha, (size_t)30 * 20 * 2);
    image_free(&in), image_free(&o);
    /* a portrait stored sideways (orientation 6) comes out upright */
    uint8_t app1[64];
    size_t n = exif_app1(app1, 6, 1);
    write_jpeg_fixture(in_root("side.jpg"), 40, 24, 3, 1, app1, n);
    ck_assert_msg(run("predict %s %s %s", model, in_root("side.jpg"), in_root("up.png")) == 0, "%s",
                  err);
    o = read_photo(in_root("up.png"));
    ck_assert_int_eq(o.width, 24);
    ck_assert_int_eq(o.height, 40);
    image_free(&o);
}
END_TEST

START_TEST(test_predict_output_formats_and_folders) {
    const char *model = untrained_model();
    write_png_fixture(in_root("p.png"), 20, 16, PNG_COLOR_TYPE_PALETTE, 4, 1, 1);
    write_jpeg_fixture(in_root("g.jpg"), 20, 16, 1, 0, NULL, 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/out", root);
    ck_assert_msg(run("predict %s %s %s -o %s", model, in_root("p.png"), in_root("g.jpg"), dir) ==
                      0,
                  "%s", err);
    char path[400];
    snprintf(path, sizeof path, "%s/p.png", dir);
    ck_assert(starts_with(path, "\x89PNG\r\n\x1a\n", 8));
    snprintf(path, sizeof path, "%s/g.png", dir);
    ck_assert(starts_with(path, "\x89PNG\r\n\x1a\n", 8));
    ck_assert_msg(
        run("predict --format jpeg --quality 70 %s %s -o %s", model, in_root("p.png"), dir) == 0,
        "%s", err);
    snprintf(path, sizeof path, "%s/p.jpg", dir);
    ck_assert(starts_with(path, "\xff\xd8\xff", 3));
    /* usage errors, before any work: the model is not even read */
    const char *bad[] = {"predict nomodel %s %s/x.gif",
                         "predict nomodel %s %s/x",
                         "predict --quality 0 nomodel %s %s/x.jpg",
                         "predict --quality 101 nomodel %s %s/x.jpg",
                         "predict --quality 50 nomodel %s %s/x.png",
                         "predict --format gif nomodel %s -o %s",
                         "predict --format png nomodel %s %s/x.png"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1024];
        snprintf(args, sizeof args, bad[i], in_root("p.png"), dir);
        ck_assert_msg(tu_run(args, out, sizeof out, err, sizeof err) == 2, "%s: %s", args, err);
        ck_assert_msg(!strstr(err, "nomodel") && strstr(err, "--help"), "%s: %s", args, err);
    }
    ck_assert_int_eq(run("--quality 50 %s", root), 2);
}
END_TEST

START_TEST(test_predict_refuses_bad_pictures_leaving_nothing) {
    const char *model = untrained_model();
    write_damaged_fixtures();
    const char *names[] = {"truncated.png",   "no-end.png",    "bad-crc.png", "truncated.jpg",
                           "cmyk.jpg",        "empty.png",     "text.jpg",    "huge.png",
                           "header-only.jpg", "short-idat.png"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *res = in_root("res.png");
        ck_assert_msg(run("predict %s %s %s", model, in_root(names[i]), res) != 0, "%s", names[i]);
        ck_assert_msg(strstr(err, in_root(names[i])) && strchr(err, '\n') == err + strlen(err) - 1,
                      "%s: %s", names[i], err);
        struct stat st;
        ck_assert_msg(stat(res, &st) != 0, "%s left an output", names[i]);
        char tmps[256];
        tu_tmp_files(root, tmps, sizeof tmps);
        ck_assert_msg(!tmps[0], "left behind: %s", tmps);
    }
    ck_assert_msg(strstr(err, "short-idat.png: damaged PNG: Not enough image data"), "%s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("photo");
    TCase *tc = tcase_create("photo");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_png_every_colour_type_and_depth);
    tcase_add_test(tc, test_jpeg_gray_colour_progressive);
    tcase_add_test(tc, test_jpeg_exif_orientations);
    tcase_add_test(tc, test_damaged_and_fake_pictures_refused);
    tcase_add_test(tc, test_writers_round_trip);
    tcase_add_test(tc, test_failed_writes_leave_nothing);
    tcase_add_test(tc, test_sixteen_bits_seen_whole);
    tcase_add_test(tc, test_predict_png_and_pgm_colour_alike);
    tcase_add_test(tc, test_predict_keeps_alpha_and_turns_upright);
    tcase_add_test(tc, test_predict_output_formats_and_folders);
    tcase_add_test(tc, test_predict_refuses_bad_pictures_leaving_nothing);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
