/* cmd_db.c — database commands: init, dict add / dict ls, ingest and info. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cli.h"
#include "latentdb.h"

static const char *USAGE_INIT =
    "usage: latentdb init DB [--tokenizer tokenizer.json] [--skip-tokens IDS] [--values bf16|f16|f32]\n"
    "                    [--format 6|5|4|3] [--json]\n"
    "--tokenizer stores the tokenizer in the DB (results read as text; search by text); its\n"
    "BOS, EOS and PAD ids become the skip set unless --skip-tokens names it.\n"
    "--format 5, 4 or 3 makes a database of an older on-disk version (docs/FORMAT.md),\n"
    "which latentdb still reads and writes; the default 6 keeps co-occurrence summaries\n"
    "(window and sequence scope without reading postings or forward blocks), 5 reads one\n"
    "position's codes without the positions before it, 4 is smaller than 3 for wide\n"
    "dictionaries.\n";
static const char *USAGE_INGEST =
    "usage: latentdb ingest DB --dict NAME[,NAME...] --tokens T.npy --acts A.npy [--ctx N]\n"
    "                      [--source LABEL] [--again | --skip-covered] [--precision exact|f32|bf16]\n"
    "                      [--json]\n"
    "Tokens [n_seq, ctx] go with activations [n_seq, ctx, d_in] or [n_tokens, d_in]; flat\n"
    "tokens [n_tokens] are one sequence, or rows of --ctx N (activations in rows need it).\n"
    "A killed run resumes where it stopped when the same command runs again. --json prints\n"
    "a summary object on stdout when it ends (progress stays on stderr).\n"
    "A multi-layer dictionary (cross-layer transcoder, crosscoder) reads one activations\n"
    "file per layer, --acts A0.npy,A1.npy,... in layer order, or one array\n"
    "[n_tokens, n_layers, d_in] (or [n_seq, ctx, n_layers, d_in]).\n"
    "The codes are exact (the default, --precision exact): every latent that fires is\n"
    "decided by an f32 dot product in one fixed order, the same bits on any CPU, batch or\n"
    "thread count; a fast GEMM (bf16 where the CPU has AMX or AVX512_BF16) only screens\n"
    "for the latents that could fire. --precision f32 screens with the f32 GEMM: the same\n"
    "codes. --precision bf16 keeps the bf16 GEMM's own codes: faster, and codes within ~1%\n"
    "of their threshold may flip (README).\n"
    "Rows whose tokens another run already stored with codes of these dictionaries are\n"
    "counted on stderr and stored again as new sequences; --skip-covered leaves them out.\n"
    "When every row is such a row, the ingest is refused, naming the earlier run (latentdb\n"
    "runs lists them); --again stores them all again.\n";
static const char *USAGE_INFO = "usage: latentdb info DB [--json]\n";

static char told[512]; /* the note of the open, printed */

int cli_open_db(const char *path, int flags, ldb_db **db)
{
    cli_fault_guard(path);
    int failed = ldb_db_open(path, flags, db);
    snprintf(told, sizeof told, "%s", ldb_db_note(*db));
    if (*told)
        fprintf(stderr, "latentdb: note: %s\n", told);
    if (failed) {
        int rc = cli_fail("%s", ldb_db_errmsg(*db));
        ldb_db_close(*db);
        *db = NULL;
        return rc;
    }
    return 0;
}

void cli_close_db(ldb_db *db)
{
    if (db && strcmp(told, ldb_db_note(db))) /* a writer's catalog update found damage */
        fprintf(stderr, "latentdb: note: %s\n", ldb_db_note(db));
    ldb_db_close(db);
}

int cli_parse_precision(const char *s, int *out)
{
    if (!strcmp(s, "exact"))
        *out = LDB_PRECISION_EXACT;
    else if (!strcmp(s, "f32"))
        *out = LDB_PRECISION_F32;
    else if (!strcmp(s, "bf16"))
        *out = LDB_PRECISION_BF16;
    else
        return -1;
    return 0;
}

int cli_parse_ids(const char *s, uint32_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    if (!*s)
        return 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return -1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == cap || cli_parse_u32(t, &ids[*n])) {
            free(copy);
            return -1;
        }
        (*n)++;
    }
    free(copy);
    return 0;
}

