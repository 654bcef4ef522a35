/* The opcodes that name and call Python's callables (pickle_numpy.c), for
 * the machine in pickle.c. Each returns 0, or -1 with the error set. */
#ifndef COLORIZE_PICKLE_NUMPY_H
#define COLORIZE_PICKLE_NUMPY_H

#include "pickle.h"

int pk_global_op(pk_vm *vm);        /* GLOBAL: "module\nname\n" in the stream */
int pk_stack_global_op(pk_vm *vm);  /* STACK_GLOBAL: module and name on the stack */
int pk_reduce_op(pk_vm *vm);        /* REDUCE: calls a global on a tuple */
int pk_build_op(pk_vm *vm);         /* BUILD: sets an array's or a dtype's state */
int pk_newobj_op(pk_vm *vm, int n); /* NEWOBJ (n = 2), NEWOBJ_EX (n = 3) */

#endif
