/* Colouring pictures with a trained model (predict.h): pictures cut into
 * tiles that threads colour at once, each thread with its own forward-only
 * network over the model's weights. */
#include "predict.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma.h"
#include "guided.h"
#include "lab.h"
#include "report.h"
#include "resample.h"
#include "util.h"

enum {
    WINDOW_MAX = 256,  /* a tile window's largest side: larger ones (measured up to 512)
                          save margin but lose more to cache misses */
    WINDOW_LEAST = 32, /* and its smallest, unless the margin asks for more */
    BAND_ROWS = 32,    /* rows of a resized Lab picture painted per task */
};

struct predict_model {
    network *net; /* forward-only, at the training size: the weights every tile reads */
    nn_model_meta meta;
    int train_h, train_w;
    int fixed;            /* a dense layer fixes the size: the training size only */
    int multiple;         /* what the sides are padded to: the pooling's product */
    int tiles;            /* whether it runs in tiles (nn_tile_geometry) */
    int margin, align;    /* nn_tile_geometry's */
    float lightness[256]; /* L* of each gray byte: lab_lightness_of_gray costs three pow */
    uint8_t colours[NN_MAX_CLASSES][3]; /* RGB: each class's colour, as palette_paint rounds it */
};

/* ==== Lightness ==== */

/* L* of the pixels x0..x0+n-1 of row y, from the table of gray bytes when
 * the picture is 8-bit gray (the same floats: the same function of the same
 * byte). */
static void lightness_span(const predict_model *m, const image *in, int y, int x0, int n,
                           float *L) {
    size_t at = (size_t)y * in->width + x0;
    if (in->channels == 1 && in->depth != 16) {
        for (int i = 0; i < n; i++)
            L[i] = m->lightness[in->pixels[at + i]];
        return;
    }
    picture_gray_span(in, y, x0, n, L);
    for (int i = 0; i < n; i++)
        L[i] = lab_lightness_of_gray(L[i]);
}

/* ==== The model ==== */

void predict_default_options(predict_options *opt) {
    *opt = (predict_options){
        .temperature = -1, .scale = -1, .threads = 0, .guide = 1, .window = 0, .margin = -1};
}

/* predict_model_load from the file at path, or from its bytes (data, len)
 * when data is given (path then names them in errors). */
static int model_load(const char *path, const uint8_t *data, size_t len, const predict_options *opt,
                      predict_model **out, char *err, size_t errlen) {
    *out = NULL;
    predict_model *m = calloc(1, sizeof *m);
    if (!m) return set_error(err, errlen, "out of memory");
    if ((data ? nn_load_forward_buffer(data, len, path, &m->net, &m->meta, err, errlen)
              : nn_load_forward(path, &m->net, &m->meta, err, errlen)) != 0) {
        free(m);
        return -1;
    }
    if (m->meta.space == SPACE_RGB && (opt->temperature >= 0 || opt->scale >= 0)) {
        predict_model_free(m);
        return set_error(err, errlen,
                         "%s: an RGB model has no --temperature or --scale (they are for Lab "
                         "models)",
                         path);
    }
    const char *spec = nn_spec(m->net);
    m->train_h = nn_input_shape(m->net).h, m->train_w = nn_input_shape(m->net).w;
    m->fixed = nn_fixes_input_size(spec, m->train_h, m->train_w, m->meta.k);
    m->multiple = m->fixed ? 1 : nn_side_multiple(spec, m->train_h, m->train_w, m->meta.k);
    m->tiles = !m->fixed && nn_tile_geometry(m->net, &m->margin, &m->align, NULL, 0) == 0;
    for (int b = 0; b < 256; b++)
        m->lightness[b] = lab_lightness_of_gray(b / 255.0f);
    for (uint8_t c = 0; c < m->meta.k; c++)
        palette_paint(&c, 1, m->meta.centres, m->colours[c]);
    *out = m;
    return 0;
}

int predict_model_load(const char *path, const predict_options *opt, predict_model **out, char *err,
                       size_t errlen) {
    return model_load(path, NULL, 0, opt, out, err, errlen);
}

