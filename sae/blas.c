/* blas.c — loads OpenBLAS with dlopen, after choosing its kernel set: Debian's
 * 0.3.21 does not recognise AMD Zen 5 and would run its Haswell kernels there,
 * though the CPU has AVX-512 (docs/BENCHMARKS.md, Design measurements, "OpenBLAS core
 * and idle threads"). */
#include "blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "latentdb.h"

/* CBLAS enum values (cblas.h): row-major 101, no-trans 111, trans 112. */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef char *(*corename_fn)(void);
typedef int (*threads_fn)(void);
typedef void (*set_threads_fn)(int);

static struct {
    pthread_once_t once;
    int rc;
    void *lib;
    sgemm_fn sgemm;
    corename_fn corename;
    threads_fn threads;
    set_threads_fn set_threads;
    int nthreads;              /* the user's count, read at load */
    const char *origin;
    pthread_mutex_t solo_mu;
    int solo;                  /* encodes running with OpenBLAS held at one thread */
} blas = {PTHREAD_ONCE_INIT, LDB_EBLAS, NULL, NULL, NULL, NULL, NULL, 0, "openblas",
          PTHREAD_MUTEX_INITIALIZER, 0};

const char *ldb_blas_preferred_core(void)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
        return NULL;
    return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
}

static void load_once(void)
{
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so",
                                  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"};
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) {
        blas.origin = "user";
    } else {
        const char *core = ldb_blas_preferred_core();
        if (core && setenv("OPENBLAS_CORETYPE", core, 0) == 0)
            blas.origin = "latentdb";
    }
    /* OpenBLAS's idle threads spin on sched_yield for 2^28 cycles after each GEMM;
     * between GEMMs the encoder's threshold pass and the batch writer need those
     * cores, so they sleep after the minimum (2^4) unless the user chose otherwise
     * (ingest A/B on 204,800 tokens: 29.0-32.1 s against 33.9-38.5 s). */
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !blas.lib; i++)
        blas.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!blas.lib)
        return;
    blas.sgemm = (sgemm_fn)dlsym(blas.lib, "cblas_sgemm");
    blas.corename = (corename_fn)dlsym(blas.lib, "openblas_get_corename");
    blas.threads = (threads_fn)dlsym(blas.lib, "openblas_get_num_threads");
    blas.set_threads = (set_threads_fn)dlsym(blas.lib, "openblas_set_num_threads");
    blas.nthreads = blas.threads ? blas.threads() : 1;
    if (blas.nthreads < 1)
        blas.nthreads = 1;
    if (blas.sgemm)
        blas.rc = LDB_OK;
}

int ldb_blas_load(void)
{
    pthread_once(&blas.once, load_once);
    return blas.rc;
}

const char *ldb_blas_corename(void)
{
    if (blas.rc != LDB_OK || !blas.corename)
        return "not loaded";
    return blas.corename();
}

int ldb_blas_threads(void)
{
    return blas.rc == LDB_OK ? blas.nthreads : 0;
}

int ldb_blas_solo(int on)
{
    if (blas.rc != LDB_OK || !blas.set_threads || !blas.threads)
        return -1;
    pthread_mutex_lock(&blas.solo_mu);
    if (on && blas.solo++ == 0)
        blas.set_threads(1);
    else if (!on && --blas.solo == 0)
        blas.set_threads(blas.nthreads);
    pthread_mutex_unlock(&blas.solo_mu);
    return 0;
}

const char *ldb_blas_core_origin(void)
{
    return blas.origin;
}

const char *ldb_blas_better_core(void)
{
    static const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    if (blas.rc != LDB_OK || strcmp(blas.origin, "user") != 0)
        return NULL;
    const char *best = ldb_blas_preferred_core(), *now = ldb_blas_corename();
    if (!best)
        return NULL;
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (!strcasecmp(now, avx512[i]))
            return NULL;
    return best;
}

void ldb_blas_sgemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                       int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    blas.sgemm(101, ta ? 112 : 111, tb ? 112 : 111, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int ldb_blas_sgemm(int m, int n, int k, const float *a, const float *b, int trans_b, float *c)
{
    if (ldb_blas_load() != LDB_OK)
        return LDB_EBLAS;
    if (m <= 0 || n <= 0 || k <= 0)
        return LDB_EINVAL;
    ldb_blas_sgemm_rm(0, trans_b, m, n, k, 1.0f, a, k, b, trans_b ? k : n, 0.0f, c, n);
    return LDB_OK;
}
