/* libFuzzer target: the model loader (nn_load_buffer). Each input is tried
 * as it is, where the checksum stops almost every mutation, and then with
 * its last 8 bytes replaced by the checksum of the rest, as nn_save would
 * have written them, so that mutations reach the header, the architecture
 * and the parameters: at the size the file names, and at another (a dense
 * layer refuses it, pooling may not divide it). A network that loads runs
 * forward once when it is small. Nothing may crash, leak or read outside the
 * input; a failure is one line that names the file. */
#include "nn.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* nn_model.c's checksum: FNV-1a, 64 bits. */
static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    omp_set_num_threads(1); /* one core per fuzzer */
    return 0;
}

static void run_once(network *net) {
    size_t floats = 0;
    for (int t = 0; t <= net->n_layers; t++)
        floats += nn_shape_size(net->shapes[t]);
    if (floats > (1u << 20)) return;
    size_t n = nn_shape_size(net->shapes[0]);
    float *x = malloc(n * sizeof *x);
    if (!x) return;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i % 7) - 3.0f;
    nn_forward(net, x, 1);
    free(x);
}

static void try_load(const uint8_t *buf, size_t len, int h, int w) {
    network *net;
    nn_model_meta meta;
    char err[512] = "";
    if (nn_load_buffer(buf, len, "fuzz.bin", h, w, 1, &net, &meta, err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.bin: ", 10) != 0 || strchr(err, '\n') || net)
            abort(); /* a failure says why, in one line naming the file, and keeps nothing */
        return;
    }
    if (meta.k != net->k || meta.k < 2 || meta.k > NN_MAX_CLASSES || !(meta.std > 0)) abort();
    run_once(net);
    nn_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy: the fuzzer's own buffer may be longer. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    try_load(buf, size, 0, 0);
    if (size >= 8) {
        uint64_t sum = fnv1a(buf, size - 8);
        memcpy(buf + size - 8, &sum, 8);
        try_load(buf, size, 0, 0);
        try_load(buf, size, 6, 10);
    }
    free(buf);
    return 0;
}
