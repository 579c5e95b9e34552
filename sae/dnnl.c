/* dnnl.c — the optional bf16 encoder GEMM: oneDNN's matmul with bf16 inputs and f32
 * output (thresholding stays f32, in encode.c). oneDNN (libdnnl.so.2, Debian's
 * libdnnl-dev 2.6) is loaded with dlopen on first use, like OpenBLAS, so that
 * commands which do not encode in bf16 never pay for it. oneDNN 2.6 has a bf16
 * matmul only on CPUs with AVX-512 (natively with AVX512_BF16); elsewhere it says
 * "unimplemented" and this module reports that.
 *
 * Like the f32 path, each encoder worker runs its own GEMM on its own thread (a
 * lane: stream, primitive, bf16 input), so one worker's thresholding overlaps the
 * other's product instead of waiting on a shared two-thread GEMM. Debian's oneDNN
 * threads with OpenMP, whose thread count is per calling thread: a lane sets it to
 * 1 around its work (and the primitive, which fixes its thread count when made,
 * is made inside). Without OpenMP's entry points (another oneDNN build) there is
 * one lane, whose GEMM uses every thread, and the caller takes turns on it.
 * 640 -> 16384 jumprelu, 32,768 tokens, 2 Zen 5 cores (f32 ceiling 22.0-23.0k
 * tokens/s): one shared GEMM 32.7-36.8k tokens/s, lanes 37.2-38.2k, lanes with
 * the weights in oneDNN's blocked layout 42.0-43.6k. The bf16 weights belong to the
 * dictionary (ldb_bf16w), so its encoders share one copy. */
#include "bf16mm.h"

#include <dlfcn.h>
#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry points used, resolved once. */
static struct {
    void *lib;
    int ok;
    dnnl_status_t (*engine_create)(dnnl_engine_t *, dnnl_engine_kind_t, size_t);
    dnnl_status_t (*engine_destroy)(dnnl_engine_t);
    dnnl_status_t (*stream_create)(dnnl_stream_t *, dnnl_engine_t, unsigned);
    dnnl_status_t (*stream_destroy)(dnnl_stream_t);
    dnnl_status_t (*stream_wait)(dnnl_stream_t);
    dnnl_status_t (*md_init_by_tag)(dnnl_memory_desc_t *, int, const dnnl_dims_t, dnnl_data_type_t,
                                    dnnl_format_tag_t);
    dnnl_status_t (*matmul_desc_init)(dnnl_matmul_desc_t *, const dnnl_memory_desc_t *,
                                      const dnnl_memory_desc_t *, const dnnl_memory_desc_t *,
                                      const dnnl_memory_desc_t *);
    dnnl_status_t (*pd_create)(dnnl_primitive_desc_t *, const_dnnl_op_desc_t,
                               const_dnnl_primitive_attr_t, dnnl_engine_t,
                               const_dnnl_primitive_desc_t);
    dnnl_status_t (*pd_query)(const_dnnl_primitive_desc_t, dnnl_query_t, int, void *);
    dnnl_status_t (*pd_destroy)(dnnl_primitive_desc_t);
    dnnl_status_t (*prim_create)(dnnl_primitive_t *, const_dnnl_primitive_desc_t);
    dnnl_status_t (*prim_destroy)(dnnl_primitive_t);
    dnnl_status_t (*prim_execute)(const_dnnl_primitive_t, dnnl_stream_t, int,
                                  const dnnl_exec_arg_t *);
    dnnl_status_t (*mem_create)(dnnl_memory_t *, const dnnl_memory_desc_t *, dnnl_engine_t, void *);
    dnnl_status_t (*mem_destroy)(dnnl_memory_t);
    const dnnl_memory_desc_t *(*query_md)(const_dnnl_primitive_desc_t, dnnl_query_t, int);
    size_t (*md_size)(const dnnl_memory_desc_t *);
    dnnl_status_t (*reorder_pd_create)(dnnl_primitive_desc_t *, const dnnl_memory_desc_t *,
                                       dnnl_engine_t, const dnnl_memory_desc_t *, dnnl_engine_t,
                                       const_dnnl_primitive_attr_t);
    int (*md_equal)(const dnnl_memory_desc_t *, const dnnl_memory_desc_t *);
    int (*omp_max_threads)(void); /* libgomp's, when oneDNN threads with OpenMP */
    void (*omp_set_threads)(int);
} dn;
static pthread_once_t dn_once = PTHREAD_ONCE_INIT;

static void dn_load(void)
{
    dn.lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!dn.lib)
        return;
