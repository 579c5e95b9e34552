/* files.c — the CLI's own small file helpers (the library keeps its file code to
 * itself): path tests and joins, reading a text file whole, and activation arrays
 * opened through the public ldb_array. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *cli_path_join(const char *dir, const char *name)
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

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;
    int rc = 1;
    *out = NULL;
    if (!fp)
        return cli_fail("%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
        cli_fail("%s: cannot size: %s", path, strerror(errno));
    else if ((size_t)n > max)
        cli_fail("%s: %ld bytes, more than the %zu allowed", path, n, max);
    else if (!(buf = malloc((size_t)n + 1)))
        cli_fail("%s: out of memory", path);
    else if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
        cli_fail("%s: short read: %s", path, ferror(fp) ? strerror(errno) : "the file shrank");
    else {
        buf[n] = 0;
        if (len)
            *len = (size_t)n;
        *out = buf;
        buf = NULL;
        rc = 0;
    }
    free(buf);
    fclose(fp);
    return rc;
}

int cli_acts_open(acts *x, const char *path, uint32_t width, const char *what)
{
    memset(x, 0, sizeof *x);
    if (ldb_array_open(path, &x->arr))
        return cli_fail("%s", ldb_array_errmsg(x->arr));
    x->a = ldb_array_get_info(x->arr);
    if (x->a->dtype != LDB_F32 && x->a->dtype != LDB_F16)
        return cli_fail("%s: dtype %s; expected float32 or float16 activations", path,
                        x->a->dtype_name);
    if (x->a->ndim < 1 || x->a->ndim > 3 || x->a->shape[x->a->ndim - 1] != width)
        return cli_fail("%s: last dimension is %llu; expected %s = %u (shape [n, %u] or "
                        "[n_seq, ctx, %u])", path,
                        (unsigned long long)(x->a->ndim ? x->a->shape[x->a->ndim - 1] : 0), what,
                        width, width, width);
    x->dtype = x->a->dtype;
    x->rows = x->a->count / width;
    x->data = x->a->data;
    /* Non-finite activations would silently decode to garbage: refuse them. */
    uint64_t bad = ldb_find_nonfinite(x->data, x->dtype, x->a->count);
    if (bad != UINT64_MAX)
        return cli_fail("%s: row %llu holds NaN or Inf; expected finite activations", path,
                        (unsigned long long)(bad / width));
    return 0;
}

void cli_acts_close(acts *x)
{
    ldb_array_close(x->arr);
    memset(x, 0, sizeof *x);
}
