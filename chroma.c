/* The lab mode's colouring: decoding class probabilities into a*b*, the
 * per-lightness baseline, and the scores against the originals. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chroma.h"
#include "lab.h"

/* ==== Decoding ==== */

/* softmax(ln q / T) = q^(1/T) / sum q^(1/T); computed as exp((ln q - ln q_max) / T)
 * so that a small T neither overflows nor loses every class to underflow. */
static void decode_pixel(const float *q, int k, const float (*centres)[3], float temperature,
                         float *ab) {
    int best = 0;
    for (int c = 1; c < k; c++)
        if (q[c] > q[best]) best = c;
    if (temperature == 0 || !(q[best] > 0)) {
        ab[0] = centres[best][0], ab[1] = centres[best][1];
        return;
    }
    double log_max = log((double)q[best]), sum = 0, a = 0, b = 0;
    for (int c = 0; c < k; c++) {
        double w = q[c] > 0 ? exp((log((double)q[c]) - log_max) / temperature) : 0;
        sum += w;
        a += w * centres[c][0];
        b += w * centres[c][1];
    }
    ab[0] = (float)(a / sum), ab[1] = (float)(b / sum);
}

void chroma_decode(const float *prob, size_t pixels, int k, const float (*centres)[3],
                   float temperature, float *ab) {
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++)
        decode_pixel(prob + p * k, k, centres, temperature, ab + 2 * p);
}

void chroma_paint(const float *L, const float *ab, size_t pixels, uint8_t *rgb) {
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        float lab[3] = {L[p], ab[2 * p], ab[2 * p + 1]};
        rgb8_from_lab(lab, rgb + 3 * p);
    }
}

/* ==== The per-lightness baseline ==== */

int chroma_bin(float L) {
    int bin = (int)floorf(L / 5.0f);
    return bin < 0 ? 0 : bin >= CHROMA_BINS ? CHROMA_BINS - 1 : bin;
}

void chroma_lightness_add(chroma_lightness_sums *sums, const uint8_t *bins, const float *lab,
                          const uint8_t *classes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sums->ab[bins[i]][0] += lab[3 * i + 1];
        sums->ab[bins[i]][1] += lab[3 * i + 2];
        sums->votes[bins[i]][classes[i]]++;
    }
}

void chroma_lightness_fit(const chroma_lightness_sums *sums, int k, chroma_by_lightness *model) {
    for (int bin = 0; bin < CHROMA_BINS; bin++) {
        uint64_t count = 0;
        int best = 0;
        for (int c = 0; c < k; c++) {
            count += sums->votes[bin][c];
            if (sums->votes[bin][c] > sums->votes[bin][best]) best = c;
        }
        for (int d = 0; d < 2; d++)
            model->ab[bin][d] = count ? (float)(sums->ab[bin][d] / (double)count) : 0.0f;
        model->class_of[bin] = (uint8_t)best;
    }
}

void chroma_by_lightness_ab(const chroma_by_lightness *model, const float *L, size_t n, float *ab) {
    for (size_t i = 0; i < n; i++) {
        const float *m = model->ab[chroma_bin(L[i])];
        ab[2 * i] = m[0], ab[2 * i + 1] = m[1];
    }
}

/* ==== Scores ==== */

void chroma_tally_add(chroma_tally *t, const float *ab, const uint8_t *rgb, const float *lab,
                      const uint8_t *orig, size_t n) {
    for (size_t p = 0; p < n; p++) {
        double da = ab[2 * p] - lab[3 * p + 1], db = ab[2 * p + 1] - lab[3 * p + 2];
        t->ab_error += sqrt(da * da + db * db);
        t->chroma += sqrt((double)ab[2 * p] * ab[2 * p] + (double)ab[2 * p + 1] * ab[2 * p + 1]);
        for (int c = 0; c < 3; c++) {
            double d = (double)rgb[3 * p + c] - orig[3 * p + c];
            t->sq_error += d * d;
        }
    }
    t->pixels += n;
}

chroma_score chroma_tally_score(const chroma_tally *t) {
    chroma_score s = {NAN, NAN, NAN};
    if (!t->pixels) return s;
    s.ab_error = t->ab_error / (double)t->pixels;
    s.chroma = t->chroma / (double)t->pixels;
    double mse = t->sq_error / (3.0 * (double)t->pixels);
    s.psnr = mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : INFINITY;
    return s;
}

