/* runlist.c — the runs of a database as a list (ldb_runs_list, `latentdb runs`): each
 * run record (docs/FORMAT.md, "Run record") with its id and its sequence count, in
 * the order the runs started. Reads only; a record that is not JSON is listed as such. */
#include <stdlib.h>
#include <string.h>

#include "run_impl.h"

typedef struct lister {
    cJSON **rec;
    size_t n, cap;
} lister;

/* A record as listed: its id first, then its fields, then its sequence count. */
static cJSON *listed(const uint8_t id[32], const char *json, size_t len)
{
    char hex[65];
    cJSON *o = cJSON_ParseWithLength(json, len), *x = cJSON_CreateObject(), *e;
    ingest_hex(id, hex);
    if (!x || !cJSON_AddStringToObject(x, "id", hex))
        goto fail;
    if (!cJSON_IsObject(o) && !cJSON_AddStringToObject(x, "status", "damaged"))
        goto fail;
    while (cJSON_IsObject(o) && (e = o->child)) {
        cJSON_DetachItemViaPointer(o, e);
        if (!strcmp(e->string, "id") || !strcmp(e->string, "n_seqs"))
            cJSON_Delete(e);
        else if (!cJSON_AddItemToObject(x, e->string, e)) {
            cJSON_Delete(e);
            goto fail;
        }
    }
    seqset s = {0};
    int have = 0, bad = seqset_from_json(&s, cJSON_GetObjectItem(x, "seqs"), &have);
    uint64_t n = seqset_count(&s);
    seqset_free(&s);
    if (!(have && !bad ? cJSON_AddNumberToObject(x, "n_seqs", (double)n)
                       : cJSON_AddNullToObject(x, "n_seqs")))
        goto fail;
    cJSON_Delete(o);
    return x;
fail:
    cJSON_Delete(o);
    cJSON_Delete(x);
    return NULL;
}

static int take(void *arg, const uint8_t id[32], const char *json, size_t len)
{
    lister *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        cJSON **a = realloc(l->rec, cap * sizeof *a);
        if (!a)
            return LDB_ENOMEM;
        l->rec = a;
        l->cap = cap;
    }
    if (!(l->rec[l->n] = listed(id, json, len)))
        return LDB_ENOMEM;
    l->n++;
    return 0;
}

/* In the order the runs started, then by id. */
static int by_start(const void *a, const void *b)
{
    const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
    double s = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "started"));
    double t = cJSON_GetNumberValue(cJSON_GetObjectItem(y, "started"));
    s = s == s ? s : 0;
    t = t == t ? t : 0;
    if (s != t)
        return s < t ? -1 : 1;
    return strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "id")),
                  cJSON_GetStringValue(cJSON_GetObjectItem(y, "id")));
}

int ldb_runs_list(ldb_db *db, char **json)
{
    lister l = {0};
    ldb_txn *txn = NULL;
    cJSON *a = NULL;
    *json = NULL;
    int rc = ldb_snap_begin(db, &txn);
    if (!rc && (rc = ldb_run_each(db, txn, take, &l)) == LDB_ENOMEM)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    ldb_snap_end(db, txn);
    if (!rc) {
        if (l.n) /* (no runs: no array) */
            qsort(l.rec, l.n, sizeof *l.rec, by_start);
        if (!(a = cJSON_CreateArray()))
            rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < l.n; i++)
        if (rc || !cJSON_AddItemToArray(a, l.rec[i]))
            cJSON_Delete(l.rec[i]);
    free(l.rec);
    if (!rc && !(*json = cJSON_PrintUnformatted(a)))
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    cJSON_Delete(a);
    return rc;
}
