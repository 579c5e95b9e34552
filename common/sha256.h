/* sha256.h — SHA-256 of a whole file through OpenSSL's libcrypto (SHA-NI where the
 * CPU has it). */
#ifndef LDB_COMMON_SHA256_H
#define LDB_COMMON_SHA256_H

#include "err.h"

/* Writes 64 lowercase hex digits and a NUL into hex. */
int ldb_sha256_file(const char *path, char hex[65], ldb_err *e);

#endif