#define SYM(field, name) (*(void **)&dn.field = dlsym(dn.lib, name)) != NULL
    dn.ok = SYM(engine_create, "dnnl_engine_create") && SYM(engine_destroy, "dnnl_engine_destroy") &&
            SYM(stream_create, "dnnl_stream_create") && SYM(stream_destroy, "dnnl_stream_destroy") &&
            SYM(stream_wait, "dnnl_stream_wait") &&
            SYM(md_init_by_tag, "dnnl_memory_desc_init_by_tag") &&
            SYM(matmul_desc_init, "dnnl_matmul_desc_init") &&
            SYM(pd_create, "dnnl_primitive_desc_create") &&
            SYM(pd_query, "dnnl_primitive_desc_query") &&
            SYM(pd_destroy, "dnnl_primitive_desc_destroy") &&
            SYM(prim_create, "dnnl_primitive_create") &&
            SYM(prim_destroy, "dnnl_primitive_destroy") &&
            SYM(prim_execute, "dnnl_primitive_execute") &&
            SYM(mem_create, "dnnl_memory_create") && SYM(mem_destroy, "dnnl_memory_destroy") &&
            SYM(query_md, "dnnl_primitive_desc_query_md") &&
            SYM(md_size, "dnnl_memory_desc_get_size") &&
            SYM(reorder_pd_create, "dnnl_reorder_primitive_desc_create") &&
            SYM(md_equal, "dnnl_memory_desc_equal");
    /* found in oneDNN's own dependencies (dlsym searches them) */
    if (!(SYM(omp_max_threads, "omp_get_max_threads") && SYM(omp_set_threads, "omp_set_num_threads")))
        dn.omp_max_threads = NULL, dn.omp_set_threads = NULL;
#undef SYM
}

/* One worker's GEMM: its stream, its primitive (made for M rows, on the lane's
 * thread) and its input rounded to bf16. */
struct lane {
    dnnl_stream_t st;
    dnnl_primitive_t prim;
    uint32_t M;                /* rows prim was made for (0: none) */
    uint16_t *x;               /* cap_rows x K, allocated on first use */
};

/* One layout of the bf16 weights; immutable once in its dictionary's list. */
struct ldb_bf16w {
    struct ldb_bf16w *next;
    dnnl_memory_desc_t wmd;    /* the layout */
    void *W;                   /* the weights in it */
};

struct ldb_bf16mm {
    uint32_t K, N;
    int trans;                 /* weights stored [N][K] */
    const void *W;             /* bf16 weights in oneDNN's layout (wmd), shared (ldb_bf16w) */
    dnnl_memory_desc_t wmd;    /* that layout, chosen by lane 0's first primitive */
    int have_wmd;
    uint32_t cap_rows;
    dnnl_engine_t eng;
    int nlanes;                /* 1 when oneDNN's threads cannot be set per thread */
    pthread_mutex_t one_lane;  /* then callers take turns at lane 0 */
    struct lane lane[LDB_BF16_LANES];
    char impl[64];
};

/* f32 -> bf16, rounding to nearest even (NaN kept quiet). */
static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

/* Makes lane l's primitive for M rows; LDB_EUNSUPPORTED when oneDNN has no bf16
 * matmul for this CPU. */
static int make_prim(ldb_bf16mm *m, struct lane *l, uint32_t M, char *msg, size_t cap)
{
    if (l->prim) {
        dn.prim_destroy(l->prim);
        l->prim = NULL;
        l->M = 0;
    }
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {M, m->K}, db = {m->K, m->N}, dc = {M, m->N};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dn.md_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab) ||
        dn.md_init_by_tag(&b, 2, db, dnnl_bf16, dnnl_format_tag_any) ||
        dn.md_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab) ||
        dn.matmul_desc_init(&md, &a, m->have_wmd ? &m->wmd : &b, NULL, &c)) {
        snprintf(msg, cap, "oneDNN refused the matmul description");
        return LDB_EUNSUPPORTED;
    }
    dnnl_status_t s = dn.pd_create(&pd, &md, NULL, m->eng, NULL);
    if (s == dnnl_unimplemented) {
        snprintf(msg, cap, "oneDNN has no bf16 matmul for this CPU (it needs AVX-512, natively "
                 "AVX512_BF16); use --precision f32");
        return LDB_EUNSUPPORTED;
    }
    const char *impl = NULL;
    if (s || dn.pd_query(pd, dnnl_query_impl_info_str, 0, &impl) || dn.prim_create(&l->prim, pd)) {
        if (pd)
            dn.pd_destroy(pd);
        snprintf(msg, cap, "oneDNN could not make a bf16 matmul (status %d)", (int)s);
        return LDB_EUNSUPPORTED;
    }
    if (!m->have_wmd) {
        m->wmd = *dn.query_md(pd, dnnl_query_weights_md, 0);
        m->have_wmd = 1;
        snprintf(m->impl, sizeof m->impl, "%s", impl ? impl : "?");
    }
    dn.pd_destroy(pd);
    l->M = M;
    return LDB_OK;
}

