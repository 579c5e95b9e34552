/* dnnl.c — the optional bf16 encoder GEMM: oneDNN's matmul with bf16 inputs and f32
 * output (thresholding stays f32, in encode.c). oneDNN (libdnnl.so.2, Debian's
 * libdnnl-dev 2.6) is loaded with dlopen on first use, like OpenBLAS, so that
 * commands which do not encode in bf16 never pay for it. oneDNN 2.6 has a bf16
 * matmul only on CPUs with AVX-512 (natively with AVX512_BF16); elsewhere it says
 * "unimplemented" and this module reports that. */
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
            SYM(mem_create, "dnnl_memory_create") && SYM(mem_destroy, "dnnl_memory_destroy");
#undef SYM
}

struct ldb_bf16mm {
    uint32_t K, N;
    int trans;                 /* weights stored [N][K] */
    uint16_t *W;               /* bf16 weights */
    uint16_t *x;               /* bf16 rows of the current tile, cap_rows x K */
    uint32_t cap_rows;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    uint32_t M;                /* rows the primitive was made for (0: none) */
    dnnl_primitive_t prim;
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

/* Makes the primitive for M rows; LDB_EUNSUPPORTED when oneDNN has no bf16 matmul
 * for this CPU. */
static int make_prim(ldb_bf16mm *m, uint32_t M, char *msg, size_t cap)
{
    if (m->prim) {
        dn.prim_destroy(m->prim);
        m->prim = NULL;
        m->M = 0;
    }
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {M, m->K}, db = {m->K, m->N}, dc = {M, m->N};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dn.md_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab) ||
        dn.md_init_by_tag(&b, 2, db, dnnl_bf16, m->trans ? dnnl_ba : dnnl_ab) ||
        dn.md_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab) ||
        dn.matmul_desc_init(&md, &a, &b, NULL, &c)) {
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
    if (s || dn.pd_query(pd, dnnl_query_impl_info_str, 0, &impl) || dn.prim_create(&m->prim, pd)) {
        if (pd)
            dn.pd_destroy(pd);
        snprintf(msg, cap, "oneDNN could not make a bf16 matmul (status %d)", (int)s);
        return LDB_EUNSUPPORTED;
    }
    snprintf(m->impl, sizeof m->impl, "%s", impl ? impl : "?");
    dn.pd_destroy(pd);
    m->M = M;
    return LDB_OK;
}

int ldb_bf16mm_new(uint32_t K, uint32_t N, const float *W, int trans, uint32_t rows,
                   ldb_bf16mm **out, char *msg, size_t cap)
{
    *out = NULL;
    pthread_once(&dn_once, dn_load);
    if (!dn.ok) {
        snprintf(msg, cap, "cannot load oneDNN (libdnnl.so.2); install libdnnl-dev (make deps)");
        return LDB_EUNSUPPORTED;
    }
    ldb_bf16mm *m = calloc(1, sizeof *m);
    size_t nw = (size_t)K * N;
    if (!m || !(m->W = malloc(nw * 2)) || !(m->x = malloc((size_t)rows * K * 2))) {
        ldb_bf16mm_free(m);
        snprintf(msg, cap, "out of memory for bf16 weights");
        return LDB_ENOMEM;
    }
    m->K = K, m->N = N, m->trans = trans, m->cap_rows = rows;
    for (size_t i = 0; i < nw; i++)
        m->W[i] = to_bf16(W[i]);
    if (dn.engine_create(&m->eng, dnnl_cpu, 0) ||
        dn.stream_create(&m->st, m->eng, dnnl_stream_default_flags)) {
        ldb_bf16mm_free(m);
        snprintf(msg, cap, "oneDNN could not create a CPU engine");
        return LDB_EUNSUPPORTED;
    }
    int rc = make_prim(m, rows, msg, cap);
    if (rc) {
        ldb_bf16mm_free(m);
        return rc;
    }
    *out = m;
    return LDB_OK;
}

int ldb_bf16mm_run(ldb_bf16mm *m, const float *x, uint32_t M, float *c, char *msg, size_t cap)
{
    if (M > m->cap_rows) {
        snprintf(msg, cap, "bf16 matmul of %u rows, made for %u", M, m->cap_rows);
        return LDB_EINVAL;
    }
    int rc;
    if (M != m->M && (rc = make_prim(m, M, msg, cap)))
        return rc;
    size_t n = (size_t)M * m->K;
    for (size_t i = 0; i < n; i++)
        m->x[i] = to_bf16(x[i]);
    dnnl_memory_desc_t a, b, cd;
    dnnl_dims_t da = {M, m->K}, db = {m->K, m->N}, dc = {M, m->N};
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    int bad = dn.md_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab) ||
              dn.md_init_by_tag(&b, 2, db, dnnl_bf16, m->trans ? dnnl_ba : dnnl_ab) ||
              dn.md_init_by_tag(&cd, 2, dc, dnnl_f32, dnnl_ab) ||
              dn.mem_create(&ma, &a, m->eng, m->x) || dn.mem_create(&mb, &b, m->eng, m->W) ||
              dn.mem_create(&mc, &cd, m->eng, c);
    if (!bad) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        bad = dn.prim_execute(m->prim, m->st, 3, args) || dn.stream_wait(m->st);
    }
    if (ma)
        dn.mem_destroy(ma);
    if (mb)
        dn.mem_destroy(mb);
    if (mc)
        dn.mem_destroy(mc);
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
    if (m->prim)
        dn.prim_destroy(m->prim);
    if (m->st)
        dn.stream_destroy(m->st);
    if (m->eng)
        dn.engine_destroy(m->eng);
    free(m->W);
    free(m->x);
    free(m);
}