int predict_model_load_buffer(const uint8_t *data, size_t len, const char *name,
                              const predict_options *opt, predict_model **out, char *err,
                              size_t errlen) {
    return model_load(name, data, len, opt, out, err, errlen);
}

void predict_model_free(predict_model *m) {
    if (!m) return;
    nn_free(m->net);
    free(m);
}

/* ==== The plan: windows as large as the memory budget allows ==== */

static int round_up(int n, int multiple) {
    return (n + multiple - 1) / multiple * multiple;
}

static size_t window_bytes(const predict_model *m, int side) {
    return nn_forward_bytes(nn_spec(m->net), side, side, m->meta.k);
}

/* The largest side from least to WINDOW_MAX, a multiple of align, whose
 * network fits in `bytes`; 0 if none does. */
static int largest_window(const predict_model *m, int align, int least, size_t bytes) {
    int lo = least / align, hi = WINDOW_MAX / align; /* in units of align */
    if (hi < lo) hi = lo;
    if (window_bytes(m, lo * align) > bytes) return 0;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (window_bytes(m, mid * align) <= bytes)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo * align;
}

void predict_plan(const predict_model *m, const predict_options *opt, predict_tile_plan *p) {
    int threads = opt->threads > 0 ? opt->threads : omp_get_max_threads();
    *p = (predict_tile_plan){.tiles = m->tiles, .threads = threads, .workers = threads, .align = 1};
    if (!m->tiles) return; /* one window, the whole picture */
    p->align = m->align;
    p->margin = opt->margin >= 0 ? opt->margin : m->margin;
    /* a window keeps at least align pixels a side */
    int least = round_up(2 * p->margin + p->align, p->align);
    if (opt->window > 0) {
        p->window = round_up(opt->window > least ? opt->window : least, p->align);
    } else {
        int smallest =
            round_up(4 * p->margin > WINDOW_LEAST ? 4 * p->margin : WINDOW_LEAST, p->align);
        if (smallest < least) smallest = least;
        p->window = largest_window(m, p->align, smallest, PREDICT_NET_BUDGET / threads);
        if (!p->window) { /* too many threads for the budget: fewer networks */
            size_t each = window_bytes(m, smallest);
            p->workers = each ? (int)(PREDICT_NET_BUDGET / each) : 1;
            if (p->workers < 1) p->workers = 1;
            p->window = largest_window(m, p->align, smallest, PREDICT_NET_BUDGET / p->workers);
            if (!p->window) p->window = smallest;
        }
    }
    p->net_bytes = window_bytes(m, p->window);
}

/* ==== Pictures as jobs, cut into tiles ==== */

/* What a tile does with the probabilities of the outputs it keeps. */
typedef enum {
    PAINT_CLASSES, /* RGB: each pixel its class's palette colour */
    PAINT_CHROMA,  /* Lab, one pass at the picture's size: the decoded chroma with its lightness */
    KEEP_PROBABILITIES, /* Lab passes at other sizes or mirrored, and predict_probabilities */
} tile_sink;

/* One pass of the network over a picture: the picture itself (RGB, or Lab
 * at its own size), or a Lab picture's resized and perhaps mirrored plane. */
typedef struct {
    const image *in;
    uint8_t *rgb; /* PAINT_*: the colouring, (in->height, in->width, 3) */
    tile_sink sink;
    /* The plane the network sees: the picture's own gray values (plane
     * NULL: made from its bytes as the tiles need them), or a pass's copy. */
    const float *plane;
    int h, w;         /* its size */
    int ph, pw;       /* padded to the pooling's multiple */
    int win_h, win_w; /* every tile's window */
    int rows, cols;   /* tiles */
    int mirror;       /* the plane is the picture mirrored left to right */
    float *small;     /* a pass's plane (owned) */
    float *prob;      /* KEEP_PROBABILITIES: (h, w, k), owned unless predict_probabilities' */
    float temperature;
    int failed;
    char *err;
    size_t errlen;
} job;

