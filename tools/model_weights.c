/* model_weights IN OUT: the model file IN (a run's model.bin) without its
 * optimiser state, as OUT (format version 5, a third of the size): what
 * `make model` keeps as models/builtin.bin, enough to colour with. The
 * weights, palette, standardisation and settings are IN's, bit for bit. */
#include <stdio.h>

#include "nn.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: model_weights IN OUT\n");
        return 2;
    }
    char err[512];
    network *net;
    nn_model_meta meta;
    if (nn_load(argv[1], 0, 0, 1, &net, &meta, err, sizeof err) != 0 ||
        nn_save_weights(net, &meta, argv[2], err, sizeof err) != 0) {
        fprintf(stderr, "model_weights: %s\n", err);
        return 1;
    }
    nn_free(net);
    return 0;
}
