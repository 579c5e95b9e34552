/* test_store.c — the store and its queries against brute force: a synthetic corpus
 * with planted features (tools/planted: 4096 latents, 102,400 tokens, token, bigram,
 * position, Zipf background and dead latents, BOS rows of large norm) is ingested;
 * the test encodes the same activations itself, rounds to bf16 with its own code,
 * and computes counts, densities, histograms and top examples by brute force.
 * Then: attach by tokens hash, a second ingest, resume after SIGKILL (same digest
 * as an uninterrupted run), a reader holding a snapshot across commits, and bad
 * inputs that must leave the DB as it was.
 * The phases share state: they run in this order on the one database the first
 * ingest builds (each later phase reads what the earlier ones wrote, and the
 * tamper phases restore what they damage), so they are run together, not alone.
 * usage: test_store SYNTH_DIR OTHER_DICT_DIR SCRATCH_DIR */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "../db/db_impl.h"
#include "../db/reader.h"
#include "../db/summary.h"
#include "brute.h"
#include "check.h"
#include "latentdb.h"

static const char *syn, *other, *scratch;
static char tokens_path[1024], acts_path[1024], dict_path[1024];

static uint32_t d_sae = 4096;

static ldb_db *open_db(const char *name, int create)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", scratch, name);
    ldb_db *db = NULL;
    uint32_t skip = 2;
    ldb_create_opts co;
    ldb_create_opts_init(&co);
    co.skip = &skip;
    co.n_skip = 1;
    co.format = getenv("LDB_TEST_FORMAT") ? atoi(getenv("LDB_TEST_FORMAT")) : 0; /* 3: the old one */
    int rc = create ? ldb_db_create(p, &co, &db) : ldb_db_open(p, LDB_OPEN_WRITE, &db);
    CHECK(rc == 0, "open %s: %s", p, ldb_db_errmsg(db));
    return db;
}

static int ingest(ldb_db *db, const char *dict, const char *tokens, const char *acts, int again,
                  uint64_t batch, void (*progress)(void *, uint64_t, uint64_t))
{
    const char *names[1] = {dict};
    ldb_ingest_opts o = {.size = sizeof(ldb_ingest_opts), .dicts = names, .n_dicts = 1, .tokens = tokens, .acts = acts,
                         .source = "synth", .again = again, .batch_tokens = batch,
                         .progress = progress};
    return ldb_ingest(db, &o);
}

static void digest(ldb_db *db, char out[65])
{
    ldb_check_report *r = calloc(1, sizeof *r);
    int rc = ldb_db_check(db, r);
    CHECK(rc == 0 && r->n_problems == 0, "check: rc %d, %llu problems: %s %s", rc,
          (unsigned long long)r->n_problems, r->problems, ldb_db_errmsg(db));
    memcpy(out, r->digest, 65);
    free(r);
}

typedef struct ref_top {
    uint64_t gpos;
    float v;
} ref_top;

static int cmp_ref(const void *a, const void *b)
{
    const ref_top *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->gpos < y->gpos ? -1 : x->gpos > y->gpos;
}

/* Positions of each latent (a counting sort of the brute-force codes). */
static uint64_t *lstart;
static uint32_t *lpos;

static void index_latents(void)
{
    lstart = calloc(d_sae + 1, sizeof *lstart);
    lpos = malloc((nnz ? nnz : 1) * sizeof *lpos);
    for (size_t i = 0; i < nnz; i++)
        lstart[plat[i] + 1]++;
    for (uint32_t j = 0; j < d_sae; j++)
        lstart[j + 1] += lstart[j];
    uint64_t *fill = malloc((d_sae + 1) * sizeof *fill);
    memcpy(fill, lstart, (d_sae + 1) * sizeof *fill);
    for (uint32_t p = 0; p < n_pos; p++)
        for (uint64_t i = pstart[p]; i < pstart[p + 1]; i++)
            lpos[fill[plat[i]]++] = p;
    free(fill);
}

/* Brute-force ranking of a latent: every (ordinary, unless special) firing position. */
static size_t ranking(uint32_t lat, int special, int distinct, ref_top *out)
{
    size_t n = 0;
    for (uint64_t i = lstart[lat]; i < lstart[lat + 1]; i++) {
        uint32_t p = lpos[i];
        if (!special && tok[p] == 2)
            continue;
        out[n].gpos = p;
        out[n++].v = value_at(p, lat);
    }
    qsort(out, n, sizeof *out, cmp_ref);
    if (distinct) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < m && out[j].gpos / ctx != out[i].gpos / ctx)
                j++;
            if (j == m)
                out[m++] = out[i];
        }
        n = m;
    }
    return n;
}

static void test_queries(ldb_db *db, const char *dict)
{
    /* counts, densities, dead latents: all latents */
    uint64_t *cnt = calloc(d_sae, sizeof *cnt), ord = 0;
    for (uint32_t p = 0; p < n_pos; p++) {
        if (tok[p] == 2)
            continue;
        ord++;
        for (uint64_t i = pstart[p]; i < pstart[p + 1]; i++)
            cnt[plat[i]]++;
    }
    ldb_density *d = NULL;
    int rc = ldb_query_density(db, dict, 20, &d);
    CHECK(rc == 0, "density: %s", ldb_db_errmsg(db));
    if (!rc) {
        uint32_t bad = 0, dead = 0, inbins = 0;
        for (uint32_t j = 0; j < d_sae; j++) {
            bad += d->counts[j] != cnt[j];
            dead += cnt[j] == 0;
        }
        for (uint32_t b = 0; b < d->nbins; b++)
            inbins += (uint32_t)d->bins[b].count;
        CHECK(bad == 0, "%u latent counts differ from brute force", bad);
        CHECK(d->n_tokens == ord, "ordinary positions %llu, brute force %llu",
              (unsigned long long)d->n_tokens, (unsigned long long)ord);
        CHECK(d->dead == dead && inbins == d_sae - dead, "dead %u (want %u), %u in bins", d->dead,
              dead, inbins);
    }
    ldb_density_free(d);
    /* latent stats and exact histograms: every 7th latent */
    ref_top *r = malloc(n_pos * sizeof *r);
    uint32_t bad_stats = 0, bad_hist = 0, bad_top = 0, bad_ctx = 0;
    for (uint32_t j = 0; j < d_sae; j += 7) {
        ldb_latent_info *l = NULL;
        if (ldb_query_latent(db, dict, j, 16, &l)) {
            bad_stats++;
            continue;
        }
        size_t n = ranking(j, 0, 0, r);
        double sum = 0, mx = 0;
        for (size_t i = 0; i < n; i++) {
            sum += r[i].v;
            mx = r[i].v > mx ? r[i].v : mx;
        }
        if (l->count != n || l->max != mx || fabs(l->mean - (n ? sum / n : 0)) > 1e-6 * (1 + mx) ||
            fabs(l->density - (double)n / ord) > 1e-12)
            bad_stats++;
        uint64_t h[16] = {0};
        for (size_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)(r[i].v / mx * 16);
            h[b < 16 ? b : 15]++;
        }
        for (int b = 0; b < 16; b++)
            bad_hist += l->hist[b].count != h[b];
        ldb_latent_info_free(l);
    }
    CHECK(bad_stats == 0, "%u latents with wrong count/max/mean/density", bad_stats);
    CHECK(bad_hist == 0, "%u histogram bins differ from brute force", bad_hist);
    /* top: candidates (k 20) with their stored contexts (radius <= 8) or the forward
     * index's (12), scan (k 150), distinct sequences, special positions, positions only
     * (from the candidates and from a scan) */
    static const struct { uint32_t k, context; int distinct, special, posonly; } modes[] = {
        {20, 8, 0, 0, 0}, {20, 12, 0, 0, 0}, {150, 3, 0, 0, 0}, {10, 8, 1, 0, 0},
        {20, 3, 0, 1, 0}, {20, 8, 0, 0, 1}, {150, 8, 1, 0, 1}};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        uint32_t cx = modes[m].context;
        bad_top = bad_ctx = 0;
        for (uint32_t j = 3; j < d_sae; j += 41) {
            ldb_top_opts o = {sizeof(ldb_top_opts), modes[m].k, cx, modes[m].distinct, modes[m].special,
                              modes[m].posonly};
            ldb_examples *ex = NULL;
            if (ldb_query_top(db, dict, j, &o, &ex)) {
                bad_top++;
                continue;
            }
            size_t n = ranking(j, modes[m].special, modes[m].distinct, r);
            if (n > modes[m].k)
                n = modes[m].k;
            if (ex->n != n)
                bad_top++;
            for (uint32_t i = 0; i < ex->n && i < n; i++) {
                const ldb_example *e = &ex->ex[i];
                uint64_t g = e->seq * ctx + e->pos;
                if (g != r[i].gpos || e->value != r[i].v)
                    bad_top++;
                for (uint32_t c = 0; c < e->ctx_len; c++) {
                    uint32_t p = (uint32_t)(e->seq * ctx + e->ctx_start + c);
                    if (e->tokens[c] != tok[p] || e->values[c] != value_at(p, j))
                        bad_ctx++;
                }
                uint32_t want_len = (e->pos + cx < ctx ? e->pos + cx + 1 : ctx) -
                                    (e->pos >= cx ? e->pos - cx : 0);
                if (modes[m].posonly)
                    want_len = 0;
                if (e->ctx_len != want_len || (!e->ctx_len && (e->tokens || e->values)))
                    bad_ctx++;
            }
            ldb_examples_free(ex);
        }
        CHECK(bad_top == 0, "top (k %u, distinct %d, special %d, positions only %d): %u examples "
              "differ from brute force", modes[m].k, modes[m].distinct, modes[m].special,
              modes[m].posonly, bad_top);
        CHECK(bad_ctx == 0, "top contexts (radius %u): %u tokens/values differ", cx, bad_ctx);
    }
    free(r);
    free(cnt);
}

