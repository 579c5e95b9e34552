#!/bin/sh
# make_seeds.sh — remakes the seed corpora tests/fuzz/corpus/<name>/ (run from anywhere;
# `make fuzz-seeds` builds seedgen first). The file formats come from
# make_seeds.py (numpy for npy/npz); forward blocks, inverted chunks and tokenizer blobs
# come from the library's own writers through seedgen (tests/fuzz/seedgen.c).
set -eu
cd "$(dirname "$0")/../.."
B=${FUZZ_BUILD:-build-fuzz}
C=tests/fuzz/corpus
PY=/usr/bin/python3
make -s -f Makefile -f tests/fuzz/fuzz.mk "$B/seedgen"
rm -rf "$C"
mkdir -p "$C/fwd" "$C/inv" "$C/tokblob"
$PY tests/fuzz/make_seeds.py files "$C"
ASAN_OPTIONS=detect_leaks=1 "$B/seedgen" db "$C/fwd" "$C/inv"
for f in "$C"/tokenizer/valid-*; do
    case "$f" in *-with-config) continue ;; esac  # NUL + tokenizer_config.json: not plain JSON
    ASAN_OPTIONS=detect_leaks=1 "$B/seedgen" blob "$f" "$C/tokblob/$(basename "$f")"
done
$PY tests/fuzz/make_seeds.py broken "$C"
for d in "$C"/*; do
    printf '%-12s %3d files %7d bytes\n' "$(basename "$d")" "$(ls "$d" | wc -l)" "$(cat "$d"/* | wc -c)"
done
