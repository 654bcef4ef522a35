/* libFuzzer target: every parser in cifar.c on the same bytes. Nothing may
 * crash, leak or read outside the input; on success the rows and labels must
 * lie where the parser says. */
#include "cifar.h"

#include <stdlib.h>
#include <string.h>

static void touch_batch(const cifar_batch *b) {
    volatile unsigned sum = 0;
    for (int i = 0; i < b->n; i++) {
        if (b->labels[i] >= CIFAR_NUM_CLASSES) abort();
        sum +=
            b->data[(size_t)i * b->stride] + b->data[(size_t)i * b->stride + CIFAR_IMAGE_BYTES - 1];
    }
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy: the fuzzer's own buffer may be longer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    cifar_batch b;
    if (cifar_parse_pickle_batch(buf, size, "fuzz", &b, err, sizeof err) == 0) {
        touch_batch(&b);
        cifar_batch_free(&b);
    } else if (!err[0])
        abort(); /* a failure always says why */
    if (cifar_parse_bin_batch(buf, size, "fuzz.bin", &b, err, sizeof err) == 0) {
        touch_batch(&b);
        cifar_batch_free(&b);
    }
    char names[CIFAR_NUM_CLASSES][CIFAR_NAME_MAX];
    if (cifar_parse_pickle_meta(buf, size, "meta", names, err, sizeof err) == 0)
        for (int i = 0; i < CIFAR_NUM_CLASSES; i++)
            if (!names[i][0] || strlen(names[i]) >= CIFAR_NAME_MAX) abort();
    free(buf);
    return 0;
}