/* The first failure of a job is its message; tiles of one job may fail at once. */
static void job_fail(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_fail(job *j, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
#pragma omp critical(predict_job_fail)
    if (!j->failed) {
        j->failed = 1;
        if (j->err && j->errlen) vsnprintf(j->err, j->errlen, fmt, ap);
    }
    va_end(ap);
}

/* The tiles along an axis of P padded pixels with windows of `side`: one
 * when the window covers it, else enough for each to keep at most
 * side - 2 margin pixels (whole multiples of align). */
static int tiles_along(int P, int side, int margin, int align) {
    if (P <= side) return 1;
    int keep = (side - 2 * margin) / align * align;
    return (P + keep - 1) / keep;
}

/* Tile i of n along an axis: it keeps [keep0, keep1), an even share of the
 * P pixels on the align grid, and its window of `side` starts `margin`
 * before that, or is pushed back inside the picture, where the picture's own
 * edge bounds the whole computation too. */
typedef struct {
    int keep0, keep1, start;
} tile_span;

static tile_span span_of(int P, int side, int margin, int align, int n, int i) {
    int units = P / align;
    tile_span t = {(int)((long)units * i / n) * align, (int)((long)units * (i + 1) / n) * align, 0};
    t.start = t.keep0 - margin;
    if (t.start > P - side) t.start = P - side;
    if (t.start < 0) t.start = 0;
    return t;
}

static void place_tiles(const predict_model *m, const predict_tile_plan *plan, job *j) {
    j->ph = round_up(j->h, m->multiple), j->pw = round_up(j->w, m->multiple);
    j->rows = j->cols = 1;
    j->win_h = j->ph, j->win_w = j->pw;
    if (m->fixed && (j->ph != m->train_h || j->pw != m->train_w)) {
        job_fail(j, "this network has a dense layer and accepts %dx%d images only", m->train_w,
                 m->train_h);
        return;
    }
    if (!plan->tiles) return; /* one window: the whole picture */
    if (j->win_h > plan->window) j->win_h = plan->window;
    if (j->win_w > plan->window) j->win_w = plan->window;
    j->rows = tiles_along(j->ph, j->win_h, plan->margin, plan->align);
    j->cols = tiles_along(j->pw, j->win_w, plan->margin, plan->align);
}

/* What a job needs before its tiles run: a picture's colouring's memory,
 * or a pass's plane (the picture resized to (sh, sw), mirrored if asked)
 * and its probabilities. */
static void start_job(const predict_model *m, const predict_tile_plan *plan,
                      const predict_options *opt, job *j, image *out, int sh, int sw) {
    const image *in = j->in;
    int H = in->height, W = in->width;
    j->h = H, j->w = W;
    j->temperature = opt->temperature >= 0 ? opt->temperature : m->meta.temperature;
    if (out) {
        *out = (image){.width = W, .height = H, .channels = 3, .pixels = malloc((size_t)3 * H * W)};
        if (!out->pixels) {
            job_fail(j, "out of memory for a %dx%d picture", W, H);
            return;
        }
        j->rgb = out->pixels;
    }
    if (sh > 0) {
        size_t n = (size_t)sh * sw;
        j->h = sh, j->w = sw;
        j->plane = j->small = malloc(n * sizeof(float));
        j->prob = malloc(n * m->meta.k * sizeof(float));
        if (!j->small || !j->prob || resize_area_of_picture(in, j->small, sh, sw) != 0) {
            job_fail(j, "out of memory for a %dx%d picture", W, H);
            return;
        }
        for (int y = 0; j->mirror && y < sh; y++)
            for (int x = 0, z = sw - 1; x < z; x++, z--) {
                float t = j->small[(size_t)y * sw + x];
                j->small[(size_t)y * sw + x] = j->small[(size_t)y * sw + z];
                j->small[(size_t)y * sw + z] = t;
            }
    }
    place_tiles(m, plan, j);
}

/* The network's input for the window at (y0, x0): the plane padded by
 * repeating its last row and column, standardised. buf holds win_w floats. */
static void fill_window(const predict_model *m, const job *j, int y0, int x0, float *x,
                        float *buf) {
    int xa = x0 < j->w ? x0 : j->w - 1, xb = x0 + j->win_w < j->w ? x0 + j->win_w : j->w;
    for (int r = 0; r < j->win_h; r++) {
        int y = y0 + r < j->h ? y0 + r : j->h - 1;
        const float *row = j->plane ? j->plane + (size_t)y * j->w + xa : buf;
        if (!j->plane) picture_gray_span(j->in, y, xa, xb - xa, buf);
        float *dst = x + (size_t)r * j->win_w;
        for (int c = 0; c < j->win_w; c++) {
            int xx = x0 + c < j->w ? x0 + c : j->w - 1;
            dst[c] = (row[xx - xa] - m->meta.mean) / m->meta.std;
        }
    }
}

/* The n outputs kept from (y, x0) on, q their (n, k) probabilities, go
 * where the job wants them. buf holds 3 n floats. */
static void keep_row(const predict_model *m, job *j, int y, int x0, int n, const float *q,
                     float *buf) {
    int k = m->meta.k;
    const float(*centres)[3] = (const float(*)[3])m->meta.centres;
    size_t at = (size_t)y * j->w + x0;
    switch (j->sink) {
    case PAINT_CLASSES:
        for (int p = 0; p < n; p++) {
            const float *qp = q + (size_t)p * k;
            int best = 0;
            for (int c = 1; c < k; c++)
                best = qp[c] > qp[best] ? c : best;
            memcpy(j->rgb + 3 * (at + p), m->colours[best], 3);
        }
        break;
    case PAINT_CHROMA: {
        float *ab = buf, *L = buf + 2 * (size_t)n;
        chroma_decode(q, (size_t)n, k, centres, j->temperature, ab);
        lightness_span(m, j->in, y, x0, n, L);
        chroma_paint(L, ab, (size_t)n, j->rgb + 3 * at);
        break;
    }
    case KEEP_PROBABILITIES: memcpy(j->prob + at * k, q, (size_t)n * k * sizeof(float)); break;
    }
}

/* Tile t of job j on this thread's network *net, made again when the
 * job's windows are of another size than its last. */
static int run_tile(const predict_model *m, const predict_tile_plan *plan, job *j, int t,
                    network **net, char *err, size_t errlen) {
    tile_span sy = span_of(j->ph, j->win_h, plan->margin, plan->align, j->rows, t / j->cols);
    tile_span sx = span_of(j->pw, j->win_w, plan->margin, plan->align, j->cols, t % j->cols);
    if (!*net || nn_input_shape(*net).h != j->win_h || nn_input_shape(*net).w != j->win_w) {
        nn_free(*net);
        if (nn_create_forward(nn_spec(m->net), j->win_h, j->win_w, m->meta.k, nn_params(m->net),
                              net, err, errlen) != 0)
            return -1;
    }
    float *buf = malloc(3 * (size_t)j->win_w * sizeof(float));
    if (!buf) return set_error(err, errlen, "out of memory for a tile");
    fill_window(m, j, sy.start, sx.start, nn_input(*net), buf);
    nn_forward(*net, nn_input(*net), 1);
    const float *prob = nn_output(*net);
    int y1 = sy.keep1 < j->h ? sy.keep1 : j->h, x1 = sx.keep1 < j->w ? sx.keep1 : j->w;
    for (int y = sy.keep0; y < y1 && sx.keep0 < x1; y++) {
        size_t at = (size_t)(y - sy.start) * j->win_w + (sx.keep0 - sx.start);
        keep_row(m, j, y, sx.keep0, x1 - sx.keep0, prob + at * m->meta.k, buf);
    }
    free(buf);
    return 0;
}

typedef struct {
    int job, part;
} task;

/* Every tile of every job that has not failed, one tile per thread at a
 * time. The layers' own parallel loops are nested inside this one, which
 * OpenMP runs on one thread (nesting is off unless OMP_MAX_ACTIVE_LEVELS
 * asks for it): the tiles are the parallel work. */
static void run_tiles(const predict_model *m, const predict_tile_plan *plan, job *jobs, int n) {
    int n_tasks = 0;
    for (int i = 0; i < n; i++)
        n_tasks += jobs[i].failed ? 0 : jobs[i].rows * jobs[i].cols;
    task *tasks = malloc(sizeof(task) * (size_t)(n_tasks ? n_tasks : 1));
    if (!tasks) {
        for (int i = 0; i < n; i++)
            job_fail(&jobs[i], "out of memory for the tiles");
        return;
    }
    n_tasks = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; !jobs[i].failed && t < jobs[i].rows * jobs[i].cols; t++)
            tasks[n_tasks++] = (task){i, t};
    int workers = plan->workers < n_tasks ? plan->workers : n_tasks;
#pragma omp parallel num_threads(workers > 0 ? workers : 1) if (n_tasks > 1)
    {
        network *net = NULL;
        char err[256];
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < n_tasks; t++) {
            job *j = &jobs[tasks[t].job];
            if (run_tile(m, plan, j, tasks[t].part, &net, err, sizeof err) != 0)
                job_fail(j, "%s", err);
        }
        nn_free(net);
    }
    free(tasks);
}