/* ==== A network's colouring of a set of images ==== */

/* Runs the network over the set a batch at a time; for each batch, the
 * chroma of every method asked for (ab[m] non-NULL, batch_cap * hw * 2
 * floats each) and then visit(ctx, first image, images). */
typedef void (*batch_visit)(void *ctx, int first, int B);

static void for_each_batch(network *net, const chroma_set *set, const float (*centres)[3], float t,
                           const chroma_by_lightness *baseline, float *ab[CHROMA_METHODS],
                           batch_visit visit, void *ctx) {
    int cap = nn_batch_capacity(net);
    for (int first = 0; first < set->n; first += cap) {
        int B = set->n - first < cap ? set->n - first : cap;
        size_t n = (size_t)B * set->hw, at = (size_t)first * set->hw;
        nn_forward(net, set->x + at, B);
        const float *prob = nn_output(net);
        chroma_decode(prob, n, nn_classes(net), centres, t, ab[CHROMA_NETWORK]);
        if (ab[CHROMA_ARGMAX])
            chroma_decode(prob, n, nn_classes(net), centres, 0, ab[CHROMA_ARGMAX]);
        if (ab[CHROMA_GRAY]) memset(ab[CHROMA_GRAY], 0, 2 * n * sizeof(float));
        if (ab[CHROMA_BY_LIGHTNESS])
            chroma_by_lightness_ab(baseline, set->L + at, n, ab[CHROMA_BY_LIGHTNESS]);
        visit(ctx, first, B);
    }
}

typedef struct {
    const chroma_set *set;
    float **ab;
    uint8_t *rgb;        /* the colouring: the whole set, or one batch */
    chroma_tally *tally; /* CHROMA_METHODS of them when scoring */
} batch_state;

static void paint_batch(void *ctx, int first, int B) {
    batch_state *s = ctx;
    size_t at = (size_t)first * s->set->hw;
    chroma_paint(s->set->L + at, s->ab[CHROMA_NETWORK], (size_t)B * s->set->hw, s->rgb + 3 * at);
}

void chroma_colour(network *net, const chroma_set *set, const float (*centres)[3], float t,
                   uint8_t *rgb) {
    float *ab[CHROMA_METHODS] = {
        malloc((size_t)nn_batch_capacity(net) * set->hw * 2 * sizeof(float))};
    batch_state s = {set, ab, rgb, NULL};
    if (ab[0])
        for_each_batch(net, set, centres, t, NULL, ab, paint_batch, &s);
    else
        memset(rgb, 0, (size_t)set->n * set->hw * 3);
    free(ab[0]);
}

static void score_batch(void *ctx, int first, int B) {
    batch_state *s = ctx;
    size_t n = (size_t)B * s->set->hw, at = (size_t)first * s->set->hw;
    for (int m = 0; m < CHROMA_METHODS; m++) {
        chroma_paint(s->set->L + at, s->ab[m], n, s->rgb);
        chroma_tally_add(&s->tally[m], s->ab[m], s->rgb, s->set->lab + 3 * at, s->set->rgb + 3 * at,
                         n);
    }
}

int chroma_score_set(network *net, const chroma_set *set, const float (*centres)[3], float t,
                     const chroma_by_lightness *baseline, chroma_score scores[CHROMA_METHODS]) {
    size_t batch = (size_t)nn_batch_capacity(net) * set->hw;
    float *ab[CHROMA_METHODS];
    float *buf = malloc(CHROMA_METHODS * batch * 2 * sizeof(float));
    uint8_t *rgb = malloc(batch * 3);
    chroma_tally tally[CHROMA_METHODS] = {{0}};
    if (!buf || !rgb) {
        free(buf);
        free(rgb);
        return -1;
    }
    for (int m = 0; m < CHROMA_METHODS; m++)
        ab[m] = buf + m * batch * 2;
    batch_state s = {set, ab, rgb, tally};
    for_each_batch(net, set, centres, t, baseline, ab, score_batch, &s);
    for (int m = 0; m < CHROMA_METHODS; m++)
        scores[m] = chroma_tally_score(&tally[m]);
    free(buf);
    free(rgb);
    return 0;
}
