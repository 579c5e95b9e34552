#!/bin/sh
# CLI tests: run the real bin/latentdb on the fixtures and check output, exit
# status and error messages. usage: tests/cli.sh BUILD FIXTURES
BUILD=$1
FX=$2
L=$BUILD/bin/latentdb
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "tests/cli.sh: FAIL: $*" >&2; }
# expect STATUS PATTERN CMD... : exit status and a grep -E pattern on stdout+stderr
expect() {
    want=$1 pat=$2
    shift 2
    "$@" > "$T/out" 2>&1
    st=$?
    if [ "$st" -ne "$want" ]; then
        bad "$* exited $st, expected $want: $(head -c 400 "$T/out")"
    elif ! grep -qE -- "$pat" "$T/out"; then
        bad "$* output lacks /$pat/: $(head -c 400 "$T/out")"
    else
        ok
    fi
}

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
cp "$T/out" "$T/e.json"
close "$T/e.json" fve "$1"; close "$T/e.json" mse "$2"
expect 0 '^FVE +-?[0-9]' "$L" dict eval "$FX/saelens_jumprelu" --acts "$FX/saelens_jumprelu/acts.npy"
expect 0 '"target":"none".*"fve":null' "$L" dict eval "$FX/sparsify_transcoder_skip" \
    --acts "$FX/sparsify_transcoder_skip/acts.npy" --json
expect 0 '"l0_mean":16[,.]' "$L" dict eval "$FX/sparsify_topk" --acts "$FX/sparsify_topk/acts.npy" --json
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

echo "test_cli: $pass passed, $fail failed"