/* ==== Lab pictures: passes averaged, chroma upsampled guided by the lightness ==== */

/* How a Lab picture is seen by default (measured on photographs,
 * docs/photographs.md): the chroma is predicted at these short sides, in
 * halves of the training size, and on each one's mirror image, and the
 * class probabilities of all the passes are averaged on the finest grid. */
static const int default_halves[] = {2, 3, 4};
enum {
    MAX_PASSES = 2 * (int)(sizeof default_halves / sizeof default_halves[0]),
    GUIDE_SIDE = 256, /* the guide's grid: the short side a and b are fitted at */
};
static const float GUIDE_RADIUS = 2.0f; /* the guided filter's window, in chroma-grid pixels */
static const float GUIDE_EPS = 100.0f;  /* its ridge, in L* units squared */

/* The passes and the guide for a model. */
typedef struct {
    int sides[MAX_PASSES / 2], n_sides, mirror, guide_side;
    float radius, eps;
} tuning;

static tuning tuning_of(const predict_model *m) {
    int train = m->train_h < m->train_w ? m->train_h : m->train_w;
    tuning t = {.n_sides = 0,
                .mirror = 1,
                .guide_side = GUIDE_SIDE,
                .radius = GUIDE_RADIUS,
                .eps = GUIDE_EPS};
    for (int i = 0; i < MAX_PASSES / 2; i++)
        t.sides[t.n_sides++] = train * default_halves[i] / 2;
    return t;
}

