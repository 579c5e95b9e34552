/* covered.c — no silent duplicates: the sequences each run wrote codes for (the run
 * record's "seqs", docs/FORMAT.md "Run record"), and the rows of an input whose tokens
 * other runs already stored with codes of the run's dictionaries (issue 26). A run's
 * own sequences never count: a resumed run finds what the uninterrupted one found. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run_impl.h"

/* ---- seqset: ascending, disjoint, non-adjacent ranges ---- */

/* The first range whose last id is >= id (s->n when there is none). */
static size_t lower(const seqset *s, uint64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->a[2 * mid + 1] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int seqset_has(const seqset *s, uint64_t id)
{
    size_t i = lower(s, id);
    return i < s->n && s->a[2 * i] <= id;
}

static int room(seqset *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 8;
    while (cap < n)
        cap *= 2;
    uint64_t *a = realloc(s->a, cap * 2 * sizeof *a);
    if (!a)
        return -1;
    s->a = a;
    s->cap = cap;
    return 0;
}

int seqset_add(seqset *s, uint64_t id)
{
    if (s->n && s->a[2 * s->n - 1] + 1 == id) { /* a run's ids mostly come in order */
        s->a[2 * s->n - 1] = id;
        return 0;
    }
    size_t i = lower(s, id);
    if (i < s->n && s->a[2 * i] <= id)
        return 1;
    int left = i > 0 && s->a[2 * i - 1] + 1 == id, right = i < s->n && s->a[2 * i] == id + 1;
    if (left && right) { /* joins ranges i - 1 and i */
        s->a[2 * i - 1] = s->a[2 * i + 1];
        memmove(s->a + 2 * i, s->a + 2 * i + 2, (s->n - i - 1) * 2 * sizeof *s->a);
        s->n--;
    } else if (left) {
        s->a[2 * i - 1] = id;
    } else if (right) {
        s->a[2 * i] = id;
    } else {
        if (room(s, s->n + 1))
            return -1;
        memmove(s->a + 2 * i + 2, s->a + 2 * i, (s->n - i) * 2 * sizeof *s->a);
        s->a[2 * i] = s->a[2 * i + 1] = id;
        s->n++;
    }
    return 0;
}

uint64_t seqset_count(const seqset *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->a[2 * i + 1] - s->a[2 * i] + 1;
    return n;
}

int seqset_copy(seqset *dst, const seqset *src)
{
    if (room(dst, src->n))
        return -1;
    if (src->n)
        memcpy(dst->a, src->a, src->n * 2 * sizeof *src->a);
    dst->n = src->n;
    return 0;
}

void seqset_free(seqset *s)
{
    free(s->a);
    memset(s, 0, sizeof *s);
}

int seqset_from_json(seqset *s, const cJSON *a, int *have)
{
    const cJSON *e;
    s->n = 0;
    *have = a != NULL;
    if (!a)
        return LDB_OK;
    if (!cJSON_IsArray(a))
        return LDB_EFORMAT;
    cJSON_ArrayForEach(e, a) {
        double f = cJSON_GetNumberValue(cJSON_GetArrayItem(e, 0));
        double l = cJSON_GetNumberValue(cJSON_GetArrayItem(e, 1));
        /* (NaN when not a number: every compare below is false) */
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !(f >= 0 && f <= l && l < 9e15) ||
            (s->n && !((uint64_t)f > s->a[2 * s->n - 1] + 1)))
            return LDB_EFORMAT;
        if (room(s, s->n + 1))
            return LDB_ENOMEM;
        s->a[2 * s->n] = (uint64_t)f;
        s->a[2 * s->n + 1] = (uint64_t)l;
        s->n++;
    }
    return LDB_OK;
}

cJSON *seqset_to_json(const seqset *s)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < s->n; i++) {
        cJSON *e = cJSON_CreateArray();
        if (!e || !cJSON_AddItemToArray(a, e) ||
            !cJSON_AddItemToArray(e, cJSON_CreateNumber((double)s->a[2 * i])) ||
            !cJSON_AddItemToArray(e, cJSON_CreateNumber((double)s->a[2 * i + 1]))) {
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return a;
}

/* ---- rows already covered ---- */

typedef struct hit {
    const seqset *own;
    uint64_t seq;
    int dict;
} hit;

/* A sequence with the row's tokens that a dictionary of the run covers: another
 * run's (stops the search), or the run's own (goes on). */
static int take(void *arg, uint64_t seq, int i)
{
    hit *h = arg;
    if (seqset_has(h->own, seq))
        return 0;
    h->seq = seq;
    h->dict = i;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Naming the runs the covered sequences came from: how many of them each run of the
 * dictionaries wrote, and the runs of before (no "seqs"). */
typedef struct namer {
    run *r;
    const uint64_t *seq;       /* the covered rows' sequences, ascending */
    uint64_t n, named;         /* of them; found in some run's "seqs" */
    char *out;                 /* the runs, as the message names them */
    size_t len, cap;
    int shown, legacy;         /* runs named; runs of before found */
    char *old;                 /* the runs of before, named */
    size_t olen;
} namer;

/* Appends to buf (cap bytes, *len used), cutting what does not fit. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len += (size_t)k < cap - *len ? (size_t)k : cap - *len - 1;
}

/* "2026-12-08T10:00:00Z" of a record's Unix seconds. */
static void iso_time(double t, char out[32])
{
    struct tm tm;
    time_t s = (time_t)t;
    if (!(t > 0 && t < 1e12) || !gmtime_r(&s, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "an unknown time");
}

static int name_run(void *arg, const uint8_t id[32], const char *json, size_t len)
{
    namer *m = arg;
    run *r = m->r;
    if (!memcmp(id, r->id, 32))
        return 0;
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *d, *ds = cJSON_GetObjectItem(o, "dicts");
    int mine = 0;
    cJSON_ArrayForEach(d, ds)
        for (int i = 0; i < r->o->n_dicts; i++)
            mine |= cJSON_IsString(d) && !strcmp(d->valuestring, r->dd[i]->name);
    seqset s = {0};
    int have = 0;
    if (!mine || seqset_from_json(&s, cJSON_GetObjectItem(o, "seqs"), &have)) {
        cJSON_Delete(o);
        seqset_free(&s);
        return 0;
    }
    uint64_t k = 0;
    for (size_t i = 0; have && i < s.n; i++) { /* covered sequences in [a, b] */
        const uint64_t *lo = m->seq, *hi = m->seq + m->n;
        while (lo < hi) {
            const uint64_t *mid = lo + (hi - lo) / 2;
            if (*mid < s.a[2 * i])
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < m->seq + m->n && *lo <= s.a[2 * i + 1]; lo++)
            k++;
    }
    seqset_free(&s);
    char hex[65], when[32], num[32];
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(o, "source"));
    if (!src)
        src = cJSON_GetStringValue(cJSON_GetObjectItem(o, "tokens"));
    ingest_hex(id, hex);
    hex[12] = 0;
    iso_time(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "started")), when);
    if (have && k) {
        m->named += k;
        snprintf(num, sizeof num, "%llu", (unsigned long long)k);
        put(m->out, m->cap, &m->len, "%s run %s (source %s, started %s, %s of them)",
            m->shown ? ";" : "", hex, src ? src : "?", when, num);
        m->shown++;
    } else if (!have) {
        put(m->old, 400, &m->olen, "%s run %s (source %s, started %s)", m->legacy ? ";" : "",
            hex, src ? src : "?", when);
        m->legacy++;
    }
    cJSON_Delete(o);
    return 0;
}

