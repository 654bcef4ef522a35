/* CIFAR-10 in, the chosen classes' images out: folder layout detection,
 * the batches of either layout (the Python ones through pickle.c), and the
 * loader that keeps the classes a --class list chooses. */
#include "cifar.h"

#include "pickle.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CIFAR_BIN_RECORD (1 + CIFAR_IMAGE_BYTES)
#define CIFAR_PATH_MAX   4096

static const char *const official_names[CIFAR_NUM_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/* ==== Batches and meta from the pickled objects ==== */

/* The top-level dict, and the value under key. */
static pk_obj *require_key(pk_vm *vm, pk_obj *root, const char *key) {
    if (root->kind != PK_DICT) {
        pk_fail_at(vm, root->at, "pickle holds a %s, expected a dict", pk_kind_name(root->kind));
        return NULL;
    }
    pk_obj *v = pk_dict_get(root, key);
    if (!v) pk_fail_at(vm, root->at, "no '%s' key in the pickled dict", key);
    return v;
}

/* data: a C-order uint8 array of shape (N, 3072). */
static int take_pixels(pk_vm *vm, pk_obj *a, cifar_batch *out) {
    if (a->kind != PK_ARRAY)
        return pk_fail_at(vm, a->at, "'data' is a %s, expected a numpy array",
                          pk_kind_name(a->kind));
    if (!a->u.a.ready) return pk_fail_at(vm, a->at, "'data' array has no data (no BUILD)");
    const pk_obj *d = a->u.a.dtype;
    if (d->u.d.kind != 'u' || d->u.d.size != 1)
        return pk_fail_at(vm, a->at, "'data' has dtype %c%c%u, expected uint8 (|u1)", d->u.d.order,
                          d->u.d.kind, d->u.d.size);
    if (a->u.a.ndim != 2 || a->u.a.shape[1] != CIFAR_IMAGE_BYTES) {
        char shape[96] = "(";
        for (int i = 0; i < a->u.a.ndim; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? ", " : "",
                     (long long)a->u.a.shape[i]);
        return pk_fail_at(vm, a->at, "'data' has shape %s), expected (N, 3072)", shape);
    }
    if (a->u.a.fortran)
        return pk_fail_at(vm, a->at, "'data' is in Fortran order, expected C order");
    pk_obj *b = a->u.a.bytes;
    out->n = (int)a->u.a.shape[0];
    out->data = b->u.s.p;
    out->stride = CIFAR_IMAGE_BYTES;
    out->owned = b->u.s.owned; /* decoded text: the batch takes it over */
    b->u.s.owned = NULL;
    return 0;
}

/* A label: an int in 0..9. */
static int check_label(pk_vm *vm, size_t at, size_t i, int64_t v, uint8_t *out) {
    if (v < 0 || v >= CIFAR_NUM_CLASSES)
        return pk_fail_at(vm, at, "labels[%zu] is %lld, outside 0..9", i, (long long)v);
    *out = (uint8_t)v;
    return 0;
}

/* Element i of a 1-D integer array, in its byte order. */
static int64_t array_int(const pk_obj *a, size_t i) {
    const pk_obj *d = a->u.a.dtype;
    const uint8_t *p = a->u.a.bytes->u.s.p + i * d->u.d.size;
    uint64_t v = 0;
    int n = (int)d->u.d.size;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[d->u.d.order == '>' ? k : n - 1 - k];
    if (d->u.d.kind == 'i' && n < 8 && (v >> (8 * n - 1) & 1)) v |= ~0ull << (8 * n);
    return (int64_t)v;
}

/* labels: a list (or tuple) of ints, or a 1-D integer array, one per row. */
static int take_labels(pk_vm *vm, const pk_obj *l, cifar_batch *out) {
    int is_seq = l->kind == PK_LIST || l->kind == PK_TUPLE;
    const pk_obj *d = l->kind == PK_ARRAY && l->u.a.ready ? l->u.a.dtype : NULL;
    int is_arr = d && l->u.a.ndim == 1 && (d->u.d.kind == 'i' || d->u.d.kind == 'u') &&
                 (d->u.d.size == 1 || d->u.d.size == 2 || d->u.d.size == 4 || d->u.d.size == 8);
    if (!is_seq && !is_arr)
        return pk_fail_at(vm, l->at, "'labels' is a %s, expected a list of ints",
                          pk_kind_name(l->kind));
    size_t n = is_seq ? l->u.seq.n : (size_t)l->u.a.shape[0];
    if (n != (size_t)out->n)
        return pk_fail_at(vm, l->at, "'labels' has %zu entries but 'data' has %d rows", n, out->n);
    if (!(out->labels = malloc(n ? n : 1))) return pk_fail_at(vm, l->at, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const pk_obj *e = is_seq ? l->u.seq.v[i] : l;
        if (is_seq && e->kind != PK_INT)
            return pk_fail_at(vm, e->at, "labels[%zu] is a %s, expected an int", i,
                              pk_kind_name(e->kind));
        if (check_label(vm, e->at, i, is_seq ? e->u.i : array_int(l, i), &out->labels[i]) < 0)
            return -1;
    }
    return 0;
}

void cifar_batch_free(cifar_batch *b) {
    free(b->labels);
    free(b->owned);
    memset(b, 0, sizeof *b);
}

int cifar_parse_pickle_batch(const uint8_t *buf, size_t len, const char *name, cifar_batch *out,
                             char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    pk_vm vm;
    pk_obj *root, *data, *labels;
    int rc = pk_load(&vm, buf, len, name, &root, err, errlen);
    if (rc == 0) rc = (data = require_key(&vm, root, "data")) ? 0 : -1;
    if (rc == 0) rc = (labels = require_key(&vm, root, "labels")) ? 0 : -1;
    if (rc == 0) rc = take_pixels(&vm, data, out);
    if (rc == 0) rc = take_labels(&vm, labels, out);
    pk_free(&vm);
    if (rc < 0) cifar_batch_free(out);
    return rc;
}

/* A class name: 1..31 bytes, no NUL. */
static int copy_class_name(char dst[CIFAR_NAME_MAX], const uint8_t *p, size_t n) {
    if (n == 0 || n >= CIFAR_NAME_MAX || memchr(p, 0, n)) return -1;
    memcpy(dst, p, n);
    dst[n] = 0;
    return 0;
}

int cifar_parse_pickle_meta(const uint8_t *buf, size_t len, const char *name,
                            char names[CIFAR_NUM_CLASSES][CIFAR_NAME_MAX], char *err,
                            size_t errlen) {
    pk_vm vm;
    pk_obj *root, *l = NULL;
    int rc = pk_load(&vm, buf, len, name, &root, err, errlen);
    if (rc == 0) rc = (l = require_key(&vm, root, "label_names")) ? 0 : -1;
    if (rc == 0 && ((l->kind != PK_LIST && l->kind != PK_TUPLE) || l->u.seq.n != CIFAR_NUM_CLASSES))
        rc = pk_fail_at(&vm, l->at, "'label_names' is not a list of %d names", CIFAR_NUM_CLASSES);
    for (int i = 0; rc == 0 && i < CIFAR_NUM_CLASSES; i++) {
        const pk_obj *s = l->u.seq.v[i];
        if ((s->kind != PK_STR && s->kind != PK_BYTES) ||
            copy_class_name(names[i], s->u.s.p, s->u.s.n) < 0)
            rc = pk_fail_at(&vm, s->at, "label_names[%d] is not a name of 1..%d bytes", i,
                            CIFAR_NAME_MAX - 1);
    }
    pk_free(&vm);
    return rc;
}

/* ==== Binary batches ==== */

int cifar_parse_bin_batch(const uint8_t *buf, size_t len, const char *name, cifar_batch *out,
                          char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len == 0) return set_error(err, errlen, "%s: empty file", name);
    if (len % CIFAR_BIN_RECORD)
        return set_error(err, errlen,
                         "%s: size %zu is not a multiple of 3073 (1 label byte + 3072 pixel bytes)",
                         name, len);
    size_t n = len / CIFAR_BIN_RECORD;
    if (n > INT_MAX) return set_error(err, errlen, "%s: too many records", name);
    if (!(out->labels = malloc(n))) return set_error(err, errlen, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        uint8_t label = buf[i * CIFAR_BIN_RECORD];
        if (label >= CIFAR_NUM_CLASSES) {
            cifar_batch_free(out);
            return set_error(err, errlen, "%s: byte %zu: record %zu has label %u, outside 0..9",
                             name, i * CIFAR_BIN_RECORD, i, label);
        }
        out->labels[i] = label;
    }
    out->n = (int)n;
    out->data = buf + 1;
    out->stride = CIFAR_BIN_RECORD;
    return 0;
}

