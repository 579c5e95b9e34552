/* runrec.c — the run record (docs/FORMAT.md, "Run record"): a run's key from its
 * inputs' content (sampled blocks, then the content hash when two differ), the lookup
 * that resumes an unfinished run or finds a finished one, legacy keys of records made
 * before, and the progress each batch writes. Invariant: a record is taken for this
 * run only when every input is byte for byte the one it recorded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/sha256.h"
#include "run_impl.h"

/* The run id of records made before content identity (format 3 until 2026-12): it
 * hashed each input's size, mtime and header, so a touch made a finished run new.
 * Still looked up, so that an old run resumes and an old finished run stays done. */
static void legacy_hash_file(ldb_sha *h, const input *in)
{
    struct stat st;
    uint64_t v[3] = {0};
    if (stat(in->f.path, &st) == 0) {
        v[0] = (uint64_t)st.st_size;
        v[1] = (uint64_t)st.st_mtim.tv_sec;
        v[2] = (uint64_t)st.st_mtim.tv_nsec;
    }
    ldb_sha_update(h, v, sizeof v);
    ldb_sha_update(h, in->f.data, in->a.data_offset);
}

static void hash_dicts(run *r, ldb_sha *h)
{
    for (int i = 0; i < r->o->n_dicts; i++) {
        cJSON *o = cJSON_Parse(r->dd[i]->json);
        const cJSON *sha = cJSON_GetObjectItem(o, "sha256");
        ldb_sha_update(h, r->dd[i]->name, strlen(r->dd[i]->name) + 1);
        if (cJSON_IsString(sha))
            ldb_sha_update(h, sha->valuestring, strlen(sha->valuestring));
        cJSON_Delete(o);
    }
}

/* A run's codes in its identity: "bf16" or "exact"; the f32 runs of before keep the
 * identity they had (nothing). */
static void hash_precision(ldb_sha *h, int precision)
{
    if (precision == LDB_PRECISION_BF16)
        ldb_sha_update(h, "bf16", 4);
    else if (precision == LDB_PRECISION_EXACT)
        ldb_sha_update(h, "exact", 5);
}

static void legacy_id(run *r, int again, int precision, uint8_t id[32])
{
    ldb_sha h;
    ldb_sha_init(&h);
    hash_dicts(r, &h);
    legacy_hash_file(&h, &r->tok);
    legacy_hash_file(&h, &r->act[0]); /* records of this scheme read one activations file */
    uint64_t x[2] = {r->ctx, (uint64_t)again};
    ldb_sha_update(&h, x, sizeof x);
    hash_precision(&h, precision);
    ldb_sha_final(&h, id);
}

/* The run key (docs/FORMAT.md, "Run record"): the dictionaries, each input's sampled
 * hash (size, header, 64 blocks), --ctx, the --again counter and the precision.
 * With full set, the inputs' content hashes too: the key of a run whose sampled key
 * is taken by a run of other content (a byte changed between the samples). */
static void run_key(run *r, int again, int precision, int full, uint8_t id[32])
{
    ldb_sha h;
    ldb_sha_init(&h);
    ldb_sha_update(&h, full ? "latentdb run 2 content" : "latentdb run 2", full ? 23 : 15);
    hash_dicts(r, &h);
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in);
    for (int i = 0; i < n; i++)
        ldb_sha_update(&h, full ? in[i]->content : in[i]->sampled, 32);
    uint64_t x[2] = {r->ctx, (uint64_t)again};
    ldb_sha_update(&h, x, sizeof x);
    hash_precision(&h, precision);
    ldb_sha_final(&h, id);
}

/* The content hash of an input, computed once (a whole read, on several threads). */
int ingest_input_content(run *r, input *in)
{
    if (in->have_content)
        return LDB_OK;
    if (ingest_pass(in->f.data, in->f.size, in->content, 0, 0, LDB_F32, NULL))
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    in->have_content = 1;
    return LDB_OK;
}

/* Whether a record's inputs are this run's, byte for byte: an input whose stat
 * signature is the one recorded is (its bytes have not changed since they were
 * hashed); another is hashed again and compared. *same is 0 or 1. */
