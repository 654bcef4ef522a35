/* CIFAR batch files written byte for byte as the real writers do, so that
 * tests need no dataset download:
 *   fx_pickle_py2   Python 2 cPickle protocol 2, the official files
 *   fx_pickle_py3   Python 3 + numpy 1.x pickle.dumps at protocol 2, 4 or 5
 *   fx_bin          the official binary records
 * fx_pickle_py2's output matches the official data_batch_N opcode for opcode;
 * fx_pickle_py3's matches pickle.dumps(d, protocol=4 or 5) of the same dict
 * byte for byte (checked by hand against Python 3.11, numpy 1.24). */
#ifndef COLORIZE_CIFAR_FIXTURES_H
#define COLORIZE_CIFAR_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
    long frame_start; /* protocol 4+: where the open frame's 9-byte header goes, or -1 */
    int framing;
    unsigned memo; /* next memo index */
} fx_buf;

/* What goes into one batch. data is rows * cols * itemsize bytes (itemsize
 * from dtype: "u1" is 1); labels may hold values a real file never would. */
typedef struct {
    int rows, cols;
    const uint8_t *data;
    const char *dtype; /* "u1" */
    int fortran;
    int n_labels;
    const int *labels;
    const char *batch_label;
} fx_batch;

static inline void fx_put(fx_buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void fx_byte(fx_buf *b, uint8_t c) {
    fx_put(b, &c, 1);
}

static inline void fx_le(fx_buf *b, uint64_t v, int width) {
    for (int i = 0; i < width; i++)
        fx_byte(b, (uint8_t)(v >> (8 * i)));
}

static inline void fx_free(fx_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static inline int fx_itemsize(const char *dtype) {
    return atoi(dtype + strspn(dtype, "<>|=abcdefghijklmnopqrstuvwxyz"));
}

/* Filename of record i, as the official files name them. */
static inline void fx_filename(char *out, size_t len, int i, int label) {
    static const char *const names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};
    snprintf(out, len, "%s_s_%06d.png", names[label >= 0 && label < 10 ? label : 0], i);
}

/* ==== Python 2 cPickle, protocol 2 ==== */

static inline void fx2_put(fx_buf *b) {
    if (b->memo < 256) {
        fx_byte(b, 'q');
        fx_byte(b, (uint8_t)b->memo);
    } else {
        fx_byte(b, 'r');
        fx_le(b, b->memo, 4);
    }
    b->memo++;
}

static inline void fx2_int(fx_buf *b, long v) {
    if (v >= 0 && v < 256) {
        fx_byte(b, 'K');
        fx_le(b, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        fx_byte(b, 'M');
        fx_le(b, (uint64_t)v, 2);
    } else {
        fx_byte(b, 'J');
        fx_le(b, (uint64_t)v, 4);
    }
}

/* A Python 2 str: SHORT_BINSTRING or BINSTRING, memoised. */
static inline void fx2_str(fx_buf *b, const void *s, size_t n) {
    if (n < 256) {
        fx_byte(b, 'U');
        fx_byte(b, (uint8_t)n);
    } else {
        fx_byte(b, 'T');
        fx_le(b, n, 4);
    }
    fx_put(b, s, n);
    fx2_put(b);
}

static inline void fx2_cstr(fx_buf *b, const char *s) {
    fx2_str(b, s, strlen(s));
}

/* cPickle's batch_list: MARK items APPENDS in groups of 1000; a lone last
 * item gets APPEND.
 * item(b, i, ctx) writes item i. */
static inline void fx_list(fx_buf *b, int n, void (*item)(fx_buf *, int, const void *),
                           const void *ctx) {
    for (int i = 0; i < n; i += 1000) {
        int m = n - i < 1000 ? n - i : 1000;
        if (m == 1) {
            item(b, i, ctx);
            fx_byte(b, 'a');
            continue;
        }
        fx_byte(b, '(');
        for (int k = 0; k < m; k++)
            item(b, i + k, ctx);
        fx_byte(b, 'e');
    }
}

static inline void fx2_label_item(fx_buf *b, int i, const void *ctx) {
    fx2_int(b, ((const fx_batch *)ctx)->labels[i]);
}

static inline void fx2_name_item(fx_buf *b, int i, const void *ctx) {
    const fx_batch *x = ctx;
    char name[64];
    fx_filename(name, sizeof name, i, i < x->n_labels ? x->labels[i] : 0);
    fx2_cstr(b, name);
}

/* The official layout: {'batch_label', 'labels', 'data', 'filenames'}. */
static inline void fx_pickle_py2(fx_buf *b, const fx_batch *x) {
    memset(b, 0, sizeof *b);
    b->memo = 1;
    fx_put(b, "\x80\x02}", 3);
    fx2_put(b);
    fx_byte(b, '(');
    fx2_cstr(b, "batch_label");
    fx2_cstr(b, x->batch_label);
    fx2_cstr(b, "labels");
    fx_byte(b, ']');
    fx2_put(b);
    fx_list(b, x->n_labels, fx2_label_item, x);
    fx2_cstr(b, "data");
    fx_put(b, "cnumpy.core.multiarray\n_reconstruct\n", 36);
    fx2_put(b);
    fx_put(b, "cnumpy\nndarray\n", 15);
    fx2_put(b);
    fx_put(b, "K\x00\x85", 3);
    fx2_cstr(b, "b");
    fx_put(b, "\x87R", 2);
    fx2_put(b);
    fx_put(b, "(K\x01", 3);
    fx2_int(b, x->rows);
    fx2_int(b, x->cols);
    fx_put(b,
           "\x86"
           "cnumpy\ndtype\n",
           14);
    fx2_put(b);
    fx2_cstr(b, x->dtype);
    fx_put(b, "K\x00K\x01\x87R", 6);
    fx2_put(b);
    fx_put(b, "(K\x03", 3);
    fx2_cstr(b, fx_itemsize(x->dtype) == 1 ? "|" : "<");
    fx_put(b, "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb", 17);
    fx_byte(b, x->fortran ? 0x88 : 0x89);
    fx2_str(b, x->data, (size_t)x->rows * x->cols * fx_itemsize(x->dtype));
    fx_put(b, "tb", 2);
    fx2_put(b);
    fx2_cstr(b, "filenames");
    fx_byte(b, ']');
    fx2_put(b);
    fx_list(b, x->rows, fx2_name_item, x);
    fx_put(b, "u.", 2);
}

/* batches.meta: {'num_cases_per_batch': 10000, 'label_names': [...], 'num_vis': 3072}. */
static inline void fx_meta_py2(fx_buf *b, const char *const names[], int n) {
    memset(b, 0, sizeof *b);
    b->memo = 1;
    fx_put(b, "\x80\x02}", 3);
    fx2_put(b);
    fx_byte(b, '(');
    fx2_cstr(b, "num_cases_per_batch");
    fx2_int(b, 10000);
    fx2_cstr(b, "label_names");
    fx_byte(b, ']');
    fx2_put(b);
    fx_byte(b, '(');
    for (int i = 0; i < n; i++)
        fx2_cstr(b, names[i]);
    fx_byte(b, 'e');
    fx2_cstr(b, "num_vis");
    fx2_int(b, 3072);
    fx_put(b, "u.", 2);
}

/* ==== Python 3 pickle.dumps, protocols 2, 4, 5 ==== */

#define FX_FRAME_TARGET (64 * 1024)

/* _pickle.c's framing: a frame opens at the first write after a commit, with
 * 9 bytes reserved for its header; a frame under 4 bytes loses the header. */
static inline void fx3_write(fx_buf *b, const void *p, size_t n) {
    if (b->framing && b->frame_start < 0) {
        b->frame_start = (long)b->n;
        fx_put(b, "\x95\0\0\0\0\0\0\0\0", 9);
    }
    fx_put(b, p, n);
}

static inline void fx3_commit(fx_buf *b) {
    if (b->frame_start < 0) return;
    size_t len = b->n - (size_t)b->frame_start - 9;
    if (len >= 4) {
        for (int i = 0; i < 8; i++)
            b->p[b->frame_start + 1 + i] = (uint8_t)(len >> (8 * i));
    } else {
        memmove(b->p + b->frame_start, b->p + b->frame_start + 9, len);
        b->n -= 9;
    }
    b->frame_start = -1;
}

/* Called as each object's save() starts. */
static inline void fx3_boundary(fx_buf *b) {
    if (b->frame_start >= 0 && b->n - (size_t)b->frame_start - 9 >= FX_FRAME_TARGET) fx3_commit(b);
}

static inline void fx3_op(fx_buf *b, uint8_t op) {
    fx3_write(b, &op, 1);
}

static inline void fx3_le(fx_buf *b, uint64_t v, int width) {
    uint8_t t[8];
    for (int i = 0; i < width; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    fx3_write(b, t, (size_t)width);
}

/* Memoises the top: MEMOIZE from protocol 4, BINPUT / LONG_BINPUT before. */
static inline void fx3_put(fx_buf *b, int proto) {
    if (proto >= 4)
        fx3_op(b, 0x94);
    else if (b->memo < 256) {
        fx3_op(b, 'q');
        fx3_le(b, b->memo, 1);
    } else {
        fx3_op(b, 'r');
        fx3_le(b, b->memo, 4);
    }
    b->memo++;
}

static inline void fx3_get(fx_buf *b, unsigned idx) {
    fx3_op(b, 'h');
    fx3_le(b, idx, 1);
}

static inline void fx3_int(fx_buf *b, long v) {
    fx3_boundary(b);
    if (v >= 0 && v < 256) {
        fx3_op(b, 'K');
        fx3_le(b, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        fx3_op(b, 'M');
        fx3_le(b, (uint64_t)v, 2);
    } else {
        fx3_op(b, 'J');
        fx3_le(b, (uint64_t)v, 4);
    }
}

static inline void fx3_str(fx_buf *b, int proto, const char *s) {
    size_t n = strlen(s);
    fx3_boundary(b);
    if (proto >= 4 && n < 256) {
        fx3_op(b, 0x8c);
        fx3_le(b, n, 1);
    } else {
        fx3_op(b, 'X');
        fx3_le(b, n, 4);
    }
    fx3_write(b, s, n);
    fx3_put(b, proto);
}

/* A module.name global: STACK_GLOBAL from protocol 4 (module_memo: the memo
 * index of an already written module string, or -1), GLOBAL before. */
static inline void fx3_global(fx_buf *b, int proto, const char *module, const char *name,
                              int module_memo) {
    fx3_boundary(b);
    if (proto < 4) {
        char line[128];
        int n = snprintf(line, sizeof line, "c%s\n%s\n", module, name);
        fx3_write(b, line, (size_t)n);
    } else {
        if (module_memo >= 0)
            fx3_get(b, (unsigned)module_memo);
        else
            fx3_str(b, proto, module);
        fx3_str(b, proto, name);
        fx3_op(b, 0x93);
    }
    fx3_put(b, proto);
}

/* bytes: SHORT_BINBYTES / BINBYTES, big ones outside any frame. At protocol 2
 * Python 3 writes _codecs.encode(text, 'latin1'); codecs_memo is the memo of
 * that global and of 'latin1' once written (both -1 before). */
static inline void fx3_bytes(fx_buf *b, int proto, const uint8_t *p, size_t n, int *codecs_memo) {
    fx3_boundary(b);
    if (proto < 3 && n == 0) { /* bytes() */
        fx3_global(b, proto, "__builtin__", "bytes", -1);
        fx3_op(b, ')');
        fx3_op(b, 'R');
        fx3_put(b, proto);
        return;
    }
    if (proto < 3) {
        if (codecs_memo[0] < 0) {
            fx3_global(b, proto, "_codecs", "encode", -1);
            codecs_memo[0] = (int)b->memo - 1;
        } else
            fx3_get(b, (unsigned)codecs_memo[0]);
        size_t utf8 = 0;
        for (size_t i = 0; i < n; i++)
            utf8 += p[i] < 0x80 ? 1 : 2;
        fx3_op(b, 'X');
        fx3_le(b, utf8, 4);
        for (size_t i = 0; i < n; i++) {
            uint8_t t[2] = {(uint8_t)(0xc0 | p[i] >> 6), (uint8_t)(0x80 | (p[i] & 0x3f))};
            if (p[i] < 0x80)
                fx3_write(b, p + i, 1);
            else
                fx3_write(b, t, 2);
        }
        fx3_put(b, proto);
        if (codecs_memo[1] < 0) {
            fx3_str(b, proto, "latin1");
            codecs_memo[1] = (int)b->memo - 1;
        } else
            fx3_get(b, (unsigned)codecs_memo[1]);
        fx3_op(b, 0x86);
        fx3_put(b, proto);
        fx3_op(b, 'R');
        fx3_put(b, proto);
        return;
    }
    uint8_t op = n < 256 ? 'C' : 'B';
    if (n >= FX_FRAME_TARGET && b->framing) {
        fx3_commit(b);
        b->framing = 0;
        fx3_op(b, op);
        fx3_le(b, n, 4);
        fx3_write(b, p, n);
        b->framing = 1;
    } else {
        fx3_op(b, op);
        fx3_le(b, n, n < 256 ? 1 : 4);
        fx3_write(b, p, n);
    }
    fx3_put(b, proto);
}

static inline void fx3_label_item(fx_buf *b, int i, const void *ctx) {
    fx3_int(b, ((const fx_batch *)ctx)->labels[i]);
}

typedef struct {
    const fx_batch *x;
    int proto;
} fx3_ctx;

static inline void fx3_name_item(fx_buf *b, int i, const void *ctx) {
    const fx3_ctx *c = ctx;
    char name[64];
    fx_filename(name, sizeof name, i, i < c->x->n_labels ? c->x->labels[i] : 0);
    fx3_str(b, c->proto, name);
}

/* Python 3's batch_list: APPEND only for a list of one; a last group of one
 * still gets MARK ... APPENDS. Opcodes go through fx3_write so frames see them. */
static inline void fx3_list(fx_buf *b, int n, void (*item)(fx_buf *, int, const void *),
                            const void *ctx) {
    if (n == 1) {
        item(b, 0, ctx);
        fx3_op(b, 'a');
        return;
    }
    for (int i = 0; i < n; i += 1000) {
        int m = n - i < 1000 ? n - i : 1000;
        fx3_op(b, '(');
        for (int k = 0; k < m; k++)
            item(b, i + k, ctx);
        fx3_op(b, 'e');
    }
}

/* numpy.dtype(code, False, True) with its state (3, order, None, None, None, -1, -1, 0). */
static inline void fx3_dtype(fx_buf *b, int proto, const char *code, int numpy_memo) {
    fx3_global(b, proto, "numpy", "dtype", numpy_memo);
    fx3_str(b, proto, code);
    fx3_op(b, 0x89);
    fx3_op(b, 0x88);
    fx3_op(b, 0x87);
    fx3_put(b, proto);
    fx3_op(b, 'R');
    fx3_put(b, proto);
    fx3_op(b, '(');
    fx3_int(b, 3);
    fx3_str(b, proto, fx_itemsize(code) == 1 ? "|" : "<");
    fx3_write(b, "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t", 16);
    fx3_put(b, proto);
    fx3_op(b, 'b');
}

/* ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b') + BUILD state. */
static inline void fx3_array_reduce(fx_buf *b, int proto, const fx_batch *x, int *codecs_memo) {
    fx3_global(b, proto, "numpy.core.multiarray", "_reconstruct", -1);
    fx3_global(b, proto, "numpy", "ndarray", -1);
    unsigned numpy_memo = b->memo - 3; /* 'numpy' at protocol 4 */
    fx3_int(b, 0);
    fx3_op(b, 0x85);
    fx3_put(b, proto);
    fx3_bytes(b, proto, (const uint8_t *)"b", 1, codecs_memo);
    fx3_op(b, 0x87);
    fx3_put(b, proto);
    fx3_op(b, 'R');
    fx3_put(b, proto);
    fx3_op(b, '(');
    fx3_int(b, 1);
    fx3_int(b, x->rows);
    fx3_int(b, x->cols);
    fx3_op(b, 0x86);
    fx3_put(b, proto);
    fx3_dtype(b, proto, x->dtype, proto >= 4 ? (int)numpy_memo : -1);
    fx3_op(b, x->fortran ? 0x88 : 0x89);
    fx3_bytes(b, proto, x->data, (size_t)x->rows * x->cols * fx_itemsize(x->dtype), codecs_memo);
    fx3_op(b, 't');
    fx3_put(b, proto);
    fx3_op(b, 'b');
}

/* Protocol 5: _frombuffer(bytearray, dtype, shape, order) with the buffer
 * in-band; readonly: READONLY_BUFFER after it (pickle_fixtures.h). */
static inline void fx3_array_frombuffer(fx_buf *b, int proto, const fx_batch *x, int readonly) {
    fx3_global(b, proto, "numpy.core.numeric", "_frombuffer", -1);
    fx3_op(b, '(');
    size_t n = (size_t)x->rows * x->cols * fx_itemsize(x->dtype);
    fx3_boundary(b);
    if (n >= FX_FRAME_TARGET) {
        fx3_commit(b);
        b->framing = 0;
        fx3_op(b, 0x96);
        fx3_le(b, n, 8);
        fx3_write(b, x->data, n);
        b->framing = 1;
    } else {
        fx3_op(b, 0x96);
        fx3_le(b, n, 8);
        fx3_write(b, x->data, n);
    }
    if (readonly) fx3_op(b, 0x98);
    fx3_put(b, proto);
    fx3_dtype(b, proto, x->dtype, -1);
    fx3_int(b, x->rows);
    fx3_int(b, x->cols);
    fx3_op(b, 0x86);
    fx3_put(b, proto);
    fx3_str(b, proto, x->fortran ? "F" : "C");
    fx3_op(b, 't');
    fx3_put(b, proto);
    fx3_op(b, 'R');
    fx3_put(b, proto);
}

/* pickle.dumps({'batch_label': str, 'labels': [int], 'data': ndarray,
 * 'filenames': [str]}, protocol=proto) with proto 2, 4 or 5. */
static inline void fx_pickle_py3(fx_buf *b, const fx_batch *x, int proto) {
    memset(b, 0, sizeof *b);
    b->frame_start = -1;
    int codecs_memo[2] = {-1, -1};
    fx_put(b, "\x80", 1);
    fx_byte(b, (uint8_t)proto);
    b->framing = proto >= 4;
    fx3_op(b, '}');
    fx3_put(b, proto);
    fx3_op(b, '(');
    fx3_str(b, proto, "batch_label");
    fx3_str(b, proto, x->batch_label);
    fx3_str(b, proto, "labels");
    fx3_boundary(b);
    fx3_op(b, ']');
    fx3_put(b, proto);
    fx3_list(b, x->n_labels, fx3_label_item, x);
    fx3_str(b, proto, "data");
    fx3_boundary(b);
    if (proto >= 5)
        fx3_array_frombuffer(b, proto, x, 0);
    else
        fx3_array_reduce(b, proto, x, codecs_memo);
    fx3_str(b, proto, "filenames");
    fx3_boundary(b);
    fx3_op(b, ']');
    fx3_put(b, proto);
    fx3_ctx c = {x, proto};
    fx3_list(b, x->rows, fx3_name_item, &c);
    fx3_op(b, 'u');
    fx3_op(b, '.');
    fx3_commit(b);
}

/* ==== binary records ==== */

/* n records: label byte, then 3072 planar pixel bytes. */
static inline void fx_bin(fx_buf *b, int n, const int *labels, const uint8_t *data) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < n; i++) {
        fx_byte(b, (uint8_t)labels[i]);
        fx_put(b, data + (size_t)i * 3072, 3072);
    }
}

#endif
