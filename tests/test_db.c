/* test_db.c — the store's byte formats: position lists (golden bytes pin the Rice
 * layout of docs/FORMAT.md; round trips with escapes; truncated input refused),
 * latent summaries, top-list merges and value rounding; option structs of the
 * public API. usage: test_db */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../db/codec.h"
#include "../db/invrun.h"
#include "../db/store.h"
#include "../db/summary.h"
#include "check.h"
#include "latentdb.h"

static void test_golden(void)
{
    static const uint64_t pos[] = {1000, 1001, 1005, 1100, 1300, 1301};
    static const uint8_t want[] = {0x06, 0x05, 0x80, 0x31, 0xff, 0x3b, 0x00};
    ldb_buf b = {0};
    CHECK(ldb_posting_encode(pos, 6, &b) == 0, "encode");
    CHECK(b.len == sizeof want && !memcmp(b.data, want, sizeof want),
          "position list bytes changed (format version 1 pins them)");
    uint64_t out[6], n;
    CHECK(ldb_posting_decode(want, sizeof want, 1000, out, 6, &n) == 0 && n == 6 &&
          !memcmp(out, pos, sizeof pos), "golden decodes");
    ldb_buf_free(&b);
}

static uint64_t rng = 42;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_roundtrip(void)
{
    int bad = 0;
    uint64_t *p = malloc(5000 * sizeof *p), *q = malloc(5000 * sizeof *q);
    for (int t = 0; t < 300; t++) {
        size_t n = 1 + next() % 4000;
        uint64_t mean = 1 + (next() % 5000), at = next() % 100000;
        for (size_t i = 0; i < n; i++) {
            p[i] = at;
            uint64_t gap = 1 + next() % (2 * mean);
            if (t % 10 == 0 && i == n / 2)
                gap = 1ull << (30 + t % 20); /* an outlier: exercises the escape */
            at += gap;
        }
        if (t == 1) { /* 999 gaps of 1 and one of 2^50: quotient escapes */
            n = 1000;
            for (size_t i = 0; i < 999; i++)
                p[i] = i;
            p[999] = 1ull << 50;
        }
        ldb_buf b = {0};
        uint64_t m = 0;
        if (ldb_posting_encode(p, n, &b) || ldb_posting_decode(b.data, b.len, p[0], q, 5000, &m) ||
            m != n || memcmp(p, q, n * sizeof *p))
            bad++;
        /* truncations: decoding must stay inside the buffer (make asan checks the
         * reads); one that cuts into the codes themselves must fail */
        for (size_t cut = 0; cut + 1 < b.len && n > 1; cut += 1 + b.len / 17) {
            uint8_t *t = malloc(cut ? cut : 1);
            memcpy(t, b.data, cut);
            int r = ldb_posting_decode(t, cut, p[0], q, 5000, &m);
            bad += r == 0 && cut + 8 < b.len; /* more than the padding byte is missing */
            free(t);
        }
        ldb_buf_free(&b);
    }
    CHECK(bad == 0, "%d position lists did not round-trip", bad);
    /* capacity: a list longer than the buffer is refused */
    ldb_buf b = {0};
    uint64_t m;
    ldb_posting_encode(p, 100, &b);
    CHECK(ldb_posting_decode(b.data, b.len, p[0], q, 99, &m) != 0, "over capacity refused");
    ldb_buf_free(&b);
    free(p);
    free(q);
}

/* A run record (format 4) against the positions it was made from: random latents and
 * densities, coded in one part or split in two at a span, every latent read back
 * alone and all of them in one pass; both splits give the same bytes; damage refused. */
typedef struct ir_truth {
    uint64_t **pos;
    uint64_t *cnt;
    int bad, seen;
} ir_truth;

static int ir_each(void *ctx, uint32_t j, const uint64_t *pos, uint64_t c)
{
    ir_truth *t = ctx;
    t->seen++;
    if (c != t->cnt[j] || memcmp(pos, t->pos[j], c * sizeof *pos))
        t->bad++;
    return 0;
}

