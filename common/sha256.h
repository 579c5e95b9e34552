/* sha256.h — SHA-256 of a whole file through OpenSSL's libcrypto (SHA-NI where the
 * CPU has it). */
#ifndef LDB_COMMON_SHA256_H
#define LDB_COMMON_SHA256_H

#include <stddef.h>

#include "err.h"

/* Writes 64 lowercase hex digits and a NUL into hex. */
int ldb_sha256_file(const char *path, char hex[65], ldb_err *e);


/* Incremental SHA-256 (EVP). init returns 0, or -1 when out of memory; final
 * writes 32 bytes and frees the context. */
typedef struct ldb_sha {
    void *ctx;
} ldb_sha;
int ldb_sha_init(ldb_sha *s);
void ldb_sha_update(ldb_sha *s, const void *p, size_t n);
void ldb_sha_final(ldb_sha *s, unsigned char out[32]);

#endif
