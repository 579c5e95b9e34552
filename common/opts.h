/* opts.h — reading a caller's option struct. Every public option struct starts with
 * `uint32_t size`, set to its sizeof by its _init function; the library reads only
 * that many bytes, so a caller built against an older (smaller) struct keeps the
 * defaults for fields it never knew, and one built against a newer header works as
 * long as the fields this library does not know are left zero. */
#ifndef LDB_COMMON_OPTS_H
#define LDB_COMMON_OPTS_H

#include <stddef.h>

#include "err.h"

/* Copies the caller's options src (NULL: keep the defaults) over dst, which holds
 * the defaults and is dst_size bytes. LDB_EINVAL, naming the struct, when src's
 * size is 0 (not initialised by its _init function) or when it is larger than
 * dst_size and a byte past dst_size is not zero (a field this library does not
 * have). */
int ldb_opts_load(void *dst, size_t dst_size, const void *src, const char *what, ldb_err *e);

#endif
