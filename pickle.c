/* The pickle stack machine: pickle.h says what it reads. This file runs the
 * opcodes, from the stream to STOP: the scalars, strings and containers
 * here, the callables and numpy objects in pickle_numpy.c, all over the
 * store of pickle_vm.c. */
#include "pickle.h"

#include <stdlib.h>
#include <string.h>

#include "pickle_numpy.h"
#include "pickle_vm.h"
#include "util.h"

/* ==== Numbers, strings and the stream ==== */

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
    uint64_t v = pk_read_le(p, (int)n);
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
    default: {
        const char *name = pk_opname(vm->op);
        if (strcmp(name, "?") != 0)
            return pk_fail(vm, "unsupported pickle opcode 0x%02x (%s)", vm->op, name);
        return pk_fail(vm, "unknown pickle opcode 0x%02x", vm->op);
    }
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
