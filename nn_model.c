/* The model file: everything needed to use a trained network again, or to
 * go on training it (model.bin).
 *
 * Little-endian:
 *   "CLRZMODL" u32 version, u32 h, u32 w, u32 spec length, spec bytes,
 *   u32 k, k*3 f32 palette, f32 mean, f32 std, u32 epochs, u32 optimiser
 *   (0 Adam, 1 SGD), i64 step,
 *   [version >= 2: u32 colour space (0 RGB, 1 Lab), f32 rebalancing, f32 temperature]
 *   [version 3: the plan: u32 first epoch, u32 epochs, i64 first step, u64 seed,
 *    u32 batch, f32 peak learning rate, u32 schedule (0 constant, 1 cosine), u32 flip]
 *   u64 n_params, then params, Adam/momentum m, v (n_params f32 each),
 *   and u64 checksum of every byte before it: from version 4, the word sum
 *   below; before it, FNV-1a of each byte.
 * Version 5 is version 4 without m and v: a model for colouring only, a
 * third of the size (the one compiled into the program, nn_save_weights).
 * Training a version 5 file further is refused, as it has no optimiser
 * state to go on from. The run writes version 4, as before.
 * Versions 1 (RGB only), 2 (no plan) and 3 (FNV-1a) still load.
 * Streamed to disk as it is hashed, atomically; read with a specific
 * message for each kind of damage. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "nn_layer.h"
#include "util.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is written in the host's byte order, which must be little-endian"
#endif

static const char model_magic[8] = {'C', 'L', 'R', 'Z', 'M', 'O', 'D', 'L'};
enum {
    MODEL_VERSION_OLDEST = 1,
    MODEL_VERSION_FNV_LAST = 3,
    MODEL_VERSION = 4,         /* what a run writes */
    MODEL_VERSION_WEIGHTS = 5, /* version 4 without the optimiser state */
    MODEL_VERSION_NEWEST = 5
};

