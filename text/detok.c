/* detok.c — ids to text, and one token's text: pieces with ▁ read as spaces, runs
 * of byte tokens (<0xXX>) joined into their bytes and read as UTF-8 (invalid → U+FFFD);
 * a ByteLevel tokenizer's pieces read back through GPT-2's byte map, each run of them
 * between added tokens as UTF-8. Reads the blob only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "tokenizer.h"
#include "pipe.h"

/* The byte of a "<0xXX>" piece, or -1. */
static int byte_piece(const uint8_t *p, size_t n)
{
    if (n != 6 || memcmp(p, "<0x", 3) || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Text being built: in a malloc'd buffer that grows (decode), or in the caller's
 * p[cap] (fixed, piece_text), which keeps what fits and counts the rest in n. Either
 * way p[min(n, cap - 1)] is a NUL once anything was added. */
typedef struct sbuf { char *p; size_t n, cap; int fixed; } sbuf;

static int sb_add(sbuf *b, const void *s, size_t n)
{
    if (b->fixed) {
        if (b->n + 1 < b->cap) {
            size_t w = n < b->cap - 1 - b->n ? n : b->cap - 1 - b->n;
            memcpy(b->p + b->n, s, w);
            b->p[b->n + w] = 0;
        }
        b->n += n;
        return LDB_OK;
    }
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return LDB_ENOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return LDB_OK;
}

static int flush_bytes(sbuf *out, uint8_t *bytes, size_t *nb)
{
    if (!*nb)
        return LDB_OK;
    uint8_t *clean;
    size_t cn;
    if (ldb_utf8_sanitize(bytes, *nb, &clean, &cn))
        return LDB_ENOMEM;
    int rc = sb_add(out, clean, cn);
    free(clean);
    *nb = 0;
    return rc;
}

/* Appends a piece with ▁ read as a space. */
static int add_piece(sbuf *out, const uint8_t *p, size_t n)
{
    size_t a = 0;
    for (size_t i = 0; i + 2 < n;) {
        if (p[i] == 0xe2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
            if (sb_add(out, p + a, i - a) || sb_add(out, " ", 1))
                return LDB_ENOMEM;
            i += 3;
            a = i;
        } else {
            i++;
        }
    }
    return sb_add(out, p + a, n - a);
}

/* The byte of GPT-2's character cp, or -1: printable Latin-1 stands for itself, U+0100..
 * U+0143 for the other bytes in order (0x00-0x20, 0x7f-0xa0, 0xad). */
static int bl_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xff && cp != 0xad))
        return (int)cp;
    if (cp < 0x100 || cp > 0x143)
        return -1;
    uint32_t k = cp - 0x100;
    return (int)(k < 33 ? k : k < 67 ? 0x7f + (k - 33) : 0xad);
}

/* Appends the bytes piece p[0..n) stands for to bytes (room for 4 n): each character
 * through the byte map, one outside it as its own UTF-8 (as the Rust reference). */
static size_t unmap(const uint8_t *p, size_t n, uint8_t *bytes)
{
    size_t k = 0;
    for (size_t i = 0, l; i < n; i += l) {
        uint32_t cp;
        l = ldb_utf8_next(p + i, n - i, &cp);
        int by = cp == LDB_UTF8_BAD ? -1 : bl_byte(cp);
        if (by >= 0) {
            bytes[k++] = (uint8_t)by;
        } else {
            memcpy(bytes + k, p + i, l);
            k += l;
        }
    }
    return k;
}

static int is_added(const ldb_tok *tk, uint32_t id)
{
    return tk->is_added && (tk->is_added[id / 8] >> (id % 8) & 1);
}

