/* planted.c — the planted-feature fixture: activations over a token corpus whose
 * sparse codes carry features a person can recognise, with the truth written down,
 * so that tests, benchmarks and the demo can check that latentdb finds them.
 *
 * A random unit-norm dictionary D (d_sae x d_in) is drawn; each latent gets a
 * family: dead (never fires), token (fires on most occurrences of one frequent
 * token), bigram (fires on the second token of one frequent token pair that makes
 * up at most a quarter of that token's occurrences), position
 * (fires at one early position), or background (fires at random, Zipf-distributed
 * over latents). An activation row is x = sum of code * D_j + Gaussian noise; BOS
 * rows have a huge norm, as residual streams' attention sinks do. The dictionary is
 * written in the Gemma Scope 2 format (jumprelu, W_enc = D^T, per-latent
 * thresholds), so encoding x gives back the planted codes plus the interference of
 * a 640-dimensional space: values spread around their planted size and some
 * background latents fire by accident, as in a real dictionary.
 *
 * The tokens come from a file (the demo's tokenized text) or are drawn here from a
 * Zipf-distributed vocabulary with some fixed successors, so that frequent bigrams
 * exist. Seeded: a run repeats exactly. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "latentdb.h"
#include "../common/mfile.h"
#include "../common/npy.h"

static const char *USAGE =
    "usage: planted OUTDIR [--tokens T.npy | --n-tokens 102400] [--ctx 1024] [--d-in 640]\n"
    "               [--d-sae 16384] [--background 16] [--seed 1] [--bos 2] [--eos 1] [--pad 0]\n"
    "               [--tokenizer tokenizer.json] [--labels ROWS.txt] [--codes]\n"
    "               [--calibrate-l0 40]\n"
    "writes OUTDIR/dict/{config.json,params.safetensors} (Gemma Scope 2, jumprelu),\n"
    "OUTDIR/acts.npy [n_tokens, d_in] float32, OUTDIR/planted.json (the truth) and, when no\n"
    "--tokens is given, OUTDIR/tokens.npy [n_tokens / ctx, ctx] int32 (BOS first in each row).\n"
    "--background is the mean number of background codes planted per ordinary token.\n"
    "--tokenizer adds to planted.json the probe text of each token and bigram latent: the\n"
    "text of its tokens, kept only when it tokenizes back to exactly those tokens, and plants\n"
    "one latent per word class (digits, capitalised words, punctuation, quotes).\n"
    "--labels gives one label per row of the tokens (e.g. the document's genre): one latent\n"
    "per label fires on a share of its rows' tokens.\n"
    "--codes writes the planted codes themselves, OUTDIR/codes.npz (a scipy CSR matrix\n"
    "[n_tokens, d_sae], float32, for `latentdb import`), instead of acts.npy: no encoding,\n"
    "so large corpora are cheap; BOS rows fire a third of the live latents (at most 5461).\n"
    "--calibrate-l0 L sets each latent's threshold from the activations: on a sample of\n"
    "8192 ordinary rows, each latent fires on the share of rows it was planted on, scaled\n"
    "so that the shares add up to L; so the encoder's mean L0 is about L whatever the\n"
    "width (random directions in d_in dimensions interfere: without it a wide dictionary\n"
    "fires thousands of latents a token). The planted truth then describes which latents\n"
    "fire most, not every code.\n";

enum { FAM_BACKGROUND, FAM_DEAD, FAM_TOKEN, FAM_BIGRAM, FAM_POSITION, FAM_CLASS, FAM_LABEL };
static const char *FAMILY[] = {"background", "dead", "token", "bigram", "position", "class", "genre"};
/* word classes (with --tokenizer): one latent each, firing on most tokens of the class */
enum { CL_NONE, CL_DIGITS, CL_CAPITALISED, CL_PUNCTUATION, CL_QUOTES, N_CLASS };
static const char *CLASS[] = {"", "digits", "capitalised words", "punctuation", "quotes"};
#define MAX_LABELS 64
#define N_POSITION 8 /* positions 1..8 each get a latent */

typedef struct {
    uint8_t family;
    float threshold, scale, prob; /* prob: share of its trigger where it fires */
    uint32_t a, b;                /* token / bigram tokens / position */
    uint64_t trigger;             /* occurrences of its trigger (ordinary positions) */
} latent;

/* Open addressing map from a bigram (a << 32 | b) to a count or a latent. */
typedef struct { uint64_t *key; uint32_t *val; size_t mask; } pairmap;

static int pm_init(pairmap *m, size_t want)
{
    size_t cap = 1024;
    while (cap < want * 2)
        cap <<= 1;
    m->mask = cap - 1;
    m->key = malloc(cap * sizeof *m->key);
    m->val = calloc(cap, sizeof *m->val);
    if (!m->key || !m->val)
        return -1;
    memset(m->key, 0xff, cap * sizeof *m->key);
    return 0;
}

static uint32_t *pm_slot(pairmap *m, uint64_t k, int insert)
{
    size_t i = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & m->mask;
    while (m->key[i] != k) {
        if (m->key[i] == UINT64_MAX) {
            if (!insert)
                return NULL;
            m->key[i] = k;
            return &m->val[i];
        }
        i = (i + 1) & m->mask;
    }
    return &m->val[i];
}

