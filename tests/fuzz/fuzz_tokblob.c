/* fuzz_tokblob.c — libFuzzer target for the compiled tokenizer tables' checker
 * (text/blob.c: ldb_tok_open_blob, reached through text/api.c's
 * ldb_tokenizer_from_blob, as a DB's meta "tokenizer" record is opened). The
 * input is the LTK2 blob itself (docs/FORMAT.md, "Tokenizer blob"); it is copied,
 * so alignment does not depend on libFuzzer's buffer. When the checker accepts
 * the blob, fixed strings are encoded and decoded and pieces are read, which
 * must stay inside the tables the checker bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "../../text/tokenizer.h"
#include "fuzz_common.h"


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
    ldb_tokenizer_info info;
    ldb_tokenizer_get_info(t, &info);
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
    char buf[64];
    for (uint32_t id = 0; id < info.n_vocab && id < 300; id++) {
        if (ldb_tokenizer_piece(t, id, buf, sizeof buf) >= sizeof buf)
            abort();
        if (ldb_tokenizer_piece_text(t, id, buf, sizeof buf) >= sizeof buf)
            abort();
    }
    (void)ldb_tokenizer_piece_text(t, info.n_vocab, buf, sizeof buf);
    size_t bsize;
    const void *blob = ldb_tokenizer_blob(t, &bsize);
    if (bsize != size || memcmp(blob, data, size))
        abort();
    ldb_tokenizer_close(t);
    return 0;
}