static void test_invrun(void)
{
    for (int trial = 0; trial < 40; trial++) {
        uint32_t R = 1 + (uint32_t)(next() % (trial < 20 ? 300 : 5000));
        uint64_t n = 1 + next() % 20000, start = next() % 1000000, codes = 0;
        ir_truth t = {calloc(R, sizeof *t.pos), calloc(R, sizeof *t.cnt), 0, 0};
        for (uint32_t j = 0; j < R; j++) {
            unsigned shift = (unsigned)(next() % 16);
            uint64_t *p = malloc(n * sizeof *p), c = 0;
            for (uint64_t i = 0; i < n; i++)
                if (next() >> (64 - 16) < (65536u >> shift) / 8 || (j == 3 && trial % 3 == 0))
                    p[c++] = start + i;
            if (j % 7 == 1)
                c = 0; /* silent latents */
            t.pos[j] = p;
            t.cnt[j] = c;
            codes += c;
        }
        ldb_invrun_params prm;
        ldb_invrun_choose(&prm, start, n, R, codes);
        ldb_buf one = {0}, two = {0};
        ldb_invrun_part a = {0}, b = {0};
        /* one part */
        ldb_invrun_part_begin(&a, &prm, 0);
        for (uint32_t j = 0; j < R; j++)
            if (t.cnt[j])
                CHECK(ldb_invrun_part_add(&a, j, t.pos[j], t.cnt[j]) == 0, "add");
        CHECK(ldb_invrun_part_end(&a, R) == 0, "end");
        ldb_invrun_part *pa[2] = {&a, &b};
        CHECK(ldb_invrun_join(pa, 1, &one) == 0, "join one");
        /* two parts, split at a span */
        uint32_t S = 1u << prm.s, mid = (uint32_t)(next() % (R + 1)) & ~(S - 1);
        ldb_invrun_part_begin(&a, &prm, 0);
        ldb_invrun_part_begin(&b, &prm, mid);
        for (uint32_t j = 0; j < R; j++)
            if (t.cnt[j])
                CHECK(ldb_invrun_part_add(j < mid ? &a : &b, j, t.pos[j], t.cnt[j]) == 0, "add");
        CHECK(ldb_invrun_part_end(&a, mid) == 0 && ldb_invrun_part_end(&b, R) == 0, "end");
        CHECK(ldb_invrun_join(pa, 2, &two) == 0, "join two");
        CHECK(one.len == two.len && !memcmp(one.data, two.data, one.len),
              "run record: two parts (split at %u of %u, span %u) give the bytes of one", mid, R, S);
        ldb_invrun r;
        CHECK(ldb_invrun_open(&r, start, one.data, one.len, R) == 0, "open");
        CHECK(ldb_invrun_open(&r, start, one.data, one.len, R + 1) != 0, "wrong R refused");
        int bad = 0;
        for (uint32_t j = 0; j < R; j++) {
            uint64_t *arr = NULL;
            size_t len = 0, cap = 0;
            if (ldb_invrun_latent(&r, j, &arr, &len, &cap) || len != t.cnt[j] ||
                (len && memcmp(arr, t.pos[j], len * sizeof *arr)))
                bad++;
            free(arr);
        }
        CHECK(bad == 0, "run record (R %u, n %llu, span %u): %d latents read back wrong", R,
              (unsigned long long)n, S, bad);
        CHECK(ldb_invrun_each(&r, ir_each, &t) == 0 && t.bad == 0, "every latent in one pass");
        /* truncations: refused or, when only padding went, the same answers */
        int crash_free = 1;
        for (size_t cut = 1; cut < one.len && cut < 64; cut++) {
            ldb_invrun q;
            if (ldb_invrun_open(&q, start, one.data, one.len - cut, R) == 0) {
                ir_truth u = t;
                u.bad = u.seen = 0;
                (void)ldb_invrun_each(&q, ir_each, &u);
            }
        }
        CHECK(crash_free, "truncated records");
        ldb_invrun_part_free(&a);
        ldb_invrun_part_free(&b);
        ldb_buf_free(&one);
        ldb_buf_free(&two);
        for (uint32_t j = 0; j < R; j++)
            free(t.pos[j]);
        free(t.pos);
        free(t.cnt);
    }
}