int cli_args(int argc, char **argv, const char *usage, int want, const char **pos, int *json,
             const char *flag, int *set, const char *need)
{
    int n = 0;
    *json = 0;
    if (set)
        *set = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            *json = 1;
        else if (flag && !strcmp(argv[i], flag))
            *set = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage(usage, "unknown option '%s'", argv[i]);
        else if (n < want)
            pos[n++] = argv[i];
        else
            return cli_usage(usage, "unexpected argument '%s'", argv[i]);
    }
    return n == want ? 0 : cli_usage(usage, "%s", need);
}

int cli_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || *s == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Parses "DB [FLAG]" (dict ls, info, check); returns 0 or an exit code. */
static int db_and_flag(int argc, char **argv, const char *usage, const char *flag,
                       const char **path, int *set)
{
    *path = NULL;
    *set = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], flag))
            *set = 1;
        else if (!*path && argv[i][0] != '-')
            *path = argv[i];
        else
            return cli_usage(usage, "unexpected '%s'", argv[i]);
    }
    return *path ? 0 : cli_usage(usage, "a DB path is needed");
}

int cmd_init(int argc, char **argv)
{
    const char *path = NULL, *skip = NULL, *vals = "bf16", *tpath = NULL, *fmt = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--skip-tokens") && i + 1 < argc)
            skip = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            tpath = argv[++i];
        else if (!strcmp(argv[i], "--values") && i + 1 < argc)
            vals = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc)
            fmt = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_INIT, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage(USAGE_INIT, "unexpected argument '%s'", argv[i]);
    }
    if (!path)
        return cli_usage(USAGE_INIT, "init needs a DB path");
    int values = !strcmp(vals, "bf16") ? LDB_VALUES_BF16 : !strcmp(vals, "f16") ? LDB_VALUES_F16
               : !strcmp(vals, "f32") ? LDB_VALUES_F32 : -1;
    if (values < 0)
        return cli_usage(USAGE_INIT, "--values must be bf16, f16 or f32, not '%s'", vals);
    if (fmt && strcmp(fmt, "3") && strcmp(fmt, "4") && strcmp(fmt, "5") && strcmp(fmt, "6"))
        return cli_usage(USAGE_INIT, "--format must be 6, 5, 4 or 3, not '%s'", fmt);
    uint32_t ids[1024];
    size_t n = 0;
    if (skip && cli_parse_ids(skip, ids, 1024, &n))
        return cli_usage(USAGE_INIT, "--skip-tokens takes up to 1024 comma-separated token ids, "
                         "not '%s'", skip);
    ldb_tokenizer *t = NULL;
    if (tpath && ldb_tokenizer_open(tpath, &t)) { /* before the DB exists: nothing to undo */
        int rc = cli_fail("%s", ldb_tokenizer_errmsg(t));
        ldb_tokenizer_close(t);
        return rc;
    }
    ldb_db *db = NULL;
    ldb_create_opts co;
    ldb_create_opts_init(&co);
    co.skip = ids;
    co.n_skip = n;
    co.values = values;
    co.format = fmt ? fmt[0] - '0' : 0;
    co.tokenizer = t;
    co.skip_from_tokenizer = t && skip == NULL;
    int rc = ldb_db_create(path, &co, &db) ? cli_fail("%s", ldb_db_errmsg(db)) : 0;
    if (!rc) {
        ldb_info *in = NULL;
        char sk[256] = "";
        if (ldb_query_info(db, &in) == 0)
            for (uint32_t i = 0, o = 0; i < in->n_skip && o < sizeof sk - 12; i++)
                o += (uint32_t)snprintf(sk + o, sizeof sk - o, "%s%u", i ? "," : "", in->skip[i]);
        if (json) {
            cJSON *o = cJSON_CreateObject(), *a;
            cJSON_AddStringToObject(o, "db", path);
            cJSON_AddStringToObject(o, "values", vals);
            cJSON_AddNumberToObject(o, "format", fmt ? fmt[0] - '0' : 6);
            a = cJSON_AddArrayToObject(o, "skip");
            for (uint32_t i = 0; in && i < in->n_skip; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(in->skip[i]));
            if (t)
                cJSON_AddStringToObject(o, "tokenizer", tpath);
            else
                cJSON_AddNullToObject(o, "tokenizer");
            rc = cli_json_write(stdout, o) ? 1 : 0;
        } else {
            printf("initialised %s (values %s, skip tokens %s%s%s)\n", path, vals, *sk ? sk : "none",
                   t ? ", tokenizer " : "", t ? tpath : "");
        }
        ldb_info_free(in);
    }
    ldb_tokenizer_close(t);
    ldb_db_close(db);
    return rc;
}

