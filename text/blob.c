/* blob.c — the LTK2 blob (docs/FORMAT.md): its layout, written for the compiler and
 * read by everything else. Opening distrusts the bytes: every table bound, id and
 * probe chain is checked, and the vocabulary hash is spot-checked against the pieces
 * (a blob made with another hash is refused, not misread). Also builds what an open
 * blob keeps beside it: the added tokens' tries and the ASCII ids. */
#include <stdlib.h>
#include <string.h>

#include "pipe.h"
#include "tok_impl.h"
#include "trie.h"

#define HDR_WORDS 20

/* ---- writing ------------------------------------------------------------ */

int ldb_tok_blob_new(ldb_tok_tables *t, const ldb_tok *h, uint64_t piece_bytes, size_t pipe_bytes,
                     const char *path, ldb_err *e)
{
    memset(t, 0, sizeof *t);
    uint32_t o_off = HDR_WORDS * 4, o_pieces = o_off + 4 * (h->n_vocab + 1);
    uint64_t o_vocab = (o_pieces + piece_bytes + 3) & ~3ull, o_merge = o_vocab + 4ull * h->vocab_cap,
             o_added = o_merge + 16ull * h->merge_cap, o_byte = o_added + 8ull * h->n_added,
             o_pipe = o_byte + 4 * 256, total = o_pipe + pipe_bytes;
    if (total > UINT32_MAX)
        return ldb_err_set(e, LDB_EUNSUPPORTED, "%s: tokenizer too large (%llu bytes compiled)",
                           path, (unsigned long long)total);
    uint8_t *blob = calloc(1, total);
    if (!blob)
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    *t = (ldb_tok_tables){
        .blob = blob, .size = total, .piece_off = (uint32_t *)(blob + o_off), .pieces = blob + o_pieces,
        .vocab = (uint32_t *)(blob + o_vocab), .merges = (uint32_t *)(blob + o_merge),
        .added = (uint32_t *)(blob + o_added), .byte_id = (uint32_t *)(blob + o_byte),
        .pipe = pipe_bytes ? blob + o_pipe : NULL};
    memset(t->merges, 0xff, 16ull * h->merge_cap);
    return LDB_OK;
}

void ldb_tok_blob_header(ldb_tok_tables *t, const ldb_tok *h)
{
#define OFF(p) (uint32_t)((const uint8_t *)(p) - t->blob)
    uint32_t hdr[HDR_WORDS] = {
        t->pipe ? LDB_TOK_MAGIC3 : LDB_TOK_MAGIC, HDR_WORDS, h->n_vocab, h->n_merges, h->flags, h->unk, h->bos, h->eos, h->pad,
        h->vocab_cap, h->merge_cap, h->n_added, OFF(t->piece_off), OFF(t->pieces), OFF(t->vocab),
        OFF(t->merges), OFF(t->added), OFF(t->byte_id), (uint32_t)t->size,
        t->pipe ? OFF(t->pipe) : 0};
#undef OFF
    memcpy(t->blob, hdr, sizeof hdr);
}

/* ---- opening ------------------------------------------------------------ */

static int bad_blob(ldb_err *e, const char *name, const char *what)
{
    return ldb_err_set(e, LDB_EFORMAT, "%s: tokenizer tables are corrupt (%s)", name, what);
}

/* Reads the header h (size bytes, at least HDR_WORDS words) into tk and checks every
 * table against it; NULL when sound, else what is not. */