static int decode_bytelevel(const ldb_tok *tk, const uint32_t *ids, size_t n, sbuf *o)
{
    size_t cap = 256, nb = 0;
    uint8_t *bytes = malloc(cap);
    int rc = bytes ? LDB_OK : LDB_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t pl;
        const uint8_t *p = ldb_tok_piece(tk, ids[i], &pl);
        if (!p || is_added(tk, ids[i])) {
            if (!(rc = flush_bytes(o, bytes, &nb)))
                rc = p ? sb_add(o, p, pl) : sb_add(o, "\xef\xbf\xbd", 3);
            continue;
        }
        if (nb + pl > cap) {
            while (nb + pl > cap)
                cap *= 2;
            uint8_t *nbuf = realloc(bytes, cap);
            if (!nbuf) {
                rc = LDB_ENOMEM;
                break;
            }
            bytes = nbuf;
        }
        nb += unmap(p, pl, bytes + nb);
    }
    if (!rc)
        rc = flush_bytes(o, bytes, &nb);
    free(bytes);
    return rc;
}

int ldb_tok_decode(const ldb_tok *tk, const uint32_t *ids, size_t n, char **out, size_t *len)
{
    if (tk->bytelevel) {
        sbuf o = {0};
        int rc = sb_add(&o, "", 0);
        if (!rc)
            rc = decode_bytelevel(tk, ids, n, &o);
        if (rc) {
            free(o.p);
            return LDB_ENOMEM;
        }
        *out = o.p;
        *len = o.n;
        return LDB_OK;
    }
    sbuf o = {0};
    uint8_t *bytes = malloc(n + 1);
    size_t nb = 0;
    int rc = bytes ? sb_add(&o, "", 0) : LDB_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t pl;
        const uint8_t *p = ldb_tok_piece(tk, ids[i], &pl);
        if (!p) {
            rc = flush_bytes(&o, bytes, &nb);
            if (!rc)
                rc = sb_add(&o, "\xef\xbf\xbd", 3); /* an id outside the vocabulary */
            continue;
        }
        int by = byte_piece(p, pl);
        if (by >= 0) {
            bytes[nb++] = (uint8_t)by;
            continue;
        }
        if (!(rc = flush_bytes(&o, bytes, &nb)))
            rc = add_piece(&o, p, pl);
    }
    if (!rc)
        rc = flush_bytes(&o, bytes, &nb);
    free(bytes);
    if (rc) {
        free(o.p);
        return LDB_ENOMEM;
    }
    *out = o.p;
    *len = o.n;
    return LDB_OK;
}

size_t ldb_tok_piece_text(const ldb_tok *tk, uint32_t id, char *buf, size_t cap)
{
    size_t pl;
    const uint8_t *p = ldb_tok_piece(tk, id, &pl);
    sbuf o = {buf, 0, cap, 1}; /* adding to it cannot fail */
    int by = p ? byte_piece(p, pl) : -1;
    if (cap)
        buf[0] = 0;
    if (p && tk->bytelevel && !is_added(tk, id)) { /* its bytes; those of no whole character in hex */
        uint8_t *bytes = malloc(pl + 1);
        size_t nb = bytes ? unmap(p, pl, bytes) : 0;
        for (size_t i = 0, l; i < nb; i += l) {
            uint32_t cp;
            l = ldb_utf8_next(bytes + i, nb - i, &cp);
            for (size_t j = 0; cp == LDB_UTF8_BAD && j < l; j++) {
                char hx[8];
                snprintf(hx, sizeof hx, "<0x%02X>", bytes[i + j]);
                sb_add(&o, hx, 6);
            }
            if (cp != LDB_UTF8_BAD)
                sb_add(&o, bytes + i, l);
        }
        free(bytes);
        return o.n;
    }
    if (!p)
        sb_add(&o, "<?>", 3);
    else if (by >= 0x80 || (by >= 0 && by < 0x20)) { /* alone it is no character */
        char hx[16];
        snprintf(hx, sizeof hx, "<0x%02X>", (unsigned)by & 0xffu);
        sb_add(&o, hx, 6);
    } else if (by >= 0) {
        char ch = (char)by;
        sb_add(&o, &ch, 1);
    } else {
        add_piece(&o, p, pl);
    }
    return o.n;
}
