/* cifar.c: both layouts from fixtures written here, every bad input we can
 * think of, and the real files when ../shared/cifar is there. */
#include "cifar.h"
#include "cifar_checks.h"
#include "cifar_fixtures.h"
#include "testutil.h"
#include "util.h"
static const int file_counts[CIFAR_NUM_FILES] = {23, 17, 31, 12, 19, 15};

/* ==== fixtures parse ==== */

START_TEST(test_py2_official_layout) {
    fx_batch x = fixture_batch(0, 3);
    fx_buf b;
    fx_pickle_py2(&b, &x);
    ck_assert(!memcmp(b.p,
                      "\x80\x02}q\x01(U\x0b"
                      "batch_labelq\x02U\x15training batch 1 of 5q\x03",
                      2 + 3 + 1 + 13 + 2 + 23 + 2));
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "cnumpy.core.multiarray\n_reconstruct\nq\x07", 38));
    ck_assert_int_eq(b.p[b.n - 2], 'u');
    ck_assert_int_eq(b.p[b.n - 1], '.');
    check_batch_roundtrip(&b, &x, 0);
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

/* 1001 labels: a group of 1000, then a lone APPEND; over 256 memo entries
 * brings LONG_BINPUT; 2500: three APPENDS groups. */
START_TEST(test_py2_groups_and_long_memo) {
    static const int sizes[] = {0, 1, 2, 1001, 2500};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        fx_batch x = fixture_batch(1, sizes[k]);
        fx_buf b;
        fx_pickle_py2(&b, &x);
        if (sizes[k] == 1001) {
            uint8_t lone[3] = {'K', (uint8_t)fixture_label(1, 1000), 'a'}; /* label 1000, APPEND */
            ck_assert_ptr_nonnull(memmem(b.p, b.n, lone, 3));
            ck_assert_ptr_nonnull(memmem(b.p, b.n, "r\x00\x01\x00\x00", 5)); /* LONG_BINPUT 256 */
        }
        check_batch_roundtrip(&b, &x, 0);
        fx_free(&b);
        fixture_batch_free(&x);
    }
}
END_TEST

/* Python 3 at protocols 2 (bytes as _codecs.encode text: decoded, owned),
 * 4 (FRAME, MEMOIZE, STACK_GLOBAL, BINBYTES) and 5 (_frombuffer, BYTEARRAY8);
 * 30 records put the data past 64 KiB, outside any frame. */
START_TEST(test_py3_protocols) {
    static const int protos[] = {2, 4, 5}, sizes[] = {0, 1, 3, 30};
    for (size_t p = 0; p < 3; p++)
        for (size_t k = 0; k < 4; k++) {
            fx_batch x = fixture_batch(2, sizes[k]);
            fx_buf b;
            fx_pickle_py3(&b, &x, protos[p]);
            ck_assert_int_eq(b.p[1], protos[p]);
            if (protos[p] >= 4) ck_assert_int_eq(b.p[2], 0x95); /* FRAME */
            if (protos[p] == 5)
                ck_assert_ptr_nonnull(memmem(b.p, b.n, "numeric\x94\x8c\x0b_frombuffer", 20));
            check_batch_roundtrip(&b, &x, protos[p] == 2 && sizes[k] > 0);
            fx_free(&b);
            fixture_batch_free(&x);
        }
}
END_TEST

START_TEST(test_bin_batch) {
    fx_batch x = fixture_batch(3, 5);
    fx_buf b;
    fx_bin(&b, 5, x.labels, x.data);
    ck_assert_uint_eq(b.n, 5 * 3073);
    char err[ERR_LEN];
    cifar_batch out;
    ck_assert_int_eq(cifar_parse_bin_batch(b.p, b.n, "fx.bin", &out, err, sizeof err), 0);
    ck_assert_int_eq(out.n, 5);
    ck_assert_uint_eq(out.stride, 3073);
    ck_assert_ptr_eq(out.data, b.p + 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(out.labels[i], x.labels[i]);
        ck_assert(
            !memcmp(out.data + i * out.stride, x.data + i * CIFAR_IMAGE_BYTES, CIFAR_IMAGE_BYTES));
    }
    cifar_batch_free(&out);
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

START_TEST(test_meta_pickle) {
    fx_buf b;
    char names[10][CIFAR_NAME_MAX], err[ERR_LEN];
    fx_meta_py2(&b, official_class_names, 10);
    ck_assert_int_eq(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(names[i], official_class_names[i]);
    fx_free(&b);

    fx_meta_py2(&b, official_class_names, 9);
    ck_assert_int_eq(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "meta: byte 47: 'label_names' is not a list of 10 names"));
    fx_free(&b);

    const char *long_names[10];
    memcpy(long_names, official_class_names, sizeof long_names);
    long_names[4] = "a-class-name-of-thirty-two-bytes";
    fx_meta_py2(&b, long_names, 10);
    ck_assert_int_eq(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "label_names[4] is not a name of 1..31 bytes"));
    fx_free(&b);
}
END_TEST

/* ==== whole folders ==== */

/* Writes the six batch files of the fixture in layout (py files rotate
 * through every pickle writer) and, when meta, the default meta file. */
static void write_folder(const char *dir, cifar_layout layout, int meta) {
    for (int f = 0; f < CIFAR_NUM_FILES; f++) {
        fx_batch x = fixture_batch(f, file_counts[f]);
        fx_buf b;
        char name[CIFAR_NAME_MAX];
        if (f < 5)
            snprintf(name, sizeof name, "data_batch_%d%s", f + 1, layout ? ".bin" : "");
        else
            snprintf(name, sizeof name, "test_batch%s", layout ? ".bin" : "");
        static const int writers[CIFAR_NUM_FILES] = {0, 2, 4, 5, 0, 4};
        if (layout == CIFAR_LAYOUT_BIN)
            fx_bin(&b, x.rows, x.labels, x.data);
        else
            write_pickle(&b, &x, writers[f]);
        tu_write(dir, name, b.p, b.n);
        fx_free(&b);
        fixture_batch_free(&x);
    }
    if (meta && layout == CIFAR_LAYOUT_PY) {
        fx_buf b;
        fx_meta_py2(&b, official_class_names, 10);
        tu_write(dir, "batches.meta", b.p, b.n);
        fx_free(&b);
    } else if (meta) {
        const char *txt =
            "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
        tu_write(dir, "batches.meta.txt", txt, strlen(txt));
    }
}