/* batches.meta.txt: one class name per line; blank lines are ignored. */
static int parse_meta_txt(const uint8_t *buf, size_t len, const char *name,
                          char names[CIFAR_NUM_CLASSES][CIFAR_NAME_MAX], char *err, size_t errlen) {
    int count = 0;
    for (size_t pos = 0, line = 1; pos < len; line++) {
        const uint8_t *p = buf + pos, *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + 1;
        while (n > 0 && isspace(p[n - 1]))
            n--;
        if (n == 0) continue;
        if (count == CIFAR_NUM_CLASSES)
            return set_error(err, errlen, "%s: line %zu: more than %d class names", name, line,
                             CIFAR_NUM_CLASSES);
        if (copy_class_name(names[count++], p, n) < 0)
            return set_error(err, errlen, "%s: line %zu: not a class name of 1..%d bytes", name,
                             line, CIFAR_NAME_MAX - 1);
    }
    if (count != CIFAR_NUM_CLASSES)
        return set_error(err, errlen, "%s: %d class names, expected %d", name, count,
                         CIFAR_NUM_CLASSES);
    return 0;
}

/* ==== The loader ==== */

const char *cifar_layout_name(cifar_layout layout) {
    return layout == CIFAR_LAYOUT_BIN ? "cifar-10-batches-bin" : "cifar-10-batches-py";
}

