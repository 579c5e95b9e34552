/* test_threads.c — one handle, many threads (issue 21): 8 threads query one
 * read-only handle of the golden database at once, while another process imports
 * new dictionaries into it and, its map kept small, grows the map under them
 * (LATENTDB_MAP_SIZE), so the readers must adopt the new size; every answer must
 * equal the one a single thread gave before. Also: opening a database twice in one
 * process shares one handle, and each thread reads its own error message.
 * usage: test_threads BUILD SCRATCH_DIR   (run from the repository's root) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "latentdb.h"

#define N_THREADS 8

static ldb_db *db;
static const char *build;
static char dbpath[900];

/* FNV-1a over the bytes of a result's fields. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define MIX(h, v) ((h) = mix((h), &(v), sizeof(v)))

static uint64_t hash_examples(uint64_t h, const ldb_examples *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        const ldb_example *x = &e->ex[i];
        MIX(h, x->seq), MIX(h, x->pos), MIX(h, x->value), MIX(h, x->ctx_start), MIX(h, x->ctx_len);
        h = mix(h, x->tokens, x->ctx_len * sizeof *x->tokens);
        h = mix(h, x->values, x->ctx_len * sizeof *x->values);
    }
    return h;
}

/* Query q (0..N_QUERIES) on db; its answer's hash, or 0 when it failed. */
#define N_QUERIES 9
static uint64_t query(int q, uint32_t arg)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int rc = -1;
    if (q == 0) {
        ldb_examples *e = NULL;
        ldb_top_opts o;
        ldb_top_opts_init(&o);
        if (!(rc = ldb_query_top(db, "a", arg % 256, &o, &e)))
            h = hash_examples(h, e);
        ldb_examples_free(e);
    } else if (q == 1) {
        ldb_examples *e = NULL;
        ldb_top_opts o;
        ldb_top_opts_init(&o);
        o.k = 150; /* past the stored candidates: a scan of the postings */
        o.distinct_seq = 1;
        if (!(rc = ldb_query_top(db, "b", arg % 64, &o, &e)))
            h = hash_examples(h, e);
        ldb_examples_free(e);
    } else if (q == 2) {
        ldb_latent_info *l = NULL;
        if (!(rc = ldb_query_latent(db, "a", arg % 256, 20, &l))) {
            MIX(h, l->count), MIX(h, l->nseq), MIX(h, l->max), MIX(h, l->mean), MIX(h, l->std);
            h = mix(h, l->hist, l->nbins * sizeof *l->hist);
            if (l->label)
                h = mix(h, l->label, strlen(l->label));
        }
        ldb_latent_info_free(l);
    } else if (q == 3) {
        ldb_cooc *c = NULL;
        if (!(rc = ldb_query_cooc(db, "a", arg % 256, "b", 10, LDB_COOC_WINDOW, 3, LDB_SORT_JACCARD,
                                  &c))) {
            MIX(h, c->count), MIX(h, c->units);
            for (uint32_t i = 0; i < c->n; i++)
                MIX(h, c->items[i].latent), MIX(h, c->items[i].count), MIX(h, c->items[i].jaccard);
        }
        ldb_cooc_free(c);
    } else if (q == 4) {
        ldb_samples *s = NULL;
        if (!(rc = ldb_query_samples(db, "a", arg % 256, 4, 3, LDB_SAMPLES_BY_COUNT, 7, 4, &s)))
            for (uint32_t g = 0; g < s->n; g++) {
                MIX(h, s->groups[g].lo), MIX(h, s->groups[g].count);
                h = hash_examples(h, &s->groups[g].ex);
            }
        ldb_samples_free(s);
    } else if (q == 5) {
        ldb_seqview *v = NULL;
        if (!(rc = ldb_query_seq(db, arg % 40, "a", 3, &v))) {
            h = mix(h, v->tokens, v->len * sizeof *v->tokens);
            h = mix(h, v->start, (v->len + 1) * sizeof *v->start);
            for (uint64_t i = 0; i < v->start[v->len]; i++) /* (not the struct's padding) */
                MIX(h, v->lat[i].dict), MIX(h, v->lat[i].latent), MIX(h, v->lat[i].value);
        }
        ldb_seqview_free(v);
    } else if (q == 6) {
        ldb_search *s = NULL;
        uint32_t toks[2] = {296, 312};
        if (!(rc = ldb_query_search(db, "a", toks + (arg & 1), 2 - (arg & 1), 0, 10, &s))) {
            MIX(h, s->occurrences);
            for (uint32_t i = 0; i < s->n; i++)
                MIX(h, s->items[i].latent), MIX(h, s->items[i].hits), MIX(h, s->items[i].score);
        }
        ldb_search_free(s);
    } else if (q == 7) {
        ldb_density *d = NULL;
        if (!(rc = ldb_query_density(db, arg & 1 ? "a" : "b", 10, &d))) {
            MIX(h, d->n_tokens), MIX(h, d->dead);
            h = mix(h, d->bins, d->nbins * sizeof *d->bins);
            h = mix(h, d->counts, d->n_latents * sizeof *d->counts);
        }
        ldb_density_free(d);
    } else {
        /* the tokenizer the DB holds, shared by every thread: decode, then encode
         * the text again (each encode takes caches of its own from the handle) */
        ldb_tokenizer *t = NULL;
        char *text = NULL;
        uint32_t *back = NULL;
        size_t len, nb;
        uint32_t ids[600];
        for (uint32_t i = 0; i < 600; i++) /* pieces and byte tokens, a different text per arg */
            ids[i] = i % 5 == 4 ? 4 + (arg * 31 + i * 7) % 128 : 260 + (arg * 7 + i * 13) % 53;
        if (!(rc = ldb_db_tokenizer(db, &t)) && t && !(rc = ldb_tokenizer_decode(t, ids, 600, &text, &len)) &&
            !(rc = ldb_tokenizer_encode(t, text, len, &back, &nb))) {
            h = mix(h, text, len);
            h = mix(h, back, nb * sizeof *back);
        }
        ldb_free(text);
        ldb_free(back);
    }
    return rc ? 0 : h;
}

