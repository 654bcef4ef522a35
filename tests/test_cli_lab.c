/* The Lab mode through the program: a whole run and its outputs, predict
 * with a Lab model, and bad Lab options. */
#include "tests/cli_util.h"

START_TEST(test_lab_run_outputs) {
    char o_bin[256], o_py[256];
    snprintf(o_bin, sizeof o_bin, "%s/lab-bin", root);
    snprintf(o_py, sizeof o_py, "%s/lab-py", root);
    const char *args = "--space lab -k 8 --epochs 2 --val 4 -t 2";
    ck_assert_msg(run("%s -o %s %s", bin_dir, o_bin, args) == 0, "%s", err);
    ck_assert_msg(strstr(out, "epoch   2/2") && strstr(out, "per-lightness"), "%s", out);
    /* the colour table: validation and test, every method, and the originals */
    ck_assert_int_eq(count(out, "colour   val"), 5);
    ck_assert_int_eq(count(out, "colour   test"), 5);
    ck_assert_ptr_nonnull(strstr(out, "network, T = 0.38"));
    ck_assert_msg(run("%s -o %s %s", py_dir, o_py, args) == 0, "%s", err);
    size_t len, len_py;
    char *tsv = slurp(o_bin, "errors.tsv", &len), *tsv_py = slurp(o_py, "errors.tsv", &len_py);
    ck_assert_int_eq(count(tsv, "\n"), 3);
    strip_seconds(tsv);
    strip_seconds(tsv_py);
    ck_assert_str_eq(tsv, tsv_py);
    free(tsv);
    free(tsv_py);
    char *svg = slurp(o_bin, "errors.svg", &len);
    ck_assert_int_eq(count(svg, "<polyline"), 3);
    ck_assert_ptr_nonnull(strstr(svg, "per-lightness"));
    free(svg);
    char *ppm = slurp(o_bin, "compare.ppm", &len);
    check_ppm(ppm, len, 4 + 4 * (128 + 4), 4 + 10 * (128 + 4));
    free(ppm);
    /* a* b* per line, least chroma first */
    char *pal = slurp(o_bin, "palette.txt", &len);
    ck_assert_int_eq(count(pal, "\n"), 8);
    float a0, b0, a7, b7;
    const char *last = pal;
    for (int i = 0; i < 7; i++)
        last = strchr(last, '\n') + 1;
    ck_assert_int_eq(sscanf(pal, "%f %f\n", &a0, &b0), 2);
    ck_assert_int_eq(sscanf(last, "%f %f\n", &a7, &b7), 2);
    ck_assert(hypotf(a0, b0) <= hypotf(a7, b7));
    free(pal);
    ppm = slurp(o_bin, "palette.ppm", &len);
    check_ppm(ppm, len, 4 + 8 * (32 + 4), 4 + 32 + 4);
    free(ppm);
    char *sum = slurp(o_bin, "summary.txt", &len);
    ck_assert_ptr_nonnull(strstr(sum, "space        lab"));
    ck_assert_int_eq(count(sum, "colour   "), 11); /* the header and ten rows */
    free(sum);
    /* the model says it is a Lab model: predict colours with it, at odd sizes too */
    char model[300], pic[300], res[300], res2[300];
    snprintf(model, sizeof model, "%s/model.bin", o_bin);
    snprintf(res, sizeof res, "%s/res.ppm", root);
    snprintf(res2, sizeof res2, "%s/res2.ppm", root);
    const int sizes[3][3] = {{37, 23, 1}, {50, 29, 3}, {5, 3, 1}};
    for (int i = 0; i < 3; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        write_picture("lab.pnm", w, h, sizes[i][2]);
        snprintf(pic, sizeof pic, "%s/lab.pnm", root);
        ck_assert_msg(run("predict %s %s %s", model, pic, res) == 0, "%s", err);
        char *got = slurp(root, "res.ppm", &len);
        size_t at = check_ppm(got, len, w, h);
        /* At the native size and T = 0, each pixel is the input's lightness with one
         * centre's chroma, exactly. */
        ck_assert_msg(run("predict --scale 0 --temperature 0 %s %s %s", model, pic, res2) == 0,
                      "%s", err);
        char *native = slurp(root, "res2.ppm", &len);
        size_t at2 = check_ppm(native, len, w, h);
        char e[256];
        image in;
        network *net;
        nn_model_meta meta;
        ck_assert_msg(image_read_pnm(pic, &in, e, sizeof e) == 0, "%s", e);
        ck_assert_msg(nn_load(model, 0, 0, 1, &net, &meta, e, sizeof e) == 0, "%s", e);
        ck_assert_int_eq(meta.space, SPACE_LAB);
        nn_free(net);
        double lightness_off = 0;
        for (int p = 0; p < w * h; p++) {
            float g, rgb[3], lab[3];
            if (in.channels == 3)
                gray_from_rgb(in.pixels + 3 * p, 1, &g);
            else
                g = in.pixels[p] / 255.0f;
            float L = lab_lightness_of_gray(g);
            int found = 0;
            for (int c = 0; c < meta.k && !found; c++) {
                float want[3] = {L, meta.centres[c][0], meta.centres[c][1]};
                uint8_t bytes[3];
                rgb8_from_lab(want, bytes);
                found = memcmp(bytes, native + at2 + 3 * p, 3) == 0;
            }
            ck_assert_msg(found,
                          "%dx%d, pixel %d: not the input's lightness with a centre's chroma", w, h,
                          p);
            /* by default the chroma is smooth, the lightness still the input's (to rounding
             * and the clipping of out-of-gamut colours) */
            for (int c = 0; c < 3; c++)
                rgb[c] = (uint8_t)got[at + 3 * p + c] / 255.0f;
            lab_from_rgb(rgb, lab);
            lightness_off += fabsf(lab[0] - L);
        }
        ck_assert_msg(lightness_off / (w * h) < 4, "%dx%d: L* is %.2f off on average", w, h,
                      lightness_off / (w * h));
        image_free(&in);
        free(got);
        free(native);
    }
    ck_assert_int_eq(run("predict --scale -1 %s %s %s", model, pic, res), 2);
}
END_TEST

START_TEST(test_lab_bad_options) {
    const char *bad[] = {
        "--space hsv %s",
        "--space lab --rebalance 1.5 %s",
        "--space lab --rebalance -0.1 %s",
        "--space lab --temperature -1 %s",
        "--space lab --temperature nan %s",
        "--space lab --temperature inf %s",
        "--rebalance 0.5 %s",
        "--temperature 1 %s",
        "--space rgb --temperature 1 %s",
        "--space lab --scale 32 %s",
    };
    expect_usage_errors(bad, sizeof bad / sizeof bad[0]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_lab");
    TCase *tc = tcase_create("cli_lab");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lab_run_outputs);
    tcase_add_test(tc, test_lab_bad_options);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
