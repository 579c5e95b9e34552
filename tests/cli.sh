#!/bin/sh
# CLI tests: run the real bin/latentdb on the fixtures and check output, exit
# status and error messages. usage: tests/cli.sh BUILD FIXTURES
BUILD=$1
FX=$2
L=$BUILD/bin/latentdb
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/cli.sh
. tests/expect.sh

# dict show, every format, human and JSON
for c in saelens_jumprelu saelens_old_topk_bf16 gemmascope1_npz gemmascope2_transcoder_affine \
         sparsify_groupmax saelens_skip_transcoder; do
    expect 0 '^format ' "$L" dict show "$FX/$c"
    expect 0 '"sha256":"[0-9a-f]{64}"' "$L" dict show "$FX/$c" --json
done
expect 0 '"format":"saelens".*"architecture":"jumprelu".*"type":"sae".*"d_in":64.*"d_out":64.*"d_sae":256.*"dtype":"float32".*"hook_in":"blocks.12.hook_resid_post".*"model":"gemma-2-2b"' \
    "$L" dict show "$FX/saelens_jumprelu" --json
expect 0 '"architecture":"topk".*"dtype":"bfloat16".*"hook_in":"blocks.8.hook_resid_pre"' \
    "$L" dict show "$FX/saelens_old_topk_bf16" --json
expect 0 '"format":"gemmascope2".*"type":"transcoder".*"hook_in":"model.layers.7.pre_feedforward_layernorm.output".*"hook_out":"model.layers.7.post_feedforward_layernorm.output".*"l0":[0-9]' \
    "$L" dict show "$FX/gemmascope2_transcoder_affine" --json
expect 0 '"format":"sparsify".*"architecture":"groupmax".*"k":16' "$L" dict show "$FX/sparsify_groupmax" --json
expect 0 '"format":"gemmascope".*"d_sae":256' "$L" dict show "$FX/gemmascope1_npz/params.npz" --json
# sha256 agrees with coreutils
want=$(sha256sum "$FX/saelens_jumprelu/sae_weights.safetensors" | cut -c1-64)
expect 0 "\"sha256\":\"$want\"" "$L" dict show "$FX/saelens_jumprelu" --json
# Gemma Scope v1 folders carry the L0 in their name
mkdir -p "$T/layer_3/width_16k/average_l0_71"
cp "$FX/gemmascope1_npz/params.npz" "$T/layer_3/width_16k/average_l0_71/"
expect 0 '"l0":71' "$L" dict show "$T/layer_3/width_16k/average_l0_71" --json

# dict eval: SAEs reconstruct their input, transcoders their target
# FVE, MSE and L0 against numpy computing them from the reference arrays
fve_ref() { # case target(x|x_out) -> prints "fve mse l0"
    /usr/bin/python3 - "$FX/$1/ref" "$2" <<'PY'
import json, sys, numpy as np
d, tgt = sys.argv[1], sys.argv[2]
m = json.load(open(d + "/meta.json"))
ld = lambda n, *s: np.fromfile(f"{d}/{n}.f32", dtype="<f4").astype(np.float64).reshape(s)
x = ld("x", m["n"], m["d_in"])
pre = (x - (ld("b_dec", m["d_out"]) if m["sub_b_dec"] else 0)) @ ld("W_enc", m["d_in"], m["d_sae"]) + ld("b_enc", m["d_sae"])
assert m["arch"] == "jumprelu"
c = np.where((pre > ld("threshold", m["d_sae"])) & (pre > 0), pre, 0)
xh = c @ ld("W_dec", m["d_sae"], m["d_out"]) + ld("b_dec", m["d_out"])
if m["skip"] == "xA": xh += x @ ld("skip", m["d_in"], m["d_out"])
y = x if tgt == "x" else ld("x_out", m["n"], m["d_out"])
sse = ((xh - y) ** 2).sum()
print(1 - sse / ((y - y.mean(0)) ** 2).sum(), sse / y.size, (c > 0).sum(1).mean())
PY
}
# close JSON_FILE FIELD VALUE: |a - b| <= 1e-3 max(1, |b|)
close() {
    /usr/bin/python3 -c "
import json, sys; o = json.load(open('$1')); a, b = o['$2'], float('$3')
sys.exit(0 if abs(a - b) <= 1e-3 * max(1, abs(b)) else 1)" && ok || bad "$2 = $(cat "$1"), expected $3"
}
for c in saelens_jumprelu big_jumprelu gemmascope1_npz_compressed; do
    set -- $(fve_ref $c x)
    "$L" dict eval "$FX/$c" --acts "$FX/$c/acts.npy" --json > "$T/e.json" && ok || bad "eval $c"
    close "$T/e.json" fve "$1"; close "$T/e.json" mse "$2"; close "$T/e.json" l0_mean "$3"
done
set -- $(fve_ref gemmascope2_transcoder_affine x_out)
expect 0 '"target":"acts_out"' "$L" dict eval "$FX/gemmascope2_transcoder_affine" \
    --acts "$FX/gemmascope2_transcoder_affine/acts.npy" --acts-out "$FX/gemmascope2_transcoder_affine/acts_out.npy" --json
