#!/bin/sh
# `latentdb serve` and its pages (pytest, Debian's python3-pytest): the API against the
# CLI's JSON, errors, hostile requests, and the pages in Debian's chromium through
# playwright-core (tests/web/browser.js); ends with "web: N passed, N failed".
# usage: tests/web/run.sh BUILD [PY]
BUILD=${1:-build}
PY=${2:-/usr/bin/python3}
# Under make asan the server's C code is what is checked: the API tests run it; the
# browser adds nothing the sanitizers see, and a minute of CI.
SKIP=""
if ldd "$BUILD/bin/latentdb" 2>/dev/null | grep -q libasan; then
    SKIP="--ignore=tests/web/test_browser.py"
fi
# shellcheck disable=SC2086
LATENTDB_BUILD=$BUILD exec sh tests/pytest.sh web "$PY" $SKIP tests/web