/* The refusal: every row holds codes of the run's dictionaries already. */
static int refuse(run *r, ldb_txn *txn, uint64_t *seq)
{
    char runs[600] = "", old[400] = "";
    namer m = {r, seq, r->n_covered, 0, runs, 0, sizeof runs, 0, 0, old, 0};
    qsort(seq, r->n_covered, sizeof *seq, cmp_u64);
    int rc = ldb_run_each(r->db, txn, name_run, &m);
    if (rc)
        return rc;
    char from[1100];
    size_t len = 0;
    if (m.shown)
        put(from, sizeof from, &len, "from%s", runs);
    if (m.named < m.n) /* sequences no record with "seqs" names */
        put(from, sizeof from, &len, "%sfrom an earlier run of %s (made before runs recorded "
            "their sequences)", m.shown ? ", and " : "", r->dd[r->covered_dict]->name);
    if (m.named < m.n && m.legacy)
        put(from, sizeof from, &len, ":%s", old);
    else if (m.named < m.n)
        put(from, sizeof from, &len, " (its record is gone)");
    return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: all %llu sequences already hold codes "
                       "of '%s' (the same tokens), %s; nothing was written. `latentdb runs` lists "
                       "the runs; pass --again to store them again as new sequences",
                       r->o->tokens, (unsigned long long)r->n_rows,
                       r->dd[r->covered_dict]->name, from);
}

int ingest_load_seqs(run *r)
{
    int have = 0, rc = seqset_from_json(&r->seqs, cJSON_GetObjectItem(r->rec, "seqs"), &have);
    if (rc)
        return ldb_err_set(ldb_db_err(r->db), rc, "%s: the run's record has a damaged \"seqs\" "
                           "(the sequences it wrote)", r->o->tokens);
    /* a run of before, resumed: which sequences it wrote is not known, so it is not
     * told apart from other runs' (and its record gets no "seqs") */
    r->track = have || r->rows_done == 0;
    return LDB_OK;
}

int ingest_find_covered(run *r)
{
    ldb_db *db = r->db;
    int rc = ingest_load_seqs(r);
    if (rc || !r->track || (r->o->again && !r->o->skip_covered) || !r->n_rows)
        return LDB_OK;
    uint32_t *tok = malloc((size_t)r->ctx * sizeof *tok);
    uint64_t *seq = malloc((size_t)r->n_rows * sizeof *seq);
    r->covered = calloc((size_t)r->n_rows, 1);
    ldb_txn *txn = NULL;
    if (!tok || !seq || !r->covered) {
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ldb_snap_begin(db, &txn)))
        goto out;
    for (uint64_t row = 0; row < r->n_rows && !rc; row++) {
        uint64_t len = ingest_row_len(r, row);
        uint8_t h16[16];
        hit h = {&r->seqs, 0, 0};
        if ((rc = ingest_read_tokens(r, row * r->ctx, len, tok))) {
            rc = ldb_err_set(ldb_db_err(db), rc, "%s (nothing was ingested)", r->perr.msg);
            break;
        }
        ldb_tokens_hash(tok, (uint32_t)len, h16);
        rc = ldb_seqs_covered(db, txn, h16, r->ids, r->o->n_dicts, take, &h);
        if (rc == 1) {
            if (!r->n_covered)
                r->covered_dict = h.dict;
            r->covered[row] = 1;
            seq[r->n_covered++] = h.seq;
            rc = LDB_OK;
        }
    }
    if (!rc && r->new_run && r->n_covered == r->n_rows && !r->o->again && !r->o->skip_covered)
        rc = refuse(r, txn, seq);
out:
    ldb_snap_end(db, txn);
    free(tok);
    free(seq);
    return rc;
}