/* The planted truth (planted.json): a token latent's top examples sit on its token,
 * a position latent's at its position, and dead latents never fire. This checks the
 * pipeline end to end against what the generator put in, not against its own output. */
static void test_planted(ldb_db *db, const char *dict)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/planted.json", syn);
    char *txt = NULL;
    size_t len;
    ldb_err e;
    CHECK(ldb_file_read_all(path, 1 << 26, &txt, &len, &e) == 0, "%s: %s", path, e.msg);
    cJSON *root = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    CHECK(root != NULL, "%s: not JSON", path);
    cJSON *lat = cJSON_GetObjectItem(root, "latents"), *it;
    unsigned n_token = 0, n_pos_lat = 0, n_dead = 0, bad = 0;
    cJSON_ArrayForEach(it, lat) {
        const char *fam = cJSON_GetStringValue(cJSON_GetObjectItem(it, "family"));
        uint32_t j = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "latent"));
        if (!fam)
            continue;
        if (!strcmp(fam, "dead")) {
            ldb_latent_info *l = NULL;
            if (ldb_query_latent(db, dict, j, 4, &l) || l->count != 0)
                bad++;
            ldb_latent_info_free(l);
            n_dead++;
            continue;
        }
        int is_tok = !strcmp(fam, "token"), is_pos = !strcmp(fam, "position");
        if (!is_tok && !is_pos)
            continue;
        uint32_t want = is_tok ? (uint32_t)cJSON_GetNumberValue(
                                     cJSON_GetArrayItem(cJSON_GetObjectItem(it, "tokens"), 0))
                               : (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "pos"));
        double occ = is_tok ? cJSON_GetNumberValue(cJSON_GetObjectItem(it, "occurrences")) : 400;
        if (occ < 40) /* too few occurrences to fill a top-10 */
            continue;
        ldb_top_opts o;
        ldb_top_opts_init(&o);
        o.k = 10;
        ldb_examples *ex = NULL;
        if (ldb_query_top(db, dict, j, &o, &ex) || ex->n != 10) {
            bad++;
        } else {
            for (uint32_t i = 0; i < ex->n; i++) {
                const ldb_example *x = &ex->ex[i];
                uint32_t got = is_tok ? tok[x->seq * ctx + x->pos] : x->pos;
                bad += got != want;
            }
        }
        ldb_examples_free(ex);
        n_token += is_tok;
        n_pos_lat += is_pos;
    }
    cJSON_Delete(root);
    CHECK(n_token >= 40 && n_pos_lat == 8 && n_dead == 40, "planted.json lists %u token, %u "
          "position, %u dead latents", n_token, n_pos_lat, n_dead);
    CHECK(bad == 0, "planted features: %u top examples off their token/position or dead latents "
          "firing", bad);
}

/* Latents firing (ordinary positions) in [p0, p1) of sequence-local positions:
 * marks set[] and returns how many distinct. */
static void units_of(uint32_t p0, uint32_t p1, uint32_t *stamp, uint32_t id, uint32_t *list,
                     uint32_t *n)
{
    *n = 0;
    for (uint32_t p = p0; p < p1; p++) {
        if (tok[p] == 2)
            continue;
        for (uint64_t i = pstart[p]; i < pstart[p + 1]; i++)
            if (stamp[plat[i]] != id) {
                stamp[plat[i]] = id;
                list[(*n)++] = plat[i];
            }
    }
}

typedef struct bitem {
    uint32_t lat;
    uint64_t both, other;
    double jac, npmi;
} bitem;

static int bitem_sort; /* LDB_SORT_*: cmp_bitem's key */

static int cmp_bitem(const void *a, const void *b)
{
    const bitem *x = a, *y = b;
    double kx = bitem_sort == LDB_SORT_COUNT ? (double)x->both : bitem_sort == LDB_SORT_NPMI ? x->npmi : x->jac;
    double ky = bitem_sort == LDB_SORT_COUNT ? (double)y->both : bitem_sort == LDB_SORT_NPMI ? y->npmi : y->jac;
    if (kx != ky)
        return kx > ky ? -1 : 1;
    if (x->both != y->both)
        return x->both > y->both ? -1 : 1;
    return x->lat < y->lat ? -1 : x->lat > y->lat;
}

/* Brute-force co-occurrence of latent L with every latent, scope 0 token, 1 window
 * (+-w), 2 sequence; compared with ldb_query_cooc's top 10 by jaccard. */
/* Brute-force co-occurrence of the latents Ls[0..nl) with every latent in one scope
 * (one pass over the units for all of them), compared with ldb_query_cooc's top k
 * in each order. Returns the number of differences. */
