/* mfile.c — read-only file mappings and small path helpers. */
#include "mfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int ldb_mfile_open(ldb_mfile *f, const char *path, ldb_err *e)
{
    int fd = -1, rc = LDB_OK;
    struct stat st;
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path)))
        return ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = ldb_err_os(e, "%s: cannot open", path);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = ldb_err_os(e, "%s: cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ldb_err_set(e, LDB_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            rc = ldb_err_os(e, "%s: cannot map %zu bytes", path, f->size);
            goto out;
        }
        f->data = p;
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != LDB_OK)
        ldb_mfile_close(f);
    return rc;
}

void ldb_mfile_close(ldb_mfile *f)
{
    if (f->data)
        munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int ldb_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ldb_path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *ldb_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, dir, a);
    size_t o = a;
    if (a > 0 && dir[a - 1] != '/')
        s[o++] = '/';
    memcpy(s + o, name, b + 1);
    return s;
}

int ldb_file_read_all(const char *path, size_t max, char **out, size_t *len, ldb_err *e)
{
    int rc = LDB_OK;
    FILE *fp = NULL;
    char *buf = NULL;
    long n;
    *out = NULL;
    if (!(fp = fopen(path, "rb")))
        return ldb_err_os(e, "%s: cannot open", path);
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        rc = ldb_err_os(e, "%s: cannot size", path);
        goto out;
    }
    if ((size_t)n > max) {
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: %ld bytes, more than the %zu allowed", path, n, max);
        goto out;
    }
    if (!(buf = malloc((size_t)n + 1))) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        rc = ldb_err_os(e, "%s: short read", path);
        goto out;
    }
    buf[n] = 0;
    if (len)
        *len = (size_t)n;
    *out = buf;
    buf = NULL;
out:
    free(buf);
    fclose(fp);
    return rc;
}
