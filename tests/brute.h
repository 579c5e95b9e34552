/* brute.h — the tests' brute-force view of a corpus: every code of every position
 * from the dictionary's own encoder (checked against the independent reference in
 * test_ref), values rounded to bf16 by code written here, and the tokens.
 * Header-only; included by one test program each. */
#ifndef LDB_TESTS_BRUTE_H
#define LDB_TESTS_BRUTE_H

#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "check.h"
#include "latentdb.h"

/* brute force: every code of every position, values rounded to bf16 here */
static uint32_t n_pos, ctx;
static uint64_t *pstart;       /* n_pos + 1 */
static uint32_t *plat;
static float *pval;
static uint32_t *tok;
static size_t nnz, cap;

static float bf16_round(float v) /* round to nearest even, written for this test */
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint32_t lsb = (u >> 16) & 1;
    u = (u + 0x7fffu + lsb) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

static int collect(void *arg, const ldb_codes *t)
{
    (void)arg;
    for (uint32_t r = 0; r < t->n_rows; r++) {
        for (uint64_t i = t->start[r]; i < t->start[r + 1]; i++) {
            if (nnz == cap) {
                cap = cap ? cap * 2 : 1 << 20;
                plat = realloc(plat, cap * sizeof *plat);
                pval = realloc(pval, cap * sizeof *pval);
            }
            plat[nnz] = t->latent[i];
            pval[nnz++] = bf16_round(t->value[i]);
        }
        pstart[t->row0 + r + 1] = nnz;
    }
    return 0;
}

static void brute_encode(const char *dict_path, const char *acts_path, const char *tokens_path)
{
    ldb_dict *d = NULL;
    ldb_mfile fa, ft;
    ldb_npy a, t;
    ldb_err e = {{0}};
    int rc = ldb_dict_open(dict_path, &d);
    CHECK(rc == 0, "open dict: %s", ldb_dict_errmsg(d));
    rc = ldb_mfile_open(&fa, acts_path, &e) || ldb_npy_parse(&a, fa.data, fa.size, "acts", &e) ||
         ldb_mfile_open(&ft, tokens_path, &e) || ldb_npy_parse(&t, ft.data, ft.size, "tok", &e);
    CHECK(rc == 0, "inputs: %s", e.msg);
    n_pos = (uint32_t)t.count;
    ctx = (uint32_t)t.shape[1];
    tok = malloc(n_pos * sizeof *tok);
    memcpy(tok, t.data, n_pos * sizeof *tok);
    pstart = calloc(n_pos + 1, sizeof *pstart);
    ldb_encoder *enc = NULL;
    rc = ldb_encoder_new(d, NULL, &enc) ||
         ldb_encoder_encode(enc, a.data, LDB_F32, n_pos, collect, NULL);
    CHECK(rc == 0, "encode: %s", ldb_encoder_errmsg(enc));
    ldb_encoder_free(enc);
    ldb_dict_close(d);
    ldb_mfile_close(&fa);
    ldb_mfile_close(&ft);
}

static __attribute__((unused)) float value_at(uint32_t pos, uint32_t lat)
{
    for (uint64_t i = pstart[pos]; i < pstart[pos + 1]; i++)
        if (plat[i] == lat)
            return pval[i];
    return 0;
}

#endif
