/* tensors.h — a named set of tensors read from one weights file (safetensors or
 * npz). Safetensors data stays in the file mapping; npz members are read into
 * memory. Invariant: every tensor's data holds exactly count * elsize bytes. */
#ifndef LDB_SAE_TENSORS_H
#define LDB_SAE_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/mfile.h"

#define LDB_TENSOR_MAX_DIMS 8
#define LDB_ST_MAX_HEADER (100u * 1000 * 1000) /* as the reference implementation */

/* Element types beyond LDB_F32/F16/BF16 are kept so a file lists whole, but
 * only the three float types can be used as weights. */
#define LDB_DT_OTHER 99

typedef struct ldb_tensor {
    char *name;
    int dtype;                 /* LDB_F32, LDB_F16, LDB_BF16 or LDB_DT_OTHER */
    char dtype_name[16];       /* as written in the file, e.g. "BF16", "<f4" */
    int ndim;
    uint64_t shape[LDB_TENSOR_MAX_DIMS];
    uint64_t count;            /* elements */
    size_t elsize;
    const uint8_t *data;       /* count * elsize bytes; may be unaligned */
} ldb_tensor;

typedef struct ldb_tensors {
    ldb_tensor *t;
    size_t n;
    ldb_mfile file;            /* the mapping (safetensors) */
    uint8_t **owned;           /* buffers read from a zip (npz) */
    size_t n_owned;
    char *metadata_json;       /* safetensors "__metadata__" as JSON text, or NULL */
} ldb_tensors;

/* Maps a .safetensors file and validates its header: JSON of at most 100 MB,
 * known dtypes, sizes = elements x dtype size (overflow-checked), data offsets
 * contiguous from 0 to the end of the file with no holes or overlaps. */
int ldb_safetensors_open(ldb_tensors *ts, const char *path, ldb_err *e);

/* Reads every .npy member of a .npz (zip, stored or deflated, zip64 allowed);
 * the tensor name is the member name without ".npy". */
int ldb_npz_open(ldb_tensors *ts, const char *path, ldb_err *e);

/* Frees everything; accepts a zeroed ldb_tensors. */
void ldb_tensors_close(ldb_tensors *ts);

/* Finds a tensor by name, ignoring ASCII case; NULL if absent. */
const ldb_tensor *ldb_tensors_find(const ldb_tensors *ts, const char *name);

#endif
