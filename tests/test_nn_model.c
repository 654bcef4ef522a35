/* The model file (nn_save, nn_load): a round trip at another size, every
 * truncation and a flipped byte refused, the Lab fields and the training
 * plan, the checksum of each format version, and the damage fuzzing found. */
#include <math.h>

#include "nn.h"
#include "tests/testutil.h"
#include "util.h"

/* Sets a network's weights (weight(i) for the i-th, or as they are when
 * weight is NULL) and its step count, through the state a run saves and
 * restores. */
static void set_state(network *net, float (*weight)(size_t i), long step) {
    float *state = malloc(nn_state_floats(net) * sizeof(float));
    long unused;
    ck_assert_ptr_nonnull(state);
    nn_state_save(net, state, &unused);
    for (size_t i = 0; weight && i < nn_param_count(net); i++)
        state[i] = weight(i);
    nn_state_restore(net, state, step);
    free(state);
}

static float weight_ramp(size_t i) {
    return (float)i * 0.25f - 3.0f;
}

START_TEST(test_model_round_trip_and_damage) {
    char dir[64], path[128], err[256];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.bin", dir);
    network *net, *back;
    ck_assert(nn_create("default", 32, 32, 4, 4, &net, err, sizeof err) == 0);
    nn_init_weights(net, 1);
    set_state(net, NULL, 17);
    nn_model_meta meta = {.k = 4, .mean = 0.4f, .std = 0.25f, .epochs = 3};
    for (int c = 0; c < 4; c++)
        meta.centres[c][0] = meta.centres[c][1] = meta.centres[c][2] = 50.0f * c;
    ck_assert_msg(nn_save(net, &meta, path, err, sizeof err) == 0, "%s", err);
    nn_model_meta got;
    /* Another size: the default network has no dense layer, so any size goes. */
    ck_assert_msg(nn_load(path, 48, 40, 2, &back, &got, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(nn_input_shape(back).h, 48);
    ck_assert_int_eq(nn_steps(back), 17);
    ck_assert(got.k == 4 && got.mean == 0.4f && got.std == 0.25f && got.epochs == 3);
    ck_assert(got.centres[3][1] == 150.0f);
    ck_assert(memcmp(nn_params(back), nn_params(net), nn_param_count(net) * sizeof(float)) == 0);
    nn_free(back);
    /* Damage: each truncation, a flipped byte, a foreign file. */
    uint8_t *bytes;
    size_t len;
    ck_assert(read_file(path, &bytes, &len, err, sizeof err) == 0);
    for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 997)) {
        tu_write(dir, "cut.bin", bytes, cut);
        char p2[128];
        snprintf(p2, sizeof p2, "%s/cut.bin", dir);
        back = (network *)1;
        ck_assert_msg(nn_load(p2, 0, 0, 2, &back, &got, err, sizeof err) != 0, "cut at %zu loaded",
                      cut);
        ck_assert_ptr_null(back);
        ck_assert_ptr_nonnull(strstr(err, "cut.bin"));
    }
    bytes[len / 2] ^= 0x10;
    tu_write(dir, "flip.bin", bytes, len);
    char p3[128];
    snprintf(p3, sizeof p3, "%s/flip.bin", dir);
    ck_assert(nn_load(p3, 0, 0, 2, &back, &got, err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "checksum"));
    tu_write(dir, "foreign.bin", "P6\n32 32\n255\n0123456789abcdef", 29);
    snprintf(p3, sizeof p3, "%s/foreign.bin", dir);
    ck_assert(nn_load(p3, 0, 0, 2, &back, &got, err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "not a colorize model"));
    free(bytes);
    nn_free(net);
    /* A dense network refuses other sizes. */
    ck_assert(nn_create("dense", 32, 32, 4, 2, &net, err, sizeof err) == 0);
    ck_assert(nn_save(net, &meta, path, err, sizeof err) == 0);
    ck_assert(nn_load(path, 64, 64, 2, &back, &got, err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "32x32"));
    nn_free(net);
    tu_rmtree(dir);
}
END_TEST

/* A model records its colour space, rebalancing, temperature and training
 * plan (format version 3 on), and a header with a bad field is refused even
 * when its checksum is good. */
