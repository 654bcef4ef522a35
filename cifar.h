/* CIFAR-10 in, the chosen classes' images out.
 *
 * Reads a dataset folder in either official layout, detected from its
 * contents:
 *   cifar-10-batches-py:  data_batch_1..5, test_batch, batches.meta
 *                         (pickles: Python 2 cPickle protocol 2 as shipped,
 *                         or re-saved by Python 3 + numpy at protocols 2..5)
 *   cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin, batches.meta.txt
 * One batch file is read at a time and only the chosen classes are kept. */
#ifndef COLORIZE_CIFAR_H
#define COLORIZE_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#define CIFAR_SIDE        32
#define CIFAR_PIXELS      (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_IMAGE_BYTES (3 * CIFAR_PIXELS)
#define CIFAR_NUM_CLASSES 10
#define CIFAR_NUM_FILES   6 /* data_batch_1..5, then test_batch */
#define CIFAR_NAME_MAX    32

typedef enum { CIFAR_LAYOUT_PY, CIFAR_LAYOUT_BIN } cifar_layout;

typedef struct {
    cifar_layout layout;
    char class_names[CIFAR_NUM_CLASSES][CIFAR_NAME_MAX]; /* from the meta file when present */
    char file_names[CIFAR_NUM_FILES][CIFAR_NAME_MAX]; /* "data_batch_1" or "data_batch_1.bin"... */
    int file_records[CIFAR_NUM_FILES];                /* records in each file */
    int train_class_counts[CIFAR_NUM_CLASSES];        /* over data_batch_1..5 */
    int test_class_counts[CIFAR_NUM_CLASSES];         /* over test_batch */

    int n_classes;                        /* how many classes are chosen, 1..10 */
    int class_indices[CIFAR_NUM_CLASSES]; /* the chosen ones, ascending, 0..9 */
    /* Images of the chosen classes: training (validation excluded), validation, test. */
    int n_train, n_val, n_test;

    /* One allocation holding every kept image, (n_train + n_val + n_test, 32, 32, 3),
     * interleaved RGB, row-major: training images in file order (data_batch_1..5),
     * of which the last n_val are the validation set, then the test images in
     * file order. The chosen classes are interleaved as the files have them.
     * train and test point into it. */
    uint8_t *pixels;
    uint8_t *train; /* = pixels; n_train + n_val images */
    uint8_t *test;  /* = pixels + (n_train + n_val) * CIFAR_IMAGE_BYTES */
} cifar_dataset;

/* What cifar_load returns when class_spec is not a valid choice of classes
 * (a usage error, not a damaged file). */
#define CIFAR_BAD_CLASS (-2)

/* Loads the classes chosen by class_spec from dir, keeping the last n_val
 * training images for validation. class_spec is "all" (any case), or a comma
 * list of class names (any case) and numbers 0..9, each class once: "bird",
 * "2", "bird,cat", "cat,2"; NULL means "bird". On failure returns -1 (or
 * CIFAR_BAD_CLASS, with the bad item named) with a one-line message naming
 * the file (and the byte offset for a format error) in err; ds then owns
 * nothing. */
int cifar_load(const char *dir, const char *class_spec, int n_val, cifar_dataset *ds, char *err,
               size_t errlen);
void cifar_free(cifar_dataset *ds);

/* Whether class c (0..9) is one of ds's chosen classes. */
int cifar_class_chosen(const cifar_dataset *ds, int c);

/* Enough for any of the names below. */
#define CIFAR_CHOICE_MAX 384
/* The chosen classes in words, written into buf (len bytes, CIFAR_CHOICE_MAX
 * is always enough) and returned. cifar_choice_name: "bird", "bird+cat",
 * "all classes". cifar_choice_label adds the numbers: "bird (class 2)",
 * "bird+cat (classes 2, 3)", "all classes (0..9)". */
const char *cifar_choice_name(const cifar_dataset *ds, char *buf, size_t len);
const char *cifar_choice_label(const cifar_dataset *ds, char *buf, size_t len);
const char *
cifar_layout_name(cifar_layout layout); /* "cifar-10-batches-py" or "cifar-10-batches-bin" */

/* One batch parsed from memory (tests and the fuzzer use this directly).
 * data points into the caller's buffer: n rows of 3072 bytes, R plane, G
 * plane, B plane, exactly as in the files. labels is owned by the batch.
 * Row i starts at data + i * stride: stride is 3072 in pickles and 3073 in
 * .bin files, whose rows are each preceded by their label byte. A pickle
 * written by Python 3 at protocol 2 stores bytes as latin-1 text; then the
 * rows are decoded into owned, which the batch frees, and data points there. */
typedef struct {
    int n;
    const uint8_t *data;
    uint8_t *labels;
    size_t stride;
    uint8_t *owned;
} cifar_batch;

/* name is used only in error messages. */
int cifar_parse_pickle_batch(const uint8_t *buf, size_t len, const char *name, cifar_batch *out,
                             char *err, size_t errlen);
int cifar_parse_bin_batch(const uint8_t *buf, size_t len, const char *name, cifar_batch *out,
                          char *err, size_t errlen);
/* batches.meta pickle: label_names, 10 of them. */
int cifar_parse_pickle_meta(const uint8_t *buf, size_t len, const char *name,
                            char names[CIFAR_NUM_CLASSES][CIFAR_NAME_MAX], char *err,
                            size_t errlen);
void cifar_batch_free(cifar_batch *b);

#endif
