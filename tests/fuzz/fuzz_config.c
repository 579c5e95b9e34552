/* fuzz_config.c — libFuzzer target for the dictionary config loaders
 * (sae/config.c) and the checks dict.c makes of a config against its tensors.
 *
 * Format detection goes by the files in a folder, so three folders are made once
 * under /tmp, one per format with a config file:
 *   saelens/   cfg.json    + sae_weights.safetensors   (SAELens, nested or flat)
 *   gs2/       config.json + params.safetensors        (Gemma Scope 2)
 *   layers.5/  cfg.json    + sae.safetensors           (sparsify; hookpoint = folder name)
 * Each input is written as the config file of all three and each folder is
 * opened with ldb_dict_open (ldb_cfg_detect, then the weights, bind_shapes and
 * bind_params). The weights are one tiny F32 file, written at start-up, with
 * d_in = d_out = 4 and d_sae = 8 and every tensor any architecture asks for
 * (W_enc, b_enc, W_dec, b_dec, threshold, b_gate, b_mag, r_mag, and sparsify's
 * encoder.weight/encoder.bias; the sparsify copy also has W_skip [4, 4]), so a
 * config that says d_in 4 / d_sae 8 gets past the shape checks to the
 * architecture-specific ones (k, groupmax divisibility, skip, b_dec). On success
 * the description (ldb_dict_describe) must be valid JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "latentdb.h"
#include "fuzz_common.h"

#define D_IN 4
#define D_SAE 8

typedef struct { const char *name; int r, c; } tdesc; /* c = 0: a vector of r */

/* A safetensors file of zeros holding the tensors of list (F32). */
static void write_weights(const char *path, const tdesc *list, int n)
{
    char hdr[2048];
    size_t o = 0, off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t bytes = 4u * (size_t)list[i].r * (size_t)(list[i].c ? list[i].c : 1);
        if (list[i].c)
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":"
                                  "[%d,%d],\"data_offsets\":[%zu,%zu]}", list[i].name, list[i].r,
                                  list[i].c, off, off + bytes);
        else
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, ",\"%s\":{\"dtype\":\"F32\",\"shape\":"
                                  "[%d],\"data_offsets\":[%zu,%zu]}", list[i].name, list[i].r, off,
                                  off + bytes);
        off += bytes;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    while (o % 8) /* pad the header with spaces, as the reference writer does */
        hdr[o++] = ' ';
    size_t total = 8 + o + off;
    uint8_t *buf = calloc(1, total);
    if (!buf)
        fz_die("calloc");
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)o >> (8 * i));
    memcpy(buf + 8, hdr, o);
    fz_write_file(path, buf, total);
    free(buf);
}

static char cfg_path[3][256], dirs[3][256];

static void setup(void)
{
    static const tdesc common[] = {
        {"W_enc", D_IN, D_SAE}, {"b_enc", D_SAE, 0}, {"W_dec", D_SAE, D_IN}, {"b_dec", D_IN, 0},
        {"threshold", D_SAE, 0}, {"b_gate", D_SAE, 0}, {"b_mag", D_SAE, 0}, {"r_mag", D_SAE, 0},
    };
    static const tdesc sparsify[] = {
        {"encoder.weight", D_SAE, D_IN}, {"encoder.bias", D_SAE, 0}, {"W_dec", D_SAE, D_IN},
        {"b_dec", D_IN, 0}, {"W_skip", D_IN, D_IN},
    };
    static const char *sub[3] = {"saelens", "gs2", "layers.5"};
    static const char *cfg[3] = {"cfg.json", "config.json", "cfg.json"};
    static const char *wts[3] = {"sae_weights.safetensors", "params.safetensors", "sae.safetensors"};
    const char *root = fz_mkdtemp("config");
    char p[256];
    for (int i = 0; i < 3; i++) {
        fz_join(dirs[i], sizeof dirs[i], root, sub[i]);
        if (mkdir(dirs[i], 0700) != 0)
            fz_die("mkdir");
        fz_join(cfg_path[i], sizeof cfg_path[i], dirs[i], cfg[i]);
        fz_join(p, sizeof p, dirs[i], wts[i]);
        if (i == 2)
            write_weights(p, sparsify, (int)(sizeof sparsify / sizeof sparsify[0]));
        else
            write_weights(p, common, (int)(sizeof common / sizeof common[0]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready++)
        setup();
    for (int i = 0; i < 3; i++) {
        fz_write_file(cfg_path[i], data, size);
        ldb_dict *d = NULL;
        int rc = ldb_dict_open(dirs[i], &d);
        if (!d)
            abort(); /* set even on failure, unless out of memory */
        if (rc != LDB_OK) {
            if (!ldb_dict_errmsg(d)[0])
                abort(); /* every failure explains itself */
            ldb_dict_close(d);
            continue;
        }
        const ldb_dict_info *in = ldb_dict_get_info(d);
        if (in->d_in != D_IN || in->d_sae != D_SAE || !in->format || !in->architecture ||
            !in->type)
            abort();
        char *desc = ldb_dict_describe(d);
        if (!desc)
            abort();
        cJSON *o = cJSON_Parse(desc);
        if (!o)
            abort();
        cJSON_Delete(o);
        free(desc);
        ldb_dict_close(d);
    }
    return 0;
}
