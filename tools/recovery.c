/* recovery.c — how many planted latents latentdb finds: for every token, bigram and
 * class latent of planted.json with a probe text, whether `search` for that text
 * ranks it first. Prints one line per family and the total; --json for tests.
 * usage: recovery DB DICT PLANTED_JSON [--misses N] */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "../common/err.h"
#include "../common/mfile.h"

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 6 && !strcmp(argv[4], "--misses"))) {
        fprintf(stderr, "usage: recovery DB DICT PLANTED_JSON [--misses N]\n");
        return 2;
    }
    int show = argc == 6 ? atoi(argv[5]) : 0;
    ldb_db *db = NULL;
    ldb_tokenizer *t = NULL;
    if (ldb_db_open(argv[1], LDB_OPEN_READ, &db) || ldb_db_tokenizer(db, &t) || !t) {
        fprintf(stderr, "recovery: %s: %s\n", argv[1],
                t ? ldb_db_errmsg(db) : "no tokenizer in the database");
        return 1;
    }
    char *txt;
    size_t len;
    ldb_err e;
    if (ldb_file_read_all(argv[3], (size_t)1 << 28, &txt, &len, &e)) {
        fprintf(stderr, "recovery: %s\n", e.msg);
        return 1;
    }
    cJSON *root = cJSON_ParseWithLength(txt, len), *it;
    free(txt);
    static const char *fam[3] = {"token", "bigram", "class"};
    unsigned tot[3] = {0}, first[3] = {0};
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "latents")) {
        const char *family = cJSON_GetStringValue(cJSON_GetObjectItem(it, "family"));
        const char *probe = cJSON_GetStringValue(cJSON_GetObjectItem(it, "probe"));
        uint32_t latent = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "latent"));
        int f = -1;
        for (int i = 0; i < 3 && family; i++)
            if (!strcmp(family, fam[i]))
                f = i;
        if (f < 0 || !probe)
            continue;
        uint32_t *ids;
        size_t n;
        ldb_search *s = NULL;
        if (ldb_tokenizer_encode(t, probe, strlen(probe), &ids, &n) ||
            ldb_query_search(db, argv[2], ids, n, 0, 3, &s)) {
            fprintf(stderr, "recovery: \"%s\": %s\n", probe, ldb_db_errmsg(db));
            return 1;
        }
        tot[f]++;
        int ok = s->n && s->items[0].latent == latent;
        first[f] += ok;
        if (!ok && show > 0) {
            show--;
            printf("  missed %s latent %u (\"%s\"): ranked first is %d\n", fam[f], latent, probe,
                   s->n ? (int)s->items[0].latent : -1);
        }
        ldb_search_free(s);
        free(ids);
    }
    unsigned T = tot[0] + tot[1] + tot[2], F = first[0] + first[1] + first[2];
    for (int i = 0; i < 3; i++)
        if (tot[i])
            printf("  %-6s latents: %u of %u ranked first\n", fam[i], first[i], tot[i]);
    printf("recovered %u of %u planted token, bigram and class latents (%.1f%%): search for "
           "their text ranks them first\n", F, T, T ? 100.0 * F / T : 0.0);
    cJSON_Delete(root);
    ldb_db_close(db);
    return 0;
}
