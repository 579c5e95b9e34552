/* fuzz_fwd.c — libFuzzer target for the forward block decoders (db/reader.c).
 * The input is one forward block as stored in LMDB (docs/FORMAT.md, "Forward
 * block": u32 part A length, part A, part B, CRC-32).
 *
 * Each part runs as format 4 and as format 5 (the handle's format says which
 * layout the decoders read; the seeds hold blocks of both).
 * 1. Buffer level: ldb_fwd_decode with and without values, under each stored
 *    value type (bf16, f16, f32: the mantissa width changes the value code),
 *    reusing one ldb_fblock as the queries do; ldb_fwd_crc_ok.
 * 2. In place: the block is stored as fwd:0[1000] of a real empty database and
 *    read with ldb_fwd_at (format 4: the lazy per-group path, forward through the
 *    first positions, backward through groups; format 5: one position through its
 *    entry; values on and off), ldb_fwd_value, ldb_fwd_values and ldb_fwd_get, as
 *    search, context and activation reads do.
 * Decoded codes are read back so ASan sees every pointer the decoders return. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../db/reader.h"
#include "fuzz_db.h"

#define START 1000u

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_db_setup("fwd");
    return 0;
}

static volatile uint32_t sink;

static void touch_block(const ldb_fblock *fb)
{
    uint32_t x = 0;
    uint64_t total = fb->off[fb->n];
    for (uint64_t e = 0; e < total; e++)
        x ^= fb->lat[e] ^ (fb->has_values ? fb->bits[e] : 0);
    sink = x;
}

/* ldb_fwd_at at START + i; checks what it returns. */
static int at(MDB_txn *txn, ldb_fpos *fp, uint64_t i, int values)
{
    ldb_err_clear(ldb_db_err(fz_db));
    int rc = ldb_fwd_at(fz_db, txn, &fz_dd, START + i, values, fp);
    if (rc == LDB_OK) {
        uint32_t x = 0;
        for (uint32_t e = 0; e < fp->cnt; e++)
            x ^= fp->lat[e] ^ (values ? fp->bits[e] : 0);
        sink = x;
    } else if (!ldb_db_errmsg(fz_db)[0] && rc != LDB_ENOTFOUND) {
        abort(); /* a failure explains itself */
    }
    return rc;
}

static void one_format(const uint8_t *data, size_t size)
{
    ldb_fblock fb = {0};
    uint32_t np = 0;

    /* 1. the whole block */
    for (int kind = 0; kind < 3; kind++) {
        fz_db->values = kind;
        for (int values = 0; values < 2; values++) {
            ldb_err_clear(ldb_db_err(fz_db));
            int rc = ldb_fwd_decode(fz_db, &fz_dd, START, data, size, values, &fb);
            if (rc == LDB_OK) {
                if (fb.n == 0 || fb.start != START || fb.has_values != values)
                    abort();
                touch_block(&fb);
                np = fb.n;
            } else if (!ldb_db_errmsg(fz_db)[0]) {
                abort();
            }
        }
    }
    (void)ldb_fwd_crc_ok(data, size);

    /* 2. in place, through LMDB; the readers check a block's CRC-32 before they
     * decode it, so the input's last 4 bytes are made its CRC (else almost no
     * mutation would reach the decoder) */
    fz_db->values = (int)(size % 3);
    uint8_t key[8], *blk = malloc(size ? size : 1);
    if (!blk)
        abort();
    memcpy(blk, data, size);
    if (size >= 4) {
        uint32_t crc = ldb_crc32(blk, size - 4);
        memcpy(blk + size - 4, &crc, 4);
    }
    ldb_be64(key, START);
    fz_kv kv = {key, 8, blk, size};
    fz_db_fill(fz_dd.fwd, &kv, 1);
    MDB_txn *txn = fz_db_read();
    ldb_fpos fp = {0};
    ldb_err_clear(ldb_db_err(fz_db));
    if (ldb_fwd_at(fz_db, txn, &fz_dd, START - 1, 0, &fp) != LDB_ENOTFOUND)
        abort(); /* no block holds a position before the first */
    if (at(txn, &fp, 0, 0) == LDB_OK) {
        np = fp.n;
        uint64_t fwd_n = np < 40 ? np : 40, back = np < 200 ? np : 200;
        for (uint64_t i = 0; i < fwd_n; i++)
            at(txn, &fp, i, i % 3 == 1);
        for (uint64_t i = back; i-- > 0;)
            if (i % 5 == 0 || i == back - 1)
                at(txn, &fp, i, 1);
        at(txn, &fp, np - 1, 1);
        if (at(txn, &fp, np, 0) != LDB_ENOTFOUND)
            abort(); /* past the block's last position */
        float v;
        for (uint64_t i = 0; i < fwd_n; i += 7) {
            uint32_t probe = 5;
            if (at(txn, &fp, i, 0) == LDB_OK && fp.cnt)
                probe = fp.lat[fp.cnt / 2];
            (void)ldb_fwd_value(fz_db, txn, &fz_dd, START + i, probe, &fp, &v);
            (void)ldb_fwd_value(fz_db, txn, &fz_dd, START + i, 5, &fp, &v);
        }
        uint64_t gp[16];
        float vs[16];
        size_t ng = 0;
        for (uint64_t i = 0; i < np + 2 && ng < 16; i += 1 + i / 3)
            gp[ng++] = START + i; /* the last ones past the block */
        ldb_fpos fq = {0};
        if (ldb_fwd_values(fz_db, txn, &fz_dd, gp, ng, 5, &fq, vs) == LDB_OK)
            for (size_t i = 0; i < ng; i++)
                sink ^= (uint32_t)vs[i];
        ldb_fpos_free(&fq);
        ldb_fblock gb = {0};
        if (ldb_fwd_get(fz_db, txn, &fz_dd, START + np - 1, 1, &gb) == LDB_OK)
            touch_block(&gb);
        if (ldb_fwd_get(fz_db, txn, &fz_dd, START, 0, &gb) == LDB_OK)
            touch_block(&gb);
        ldb_fblock_free(&gb);
    }
    ldb_fpos_free(&fp);
    mdb_txn_abort(txn);
    ldb_fblock_free(&fb);
    free(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int f = 4; f <= 5; f++) {
        fz_db->format = f;
        one_format(data, size);
    }
    return 0;
}
