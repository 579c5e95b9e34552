#!/bin/sh
# Multi-layer dictionaries through the CLI (issue 22): dict show and eval of a
# cross-layer transcoder and a crosscoder written by numpy (gen_multilayer.py),
# ingest from one file per layer and from one [n, layers, d_in] array (the same
# store), LAYER:INDEX everywhere a latent is taken, "layer"/"index" in JSON,
# density --layer, cooc --with DICT:LAYER, malformed folders refused.
# usage: tests/multi.sh BUILD FIXTURES
BUILD=$1
FX=$2
L=$BUILD/bin/latentdb
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/multi.sh
. tests/expect.sh
M=$FX/multi
C=$M/clt3_affine_gs2

# dict show: the layers, their offsets and hooks
expect 0 '"kind":"clt","n_layers":3,"layers":\[\{"layer":0,"d_in":48,"d_sae":96,"d_out":40,"offset":0,"hook_in":"model.layers.0.pre_feedforward_layernorm.output"' \
    "$L" dict show "$C/dict" --json
expect 0 '"d_sae":288' "$L" dict show "$C/dict" --json
expect 0 'clt of 3 layers, with affine skip' "$L" dict show "$C/dict"
expect 0 '"format":"circuit-tracer".*"n_layers":3.*"offset":192' "$L" dict show "$M/clt3_ct/dict" --json
expect 0 '"type":"sae".*"kind":"crosscoder","n_layers":4' "$L" dict show "$M/crosscoder4_gs2/dict" --json

# dict eval: FVU per output layer against numpy's (meta.json), to 1e-4
fvu_check() { # case json-file
    /usr/bin/python3 -c "
import json, sys
m = json.load(open('$M/$1/ref/meta.json')); o = json.load(open('$2'))
got = [l['fvu'] for l in o['layers']]
ok = len(got) == len(m['fvu']) and all(abs(a - b) <= 1e-4 * max(1, abs(b)) for a, b in zip(got, m['fvu']))
ok = ok and abs(o['l0_mean'] - sum(m['l0'])) <= 1e-3 * sum(m['l0'])
sys.exit(0 if ok else 1)" && ok || bad "$1: FVU per layer $(cat "$2"), numpy $(grep -A5 fvu "$M/$1/ref/meta.json" | tr -d ' \n')"
}
for c in clt3_affine_gs2 clt3_gs2 clt3_ct crosscoder4_gs2; do
    n=$(/usr/bin/python3 -c "import json; print(json.load(open('$M/$c/ref/meta.json'))['n_layers'])")
    a="" y=""
    i=0
    while [ $i -lt "$n" ]; do
        a="$a${a:+,}$M/$c/acts_l$i.npy"
        y="$y${y:+,}$M/$c/acts_out_l$i.npy"
        i=$((i + 1))
    done
    "$L" dict eval "$M/$c/dict" --acts "$a" --acts-out "$y" --json > "$T/eval.json" 2>&1 &&
        fvu_check $c "$T/eval.json" || bad "$c: dict eval failed: $(cat "$T/eval.json")"
done
# the lower-triangle decoder entries of clt3_affine_gs2 are counted and ignored
want=$(/usr/bin/python3 -c "import json; print(json.load(open('$C/ref/meta.json'))['ignored_nonzero'])")
expect 0 "\"ignored_decoder_entries\":$want," "$L" dict eval "$C/dict" --acts "$C/acts.npy" \
    --acts-out "$C/acts_out_l0.npy,$C/acts_out_l1.npy,$C/acts_out_l2.npy" --json
expect 0 'note +the decoder holds [0-9]+ non-zero entries for outputs before' "$L" dict eval "$C/dict" \
    --acts "$C/acts.npy" --acts-out "$C/acts_out_l0.npy,$C/acts_out_l1.npy,$C/acts_out_l2.npy"
expect 1 'for a dictionary of 3 layers; expected one per layer' "$L" dict eval "$C/dict" \
    --acts "$C/acts_l0.npy,$C/acts_l1.npy"
expect 1 'must be \[n, 3, 48\]' "$L" dict eval "$C/dict" --acts "$C/acts_l0.npy"

# malformed folders, through the CLI
expect 1 "params_layer_1.safetensors is missing \(layers 0..0 and 2" "$L" dict show "$M/bad/missing_layer"
expect 1 "tensor 'w_dec' has shape \[24, 2, 16\]; expected \[24, 3, d_out\]" "$L" dict show "$M/bad/wdec_layers"
expect 1 "layer 1 has d_in 17 .* every layer must agree" "$L" dict show "$M/bad/d_in_mismatch"

# ingest: one file per layer, and the one-array form, give the same store
/usr/bin/python3 -c "
import numpy as np; np.save('$T/tok.npy', (np.arange(240) * 7 % 500).astype(np.int32).reshape(6, 40))"
for form in files array; do
    "$L" init "$T/$form" > /dev/null && "$L" dict add "$T/$form" clt "$C/dict" > /dev/null || bad "init $form"