static int cooc_brute(ldb_db *db, const uint32_t *Ls, uint32_t nl, int scope, uint32_t w)
{
    static const uint32_t ks[] = {10, 1, 50};
    uint64_t *both = calloc((size_t)nl * d_sae, 8), *other = calloc(d_sae, 8), units = 0;
    uint64_t *cl = calloc(nl, 8);
    uint32_t *stamp = calloc(d_sae, 4), *list = malloc(d_sae * 4), n, id = 0;
    for (uint32_t s = 0; s < n_pos / ctx; s++) {
        uint32_t b0 = s * ctx, b1 = b0 + ctx;
        for (uint32_t c = b0; c < b1; c++) {
            uint32_t lo, hi;
            if (scope == 2) { /* the whole sequence is one unit */
                if (c > b0)
                    break;
                lo = b0, hi = b1;
            } else {
                if (tok[c] == 2)
                    continue;
                lo = scope ? (c >= b0 + w ? c - w : b0) : c;
                hi = scope ? (c + w + 1 < b1 ? c + w + 1 : b1) : c + 1;
            }
            units++;
            units_of(lo, hi, stamp, ++id, list, &n);
            for (uint32_t i = 0; i < n; i++)
                other[list[i]]++;
            for (uint32_t q = 0; q < nl; q++) {
                if (stamp[Ls[q]] != id)
                    continue;
                cl[q]++;
                for (uint32_t i = 0; i < n; i++)
                    both[(size_t)q * d_sae + list[i]]++;
            }
        }
    }
    bitem *it = malloc(d_sae * sizeof *it);
    int bad = 0;
    for (uint32_t q = 0; q < nl; q++) {
        uint32_t m = 0, L = Ls[q];
        const uint64_t *bq = both + (size_t)q * d_sae;
        for (uint32_t j = 0; j < d_sae; j++) {
            if (!bq[j] || j == L)
                continue;
            double ab = (double)bq[j], a = (double)cl[q], b = (double)other[j], u = (double)units;
            it[m].lat = j;
            it[m].both = bq[j];
            it[m].other = other[j];
            it[m].jac = ab / (a + b - ab);
            it[m++].npmi = ab >= u ? 1 : log((ab / u) / ((a / u) * (b / u))) / -log(ab / u);
        }
        for (int sort = 0; sort < 3; sort++) {
            uint32_t k = ks[sort];
            bitem_sort = sort;
            qsort(it, m, sizeof *it, cmp_bitem);
            ldb_cooc *c = NULL;
            if (ldb_query_cooc(db, "a", L, NULL, k, scope, w, sort, &c)) {
                bad += 1000;
            } else {
                bad += c->count != cl[q] || c->units != units;
                bad += c->n != (m < k ? m : k);
                for (uint32_t i = 0; i < c->n && i < m; i++)
                    bad += c->items[i].latent != it[i].lat || c->items[i].count != it[i].both ||
                           c->items[i].count_other != it[i].other ||
                           fabs(c->items[i].jaccard - it[i].jac) > 1e-12 ||
                           fabs(c->items[i].npmi - it[i].npmi) > 1e-9;
            }
            ldb_cooc_free(c);
        }
    }
    free(both);
    free(other);
    free(cl);
    free(stamp);
    free(list);
    free(it);
    return bad;
}

/* Every way of reading a position agrees with the whole-block decode: ldb_fwd_at
 * (ids, then values; values at once), ldb_fwd_value of each code and of latents
 * that do not fire there, and ldb_fwd_values of one latent over all positions of
 * the dictionary (its codes where it fires, 0 elsewhere), in each block of "a". */
static void test_fwd_reads(ldb_db *db)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    const ldb_dbdict *dd = &db->dict[0];
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0 &&
          mdb_cursor_open(txn, dd->fwd, &cur) == 0, "fwd cursor");
    ldb_fblock fb = {0};
    ldb_fpos fp = {0}, fq = {0}, fr = {0};
    uint64_t bad = 0, reads = 0, *gp = NULL;
    float *vals = NULL;
    size_t ng = 0, cap = 0;
    uint32_t probe = 0; /* the first latent of the first position with codes */
    for (uint32_t p = 0; p < n_pos; p++)
        if (pstart[p + 1] > pstart[p]) {
            probe = plat[pstart[p]];
            break;
        }
    int blocks = 0;
    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), blocks++) {
        uint64_t start = ldb_rd_be64(k.mv_data);
        if (ldb_fwd_decode(db, dd, start, v.mv_data, v.mv_size, 1, &fb)) {
            bad++;
            break;
        }
        for (uint32_t i = 0; i < fb.n; i++) {
            uint64_t g = start + i, a = fb.off[i], c = fb.off[i + 1] - a;
            int ok = ldb_fwd_at(db, txn, dd, g, 0, &fp) == 0 && fp.cnt == c &&
                     !memcmp(fp.lat, fb.lat + a, c * 4) &&
                     ldb_fwd_at(db, txn, dd, g, 1, &fp) == 0 && fp.cnt == c &&
                     !memcmp(fp.lat, fb.lat + a, c * 4) && !memcmp(fp.bits, fb.bits + a, c * 4) &&
                     ldb_fwd_at(db, txn, dd, g, 1, &fq) == 0 && fq.cnt == c &&
                     !memcmp(fq.bits, fb.bits + a, c * 4);
            for (uint64_t e = a; e < a + c && ok; e++) {
                float x, y;
                ok = ldb_fwd_value(db, txn, dd, g, fb.lat[e], &fr, &x) == 0 &&
                     x == ldb_val_float(fb.bits[e], db->values) &&
                     (e + 1 < a + c && fb.lat[e + 1] == fb.lat[e] + 1 ? 1
                      : ldb_fwd_value(db, txn, dd, g, fb.lat[e] + 1, &fr, &y) == 0 && y == 0);
                reads++;
            }
            bad += !ok;
            if (ldb_wgrow((void **)&gp, &cap, ng + 1, sizeof *gp))
                abort();
            gp[ng++] = g;
        }
    }
    mdb_cursor_close(cur);
    CHECK(blocks > 1 && bad == 0, "every position of %d blocks read alone as the block decodes "
          "(%llu differ; %llu codes read by value)", blocks, (unsigned long long)bad,
          (unsigned long long)reads);
    /* one latent at every position, in one call */
    vals = malloc(ng * sizeof *vals);
    CHECK(vals && ldb_fwd_values(db, txn, dd, gp, ng, probe, &fq, vals) == 0, "fwd_values: %s",
          ldb_db_errmsg(db));
    uint64_t differ = 0, fired = 0;
    for (size_t i = 0; vals && i < ng; i++) {
        float want = 0;
        if (ldb_fwd_value(db, txn, dd, gp[i], probe, &fr, &want) != 0)
            differ++;
        differ += vals[i] != want;
        fired += want > 0;
    }
    CHECK(fired > 0 && differ == 0, "fwd_values of latent %u at %zu positions: %llu differ from "
          "fwd_value (%llu fire)", probe, ng, (unsigned long long)differ, (unsigned long long)fired);
    free(vals);
    free(gp);
    ldb_fblock_free(&fb);
    ldb_fpos_free(&fp);
    ldb_fpos_free(&fq);
    ldb_fpos_free(&fr);
    mdb_txn_abort(txn);
}

/* ldb_query_l0 against the brute-force codes (skip token 2 left out), and
 * ldb_query_sources: one source holding every sequence and token. */
static void test_l0_sources(ldb_db *db)
{
    uint64_t *want = calloc(d_sae + 1, sizeof *want), n = 0;
    for (uint32_t p = 0; p < n_pos; p++)
        if (tok[p] != 2) {
            want[pstart[p + 1] - pstart[p]]++;
            n++;
        }
    ldb_l0 *l = NULL;
    int rc = ldb_query_l0(db, "a", &l);
    int same = rc == 0 && l->n_positions == n && l->max_l0 <= d_sae;
    for (uint32_t i = 0; same && i <= d_sae; i++)
        same = want[i] == (i <= l->max_l0 ? l->counts[i] : 0);
    CHECK(same, "l0: the distribution over %llu ordinary positions is the brute force's: %s",
          (unsigned long long)n, rc ? ldb_db_errmsg(db) : "");
    ldb_l0_free(l);
    free(want);
    CHECK(ldb_query_l0(db, "nodict", &l) == LDB_ENOTFOUND && !l, "l0 of a missing dictionary");
    ldb_sources *s = NULL;
    rc = ldb_query_sources(db, &s);
    CHECK(rc == 0 && s->n == 1 && s->src[0].n_seq == n_pos / ctx && s->src[0].n_tokens == n_pos &&
          !strcmp(s->src[0].label, "synth"), "sources: one, with every sequence: %s",
          rc ? ldb_db_errmsg(db) : s->n ? s->src[0].label : "none");
    ldb_sources_free(s);
}

