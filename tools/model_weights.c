/* model_weights IN OUT [T]: the model file IN (a run's model.bin) without
 * its optimiser state, as OUT (format version 5, a third of the size): what
 * `make model` keeps as models/builtin.bin, enough to colour with. The
 * weights, palette, standardisation and settings are IN's, bit for bit,
 * but for the Lab decoding's default temperature when T is given (it is
 * chosen on photographs after training, and training does not read it). */
#include <stdio.h>
#include <stdlib.h>

#include "nn.h"

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: model_weights IN OUT [TEMPERATURE]\n");
        return 2;
    }
    char err[512], *end = NULL;
    double t = argc == 4 ? strtod(argv[3], &end) : 0;
    if (argc == 4 && (*end || end == argv[3] || !(t >= 0 && t <= 1e6))) {
        fprintf(stderr, "model_weights: '%s' is not a temperature\n", argv[3]);
        return 2;
    }
    network *net;
    nn_model_meta meta;
    if (nn_load(argv[1], 0, 0, 1, &net, &meta, err, sizeof err) != 0) {
        fprintf(stderr, "model_weights: %s\n", err);
        return 1;
    }
    if (argc == 4) meta.temperature = (float)t;
    int rc = nn_save_weights(net, &meta, argv[2], err, sizeof err);
    if (rc != 0) fprintf(stderr, "model_weights: %s\n", err);
    nn_free(net);
    return rc ? 1 : 0;
}
