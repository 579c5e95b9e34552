/* bench_query.c — query latency, in process, on one DB, beside a SQLite row store
 * built from the same codes (the peer a user would write: a table (tok, latent,
 * value) with an index on (latent, value)).
 *
 * usage: bench_query DB DICT TOKENS.npy [--sqlite FILE --codes CODES.npz] [--cli LATENTDB]
 *
 * Prints one "key value" line per figure (milliseconds unless the key says
 * otherwise), for tools/bench/report.py to table beside the targets:
 *   first_open_ms, first_top_ms    opening the DB and its first top query (in process)
 *   top_p50_ms, top_p99_ms         ldb_query_top, k 20, 8 tokens of context, warm
 *   latent_p50_ms, latent_p99_ms   ldb_query_latent, 20 bins
 *   density_ms                     ldb_query_density over all latents (median of 11)
 *   cooc_ms, cooc_density          token-scope cooc of the latents nearest 1% density
 *   search_ms, search_share        2-token phrases at >= 0.5% of ordinary positions
 *   cli_top_ms                     `latentdb top` as a process (median of 21)
 *   sqlite_*                       the same queries on the SQLite row store
 * Query latents: 12 per decile of live latents by density (120), seeded. */
#include <sqlite3.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "latentdb.h"
#include "../common/err.h"
#include "../sae/tensors.h"

extern char **environ;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, fx_cmp_double);
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_query: %s: %s\n", what, msg);
    exit(1);
}

#define N_DECILE 12
#define N_Q (10 * N_DECILE)

typedef struct {
    uint32_t latent;
    uint64_t count;
} lc;

static int cmp_lc(const void *a, const void *b)
{
    const lc *x = a, *y = b;
    return x->count != y->count ? (x->count < y->count ? -1 : 1)
                                : (x->latent > y->latent) - (x->latent < y->latent);
}

/* ldb_query_top of every query latent, timed on a second pass (the first warms
 * the cache), in milliseconds. */
static void time_top(ldb_db *db, const char *dict, const uint32_t *q, const ldb_top_opts *o,
                     double *ms)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N_Q; i++) {
            ldb_examples *ex = NULL;
            double a = fx_now();
            if (ldb_query_top(db, dict, q[i], o, &ex))
                die("top", ldb_db_errmsg(db));
            ms[i] = 1e3 * (fx_now() - a);
            ldb_examples_free(ex);
        }
}

/* codes go in ROWS_PER_INSERT rows to a statement: the peer's build at 1M tokens
 * took 65 s, against ~190-230 s with one row to a statement (same table) */
enum { ROWS_PER_INSERT = 64 };

/* INSERT INTO codes of n rows (1..ROWS_PER_INSERT) into the peer at path. */
static sqlite3_stmt *prepare_rows(sqlite3 *s, const char *path, int n)
{
    char sql[64 + 10 * ROWS_PER_INSERT];
    int at = snprintf(sql, sizeof sql, "INSERT INTO codes VALUES (?, ?, ?)");
    for (int r = 1; r < n; r++)
        at += snprintf(sql + at, sizeof sql - (size_t)at, ",(?,?,?)");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(s));
    return st;
}