static int file_exists(const char *dir, const char *name) {
    char path[CIFAR_PATH_MAX];
    struct stat st;
    return path_join(path, sizeof path, dir, name, NULL, 0) == 0 && stat(path, &st) == 0;
}

static void batch_file_name(char out[CIFAR_NAME_MAX], int f, cifar_layout layout) {
    const char *ext = layout == CIFAR_LAYOUT_BIN ? ".bin" : "";
    if (f < CIFAR_NUM_FILES - 1)
        snprintf(out, CIFAR_NAME_MAX, "data_batch_%d%s", f + 1, ext);
    else
        snprintf(out, CIFAR_NAME_MAX, "test_batch%s", ext);
}

/* Which layout dir holds: all six batch files of one of them. */
static int find_layout(const char *dir, cifar_dataset *ds, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return set_error(err, errlen, "%s: %s", dir,
                         errno == ENOENT ? "no such folder" : strerror(errno));
    if (!S_ISDIR(st.st_mode)) return set_error(err, errlen, "%s: not a folder", dir);
    int have[2] = {0, 0};
    for (int l = 0; l < 2; l++)
        for (int f = 0; f < CIFAR_NUM_FILES; f++) {
            batch_file_name(ds->file_names[f], f, (cifar_layout)l);
            have[l] += file_exists(dir, ds->file_names[f]);
        }
    if (!have[0] && !have[1])
        return set_error(err, errlen,
                         "%s: neither a cifar-10-batches-py folder (data_batch_1..5, test_batch) "
                         "nor a cifar-10-batches-bin folder (data_batch_1..5.bin, test_batch.bin)",
                         dir);
    ds->layout = have[0] == CIFAR_NUM_FILES || (have[1] < CIFAR_NUM_FILES && have[0] >= have[1])
                     ? CIFAR_LAYOUT_PY
                     : CIFAR_LAYOUT_BIN;
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        batch_file_name(ds->file_names[f], f, ds->layout);
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        if (!file_exists(dir, ds->file_names[f])) {
            char path[CIFAR_PATH_MAX];
            if (path_join(path, sizeof path, dir, ds->file_names[f], err, errlen) != 0) return -1;
            return set_error(err, errlen, "%s: missing (a %s folder needs all six batch files)",
                             path, cifar_layout_name(ds->layout));
        }
    return 0;
}

/* Class names from batches.meta(.txt) when present, else the official ones. */
static int load_class_names(const char *dir, cifar_dataset *ds, char *err, size_t errlen) {
    const char *meta = ds->layout == CIFAR_LAYOUT_BIN ? "batches.meta.txt" : "batches.meta";
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        strcpy(ds->class_names[c], official_names[c]);
    if (!file_exists(dir, meta)) return 0;
    char path[CIFAR_PATH_MAX];
    uint8_t *buf;
    size_t len;
    if (path_join(path, sizeof path, dir, meta, err, errlen) < 0 ||
        read_file(path, &buf, &len, err, errlen) < 0)
        return -1;
    int rc = ds->layout == CIFAR_LAYOUT_BIN
                 ? parse_meta_txt(buf, len, path, ds->class_names, err, errlen)
                 : cifar_parse_pickle_meta(buf, len, path, ds->class_names, err, errlen);
    free(buf);
    return rc;
}

/* One item of a class list, n bytes at item: a class name (any case) or a
 * number 0..9. Returns the class, or -1. */