static uint64_t want[N_QUERIES][8];
static _Atomic int writer_done;

typedef struct job {
    int id;
    long queries, wrong, failed, errmsg_bad, enc_bad;
    char first[256];
    ldb_tokenizer *mine;       /* a handle of this thread's own, the reference */
    uint64_t rng;
} job;

/* A text never encoded before (random pieces and bytes, decoded with the thread's
 * own handle), encoded with the database's shared tokenizer and with the thread's
 * own: the ids must agree. New text keeps the shared handle's caches changing. */
static int encode_check(job *j)
{
    ldb_tokenizer *shared = NULL;
    uint32_t ids[300], *a = NULL, *b = NULL;
    char *text = NULL;
    size_t len, na = 0, nb = 0;
    for (int i = 0; i < 300; i++) {
        j->rng = j->rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(j->rng >> 33);
        ids[i] = r % 4 == 0 ? 4 + r / 4 % 256 : 260 + r / 4 % 53;
    }
    int ok = !ldb_db_tokenizer(db, &shared) && shared &&
             !ldb_tokenizer_decode(j->mine, ids, 300, &text, &len) &&
             !ldb_tokenizer_encode(shared, text, len, &a, &na) &&
             !ldb_tokenizer_encode(j->mine, text, len, &b, &nb) && na == nb &&
             !memcmp(a, b, na * sizeof *a);
    ldb_free(text);
    ldb_free(a);
    ldb_free(b);
    return ok;
}

