/* err.c — return-code names, the per-handle error message, the library's version
 * and ldb_free. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ldb_version(void)
{
    return LDB_VERSION;
}

void ldb_free(void *p)
{
    free(p);
}

const char *ldb_strerror(int rc)
{
    switch (rc) {
    case LDB_OK: return "success";
    case LDB_ENOMEM: return "out of memory";
    case LDB_EIO: return "I/O error";
    case LDB_EFORMAT: return "malformed file";
    case LDB_EUNSUPPORTED: return "unsupported";
    case LDB_EINVAL: return "invalid argument";
    case LDB_EBLAS: return "BLAS unavailable";
    case LDB_ENOTFOUND: return "not found";
    case LDB_EBADVALUE: return "bad value";
    default: return "unknown error";
    }
}

int ldb_err_set(ldb_err *e, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return rc;
}

int ldb_err_os(ldb_err *e, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
    return saved == ENOENT ? LDB_ENOTFOUND : saved == ENOMEM ? LDB_ENOMEM : LDB_EIO;
}

void ldb_err_prefix(ldb_err *e, const char *prefix)
{
    char tmp[sizeof e->msg];
    size_t n = strlen(prefix);
    if (n > sizeof tmp - 3)
        n = sizeof tmp - 3;
    memcpy(tmp, prefix, n);
    memcpy(tmp + n, ": ", 2);
    size_t rest = sizeof tmp - n - 3;
    size_t m = strnlen(e->msg, rest);
    memcpy(tmp + n + 2, e->msg, m);
    tmp[n + 2 + m] = 0;
    memcpy(e->msg, tmp, sizeof tmp);
}