/* Binds n rows (tok, latent, value) to st and runs it. */
static void insert_rows(sqlite3 *s, const char *path, sqlite3_stmt *st, const sqlite3_int64 *t,
                        const int *l, const double *v, int n)
{
    for (int r = 0; r < n; r++) {
        sqlite3_bind_int64(st, 3 * r + 1, t[r]);
        sqlite3_bind_int(st, 3 * r + 2, l[r]);
        sqlite3_bind_double(st, 3 * r + 3, v[r]);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        die(path, sqlite3_errmsg(s));
    sqlite3_reset(st);
}

/* The SQLite peer: built once from the codes (.npz), then timed. */
static sqlite3 *sqlite_build(const char *path, const char *codes_path, const uint32_t *skip,
                             uint32_t n_skip, const uint32_t *tok, uint64_t n_tok, uint32_t ctx)
{
    sqlite3 *s;
    struct stat st;
    int fresh = stat(path, &st) != 0;
    if (sqlite3_open(path, &s) != SQLITE_OK)
        die(path, sqlite3_errmsg(s));
    if (!fresh)
        return s;
    ldb_tensors ts;
    ldb_err e = {{0}};
    if (ldb_npz_open(&ts, codes_path, &e))
        die(codes_path, e.msg);
    const ldb_tensor *data = ldb_tensors_find(&ts, "data"),
                     *ind = ldb_tensors_find(&ts, "indices"),
                     *ptr = ldb_tensors_find(&ts, "indptr");
    if (!data || !ind || !ptr || data->dtype != LDB_F32 || strcmp(ind->dtype_name, "int32") ||
        strcmp(ptr->dtype_name, "int64") || ptr->count != n_tok + 1)
        die(codes_path, "expected float32 data, int32 indices, int64 indptr (tools/planted --codes)");
    double t0 = fx_now();
    sqlite3_exec(s, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA threads=2; "
                    "CREATE TABLE codes(tok INTEGER, latent INTEGER, value REAL, "
                    "PRIMARY KEY (tok, latent)) WITHOUT ROWID; "
                    "CREATE TABLE skip(tok INTEGER PRIMARY KEY); "
                    "CREATE TABLE tokens(pos INTEGER PRIMARY KEY, seq INTEGER, token INTEGER); "
                    "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *it;
    sqlite3_prepare_v2(s, "INSERT INTO tokens VALUES (?, ?, ?)", -1, &it, NULL);
    for (uint64_t t = 0; t < n_tok; t++) {
        sqlite3_bind_int64(it, 1, (sqlite3_int64)t);
        sqlite3_bind_int64(it, 2, (sqlite3_int64)(t / ctx));
        sqlite3_bind_int64(it, 3, tok[t]);
        if (sqlite3_step(it) != SQLITE_DONE)
            die(path, sqlite3_errmsg(s));
        sqlite3_reset(it);
    }
    sqlite3_finalize(it);
    sqlite3_stmt *ins = prepare_rows(s, path, ROWS_PER_INSERT);
    const int64_t *ip = (const int64_t *)ptr->data;
    const int32_t *ix = (const int32_t *)ind->data;
    const float *dv = (const float *)data->data;
    sqlite3_int64 pt[ROWS_PER_INSERT];
    int pl[ROWS_PER_INSERT], pend = 0;
    double pv[ROWS_PER_INSERT];
    for (uint64_t t = 0; t < n_tok; t++) {
        int sk = 0;
        for (uint32_t j = 0; j < n_skip; j++)
            sk |= tok[t] == skip[j];
        if (sk) { /* the peer stores what a user would: codes of ordinary positions */
            char q[64];
            snprintf(q, sizeof q, "INSERT INTO skip VALUES (%llu)", (unsigned long long)t);
            sqlite3_exec(s, q, NULL, NULL, NULL);
            continue;
        }
        for (int64_t i = ip[t]; i < ip[t + 1]; i++) {
            pt[pend] = (sqlite3_int64)t, pl[pend] = ix[i], pv[pend] = dv[i];
            if (++pend == ROWS_PER_INSERT) {
                insert_rows(s, path, ins, pt, pl, pv, pend);
                pend = 0;
            }
        }
    }
    sqlite3_finalize(ins);
    if (pend) { /* the last rows */
        ins = prepare_rows(s, path, pend);
        insert_rows(s, path, ins, pt, pl, pv, pend);
        sqlite3_finalize(ins);
    }
    if (sqlite3_exec(s, "COMMIT; CREATE INDEX by_latent ON codes(latent, value)",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(s));
    fprintf(stderr, "bench_query: built the SQLite peer %s in %.1f s\n", path, fx_now() - t0);
    ldb_tensors_close(&ts);
    return s;
}

static double sqlite_one(sqlite3 *s, sqlite3_stmt *st, uint32_t latent)
{
    double t0 = fx_now();
    sqlite3_bind_int(st, 1, (int)latent);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        die("sqlite", sqlite3_errmsg(s));
    sqlite3_reset(st);
    return 1e3 * (fx_now() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: bench_query DB DICT TOKENS.npy [--sqlite FILE --codes CODES.npz] "
              "[--cli LATENTDB]\n", stderr);
        return 2;
    }
    const char *dbp = argv[1], *dict = argv[2], *tokp = argv[3];
    const char *sq_path = NULL, *codes = NULL, *cli = NULL;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sqlite")) sq_path = argv[i + 1];
        else if (!strcmp(argv[i], "--codes")) codes = argv[i + 1];
        else if (!strcmp(argv[i], "--cli")) cli = argv[i + 1];
        else die(argv[i], "unknown option");
    }

    /* First query after opening: nothing is loaded up front. */
    ldb_db *db = NULL;
    double t0 = fx_now();
    if (ldb_db_open(dbp, LDB_OPEN_READ, &db))
        die(dbp, ldb_db_errmsg(db));
    double t1 = fx_now();
    ldb_top_opts to;
    ldb_top_opts_init(&to);
    ldb_examples *ex = NULL;
    if (ldb_query_top(db, dict, 0, &to, &ex))
        die("top", ldb_db_errmsg(db));
    double t2 = fx_now();
    ldb_examples_free(ex);
    printf("first_open_ms %.3f\nfirst_top_ms %.3f\n", 1e3 * (t1 - t0), 1e3 * (t2 - t0));

    ldb_info *info = NULL;
    if (ldb_query_info(db, &info))
        die("info", ldb_db_errmsg(db));
    printf("tokens %llu\nordinary %llu\nnnz %llu\nbytes_per_nnz %.3f\n",
           (unsigned long long)info->n_tokens, (unsigned long long)info->n_ordinary,
           (unsigned long long)info->dicts[0].nnz,
           (double)info->dicts[0].bytes / (double)info->dicts[0].nnz);

    /* Query latents across density deciles. */
    ldb_density *den = NULL;
    if (ldb_query_density(db, dict, 20, &den))
        die("density", ldb_db_errmsg(db));
    uint32_t nl = den->n_latents, live = 0;
    lc *all = malloc(nl * sizeof *all);
    for (uint32_t j = 0; j < nl; j++)
        if (den->counts[j])
            all[live++] = (lc){j, den->counts[j]};
    qsort(all, live, sizeof *all, cmp_lc);
    uint32_t q[N_Q];
    for (int d = 0; d < 10; d++)
        for (int i = 0; i < N_DECILE; i++)
            q[d * N_DECILE + i] = all[(uint64_t)live * (uint64_t)(d * N_DECILE + i) / N_Q].latent;
    double n_ord = (double)den->n_tokens;
    printf("query_latents ");
    for (int i = 0; i < N_Q; i++)
        printf("%u%s", q[i], i + 1 < N_Q ? "," : "\n");

    double top[N_Q], lat[N_Q], tmp[64];
    time_top(db, dict, q, &to, top);
    printf("top_p50_ms %.4f\ntop_p99_ms %.4f\n", pct(top, N_Q, 0.5), pct(top, N_Q, 0.99));
    ldb_top_opts t0o; /* positions only: what SQLite's index returns */
    ldb_top_opts_init(&t0o);
    t0o.positions_only = 1;
    time_top(db, dict, q, &t0o, top);
    printf("top0_p50_ms %.4f\ntop0_p99_ms %.4f\n", pct(top, N_Q, 0.5), pct(top, N_Q, 0.99));
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N_Q; i++) {
            ldb_latent_info *li = NULL;
            double a = fx_now();
            if (ldb_query_latent(db, dict, q[i], 20, &li))
                die("latent", ldb_db_errmsg(db));
            lat[i] = 1e3 * (fx_now() - a);
            ldb_latent_info_free(li);
        }
    printf("latent_p50_ms %.4f\nlatent_p99_ms %.4f\n", pct(lat, N_Q, 0.5), pct(lat, N_Q, 0.99));
    for (int r = 0; r < 11; r++) {
        ldb_density *d2 = NULL;
        double a = fx_now();
        if (ldb_query_density(db, dict, 20, &d2))
            die("density", ldb_db_errmsg(db));
        tmp[r] = 1e3 * (fx_now() - a);
        ldb_density_free(d2);
    }
    printf("density_ms %.3f\n", pct(tmp, 11, 0.5));

    /* cooc: the 5 latents nearest 1% density (median time). */
    lc near[5];
    int nn = 0;
    for (uint32_t i = 0; i < live; i++) {
        double dd = (double)all[i].count / n_ord;
        if (dd >= 0.008 && dd <= 0.0125 && nn < 5)
            near[nn++] = all[i];
    }
    if (!nn) /* none in the band: the nearest above */
        for (uint32_t i = 0; i < live && !nn; i++)
            if ((double)all[i].count / n_ord >= 0.01)
                near[nn++] = all[i];
    double cdens = 0;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < nn; i++) {
            ldb_cooc *c = NULL;
            double a = fx_now();
            if (ldb_query_cooc(db, dict, near[i].latent, NULL, 20, LDB_COOC_TOKEN, 0,
                               LDB_SORT_JACCARD, &c))
                die("cooc", ldb_db_errmsg(db));
            tmp[i] = 1e3 * (fx_now() - a);
            ldb_cooc_free(c);
            cdens += r ? (double)near[i].count / n_ord / nn : 0;
        }
    printf("cooc_ms %.3f\ncooc_density %.4f\ncooc_latent %u\n", pct(tmp, (size_t)nn, 0.5), cdens,
           near[0].latent);

    /* search: the most frequent 2-token phrases (at >= 0.5% of positions). */
    uint64_t nt;
    long ctx_l = 0;
    uint32_t *tok = fx_load_tokens(tokp, &nt, &ctx_l);
    if (!tok)
        return 1;
    uint32_t ctx = ctx_l ? (uint32_t)ctx_l : (uint32_t)nt;
    /* the most frequent bigrams within rows: sort the pairs, count the runs */
    uint64_t *pr = malloc(nt * sizeof *pr), npr = 0;
    for (uint64_t i = 1; i < nt; i++)
        if (i % ctx)
            pr[npr++] = (uint64_t)tok[i - 1] << 32 | tok[i];
    qsort(pr, npr, sizeof *pr, cmp_u64);
    lc best[16]; /* latent = index of the pair's first copy in pr, count = run length */
    int nb = 0;
    for (uint64_t i = 0, j; i < npr; i = j) {
        for (j = i; j < npr && pr[j] == pr[i]; j++)
            ;
        lc x = {(uint32_t)i, j - i};
        if (nb < 16)
            best[nb++] = x;
        else if (x.count > best[15].count)
            best[15] = x;
        else
            continue;
        for (int k = nb - 1; k > 0 && best[k].count > best[k - 1].count; k--) {
            lc t = best[k];
            best[k] = best[k - 1];
            best[k - 1] = t;
        }
    }
    double sms[16], share = 1;
    int ns = 0;
    for (int r = 0; r < nb; r++) {
        if ((double)best[r].count < 0.005 * n_ord)
            break;
        uint64_t key = pr[best[r].latent];
        uint32_t ids[2] = {(uint32_t)(key >> 32), (uint32_t)key};
        ldb_search *s = NULL;
        double a = fx_now();
        if (ldb_query_search(db, dict, ids, 2, 0, 20, &s))
            die("search", ldb_db_errmsg(db));
        sms[ns] = 1e3 * (fx_now() - a);
        double sh = (double)s->occurrences / n_ord;
        if (sh < share)
            share = sh;
        ns++;
        ldb_search_free(s);
    }
    free(pr);
    if (ns) {
        double med = pct(sms, (size_t)ns, 0.5); /* sorts sms */
        printf("search_ms %.3f\nsearch_max_ms %.3f\nsearch_share %.4f\nsearch_n %d\n", med,
               sms[ns - 1], share, ns);
    }

    /* top as a CLI process */
    if (cli) {
        char lat_s[16];
        snprintf(lat_s, sizeof lat_s, "%u", q[N_Q / 2]);
        char *av[] = {(char *)cli, "top", (char *)dbp, (char *)dict, lat_s, NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 01, 0);
        for (int r = 0; r < 21; r++) {
            pid_t pid;
            int status;
            double a = fx_now();
            if (posix_spawn(&pid, cli, &fa, NULL, av, environ) || waitpid(pid, &status, 0) < 0 ||
                !WIFEXITED(status) || WEXITSTATUS(status))
                die(cli, "top failed");
            tmp[r] = 1e3 * (fx_now() - a);
        }
        posix_spawn_file_actions_destroy(&fa);
        printf("cli_top_ms %.3f\n", pct(tmp, 21, 0.5));
    }

    /* the SQLite peer */
    if (sq_path && codes) {
        sqlite3 *s = sqlite_build(sq_path, codes, info->skip, info->n_skip, tok, nt, ctx);
        struct stat st;
        stat(sq_path, &st);
        sqlite3_stmt *c1;
        sqlite3_prepare_v2(s, "SELECT count(*) FROM codes", -1, &c1, NULL);
        sqlite3_step(c1);
        double rows = (double)sqlite3_column_int64(c1, 0);
        sqlite3_finalize(c1);
        printf("sqlite_bytes_per_nnz %.2f\n", (double)st.st_size / rows);
        sqlite3_stmt *st_top, *st_lat, *st_den, *st_co;
        sqlite3_prepare_v2(s, "SELECT tok, value FROM codes WHERE latent = ? "
                              "ORDER BY value DESC LIMIT 20", -1, &st_top, NULL);
        sqlite3_prepare_v2(s, "SELECT count(*), max(value), avg(value), "
                              "avg(value * value) FROM codes WHERE latent = ?", -1, &st_lat, NULL);
        sqlite3_prepare_v2(s, "SELECT latent, count(*) FROM codes GROUP BY latent", -1, &st_den,
                           NULL);
        sqlite3_prepare_v2(s, "SELECT b.latent, count(*) FROM codes a JOIN codes b "
                              "ON b.tok = a.tok WHERE a.latent = ? GROUP BY b.latent", -1, &st_co,
                           NULL);
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N_Q; i++)
                top[i] = sqlite_one(s, st_top, q[i]);
        printf("sqlite_top_p50_ms %.4f\nsqlite_top_p99_ms %.4f\n", pct(top, N_Q, 0.5),
               pct(top, N_Q, 0.99));
        /* what ldb_query_top returns: each example's 8 tokens of context either side
         * (within its sequence) and the latent's values there */
        sqlite3_stmt *st_ctx, *st_cv;
        sqlite3_prepare_v2(s, "SELECT pos, token FROM tokens WHERE pos BETWEEN ?1 - 8 AND ?1 + 8 "
                              "AND seq = (SELECT seq FROM tokens WHERE pos = ?1)", -1, &st_ctx,
                           NULL);
        /* +latent: read the 17 positions by the primary key (the planner would otherwise
         * scan all of a dense latent's rows through the (latent, value) index) */
        sqlite3_prepare_v2(s, "SELECT tok, value FROM codes WHERE tok BETWEEN ?2 - 8 AND ?2 + 8 "
                              "AND +latent = ?1", -1, &st_cv, NULL);
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N_Q; i++) {
                double a = fx_now();
                sqlite3_bind_int(st_top, 1, (int)q[i]);
                while (sqlite3_step(st_top) == SQLITE_ROW) {
                    sqlite3_int64 t = sqlite3_column_int64(st_top, 0);
                    sqlite3_bind_int64(st_ctx, 1, t);
                    while (sqlite3_step(st_ctx) == SQLITE_ROW)
                        ;
                    sqlite3_reset(st_ctx);
                    sqlite3_bind_int(st_cv, 1, (int)q[i]);
                    sqlite3_bind_int64(st_cv, 2, t);
                    while (sqlite3_step(st_cv) == SQLITE_ROW)
                        ;
                    sqlite3_reset(st_cv);
                }
                sqlite3_reset(st_top);
                top[i] = 1e3 * (fx_now() - a);
            }
        printf("sqlite_topctx_p50_ms %.4f\nsqlite_topctx_p99_ms %.4f\n", pct(top, N_Q, 0.5),
               pct(top, N_Q, 0.99));
        sqlite3_finalize(st_ctx), sqlite3_finalize(st_cv);
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N_Q; i++)
                lat[i] = sqlite_one(s, st_lat, q[i]);
        printf("sqlite_latent_p50_ms %.4f\nsqlite_latent_p99_ms %.4f\n", pct(lat, N_Q, 0.5),
               pct(lat, N_Q, 0.99));
        for (int r = 0; r < 3; r++)
            tmp[r] = sqlite_one(s, st_den, 0);
        printf("sqlite_density_ms %.3f\n", pct(tmp, 3, 0.5));
        for (int i = 0; i < nn; i++)
            tmp[i] = sqlite_one(s, st_co, near[i].latent);
        printf("sqlite_cooc_ms %.3f\n", pct(tmp, (size_t)nn, 0.5));
        sqlite3_finalize(st_top), sqlite3_finalize(st_lat), sqlite3_finalize(st_den);
        sqlite3_finalize(st_co);
        sqlite3_close(s);
    }
    free(tok);
    free(all);
    ldb_density_free(den);
    ldb_info_free(info);
    ldb_db_close(db);
    return 0;
}
