/* The pickle machine's store, shared by the files that run its opcodes
 * (pickle.c, pickle_numpy.c) and by nothing else: objects, the stack and
 * its MARKs, the memo, the argument bytes, errors. pickle.h is the reader's
 * API; this is its inside. */
#ifndef COLORIZE_PICKLE_VM_H
#define COLORIZE_PICKLE_VM_H

#include <stddef.h>
#include <stdint.h>

#include "pickle.h"

/* pk_fail_at the offset of the opcode being run. */
#define pk_fail(vm, ...) pk_fail_at((vm), (vm)->op_at, __VA_ARGS__)

/* The opcode's name ("BININT1"), "?" for a byte that is no opcode. */
const char *pk_opname(uint8_t op);

/* A zeroed object of that kind, made at the current opcode and owned by vm;
 * NULL (the error set) past PK_MAX_OBJECTS or out of memory. */
pk_obj *pk_new(pk_vm *vm, pk_kind kind);
/* Appends item to a tuple, list or dict's items. */
int pk_seq_add(pk_vm *vm, pk_obj *seq, pk_obj *item);
/* Whether o is a byte or text string equal to s. */
int pk_bytes_eq(const pk_obj *o, const char *s);

/* The stack: nothing below the innermost MARK may be popped or read. Each
 * returns -1 or NULL with the error set; pk_push(vm, NULL) returns -1, so a
 * maker's failure can be pushed as it is. */
size_t pk_base(const pk_vm *vm);
int pk_push(pk_vm *vm, pk_obj *o);
pk_obj *pk_pop(pk_vm *vm);
pk_obj *pk_top(pk_vm *vm);
int pk_mark(pk_vm *vm);
/* Pops the innermost MARK; the items above it are stack[*start .. sp). */
int pk_pop_mark(pk_vm *vm, size_t *start);
/* memo[idx] = the top of the stack; push memo[idx]. */
int pk_memo_put(pk_vm *vm, size_t idx);
int pk_memo_get(pk_vm *vm, size_t idx);

/* The unsigned little-endian integer in p[0..n). */
uint64_t pk_read_le(const uint8_t *p, int n);
/* Takes n argument bytes of the stream, or fails naming how far past the
 * end they reach. */
int pk_take(pk_vm *vm, size_t n, const uint8_t **p);
/* Takes a width-byte little-endian unsigned argument. */
int pk_uint(pk_vm *vm, int width, uint64_t *v);

#endif