/* Record i of file f as the loader should keep it: (32, 32, 3) interleaved. */
static void record_rgb(int f, int i, uint8_t *out) {
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++)
                *out++ = fixture_pixel(f, i, c * 1024 + y * 32 + x);
}

/* A set of classes as a bitmask: class c is bit c. */
#define CLASS(c)    (1 << (c))
#define ALL_CLASSES ((1 << CIFAR_NUM_CLASSES) - 1)

/* The kept images of the classes in mask as the fixture defines them,
 * independently of cifar.c: every record of files from..to-1 in file order,
 * (count, 32, 32, 3) interleaved; returns count. */
static int expected_images(int mask, int from, int to, uint8_t **out) {
    int count = 0;
    for (int f = from; f < to; f++)
        for (int i = 0; i < file_counts[f]; i++)
            count += mask >> fixture_label(f, i) & 1;
    uint8_t *p = *out = malloc((size_t)count * CIFAR_IMAGE_BYTES + 1);
    for (int f = from; f < to; f++)
        for (int i = 0; i < file_counts[f]; i++)
            if (mask >> fixture_label(f, i) & 1) {
                record_rgb(f, i, p);
                p += CIFAR_IMAGE_BYTES;
            }
    return count;
}

/* ds holds exactly the classes in mask, split with n_val, as the fixture has them. */
static void check_loaded(const cifar_dataset *ds, int mask, int n_val) {
    uint8_t *train, *test;
    int n_trainval = expected_images(mask, 0, 5, &train),
        n_test = expected_images(mask, 5, 6, &test);
    int n_classes = 0;
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        if (mask >> c & 1) ck_assert_int_eq(ds->class_indices[n_classes++], c);
    ck_assert_int_eq(ds->n_classes, n_classes);
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        ck_assert_int_eq(cifar_class_chosen(ds, c), mask >> c & 1);
    ck_assert_int_eq(ds->n_train, n_trainval - n_val);
    ck_assert_int_eq(ds->n_val, n_val);
    ck_assert_int_eq(ds->n_test, n_test);
    ck_assert_ptr_eq(ds->train, ds->pixels);
    ck_assert_ptr_eq(ds->test, ds->pixels + (size_t)n_trainval * CIFAR_IMAGE_BYTES);
    ck_assert(!memcmp(ds->train, train, (size_t)n_trainval * CIFAR_IMAGE_BYTES));
    ck_assert(!memcmp(ds->test, test, (size_t)n_test * CIFAR_IMAGE_BYTES));
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        ck_assert_int_eq(ds->file_records[f], file_counts[f]);
    int train_counts[10] = {0}, test_counts[10] = {0};
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        for (int i = 0; i < file_counts[f]; i++)
            (f < 5 ? train_counts : test_counts)[fixture_label(f, i)]++;
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(ds->train_class_counts[c], train_counts[c]);
        ck_assert_int_eq(ds->test_class_counts[c], test_counts[c]);
        ck_assert_str_eq(ds->class_names[c], official_class_names[c]);
    }
    free(train);
    free(test);
}

