/* invrun.c — the version-4 inverted record: one batch run, every latent's positions
 * (docs/FORMAT.md, "Run record"). Encoder (parts, joined) and decoders (one latent;
 * every latent) side by side. */
#include <stdlib.h>
#include <string.h>

#include "invrun.h"

/* Codes per span the writer aims at: a read decodes about half of them to reach its
 * latent (counted in the span's offsets: 32 bits per span). */
#define SPAN_CODES 256

void ldb_invrun_choose(ldb_invrun_params *p, uint64_t start, uint64_t n, uint32_t R,
                       uint64_t codes)
{
    double mean = R ? (double)codes / R : 0;
    unsigned s = 0;
    while (s < LDB_INVRUN_MAX_S && (double)(2u << s) * mean <= SPAN_CODES && (2u << s) <= R)
        s++;
    *p = (ldb_invrun_params){start, n, R, ldb_rice_k(mean), s};
}

/* The Rice parameter of a latent's positions, from its count: no byte stores it. */
static unsigned pos_k(uint64_t n, uint64_t c)
{
    return ldb_rice_k((double)n / (double)(c + 1));
}

int ldb_invrun_part_begin(ldb_invrun_part *t, const ldb_invrun_params *p, uint32_t j0)
{
    t->p = *p;
    t->j0 = t->next = j0;
    t->bits.len = 0;
    t->w = (ldb_bitw){&t->bits, 0, 0};
    return 0;
}

/* Codes latents [t->next, j) as silent, recording span starts on the way. */
static int skip_to(ldb_invrun_part *t, uint32_t j)
{
    uint32_t S = 1u << t->p.s;
    for (; t->next < j; t->next++) {
        if (t->next % S == 0) {
            size_t g = (t->next - t->j0) / S;
            if (ldb_wgrow((void **)&t->span, &t->cap_span, g + 1, sizeof *t->span))
                return -1;
            t->span[g] = ldb_bitw_pos(&t->w);
        }
        if (t->next + 1 < j && ldb_rice_put(&t->w, 0, t->p.kc))
            return -1;
    }
    return 0;
}

int ldb_invrun_part_add(ldb_invrun_part *t, uint32_t j, const uint64_t *pos, uint64_t c)
{
    if (skip_to(t, j + 1)) /* latents before j silent; j's span start recorded */
        return -1;
    if (ldb_rice_put(&t->w, c, t->p.kc))
        return -1;
    unsigned k = pos_k(t->p.n, c);
    for (uint64_t i = 0; i < c; i++)
        if (ldb_rice_put(&t->w, i ? pos[i] - pos[i - 1] - 1 : pos[0] - t->p.start, k))
            return -1;
    return 0;
}

int ldb_invrun_part_end(ldb_invrun_part *t, uint32_t j1)
{
    if (t->next < j1) {
        if (skip_to(t, j1)) /* codes all but the last of [next, j1) */
            return -1;
        if (ldb_rice_put(&t->w, 0, t->p.kc))
            return -1;
    }
    t->nbits = ldb_bitw_pos(&t->w); /* before the padding: parts join bit to bit */
    return ldb_bitw_flush(&t->w);
}

void ldb_invrun_part_free(ldb_invrun_part *t)
{
    ldb_buf_free(&t->bits);
    free(t->span);
    t->span = NULL;
    t->cap_span = 0;
}

/* ORs the first nbits of src into the zeroed stream o at bit offset at (bits past
 * nbits in src are zero: a flushed writer pads with zeros). */
static void bits_append(uint8_t *o, uint64_t at, const uint8_t *src, uint64_t nbits)
{
    unsigned sh = (unsigned)(at % 8);
    uint8_t *d = o + at / 8;
    size_t nb = (size_t)((nbits + 7) / 8);
    for (size_t i = 0; i < nb; i++) {
        d[i] |= (uint8_t)(src[i] << sh);
        if (sh)
            d[i + 1] |= (uint8_t)(src[i] >> (8 - sh));
    }
}

int ldb_invrun_join(ldb_invrun_part *const *parts, int nparts, ldb_buf *out)
{
    const ldb_invrun_params *p = &parts[0]->p;
    uint32_t S = 1u << p->s, nspan = (uint32_t)((p->R + (uint64_t)S - 1) / S);
    uint64_t bits = 0;
    for (int i = 0; i < nparts; i++)
        bits += parts[i]->nbits;
    if (bits > UINT32_MAX ||
        ldb_buf_reserve(out, 1 + 10 + 5 + 2 + 4 * (size_t)nspan + (size_t)(bits / 8) + 2))
        return -1;
    uint8_t *o = out->data + out->len;
    size_t k = 0;
    o[k++] = LDB_INVRUN_CODEC;
    k += ldb_varint_put(o + k, p->n);
    k += ldb_varint_put(o + k, p->R);
    o[k++] = (uint8_t)p->kc;
    o[k++] = (uint8_t)p->s;
    uint8_t *table = o + k;
    k += 4 * (size_t)(nspan ? nspan - 1 : 0);
    uint8_t *stream = o + k;
    memset(stream, 0, (size_t)((bits + 7) / 8) + 1);
    uint64_t base = 0; /* bits of the parts before: the stream is one, whatever the parts */
    for (int i = 0; i < nparts; i++) {
        const ldb_invrun_part *t = parts[i];
        for (uint32_t g = 0; t->j0 / S + g < nspan && (uint64_t)g * S + t->j0 < t->next; g++) {
            uint32_t G = t->j0 / S + g, off = (uint32_t)(base + t->span[g]);
            if (G)
                memcpy(table + 4 * (size_t)(G - 1), &off, 4);
        }
        bits_append(stream, base, t->bits.data, t->nbits);
        base += t->nbits;
    }
    out->len += k + (size_t)((bits + 7) / 8);
    return 0;
}