START_TEST(test_model_lab_fields) {
    char dir[64], path[128], err[256];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.bin", dir);
    network *net, *back;
    ck_assert(nn_create("chroma", 32, 32, 16, 2, &net, err, sizeof err) == 0);
    nn_init_weights(net, 2);
    nn_model_meta meta = {.k = 16,
                          .space = SPACE_LAB,
                          .mean = 0.4f,
                          .std = 0.25f,
                          .epochs = 1,
                          .rebalance = 0.5f,
                          .temperature = 0.38f,
                          .plan = {2, 7, 1234, 0x123456789abcdefull, 48, 0.003f, SCHED_COSINE, 1}};
    for (int c = 0; c < 16; c++)
        meta.centres[c][0] = (float)c, meta.centres[c][1] = -2.5f * c;
    ck_assert_msg(nn_save(net, &meta, path, err, sizeof err) == 0, "%s", err);
    nn_model_meta got;
    ck_assert_msg(nn_load(path, 0, 0, 1, &back, &got, err, sizeof err) == 0, "%s", err);
    ck_assert(got.space == SPACE_LAB && got.rebalance == 0.5f && got.temperature == 0.38f);
    ck_assert(got.k == 16 && got.centres[15][1] == -37.5f);
    ck_assert(memcmp(&got.plan, &meta.plan, sizeof got.plan) == 0);
    nn_free(back);
    uint8_t *bytes;
    size_t len;
    ck_assert(read_file(path, &bytes, &len, err, sizeof err) == 0);
    uint32_t version;
    memcpy(&version, bytes + 8, 4);
    ck_assert_uint_eq(version, 4);
    /* the fields sit after the step: space, rebalancing, temperature, then the
     * plan: first epoch, epochs, first step, seed, batch, lr, schedule, flip */
    size_t spec_len = strlen(nn_spec(net));
    size_t at = 8 + 4 * 4 + spec_len + 4 + 16 * 12 + 4 * 4 + 8, plan = at + 12;
    const float bad_values[] = {-0.1f, 1.5f, NAN};
    for (int i = 0; i < 6; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, bytes, len);
        if (i < 3)
            memcpy(copy + at + 4, &bad_values[i], 4); /* rebalancing */
        else if (i == 3)
            copy[at] = 7; /* no such space */
        else if (i == 4)
            copy[plan + 4 + 4 + 8 + 8 + 4 + 4] = 2; /* no such schedule */
        else
            copy[plan + 4 + 4 + 8 + 8 + 4 + 4 + 4] = 3; /* flip is 0 or 1 */
        uint64_t h = nn_model_checksum(copy, len - 8);  /* the checksum made good again */
        memcpy(copy + len - 8, &h, 8);
        tu_write(dir, "bad.bin", copy, len);
        char p[128];
        snprintf(p, sizeof p, "%s/bad.bin", dir);
        ck_assert_msg(nn_load(p, 0, 0, 1, &back, &got, err, sizeof err) != 0, "case %d loaded", i);
        ck_assert_ptr_nonnull(strstr(err, "damaged model header"));
        free(copy);
    }
    free(bytes);
    /* RGB */
    meta.space = SPACE_RGB, meta.rebalance = 0, meta.temperature = 0;
    ck_assert(nn_save(net, &meta, path, err, sizeof err) == 0);
    ck_assert(nn_load(path, 0, 0, 1, &back, &got, err, sizeof err) == 0);
    ck_assert(got.space == SPACE_RGB && got.rebalance == 0 && got.temperature == 0);
    nn_free(back);
    nn_free(net);
    tu_rmtree(dir);
}
END_TEST

/* The bytes of a model file with its architecture replaced by spec and the
 * checksum made good again; *len in and out. */
static uint8_t *model_with_spec(const uint8_t *bytes, size_t *len, const char *spec) {
    uint32_t old_len, new_len = (uint32_t)strlen(spec);
    memcpy(&old_len, bytes + 20, 4);
    size_t n = *len - old_len + new_len;
    uint8_t *copy = malloc(n);
    memcpy(copy, bytes, 20);
    memcpy(copy + 20, &new_len, 4);
    memcpy(copy + 24, spec, new_len);
    memcpy(copy + 24 + new_len, bytes + 24 + old_len, *len - 24 - old_len);
    uint64_t h = nn_model_checksum(copy, n - 8);
    memcpy(copy + n - 8, &h, 8);
    *len = n;
    return copy;
}

/* What the model fuzzer (tests/fuzz_model.c) found, with good checksums: an
 * architecture that does not parse was reported without the file's name; a
 * control character in it would split the message; and a layer far larger
 * than the file's parameters made the loader ask for terabytes before it
 * counted them. Each is now one line naming the file, before any buffer. */
/* The checksum: version 4 writes the word sum, which any one changed byte
 * changes wherever it is (whole blocks and the last, partial one); files of
 * versions 1 to 3, summed with FNV-1a, still load. */
static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

