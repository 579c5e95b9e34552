#!/bin/sh
# make bench-encode: encoder throughput vs the sgemm ceiling for 640 -> 16384 and
# 2304 -> 16384 jumprelu dictionaries (synthetic, seeded), in one process each.
set -e
BUILD=${1:-build}
D=$BUILD/bench
mkdir -p "$D"
for shape in "640 8" "2304 30"; do
    set -- $shape
    din=$1 l0=$2
    dir=$D/enc_${din}x16384
    if [ ! -f "$dir/acts.npy" ]; then
        "$BUILD/tools/synth" "$dir" --d-in "$din" --d-sae 16384 --tokens 16384 --l0 "$l0" --seed 7 >/dev/null
    fi
    echo "== $din -> 16384 jumprelu"
    "$BUILD/tools/bench_encode" "$dir/dict" "$dir/acts.npy" --reps 5
done