static void test_cooc(ldb_db *db)
{
    static const char *names[] = {"token", "window:2", "seq"};
    uint32_t Ls[16], nl = 0;
    for (uint32_t L = 11; L < d_sae && nl < 16; L += 397)
        Ls[nl++] = L;
    for (int scope = 0; scope < 3; scope++) {
        int bad = cooc_brute(db, Ls, nl, scope, 2);
        CHECK(bad == 0, "cooc scope %s: %d differences from brute force", names[scope], bad);
    }
    int bad = cooc_brute(db, Ls, nl, LDB_COOC_WINDOW, 7);
    CHECK(bad == 0, "cooc scope window:7: %d differences from brute force", bad);
    /* across dictionaries: b holds the same codes, so L's twin in b comes first */
    ldb_cooc *c = NULL;
    int rc = ldb_query_cooc(db, "a", 1495, "b", 5, LDB_COOC_TOKEN, 0, LDB_SORT_JACCARD, &c);
    CHECK(rc == 0 && c->n > 0 && c->items[0].latent == 1495 && c->items[0].jaccard == 1.0 &&
          c->items[0].count == c->count, "cooc --with b: its twin first with jaccard 1: %s",
          ldb_db_errmsg(db));
    ldb_cooc_free(c);
}

static void test_samples(ldb_db *db)
{
    ref_top *r = malloc(n_pos * sizeof *r);
    int bad = 0;
    for (uint32_t j = 5; j < d_sae; j += 211) {
        size_t n = ranking(j, 0, 0, r);
        for (int by = 0; by < 2; by++) {
            ldb_samples *s = NULL;
            if (ldb_query_samples(db, "a", j, 5, 3, by, 7, 2, &s)) {
                bad += 100;
                continue;
            }
            uint64_t total = 0;
            double mx = n ? r[0].v : 0;
            for (uint32_t g = 0; g < s->n; g++) {
                const ldb_sample_group *gr = &s->groups[g];
                total += gr->count;
                if (by == 0 && (gr->count < n / 5 || gr->count > n / 5 + 1))
                    bad++;
                if (by == 1) { /* equal-width bins over [0, max] */
                    uint64_t want = 0;
                    for (size_t i = 0; i < n; i++) {
                        uint32_t b = (uint32_t)(r[i].v / mx * 5);
                        want += (b < 5 ? b : 4) == g;
                    }
                    bad += gr->count != want;
                }
                bad += gr->ex.n != (gr->count < 3 ? gr->count : 3);
                for (uint32_t i = 0; i < gr->ex.n; i++) {
                    const ldb_example *e = &gr->ex.ex[i];
                    uint32_t p = (uint32_t)(e->seq * ctx + e->pos);
                    bad += e->value != value_at(p, j) || e->value < gr->lo || e->value > gr->hi ||
                           tok[p] == 2;
                    for (uint32_t q = 0; q < i; q++)
                        bad += gr->ex.ex[q].seq == e->seq && gr->ex.ex[q].pos == e->pos;
                }
                if (g && gr->count && s->groups[g - 1].count)
                    bad += gr->lo < s->groups[g - 1].hi - 1e-9 && by == 1;
            }
            bad += total != n;
            ldb_samples_free(s);
        }
    }
    free(r);
    CHECK(bad == 0, "samples: %d malformed groups or examples", bad);
}

static void test_seq(ldb_db *db)
{
    int bad = 0;
    for (uint64_t sq = 0; sq < n_pos / ctx; sq += 97) {
        ldb_seqview *v = NULL;
        if (ldb_query_seq(db, sq, "a", 3, &v)) {
            bad += 1000;
            continue;
        }
        bad += v->len != ctx;
        for (uint32_t p = 0; p < ctx && v->len == ctx; p++) {
            uint32_t g = (uint32_t)(sq * ctx + p);
            bad += v->tokens[p] != tok[g];
            /* brute-force top 3 of the position */
            bitem t[3];
            uint32_t nt = 0;
            for (uint64_t i = pstart[g]; i < pstart[g + 1]; i++) {
                bitem x = {plat[i], 0, 0, pval[i], 0};
                uint32_t at = nt < 3 ? nt++ : 3;
                while (at > 0 && (t[at - 1].jac < x.jac ||
                                  (t[at - 1].jac == x.jac && t[at - 1].lat > x.lat))) {
                    if (at < 3)
                        t[at] = t[at - 1];
                    at--;
                }
                if (at < 3)
                    t[at] = x;
            }
            bad += v->start[p + 1] - v->start[p] != nt;
            for (uint32_t i = 0; i < nt && v->start[p] + i < v->start[p + 1]; i++)
                bad += v->lat[v->start[p] + i].latent != t[i].lat ||
                       v->lat[v->start[p] + i].value != (float)t[i].jac;
        }
        ldb_seqview_free(v);
    }
    CHECK(bad == 0, "seq: %d differences from brute force", bad);
}

