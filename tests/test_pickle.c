/* The pickle machine (pickle.c) through the batch and meta readers: each
 * opcode handler that the official_class_names files never use gets a fixture that a
 * Python pickler could write (pickle_fixtures.h), parsed to exactly its
 * batch, and its misuses fail with a message that names the byte. */
#include "cifar.h"
#include "cifar_checks.h"
#include "cifar_fixtures.h"
#include "pickle_fixtures.h"
#include "testutil.h"
#include "util.h"

static const int writer_protos[3] = {2, 4, 5};

/* Labels 5 3 3 3 0 9: a run for DUP, a 0 that LONG4 writes in no bytes. */
static fx_batch opcode_batch(int n) {
    static const int labels[6] = {5, 3, 3, 3, 0, 9};
    fx_batch x = fixture_batch(6, n);
    for (int i = 0; i < n; i++)
        ((int *)x.labels)[i] = labels[i % 6];
    return x;
}

/* Writes x in style s and checks that it parses to x's rows and labels;
 * needle (need bytes) must be in the pickle, so the opcode is really there. */
static void check_styled(const fx_batch *x, fxo_style s, const void *needle, size_t need) {
    fx_buf b;
    fx_pickle_styled(&b, x, &s);
    ck_assert_msg(memmem(b.p, b.n, needle, need) != NULL, "protocol %d: opcode not written",
                  s.proto);
    check_batch_roundtrip(&b, x, s.proto == 2 && x->rows > 0);
    fx_free(&b);
}

/* Parsing the fixture (an exact-size copy, named "fx") fails with exactly
 * "fx: byte AT: msg". */
static void expect_fixture_error_at(const fx_buf *b, size_t at, const char *msg) {
    char err[ERR_LEN] = "", want[ERR_LEN];
    cifar_batch out;
    snprintf(want, sizeof want, "fx: byte %zu: %s", at, msg);
    ck_assert_int_eq(parse_pickle(b, b->n, &out, err), -1);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(out.labels);
}

/* Where needle starts in b (it must be there). */
static size_t offset_of(const fx_buf *b, const void *needle, size_t need) {
    const uint8_t *at = memmem(b->p, b->n, needle, need);
    ck_assert_ptr_nonnull(at);
    return (size_t)(at - b->p);
}

/* A crafted pickle must fail with exactly want. */
static void expect_pickle_error_is(const void *p, size_t len, const char *want) {
    char err[ERR_LEN];
    expect_crafted_failure(p, len, want, err);
    ck_assert_str_eq(err, want);
}

#define EXPECT_PICKLE_ERROR_IS(lit, want) expect_pickle_error_is(lit, sizeof(lit) - 1, want)

/* SETITEM: each key and value added on its own, as pickle.py does at
 * protocol 0 and for a dict of one item. */
START_TEST(test_opcode_setitem) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .setitem = 1};
        check_styled(&x, s,
                     "K\x00K\x09"
                     "es",
                     6); /* APPENDS the labels, SETITEM them */
    }
    fx_buf b;
    fxo_style s = {.proto = 4, .setitem = 1};
    char names[10][CIFAR_NAME_MAX], err[ERR_LEN];
    fx_meta_styled(&b, official_class_names, 10, &s);
    ck_assert_int_eq(b.p[b.n - 2], 's');
    ck_assert_msg(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err) == 0, "%s",
                  err);
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(names[i], official_class_names[i]);
    fx_free(&b);
    EXPECT_PICKLE_ERROR_IS("\x80\x02]K\x01K\x02s.",
                           "crafted: byte 7: SETITEM into a list, expected a dict");
    EXPECT_PICKLE_ERROR_IS("\x80\x02}K\x01s.", "crafted: byte 5: SETITEM: pickle stack underflow");
    /* The dict lies below the MARK: out of SETITEM's reach. */
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(K\x01K\x02s.",
                           "crafted: byte 8: SETITEM: pickle stack underflow");
    fixture_batch_free(&x);
}
END_TEST