static void *reader(void *arg)
{
    job *j = arg;
    for (long round = 0; !writer_done || round < 40; round++) {
        for (int q = 0; q < N_QUERIES; q++) {
            uint32_t a = (uint32_t)(round + j->id) % 8;
            uint64_t h = query(q, a);
            j->queries++;
            if (!h) {
                if (!j->failed++)
                    snprintf(j->first, sizeof j->first, "query %d(%u) failed: %s", q, a,
                             ldb_db_errmsg(db));
            } else if (h != want[q][a]) {
                if (!j->wrong++ && !j->failed)
                    snprintf(j->first, sizeof j->first, "query %d(%u) answered differently", q, a);
            }
        }
        j->enc_bad += !encode_check(j);
        /* an error of this thread's own: its message names this thread's latent */
        uint32_t bad = 1000 + (uint32_t)j->id;
        ldb_latent_info *l = NULL;
        char mine[32];
        snprintf(mine, sizeof mine, "latent %u ", bad);
        if (ldb_query_latent(db, "a", bad, 10, &l) != LDB_EINVAL || !strstr(ldb_db_errmsg(db), mine))
            j->errmsg_bad++;
        ldb_latent_info_free(l);
    }
    return NULL;
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int ldb_open_refs(ldb_db *db); /* db/db_impl.h: how many opens share the handle */

/* Threads opening one folder at the same moment: one environment, one handle. */
#define N_OPENERS 6
static pthread_barrier_t open_bar;
static void *opener(void *arg)
{
    ldb_db **out = arg;
    pthread_barrier_wait(&open_bar);
    if (ldb_db_open(dbpath, LDB_OPEN_READ, out) != LDB_OK) {
        ldb_db_close(*out);
        *out = NULL;
    }
    return NULL;
}

static void test_concurrent_open(void)
{
    for (int round = 0; round < 20; round++) {
        pthread_t th[N_OPENERS];
        ldb_db *got[N_OPENERS] = {NULL};
        pthread_barrier_init(&open_bar, NULL, N_OPENERS);
        for (int i = 0; i < N_OPENERS; i++)
            pthread_create(&th[i], NULL, opener, &got[i]);
        int same = 1;
        for (int i = 0; i < N_OPENERS; i++) {
            pthread_join(th[i], NULL);
            same &= got[i] && got[i] == got[0];
        }
        pthread_barrier_destroy(&open_bar);
        int refs_ok = got[0] && ldb_open_refs(got[0]) == N_OPENERS;
        for (int i = 0; i < N_OPENERS; i++)
            ldb_db_close(got[i]);
        if (!same || !refs_ok) {
            CHECK(0, "round %d: %d threads opening one folder at once got one handle, counted "
                  "%d times", round, N_OPENERS, N_OPENERS);
            return;
        }
    }
    CHECK(1, "20 rounds of %d threads opening one folder at once shared one handle", N_OPENERS);
}

static void test_shared_open(void)
{
    ldb_db *a = NULL, *b = NULL, *w = NULL;
    CHECK(ldb_db_open(dbpath, LDB_OPEN_READ, &a) == LDB_OK, "open: %s", ldb_db_errmsg(a));
    CHECK(ldb_db_open(dbpath, LDB_OPEN_READ, &b) == LDB_OK && a == b,
          "a second open of the same folder shares the handle (%p, %p)", (void *)a, (void *)b);
    char other[1100];
    snprintf(other, sizeof other, "%s/./", dbpath); /* another spelling of the path */
    ldb_db *c = NULL;
    CHECK(ldb_db_open(other, LDB_OPEN_READ, &c) == LDB_OK && c == a, "%s too", other);
    ldb_db_close(c);
    CHECK(ldb_db_open(dbpath, LDB_OPEN_WRITE, &w) == LDB_EINVAL &&
          strstr(ldb_db_errmsg(w), "open read-only in this process"),
          "a writable open while read-only is open: %s", ldb_db_errmsg(w));
    ldb_db_close(w);
    ldb_db_close(b);
    ldb_info *in = NULL; /* a is still open after b closed */
    CHECK(ldb_query_info(a, &in) == LDB_OK && in->n_seq == 40, "the handle lives on: %s",
          ldb_db_errmsg(a));
    ldb_info_free(in);
    ldb_db_close(a);
    /* write first, then read: one handle serves both */
    CHECK(ldb_db_open(dbpath, LDB_OPEN_WRITE, &w) == LDB_OK, "open for writing: %s", ldb_db_errmsg(w));
    CHECK(ldb_db_open(dbpath, LDB_OPEN_READ, &b) == LDB_OK && b == w, "read open shares it");
    ldb_db_close(b);
    ldb_db_close(w);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_threads BUILD SCRATCH_DIR\n");
        return 2;
    }
    build = argv[1];
    snprintf(dbpath, sizeof dbpath, "%s/threads_db", argv[2]);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && gzip -dc tests/golden/db3/db/data.mdb.gz"
             " > '%s/data.mdb' && cp tests/golden/db3/db/catalog.sqlite '%s/'", dbpath, dbpath,
             dbpath, dbpath);
    CHECK(sh(cmd) == 0, "copy of the golden database (%s)", cmd);
    /* a small map, so that the writer below grows it and the readers must adopt it */
    setenv("LATENTDB_MAP_SIZE", "1048576", 1);
    test_shared_open();
    test_concurrent_open();

    CHECK(ldb_db_open(dbpath, LDB_OPEN_READ, &db) == LDB_OK, "open: %s", ldb_db_errmsg(db));
    int ok_ref = 1;
    for (int q = 0; q < N_QUERIES; q++)
        for (uint32_t a = 0; a < 8; a++)
            if (!(want[q][a] = query(q, a)) && ok_ref) {
                ok_ref = 0;
                CHECK(0, "reference query %d(%u): %s", q, a, ldb_db_errmsg(db));
            }

    /* the writer: 12 new dictionaries, each imported over the whole corpus */
    snprintf(cmd, sizeof cmd,
             "L='%s/bin/latentdb'; G=tests/golden/db3; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do "
             "\"$L\" dict add '%s' c$i $G/dict_b >/dev/null && "
             "\"$L\" import '%s' --dict c$i --tokens $G/tokens.npy --codes $G/b.npz >/dev/null || exit 1; "
             "done", build, dbpath, dbpath);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    pthread_t th[N_THREADS];
    job jobs[N_THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].id = i;
        jobs[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        CHECK(ldb_tokenizer_open("tests/golden/db3/tokenizer.json", &jobs[i].mine) == LDB_OK,
              "the golden tokenizer: %s", ldb_tokenizer_errmsg(jobs[i].mine));
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_create(&th[i], NULL, reader, &jobs[i]);
    int st = 0;
    waitpid(pid, &st, 0);
    writer_done = 1;
    long queries = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        queries += jobs[i].queries;
        CHECK(!jobs[i].failed && !jobs[i].wrong, "thread %d: %ld of %ld queries failed, %ld answered "
              "differently; %s", i, jobs[i].failed, jobs[i].queries, jobs[i].wrong, jobs[i].first);
        CHECK(!jobs[i].errmsg_bad, "thread %d read another thread's error message %ld times", i,
              jobs[i].errmsg_bad);
        CHECK(!jobs[i].enc_bad, "thread %d: the shared tokenizer encoded %ld new texts otherwise "
              "than the thread's own handle", i, jobs[i].enc_bad);
        ldb_tokenizer_close(jobs[i].mine);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer process imported 12 dictionaries "
          "(status %d)", st);
    printf("%ld queries from %d threads while another process wrote\n", queries, N_THREADS);
    /* the writer grew the map: this handle adopted it (a query after the last commit
     * reads its data: the new dictionaries' count) */
    ldb_db_close(db);
    db = NULL;
    CHECK(ldb_db_open(dbpath, LDB_OPEN_READ, &db) == LDB_OK, "reopen: %s", ldb_db_errmsg(db));
    ldb_info *in = NULL;
    CHECK(ldb_query_info(db, &in) == LDB_OK && in->n_dicts == 14 && in->dicts[13].nnz == 9267,
          "14 dictionaries after the writer, the last with b's 9267 codes: %s", ldb_db_errmsg(db));
    ldb_info_free(in);
    ldb_db_close(db);
    snprintf(cmd, sizeof cmd, "'%s/bin/latentdb' check '%s' > /dev/null", build, dbpath);
    CHECK(sh(cmd) == 0, "the database checks clean after all that");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbpath);
    sh(cmd);
    return test_summary("test_threads");
}
