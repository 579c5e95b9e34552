/* latents.c — how the CLI names a latent. Latents of a multi-layer dictionary (a
 * cross-layer transcoder, a crosscoder) have a global id and a LAYER:INDEX name; a
 * LATENT argument takes either, output prints LAYER:INDEX and JSON carries "layer"
 * and "index" beside "latent" (the global id). Single-layer dictionaries print and
 * carry the id alone, as they always have. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli.h"
#include "latentdb.h"

int cli_latent_syntax(const char *s)
{
    int digits = 0, colons = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digits++;
        else if (*s == ':' && digits && !colons)
            colons++, digits = 0;
        else
            return 0;
    }
    return digits > 0;
}

int cli_latent_arg(ldb_db *db, const char *dict, const char *text, uint32_t *latent)
{
    return ldb_db_latent_parse(db, dict, text, latent) ? cli_fail("%s", ldb_db_errmsg(db)) : 0;
}

void cli_latent_json(cJSON *o, ldb_db *db, const char *dict, uint32_t latent)
{
    uint32_t layer, index;
    cJSON_AddNumberToObject(o, "latent", latent);
    if (ldb_db_dict_layers(db, dict) > 1 && !ldb_db_latent_layer(db, dict, latent, &layer, &index)) {
        cJSON_AddNumberToObject(o, "layer", layer);
        cJSON_AddNumberToObject(o, "index", index);
    }
}

const char *cli_latent_str(ldb_db *db, const char *dict, uint32_t latent, char buf[32])
{
    uint32_t layer, index;
    if (ldb_db_dict_layers(db, dict) > 1 && !ldb_db_latent_layer(db, dict, latent, &layer, &index))
        snprintf(buf, 32, "%u:%u", layer, index);
    else
        snprintf(buf, 32, "%u", latent);
    return buf;
}