/* DUP: a label equal to the one before it pushed again (labels 5 3 3 3). */
START_TEST(test_opcode_dup) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .dup = 1};
        check_styled(&x, s,
                     "K\x05K\x03"
                     "22K\x00",
                     8);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x02"
                           "2.",
                           "crafted: byte 2: DUP: pickle stack underflow");
    /* Nothing above the MARK to copy. */
    EXPECT_PICKLE_ERROR_IS("\x80\x02](2.", "crafted: byte 4: DUP: pickle stack underflow");
    fixture_batch_free(&x);
}
END_TEST

/* POP: 'info' is a tuple that holds itself, t = ([t],), which ends
 * "APPEND POP GET"; and as protocol 0 ends it, where a second POP takes the
 * tuple's MARK. */
START_TEST(test_opcode_pop) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .info = FXO_INFO_TUPLE_POP};
        check_styled(&x, s, "a0h", 3);
        s.info = FXO_INFO_TUPLE_P0;
        check_styled(&x, s, "a00h", 4);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x02"
                           "0.",
                           "crafted: byte 2: POP without a MARK");
    EXPECT_PICKLE_ERROR_IS("\x80\x02]0.", "crafted: byte 4: STOP: pickle stack underflow");
    /* POP takes the empty MARK and leaves the dict; a second POP takes the dict. */
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(0.", "crafted: byte 2: no 'data' key in the pickled dict");
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(00.", "crafted: byte 6: STOP: pickle stack underflow");
    fixture_batch_free(&x);
}
END_TEST

/* POP_MARK: 'info' is t = ([t], 1, 2, 3), which ends "1 2 3 POP_MARK GET". */
START_TEST(test_opcode_pop_mark) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .info = FXO_INFO_TUPLE_MARK};
        check_styled(&x, s,
                     "aK\x01K\x02K\x03"
                     "1h",
                     9);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x02]1.", "crafted: byte 3: POP_MARK without a MARK");
    /* Everything above the MARK goes with it: the dict is left. */
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(K\x01K\x02"
                           "1.",
                           "crafted: byte 2: no 'data' key in the pickled dict");
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(K\x01(K\x02"
                           "11.",
                           "crafted: byte 2: no 'data' key in the pickled dict");
    fixture_batch_free(&x);
}
END_TEST

/* LONG4: labels as little-endian two's complement of 0 (for 0), 1, 2 and 8
 * bytes. */
START_TEST(test_opcode_long4) {
    fx_batch x = opcode_batch(6);
    static const int widths[4] = {-1, 1, 2, 8};
    for (int k = 0; k < 3; k++)
        for (int w = 0; w < 4; w++) {
            fxo_style s = {.proto = writer_protos[k], .long4 = widths[w]};
            /* Labels 0 and 9: in 0 and 1 bytes, or both in widths[w] bytes. */
            uint8_t want[26] = {0x8b, 0, 0, 0, 0, 0x8b, 1, 0, 0, 0, 9};
            size_t len = 11;
            if (widths[w] > 0) {
                len = 2 * (5 + (size_t)widths[w]);
                memset(want, 0, len);
                want[0] = want[len / 2] = 0x8b;
                want[1] = want[len / 2 + 1] = (uint8_t)widths[w];
                want[len / 2 + 5] = 9;
            }
            check_styled(&x, s, want, len);
        }
    /* Out-of-range labels, their sign extended, named at their LONG4. */
    fxo_style s = {.proto = 4, .long4 = -1};
    fx_buf b;
    ((int *)x.labels)[4] = -1;
    fx_pickle_styled(&b, &x, &s);
    expect_fixture_error_at(&b, offset_of(&b, "\x8b\x01\x00\x00\x00\xff", 6),
                            "labels[4] is -1, outside 0..9");
    fx_free(&b);
    s.long4 = 8;
    fx_pickle_styled(&b, &x, &s);
    expect_fixture_error_at(&b, offset_of(&b, "\x8b\x08\x00\x00\x00\xff\xff\xff\xff", 9),
                            "labels[4] is -1, outside 0..9");
    fx_free(&b);
    ((int *)x.labels)[4] = 256;
    s.long4 = -1;
    fx_pickle_styled(&b, &x, &s);
    expect_fixture_error_at(&b, offset_of(&b, "\x8b\x02\x00\x00\x00\x00\x01", 7),
                            "labels[4] is 256, outside 0..9");
    fx_free(&b);
    EXPECT_PICKLE_ERROR_IS("\x80\x02\x8b\xff\xff\xff\xff.",
                           "crafted: byte 2: LONG4 with negative length");
    EXPECT_PICKLE_ERROR_IS("\x80\x02\x8b\x09\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09.",
                           "crafted: byte 2: LONG4 of 9 bytes: integer too large");
    EXPECT_PICKLE_ERROR_IS("\x80\x02\x8b\x02\x00\x00\x00\x01",
                           "crafted: byte 2: LONG4 needs 2 bytes but only 1 remain");
    EXPECT_PICKLE_ERROR_IS("\x80\x02\x8b\x01\x00",
                           "crafted: byte 2: LONG4 needs 4 bytes but only 2 remain");
    fixture_batch_free(&x);
}
END_TEST