int ldb_invrun_open(ldb_invrun *r, uint64_t start, const uint8_t *p, size_t len, uint32_t R)
{
    const uint8_t *q = p, *end = p + len;
    uint64_t n, rr;
    if (len < 1 || *q++ != LDB_INVRUN_CODEC || ldb_varint_get(&q, end, &n) ||
        ldb_varint_get(&q, end, &rr) || rr != R || R == 0 || end - q < 2 ||
        n == 0 || n > UINT64_MAX - start)
        return -1;
    r->start = start;
    r->n = n;
    r->R = R;
    r->kc = q[0];
    r->s = q[1];
    q += 2;
    if (r->kc > 40 || r->s > LDB_INVRUN_MAX_S)
        return -1;
    uint64_t S = 1ull << r->s, nspan = (R + S - 1) / S;
    if ((uint64_t)(end - q) / 4 < nspan - 1)
        return -1;
    r->table = q;
    r->stream = q + 4 * (nspan - 1);
    r->end = end;
    uint64_t bits = 8 * (uint64_t)(end - r->stream), prev = 0;
    for (uint64_t g = 0; g + 1 < nspan; g++) {
        uint32_t off;
        memcpy(&off, r->table + 4 * g, 4);
        if (off < prev || off > bits)
            return -1;
        prev = off;
    }
    return 0;
}

static uint64_t span_off(const ldb_invrun *r, uint64_t g)
{
    uint32_t off = 0;
    if (g)
        memcpy(&off, r->table + 4 * (g - 1), 4);
    return off;
}

/* Reads a latent's count: at most the run's positions, and each position takes a
 * bit at least, so a count past the stream's bits is damage (refused before it
 * sizes an allocation). -1 malformed. */
static int read_count(const ldb_invrun *r, ldb_bitr *br, uint64_t *c)
{
    return ldb_rice_get_fast(br, r->kc, c) || *c > r->n ||
           *c > 8 * (uint64_t)(r->end - r->stream) ? -1 : 0;
}

/* Reads a latent's c positions into pos (NULL: skips them). -1 malformed. */
static int read_positions(const ldb_invrun *r, ldb_bitr *br, uint64_t c, uint64_t *pos)
{
    unsigned k = pos_k(r->n, c);
    uint64_t at = 0, v;
    for (uint64_t i = 0; i < c; i++) {
        if (ldb_rice_get_fast(br, k, &v) || v >= r->n - at || (i && v + 1 >= r->n - at))
            return -1;
        at += i ? v + 1 : v;
        if (pos)
            pos[i] = r->start + at;
    }
    return 0;
}

int ldb_invrun_latent(const ldb_invrun *r, uint32_t j, uint64_t **arr, size_t *len, size_t *cap)
{
    if (j >= r->R)
        return -1;
    uint64_t g = j >> r->s, c;
    ldb_bitr br;
    if (ldb_bitr_at(&br, r->stream, r->end, span_off(r, g)))
        return -1;
    for (uint64_t i = g << r->s; i < j; i++) /* the span's latents before j */
        if (read_count(r, &br, &c) || read_positions(r, &br, c, NULL))
            return -1;
    if (read_count(r, &br, &c))
        return -1;
    if (!c)
        return 0;
    if (ldb_wgrow((void **)arr, cap, *len + c, sizeof **arr))
        return -2;
    if (read_positions(r, &br, c, *arr + *len))
        return -1;
    if (*len && (*arr)[*len] <= (*arr)[*len - 1])
        return -1; /* runs ascend: a later run starts after an earlier one ends */
    *len += c;
    return 0;
}

int ldb_invrun_each(const ldb_invrun *r, int (*fn)(void *ctx, uint32_t j, const uint64_t *pos,
                                                   uint64_t c), void *ctx)
{
    uint64_t *pos = NULL, S = 1ull << r->s;
    size_t cap = 0;
    int rc = 0;
    ldb_bitr br;
    for (uint64_t j = 0; j < r->R && !rc; j++) {
        uint64_t c;
        if (j % S == 0 && ldb_bitr_at(&br, r->stream, r->end, span_off(r, j / S))) {
            rc = -1;
            break;
        }
        if (read_count(r, &br, &c)) {
            rc = -1;
            break;
        }
        if (c && ldb_wgrow((void **)&pos, &cap, c, sizeof *pos)) {
            rc = -2;
            break;
        }
        if (read_positions(r, &br, c, pos)) {
            rc = -1;
            break;
        }
        if (c)
            rc = fn(ctx, (uint32_t)j, pos, c);
    }
    free(pos);
    return rc;
}