static int same_inputs(run *r, const cJSON *rec, int *same)
{
    const cJSON *ins = cJSON_GetObjectItem(rec, "inputs");
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in);
    *same = cJSON_IsArray(ins) && cJSON_GetArraySize(ins) == n;
    for (int i = 0; i < n && *same; i++) {
        const cJSON *e = cJSON_GetArrayItem(ins, i);
        const char *sig = cJSON_GetStringValue(cJSON_GetObjectItem(e, "stat"));
        const char *con = cJSON_GetStringValue(cJSON_GetObjectItem(e, "content"));
        if (!con) {
            *same = 0;
            break;
        }
        if (sig && *in[i]->sig && !strcmp(sig, in[i]->sig))
            continue;
        int rc = ingest_input_content(r, in[i]);
        if (rc)
            return rc;
        char hex[65];
        ingest_hex(in[i]->content, hex);
        *same = !strcmp(hex, con);
    }
    return LDB_OK;
}

/* Looks up a run: its record (owned by the caller, NULL when there is none) and the
 * key it has or will have. The sampled key first, its record taken when its inputs
 * are byte for byte these; else the key with content hashes; else the legacy id. */
static int lookup_run(run *r, ldb_txn *txn, int again, int prec, uint8_t id[32], cJSON **rec)
{
    const char *json;
    size_t len;
    int same = 0, rc;
    *rec = NULL;
    run_key(r, again, prec, 0, id);
    int grc = ldb_run_get(r->db, txn, id, &json, &len);
    if (grc == LDB_OK) {
        cJSON *o = cJSON_ParseWithLength(json, len);
        if ((rc = same_inputs(r, o, &same)) || same) {
            *rec = rc ? NULL : o;
            if (rc)
                cJSON_Delete(o);
            return rc;
        }
        cJSON_Delete(o);
        input *in[1 + LDB_MAX_LAYERS];
        int n = ingest_inputs(r, in);
        for (int i = 0; i < n; i++)
            if ((rc = ingest_input_content(r, in[i])))
                return rc;
        run_key(r, again, prec, 1, id);
        grc = ldb_run_get(r->db, txn, id, &json, &len);
    } else if (grc == LDB_ENOTFOUND) {
        uint8_t old[32];
        legacy_id(r, again, prec, old);
        if ((grc = ldb_run_get(r->db, txn, old, &json, &len)) == LDB_OK)
            memcpy(id, old, 32);
        else if (grc == LDB_ENOTFOUND)
            run_key(r, again, prec, 0, id);
    }
    if (grc == LDB_ENOTFOUND)
        return LDB_OK;
    if (grc)
        return grc;
    if (!(*rec = cJSON_ParseWithLength(json, len)))
        return ldb_err_set(ldb_db_err(r->db), LDB_EFORMAT, "runs: a run record that is not JSON");
    return LDB_OK;
}

/* A run record whose run is unfinished (status "running"). */
static int run_unfinished(const cJSON *rec)
{
    const cJSON *st = cJSON_GetObjectItem(rec, "status");
    return cJSON_IsString(st) && !strcmp(st->valuestring, "running");
}

/* A run's codes, as its identity and record name them: LDB_PRECISION_BF16 ("bf16"),
 * LDB_PRECISION_EXACT ("exact": the exact encoder, whatever its screen) or
 * LDB_PRECISION_F32 ("f32": the plain f32 GEMM of latentdb before exact codes,
 * which runs no more; and imports of codes, as they were recorded before). */
static int run_precision(const ldb_ingest_opts *o)
{
    if (o->codes) /* an import encodes nothing: it keeps the identity (and record) it had */
        return LDB_PRECISION_F32;
    return o->precision == LDB_PRECISION_BF16 ? LDB_PRECISION_BF16 : LDB_PRECISION_EXACT;
}

static const char *precision_name(int prec)
{
    return prec == LDB_PRECISION_BF16 ? "bf16" : prec == LDB_PRECISION_EXACT ? "exact" : "f32";
}

/* The same inputs were ingested, or are being ingested, in another precision: a
 * new run would store every sequence twice (--again says that is meant). */
static int other_precision(run *r, ldb_txn *txn, int prec)
{
    static const int all[] = {LDB_PRECISION_EXACT, LDB_PRECISION_BF16, LDB_PRECISION_F32};
    for (int i = 0; i < 3; i++) {
        uint8_t id[32];
        cJSON *o = NULL;
        int other = all[i];
        if (other == prec)
            continue;
        int rc = lookup_run(r, txn, 0, other, id, &o);
        if (rc)
            return rc;
        if (!o)
            continue;
        int running = run_unfinished(o);
        cJSON_Delete(o);
        const char *was = precision_name(other);
        if (running && other == LDB_PRECISION_F32)
            return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: an unfinished run of the same "
                               "dictionaries, inputs and --ctx is in this DB, with the plain f32 "
                               "codes of latentdb before exact encoding; it cannot be resumed with "
                               "exact codes: pass --again to ingest these inputs as new sequences",
                               r->o->tokens);
        if (running)
            return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: an unfinished --precision %s run "
                               "of the same dictionaries, inputs and --ctx is in this DB; finish it "
                               "with --precision %s, or pass --again to ingest these inputs as new "
                               "sequences", r->o->tokens, was, was);
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: this run (the same dictionaries, "
                           "inputs and --ctx) is done already, with %s codes; pass --again to "
                           "ingest it again as new sequences", r->o->tokens, was);
    }
    return LDB_OK;
}