static void pm_free(pairmap *m)
{
    free(m->key);
    free(m->val);
}

/* row += v * d, in blocks of 8 that -O2 turns into vector instructions; the same
 * bytes as a plain loop (each element is one multiply and one add, in order). The
 * rows d are random ones of a 42 MB dictionary, so the next one (or NULL) is
 * prefetched meanwhile, a cache line per 16 floats. */
static void axpy(float *restrict row, const float *restrict d, const float *next, float v,
                 long n)
{
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        if (next && !(i & 15))
            __builtin_prefetch(next + i);
        for (int k = 0; k < 8; k++)
            row[i + k] += v * d[i + k];
    }
    for (; i < n; i++)
        row[i] += v * d[i];
}

static int is_special(uint32_t t, const uint32_t *sp)
{
    return t == sp[0] || t == sp[1] || t == sp[2];
}

/* Indices of the n largest counts (count > min), largest first, ties by index. */
static long top_n(const uint64_t *count, long len, long n, uint64_t min, long *out)
{
    long have = 0;
    for (long i = 0; i < len; i++) {
        if (count[i] <= min || (have == n && count[i] <= count[out[n - 1]]))
            continue;
        long j = have < n ? have++ : n - 1;
        while (j > 0 && count[out[j - 1]] < count[i]) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
    return have;
}

static long poisson(double mean)
{
    double l = exp(-mean), p = fx_unif();
    long k = 0;
    while (p > l) {
        p *= fx_unif();
        k++;
    }
    return k;
}

/* Draws from a cumulative weight table cdf[0..n) (non-decreasing, total acc): the
 * first r < n - 1 with cdf[r] >= u, else n - 1, which is what a plain binary search
 * answers. A token draws ~40 background latents, and a binary search made each
 * draw 14 dependent reads with half its branches mispredicted. A guide of 2n
 * entries (the answer at every 1/2n of the total) starts the search within an entry
 * or two of the answer, and scanning both ways from there makes it exact whatever
 * the guide's rounding. */
typedef struct cdf_table {
    const double *cdf;
    long n, m;
    double scale; /* m / acc */
    uint32_t *guide;
} cdf_table;

static long cdf_pick(const cdf_table *t, double u)
{
    long k = (long)(u * t->scale);
    long r = t->guide[k < 0 ? 0 : k >= t->m ? t->m - 1 : k];
    while (r < t->n - 1 && t->cdf[r] < u)
        r++;
    while (r > 0 && t->cdf[r - 1] >= u)
        r--;
    return r;
}

static int cdf_guide(cdf_table *t, const double *cdf, long n, double acc)
{
    t->cdf = cdf, t->n = n, t->m = n > 0 ? 2 * n : 1;
    t->scale = n > 0 && acc > 0 ? (double)t->m / acc : 0;
    if (!(t->guide = malloc((size_t)t->m * sizeof *t->guide)))
        return -1;
    t->guide[0] = 0;
    long r = 0;
    for (long k = 0; k < t->m && t->scale > 0; k++) { /* the answer at u = k / scale */
        double u = (double)k / t->scale;
        while (r < n - 1 && cdf[r] < u)
            r++;
        t->guide[k] = (uint32_t)r;
    }
    return 0;
}

/* Draws Zipf-distributed tokens: row[0] = BOS, then with probability 0.3 the fixed
 * successor of the previous token, else a token by Zipf rank (exponent 1.05). */
static uint32_t *gen_tokens(uint64_t n, long ctx, uint32_t bos)
{
    const long V = 32000;
    double *cdf = malloc(V * sizeof *cdf);
    uint32_t *id = malloc(V * sizeof *id), *tok = malloc(n * sizeof *tok);
    cdf_table ct = {0};
    if (!cdf || !id || !tok)
        return free(cdf), free(id), free(tok), NULL;
    double acc = 0;
    for (long r = 0; r < V; r++) {
        cdf[r] = (acc += pow((double)(r + 1), -1.05));
        id[r] = (uint32_t)(4 + r);
    }
    if (cdf_guide(&ct, cdf, V, acc))
        return free(cdf), free(id), free(tok), NULL;
    for (long r = V - 1; r > 0; r--) { /* frequency is not id order */
        long k = (long)(fx_unif() * (double)(r + 1));
        uint32_t t = id[r];
        id[r] = id[k];
        id[k] = t;
    }
    for (uint64_t t = 0; t < n; t++) {
        if (t % (uint64_t)ctx == 0) {
            tok[t] = bos;
            continue;
        }
        uint32_t prev = tok[t - 1];
        if (prev != bos && fx_unif() < 0.3) { /* successor among the 400 most frequent */
            tok[t] = id[(prev * 2654435761u >> 7) % 400];
            continue;
        }
        tok[t] = id[cdf_pick(&ct, fx_unif() * acc)];
    }
    free(ct.guide);
    free(cdf);
    free(id);
    return tok;
}


/* Writes ", \"probe\": TEXT" when the tokens' text tokenizes back to them. */
static void put_probe(FILE *f, ldb_tokenizer *t, const uint32_t *ids, size_t n)
{
    char *txt;
    size_t len;
    uint32_t *back = NULL;
    size_t nb;
    if (!t || ldb_tokenizer_decode(t, ids, n, &txt, &len))
        return;
    int same = ldb_tokenizer_encode(t, txt, len, &back, &nb) == 0 && nb == n &&
               !memcmp(back, ids, n * sizeof *ids);
    if (same) {
        fputs(", \"probe\": \"", f);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)txt[i];
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        fputc('"', f);
    } else {
        fputs(", \"probe\": null", f);
    }
    free(back);
    free(txt);
}

