/* safetensors.c — validating reader for the safetensors format: 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}}, then the data.
 * Rules follow the reference implementation (contiguous offsets, no holes). */
#include "tensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { const char *name; int dtype; size_t size; } st_types[] = {
    {"F32", LDB_F32, 4},        {"F16", LDB_F16, 2},       {"BF16", LDB_BF16, 2},
    {"F64", LDB_DT_OTHER, 8},   {"I64", LDB_DT_OTHER, 8},  {"U64", LDB_DT_OTHER, 8},
    {"I32", LDB_DT_OTHER, 4},   {"U32", LDB_DT_OTHER, 4},  {"I16", LDB_DT_OTHER, 2},
    {"U16", LDB_DT_OTHER, 2},   {"I8", LDB_DT_OTHER, 1},   {"U8", LDB_DT_OTHER, 1},
    {"BOOL", LDB_DT_OTHER, 1},  {"F8_E5M2", LDB_DT_OTHER, 1}, {"F8_E4M3", LDB_DT_OTHER, 1},
};

static int cmp_offset(const void *a, const void *b)
{
    const ldb_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

void ldb_tensors_close(ldb_tensors *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        free(ts->t[i].name);
    free(ts->t);
    for (size_t i = 0; i < ts->n_owned; i++)
        free(ts->owned[i]);
    free(ts->owned);
    free(ts->metadata_json);
    ldb_mfile_close(&ts->file);
    memset(ts, 0, sizeof *ts);
}

const ldb_tensor *ldb_tensors_find(const ldb_tensors *ts, const char *name)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strcasecmp(ts->t[i].name, name) == 0)
            return &ts->t[i];
    return NULL;
}

/* Parses one header entry into t; data is set relative to base. */
static int parse_entry(ldb_tensor *t, const cJSON *v, const uint8_t *base, uint64_t data_len,
                       const char *path, ldb_err *e)
{
    const char *nm = t->name;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(v, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(v, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(v, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
        cJSON_GetArraySize(off) != 2)
        return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': expected dtype, shape and "
                           "data_offsets [begin, end] in the header", path, nm);
    size_t k;
    for (k = 0; k < sizeof st_types / sizeof st_types[0]; k++)
        if (strcmp(dt->valuestring, st_types[k].name) == 0)
            break;
    if (k == sizeof st_types / sizeof st_types[0])
        return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': unknown dtype '%.15s'", path, nm,
                           dt->valuestring);
    t->dtype = st_types[k].dtype;
    t->elsize = st_types[k].size;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st_types[k].name);
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > LDB_TENSOR_MAX_DIMS)
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d "
                           "supported", path, nm, t->ndim, LDB_TENSOR_MAX_DIMS);
    t->count = 1;
    for (int d = 0; d < t->ndim; d++) {
        const cJSON *x = cJSON_GetArrayItem(sh, d);
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9.0e15 ||
            x->valuedouble != (double)(uint64_t)x->valuedouble)
            return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': bad shape entry", path, nm);
        t->shape[d] = (uint64_t)x->valuedouble;
        if (t->shape[d] && t->count > UINT64_MAX / 16 / t->shape[d])
            return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': shape product overflows", path, nm);
        t->count *= t->shape[d];
    }
    const cJSON *b = cJSON_GetArrayItem(off, 0), *en = cJSON_GetArrayItem(off, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(en) || b->valuedouble < 0 ||
        en->valuedouble < b->valuedouble || en->valuedouble > (double)data_len ||
        b->valuedouble != (double)(uint64_t)b->valuedouble ||
        en->valuedouble != (double)(uint64_t)en->valuedouble)
        return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] are not "
                           "inside the %llu data bytes", path, nm,
                           cJSON_IsNumber(b) ? b->valuedouble : -1.0,
                           cJSON_IsNumber(en) ? en->valuedouble : -1.0,
                           (unsigned long long)data_len);
    uint64_t lo = (uint64_t)b->valuedouble, hi = (uint64_t)en->valuedouble;
    if (hi - lo != t->count * t->elsize)
        return ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s': shape and dtype need %llu bytes, "
                           "data_offsets give %llu", path, nm,
                           (unsigned long long)(t->count * t->elsize),
                           (unsigned long long)(hi - lo));
    t->data = base + lo;
    return LDB_OK;
}

int ldb_safetensors_open(ldb_tensors *ts, const char *path, ldb_err *e)
{
    int rc = LDB_OK;
    cJSON *root = NULL;
    char *hdr = NULL;
    memset(ts, 0, sizeof *ts);
    if ((rc = ldb_mfile_open(&ts->file, path, e)))
        return rc;
    const uint8_t *p = ts->file.data;
    size_t size = ts->file.size;
    if (size < 8) {
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: %zu bytes; a safetensors file starts with an "
                         "8-byte header length", path, size);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > LDB_ST_MAX_HEADER) {
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: header length %llu exceeds the 100 MB limit",
                         path, (unsigned long long)hlen);
        goto out;
    }
    if (hlen > size - 8) {
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: header length %llu runs past the end of the file "
                         "(%zu bytes)", path, (unsigned long long)hlen, size);
        goto out;
    }
    if (!(hdr = malloc(hlen + 1))) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(hdr, p + 8, hlen);
    hdr[hlen] = 0;
    root = cJSON_ParseWithLength(hdr, hlen);
    if (!root || !cJSON_IsObject(root)) {
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    const uint8_t *base = p + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    size_t n = 0;
    for (cJSON *v = root->child; v; v = v->next)
        n++;
    if (!(ts->t = calloc(n ? n : 1, sizeof *ts->t))) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (cJSON *v = root->child; v; v = v->next) {
        if (strcmp(v->string, "__metadata__") == 0) {
            if (ts->metadata_json) {
                rc = ldb_err_set(e, LDB_EFORMAT, "%s: header has '__metadata__' twice", path);
                goto out;
            }
            ts->metadata_json = cJSON_PrintUnformatted(v);
            continue;
        }
        ldb_tensor *t = &ts->t[ts->n];
        if (!(t->name = strdup(v->string))) {
            rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        ts->n++;
        if (!cJSON_IsObject(v)) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: header entry '%s' is not an object", path,
                             v->string);
            goto out;
        }
        if ((rc = parse_entry(t, v, base, data_len, path, e)))
            goto out;
    }
    /* Contiguity: sorted by offset, each tensor starts where the previous ended,
     * and together they cover the data exactly. Work on a sorted copy. */
    ldb_tensor *s = malloc((ts->n ? ts->n : 1) * sizeof *s);
    if (!s) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    memcpy(s, ts->t, ts->n * sizeof *s);
    qsort(s, ts->n, sizeof *s, cmp_offset);
    const uint8_t *at = base;
    for (size_t i = 0; i < ts->n && rc == LDB_OK; i++) {
        if (s[i].data != at)
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: tensor '%s' starts at data offset %lld, expected "
                             "%lld: offsets %s", path, s[i].name, (long long)(s[i].data - base),
                             (long long)(at - base), s[i].data < at ? "overlap" : "leave a hole");
        at = s[i].data + s[i].count * s[i].elsize;
    }
    if (rc == LDB_OK && at != base + data_len)
        rc = ldb_err_set(e, LDB_EFORMAT, "%s: tensors cover %lld data bytes but the file has "
                         "%llu after the header", path, (long long)(at - base),
                         (unsigned long long)data_len);
    free(s);
out:
    cJSON_Delete(root);
    free(hdr);
    if (rc)
        ldb_tensors_close(ts);
    return rc;
}
