/* test_search.c — search by activating text, against brute force and against the
 * planted truth. The fixture is real text (Brown documents tokenized by latentdb)
 * with planted activations (tools/planted --tokenizer), so every token and bigram
 * latent has a probe text fixed before ingest.
 * - For a sample of probes (one and two tokens, --where last and all), the ranking,
 *   occurrences, hits, precision, density, mean value and score equal a brute-force
 *   computation over every code of the corpus.
 * - Over all probes, the planted latent ranks first for >= 95% of them.
 * - A text absent from the corpus gives 0 occurrences and no latents.
 * usage: test_search FIXTURE_DIR TOKENIZER_JSON SCRATCH_DIR */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "brute.h"
#include "../db/db_impl.h"
#include "../text/tokenizer.h"

static ldb_tokenizer *tz;
static uint64_t n_ord, *lat_count; /* brute-force firing counts over ordinary positions */
static uint32_t d_sae;
static const uint32_t skip[3] = {0, 2, 106}; /* Gemma 3: pad, bos, <end_of_turn> */

static int skipped(uint32_t t)
{
    return t == skip[0] || t == skip[1] || t == skip[2];
}

typedef struct bitem { uint32_t latent; uint64_t hits; double vsum, score; } bitem;

static int cmp_bitem(const void *x, const void *y)
{
    const bitem *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->hits != b->hits)
        return a->hits > b->hits ? -1 : 1;
    return a->latent < b->latent ? -1 : a->latent > b->latent;
}