/* The record's inputs: path, size, content hash and stat signature of each (a new
 * run's, once check_values has hashed them; a resumed run's, with the signatures of
 * now, so that the next command need not hash the files again). */
int ingest_put_inputs(run *r)
{
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in);
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n && a; i++) {
        char hex[65];
        cJSON *e = cJSON_CreateObject();
        ingest_hex(in[i]->content, hex);
        if (!e || !cJSON_AddItemToArray(a, e) ||
            !cJSON_AddStringToObject(e, "path", in[i]->f.path) ||
            !cJSON_AddNumberToObject(e, "size", (double)in[i]->f.size) ||
            !cJSON_AddStringToObject(e, "content", hex) ||
            !cJSON_AddStringToObject(e, "stat", in[i]->sig)) {
            cJSON_Delete(a);
            a = NULL;
        }
    }
    if (!a)
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    cJSON_DeleteItemFromObject(r->rec, "inputs");
    cJSON_AddItemToObject(r->rec, "inputs", a);
    return LDB_OK;
}

/* A finished run whose inputs were hashed again (touched, copied) and found equal
 * keeps their signatures of now, so that the next command need not read them again.
 * Best effort, in a transaction of its own: should it fail, the next command hashes. */
static void restat_done(run *r, cJSON *rec)
{
    char hex[65];
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in);
    cJSON *ins = cJSON_GetObjectItem(rec, "inputs");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_GetArrayItem(ins, i);
        if (!in[i]->have_content || !e)
            continue;
        const char *was = cJSON_GetStringValue(cJSON_GetObjectItem(e, "content"));
        ingest_hex(in[i]->content, hex);
        if (!was || strcmp(was, hex))
            return; /* cannot be: same_inputs compared them */
        cJSON_ReplaceItemInObject(e, "stat", cJSON_CreateString(in[i]->sig));
    }
    char *s = cJSON_PrintUnformatted(rec);
    if (s)
        ldb_run_put_alone(r->db, r->id, s); /* best effort: see above */
    free(s);
}

int ingest_inputs(run *r, input **in)
{
    in[0] = &r->tok;
    for (int i = 0; i < r->n_act; i++)
        in[1 + i] = &r->act[i];
    return 1 + r->n_act;
}

/* Whether every input (any input) has its content hash. */
static int all_hashed(run *r)
{
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in), all = 1;
    for (int i = 0; i < n; i++)
        all &= in[i]->have_content;
    return all;
}

static int any_hashed(run *r)
{
    input *in[1 + LDB_MAX_LAYERS];
    int n = ingest_inputs(r, in), any = 0;
    for (int i = 0; i < n; i++)
        any |= in[i]->have_content;
    return any;
}

/* A new run's record: the fields every run has, in their order (the caller adds its
 * own: a file run's "again", a stream's "source", "stream" and "rows_sha"; then the
 * precision). */
static cJSON *new_record(run *r, const char *tokens, const char *acts, uint64_t rows)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(o, "dicts");
    for (int i = 0; i < r->o->n_dicts; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(r->dd[i]->name));
    cJSON_AddStringToObject(o, "tokens", tokens);
    cJSON_AddStringToObject(o, "acts", acts);
    cJSON_AddNumberToObject(o, "ctx", r->ctx);
    cJSON_AddNumberToObject(o, "rows", (double)rows);
    cJSON_AddNumberToObject(o, "rows_done", 0);
    cJSON_AddStringToObject(o, "status", "running");
    cJSON_AddNumberToObject(o, "started", (double)time(NULL));
    cJSON_AddNumberToObject(o, "finished", 0);
    return o;
}