static const char *check_tables(ldb_tok *tk, const uint32_t *h, size_t size)
{
    tk->n_vocab = h[2], tk->n_merges = h[3], tk->flags = h[4], tk->unk = h[5], tk->bos = h[6];
    tk->eos = h[7], tk->pad = h[8], tk->vocab_cap = h[9], tk->merge_cap = h[10], tk->n_added = h[11];
    uint64_t o_off = h[12], o_pieces = h[13], o_vocab = h[14], o_merge = h[15], o_added = h[16],
             o_byte = h[17], total = h[18];
    if (total != size || h[1] != HDR_WORDS)
        return "size";
    if (!tk->vocab_cap || (tk->vocab_cap & (tk->vocab_cap - 1)) || tk->vocab_cap < tk->n_vocab ||
        !tk->merge_cap || (tk->merge_cap & (tk->merge_cap - 1)) || tk->merge_cap <= tk->n_merges)
        return "hash sizes";
    if (o_off % 4 || o_vocab % 4 || o_merge % 4 || o_added % 4 || o_byte % 4 ||
        o_off + 4ull * (tk->n_vocab + 1) > size || o_vocab + 4ull * tk->vocab_cap > size ||
        o_merge + 16ull * tk->merge_cap > size || o_added + 8ull * tk->n_added > size ||
        o_byte + 4ull * 256 > size || o_pieces > size)
        return "table bounds";
    tk->piece_off = (const uint32_t *)(tk->blob + o_off);
    tk->pieces = tk->blob + o_pieces;
    tk->vocab = (const uint32_t *)(tk->blob + o_vocab);
    tk->merges = (const uint32_t *)(tk->blob + o_merge);
    tk->added = (const uint32_t *)(tk->blob + o_added);
    tk->byte_id = (const uint32_t *)(tk->blob + o_byte);
    if (tk->piece_off[0] != 0 || o_pieces + tk->piece_off[tk->n_vocab] > size)
        return "pieces";
    for (uint32_t i = 0; i < tk->n_vocab; i++)
        if (tk->piece_off[i + 1] < tk->piece_off[i])
            return "piece offsets";
    /* every probe of a hash ends at an empty slot: a table with none would loop
     * forever, so one is required */
    uint32_t empty = 0;
    for (uint32_t i = 0; i < tk->vocab_cap; i++) {
        if (tk->vocab[i] > tk->n_vocab)
            return "vocabulary hash";
        empty += !tk->vocab[i];
    }
    if (!empty)
        return "vocabulary hash (full)";
    empty = 0;
    for (uint32_t i = 0; i < tk->merge_cap; i++) {
        const uint32_t *s = tk->merges + 4 * (size_t)i;
        if (s[0] != LDB_TOK_NONE && (s[0] >= tk->n_vocab || s[1] >= tk->n_vocab || s[3] >= tk->n_vocab))
            return "merge hash";
        empty += s[0] == LDB_TOK_NONE;
    }
    if (!empty)
        return "merge hash (full)";
    for (uint32_t i = 0; i < 256; i++)
        if (tk->byte_id[i] != LDB_TOK_NONE && tk->byte_id[i] >= tk->n_vocab)
            return "byte ids";
    for (uint32_t i = 0; i < tk->n_added; i++)
        if (tk->added[2 * i] >= tk->n_vocab)
            return "added tokens";
    uint32_t sp[4] = {tk->unk, tk->bos, tk->eos, tk->pad};
    for (int i = 0; i < 4; i++)
        if (sp[i] != LDB_TOK_NONE && sp[i] >= tk->n_vocab)
            return "special ids";
    return NULL;
}

/* The added tokens' tries (unnormalized, normalized: by the pipeline's Unicode form,
 * as the reference normalizes them) and bits, the ASCII ids, ByteLevel's byte ids. */
static int build_lookups(ldb_tok *tk)
{
    for (int k = 0; k < 2; k++)
        if (!(tk->trie[k] = calloc(1, sizeof *tk->trie[k])))
            return LDB_ENOMEM;
    if (!(tk->is_added = calloc(tk->n_vocab / 8 + 1, 1)))
        return LDB_ENOMEM;
    for (uint32_t i = 0; i < tk->n_added; i++) {
        uint32_t id = tk->added[2 * i], fl = tk->added[2 * i + 1];
        size_t len;
        const uint8_t *p = ldb_tok_piece(tk, id, &len);
        uint8_t *norm = NULL;
        int nf = (fl & LDB_TOK_A_NORMALIZED) && tk->pipe && tk->pipe->norm;
        if ((nf && ldb_tok_normalize(tk->pipe->norm, p, len, &norm, &len)) ||
            ldb_tok_trie_add(tk->trie[(fl & LDB_TOK_A_NORMALIZED) ? 1 : 0], norm ? norm : p, len, id)) {
            free(norm);
            return LDB_ENOMEM;
        }
        free(norm);
        tk->is_added[id / 8] |= (uint8_t)(1u << (id % 8));
    }
    for (int c = 0; c < 128; c++) {
        uint8_t b = (uint8_t)c;
        tk->ascii[c] = tok_vocab_find(tk, &b, 1);
    }
    ldb_tok_bytelevel_map(tk->bl_char, tk->bl_len);
    for (int b = 0; b < 256; b++)
        tk->byte_sym[b] = tk->bytelevel ? tok_vocab_find(tk, tk->bl_char[b], tk->bl_len[b]) : LDB_TOK_NONE;
    return LDB_OK;
}

