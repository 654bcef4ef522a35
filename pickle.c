/* The pickle stack machine: pickle.h says what it reads. */
#include "pickle.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* clang-format off */
static const char *const pk_opnames[256] = {
    ['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK", ['2'] = "DUP",
    ['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT", ['K'] = "BININT1", ['L'] = "LONG",
    ['M'] = "BININT2", ['N'] = "NONE", ['P'] = "PERSID", ['Q'] = "BINPERSID", ['R'] = "REDUCE",
    ['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING", ['V'] = "UNICODE",
    ['X'] = "BINUNICODE", ['a'] = "APPEND", ['b'] = "BUILD", ['c'] = "GLOBAL", ['d'] = "DICT",
    ['}'] = "EMPTY_DICT", ['e'] = "APPENDS", ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST",
    ['j'] = "LONG_BINGET", ['l'] = "LIST", [']'] = "EMPTY_LIST", ['o'] = "OBJ", ['p'] = "PUT",
    ['q'] = "BINPUT", ['r'] = "LONG_BINPUT", ['s'] = "SETITEM", ['t'] = "TUPLE",
    [')'] = "EMPTY_TUPLE", ['u'] = "SETITEMS", ['G'] = "BINFLOAT", [0x80] = "PROTO",
    [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4", [0x85] = "TUPLE1",
    [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE",
    [0x8a] = "LONG1", [0x8b] = "LONG4", ['B'] = "BINBYTES", ['C'] = "SHORT_BINBYTES",
    [0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8",
    [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET", [0x92] = "NEWOBJ_EX",
    [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
    [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

/* clang-format on */

static const char *pk_opname(uint8_t op) {
    return pk_opnames[op] ? pk_opnames[op] : "?";
}

const char *pk_kind_name(pk_kind k) {
    static const char *const names[] = {"None",        "bool",        "int",   "float", "bytes",
                                        "str",         "tuple",       "list",  "dict",  "global",
                                        "numpy dtype", "numpy array", "object"};
    return names[k];
}

int pk_fail_at(pk_vm *vm, size_t at, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return set_error(vm->err, vm->errlen, "%s: byte %zu: %s", vm->name, at, msg);
}
#define pk_fail(vm, ...) pk_fail_at((vm), (vm)->op_at, __VA_ARGS__)

/* Grows *p (elements of size elem) to hold at least need, at most max. New
 * space is zeroed. */
static int pk_grow(void **p, size_t *cap, size_t need, size_t elem, size_t max) {
    if (need <= *cap) return 0;
    if (need > max) return -1;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    if (n > max) n = max;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
    *p = q;
    *cap = n;
    return 0;
}

static pk_obj *pk_new(pk_vm *vm, pk_kind kind) {
    if (vm->nobjs >= PK_MAX_OBJECTS) {
        pk_fail(vm, "more than %u objects: too large for a CIFAR batch", PK_MAX_OBJECTS);
        return NULL;
    }
    if (!vm->slabs || vm->slabs->used == PK_SLAB) {
        pk_slab *s = malloc(sizeof *s);
        if (!s) {
            pk_fail(vm, "out of memory");
            return NULL;
        }
        s->next = vm->slabs;
        s->used = 0;
        vm->slabs = s;
    }
    pk_obj *o = &vm->slabs->objs[vm->slabs->used++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->at = vm->op_at;
    vm->nobjs++;
    return o;
}

void pk_free(pk_vm *vm) {
    for (pk_slab *s = vm->slabs, *next; s; s = next) {
        for (size_t i = 0; i < s->used; i++) {
            pk_obj *o = &s->objs[i];
            if (o->kind == PK_TUPLE || o->kind == PK_LIST || o->kind == PK_DICT) free(o->u.seq.v);
            if (o->kind == PK_BYTES) free(o->u.s.owned);
        }
        next = s->next;
        free(s);
    }
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
    memset(vm, 0, sizeof *vm);
}

static int pk_seq_add(pk_vm *vm, pk_obj *seq, pk_obj *item) {
    if (pk_grow((void **)&seq->u.seq.v, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof(pk_obj *),
                SIZE_MAX / sizeof(pk_obj *)) < 0)
        return pk_fail(vm, "out of memory");
    seq->u.seq.v[seq->u.seq.n++] = item;
    return 0;
}

static int pk_bytes_eq(const pk_obj *o, const char *s) {
    size_t n = strlen(s);
    return (o->kind == PK_BYTES || o->kind == PK_STR) && o->u.s.n == n && !memcmp(o->u.s.p, s, n);
}

/* dict[key] for a str or bytes key (Python 2 files and files re-saved with
 * encoding='bytes' have bytes keys); the last of duplicate keys wins. */
pk_obj *pk_dict_get(const pk_obj *dict, const char *key) {
    for (size_t i = dict->u.seq.n; i >= 2; i -= 2)
        if (pk_bytes_eq(dict->u.seq.v[i - 2], key)) return dict->u.seq.v[i - 1];
    return NULL;
}

/* ==== The stack, marks and memo ==== */

/* Where the current MARK starts: nothing below it may be popped. */
static size_t pk_base(const pk_vm *vm) {
    return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

static int pk_push(pk_vm *vm, pk_obj *o) {
    if (!o) return -1;
    if (pk_grow((void **)&vm->stack, &vm->stack_cap, vm->sp + 1, sizeof(pk_obj *), PK_MAX_STACK) <
        0)
        return pk_fail(vm, "stack deeper than %u entries", PK_MAX_STACK);
    vm->stack[vm->sp++] = o;
    return 0;
}

static pk_obj *pk_pop(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static pk_obj *pk_top(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

static int pk_mark(pk_vm *vm) {
    if (pk_grow((void **)&vm->marks, &vm->marks_cap, vm->nmarks + 1, sizeof(size_t), PK_MAX_MARKS) <
        0)
        return pk_fail(vm, "more than %u nested MARKs", PK_MAX_MARKS);
    vm->marks[vm->nmarks++] = vm->sp;
    return 0;
}

/* Pops the innermost MARK; the items above it are stack[*start .. sp). */
static int pk_pop_mark(pk_vm *vm, size_t *start) {
    if (!vm->nmarks) return pk_fail(vm, "%s without a MARK", pk_opname(vm->op));
    *start = vm->marks[--vm->nmarks];
    return 0;
}

static int pk_memo_put(pk_vm *vm, size_t idx) {
    pk_obj *top = pk_top(vm);
    if (!top) return -1;
    if (idx >= PK_MAX_MEMO) return pk_fail(vm, "memo index %zu out of range", idx);
    if (pk_grow((void **)&vm->memo, &vm->memo_cap, idx + 1, sizeof(pk_obj *), PK_MAX_MEMO) < 0)
        return pk_fail(vm, "out of memory");
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = top;
    return 0;
}

static int pk_memo_get(pk_vm *vm, size_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return pk_fail(vm, "memo index %zu out of range (never stored)", idx);
    return pk_push(vm, vm->memo[idx]);
}

/* ==== Reading arguments ==== */

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Takes n argument bytes, or fails naming how far past the end they reach. */
static int pk_take(pk_vm *vm, size_t n, const uint8_t **p) {
    if (n > vm->len - vm->pos)
        return pk_fail(vm, "%s needs %zu bytes but only %zu remain", pk_opname(vm->op), n,
                       vm->len - vm->pos);
    *p = vm->buf + vm->pos;
    vm->pos += n;
    return 0;
}

static int pk_uint(pk_vm *vm, int width, uint64_t *v) {
    const uint8_t *p = NULL;
    if (pk_take(vm, (size_t)width, &p) < 0) return -1;
    *v = rd_le(p, width);
    return 0;
}

/* BININT, BININT1, BININT2: little-endian, only BININT signed. */
static int pk_int_op(pk_vm *vm, int width) {
    uint64_t v = 0;
    if (pk_uint(vm, width, &v) < 0) return -1;
    pk_obj *o = pk_new(vm, PK_INT);
    if (!o) return -1;
    o->u.i = width == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
    return pk_push(vm, o);
}

/* LONG1 / LONG4: a two's complement little-endian integer of n bytes. */
static int pk_long_op(pk_vm *vm, int width) {
    uint64_t n = 0;
    const uint8_t *p = NULL;
    if (pk_uint(vm, width, &n) < 0) return -1;
    if (width == 4 && n > INT32_MAX) return pk_fail(vm, "LONG4 with negative length");
    if (n > 8)
        return pk_fail(vm, "%s of %llu bytes: integer too large", pk_opname(vm->op),
                       (unsigned long long)n);
    if (pk_take(vm, (size_t)n, &p) < 0) return -1;
    uint64_t v = rd_le(p, (int)n);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~0ull << (8 * n); /* sign-extend */
    pk_obj *o = pk_new(vm, PK_INT);
    if (!o) return -1;
    o->u.i = (int64_t)v;
    return pk_push(vm, o);
}

static int pk_float_op(pk_vm *vm) {
    const uint8_t *p = NULL;
    if (pk_take(vm, 8, &p) < 0) return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | p[i]; /* big-endian */
    pk_obj *o = pk_new(vm, PK_FLOAT);
    if (!o) return -1;
    memcpy(&o->u.f, &bits, sizeof o->u.f);
    return pk_push(vm, o);
}

/* The counted strings: a width-byte length, then that many bytes, pointed to
 * in place. BINSTRING's length is signed. */
static int pk_counted_op(pk_vm *vm, int width, pk_kind kind) {
    uint64_t n = 0;
    const uint8_t *p = NULL;
    if (pk_uint(vm, width, &n) < 0) return -1;
    if (vm->op == 'T' && n > INT32_MAX) return pk_fail(vm, "BINSTRING with negative length");
    if (n > vm->len - vm->pos)
        return pk_fail(vm, "%s declares %llu bytes but only %zu remain", pk_opname(vm->op),
                       (unsigned long long)n, vm->len - vm->pos);
    if (pk_take(vm, (size_t)n, &p) < 0) return -1;
    pk_obj *o = pk_new(vm, kind);
    if (!o) return -1;
    o->u.s.p = p;
    o->u.s.n = (size_t)n;
    return pk_push(vm, o);
}

/* FRAME only announces how many bytes follow; check that they exist. */
static int pk_frame_op(pk_vm *vm) {
    uint64_t n = 0;
    if (pk_uint(vm, 8, &n) < 0) return -1;
    if (n > vm->len - vm->pos)
        return pk_fail(vm, "FRAME declares %llu bytes but only %zu remain", (unsigned long long)n,
                       vm->len - vm->pos);
    return 0;
}

static int pk_proto_op(pk_vm *vm) {
    uint64_t v = 0;
    if (pk_uint(vm, 1, &v) < 0) return -1;
    if (v > 5) return pk_fail(vm, "unsupported pickle protocol %llu", (unsigned long long)v);
    return 0;
}

/* ==== Containers ==== */

/* A tuple, list or dict holding items[0..n). */
static pk_obj *pk_seq_from(pk_vm *vm, pk_kind kind, pk_obj **items, size_t n) {
    pk_obj *o = pk_new(vm, kind);
    if (!o || !n) return o;
    o->u.seq.v = malloc(n * sizeof *items);
    if (!o->u.seq.v) {
        pk_fail(vm, "out of memory");
        return NULL;
    }
    memcpy(o->u.seq.v, items, n * sizeof *items);
    o->u.seq.n = o->u.seq.cap = n;
    return o;
}

/* TUPLE, LIST, DICT: everything above the MARK becomes one container. */
static int pk_collect_op(pk_vm *vm, pk_kind kind) {
    size_t start = 0;
    if (pk_pop_mark(vm, &start) < 0) return -1;
    size_t n = vm->sp - start;
    if (kind == PK_DICT && n % 2) return pk_fail(vm, "DICT with an odd number of items");
    vm->sp = start;
    /* The stack may not exist yet: "(t" is an empty tuple. */
    return pk_push(vm, pk_seq_from(vm, kind, n ? vm->stack + start : NULL, n));
}

/* TUPLE1, TUPLE2, TUPLE3. */
static int pk_tuple_n_op(pk_vm *vm, size_t n) {
    if (vm->sp - pk_base(vm) < n)
        return pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
    vm->sp -= n;
    return pk_push(vm, pk_seq_from(vm, PK_TUPLE, vm->stack + vm->sp, n));
}

static int pk_empty_op(pk_vm *vm, pk_kind kind) {
    return pk_push(vm, pk_new(vm, kind));
}

/* Adds items[0..n) to target, a list (APPEND, APPENDS) or a dict (SETITEM, SETITEMS). */
static int pk_add_items(pk_vm *vm, pk_obj *target, pk_obj **items, size_t n, pk_kind want) {
    if (target->kind != want)
        return pk_fail(vm, "%s into a %s, expected a %s", pk_opname(vm->op),
                       pk_kind_name(target->kind), pk_kind_name(want));
    for (size_t i = 0; i < n; i++)
        if (pk_seq_add(vm, target, items[i]) < 0) return -1;
    return 0;
}

/* APPEND (n = 1) and SETITEM (n = 2): the items on top, the target below them. */
static int pk_add_op(pk_vm *vm, size_t n, pk_kind want) {
    if (vm->sp - pk_base(vm) < n + 1)
        return pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
    vm->sp -= n;
    return pk_add_items(vm, vm->stack[vm->sp - 1], vm->stack + vm->sp, n, want);
}

/* APPENDS and SETITEMS: the items above the MARK, the target just below it. */
static int pk_add_marked_op(pk_vm *vm, pk_kind want) {
    size_t start = 0;
    if (pk_pop_mark(vm, &start) < 0) return -1;
    if (start <= pk_base(vm))
        return pk_fail(vm, "%s: pickle stack underflow (no target below the MARK)",
                       pk_opname(vm->op));
    size_t n = vm->sp - start;
    if (want == PK_DICT && n % 2) return pk_fail(vm, "SETITEMS with an odd number of items");
    vm->sp = start;
    return pk_add_items(vm, vm->stack[start - 1], vm->stack + start, n, want);
}

/* POP: the top item, or the MARK when nothing is above it (as Python does). */
static int pk_pop_op(pk_vm *vm) {
    size_t start = 0;
    if (vm->sp > pk_base(vm)) {
        vm->sp--;
        return 0;
    }
    return pk_pop_mark(vm, &start);
}

static int pk_pop_mark_op(pk_vm *vm) {
    size_t start = 0;
    if (pk_pop_mark(vm, &start) < 0) return -1;
    vm->sp = start;
    return 0;
}

/* ==== Globals and the numpy objects ==== */

static const struct {
    const char *module, *name;
    pk_fn fn;
} pk_known[] = {
    {"numpy", "ndarray", FN_NDARRAY},
    {"numpy.core.multiarray", "_reconstruct", FN_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", FN_RECONSTRUCT},
    {"numpy.core.numeric", "_frombuffer", FN_FROMBUFFER},
    {"numpy._core.numeric", "_frombuffer", FN_FROMBUFFER},
    {"numpy", "dtype", FN_DTYPE},
    {"_codecs", "encode", FN_CODECS_ENCODE},
    {"__builtin__", "bytes", FN_BYTES},
    {"builtins", "bytes", FN_BYTES},
    {"__builtin__", "bytearray", FN_BYTEARRAY},
    {"builtins", "bytearray", FN_BYTEARRAY},
};

static pk_obj *pk_global(pk_vm *vm, pk_obj *module, pk_obj *name) {
    pk_obj *g = pk_new(vm, PK_GLOBAL);
    if (!g) return NULL;
    g->u.g.module = module;
    g->u.g.name = name;
    g->u.g.fn = FN_OTHER;
    for (size_t i = 0; i < sizeof pk_known / sizeof pk_known[0]; i++)
        if (pk_bytes_eq(module, pk_known[i].module) && pk_bytes_eq(name, pk_known[i].name))
            g->u.g.fn = pk_known[i].fn;
    return g;
}

/* GLOBAL: "module\nname\n" in the opcode stream. */
static int pk_global_op(pk_vm *vm) {
    pk_obj *parts[2];
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = vm->buf + vm->pos;
        const uint8_t *nl = memchr(p, '\n', vm->len - vm->pos);
        if (!nl) return pk_fail(vm, "GLOBAL runs past the end (no newline)");
        if (!(parts[i] = pk_new(vm, PK_STR))) return -1;
        parts[i]->u.s.p = p;
        parts[i]->u.s.n = (size_t)(nl - p);
        vm->pos += (size_t)(nl - p) + 1;
    }
    return pk_push(vm, pk_global(vm, parts[0], parts[1]));
}

static int pk_stack_global_op(pk_vm *vm) {
    pk_obj *name = pk_pop(vm), *module = name ? pk_pop(vm) : NULL;
    if (!module) return -1;
    if (module->kind != PK_STR || name->kind != PK_STR)
        return pk_fail(vm, "STACK_GLOBAL needs two str, got %s and %s", pk_kind_name(module->kind),
                       pk_kind_name(name->kind));
    return pk_push(vm, pk_global(vm, module, name));
}

/* Decodes UTF-8 text of code points below 256 into bytes; out has room for
 * n bytes. Pixel text is half two-byte sequences at random, so every input
 * byte takes the same branch-free path: a continuation byte (10xxxxxx) must
 * follow a lead (0xc2, 0xc3) and only then. Returns the byte count, or -1
 * on text that is not latin-1. */
static long long utf8_to_latin1(const uint8_t *p, size_t n, uint8_t *out) {
    size_t k = 0;
    unsigned bad = 0, prev_lead = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = p[i], next = i + 1 < n ? p[i + 1] : 0;
        unsigned cont = (c & 0xc0) == 0x80, lead = (c & 0xfe) == 0xc2;
        bad |= (cont ^ prev_lead) | ((c >> 7) & ~(cont | lead));
        unsigned mask = 0u - lead; /* all ones on a lead byte */
        out[k] = (uint8_t)((c & ~mask) |
                           ((c << 6 | (next & 0x3f)) & mask)); /* a continuation is overwritten */
        k += cont ^ 1;
        prev_lead = lead;
    }
    return bad | prev_lead ? -1 : (long long)k;
}

/* A str's text as latin-1 bytes: how Python 3 at protocol 2 writes bytes
 * (_codecs.encode(text, 'latin1')), and how numpy may hold array data. */
static pk_obj *pk_latin1(pk_vm *vm, const pk_obj *str) {
    uint8_t *out = malloc(str->u.s.n ? str->u.s.n : 1);
    if (!out) {
        pk_fail(vm, "out of memory");
        return NULL;
    }
    long long k = utf8_to_latin1(str->u.s.p, str->u.s.n, out);
    if (k < 0) {
        free(out);
        pk_fail_at(vm, str->at, "str is not latin-1 text");
        return NULL;
    }
    pk_obj *b = pk_new(vm, PK_BYTES);
    if (!b) {
        free(out);
        return NULL;
    }
    b->u.s.p = b->u.s.owned = out;
    b->u.s.n = (size_t)k;
    return b;
}

static int pk_is_latin1_name(const pk_obj *o) {
    return pk_bytes_eq(o, "latin1") || pk_bytes_eq(o, "latin-1") || pk_bytes_eq(o, "iso-8859-1");
}

/* _codecs.encode(text, 'latin1'), bytes(), bytearray(bytes) and
 * bytearray(text, 'latin-1'): all give bytes. */
static pk_obj *pk_make_bytes(pk_vm *vm, const pk_obj *args) {
    size_t n = args->u.seq.n;
    pk_obj **v = args->u.seq.v;
    if (n == 0) {
        pk_obj *b = pk_new(vm, PK_BYTES);
        if (b) b->u.s.p = vm->buf;
        return b;
    }
    if (n == 1 && v[0]->kind == PK_BYTES) return v[0];
    if (n == 2 && v[0]->kind == PK_STR && pk_is_latin1_name(v[1])) return pk_latin1(vm, v[0]);
    pk_fail(vm, "unsupported arguments for a bytes constructor");
    return NULL;
}

/* A dtype from its code: "u1", "<i8", "f4"; the byte order comes from BUILD. */
static pk_obj *pk_make_dtype(pk_vm *vm, const pk_obj *args) {
    if (args->u.seq.n < 1 ||
        (args->u.seq.v[0]->kind != PK_STR && args->u.seq.v[0]->kind != PK_BYTES)) {
        pk_fail(vm, "numpy.dtype needs a type code");
        return NULL;
    }
    const pk_obj *code = args->u.seq.v[0];
    const uint8_t *p = code->u.s.p, *end = p + code->u.s.n;
    char order = '=';
    if (p < end && strchr("<>|=", *p) && *p) order = (char)*p++;
    if (p >= end || !isalpha(*p)) {
        pk_fail(vm, "numpy.dtype code '%.*s' not understood",
                (int)(code->u.s.n > 16 ? 16 : code->u.s.n), (const char *)code->u.s.p);
        return NULL;
    }
    char kind = (char)*p++;
    uint32_t size = 0;
    for (; p < end && isdigit(*p) && size < 100000; p++)
        size = size * 10 + (uint32_t)(*p - '0');
    pk_obj *d = pk_new(vm, PK_DTYPE);
    if (!d) return NULL;
    d->u.d.kind = p == end ? kind : '?'; /* '?': a code we do not know, e.g. "uint8" */
    d->u.d.order = size == 1 ? '|' : order;
    d->u.d.size = size;
    return d;
}

/* Checks an array's shape tuple and stores it. */
static int pk_set_shape(pk_vm *vm, pk_obj *arr, const pk_obj *shape) {
    if (shape->kind != PK_TUPLE)
        return pk_fail(vm, "array shape is a %s, expected a tuple", pk_kind_name(shape->kind));
    if (shape->u.seq.n > PK_MAX_DIMS)
        return pk_fail(vm, "array with %zu dimensions", shape->u.seq.n);
    for (size_t i = 0; i < shape->u.seq.n; i++) {
        const pk_obj *d = shape->u.seq.v[i];
        if (d->kind != PK_INT || d->u.i < 0 || d->u.i > INT32_MAX)
            return pk_fail(vm, "array shape entry %zu is not a size", i);
        arr->u.a.shape[i] = d->u.i;
    }
    arr->u.a.ndim = (int)shape->u.seq.n;
    return 0;
}

/* Attaches dtype and data to an array, checking the byte count. */
static int pk_set_data(pk_vm *vm, pk_obj *arr, pk_obj *dtype, pk_obj *data) {
    if (dtype->kind != PK_DTYPE)
        return pk_fail(vm, "array dtype is a %s", pk_kind_name(dtype->kind));
    if (data->kind == PK_STR && !(data = pk_latin1(vm, data))) return -1;
    if (data->kind != PK_BYTES)
        return pk_fail(vm, "array data is a %s, expected bytes (object arrays are not supported)",
                       pk_kind_name(data->kind));
    uint64_t need = dtype->u.d.size;
    for (int i = 0; i < arr->u.a.ndim; i++)
        if (__builtin_mul_overflow(need, (uint64_t)arr->u.a.shape[i], &need))
            return pk_fail(vm, "array size overflows");
    if (need != data->u.s.n)
        return pk_fail(vm, "array data holds %zu bytes but its shape and dtype need %llu",
                       data->u.s.n, (unsigned long long)need);
    arr->u.a.dtype = dtype;
    arr->u.a.bytes = data;
    arr->u.a.ready = 1;
    return 0;
}

/* numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b'): an empty
 * array that BUILD fills. */
static pk_obj *pk_reconstruct(pk_vm *vm, const pk_obj *args) {
    if (args->u.seq.n != 3 || args->u.seq.v[0]->kind != PK_GLOBAL ||
        args->u.seq.v[0]->u.g.fn != FN_NDARRAY) {
        pk_fail(vm, "_reconstruct arguments are not (numpy.ndarray, shape, typecode)");
        return NULL;
    }
    return pk_new(vm, PK_ARRAY);
}

/* numpy.core.numeric._frombuffer(buffer, dtype, shape, order): protocol 5. */
static pk_obj *pk_frombuffer(pk_vm *vm, const pk_obj *args) {
    if (args->u.seq.n != 4) {
        pk_fail(vm, "_frombuffer takes 4 arguments, got %zu", args->u.seq.n);
        return NULL;
    }
    pk_obj **v = args->u.seq.v, *arr = pk_new(vm, PK_ARRAY);
    if (!arr || pk_set_shape(vm, arr, v[2]) < 0 || pk_set_data(vm, arr, v[1], v[0]) < 0)
        return NULL;
    if (!pk_bytes_eq(v[3], "C") && !pk_bytes_eq(v[3], "F")) {
        pk_fail(vm, "_frombuffer order is not 'C' or 'F'");
        return NULL;
    }
    arr->u.a.fortran = pk_bytes_eq(v[3], "F");
    return arr;
}

static pk_obj *pk_opaque(pk_vm *vm, pk_obj *global) {
    pk_obj *o = pk_new(vm, PK_OBJECT);
    if (o) o->u.o.global = global;
    return o;
}

static int pk_reduce_op(pk_vm *vm) {
    pk_obj *args = pk_pop(vm), *fn = args ? pk_pop(vm) : NULL;
    if (!fn) return -1;
    if (fn->kind != PK_GLOBAL) return pk_fail(vm, "REDUCE calls a %s", pk_kind_name(fn->kind));
    if (args->kind != PK_TUPLE)
        return pk_fail(vm, "REDUCE arguments are a %s, expected a tuple", pk_kind_name(args->kind));
    switch (fn->u.g.fn) {
    case FN_RECONSTRUCT: return pk_push(vm, pk_reconstruct(vm, args));
    case FN_FROMBUFFER: return pk_push(vm, pk_frombuffer(vm, args));
    case FN_DTYPE: return pk_push(vm, pk_make_dtype(vm, args));
    case FN_CODECS_ENCODE:
    case FN_BYTES:
    case FN_BYTEARRAY: return pk_push(vm, pk_make_bytes(vm, args));
    default: return pk_push(vm, pk_opaque(vm, fn));
    }
}

/* ndarray.__setstate__((version, shape, dtype, is_fortran, data)); the
 * version may be absent. */
static int pk_build_array(pk_vm *vm, pk_obj *arr, const pk_obj *state) {
    if (arr->u.a.ready) return pk_fail(vm, "BUILD on an array that already has data");
    size_t n = state->kind == PK_TUPLE ? state->u.seq.n : 0;
    if (n != 4 && n != 5)
        return pk_fail(vm, "array state is not (version, shape, dtype, fortran, data)");
    pk_obj **v = state->u.seq.v + (n - 4);
    if (v[2]->kind != PK_BOOL && v[2]->kind != PK_INT)
        return pk_fail(vm, "array fortran flag is a %s", pk_kind_name(v[2]->kind));
    if (pk_set_shape(vm, arr, v[0]) < 0 || pk_set_data(vm, arr, v[1], v[3]) < 0) return -1;
    arr->u.a.fortran = v[2]->u.i != 0;
    return 0;
}

/* dtype.__setstate__((3, '|', ...)): the byte order is all we need. */
static int pk_build_dtype(pk_vm *vm, pk_obj *d, const pk_obj *state) {
    if (state->kind != PK_TUPLE || state->u.seq.n < 2)
        return pk_fail(vm, "dtype state is not a tuple");
    const pk_obj *order = state->u.seq.v[1];
    if ((order->kind != PK_STR && order->kind != PK_BYTES) || order->u.s.n != 1 ||
        !strchr("<>|=", order->u.s.p[0]) || !order->u.s.p[0])
        return pk_fail(vm, "dtype byte order is not one of < > | =");
    d->u.d.order = (char)order->u.s.p[0];
    return 0;
}

static int pk_build_op(pk_vm *vm) {
    pk_obj *state = pk_pop(vm), *obj = state ? pk_top(vm) : NULL;
    if (!obj) return -1;
    switch (obj->kind) {
    case PK_ARRAY: return pk_build_array(vm, obj, state);
    case PK_DTYPE: return pk_build_dtype(vm, obj, state);
    case PK_OBJECT: return 0; /* its state does not matter to us */
    default: return pk_fail(vm, "BUILD on a %s", pk_kind_name(obj->kind));
    }
}

/* NEWOBJ (cls, args) and NEWOBJ_EX (cls, args, kwargs): objects we only carry. */
static int pk_newobj_op(pk_vm *vm, int n) {
    pk_obj *cls = NULL;
    for (int i = 0; i < n; i++)
        if (!(cls = pk_pop(vm))) return -1;
    return pk_push(vm, pk_opaque(vm, cls->kind == PK_GLOBAL ? cls : NULL));
}

/* ==== The machine ==== */

static int pk_step(pk_vm *vm) {
    uint64_t v = 0;
    switch (vm->op) {
    case 0x80: return pk_proto_op(vm);
    case 0x95: return pk_frame_op(vm);
    case '(': return pk_mark(vm);
    case '0': return pk_pop_op(vm);
    case '1': return pk_pop_mark_op(vm);
    case '2': return pk_push(vm, pk_top(vm));
    case 'N': return pk_empty_op(vm, PK_NONE);
    case 0x88:
    case 0x89: {
        pk_obj *o = pk_new(vm, PK_BOOL);
        if (o) o->u.i = vm->op == 0x88;
        return pk_push(vm, o);
    }
    case 'J': return pk_int_op(vm, 4);
    case 'K': return pk_int_op(vm, 1);
    case 'M': return pk_int_op(vm, 2);
    case 0x8a: return pk_long_op(vm, 1);
    case 0x8b: return pk_long_op(vm, 4);
    case 'G': return pk_float_op(vm);
    case 'T': return pk_counted_op(vm, 4, PK_BYTES);
    case 'U': return pk_counted_op(vm, 1, PK_BYTES);
    case 'B': return pk_counted_op(vm, 4, PK_BYTES);
    case 'C': return pk_counted_op(vm, 1, PK_BYTES);
    case 0x8e: return pk_counted_op(vm, 8, PK_BYTES);
    case 0x96: return pk_counted_op(vm, 8, PK_BYTES); /* bytearray: bytes will do */
    case 'X': return pk_counted_op(vm, 4, PK_STR);
    case 0x8c: return pk_counted_op(vm, 1, PK_STR);
    case 0x8d: return pk_counted_op(vm, 8, PK_STR);
    case ')': return pk_empty_op(vm, PK_TUPLE);
    case ']': return pk_empty_op(vm, PK_LIST);
    case '}': return pk_empty_op(vm, PK_DICT);
    case 't': return pk_collect_op(vm, PK_TUPLE);
    case 'l': return pk_collect_op(vm, PK_LIST);
    case 'd': return pk_collect_op(vm, PK_DICT);
    case 0x85: return pk_tuple_n_op(vm, 1);
    case 0x86: return pk_tuple_n_op(vm, 2);
    case 0x87: return pk_tuple_n_op(vm, 3);
    case 'a': return pk_add_op(vm, 1, PK_LIST);
    case 's': return pk_add_op(vm, 2, PK_DICT);
    case 'e': return pk_add_marked_op(vm, PK_LIST);
    case 'u': return pk_add_marked_op(vm, PK_DICT);
    case 'q': return pk_uint(vm, 1, &v) < 0 ? -1 : pk_memo_put(vm, v);
    case 'r': return pk_uint(vm, 4, &v) < 0 ? -1 : pk_memo_put(vm, v);
    case 0x94: return pk_memo_put(vm, vm->memo_count);
    case 'h': return pk_uint(vm, 1, &v) < 0 ? -1 : pk_memo_get(vm, v);
    case 'j': return pk_uint(vm, 4, &v) < 0 ? -1 : pk_memo_get(vm, v);
    case 'c': return pk_global_op(vm);
    case 0x93: return pk_stack_global_op(vm);
    case 'R': return pk_reduce_op(vm);
    case 'b': return pk_build_op(vm);
    case 0x81: return pk_newobj_op(vm, 2);
    case 0x92: return pk_newobj_op(vm, 3);
    case 0x98: return pk_top(vm) ? 0 : -1; /* READONLY_BUFFER: nothing to do in-band */
    case 0x97:
        return pk_fail(vm, "NEXT_BUFFER: out-of-band buffers are not supported "
                           "(pickle with protocol 5 and no buffer_callback)");
    default:
        if (pk_opnames[vm->op])
            return pk_fail(vm, "unsupported pickle opcode 0x%02x (%s)", vm->op, pk_opnames[vm->op]);
        return pk_fail(vm, "unknown pickle opcode 0x%02x", vm->op);
    }
}

/* Runs the pickle to its STOP; *result is the object it returns. */
static int pk_run(pk_vm *vm, pk_obj **result) {
    if (vm->len == 0) return set_error(vm->err, vm->errlen, "%s: empty file", vm->name);
    while (vm->pos < vm->len) {
        vm->op_at = vm->pos;
        vm->op = vm->buf[vm->pos++];
        if (vm->op == '.') return (*result = pk_pop(vm)) ? 0 : -1;
        if (pk_step(vm) < 0) return -1;
    }
    return pk_fail_at(vm, vm->len, "pickle ends without STOP (truncated?)");
}

int pk_load(pk_vm *vm, const uint8_t *buf, size_t len, const char *name, pk_obj **root, char *err,
            size_t errlen) {
    memset(vm, 0, sizeof *vm);
    vm->buf = buf;
    vm->len = len;
    vm->name = name ? name : "pickle";
    vm->err = err;
    vm->errlen = errlen;
    return pk_run(vm, root);
}
