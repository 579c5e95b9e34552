#!/bin/sh
# The golden databases: tests/golden/db3, a DB that latentdb 012d1e0 wrote (format
# "latentdb 3"), and tests/golden/db4, db5 and db6, the same inputs written in formats
# 4, 5 and 6 when each was made (2026-12-07, -08), must open and answer every query byte for byte as they did
# then (expect/*.out), and building each again from the same inputs must write the
# same records in every table (forward blocks, postings, summaries, top lists,
# counters, token blocks and index, the LTK2 tokenizer blob...), so a change of any
# on-disk byte fails here. They hold the same codes, so they answer alike but for
# info's sizes. usage: tests/golden.sh BUILD   (RECORD=1 rewrites expect/)
BUILD=$1
L=$BUILD/bin/latentdb
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/golden.sh
. tests/expect.sh

L=$(cd "$(dirname "$L")" && pwd)/latentdb

golden_one() { # V: tests/golden/V
V=$1
G=tests/golden/$V
mkdir -p "$T/$V/old"
gzip -dc "$G/db/data.mdb.gz" > "$T/$V/old/data.mdb"
cp "$G/db/catalog.sqlite" "$T/$V/old/"
chmod -R a-w "$T/$V/old/data.mdb" "$T/$V/old/catalog.sqlite"

# name|arguments after DB (one query a line; "-" is the DB's place)
QUERIES='info|info - --json
info_text|info -
dicts|dict ls - --json
top|top - a 40 --json
top_text|top - a 40
top_k|top - a 40 -k 5 --context 3 --distinct-seq --json
top_special|top - a 1 --include-special -k 120 --json
top_positions|top - b 5 -k 150 --json
latent|latent - a 40 --json
latent_b|latent - b 5 --bins 10 --json
latent_text|latent - a 40
density|density - a --json
density_counts|density - b --bins 7 --counts --json
samples|samples - a 40 --json
samples_value|samples - a 7 --by value --groups 4 --per-group 3 --seed 3 --json
cooc|cooc - a 40 --json
cooc_window|cooc - a 40 --with b --scope window:3 -k 10 --json
cooc_seq|cooc - b 5 --scope seq --sort npmi --json
cooc_count|cooc - a 9 --sort count -k 5
seq|seq - 3 --json
seq_b|seq - 17 --dict b -k 3 --json
seq_text|seq - 21
search|search - a the --json
search_all|search - a " the wor" --where all -k 10 --json
search_text|search - b " wor" -k 5
export|export - a --latents 38-41 --top 3 --samples 2
digest|check - --digest'

echo "$QUERIES" | while IFS='|' read -r name args; do
    eval "set -- $args"
    cmd=$1
    shift
    if [ "$cmd" = dict ]; then
        set -- "$1" old "$3"
    else
        shift
        set -- old "$@"
    fi
    (cd "$T/$V" && "$L" "$cmd" "$@") > "$T/$V/$name.out" 2> "$T/$V/$name.err"
    echo "exit $?" >> "$T/$V/$name.out"
done

if [ -n "$RECORD" ]; then
    mkdir -p "$G/expect"
    for f in "$T/$V"/*.out; do cp "$f" "$G/expect/"; done
    echo "recorded $(ls "$G/expect" | wc -l) answers"
fi
for f in "$G"/expect/*.out; do
    b=$(basename "$f")
    if cmp -s "$f" "$T/$V/$b"; then ok; else bad "$V: $b differs from the recorded answer: $(diff "$f" "$T/$V/$b" | head -3 | cut -c1-200)"; fi
done
if [ "$(ls "$G"/expect/*.out | wc -l)" -lt 20 ]; then bad "$V: expected answers missing"; fi

# check on the old DB: clean
expect 0 ': ok \(40 sequences' "$L" check "$T/$V/old"

# the same inputs, written again by this build: every table the same
sh "$G/build.sh" "$L" "$T/$V/new" || bad "build.sh failed"
for t in $(mdb_dump -l "$T/$V/old"); do
    case $t in
    dicts|runs)  # but the paths and times, which are the machine's
        mdb_dump -p -s "$t" "$T/$V/old" > "$T/$V/a" 2>&1
        mdb_dump -p -s "$t" "$T/$V/new" > "$T/$V/b" 2>&1
        sed -i -E 's/"(path|tokens|acts|weights|config|stat)":"[^"]*"//g; s/"(started|finished)":[0-9]+//g' "$T/$V/a" "$T/$V/b"
        # and the fields runs have recorded since the golden DBs were made (issue 26:
        # the source label of a file run, the sequences a run wrote)
        sed -i -E 's/,"source":"[^"]*"//g; s/,"seqs":\[(\[[0-9]+,[0-9]+\],?)*\]//g' "$T/$V/b"
        ;;
    *)
        mdb_dump -s "$t" "$T/$V/old" > "$T/$V/a" 2>&1
        mdb_dump -s "$t" "$T/$V/new" > "$T/$V/b" 2>&1
        ;;
    esac
    if cmp -s "$T/$V/a" "$T/$V/b"; then ok; else bad "$V: table $t written differently: $(diff "$T/$V/a" "$T/$V/b" | head -4 | cut -c1-200)"; fi
done
[ "$(mdb_dump -l "$T/$V/new" | tr '\n' ' ')" = "$(mdb_dump -l "$T/$V/old" | tr '\n' ' ')" ] && ok || bad "tables differ: $(mdb_dump -l "$T/$V/new" | tr '\n' ' ')"
}

golden_one db3
golden_one db4
golden_one db5
golden_one db6
# the same codes in every format: the same answers, but info's sizes (and the
# dictionaries' file paths, which were the machine's when each was built)
for f in tests/golden/db3/expect/*.out; do
    b=$(basename "$f")
    case $b in info.out|info_text.out|dicts.out) continue ;; esac
    for v in db4 db5 db6; do
        if cmp -s "$f" "tests/golden/$v/expect/$b"; then ok; else bad "db3 and $v answer $b differently: $(diff "$f" "tests/golden/$v/expect/$b" | head -3 | cut -c1-200)"; fi
    done
done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
