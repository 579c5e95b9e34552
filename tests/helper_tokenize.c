/* helper_tokenize.c — latentdb's side of the tokenizer comparison: the same output
 * as tests/text/ref_tokenize.mjs (one JSON array of ids per input, one a line), and
 * the round trip decode(encode(s)) == s checked for each input.
 * usage: helper_tokenize TOKENIZER_JSON (--files F... | --strings S.json) [--roundtrip]
 *        helper_tokenize TOKENIZER_JSON --merges
 * The second prints the compiled merge table, one "a b rank merged" line (ids) per
 * entry in slot order, for tests/text/check_merges.py to check against the JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/mfile.h"
#include "../text/tokenizer.h"
#include "latentdb.h"

static int roundtrip_fail;

static int one(ldb_tokenizer *t, const char *s, size_t n, int rt, const char *name)
{
    uint32_t *ids;
    size_t k;
    if (ldb_tokenizer_encode(t, s, n, &ids, &k)) {
        fprintf(stderr, "%s: %s\n", name, ldb_tokenizer_errmsg(t));
        return 1;
    }
    putchar('[');
    for (size_t i = 0; i < k; i++)
        printf(i ? ",%u" : "%u", ids[i]);
    puts("]");
    if (rt) {
        char *back;
        size_t bn;
        if (ldb_tokenizer_decode(t, ids, k, &back, &bn) || bn != n || memcmp(back, s, n)) {
            fprintf(stderr, "%s: decode(encode(s)) != s\n", name);
            roundtrip_fail++;
        }
        free(back);
    }
    free(ids);
    return 0;
}

static int dump_merges(const char *path)
{
    ldb_tok tk;
    ldb_err e;
    if (ldb_tok_load_json(&tk, path, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    for (uint32_t i = 0; i < tk.merge_cap; i++) {
        const uint32_t *m = tk.merges + 4 * (size_t)i;
        if (m[0] != LDB_TOK_NONE)
            printf("%u %u %u %u\n", m[0], m[1], m[2], m[3]);
    }
    ldb_tok_close(&tk);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "--merges"))
        return dump_merges(argv[1]);
    if (argc < 4) {
        fprintf(stderr, "usage: helper_tokenize TOKENIZER_JSON (--files F... | --strings S.json) "
                "[--roundtrip]\n");
        return 2;
    }
    int rt = !strcmp(argv[argc - 1], "--roundtrip");
    if (rt)
        argc--;
    ldb_tokenizer *t;
    if (ldb_tokenizer_open(argv[1], &t)) {
        fprintf(stderr, "%s\n", ldb_tokenizer_errmsg(t));
        return 1;
    }
    int bad = 0;
    ldb_err e;
    if (!strcmp(argv[2], "--files")) {
        for (int i = 3; i < argc && !bad; i++) {
            char *txt;
            size_t n;
            if (ldb_file_read_all(argv[i], (size_t)1 << 30, &txt, &n, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                bad = 1;
                break;
            }
            bad = one(t, txt, n, rt, argv[i]);
            free(txt);
        }
    } else {
        char *txt;
        size_t n;
        cJSON *a = NULL;
        if (ldb_file_read_all(argv[3], (size_t)1 << 30, &txt, &n, &e) == 0) {
            a = cJSON_ParseWithLength(txt, n);
            free(txt);
        }
        if (!cJSON_IsArray(a)) {
            fprintf(stderr, "%s: expected a JSON array of strings\n", argv[3]);
            return 1;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, a) {
            /* the JSON strings carry no invalid UTF-8: those come in files */
            const char *s = cJSON_GetStringValue(it);
            if (!bad && s)
                bad = one(t, s, strlen(s), rt, "string");
        }
        cJSON_Delete(a);
    }
    ldb_tokenizer_close(t);
    return bad || roundtrip_fail ? 1 : 0;
}
