/* test_store.c — the store and its queries against brute force: a synthetic corpus
 * (tools/synth: 4096 latents, 102,400 tokens, BOS rows of large norm) is ingested;
 * the test encodes the same activations itself, rounds to bf16 with its own code,
 * and computes counts, densities, histograms and top examples by brute force.
 * Then: attach by tokens hash, a second ingest, resume after SIGKILL (same digest
 * as an uninterrupted run), a reader holding a snapshot across commits, and bad
 * inputs that must leave the DB as it was.
 * usage: test_store SYNTH_DIR OTHER_DICT_DIR SCRATCH_DIR */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "../common/npy.h"
#include "../db/db_impl.h"
#include "check.h"
#include "latentdb.h"

static const char *syn, *other, *scratch;
static char tokens_path[1024], acts_path[1024], dict_path[1024];

/* brute force: every code of every position, values rounded to bf16 here */
static uint32_t n_pos, d_sae = 4096, ctx;
static uint64_t *pstart;       /* n_pos + 1 */
static uint32_t *plat;
static float *pval;
static uint32_t *tok;
static size_t nnz, cap;

static float bf16_round(float v) /* round to nearest even, written for this test */
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint32_t lsb = (u >> 16) & 1;
    u = (u + 0x7fffu + lsb) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

static int collect(void *arg, const ldb_codes *t)
{
    (void)arg;
    for (uint32_t r = 0; r < t->n_rows; r++) {
        for (uint64_t i = t->start[r]; i < t->start[r + 1]; i++) {
            if (nnz == cap) {
                cap = cap ? cap * 2 : 1 << 20;
                plat = realloc(plat, cap * sizeof *plat);
                pval = realloc(pval, cap * sizeof *pval);
            }
            plat[nnz] = t->latent[i];
            pval[nnz++] = bf16_round(t->value[i]);
        }
        pstart[t->row0 + r + 1] = nnz;
    }
    return 0;
}

static void brute_encode(void)
{
    ldb_dict *d = NULL;
    ldb_mfile fa, ft;
    ldb_npy a, t;
    ldb_err e = {{0}};
    int rc = ldb_dict_open(dict_path, &d);
    CHECK(rc == 0, "open dict: %s", ldb_dict_errmsg(d));
    rc = ldb_mfile_open(&fa, acts_path, &e) || ldb_npy_parse(&a, fa.data, fa.size, "acts", &e) ||
         ldb_mfile_open(&ft, tokens_path, &e) || ldb_npy_parse(&t, ft.data, ft.size, "tok", &e);
    CHECK(rc == 0, "inputs: %s", e.msg);
    n_pos = (uint32_t)t.count;
    ctx = (uint32_t)t.shape[1];
    tok = malloc(n_pos * sizeof *tok);
    memcpy(tok, t.data, n_pos * sizeof *tok);
    pstart = calloc(n_pos + 1, sizeof *pstart);
    rc = ldb_dict_encode(d, a.data, LDB_F32, n_pos, collect, NULL);
    CHECK(rc == 0, "encode: %s", ldb_dict_errmsg(d));
    ldb_dict_close(d);
    ldb_mfile_close(&fa);
    ldb_mfile_close(&ft);
}

static float value_at(uint32_t pos, uint32_t lat)
{
    for (uint64_t i = pstart[pos]; i < pstart[pos + 1]; i++)
        if (plat[i] == lat)
            return pval[i];
    return 0;
}

static ldb_db *open_db(const char *name, int create)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", scratch, name);
    ldb_db *db = NULL;
    uint32_t skip = 2;
    int rc = create ? ldb_db_init(p, &skip, 1, LDB_VALUES_BF16, &db)
                    : ldb_db_open(p, LDB_OPEN_WRITE, &db);
    CHECK(rc == 0, "open %s: %s", p, ldb_db_errmsg(db));
    return db;
}

static int ingest(ldb_db *db, const char *dict, const char *tokens, const char *acts, int again,
                  uint64_t batch, void (*progress)(void *, uint64_t, uint64_t))
{
    const char *names[1] = {dict};
    ldb_ingest_opts o = {names, 1, tokens, acts, 0, "synth", again, batch, progress, NULL};
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
    /* top: candidates (k 20), scan (k 150), distinct sequences, special positions */
    static const struct { uint32_t k; int distinct, special; } modes[] = {
        {20, 0, 0}, {150, 0, 0}, {10, 1, 0}, {20, 0, 1}};
    for (size_t m = 0; m < 4; m++) {
        for (uint32_t j = 3; j < d_sae; j += 41) {
            ldb_top_opts o = {modes[m].k, 3, modes[m].distinct, modes[m].special};
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
                uint32_t want_len = (e->pos + 3 < ctx ? e->pos + 4 : ctx) -
                                    (e->pos >= 3 ? e->pos - 3 : 0);
                if (e->ctx_len != want_len)
                    bad_ctx++;
            }
            ldb_examples_free(ex);
        }
        CHECK(bad_top == 0, "top (k %u, distinct %d, special %d): %u examples differ from brute "
              "force", modes[m].k, modes[m].distinct, modes[m].special, bad_top);
        CHECK(bad_ctx == 0, "top contexts: %u tokens/values differ", bad_ctx);
    }
    free(r);
    free(cnt);
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
    brute_encode();
    index_latents();
    ldb_db *db = open_db("main", 1);
    CHECK(ldb_db_dict_add(db, "a", dict_path) == 0, "dict add: %s", ldb_db_errmsg(db));
    int rc = ingest(db, "a", tokens_path, acts_path, 0, 0, NULL);
    CHECK(rc == 0, "ingest: %s", ldb_db_errmsg(db));
    test_queries(db, "a");
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
    test_resume(d1);
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
    ldb_db_close(db);
    free(pstart);
    free(plat);
    free(pval);
    free(tok);
    free(lstart);
    free(lpos);
    return test_summary("test_store");
}
