/* sha256.c — file hashing with libcrypto's EVP interface, read in 1 MiB chunks. */
#include "sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ldb_sha256_file(const char *path, char hex[65], ldb_err *e)
{
    int rc = LDB_OK, fd = -1;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *buf = NULL, md[32];
    unsigned mdlen = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return ldb_err_os(e, "%s: cannot open", path);
    if (!(buf = malloc(1 << 20)) || !(ctx = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: cannot start SHA-256", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0) {
            rc = ldb_err_os(e, "%s: read failed", path);
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

int ldb_sha_init(ldb_sha *s)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    s->ctx = c;
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        s->ctx = NULL;
        return -1;
    }
    return 0;
}

void ldb_sha_update(ldb_sha *s, const void *p, size_t n)
{
    if (s->ctx && n)
        EVP_DigestUpdate(s->ctx, p, n);
}

void ldb_sha_final(ldb_sha *s, unsigned char out[32])
{
    unsigned len = 0;
    if (s->ctx)
        EVP_DigestFinal_ex(s->ctx, out, &len);
    else
        memset(out, 0, 32);
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}