int cmd_dict_add(int argc, char **argv)
{
    static const char *USAGE =
        "usage: latentdb dict add DB NAME PATH [--json]\n"
        "Registers the dictionary at PATH (a folder or weights file of any format dict show\n"
        "reads) under NAME; --json prints its record as dict ls --json lists it.\n";
    const char *p[3];
    int n = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage(USAGE, "unknown option '%s'", argv[i]);
        else if (n < 3)
            p[n++] = argv[i];
        else
            return cli_usage(USAGE, "unexpected argument '%s'", argv[i]);
    }
    if (n != 3)
        return cli_usage(USAGE, "dict add needs DB NAME PATH");
    ldb_db *db = NULL;
    int rc = cli_open_db(p[0], LDB_OPEN_WRITE, &db);
    if (rc)
        return rc;
    if (ldb_db_dict_add(db, p[1], p[2])) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else if (json) { /* the record as stored, with the database it went into */
        cJSON *o = NULL;
        for (int i = 0; !o && i < ldb_db_dict_count(db); i++) {
            cJSON *d = cJSON_Parse(ldb_db_dict_json(db, i));
            const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(d, "name"));
            if (nm && !strcmp(nm, p[1]))
                o = d;
            else
                cJSON_Delete(d);
        }
        if (!o)
            o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "db", p[0]);
        rc = cli_json_write(stdout, o) ? 1 : 0;
    } else {
        printf("added dictionary '%s' from %s\n", p[1], p[2]);
    }
    cli_close_db(db);
    return rc;
}

int cmd_dict_ls(int argc, char **argv)
{
    const char *path;
    int json, rc = db_and_flag(argc, argv, "usage: latentdb dict ls DB [--json]\n", "--json", &path,
                               &json);
    if (rc)
        return rc;
    ldb_db *db = NULL;
    rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    int n = ldb_db_dict_count(db);
    ans_err e;
    if (json) {
        rc = cli_answer(ans_dicts(db, &e), &e);
    } else {
        printf("%-16s %-12s %-10s %-11s %8s %8s  %s\n", "name", "format", "arch", "type", "d_in",
               "d_sae", "hook_in");
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_Parse(ldb_db_dict_json(db, i));
            const char *f[] = {"name", "format", "architecture", "type", "hook_in"};
            const char *v[5];
            char *t[5] = {NULL};
            for (int j = 0; j < 5; j++) {
                const cJSON *x = cJSON_GetObjectItem(o, f[j]);
                v[j] = cJSON_IsString(x) && *x->valuestring ? cli_safe(x->valuestring, &t[j]) : "-";
            }
            printf("%-16s %-12s %-10s %-11s %8.0f %8.0f  %s\n", v[0], v[1], v[2], v[3],
                   cJSON_GetNumberValue(cJSON_GetObjectItem(o, "d_in")),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(o, "d_sae")), v[4]);
            for (int j = 0; j < 5; j++)
                free(t[j]);
            cJSON_Delete(o);
        }
        if (!n)
            printf("(no dictionaries; add one with latentdb dict add DB NAME PATH)\n");
    }
    ldb_db_close(db);
    return rc;
}

void cli_run_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_run *c = ctx;
    if (!c->told && c->rep->resumed) {
        c->told = 1;
        cli_progress_end();
        fprintf(stderr, "latentdb: resuming run %s at sequence %llu of %llu\n", c->rep->run,
                (unsigned long long)c->rep->rows_before, (unsigned long long)c->rep->n_rows);
    }
    if (strcmp(c->label, "import"))
        cli_blas_note();
    cli_progress(c->label, "tokens", done, total);
}