START_TEST(test_load_both_layouts) {
    char py[64], bin[64], err[ERR_LEN];
    tu_mkdtemp(py, sizeof py);
    tu_mkdtemp(bin, sizeof bin);
    write_folder(py, CIFAR_LAYOUT_PY, 1);
    write_folder(bin, CIFAR_LAYOUT_BIN, 1);
    cifar_dataset a, b;
    ck_assert_msg(cifar_load(py, "bird", 3, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(cifar_load(bin, "bird", 3, &b, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.layout, CIFAR_LAYOUT_PY);
    ck_assert_int_eq(b.layout, CIFAR_LAYOUT_BIN);
    ck_assert_str_eq(a.file_names[2], "data_batch_3");
    ck_assert_str_eq(b.file_names[5], "test_batch.bin");
    check_loaded(&a, CLASS(2), 3);
    check_loaded(&b, CLASS(2), 3);
    ck_assert(a.n_train > 3 && a.n_test > 0);
    size_t total = (size_t)(a.n_train + a.n_val + a.n_test) * CIFAR_IMAGE_BYTES;
    ck_assert(!memcmp(a.pixels, b.pixels, total));
    cifar_free(&a);
    cifar_free(&b);
    ck_assert_ptr_null(a.pixels);
    tu_rmtree(py);
    tu_rmtree(bin);
}
END_TEST

/* Every class, by name in any case and by number; no meta file needed. */
START_TEST(test_class_specs) {
    char dir[64], err[ERR_LEN];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_BIN, 0);
    cifar_dataset ds;
    for (int c = 0; c < 10; c++) {
        char spec[16];
        snprintf(spec, sizeof spec, "%d", c);
        ck_assert_msg(cifar_load(dir, spec, 0, &ds, err, sizeof err) == 0, "%s", err);
        check_loaded(&ds, CLASS(c), 0);
        cifar_free(&ds);
    }
    ck_assert_int_eq(cifar_load(dir, "HoRsE", 1, &ds, err, sizeof err), 0);
    check_loaded(&ds, CLASS(7), 1);
    cifar_free(&ds);
    ck_assert_int_eq(cifar_load(dir, NULL, 0, &ds, err, sizeof err), 0);
    check_loaded(&ds, CLASS(2), 0);
    cifar_free(&ds);
    static const char *bad[] = {"foo", "10", "-1", "", "bird "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(cifar_load(dir, bad[i], 0, &ds, err, sizeof err), CIFAR_BAD_CLASS);
        char want[256];
        snprintf(want, sizeof want,
                 "unknown class '%s' (classes: airplane, automobile, bird, cat, deer, dog, frog, "
                 "horse, ship, truck)",
                 bad[i]);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(ds.pixels);
    }
    tu_rmtree(dir);
}
END_TEST

/* Lists and "all", in both layouts: the classes chosen, the images of each
 * split (check_loaded compares every byte), and the counts per split against
 * the class counts the loader saw. */
START_TEST(test_class_lists) {
    static const struct {
        const char *spec;
        int mask;
    } cases[] = {
        {"bird,cat", CLASS(2) | CLASS(3)},
        {"2,3", CLASS(2) | CLASS(3)},
        {"cat,2", CLASS(2) | CLASS(3)},
        {"Truck,0,DEER", CLASS(0) | CLASS(4) | CLASS(9)},
        {"all", ALL_CLASSES},
        {"ALL", ALL_CLASSES},
        {"9,8,7,6,5,4,3,2,1,0", ALL_CLASSES},
    };
    char py[64], bin[64], err[ERR_LEN];
    tu_mkdtemp(py, sizeof py);
    tu_mkdtemp(bin, sizeof bin);
    write_folder(py, CIFAR_LAYOUT_PY, 1);
    write_folder(bin, CIFAR_LAYOUT_BIN, 0);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cifar_dataset a, b;
        ck_assert_msg(cifar_load(py, cases[k].spec, 5, &a, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(cifar_load(bin, cases[k].spec, 5, &b, err, sizeof err) == 0, "%s", err);
        check_loaded(&a, cases[k].mask, 5);
        check_loaded(&b, cases[k].mask, 5);
        int train = 0, test = 0;
        for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
            if (cases[k].mask >> c & 1) {
                train += a.train_class_counts[c];
                test += a.test_class_counts[c];
            }
        ck_assert_int_eq(a.n_train + a.n_val, train);
        ck_assert_int_eq(a.n_test, test);
        size_t total = (size_t)(a.n_train + a.n_val + a.n_test) * CIFAR_IMAGE_BYTES;
        ck_assert_int_eq(b.n_train + b.n_val + b.n_test, a.n_train + a.n_val + a.n_test);
        ck_assert(!memcmp(a.pixels, b.pixels, total));
        if (cases[k].mask == ALL_CLASSES) { /* every record of the fixture */
            ck_assert_int_eq(a.n_train, 23 + 17 + 31 + 12 + 19 - 5);
            ck_assert_int_eq(a.n_test, 15);
        }
        cifar_free(&a);
        cifar_free(&b);
    }
    tu_rmtree(py);
    tu_rmtree(bin);
}
END_TEST

/* Two classes come in file order, interleaved, not one class after the
 * other: image k of the load is the k-th bird-or-cat record of the files,
 * the training ones (validation included) ending with data_batch_5's. */
START_TEST(test_two_classes_keep_file_order) {
    char dir[64], err[ERR_LEN];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_BIN, 0);
    cifar_dataset ds;
    ck_assert_msg(cifar_load(dir, "cat,bird", 2, &ds, err, sizeof err) == 0, "%s", err);
    uint8_t want[CIFAR_IMAGE_BYTES];
    int k = 0, label_of[256], cat_then_bird = 0, bird_then_cat = 0;
    for (int f = 0; f < CIFAR_NUM_FILES; f++) {
        if (f == 5) ck_assert_int_eq(k, ds.n_train + ds.n_val);
        for (int i = 0; i < file_counts[f]; i++) {
            int label = fixture_label(f, i);
            if (label != 2 && label != 3) continue;
            ck_assert_int_lt(k, ds.n_train + ds.n_val + ds.n_test);
            record_rgb(f, i, want);
            ck_assert_msg(!memcmp(ds.pixels + (size_t)k * CIFAR_IMAGE_BYTES, want, sizeof want),
                          "image %d is not record %d of file %d", k, i, f);
            label_of[k] = label;
            if (k && f < 5) {
                cat_then_bird += label_of[k - 1] == 3 && label == 2;
                bird_then_cat += label_of[k - 1] == 2 && label == 3;
            }
            k++;
        }
    }
    ck_assert_int_eq(k, ds.n_train + ds.n_val + ds.n_test);
    ck_assert_int_eq(ds.n_val, 2);
    /* Else grouping by class would pass too. */
    ck_assert(cat_then_bird > 0 && bird_then_cat > 0);
    cifar_free(&ds);
    tu_rmtree(dir);
}
END_TEST

/* A bad list is a usage error whose one line names the item at fault. */
START_TEST(test_bad_class_lists) {
#define CLASSES "(classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)"
    static const struct {
        const char *spec, *want;
    } bad[] = {
        {"bird,,cat", "empty class name (item 2) in 'bird,,cat'"},
        {",bird", "empty class name (item 1) in ',bird'"},
        {"bird,", "empty class name (item 2) in 'bird,'"},
        {",", "empty class name (item 1) in ','"},
        {"bird,cat,bird", "class 'bird' is listed twice in 'bird,cat,bird'"},
        {"bird,2", "class '2' (bird) is listed twice in 'bird,2'"},
        {"3,Cat", "class 'Cat' is listed twice in '3,Cat'"},
        {"bird,ostrich", "unknown class 'ostrich' in 'bird,ostrich' " CLASSES},
        {"bird, cat", "unknown class ' cat' in 'bird, cat' " CLASSES},
        {"1,10", "unknown class '10' in '1,10' " CLASSES},
        {"all,bird", "'all' cannot be listed with other classes in 'all,bird'"},
        {"bird,ALL", "'ALL' cannot be listed with other classes in 'bird,ALL'"},
        {"all ", "unknown class 'all ' " CLASSES},
    };
#undef CLASSES
    char dir[64], err[ERR_LEN];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_BIN, 0);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cifar_dataset ds;
        ck_assert_int_eq(cifar_load(dir, bad[k].spec, 0, &ds, err, sizeof err), CIFAR_BAD_CLASS);
        ck_assert_str_eq(err, bad[k].want);
        ck_assert_ptr_null(ds.pixels);
        ck_assert_int_eq(ds.n_classes, 0);
    }
    tu_rmtree(dir);
}
END_TEST

