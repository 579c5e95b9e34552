/* cmd_export.c — `export` (one JSON line per latent: statistics, label, top
 * examples, quantile samples) and `import` (precomputed sparse codes). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "latentdb.h"


static const char *USAGE_EXPORT =
    "usage: latentdb export DB DICT [--top 20] [--samples 20] [--latents A-B] > out.jsonl\n";
static const char *USAGE_IMPORT =
    "usage: latentdb import DB --dict NAME --tokens T.npy --codes C.npz [--ctx N]\n"
    "                       [--source LABEL] [--again | --skip-covered] [--json]\n"
    "C.npz: scipy.sparse.save_npz of a CSR matrix [n_tokens, d_sae], one row per token of\n"
    "T.npy. --json prints a summary object on stdout when it ends.\n"
    "Rows whose tokens already hold codes of the dictionary (from another run) are stored\n"
    "again as new sequences, or left out with --skip-covered; when every row does, the\n"
    "import is refused, naming the earlier run, unless --again.\n";

/* One latent's line; returns 0 or an LDB error code. */
static int export_one(ldb_db *db, ldb_tokenizer *tk, const char *dict, uint32_t j, uint32_t top,
                      uint32_t samples, FILE *out)
{
    ldb_latent_info *l = NULL;
    ldb_examples *ex = NULL;
    ldb_samples *sm = NULL;
    int rc = ldb_query_latent(db, dict, j, 20, &l);
    ldb_top_opts o;
    ldb_top_opts_init(&o);
    o.k = top;
    if (!rc && top)
        rc = ldb_query_top(db, dict, j, &o, &ex);
    uint32_t groups = samples < 10 ? samples : 10;
    if (!rc && samples)
        rc = ldb_query_samples(db, dict, j, groups, (samples + groups - 1) / groups,
                               LDB_SAMPLES_BY_COUNT, j, 8, &sm);
    if (!rc) {
        cJSON *o2 = cJSON_CreateObject();
        cJSON_AddStringToObject(o2, "dict", dict);
        cli_latent_json(o2, db, dict, j);
        if (l->label)
            cJSON_AddStringToObject(o2, "label", l->label);
        else
            cJSON_AddNullToObject(o2, "label");
        cJSON_AddNumberToObject(o2, "count", (double)l->count);
        cJSON_AddNumberToObject(o2, "density", l->density);
        cJSON_AddNumberToObject(o2, "max", l->max);
        cJSON_AddNumberToObject(o2, "mean", l->mean);
        cJSON_AddNumberToObject(o2, "std", l->std);
        if (ex)
            cJSON_AddItemToObject(o2, "top", cli_examples_json(ex, tk));
        if (sm)
            cJSON_AddItemToObject(o2, "samples", cli_samples_json(sm, tk));
        cli_json_write(out, o2);
    }
    ldb_latent_info_free(l);
    ldb_examples_free(ex);
    ldb_samples_free(sm);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    const char *path = NULL, *dict = NULL, *range = NULL;
    uint32_t top = 20, samples = 20, a = 0, b = UINT32_MAX;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &top) || top > 100000)
                return cli_usage(USAGE_EXPORT, "--top takes 0..100000");
        } else if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &samples) || samples > 100000)
                return cli_usage(USAGE_EXPORT, "--samples takes 0..100000");
        } else if (!strcmp(argv[i], "--latents") && i + 1 < argc)
            range = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_EXPORT, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else if (!dict)
            dict = argv[i];
        else
            return cli_usage(USAGE_EXPORT, "unexpected argument '%s'", argv[i]);
    }
    if (!dict)
        return cli_usage(USAGE_EXPORT, "export needs DB DICT");
    if (range) {
        char *dash = strchr(range, '-'), tmp[32];
        if (!dash || dash - range >= 31) 
            return cli_usage(USAGE_EXPORT, "--latents takes A-B, not '%s'", range);
        memcpy(tmp, range, (size_t)(dash - range));
        tmp[dash - range] = 0;
        if (cli_parse_u32(tmp, &a) || cli_parse_u32(dash + 1, &b) || b < a)
            return cli_usage(USAGE_EXPORT, "--latents takes A-B with A <= B, not '%s'", range);
    }
    ldb_db *db = NULL;
    ldb_density *d = NULL;
    int rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    if (ldb_query_density(db, dict, 1, &d)) { /* the dict's width, and a check it exists */
        rc = cli_fail("%s", ldb_db_errmsg(db));
        goto out;
    }
    if (b >= d->n_latents)
        b = d->n_latents - 1;
    if (a > b) {
        rc = cli_fail("%s: latents %u.. are out of range ('%s' has %u)", path, a, dict,
                      d->n_latents);
        goto out;
    }
    ldb_tokenizer *tk = cli_db_text(db);
    for (uint64_t j = a; j <= b && !rc; j++) {
        if (export_one(db, tk, dict, (uint32_t)j, top, samples, stdout))
            rc = cli_fail("%s", ldb_db_errmsg(db));
        cli_progress("export", "latents", j - a + 1, (uint64_t)b - a + 1);
    }
    cli_progress_end();
out:
    ldb_density_free(d);
    ldb_db_close(db);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    ldb_ingest_opts o;
    const char *path = NULL, *dict = NULL;
    int json = 0;
    ldb_ingest_opts_init(&o);
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--dict") && i + 1 < argc)
            dict = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            o.tokens = argv[++i];
        else if (!strcmp(argv[i], "--codes") && i + 1 < argc)
            o.codes = argv[++i];
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &o.ctx) || !o.ctx)
                return cli_usage(USAGE_IMPORT, "--ctx takes a positive integer");
        } else if (!strcmp(argv[i], "--source") && i + 1 < argc)
            o.source = argv[++i];
        else if (!strcmp(argv[i], "--again"))
            o.again = 1;
        else if (!strcmp(argv[i], "--skip-covered"))
            o.skip_covered = 1;
        else if (argv[i][0] == '-')
            return cli_usage(USAGE_IMPORT, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage(USAGE_IMPORT, "unexpected argument '%s'", argv[i]);
    }
    if (!path || !dict || !o.tokens || !o.codes)
        return cli_usage(USAGE_IMPORT, "import needs DB, --dict, --tokens and --codes");
    o.dicts = &dict;
    o.n_dicts = 1;
    ldb_ingest_report rep;
    cli_run prog = {"import", &rep, 0};
    o.progress = cli_run_progress;
    o.progress_ctx = &prog;
    o.report = &rep;
    ldb_db *db = NULL;
    double t0 = cli_now();
    int rc = cli_open_db(path, LDB_OPEN_WRITE, &db);
    if (!rc && ldb_ingest(db, &o))
        rc = cli_fail("%s", ldb_db_errmsg(db));
    else if (!rc && (cli_run_covered(&o, &rep), json)) {
        cli_progress_end();
        rc = cli_json_write(stdout, cli_run_json(db, path, &o, &rep, cli_now() - t0)) ? 1 : 0;
    } else if (!rc) {
        cli_progress_end();
        printf("imported %s into '%s'\n", o.codes, dict);
    }
    cli_close_db(db);
    return rc;
}
