/* npy.h — parser for NumPy .npy headers (format versions 1, 2 and 3).
 * Only little-endian (or byte-sized) numeric C-order arrays are accepted; the
 * data is used in place right after the header. */
#ifndef LDB_COMMON_NPY_H
#define LDB_COMMON_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LDB_NPY_MAX_DIMS 8

typedef enum {
    LDB_NPY_F32, LDB_NPY_F16, LDB_NPY_F64, LDB_NPY_I32, LDB_NPY_I64,
    LDB_NPY_U32, LDB_NPY_I16, LDB_NPY_U16, LDB_NPY_U8, LDB_NPY_I8, LDB_NPY_BOOL
} ldb_npy_type;

typedef struct ldb_npy {
    ldb_npy_type type;
    int ndim;
    uint64_t shape[LDB_NPY_MAX_DIMS];
    uint64_t count;        /* product of shape (1 for a 0-d array) */
    size_t elsize;         /* bytes per element */
    size_t data_offset;    /* where the data starts, from the start of the buffer */
    const uint8_t *data;   /* buf + data_offset */
} ldb_npy;

/* Parses the header in buf[0..len) and checks that count * elsize bytes of
 * data follow. name is used in messages. Returns LDB_OK or LDB_EFORMAT /
 * LDB_EUNSUPPORTED with the reason in e (object dtype, big-endian, Fortran
 * order, truncated data, shape overflow). */
int ldb_npy_parse(ldb_npy *a, const uint8_t *buf, size_t len, const char *name, ldb_err *e);

/* "float32", "int64", ... */
const char *ldb_npy_type_name(ldb_npy_type t);

#endif