cJSON *cli_run_json(ldb_db *db, const char *path, const ldb_ingest_opts *o,
                    const ldb_ingest_report *rep, double secs)
{
    cJSON *j = cJSON_CreateObject(), *a;
    cJSON_AddStringToObject(j, "db", path);
    a = cJSON_AddArrayToObject(j, "dicts");
    for (int i = 0; i < o->n_dicts; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(o->dicts[i]));
    cJSON_AddStringToObject(j, "tokens", o->tokens);
    if (o->codes)
        cJSON_AddStringToObject(j, "codes", o->codes);
    else if (o->acts)
        cJSON_AddStringToObject(j, "acts", o->acts);
    else {
        a = cJSON_AddArrayToObject(j, "acts");
        for (int i = 0; i < o->n_layer_acts; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(o->layer_acts[i]));
    }
    cJSON_AddStringToObject(j, "run", rep->run);
    cJSON_AddBoolToObject(j, "resumed", rep->resumed);
    cJSON_AddNumberToObject(j, "ctx", rep->ctx);
    uint64_t t0 = rep->rows_before * rep->ctx, t1 = rep->rows_done * rep->ctx;
    cJSON_AddNumberToObject(j, "sequences_added",
                            (double)(rep->rows_done - rep->rows_before - rep->rows_skipped));
    cJSON_AddNumberToObject(j, "sequences_covered", (double)rep->rows_covered);
    cJSON_AddNumberToObject(j, "sequences_skipped", (double)rep->rows_skipped);
    cJSON_AddNumberToObject(j, "tokens_added", (double)((t1 < rep->n_tokens ? t1 : rep->n_tokens) -
                                                        (t0 < rep->n_tokens ? t0 : rep->n_tokens)));
    cJSON_AddNumberToObject(j, "input_sequences", (double)rep->n_rows);
    cJSON_AddNumberToObject(j, "input_tokens", (double)rep->n_tokens);
    ldb_info *in = NULL;
    if (!ldb_query_info(db, &in)) {
        cJSON_AddNumberToObject(j, "db_sequences", (double)in->n_seq);
        cJSON_AddNumberToObject(j, "db_tokens", (double)in->n_tokens);
    }
    ldb_info_free(in);
    cJSON_AddNumberToObject(j, "seconds", secs);
    if (*rep->gemm) {
        cJSON_AddStringToObject(j, "gemm", rep->gemm);
        if (rep->pairs)
            cJSON_AddNumberToObject(j, "refined_fraction", (double)rep->refined / (double)rep->pairs);
        cJSON_AddNumberToObject(j, "encoder_bytes", (double)rep->encoder_bytes);
    }
    return j;
}

