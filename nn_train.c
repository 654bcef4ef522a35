/* Training and evaluation: the optimisers (Adam, SGD with momentum) and the
 * learning-rate schedule, the loss's class weights, the epoch loop and its
 * flips, scoring a set of images, and the trainable state copied out and back.
 *
 * Every sum runs in a fixed order and every output has one owner, so a run
 * is bit-identical for a seed whatever the number of OpenMP threads. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"
#include "nn_layer.h"
#include "simd/softmax.h"
#include "util.h"

/* ==== Optimisers ==== */

float nn_schedule_lr(const nn_optim_config *cfg, long t, long total) {
    if (cfg->schedule == SCHED_CONSTANT || total <= 0) return cfg->lr;
    double progress = (double)t / (double)total;
    if (progress > 1) progress = 1;
    return (float)(cfg->lr * 0.5 * (1.0 + cos(M_PI * progress)));
}

/* The check of the new weights rides along in the update's own pass rather
 * than taking another pass over them. */
int nn_update(network *net, const nn_optim_config *cfg, float lr) {
    net->step++;
    float *p = net->params, *g = net->grads, *m = net->opt_m, *v = net->opt_v;
    long n = (long)net->n_params;
    int bad = 0;
    if (cfg->optimizer == OPT_SGD) {
        float mu = cfg->momentum;
#pragma omp parallel for schedule(static) reduction(| : bad)
        for (long j = 0; j < n; j++) {
            m[j] = mu * m[j] + g[j];
            p[j] -= lr * m[j];
            bad |= !(fabsf(p[j]) <= FLT_MAX);
        }
        return !bad;
    }
    float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)net->step));
    float c2 = 1.0f / (1.0f - powf(b2, (float)net->step));
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (long j = 0; j < n; j++) {
        m[j] = b1 * m[j] + (1 - b1) * g[j];
        v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
        p[j] -= lr * (m[j] * c1) / (sqrtf(v[j] * c2) + eps);
        bad |= !(fabsf(p[j]) <= FLT_MAX);
    }
    return !bad;
}

/* ==== Class weights ==== */

/* Computed as 1 / ((1 - lambda) k p + lambda), k times the formula: the
 * scale goes with the normalisation, and lambda = 1 gives exactly 1. */
int nn_class_weights(const uint64_t *counts, int k, double lambda, float *weights, char *err,
                     size_t errlen) {
    if (k < 1 || k > NN_MAX_CLASSES)
        return set_error(err, errlen, "class weights for %d classes: 1 to %d only", k,
                         NN_MAX_CLASSES);
    if (!(lambda >= 0 && lambda <= 1))
        return set_error(err, errlen, "the rebalancing lambda %g is outside [0, 1]", lambda);
    uint64_t total = 0;
    for (int c = 0; c < k; c++)
        total += counts[c];
    if (total == 0) return set_error(err, errlen, "class weights: no pixels counted");
    double raw[NN_MAX_CLASSES], mean = 0;
    for (int c = 0; c < k; c++) {
        double share = (double)counts[c] / (double)total;
        double inverse = (1 - lambda) * k * share + lambda;
        raw[c] = inverse > 0 ? 1 / inverse : 0; /* 0: an absent class, lambda 0 */
        mean += (double)counts[c] * raw[c];
    }
    mean /= (double)total;
    for (int c = 0; c < k; c++)
        weights[c] = (float)(raw[c] / mean);
    return 0;
}

void nn_set_class_weights(network *net, const float *weights) {
    net->weighted = weights != NULL;
    memset(net->class_weights, 0, sizeof net->class_weights);
    if (weights) memcpy(net->class_weights, weights, (size_t)net->k * sizeof(float));
}

/* ==== Training ==== */

/* The flips' own seed is drawn from the run's, so that their stream shares
 * nothing with the shuffles', which are seeded from seed ^ (golden * epoch). */
void nn_draw_flips(uint64_t seed, int epoch, int n, uint8_t *flip) {
    rng_state rng;
    rng_seed(&rng, seed ^ 0x666c697073ull); /* "flips" */
    rng_seed(&rng, rng_next(&rng) ^ (0x9e3779b97f4a7c15ull * (uint64_t)epoch));
    for (int i = 0; i < n; i++)
        flip[i] = (uint8_t)(rng_next(&rng) >> 63);
}

/* Image idx of x and its targets into batch slot b, mirrored left to right
 * when flipped. */
static void gather_image(network *net, int b, const float *x, const uint8_t *targets, int idx,
                         int flipped) {
    int h = net->shapes[0].h, w = net->shapes[0].w;
    size_t hw = (size_t)h * w;
    const float *from = x + (size_t)idx * hw;
    const uint8_t *from_t = targets + (size_t)idx * hw;
    float *to = net->act[0] + b * hw;
    uint8_t *to_t = net->batch_targets + b * hw;
    if (!flipped) {
        memcpy(to, from, hw * sizeof(float));
        memcpy(to_t, from_t, hw);
        return;
    }
    for (int y = 0; y < h; y++)
        for (int c = 0; c < w; c++) {
            to[y * w + c] = from[y * w + w - 1 - c];
            to_t[y * w + c] = from_t[y * w + w - 1 - c];
        }
}

