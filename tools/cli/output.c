/* output.c — how the CLI prints strings it did not write itself (labels, names,
 * paths, token text; stored, so possibly damaged or hostile): every JSON document
 * leaves as valid JSON, and text leaves with no invalid UTF-8 and no control
 * characters a terminal would act on. Invalid sequences read as U+FFFD (WHATWG). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* cJSON escapes '"', '\' and C0 but copies every other byte as it is, so the one
 * pass here, over the printed document, finishes the job: bytes >= 0x7f occur
 * only inside strings, and a string ends at an ASCII '"', so repairing the
 * document repairs each string exactly as repairing it alone would. */
int cli_json_write(FILE *f, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) {
        cli_warn("out of memory printing JSON");
        return -1;
    }
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t j = i + ldb_utf8_check(p + i, n - i, 1, NULL);
        fwrite(p + i, 1, j - i, f);
        if (j == n)
            break;
        uint32_t cp;
        size_t l = ldb_utf8_next(p + j, n - j, &cp);
        if (cp == LDB_UTF8_BAD)
            fputs("\xef\xbf\xbd", f);
        else /* DEL or C1: valid JSON raw, but terminals act on C1 */
            fprintf(f, "\\u%04x", (unsigned)cp);
        i = j + l;
    }
    fputc('\n', f);
    free(s);
    return ferror(f) ? -1 : 0;
}

void cli_print_json(cJSON *o)
{
    cli_json_write(stdout, o);
}

void cli_put_text(FILE *f, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t j = i + ldb_utf8_check(p + i, n - i, 1, NULL);
        fwrite(p + i, 1, j - i, f);
        if (j == n)
            break;
        uint32_t cp;
        size_t l = ldb_utf8_next(p + j, n - j, &cp);
        if (cp == LDB_UTF8_BAD)
            fputs("\xef\xbf\xbd", f);
        else if (cp == '\n')
            fputs("\xe2\x86\xb5", f); /* ↵ */
        else if (cp == '\t')
            fputs("\\t", f);
        else if (cp == '\r')
            fputs("\\r", f);
        else if (cp < 0x80)
            fprintf(f, "\\x%02x", (unsigned)cp);
        else /* C1 */
            fprintf(f, "\\u%04x", (unsigned)cp);
        i = j + l;
    }
}

void cli_put_oneline(const char *s, size_t n)
{
    cli_put_text(stdout, s, n);
}

const char *cli_safe(const char *s, char **tmp)
{
    size_t n = strlen(s), len;
    *tmp = NULL;
    if (ldb_utf8_check((const uint8_t *)s, n, 1, NULL) == n)
        return s;
    FILE *m = open_memstream(tmp, &len);
    if (!m)
        return "?";
    cli_put_text(m, s, n);
    if (fclose(m)) {
        free(*tmp);
        *tmp = NULL;
        return "?";
    }
    return *tmp;
}