/* With lanes, oneDNN runs on the calling thread alone while a lane works; returns
 * the count to put back (0: none). */
static int solo_begin(const ldb_bf16mm *m)
{
    if (m->nlanes < 2)
        return 0;
    int prev = dn.omp_max_threads();
    if (prev == 1)
        return 0;
    dn.omp_set_threads(1);
    return prev;
}

static void solo_end(int prev)
{
    if (prev)
        dn.omp_set_threads(prev);
}

/* Destroys the memory objects made so far (NULL ones were not). */
static void mems_destroy(dnnl_memory_t *ms, int n)
{
    for (int i = 0; i < n; i++)
        if (ms[i])
            dn.mem_destroy(ms[i]);
}

/* Rounds W to bf16 (K x N, or N x K when trans) into out, laid out as m->wmd says,
 * with oneDNN's reorder: the blocked layout oneDNN picks spares its matmul a
 * repacking of all of W on every call (one lane, M = 1024: 496 against 426 GFLOP/s). */
static int lay_out_weights(const ldb_bf16mm *m, const float *W, void *out, char *msg, size_t cap)
{
    size_t nw = (size_t)m->K * m->N;
    uint16_t *plain = malloc(nw * 2);
    if (!plain) {
        snprintf(msg, cap, "out of memory for bf16 weights");
        return LDB_ENOMEM;
    }
    for (size_t i = 0; i < nw; i++)
        plain[i] = to_bf16(W[i]);
    dnnl_memory_desc_t src;
    dnnl_dims_t db = {m->K, m->N};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_stream_t st = NULL;
    dnnl_memory_t mem[2] = {NULL, NULL}; /* from, to */
    int bad = dn.md_init_by_tag(&src, 2, db, dnnl_bf16, m->trans ? dnnl_ba : dnnl_ab) ||
              dn.reorder_pd_create(&pd, &src, m->eng, &m->wmd, m->eng, NULL) ||
              dn.prim_create(&prim, pd) ||
              dn.stream_create(&st, m->eng, dnnl_stream_default_flags) ||
              dn.mem_create(&mem[0], &src, m->eng, plain) ||
              dn.mem_create(&mem[1], &m->wmd, m->eng, out);
    if (!bad) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mem[0]}, {DNNL_ARG_TO, mem[1]}};
        bad = dn.prim_execute(prim, st, 2, args) || dn.stream_wait(st);
    }
    mems_destroy(mem, 2);
    if (st)
        dn.stream_destroy(st);
    if (prim)
        dn.prim_destroy(prim);
    if (pd)
        dn.pd_destroy(pd);
    free(plain);
    if (bad) {
        snprintf(msg, cap, "oneDNN could not lay out the bf16 weights");
        return LDB_EUNSUPPORTED;
    }
    return LDB_OK;
}

/* Points m at the weights in its layout (m->wmd) from *shared, adding them there
 * first when no entry has that layout; mu held. */
static int find_weights(ldb_bf16mm *m, const float *W, ldb_bf16w **shared, char *msg, size_t cap)
{
    for (ldb_bf16w *w = *shared; w; w = w->next)
        if (dn.md_equal(&w->wmd, &m->wmd)) {
            m->W = w->W;
            return LDB_OK;
        }
    size_t size = dn.md_size(&m->wmd);
    ldb_bf16w *w = calloc(1, sizeof *w);
    if (w)
        w->W = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!w || !w->W) {
        ldb_bf16w_free(w);
        snprintf(msg, cap, "out of memory for bf16 weights");
        return LDB_ENOMEM;
    }
    int rc = lay_out_weights(m, W, w->W, msg, cap);
    if (rc) {
        ldb_bf16w_free(w);
        return rc;
    }
    w->wmd = m->wmd;
    w->next = *shared;
    *shared = w;
    m->W = w->W;
    return LDB_OK;
}

void ldb_bf16w_free(ldb_bf16w *list)
{
    while (list) {
        ldb_bf16w *next = list->next;
        free(list->W);
        free(list);
        list = next;
    }
}