static void expect_choice(const char *dir, const char *spec, const char *name, const char *label) {
    char err[ERR_LEN], buf[CIFAR_CHOICE_MAX];
    cifar_dataset ds;
    ck_assert_msg(cifar_load(dir, spec, 0, &ds, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_eq(cifar_choice_name(&ds, buf, sizeof buf), buf);
    ck_assert_str_eq(buf, name);
    ck_assert_ptr_eq(cifar_choice_label(&ds, buf, sizeof buf), buf);
    ck_assert_str_eq(buf, label);
    cifar_free(&ds);
}

/* How messages name the choice; a short buffer truncates, CIFAR_CHOICE_MAX
 * holds the longest. */
START_TEST(test_choice_names) {
    char dir[64], err[ERR_LEN];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_BIN, 0);
    expect_choice(dir, "bird", "bird", "bird (class 2)");
    expect_choice(dir, "cat,bird", "bird+cat", "bird+cat (classes 2, 3)");
    expect_choice(dir, "9,0,deer", "airplane+deer+truck", "airplane+deer+truck (classes 0, 4, 9)");
    expect_choice(dir, "all", "all classes", "all classes (0..9)");
    cifar_dataset ds;
    ck_assert_int_eq(cifar_load(dir, "bird,cat", 0, &ds, err, sizeof err), 0);
    char small[6] = "xxxxx";
    ck_assert_str_eq(cifar_choice_name(&ds, small, sizeof small), "bird+");
    ck_assert_str_eq(cifar_choice_label(&ds, small, sizeof small), "bird+");
    ck_assert_str_eq(cifar_choice_label(&ds, small, 1), "");
    cifar_free(&ds);
    /* Nine names of 31 bytes. */
    char txt[CIFAR_NUM_CLASSES * CIFAR_NAME_MAX + 1] = "";
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        snprintf(txt + strlen(txt), sizeof txt - strlen(txt), "%c%030d\n", 'a' + c, c);
    tu_write(dir, "batches.meta.txt", txt, strlen(txt));
    ck_assert_msg(cifar_load(dir, "0,1,2,3,4,5,6,7,8", 0, &ds, err, sizeof err) == 0, "%s", err);
    char label[CIFAR_CHOICE_MAX];
    cifar_choice_label(&ds, label, sizeof label);
    ck_assert_uint_eq(strlen(label), 9 * 31 + 8 + strlen(" (classes 0, 1, 2, 3, 4, 5, 6, 7, 8)"));
    char tail[64];
    snprintf(tail, sizeof tail, "+i%030d (classes 0, 1, 2,", 8);
    ck_assert_msg(strstr(label, tail) != NULL, "%s", label);
    cifar_free(&ds);
    tu_rmtree(dir);
}
END_TEST

/* Class names come from the meta file when there is one. */
START_TEST(test_meta_names_used) {
    char py[64], bin[64], err[ERR_LEN];
    tu_mkdtemp(py, sizeof py);
    tu_mkdtemp(bin, sizeof bin);
    write_folder(py, CIFAR_LAYOUT_PY, 0);
    write_folder(bin, CIFAR_LAYOUT_BIN, 0);
    const char *names[10];
    memcpy(names, official_class_names, sizeof names);
    names[2] = "Vogel";
    fx_buf b;
    fx_meta_py2(&b, names, 10);
    tu_write(py, "batches.meta", b.p, b.n);
    fx_free(&b);
    const char *txt =
        "airplane\r\nautomobile\r\nVogel\r\ncat\r\n\r\ndeer\ndog\nfrog\nhorse\nship\ntruck";
    tu_write(bin, "batches.meta.txt", txt, strlen(txt));
    const char *dirs[2] = {py, bin};
    for (int d = 0; d < 2; d++) {
        cifar_dataset ds;
        ck_assert_msg(cifar_load(dirs[d], "vogel", 0, &ds, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(ds.n_classes, 1);
        ck_assert_int_eq(ds.class_indices[0], 2);
        ck_assert_str_eq(ds.class_names[2], "Vogel");
        ck_assert_str_eq(ds.class_names[9], "truck");
        cifar_free(&ds);
        char name[CIFAR_CHOICE_MAX];
        ck_assert_msg(cifar_load(dirs[d], "CAT,vogel", 0, &ds, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(cifar_choice_name(&ds, name, sizeof name), "Vogel+cat");
        cifar_free(&ds);
        ck_assert_int_eq(cifar_load(dirs[d], "bird", 0, &ds, err, sizeof err), CIFAR_BAD_CLASS);
        ck_assert_ptr_nonnull(
            strstr(err, "unknown class 'bird' (classes: airplane, automobile, Vogel, cat"));
    }
    txt = "airplane\nautomobile\nbird\n";
    tu_write(bin, "batches.meta.txt", txt, strlen(txt));
    cifar_dataset ds;
    ck_assert_int_eq(cifar_load(bin, "bird", 0, &ds, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "batches.meta.txt: 3 class names, expected 10"));
    tu_rmtree(py);
    tu_rmtree(bin);
}
END_TEST

START_TEST(test_validation_split) {
    char dir[64], err[ERR_LEN];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_PY, 1);
    cifar_dataset ds;
    uint8_t *train;
    int n = expected_images(CLASS(2), 0, 5, &train);
    free(train);
    ck_assert_int_eq(cifar_load(dir, "bird", n - 1, &ds, err, sizeof err), 0);
    check_loaded(&ds, CLASS(2), n - 1);
    ck_assert_int_eq(ds.n_train, 1);
    cifar_free(&ds);
    int bad[] = {n, n + 1, -1};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cifar_load(dir, "bird", bad[i], &ds, err, sizeof err), -1);
        char want[200];
        snprintf(want, sizeof want,
                 "validation size %d out of range: class 'bird' has %d training images, so it "
                 "must be 0..%d",
                 bad[i], n, n - 1);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(ds.pixels);
        ck_assert_int_eq(ds.n_train + ds.n_val + ds.n_test, 0);
    }
    /* Lists: the whole training set of the classes is the limit too. */
    n = expected_images(CLASS(2) | CLASS(3), 0, 5, &train);
    free(train);
    ck_assert_int_eq(cifar_load(dir, "bird,cat", n - 1, &ds, err, sizeof err), 0);
    check_loaded(&ds, CLASS(2) | CLASS(3), n - 1);
    cifar_free(&ds);
    const struct {
        const char *spec, *who;
        int n;
    } lists[] = {{"bird,cat", "bird+cat have", n}, {"all", "all classes have", 102}};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(cifar_load(dir, lists[i].spec, lists[i].n, &ds, err, sizeof err), -1);
        char want[200];
        snprintf(want, sizeof want,
                 "validation size %d out of range: %s %d training images, so it must be 0..%d",
                 lists[i].n, lists[i].who, lists[i].n, lists[i].n - 1);
        ck_assert_str_eq(err, want);
    }
    tu_rmtree(dir);
}
END_TEST

/* ==== bad folders ==== */

static void expect_load_error(const char *dir, const char *want) {
    char err[ERR_LEN] = "";
    cifar_dataset ds;
    ck_assert_int_eq(cifar_load(dir, "bird", 0, &ds, err, sizeof err), -1);
    ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    ck_assert_ptr_null(ds.pixels);
}

START_TEST(test_bad_folders) {
    char dir[64], want[256];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(want, sizeof want, "%s/nope: no such folder", dir);
    char path[128];
    snprintf(path, sizeof path, "%s/nope", dir);
    expect_load_error(path, want);
    tu_write(dir, "plain", "x", 1);
    snprintf(path, sizeof path, "%s/plain", dir);
    snprintf(want, sizeof want, "%s/plain: not a folder", dir);
    expect_load_error(path, want);
    tu_write(dir, "batches.meta", "x", 1);
    expect_load_error(dir, ": neither a cifar-10-batches-py folder (data_batch_1..5, test_batch) "
                           "nor a cifar-10-batches-bin folder");
    tu_rmtree(dir);

    cifar_layout layouts[2] = {CIFAR_LAYOUT_PY, CIFAR_LAYOUT_BIN};
    const char *missing[2] = {"data_batch_3", "test_batch.bin"};
    for (int l = 0; l < 2; l++) {
        tu_mkdtemp(dir, sizeof dir);
        write_folder(dir, layouts[l], 1);
        snprintf(path, sizeof path, "%s/%s", dir, missing[l]);
        ck_assert_int_eq(unlink(path), 0);
        snprintf(want, sizeof want, "%s: missing (a %s folder needs all six batch files)", path,
                 cifar_layout_name(layouts[l]));
        expect_load_error(dir, want);
        /* An empty batch file. */
        tu_write(dir, missing[l], "", 0);
        snprintf(want, sizeof want, "%s: empty file", path);
        expect_load_error(dir, want);
        /* A truncated one. */
        tu_write(dir, missing[l], "\x80\x02}q\x01(U", 7);
        snprintf(want, sizeof want,
                 l ? "%s: size 7 is not a multiple of 3073"
                   : "%s: byte 6: SHORT_BINSTRING needs 1 bytes but only 0 remain",
                 path);
        expect_load_error(dir, want);
        tu_rmtree(dir);
    }
}
END_TEST

/* A broken batch in the middle of a folder: its name and the byte in the
 * message, nothing leaked (LeakSanitizer would say). */
START_TEST(test_bad_batch_in_folder) {
    char dir[64], want[256];
    tu_mkdtemp(dir, sizeof dir);
    write_folder(dir, CIFAR_LAYOUT_PY, 1);
    fx_batch x = fixture_batch(3, 4);
    ((int *)x.labels)[2] = 12;
    fx_buf b;
    fx_pickle_py2(&b, &x);
    tu_write(dir, "data_batch_4", b.p, b.n);
    snprintf(want, sizeof want, "%s/data_batch_4: byte 64: labels[2] is 12, outside 0..9", dir);
    expect_load_error(dir, want);
    fx_free(&b);
    fixture_batch_free(&x);
    tu_rmtree(dir);
}
END_TEST

/* ==== truncation and crafted pickles ==== */

/* Every proper prefix of a valid pickle must fail cleanly, naming the file. */
START_TEST(test_truncated_pickles) {
    static const int writers[] = {0, 2, 4, 5};
    for (size_t w = 0; w < 4; w++) {
        fx_batch x = fixture_batch(4, 2);
        fx_buf b;
        write_pickle(&b, &x, writers[w]);
        cifar_batch out;
        char err[ERR_LEN];
        ck_assert_int_eq(parse_pickle(&b, b.n, &out, err), 0);
        cifar_batch_free(&out);
        for (size_t len = 0; len < b.n; len++) {
            err[0] = 0;
            ck_assert_msg(parse_pickle(&b, len, &out, err) == -1, "prefix %zu parsed", len);
            ck_assert_msg(!strncmp(err, "fx: ", 4), "prefix %zu: '%s'", len, err);
            ck_assert_ptr_null(out.labels);
        }
        fx_free(&b);
        fixture_batch_free(&x);
    }
    fx_buf b;
    fx_meta_py2(&b, official_class_names, 10);
    for (size_t len = 0; len < b.n; len++) {
        char names[10][CIFAR_NAME_MAX], err[ERR_LEN] = "";
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, b.p, len);
        ck_assert_int_eq(cifar_parse_pickle_meta(copy, len, "meta", names, err, sizeof err), -1);
        ck_assert(!strncmp(err, "meta: ", 6));
        free(copy);
    }
    fx_free(&b);
}
END_TEST