static int find_class(const char *item, size_t n, const cifar_dataset *ds) {
    if (n == 1 && isdigit((unsigned char)item[0])) return item[0] - '0';
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        if (strlen(ds->class_names[c]) == n && !strncasecmp(item, ds->class_names[c], n)) return c;
    return -1;
}

static int unknown_class(const char *item, size_t n, const char *in, const cifar_dataset *ds,
                         char *err, size_t errlen) {
    char list[CIFAR_NUM_CLASSES * (CIFAR_NAME_MAX + 2)] = "";
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++) {
        if (c) strcat(list, ", ");
        strcat(list, ds->class_names[c]);
    }
    set_error(err, errlen, "unknown class '%.*s'%s (classes: %s)", (int)(n < 64 ? n : 64), item, in,
              list);
    return CIFAR_BAD_CLASS;
}

/* Item number item of a class list (n bytes at p) into chosen[]. in is
 * " in 'LIST'" for a list, "" for a lone item, so that errors name both. */
static int choose_item(const char *p, size_t n, size_t item, const char *in,
                       int chosen[CIFAR_NUM_CLASSES], const cifar_dataset *ds, char *err,
                       size_t errlen) {
    if (n == 0 && *in) {
        set_error(err, errlen, "empty class name (item %zu)%s", item, in);
        return CIFAR_BAD_CLASS;
    }
    if (n == 3 && !strncasecmp(p, "all", 3)) {
        set_error(err, errlen, "'%.3s' cannot be listed with other classes%s", p, in);
        return CIFAR_BAD_CLASS;
    }
    int c = find_class(p, n, ds);
    if (c < 0) return unknown_class(p, n, in, ds, err, errlen);
    if (chosen[c]) {
        int by_name = !(n == 1 && isdigit((unsigned char)p[0]));
        set_error(err, errlen, "class '%.*s'%s%s%s is listed twice%s", (int)n, p,
                  by_name ? "" : " (", by_name ? "" : ds->class_names[c], by_name ? "" : ")", in);
        return CIFAR_BAD_CLASS;
    }
    chosen[c] = 1;
    return 0;
}

/* class_spec: "all", or a comma list of names and numbers, each class once. */
static int resolve_classes(const char *spec, cifar_dataset *ds, char *err, size_t errlen) {
    int chosen[CIFAR_NUM_CLASSES] = {0};
    if (!strcasecmp(spec, "all")) {
        for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
            chosen[c] = 1;
    } else {
        char in[160] = "";
        if (strchr(spec, ',')) snprintf(in, sizeof in, " in '%.128s'", spec);
        for (size_t at = 0, item = 1;; item++) {
            size_t n = strcspn(spec + at, ",");
            int rc = choose_item(spec + at, n, item, in, chosen, ds, err, errlen);
            if (rc != 0) return rc;
            if (!spec[at + n]) break;
            at += n + 1;
        }
    }
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        if (chosen[c]) ds->class_indices[ds->n_classes++] = c;
    return 0;
}

int cifar_class_chosen(const cifar_dataset *ds, int c) {
    for (int i = 0; i < ds->n_classes; i++)
        if (ds->class_indices[i] == c) return 1;
    return 0;
}

/* snprintf at the end of buf's string, never past len. */
static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t used = len ? strlen(buf) : 0;
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

const char *cifar_choice_name(const cifar_dataset *ds, char *buf, size_t len) {
    if (len) buf[0] = 0;
    if (ds->n_classes == CIFAR_NUM_CLASSES) {
        append(buf, len, "all classes");
        return buf;
    }
    for (int i = 0; i < ds->n_classes; i++)
        append(buf, len, "%s%s", i ? "+" : "", ds->class_names[ds->class_indices[i]]);
    return buf;
}

const char *cifar_choice_label(const cifar_dataset *ds, char *buf, size_t len) {
    cifar_choice_name(ds, buf, len);
    if (ds->n_classes == CIFAR_NUM_CLASSES) {
        append(buf, len, " (0..%d)", CIFAR_NUM_CLASSES - 1);
        return buf;
    }
    append(buf, len, " (%s", ds->n_classes > 1 ? "classes " : "class ");
    for (int i = 0; i < ds->n_classes; i++)
        append(buf, len, "%s%d", i ? ", " : "", ds->class_indices[i]);
    append(buf, len, ")");
    return buf;
}

