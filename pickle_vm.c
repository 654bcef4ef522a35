/* The pickle machine's store: its objects (in slabs), the stack with its
 * MARKs, the memo, reading an opcode's argument bytes, and the one-line
 * errors that name the byte offset. The opcodes (pickle.c) and the
 * callables (pickle_numpy.c) are written over these. */
#include "pickle_vm.h"

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

/* ==== Names, errors and objects ==== */

const char *pk_opname(uint8_t op) {
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

pk_obj *pk_new(pk_vm *vm, pk_kind kind) {
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

int pk_seq_add(pk_vm *vm, pk_obj *seq, pk_obj *item) {
    if (pk_grow((void **)&seq->u.seq.v, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof(pk_obj *),
                SIZE_MAX / sizeof(pk_obj *)) < 0)
        return pk_fail(vm, "out of memory");
    seq->u.seq.v[seq->u.seq.n++] = item;
    return 0;
}

int pk_bytes_eq(const pk_obj *o, const char *s) {
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
size_t pk_base(const pk_vm *vm) {
    return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

int pk_push(pk_vm *vm, pk_obj *o) {
    if (!o) return -1;
    if (pk_grow((void **)&vm->stack, &vm->stack_cap, vm->sp + 1, sizeof(pk_obj *), PK_MAX_STACK) <
        0)
        return pk_fail(vm, "stack deeper than %u entries", PK_MAX_STACK);
    vm->stack[vm->sp++] = o;
    return 0;
}

pk_obj *pk_pop(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
        return NULL;
    }
    return vm->stack[--vm->sp];
}

pk_obj *pk_top(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, "%s: pickle stack underflow", pk_opname(vm->op));
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

int pk_mark(pk_vm *vm) {
    if (pk_grow((void **)&vm->marks, &vm->marks_cap, vm->nmarks + 1, sizeof(size_t), PK_MAX_MARKS) <
        0)
        return pk_fail(vm, "more than %u nested MARKs", PK_MAX_MARKS);
    vm->marks[vm->nmarks++] = vm->sp;
    return 0;
}

/* Pops the innermost MARK; the items above it are stack[*start .. sp). */
int pk_pop_mark(pk_vm *vm, size_t *start) {
    if (!vm->nmarks) return pk_fail(vm, "%s without a MARK", pk_opname(vm->op));
    *start = vm->marks[--vm->nmarks];
    return 0;
}

int pk_memo_put(pk_vm *vm, size_t idx) {
    pk_obj *top = pk_top(vm);
    if (!top) return -1;
    if (idx >= PK_MAX_MEMO) return pk_fail(vm, "memo index %zu out of range", idx);
    if (pk_grow((void **)&vm->memo, &vm->memo_cap, idx + 1, sizeof(pk_obj *), PK_MAX_MEMO) < 0)
        return pk_fail(vm, "out of memory");
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = top;
    return 0;
}

int pk_memo_get(pk_vm *vm, size_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return pk_fail(vm, "memo index %zu out of range (never stored)", idx);
    return pk_push(vm, vm->memo[idx]);
}

/* ==== Reading arguments ==== */

uint64_t pk_read_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Takes n argument bytes, or fails naming how far past the end they reach. */
int pk_take(pk_vm *vm, size_t n, const uint8_t **p) {
    if (n > vm->len - vm->pos)
        return pk_fail(vm, "%s needs %zu bytes but only %zu remain", pk_opname(vm->op), n,
                       vm->len - vm->pos);
    *p = vm->buf + vm->pos;
    vm->pos += n;
    return 0;
}

int pk_uint(pk_vm *vm, int width, uint64_t *v) {
    const uint8_t *p = NULL;
    if (pk_take(vm, (size_t)width, &p) < 0) return -1;
    *v = pk_read_le(p, width);
    return 0;
}
