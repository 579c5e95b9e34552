/* seedgen.c — makes the seed inputs of the store and tokenizer-blob targets from
 * the library's own writers (run by make_seeds.sh, not by the fuzzers).
 *
 *   seedgen db FWD_DIR INV_DIR    builds two small databases (bf16 and f32 values)
 *                                 under /tmp through the batch writer, and copies
 *                                 forward blocks and inverted chunks out of them
 *   seedgen blob IN.json OUT      compiles a tokenizer.json to its LTK2 blob
 *
 * Deterministic: a fixed LCG draws the codes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../db/db_impl.h"
#include "../../db/writer.h"
#include "../../text/tokenizer.h"
#include "fuzz_common.h"

#define D_IN 4
#define D_SAE 4096

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

static char root[64] = "/tmp/ldbseed-XXXXXX";

static _Noreturn void die(const char *what, const char *msg)
{
    fprintf(stderr, "seedgen: %s: %s\n", what, msg);
    if (strcmp(root + 13, "XXXXXX"))
        nftw(root, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    exit(1);
}

/* A SAELens "standard" dictionary of zeros: d_in 4, d_sae 4096. */
static void write_dict(const char *dir)
{
    char p[512];
    if (mkdir(dir, 0700) != 0)
        die(dir, "mkdir");
    const char *cfg = "{\"architecture\": \"standard\", \"d_in\": 4, \"d_sae\": 4096, "
                      "\"apply_b_dec_to_input\": true, \"metadata\": {\"hook_name\": \"seed\"}}";
    fz_write_file(fz_join(p, sizeof p, dir, "cfg.json"), cfg, strlen(cfg));
    char hdr[512];
    size_t a = 4ull * D_IN * D_SAE, b = 4ull * D_SAE;
    int o = snprintf(hdr, sizeof hdr,
                     "{\"W_enc\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
                     "\"b_enc\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]},"
                     "\"W_dec\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]},"
                     "\"b_dec\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}}",
                     D_IN, D_SAE, a, D_SAE, a, a + b, D_SAE, D_IN, a + b, 2 * a + b, D_IN,
                     2 * a + b, 2 * a + b + 16);
    while (o % 8)
        hdr[o++] = ' ';
    size_t total = 8 + (size_t)o + 2 * a + b + 16;
    uint8_t *buf = calloc(1, total);
    if (!buf)
        die("calloc", "out of memory");
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)o >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)o);
    fz_write_file(fz_join(p, sizeof p, dir, "sae_weights.safetensors"), buf, total);
    free(buf);
}

/* Codes of one sequence of len positions: the first (token 2, a BOS) fires 300
 * latents, the others 0..11, latent 7 often; positive values of varied scale. */
static void add_seq(ldb_writer *w, ldb_db *db, uint32_t src, uint64_t row, uint32_t len)
{
    uint32_t *tok = malloc(len * sizeof *tok), *lat = malloc((size_t)len * 400 * sizeof *lat);
    uint64_t *start = malloc((len + 1) * sizeof *start);
    float *val = malloc((size_t)len * 400 * sizeof *val);
    if (!tok || !lat || !start || !val)
        die("malloc", "out of memory");
    uint64_t nnz = 0;
    static uint8_t used[D_SAE];
    for (uint32_t r = 0; r < len; r++) {
        tok[r] = r == 0 ? 2 : 10 + rnd() % 50;
        start[r] = nnz;
        uint32_t c = r == 0 ? 300 : rnd() % 12;
        memset(used, 0, sizeof used);
        if (r && rnd() % 3 == 0)
            used[7] = 1, c = c ? c - 1 : 0;
        for (uint32_t i = 0; i < c; i++)
            used[rnd() % 4 == 0 ? rnd() % 64 : rnd() % D_SAE] = 1;
        for (uint32_t l = 0; l < D_SAE; l++)
            if (used[l]) {
                lat[nnz] = l;
                uint32_t x = rnd();
                float v = (float)(x % 10000) / 1000.0f + 0.01f;
                if (x % 17 == 0)
                    v *= 300.0f;
                if (x % 31 == 0)
                    v /= 4096.0f;
                val[nnz++] = v;
            }
    }
    start[len] = nnz;
    uint8_t hash[16];
    ldb_seqrec seq;
    ldb_tokens_hash(tok, len, hash);
    if (ldb_writer_add_seq(w, tok, len, src, row, hash, &seq) ||
        ldb_writer_codes(w, 0, &seq, tok, start, lat, val))
        die("writer", ldb_db_errmsg(db));
    free(tok), free(lat), free(start), free(val);
}

