/* skipset.c — the positions dict eval and search --acts leave out: those whose token
 * is in a skip set (BOS, PAD, EOS), from a tokens file beside the activations, and
 * the hint when nothing says which they are but rows look like BOS rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "latentdb.h"

static uint32_t token_at(const ldb_array_info *t, uint64_t r)
{
    return t->dtype == LDB_I32 ? (uint32_t)((const int32_t *)t->data)[r]
                               : (uint32_t)((const int64_t *)t->data)[r];
}

int cli_skip_open(cli_skip *s, const char *tokens, uint64_t rows, const uint32_t *ids, size_t n)
{
    memset(s, 0, sizeof *s);
    if (!tokens)
        return 0;
    if (ldb_array_open(tokens, &s->tok))
        return cli_fail("%s", ldb_array_errmsg(s->tok));
    s->t = ldb_array_get_info(s->tok);
    if ((s->t->dtype != LDB_I32 && s->t->dtype != LDB_I64) || s->t->count != rows)
        return cli_fail("%s: %llu %s values of shape [%llu%s]; expected %llu int32/int64 token ids, "
                        "one per row of the activations", tokens, (unsigned long long)s->t->count,
                        s->t->dtype_name, (unsigned long long)(s->t->ndim ? s->t->shape[0] : 1),
                        s->t->ndim > 1 ? ", ..." : "", (unsigned long long)rows);
    if (n > sizeof s->ids / sizeof s->ids[0])
        return cli_fail("at most %zu skip tokens", sizeof s->ids / sizeof s->ids[0]);
    memcpy(s->ids, ids, n * sizeof *ids);
    s->n_ids = n;
    if (!n)
        return 0;
    if (!(s->row = calloc(rows ? rows : 1, 1)))
        return cli_fail("out of memory");
    for (uint64_t r = 0; r < rows; r++) {
        uint32_t id = token_at(s->t, r);
        for (size_t i = 0; i < n && !s->row[r]; i++)
            s->row[r] = id == ids[i];
        s->n_skipped += s->row[r];
    }
    return 0;
}

void cli_skip_close(cli_skip *s)
{
    free(s->row);
    ldb_array_close(s->tok);
    memset(s, 0, sizeof *s);
}

uint32_t cli_skip_token(const cli_skip *s, uint64_t r)
{
    return token_at(s->t, r);
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Rows whose L2 norm is over 8 times the median's: residual streams' BOS rows are
 * tens of times the others'. Their count; the first in *first. */
static uint64_t big_rows(const void *x, int dtype, uint64_t rows, size_t stride, uint32_t width,
                         uint64_t *first)
{
    float *nrm = malloc(rows * sizeof *nrm), *srt = malloc(rows * sizeof *srt), row[4096];
    uint64_t n = 0;
    size_t es = dtype == LDB_F32 ? 4 : 2;
    if (!nrm || !srt || rows < 2)
        goto out;
    for (uint64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (uint32_t k0 = 0; k0 < width; k0 += 4096) {
            uint32_t m = width - k0 < 4096 ? width - k0 : 4096;
            ldb_to_f32(row, (const uint8_t *)x + (r * stride + k0) * es, dtype, m);
            for (uint32_t k = 0; k < m; k++)
                ss += (double)row[k] * row[k];
        }
        nrm[r] = srt[r] = (float)sqrt(ss);
    }
    qsort(srt, rows, sizeof *srt, cmp_f);
    float med = srt[rows / 2];
    for (uint64_t r = 0; r < rows; r++)
        if (med > 0 && nrm[r] > 8 * med && !n++)
            *first = r;
out:
    free(nrm);
    free(srt);
    return n;
}

int cli_bos_hint(const char *what, const char *advice, const char *tokens, const cli_skip *s,
                 const void *x, int dtype, uint64_t rows, size_t stride, uint32_t width)
{
    if (s->t && s->t->ndim == 2 && s->t->shape[0] >= 2 && s->t->shape[1] >= 2) {
        uint64_t n_rows = s->t->shape[0], ctx = s->t->shape[1];
        uint32_t b = token_at(s->t, 0);
        uint64_t r = 1;
        while (r < n_rows && token_at(s->t, r * ctx) == b)
            r++;
        if (r == n_rows) {
            cli_warn("every row of %s starts with token %u, a BOS?: its positions count in %s; "
                     "%s", tokens, b, what, advice);
            return 1;
        }
        return 0;
    }
    uint64_t first = 0, n = big_rows(x, dtype, rows, stride, width, &first);
    if (n)
        cli_warn("%llu of %llu positions (the first: %llu) have an activation norm over 8x the "
                 "median, as BOS positions of a residual stream do; they count in %s; %s",
                 (unsigned long long)n, (unsigned long long)rows, (unsigned long long)first, what,
                 advice);
    return n > 0;
}
