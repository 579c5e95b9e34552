#!/bin/sh
# `latentdb serve` and its pages (pytest, Debian's python3-pytest): the API against the
# CLI's JSON, errors, hostile requests, and the pages in Debian's chromium through
# playwright-core (tests/web/browser.js); ends with "web: N passed, N failed".
# usage: tests/web/run.sh BUILD [PY]
BUILD=${1:-build}
PY=${2:-/usr/bin/python3}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
# Under make asan the server's C code is what is checked: the API tests run it; the
# browser adds nothing the sanitizers see, and a minute of CI.
SKIP=""
if ldd "$BUILD/bin/latentdb" 2>/dev/null | grep -q libasan; then
    SKIP="--ignore=tests/web/test_browser.py"
fi
LATENTDB_BUILD=$BUILD "$PY" -m pytest -q -p no:cacheprovider $SKIP tests/web > "$OUT" 2>&1
st=$?
cat "$OUT"
p=$(tail -1 "$OUT" | grep -o '[0-9]* passed' | grep -o '[0-9]*')
f=$(tail -1 "$OUT" | grep -oE '[0-9]+ (failed|error|errors)' | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')
[ -n "$p" ] || p=0
[ "$st" -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "web: $p passed, $f failed"
[ "$f" -eq 0 ]
