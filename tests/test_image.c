/* image.c: gray conversion against hand-computed and skimage values, netpbm
 * reading (every format, every way a file can be wrong, every truncation) and
 * writing, the comparison sheet pixel by pixel, and the SVG plot checked as
 * well-formed XML with the right content. */
#include "image.h"
#include "util.h"

#include "testutil.h"

#include <math.h>

/* Gray ---------------------------------------------------------------------- */

START_TEST(test_gray_hand_computed) {
    const uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 10, 200, 37};
    float g[6];
    gray_from_rgb(rgb, 6, g);
    ck_assert_float_eq(g[0], 0.2125f); /* 255/255 is exactly 1 in float32 */
    ck_assert_float_eq(g[1], 0.7154f);
    ck_assert_float_eq(g[2], 0.0721f);
    ck_assert_float_eq_tol(g[3], 1.0f, 1e-6f);
    ck_assert_float_eq(g[4], 0.0f);
    /* (0.2125 * 10 + 0.7154 * 200 + 0.0721 * 37) / 255 = 147.8727 / 255 */
    ck_assert_double_eq_tol(g[5], 0.5798929412, 1e-6);
}
END_TEST

/* skimage 0.19.3: rgb2gray(img_as_float32(px)), bit for bit. */
START_TEST(test_gray_matches_skimage_float32) {
    static const struct {
        uint8_t rgb[3];
        float gray;
    } ref[] = {
        {{255, 0, 0}, 0x1.b33334p-3f},
        {{0, 255, 0}, 0x1.6e48e8p-1f},
        {{0, 0, 255}, 0x1.275254p-4f},
        {{255, 255, 255}, 0x1.fffffep-1f},
        {{0, 0, 0}, 0.0f},
        {{10, 200, 37}, 0x1.28e7bcp-1f},
        {{128, 128, 128}, 0x1.010102p-1f},
        {{1, 2, 3}, 0x1.ddecaep-8f},
        {{255, 228, 34}, 0x1.b93946p-1f},
        {{121, 243, 189}, 0x1.ac0906p-1f},
        {{6, 131, 102}, 0x1.9afdeap-2f},
        {{168, 82, 193}, 0x1.b2cf96p-2f},
        {{187, 150, 81}, 0x1.32f96ep-1f},
        {{243, 205, 24}, 0x1.919e60p-1f},
        {{236, 8, 246}, 0x1.279808p-2f},
        {{164, 231, 36}, 0x1.96feeep-1f},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        float g;
        gray_from_rgb(ref[i].rgb, 1, &g);
        ck_assert_msg(g == ref[i].gray, "pixel %zu: %a, skimage %a", i, (double)g,
                      (double)ref[i].gray);
    }
}
END_TEST

/* Reading and writing netpbm --------------------------------------------------- */

static char dir[64];
static void setup_dir(void) {
    tu_mkdtemp(dir, sizeof dir);
}
static void teardown_dir(void) {
    tu_rmtree(dir);
}