/* The passes of a Lab picture of (H, W): the short side of each (0: the
 * picture's own) and whether it is mirrored, a pass and its mirror side by
 * side; returns how many. --scale N asks for one pass at N. */
static int plan_passes(const predict_options *opt, const tuning *t, int H, int W, int *sides,
                       int *mirrored) {
    if (opt->scale >= 0) {
        sides[0] = opt->scale, mirrored[0] = 0;
        return 1;
    }
    int shorter = H < W ? H : W, n = 0;
    for (int i = 0; i < t->n_sides; i++) /* never larger than the picture */
        for (int mirror = 0; t->sides[i] <= shorter && mirror <= (t->mirror ? 1 : 0); mirror++)
            sides[n] = t->sides[i], mirrored[n++] = mirror;
    if (n == 0) /* smaller than every side: at its own size */
        for (int mirror = 0; mirror <= (t->mirror ? 1 : 0); mirror++)
            sides[n] = 0, mirrored[n++] = mirror;
    return n;
}

typedef struct {
    int first, count; /* its jobs: jobs[first .. first + count) */
    int gh, gw;       /* the chroma grid: the finest pass's */
    float *ab;        /* (gh, gw, 2): NULL when the first job paints the picture itself */
    int Gh, Gw;       /* the guide's grid */
    float *coef;      /* (Gh, Gw, 2, 2): a and b for a* and b*; NULL: ab upsampled bilinearly */
} picture;

