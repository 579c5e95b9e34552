/* npz.c — reads a NumPy .npz (a zip of .npy members, stored or deflated, with
 * zip64 extra fields as numpy writes them) through libzip. Members are read into
 * memory: libzip does not expose where a stored member's bytes start. */
#include "tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "../common/npy.h"

/* A member may not claim more than this uncompressed (guards zip bombs). */
#define NPZ_MAX_MEMBER ((zip_uint64_t)1 << 40)

int ldb_npz_open(ldb_tensors *ts, const char *path, ldb_err *e)
{
    int rc = LDB_OK, zerr = 0;
    zip_t *z = NULL;
    zip_file_t *zf = NULL;
    memset(ts, 0, sizeof *ts);
    if (!(z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr))) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        rc = ldb_err_set(e, zerr == ZIP_ER_NOENT ? LDB_ENOTFOUND
                            : zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ ? LDB_EIO : LDB_EFORMAT,
                         "%s: not a readable zip (.npz) archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    if (n < 0 || !(ts->t = calloc((size_t)n + 1, sizeof *ts->t)) ||
        !(ts->owned = calloc((size_t)n + 1, sizeof *ts->owned))) {
        rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
            !(st.valid & ZIP_STAT_SIZE)) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: member %lld: %s", path, (long long)i,
                             zip_strerror(z));
            goto out;
        }
        size_t nl = strlen(st.name);
        if (nl < 4 || strcmp(st.name + nl - 4, ".npy") != 0)
            continue; /* not an array */
        char member[512];
        snprintf(member, sizeof member, "%s[%s]", path, st.name);
        /* what it claims, against what it can hold: a stored member is as large as its
         * data, deflate expands at most 1032:1 (so a small file cannot make us
         * allocate terabytes) */
        if ((st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD) &&
            st.size > (st.comp_method == ZIP_CM_STORE ? st.comp_size
                                                      : st.comp_size * 1032 + 1024)) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: claims %llu bytes from %llu compressed bytes",
                             member, (unsigned long long)st.size,
                             (unsigned long long)st.comp_size);
            goto out;
        }
        if (st.size > NPZ_MAX_MEMBER) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: claims %llu bytes uncompressed, over the limit",
                             member, (unsigned long long)st.size);
            goto out;
        }
        uint8_t *buf = malloc(st.size ? st.size : 1);
        if (!buf) {
            rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory for %llu bytes", member,
                             (unsigned long long)st.size);
            goto out;
        }
        ts->owned[ts->n_owned++] = buf;
        if (!(zf = zip_fopen_index(z, (zip_uint64_t)i, 0))) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: cannot open member: %s", member, zip_strerror(z));
            goto out;
        }
        zip_uint64_t got = 0;
        while (got < st.size) {
            zip_int64_t r = zip_fread(zf, buf + got, st.size - got);
            if (r <= 0) {
                rc = ldb_err_set(e, LDB_EFORMAT, "%s: member truncated or corrupt after %llu of "
                                 "%llu bytes: %s", member, (unsigned long long)got,
                                 (unsigned long long)st.size, zip_file_strerror(zf));
                goto out;
            }
            got += (zip_uint64_t)r;
        }
        /* Drain once more so the CRC is verified at end of stream. */
        char extra;
        if (zip_fread(zf, &extra, 1) < 0) {
            rc = ldb_err_set(e, LDB_EFORMAT, "%s: %s", member, zip_file_strerror(zf));
            goto out;
        }
        zip_fclose(zf);
        zf = NULL;
        ldb_npy a;
        if ((rc = ldb_npy_parse(&a, buf, st.size, member, e)) == LDB_EUNSUPPORTED) {
            rc = LDB_OK; /* e.g. scipy's 'format' string member: not a tensor, skipped */
            ldb_err_clear(e);
            continue;
        }
        if (rc)
            goto out;
        ldb_tensor *t = &ts->t[ts->n];
        if (!(t->name = strndup(st.name, nl - 4))) {
            rc = ldb_err_set(e, LDB_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        ts->n++;
        t->dtype = a.type == LDB_NPY_F32 ? LDB_F32 : a.type == LDB_NPY_F16 ? LDB_F16 : LDB_DT_OTHER;
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", ldb_npy_type_name(a.type));
        t->elsize = a.elsize;
        t->ndim = a.ndim;
        memcpy(t->shape, a.shape, sizeof a.shape);
        t->count = a.count;
        t->data = a.data;
    }
out:
    if (zf)
        zip_fclose(zf);
    zip_discard(z);
    if (rc)
        ldb_tensors_close(ts);
    return rc;
}
