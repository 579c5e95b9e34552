/* helper_encode.c — encodes a fixture's acts.npy and writes the sparse codes to a
 * file, or compares two such files; used by tests/cli.sh to check that codes under
 * OpenBLAS's Haswell kernels and under latentdb's chosen core agree (each run in
 * its own process: the core is fixed when OpenBLAS loads).
 *   helper_encode write DICT ACTS.npy OUT      (prints the OpenBLAS core)
 *   helper_encode compare A B THRESHOLD.f32 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "latentdb.h"

typedef struct { uint64_t row; uint32_t lat; float val; } rec;

static int write_tile(void *arg, const ldb_codes *t)
{
    FILE *f = arg;
    for (uint32_t r = 0; r < t->n_rows; r++)
        for (uint64_t i = t->start[r]; i < t->start[r + 1]; i++) {
            rec x = {t->row0 + r, t->latent[i], t->value[i]};
            if (fwrite(&x, sizeof x, 1, f) != 1)
                return 1;
        }
    return 0;
}

static rec *load(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    rec *r = malloc((size_t)sz + 1);
    *n = fread(r, sizeof *r, (size_t)sz / sizeof *r, f);
    fclose(f);
    return r;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "write")) {
        ldb_dict *d = NULL;
        ldb_encoder *enc = NULL;
        ldb_mfile m;
        ldb_npy a;
        ldb_err e = {{0}};
        if (ldb_dict_open(argv[2], &d)) {
            fprintf(stderr, "%s\n", ldb_dict_errmsg(d));
            return 1;
        }
        if (ldb_encoder_new(d, NULL, &enc)) {
            fprintf(stderr, "%s\n", ldb_encoder_errmsg(enc));
            return 1;
        }
        if (ldb_mfile_open(&m, argv[3], &e) || ldb_npy_parse(&a, m.data, m.size, argv[3], &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        FILE *f = fopen(argv[4], "wb");
        int rc = !f || ldb_encoder_encode(enc, a.data, LDB_F32,
                                          a.count / ldb_dict_get_info(d)->d_in, write_tile, f);
        if (f)
            rc |= fclose(f) != 0;
        printf("core %s (%s)\n", ldb_blas_corename(), ldb_blas_core_origin());
        ldb_mfile_close(&m);
        ldb_encoder_free(enc);
        ldb_dict_close(d);
        return rc;
    }
    if (argc == 5 && !strcmp(argv[1], "compare")) {
        size_t na, nb, nt;
        rec *a = load(argv[2], &na), *b = load(argv[3], &nb);
        float *thr = NULL;
        FILE *f = fopen(argv[4], "rb");
        if (!a || !b || !f) {
            fprintf(stderr, "helper_encode: cannot read inputs\n");
            return 1;
        }
        fseek(f, 0, SEEK_END);
        nt = (size_t)ftell(f) / 4;
        fseek(f, 0, SEEK_SET);
        thr = malloc(nt * 4);
        nt = fread(thr, 4, nt, f);
        fclose(f);
        size_t i = 0, j = 0, bad = 0, near = 0, same = 0;
        while (i < na || j < nb) {
            int cmp = i == na ? 1 : j == nb ? -1
                    : a[i].row != b[j].row ? (a[i].row < b[j].row ? -1 : 1)
                    : a[i].lat != b[j].lat ? (a[i].lat < b[j].lat ? -1 : 1) : 0;
            if (cmp == 0) {
                if (fabs(a[i].val - b[j].val) > 1e-4 * fmax(fabs(b[j].val), 0.05))
                    bad++;
                same++;
                i++, j++;
            } else { /* fires in one only: allowed within 1e-5 of the threshold */
                rec *r = cmp < 0 ? &a[i++] : &b[j++];
                if (r->lat < nt && fabs(r->val - thr[r->lat]) < 1e-5)
                    near++;
                else
                    bad++;
            }
        }
        printf("%zu codes agree, %zu flips at the threshold, %zu differ\n", same, near, bad);
        free(a);
        free(b);
        free(thr);
        return bad || same == 0 ? 1 : 0;
    }
    fprintf(stderr, "usage: helper_encode write DICT ACTS OUT | compare A B THRESHOLD.f32\n");
    return 2;
}
