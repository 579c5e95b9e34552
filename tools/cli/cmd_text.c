/* cmd_text.c — `latentdb tokenize`: text to token ids with a tokenizer.json, for
 * a look (ids and pieces) or for a corpus (a token .npy that a model run fills with
 * activations, so that tokens and activations line up). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "latentdb.h"

static const char *USAGE_TOKENIZE =
    "usage: latentdb tokenize TOKENIZER (TEXT | --file F|-) [--bos] [--json]\n"
    "       latentdb tokenize TOKENIZER --file F|DIR|- --out T.npy [--ctx N] [--no-bos] [--rows R.txt]\n"
    "                         [--json]\n"
    "TOKENIZER is a tokenizer.json or a DB made with --tokenizer. The first form prints ids and pieces (JSON:\n"
    "{\"ids\":[...],\"pieces\":[...]}); no BOS unless --bos. The second writes int32 token ids\n"
    "[rows, ctx]: one row per document (a file, or each file of DIR in name order), or\n"
    "per --ctx window of it (each row is a model run of its own: BOS first in every row\n"
    "unless --no-bos, then ctx - 1 tokens of text); PAD fills the last row of a document.\n"
    "--rows writes the document of each row, one path a line. --file - reads standard input\n"
    "(one document). With --out, --json prints a summary object on stdout.\n";

int cli_open_tokenizer(const char *path, ldb_tokenizer **t, ldb_db **db)
{
    *db = NULL;
    if (cli_is_dir(path)) { /* a DB: its stored tokenizer */
        int rc = cli_open_db(path, LDB_OPEN_READ, db);
        if (rc)
            return rc;
        if (ldb_db_tokenizer(*db, t))
            rc = cli_fail("%s", ldb_db_errmsg(*db));
        else if (!*t)
            rc = cli_fail("%s: the database has no tokenizer (init --tokenizer)", path);
        if (rc) {
            ldb_db_close(*db);
            *db = NULL;
        }
        return rc;
    }
    if (ldb_tokenizer_open(path, t)) {
        int rc = cli_fail("%s", ldb_tokenizer_errmsg(*t));
        ldb_tokenizer_close(*t);
        return rc;
    }
    return 0;
}

static int read_text(const char *path, char **txt, size_t *len)
{
    return cli_read_file(path, (size_t)1 << 32, txt, len);
}

static int show(ldb_tokenizer *t, const char *text, size_t len, int bos, int json)
{
    uint32_t *ids;
    size_t n;
    const ldb_tokenizer_info *info = ldb_tokenizer_get_info(t);
    if (ldb_tokenizer_encode(t, text, len, &ids, &n))
        return cli_fail("%s", ldb_tokenizer_errmsg(t));
    if (bos && info->bos == UINT32_MAX) {
        free(ids);
        return cli_fail("--bos: this tokenizer names no BOS token");
    }
    char piece[1024], *tmp;
    size_t pn;
    if (json) {
        cJSON *o = cJSON_CreateObject(), *ia = cJSON_AddArrayToObject(o, "ids"),
              *pa = cJSON_AddArrayToObject(o, "pieces");
        for (size_t i = 0; i < n + (size_t)bos; i++) {
            uint32_t id = bos ? (i ? ids[i - 1] : info->bos) : ids[i];
            cJSON_AddItemToArray(ia, cJSON_CreateNumber(id));
            cJSON_AddItemToArray(pa, cJSON_CreateString(cli_piece(t, id, 0, piece, sizeof piece,
                                                                  &tmp, &pn)));
            free(tmp);
        }
        cli_print_json(o);
    } else {
        printf("%zu tokens\n", n + (size_t)bos);
        for (size_t i = 0; i < n + (size_t)bos; i++) {
            uint32_t id = bos ? (i ? ids[i - 1] : info->bos) : ids[i];
            printf("%8u  %s\n", id, cli_piece(t, id, 0, piece, sizeof piece, &tmp, &pn));
            free(tmp);
        }
    }
    free(ids);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The documents of path: the file itself, or the regular files of a directory in
 * name order (hidden files skipped). */
static int list_docs(const char *path, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!cli_is_dir(path)) {
        if (strcmp(path, "-") && !cli_is_file(path)) /* "-": standard input, one document */
            return cli_fail("%s: no such file or directory", path);
        *out = malloc(sizeof **out);
        if (!*out || !((*out)[0] = strdup(path)))
            return cli_fail("out of memory");
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return cli_fail("%s: %s", path, strerror(errno));
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = cli_path_join(path, de->d_name);
        if (!p || !cli_is_file(p)) {
            free(p);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nl = realloc(*out, cap * sizeof *nl);
            if (!nl) {
                free(p);
                closedir(d);
                return cli_fail("out of memory");
            }
            *out = nl;
        }
        (*out)[(*n)++] = p;
    }
    closedir(d);
    if (!*n)
        return cli_fail("%s: no files in the directory", path);
    qsort(*out, *n, sizeof **out, cmp_str);
    return 0;
}

