/* fuzz_tokenizer.c — libFuzzer target for the tokenizer.json compiler
 * (text/compile.c: ldb_tok_load_json, which parses the JSON and builds the
 * LTK2 blob, then checks it with ldb_tok_open_blob).
 *
 * Input: tokenizer.json, optionally followed by a NUL byte and a
 * tokenizer_config.json (which names BOS/EOS/PAD); both are written to a folder
 * made once under /tmp. When the input compiles, a few fixed strings are
 * encoded (ASCII, spaces and newlines, multi-byte UTF-8, invalid UTF-8, special
 * tokens, byte tokens' text, a long run for the merge heap) and their ids
 * decoded, every id's piece text is taken (the first 300), and the compiled blob
 * must open again by itself (ldb_tok_open_blob, copy) and encode the same
 * strings to the same ids, through kept scratch (its word cache) and twice, where
 * the first encode had none. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../text/tokenizer.h"
#include "fuzz_common.h"

static char json_path[256], cfg_path[256];


static void exercise(const ldb_tok *tk, ldb_tok_scratch *scr, uint32_t **ids, size_t *n)
{
    ldb_err e;
    for (size_t t = 0; t < FZ_N_TEXTS; t++) {
        if (ldb_tok_encode(tk, scr, fz_texts[t], strlen(fz_texts[t]), &ids[t], &n[t], &e) != LDB_OK)
            abort(); /* only fails when out of memory */
        if (scr) { /* again, from the word cache */
            uint32_t *again;
            size_t na;
            if (ldb_tok_encode(tk, scr, fz_texts[t], strlen(fz_texts[t]), &again, &na, &e) ||
                na != n[t] || (na && memcmp(again, ids[t], na * sizeof *again)))
                abort();
            free(again);
        }
        for (size_t i = 0; i < n[t]; i++)
            if (ids[t][i] >= tk->n_vocab)
                abort();
        char *out = NULL;
        size_t len = 0;
        if (ldb_tok_decode(tk, ids[t], n[t], &out, &len) != LDB_OK || !out || out[len] != 0)
            abort();
        free(out);
    }
}

static void setup(void)
{
    const char *dir = fz_mkdtemp("tokenizer");
    fz_join(json_path, sizeof json_path, dir, "tokenizer.json");
    fz_join(cfg_path, sizeof cfg_path, dir, "tokenizer_config.json");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready++)
        setup();
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    fz_write_file(json_path, data, jlen);
    if (nul)
        fz_write_file(cfg_path, nul + 1, size - jlen - 1);
    else
        unlink(cfg_path);

    ldb_tok tk;
    ldb_err e;
    e.msg[0] = 0;
    if (ldb_tok_load_json(&tk, json_path, &e) != LDB_OK) {
        if (!e.msg[0])
            abort();
        return 0;
    }
    uint32_t *ids[FZ_N_TEXTS], *ids2[FZ_N_TEXTS];
    size_t n[FZ_N_TEXTS], n2[FZ_N_TEXTS];
    exercise(&tk, NULL, ids, n);

    /* decode ids that are not the encoder's: every id in turn, and one out of range */
    uint32_t some[301];
    size_t ns = 0;
    for (uint32_t id = 0; id < tk.n_vocab && ns < 300; id++)
        some[ns++] = id;
    some[ns++] = tk.n_vocab;
    char *out = NULL, buf[64];
    size_t len;
    if (ldb_tok_decode(&tk, some, ns, &out, &len) != LDB_OK)
        abort();
    free(out);
    for (size_t i = 0; i < ns; i++) { /* the full length, however much fits */
        size_t pl = ldb_tok_piece_text(&tk, some[i], buf, sizeof buf);
        if (buf[pl < sizeof buf ? pl : sizeof buf - 1] != 0 ||
            ldb_tok_piece_text(&tk, some[i], NULL, 0) != pl)
            abort();
    }

    /* the compiled tables open by themselves and encode alike */
    ldb_tok t2;
    if (ldb_tok_open_blob(&t2, tk.blob, tk.size, 1, "fuzz blob", &e) != LDB_OK) {
        fprintf(stderr, "compiled blob refused: %s\n", e.msg);
        abort();
    }
    ldb_tok_scratch *scr = ldb_tok_scratch_new(&t2);
    if (!scr)
        abort();
    exercise(&t2, scr, ids2, n2);
    ldb_tok_scratch_free(scr);
    for (size_t t = 0; t < FZ_N_TEXTS; t++) {
        if (n[t] != n2[t] || (n[t] && memcmp(ids[t], ids2[t], n[t] * sizeof *ids[t])))
            abort();
        free(ids[t]);
        free(ids2[t]);
    }
    ldb_tok_close(&t2);
    ldb_tok_close(&tk);
    return 0;
}
