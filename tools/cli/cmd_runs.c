/* cmd_runs.c — `latentdb runs DB [--json]`: every run of the database (ingests,
 * imports, streams) as ldb_runs_list gives them, one line each, or the list as JSON. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "latentdb.h"

static const char *USAGE_RUNS =
    "usage: latentdb runs DB [--json]\n"
    "Every ingest, import and stream of the DB, in the order they started: the run's id\n"
    "(the first 12 hex digits of its key, as ingest names it), its dictionaries, its\n"
    "source (the label its sequences carry; the tokens path unless --source named one),\n"
    "the sequences it wrote codes for, its rows done of all, its status (running: killed\n"
    "or still going; the same command resumes it), and when it started and finished (UTC).\n"
    "--json prints the whole records: full ids, inputs, \"seqs\" as ranges of sequence ids.\n";

/* "2026-12-08T10:00:00Z", or "-" for 0 (not finished) or a time that is none. */
static const char *iso(const cJSON *o, const char *key, char out[32])
{
    double t = cJSON_GetNumberValue(cJSON_GetObjectItem(o, key));
    struct tm tm;
    time_t s = (time_t)t;
    if (!(t > 0 && t < 1e12) || !gmtime_r(&s, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return "-";
    return out;
}

/* A record's number as an integer, or "?" when it has none. */
static const char *num(const cJSON *o, const char *key, char out[32])
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1e18))
        return "?";
    snprintf(out, 32, "%.0f", v->valuedouble);
    return out;
}

static void print_run(const cJSON *o)
{
    char dicts[256] = "", *t1, *t2, b1[32], b2[32], b3[32], b4[32], b5[32], rows[80];
    const cJSON *d;
    size_t len = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(o, "dicts"))
        if (cJSON_IsString(d) && len < sizeof dicts - 1)
            len += (size_t)snprintf(dicts + len, sizeof dicts - len, "%s%s", len ? "," : "",
                                    d->valuestring);
    if (len >= sizeof dicts)
        len = sizeof dicts - 1;
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(o, "source"));
    if (!src)
        src = cJSON_GetStringValue(cJSON_GetObjectItem(o, "tokens"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(o, "status"));
    snprintf(rows, sizeof rows, "%s/%s", num(o, "rows_done", b1), num(o, "rows", b2));
    printf("%-12.12s  %-12s %8s %13s  %-8s %-20s %-20s  ", id ? id : "?",
           cli_safe(*dicts ? dicts : "?", &t1), num(o, "n_seqs", b3), rows, st ? cli_safe(st, &t2) : "?",
           iso(o, "started", b4), iso(o, "finished", b5));
    free(t1);
    if (st)
        free(t2);
    cli_put_oneline(src ? src : "?", src ? strlen(src) : 1);
    putchar('\n');
}

void cli_run_covered(const ldb_ingest_opts *o, const ldb_ingest_report *rep)
{
    if (!rep->rows_covered || rep->covered_dict < 0 || rep->covered_dict >= o->n_dicts)
        return;
    char *t;
    cli_progress_end();
    fprintf(stderr, "latentdb: %llu of %llu sequences already hold codes of '%s' (the same "
            "tokens, from other runs): %s\n", (unsigned long long)rep->rows_covered,
            (unsigned long long)rep->n_rows, cli_safe(o->dicts[rep->covered_dict], &t),
            o->skip_covered ? "skipped (--skip-covered)"
                            : "stored again as new sequences; --skip-covered skips them");
    free(t);
}

int cmd_runs(int argc, char **argv)
{
    const char *path = NULL;
    int json, rc = cli_args(argc, argv, USAGE_RUNS, 1, &path, &json, NULL, NULL, "runs needs DB");
    if (rc)
        return rc;
    ldb_db *db = NULL;
    char *s = NULL;
    cJSON *a = NULL;
    rc = cli_open_db(path, LDB_OPEN_READ, &db);
    if (rc)
        return rc;
    if (ldb_runs_list(db, &s)) {
        rc = cli_fail("%s", ldb_db_errmsg(db));
        goto out;
    }
    if (!(a = cJSON_Parse(s))) {
        rc = cli_fail("out of memory");
        goto out;
    }
    if (json) {
        rc = cli_json_write(stdout, a) ? 1 : 0;
        a = NULL; /* cli_json_write frees it */
        goto out;
    }
    if (!cJSON_GetArraySize(a)) {
        printf("no runs yet\n");
        goto out;
    }
    printf("%-12s  %-12s %8s %13s  %-8s %-20s %-20s  %s\n", "run", "dicts", "seqs", "rows",
           "status", "started", "finished", "source");
    const cJSON *o;
    cJSON_ArrayForEach(o, a)
        print_run(o);
out:
    cJSON_Delete(a);
    ldb_free(s);
    ldb_db_close(db);
    return rc;
}
