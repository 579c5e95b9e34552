/* html.c — the output buffer of pages and responses, and escaping: every byte of
 * stored text (token pieces, labels, sources, dictionary names) reaches a page
 * through wb_esc, so a corpus holding "<script>" shows it and runs nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

static int grow(wbuf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->n + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void wb_put(wbuf *b, const char *s, size_t n)
{
    if (!n || grow(b, n))
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void wb_puts(wbuf *b, const char *s)
{
    wb_put(b, s, strlen(s));
}

/* Formats into the room left, and again only when it did not fit (a page prints
 * thousands of numbers: formatting each twice was a sixth of a latent page's time). */
void wb_printf(wbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->oom)
        return;
    size_t room = b->cap > b->n ? b->cap - b->n : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->p + b->n : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0 || ((size_t)n >= room && grow(b, (size_t)n))) {
        if (room)
            b->p[b->n] = 0; /* (what it wrote is not kept) */
        return;
    }
    if ((size_t)n >= room) {
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)n;
}

void wb_esc(wbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* bytes [run, i) are copied as they are */
    while (i < n) {
        unsigned c = p[i];
        const char *rep = NULL;
        size_t adv = 1;
        if (c == '&')
            rep = "&amp;";
        else if (c == '<')
            rep = "&lt;";
        else if (c == '>')
            rep = "&gt;";
        else if (c == '"')
            rep = "&quot;";
        else if (c == '\'')
            rep = "&#39;";
        else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            rep = "\xef\xbf\xbd";
        else if (c >= 0x80) {
            uint32_t cp;
            adv = ldb_utf8_next(p + i, n - i, &cp);
            if (cp == LDB_UTF8_BAD || (cp >= 0x80 && cp < 0xa0)) /* (C1 controls) */
                rep = "\xef\xbf\xbd";
        }
        if (rep) {
            wb_put(b, s + run, i - run);
            wb_puts(b, rep);
            i += adv;
            run = i;
        } else {
            i += adv;
        }
    }
    wb_put(b, s + run, n - run);
}

void wb_escs(wbuf *b, const char *s)
{
    wb_esc(b, s, strlen(s));
}

void wb_url(wbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            char ch = (char)c;
            wb_put(b, &ch, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            wb_put(b, e, 3);
        }
    }
}

void wb_free(wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
