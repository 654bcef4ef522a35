/* The callables a pickle names and the objects they make: GLOBAL and
 * STACK_GLOBAL, REDUCE (numpy arrays and dtypes, bytes from text), BUILD
 * (an array's shape and data, a dtype's byte order), NEWOBJ. Any callable we
 * do not know gives an opaque object. */
#include "pickle_numpy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_vm.h"

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
int pk_global_op(pk_vm *vm) {
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

int pk_stack_global_op(pk_vm *vm) {
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

int pk_reduce_op(pk_vm *vm) {
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

int pk_build_op(pk_vm *vm) {
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
int pk_newobj_op(pk_vm *vm, int n) {
    pk_obj *cls = NULL;
    for (int i = 0; i < n; i++)
        if (!(cls = pk_pop(vm))) return -1;
    return pk_push(vm, pk_opaque(vm, cls->kind == PK_GLOBAL ? cls : NULL));
}