grep '^{' "$T/out" > "$T/e.json" # stdout's JSON, without stderr's notes
close "$T/e.json" fve "$1"; close "$T/e.json" mse "$2"
expect 0 '^FVE +-?[0-9]' "$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/saelens_jumprelu/acts.npy"
expect 0 '"target":"none".*"fve":null' "$L" dict eval "$FX/sparsify_transcoder_skip" \
    --acts "$FX/sparsify_transcoder_skip/acts.npy" --json
expect 0 '"l0_mean":16[,.]' "$L" dict eval "$FX/sparsify_topk" --acts "$FX/sparsify_topk/acts.npy" --json
# --target-l0: the terms of Gemma Scope 2's objective, against numpy (docs/DICTIONARIES.md)
"$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/saelens_jumprelu/acts.npy" --target-l0 20 \
    --lambda 0.5 --json > "$T/o.json" && ok || bad "eval --target-l0"
/usr/bin/python3 - "$FX/saelens_jumprelu/ref" "$T/o.json" <<'PY' && ok || bad "--target-l0 terms $(cat "$T/o.json")"
import json, sys, numpy as np
d = sys.argv[1]
m = json.load(open(d + "/meta.json"))
ld = lambda n, *s: np.fromfile(f"{d}/{n}.f32", dtype="<f4").astype(np.float64).reshape(s)
x = ld("x", m["n"], m["d_in"])
pre = (x - ld("b_dec", m["d_out"])) @ ld("W_enc", m["d_in"], m["d_sae"]) + ld("b_enc", m["d_sae"])
c = np.where((pre > ld("threshold", m["d_sae"])) & (pre > 0), pre, 0)
xh = c @ ld("W_dec", m["d_sae"], m["d_out"]) + ld("b_dec", m["d_out"])
l0 = (c > 0).sum(1)
want = {"reconstruction": ((x - xh) ** 2).sum(1).mean(), "l0": l0.mean(),
        "l0_penalty": ((2 / 20) * (l0 - 20.0) ** 2).mean()}
want["l0_penalty_weighted"] = 0.5 * want["l0_penalty"]
want["objective"] = want["reconstruction"] + want["l0_penalty_weighted"]
got = json.load(open(sys.argv[2]))["objective"]
sys.exit(0 if got["target_l0"] == 20 and all(abs(got[k] - v) <= 1e-4 * max(1, abs(v)) for k, v in want.items()) else 1)
PY
expect 0 'L0 penalty +[0-9.]+ +mean \(2/L0\*\)' "$L" dict eval "$FX/saelens_jumprelu" \
    --acts "$FX/saelens_jumprelu/acts.npy" --target-l0 20
expect 2 'give both' "$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/saelens_jumprelu/acts.npy" --lambda 1
expect 2 'target-l0 takes a positive number' "$L" dict eval "$FX/saelens_jumprelu" \
    --acts "$FX/saelens_jumprelu/acts.npy" --target-l0 -3
# the L0 warning: a config stating l0 far from what the data gives
mkdir -p "$T/gs2" && cp "$FX/gemmascope2_sae/params.safetensors" "$T/gs2/"
sed 's/"l0": *[0-9.]*/"l0": 400/' "$FX/gemmascope2_sae/config.json" > "$T/gs2/config.json"
expect 0 'warning: mean L0 .* more than 2x off the config.s l0 400.*wrong site' \
    "$L" dict eval "$T/gs2" --acts "$FX/gemmascope2_sae/acts.npy"

# errors: message names the file, exit 1; usage errors exit 2
expect 1 "latentdb: $FX/bad/nan_weights/sae_weights.safetensors: tensor 'W_enc' has NaN" "$L" dict show "$FX/bad/nan_weights"
expect 1 "wrong_shape/sae_weights.safetensors: tensor 'b_enc' has shape \[257\]" "$L" dict show "$FX/bad/wrong_shape"
expect 1 "latentdb: $T/nope: no such file" "$L" dict show "$T/nope"
expect 1 "no dictionary found" "$L" dict show "$T"
expect 1 "truncated.npy: truncated" "$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/bad/truncated.npy"
expect 1 "object" "$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/bad/object.npy"
expect 1 "acts_out.npy: last dimension is 64; expected d_in = 128" "$L" dict eval "$FX/big_jumprelu" --acts "$FX/gemmascope2_transcoder_affine/acts_out.npy"
expect 2 "usage: latentdb dict" "$L" dict eval "$FX/saelens_jumprelu"
expect 2 "unknown command" "$L" frobnicate
expect 2 "usage" "$L"
expect 0 "dict show" "$L" --help
# NaN in activations is refused, naming the row
/usr/bin/python3 -c "
import numpy as np
x = np.load('$FX/saelens_jumprelu/acts.npy'); x[5, 3] = np.nan; np.save('$T/nan.npy', x)"
expect 1 "nan.npy: row 5 holds NaN" "$L" dict eval "$FX/saelens_jumprelu" --acts "$T/nan.npy"