static int n_fwd, n_inv;

static void dump(const char *fwd_dir, const char *inv_dir, ldb_db *db, const char *tag)
{
    MDB_txn *txn;
    MDB_dbi fwd, inv;
    MDB_cursor *c;
    MDB_val k, v;
    char p[512], name[64];
    if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) || ldb_db_dict_dbis(db, txn, 0, 0, &fwd, &inv))
        die("read", ldb_db_errmsg(db));
    int i = 0;
    if (mdb_cursor_open(txn, fwd, &c))
        die("cursor", "fwd");
    for (int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        snprintf(name, sizeof name, "%s-block%d", tag, i++);
        fz_write_file(fz_join(p, sizeof p, fwd_dir, name), v.mv_data, v.mv_size);
        n_fwd++;
    }
    mdb_cursor_close(c);
    if (!inv_dir) { /* (format 5 changed forward blocks only) */
        mdb_txn_abort(txn);
        return;
    }
    /* inverted chunks: latent 7 (frequent), a few rare ones, the largest one */
    if (mdb_cursor_open(txn, inv, &c))
        die("cursor", "inv");
    size_t best = 0;
    MDB_val bigk = {0, NULL}, bigv = {0, NULL};
    int rare = 0;
    for (int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !mrc; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t run = ldb_rd_be64(k.mv_data);
        uint32_t lat = ldb_rd_be32((uint8_t *)k.mv_data + 8);
        if (v.mv_size > best && lat != 7)
            best = v.mv_size, bigk = k, bigv = v;
        int take = lat == 7 || (lat > 1000 && rare < 3 && (rare += 1));
        if (!take)
            continue;
        snprintf(name, sizeof name, "%s-run%llu-lat%u", tag, (unsigned long long)run, lat);
        fz_write_file(fz_join(p, sizeof p, inv_dir, name), v.mv_data, v.mv_size);
        n_inv++;
    }
    if (best) {
        snprintf(name, sizeof name, "%s-run%llu-lat%u", tag,
                 (unsigned long long)ldb_rd_be64(bigk.mv_data), ldb_rd_be32((uint8_t *)bigk.mv_data + 8));
        fz_write_file(fz_join(p, sizeof p, inv_dir, name), bigv.mv_data, bigv.mv_size);
        n_inv++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
}

/* Synthetic raw chunks: gaps past the Rice escape, and many irregular positions. */
static void synth_chunks(const char *inv_dir)
{
    static uint64_t pos[2000];
    char p[512];
    for (int c = 0; c < 2; c++) {
        size_t n = c ? 2000 : 6;
        uint64_t at = 12;
        for (size_t i = 0; i < n; i++) {
            pos[i] = at;
            at += c ? 1 + rnd() % 200 + (rnd() % 50 == 0 ? 100000 : 0)
                    : (i == 2 ? (1ull << 40) : i == 4 ? 5000000 : 1);
        }
        ldb_buf list = {0}, out = {0};
        if (ldb_buf_reserve(&list, 10))
            die("malloc", "out of memory");
        list.len = ldb_varint_put(list.data, 12);
        if (ldb_posting_encode(pos, n, &list) || ldb_zc_store(list.data, list.len, &out))
            die("chunk", "encode");
        fz_write_file(fz_join(p, sizeof p, inv_dir, c ? "synth-irregular" : "synth-escape"),
                      out.data, out.len);
        n_inv++;
        ldb_buf_free(&list);
        ldb_buf_free(&out);
    }
}