/* BINFLOAT: 'info' is a tuple of three floats, which the reader carries. */
START_TEST(test_opcode_binfloat) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .info = FXO_INFO_FLOATS};
        check_styled(&x, s, "G@_S33333G", 10);
    }
    /* Float labels are refused, named at their BINFLOAT. */
    fxo_style s = {.proto = 4, .floats = 1};
    fx_buf b;
    fx_pickle_styled(&b, &x, &s);
    expect_fixture_error_at(&b, offset_of(&b, "(G@\x14\0\0\0\0\0\0G", 11) + 1,
                            "labels[0] is a float, expected an int");
    fx_free(&b);
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(U\x04"
                           "dataG@_S33333U\x06"
                           "labels]u.",
                           "crafted: byte 10: 'data' is a float, expected a numpy array");
    EXPECT_PICKLE_ERROR_IS("\x80\x02G@_S",
                           "crafted: byte 2: BINFLOAT needs 8 bytes but only 3 remain");
    fixture_batch_free(&x);
}
END_TEST

/* BINUNICODE8: every str of a batch and of a meta file. */
START_TEST(test_opcode_binunicode8) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .unicode8 = 1};
        check_styled(&x, s, "\x8d\x06\0\0\0\0\0\0\0labels", 15);
    }
    fx_buf b;
    fxo_style s = {.proto = 4, .unicode8 = 1};
    char names[10][CIFAR_NAME_MAX], err[ERR_LEN];
    fx_meta_styled(&b, official_class_names, 10, &s);
    ck_assert_ptr_nonnull(memmem(b.p, b.n, "\x8d\x04\0\0\0\0\0\0\0bird", 13));
    ck_assert_msg(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err) == 0, "%s",
                  err);
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(names[i], official_class_names[i]);
    fx_free(&b);
    const char *long_names[10];
    memcpy(long_names, official_class_names, sizeof long_names);
    long_names[4] = "a-class-name-of-thirty-two-bytes";
    fx_meta_styled(&b, long_names, 10, &s);
    char want[ERR_LEN];
    snprintf(want, sizeof want, "meta: byte %zu: label_names[4] is not a name of 1..31 bytes",
             offset_of(&b, long_names[4], 32) - 9);
    ck_assert_int_eq(cifar_parse_pickle_meta(b.p, b.n, "meta", names, err, sizeof err), -1);
    ck_assert_str_eq(err, want);
    fx_free(&b);
    EXPECT_PICKLE_ERROR_IS(
        "\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00"
        "ab.",
        "crafted: byte 2: BINUNICODE8 declares 4294967296 bytes but only 3 remain");
    fixture_batch_free(&x);
}
END_TEST