/* Finds the run to do: a new one, or an unfinished one to resume. */
int ingest_find_run(run *r)
{
    ldb_db *db = r->db;
    ldb_txn *txn;
    int rc = ldb_snap_begin(db, &txn);
    if (rc)
        return rc;
    int prec = run_precision(r->o);
    cJSON *done = NULL;
    for (int again = 0;; again++) {
        cJSON *o = NULL;
        if ((rc = lookup_run(r, txn, again, prec, r->id, &o)))
            break;
        if (!o && again == 0 && !r->o->again && !r->o->codes &&
            (rc = other_precision(r, txn, prec)))
            break;
        if (!o) { /* a new run (again > 0 only with --again: see below) */
            r->rec = new_record(r, r->o->tokens, r->acts_name, r->n_rows);
            cJSON_AddNumberToObject(r->rec, "again", again);
            cJSON_AddStringToObject(r->rec, "precision", precision_name(prec));
            /* the label its sequences were stored under (a stream's has it too) */
            cJSON_AddStringToObject(r->rec, "source", r->o->source ? r->o->source : r->o->tokens);
            r->new_run = 1;
            break;
        }
        if (run_unfinished(o)) {
            r->rec = o; /* resume */
            r->rows_done = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "rows_done"));
            double nr = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "next_rows"));
            r->next_rows = nr >= 1 && nr < 1e15 ? (uint64_t)nr : 0;
            /* a run of this scheme whose inputs were hashed again (touched, copied)
             * records their signatures of now; a legacy record stays as it was */
            if (cJSON_GetObjectItem(o, "inputs") && all_hashed(r))
                rc = ingest_put_inputs(r);
            break;
        }
        if (!r->o->again) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "%s: this run (the same dictionaries, inputs "
                             "and --ctx) is done already; pass --again to ingest it again as new "
                             "sequences", r->o->tokens);
            if (cJSON_GetObjectItem(o, "inputs") && any_hashed(r))
                done = o; /* hashed again and found equal: record the signatures of now */
            else
                cJSON_Delete(o);
            break;
        }
        cJSON_Delete(o);
    }
    ldb_snap_end(db, txn);
    if (done) {
        restat_done(r, done);
        cJSON_Delete(done);
    }
    if (!rc && !r->rec)
        rc = ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    return rc;
}

/* Records the run's progress: rows [from, rows_done) are in this transaction. The
 * record in the database must still say `from`: another process running the same
 * run at the same time would otherwise store its rows twice. */
int ingest_put_run(run *r, ldb_writer *w, uint64_t from, uint64_t rows_done, uint64_t next_rows,
                   int done, const seqset *seqs)
{
    const char *json;
    size_t len;
    int grc = ldb_run_get(r->db, ldb_writer_txn(w), r->id, &json, &len);
    uint64_t have = 0;
    if (grc == LDB_OK) {
        cJSON *o = cJSON_ParseWithLength(json, len);
        have = o ? (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "rows_done")) : UINT64_MAX;
        cJSON_Delete(o);
    } else if (grc != LDB_ENOTFOUND) {
        return grc;
    }
    if (have != from)
        return ldb_err_set(ldb_db_err(r->db), LDB_EINVAL, "%s: another ingest of this run is writing "
                           "to the database (it has done %llu rows, this one expected %llu)",
                           r->o->tokens, (unsigned long long)have, (unsigned long long)from);
    cJSON_ReplaceItemInObject(r->rec, "rows_done", cJSON_CreateNumber((double)rows_done));
    if (!cJSON_GetObjectItem(r->rec, "next_rows"))
        cJSON_AddNumberToObject(r->rec, "next_rows", 0);
    cJSON_ReplaceItemInObject(r->rec, "next_rows", cJSON_CreateNumber((double)next_rows));
    if (r->track) { /* the sequences it wrote codes for, with this batch's */
        cJSON *a = seqset_to_json(seqs ? seqs : &r->seqs);
        if (!a)
            return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
        cJSON_DeleteItemFromObject(r->rec, "seqs");
        cJSON_AddItemToObject(r->rec, "seqs", a);
    }
    if (done) {
        cJSON_ReplaceItemInObject(r->rec, "status", cJSON_CreateString("done"));
        cJSON_ReplaceItemInObject(r->rec, "finished", cJSON_CreateNumber((double)time(NULL)));
    }
    char *s = cJSON_PrintUnformatted(r->rec);
    if (!s)
        return ldb_err_set(ldb_db_err(r->db), LDB_ENOMEM, "out of memory");
    int rc = ldb_run_put(r->db, ldb_writer_txn(w), r->id, s);
    free(s);
    return rc;
}

/* A stream's key (docs/FORMAT.md, "Run record"): the dictionaries, the source label,
 * ctx and the precision; the caller's rows are its only input. */
static void stream_key(run *r, int precision, uint8_t id[32])
{
    ldb_sha h;
    ldb_sha_init(&h);
    ldb_sha_update(&h, "latentdb stream 1", 17);
    hash_dicts(r, &h);
    ldb_sha_update(&h, r->o->source, strlen(r->o->source) + 1);
    uint64_t x = r->ctx;
    ldb_sha_update(&h, &x, sizeof x);
    hash_precision(&h, precision);
    ldb_sha_final(&h, id);
}

