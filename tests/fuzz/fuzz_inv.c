/* fuzz_inv.c — libFuzzer target for the postings decoders: inverted-index chunks
 * (db/reader.c ldb_inv_read; db/codec.c ldb_zc_unpack, ldb_posting_count,
 * ldb_posting_decode: Rice-coded position lists) and the token index
 * (ldb_tokidx_read), whose values are position lists too. The input is one
 * inverted chunk as stored (docs/FORMAT.md: codec byte, varint first position -
 * run start, position list).
 *
 * 1. Buffer level, as ldb_inv_read treats one chunk: unpack (raw or zstd), the
 *    varint, then count and decode; decoded positions must ascend from the first.
 * 2. Through LMDB, in a real empty database: inv:0 holds the input as latent 7's
 *    chunk in runs 0 and 5000, between valid chunks of latents 6 and 8 (runs 0,
 *    5000, 9000), and ldb_inv_read reads latents 6, 7, 8 and 9 (absent); tokidx
 *    holds the input as token 7's lists at positions 100 and 100000, read with
 *    ldb_tokidx_read. Results must ascend strictly.
 *
 * 3. Format 4: the input as a run record (db/invrun.c) of 40 latents from position
 *    1000: every latent read alone and all in one pass must agree, ascend and lie
 *    inside the run. (Parts 1 and 2 read a format-3 database: the harness's handle
 *    is set to format 3, which ldb_inv_read dispatches on.)
 *
 * ldb_zc_unpack refuses zstd frames that claim more than 64 MiB (it once
 * allocated whatever a frame header claimed: regress/inv-zstd-huge-content-size). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../../db/invrun.h"
#include "../../db/reader.h"
#include "../../db/db_impl.h"
#include "fuzz_db.h"

static ldb_buf valid6, valid8; /* codec 0 + varint + list */

/* A valid chunk of n positions from first, every step-th, run start run. */
static void make_chunk(ldb_buf *out, uint64_t run, uint64_t first, uint64_t n, uint64_t step)
{
    uint64_t *pos = malloc(n * sizeof *pos);
    ldb_buf list = {0};
    if (!pos || ldb_buf_reserve(&list, 10))
        fz_die("malloc");
    for (uint64_t i = 0; i < n; i++)
        pos[i] = first + i * step + (i * i) % 3;
    list.len = ldb_varint_put(list.data, first - run);
    if (ldb_posting_encode(pos, n, &list) || ldb_zc_store(list.data, list.len, out))
        fz_die("encode");
    ldb_buf_free(&list);
    free(pos);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_db_setup("inv");
    fz_db->format = 3; /* parts 1 and 2: format-3 chunks */
    make_chunk(&valid6, 0, 3, 50, 17);
    make_chunk(&valid8, 5000, 5002, 9, 4);
    return 0;
}

static void check_sorted(const uint64_t *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i] <= p[i - 1])
            abort();
}

typedef struct fz_run {
    uint64_t **pos;
    size_t *n;
    uint64_t start, len;
} fz_run;

static int fz_each(void *ctx, uint32_t j, const uint64_t *pos, uint64_t c)
{
    fz_run *r = ctx;
    if (c != r->n[j] || memcmp(pos, r->pos[j], c * sizeof *pos))
        abort(); /* one pass and one latent at a time disagree */
    for (uint64_t i = 0; i < c; i++)
        if (pos[i] < r->start || pos[i] >= r->start + r->len || (i && pos[i] <= pos[i - 1]))
            abort();
    return 0;
}

static void fuzz_run_record(const uint8_t *data, size_t size)
{
    enum { R = 40 };
    ldb_invrun r;
    if (ldb_invrun_open(&r, 1000, data, size, R))
        return;
    uint64_t *pos[R] = {0};
    size_t n[R] = {0}, cap[R] = {0};
    int ok = 1;
    for (uint32_t j = 0; j < R; j++)
        if (ldb_invrun_latent(&r, j, &pos[j], &n[j], &cap[j]))
            ok = 0;
    fz_run fr = {pos, n, 1000, r.n};
    if (ok)
        (void)ldb_invrun_each(&r, fz_each, &fr);
    for (uint32_t j = 0; j < R; j++)
        free(pos[j]);
}

static void inv_key(uint8_t k[12], uint64_t run, uint32_t latent)
{
    ldb_be64(k, run);
    ldb_be32(k + 8, latent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. one chunk */
    ldb_buf buf = {0};
    if (ldb_zc_unpack(fz_db->zc, data, size, &buf) == 0 && buf.len) {
        const uint8_t *q = buf.data, *end = buf.data + buf.len;
        uint64_t off, cnt, got;
        if (ldb_varint_get(&q, end, &off) == 0 &&
            ldb_posting_count(q, (size_t)(end - q), &cnt) == 0 && cnt &&
            cnt <= (uint64_t)(end - q) * 8 + 1) {
            uint64_t *pos = malloc(cnt * sizeof *pos);
            if (!pos)
                abort();
            if (ldb_posting_decode(q, (size_t)(end - q), 5000 + off, pos, cnt, &got) == 0) {
                if (got != cnt || pos[0] != 5000 + off)
                    abort();
                check_sorted(pos, got);
            }
            /* too small a capacity must be refused, not overrun */
            if (cnt > 1 && ldb_posting_decode(q, (size_t)(end - q), off, pos, cnt - 1, &got) == 0)
                abort();
            free(pos);
        }
    }
    ldb_buf_free(&buf);

    /* 2. through LMDB */
    uint8_t k[5][12];
    inv_key(k[0], 0, 6);
    inv_key(k[1], 0, 7);
    inv_key(k[2], 5000, 7);
    inv_key(k[3], 5000, 8);
    inv_key(k[4], 9000, 6);
    fz_kv kv[5] = {{k[0], 12, valid6.data, valid6.len}, {k[1], 12, data, size},
                   {k[2], 12, data, size}, {k[3], 12, valid8.data, valid8.len},
                   {k[4], 12, valid8.data, valid8.len}};
    fz_db_fill(fz_dd.inv, kv, 5);
    uint8_t t[2][12];
    ldb_be32(t[0], 7);
    ldb_be64(t[0] + 4, 100);
    ldb_be32(t[1], 7);
    ldb_be64(t[1] + 4, 100000);
    fz_kv tv[2] = {{t[0], 12, data, size}, {t[1], 12, data, size}};
    fz_db_fill(fz_db->tokidx, tv, 2);

    MDB_txn *txn = fz_db_read();
    for (uint32_t latent = 6; latent <= 9; latent++) {
        uint64_t *pos = NULL;
        size_t n = 0;
        ldb_err_clear(ldb_db_err(fz_db));
        int rc = ldb_inv_read(fz_db, txn, &fz_dd, latent, &pos, &n);
        if (rc == LDB_OK)
            check_sorted(pos, n);
        else if (!ldb_db_errmsg(fz_db)[0] || latent != 7)
            abort(); /* only latent 7's chunks are fuzzed */
        free(pos);
    }
    uint64_t *pos = NULL;
    size_t n = 0;
    ldb_err_clear(ldb_db_err(fz_db));
    int rc = ldb_tokidx_read(fz_db, txn, 7, &pos, &n);
    if (rc == LDB_OK)
        check_sorted(pos, n);
    else if (!ldb_db_errmsg(fz_db)[0])
        abort();
    free(pos);
    mdb_txn_abort(txn);
    fuzz_run_record(data, size); /* 3. */
    return 0;
}