static const char *path_in_dir(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Reads bytes written as file `name`; returns what image_read_pnm returns. */
static int read_bytes(const char *name, const void *data, size_t len, image *img, char *err,
                      size_t errlen) {
    tu_write(dir, name, data, len);
    return image_read_pnm(path_in_dir(name), img, err, errlen);
}

static void assert_image(const image *img, int w, int h, int ch, const uint8_t *expected) {
    ck_assert_int_eq(img->width, w);
    ck_assert_int_eq(img->height, h);
    ck_assert_int_eq(img->channels, ch);
    ck_assert_ptr_nonnull(img->pixels);
    ck_assert_mem_eq(img->pixels, expected, (size_t)w * h * ch);
}

START_TEST(test_pnm_round_trip) {
    char err[256];
    for (int ch = 1; ch <= 3; ch += 2) {
        uint8_t px[5 * 3 * 3];
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (uint8_t)(i * 37 + 11);
        image img = {.width = 5, .height = 3, .channels = ch, .pixels = px};
        const char *path = path_in_dir(ch == 1 ? "a.pgm" : "a.ppm");
        ck_assert_int_eq(image_write_pnm(path, &img, err, sizeof err), 0);
        uint8_t *file;
        size_t size;
        ck_assert_int_eq(read_file(path, &file, &size, err, sizeof err), 0);
        const char *header = ch == 1 ? "P5\n5 3\n255\n" : "P6\n5 3\n255\n";
        ck_assert_uint_eq(size, strlen(header) + 15 * (size_t)ch);
        ck_assert_mem_eq(file, header, strlen(header));
        free(file);
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        ck_assert_int_ne(access(tmp, F_OK), 0);

        image back;
        ck_assert_int_eq(image_read_pnm(path, &back, err, sizeof err), 0);
        assert_image(&back, 5, 3, ch, px);
        image_free(&back);
        ck_assert_ptr_null(back.pixels);
    }
}
END_TEST

START_TEST(test_pnm_write_errors) {
    char err[256] = "";
    uint8_t px[4] = {1, 2, 3, 4};
    image img = {.width = 2, .height = 2, .channels = 1, .pixels = px};
    const char *path = path_in_dir("no/such/folder/x.pgm");
    ck_assert_int_eq(image_write_pnm(path, &img, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no/such/folder/x.pgm"));
    img.channels = 2;
    ck_assert_int_eq(image_write_pnm(path_in_dir("y.pgm"), &img, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "y.pgm"));
    ck_assert_int_ne(access(path_in_dir("y.pgm"), F_OK), 0);
    img.channels = 1;
    img.pixels = NULL;
    ck_assert_int_eq(image_write_pnm(path_in_dir("z.pgm"), &img, err, sizeof err), -1);
}
END_TEST

START_TEST(test_pnm_plain_and_comments) {
    char err[256];
    image img;
    const char p2[] = "P2\n# made by hand\n3 2 # width height\n# maxval next\n255\n"
                      "0 1 2\n# a comment between rows\n253 254 255\n";
    ck_assert_int_eq(read_bytes("p2.pgm", p2, strlen(p2), &img, err, sizeof err), 0);
    assert_image(&img, 3, 2, 1, (const uint8_t[]){0, 1, 2, 253, 254, 255});
    image_free(&img);

    const char p3[] = "P3 2 1 15 0 7 15\t15 8 1";
    ck_assert_int_eq(read_bytes("p3.ppm", p3, strlen(p3), &img, err, sizeof err), 0);
    /* v * 255 / 15 is v * 17; no rounding needed. */
    assert_image(&img, 2, 1, 3, (const uint8_t[]){0, 119, 255, 255, 136, 17});
    image_free(&img);

    const char p2_max1[] = "P2\r\n2 2\r\n1\r\n0 1\r\n1 0\r\n";
    ck_assert_int_eq(read_bytes("m1.pgm", p2_max1, strlen(p2_max1), &img, err, sizeof err), 0);
    assert_image(&img, 2, 2, 1, (const uint8_t[]){0, 255, 255, 0});
    image_free(&img);

    /* maxval 100 rounds to nearest: 50 -> 127.5 -> 128, 1 -> 2.55 -> 3, 99 -> 252.45 -> 252. */
    const char p2_max100[] = "P2 3 1 100 50 1 99";
    ck_assert_int_eq(read_bytes("m100.pgm", p2_max100, strlen(p2_max100), &img, err, sizeof err),
                     0);
    assert_image(&img, 3, 1, 1, (const uint8_t[]){128, 3, 252});
    image_free(&img);

    /* Binary with a comment right after the magic number and maxval below 255. */
    const char p5[] = "P5#comment\n2 1\n#x\n3\n\x00\x03";
    ck_assert_int_eq(read_bytes("p5.pgm", p5, sizeof p5 - 1, &img, err, sizeof err), 0);
    assert_image(&img, 2, 1, 1, (const uint8_t[]){0, 255});
    image_free(&img);
}
END_TEST

START_TEST(test_pnm_16_bit) {
    char err[256];
    image img;
    /* Big-endian: 0x8000 = 32768 -> 32768 * 255 / 65535 = 127.5019 -> 128. */
    const uint8_t p5[] = "P5\n3 1\n65535\n\xff\xff\x80\x00\x00\x01";
    ck_assert_int_eq(read_bytes("p5.pgm", p5, sizeof p5 - 1, &img, err, sizeof err), 0);
    assert_image(&img, 3, 1, 1, (const uint8_t[]){255, 128, 0});
    image_free(&img);

    /* maxval 1000: 1000 -> 255, 500 -> 127.5 -> 128, 2 -> 0.51 -> 1, 256 (0x0100) -> 65.28 -> 65.
     */
    const uint8_t p6[] = "P6 2 1 1000\n\x03\xe8\x01\xf4\x00\x02\x01\x00\x00\x00\x00\x01";
    ck_assert_int_eq(read_bytes("p6.ppm", p6, sizeof p6 - 1, &img, err, sizeof err), 0);
    assert_image(&img, 2, 1, 3, (const uint8_t[]){255, 128, 1, 65, 0, 0});
    image_free(&img);

    const char p2[] = "P2 2 1 65535 65535 257";
    ck_assert_int_eq(read_bytes("p2.pgm", p2, strlen(p2), &img, err, sizeof err), 0);
    assert_image(&img, 2, 1, 1, (const uint8_t[]){255, 1});
    image_free(&img);
}
END_TEST

/* Each bad file must fail with a message naming the file and containing `why`,
 * and leave the image empty. */
static void assert_rejected(const char *name, const void *data, size_t len, const char *why) {
    char err[256] = "";
    image img = {.width = 7, .pixels = (uint8_t *)1};
    int rc = data ? read_bytes(name, data, len, &img, err, sizeof err)
                  : image_read_pnm(path_in_dir(name), &img, err, sizeof err);
    ck_assert_msg(rc == -1, "%s was accepted", name);
    ck_assert_msg(strstr(err, name) != NULL, "%s: message does not name the file: %s", name, err);
    ck_assert_msg(strstr(err, why) != NULL, "%s: message lacks \"%s\": %s", name, why, err);
    ck_assert_msg(strchr(err, '\n') == NULL, "%s: message is not one line", name);
    ck_assert_ptr_null(img.pixels);
    ck_assert_int_eq(img.width, 0);
}

#define REJECT(name, literal, why) assert_rejected(name, literal, sizeof literal - 1, why)

START_TEST(test_pnm_rejects_bad_files) {
    assert_rejected("missing.pgm", NULL, 0, "cannot open");
    ck_assert_int_eq(mkdir(path_in_dir("folder.pgm"), 0700), 0);
    assert_rejected("folder.pgm", NULL, 0, "not a regular file");
    REJECT("empty.pgm", "", "empty file");
    REJECT("magic1.pgm", "P1\n1 1\n1\n", "magic");
    REJECT("magic4.pgm", "P4\n1 1\n\x00", "magic");
    REJECT("magic7.pgm", "P7\nWIDTH 1\n", "magic");
    REJECT("magicX.pgm", "XX\n1 1\n255\n\x00", "magic");
    REJECT("magicP.pgm", "P", "magic");
    REJECT("magic56.pgm", "P56 1 1 255\n\x00", "magic");
    REJECT("jpeg.pgm", "\xff\xd8\xff\xe0\x00\x10JFIF", "magic");
    REJECT("width0.pgm", "P5\n0 1\n255\n", "empty image");
    REJECT("height0.pgm", "P5\n1 0\n255\n", "empty image");
    REJECT("maxval0.pgm", "P5\n1 1\n0\n\x00", "maxval is 0");
    REJECT("maxval_big.pgm", "P5\n1 1\n65536\n\x00\x00", "maxval exceeds 65535");
    REJECT("width_huge.pgm", "P5\n40000 1\n255\n", "width exceeds");
    REJECT("height_huge.pgm", "P6\n1 99999999999999999999999999\n255\n", "height exceeds");
    REJECT("width_neg.pgm", "P5\n-1 1\n255\n\x00", "bad width");
    REJECT("width_word.pgm", "P5\nten 1\n255\n\x00", "bad width");
    REJECT("width_x.pgm", "P5\n2x2\n255\n\x00", "bad width");
    REJECT("maxval_float.pgm", "P5\n1 1\n255.0\n\x00", "bad maxval");
    REJECT("no_height.pgm", "P5\n1", "missing height");
    REJECT("no_maxval.pgm", "P5 1 1 # only a comment", "missing maxval");
    REJECT("short5.pgm", "P5\n2 2\n255\n\x01\x02\x03", "truncated pixel data");
    REJECT("short6.ppm", "P6\n1 1\n65535\n\x01\x02\x03\x04\x05", "truncated pixel data");
    REJECT("nodata.pgm", "P5\n1 1\n255", "no whitespace after maxval");
    REJECT("short2.pgm", "P2\n2 2\n255\n1 2 3\n", "truncated pixel data");
    REJECT("short3.ppm", "P3\n1 1\n255\n1 2\n", "truncated pixel data");
    REJECT("over2.pgm", "P2\n2 1\n15\n3 16\n", "sample 1 exceeds 15");
    REJECT("over3.ppm", "P3\n1 1\n255\n1 2 256\n", "sample 2 exceeds 255");
    REJECT("over16.pgm", "P5\n1 1\n1000\n\x03\xe9", "above maxval");
    REJECT("bad_sample.pgm", "P2\n2 1\n255\n1 x\n", "bad sample 1");
    REJECT("neg_sample.pgm", "P2\n2 1\n255\n1 -2\n", "bad sample 1");
    REJECT("glued.pgm", "P2\n2 1\n255\n1 2x\n", "bad sample 1");
    REJECT("extra.pgm", "P2\n1 1\n255\n1 2\n", "unexpected data after the last sample");
    /* A header that promises a gigabyte is refused before any allocation. */
    REJECT("promise.ppm", "P3\n16384 16384\n255\n1 2 3\n", "truncated pixel data");
    REJECT("promise.pgm", "P5\n30000 30000\n65535\n\x00", "truncated pixel data");
}
END_TEST

/* Every proper prefix of a valid file up to `last` (exclusive) is rejected. */
static void assert_prefixes_rejected(const char *data, size_t len, size_t last) {
    char err[256];
    image img;
    ck_assert_int_eq(read_bytes("whole.pnm", data, len, &img, err, sizeof err), 0);
    image_free(&img);
    for (size_t cut = 0; cut < last; cut++) {
        char name[32];
        snprintf(name, sizeof name, "cut%zu.pnm", cut);
        err[0] = 0;
        int rc = read_bytes(name, data, cut, &img, err, sizeof err);
        ck_assert_msg(rc == -1, "prefix of %zu bytes accepted", cut);
        ck_assert_msg(strstr(err, name) != NULL, "prefix %zu: %s", cut, err);
        ck_assert_ptr_null(img.pixels);
    }
}

START_TEST(test_pnm_truncated_everywhere) {
    const char p5[] = "P5\n# c\n3 2\n255\n\x01\x02\x03\x04\x05\x06";
    assert_prefixes_rejected(p5, sizeof p5 - 1, sizeof p5 - 1);
    const char p6[] = "P6 2 1 255\n\x01\x02\x03\x04\x05\x06";
    assert_prefixes_rejected(p6, sizeof p6 - 1, sizeof p6 - 1);
    const char p5_16[] = "P5\n2 1\n65535\n\x01\x02\x03\x04";
    assert_prefixes_rejected(p5_16, sizeof p5_16 - 1, sizeof p5_16 - 1);
    /* Plain files stay valid once the last sample has begun ("... 1" is a
     * complete file whose last sample is 1 instead of 12). */
    const char p2[] = "P2\n# c\n2 2\n255\n10 200\n30 12\n";
    assert_prefixes_rejected(p2, strlen(p2), strlen(p2) - 3);
    const char p3[] = "P3 1 1 255 7 8 9";
    assert_prefixes_rejected(p3, strlen(p3), strlen(p3) - 1);
}
END_TEST

/* Random bytes and mutated files: any answer will do, as long as nothing
 * crashes (ASan watches) and what is accepted is a consistent image. */
START_TEST(test_pnm_garbage_never_crashes) {
    const char *seeds[] = {"P5\n3 2\n255\n\x01\x02\x03\x04\x05\x06",
                           "P6 1 1 65535\n\x01\x02\x03\x04\x05\x06",
                           "P2\n2 2\n255\n10 200\n30 12\n", "P3 1 1 9 7 8 9"};
    rng_state r;
    rng_seed(&r, 12345);
    char err[256];
    for (int trial = 0; trial < 3000; trial++) {
        uint8_t buf[64];
        const char *seed = seeds[trial % 4];
        size_t len = strlen(seed); /* the seeds hold no NUL bytes */
        memcpy(buf, seed, len);
        int flips = 1 + (int)rng_below(&r, 4);
        for (int f = 0; f < flips; f++) {
            uint8_t b = (uint8_t)rng_next(&r);
            if (trial % 3 == 0) b = (uint8_t) " #0123456789\n"[rng_below(&r, 13)];
            buf[rng_below(&r, len)] = b;
        }
        if (trial % 5 == 0) len = (size_t)rng_below(&r, len + 1);
        image img;
        if (read_bytes("garbage.pnm", buf, len, &img, err, sizeof err) == 0) {
            ck_assert(img.channels == 1 || img.channels == 3);
            ck_assert(img.width > 0 && img.height > 0);
            ck_assert_ptr_nonnull(img.pixels);
            image_free(&img);
        } else {
            ck_assert_ptr_null(img.pixels);
            ck_assert_ptr_nonnull(strstr(err, "garbage.pnm"));
        }
    }
}
END_TEST

/* The comparison sheet ------------------------------------------------------- */

START_TEST(test_sheet_geometry_and_pixels) {
    enum { ROWS = 2, COLS = 3, SIDE = 4, SCALE = 3, GUTTER = 2 };
    uint8_t cells_px[ROWS * COLS][SIDE * SIDE * 3];
    const uint8_t *cells[ROWS * COLS];
    for (int k = 0; k < ROWS * COLS; k++) {
        for (int i = 0; i < SIDE * SIDE * 3; i++)
            cells_px[k][i] = (uint8_t)(k * 40 + i);
        cells[k] = cells_px[k];
    }
    cells[4] = NULL; /* row 1, column 1 stays blank */
    image sheet;
    char err[256];
    ck_assert_int_eq(image_sheet(cells, ROWS, COLS, SIDE, SCALE, GUTTER, &sheet, err, sizeof err),
                     0);
    int cell = SIDE * SCALE, pitch = cell + GUTTER;
    ck_assert_int_eq(sheet.width, GUTTER + COLS * pitch);
    ck_assert_int_eq(sheet.height, GUTTER + ROWS * pitch);
    ck_assert_int_eq(sheet.width, 44);
    ck_assert_int_eq(sheet.height, 30);
    ck_assert_int_eq(sheet.channels, 3);
    uint8_t gutter_gray = sheet.pixels[0];
    ck_assert(gutter_gray == sheet.pixels[1] && gutter_gray == sheet.pixels[2]);
    for (int y = 0; y < sheet.height; y++)
        for (int x = 0; x < sheet.width; x++) {
            const uint8_t *got = sheet.pixels + ((size_t)y * sheet.width + x) * 3;
            int cx = (x - GUTTER) / pitch, ix = (x - GUTTER) % pitch;
            int cy = (y - GUTTER) / pitch, iy = (y - GUTTER) % pitch;
            int in_cell = x >= GUTTER && y >= GUTTER && ix < cell && iy < cell;
            const uint8_t *want = (const uint8_t[]){gutter_gray, gutter_gray, gutter_gray};
            if (in_cell && cells[cy * COLS + cx])
                want = cells[cy * COLS + cx] + ((iy / SCALE) * SIDE + ix / SCALE) * 3;
            ck_assert_msg(memcmp(got, want, 3) == 0, "sheet pixel (%d, %d)", x, y);
        }
    /* Spot checks written out by hand: the first picture's pixel (1, 0) covers
     * sheet x 5..7, y 2..4; the last picture starts at (30, 16). */
    ck_assert_int_eq(sheet.pixels[(2 * 44 + 5) * 3], 3);
    ck_assert_int_eq(sheet.pixels[(4 * 44 + 7) * 3 + 2], 5);
    ck_assert_int_eq(sheet.pixels[(2 * 44 + 1) * 3], gutter_gray);
    ck_assert_int_eq(sheet.pixels[(2 * 44 + 15) * 3], gutter_gray);
    ck_assert_int_eq(sheet.pixels[(2 * 44 + 16) * 3], 40);
    ck_assert_int_eq(sheet.pixels[(16 * 44 + 30) * 3], (uint8_t)(5 * 40));
    image_free(&sheet);

    /* No gutter, scale 1: the sheet is the pictures side by side. */
    ck_assert_int_eq(image_sheet(cells, 1, 2, SIDE, 1, 0, &sheet, err, sizeof err), 0);
    ck_assert_int_eq(sheet.width, 2 * SIDE);
    ck_assert_int_eq(sheet.height, SIDE);
    ck_assert_mem_eq(sheet.pixels + (size_t)SIDE * 3, cells_px[1], 3 * SIDE);
    image_free(&sheet);
}
END_TEST

START_TEST(test_sheet_rejects_bad_layout) {
    uint8_t px[32 * 32 * 3] = {0};
    const uint8_t *cells[1] = {px};
    image sheet;
    char err[256];
    ck_assert_int_eq(image_sheet(NULL, 1, 1, 32, 1, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 0, 1, 32, 1, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 1, 0, 32, 1, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 1, 1, 0, 1, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 1, 1, 32, 0, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 1, 1, 32, 1, -1, &sheet, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "image_sheet"));
    ck_assert_int_eq(image_sheet(cells, 1, 1, 32, 1 << 30, 1, &sheet, err, sizeof err), -1);
    ck_assert_int_eq(image_sheet(cells, 1 << 30, 1, 32, 4, 1 << 30, &sheet, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "exceeds"));
    ck_assert_ptr_null(sheet.pixels);
}
END_TEST

/* The SVG plot ---------------------------------------------------------------- */

static int xml_name_start(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}
static int xml_name_char(int c) {
    return xml_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
static int xml_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A reference at s ("&amp;", "&#38;"...); returns its length, 0 if invalid. */
static size_t xml_reference(const char *s) {
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(s, named[i], strlen(named[i]))) return strlen(named[i]);
    size_t n = 1;
    if (s[n++] != '#') return 0;
    int hex = s[n] == 'x';
    n += hex;
    size_t digits = 0;
    while (hex ? (s[n] && strchr("0123456789abcdefABCDEF", s[n])) : (s[n] >= '0' && s[n] <= '9'))
        n++, digits++;
    return digits && s[n] == ';' ? n + 1 : 0;
}

/* A small well-formedness check: one root element, tags balanced and named
 * alike, attributes quoted and unique per element, no bare '<' or '&'.
 * Returns NULL when well formed, else what is wrong. */
static const char *xml_check(const char *s) {
    static char why[160];
    char stack[64][64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) return "unterminated XML declaration";
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            size_t n = xml_reference(p);
            if (!n) return "bare & in text";
            if (!depth) return "reference outside the root";
            p += n;
        } else if (*p != '<') {
            if (!depth && !xml_space(*p)) return "text outside the root";
            p++;
        } else if (!strncmp(p, "<!--", 4)) {
            const char *end = strstr(p + 4, "--");
            if (!end || end[2] != '>') return "bad comment";
            p = end + 3;
        } else if (p[1] == '!' || p[1] == '?') {
            return "unexpected declaration";
        } else if (p[1] == '/') {
            p += 2;
            size_t n = 0;
            while (xml_name_char(p[n]))
                n++;
            if (!depth) return "close tag without open tag";
            depth--;
            if (n != strlen(stack[depth]) || strncmp(p, stack[depth], n)) {
                snprintf(why, sizeof why, "</%.*s> closes <%.60s>", (int)(n > 60 ? 60 : n), p,
                         stack[depth]);
                return why;
            }
            p += n;
            while (xml_space(*p))
                p++;
            if (*p++ != '>') return "bad close tag";
        } else {
            p++;
            if (!xml_name_start(*p)) return "bad element name";
            size_t n = 0;
            while (xml_name_char(p[n]))
                n++;
            if (n >= sizeof stack[0] || depth == 64) return "name too long or nesting too deep";
            if (!depth && roots++) return "more than one root element";
            memcpy(stack[depth], p, n);
            stack[depth][n] = 0;
            p += n;
            char attrs[32][64];
            int n_attrs = 0;
            for (;;) {
                int spaced = xml_space(*p);
                while (xml_space(*p))
                    p++;
                if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
                if (!spaced) return "attribute not preceded by whitespace";
                if (!xml_name_start(*p)) return "bad attribute name";
                size_t an = 0;
                while (xml_name_char(p[an]))
                    an++;
                if (an >= 64 || n_attrs == 32) return "attribute name too long or too many";
                for (int a = 0; a < n_attrs; a++)
                    if (strlen(attrs[a]) == an && !strncmp(attrs[a], p, an))
                        return "duplicate attribute";
                memcpy(attrs[n_attrs], p, an);
                attrs[n_attrs++][an] = 0;
                p += an;
                while (xml_space(*p))
                    p++;
                if (*p++ != '=') return "attribute without =";
                while (xml_space(*p))
                    p++;
                char quote = *p++;
                if (quote != '"' && quote != '\'') return "unquoted attribute value";
                while (*p && *p != quote) {
                    if (*p == '<') return "< in attribute value";
                    if (*p == '&') {
                        size_t rn = xml_reference(p);
                        if (!rn) return "bare & in attribute value";
                        p += rn;
                    } else {
                        p++;
                    }
                }
                if (!*p++) return "unterminated attribute value";
            }
            if (*p == '/')
                p++;
            else
                depth++;
            p++;
        }
    }
    if (depth) return "unclosed element";
    if (!roots) return "no root element";
    return NULL;
}

START_TEST(test_xml_checker_catches_mistakes) {
    ck_assert_ptr_null(xml_check(
        "<?xml version=\"1.0\"?>\n<a x='1' y=\"&amp;&#38;\"><b/>t &lt; <!-- c --></a>\n"));
    const char *bad[] = {"<a><b></a></b>",
                         "<a>",
                         "<a x=1/>",
                         "<a x=\"1\" x=\"2\"/>",
                         "<a x=\"<\"/>",
                         "<a>&</a>",
                         "<a>&foo;</a>",
                         "<a/><b/>",
                         "text<a/>",
                         "<a x=\"1\"y=\"2\"/>",
                         "",
                         "<a x=\"1/>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(xml_check(bad[i]) != NULL, "accepted %s", bad[i]);
}
END_TEST

static char *read_text(const char *path) {
    uint8_t *data;
    size_t size;
    char err[256];
    ck_assert_int_eq(read_file(path, &data, &size, err, sizeof err), 0);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    free(data);
    return text;
}

static int count_of(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* Points in the polyline number `index` (from 0). */
static int polyline_points(const char *svg, int index) {
    const char *p = svg;
    for (int i = 0; i <= index; i++) {
        p = strstr(p, "<polyline");
        ck_assert_ptr_nonnull(p);
        p++;
    }
    const char *end = strchr(p, '>');
    const char *pts = strstr(p, " points=\"");
    ck_assert_ptr_nonnull(pts);
    ck_assert(pts < end);
    pts += 9;
    int n = 0;
    for (; *pts != '"'; pts++)
        n += *pts == ',';
    return n;
}

static void check_with_xmllint(const char *path) {
    if (system("command -v xmllint >/dev/null 2>&1") != 0) {
        printf("xmllint check of %s: skipped: `xmllint` was not found on PATH\n", path);
        fflush(stdout);
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_plot_content) {
    enum { N = 25 };
    double train[N], val[N], test[N];
    for (int e = 0; e < N; e++) {
        train[e] = 0.16 - 0.002 * e;
        val[e] = 0.15 - 0.0015 * e;
        test[e] = 0.155 - 0.0017 * e;
    }
    plot_line lines[3] = {{"training", "#1f77b4", train},
                          {"validation <held-out> & \"more\"", "#ff7f0e", val},
                          {"test", NULL, test}};
    char err[256];
    const char *path = path_in_dir("plot.svg");
    ck_assert_int_eq(plot_errors_svg(path, "Pixel error: birds & 'friends'", lines, 3, N, 0.109,
                                     "luminance <baseline>", err, sizeof err),
                     0);
    check_with_xmllint(path);
    char *svg = read_text(path);
    const char *why = xml_check(svg);
    ck_assert_msg(why == NULL, "SVG is not well formed: %s", why);
    ck_assert_int_eq(count_of(svg, "<svg "), 1);
    ck_assert_int_eq(count_of(svg, "<polyline"), 3);
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(polyline_points(svg, l), N);
    ck_assert_int_eq(count_of(svg, "<circle"), 3 * N + 3); /* markers and legend */
    /* The dashed baseline across the plot and its legend sample. */
    ck_assert_int_eq(count_of(svg, "stroke-dasharray"), 2);
    ck_assert_ptr_nonnull(strstr(svg, ">Pixel error: birds &amp; &apos;friends&apos;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">epoch</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">pixel error (%)</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">training</text>"));
    ck_assert_ptr_nonnull(
        strstr(svg, ">validation &lt;held-out&gt; &amp; &quot;more&quot;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">luminance &lt;baseline&gt;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">25</text>"));
    ck_assert_ptr_nonnull(strstr(svg, "#2ca02c")); /* the third line's default colour */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    free(svg);
}
END_TEST

START_TEST(test_plot_edge_cases) {
    char err[256];
    const char *path = path_in_dir("edge.svg");
    /* One epoch, no baseline. */
    double one[1] = {0.5};
    plot_line single = {"only", "red", one};
    ck_assert_int_eq(plot_errors_svg(path, "one", &single, 1, 1, -1, NULL, err, sizeof err), 0);
    char *svg = read_text(path);
    ck_assert_ptr_null(xml_check(svg));
    ck_assert_int_eq(count_of(svg, "<polyline"), 1);
    ck_assert_int_eq(polyline_points(svg, 0), 1);
    ck_assert_int_eq(count_of(svg, "stroke-dasharray"), 0);
    ck_assert_ptr_nonnull(strstr(svg, ">1</text>"));
    ck_assert_ptr_null(strstr(svg, "nan"));
    free(svg);

    /* Non-finite values are skipped; a line of nothing but NaN still gets its
     * (empty) polyline; labels with control bytes and broken UTF-8 stay XML. */
    double gaps[4] = {0.2, NAN, INFINITY, 0.1};
    double none[4] = {NAN, NAN, NAN, NAN};
    plot_line lines[2] = {{"gaps\x01\xff", "#000", gaps}, {"café", "#00f", none}};
    ck_assert_int_eq(plot_errors_svg(path, NULL, lines, 2, 4, 0.15, NULL, err, sizeof err), 0);
    check_with_xmllint(path);
    svg = read_text(path);
    ck_assert_ptr_null(xml_check(svg));
    ck_assert_int_eq(polyline_points(svg, 0), 2);
    ck_assert_int_eq(polyline_points(svg, 1), 0);
    ck_assert_ptr_nonnull(strstr(svg, ">café</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">baseline</text>"));
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "inf"));
    free(svg);

    /* 300 epochs: a handful of integer epoch ticks, not 300. */
    double *many = malloc(300 * sizeof *many);
    for (int e = 0; e < 300; e++)
        many[e] = 0.3 / (1 + e);
    plot_line long_run = {"training", "#1f77b4", many};
    ck_assert_int_eq(
        plot_errors_svg(path, "long", &long_run, 1, 300, 0.109, "base", err, sizeof err), 0);
    svg = read_text(path);
    ck_assert_ptr_null(xml_check(svg));
    ck_assert_int_eq(polyline_points(svg, 0), 300);
    ck_assert_ptr_nonnull(strstr(svg, ">300</text>"));
    ck_assert_int_le(count_of(svg, "text-anchor=\"middle\">"), 3 + 12);
    free(svg);
    free(many);

    ck_assert_int_eq(plot_errors_svg(path, "t", &single, 1, 0, -1, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "edge.svg"));
    plot_line no_values = {"x", "red", NULL};
    ck_assert_int_eq(plot_errors_svg(path, "t", &no_values, 1, 3, -1, NULL, err, sizeof err), -1);
    ck_assert_int_eq(
        plot_errors_svg(path_in_dir("no/dir/p.svg"), "t", &single, 1, 1, -1, NULL, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "no/dir/p.svg"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("image");
    TCase *gray = tcase_create("gray");
    tcase_add_test(gray, test_gray_hand_computed);
    tcase_add_test(gray, test_gray_matches_skimage_float32);
    suite_add_tcase(s, gray);

    TCase *pnm = tcase_create("pnm");
    tcase_add_checked_fixture(pnm, setup_dir, teardown_dir);
    tcase_add_test(pnm, test_pnm_round_trip);
    tcase_add_test(pnm, test_pnm_write_errors);
    tcase_add_test(pnm, test_pnm_plain_and_comments);
    tcase_add_test(pnm, test_pnm_16_bit);
    tcase_add_test(pnm, test_pnm_rejects_bad_files);
    tcase_add_test(pnm, test_pnm_truncated_everywhere);
    tcase_add_test(pnm, test_pnm_garbage_never_crashes);
    tcase_set_timeout(pnm, 60);
    suite_add_tcase(s, pnm);

    TCase *sheet = tcase_create("sheet");
    tcase_add_test(sheet, test_sheet_geometry_and_pixels);
    tcase_add_test(sheet, test_sheet_rejects_bad_layout);
    suite_add_tcase(s, sheet);

    TCase *plot = tcase_create("plot");
    tcase_add_checked_fixture(plot, setup_dir, teardown_dir);
    tcase_add_test(plot, test_xml_checker_catches_mistakes);
    tcase_add_test(plot, test_plot_content);
    tcase_add_test(plot, test_plot_edge_cases);
    suite_add_tcase(s, plot);

    return tu_run_suite(s);
}
