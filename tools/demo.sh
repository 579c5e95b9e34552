#!/bin/sh
# make demo: the main job on a synthetic corpus (until the real-text demo lands):
# a 640 -> 16384 JumpReLU dictionary in the Gemma Scope 2 format and 40,960 tokens
# of activations built from known sparse codes (seeded, generated once), encoded
# into a database, then a tour of the queries.
set -e
BUILD=${1:-build}
L=bin/latentdb
D=data/demo
if [ ! -f "$D/acts.npy" ] || [ ! -f "$D/tokens.npy" ]; then
    echo "demo: generating a synthetic dictionary, tokens and activations in $D"
    mkdir -p "$D"
    "$BUILD/tools/synth" "$D" --d-in 640 --d-sae 16384 --tokens 40960 --ctx 512 --l0 8 --seed 1
fi
run() {
    echo
    echo "\$ latentdb $*"
    "$L" "$@"
}
run dict show "$D/dict"
run dict eval "$D/dict" --acts "$D/acts.npy"
rm -rf "$D/db"
run init "$D/db" --skip-tokens 2
run dict add "$D/db" res "$D/dict"
run ingest "$D/db" --dict res --tokens "$D/tokens.npy" --acts "$D/acts.npy"
run info "$D/db"
run density "$D/db" res --bins 12
# the most frequent latent, and what fires with it
LAT=$("$L" density "$D/db" res --counts --json | /usr/bin/python3 -c "
import json, sys; c = json.load(sys.stdin)['counts']; print(max(range(len(c)), key=c.__getitem__))")
run latent "$D/db" res "$LAT" --bins 10
run top "$D/db" res "$LAT" -k 5 --context 4
run samples "$D/db" res "$LAT" --groups 3 --per-group 2 --context 3
run cooc "$D/db" res "$LAT" -k 5
run seq "$D/db" 0 -k 3 | head -8
run check "$D/db"
