#!/bin/sh
# Builds the golden database from gen.py's inputs with the latentdb at $1 into the
# folder $2 (which must not exist). db/ was written so by the latentdb of commit
# 012d1e0 (format "latentdb 3"); tests/golden.sh builds it again with the current
# one and compares every record that does not hold a path or a time. Since format 4
# (2026-12-07) init makes version 4 unless told --format 3, which 012d1e0 made
# without being told. FORMAT=4 builds the format-4 golden database (db4/build.sh).
set -e
L=$1
DB=$2
G=$(dirname "$0")
"$L" init "$DB" --tokenizer "$G/tokenizer.json" --format "${FORMAT:-3}" >/dev/null
"$L" dict add "$DB" a "$G/dict_a" >/dev/null
"$L" dict add "$DB" b "$G/dict_b" >/dev/null
"$L" import "$DB" --dict a --tokens "$G/tokens_1.npy" --codes "$G/a_1.npz" --source first >/dev/null
"$L" import "$DB" --dict a --tokens "$G/tokens_2.npy" --codes "$G/a_2.npz" --source second >/dev/null
"$L" import "$DB" --dict b --tokens "$G/tokens.npy" --codes "$G/b.npz" --source all >/dev/null
"$L" label "$DB" a 40 "fires on ▁the (296 % 256)" >/dev/null
"$L" label "$DB" b 5 "a label in b" >/dev/null
