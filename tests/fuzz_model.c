/* libFuzzer target: the model loader (nn_load_buffer, nn_load_forward_buffer,
 * and nn_tile_geometry on what loads, as predict uses them). Each input is tried
 * as it is, where the checksum stops almost every mutation, and then with
 * its last 8 bytes replaced by the checksum of the rest, as nn_save would
 * have written them, so that mutations reach the header, the architecture
 * and the parameters: at the size the file names, with training buffers and
 * for forward passes only as predict loads it (when it is at most 64x64:
 * a network's buffers grow with its input, and a damaged header may name any
 * size up to 65536x65536, which the program would try to allocate; the
 * fuzzer stops at 2 GB), and at 6x10 (a dense layer refuses it, pooling may
 * not divide it). A network that loads runs forward once when it is small.
 * Nothing may crash, leak or read outside the input; a failure is one line
 * that names the file. */
#include "nn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    omp_set_num_threads(1); /* one core per fuzzer */
    return 0;
}

static void run_once(network *net) {
    size_t n = nn_shape_size(nn_input_shape(net)), floats = n;
    for (int i = 0; i < nn_layer_count(net); i++) { /* every layer's output tensor */
        nn_layer_info li;
        nn_layer_describe(net, i, &li);
        floats += nn_shape_size(li.out);
    }
    if (floats > (1u << 20)) return;
    float *x = malloc(n * sizeof *x);
    if (!x) return;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i % 7) - 3.0f;
    nn_forward(net, x, 1);
    free(x);
}

/* Loads at (h, w) with training buffers, or at the file's size for
 * forward passes only as predict does (forward_only), then runs it once. */
static void try_load(const uint8_t *buf, size_t len, int h, int w, int forward_only) {
    network *net;
    nn_model_meta meta;
    char err[512] = "";
    int rc = forward_only
                 ? nn_load_forward_buffer(buf, len, "fuzz.bin", &net, &meta, err, sizeof err)
                 : nn_load_buffer(buf, len, "fuzz.bin", h, w, 1, &net, &meta, err, sizeof err);
    if (rc != 0) {
        /* a failure says why, in one line naming the file, and keeps nothing */
        if (strncmp(err, "fuzz.bin: ", 10) != 0 || strchr(err, '\n') || net) {
            fprintf(stderr, "bad failure: '%s'\n", err);
            abort();
        }
        return;
    }
    if (meta.k != nn_classes(net) || meta.k < 2 || meta.k > NN_MAX_CLASSES || !(meta.std > 0))
        abort();
    if (forward_only) { /* predict asks how to cut a picture into tiles */
        int margin = -1, align = 0;
        char why[256] = "";
        if (nn_tile_geometry(net, &margin, &align, why, sizeof why) == 0
                ? margin < 0 || align < 1
                : !why[0] || strchr(why, '\n'))
            abort();
    }
    run_once(net);
    nn_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy: the fuzzer's own buffer may be longer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    try_load(buf, size, 0, 0, 0);
    if (size >= 8) {
        uint64_t sum = nn_model_checksum(buf, size - 8);
        memcpy(buf + size - 8, &sum, 8);
        uint32_t h = 0, w = 0; /* after "CLRZMODL" and the version */
        if (size >= 20) memcpy(&h, buf + 12, 4), memcpy(&w, buf + 16, 4);
        if ((uint64_t)h * w <= 64 * 64) {
            try_load(buf, size, 0, 0, 0);
            try_load(buf, size, 0, 0, 1);
        }
        try_load(buf, size, 6, 10, 0);
    }
    free(buf);
    return 0;
}