/* The word class of a token from its text (" Word" -> capitalised words). */
static int classify(ldb_tokenizer *t, uint32_t id)
{
    char buf[256];
    size_t n = ldb_tokenizer_piece_text(t, id, buf, sizeof buf), a = 0;
    if (n >= sizeof buf) /* a longer piece is classified by its first 255 bytes */
        n = sizeof buf - 1;
    while (a < n && buf[a] == ' ')
        a++;
    const char *w = buf + a;
    size_t m = n - a;
    if (!m)
        return CL_NONE;
    int digits = 1, punct = 1, quotes = 1, lower = 1;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)w[i];
        digits &= c >= '0' && c <= '9';
        quotes &= c == '`' || c == '\'' || c == '"';
        punct &= c < 0x80 && strchr(".,;:!?-()[]{}/&%*+=<>#@$_~|", c) != NULL && c != 0;
        lower &= i == 0 || (c >= 'a' && c <= 'z');
    }
    if (!strcmp(w, "\xe2\x80\x9c") || !strcmp(w, "\xe2\x80\x9d") || !strcmp(w, "\xe2\x80\x98") ||
        !strcmp(w, "\xe2\x80\x99"))
        return CL_QUOTES;
    if (digits)
        return CL_DIGITS;
    if (quotes)
        return CL_QUOTES;
    if (punct)
        return CL_PUNCTUATION;
    if (w[0] >= 'A' && w[0] <= 'Z' && m >= 2 && lower)
        return CL_CAPITALISED;
    return CL_NONE;
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Thresholds from the activations (--calibrate-l0): latent j should fire on a share
 * p_j of ordinary rows, its planted share scaled so the shares sum to target. On the
 * sample X (S rows), the pre-activations X . D_j^T are computed in blocks of latents.
 * A latent the sample can resolve (p_j S >= 4) gets the threshold between its k-th
 * and (k+1)-th largest pre-activation. A rarer one cannot be read off its own column;
 * but every latent's interference (the other codes' overlap with its direction) has
 * about the same shape, so the standardised pre-activations (pre - mu_j) / sd_j of all
 * rare latents are pooled in one histogram, whose upper quantile at 1 - p_j gives
 * mu_j + z sd_j with the resolution of S x (rare latents) samples (a Gaussian tail
 * instead underestimates it: a 262144-wide dictionary fired three times the target).
 * Dead latents keep their huge threshold. */
