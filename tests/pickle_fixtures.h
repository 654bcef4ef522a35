/* Batch and meta pickles that use the opcodes the official files never hold,
 * so that each of the reader's handlers runs in a test:
 *   what Python 3 writes for other values: SETITEM (a one-item dict, and
 *   every item at protocol 0), POP and POP_MARK (a tuple that holds itself),
 *   BINFLOAT (a float), NEWOBJ (a class instance) and NEWOBJ_EX (one whose
 *   __new__ takes keywords);
 *   what any unpickler accepts though Python writes it only for huge values
 *   or never: LONG4 for a small int, BINUNICODE8 for a short str, DUP, and
 *   READONLY_BUFFER on an in-band buffer.
 * The values written for 'info' match pickle.dumps of the same Python value
 * byte for byte (Python 3.11); every fixture loads with pickle.loads when
 * stand-ins for the numpy functions are given (checked by hand). */
#ifndef COLORIZE_PICKLE_FIXTURES_H
#define COLORIZE_PICKLE_FIXTURES_H

#include "cifar_fixtures.h"

/* What the batch's extra key 'info' holds. */
typedef enum {
    FXO_INFO_NONE,       /* no 'info' key */
    FXO_INFO_TUPLE_POP,  /* t = (l,) with l = [t]: ... APPEND POP GET */
    FXO_INFO_TUPLE_MARK, /* t = (l, 1, 2, 3) with l = [t]: ... APPEND 1 2 3 POP_MARK GET */
    FXO_INFO_TUPLE_P0,   /* t = (l,) ending as protocol 0 does: POP POP GET, the second POP
                          * taking the tuple's MARK */
    FXO_INFO_FLOATS,     /* (125.3, 123.0, 113.9): BINFLOAT */
    FXO_INFO_NEWOBJ,     /* __main__.BatchInfo() with source='cifar-10': NEWOBJ, BUILD */
    FXO_INFO_NEWOBJ_EX   /* BatchInfo(version=1) with __getnewargs_ex__: NEWOBJ_EX, BUILD */
} fxo_info;

/* How {'batch_label': str, 'labels': [int], 'data': ndarray[, 'info': ...]}
 * is written; all zero but proto is fx_pickle_py3 without 'filenames'. */
typedef struct {
    int proto;     /* 2, 4 or 5 */
    int setitem;   /* SETITEM after each key and value, not MARK ... SETITEMS */
    int dup;       /* a label equal to the one before it is a DUP of that one */
    int long4;     /* labels as LONG4 of this many bytes; -1: as few as pickle's
                    * encode_long needs (none for 0) */
    int unicode8;  /* every str as BINUNICODE8 */
    int readonly;  /* READONLY_BUFFER after the protocol 5 data buffer */
    int floats;    /* labels as BINFLOAT, which the reader refuses */
    fxo_info info; /* the value under 'info' */
} fxo_style;

typedef struct {
    const fx_batch *x;
    const fxo_style *s;
} fxo_ctx;

/* BINGET or LONG_BINGET, as the picklers choose. */
static inline void fxo_get(fx_buf *b, unsigned idx) {
    if (idx < 256) {
        fx3_get(b, idx);
    } else {
        fx3_op(b, 'j');
        fx3_le(b, idx, 4);
    }
}

/* Memoises the top; returns its memo index. */
static inline unsigned fxo_put(fx_buf *b, int proto) {
    unsigned idx = b->memo;
    fx3_put(b, proto);
    return idx;
}

/* A str, memoised; returns its memo index. */
static inline unsigned fxo_str(fx_buf *b, const fxo_style *s, const char *text) {
    if (!s->unicode8) {
        fx3_str(b, s->proto, text);
        return b->memo - 1;
    }
    size_t n = strlen(text);
    fx3_boundary(b);
    fx3_op(b, 0x8d);
    fx3_le(b, n, 8);
    fx3_write(b, text, n);
    return fxo_put(b, s->proto);
}

static inline void fxo_label_item(fx_buf *b, int i, const void *ctx) {
    const fxo_ctx *c = ctx;
    int v = c->x->labels[i];
    if (c->s->dup && i % 1000 && v == c->x->labels[i - 1]) {
        fx3_op(b, '2');
        return;
    }
    if (c->s->floats) {
        double f = v;
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        fx3_boundary(b);
        fx3_op(b, 'G');
        for (int k = 7; k >= 0; k--)
            fx3_le(b, bits >> (8 * k), 1); /* big-endian */
        return;
    }
    if (!c->s->long4) {
        fx3_int(b, v);
        return;
    }
    int width = c->s->long4;
    if (width < 0) width = v == 0 ? 0 : v >= -128 && v < 128 ? 1 : 2;
    fx3_boundary(b);
    fx3_op(b, 0x8b);
    fx3_le(b, (uint64_t)width, 4);
    fx3_le(b, (uint64_t)(int64_t)v, width);
}

