/* cmd_manage.c — changing what a database holds: `dict rm`, `dict set-path`,
 * `set-skip`, `set-tokenizer` (db/manage.c; docs/ARCHITECTURE.md "Managing data"). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latentdb.h"
#include "cli.h"

static const char *USAGE_DICT_RM =
    "usage: latentdb dict rm DB NAME [--json]\n"
    "Removes the dictionary and everything stored of it (codes, summaries, top lists, labels,\n"
    "the runs that wrote it); the sequences and their tokens stay. Atomic: a kill leaves the\n"
    "dictionary whole or gone.\n";
static const char *USAGE_DICT_SET_PATH =
    "usage: latentdb dict set-path DB NAME PATH [--json]\n"
    "Points the dictionary at PATH after its files moved; the weights there must be the\n"
    "recorded ones (same SHA-256).\n";
static const char *USAGE_SET_SKIP =
    "usage: latentdb set-skip DB IDS [--json]\n"
    "Makes the comma-separated token ids IDS (e.g. 2,0,106; \"\" for none) the skip set:\n"
    "positions holding them are left out of every statistic. Every summary is written\n"
    "again from the stored codes into a new data.mdb that replaces the old one (a kill\n"
    "leaves the old database or the new); needs the database to itself.\n";
static const char *USAGE_SET_TOKENIZER =
    "usage: latentdb set-tokenizer DB tokenizer.json [--keep-skip] [--json]\n"
    "Stores the tokenizer in the DB (results read as text; search by text). Refused when a\n"
    "stored token id is outside its vocabulary. Its BOS, EOS and PAD ids become the skip set\n"
    "(as set-skip, when tokens are stored) unless --keep-skip.\n";

static int done_json(const char *what, const char *db, const char *key, const char *val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "done", what);
    cJSON_AddStringToObject(o, "db", db);
    if (key)
        cJSON_AddStringToObject(o, key, val);
    return cli_json_write(stdout, o) ? 1 : 0;
}

int cmd_dict_rm(int argc, char **argv)
{
    const char *p[2];
    int json, rc = cli_args(argc, argv, USAGE_DICT_RM, 2, p, &json, NULL, NULL,
                            "dict rm needs DB NAME");
    if (rc)
        return rc;
    ldb_db *db = NULL;
    if ((rc = cli_open_db(p[0], LDB_OPEN_WRITE, &db)))
        return rc;
    if (ldb_db_dict_rm(db, p[1]))
        rc = cli_fail("%s", ldb_db_errmsg(db));
    else if (json)
        rc = done_json("dict rm", p[0], "dict", p[1]);
    else
        printf("removed dictionary '%s' and its codes\n", p[1]);
    cli_close_db(db);
    return rc;
}

int cmd_dict_set_path(int argc, char **argv)
{
    const char *p[3];
    int json, rc = cli_args(argc, argv, USAGE_DICT_SET_PATH, 3, p, &json, NULL, NULL,
                            "dict set-path needs DB NAME PATH");
    if (rc)
        return rc;
    ldb_db *db = NULL;
    if ((rc = cli_open_db(p[0], LDB_OPEN_WRITE, &db)))
        return rc;
    if (ldb_db_dict_set_path(db, p[1], p[2]))
        rc = cli_fail("%s", ldb_db_errmsg(db));
    else if (json)
        rc = done_json("dict set-path", p[0], "path", p[2]);
    else
        printf("dictionary '%s' now reads %s\n", p[1], p[2]);
    cli_close_db(db);
    return rc;
}

/* The skip set as text ("2,0,106" or "none") and as JSON. */
static void skip_out(ldb_db *db, const char *path, int json)
{
    ldb_info *in = NULL;
    if (ldb_query_info(db, &in))
        return;
    if (json) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "skip");
        cJSON_AddStringToObject(o, "db", path);
        for (uint32_t i = 0; i < in->n_skip; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(in->skip[i]));
        cJSON_AddNumberToObject(o, "ordinary", (double)in->n_ordinary);
        cJSON_AddNumberToObject(o, "tokens", (double)in->n_tokens);
        cli_json_write(stdout, o);
    } else {
        printf("skip tokens ");
        for (uint32_t i = 0; i < in->n_skip; i++)
            printf("%s%u", i ? "," : "", in->skip[i]);
        printf("%s; %llu of %llu positions ordinary\n", in->n_skip ? "" : "none",
               (unsigned long long)in->n_ordinary, (unsigned long long)in->n_tokens);
    }
    ldb_info_free(in);
}

int cmd_set_skip(int argc, char **argv)
{
    const char *p[2];
    int json, rc = cli_args(argc, argv, USAGE_SET_SKIP, 2, p, &json, NULL, NULL,
                            "set-skip needs DB IDS");
    if (rc)
        return rc;
    uint32_t ids[1024];
    size_t n = 0;
    if (cli_parse_ids(p[1], ids, 1024, &n))
        return cli_usage(USAGE_SET_SKIP, "IDS takes up to 1024 comma-separated token ids, not '%s'",
                         p[1]);
    ldb_db *db = NULL;
    if ((rc = cli_open_db(p[0], LDB_OPEN_WRITE, &db)))
        return rc;
    if (ldb_db_set_skip(db, ids, n))
        rc = cli_fail("%s", ldb_db_errmsg(db));
    else
        skip_out(db, p[0], json);
    cli_close_db(db);
    return rc;
}

int cmd_set_tokenizer(int argc, char **argv)
{
    const char *p[2];
    int json, keep, rc = cli_args(argc, argv, USAGE_SET_TOKENIZER, 2, p, &json, "--keep-skip",
                                  &keep, "set-tokenizer needs DB tokenizer.json");
    if (rc)
        return rc;
    ldb_tokenizer *t = NULL;
    if (ldb_tokenizer_open(p[1], &t)) {
        rc = cli_fail("%s", ldb_tokenizer_errmsg(t));
        ldb_tokenizer_close(t);
        return rc;
    }
    ldb_db *db = NULL;
    if ((rc = cli_open_db(p[0], LDB_OPEN_WRITE, &db))) {
        ldb_tokenizer_close(t);
        return rc;
    }
    if (ldb_db_set_tokenizer(db, t, !keep))
        rc = cli_fail("%s", ldb_db_errmsg(db));
    else {
        if (!json)
            printf("stored the tokenizer %s; ", p[1]);
        skip_out(db, p[0], json);
    }
    ldb_tokenizer_close(t);
    cli_close_db(db);
    return rc;
}
