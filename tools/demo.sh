#!/bin/sh
# make demo: until the store lands, the main job is loading and encoding a
# dictionary. Generates (once, seeded) a 640 -> 16384 Gemma Scope 2-format JumpReLU
# dictionary and 20,000 activation rows, then shows `dict show` and `dict eval`.
set -e
BUILD=${1:-build}
D=data/demo
if [ ! -f "$D/acts.npy" ]; then
    echo "demo: generating a synthetic dictionary and activations in $D"
    mkdir -p "$D"
    "$BUILD/tools/synth" "$D" --d-in 640 --d-sae 16384 --tokens 20000 --l0 8 --seed 1
fi
echo
echo "\$ latentdb dict show $D/dict"
bin/latentdb dict show "$D/dict"
echo
echo "\$ latentdb dict eval $D/dict --acts $D/acts.npy"
bin/latentdb dict eval "$D/dict" --acts "$D/acts.npy"
