/* dicts.c — registering dictionaries in a database (`dict add`) and the handle's list
 * of them (ldb_db_dict_count/_json). The dictionary is read through the public
 * ldb_dict_* calls (latentdb.h): db/ includes nothing of sae/. A record keeps what
 * `dict show` reports, so a DB stays self-describing if the files move. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* The next free dictionary id in txn, or an error when name is taken there. */
static int next_id(ldb_db *db, MDB_txn *txn, const char *name, uint16_t *id)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = LDB_OK, mrc = mdb_cursor_open(txn, db->dicts, &c), n = 0;
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "dicts");
    *id = 0;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT), n++) {
        cJSON *o = cJSON_ParseWithLength(v.mv_data, v.mv_size);
        const cJSON *nm = cJSON_GetObjectItem(o, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name))
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: a dictionary named '%s' exists already",
                             db->path, name);
        cJSON_Delete(o);
        if (k.mv_size == 2 && ldb_rd_be16(k.mv_data) >= *id)
            *id = (uint16_t)(ldb_rd_be16(k.mv_data) + 1);
    }
    mdb_cursor_close(c);
    uint64_t next = 0; /* never an id a removed dictionary had (ldb_db_dict_rm) */
    if (!rc && !(rc = ldb_db_meta_u64(db, txn, "dict_next", &next)) && next > *id)
        *id = next > UINT16_MAX ? UINT16_MAX : (uint16_t)next;
    if (!rc && n >= LDB_MAX_DICTS)
        rc = ldb_err_set(ldb_db_err(db), LDB_EUNSUPPORTED, "%s: at most %d dictionaries", db->path,
                         LDB_MAX_DICTS);
    return rc;
}

int ldb_db_dict_add(ldb_db *db, const char *name, const char *path)
{
    ldb_dict *d = NULL;
    MDB_txn *txn = NULL;
    cJSON *o = NULL;
    char *json = NULL, *abs = NULL;
    int rc = LDB_OK, mrc;
    if (!valid_name(name))
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "dictionary name '%s': use 1-64 letters, digits, "
                           "'_', '-' or '.'", name);
    for (int i = 0; i < db->n_dict; i++)
        if (!strcmp(db->dict[i].name, name))
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: a dictionary named '%s' exists already",
                               db->path, name);
    if (db->n_dict >= LDB_MAX_DICTS)
        return ldb_err_set(ldb_db_err(db), LDB_EUNSUPPORTED, "%s: at most %d dictionaries", db->path,
                           LDB_MAX_DICTS);
    if ((rc = ldb_dict_open(path, &d))) {
        ldb_err_set(ldb_db_err(db), rc, "%s", ldb_dict_errmsg(d));
        goto out;
    }
    char *desc = ldb_dict_describe(d);
    o = desc ? cJSON_Parse(desc) : NULL;
    free(desc);
    if (!o) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "%s", ldb_dict_errmsg(d));
        goto out;
    }
    abs = ldb_abs_path(path); /* as given: a symlinked weights folder may be re-pointed */
    cJSON_AddItemToObject(o, "name", cJSON_CreateString(name));
    cJSON_AddItemToObject(o, "path", cJSON_CreateString(abs ? abs : path));
    cJSON_AddNumberToObject(o, "block", 0);
    if (!(json = cJSON_PrintUnformatted(o))) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((mrc = ldb_txn_begin(db, 0, &txn))) {
        rc = ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
        goto out;
    }
    /* the id and the name's uniqueness from the table as this transaction sees
     * it: another process may have added a dictionary since this handle opened */
    uint16_t id = 0;
    if ((rc = next_id(db, txn, name, &id)))
        goto out;
    uint8_t kb[2];
    ldb_be16(kb, id);
    MDB_val k = {2, kb}, v = {strlen(json), json};
    if ((mrc = mdb_put(txn, db->dicts, &k, &v, MDB_NOOVERWRITE))) {
        rc = ldb_db_mdb_err(db, mrc, "dicts");
        goto out;
    }
    MDB_dbi fwd, inv;
    if (!(rc = ldb_db_dict_dbis(db, txn, id, 1, &fwd, &inv)))
        rc = ldb_db_commit_mirrored(db, &txn, 1);
out:
    if (txn)
        ldb_txn_abort(db, txn);
    cJSON_Delete(o);
    free(json);
    free(abs);
    ldb_dict_close(d);
    return rc;
}