#define ZBINS 40000
#define ZMAX 40.0
static int calibrate(const float *X, long S, const float *D, long d_in, long d_sae,
                     const latent *L, const uint64_t *pcount, uint64_t n_ord, double target,
                     float *thr)
{
    double sum = 0;
    for (long j = 0; j < d_sae; j++)
        sum += L[j].family == FAM_DEAD ? 0 : (double)pcount[j] / (double)n_ord;
    if (sum <= 0 || ldb_blas_load())
        return -1;
    const long B = 2048;
    float *pre = malloc((size_t)S * (size_t)B * 4), *col = malloc((size_t)S * 4);
    float *mu = malloc((size_t)d_sae * 4), *sd = malloc((size_t)d_sae * 4);
    uint64_t *hist = calloc(ZBINS + 1, sizeof *hist), pooled = 0;
    if (!pre || !col || !mu || !sd || !hist)
        return -1;
    for (long j0 = 0; j0 < d_sae; j0 += B) {
        long nb = d_sae - j0 < B ? d_sae - j0 : B;
        ldb_blas_sgemm((int)S, (int)nb, (int)d_in, X, D + (size_t)j0 * (size_t)d_in, 1, pre);
        for (long j = j0; j < j0 + nb; j++) {
            if (L[j].family == FAM_DEAD)
                continue;
            double p = (double)pcount[j] / (double)n_ord * target / sum, m = 0, v = 0;
            for (long r = 0; r < S; r++) {
                col[r] = pre[(size_t)r * (size_t)nb + (size_t)(j - j0)];
                m += col[r];
            }
            m /= (double)S;
            for (long r = 0; r < S; r++)
                v += (col[r] - m) * (col[r] - m);
            mu[j] = (float)m;
            sd[j] = (float)sqrt(v / (double)S);
            double k = p * (double)S;
            if (k >= 4) {
                long ki = (long)(k + 0.5) < S ? (long)(k + 0.5) : S - 1;
                qsort(col, (size_t)S, 4, cmp_desc);
                double t = 0.5 * ((double)col[ki - 1] + (double)col[ki]);
                thr[j] = (float)(t > 1e-3 ? t : 1e-3);
                continue;
            }
            thr[j] = -1; /* rare: from the pooled tail below */
            for (long r = 0; r < S && sd[j] > 0; r++) {
                double z = (col[r] - m) / sd[j];
                if (z > 0) {
                    long b = (long)(z / ZMAX * ZBINS);
                    hist[b < ZBINS ? b : ZBINS]++;
                }
            }
            pooled += (uint64_t)S;
        }
    }
    /* hist[b] -> the count of pooled samples at or above bin b */
    for (long b = ZBINS - 1; b >= 0; b--)
        hist[b] += hist[b + 1];
    for (long j = 0; j < d_sae; j++) {
        if (L[j].family == FAM_DEAD || thr[j] >= 0)
            continue;
        double p = (double)pcount[j] / (double)n_ord * target / sum, want = p * (double)pooled;
        long lo = 0, hi = ZBINS; /* the highest bin b with hist[b] >= want (hist falls) */
        while (lo < hi) {
            long mid = (lo + hi + 1) / 2;
            if ((double)hist[mid] >= want)
                lo = mid;
            else
                hi = mid - 1;
        }
        long b = lo;
        double z = p > 0 ? (double)(b + 1) * ZMAX / ZBINS : ZMAX;
        double t = mu[j] + z * sd[j];
        thr[j] = (float)(t > 1e-3 ? t : 1e-3);
    }
    free(pre);
    free(col);
    free(mu);
    free(sd);
    free(hist);
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *tokens_path = NULL, *tok_json = NULL, *labels_path = NULL;
    long d_in = 640, d_sae = 16384, ctx = 1024, seed = 1;
    uint64_t n = 102400;
    double background = 16, calibrate_l0 = 0;
    uint32_t sp[3] = {2, 1, 0}; /* bos, eos, pad (Gemma 3's ids) */
    int codes_mode = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(o, "--tokens")) tokens_path = argv[++i];
        else if (v && !strcmp(o, "--n-tokens")) n = strtoull(argv[++i], NULL, 10);
        else if (v && !strcmp(o, "--ctx")) ctx = atol(argv[++i]);
        else if (v && !strcmp(o, "--d-in")) d_in = atol(argv[++i]);
        else if (v && !strcmp(o, "--d-sae")) d_sae = atol(argv[++i]);
        else if (v && !strcmp(o, "--background")) background = atof(argv[++i]);
        else if (v && !strcmp(o, "--seed")) seed = atol(argv[++i]);
        else if (v && !strcmp(o, "--bos")) sp[0] = (uint32_t)atol(argv[++i]);
        else if (v && !strcmp(o, "--eos")) sp[1] = (uint32_t)atol(argv[++i]);
        else if (v && !strcmp(o, "--pad")) sp[2] = (uint32_t)atol(argv[++i]);
        else if (v && !strcmp(o, "--tokenizer")) tok_json = argv[++i];
        else if (v && !strcmp(o, "--labels")) labels_path = argv[++i];
        else if (!strcmp(o, "--codes")) codes_mode = 1;
        else if (v && !strcmp(o, "--calibrate-l0")) calibrate_l0 = atof(argv[++i]);
        else if (o[0] != '-' && !out) out = o;
        else { fputs(USAGE, stderr); return 2; }
    }
    if (!out || d_in < 16 || d_sae < 256 || ctx < 2 || n < 2 || background < 0 ||
        background > 200 || calibrate_l0 < 0 || (calibrate_l0 > 0 && codes_mode)) {
        fputs(USAGE, stderr);
        return 2;
    }
    fx_seed((uint64_t)seed);
    char path[4096];
    ldb_tokenizer *tz = NULL;
    if (tok_json && ldb_tokenizer_open(tok_json, &tz)) {
        fprintf(stderr, "planted: %s\n", ldb_tokenizer_errmsg(tz));
        return 1;
    }
    mkdir(out, 0755);

    /* Tokens. */
    uint32_t *tok;
    if (tokens_path) {
        ctx = 0;
        if (!(tok = fx_load_tokens(tokens_path, &n, &ctx)))
            return 1;
        if (!ctx)
            ctx = (long)n;
    } else {
        n = (n + (uint64_t)ctx - 1) / (uint64_t)ctx * (uint64_t)ctx; /* whole rows */
        if (!(tok = gen_tokens(n, ctx, sp[0]))) {
            fputs("planted: out of memory\n", stderr);
            return 1;
        }
        snprintf(path, sizeof path, "%s/tokens.npy", out);
        uint64_t shape[2] = {n / (uint64_t)ctx, (uint64_t)ctx};
        if (fx_npy_write(path, "<i4", shape, 2, tok, n * 4)) {
            perror(path);
            return 1;
        }
    }

    /* Token and bigram counts over ordinary positions. */
    uint32_t vocab = 0;
    for (uint64_t t = 0; t < n; t++)
        if (tok[t] >= vocab)
            vocab = tok[t] + 1;
    uint64_t *tcount = calloc(vocab, sizeof *tcount), n_ord = 0;
    pairmap bi;
    if (!tcount || pm_init(&bi, n < (1u << 22) ? n : (1u << 22))) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    for (uint64_t t = 0; t < n; t++) {
        if (is_special(tok[t], sp))
            continue;
        n_ord++;
        tcount[tok[t]]++;
        if (t % (uint64_t)ctx && !is_special(tok[t - 1], sp)) {
            uint32_t *c = pm_slot(&bi, (uint64_t)tok[t - 1] << 32 | tok[t], 1);
            if (c)
                (*c)++;
        }
    }

    /* Families: latent ids in a shuffled order take dead, token, bigram, position, background. */
    long n_dead = d_sae / 100, n_tok = d_sae / 64, n_bi = d_sae / 128;
    long *pick = malloc((size_t)(n_tok > n_bi ? n_tok : n_bi) * sizeof *pick);
    latent *L = calloc((size_t)d_sae, sizeof *L);
    uint32_t *perm = malloc((size_t)d_sae * sizeof *perm);
    int32_t *tok_latent = malloc(vocab * sizeof *tok_latent);
    if (!pick || !L || !perm || !tok_latent) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    for (long j = 0; j < d_sae; j++)
        perm[j] = (uint32_t)j;
    for (long j = d_sae - 1; j > 0; j--) {
        long k = (long)(fx_unif() * (double)(j + 1));
        uint32_t t = perm[j];
        perm[j] = perm[k];
        perm[k] = t;
    }
    for (uint32_t t = 0; t < vocab; t++)
        tok_latent[t] = -1;
    long next = 0;
    for (long i = 0; i < n_dead; i++)
        L[perm[next++]].family = FAM_DEAD;
    n_tok = top_n(tcount, vocab, n_tok, 20, pick); /* at least 20 occurrences */
    for (long i = 0; i < n_tok; i++) {
        latent *l = &L[perm[next]];
        l->family = FAM_TOKEN;
        l->a = (uint32_t)pick[i];
        l->trigger = tcount[pick[i]];
        tok_latent[pick[i]] = (int32_t)perm[next++];
    }
    { /* the most frequent bigrams: copy the counts out, pick, then map pair -> latent + 1 */
        size_t cap = bi.mask + 1, m = 0;
        uint64_t *bc = malloc(cap * sizeof *bc);
        long *idx = malloc(cap * sizeof *idx);
        if (!bc || !idx) {
            fputs("planted: out of memory\n", stderr);
            return 1;
        }
        /* only bigrams that are a quarter or less of their second token's occurrences:
         * else the bigram and its token are the same feature, and no search could tell
         * which one a text is about */
        for (size_t i = 0; i < cap; i++)
            if (bi.key[i] != UINT64_MAX) {
                uint32_t second = (uint32_t)bi.key[i];
                bc[m] = 4ull * bi.val[i] <= tcount[second] ? bi.val[i] : 0;
                idx[m++] = (long)i;
            }
        n_bi = top_n(bc, (long)m, n_bi, 20, pick);
        uint64_t *keys = malloc((size_t)(n_bi + 1) * sizeof *keys);
        for (long i = 0; keys && i < n_bi; i++)
            keys[i] = bi.key[idx[pick[i]]];
        for (size_t i = 0; i < cap; i++)
            bi.val[i] = 0;
        for (long i = 0; keys && i < n_bi; i++) {
            latent *l = &L[perm[next]];
            l->family = FAM_BIGRAM;
            l->a = (uint32_t)(keys[i] >> 32);
            l->b = (uint32_t)keys[i];
            l->trigger = bc[pick[i]];
            *pm_slot(&bi, keys[i], 0) = perm[next++] + 1;
        }
        free(keys);
        free(bc);
        free(idx);
    }
    uint32_t pos_latent[N_POSITION + 1];
    for (long p = 1; p <= N_POSITION && p < ctx; p++) {
        latent *l = &L[perm[next]];
        l->family = FAM_POSITION;
        l->a = (uint32_t)p;
        l->trigger = n / (uint64_t)ctx;
        pos_latent[p] = perm[next++];
    }
    /* Word classes (with a tokenizer): one latent per class; its probe is the class's
     * most frequent token that has no latent of its own. */
    uint8_t *cls = NULL;
    uint32_t class_latent[N_CLASS] = {0};
    uint64_t class_members[N_CLASS] = {0}, class_occ[N_CLASS] = {0};
    if (tz) {
        if (!(cls = calloc(vocab, 1))) {
            fputs("planted: out of memory\n", stderr);
            return 1;
        }
        for (uint32_t t = 0; t < vocab; t++)
            if (tcount[t] && !is_special(t, sp)) {
                cls[t] = (uint8_t)classify(tz, t);
                class_members[cls[t]]++;
                class_occ[cls[t]] += tcount[t];
            }
        for (int c = 1; c < N_CLASS; c++) {
            if (!class_members[c])
                continue;
            latent *l = &L[perm[next]];
            l->family = FAM_CLASS;
            l->a = (uint32_t)c;
            l->trigger = class_occ[c];
            l->b = UINT32_MAX;
            for (uint32_t t = 0; t < vocab; t++)
                if (cls[t] == c && tok_latent[t] < 0 && tcount[t] >= 20 &&
                    (l->b == UINT32_MAX || tcount[t] > tcount[l->b]))
                    l->b = t;
            class_latent[c] = perm[next++] + 1;
        }
    }
    /* Row labels (e.g. genres): one latent per label, firing on a share of its rows. */
    char *labels[MAX_LABELS];
    int n_labels = 0;
    uint8_t *row_label = NULL;
    uint32_t label_latent[MAX_LABELS];
    uint64_t label_occ[MAX_LABELS] = {0};
    if (labels_path) {
        FILE *lf = fopen(labels_path, "r");
        uint64_t rows = n / (uint64_t)ctx, r = 0;
        char line[256];
        if (!lf || !(row_label = malloc(rows ? rows : 1))) {
            perror(labels_path);
            return 1;
        }
        while (r < rows && fgets(line, sizeof line, lf)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!*line || strpbrk(line, "\"\\")) {
                fprintf(stderr, "planted: %s: line %llu: a label must be non-empty, without quotes or "
                        "backslashes\n", labels_path, (unsigned long long)r + 1);
                return 1;
            }
            int k = 0;
            while (k < n_labels && strcmp(labels[k], line))
                k++;
            if (k == n_labels) {
                if (n_labels == MAX_LABELS) {
                    fprintf(stderr, "planted: %s: more than %d labels\n", labels_path, MAX_LABELS);
                    return 1;
                }
                labels[n_labels++] = strdup(line);
            }
            row_label[r++] = (uint8_t)k;
        }
        fclose(lf);
        if (r != rows) {
            fprintf(stderr, "planted: %s: %llu labels for %llu rows\n", labels_path,
                    (unsigned long long)r, (unsigned long long)rows);
            return 1;
        }
        for (uint64_t t = 0; t < n; t++)
            if (!is_special(tok[t], sp))
                label_occ[row_label[t / (uint64_t)ctx]]++;
        for (int k = 0; k < n_labels; k++) {
            latent *l = &L[perm[next]];
            l->family = FAM_LABEL;
            l->a = (uint32_t)k;
            l->trigger = label_occ[k];
            label_latent[k] = perm[next++];
        }
    }
    /* Background: Zipf over the remaining latents, weight 1 / (rank + 40)^1.1. */
    long n_bg = d_sae - next;
    double *cdf = malloc((size_t)n_bg * sizeof *cdf), acc = 0;
    if (!cdf) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    for (long r = 0; r < n_bg; r++)
        cdf[r] = (acc += pow((double)(r + 41), -1.1));
    cdf_table bgt;
    if (cdf_guide(&bgt, cdf, n_bg, acc)) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    uint32_t *bg = perm + next;

    /* Per latent: threshold, value scale, firing probability. Values planted are
     * threshold * (floor + scale * Exp(1)): most near the threshold, a long tail. */
    for (long j = 0; j < d_sae; j++) {
        latent *l = &L[j];
        l->threshold = (float)(0.8 + 0.4 * fx_unif());
        l->scale = (float)exp(0.35 * fx_gauss());
        l->prob = l->family == FAM_TOKEN ? (float)(0.75 + 0.25 * fx_unif())
                : l->family == FAM_BIGRAM ? (float)(0.85 + 0.15 * fx_unif())
                : l->family == FAM_CLASS ? 0.9f : l->family == FAM_LABEL ? 0.3f : 0.95f;
        if (l->family == FAM_DEAD)
            l->threshold = 1e4f;
    }

    /* Dictionary. */
    size_t nd = (size_t)d_sae * (size_t)d_in;
    float *D = malloc(nd * 4), *thr = malloc((size_t)d_sae * 4);
    if (!D || !thr) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    fx_unit_rows(D, d_sae, d_in);
    for (long j = 0; j < d_sae; j++)
        thr[j] = L[j].threshold;

    /* Activations, streamed in chunks of 4096 rows; or (--codes) the codes as CSR. */
    uint64_t shape[2] = {n, (uint64_t)d_in};
    FILE *af = NULL;
    const long CH = 4096;
    float *x = malloc((size_t)CH * (size_t)d_in * 4);
    fx_csr csr = {0};
    if (codes_mode) {
        if (!x || fx_csr_init(&csr, n, (uint64_t)d_sae)) {
            fputs("planted: out of memory\n", stderr);
            return 1;
        }
    } else {
        snprintf(path, sizeof path, "%s/acts.npy", out);
        if (!(af = fx_npy_begin(path, "<f4", shape, 2)) || !x) {
            perror(path);
            return 1;
        }
    }
    const double noise = 0.05, bos_norm = 58;
    uint64_t planted = 0;
    /* --calibrate-l0: each latent's planted count, and a sample of ordinary rows */
    const long S = 8192;
    uint64_t *pcount = calibrate_l0 > 0 ? calloc((size_t)d_sae, sizeof *pcount) : NULL;
    float *sample = calibrate_l0 > 0 ? malloc((size_t)S * (size_t)d_in * 4) : NULL;
    long n_sample = 0;
    uint64_t sample_step = n / (uint64_t)S / 2 ? n / (uint64_t)S / 2 : 1;
    if (calibrate_l0 > 0 && (!pcount || !sample)) {
        fputs("planted: out of memory\n", stderr);
        return 1;
    }
    for (uint64_t t0 = 0; t0 < n; t0 += (uint64_t)CH) {
        long rows = n - t0 < (uint64_t)CH ? (long)(n - t0) : CH;
        for (long r = 0; r < rows; r++) {
            uint64_t t = t0 + (uint64_t)r;
            uint32_t tk = tok[t];
            long pos = (long)(t % (uint64_t)ctx);
            float *row = x + (size_t)r * (size_t)d_in;
            if (codes_mode && tk == sp[0]) { /* a third of 16384 latents; as many at any width */
                double p_bos = 5461.0 / (double)d_sae < 1.0 / 3 ? 5461.0 / (double)d_sae : 1.0 / 3;
                for (long j = 0; j < d_sae; j++)
                    if (L[j].family != FAM_DEAD && fx_unif() < p_bos)
                        if (fx_csr_put(&csr, (uint32_t)j, L[j].threshold * (1.2 + fx_unif())))
                            goto oom;
                fx_csr_end_row(&csr);
                continue;
            }
            if (tk == sp[0] && calibrate_l0 > 0) {
                /* calibrated widths: the sink is one code of a fixed latent over the noise
                 * (a random row of norm 58 fires ~40% of a wide dictionary's latents, 100k
                 * codes at 262144: more than a thousand ordinary rows around it) */
                fx_gauss_fill(row, d_in, noise);
                axpy(row, D + (size_t)bg[0] * (size_t)d_in, NULL, 3.0f, d_in);
                continue;
            }
            if (tk == sp[0]) { /* attention sink: a huge random row, fires a third of latents */
                double s = bos_norm / sqrt((double)d_in);
                fx_gauss_fill(row, d_in, s);
                continue;
            }
            if (!codes_mode)
                fx_gauss_fill(row, d_in, noise);
            if (is_special(tk, sp)) {
                if (codes_mode)
                    fx_csr_end_row(&csr);
                continue;
            }
            uint32_t fire[8 + 64];
            double val[8 + 64];
            int nf = 0;
            int32_t tl = tok_latent[tk];
            if (tl >= 0 && fx_unif() < L[tl].prob) {
                fire[nf] = (uint32_t)tl;
                val[nf++] = L[tl].threshold * (1.4 + L[tl].scale * -log(1 - fx_unif()));
            }
            if (pos > 0 && !is_special(tok[t - 1], sp)) {
                uint32_t *b = pm_slot(&bi, (uint64_t)tok[t - 1] << 32 | tk, 0);
                if (b && *b && fx_unif() < L[*b - 1].prob) {
                    const latent *l = &L[*b - 1];
                    fire[nf] = *b - 1;
                    val[nf++] = l->threshold * (1.3 + 0.8 * l->scale * -log(1 - fx_unif()));
                }
            }
            if (pos >= 1 && pos <= N_POSITION && fx_unif() < 0.95) {
                const latent *l = &L[pos_latent[pos]];
                fire[nf] = pos_latent[pos];
                val[nf++] = l->threshold * (1.5 + 0.3 * l->scale * -log(1 - fx_unif())) *
                            (1.6 - 0.06 * (double)pos);
            }
            if (cls && cls[tk] && fx_unif() < 0.9) {
                const latent *l = &L[class_latent[cls[tk]] - 1];
                fire[nf] = class_latent[cls[tk]] - 1;
                val[nf++] = l->threshold * (1.3 + 0.6 * l->scale * -log(1 - fx_unif()));
            }
            if (row_label && fx_unif() < 0.3) {
                uint32_t j = label_latent[row_label[t / (uint64_t)ctx]];
                fire[nf] = j;
                val[nf++] = L[j].threshold * (1.2 + 0.5 * L[j].scale * -log(1 - fx_unif()));
            }
            long nb = poisson(background);
            for (long q = 0; q < nb && nf < (int)(sizeof fire / sizeof *fire); q++) {
                long lo = cdf_pick(&bgt, fx_unif() * acc);
                const latent *l = &L[bg[lo]];
                fire[nf] = bg[lo];
                val[nf++] = l->threshold * (1.1 + 0.5 * l->scale * -log(1 - fx_unif()));
            }
            planted += (uint64_t)nf;
            if (codes_mode) {
                for (int q = 0; q < nf; q++)
                    if (fx_csr_put(&csr, fire[q], val[q]))
                        goto oom;
                fx_csr_end_row(&csr);
                continue;
            }
            for (int q = 0; q < nf; q++)
                axpy(row, D + (size_t)fire[q] * (size_t)d_in,
                     q + 1 < nf ? D + (size_t)fire[q + 1] * (size_t)d_in : NULL, (float)val[q],
                     d_in);
            if (pcount) {
                for (int q = 0; q < nf; q++)
                    pcount[fire[q]]++;
                if (t % sample_step == 0 && n_sample < S)
                    memcpy(sample + (size_t)n_sample++ * (size_t)d_in, row, (size_t)d_in * 4);
            }
        }
        if (af && fwrite(x, (size_t)d_in * 4, (size_t)rows, af) != (size_t)rows) {
            perror(path);
            return 1;
        }
    }
    if (af && fclose(af)) {
        perror(path);
        return 1;
    }
    if (codes_mode) {
        snprintf(path, sizeof path, "%s/codes.npz", out);
        if (fx_csr_write_npz(&csr, path))
            return 1;
        fx_csr_free(&csr);
    }

    if (pcount) {
        if (n_sample < 64 || calibrate(sample, n_sample, D, d_in, d_sae, L, pcount, n_ord,
                                       calibrate_l0, thr)) {
            fprintf(stderr, "planted: cannot calibrate the thresholds (%ld sample rows)\n",
                    n_sample);
            return 1;
        }
        printf("planted: thresholds calibrated on %ld rows for a mean L0 of %g\n", n_sample,
               calibrate_l0);
    }
    snprintf(path, sizeof path, "%s/dict", out);
    if (fx_write_gs2_dict(path, D, thr, d_in, d_sae,
                          pcount ? (long)(calibrate_l0 + 0.5)
                                 : (long)(planted / (n_ord ? n_ord : 1)), "planted"))
        return 1;

    /* The truth. */
    snprintf(path, sizeof path, "%s/planted.json", out);
    FILE *pf = fopen(path, "w");
    if (!pf) {
        perror(path);
        return 1;
    }
    fprintf(pf, "{\"seed\": %ld, \"d_in\": %ld, \"d_sae\": %ld, \"n_tokens\": %llu, "
            "\"n_ordinary\": %llu, \"ctx\": %ld, \"skip\": [%u, %u, %u], \"planted_l0\": %.3f, "
            "\"background\": {\"latents\": %ld, \"mean_per_token\": %.3f},\n \"latents\": [",
            seed, d_in, d_sae, (unsigned long long)n, (unsigned long long)n_ord, ctx, sp[0],
            sp[1], sp[2], (double)planted / (double)(n_ord ? n_ord : 1), n_bg, background);
    int first = 1;
    for (long j = 0; j < d_sae; j++) {
        const latent *l = &L[j];
        if (l->family == FAM_BACKGROUND)
            continue;
        fprintf(pf, "%s\n  {\"latent\": %ld, \"family\": \"%s\"", first ? "" : ",", j,
                FAMILY[l->family]);
        first = 0;
        uint32_t ids[2] = {l->a, l->b};
        if (l->family == FAM_TOKEN) {
            fprintf(pf, ", \"tokens\": [%u], \"occurrences\": %llu, \"p_fire\": %.3f, "
                    "\"description\": \"token %u\"", l->a, (unsigned long long)l->trigger,
                    l->prob, l->a);
            put_probe(pf, tz, ids, 1);
        } else if (l->family == FAM_BIGRAM) {
            fprintf(pf, ", \"tokens\": [%u, %u], \"occurrences\": %llu, \"p_fire\": %.3f, "
                    "\"description\": \"token %u after token %u\"", l->a, l->b,
                    (unsigned long long)l->trigger, l->prob, l->b, l->a);
            put_probe(pf, tz, ids, 2);
        }
        else if (l->family == FAM_CLASS) {
            fprintf(pf, ", \"class\": \"%s\", \"members\": %llu, \"occurrences\": %llu, "
                    "\"p_fire\": 0.9, \"description\": \"%s\"", CLASS[l->a],
                    (unsigned long long)class_members[l->a], (unsigned long long)l->trigger,
                    CLASS[l->a]);
            if (l->b != UINT32_MAX) {
                fprintf(pf, ", \"tokens\": [%u]", l->b);
                put_probe(pf, tz, &l->b, 1);
            }
        } else if (l->family == FAM_LABEL)
            fprintf(pf, ", \"label\": \"%s\", \"occurrences\": %llu, \"p_fire\": 0.3, "
                    "\"description\": \"a share of the tokens of rows labelled %s\"",
                    labels[l->a], (unsigned long long)l->trigger, labels[l->a]);
        else if (l->family == FAM_POSITION)
            fprintf(pf, ", \"pos\": %u, \"p_fire\": 0.95, \"description\": \"position %u\"",
                    l->a, l->a);
        else
            fprintf(pf, ", \"description\": \"never fires\"");
        fputc('}', pf);
    }
    fputs("\n]}\n", pf);
    if (fclose(pf)) {
        perror(path);
        return 1;
    }
    printf("planted: %s: %llu tokens (%llu ordinary), %ld -> %ld, planted L0 %.1f "
           "(%ld token, %ld bigram, %d position, %ld dead, %ld background latents)\n", out,
           (unsigned long long)n, (unsigned long long)n_ord, d_in, d_sae,
           (double)planted / (double)(n_ord ? n_ord : 1), n_tok, n_bi, N_POSITION, n_dead, n_bg);
    free(tok); free(tcount); pm_free(&bi); free(pick); free(L); free(perm); free(tok_latent);
    free(bgt.guide); free(cdf); free(D); free(thr); free(x); free(pcount); free(sample);
    ldb_tokenizer_close(tz);
    free(cls);
    free(row_label);
    for (int k = 0; k < n_labels; k++)
        free(labels[k]);
    return 0;
oom:
    fputs("planted: out of memory for the codes\n", stderr);
    return 1;
}
