/* array.c — ldb_array, the public face of a memory-mapped .npy (mfile.c maps it,
 * npy.c checks its header). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mfile.h"
#include "npy.h"

struct ldb_array {
    ldb_err err;
    ldb_mfile f;
    ldb_array_info info;
};

/* npy.c's types as the public element types. */
static int public_type(ldb_npy_type t)
{
    switch (t) {
    case LDB_NPY_F32: return LDB_F32;
    case LDB_NPY_F16: return LDB_F16;
    case LDB_NPY_F64: return LDB_F64;
    case LDB_NPY_I32: return LDB_I32;
    case LDB_NPY_I64: return LDB_I64;
    case LDB_NPY_U32: return LDB_U32;
    case LDB_NPY_I16: return LDB_I16;
    case LDB_NPY_U16: return LDB_U16;
    case LDB_NPY_U8: return LDB_U8;
    case LDB_NPY_I8: return LDB_I8;
    case LDB_NPY_BOOL: return LDB_BOOL;
    }
    return -1;
}

int ldb_array_open(const char *path, ldb_array **out)
{
    ldb_array *a = calloc(1, sizeof *a);
    ldb_npy h;
    *out = a;
    if (!a)
        return LDB_ENOMEM;
    int rc = ldb_mfile_open(&a->f, path, &a->err);
    if (!rc)
        rc = ldb_npy_parse(&h, a->f.data, a->f.size, path, &a->err);
    if (rc)
        return rc;
    ldb_array_info *in = &a->info;
    in->dtype = public_type(h.type);
    in->dtype_name = ldb_npy_type_name(h.type);
    in->ndim = h.ndim;
    memcpy(in->shape, h.shape, sizeof in->shape);
    in->count = h.count;
    in->elsize = h.elsize;
    in->data = h.data;
    return LDB_OK;
}

const char *ldb_array_errmsg(const ldb_array *a)
{
    return a ? a->err.msg : "out of memory";
}

const ldb_array_info *ldb_array_get_info(const ldb_array *a)
{
    return &a->info;
}

void ldb_array_close(ldb_array *a)
{
    if (!a)
        return;
    ldb_mfile_close(&a->f);
    free(a);
}