# Codes under OpenBLAS's Haswell kernels and under the core latentdb picks (each
# in its own process) agree; on CPUs without AVX-512 both runs use OpenBLAS's pick.
H=$BUILD/tests/helper_encode
expect 0 'core Haswell \(user\)' env OPENBLAS_CORETYPE=Haswell "$H" write "$FX/big_jumprelu" "$FX/big_jumprelu/acts.npy" "$T/haswell.bin"
expect 0 'core ' env -u OPENBLAS_CORETYPE "$H" write "$FX/big_jumprelu" "$FX/big_jumprelu/acts.npy" "$T/chosen.bin"
echo "  chosen: $(cat "$T/out")" >&2
expect 0 ' 0 differ' "$H" compare "$T/haswell.bin" "$T/chosen.bin" "$FX/big_jumprelu/ref/threshold.f32"
if grep -q avx512dq /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo; then
    env -u OPENBLAS_CORETYPE "$H" write "$FX/big_jumprelu" "$FX/big_jumprelu/acts.npy" "$T/x.bin" > "$T/out"
    grep -qE 'core (SkylakeX|Cooperlake) \((latentdb|openblas)\)' "$T/out" && ok || bad "AVX-512 CPU should run SkylakeX/Cooperlake kernels: $(cat "$T/out")"
fi
# A user's OPENBLAS_CORETYPE is kept, with a note when it keeps an AVX-512 CPU off its
# AVX-512 kernels (not under make valgrind, which knows no AVX-512).
if grep -q avx512dq /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo &&
    [ -z "${LDB_VALGRIND:-}" ]; then
    E=$FX/saelens_jumprelu
    expect 0 'note: OPENBLAS_CORETYPE=Haswell holds OpenBLAS to its Haswell kernels; this CPU can run (SkylakeX|Cooperlake)' \
        env OPENBLAS_CORETYPE=Haswell "$L" dict eval "$E" --acts "$E/acts.npy" --precision f32
    grep -q 'OpenBLAS core Haswell' "$T/out" && ok || bad "OPENBLAS_CORETYPE=Haswell not kept: $(cat "$T/out")"
    OPENBLAS_CORETYPE=SkylakeX "$L" dict eval "$E" --acts "$E/acts.npy" > "$T/out" 2>&1
    ! grep -q 'note: OPENBLAS_CORETYPE' "$T/out" && ok || bad "a note for an AVX-512 core: $(cat "$T/out")"
    env -u OPENBLAS_CORETYPE "$L" dict eval "$E" --acts "$E/acts.npy" > "$T/out" 2>&1
    ! grep -q 'note: OPENBLAS_CORETYPE' "$T/out" && ok || bad "a note with no OPENBLAS_CORETYPE: $(cat "$T/out")"
fi

