/* helper_tokenize.c — latentdb's side of the tokenizer comparison: the same output
 * as tests/text/ref_tokenize.mjs (one JSON array of ids per input, one a line), and
 * the round trip decode(encode(s)) == s checked for each input.
 * usage: helper_tokenize TOKENIZER_JSON (--files F... | --strings S.json)... [--roundtrip |
 *                        --decode | --both]
 *        helper_tokenize TOKENIZER_JSON --merges
 *        helper_tokenize --blob-sha256 FILE
 * With --decode it prints the decode of each input's ids instead, as a JSON string escaped
 * as JavaScript's JSON.stringify does (ref_tokenize.mjs --decode); --both, the ids' line
 * then the decode's.
 * The second prints the compiled merge table, one "a b rank merged" line (ids) per
 * entry in slot order, for tests/text/check_merges.py to check against the JSON.
 * The third prints "BLOB INPUT", the SHA-256 of the LTK2 blob compiled from FILE and
 * of FILE itself, for tests/text.sh to compare with tests/golden/ltk2.sha256. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/mfile.h"
#include "../common/sha256.h"
#include "../text/tokenizer.h"
#include "latentdb.h"

static int roundtrip_fail, decode_out;

/* s as JSON.stringify writes it: ", \\ and C0 escaped, the rest as is */
static void put_json(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc)
            fputs(esc, stdout);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    puts("\"");
}

static int one(ldb_tokenizer *t, const char *s, size_t n, int rt, const char *name)
{
    uint32_t *ids;
    size_t k;
    if (ldb_tokenizer_encode(t, s, n, &ids, &k)) {
        fprintf(stderr, "%s: %s\n", name, ldb_tokenizer_errmsg(t));
        return 1;
    }
    if (decode_out == 2) {
        putchar('[');
        for (size_t i = 0; i < k; i++)
            printf(i ? ",%u" : "%u", ids[i]);
        puts("]");
    }
    if (decode_out) {
        char *back;
        size_t bn;
        if (ldb_tokenizer_decode(t, ids, k, &back, &bn)) {
            fprintf(stderr, "%s: out of memory\n", name);
            free(ids);
            return 1;
        }
        put_json(back, bn);
        free(back);
    } else {
        putchar('[');
        for (size_t i = 0; i < k; i++)
            printf(i ? ",%u" : "%u", ids[i]);
        puts("]");
    }
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

static void sha_hex(const void *p, size_t n, char hex[65])
{
    ldb_sha s;
    unsigned char md[32];
    if (ldb_sha_init(&s)) {
        fprintf(stderr, "helper_tokenize: out of memory\n");
        exit(1);
    }
    ldb_sha_update(&s, p, n);
    ldb_sha_final(&s, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int write_file(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    return (f && fclose(f)) || !ok;
}

/* FILE is a tokenizer.json, compiled where it is (with a tokenizer_config.json
 * beside it, if any), or a fuzz seed of tests/fuzz/corpus/tokenizer: a
 * tokenizer.json, then a NUL and a tokenizer_config.json, which are written to a
 * temporary folder as fuzz_tokenizer.c writes them. */
static int blob_sha256(const char *path)
{
    char *txt = NULL, dir[] = "/tmp/ldb-ltk2-XXXXXX", json[64], cfg[64], bh[65], ih[65];
    size_t n;
    ldb_err e;
    ldb_tok tk;
    int rc = 1, made = 0;
    if (ldb_file_read_all(path, (size_t)1 << 30, &txt, &n, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const char *nul = memchr(txt, 0, n), *jp = path;
    if (nul) {
        if (!(made = mkdtemp(dir) != NULL)) {
            perror("mkdtemp");
            goto out;
        }
        snprintf(json, sizeof json, "%s/tokenizer.json", dir);
        snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
        if (write_file(json, txt, (size_t)(nul - txt)) ||
            write_file(cfg, nul + 1, n - (size_t)(nul - txt) - 1)) {
            perror(dir);
            goto out;
        }
        jp = json;
    }
    if (ldb_tok_load_json(&tk, jp, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        goto out;
    }
    sha_hex(tk.blob, tk.size, bh);
    ldb_tok_close(&tk);
    sha_hex(txt, n, ih);
    printf("%s %s\n", bh, ih);
    rc = 0;
out:
    if (made) {
        unlink(json), unlink(cfg);
        rmdir(dir);
    }
    free(txt);
    return rc;
}

/* The strings of the JSON array in file path, through one() */
static int strings(ldb_tokenizer *t, const char *path, int rt)
{
    char *txt;
    size_t n;
    ldb_err e;
    cJSON *a = NULL;
    if (ldb_file_read_all(path, (size_t)1 << 30, &txt, &n, &e) == 0) {
        a = cJSON_ParseWithLength(txt, n);
        free(txt);
    }
    if (!cJSON_IsArray(a)) {
        fprintf(stderr, "%s: expected a JSON array of strings\n", path);
        cJSON_Delete(a);
        return 1;
    }
    int bad = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        /* the JSON strings carry no invalid UTF-8: those come in files */
        const char *s = cJSON_GetStringValue(it);
        if (!bad && s)
            bad = one(t, s, strlen(s), rt, path);
    }
    cJSON_Delete(a);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--blob-sha256"))
        return blob_sha256(argv[2]);
    if (argc == 3 && !strcmp(argv[2], "--merges"))
        return dump_merges(argv[1]);
    if (argc < 4) {
        fprintf(stderr, "usage: helper_tokenize TOKENIZER_JSON (--files F... | --strings S.json)... "
                "[--roundtrip | --decode | --both]\n       helper_tokenize TOKENIZER_JSON --merges\n"
                "       helper_tokenize --blob-sha256 FILE\n");
        return 2;
    }
    int rt = !strcmp(argv[argc - 1], "--roundtrip");
    decode_out = !strcmp(argv[argc - 1], "--decode") ? 1 : !strcmp(argv[argc - 1], "--both") ? 2 : 0;
    if (rt || decode_out)
        argc--;
    ldb_tokenizer *t;
    if (ldb_tokenizer_open(argv[1], &t)) {
        fprintf(stderr, "%s\n", ldb_tokenizer_errmsg(t));
        return 1;
    }
    int bad = 0, files = 0;
    ldb_err e;
    for (int i = 2; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--files") || !strcmp(argv[i], "--strings")) {
            files = argv[i][2] == 'f';
            continue;
        }
        if (!files) {
            bad = strings(t, argv[i], rt);
            continue;
        }
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
    ldb_tokenizer_close(t);
    return bad || roundtrip_fail ? 1 : 0;
}