/* A zstd-packed chunk (codec 1; readers accept it though writers store raw). */
static void zstd_chunk(const char *inv_dir, ldb_db *db)
{
    uint64_t pos[3000];
    for (int i = 0; i < 3000; i++)
        pos[i] = 40 + 3ull * (uint64_t)i;
    ldb_buf list = {0}, out = {0};
    if (ldb_buf_reserve(&list, 10))
        die("malloc", "out of memory");
    list.len = ldb_varint_put(list.data, 40);
    if (ldb_posting_encode(pos, 3000, &list) || ldb_zc_pack(db->zc, list.data, list.len, &out) ||
        out.data[0] != 1)
        die("zstd chunk", "not packed");
    char p[512];
    fz_write_file(fz_join(p, sizeof p, inv_dir, "zstd-run0-lat7"), out.data, out.len);
    n_inv++;
    ldb_buf_free(&list);
    ldb_buf_free(&out);
}

static int cmd_db(const char *fwd_dir, const char *inv_dir)
{
    char p[512], dict[512];
    if (!mkdtemp(root))
        die("mkdtemp", root);
    fz_join(dict, sizeof dict, root, "dict");
    write_dict(dict);
    static const uint32_t lens[3][3] = {{64, 17, 200}, {33, 120, 0}, {9, 0, 0}};
    /* forward blocks of format 4 (bf16-*, f32-*) and of format 5 (v5-*) */
    static const struct { int values, format; const char *tag; } kinds[] = {
        {LDB_VALUES_BF16, 4, "bf16"}, {LDB_VALUES_F32, 4, "f32"},
        {LDB_VALUES_BF16, 5, "v5-bf16"}, {LDB_VALUES_F32, 5, "v5-f32"}};
    for (int kd = 0; kd < 4; kd++) {
        ldb_db *db = NULL;
        uint32_t skip = 2;
        ldb_create_opts o;
        ldb_create_opts_init(&o);
        o.skip = &skip;
        o.n_skip = 1;
        o.values = kinds[kd].values;
        o.format = kinds[kd].format;
        fz_join(p, sizeof p, root, kinds[kd].tag);
        if (ldb_db_create(p, &o, &db) || ldb_db_dict_add(db, "d", dict))
            die(p, ldb_db_errmsg(db));
        uint64_t row = 0;
        for (int b = 0; b < 3; b++) {
            ldb_writer *w;
            uint32_t src;
            if (ldb_writer_begin(db, &w) || ldb_writer_source(w, "seed", &src))
                die("writer", ldb_db_errmsg(db));
            for (int s = 0; s < 3 && lens[b][s]; s++)
                add_seq(w, db, src, row++, lens[b][s]);
            if (ldb_writer_commit(w))
                die("commit", ldb_db_errmsg(db));
        }
        dump(fwd_dir, kinds[kd].format == 4 ? inv_dir : NULL, db, kinds[kd].tag);
        if (kd == 0) {
            zstd_chunk(inv_dir, db);
            synth_chunks(inv_dir);
        }
        ldb_db_close(db);
    }
    if (nftw(root, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "seedgen: could not remove %s\n", root);
    printf("seedgen: %d forward blocks, %d inverted chunks\n", n_fwd, n_inv);
    return 0;
}

static int cmd_blob(const char *in, const char *out)
{
    ldb_tok tk;
    ldb_err e;
    if (ldb_tok_load_json(&tk, in, &e))
        die(in, e.msg);
    fz_write_file(out, tk.blob, tk.size);
    ldb_tok_close(&tk);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "db"))
        return cmd_db(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "blob"))
        return cmd_blob(argv[2], argv[3]);
    fprintf(stderr, "usage: seedgen db FWD_DIR INV_DIR | seedgen blob IN.json OUT\n");
    return 2;
}