/* Brute force of one search; compares it with ldb_query_search. Returns differences. */
static int brute_search(ldb_db *db, const uint32_t *q, uint32_t m, int all)
{
    bitem *it = calloc(d_sae, sizeof *it);
    float *vcur = calloc(d_sae, sizeof *vcur);
    uint32_t *stamp = calloc(d_sae, sizeof *stamp);
    uint64_t occ = 0;
    for (uint32_t s = 0; s + m <= n_pos; s++) {
        if (s % ctx + m > ctx || memcmp(tok + s, q, m * sizeof *q))
            continue;
        int any = 0;
        for (uint32_t p = all ? s : s + m - 1; p < s + m; p++) {
            if (skipped(tok[p]))
                continue;
            any = 1;
            for (uint64_t i = pstart[p]; i < pstart[p + 1]; i++) {
                uint32_t l = plat[i];
                if (stamp[l] != occ + 1) {
                    stamp[l] = (uint32_t)occ + 1;
                    it[l].hits++;
                    it[l].vsum += pval[i];
                    vcur[l] = pval[i];
                } else if (pval[i] > vcur[l]) {
                    it[l].vsum += pval[i] - vcur[l];
                    vcur[l] = pval[i];
                }
            }
        }
        occ += any;
    }
    uint32_t n = 0;
    for (uint32_t l = 0; l < d_sae; l++) {
        if (!it[l].hits)
            continue;
        double p = (double)it[l].hits / (double)occ, d = (double)lat_count[l] / (double)n_ord;
        it[n] = it[l];
        it[n].latent = l;
        it[n++].score = p * log2(p / (d > 0 ? d : 1.0 / (double)n_ord));
    }
    qsort(it, n, sizeof *it, cmp_bitem);
    ldb_search *r = NULL;
    int bad = 0;
    if (ldb_query_search(db, "p", q, m, all, 10, &r)) {
        bad = 1000;
    } else {
        bad += r->occurrences != occ;
        bad += r->n != (n < 10 ? n : 10);
        for (uint32_t i = 0; i < r->n && i < n; i++) {
            const ldb_search_item *x = &r->items[i];
            double p = (double)it[i].hits / (double)occ;
            bad += x->latent != it[i].latent || x->hits != it[i].hits ||
                   fabs(x->precision - p) > 1e-12 ||
                   fabs(x->density - (double)lat_count[x->latent] / (double)n_ord) > 1e-12 ||
                   fabs(x->score - it[i].score) > 1e-9 ||
                   fabs(x->mean_value - it[i].vsum / (double)it[i].hits) > 1e-6;
        }
    }
    ldb_search_free(r);
    free(it);
    free(vcur);
    free(stamp);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_search FIXTURE_DIR TOKENIZER_JSON SCRATCH_DIR\n");
        return 2;
    }
    char tp[1100], ap[1100], dp[1100], pp[1100], dbp[1100];
    snprintf(tp, sizeof tp, "%s/tokens.npy", argv[1]);
    snprintf(ap, sizeof ap, "%s/acts.npy", argv[1]);
    snprintf(dp, sizeof dp, "%s/dict", argv[1]);
    snprintf(pp, sizeof pp, "%s/planted.json", argv[1]);
    snprintf(dbp, sizeof dbp, "%s/search_db", argv[3]);
    CHECK(ldb_tokenizer_open(argv[2], &tz) == 0, "tokenizer: %s", ldb_tokenizer_errmsg(tz));
    brute_encode(dp, ap, tp);

    /* the DB: tokenizer (its BOS/EOS/PAD are the skip set), dictionary, ingest */
    ldb_db *db = NULL;
    CHECK(ldb_db_init(dbp, NULL, 0, LDB_VALUES_BF16, &db) == 0, "init: %s", ldb_db_errmsg(db));
    CHECK(ldb_db_set_tokenizer(db, tz, 1) == 0, "set tokenizer: %s", ldb_db_errmsg(db));
    CHECK(ldb_db_dict_add(db, "p", dp) == 0, "dict add: %s", ldb_db_errmsg(db));
    const char *names[1] = {"p"};
    ldb_ingest_opts o = {.size = sizeof(ldb_ingest_opts), .dicts = names, .n_dicts = 1, .tokens = tp, .acts = ap,
                         .source = "brown"};
    CHECK(ldb_ingest(db, &o) == 0, "ingest: %s", ldb_db_errmsg(db));
    ldb_info *in = NULL;
    CHECK(ldb_query_info(db, &in) == 0 && in->n_skip == 3 && in->skip[0] == 0 &&
          in->skip[1] == 2 && in->skip[2] == 106, "skip set from tokenizer_config.json");
    ldb_info_free(in);
    ldb_tokenizer *dbt = NULL;
    CHECK(ldb_db_tokenizer(db, &dbt) == 0 && dbt, "the DB's tokenizer");

    /* brute-force densities */
    ldb_density *den = NULL;
    CHECK(ldb_query_density(db, "p", 1, &den) == 0, "density: %s", ldb_db_errmsg(db));
    d_sae = den->n_latents;
    ldb_density_free(den);
    lat_count = calloc(d_sae, sizeof *lat_count);
    for (uint32_t p = 0; p < n_pos; p++) {
        if (skipped(tok[p]))
            continue;
        n_ord++;
        for (uint64_t i = pstart[p]; i < pstart[p + 1]; i++)
            lat_count[plat[i]]++;
    }

    /* probes */
    char *txt = NULL;
    size_t len;
    ldb_err e;
    CHECK(ldb_file_read_all(pp, 1 << 26, &txt, &len, &e) == 0, "%s", e.msg);
    cJSON *root = txt ? cJSON_Parse(txt) : NULL, *it;
    free(txt);
    unsigned probes = 0, first = 0, compared = 0, bad = 0, n1 = 0, n2 = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "latents")) {
        const char *probe = cJSON_GetStringValue(cJSON_GetObjectItem(it, "probe"));
        uint32_t latent = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "latent"));
        if (!probe)
            continue;
        uint32_t *ids;
        size_t n;
        if (ldb_tokenizer_encode(dbt, probe, strlen(probe), &ids, &n)) {
            bad++;
            continue;
        }
        ldb_search *r = NULL;
        if (ldb_query_search(db, "p", ids, n, 0, 3, &r) == 0) {
            probes++;
            first += r->n && r->items[0].latent == latent;
        } else {
            bad++;
        }
        ldb_search_free(r);
        /* brute force on a sample: every 8th probe, both --where modes for bigrams */
        if ((n == 1 && n1++ % 8 == 0) || (n == 2 && n2++ % 8 == 0)) {
            bad += brute_search(db, ids, (uint32_t)n, 0);
            if (n == 2)
                bad += brute_search(db, ids, (uint32_t)n, 1);
            compared++;
        }
        free(ids);
    }
    cJSON_Delete(root);
    CHECK(probes >= 100 && compared >= 20, "%u probes, %u compared with brute force", probes,
          compared);
    CHECK(bad == 0, "search differs from brute force in %u fields", bad);
    double rate = probes ? 100.0 * first / probes : 0;
    printf("planted latents ranked first: %u of %u probes (%.1f%%)\n", first, probes, rate);
    CHECK(rate >= 95.0, "planted latent first for %.1f%% of probes (>= 95%%)", rate);

    /* a text that occurs nowhere */
    uint32_t *ids;
    size_t n;
    const char *absent = " zxqvjk qwzx";
    ldb_search *r = NULL;
    CHECK(ldb_tokenizer_encode(dbt, absent, strlen(absent), &ids, &n) == 0 &&
          ldb_query_search(db, "p", ids, n, 0, 10, &r) == 0 && r->occurrences == 0 && r->n == 0,
          "an absent text has no occurrences");
    ldb_search_free(r);
    free(ids);
    CHECK(ldb_query_search(db, "nope", skip, 1, 0, 10, &r) != 0, "an unknown dictionary fails");

    /* stored tables that are not what this version wrote are refused, not misread */
    size_t bsz;
    const void *blob = ldb_tokenizer_blob(dbt, &bsz);
    uint32_t *copy = malloc(bsz);
    ldb_err err;
    memcpy(copy, blob, bsz);
    copy[0] = 0x314b544cu; /* "LTK1": the layout before the piece hash changed */
    struct ldb_tokenizer *bt = ldb_tokenizer_from_blob(copy, bsz, "old", &err);
    CHECK(!bt && strstr(err.msg, "tokenizer tables of format LTK1"), "LTK1 refused: %s", err.msg);
    memcpy(copy, blob, bsz);
    memset((uint8_t *)copy + copy[14], 0, 4ull * copy[9]); /* empty the vocabulary hash */
    bt = ldb_tokenizer_from_blob(copy, bsz, "nohash", &err);
    CHECK(!bt && strstr(err.msg, "vocabulary hash does not find its pieces"), "%s", err.msg);
    memcpy(copy, blob, bsz);
    copy[18] += 4; /* total size disagrees */
    bt = ldb_tokenizer_from_blob(copy, bsz, "size", &err);
    CHECK(!bt && strstr(err.msg, "corrupt (size)"), "%s", err.msg);
    free(copy);

    /* a piece edited in the stored tables ("▁the" -> "▁thf": the tables still
     * open, and top printed [[thf]]) is a problem check reports, by the SHA-256
     * stored beside them (issue 20, finding 4) */
    MDB_txn *txn;
    MDB_val mk = {9, "tokenizer"}, mv;
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0 && mdb_get(txn, db->meta, &mk, &mv) == 0,
          "the stored tables");
    uint8_t *orig = malloc(mv.mv_size), *edit = malloc(mv.mv_size);
    size_t on = mv.mv_size;
    memcpy(orig, mv.mv_data, on);
    memcpy(edit, orig, on);
    const char *the = "\xe2\x96\x81the";
    uint8_t *at = memmem(edit, on, the, strlen(the));
    CHECK(at != NULL, "the piece '▁the' in the tables");
    if (at)
        at[strlen(the) - 1] = 'f';
    bt = ldb_tokenizer_from_blob(edit, on, "edited", &err);
    CHECK(bt != NULL, "the edited tables pass their own checks (so only a hash finds it)");
    ldb_tokenizer_close(bt);
    MDB_val ev = {on, edit};
    CHECK(mdb_put(txn, db->meta, &mk, &ev, 0) == 0 && mdb_txn_commit(txn) == 0, "edit");
    ldb_check_report *rep = calloc(1, sizeof *rep);
    CHECK(ldb_db_check(db, rep) == 0 && rep->n_problems == 1 &&
          strstr(rep->problems, "tokenizer tables do not match their SHA-256"),
          "check reports the edited tokenizer: %s", rep->problems);
    MDB_val ov = {on, orig};
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0 && mdb_put(txn, db->meta, &mk, &ov, 0) == 0 &&
          mdb_txn_commit(txn) == 0, "restore");
    CHECK(ldb_db_check(db, rep) == 0 && rep->n_problems == 0, "clean again: %s", rep->problems);
    free(rep);
    free(orig);
    free(edit);

    ldb_db_close(db);
    ldb_tokenizer_close(tz);
    free(lat_count);
    free(pstart);
    free(plat);
    free(pval);
    free(tok);
    return test_summary("test_search");
}