/* The passes' class probabilities averaged on the finest grid, each
 * mirrored one mirrored back, and decoded into the chroma lp->ab. A pass
 * and its mirror are added first, so that a mirrored picture gets the
 * mirrored sums. */
static int average_passes(const predict_model *m, job *passes, picture *lp) {
    int k = m->meta.k, finest = 0;
    for (int i = 1; i < lp->count; i++)
        if ((size_t)passes[i].h * passes[i].w > (size_t)passes[finest].h * passes[finest].w)
            finest = i;
    int gh = lp->gh = passes[finest].h, gw = lp->gw = passes[finest].w;
    size_t n = (size_t)gh * gw * k;
    float *sum = calloc(n, sizeof(float)), *at[2] = {malloc(n * sizeof(float)), NULL};
    at[1] = malloc(n * sizeof(float));
    lp->ab = malloc((size_t)gh * gw * 2 * sizeof(float));
    int failed = !sum || !at[0] || !at[1] || !lp->ab;
    for (int i = 0; !failed && i < lp->count;) {
        int pair = i + 1 < lp->count && passes[i + 1].h == passes[i].h && passes[i + 1].mirror;
        for (int p = 0; p <= pair; p++) {
            const job *j = &passes[i + p];
            if (j->h == gh && j->w == gw)
                memcpy(at[p], j->prob, n * sizeof(float));
            else
                resize_bilinear(j->prob, j->h, j->w, k, at[p], gh, gw);
        }
#pragma omp parallel for schedule(static)
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                float *s = sum + ((size_t)y * gw + x) * k;
                const float *q = at[0] + ((size_t)y * gw + (passes[i].mirror ? gw - 1 - x : x)) * k;
                const float *r = pair ? at[1] + ((size_t)y * gw + gw - 1 - x) * k : NULL;
                for (int c = 0; c < k; c++)
                    s[c] += pair ? q[c] + r[c] : q[c];
            }
        i += 1 + pair;
    }
    if (!failed) {
        for (size_t i = 0; i < n; i++)
            sum[i] /= (float)lp->count;
        chroma_decode(sum, (size_t)gh * gw, k, (const float(*)[3])m->meta.centres,
                      passes[0].temperature, lp->ab);
    }
    free(sum);
    free(at[0]);
    free(at[1]);
    return failed ? -1 : 0;
}

/* The guided filter's coefficients for upsampling lp->ab to the picture:
 * fitted on a grid of t->guide_side pixels a short side (the picture's own
 * when smaller), with the picture's lightness there as the guide. */
static int guide_chroma(const image *in, const tuning *t, picture *lp) {
    int H = in->height, W = in->width, shorter = H < W ? H : W;
    int coarse = lp->gh < lp->gw ? lp->gh : lp->gw;
    int side = t->guide_side > coarse ? t->guide_side : coarse;
    if (side > shorter) side = shorter;
    if (resize_scaled_size(H, W, side, &lp->Gh, &lp->Gw) != 0) return -1;
    int r = (int)lroundf(t->radius * (float)side / (float)coarse);
    size_t n = (size_t)lp->Gh * lp->Gw;
    float *I = malloc(n * sizeof(float)), *p = malloc(2 * n * sizeof(float));
    lp->coef = malloc(4 * n * sizeof(float));
    int failed = !I || !p || !lp->coef || resize_area_of_picture(in, I, lp->Gh, lp->Gw);
    if (!failed) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            I[i] = lab_lightness_of_gray(I[i]);
        resize_bilinear(lp->ab, lp->gh, lp->gw, 2, p, lp->Gh, lp->Gw);
        failed = guided_coefficients(I, p, lp->Gh, lp->Gw, 2, r > 0 ? r : 1, t->eps, lp->coef);
    }
    free(I);
    free(p);
    return failed ? -1 : 0;
}

/* Rows of a Lab picture coloured from its passes: the chroma upsampled,
 * guided or bilinearly, with each pixel's own lightness. */