static int all_finite(const float *a, size_t n) {
    int ok = 1;
#pragma omp parallel for schedule(static) reduction(&& : ok)
    for (size_t j = 0; j < n; j++)
        ok = ok && isfinite(a[j]);
    return ok;
}

/* Ends an epoch early at optimiser step `step`: what stopped being finite. */
static double diverged(int done, int *images_done, long step, const char *what, char *err,
                       size_t errlen) {
    *images_done = done;
    set_error(err, errlen, "training diverged at step %ld: %s", step, what);
    return NAN;
}

double nn_train_epoch(network *net, const float *x, const uint8_t *targets, const int *order,
                      const uint8_t *flip, int n, int batch, const nn_optim_config *cfg,
                      long total_steps, volatile sig_atomic_t *stop, nn_progress_fn progress,
                      void *ctx, int *images_done, char *err, size_t errlen) {
    double loss_sum = 0;
    int done = 0, batches = 0;
    if (batch > net->batch_cap) batch = net->batch_cap;
    while (done < n && !(stop && *stop)) {
        int B = n - done < batch ? n - done : batch;
        for (int b = 0; b < B; b++) {
            int idx = order[done + b];
            gather_image(net, b, x, targets, idx, flip && flip[idx]);
        }
        nn_forward(net, net->act[0], B);
        double loss = nn_backward(net, net->batch_targets, B);
        long step = net->step + 1;
        if (!isfinite(loss)) {
            char what[64];
            snprintf(what, sizeof what, "the loss is %g", loss);
            return diverged(done, images_done, step, what, err, errlen);
        }
        if (!all_finite(net->grads, net->n_params))
            return diverged(done, images_done, step, "a gradient is no longer finite", err, errlen);
        if (!nn_update(net, cfg, nn_schedule_lr(cfg, net->step - cfg->first_step, total_steps)))
            return diverged(done, images_done, step,
                            "a weight is no longer finite (learning rate too high?)", err, errlen);
        loss_sum += loss;
        batches++;
        done += B;
        if (progress) progress(ctx, done, n);
    }
    *images_done = done;
    return batches ? loss_sum / batches : 0.0;
}

/* ==== Evaluation ==== */

void nn_evaluate(network *net, const float *x, const uint8_t *targets, int n, nn_score *score,
                 uint8_t *classes) {
    int k = net->k, hw = net->shapes[0].h * net->shapes[0].w;
    const float *prob = net->act[net->n_layers];
    double loss = 0;
    long wrong = 0;
    for (int first = 0; first < n; first += net->batch_cap) {
        int B = n - first < net->batch_cap ? n - first : net->batch_cap;
        nn_forward(net, x + (size_t)first * hw, B);
        /* Image by image; the losses are added in image order, the counts
         * of wrong pixels are integers. */
#pragma omp parallel for schedule(static) reduction(+ : wrong)
        for (int b = 0; b < B; b++) {
            const float *q = prob + (size_t)b * hw * k;
            size_t at = ((size_t)first + b) * hw;
            for (int p = 0; p < hw; p++) {
                int best = 0;
                for (int c = 1; c < k; c++)
                    best = q[p * k + c] > q[p * k + best] ? c : best;
                if (targets) wrong += best != targets[at + p];
                if (classes) classes[at + p] = (uint8_t)best;
            }
            net->image_loss[b] = targets ? xent_pixels(q, targets + at, (size_t)hw, k, NULL) : 0;
        }
        for (int b = 0; b < B; b++)
            loss += net->image_loss[b];
    }
    /* An empty set has no error rate: NAN, which the plot skips. */
    score->error = n ? (double)wrong / ((double)n * hw) : NAN;
    score->loss = n ? loss / ((double)n * hw) : NAN;
}

/* ==== The trainable state ==== */

size_t nn_state_floats(const network *net) {
    return 3 * net->n_params;
}

void nn_state_save(const network *net, float *state, long *step) {
    size_t n = net->n_params;
    memcpy(state, net->params, n * sizeof(float));
    memcpy(state + n, net->opt_m, n * sizeof(float));
    memcpy(state + 2 * n, net->opt_v, n * sizeof(float));
    *step = net->step;
}

void nn_state_restore(network *net, const float *state, long step) {
    size_t n = net->n_params;
    net->step = step;
    memcpy(net->params, state, n * sizeof(float));
    memcpy(net->opt_m, state + n, n * sizeof(float));
    memcpy(net->opt_v, state + 2 * n, n * sizeof(float));
}
