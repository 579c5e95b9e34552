/* fuzz_tokblob.c — libFuzzer target for the compiled tokenizer tables' checker
 * (text/blob.c: ldb_tok_open_blob, reached through text/api.c's
 * ldb_tokenizer_from_blob, as a DB's meta "tokenizer" record is opened). The
 * input is the LTK2 blob itself (docs/FORMAT.md, "Tokenizer blob"); it is copied,
 * so alignment does not depend on libFuzzer's buffer. When the checker accepts
 * the blob, fixed strings are encoded and decoded and pieces are read, which
 * must stay inside the tables the checker bounded and keep the truncation contract
 * of ldb_tokenizer_piece(_text). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "../../text/tokenizer.h"
#include "fuzz_common.h"

/* The contract of ldb_tokenizer_piece (text = 0) and _piece_text (1) for id, whose
 * full length is n: whole in n + 1 bytes; in fewer (cap n, n - 1, n - 2), the same
 * length returned, the first cap - 1 bytes and a NUL, nothing written past cap. */
static int piece_ok(const ldb_tokenizer *t, uint32_t id, size_t n, int text)
{
    size_t (*get)(const ldb_tokenizer *, uint32_t, char *, size_t) =
        text ? ldb_tokenizer_piece_text : ldb_tokenizer_piece;
    char *whole = malloc(n + 1), *cut = malloc(n + 2);
    if (!whole || !cut)
        abort();
    int ok = get(t, id, whole, n + 1) == n && whole[n] == 0;
    for (size_t cap = n; ok && cap > 0 && cap + 3 > n; cap--) {
        memset(cut, 0x5a, n + 2);
        ok = get(t, id, cut, cap) == n && cut[cap - 1] == 0 && !memcmp(cut, whole, cap - 1) &&
             cut[cap] == 0x5a;
    }
    free(whole);
    free(cut);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ldb_err e;
    e.msg[0] = 0;
    ldb_tokenizer *t = ldb_tokenizer_from_blob(data, size, "fuzz blob", &e);
    if (!t) {
        if (!e.msg[0])
            abort();
        return 0;
    }
    const ldb_tokenizer_info info = *ldb_tokenizer_get_info(t);
    for (size_t k = 0; k < FZ_N_TEXTS; k++) {
        uint32_t *ids = NULL;
        size_t n = 0;
        if (ldb_tokenizer_encode(t, fz_texts[k], strlen(fz_texts[k]), &ids, &n) != LDB_OK)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] >= info.n_vocab)
                abort();
        char *out = NULL;
        size_t len = 0;
        if (ldb_tokenizer_decode(t, ids, n, &out, &len) != LDB_OK || out[len] != 0)
            abort();
        free(out);
        free(ids);
    }
    for (uint32_t id = 0; id <= info.n_vocab && id < 300; id++) { /* n_vocab: out of range */
        size_t n = ldb_tokenizer_piece(t, id, NULL, 0), m = ldb_tokenizer_piece_text(t, id, NULL, 0);
        if ((id < info.n_vocab ? 0 : n) || !piece_ok(t, id, n, 0) || !piece_ok(t, id, m, 1))
            abort();
    }
    size_t bsize;
    const void *blob = ldb_tokenizer_blob(t, &bsize);
    if (bsize != size || memcmp(blob, data, size))
        abort();
    ldb_tokenizer_close(t);
    return 0;
}