/* A .bin file cut anywhere: only whole records parse. */
START_TEST(test_truncated_bin) {
    fx_batch x = fixture_batch(4, 3);
    fx_buf b;
    fx_bin(&b, 3, x.labels, x.data);
    for (size_t len = 0; len <= b.n; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, b.p, len);
        char err[ERR_LEN] = "";
        cifar_batch out;
        int rc = cifar_parse_bin_batch(copy, len, "fx.bin", &out, err, sizeof err);
        if (len > 0 && len % 3073 == 0) {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(out.n, (int)(len / 3073));
            cifar_batch_free(&out);
        } else if (len == 0) {
            ck_assert_str_eq(err, "fx.bin: empty file");
        } else {
            ck_assert_int_eq(rc, -1);
            char want[128];
            snprintf(want, sizeof want,
                     "fx.bin: size %zu is not a multiple of 3073 (1 label byte + 3072 pixel bytes)",
                     len);
            ck_assert_str_eq(err, want);
        }
        free(copy);
    }
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

START_TEST(test_bin_bad_label) {
    fx_batch x = fixture_batch(4, 3);
    ((int *)x.labels)[1] = 10;
    fx_buf b;
    fx_bin(&b, 3, x.labels, x.data);
    char err[ERR_LEN];
    cifar_batch out;
    ck_assert_int_eq(cifar_parse_bin_batch(b.p, b.n, "fx.bin", &out, err, sizeof err), -1);
    ck_assert_str_eq(err, "fx.bin: byte 3073: record 1 has label 10, outside 0..9");
    ck_assert_ptr_null(out.labels);
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

START_TEST(test_crafted_pickles) {
    EXPECT_PICKLE_ERROR("", "crafted: empty file");
    EXPECT_PICKLE_ERROR("\x80\x02\xff", "crafted: byte 2: unknown pickle opcode 0xff");
    EXPECT_PICKLE_ERROR("\x80\x02]\x99.", "byte 3: unknown pickle opcode 0x99");
    EXPECT_PICKLE_ERROR("\x80\x02S'a'\n.", "byte 2: unsupported pickle opcode 0x53 (STRING)");
    EXPECT_PICKLE_ERROR("\x80\x06}.", "byte 0: unsupported pickle protocol 6");
    EXPECT_PICKLE_ERROR("\x80\x02.", "byte 2: STOP: pickle stack underflow");
    EXPECT_PICKLE_ERROR("\x80\x02K\x01"
                        "a.",
                        "byte 4: APPEND: pickle stack underflow");
    EXPECT_PICKLE_ERROR("\x80\x02}(\x85.", "byte 4: TUPLE1: pickle stack underflow");
    EXPECT_PICKLE_ERROR("\x80\x02(K\x01K\x02"
                        "e.",
                        "APPENDS: pickle stack underflow (no target below the MARK)");
    EXPECT_PICKLE_ERROR("\x80\x02]q\x00h\x05.", "byte 5: memo index 5 out of range");
    EXPECT_PICKLE_ERROR("\x80\x02]j\xff\xff\xff\x7f.",
                        "byte 3: memo index 2147483647 out of range");
    EXPECT_PICKLE_ERROR("\x80\x02]r\xff\xff\xff\xff.",
                        "byte 3: memo index 4294967295 out of range");
    EXPECT_PICKLE_ERROR("\x80\x02h", "byte 2: BINGET needs 1 bytes but only 0 remain");
    EXPECT_PICKLE_ERROR("\x80\x02]K\x01"
                        "e.",
                        "byte 5: APPENDS without a MARK");
    EXPECT_PICKLE_ERROR("\x80\x02K\x01t.", "byte 4: TUPLE without a MARK");
    EXPECT_PICKLE_ERROR("\x80\x02}K\x01K\x02u.", "SETITEMS without a MARK");
    EXPECT_PICKLE_ERROR("\x80\x02}(K\x01u.", "SETITEMS with an odd number of items");
    EXPECT_PICKLE_ERROR("\x80\x02T\xff\xff\x00\x00"
                        "ab",
                        "crafted: byte 2: BINSTRING declares 65535 bytes but only 2 remain");
    EXPECT_PICKLE_ERROR("\x80\x02T\xff\xff\xff\xff.", "BINSTRING with negative length");
    EXPECT_PICKLE_ERROR("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.",
                        "byte 2: BINBYTES8 declares 9223372036854775807 bytes but only 1 remain");
    EXPECT_PICKLE_ERROR("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}.",
                        "byte 2: FRAME declares 16 bytes but only 2 remain");
    EXPECT_PICKLE_ERROR("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.",
                        "LONG1 of 9 bytes: integer too large");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "cnumpy\ndtype",
                        "GLOBAL runs past the end");
    EXPECT_PICKLE_ERROR("\x80\x02K\x01)R.", "REDUCE calls a int");
    EXPECT_PICKLE_ERROR("\x80\x02]]b.", "byte 4: BUILD on a list");
    EXPECT_PICKLE_ERROR("\x80\x05\x97.", "NEXT_BUFFER: out-of-band buffers are not supported");
    EXPECT_PICKLE_ERROR("\x80\x02}", "byte 3: pickle ends without STOP");
    EXPECT_PICKLE_ERROR("\x80\x02].", "byte 2: pickle holds a list, expected a dict");
    EXPECT_PICKLE_ERROR("(t.",
                        "byte 1: pickle holds a tuple, expected a dict"); /* found by the fuzzer */
    EXPECT_PICKLE_ERROR("(l(d.", "byte 3: no 'data' key in the pickled dict");
    EXPECT_PICKLE_ERROR("\x80\x02}.", "byte 2: no 'data' key in the pickled dict");
    EXPECT_PICKLE_ERROR("\x80\x02}(U\x04"
                        "dataK\x01U\x06"
                        "labels]u.",
                        "byte 10: 'data' is a int, expected a numpy array");
    EXPECT_PICKLE_ERROR("\x80\x02}(U\x04"
                        "dataK\x01u.",
                        "byte 2: no 'labels' key in the pickled dict");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "cnumpy.core.multiarray\n_reconstruct\nK\x00\x85R.",
                        "_reconstruct arguments are not (numpy.ndarray, shape, typecode)");
    /* Python 3 protocol 2 bytes: _codecs.encode(text, 'latin1'). */
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xa9"
                        "X\x06\x00\x00\x00latin1\x86R.",
                        "byte 37: pickle holds a bytes, expected a dict");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x82\xac"
                        "X\x06\x00\x00\x00latin1\x86R.",
                        "byte 18: str is not latin-1 text");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "c_codecs\nencode\nX\x02\x00\x00\x00"
                        "a\xc3"
                        "X\x06\x00\x00\x00latin1\x86R.",
                        "byte 18: str is not latin-1 text");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "c_codecs\nencode\nX\x02\x00\x00\x00"
                        "a\xa9"
                        "X\x06\x00\x00\x00latin1\x86R.",
                        "byte 18: str is not latin-1 text");
    EXPECT_PICKLE_ERROR("\x80\x02"
                        "c_codecs\nencode\nX\x02\x00\x00\x00"
                        "ab"
                        "X\x05\x00\x00\x00utf-8\x86R.",
                        "unsupported arguments for a bytes constructor");
    /* Nesting beyond the limits fails cleanly instead of eating memory. */
    size_t n = (1u << 20) + 8;
    char *deep = malloc(n);
    memset(deep, '(', n);
    expect_pickle_error(deep, n, "more than 1048576 nested MARKs");
    free(deep);
}
END_TEST