static void test_lsum(void)
{
    ldb_lsum s = {0}, d;
    uint16_t k1[] = {0x3f80, 0x4000}, k2[] = {0x3f00, 0x4000, 0x4100};
    uint64_t c1[] = {3, 1}, c2[] = {2, 5, 1};
    s.count = 12;
    s.nseq = 4;
    s.sum = 17.5;
    s.sumsq = 40.25;
    s.max = 8.0f;
    CHECK(ldb_lsum_merge_hist(&s, k1, c1, 2) == 0 && ldb_lsum_merge_hist(&s, k2, c2, 3) == 0,
          "merge");
    CHECK(s.nh == 4 && s.hk[0] == 0x3f00 && s.hc[1] == 3 && s.hk[2] == 0x4000 && s.hc[2] == 6,
          "merged histogram is the sum, keys ascending");
    for (int fmt = 3; fmt <= 4; fmt++) {
        ldb_buf b = {0};
        CHECK(ldb_lsum_encode(&s, fmt, &b) == 0, "encode");
        CHECK(ldb_lsum_decode(b.data, b.len, fmt, &d) == 0 && d.count == 12 && d.nseq == 4 &&
              d.sum == 17.5 && d.sumsq == 40.25 && d.max == 8.0f && d.nh == 4 &&
              d.hk[0] == 0x3f00 && d.hk[1] == 0x3f80 && d.hk[2] == 0x4000 && d.hk[3] == 0x4100 &&
              d.hc[0] == 2 && d.hc[1] == 3 && d.hc[2] == 6 && d.hc[3] == 1,
              "format %d: summary round-trips", fmt);
        ldb_lsum_free(&d);
        CHECK(ldb_lsum_decode(b.data, b.len - 1, fmt, &d) != 0, "format %d: truncated summary refused",
              fmt);
        ldb_lsum t = s;
        t.count = 13; /* counts no longer sum to count */
        b.len = 0;
        CHECK(ldb_lsum_encode(&t, fmt, &b) == 0 && ldb_lsum_decode(b.data, b.len, fmt, &d) != 0,
              "format %d: inconsistent summary refused", fmt);
        ldb_buf_free(&b);
    }
    /* format 4: the bytes of this summary, as docs/FORMAT.md lays them out */
    ldb_buf b = {0};
    CHECK(ldb_lsum_encode(&s, 4, &b) == 0, "encode");
    CHECK(b.len > 22 && b.data[0] == 12 && b.data[1] == 4 && b.data[22] == 4 &&
          b.data[23] == 0x80 && b.data[24] == 0x7e && b.data[25] == 6 && b.data[26] == 1,
          "format 4 summary: count, nseq, sums, max, nh, first key 0x3f00 as varint, kg 6 "
          "(mean gap 170.7), kc 1 (mean count 3)");
    ldb_buf_free(&b);
    ldb_lsum_free(&s);
}

/* Top lists of both formats against brute force: random candidates (values stored
 * as bf16, f16 or f32, ties included), encoded, decoded whole and in part; damage
 * to a format-4 list refused. */
static void test_top_lists(void)
{
    for (int trial = 0; trial < 300; trial++) {
        int kind = trial % 3, n = 1 + (int)(next() % LDB_TOPK);
        ldb_cand c[LDB_TOPK], d[LDB_TOPK];
        ldb_tctx x[LDB_TOPK];
        memset(x, 0, sizeof x);
        for (int i = 0; i < n; i++) {
            int dup;
            do { /* distinct positions */
                c[i].gpos = next() % (trial % 2 ? 1000 : 100000000);
                dup = 0;
                for (int j = 0; j < i; j++)
                    dup |= c[j].gpos == c[i].gpos;
            } while (dup);
            float v = (float)(next() % 1000) / (trial % 5 == 0 ? 7.0f : 100.0f);
            c[i].value = ldb_val_float(ldb_val_bits(v, kind), kind); /* as stored */
            x[i].len = 10;
            x[i].pos = 3;
            x[i].mask = trial % 2 && next() % 3 == 0 ? (uint16_t)(1 + next() % 0xffff) : 0;
            for (int j = 0; j < 16; j++)
                if (x[i].mask >> j & 1)
                    x[i].bits[j] = ldb_val_bits((float)(1 + next() % 500) / 64.0f, kind);
        }
        for (int i = 1; i < n; i++) /* candidate order, contexts with them */
            for (int j = i; j > 0 && ldb_cand_before(&c[j], &c[j - 1]); j--) {
                ldb_cand t = c[j];
                c[j] = c[j - 1];
                c[j - 1] = t;
                ldb_tctx u = x[j];
                x[j] = x[j - 1];
                x[j - 1] = u;
            }
        size_t len3 = 0;
        for (int fmt = 3; fmt <= 4; fmt++) {
            ldb_buf b = {0};
            CHECK(ldb_top_encode(c, x, n, fmt, kind, &b) == 0, "encode");
            ldb_tctx y[LDB_TOPK];
            int got = ldb_top_decode(b.data, b.len, fmt, kind, d, y, LDB_TOPK);
            int same = got == n;
            for (int i = 0; i < n && same; i++) {
                same = d[i].gpos == c[i].gpos && d[i].value == c[i].value && y[i].mask == x[i].mask &&
                       (fmt == 4 ? y[i].len == 0 : y[i].len == x[i].len && y[i].pos == x[i].pos);
                for (int j = 0; j < 16 && same; j++)
                    same = !(x[i].mask >> j & 1) || y[i].bits[j] == x[i].bits[j];
            }
            CHECK(same, "format %d, kind %d: %d candidates round-trip (got %d)", fmt, kind, n, got);
            int part = 1 + (int)(next() % (unsigned)n);
            got = ldb_top_decode(b.data, b.len, fmt, kind, d, NULL, part);
            CHECK(got == part && d[part - 1].gpos == c[part - 1].gpos, "the best %d of %d", part, n);
            if (fmt == 4) {
                CHECK(ldb_top_decode(b.data, b.len - 1, fmt, kind, d, NULL, LDB_TOPK) < 0,
                      "a truncated list refused");
                b.data[0] = 0;
                CHECK(ldb_top_decode(b.data, b.len, fmt, kind, d, NULL, LDB_TOPK) < 0,
                      "an empty list refused");
                CHECK(n < 8 || trial % 2 || b.len < len3 / 2, "format 4: %zu bytes for %d candidates, format 3 %zu",
                      b.len, n, len3);
            }
            len3 = b.len;
            ldb_buf_free(&b);
        }
    }
}

