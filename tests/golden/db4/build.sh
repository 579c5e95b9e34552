#!/bin/sh
# Builds the format-4 golden database from the inputs of tests/golden/db3 (gen.py)
# with the latentdb at $1 into the folder $2 (which must not exist): the same commands
# as db3/build.sh but for --format 4. db/ was written so on 2026-12-07, when format 4
# was made; tests/golden.sh builds it again and compares every record that does not
# hold a path or a time, and its answers with db3's (the same codes: the same answers).
set -e
L=$1
DB=$2
G=$(dirname "$0")/../db3
"$L" init "$DB" --tokenizer "$G/tokenizer.json" --format 4 >/dev/null
"$L" dict add "$DB" a "$G/dict_a" >/dev/null
"$L" dict add "$DB" b "$G/dict_b" >/dev/null
"$L" import "$DB" --dict a --tokens "$G/tokens_1.npy" --codes "$G/a_1.npz" --source first >/dev/null
"$L" import "$DB" --dict a --tokens "$G/tokens_2.npy" --codes "$G/a_2.npz" --source second >/dev/null
"$L" import "$DB" --dict b --tokens "$G/tokens.npy" --codes "$G/b.npz" --source all >/dev/null
"$L" label "$DB" a 40 "fires on ▁the (296 % 256)" >/dev/null
"$L" label "$DB" b 5 "a label in b" >/dev/null