/* Writes the corpus as int32 rows of ctx tokens (ctx 0: one row per document,
 * as long as the longest, PAD after). */
static int write_corpus(ldb_tokenizer *t, const char *src, const char *out, uint32_t ctx, int bos,
                        const char *rows_path, int json)
{
    const ldb_tokenizer_info *info = ldb_tokenizer_get_info(t);
    if (bos && info->bos == UINT32_MAX)
        return cli_fail("this tokenizer names no BOS token; pass --no-bos");
    char **docs;
    size_t nd;
    int rc = list_docs(src, &docs, &nd);
    if (rc)
        return rc;
    uint32_t **ids = calloc(nd, sizeof *ids);
    size_t *len = calloc(nd, sizeof *len), maxlen = 0, rows = 0, total = 0;
    if (!ids || !len)
        rc = cli_fail("out of memory");
    double t0 = cli_now(), bytes = 0;
    for (size_t i = 0; i < nd && !rc; i++) {
        char *txt;
        size_t n;
        if ((rc = read_text(docs[i], &txt, &n)))
            break;
        bytes += (double)n;
        if (ldb_tokenizer_encode(t, txt, n, &ids[i], &len[i]))
            rc = cli_fail("%s: %s", docs[i], ldb_tokenizer_errmsg(t));
        free(txt);
        size_t l = len[i] + (size_t)bos, per = ctx ? ctx - (uint32_t)bos : 0;
        if (l > maxlen)
            maxlen = l;
        if (ctx) { /* windows of ctx - 1 text tokens, each with its own BOS */
            size_t w = len[i] ? (len[i] + per - 1) / per : 0;
            rows += w;
            total += len[i] + w * (size_t)bos;
        } else {
            total += l;
        }
        cli_progress("tokenize", "documents", i + 1, nd);
    }
    cli_progress_end();
    if (!rc && !ctx) {
        if (maxlen > UINT32_MAX)
            rc = cli_fail("%s: a document of %zu tokens is too long for one row; pass --ctx", src,
                          maxlen);
        ctx = (uint32_t)maxlen;
        rows = 0;
        for (size_t i = 0; i < nd; i++)
            rows += len[i] > 0; /* an empty document has no row */
    }
    if (!rc && (!rows || !ctx))
        rc = cli_fail("%s: no tokens", src);
    uint32_t pad = info->pad != UINT32_MAX ? info->pad : info->eos != UINT32_MAX ? info->eos : 0;
    FILE *f = NULL;
    if (!rc) {
        char hdr[256];
        int hn = snprintf(hdr, sizeof hdr, "{'descr': '<i4', 'fortran_order': False, 'shape': "
                          "(%zu, %u), }", rows, ctx);
        int padn = (64 - (10 + hn + 1) % 64) % 64;
        uint16_t hl = (uint16_t)(hn + padn + 1);
        if (!(f = fopen(out, "wb")))
            rc = cli_fail("%s: %s", out, strerror(errno));
        else {
            fwrite("\x93NUMPY\x01\x00", 1, 8, f);
            fwrite(&hl, 2, 1, f);
            fwrite(hdr, 1, (size_t)hn, f);
            for (int i = 0; i < padn; i++)
                fputc(' ', f);
            fputc('\n', f);
        }
    }
    int32_t *row = rc ? NULL : malloc((size_t)ctx * 4);
    if (!rc && !row)
        rc = cli_fail("out of memory");
    size_t per = ctx - (size_t)bos; /* text tokens a row */
    FILE *rf = NULL;
    if (!rc && rows_path && !(rf = fopen(rows_path, "w")))
        rc = cli_fail("%s: %s", rows_path, strerror(errno));
    for (size_t i = 0; i < nd && !rc; i++) {
        for (size_t at = 0; at < len[i] && !rc; at += per) {
            if (rf)
                fprintf(rf, "%s\n", docs[i]);
            uint32_t c = 0;
            if (bos)
                row[c++] = (int32_t)info->bos;
            for (size_t q = at; c < ctx; c++, q++)
                row[c] = (int32_t)(q < len[i] ? ids[i][q] : pad);
            if (fwrite(row, 4, ctx, f) != ctx)
                rc = cli_fail("%s: %s", out, strerror(errno));
        }
    }
    if (f && fclose(f) && !rc)
        rc = cli_fail("%s: %s", out, strerror(errno));
    if (rf && fclose(rf) && !rc)
        rc = cli_fail("%s: %s", rows_path, strerror(errno));
    if (!rc && json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "out", out);
        cJSON_AddNumberToObject(o, "rows", (double)rows);
        cJSON_AddNumberToObject(o, "ctx", ctx);
        cJSON_AddNumberToObject(o, "documents", (double)nd);
        cJSON_AddNumberToObject(o, "tokens", (double)total);
        cJSON_AddNumberToObject(o, "bytes", bytes);
        cJSON_AddNumberToObject(o, "seconds", cli_now() - t0);
        rc = cli_json_write(stdout, o) ? 1 : 0;
    } else if (!rc) {
        double dt = cli_now() - t0;
        fprintf(stderr, "tokenized %zu document%s (%.1f MB, %zu tokens) in %.1f s; wrote %s "
                "[%zu, %u]\n", nd, nd == 1 ? "" : "s", bytes / 1e6, total, dt, out, rows, ctx);
    } else if (f) {
        remove(out);
    }
    for (size_t i = 0; i < nd; i++) {
        free(docs[i]);
        if (ids)
            free(ids[i]);
    }
    free(docs);
    free(ids);
    free(len);
    free(row);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *tpath = NULL, *text = NULL, *file = NULL, *out = NULL, *rows = NULL;
    uint32_t ctx = 0;
    int bos = 0, no_bos = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--file") && i + 1 < argc)
            file = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = argv[++i];
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &ctx) || ctx < 2)
                return cli_usage(USAGE_TOKENIZE, "--ctx takes an integer >= 2");
        } else if (!strcmp(argv[i], "--bos"))
            bos = 1;
        else if (!strcmp(argv[i], "--no-bos"))
            no_bos = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--"))
            text = i + 1 < argc ? argv[++i] : "";
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage(USAGE_TOKENIZE, "unknown option or missing value '%s'", argv[i]);
        else if (!tpath)
            tpath = argv[i];
        else if (!text)
            text = argv[i];
        else
            return cli_usage(USAGE_TOKENIZE, "unexpected argument '%s'", argv[i]);
    }
    if (!tpath || (!text && !file) || (text && file))
        return cli_usage(USAGE_TOKENIZE, "tokenize needs TOKENIZER and either TEXT or --file");
    if (out ? (bos || text) : (ctx || no_bos || rows))
        return cli_usage(USAGE_TOKENIZE, out ? "--out takes --file, --ctx, --no-bos, --rows and "
                                               "--json only"
                                             : "--ctx, --no-bos and --rows go with --out");
    ldb_tokenizer *t;
    ldb_db *db = NULL;
    int rc = cli_open_tokenizer(tpath, &t, &db);
    if (rc)
        return rc;
    if (out) {
        rc = write_corpus(t, file, out, ctx, !no_bos, rows, json);
    } else if (file) {
        char *txt;
        size_t n;
        rc = read_text(file, &txt, &n);
        if (!rc) {
            rc = show(t, txt, n, bos, json);
            free(txt);
        }
    } else {
        rc = show(t, text, strlen(text), bos, json);
    }
    if (!db)
        ldb_tokenizer_close(t);
    ldb_db_close(db);
    return rc;
}
