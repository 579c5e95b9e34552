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

/* Standard input to its end, as cli_read_file reads a file. */
static int read_stdin(size_t max, char **out, size_t *len)
{
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    *out = NULL;
    for (size_t got; buf; n += got) {
        if (n == cap) {
            char *nb = cap < max ? realloc(buf, (cap = 2 * cap < max ? 2 * cap : max) + 1) : NULL;
            if (!nb) {
                free(buf);
                if (n >= max)
                    return cli_fail("standard input: more than the %zu bytes allowed", max);
                return cli_fail("standard input: out of memory");
            }
            buf = nb;
        }
        if (!(got = fread(buf + n, 1, cap - n, stdin)))
            break;
    }
    if (!buf)
        return cli_fail("standard input: out of memory");
    if (ferror(stdin)) {
        free(buf);
        return cli_fail("standard input: %s", strerror(errno));
    }
    buf[n] = 0;
    if (len)
        *len = n;
    *out = buf;
    return 0;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
    if (!strcmp(path, "-"))
        return read_stdin(max, out, len);
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

/* A multi-layer dictionary's inputs (or targets): one file per layer, "A0,A1,...",
 * or one array [n, n_layers, width]. The layers' row pointers go to xs, the stride
 * between rows (in elements) to *stride. Prints errors. */
int cli_layer_acts_open(layer_acts *la, const char *spec, uint32_t layers, uint32_t width,
                        const char *what)
{
    memset(la, 0, sizeof *la);
    int rc = 0;
    if (layers <= 1) { /* a single-layer dictionary: one file, rows of width */
        acts *a = &la->f[la->n_files++];
        if ((rc = cli_acts_open(a, spec, width, what)))
            return rc;
        la->xs[0] = a->data;
        la->stride = width;
        la->rows = a->rows;
        la->dtype = a->dtype;
        return 0;
    }
    if (strchr(spec, ',') && !cli_is_file(spec)) {
        char *copy = strdup(spec), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !rc;
             t = strtok_r(NULL, ",", &save)) {
            if ((uint32_t)la->n_files == layers) {
                rc = cli_fail("%s: more files than the dictionary's %u layers", spec, layers);
                break;
            }
            acts *a = &la->f[la->n_files++];
            if ((rc = cli_acts_open(a, t, width, what)))
                break;
            if (la->n_files > 1 && (a->rows != la->f[0].rows || a->dtype != la->f[0].dtype))
                rc = cli_fail("%s: %llu rows of %s; expected %llu rows of %s, as in the first file",
                              t, (unsigned long long)a->rows, a->dtype == LDB_F32 ? "float32" :
                              "float16", (unsigned long long)la->f[0].rows,
                              la->f[0].dtype == LDB_F32 ? "float32" : "float16");
            la->xs[la->n_files - 1] = a->data;
        }
        free(copy);
        if (!rc && (uint32_t)la->n_files != layers)
            rc = cli_fail("%s: %d files for a dictionary of %u layers; expected one per layer, "
                          "in layer order", spec, la->n_files, layers);
        if (rc)
            return rc;
        la->stride = width;
        la->rows = la->f[0].rows;
        la->dtype = la->f[0].dtype;
        return 0;
    }
    acts *a = &la->f[la->n_files++];
    if ((rc = cli_acts_open(a, spec, width, what)))
        return rc;
    if (a->a->ndim != 3 || a->a->shape[1] != layers)
        return cli_fail("%s: one file for a dictionary of %u layers must be [n, %u, %u]; or pass "
                        "one file per layer, A0.npy,A1.npy,...", spec, layers, layers, width);
    size_t es = a->dtype == LDB_F32 ? 4 : 2;
    for (uint32_t l = 0; l < layers; l++)
        la->xs[l] = a->data + (size_t)l * width * es;
    la->stride = (size_t)layers * width;
    la->rows = a->a->shape[0];
    la->dtype = a->dtype;
    return 0;
}

void cli_layer_acts_close(layer_acts *la)
{
    for (int i = 0; i < la->n_files; i++)
        cli_acts_close(&la->f[i]);
}