/* Whether the vocabulary hash finds the pieces (up to 256 of them, spread over the
 * ids): the hash must be the one the tables were built with. */
static int hash_finds_pieces(const ldb_tok *tk)
{
    for (uint32_t id = 0, seen = 0; id < tk->n_vocab && seen < 256; id += 1 + tk->n_vocab / 512) {
        size_t len;
        const uint8_t *p = ldb_tok_piece(tk, id, &len);
        if (!len)
            continue;
        seen++;
        uint32_t got = tok_vocab_find(tk, p, len);
        size_t gl;
        const uint8_t *gp = got == LDB_TOK_NONE ? NULL : ldb_tok_piece(tk, got, &gl);
        if (!gp || gl != len || memcmp(gp, p, len))
            return 0;
    }
    return 1;
}

int ldb_tok_open_blob(ldb_tok *tk, const void *blob, size_t size, int copy, const char *name,
                      ldb_err *e)
{
    int rc;
    memset(tk, 0, sizeof *tk);
    if (!(tk->name = strdup(name ? name : "tokenizer")))
        return ldb_err_set(e, LDB_ENOMEM, "out of memory");
    if (copy) {
        if (!(tk->own = malloc(size ? size : 1))) {
            rc = ldb_err_set(e, LDB_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(tk->own, blob, size);
        blob = tk->own;
    }
    tk->blob = blob;
    tk->size = size;
    const uint32_t *h = blob;
    int known = size >= 4 && !((uintptr_t)blob & 3) && (h[0] == LDB_TOK_MAGIC || h[0] == LDB_TOK_MAGIC3);
    if (size >= 4 && !((uintptr_t)blob & 3) && (h[0] & 0x00ffffffu) == (LDB_TOK_MAGIC & 0x00ffffffu) &&
        !known) {
        rc = ldb_err_set(e, LDB_EUNSUPPORTED, "%s: tokenizer tables of format LTK%c; this "
                         "latentdb reads LTK2 and LTK3 (make the database again with init "
                         "--tokenizer, or set-tokenizer)", name, (char)(h[0] >> 24));
        goto fail;
    }
    const char *why = size < HDR_WORDS * 4 || !known ? "header" : check_tables(tk, h, size);
    if (!why && (h[0] == LDB_TOK_MAGIC) != (h[19] == 0))
        why = "pipeline offset";
    if (!why && h[19] && (h[19] % 4 || h[19] < h[17] + 4ull * 256 || h[19] > size))
        why = "pipeline bounds";
    if (why) {
        rc = bad_blob(e, name, why);
        goto fail;
    }
    if (h[19] && (rc = ldb_tok_pipe_open(tk, tk->blob + h[19], size - h[19], name, e)))
        goto fail;
    if (build_lookups(tk)) {
        rc = ldb_err_set(e, LDB_ENOMEM, "out of memory");
        goto fail;
    }
    if (!hash_finds_pieces(tk)) {
        rc = bad_blob(e, name, "the vocabulary hash does not find its pieces");
        goto fail;
    }
    return LDB_OK;
fail:
    ldb_tok_close(tk);
    return rc;
}

void ldb_tok_close(ldb_tok *tk)
{
    if (!tk)
        return;
    ldb_tok_trie_free(tk->trie[0]);
    ldb_tok_trie_free(tk->trie[1]);
    ldb_tok_pipe_free(tk->pipe);
    free(tk->is_added);
    free(tk->own);
    free(tk->name);
    memset(tk, 0, sizeof *tk);
}

const uint8_t *ldb_tok_piece(const ldb_tok *tk, uint32_t id, size_t *len)
{
    if (id >= tk->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = tk->piece_off[id + 1] - tk->piece_off[id];
    return tk->pieces + tk->piece_off[id];
}