#define FNV_START 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* FNV-1a of n more bytes, from the hash h of those before them. */
static uint64_t fnv1a_more(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* The word sum (version 4 on). FNV-1a takes a multiply per byte, one after
 * another: 65 ms for the 51 MB of a `dense` checkpoint, which is written
 * after every epoch. This one takes the bytes as 64-bit words in four
 * independent FNV-style lanes (xor, then multiply by the FNV prime, both
 * invertible, so any one changed word changes its lane), about 6 ms for the
 * same file; FNV-1a of the lanes and the length ends it. Fed in pieces of any
 * size (the writer streams the file), the same as in one. */
typedef struct {
    uint64_t lane[4];
    uint8_t pending[32]; /* a block's bytes not yet taken */
    size_t n_pending;
    uint64_t length;
} word_sum;

static const word_sum word_sum_start = {
    {FNV_START, FNV_START ^ 1, FNV_START ^ 2, FNV_START ^ 3}, {0}, 0, 0};

static void word_sum_block(word_sum *s, const uint8_t *p) {
    for (int j = 0; j < 4; j++) {
        uint64_t word;
        memcpy(&word, p + 8 * j, 8);
        s->lane[j] = (s->lane[j] ^ word) * FNV_PRIME;
    }
}

static void word_sum_more(word_sum *s, const uint8_t *p, size_t n) {
    s->length += n;
    if (s->n_pending > 0) {
        size_t take = 32 - s->n_pending < n ? 32 - s->n_pending : n;
        memcpy(s->pending + s->n_pending, p, take);
        s->n_pending += take, p += take, n -= take;
        if (s->n_pending < 32) return;
        word_sum_block(s, s->pending);
        s->n_pending = 0;
    }
    for (; n >= 32; p += 32, n -= 32)
        word_sum_block(s, p);
    memcpy(s->pending, p, n);
    s->n_pending = n;
}

static uint64_t word_sum_end(const word_sum *s) {
    word_sum last = *s;
    memset(last.pending + last.n_pending, 0, 32 - last.n_pending); /* the length tells */
    if (last.n_pending > 0) word_sum_block(&last, last.pending);
    uint64_t h = fnv1a_more(FNV_START, (const uint8_t *)last.lane, sizeof last.lane);
    return fnv1a_more(h, (const uint8_t *)&last.length, 8);
}

uint64_t nn_model_checksum(const uint8_t *buf, size_t n) {
    uint32_t version = 0;
    if (n >= 12) memcpy(&version, buf + 8, 4);
    if (version <= MODEL_VERSION_FNV_LAST) return fnv1a_more(FNV_START, buf, n);
    word_sum s = word_sum_start;
    word_sum_more(&s, buf, n);
    return word_sum_end(&s);
}

/* The file streamed as it is summed: no copy of the model in memory (a
 * checkpoint of `dense`, 51 MB with the optimiser state, is written after
 * every epoch). */
typedef struct {
    FILE *f;
    word_sum sum;
} byte_writer;

static void put(byte_writer *bw, const void *p, size_t n) {
    word_sum_more(&bw->sum, p, n);
    fwrite(p, 1, n, bw->f); /* a failure is the commit's to report */
}

static void put_u32(byte_writer *bw, uint32_t v) {
    put(bw, &v, 4);
}

/* Everything but the checksum: net's architecture and size, with the
 * parameters and optimiser state given (n_params floats each) and step;
 * without the optimiser state (version 5) when opt_m is NULL. */
static void model_serialise(const network *net, const float *params, const float *opt_m,
                            const float *opt_v, int64_t step, const nn_model_meta *meta,
                            byte_writer *bw) {
    uint32_t spec_len = (uint32_t)strlen(net->spec);
    put(bw, model_magic, 8);
    put_u32(bw, opt_m ? MODEL_VERSION : MODEL_VERSION_WEIGHTS);
    put_u32(bw, (uint32_t)net->shapes[0].h);
    put_u32(bw, (uint32_t)net->shapes[0].w);
    put_u32(bw, spec_len);
    put(bw, net->spec, spec_len);
    put_u32(bw, (uint32_t)meta->k);
    put(bw, meta->centres, (size_t)meta->k * 3 * sizeof(float));
    put(bw, &meta->mean, 4);
    put(bw, &meta->std, 4);
    put_u32(bw, (uint32_t)meta->epochs);
    put_u32(bw, (uint32_t)meta->optimizer);
    put(bw, &step, 8);
    put_u32(bw, (uint32_t)meta->space);
    put(bw, &meta->rebalance, 4);
    put(bw, &meta->temperature, 4);
    const nn_plan *p = &meta->plan;
    int64_t first_step = p->first_step;
    put_u32(bw, (uint32_t)p->first_epoch);
    put_u32(bw, (uint32_t)p->epochs);
    put(bw, &first_step, 8);
    put(bw, &p->seed, 8);
    put_u32(bw, (uint32_t)p->batch);
    put(bw, &p->lr, 4);
    put_u32(bw, (uint32_t)p->schedule);
    put_u32(bw, (uint32_t)p->flip);
    uint64_t n = net->n_params;
    put(bw, &n, 8);
    put(bw, params, n * sizeof(float));
    if (!opt_m) return;
    put(bw, opt_m, n * sizeof(float));
    put(bw, opt_v, n * sizeof(float));
}

static int save(const network *net, const float *params, const float *opt_m, const float *opt_v,
                long step, const nn_model_meta *meta, const char *path, char *err, size_t errlen) {
    atomic_file af;
    if (atomic_open(&af, path, err, errlen) != 0) return -1;
    byte_writer bw = {af.f, word_sum_start};
    model_serialise(net, params, opt_m, opt_v, step, meta, &bw);
    uint64_t sum = word_sum_end(&bw.sum);
    fwrite(&sum, 1, 8, af.f);
    return atomic_commit(&af, err, errlen);
}

int nn_save(const network *net, const nn_model_meta *meta, const char *path, char *err,
            size_t errlen) {
    return save(net, net->params, net->opt_m, net->opt_v, net->step, meta, path, err, errlen);
}

int nn_save_state(const network *net, const float *state, long step, const nn_model_meta *meta,
                  const char *path, char *err, size_t errlen) {
    size_t n = net->n_params;
    return save(net, state, state + n, state + 2 * n, step, meta, path, err, errlen);
}

int nn_save_weights(const network *net, const nn_model_meta *meta, const char *path, char *err,
                    size_t errlen) {
    return save(net, net->params, NULL, NULL, net->step, meta, path, err, errlen);
}

int nn_is_model_file(const char *path) {
    char magic[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int is = fread(magic, 1, 8, f) == 8 && memcmp(magic, model_magic, 8) == 0;
    fclose(f);
    return is;
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} byte_reader;

static int take(byte_reader *br, void *out, size_t n) {
    if (n > br->len - br->pos) return -1;
    memcpy(out, br->p + br->pos, n);
    br->pos += n;
    return 0;
}

static int read_plan(byte_reader *br, nn_plan *p) {
    uint32_t first_epoch, epochs, batch, schedule, flip;
    int64_t first_step;
    if (take(br, &first_epoch, 4) || take(br, &epochs, 4) || take(br, &first_step, 8) ||
        take(br, &p->seed, 8) || take(br, &batch, 4) || take(br, &p->lr, 4) ||
        take(br, &schedule, 4) || take(br, &flip, 4))
        return -1;
    if (first_epoch > 1000000000 || epochs > 1000000000 || first_step < 0 || batch > 1 << 20 ||
        !(p->lr >= 0 && p->lr <= 1e6f) || schedule > SCHED_COSINE || flip > 1)
        return -1;
    p->first_epoch = (int)first_epoch, p->epochs = (int)epochs, p->first_step = (long)first_step;
    p->batch = (int)batch, p->schedule = (nn_schedule)schedule, p->flip = (int)flip;
    return 0;
}

/* Reads the header up to the parameter count; checks what can be checked. */
static int model_read_header(byte_reader *br, const char *path, int *h, int *w, char *spec,
                             nn_model_meta *meta, int64_t *step, uint64_t *n_params, int *has_state,
                             char *err, size_t errlen) {
    char magic[8];
    uint32_t version = 0, uh = 0, uw = 0, spec_len = 0, k = 0, epochs = 0, optimizer = 0;
    if (take(br, magic, 8) || memcmp(magic, model_magic, 8) != 0)
        return set_error(err, errlen, "%s: not a colorize model file", path);
    if (take(br, &version, 4) || version < MODEL_VERSION_OLDEST || version > MODEL_VERSION_NEWEST)
        return set_error(err, errlen, "%s: model format version %u, this program reads %d to %d",
                         path, version, MODEL_VERSION_OLDEST, MODEL_VERSION_NEWEST);
    *has_state = version != MODEL_VERSION_WEIGHTS;
    if (take(br, &uh, 4) || take(br, &uw, 4) || take(br, &spec_len, 4) || spec_len >= NN_SPEC_MAX ||
        take(br, spec, spec_len))
        return set_error(err, errlen, "%s: damaged model header", path);
    spec[spec_len] = 0;
    for (uint32_t i = 0; i < spec_len; i++)
        if (spec[i] < 0x20 || spec[i] > 0x7e)
            return set_error(err, errlen, "%s: damaged model header (the architecture)", path);
    if (take(br, &k, 4) || k < 2 || k > 64 || take(br, meta->centres, (size_t)k * 12) ||
        take(br, &meta->mean, 4) || take(br, &meta->std, 4) || take(br, &epochs, 4) ||
        take(br, &optimizer, 4) || take(br, step, 8))
        return set_error(err, errlen, "%s: damaged model header", path);
    uint32_t space = SPACE_RGB;
    meta->rebalance = 0, meta->temperature = 0;
    if (version >= 2 &&
        (take(br, &space, 4) || space > SPACE_LAB || take(br, &meta->rebalance, 4) ||
         take(br, &meta->temperature, 4) || !(meta->rebalance >= 0 && meta->rebalance <= 1) ||
         !(meta->temperature >= 0 && isfinite(meta->temperature))))
        return set_error(err, errlen, "%s: damaged model header", path);
    memset(&meta->plan, 0, sizeof meta->plan);
    if (version >= 3 && read_plan(br, &meta->plan) != 0)
        return set_error(err, errlen, "%s: damaged model header", path);
    if (take(br, n_params, 8)) return set_error(err, errlen, "%s: damaged model header", path);
    meta->space = (colour_space)space;
    if (!(meta->std > 0) || !isfinite(meta->mean) || uh == 0 || uw == 0 || uh > 65536 ||
        uw > 65536 || epochs > 1000000000 || optimizer > OPT_SGD || *step < 0)
        return set_error(err, errlen, "%s: damaged model header", path);
    meta->optimizer = (nn_optimizer)optimizer;
    meta->k = (int)k;
    meta->epochs = (int)epochs;
    *h = (int)uh;
    *w = (int)uw;
    return 0;
}

/* nn_load_buffer, or a forward-only network when forward_only. */
static int load_buffer(const uint8_t *buf, size_t len, const char *path, int h, int w,
                       int batch_cap, int forward_only, network **out, nn_model_meta *meta,
                       char *err, size_t errlen) {
    *out = NULL;
    byte_reader br = {buf, len >= 8 ? len - 8 : 0, 0};
    uint64_t stored;
    if (len < 8 || (memcpy(&stored, buf + len - 8, 8), stored != nn_model_checksum(buf, len - 8)))
        return len >= 8 && memcmp(buf, model_magic, 8) != 0
                   ? set_error(err, errlen, "%s: not a colorize model file", path)
                   : set_error(err, errlen, "%s: damaged or truncated model (checksum mismatch)",
                               path);
    char spec[NN_SPEC_MAX], why[400];
    int th = 0, tw = 0;
    int64_t step = 0;
    uint64_t n_params = 0;
    size_t planned = 0;
    network *net = NULL;
    int has_state = 1;
    int rc = model_read_header(&br, path, &th, &tw, spec, meta, &step, &n_params, &has_state, err,
                               errlen);
    /* The parameters must be there before anything is allocated for them. */
    if (rc == 0 && nn_count_params(spec, th, tw, meta->k, &planned, why, sizeof why) != 0)
        rc = set_error(err, errlen, "%s: %s", path, why);
    const size_t per_param = (has_state ? 3 : 1) * sizeof(float);
    if (rc == 0 && (n_params != planned || (br.len - br.pos) % per_param != 0 ||
                    (br.len - br.pos) / per_param != n_params))
        rc = set_error(err, errlen,
                       "%s: damaged model (parameter count does not match the architecture)", path);
    if (rc == 0 && !has_state && !forward_only)
        rc = set_error(err, errlen,
                       "%s: a model for colouring only (no optimiser state): it cannot be trained "
                       "further",
                       path);
    if (rc == 0 && h == 0) h = th, w = tw;
    /* A dense layer's weights fix the image size. */
    if (rc == 0 && (h != th || w != tw) && nn_fixes_input_size(spec, th, tw, meta->k))
        rc =
            set_error(err, errlen,
                      "%s: this network has a dense layer and accepts %dx%d images only, not %dx%d",
                      path, tw, th, w, h);
    if (rc == 0 &&
        (forward_only ? nn_create_forward(spec, h, w, meta->k, NULL, &net, why, sizeof why)
                      : nn_create(spec, h, w, meta->k, batch_cap, &net, why, sizeof why)) != 0)
        rc = set_error(err, errlen, "%s: %s", path, why);
    if (rc == 0 && net->n_params != n_params) /* only a dense layer's count depends on the size */
        rc = set_error(err, errlen, "%s: the parameter count changes at %dx%d", path, w, h);
    if (rc == 0) {
        take(&br, net->params, n_params * sizeof(float));
        if (!forward_only) {
            take(&br, net->opt_m, n_params * sizeof(float));
            take(&br, net->opt_v, n_params * sizeof(float));
        }
        net->step = step;
        *out = net;
    } else {
        nn_free(net);
    }
    return rc;
}

/* nn_load, or nn_load_forward when forward_only. */
static int load(const char *path, int h, int w, int batch_cap, int forward_only, network **out,
                nn_model_meta *meta, char *err, size_t errlen) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, errlen) != 0) return -1;
    int rc = load_buffer(buf, len, path, h, w, batch_cap, forward_only, out, meta, err, errlen);
    free(buf);
    return rc;
}

int nn_load_buffer(const uint8_t *buf, size_t len, const char *path, int h, int w, int batch_cap,
                   network **out, nn_model_meta *meta, char *err, size_t errlen) {
    return load_buffer(buf, len, path, h, w, batch_cap, 0, out, meta, err, errlen);
}

int nn_load_forward_buffer(const uint8_t *buf, size_t len, const char *path, network **out,
                           nn_model_meta *meta, char *err, size_t errlen) {
    return load_buffer(buf, len, path, 0, 0, 1, 1, out, meta, err, errlen);
}
int nn_load(const char *path, int h, int w, int batch_cap, network **out, nn_model_meta *meta,
            char *err, size_t errlen) {
    return load(path, h, w, batch_cap, 0, out, meta, err, errlen);
}

int nn_load_forward(const char *path, network **out, nn_model_meta *meta, char *err,
                    size_t errlen) {
    return load(path, 0, 0, 1, 1, out, meta, err, errlen);
}
