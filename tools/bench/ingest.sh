#!/bin/sh
# make bench-ingest: whole-ingest throughput (read, encode, write, commit) against
# the sgemm ceiling measured in the same run, the peak anonymous memory (RssAnon,
# sampled from /proc), and the storage cost in bytes per stored code.
set -e
BUILD=${1:-build}
TOKENS=${TOKENS:-102400}
D=$BUILD/bench/planted_640x16384_$TOKENS
if [ ! -f "$D/acts.npy" ]; then
    "$BUILD/tools/planted" "$D" --d-in 640 --d-sae 16384 --n-tokens "$TOKENS" --ctx 1024 \
        --seed 5 >/dev/null
fi
echo "== ingest, 640 -> 16384 jumprelu, $TOKENS tokens (planted fixture, L0 ~45 with BOS rows)"
ceil=$("$BUILD/tools/bench_encode" "$D/dict" "$D/acts.npy" --reps 3 --max-rows 32768 | tee "$D/encode.txt" |
       sed -n 's/^ceiling .* = \([0-9]*\) tokens\/s.*/\1/p')
grep -E '^(machine|ceiling|encode)' "$D/encode.txt"
DB=$D/db
rm -rf "$DB"
bin/latentdb init "$DB" --skip-tokens 0,1,2 >/dev/null
bin/latentdb dict add "$DB" r "$D/dict" >/dev/null
t0=$(date +%s.%N)
bin/latentdb ingest "$DB" --dict r --tokens "$D/tokens.npy" --acts "$D/acts.npy" >/dev/null &
pid=$!
peak=0
while kill -0 $pid 2>/dev/null; do
    a=$(sed -n 's/^RssAnon:[^0-9]*\([0-9]*\) kB/\1/p' /proc/$pid/status 2>/dev/null || true)
    [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
    sleep 0.05
done
wait $pid
t1=$(date +%s.%N)
/usr/bin/python3 - "$t0" "$t1" "$TOKENS" "$ceil" "$peak" <<'PY'
import sys
t0, t1, n, ceil, peak = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
tps = n / (t1 - t0)
print(f"ingest    {tps:.0f} tokens/s = {100 * tps / ceil:.1f}% of the sgemm ceiling (target >= 80%)")
print(f"memory    RssAnon peak {peak / 1024:.0f} MiB (target <= 512 MiB + weights: 40 MiB here)")
PY
bin/latentdb info "$DB" | tail -1 | awk '{print "storage   " $5 " bytes/nnz over " $4 " codes (target <= 4.0)"}'