done
expect 0 'ingested' "$L" ingest "$T/files" --dict clt --tokens "$T/tok.npy" \
    --acts "$C/acts_l0.npy,$C/acts_l1.npy,$C/acts_l2.npy"
expect 0 'ingested' "$L" ingest "$T/array" --dict clt --tokens "$T/tok.npy" --acts "$C/acts.npy"
for q in "top X clt 1:5 -k 50 --json" "density X clt --counts --json" "latent X clt 2:7 --json" \
         "cooc X clt 0:3 --with clt:2 --json" "search X clt --acts $C/acts.npy --json" "seq X 2 --json"; do
    set -- $q
    cmd=$1
    shift 2
    "$L" "$cmd" "$T/files" "$@" > "$T/a" 2>&1 && "$L" "$cmd" "$T/array" "$@" > "$T/b" 2>&1 &&
    cmp -s "$T/a" "$T/b" && [ -s "$T/a" ] && ok || bad "$cmd $*: the two ingests answer differently: $(head -c 300 "$T/a") / $(head -c 300 "$T/b")"
done
# the stored codes are numpy's codes: count per latent = numpy's firing count
"$L" density "$T/files" clt --counts --json > "$T/d.json"
/usr/bin/python3 -c "
import json, sys, numpy as np
c = np.fromfile('$C/ref/codes.f32', dtype='<f4').reshape(240, -1)
got = json.load(open('$T/d.json'))['counts']
sys.exit(0 if list((c != 0).sum(0)) == got else 1)" && ok || bad "firing counts per latent differ from numpy's"
# the same run again is refused; per-layer files in the wrong number are refused
expect 1 'done already' "$L" ingest "$T/files" --dict clt --tokens "$T/tok.npy" \
    --acts "$C/acts_l0.npy,$C/acts_l1.npy,$C/acts_l2.npy"
expect 1 "2 activations files for the multi-layer dictionary 'clt' of 3 layers" "$L" ingest "$T/files" \
    --dict clt --tokens "$T/tok.npy" --acts "$C/acts_l0.npy,$C/acts_l1.npy"
expect 1 "acts_l0.npy: 2 dimensions; expected \[n_seq, ctx, n_layers, d_in\]" "$L" ingest "$T/files" \
    --dict clt --tokens "$T/tok.npy" --acts "$C/acts_l0.npy"

# LAYER:INDEX in, "layer"/"index" out
expect 0 '"latent":101,"layer":1,"index":5' "$L" top "$T/files" clt 1:5 --json
expect 0 '"latent":101,"layer":1,"index":5' "$L" latent "$T/files" clt 101 --json
expect 0 '^clt latent 1:5' "$L" latent "$T/files" clt 101
expect 0 '"latent":101,"layer":1,"index":5' "$L" samples "$T/files" clt 1:5 --json
expect 0 '"dict":"clt","latent":[0-9]+,"layer":[0-2],"index":[0-9]+,"value"' "$L" seq "$T/files" 1 --json
expect 0 '"layer":2,"first":192,.*"n_latents":96' "$L" density "$T/files" clt --layer 2 --json
expect 0 'clt layer 2 \(latents 192..287\)' "$L" density "$T/files" clt --layer 2
expect 0 'with clt layer 2' "$L" cooc "$T/files" clt 0:3 --with clt:2
"$L" cooc "$T/files" clt 0:3 --with clt:2 --json > "$T/c.json"
/usr/bin/python3 -c "
import json, sys; o = json.load(open('$T/c.json'))
sys.exit(0 if o['cooccurring'] and all(i['layer'] == 2 and 192 <= i['latent'] < 288 for i in o['cooccurring']) else 1)" &&
    ok || bad "cooc --with clt:2 ranks layer 2 only: $(head -c 300 "$T/c.json")"
expect 0 'labelled clt latent 101' "$L" label "$T/files" clt 1:5 "a layer-1 latent"
expect 0 '"label":"a layer-1 latent"' "$L" latent "$T/files" clt 101 --json
expect 1 "latent '3:96': layer 3 of 'clt'|latent '3:96': 'clt' has 3 layers" "$L" top "$T/files" clt 3:96
expect 1 "latent '1:96': layer 1 of 'clt' has latents 0..95" "$L" top "$T/files" clt 1:96
expect 2 "LATENT must be a latent id \(0, 1, ...\) or LAYER:INDEX, not '1:x'" "$L" top "$T/files" clt 1:x
expect 1 'latent 288 is out of range' "$L" top "$T/files" clt 288
expect 1 "layer 3 is out of range: 'clt' has 3 layers" "$L" density "$T/files" clt --layer 3
expect 1 "layer 5 is out of range" "$L" cooc "$T/files" clt 0:3 --with clt:5

echo "multi: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