static int paint_band(const predict_model *m, const job *j, const picture *lp, int band) {
    int H = j->in->height, W = j->in->width;
    int y0 = band * BAND_ROWS, y1 = y0 + BAND_ROWS < H ? y0 + BAND_ROWS : H;
    float *ab = malloc(7 * (size_t)W * sizeof(float)), *L = ab + 2 * (size_t)W, *c = L + W;
    if (!ab) return -1;
    for (int y = y0; y < y1; y++) {
        lightness_span(m, j->in, y, 0, W, L);
        if (lp->coef) {
            resize_bilinear_row(lp->coef, lp->Gh, lp->Gw, 4, y, H, c, W);
            for (int x = 0; x < W; x++)
                for (int d = 0; d < 2; d++)
                    ab[2 * x + d] = c[4 * x + 2 * d] * L[x] + c[4 * x + 2 * d + 1];
        } else {
            resize_bilinear_row(lp->ab, lp->gh, lp->gw, 2, y, H, ab, W);
        }
        chroma_paint(L, ab, (size_t)W, j->rgb + 3 * (size_t)y * W);
    }
    free(ab);
    return 0;
}

static void paint_bands(const predict_model *m, const predict_tile_plan *plan, job *jobs,
                        picture *pics, int n) {
    int n_tasks = 0;
    for (int i = 0; i < n; i++)
        if (pics[i].ab && !jobs[pics[i].first].failed)
            n_tasks += (jobs[pics[i].first].in->height + BAND_ROWS - 1) / BAND_ROWS;
    task *tasks = malloc(sizeof(task) * (size_t)(n_tasks ? n_tasks : 1));
    if (!tasks) {
        for (int i = 0; i < n; i++)
            if (pics[i].ab) job_fail(&jobs[pics[i].first], "out of memory for the bands");
        return;
    }
    n_tasks = 0;
    for (int i = 0; i < n; i++)
        for (int b = 0; pics[i].ab && !jobs[pics[i].first].failed &&
                        b < (jobs[pics[i].first].in->height + BAND_ROWS - 1) / BAND_ROWS;
             b++)
            tasks[n_tasks++] = (task){i, b};
#pragma omp parallel for schedule(dynamic, 1) num_threads(plan->threads) if (n_tasks > 1)
    for (int t = 0; t < n_tasks; t++) {
        job *j = &jobs[pics[tasks[t].job].first];
        if (paint_band(m, j, &pics[tasks[t].job], tasks[t].part) != 0)
            job_fail(j, "out of memory for a band of rows");
    }
    free(tasks);
}

/* ==== Pictures into jobs ==== */

/* Each picture's jobs: one for an RGB model or a Lab picture seen once at
 * its own size, else one per pass. jobs has room for n * MAX_PASSES. */
static int make_jobs(const predict_model *m, const predict_options *opt, const tuning *t,
                     const image *in, int n, char *errs, size_t errlen, job *jobs, int *sh, int *sw,
                     picture *pics) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        int H = in[i].height, W = in[i].width, sides[MAX_PASSES], mirrored[MAX_PASSES];
        int passes = m->meta.space == SPACE_RGB ? 1 : plan_passes(opt, t, H, W, sides, mirrored);
        pics[i] = (picture){.first = count, .count = passes};
        for (int p = 0; p < passes; p++, count++) {
            job *j = &jobs[count];
            *j = (job){.in = &in[i], .err = errs + (size_t)i * errlen, .errlen = errlen};
            sh[count] = sw[count] = 0;
            if (m->meta.space == SPACE_RGB) {
                j->sink = PAINT_CLASSES;
                continue;
            }
            j->mirror = mirrored[p];
            int side = sides[p] ? sides[p] : (H < W ? H : W);
            if (resize_scaled_size(H, W, side, &sh[count], &sw[count]) != 0) {
                job_fail(j, "--scale %d would make it larger than %d pixels a side", side,
                         RESIZE_MAX_SIDE);
                sh[count] = 0;
            }
            j->sink = KEEP_PROBABILITIES;
            if (passes == 1 && sh[count] == H && sw[count] == W) /* as it is: painted by tiles */
                j->sink = PAINT_CHROMA, sh[count] = sw[count] = 0;
        }
    }
    return count;
}