int ldb_bf16mm_new(uint32_t K, uint32_t N, const float *W, int trans, uint32_t rows,
                   ldb_bf16w **shared, pthread_mutex_t *mu, ldb_bf16mm **out, char *msg,
                   size_t cap)
{
    *out = NULL;
    pthread_once(&dn_once, dn_load);
    if (!dn.ok) {
        snprintf(msg, cap, "cannot load oneDNN (libdnnl.so.2); install libdnnl-dev (make deps)");
        return LDB_EUNSUPPORTED;
    }
    ldb_bf16mm *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(msg, cap, "out of memory for bf16 weights");
        return LDB_ENOMEM;
    }
    m->K = K, m->N = N, m->trans = trans, m->cap_rows = rows;
    m->nlanes = dn.omp_set_threads ? LDB_BF16_LANES : 1;
    pthread_mutex_init(&m->one_lane, NULL);
    if (dn.engine_create(&m->eng, dnnl_cpu, 0)) {
        ldb_bf16mm_free(m);
        snprintf(msg, cap, "oneDNN could not create a CPU engine");
        return LDB_EUNSUPPORTED;
    }
    /* lane 0's primitive now, so that a CPU without a bf16 matmul is told at once;
     * it chooses the weights' layout, which the dictionary's list has or gets (every
     * encoder with the same tile size asks for the same). The reorder runs on this
     * thread alone too: a threaded one would leave libgomp a pool thread for the life
     * of the process, and LeakSanitizer (gcc 12) crashes reading that thread's
     * dynamic TLS at exit. */
    int prev = solo_begin(m);
    int rc = make_prim(m, &m->lane[0], rows, msg, cap);
    if (!rc) {
        pthread_mutex_lock(mu);
        rc = find_weights(m, W, shared, msg, cap);
        pthread_mutex_unlock(mu);
    }
    solo_end(prev);
    if (rc) {
        ldb_bf16mm_free(m);
        return rc;
    }
    *out = m;
    return LDB_OK;
}

static int run_lane(ldb_bf16mm *m, struct lane *l, const float *x, uint32_t M, float *c,
                    char *msg, size_t cap);

int ldb_bf16mm_run(ldb_bf16mm *m, int lane, const float *x, uint32_t M, float *c, char *msg,
                   size_t cap)
{
    if (M > m->cap_rows || lane < 0 || lane >= LDB_BF16_LANES) {
        snprintf(msg, cap, "bf16 matmul of %u rows on lane %d, made for %u rows and %d lanes", M,
                 lane, m->cap_rows, LDB_BF16_LANES);
        return LDB_EINVAL;
    }
    if (m->nlanes > 1)
        return run_lane(m, &m->lane[lane], x, M, c, msg, cap);
    pthread_mutex_lock(&m->one_lane);
    int rc = run_lane(m, &m->lane[0], x, M, c, msg, cap);
    pthread_mutex_unlock(&m->one_lane);
    return rc;
}

/* Lane l's GEMM: c = bf16(x) . W for M rows. */
static int run_lane(ldb_bf16mm *m, struct lane *l, const float *x, uint32_t M, float *c,
                    char *msg, size_t cap)
{
    if (!l->x && !(l->x = malloc((size_t)m->cap_rows * m->K * 2))) {
        snprintf(msg, cap, "out of memory for a bf16 tile");
        return LDB_ENOMEM;
    }
    if (!l->st && dn.stream_create(&l->st, m->eng, dnnl_stream_default_flags)) {
        snprintf(msg, cap, "oneDNN could not create a stream");
        return LDB_EUNSUPPORTED;
    }
    int prev = solo_begin(m), rc = LDB_OK;
    if (M != l->M && (rc = make_prim(m, l, M, msg, cap))) {
        solo_end(prev);
        return rc;
    }
    size_t n = (size_t)M * m->K;
    for (size_t i = 0; i < n; i++)
        l->x[i] = to_bf16(x[i]);
    dnnl_memory_desc_t a, cd;
    dnnl_dims_t da = {M, m->K}, dc = {M, m->N};
    dnnl_memory_t mem[3] = {NULL, NULL, NULL}; /* src, weights, dst */
    int bad = dn.md_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab) ||
              dn.md_init_by_tag(&cd, 2, dc, dnnl_f32, dnnl_ab) ||
              dn.mem_create(&mem[0], &a, m->eng, l->x) ||
              dn.mem_create(&mem[1], &m->wmd, m->eng, (void *)m->W) || /* only read */
              dn.mem_create(&mem[2], &cd, m->eng, c);
    if (!bad) {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
        bad = dn.prim_execute(l->prim, l->st, 3, args) || dn.stream_wait(l->st);
    }
    solo_end(prev);
    mems_destroy(mem, 3);
    if (bad) {
        snprintf(msg, cap, "oneDNN bf16 matmul failed");
        return LDB_EUNSUPPORTED;
    }
    return LDB_OK;
}

const char *ldb_bf16mm_impl(const ldb_bf16mm *m)
{
    return m ? m->impl : "none";
}

void ldb_bf16mm_free(ldb_bf16mm *m)
{
    if (!m)
        return;
    for (int i = 0; i < LDB_BF16_LANES; i++) {
        if (m->lane[i].prim)
            dn.prim_destroy(m->lane[i].prim);
        if (m->lane[i].st)
            dn.stream_destroy(m->lane[i].st);
        free(m->lane[i].x);
    }
    if (m->eng)
        dn.engine_destroy(m->eng);
    pthread_mutex_destroy(&m->one_lane);
    free(m);
}