/* Labels reach queries and the SQLite catalog, where SQL users read them. */
static void test_label(ldb_db *db)
{
    CHECK(ldb_db_label(db, "a", 1495, "commas and such") == 0, "label: %s", ldb_db_errmsg(db));
    ldb_latent_info *l = NULL;
    CHECK(ldb_query_latent(db, "a", 1495, 4, &l) == 0 && l->label &&
          !strcmp(l->label, "commas and such"), "label read back");
    char p[1200];
    snprintf(p, sizeof p, "%s/main/catalog.sqlite", scratch);
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open(p, &s) == SQLITE_OK &&
             sqlite3_prepare_v2(s, "SELECT count, label FROM latents WHERE dict='a' AND latent=1495",
                                -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
             l && (uint64_t)sqlite3_column_int64(st, 0) == l->count &&
             !strcmp((const char *)sqlite3_column_text(st, 1), "commas and such");
    CHECK(ok, "catalog.sqlite mirrors the count and label of latent 1495");
    sqlite3_finalize(st);
    sqlite3_close(s);
    ldb_latent_info_free(l);
}

/* Codes written as a scipy CSR .npz (by python3-scipy) and imported give the same
 * DB as the ingest that encoded them. */
static void test_import(const char *want_digest)
{
    char dir[1200], cmd[6144];
    snprintf(dir, sizeof dir, "%s/csr", scratch);
    char p1[1300], p2[1300], p3[1300], npz[1300];
    snprintf(p1, sizeof p1, "%s.indptr", dir);
    snprintf(p2, sizeof p2, "%s.indices", dir);
    snprintf(p3, sizeof p3, "%s.data", dir);
    snprintf(npz, sizeof npz, "%s.npz", dir);
    FILE *f = fopen(p1, "wb");
    fwrite(pstart, 8, n_pos + 1, f);
    fclose(f);
    f = fopen(p2, "wb");
    fwrite(plat, 4, nnz, f);
    fclose(f);
    f = fopen(p3, "wb");
    fwrite(pval, 4, nnz, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import numpy as np, scipy.sparse as sp; "
             "m = sp.csr_matrix((np.fromfile('%s', '<f4'), np.fromfile('%s', '<u4').astype('<i4'), "
             "np.fromfile('%s', '<u8').astype('<i8')), shape=(%u, %u)); sp.save_npz('%s', m)\"",
             p3, p2, p1, n_pos, d_sae, npz);
    int st = system(cmd);
    CHECK(st == 0, "python3-scipy wrote the CSR codes (%s)", cmd);
    ldb_db *db = open_db("imported", 1);
    CHECK(ldb_db_dict_add(db, "a", dict_path) == 0, "dict add: %s", ldb_db_errmsg(db));
    const char *names[] = {"a"};
    ldb_ingest_opts o = {.size = sizeof(ldb_ingest_opts), .dicts = names, .n_dicts = 1, .tokens = tokens_path, .codes = npz,
                         .source = "synth"};
    int rc = ldb_ingest(db, &o);
    CHECK(rc == 0, "import: %s", ldb_db_errmsg(db));
    char d[65];
    digest(db, d);
    CHECK(!strcmp(d, want_digest), "imported digest %s differs from the ingested %s", d,
          want_digest);
    ldb_db_close(db);
}

static void info_counts(ldb_db *db, uint64_t *n_seq, uint64_t *n_tok)
{
    ldb_info *i = NULL;
    CHECK(ldb_query_info(db, &i) == 0, "info: %s", ldb_db_errmsg(db));
    *n_seq = i ? i->n_seq : 0;
    *n_tok = i ? i->n_tokens : 0;
    ldb_info_free(i);
}

static int kill_after;
static void killer(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx, (void)done, (void)total;
    if (--kill_after == 0)
        raise(SIGKILL);
}

/* An ingest killed after its 3rd batch, then run again, ends as an uninterrupted one. */
static void test_resume(const char *want_digest)
{
    pid_t pid = fork();
    if (pid == 0) {
        ldb_db *db = open_db("killed", 1);
        ldb_db_dict_add(db, "a", dict_path);
        kill_after = 3;
        ingest(db, "a", tokens_path, acts_path, 0, 8192, killer);
        _exit(3); /* not reached: killed */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was killed (status %d)", st);
    ldb_db *db = open_db("killed", 0);
    uint64_t ns, nt;
    info_counts(db, &ns, &nt);
    CHECK(ns == 3 * 8192 / ctx, "3 batches committed before the kill: %llu sequences",
          (unsigned long long)ns);
    /* a reader holds a snapshot while the resumed ingest commits batches */
    MDB_txn *snap = NULL;
    uint64_t before = 0, during = 0, after = 0;
    mdb_txn_begin(db->env, NULL, MDB_RDONLY, &snap);
    ldb_db_meta_u64(db, snap, "n_seq", &before);
    int rc = ingest(db, "a", tokens_path, acts_path, 0, 8192, NULL);
    CHECK(rc == 0, "resume: %s", ldb_db_errmsg(db));
    ldb_db_meta_u64(db, snap, "n_seq", &during);
    mdb_txn_abort(snap);
    info_counts(db, &after, &nt);
    CHECK(before == ns && during == ns && after == n_pos / ctx, "snapshot saw %llu then %llu; "
          "now %llu", (unsigned long long)before, (unsigned long long)during,
          (unsigned long long)after);
    char d[65];
    digest(db, d);
    CHECK(!strcmp(d, want_digest), "resumed digest %s differs from the uninterrupted %s", d,
          want_digest);
    rc = ingest(db, "a", tokens_path, acts_path, 0, 8192, NULL);
    CHECK(rc == LDB_EINVAL && strstr(ldb_db_errmsg(db), "--again"), "a finished run is refused: %s",
          ldb_db_errmsg(db));
    ldb_db_close(db);
}

static void write_npy_i32(const char *path, const int32_t *v, uint32_t rows, uint32_t cols)
{
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<i4', 'fortran_order': False, 'shape': (%u, %u), }",
                     rows, cols);
    FILE *f = fopen(path, "wb");
    uint16_t hl = 128 - 10; /* header padded to 128 bytes */
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hl, 2, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = n; i < hl - 1; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(v, 4, (size_t)rows * cols, f);
    fclose(f);
}

/* Bad inputs: a clear error naming the file, and the DB exactly as it was. */
static void test_bad_inputs(ldb_db *db)
{
    char before[65], after[65], p[1200], q[1200];
    digest(db, before);
    snprintf(p, sizeof p, "%s/short_tokens.npy", scratch);
    write_npy_i32(p, (const int32_t *)tok, 10, ctx);
    int rc = ingest(db, "a", p, acts_path, 1, 0, NULL);
    CHECK(rc != 0 && strstr(ldb_db_errmsg(db), "same positions"), "tokens/acts mismatch: %s",
          ldb_db_errmsg(db));
    rc = ingest(db, "nope", tokens_path, acts_path, 1, 0, NULL);
    CHECK(rc == LDB_ENOTFOUND && strstr(ldb_db_errmsg(db), "'nope'"), "unknown dict: %s",
          ldb_db_errmsg(db));
    rc = ldb_db_dict_add(db, "wide", other);
    CHECK(rc == 0, "dict add %s: %s", other, ldb_db_errmsg(db));
    digest(db, before); /* adding a dictionary changes the digest */
    rc = ingest(db, "wide", tokens_path, acts_path, 1, 0, NULL);
    CHECK(rc != 0 && strstr(ldb_db_errmsg(db), "d_in"), "d_in mismatch: %s", ldb_db_errmsg(db));
    snprintf(q, sizeof q, "%s/truncated.npy", scratch);
    ldb_mfile f;
    ldb_err e = {{0}};
    if (!ldb_mfile_open(&f, acts_path, &e)) {
        FILE *o = fopen(q, "wb");
        fwrite(f.data, 1, f.size / 2, o);
        fclose(o);
        ldb_mfile_close(&f);
    }
    rc = ingest(db, "a", tokens_path, q, 1, 0, NULL);
    CHECK(rc != 0 && strstr(ldb_db_errmsg(db), "truncated.npy: truncated"), "truncated: %s",
          ldb_db_errmsg(db));
    digest(db, after);
    CHECK(!strcmp(before, after), "bad inputs changed the DB");
}

/* Phase timings on stderr, kept in the test log: where the suite's time goes. */
static void phase(const char *name)
{
    static struct timespec t0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t0.tv_sec)
        fprintf(stderr, "test_store: %-14s %.1f s\n", name,
                (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec));
    t0 = t;
}

/* A flipped bit in a forward block is caught by check's CRC-32, and the DB is clean
 * again once the byte is restored. */
static void test_corrupt(ldb_db *db)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    mdb_cursor_open(txn, db->dict[0].fwd, &cur);
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    CHECK(rc == 0 && v.mv_size > 64, "a forward block");
    uint8_t key[8], *orig = malloc(v.mv_size);
    memcpy(key, k.mv_data, 8);
    memcpy(orig, v.mv_data, v.mv_size);
    size_t n = v.mv_size, at = n - 40; /* inside the value stream */
    uint8_t *bad = malloc(n);
    memcpy(bad, orig, n);
    bad[at] ^= 0x10;
    MDB_val kb = {8, key}, vb = {n, bad};
    mdb_cursor_close(cur);
    CHECK(mdb_put(txn, db->dict[0].fwd, &kb, &vb, 0) == 0 && mdb_txn_commit(txn) == 0, "flip");
    ldb_check_report *r = calloc(1, sizeof *r);
    rc = ldb_db_check(db, r);
    CHECK(rc == 0 && r->n_problems >= 1 && strstr(r->problems, "CRC-32"),
          "check catches a flipped bit in a forward block: rc %d, %llu problems: %s", rc,
          (unsigned long long)r->n_problems, r->problems);
    free(r);
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    MDB_val vo = {n, orig};
    CHECK(mdb_put(txn, db->dict[0].fwd, &kb, &vo, 0) == 0 && mdb_txn_commit(txn) == 0, "restore");
    char d[65];
    digest(db, d);
    free(orig);
    free(bad);
}

