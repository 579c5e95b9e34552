/* err.h — error messages kept on a handle (see ldb_strerror for codes).
 * Invariant: msg is always NUL-terminated; empty means no error. */
#ifndef LDB_COMMON_ERR_H
#define LDB_COMMON_ERR_H

#include "latentdb.h"

typedef struct ldb_err {
    char msg[1024];
} ldb_err;

/* Formats a message into e and returns rc, so that callers can write
 *   return ldb_err_set(e, LDB_EFORMAT, "%s: header past end of file", path); */
int ldb_err_set(ldb_err *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ldb_err_set, with ": <strerror(errno)>" appended; returns LDB_EIO
 * (or LDB_ENOTFOUND when errno is ENOENT). */
int ldb_err_os(ldb_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the current message (for adding context upward). */
void ldb_err_prefix(ldb_err *e, const char *prefix);

static inline void ldb_err_clear(ldb_err *e) { e->msg[0] = 0; }

#endif
