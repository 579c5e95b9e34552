/* inputid.c — input identity for runs: stat signatures, sampled hashes, and the one
 * pass that hashes a whole input (and scans it for NaN/Inf) on several threads.
 * Invariant: the content hash depends only on the file's bytes, not on the threads. */
#include "inputid.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/half.h"
#include "../common/sha256.h"
#include "latentdb.h"

#define PIECE ((uint64_t)64 << 20) /* the content hash's unit */
#define CHUNK ((uint64_t)256 << 10) /* scanned, then hashed while in cache */
#define SAMPLES 64
#define SAMPLE_BYTES 4096
#define MAX_THREADS 8

void ingest_statsig(const char *path, char sig[LDB_STATSIG_LEN])
{
    struct stat st;
    sig[0] = 0;
    if (stat(path, &st) == 0)
        snprintf(sig, LDB_STATSIG_LEN, "%llu:%llu:%llu:%lld.%09ld:%lld.%09ld",
                 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                 (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

void ingest_hex(const uint8_t h[32], char hex[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

void ingest_sampled_hash(const uint8_t *data, uint64_t size, uint64_t head, uint8_t out[32])
{
    ldb_sha h;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(size >> (8 * i));
    ldb_sha_init(&h);
    ldb_sha_update(&h, le, 8);
    if (size <= (uint64_t)SAMPLES * SAMPLE_BYTES) {
        ldb_sha_update(&h, data, size);
    } else {
        ldb_sha_update(&h, data, head < size ? head : size);
        for (uint64_t i = 0; i < SAMPLES; i++) /* the first and last blocks among them */
            ldb_sha_update(&h, data + (size - SAMPLE_BYTES) * i / (SAMPLES - 1), SAMPLE_BYTES);
    }
    ldb_sha_final(&h, out);
}

typedef struct pass {
    const uint8_t *data;
    uint64_t size, npieces;
    uint8_t *piece;            /* npieces x 32, or NULL: no content hash */
    uint64_t scan_off, n_scan;
    int dtype;
    size_t es;
    pthread_mutex_t mu;
    uint64_t next;             /* the next piece to claim */
    uint64_t bad;              /* the first NaN/Inf element found so far */
    int nomem;
} pass;

/* The first element of the scan whose first byte lies at or after byte b. */
static uint64_t elem_at(const pass *p, uint64_t b)
{
    if (b <= p->scan_off)
        return 0;
    uint64_t e = (b - p->scan_off + p->es - 1) / p->es;
    return e < p->n_scan ? e : p->n_scan;
}

static void run_piece(pass *p, uint64_t i)
{
    uint64_t lo = i * PIECE, hi = lo + PIECE < p->size ? lo + PIECE : p->size;
    ldb_sha h;
    if (p->piece && ldb_sha_init(&h)) {
        pthread_mutex_lock(&p->mu);
        p->nomem = 1;
        pthread_mutex_unlock(&p->mu);
        return;
    }
    for (uint64_t a = lo; a < hi; a += CHUNK) {
        uint64_t b = a + CHUNK < hi ? a + CHUNK : hi;
        uint64_t e0 = elem_at(p, a), e1 = elem_at(p, b);
        if (e1 > e0) {
            uint64_t k = ldb_find_nonfinite(p->data + p->scan_off + e0 * p->es, p->dtype, e1 - e0);
            if (k != UINT64_MAX) {
                pthread_mutex_lock(&p->mu);
                if (e0 + k < p->bad)
                    p->bad = e0 + k;
                pthread_mutex_unlock(&p->mu);
                if (!p->piece)
                    return;
            }
        }
        if (p->piece)
            ldb_sha_update(&h, p->data + a, b - a);
    }
    if (p->piece)
        ldb_sha_final(&h, p->piece + 32 * i);
}

/* Claims pieces in order until none is left, or a NaN/Inf lies before the next. */
static void *pass_main(void *arg)
{
    pass *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        uint64_t i = p->next++;
        int go = i < p->npieces && !p->nomem &&
                 (p->bad == UINT64_MAX || elem_at(p, i * PIECE) <= p->bad);
        pthread_mutex_unlock(&p->mu);
        if (!go)
            return NULL;
        run_piece(p, i);
    }
}

int ingest_pass(const uint8_t *data, uint64_t size, uint8_t content[32], uint64_t scan_off,
                uint64_t n_scan, int dtype, uint64_t *bad)
{
    pass p = {.data = data, .size = size, .npieces = (size + PIECE - 1) / PIECE,
              .scan_off = scan_off, .n_scan = n_scan, .dtype = dtype,
              .es = dtype == LDB_F32 ? 4 : 2, .bad = UINT64_MAX};
    pthread_t th[MAX_THREADS];
    int nt = 0, started = 0;
    if (content && !(p.piece = malloc(p.npieces ? p.npieces * 32 : 1)))
        return -1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nt = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    if ((uint64_t)nt > p.npieces)
        nt = p.npieces ? (int)p.npieces : 1;
    pthread_mutex_init(&p.mu, NULL);
    for (int i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, pass_main, &p) == 0)
            started++;
    pass_main(&p); /* the calling thread is one of them */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    if (bad)
        *bad = p.bad;
    if (content && !p.nomem && p.bad == UINT64_MAX) {
        ldb_sha h;
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(size >> (8 * i));
        if (ldb_sha_init(&h))
            p.nomem = 1;
        ldb_sha_update(&h, le, 8);
        ldb_sha_update(&h, p.piece, p.npieces * 32);
        ldb_sha_final(&h, content);
    }
    free(p.piece);
    return p.nomem ? -1 : 0;
}