/* A forward block whose position count is raised (1024 -> 16000 made search and
 * cooc segfault, issue 20 finding 1), its CRC made right again, and a second block
 * failing its CRC: cooc and search fail with a message naming the table and the
 * key, and check lists both blocks and goes on. */
static void test_corrupt_blocks(ldb_db *db)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t key[2][8], *orig[2];
    size_t on[2];
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0 &&
          mdb_cursor_open(txn, db->dict[0].fwd, &cur) == 0, "fwd cursor");
    for (int i = 0; i < 2; i++) {
        CHECK(mdb_cursor_get(cur, &k, &v, i ? MDB_NEXT : MDB_FIRST) == 0, "block %d", i);
        memcpy(key[i], k.mv_data, 8);
        orig[i] = malloc(v.mv_size);
        memcpy(orig[i], v.mv_data, v.mv_size);
        on[i] = v.mv_size;
    }
    mdb_cursor_close(cur);
    /* a latent firing in block 0, and the token at one of its positions */
    ldb_fblock fb = {0};
    CHECK(ldb_fwd_decode(db, &db->dict[0], ldb_rd_be64(key[0]), orig[0], on[0], 0, &fb) == 0,
          "block 0 decodes");
    uint32_t latent = UINT32_MAX, at = 0;
    for (uint32_t i = 0; i < fb.n && latent == UINT32_MAX; i++)
        if (fb.off[i + 1] > fb.off[i] && i > 0) {
            latent = fb.lat[fb.off[i]];
            at = i;
        }
    ldb_fblock_free(&fb);
    ldb_seqrec s;
    CHECK(latent != UINT32_MAX && ldb_db_seq_at(db, txn, ldb_rd_be64(key[0]) + at, &s) == 0,
          "a firing position in block 0");
    mdb_txn_abort(txn);
    uint32_t tok = 0, got = 0;
    CHECK(ldb_seq_tokens(db, s.seq, (uint32_t)(ldb_rd_be64(key[0]) + at - s.start), 1, &tok,
                         &got) == 0 && got == 1, "its token");
    /* block 0: n (the varint after part A's codec byte) x 16, lengths and CRC redone */
    const uint8_t *q = orig[0] + 5;
    uint64_t np = 0;
    CHECK(ldb_varint_get(&q, orig[0] + on[0], &np) == 0, "its position count");
    size_t old_len = (size_t)(q - (orig[0] + 5));
    uint8_t *bad0 = malloc(on[0] + 16), vb[10];
    size_t nl = ldb_varint_put(vb, np * 16), n0 = on[0] - old_len + nl;
    memcpy(bad0, orig[0], 5);
    memcpy(bad0 + 5, vb, nl);
    memcpy(bad0 + 5 + nl, q, on[0] - 5 - old_len);
    uint32_t alen;
    memcpy(&alen, bad0, 4);
    alen = (uint32_t)(alen - old_len + nl);
    memcpy(bad0, &alen, 4);
    uint32_t crc = ldb_crc32(bad0, n0 - 4);
    memcpy(bad0 + n0 - 4, &crc, 4);
    uint8_t *bad1 = malloc(on[1]);
    memcpy(bad1, orig[1], on[1]);
    bad1[on[1] - 1] ^= 0x01; /* the CRC itself */
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    MDB_val k0 = {8, key[0]}, v0 = {n0, bad0}, k1 = {8, key[1]}, v1 = {on[1], bad1};
    CHECK(mdb_put(txn, db->dict[0].fwd, &k0, &v0, 0) == 0 &&
          mdb_put(txn, db->dict[0].fwd, &k1, &v1, 0) == 0 && mdb_txn_commit(txn) == 0, "damage");
    ldb_cooc *co = NULL;
    /* (token scope and an unstored window read the blocks at the latent's positions;
     * format 6's seq scope reads the sequences' lseq records instead) */
    int rc = ldb_query_cooc(db, "a", latent, NULL, 20, LDB_COOC_TOKEN, 0, LDB_SORT_JACCARD, &co);
    CHECK(rc == LDB_EFORMAT && strstr(ldb_db_errmsg(db), "table fwd:0"),
          "cooc on a damaged block fails naming it: rc %d: %s", rc, ldb_db_errmsg(db));
    ldb_cooc_free(co);
    co = NULL;
    rc = ldb_query_cooc(db, "a", latent, NULL, 20, LDB_COOC_WINDOW, 7, LDB_SORT_JACCARD, &co);
    CHECK(rc == LDB_EFORMAT && strstr(ldb_db_errmsg(db), "table fwd:0"),
          "cooc window:7 on a damaged block fails naming it: rc %d: %s", rc, ldb_db_errmsg(db));
    ldb_cooc_free(co);
    ldb_search *se = NULL;
    rc = ldb_query_search(db, "a", &tok, 1, 0, 10, &se);
    CHECK(rc == LDB_EFORMAT && strstr(ldb_db_errmsg(db), "table fwd:0"),
          "search over a damaged block fails naming it: rc %d: %s", rc, ldb_db_errmsg(db));
    ldb_search_free(se);
    ldb_check_report *r = calloc(1, sizeof *r);
    rc = ldb_db_check(db, r);
    char w0[64], w1[64];
    snprintf(w0, sizeof w0, "at position %llu", (unsigned long long)ldb_rd_be64(key[0]));
    snprintf(w1, sizeof w1, "at %llu fails its CRC-32", (unsigned long long)ldb_rd_be64(key[1]));
    CHECK(rc == 0 && r->n_problems >= 2 && strstr(r->problems, w0) && strstr(r->problems, w1),
          "check lists both damaged blocks and goes on: rc %d, %llu problems: %s", rc,
          (unsigned long long)r->n_problems, r->problems);
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    v0 = (MDB_val){on[0], orig[0]};
    v1 = (MDB_val){on[1], orig[1]};
    CHECK(mdb_put(txn, db->dict[0].fwd, &k0, &v0, 0) == 0 &&
          mdb_put(txn, db->dict[0].fwd, &k1, &v1, 0) == 0 && mdb_txn_commit(txn) == 0, "restore");
    CHECK(ldb_db_check(db, r) == 0 && r->n_problems == 0, "clean again: %s", r->problems);
    free(r);
    free(bad0);
    free(bad1);
    free(orig[0]);
    free(orig[1]);
}

/* Replaces the record key -> (bytes, n) of dbi, runs check, expects a problem
 * containing want, and restores the record (the callers check once, after their
 * last restore, that the DB is clean again: each check reads the whole store). */
static void tamper(ldb_db *db, MDB_dbi dbi, const uint8_t *key, size_t klen, const uint8_t *bytes,
                   size_t n, const char *want)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v;
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0 && mdb_get(txn, dbi, &k, &v) == 0,
          "the record to tamper with");
    uint8_t *orig = malloc(v.mv_size);
    size_t on = v.mv_size;
    memcpy(orig, v.mv_data, on);
    MDB_val vb = {n, (void *)bytes};
    CHECK(mdb_put(txn, dbi, &k, &vb, 0) == 0 && mdb_txn_commit(txn) == 0, "tamper");
    ldb_check_report *r = calloc(1, sizeof *r);
    int rc = ldb_db_check(db, r);
    CHECK(rc == 0 && r->n_problems >= 1 && strstr(r->problems, want),
          "check reports '%s': rc %d, %llu problems: %s", want, rc,
          (unsigned long long)r->n_problems, r->problems);
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    MDB_val vo = {on, orig};
    CHECK(mdb_put(txn, dbi, &k, &vo, 0) == 0 && mdb_txn_commit(txn) == 0, "restore");
    free(r);
    free(orig);
}

