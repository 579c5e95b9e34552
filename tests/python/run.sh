#!/bin/sh
# The Python package's tests (pytest, Debian's python3-pytest), with the package
# from python/ and the library of BUILD; ends with "python: N passed, N failed".
# Under make asan the library is instrumented and Python is not: the sanitizers'
# runtimes are preloaded, and leak checking is off (the interpreter keeps its
# objects at exit).
# usage: tests/python/run.sh BUILD [PY]
BUILD=${1:-build}
PY=${2:-/usr/bin/python3}
if ldd "$BUILD/lib/liblatentdb.so" 2>/dev/null | grep -q libasan; then
    LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libubsan.so)"
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    ASAN_OPTIONS=$(echo "$ASAN_OPTIONS" | sed 's/detect_leaks=1//g')
    export LD_PRELOAD ASAN_OPTIONS
fi
LATENTDB_BUILD=$BUILD LATENTDB_LIB=$BUILD/lib/liblatentdb.so exec sh tests/pytest.sh python "$PY" tests/python