# ---- the database commands on the store fixture (issue 4's contract) ----
S=$FX/store
DB=$T/db
# the store fixture's size (102,400 tokens in make check; smaller under make valgrind)
set -- $(/usr/bin/python3 -c "
import json; j = json.load(open('$S/planted.json'))
print(j['n_tokens'] // j['ctx'], j['n_tokens'], j['n_ordinary'])")
NSEQ=$1 NTOK=$2 NORD=$3
# jcheck PYTHON_EXPR CMD...: the command's JSON output (in o) satisfies the expression
jcheck() {
    expr=$1
    shift
    if "$@" > "$T/j.json" 2> "$T/j.err" && /usr/bin/python3 -c "
import json, sys
o = json.load(open('$T/j.json'))
sys.exit(0 if ($expr) else 1)" 2>> "$T/j.err"; then ok; else bad "$* -> $(head -c 300 "$T/j.json") $(cat "$T/j.err")"; fi
}
expect 0 'initialised' "$L" init "$DB" --skip-tokens 2
expect 1 'already exists' "$L" init "$DB"
expect 2 'values must be' "$L" init "$T/db2" --values f8
expect 0 "added dictionary 'a'" "$L" dict add "$DB" a "$S/dict"
expect 1 "'a' exists already" "$L" dict add "$DB" a "$S/dict"
expect 1 'no dictionary found' "$L" dict add "$DB" z "$T"
jcheck 'o[0]["name"] == "a" and len(o[0]["sha256"]) == 64 and o[0]["d_sae"] == 4096' "$L" dict ls "$DB" --json
expect 0 "ingested .* $NSEQ sequences, $NTOK tokens" "$L" ingest "$DB" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy"
expect 1 'done already; pass --again' "$L" ingest "$DB" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy"
expect 1 "no dictionary named 'q'" "$L" ingest "$DB" --dict q --tokens "$S/tokens.npy" --acts "$S/acts.npy"
expect 2 'ingest needs' "$L" ingest "$DB" --dict a
jcheck 'o["n_seq"] == '$NSEQ' and o["n_tokens"] == '$NTOK' and o["n_ordinary"] == '$NORD' and o["dicts"][0]["name"] == "a" and o["dicts"][0]["nnz"] > 0 and 0 < o["dicts"][0]["bytes_per_nnz"] < 16 and o["bytes"] > 0' "$L" info "$DB" --json
expect 0 'bytes/nnz' "$L" info "$DB"
expect 0 ": ok \\($NSEQ sequences, $NTOK tokens" "$L" check "$DB"
expect 0 '^[0-9a-f]{64}$' "$L" check "$DB" --digest
# the codes do not depend on the thread count: each tile is one single-threaded
# sgemm whichever worker runs it (OpenBLAS's own 1- and 2-thread GEMMs differ)
D_ONE=$("$L" check "$DB" --digest 2> /dev/null)
for n in 1 3; do
    [ "$n" = "${OPENBLAS_NUM_THREADS:-}" ] && continue # that is the default run (valgrind's)
    rm -rf "$T/dbt"
    "$L" init "$T/dbt" --skip-tokens 2 > /dev/null && "$L" dict add "$T/dbt" a "$S/dict" > /dev/null &&
        OPENBLAS_NUM_THREADS=$n "$L" ingest "$T/dbt" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" > /dev/null 2>&1 &&
        [ "$("$L" check "$T/dbt" --digest 2> /dev/null)" = "$D_ONE" ] && ok ||
        bad "an ingest on $n threads stored other codes than on ${OPENBLAS_NUM_THREADS:-the default} threads"
done
rm -rf "$T/dbt"
# exact codes (issue 23) depend on nothing but the rows and the dictionary: the same digest
# with the f32 screen, with batches of 512, 2048 or 8192 positions (other GEMM shapes), and
# for the corpus ingested as two files cut mid-way (the digest leaves out sources). Not under
# make valgrind, whose own check of exact codes is the digest below (these depend on no build).
expect 1 'done already; pass --again' "$L" ingest "$DB" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" --precision f32
expect 2 'precision is exact, f32 or bf16' "$L" ingest "$DB" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" --precision f64
if [ -z "${LDB_VALGRIND:-}" ]; then
    for v in "--precision f32" "--batch-tokens 512" "--batch-tokens 2048" "--batch-tokens 8192"; do
        rm -rf "$T/dbt"
        # shellcheck disable=SC2086
        "$L" init "$T/dbt" --skip-tokens 2 > /dev/null && "$L" dict add "$T/dbt" a "$S/dict" > /dev/null &&
            "$L" ingest "$T/dbt" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" $v > /dev/null 2>&1 &&
            [ "$("$L" check "$T/dbt" --digest 2> /dev/null)" = "$D_ONE" ] && ok ||
            bad "an exact ingest with $v stored other codes than the default's"
    done
    /usr/bin/python3 -c "
import numpy as np
t = np.load('$S/tokens.npy'); a = np.load('$S/acts.npy', mmap_mode='r')
k = len(t) // 2 + 1; c = t.shape[1]
np.save('$T/t1.npy', t[:k]); np.save('$T/a1.npy', a[:k * c])
np.save('$T/t2.npy', t[k:]); np.save('$T/a2.npy', a[k * c:])"
    rm -rf "$T/dbt"
    "$L" init "$T/dbt" --skip-tokens 2 > /dev/null && "$L" dict add "$T/dbt" a "$S/dict" > /dev/null &&
        "$L" ingest "$T/dbt" --dict a --tokens "$T/t1.npy" --acts "$T/a1.npy" > /dev/null 2>&1 &&
        "$L" ingest "$T/dbt" --dict a --tokens "$T/t2.npy" --acts "$T/a2.npy" > /dev/null 2>&1 &&
        [ "$("$L" check "$T/dbt" --digest 2> /dev/null)" = "$D_ONE" ] && ok ||
        bad "the corpus ingested as two files stored other codes than as one"
    rm -rf "$T/dbt" "$T"/t[12].npy "$T"/a[12].npy
fi
# ... and not on the CPU, its ISA or the build: this digest was computed on 2026-12-07 by
# the native build on AMD Zen 4 (bf16 screen, AVX-512 reference loop); make valgrind's
# build (no -march=native: the plain loop, the f32 screen under valgrind) must give it too
"$BUILD/tools/planted" "$T/pg" --n-tokens 4096 --ctx 256 --d-in 256 --d-sae 4096 --seed 7 > /dev/null 2>&1
"$L" init "$T/dbt" --skip-tokens 2 > /dev/null && "$L" dict add "$T/dbt" a "$T/pg/dict" > /dev/null &&
    "$L" ingest "$T/dbt" --dict a --tokens "$T/pg/tokens.npy" --acts "$T/pg/acts.npy" > /dev/null 2>&1
G=$("$L" check "$T/dbt" --digest 2> /dev/null)
[ "$G" = 35c3013200060840c969b3ca4a2386e57253e136455e05695d9245638ddf0448 ] && ok ||
    bad "the exact codes of the planted 4096-token corpus have digest $G, not the one the native build gave (input acts.npy sha256 $(sha256sum "$T/pg/acts.npy" | cut -c1-16), expected 19ebdd716f829e12)"
rm -rf "$T/dbt" "$T/pg"
# format 3 (init --format 3) stores the same codes in its own records: the same digest,
# the same answers
"$L" init "$T/db3" --skip-tokens 2 --format 3 > /dev/null && "$L" dict add "$T/db3" a "$S/dict" > /dev/null &&
    "$L" ingest "$T/db3" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" > /dev/null 2>&1 &&
    [ "$("$L" check "$T/db3" --digest 2> /dev/null)" = "$D_ONE" ] && ok ||
    bad "a format-3 database of the same ingest has another digest"
# (format 6 answers seq and stored-window scope from its lseq and lwin records, format 3
# from the forward blocks and the postings)
for q in "top DB a 3 --json" "latent DB a 3 --json" "cooc DB a 3 -k 5 --json" "samples DB a 3 --json" \
    "cooc DB a 3 --scope seq -k 30 --json" "cooc DB a 3 --scope window:5 -k 30 --json" \
    "cooc DB a 3 --scope window:1 --sort npmi -k 30 --json"; do
    # shellcheck disable=SC2086
    a=$(echo $q | sed "s|DB|$DB|" | xargs "$L" 2>&1)
    # shellcheck disable=SC2086
    b=$(echo $q | sed "s|DB|$T/db3|" | xargs "$L" 2>&1)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "formats 3 and 6 answer '$q' differently"
done
expect 2 "--format must be 6, 5, 4 or 3, not '7'" "$L" init "$T/db7" --format 7
# CMD --help: its usage on stdout, status 0 (info once read an unset path after it)
expect 0 '^usage: latentdb info DB' "$L" info --help
expect 0 '^usage: latentdb top DB DICT LATENT' "$L" top "$DB" a 3 --help
expect 0 '^usage: latentdb compact DB' "$L" compact -h
rm -rf "$T/db3"
# compact: the live pages in a new file; the same digest, no larger
cp -r "$DB" "$T/dbc"
s0=$(stat -c %s "$T/dbc/data.mdb")
# (the folder a compact killed midway left behind goes; the user's own files stay)
mkdir "$T/dbc/.latentdb.compact-Zx9kQ1" "$T/dbc/mine"
: > "$T/dbc/.latentdb.compact-Zx9kQ1/data.mdb"
expect 0 "compacted $T/dbc: data.mdb" "$L" compact "$T/dbc"
[ ! -e "$T/dbc/.latentdb.compact-Zx9kQ1" ] && [ -d "$T/dbc/mine" ] && ok || bad "compact left $(ls -A "$T/dbc")"
[ "$(stat -c %s "$T/dbc/data.mdb")" -le "$s0" ] && ok || bad "compact made data.mdb larger"
[ "$("$L" check "$T/dbc" --digest 2> /dev/null)" = "$D_ONE" ] && ok || bad "compact changed the digest"
expect 0 ": ok \\($NSEQ sequences" "$L" check "$T/dbc"
expect 2 "unexpected argument '--x'" "$L" compact "$T/dbc" --x
rm -rf "$T/dbc"
# --precision bf16 (oneDNN's bf16 matmul, on AVX-512 CPUs): per-latent counts near the
# exact ones, and a run of its own that does not store the same inputs twice by accident
if [ -z "${LDB_VALGRIND:-}" ]; then
    "$L" init "$T/dbt" --skip-tokens 2 > /dev/null && "$L" dict add "$T/dbt" a "$S/dict" > /dev/null
    if grep -q avx512bw /proc/cpuinfo; then
        expect 1 'done already, with exact codes; pass --again' \
            "$L" ingest "$DB" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" --precision bf16
        expect 0 "ingested .* $NSEQ sequences, $NTOK tokens" \
            "$L" ingest "$T/dbt" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" --precision bf16
        expect 0 ": ok \\($NSEQ sequences, $NTOK tokens" "$L" check "$T/dbt"
        expect 1 'done already, with bf16 codes; pass --again' \
            "$L" ingest "$T/dbt" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy"
        "$L" density "$DB" a --counts --json > "$T/d32.json" 2> /dev/null &&
            "$L" density "$T/dbt" a --counts --json > "$T/d16.json" 2> /dev/null &&
            /usr/bin/python3 -c "
import json, sys
a = json.load(open('$T/d32.json'))['counts']; b = json.load(open('$T/d16.json'))['counts']
d = [abs(x - y) for x, y in zip(a, b)]
sys.exit(0 if len(a) == len(b) == 4096 and sum(d) < 0.01 * sum(a) and all(e <= 0.05 * x + 8 for e, x in zip(d, a)) else 1)" &&
            ok || bad "bf16 per-latent counts far from the exact ones"
        jcheck 'o["gemm"].startswith("onednn bf16") and o["tokens"] == '$NTOK \
            "$L" dict eval "$S/dict" --acts "$S/acts.npy" --precision bf16 --json
    else
        expect 1 'bf16' "$L" ingest "$T/dbt" --dict a --tokens "$S/tokens.npy" --acts "$S/acts.npy" --precision bf16
        expect 0 ": ok \\(0 sequences" "$L" check "$T/dbt"
    fi
    rm -rf "$T/dbt"
fi
jcheck 'o["dict"] == "a" and o["latent"] == 1495 and len(o["examples"]) == 5 and all(set(e) >= {"seq","pos","value","context"} and set(e["context"]) >= {"start","tokens","values"} for e in o["examples"]) and [e["value"] for e in o["examples"]] == sorted([e["value"] for e in o["examples"]], reverse=True)' "$L" top "$DB" a 1495 -k 5 --json
expect 0 '\[\[[0-9]+\]\]' "$L" top "$DB" a 1495 -k 3
# --color: each token on a 24-bit background by its value, the firing one bold and
# underlined; never when stdout is not a terminal (auto) or when told never
ESC=$(printf '\033')
"$L" top "$DB" a 1495 -k 3 --color always > "$T/col" 2>&1
grep -q "${ESC}\[48;2;255;140;0m" "$T/col" && grep -q "${ESC}\[1;4m" "$T/col" && ! grep -q '\[\[' "$T/col" && ok || bad "top --color always: $(head -c 300 "$T/col" | cat -v)"
for c in never auto; do
    "$L" top "$DB" a 1495 -k 3 --color $c > "$T/col" 2>&1
    grep -q "$ESC" "$T/col" && bad "top --color $c wrote escapes" || ok
done
"$L" samples "$DB" a 1495 --groups 2 --per-group 2 --color always > "$T/col" 2>&1
grep -q "${ESC}\[48;2;" "$T/col" && ok || bad "samples --color always: $(head -c 200 "$T/col" | cat -v)"
"$L" seq "$DB" 1 --color always > "$T/col" 2>&1
grep -q "${ESC}\[48;2;" "$T/col" && ok || bad "seq --color always: $(head -c 200 "$T/col" | cat -v)"
expect 2 'color takes auto, always or never' "$L" top "$DB" a 1495 --color blue
"$L" top "$DB" a 1495 -k 7 --json > "$T/top7.json"
jcheck 'len(o["examples"]) == 7 and all("context" not in e for e in o["examples"]) and [(e["seq"], e["pos"], e["value"]) for e in o["examples"]] == [(e["seq"], e["pos"], e["value"]) for e in json.load(open("'"$T"'/top7.json"))["examples"]]' "$L" top "$DB" a 1495 -k 7 --positions-only --json
jcheck 'o["by"] == "value" and len(o["groups"]) == 4 and all(set(g) >= {"lo","hi","count","examples"} for g in o["groups"])' "$L" samples "$DB" a 1495 --groups 4 --per-group 2 --by value --json
jcheck 'set(o) >= {"dict","latent","label","count","density","max","mean","std","hist"} and len(o["hist"]) == 8 and sum(b["count"] for b in o["hist"]) == o["count"]' "$L" latent "$DB" a 1495 --bins 8 --json
jcheck 'o["n_tokens"] == '$NORD' and o["n_latents"] == 4096 and len(o["counts"]) == 4096 and sum(b["count"] for b in o["bins"]) == 4096 - o["dead"]' "$L" density "$DB" a --bins 10 --counts --json
expect 0 'histogram of log10\(density\)' "$L" density "$DB" a
jcheck 'o["scope"] == "window:3" and len(o["cooccurring"]) == 4 and all(set(c) >= {"dict","latent","count","jaccard","npmi"} for c in o["cooccurring"])' "$L" cooc "$DB" a 1495 -k 4 --scope window:3 --json
expect 2 'scope takes' "$L" cooc "$DB" a 1495 --scope sentence
jcheck 'o["seq"] == 3 and len(o["tokens"]) == 256 and o["tokens"][0] == 2 and all(len(p["latents"]) <= 2 for p in o["positions"])' "$L" seq "$DB" 3 -k 2 --json
expect 1 'no sequence 999' "$L" seq "$DB" 999
expect 0 'labelled a latent 1495' "$L" label "$DB" a 1495 "frequent token feature"
expect 0 'a latent 1495: frequent token feature' "$L" latent "$DB" a 1495
expect 0 'examples of a latent 1495: frequent token feature' "$L" top "$DB" a 1495 -k 1
jcheck 'o["label"] == "frequent token feature"' "$L" top "$DB" a 1495 -k 1 --json
"$L" export "$DB" a --latents 0-3 --top 2 --samples 4 > "$T/exp.jsonl" 2>/dev/null && ok || bad "export"
/usr/bin/python3 -c "
import json, sys
ls = [json.loads(l) for l in open('$T/exp.jsonl')]
sys.exit(0 if len(ls) == 4 and [l['latent'] for l in ls] == [0,1,2,3] and all(len(l['top']) <= 2 and 'samples' in l for l in ls) else 1)" && ok || bad "export lines: $(head -c 300 "$T/exp.jsonl")"
expect 1 'latent 5000 is out of range' "$L" top "$DB" a 5000
expect 1 "no dictionary named 'nope'" "$L" top "$DB" nope 1
expect 2 'LATENT must be' "$L" top "$DB" a x1
expect 1 'no database here' "$L" info "$T/none"
# the catalog follows LMDB: a catalog left behind (a crash between the two commits)
# is rebuilt when the DB is next opened for writing
/usr/bin/python3 -c "
import sqlite3; c = sqlite3.connect('$DB/catalog.sqlite'); c.execute('DELETE FROM sequences'); c.execute(\"UPDATE meta SET value = 1 WHERE key = 'batch'\"); c.commit()"
expect 0 'labelled a latent 7' "$L" label "$DB" a 7 "x"
/usr/bin/python3 -c "
import sqlite3, sys; c = sqlite3.connect('$DB/catalog.sqlite')
n = c.execute('SELECT count(*) FROM sequences').fetchone()[0]
lab = c.execute(\"SELECT label FROM latents WHERE dict='a' AND latent=1495\").fetchone()[0]
sys.exit(0 if n == $NSEQ and lab == 'frequent token feature' else 1)" && ok || bad "catalog not reconciled"
# several dictionaries in one ingest read the same activations
DB2=$T/db2
"$L" init "$DB2" --skip-tokens 2 > /dev/null && "$L" dict add "$DB2" a "$S/dict" > /dev/null &&
    "$L" dict add "$DB2" b "$S/dict" > /dev/null && ok || bad "db2 setup"
expect 0 "$NSEQ sequences, $NTOK tokens" "$L" ingest "$DB2" --dict a,b --tokens "$S/tokens.npy" --acts "$S/acts.npy"
"$L" density "$DB2" a --counts --json > "$T/da.json" 2>&1 && "$L" density "$DB2" b --counts --json > "$T/db.json" 2>&1 &&
    "$L" density "$DB" a --counts --json > "$T/d1.json" 2>&1 && ok || bad "density of a, b"
/usr/bin/python3 -c "
import json, sys
a, b, one = (json.load(open('$T/' + n + '.json'))['counts'] for n in ('da', 'db', 'd1'))
sys.exit(0 if a == b == one else 1)" && ok || bad "a and b of one ingest differ, or differ from a alone"
jcheck 'o["cooccurring"][0]["latent"] == 1495 and o["cooccurring"][0]["jaccard"] == 1' "$L" cooc "$DB2" a 1495 --with b -k 1 --json
expect 1 "dictionary 'a' named twice" "$L" ingest "$DB2" --dict a,a --tokens "$S/tokens.npy" --acts "$S/acts.npy"

# import: codes of the wrong shape are refused
/usr/bin/python3 -c "
import numpy as np, scipy.sparse as sp
sp.save_npz('$T/c.npz', sp.random(100, 4096, density=0.01, format='csr', dtype=np.float32, random_state=1))"
expect 1 "c.npz: codes of shape \\[100, 4096\\]; expected \\[$NTOK, 4096\\]" "$L" import "$DB" --dict a --tokens "$S/tokens.npy" --codes "$T/c.npz"
/usr/bin/python3 -c "
import numpy as np, scipy.sparse as sp
ptr = np.full($NTOK + 1, 2, dtype=np.int32); ptr[0] = 0
m = sp.csr_matrix((np.array([1, 2], np.float32), np.array([5, 5], np.int32), ptr), shape=($NTOK, 4096))
sp.save_npz('$T/dup.npz', m)"
# (--again: these tokens hold codes of a already, which is refused before any row is read)
expect 1 'dup.npz: row 0 has latent 5 twice' "$L" import "$DB" --dict a --tokens "$S/tokens.npy" --codes "$T/dup.npz" --again

# planted --codes writes codes scipy reads (sorted, no latent twice in a row) and
# import stores every one of them
"$BUILD/tools/planted" "$T/pc" --codes --n-tokens 8192 --ctx 256 --d-in 32 --d-sae 512 \
    --background 20 --seed 3 > /dev/null
pc_nnz=$(/usr/bin/python3 -c "
import numpy as np, scipy.sparse as sp
m = sp.load_npz('$T/pc/codes.npz'); n = m.nnz
ok = m.has_sorted_indices and m.shape == (8192, 512) and (m.data > 0).all()
m.sum_duplicates(); print(n if ok and m.nnz == n else -1)")
"$L" init "$T/pcdb" --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$T/pcdb" p "$T/pc/dict" > /dev/null
expect 0 "^imported" "$L" import "$T/pcdb" --dict p --tokens "$T/pc/tokens.npy" --codes "$T/pc/codes.npz"
expect 0 "^p +512 +8192 +$pc_nnz " "$L" info "$T/pcdb"
expect 0 ": ok \(32 sequences, 8192 tokens, $pc_nnz codes" "$L" check "$T/pcdb"

# Issue 20, finding 9: a label is one line of UTF-8 text, refused otherwise (naming the
# byte, writing nothing), and every --json output is valid JSON whatever is stored:
# strings written behind latentdb's back with invalid UTF-8 and control characters
# come out as U+FFFD (as Python's and WHATWG's decoders read them) and escapes.
# (Not under make valgrind, to keep CI under 30 minutes: make asan runs it with
# ASan's memory checks of the same output code.)
if [ -z "${LDB_VALGRIND:-}" ]; then
U=$T/utf
"$BUILD/tools/planted" "$U" --codes --n-tokens 2048 --ctx 256 --d-in 32 --d-sae 512 \
    --background 5 --seed 3 > /dev/null && mv "$U/dict" "$U/QQDICTMARKQQ" &&
    "$L" init "$U/db" --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$U/db" p "$U/QQDICTMARKQQ" > /dev/null &&
    "$L" import "$U/db" --dict p --tokens "$U/tokens.npy" --codes "$U/codes.npz" --source QQSRCMARKQQ > /dev/null &&
    ok || bad "the UTF-8 test DB"
expect 0 'labelled p latent 3: QQLABELMARKQQ ünï' "$L" label "$U/db" p 3 "QQLABELMARKQQ ünï"
sum=$(md5sum < "$U/db/data.mdb")
# overlong, surrogate, past U+10FFFF, truncated, stray continuation; ESC, C1 CSI, newline, DEL
for c in 'ab\300\200cd|byte 2 \(0xC0\)' 'ab\355\240\200|byte 2 \(0xED\)' 'ab\364\220\200\200|byte 2 \(0xF4\)' \
         'abc\342\202|byte 3 \(0xE2\)' 'a\200|byte 1 \(0x80\)' 'ab\033[2J|U\+001B at byte 2' \
         'ab\302\233m|U\+009B at byte 2' 'ün\nx|U\+000A at byte 3' 'ab\177|U\+007F at byte 2'; do
    expect 1 "label of 'p' latent 3: .*${c#*|}" "$L" label "$U/db" p 3 "$(printf "${c%%|*}")"
done
[ "$(md5sum < "$U/db/data.mdb")" = "$sum" ] && ok || bad "a refused label wrote to data.mdb"
jcheck 'o["label"] == "QQLABELMARKQQ ünï"' "$L" latent "$U/db" p 3 --json
/usr/bin/python3 - "$U/db/data.mdb" <<'PY' && ok || bad "no marker to damage in data.mdb"
import sys
bad = b"\xff\xc0\x80\xed\xa0\x80\x1b[2J\xc2\x9b\x7f"
d = open(sys.argv[1], "rb").read()
n = [d.count(m) for m in (b"QQLABELMARKQQ", b"QQDICTMARKQQ", b"QQSRCMARKQQ")]
for m in (b"QQLABELMARKQQ", b"QQDICTMARKQQ", b"QQSRCMARKQQ"):
    d = d.replace(m, bad[:len(m)])
open(sys.argv[1], "wb").write(d)
sys.exit(0 if min(n) > 0 else 1)
PY
# ujson PYTHON_EXPR CMD...: stdout is strict UTF-8 with no raw control character, each
# line parses as JSON, and the expression holds for it (o; bad(n): the damage's first n
# bytes as Python decodes them, each maximal invalid subsequence one U+FFFD)
ujson() {
    expr=$1
    shift
    if "$@" > "$T/u.json" 2> "$T/u.err" && /usr/bin/python3 - "$T/u.json" "$expr" <<'PY' 2>> "$T/u.err"; then ok; else bad "$* -> $(head -c 300 "$T/u.json") $(cat "$T/u.err")"; fi
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8")  # strict: no invalid sequence
assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in raw), "a raw control character"
bad = lambda n: b"\xff\xc0\x80\xed\xa0\x80\x1b[2J\xc2\x9b\x7f"[:n].decode("utf-8", "replace")
assert bad(13) == "\ufffd" * 6 + "\x1b[2J\x9b\x7f" and bad(11) == "\ufffd" * 6 + "\x1b[2J\ufffd"
lines = raw.splitlines()
assert lines and all(eval(sys.argv[2], {"o": json.loads(l), "bad": bad}) for l in lines)
PY
}
ujson 'o["label"] == bad(13) + " ünï"' "$L" latent "$U/db" p 3 --json
ujson 'o["label"] == bad(13) + " ünï" and len(o["examples"]) == 2' "$L" top "$U/db" p 3 -k 2 --json
ujson 'o["label"] == bad(13) + " ünï" and o["latent"] == 3' "$L" export "$U/db" p --latents 3-3 --top 2 --samples 2
ujson 'o["source"] == bad(11)' "$L" seq "$U/db" 1 -k 1 --json
ujson 'o[0]["path"] == "'"$U"'/" + bad(12) and o[0]["name"] == "p"' "$L" dict ls "$U/db" --json
# text output: the same strings with U+FFFD and escapes, never a raw control character
for c in "latent $U/db p 3" "top $U/db p 3 -k 1" "seq $U/db 1 -k 1"; do
    $L $c > "$T/u.txt" 2>&1 && /usr/bin/python3 -c "
import sys
s = open('$T/u.txt', 'rb').read().decode('utf-8')
sys.exit(0 if '\ufffd' in s and not any(ord(c) < 32 and c != '\n' or 0x7f <= ord(c) <= 0x9f for c in s) else 1)" &&
        ok || bad "$c printed raw bytes: $(od -c "$T/u.txt" | head -n 3)"
done
fi
# every JSON document the CLI prints goes through that one writer (tools/cli/output.c)
[ "$(grep -l 'cJSON_Print' tools/cli/*.c)" = "tools/cli/output.c" ] && ok ||
    bad "cJSON printed outside tools/cli/output.c: $(grep -l 'cJSON_Print' tools/cli/*.c)"

echo "test_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