/* After the last restore: check finds nothing. */
static void clean_again(ldb_db *db, const char *after)
{
    ldb_check_report *r = calloc(1, sizeof *r);
    int rc = ldb_db_check(db, r);
    CHECK(rc == 0 && r->n_problems == 0, "clean again after %s: %s", after, r->problems);
    free(r);
}

/* Summaries and top lists that disagree with the codes are caught: a max, a count
 * of sequences, a histogram count, a top list missing its best candidate. */
static void test_tamper_summaries(ldb_db *db)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t key[6], top[16384];
    size_t tn = 0;
    ldb_lsum s = {0};
    int fmt = db->format, kind = db->values;
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0, "read txn");
    mdb_cursor_open(txn, db->lsum, &cur);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (ldb_lsum_decode(v.mv_data, v.mv_size, fmt, &s) == 0 && s.count >= 200 && s.nh > 3) {
            memcpy(key, k.mv_data, 6);
            break;
        }
        ldb_lsum_free(&s);
        s.count = 0;
    }
    mdb_cursor_close(cur);
    MDB_val tk = {6, key};
    if (s.count && mdb_get(txn, db->ltop, &tk, &v) == 0 && v.mv_size <= sizeof top) {
        memcpy(top, v.mv_data, v.mv_size);
        tn = v.mv_size;
    }
    mdb_txn_abort(txn);
    CHECK(s.count >= 200 && tn > 0, "a latent with 200 codes, its summary and its top list");
    if (!s.count || !tn)
        return;
    /* each field of the summary changed, re-encoded in the DB's format */
    ldb_buf b = {0};
    ldb_lsum t = s;
    t.max *= 1.5f;
    CHECK(ldb_lsum_encode(&t, fmt, &b) == 0, "encode");
    tamper(db, db->lsum, key, 6, b.data, b.len, "the max, sum or sum of squares");
    t = s;
    t.nseq++;
    b.len = 0;
    CHECK(ldb_lsum_encode(&t, fmt, &b) == 0, "encode");
    tamper(db, db->lsum, key, 6, b.data, b.len, "its summary says");
    for (uint32_t i = 0; i < s.nh; i++) /* every key moves by one */
        s.hk[i]++;
    b.len = 0;
    CHECK(ldb_lsum_encode(&s, fmt, &b) == 0, "encode");
    tamper(db, db->lsum, key, 6, b.data, b.len, "value histogram");
    for (uint32_t i = 0; i < s.nh; i++)
        s.hk[i]--;
    s.hc[s.nh - 1]++; /* the last count: no longer the summary's total */
    b.len = 0;
    CHECK(ldb_lsum_encode(&s, fmt, &b) == 0, "encode");
    tamper(db, db->lsum, key, 6, b.data, b.len, "is corrupt");
    ldb_lsum_free(&s);
    ldb_cand c[LDB_TOPK];
    ldb_tctx x[LDB_TOPK];
    int nt = ldb_top_decode(top, tn, fmt, kind, c, x, LDB_TOPK);
    b.len = 0;
    CHECK(nt > 1 && ldb_top_encode(c + 1, x + 1, nt - 1, fmt, kind, &b) == 0, "a shorter top list");
    tamper(db, db->ltop, key, 6, b.data, b.len, "is not the top of the forward index");
    b.len = 0;
    c[nt / 2].gpos++; /* a candidate that is not a code there (or not with its value) */
    CHECK(ldb_top_encode(c, x, nt, fmt, kind, &b) == 0, "a moved candidate");
    tamper(db, db->ltop, key, 6, b.data, b.len, "top");
    c[nt / 2].gpos--;
    CHECK(nt > 60, "a top list of more than 60 candidates (%d)", nt);
    /* a context past the first ten candidates (check verified only those): the 51st
     * candidate's context gains a firing where the latent is silent, or (format 3,
     * which stores it) its sequence moves by one */
    for (int t = 50; t < nt; t++) {
        int bit = -1;
        uint32_t pos = x[t].pos, len = x[t].len;
        if (!len) { /* format 4: where it lies, from the sequences */
            ldb_seqrec sr;
            CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0 &&
                  ldb_db_seq_at(db, txn, c[t].gpos, &sr) == 0, "the candidate's sequence");
            mdb_txn_abort(txn);
            pos = (uint32_t)(c[t].gpos - sr.start);
            len = sr.len;
        }
        for (int j = 0; j < 16 && bit < 0; j++)
            if (!(x[t].mask >> j & 1) && pos + (j < 8 ? j - 8 : j - 7) < len &&
                (j >= 8 || pos >= (uint32_t)(8 - j)))
                bit = j;
        if (bit < 0)
            continue;
        ldb_tctx y[LDB_TOPK];
        memcpy(y, x, sizeof y);
        y[t].mask |= (uint16_t)(1u << bit);
        y[t].bits[bit] = ldb_val_bits(1.0f, db->values);
        b.len = 0;
        CHECK(ldb_top_encode(c, y, nt, fmt, kind, &b) == 0, "a top list with a wrong context");
        tamper(db, db->ltop, key, 6, b.data, b.len, "context stored with its top example");
        if (fmt >= 4)
            break; /* no sequence stored */
        memcpy(y, x, sizeof y);
        y[t].seq++;
        b.len = 0;
        CHECK(ldb_top_encode(c, y, nt, fmt, kind, &b) == 0, "a top list with a wrong sequence");
        tamper(db, db->ltop, key, 6, b.data, b.len, "context stored with its top example");
        break;
    }
    ldb_buf_free(&b);
    clean_again(db, "the summaries and top lists were restored");
}

/* The records check did not verify before 2026-12 (issue 20, finding 4): the
 * dictionary's statistics (every density was 2x off after an edit, with the digest
 * the reference's), the meta counters, the coverage, the sequence lookups and the
 * token index; each edited and reported. */