static void test_top_merge(void)
{
    ldb_cand a[] = {{10, 5.0f}, {3, 4.0f}, {7, 4.0f}}, b[] = {{1, 5.0f}, {2, 4.0f}, {9, 1.0f}};
    ldb_cand out[4];
    int n = ldb_top_merge(a, 3, b, 3, out, 4, NULL);
    CHECK(n == 4 && out[0].gpos == 1 && out[1].gpos == 10 && out[2].gpos == 2 && out[3].gpos == 3,
          "top merge orders by value, then position");
}

static void test_values(void)
{
    /* bf16 round to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 */
    CHECK(ldb_val_bits(1.00390625f, LDB_VAL_BF16) == 0x3f80, "tie rounds to even (down)");
    CHECK(ldb_val_bits(1.01171875f, LDB_VAL_BF16) == 0x3f82, "tie rounds to even (up)");
    CHECK(ldb_val_float(0x4049, LDB_VAL_BF16) == 3.140625f, "bf16 widening");
    CHECK(ldb_val_bits(65504.0f, LDB_VAL_F16) == 0x7bff && ldb_val_bits(1e6f, LDB_VAL_F16) == 0x7c00,
          "f16 max and overflow to Inf");
    CHECK(ldb_val_bits(5.960464477539063e-08f, LDB_VAL_F16) == 0x0001, "f16 smallest subnormal");
    CHECK(ldb_val_float(ldb_val_bits(0.3f, LDB_VAL_F32), LDB_VAL_F32) == 0.3f, "f32 exact");
    CHECK(ldb_val_bf16key(ldb_val_bits(1.5f, LDB_VAL_F16), LDB_VAL_F16) == 0x3fc0,
          "f16 values key the histogram by their nearest bf16");
    /* issue 20, finding 3: ldb_val_max is the last float each type stores finite */
    for (int k = LDB_VAL_BF16; k <= LDB_VAL_F32; k++) {
        float m = ldb_val_max(k), above = nextafterf(m, INFINITY);
        int fin = isfinite(ldb_val_float(ldb_val_bits(m, k), k)) &&
                  isfinite(ldb_val_float(ldb_val_bits(-m, k), k));
        int inf = isinf(ldb_val_float(ldb_val_bits(above, k), k)) &&
                  isinf(ldb_val_float(ldb_val_bits(-above, k), k));
        CHECK(fin && inf, "%s: %g should be stored finite and the next float (%g) as Inf",
              ldb_val_name(k), m, above);
    }
    CHECK(ldb_val_max(LDB_VAL_F16) > 65519.0f && ldb_val_max(LDB_VAL_F16) < 65520.0f,
          "f16 rounds up to 65519.996 to 65504");
}

/* Option structs carry their size (issue 21): one not made by its _init function is
 * refused naming it; one from a newer header works while its unknown fields are zero. */
static void test_opts(void)
{
    char dir[] = "/tmp/ldb-test-opts-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/db", dir);
    ldb_db *db = NULL;
    ldb_create_opts zero;
    memset(&zero, 0, sizeof zero);
    CHECK(ldb_db_create(path, &zero, &db) == LDB_EINVAL &&
          strstr(ldb_db_errmsg(db), "ldb_create_opts_init"), "size 0 refused: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
    struct { ldb_create_opts o; uint64_t extra; } newer;
    memset(&newer, 0, sizeof newer);
    ldb_create_opts_init(&newer.o);
    newer.o.size = sizeof newer;
    newer.extra = 1;
    CHECK(ldb_db_create(path, &newer.o, &db) == LDB_EUNSUPPORTED &&
          strstr(ldb_db_errmsg(db), "does not have"), "unknown field refused: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
    newer.extra = 0;
    newer.o.values = LDB_VALUES_F16;
    CHECK(ldb_db_create(path, &newer.o, &db) == LDB_OK, "newer struct, unknown field zero: %s",
          ldb_db_errmsg(db));
    ldb_info *in = NULL;
    CHECK(ldb_query_info(db, &in) == LDB_OK && in->values == LDB_VALUES_F16, "its fields are read");
    ldb_info_free(in);
    ldb_db_close(db);
    CHECK(strcmp(ldb_version(), LDB_VERSION) == 0, "ldb_version %s", ldb_version());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
    test_golden();
    test_roundtrip();
    test_invrun();
    test_top_lists();
    test_lsum();
    test_top_merge();
    test_values();
    test_opts();
    return test_summary("test_db");
}