int cmd_ingest(int argc, char **argv)
{
    ldb_ingest_opts o;
    const char *path = NULL, *dicts = NULL;
    int json = 0;
    ldb_ingest_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--dict") && i + 1 < argc)
            dicts = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            o.tokens = argv[++i];
        else if (!strcmp(argv[i], "--acts") && i + 1 < argc)
            o.acts = argv[++i];
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.ctx) || !o.ctx)
                return cli_usage(USAGE_INGEST, "--ctx takes a positive integer");
        } else if (!strcmp(argv[i], "--source") && i + 1 < argc)
            o.source = argv[++i];
        else if (!strcmp(argv[i], "--again"))
            o.again = 1;
        else if (!strcmp(argv[i], "--skip-covered"))
            o.skip_covered = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            if (cli_parse_precision(argv[++i], &o.precision))
                return cli_usage(USAGE_INGEST, "--precision is exact, f32 or bf16, not '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--batch-tokens") && i + 1 < argc) {
            uint32_t b;
            if (cli_parse_u32(argv[++i], &b) || !b)
                return cli_usage(USAGE_INGEST, "--batch-tokens takes a positive integer");
            o.batch_tokens = b;
        } else if (argv[i][0] == '-')
            return cli_usage(USAGE_INGEST, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage(USAGE_INGEST, "unexpected argument '%s'", argv[i]);
    }
    if (!path || !dicts || !o.tokens || !o.acts)
        return cli_usage(USAGE_INGEST, "ingest needs DB, --dict, --tokens and --acts");
    /* --acts A0.npy,A1.npy,...: one file per layer (a path with a comma that exists is one) */
    char *acopy = NULL, *asave = NULL;
    const char *layer_files[256];
    if (strchr(o.acts, ',') && !cli_is_file(o.acts)) {
        if (!(acopy = strdup(o.acts)))
            return cli_fail("out of memory");
        for (char *t = strtok_r(acopy, ",", &asave); t; t = strtok_r(NULL, ",", &asave)) {
            if (o.n_layer_acts == 256) {
                free(acopy);
                return cli_usage(USAGE_INGEST, "at most 256 activations files (one per layer)");
            }
            layer_files[o.n_layer_acts++] = t;
        }
        o.layer_acts = layer_files;
        o.acts = NULL;
    }
    char *copy = strdup(dicts), *save = NULL;
    const char *names[64];
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o.n_dicts == 64) {
            free(copy);
            free(acopy);
            return cli_usage(USAGE_INGEST, "at most 64 dictionaries in one ingest");
        }
        names[o.n_dicts++] = t;
    }
    o.dicts = names;
    ldb_ingest_report rep;
    cli_run prog = {"ingest", &rep, 0};
    o.progress = cli_run_progress;
    o.progress_ctx = &prog;
    o.report = &rep;
    ldb_db *db = NULL;
    int rc = cli_open_db(path, LDB_OPEN_WRITE, &db);
    if (!rc) {
        double t0 = cli_now();
        if (ldb_ingest(db, &o)) {
            rc = cli_fail("%s", ldb_db_errmsg(db));
        } else if (cli_run_covered(&o, &rep), json) {
            cli_progress_end();
            rc = cli_json_write(stdout, cli_run_json(db, path, &o, &rep, cli_now() - t0)) ? 1 : 0;
        } else {
            cli_progress_end();
            ldb_info *in = NULL;
            if (!ldb_query_info(db, &in))
                printf("ingested %s in %.1f s; the DB now holds %llu sequences, %llu tokens\n",
                       o.tokens, cli_now() - t0, (unsigned long long)in->n_seq,
                       (unsigned long long)in->n_tokens);
            ldb_info_free(in);
            if (rep.pairs)
                printf("encoder: %s; %.3f%% of (token, latent) pairs computed exactly after the "
                       "screen; %.0f MiB of W_enc copies\n", rep.gemm,
                       100.0 * (double)rep.refined / (double)rep.pairs,
                       (double)rep.encoder_bytes / 1048576.0);
            else if (*rep.gemm)
                printf("encoder: %s\n", rep.gemm);
        }
    }
    cli_close_db(db);
    free(copy);
    free(acopy);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    const char *path;
    int json, rc = db_and_flag(argc, argv, USAGE_INFO, "--json", &path, &json);
    if (rc)
        return rc;
    ldb_db *db = NULL;
    ldb_info *in = NULL;
    rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    ans_err e;
    if (json) {
        rc = cli_answer(ans_info(db, &e), &e);
        goto out;
    }
    if (ldb_query_info(db, &in)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
        goto out;
    }
    static const char *vnames[] = {"bf16", "f16", "f32"};
    {
        printf("database      %s\n", path);
        printf("sequences     %llu\n", (unsigned long long)in->n_seq);
        printf("tokens        %llu (%llu ordinary)\n", (unsigned long long)in->n_tokens,
               (unsigned long long)in->n_ordinary);
        printf("values        %s\n", vnames[in->values]);
        printf("skip tokens   ");
        for (uint32_t i = 0; i < in->n_skip; i++)
            printf("%s%u", i ? "," : "", in->skip[i]);
        printf("%s\n", in->n_skip ? "" : "none");
        printf("size          %.1f MiB\n", in->bytes / 1048576.0);
        printf("\n%-16s %8s %12s %12s %14s\n", "dictionary", "d_sae", "positions", "nnz",
               "bytes/nnz");
        for (uint32_t i = 0; i < in->n_dicts; i++) {
            const ldb_dict_usage *u = &in->dicts[i];
            char *t1;
            printf("%-16s %8u %12llu %12llu %14.2f\n", cli_safe(u->name, &t1), u->d_sae,
                   (unsigned long long)u->positions, (unsigned long long)u->nnz,
                   u->nnz ? (double)u->bytes / u->nnz : 0.0);
            free(t1);
        }
    }
out:
    ldb_info_free(in);
    ldb_db_close(db);
    return rc;
}

/* Each problem check finds, on stderr as it is found (stored text quoted in a
 * problem is printed without raw control bytes), or with --json into arg's array. */
static void put_problem(void *arg, const char *line)
{
    if (arg) {
        cJSON_AddItemToArray(arg, cJSON_CreateString(line));
        return;
    }
    cli_put_text(stderr, line, strlen(line));
    fputc('\n', stderr);
}

/* check --json: the report as one object (ok, problems, counts, digest, notes). */
static cJSON *check_json(const char *path, const ldb_check_report *r, cJSON *problems, int repair)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "db", path);
    cJSON_AddBoolToObject(o, "ok", r->n_problems == 0);
    cJSON_AddNumberToObject(o, "n_problems", (double)r->n_problems);
    cJSON_AddNumberToObject(o, "store_problems", (double)r->n_store_problems);
    cJSON_AddNumberToObject(o, "catalog_problems", (double)(r->n_problems - r->n_store_problems));
    cJSON_AddItemToObject(o, "problems", problems);
    cJSON_AddNumberToObject(o, "sequences", (double)r->n_seq);
    cJSON_AddNumberToObject(o, "tokens", (double)r->n_tokens);
    cJSON_AddNumberToObject(o, "codes", (double)r->nnz);
    cJSON_AddNumberToObject(o, "blocks", (double)r->n_blocks);
    if (r->n_problems)
        cJSON_AddNullToObject(o, "digest");
    else
        cJSON_AddStringToObject(o, "digest", r->digest);
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    for (const char *p = r->notes, *e; *p; p = *e ? e + 1 : e) { /* one a line */
        e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        char *line = e > p ? strndup(p, (size_t)(e - p)) : NULL;
        if (line)
            cJSON_AddItemToArray(notes, cJSON_CreateString(line));
        free(line);
    }
    cJSON_AddBoolToObject(o, "repaired", repair);
    return o;
}