static void test_tamper_derived(ldb_db *db)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint8_t key[16], rec[64];
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0, "read txn");
    /* dstat: twice the ordinary positions */
    ldb_be16(key, 0);
    k = (MDB_val){2, key};
    CHECK(mdb_get(txn, db->dstat, &k, &v) == 0 && v.mv_size == 40, "the dstat record");
    memcpy(rec, v.mv_data, 40);
    mdb_txn_abort(txn);
    uint64_t x;
    memcpy(&x, rec + 8, 8);
    x *= 2;
    memcpy(rec + 8, &x, 8);
    tamper(db, db->dstat, key, 2, rec, 40, "dstat: the statistics of 'a'");
    /* meta n_ord and n_pos */
    const char *keys[] = {"n_ord", "n_pos", "n_seq"};
    for (int i = 0; i < 3; i++) {
        CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0, "read txn");
        k = (MDB_val){strlen(keys[i]), (void *)keys[i]};
        CHECK(mdb_get(txn, db->meta, &k, &v) == 0 && v.mv_size == 8, "meta %s", keys[i]);
        memcpy(&x, v.mv_data, 8);
        mdb_txn_abort(txn);
        x += 1;
        char want[32];
        snprintf(want, sizeof want, "meta: %s says", keys[i]);
        tamper(db, db->meta, (const uint8_t *)keys[i], strlen(keys[i]), (uint8_t *)&x, 8, want);
    }
    /* cover: a sequence's ordinary count; seqpos: a start mapped to another sequence */
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0, "read txn");
    ldb_be16(key, 0);
    ldb_be64(key + 2, 3);
    k = (MDB_val){10, key};
    CHECK(mdb_get(txn, db->cover, &k, &v) == 0 && v.mv_size == 8, "a cover record");
    memcpy(rec, v.mv_data, 8);
    mdb_txn_abort(txn);
    rec[4]--;
    tamper(db, db->cover, key, 10, rec, 8, "cover: the record of 'a' over sequence 3");
    ldb_seqrec s;
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0 &&
          ldb_db_get_seq(db, txn, 3, &s) == 0, "sequence 3");
    mdb_txn_abort(txn);
    ldb_be64(key, s.start);
    x = 4;
    tamper(db, db->seqpos, key, 8, (uint8_t *)&x, 8, "seqpos:");
    /* tokidx: the first entry of some token lists a position of another token */
    MDB_cursor *cur;
    CHECK(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == 0 &&
          mdb_cursor_open(txn, db->tokidx, &cur) == 0, "tokidx cursor");
    uint8_t ik[12], iv[4096];
    size_t in = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size > 8 && v.mv_size < sizeof iv) {
            memcpy(ik, k.mv_data, 12);
            memcpy(iv, v.mv_data, v.mv_size);
            in = v.mv_size;
            break;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    CHECK(in > 0, "a token index entry of a few positions");
    iv[in - 2] ^= 0x01; /* a gap in the Rice stream changes (the last byte may be padding) */
    tamper(db, db->tokidx, ik, 12, iv, in, "tokidx:");
    clean_again(db, "the derived records were restored");

    /* check --repair rebuilds derived records: the dstat edit that left every
     * density 2x off (the digest the reference's) and a top list without its best
     * candidate are rebuilt from the forward index; densities and the digest are
     * the undamaged database's, and the damaged file is kept */
    char want[65], got[65];
    digest(db, want);
    ldb_density *d0 = NULL, *d1 = NULL;
    CHECK(ldb_query_density(db, "a", 20, &d0) == 0, "density: %s", ldb_db_errmsg(db));
    CHECK(mdb_txn_begin(db->env, NULL, 0, &txn) == 0, "write txn");
    ldb_be16(key, 0);
    k = (MDB_val){2, key};
    CHECK(mdb_get(txn, db->dstat, &k, &v) == 0 && v.mv_size == 40, "the dstat record");
    memcpy(rec, v.mv_data, 40);
    memcpy(&x, rec + 8, 8);
    x *= 2;
    memcpy(rec + 8, &x, 8);
    MDB_val nv = {40, rec};
    CHECK(mdb_put(txn, db->dstat, &k, &nv, 0) == 0, "tamper dstat");
    uint8_t lk[6];
    ldb_key_latent(lk, 0, 1);
    k = (MDB_val){6, lk};
    CHECK(mdb_del(txn, db->ltop, &k, NULL) == 0 && mdb_txn_commit(txn) == 0, "drop a top list");
    ldb_check_report *r = calloc(1, sizeof *r);
    CHECK(ldb_db_check(db, r) == 0 && r->n_store_problems >= 2, "check finds both: %s",
          r->problems);
    CHECK(ldb_db_repair(db) == 0, "repair: %s", ldb_db_errmsg(db));
    CHECK(strstr(ldb_db_note(db), "data.mdb.damaged-") != NULL, "the note names the kept file: %s",
          ldb_db_note(db));
    CHECK(ldb_db_check(db, r) == 0 && r->n_problems == 0, "clean after the repair: %s",
          r->problems);
    digest(db, got);
    CHECK(!strcmp(got, want), "digest after the repair %s, before %s", got, want);
    CHECK(ldb_query_density(db, "a", 20, &d1) == 0 && d1->n_latents == d0->n_latents &&
          d1->n_tokens == d0->n_tokens &&
          !memcmp(d1->counts, d0->counts, d0->n_latents * sizeof *d0->counts),
          "densities after the repair are the undamaged ones");
    ldb_density_free(d0);
    ldb_density_free(d1);
    free(r);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -f %s/main/data.mdb.damaged-*", scratch);
    CHECK(system(cmd) == 0, "remove the kept file");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_store SYNTH_DIR OTHER_DICT_DIR SCRATCH_DIR\n");
        return 2;
    }
    syn = argv[1];
    other = argv[2];
    scratch = argv[3];
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens.npy", syn);
    snprintf(acts_path, sizeof acts_path, "%s/acts.npy", syn);
    snprintf(dict_path, sizeof dict_path, "%s/dict", syn);
    phase("start");
    brute_encode(dict_path, acts_path, tokens_path);
    phase("brute_encode");
    index_latents();
    phase("index_latents");
    ldb_db *db = open_db("main", 1);
    CHECK(ldb_db_dict_add(db, "a", dict_path) == 0, "dict add: %s", ldb_db_errmsg(db));
    int rc = ingest(db, "a", tokens_path, acts_path, 0, 0, NULL);
    CHECK(rc == 0, "ingest: %s", ldb_db_errmsg(db));
    test_queries(db, "a");
    phase("test_queries");
    test_planted(db, "a");
    phase("test_planted");
    test_fwd_reads(db);
    phase("test_fwd_reads");
    test_l0_sources(db);
    phase("test_l0_sources");
    char d1[65];
    digest(db, d1);
    /* attach: a second dictionary over the same tokens joins the same sequences */
    CHECK(ldb_db_dict_add(db, "b", dict_path) == 0, "dict add b: %s", ldb_db_errmsg(db));
    rc = ingest(db, "b", tokens_path, acts_path, 0, 20000, NULL);
    CHECK(rc == 0, "ingest b: %s", ldb_db_errmsg(db));
    uint64_t ns, nt;
    info_counts(db, &ns, &nt);
    CHECK(ns == n_pos / ctx && nt == n_pos, "attach added no sequence: %llu", (unsigned long long)ns);
    test_queries(db, "b");
    phase("test_queries");
    test_cooc(db);
    phase("test_cooc");
    test_samples(db);
    phase("test_samples");
    test_seq(db);
    phase("test_seq");
    test_resume(d1);
    phase("test_resume");
    test_import(d1);
    phase("test_import");
    test_label(db);
    phase("test_label");
    /* a second ingest of the same inputs (--again) appends new sequences */
    rc = ingest(db, "a", tokens_path, acts_path, 1, 0, NULL);
    CHECK(rc == 0, "ingest --again: %s", ldb_db_errmsg(db));
    info_counts(db, &ns, &nt);
    CHECK(ns == 2 * n_pos / ctx && nt == 2ull * n_pos, "appended: %llu sequences",
          (unsigned long long)ns);
    ldb_latent_info *l = NULL;
    ldb_query_latent(db, "a", 10, 4, &l);
    ldb_latent_info *lb = NULL;
    ldb_query_latent(db, "b", 10, 4, &lb);
    CHECK(l && lb && l->count == 2 * lb->count && fabs(l->density - lb->density) < 1e-12,
          "after --again: a fires twice as often as b at the same density");
    ldb_latent_info_free(l);
    ldb_latent_info_free(lb);
    test_bad_inputs(db);
    phase("test_bad_inputs");
    test_corrupt(db);
    test_corrupt_blocks(db);
    test_tamper_summaries(db);
    test_tamper_derived(db);
    phase("test_corrupt");
    ldb_db_close(db);
    free(pstart);
    free(plat);
    free(pval);
    free(tok);
    free(lstart);
    free(lpos);
    return test_summary("test_store");
}
