/* npy.c — NumPy .npy header parser. The header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }; we read exactly
 * those three keys and refuse anything else. */
#include "npy.h"

#include <ctype.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20)

const char *ldb_npy_type_name(ldb_npy_type t)
{
    static const char *names[] = {"float32", "float16", "float64", "int32", "int64", "uint32",
                                  "int16", "uint16", "uint8", "int8", "bool"};
    return names[t];
}

/* Finds 'key' in the header and returns a pointer just past the following ':'. */
static const char *find_key(const char *h, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 <= end; p++) {
        if ((*p == '\'' || *p == '"') && memcmp(p + 1, key, kl) == 0 && p[kl + 1] == *p) {
            const char *q = p + kl + 2;
            while (q < end && isspace((unsigned char)*q))
                q++;
            if (q < end && *q == ':')
                return q + 1;
        }
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

static int parse_descr(ldb_npy *a, const char *d, size_t n, const char *name, ldb_err *e)
{
    static const struct { const char *code; ldb_npy_type t; size_t size; } tab[] = {
        {"f4", LDB_NPY_F32, 4}, {"f2", LDB_NPY_F16, 2}, {"f8", LDB_NPY_F64, 8},
        {"i4", LDB_NPY_I32, 4}, {"i8", LDB_NPY_I64, 8}, {"u4", LDB_NPY_U32, 4},
        {"i2", LDB_NPY_I16, 2}, {"u2", LDB_NPY_U16, 2}, {"u1", LDB_NPY_U8, 1},
        {"i1", LDB_NPY_I8, 1}, {"b1", LDB_NPY_BOOL, 1},
    };
    if (n == 2 && d[0] == '|' && d[1] == 'O')
        return ldb_err_set(e, LDB_EUNSUPPORTED,
                           "%s: object arrays (dtype '|O', pickled) are not accepted; "
                           "expected a numeric dtype", name);
    if (n != 3 || (d[0] != '<' && d[0] != '|' && d[0] != '>' && d[0] != '='))
        goto bad;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (memcmp(d + 1, tab[i].code, 2) != 0)
            continue;
        if (d[0] == '>' && tab[i].size > 1)
            return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: big-endian dtype '%.*s'; expected "
                               "little-endian ('<')", name, (int)n, d);
        a->type = tab[i].t;
        a->elsize = tab[i].size;
        return LDB_OK;
    }
bad:
    return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: dtype '%.*s' is not supported; expected "
                       "float32/float16/float64 or an integer type", name, (int)n, d);
}

int ldb_npy_parse(ldb_npy *a, const uint8_t *buf, size_t len, const char *name, ldb_err *e)
{
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return ldb_err_set(e, LDB_EFORMAT, "%s: not a .npy file (expected the magic "
                           "\\x93NUMPY, %zu bytes)", name, len);
    unsigned major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return ldb_err_set(e, LDB_EFORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: .npy format version %u; expected 1, 2 or 3",
                           name, major);
    }
    if (hlen > NPY_MAX_HEADER || hstart + hlen > len)
        return ldb_err_set(e, LDB_EFORMAT, "%s: .npy header of %zu bytes runs past the end of "
                           "the file (%zu bytes)", name, hlen, len);
    const char *h = (const char *)buf + hstart, *end = h + hlen;

    const char *p = find_key(h, end, "descr");
    if (!p)
        return ldb_err_set(e, LDB_EFORMAT, "%s: .npy header has no 'descr'", name);
    p = skip_ws(p, end);
    if (p >= end || (*p != '\'' && *p != '"'))
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: structured dtype in .npy header; expected "
                           "a plain numeric dtype", name);
    const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
    if (!q)
        return ldb_err_set(e, LDB_EFORMAT, "%s: unterminated 'descr' in .npy header", name);
    int rc = parse_descr(a, p + 1, (size_t)(q - p - 1), name, e);
    if (rc)
        return rc;

    p = find_key(h, end, "fortran_order");
    if (!p)
        return ldb_err_set(e, LDB_EFORMAT, "%s: .npy header has no 'fortran_order'", name);
    p = skip_ws(p, end);
    if (end - p >= 4 && memcmp(p, "True", 4) == 0)
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: Fortran-order array; expected C order "
                           "(save np.ascontiguousarray(a))", name);
    if (!(end - p >= 5 && memcmp(p, "False", 5) == 0))
        return ldb_err_set(e, LDB_EFORMAT, "%s: bad 'fortran_order' in .npy header", name);

    p = find_key(h, end, "shape");
    if (!p)
        return ldb_err_set(e, LDB_EFORMAT, "%s: .npy header has no 'shape'", name);
    p = skip_ws(p, end);
    if (p >= end || *p != '(')
        return ldb_err_set(e, LDB_EFORMAT, "%s: bad 'shape' in .npy header", name);
    p++;
    a->count = 1;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == ')')
            break;
        if (p >= end || !isdigit((unsigned char)*p))
            return ldb_err_set(e, LDB_EFORMAT, "%s: bad 'shape' in .npy header", name);
        uint64_t v = 0;
        while (p < end && isdigit((unsigned char)*p)) {
            if (v > (UINT64_MAX - 9) / 10)
                return ldb_err_set(e, LDB_EFORMAT, "%s: shape dimension overflows", name);
            v = v * 10 + (uint64_t)(*p++ - '0');
        }
        if (a->ndim == LDB_NPY_MAX_DIMS)
            return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: more than %d dimensions", name,
                               LDB_NPY_MAX_DIMS);
        a->shape[a->ndim++] = v;
        if (v != 0 && a->count > UINT64_MAX / v)
            return ldb_err_set(e, LDB_EFORMAT, "%s: shape product overflows 64 bits", name);
        a->count *= v;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
    }
    if (a->count > (UINT64_MAX >> 4))
        return ldb_err_set(e, LDB_EFORMAT, "%s: shape product too large", name);
    a->data_offset = hstart + hlen;
    uint64_t need = a->count * a->elsize;
    if (need > len - a->data_offset)
        return ldb_err_set(e, LDB_EFORMAT, "%s: truncated: the header promises %llu bytes of "
                           "data, the file has %zu", name, (unsigned long long)need,
                           len - a->data_offset);
    a->data = buf + a->data_offset;
    return LDB_OK;
}
