/* What the CIFAR and pickle tests share: the fixture batches (every pixel
 * and label a formula of its place), the ways of writing one, and checks that
 * a pickle parses to exactly its batch or fails with a given message. */
#ifndef COLORIZE_TESTS_CIFAR_CHECKS_H
#define COLORIZE_TESTS_CIFAR_CHECKS_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "cifar_fixtures.h"

#define ERR_LEN 512

static const char *const official_class_names[10] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/* The pixel byte j of record i in batch file f: planar, as in the files. */
static inline uint8_t fixture_pixel(int f, int i, int j) {
    return (uint8_t)(f * 37 + i * 13 + j * 7 + (j / CIFAR_PIXELS) * 91);
}

/* Every class turns up in any 10 consecutive records. */
static inline int fixture_label(int f, int i) {
    return (f * 3 + i * 7 + i / 10) % CIFAR_NUM_CLASSES;
}

/* A batch of n records of file f; the caller frees data and labels. */
static inline fx_batch fixture_batch(int f, int n) {
    uint8_t *data = malloc((size_t)n * CIFAR_IMAGE_BYTES + 1);
    int *labels = malloc(sizeof(int) * (size_t)(n + 1));
    ck_assert(data && labels);
    for (int i = 0; i < n; i++) {
        labels[i] = fixture_label(f, i);
        for (int j = 0; j < CIFAR_IMAGE_BYTES; j++)
            data[(size_t)i * CIFAR_IMAGE_BYTES + j] = fixture_pixel(f, i, j);
    }
    fx_batch x = {n, CIFAR_IMAGE_BYTES, data, "u1", 0, n, labels, "training batch 1 of 5"};
    return x;
}

static inline void fixture_batch_free(fx_batch *x) {
    free((void *)x->data);
    free((void *)x->labels);
}

/* The ways a batch pickle gets written: 0 Python 2, else Python 3 protocol w. */
static inline void write_pickle(fx_buf *b, const fx_batch *x, int writer) {
    if (writer == 0)
        fx_pickle_py2(b, x);
    else
        fx_pickle_py3(b, x, writer);
}

static inline int parse_pickle(const fx_buf *b, size_t len, cifar_batch *out, char *err) {
    /* An exact-size copy, so that AddressSanitizer sees any read past the end. */
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, b->p, len);
    int rc = cifar_parse_pickle_batch(copy, len, "fx", out, err, ERR_LEN);
    free(copy); /* out->data may point into it: callers use only n and labels */
    return rc;
}

/* Parses b and checks every row and label against x. */
static inline void check_batch_roundtrip(const fx_buf *b, const fx_batch *x, int expect_owned) {
    char err[ERR_LEN] = "";
    cifar_batch out;
    int rc = cifar_parse_pickle_batch(b->p, b->n, "fx", &out, err, sizeof err);
    ck_assert_msg(rc == 0, "parse failed: %s", err);
    ck_assert_int_eq(out.n, x->rows);
    ck_assert_uint_eq(out.stride, CIFAR_IMAGE_BYTES);
    ck_assert_int_eq(out.owned != NULL, expect_owned);
    if (!expect_owned && out.n > 0)
        ck_assert(out.data > b->p && out.data + (size_t)out.n * CIFAR_IMAGE_BYTES <= b->p + b->n);
    for (int i = 0; i < out.n; i++) {
        ck_assert_int_eq(out.labels[i], x->labels[i]);
        ck_assert(!memcmp(out.data + (size_t)i * out.stride,
                          x->data + (size_t)i * CIFAR_IMAGE_BYTES, CIFAR_IMAGE_BYTES));
    }
    cifar_batch_free(&out);
}

/* Parses an exact-size copy of a crafted pickle named "crafted" (so that
 * AddressSanitizer sees any read past its end); it must fail, owning
 * nothing. err gets the message. */
static inline void expect_crafted_failure(const void *p, size_t len, const char *want, char *err) {
    cifar_batch out;
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, p, len);
    err[0] = 0;
    int rc = cifar_parse_pickle_batch(copy, len, "crafted", &out, err, ERR_LEN);
    free(copy);
    ck_assert_msg(rc == -1, "expected failure '%s'", want);
    ck_assert_ptr_null(out.labels);
    ck_assert_ptr_null(out.owned);
}

/* Parse of a crafted pickle must fail with a message containing want. */
static inline void expect_pickle_error(const void *p, size_t len, const char *want) {
    char err[ERR_LEN];
    expect_crafted_failure(p, len, want, err);
    ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    ck_assert_msg(!strncmp(err, "crafted: ", 9), "error '%s' does not name the file", err);
}

#define EXPECT_PICKLE_ERROR(lit, want) expect_pickle_error(lit, sizeof(lit) - 1, want)

static inline void expect_fixture_error(const fx_batch *x, int writer, const char *want) {
    fx_buf b;
    write_pickle(&b, x, writer);
    expect_pickle_error(b.p, b.n, want);
    fx_free(&b);
}

#endif