/* NEWOBJ: 'info' is a class instance with its state (BUILD), carried but
 * not used; such an object where the array belongs is refused. */
START_TEST(test_opcode_newobj) {
    fx_batch x = opcode_batch(6);
    for (int k = 0; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .info = FXO_INFO_NEWOBJ};
        check_styled(&x, s, ")\x81", 2);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x02}(U\x04"
                           "datacnumpy\nndarray\n)\x81U\x06"
                           "labels]u.",
                           "crafted: byte 26: 'data' is a object, expected a numpy array");
    EXPECT_PICKLE_ERROR_IS("\x80\x02)\x81.", "crafted: byte 3: NEWOBJ: pickle stack underflow");
    fixture_batch_free(&x);
}
END_TEST

/* NEWOBJ_EX (protocol 4 on): an instance whose __new__ takes keywords. */
START_TEST(test_opcode_newobj_ex) {
    fx_batch x = opcode_batch(6);
    for (int k = 1; k < 3; k++) {
        fxo_style s = {.proto = writer_protos[k], .info = FXO_INFO_NEWOBJ_EX};
        check_styled(&x, s, "s\x92", 2);
        s.unicode8 = s.setitem = 1;
        check_styled(&x, s, "s\x92", 2);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x04)}\x92.", "crafted: byte 4: NEWOBJ_EX: pickle stack underflow");
    EXPECT_PICKLE_ERROR_IS("\x80\x04"
                           "c__main__\nBatchInfo\n)}\x92.",
                           "crafted: byte 24: pickle holds a object, expected a dict");
    fixture_batch_free(&x);
}
END_TEST

/* READONLY_BUFFER: the protocol 5 data buffer made read-only, inside a frame
 * and (30 records, over 64 KiB) outside any. */
START_TEST(test_opcode_readonly_buffer) {
    static const int sizes[2] = {6, 30};
    for (int k = 0; k < 2; k++) {
        fx_batch x = opcode_batch(sizes[k]);
        size_t n = (size_t)sizes[k] * CIFAR_IMAGE_BYTES;
        fxo_style s = {.proto = 5, .readonly = 1};
        fx_buf b;
        fx_pickle_styled(&b, &x, &s);
        uint8_t head[9] = {0x96};
        for (int i = 0; i < 8; i++)
            head[1 + i] = (uint8_t)(n >> (8 * i));
        size_t after = offset_of(&b, head, 9) + 9 + n;
        if (b.p[after] == 0x95) after += 9; /* a new FRAME after a buffer outside one */
        ck_assert_int_eq(b.p[after], 0x98);
        check_batch_roundtrip(&b, &x, 0);
        fx_free(&b);
        fixture_batch_free(&x);
    }
    EXPECT_PICKLE_ERROR_IS("\x80\x05\x98.",
                           "crafted: byte 2: READONLY_BUFFER: pickle stack underflow");
    EXPECT_PICKLE_ERROR_IS("\x80\x05](\x98.",
                           "crafted: byte 4: READONLY_BUFFER: pickle stack underflow");
}
END_TEST

/* ==== the real files ==== */

static Suite *pickle_suite(void) {
    Suite *s = suite_create("pickle");
    TCase *tc;
    tc = tcase_create("opcodes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_opcode_setitem);
    tcase_add_test(tc, test_opcode_dup);
    tcase_add_test(tc, test_opcode_pop);
    tcase_add_test(tc, test_opcode_pop_mark);
    tcase_add_test(tc, test_opcode_long4);
    tcase_add_test(tc, test_opcode_binfloat);
    tcase_add_test(tc, test_opcode_binunicode8);
    tcase_add_test(tc, test_opcode_newobj);
    tcase_add_test(tc, test_opcode_newobj_ex);
    tcase_add_test(tc, test_opcode_readonly_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return tu_run_suite(pickle_suite());
}
