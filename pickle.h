/* A pickle reader: runs a Python pickle as the stack machine it is and
 * returns the object tree it builds. It knows Python's and numpy's objects,
 * nothing of what a particular file means.
 *
 * It runs the opcodes of Python 2 cPickle at protocol 2 and of Python 3 at
 * protocols 2..5, and builds the objects data files hold: None, bools, ints,
 * floats, byte and text strings, tuples, lists, dicts, and numpy arrays and
 * dtypes (through numpy.core.multiarray._reconstruct or numpy.frombuffer).
 * Any other callable gives an opaque object, an error only if the reader
 * needs it. Every object lives in a slab owned by the machine and is freed
 * with it; byte strings point into the file buffer, so a 30 MB pixel string
 * is never copied. Errors are one line: "NAME: byte OFFSET: what". */
#ifndef COLORIZE_PICKLE_H
#define COLORIZE_PICKLE_H

#include <stddef.h>
#include <stdint.h>

/* Limits far above what a data file of tens of thousands of objects needs
 * (a CIFAR batch holds about 20000). */
#define PK_MAX_STACK   (1u << 22)
#define PK_MAX_MARKS   (1u << 20)
#define PK_MAX_MEMO    (1u << 22)
#define PK_MAX_OBJECTS (1u << 21)
#define PK_MAX_DIMS    4
#define PK_SLAB        1024

/* clang-format off */
typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_BYTES, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL, PK_DTYPE, PK_ARRAY, PK_OBJECT
} pk_kind;

/* The callables a REDUCE may name that we understand; anything else gives an
 * opaque object, an error only if the batch needs it. */
typedef enum {
    FN_OTHER, FN_NDARRAY, FN_RECONSTRUCT, FN_FROMBUFFER, FN_DTYPE, FN_CODECS_ENCODE, FN_BYTES,
    FN_BYTEARRAY
} pk_fn;
/* clang-format on */

typedef struct pk_obj pk_obj;
struct pk_obj {
    pk_kind kind;
    size_t at; /* byte offset of the opcode that made it, for messages */
    union {
        int64_t i; /* BOOL, INT */
        double f;  /* FLOAT */
        struct {
            const uint8_t *p;
            size_t n;
            uint8_t *owned;
        } s; /* BYTES, STR (UTF-8) */
        struct {
            pk_obj **v;
            size_t n, cap;
        } seq; /* TUPLE, LIST; DICT as key, value pairs */
        struct {
            pk_obj *module, *name;
            pk_fn fn;
        } g; /* GLOBAL */
        struct {
            char kind, order;
            uint32_t size;
        } d; /* DTYPE: 'u', '|', 1 is uint8 */
        struct {
            pk_obj *dtype, *bytes;
            int64_t shape[PK_MAX_DIMS];
            int ndim, fortran, ready; /* ready once the data is attached */
        } a;                          /* ARRAY (numpy.ndarray) */
        struct {
            pk_obj *global;
        } o; /* OBJECT: made by an unknown callable */
    } u;
};

typedef struct pk_slab {
    struct pk_slab *next;
    size_t used;
    pk_obj objs[PK_SLAB];
} pk_slab;

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    size_t op_at; /* offset of the opcode being run */
    uint8_t op;
    const char *name;
    char *err;
    size_t errlen;
    pk_obj **stack;
    size_t sp, stack_cap;
    size_t *marks; /* stack heights saved by MARK */
    size_t nmarks, marks_cap;
    pk_obj **memo;
    size_t memo_cap, memo_count;
    pk_slab *slabs;
    size_t nobjs;
} pk_vm;

/* Runs the pickle in buf (named name in messages) to its STOP; *root is
 * the object it returns, owned by vm. Call pk_free(vm) afterwards, whether
 * it succeeded or not. */
int pk_load(pk_vm *vm, const uint8_t *buf, size_t len, const char *name, pk_obj **root, char *err,
            size_t errlen);
void pk_free(pk_vm *vm);

/* The value under a byte- or text-string key of a dict; NULL if none. */
pk_obj *pk_dict_get(const pk_obj *dict, const char *key);
/* "int", "numpy array"... */
const char *pk_kind_name(pk_kind k);
/* One line in vm's err: "NAME: byte AT: message". Returns -1. */
int pk_fail_at(pk_vm *vm, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