/* An unknown opcode where a real batch has its 'data' key. */
START_TEST(test_unknown_opcode_in_fixture) {
    fx_batch x = fixture_batch(0, 2);
    fx_buf b;
    fx_pickle_py2(&b, &x);
    uint8_t *key = memmem(b.p, b.n,
                          "U\x04"
                          "data",
                          6);
    ck_assert_ptr_nonnull(key);
    *key = 0x99;
    char want[64];
    snprintf(want, sizeof want, "fx: byte %zu: unknown pickle opcode 0x99", (size_t)(key - b.p));
    char err[ERR_LEN];
    cifar_batch out;
    ck_assert_int_eq(parse_pickle(&b, b.n, &out, err), -1);
    ck_assert_str_eq(err, want);
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

/* Well-formed pickles holding the wrong array or labels, from each writer. */
START_TEST(test_wrong_arrays_and_labels) {
    static const int writers[] = {0, 2, 4, 5};
    for (size_t w = 0; w < 4; w++) {
        int wr = writers[w];
        fx_batch x = fixture_batch(5, 3);
        fx_batch y = x;
        y.dtype = "i2"; /* 6 bytes per pixel pair: the byte count still matches */
        uint8_t *wide = calloc(3 * 3072 * 2, 1);
        y.data = wide;
        expect_fixture_error(&y, wr, "'data' has dtype <i2, expected uint8 (|u1)");
        free(wide);
        y = x;
        y.rows = 9;
        y.cols = 1024;
        y.n_labels = 9;
        int labels9[9] = {0};
        y.labels = labels9;
        expect_fixture_error(&y, wr, "'data' has shape (9, 1024), expected (N, 3072)");
        y = x;
        y.fortran = 1;
        expect_fixture_error(&y, wr, "'data' is in Fortran order, expected C order");
        y = x;
        y.n_labels = 2;
        expect_fixture_error(&y, wr, "'labels' has 2 entries but 'data' has 3 rows");
        int bad_labels[3] = {1, 10, 2};
        y = x;
        y.labels = bad_labels;
        expect_fixture_error(&y, wr, "labels[1] is 10, outside 0..9");
        bad_labels[1] = 3;
        bad_labels[2] = -1;
        expect_fixture_error(&y, wr, "labels[2] is -1, outside 0..9");
        fixture_batch_free(&x);
    }
}
END_TEST

/* An array whose data is shorter than its shape says. */
START_TEST(test_array_size_mismatch) {
    fx_batch x = fixture_batch(5, 2);
    fx_buf b;
    fx_pickle_py2(&b, &x);
    /* rows are written as BININT1 2 right after "(K\x01": claim 3 rows. */
    uint8_t *rows = memmem(b.p, b.n, "(K\x01K\x02M\x00\x0c", 8);
    ck_assert_ptr_nonnull(rows);
    rows[4] = 3;
    expect_pickle_error(b.p, b.n, "array data holds 6144 bytes but its shape and dtype need 9216");
    fx_free(&b);
    fixture_batch_free(&x);
}
END_TEST

static void load_real(const char *base, const char *layout, int n_val, cifar_dataset *ds) {
    char dir[512], err[ERR_LEN];
    snprintf(dir, sizeof dir, "%s/%s", base, layout);
    ck_assert_msg(cifar_load(dir, "bird", n_val, ds, err, sizeof err) == 0, "%s", err);
}

START_TEST(test_real_files) {
    const char *base = tu_shared_cifar();
    if (!base) {
        printf("test_real_files: skipped, no folder %s\n", tu_shared_cifar_wanted());
        return;
    }
    cifar_dataset py, bin;
    load_real(base, "cifar-10-batches-py", 500, &py);
    load_real(base, "cifar-10-batches-bin", 500, &bin);
    ck_assert_int_eq(py.n_train, 4500);
    ck_assert_int_eq(py.n_val, 500);
    ck_assert_int_eq(py.n_test, 100);
    ck_assert_int_eq(py.train_class_counts[2], 5000);
    ck_assert_int_eq(py.test_class_counts[2], 100);
    static const int records[6] = {1532, 1510, 1465, 1541, 1452, 1000};
    for (int f = 0; f < 6; f++) {
        ck_assert_int_eq(py.file_records[f], records[f]);
        ck_assert_int_eq(bin.file_records[f], records[f]);
    }
    ck_assert(!memcmp(py.train_class_counts, bin.train_class_counts, sizeof py.train_class_counts));
    ck_assert(!memcmp(py.test_class_counts, bin.test_class_counts, sizeof py.test_class_counts));
    ck_assert(!memcmp(py.class_names, bin.class_names, sizeof py.class_names));
    ck_assert_int_eq(bin.n_train + bin.n_val + bin.n_test, 5100);
    ck_assert(!memcmp(py.pixels, bin.pixels, 5100 * (size_t)CIFAR_IMAGE_BYTES));
    cifar_free(&py);
    cifar_free(&bin);
    load_real(base, "cifar-10-batches-py", 0, &py);
    ck_assert_int_eq(py.n_train, 5000);
    cifar_free(&py);
    /* Lists and all: both layouts agree, and every record of the chosen classes is kept. */
    static const char *specs[2] = {"bird,cat", "all"};
    for (int k = 0; k < 2; k++) {
        char dir[512], err[ERR_LEN];
        snprintf(dir, sizeof dir, "%s/cifar-10-batches-py", base);
        ck_assert_msg(cifar_load(dir, specs[k], 500, &py, err, sizeof err) == 0, "%s", err);
        snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", base);
        ck_assert_msg(cifar_load(dir, specs[k], 500, &bin, err, sizeof err) == 0, "%s", err);
        int train = k ? 1532 + 1510 + 1465 + 1541 + 1452 : 5000 + py.train_class_counts[3];
        int test = k ? 1000 : 100 + py.test_class_counts[3];
        ck_assert_int_eq(py.n_train + py.n_val, train);
        ck_assert_int_eq(py.n_test, test);
        ck_assert_int_eq(bin.n_train + bin.n_val + bin.n_test, train + test);
        ck_assert(!memcmp(py.pixels, bin.pixels, (size_t)(train + test) * CIFAR_IMAGE_BYTES));
        cifar_free(&py);
        cifar_free(&bin);
    }
}
END_TEST

/* The fixture writer reproduces the official_class_names files byte for byte. */
START_TEST(test_real_files_match_fixture_writer) {
    const char *base = tu_shared_cifar();
    if (!base) {
        printf("test_real_files_match_fixture_writer: skipped, no folder %s\n",
               tu_shared_cifar_wanted());
        return;
    }
    static const char *files[2] = {"data_batch_1", "test_batch"};
    static const char *labels[2] = {"training batch 1 of 5", "testing batch 1 of 1"};
    for (int k = 0; k < 2; k++) {
        char path[512], err[ERR_LEN];
        snprintf(path, sizeof path, "%s/cifar-10-batches-py/%s", base, files[k]);
        uint8_t *buf;
        size_t len;
        cifar_batch cb;
        ck_assert_int_eq(read_file(path, &buf, &len, err, sizeof err), 0);
        ck_assert_msg(cifar_parse_pickle_batch(buf, len, path, &cb, err, sizeof err) == 0, "%s",
                      err);
        int *l = malloc(sizeof(int) * (size_t)cb.n);
        for (int i = 0; i < cb.n; i++)
            l[i] = cb.labels[i];
        fx_batch x = {cb.n, CIFAR_IMAGE_BYTES, cb.data, "u1", 0, cb.n, l, labels[k]};
        fx_buf b;
        fx_pickle_py2(&b, &x);
        ck_assert_uint_eq(b.n, len);
        ck_assert(!memcmp(b.p, buf, len));
        fx_free(&b);
        free(l);
        cifar_batch_free(&cb);
        free(buf);
    }
    char path[512], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/cifar-10-batches-py/batches.meta", base);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(read_file(path, &buf, &len, err, sizeof err), 0);
    fx_buf b;
    fx_meta_py2(&b, official_class_names, 10);
    ck_assert_uint_eq(b.n, len);
    ck_assert(!memcmp(b.p, buf, len));
    fx_free(&b);
    free(buf);
}
END_TEST

static Suite *cifar_suite(void) {
    Suite *s = suite_create("cifar");
    TCase *tc = tcase_create("fixtures");
    tcase_add_test(tc, test_py2_official_layout);
    tcase_add_test(tc, test_py2_groups_and_long_memo);
    tcase_add_test(tc, test_py3_protocols);
    tcase_add_test(tc, test_bin_batch);
    tcase_add_test(tc, test_meta_pickle);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_load_both_layouts);
    tcase_add_test(tc, test_class_specs);
    tcase_add_test(tc, test_class_lists);
    tcase_add_test(tc, test_two_classes_keep_file_order);
    tcase_add_test(tc, test_bad_class_lists);
    tcase_add_test(tc, test_choice_names);
    tcase_add_test(tc, test_meta_names_used);
    tcase_add_test(tc, test_validation_split);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_folders);
    tcase_add_test(tc, test_bad_batch_in_folder);
    tcase_add_test(tc, test_truncated_pickles);
    tcase_add_test(tc, test_truncated_bin);
    tcase_add_test(tc, test_bin_bad_label);
    tcase_add_test(tc, test_crafted_pickles);
    tcase_add_test(tc, test_unknown_opcode_in_fixture);
    tcase_add_test(tc, test_wrong_arrays_and_labels);
    tcase_add_test(tc, test_array_size_mismatch);
    suite_add_tcase(s, tc);
    tc = tcase_create("real");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_real_files);
    tcase_add_test(tc, test_real_files_match_fixture_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return tu_run_suite(cifar_suite());
}