/* The steps, each a parallel loop over all the pictures' parts. */
static void colour_pictures(const predict_model *m, const predict_options *opt, const image *in,
                            image *out, int n, job *jobs, int n_jobs, const int *sh, const int *sw,
                            picture *pics, const tuning *t) {
    predict_tile_plan plan;
    predict_plan(m, opt, &plan);
#pragma omp parallel for schedule(dynamic, 1) num_threads(plan.threads) if (n_jobs > 1)
    for (int i = 0; i < n_jobs; i++) {
        int first = i == 0 || jobs[i - 1].in != jobs[i].in;
        start_job(m, &plan, opt, &jobs[i], first && out ? &out[jobs[i].in - in] : NULL, sh[i],
                  sw[i]);
    }
    run_tiles(m, &plan, jobs, n_jobs);
    for (int i = 0; out && i < n; i++) {
        job *passes = &jobs[pics[i].first];
        if (passes[0].sink != KEEP_PROBABILITIES) continue;
        for (int p = 1; p < pics[i].count; p++) /* its message is in the picture's err */
            passes[0].failed |= passes[p].failed;
        if (passes[0].failed) continue;
        passes[0].rgb = out[i].pixels;
        if (average_passes(m, passes, &pics[i]) != 0 ||
            (opt->guide != 0 && (pics[i].gh != in[i].height || pics[i].gw != in[i].width) &&
             guide_chroma(&in[i], t, &pics[i]) != 0))
            job_fail(&passes[0], "out of memory for a %dx%d picture", in[i].width, in[i].height);
    }
    if (out) paint_bands(m, &plan, jobs, pics, n);
}

int predict_images(const predict_model *m, const image *in, int n, const predict_options *opt,
                   image *out, char *errs, size_t errlen) {
    for (int i = 0; i < n; i++)
        out[i] = (image){0};
    size_t most = (size_t)(n > 0 ? n : 1) * MAX_PASSES;
    job *jobs = calloc(most, sizeof *jobs);
    int *sh = malloc(most * sizeof(int)), *sw = malloc(most * sizeof(int));
    picture *pics = calloc(n > 0 ? (size_t)n : 1, sizeof *pics);
    if (!jobs || !sh || !sw || !pics) {
        for (int i = 0; i < n; i++)
            set_error(errs + (size_t)i * errlen, errlen, "out of memory");
        free(jobs), free(sh), free(sw), free(pics);
        return n;
    }
    tuning t = tuning_of(m);
    int n_jobs = make_jobs(m, opt, &t, in, n, errs, errlen, jobs, sh, sw, pics);
    colour_pictures(m, opt, in, out, n, jobs, n_jobs, sh, sw, pics, &t);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int bad = 0;
        for (int p = 0; p < pics[i].count; p++) {
            job *j = &jobs[pics[i].first + p];
            bad |= j->failed;
            free(j->small);
            free(j->prob);
        }
        if (bad) image_free(&out[i]), failed++;
        free(pics[i].ab);
        free(pics[i].coef);
    }
    free(jobs), free(sh), free(sw), free(pics);
    return failed;
}

int predict_image(const predict_model *m, const image *in, const predict_options *opt, image *out,
                  char *err, size_t errlen) {
    return predict_images(m, in, 1, opt, out, err, errlen) ? -1 : 0;
}

int predict_probabilities(const predict_model *m, const image *in, const predict_options *opt,
                          float *prob, char *err, size_t errlen) {
    job j = {.in = in, .sink = KEEP_PROBABILITIES, .prob = prob, .err = err, .errlen = errlen};
    picture lp = {.first = 0, .count = 1};
    int zero = 0;
    tuning t = tuning_of(m);
    colour_pictures(m, opt, in, NULL, 1, &j, 1, &zero, &zero, &lp, &t);
    return j.failed ? -1 : 0;
}
