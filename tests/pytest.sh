#!/bin/sh
# Runs a pytest suite of this repository and ends with "NAME: N passed, N failed"
# (tests/run.sh reads that line). usage: tests/pytest.sh NAME PY ARGS...
NAME=$1
PY=$2
shift 2
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
"$PY" -m pytest -q -p no:cacheprovider "$@" > "$OUT" 2>&1
st=$?
cat "$OUT"
p=$(tail -1 "$OUT" | grep -o '[0-9]* passed' | grep -o '[0-9]*')
f=$(tail -1 "$OUT" | grep -oE '[0-9]+ (failed|error|errors)' | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')
[ -n "$p" ] || p=0
[ "$st" -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "$NAME: $p passed, $f failed"
[ "$f" -eq 0 ]