static inline void fxo_info_value(fx_buf *b, const fxo_style *s) {
    int p = s->proto;
    unsigned list, tuple, key;
    fx3_boundary(b);
    switch (s->info) {
    case FXO_INFO_NONE: break;
    case FXO_INFO_TUPLE_POP:
        fx3_op(b, ']');
        list = fxo_put(b, p);
        fxo_get(b, list);
        fx3_op(b, 0x85);
        tuple = fxo_put(b, p);
        fx3_op(b, 'a');
        fx3_op(b, '0');
        fxo_get(b, tuple);
        break;
    case FXO_INFO_TUPLE_MARK:
    case FXO_INFO_TUPLE_P0:
        fx3_op(b, '(');
        fx3_op(b, ']');
        list = fxo_put(b, p);
        fx3_op(b, '(');
        fxo_get(b, list);
        if (s->info == FXO_INFO_TUPLE_MARK) fx3_write(b, "K\x01K\x02K\x03", 6);
        fx3_op(b, 't');
        tuple = fxo_put(b, p);
        fx3_op(b, 'a');
        if (s->info == FXO_INFO_TUPLE_MARK)
            fx3_write(b,
                      "K\x01K\x02K\x03"
                      "1",
                      7);
        else
            fx3_write(b, "00", 2);
        fxo_get(b, tuple);
        break;
    case FXO_INFO_FLOATS:
        fx3_write(b, "G@_S33333G@^\xc0\0\0\0\0\0G@\\y\x99\x99\x99\x99\x9a\x87", 28);
        fxo_put(b, p);
        break;
    case FXO_INFO_NEWOBJ:
        fx3_global(b, p, "__main__", "BatchInfo", -1);
        fx3_write(b, ")\x81", 2);
        fxo_put(b, p);
        fx3_op(b, '}');
        fxo_put(b, p);
        fxo_str(b, s, "source");
        fxo_str(b, s, "cifar-10");
        fx3_write(b, "sb", 2);
        break;
    case FXO_INFO_NEWOBJ_EX:
        fx3_global(b, p, "__main__", "BatchInfo", -1);
        fx3_write(b, ")}", 2);
        fxo_put(b, p);
        key = fxo_str(b, s, "version");
        fx3_write(b, "K\x01s\x92", 4);
        fxo_put(b, p);
        fx3_op(b, '}');
        fxo_put(b, p);
        fxo_get(b, key);
        fx3_write(b, "K\x01sb", 4);
        break;
    }
}

/* Ends one dict item: SETITEM in setitem style, else nothing (SETITEMS follows). */
static inline void fxo_item_end(fx_buf *b, const fxo_style *s) {
    if (s->setitem) fx3_op(b, 's');
}

static inline void fx_pickle_styled(fx_buf *b, const fx_batch *x, const fxo_style *s) {
    int p = s->proto, codecs_memo[2] = {-1, -1};
    memset(b, 0, sizeof *b);
    b->frame_start = -1;
    fx_byte(b, 0x80);
    fx_byte(b, (uint8_t)p);
    b->framing = p >= 4;
    fx3_op(b, '}');
    fxo_put(b, p);
    if (!s->setitem) fx3_op(b, '(');
    fxo_str(b, s, "batch_label");
    fxo_str(b, s, x->batch_label);
    fxo_item_end(b, s);
    fxo_str(b, s, "labels");
    fx3_boundary(b);
    fx3_op(b, ']');
    fxo_put(b, p);
    fxo_ctx c = {x, s};
    fx3_list(b, x->n_labels, fxo_label_item, &c);
    fxo_item_end(b, s);
    fxo_str(b, s, "data");
    fx3_boundary(b);
    if (p >= 5)
        fx3_array_frombuffer(b, p, x, s->readonly);
    else
        fx3_array_reduce(b, p, x, codecs_memo);
    fxo_item_end(b, s);
    if (s->info != FXO_INFO_NONE) {
        fxo_str(b, s, "info");
        fxo_info_value(b, s);
        fxo_item_end(b, s);
    }
    if (!s->setitem) fx3_op(b, 'u');
    fx3_op(b, '.');
    fx3_commit(b);
}

/* batches.meta as Python 3 writes it: {'num_cases_per_batch': 10000,
 * 'label_names': [...], 'num_vis': 3072}, in style s (proto, unicode8, setitem). */
static inline void fx_meta_styled(fx_buf *b, const char *const names[], int n, const fxo_style *s) {
    int p = s->proto;
    memset(b, 0, sizeof *b);
    b->frame_start = -1;
    fx_byte(b, 0x80);
    fx_byte(b, (uint8_t)p);
    b->framing = p >= 4;
    fx3_op(b, '}');
    fxo_put(b, p);
    if (!s->setitem) fx3_op(b, '(');
    fxo_str(b, s, "num_cases_per_batch");
    fx3_int(b, 10000);
    fxo_item_end(b, s);
    fxo_str(b, s, "label_names");
    fx3_boundary(b);
    fx3_op(b, ']');
    fxo_put(b, p);
    fx3_op(b, '(');
    for (int i = 0; i < n; i++)
        fxo_str(b, s, names[i]);
    fx3_op(b, 'e');
    fxo_item_end(b, s);
    fxo_str(b, s, "num_vis");
    fx3_int(b, 3072);
    fxo_item_end(b, s);
    if (!s->setitem) fx3_op(b, 'u');
    fx3_op(b, '.');
    fx3_commit(b);
}

#endif
