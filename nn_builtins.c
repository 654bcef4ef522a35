/* The built-in architectures: a spec by name, and the learning rate each
 * was measured to train best with. */
#include <string.h>

#include "nn.h"

/* Each with the Adam learning rate measured best for it on the bird images
 * (20 epochs, batch 32, cosine schedule). */
static const struct {
    const char *name, *spec;
    float lr;
} builtins[] = {
    {"default",
     "conv5:16 relu@c1 maxpool:2 conv5:32 relu upsample concat:input,c1,prev "
     "pixel:32 relu pixel:k softmax",
     0.01f},
    {"skip",
     "conv5:32 relu@c1 maxpool:2 conv5:64 relu upsample concat:input,c1,prev "
     "pixel:64 relu pixel:k softmax",
     0.003f},
    {"pixel", "conv5:64 relu maxpool:1 conv5:64 relu maxpool:1 pixel:32 relu pixel:k softmax",
     0.003f},
    {"dense", "conv5:32 relu maxpool:2 conv5:64 relu maxpool:2 dense:512 relu dense:1024*k softmax",
     0.001f},
    /* The Lab mode's default: skip's shape, narrower (conv5:32 and pixel:32 where skip has 64):
     * measured, its colouring is as good as skip's at 40 % of the work (README) */
    {"chroma",
     "conv5:32 relu@c1 maxpool:2 conv5:32 relu upsample concat:input,c1,prev "
     "pixel:32 relu pixel:k softmax",
     0.003f},
};

enum { N_BUILTINS = sizeof builtins / sizeof builtins[0] };

const char *nn_builtin_spec(const char *name) {
    for (int i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name) == 0) return builtins[i].spec;
    return NULL;
}

float nn_builtin_lr(const char *name_or_spec) {
    for (int i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name_or_spec) == 0 ||
            strcmp(builtins[i].spec, name_or_spec) == 0)
            return builtins[i].lr;
    return 0.01f;
}

const char *nn_builtin_names(void) {
    return "default, skip, pixel, dense, chroma";
}
