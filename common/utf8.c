/* utf8.c — the WHATWG UTF-8 reader of utf8.h: a lead byte fixes the length and
 * the range of the first continuation byte (which excludes overlongs, surrogates
 * and code points past U+10FFFF); a sequence stops at the first byte out of range. */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

#include "latentdb.h"

/* A lead byte's continuation count (0 for ASCII) and the allowed range of the
 * first continuation byte; -1 when b cannot start a sequence. */
static int lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80, *hi = 0xbf;
    if (b < 0x80)
        return 0;
    if (b >= 0xc2 && b <= 0xdf)
        return 1;
    if (b >= 0xe0 && b <= 0xef) {
        if (b == 0xe0) *lo = 0xa0;
        if (b == 0xed) *hi = 0x9f;
        return 2;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        if (b == 0xf0) *lo = 0x90;
        if (b == 0xf4) *hi = 0x8f;
        return 3;
    }
    return -1;
}

size_t ldb_utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t lo, hi;
    int need = lead(p[0], &lo, &hi);
    *cp = need == 0 ? p[0] : LDB_UTF8_BAD;
    if (need <= 0)
        return 1;
    uint32_t c = p[0] & (0x3fu >> need);
    size_t i = 1;
    while (i <= (size_t)need && i < n && p[i] >= lo && p[i] <= hi) {
        c = c << 6 | (p[i] & 0x3fu);
        lo = 0x80;
        hi = 0xbf;
        i++;
    }
    if (i == (size_t)need + 1)
        *cp = c;
    return i;
}

size_t ldb_utf8_check(const uint8_t *p, size_t n, int no_controls, uint32_t *cp)
{
    uint32_t c = 0;
    size_t i = 0;
    while (i < n) {
        if (p[i] >= 0x20 && p[i] < 0x7f) { /* printable ASCII */
            i++;
            continue;
        }
        size_t l = ldb_utf8_next(p + i, n - i, &c);
        if (c == LDB_UTF8_BAD || (no_controls && ldb_utf8_is_control(c)))
            break;
        i += l;
    }
    if (cp)
        *cp = i < n ? c : 0;
    return i;
}

int ldb_utf8_sanitize(const uint8_t *p, size_t n, uint8_t **out, size_t *outlen)
{
    uint8_t *o = malloc(n * 3 + 1), *w = o;
    if (!o)
        return LDB_ENOMEM;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t l = ldb_utf8_next(p + i, n - i, &c);
        if (c == LDB_UTF8_BAD) {
            memcpy(w, "\xef\xbf\xbd", 3);
            w += 3;
        } else {
            memcpy(w, p + i, l);
            w += l;
        }
        i += l;
    }
    *w = 0;
    *out = o;
    *outlen = (size_t)(w - o);
    return LDB_OK;
}
