/* mfile.h — a whole file mapped read-only (MAP_SHARED): weights and activations
 * are used in place from the page cache. Invariant: data != NULL iff size > 0. */
#ifndef LDB_COMMON_MFILE_H
#define LDB_COMMON_MFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ldb_mfile {
    const uint8_t *data;  /* mapping, or NULL for an empty file */
    size_t size;
    char *path;           /* owned copy of the path, for messages */
} ldb_mfile;

/* Maps path; on failure returns an LDB_E* code with the message in e. */
int ldb_mfile_open(ldb_mfile *f, const char *path, ldb_err *e);

/* Unmaps and frees; accepts a zeroed or already-closed ldb_mfile. */
void ldb_mfile_close(ldb_mfile *f);

/* 1 if path names an existing directory / regular file. */
int ldb_path_is_dir(const char *path);
int ldb_path_is_file(const char *path);

/* Joins dir and name into a new malloc'd string (NULL on OOM). */
char *ldb_path_join(const char *dir, const char *name);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer; refuses
 * files larger than max bytes. */
int ldb_file_read_all(const char *path, size_t max, char **out, size_t *len, ldb_err *e);

#endif