int ldb_db_commit_mirrored(ldb_db *db, MDB_txn **txn, int dicts)
{
    uint64_t batch = 0;
    int rc = ldb_db_meta_u64(db, *txn, "batch", &batch);
    if (!rc)
        rc = ldb_db_meta_put_u64(db, *txn, "batch", batch + 1);
    int mrc = rc ? 0 : ldb_txn_commit(db, *txn);
    if (rc)
        ldb_txn_abort(db, *txn);
    *txn = NULL;
    if (rc || mrc)
        return rc ? rc : ldb_db_mdb_err(db, mrc, "cannot commit");
    rc = dicts ? ldb_db_reload_dicts(db) : LDB_OK;
    ldb_catalog_sync(db, 0);
    return rc;
}

int ldb_db_dict_count(const ldb_db *db)
{
    int n;
    ldb_db_dicts((ldb_db *)db, &n);
    return n;
}

const char *ldb_db_dict_json(const ldb_db *db, int i)
{
    int n;
    const ldb_dbdict *d = ldb_db_dicts((ldb_db *)db, &n);
    return i >= 0 && i < n ? d[i].json : NULL;
}

/* ---- Layers of multi-layer dictionaries ---------------------------------------- */

int ldb_db_layer_span(ldb_db *db, const ldb_dbdict *dd, uint32_t layer, uint32_t *first,
                      uint32_t *end)
{
    uint32_t n = dd->n_layers ? dd->n_layers : 1;
    if (layer == LDB_ALL_LAYERS) {
        *first = 0;
        *end = dd->d_sae;
        return LDB_OK;
    }
    if (layer >= n)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "layer %u is out of range: '%s' has %u "
                           "layer%s (0..%u)", layer, dd->name, n, n > 1 ? "s" : "", n - 1);
    *first = dd->n_layers ? dd->layer_off[layer] : 0;
    *end = dd->n_layers ? dd->layer_off[layer + 1] : dd->d_sae;
    return LDB_OK;
}

uint32_t ldb_db_dict_layers(ldb_db *db, const char *dict)
{
    const ldb_dbdict *dd = ldb_db_find_dict(db, dict);
    return !dd ? 0 : dd->n_layers ? dd->n_layers : 1;
}

int ldb_db_layer_latents(ldb_db *db, const char *dict, uint32_t layer, uint32_t *first,
                         uint32_t *end)
{
    const ldb_dbdict *dd = ldb_db_find_dict(db, dict);
    return dd ? ldb_db_layer_span(db, dd, layer, first, end) : LDB_ENOTFOUND;
}

/* A decimal number of at most 10 digits into *v; 0, or -1 when s is not one. */
static int parse_u32(const char *s, size_t n, uint32_t *v)
{
    uint64_t x = 0;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int ldb_db_latent_parse(ldb_db *db, const char *dict, const char *text, uint32_t *latent)
{
    const ldb_dbdict *dd = ldb_db_find_dict(db, dict);
    if (!dd)
        return LDB_ENOTFOUND;
    const char *colon = strchr(text, ':');
    uint32_t n = dd->n_layers ? dd->n_layers : 1, layer, index, first, end;
    if (!colon) {
        if (parse_u32(text, strlen(text), latent))
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "LATENT must be a latent id (0..%u)%s, "
                               "not '%s'", dd->d_sae - 1, dd->n_layers ? " or LAYER:INDEX" : "",
                               text);
        if (*latent >= dd->d_sae)
            return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent %u is out of range: '%s' has %u "
                               "latents (0..%u)", *latent, dict, dd->d_sae, dd->d_sae - 1);
        return LDB_OK;
    }
    if (parse_u32(text, (size_t)(colon - text), &layer) ||
        parse_u32(colon + 1, strlen(colon + 1), &index))
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent '%s': expected LAYER:INDEX, two "
                           "numbers", text);
    if (layer >= n)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent '%s': '%s' has %u layer%s (0..%u)",
                           text, dict, n, n > 1 ? "s" : "", n - 1);
    ldb_db_layer_span(db, dd, layer, &first, &end);
    if (index >= end - first)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent '%s': layer %u of '%s' has latents "
                           "0..%u", text, layer, dict, end - first - 1);
    *latent = first + index;
    return LDB_OK;
}

int ldb_db_latent_layer(ldb_db *db, const char *dict, uint32_t latent, uint32_t *layer,
                        uint32_t *index)
{
    const ldb_dbdict *dd = ldb_db_find_dict(db, dict);
    if (!dd)
        return LDB_ENOTFOUND;
    if (latent >= dd->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent %u is out of range: '%s' has %u "
                           "latents", latent, dict, dd->d_sae);
    uint32_t lo = 0, hi = dd->n_layers ? dd->n_layers - 1 : 0; /* the last layer starting <= latent */
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (dd->layer_off[mid] <= latent)
            lo = mid;
        else
            hi = mid - 1;
    }
    *layer = lo;
    *index = latent - (dd->n_layers ? dd->layer_off[lo] : 0);
    return LDB_OK;
}