int ingest_find_stream(run *r, uint8_t rows_sha[32])
{
    ldb_db *db = r->db;
    ldb_txn *txn;
    int rc = ldb_snap_begin(db, &txn), prec = run_precision(r->o);
    if (rc)
        return rc;
    memset(rows_sha, 0, 32);
    static const int all[] = {LDB_PRECISION_EXACT, LDB_PRECISION_BF16};
    for (int i = 0; i < 2 && !rc; i++) { /* this source in the other precision: refused */
        uint8_t id[32];
        const char *json;
        size_t len;
        if (all[i] == prec)
            continue;
        stream_key(r, all[i], id);
        int grc = ldb_run_get(db, txn, id, &json, &len);
        if (grc == LDB_OK)
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s' of these dictionaries was "
                             "started with --precision %s codes; a stream keeps its precision "
                             "(give this one another source name)", r->o->source,
                             precision_name(all[i]));
        else if (grc != LDB_ENOTFOUND)
            rc = grc;
    }
    const char *json;
    size_t len;
    stream_key(r, prec, r->id);
    int grc = rc ? rc : ldb_run_get(db, txn, r->id, &json, &len);
    if (grc == LDB_ENOTFOUND) {
        /* tokens and acts: the catalog's columns */
        r->rec = new_record(r, r->o->source, "(streamed)", 0);
        cJSON_AddStringToObject(r->rec, "source", r->o->source);
        cJSON_AddBoolToObject(r->rec, "stream", 1);
        cJSON_AddStringToObject(r->rec, "rows_sha", "");
        cJSON_AddStringToObject(r->rec, "precision", precision_name(prec));
        r->new_run = 1;
        rc = r->rec ? LDB_OK : ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
    } else if (grc == LDB_OK) {
        cJSON *o = cJSON_ParseWithLength(json, len);
        const cJSON *sha = cJSON_GetObjectItem(o, "rows_sha");
        double done = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "rows_done"));
        if (!o || !cJSON_IsString(sha) || !(done >= 0 && done < 1e18)) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "runs: the run record of stream '%s' "
                             "is damaged", r->o->source);
        } else if (!run_unfinished(o)) {
            rc = ldb_err_set(ldb_db_err(db), LDB_EINVAL, "stream '%s' of these dictionaries is "
                             "finished (%.0f rows); give new rows another source name",
                             r->o->source, done);
        } else {
            r->rows_done = (uint64_t)done;
            for (int i = 0; i < 32 && sha->valuestring[0]; i++)
                if (sscanf(sha->valuestring + 2 * i, "%2hhx", &rows_sha[i]) != 1) {
                    rc = ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "runs: the run record of "
                                     "stream '%s' is damaged (rows_sha)", r->o->source);
                    break;
                }
        }
        if (rc)
            cJSON_Delete(o);
        else
            r->rec = o;
    } else {
        rc = grc;
    }
    ldb_snap_end(db, txn);
    return rc;
}

typedef struct ctx_find {
    run *r;
    int prec;
    uint32_t ctx;
} ctx_find;

/* A record of a stream of this source: its ctx, kept when the key that ctx makes
 * (the dictionaries' hashes, source and precision in it) is the record's own. */
static int stream_ctx_of(void *arg, const uint8_t id[32], const char *json, size_t len)
{
    ctx_find *f = arg;
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *st = cJSON_GetObjectItem(o, "stream"), *src = cJSON_GetObjectItem(o, "source");
    double c = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "ctx"));
    if (cJSON_IsTrue(st) && cJSON_IsString(src) && !strcmp(src->valuestring, f->r->o->source) &&
        c >= 1 && c <= UINT32_MAX) {
        uint8_t key[32];
        uint32_t keep = f->r->ctx;
        f->r->ctx = (uint32_t)c;
        stream_key(f->r, f->prec, key);
        f->r->ctx = keep;
        if (!memcmp(key, id, 32))
            f->ctx = (uint32_t)c;
    }
    cJSON_Delete(o);
    return f->ctx ? 1 : 0;
}

int ingest_stream_ctx(run *r, uint32_t *ctx)
{
    ldb_txn *txn;
    ctx_find f = {r, run_precision(r->o), 0};
    int rc = ldb_snap_begin(r->db, &txn);
    if (rc)
        return rc;
    rc = ldb_run_each(r->db, txn, stream_ctx_of, &f);
    ldb_snap_end(r->db, txn);
    *ctx = f.ctx;
    return rc == 1 ? LDB_OK : rc;
}