START_TEST(test_model_checksum_by_version) {
    char dir[64], err[256], path[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.bin", dir);
    network *net, *back;
    ck_assert(nn_create("pixel:5 relu pixel:k softmax", 32, 32, 4, 1, &net, err, sizeof err) == 0);
    set_state(net, weight_ramp, 0);
    nn_model_meta meta = {.k = 4, .mean = 0.5f, .std = 0.25f, .epochs = 1};
    ck_assert(nn_save(net, &meta, path, err, sizeof err) == 0);
    uint8_t *bytes;
    size_t len;
    ck_assert(read_file(path, &bytes, &len, err, sizeof err) == 0);
    ck_assert_uint_ne(len % 32, 8); /* the word sum's last block is a partial one */
    uint64_t stored;
    memcpy(&stored, bytes + len - 8, 8);
    ck_assert(stored == nn_model_checksum(bytes, len - 8) && stored != fnv1a(bytes, len - 8));
    for (size_t i = 0; i < len - 8; i++)
        for (int bit = 0; bit < 8; bit += 7) {
            bytes[i] ^= (uint8_t)(1u << bit);
            ck_assert_msg(nn_model_checksum(bytes, len - 8) != stored, "byte %zu bit %d", i, bit);
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    free(bytes);
    nn_free(net);
    const char *older[] = {"v1_rgb_pixel.bin", "v2_lab_skip.bin", "v3_rgb_pixel.bin"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "tests/fuzz-seeds/model/%s", older[i]);
        ck_assert_msg(read_file(path, &bytes, &len, err, sizeof err) == 0, "%s", err);
        uint32_t version;
        memcpy(&version, bytes + 8, 4);
        ck_assert_uint_eq(version, (uint32_t)i + 1);
        memcpy(&stored, bytes + len - 8, 8);
        ck_assert(stored == fnv1a(bytes, len - 8) && nn_model_checksum(bytes, len - 8) == stored);
        nn_model_meta got;
        ck_assert_msg(nn_load_buffer(bytes, len, path, 0, 0, 1, &back, &got, err, sizeof err) == 0,
                      "%s", err);
        nn_free(back);
        free(bytes);
    }
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_model_damage_found_by_fuzzing) {
    char dir[64], path[128], err[512];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.bin", dir);
    network *net, *back;
    ck_assert(nn_create("conv5:2 relu@c1 maxpool:2 upsample concat:input,c1,prev pixel:k softmax",
                        4, 4, 2, 1, &net, err, sizeof err) == 0);
    nn_model_meta meta = {.k = 2, .mean = 0.4f, .std = 0.25f}, got;
    ck_assert_msg(nn_save(net, &meta, path, err, sizeof err) == 0, "%s", err);
    nn_free(net);
    uint8_t *bytes;
    size_t len;
    ck_assert(read_file(path, &bytes, &len, err, sizeof err) == 0);
    const struct {
        const char *spec, *says;
    } cases[] = {
        {"conv5:2 relu@c1 maxpool:2 upsample concat:i@put,c1,prev pixel:k softmax",
         "no tensor labelled 'i'"},
        {"conv5:2 relu@c1 maxpool:2 upsample\nconcat:input,c1,prev pixel:k softmax",
         "damaged model header"},
        {"conv5:2 relu@c1 maxpool:2 upsample concat:input,c1,prev pixel:16777216 pixel:k softmax",
         "parameter count does not match"},
        /* 2^36 parameters: 1 TB of buffers */
        {"dense:16777216 dense:4096 dense:32 softmax", "parameter count does not match"},
        {"pixel:16777216 concat:prev,prev pixel:k softmax", "more than 2^24 channels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = len;
        uint8_t *copy = model_with_spec(bytes, &n, cases[i].spec);
        tu_write(dir, "bad.bin", copy, n);
        free(copy);
        char p[128];
        snprintf(p, sizeof p, "%s/bad.bin", dir);
        back = (network *)1;
        ck_assert_msg(nn_load(p, 0, 0, 1, &back, &got, err, sizeof err) != 0, "case %zu loaded", i);
        ck_assert_ptr_null(back);
        ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && strstr(err, cases[i].says) &&
                          !strchr(err, '\n'),
                      "case %zu: '%s'", i, err);
    }
    free(bytes);
    tu_rmtree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("nn_model");
    TCase *tc = tcase_create("nn_model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_model_round_trip_and_damage);
    tcase_add_test(tc, test_model_lab_fields);
    tcase_add_test(tc, test_model_checksum_by_version);
    tcase_add_test(tc, test_model_damage_found_by_fuzzing);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