// src is one record (3, 32, 32) planar, dst is (32, 32, 3) interleaved RGB
static void planar_to_rgb(uint8_t *dst, const uint8_t *src) {
    for (int p = 0; p < CIFAR_PIXELS; p++) {
        dst[3 * p + 0] = src[p];
        dst[3 * p + 1] = src[CIFAR_PIXELS + p];
        dst[3 * p + 2] = src[2 * CIFAR_PIXELS + p];
    }
}

/* Appends the chosen classes' images of batch b, in its order, to
 * ds->pixels, which holds *kept images so far, and counts every class. */
static int keep_chosen(cifar_dataset *ds, int f, const cifar_batch *b, int *kept, const char *path,
                       char *err, size_t errlen) {
    int *counts = f < CIFAR_NUM_FILES - 1 ? ds->train_class_counts : ds->test_class_counts;
    int chosen[CIFAR_NUM_CLASSES], mine = 0;
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        chosen[c] = cifar_class_chosen(ds, c);
    for (int i = 0; i < b->n; i++) {
        counts[b->labels[i]]++;
        mine += chosen[b->labels[i]];
    }
    ds->file_records[f] = b->n;
    if (!mine) return 0;
    uint8_t *p = realloc(ds->pixels, (size_t)(*kept + mine) * CIFAR_IMAGE_BYTES);
    if (!p) return set_error(err, errlen, "%s: out of memory", path);
    ds->pixels = p;
    for (int i = 0; i < b->n; i++)
        if (chosen[b->labels[i]])
            planar_to_rgb(p + (size_t)(*kept)++ * CIFAR_IMAGE_BYTES,
                          b->data + (size_t)i * b->stride);
    return 0;
}

/* Reads batch file f, keeps its images of the chosen classes, frees the file. */
static int load_batch_file(const char *dir, int f, cifar_dataset *ds, int *kept, char *err,
                           size_t errlen) {
    char path[CIFAR_PATH_MAX];
    uint8_t *buf;
    size_t len;
    if (path_join(path, sizeof path, dir, ds->file_names[f], err, errlen) < 0 ||
        read_file(path, &buf, &len, err, errlen) < 0)
        return -1;
    cifar_batch b;
    int rc = ds->layout == CIFAR_LAYOUT_BIN
                 ? cifar_parse_bin_batch(buf, len, path, &b, err, errlen)
                 : cifar_parse_pickle_batch(buf, len, path, &b, err, errlen);
    if (rc == 0) rc = keep_chosen(ds, f, &b, kept, path, err, errlen);
    cifar_batch_free(&b);
    free(buf);
    return rc;
}

/* Splits the kept training images into training and validation. */
static int split_validation(cifar_dataset *ds, int n_trainval, int n_val, char *err,
                            size_t errlen) {
    if (n_val < 0 || n_val >= n_trainval) {
        char name[CIFAR_CHOICE_MAX], who[CIFAR_CHOICE_MAX + 16];
        cifar_choice_name(ds, name, sizeof name);
        if (ds->n_classes == 1)
            snprintf(who, sizeof who, "class '%s' has", name);
        else
            snprintf(who, sizeof who, "%s have", name);
        return set_error(err, errlen,
                         "validation size %d out of range: %s %d training images, so it must be "
                         "0..%d",
                         n_val, who, n_trainval, n_trainval - 1);
    }
    ds->n_val = n_val;
    ds->n_train = n_trainval - n_val;
    ds->train = ds->pixels;
    ds->test = ds->pixels + (size_t)n_trainval * CIFAR_IMAGE_BYTES;
    return 0;
}

int cifar_load(const char *dir, const char *class_spec, int n_val, cifar_dataset *ds, char *err,
               size_t errlen) {
    memset(ds, 0, sizeof *ds);
    int kept = 0, n_trainval = 0, rc = 0;
    if (find_layout(dir, ds, err, errlen) < 0 || load_class_names(dir, ds, err, errlen) < 0)
        rc = -1;
    if (rc == 0) rc = resolve_classes(class_spec ? class_spec : "bird", ds, err, errlen);
    for (int f = 0; rc == 0 && f < CIFAR_NUM_FILES; f++) {
        rc = load_batch_file(dir, f, ds, &kept, err, errlen);
        if (f == CIFAR_NUM_FILES - 2) n_trainval = kept;
    }
    ds->n_test = kept - n_trainval;
    if (rc == 0) rc = split_validation(ds, n_trainval, n_val, err, errlen);
    if (rc < 0) cifar_free(ds);
    return rc;
}

void cifar_free(cifar_dataset *ds) {
    free(ds->pixels);
    memset(ds, 0, sizeof *ds);
}
