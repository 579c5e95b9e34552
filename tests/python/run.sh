#!/bin/sh
# The Python package's tests (pytest, Debian's python3-pytest), with the package
# from python/ and the library of BUILD; ends with "python: N passed, N failed".
# Under make asan the library is instrumented and Python is not: the sanitizers'
# runtimes are preloaded, and leak checking is off (the interpreter keeps its
# objects at exit).
# usage: tests/python/run.sh BUILD [PY]
BUILD=${1:-build}
PY=${2:-/usr/bin/python3}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
if ldd "$BUILD/lib/liblatentdb.so" 2>/dev/null | grep -q libasan; then
    LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    ASAN_OPTIONS=$(echo "$ASAN_OPTIONS" | sed 's/detect_leaks=1//g')
    export LD_PRELOAD ASAN_OPTIONS
fi
LATENTDB_BUILD=$BUILD LATENTDB_LIB=$BUILD/lib/liblatentdb.so "$PY" -m pytest -q -p no:cacheprovider \
    tests/python > "$OUT" 2>&1
st=$?
cat "$OUT"
p=$(tail -1 "$OUT" | grep -o '[0-9]* passed' | grep -o '[0-9]*')
f=$(tail -1 "$OUT" | grep -oE '[0-9]+ (failed|error|errors)' | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')
[ -n "$p" ] || p=0
[ "$st" -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "python: $p passed, $f failed"
[ "$f" -eq 0 ]