int cmd_check(int argc, char **argv)
{
    static const char *USAGE =
        "usage: latentdb check DB [--digest] [--repair] [--json]\n"
        "Verifies every record against what it derives from, and catalog.sqlite (a read-only\n"
        "mirror of the LMDB records) against them; lists every problem on stderr (--json: in\n"
        "the report's \"problems\"), exit status 1 when there is one. --digest prints the\n"
        "SHA-256 of the content instead of \"ok\"; --repair rebuilds what is derived (indexes,\n"
        "summaries, the catalog) first.\n";
    const char *path = NULL;
    int digest = 0, repair = 0, json = 0, rc;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--digest"))
            digest = 1;
        else if (!strcmp(argv[i], "--repair"))
            repair = 1;
        else if (argv[i][0] == '-' || path)
            return cli_usage(USAGE, "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage(USAGE, "check needs a database");
    ldb_db *db = NULL;
    if ((rc = cli_open_db(path, repair ? LDB_OPEN_WRITE : LDB_OPEN_READ, &db)))
        return rc;
    if (repair && ldb_db_repair(db)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
        cli_close_db(db);
        return rc;
    }
    if (repair && strcmp(told, ldb_db_note(db))) { /* damage the open did not read */
        fprintf(stderr, "latentdb: note: %s\n", ldb_db_note(db));
        snprintf(told, sizeof told, "%s", ldb_db_note(db));
    }
    ldb_check_report *r = calloc(1, sizeof *r);
    if (!r) {
        ldb_db_close(db);
        return cli_fail("out of memory");
    }
    cJSON *probs = json ? cJSON_CreateArray() : NULL;
    if (ldb_db_check_each(db, r, put_problem, probs)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
        cJSON_Delete(probs);
    } else if (json) {
        if (cli_json_write(stdout, check_json(path, r, probs, repair)))
            rc = 1;
        else if (r->n_problems)
            rc = cli_fail("%s: %llu problems found", path, (unsigned long long)r->n_problems);
    } else if (r->n_problems) {
        rc = cli_fail("%s: %llu problems found", path, (unsigned long long)r->n_problems);
    } else {
        if (*r->notes)
            fprintf(stderr, "latentdb: note: %s", r->notes);
        if (digest)
            printf("%s\n", r->digest);
        else
            printf("%s: ok (%llu sequences, %llu tokens, %llu codes in %llu forward blocks)%s\n",
                   path, (unsigned long long)r->n_seq, (unsigned long long)r->n_tokens,
                   (unsigned long long)r->nnz, (unsigned long long)r->n_blocks,
                   repair ? "; catalog rebuilt" : "");
    }
    free(r);
    ldb_db_close(db);
    return rc;
}

int cmd_compact(int argc, char **argv)
{
    static const char *USAGE =
        "usage: latentdb compact DB [--json]\n"
        "LMDB keeps the pages a batch frees inside data.mdb for later batches; compact copies\n"
        "the live pages into a new file that replaces it. It needs the database to itself (no\n"
        "other process may have it open) and, for a while, room for the copy.\n";
    const char *path = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' || path)
            return cli_usage(USAGE, "unexpected argument '%s'", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage(USAGE, "compact needs a database");
    ldb_db *db = NULL;
    int rc = cli_open_db(path, LDB_OPEN_WRITE, &db);
    if (rc)
        return rc;
    uint64_t before = 0, after = 0;
    if (ldb_db_compact(db, &before, &after)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "db", path);
        cJSON_AddNumberToObject(o, "bytes_before", (double)before);
        cJSON_AddNumberToObject(o, "bytes_after", (double)after);
        rc = cli_json_write(stdout, o) ? 1 : 0;
    } else
        printf("compacted %s: data.mdb %.1f MiB -> %.1f MiB\n", path, before / 1048576.0,
               after / 1048576.0);
    cli_close_db(db);
    return rc;
}
