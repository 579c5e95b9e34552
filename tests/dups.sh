#!/bin/sh
# No silent duplicates (issue 26): an ingest or import whose rows all hold codes of its
# dictionary already (the same tokens, from another run) is refused, naming that run,
# and writes nothing; --again stores them again; some such rows are reported, and
# --skip-covered leaves them out; a resumed run skips what the uninterrupted one did;
# `latentdb runs` lists the runs. usage: tests/dups.sh BUILD FIXTURES
BUILD=$1
FX=$2
L=$BUILD/bin/latentdb
S=$FX/store
SHIM=$PWD/$BUILD/tests/faultinj.so
# the fault shim comes before ASan's runtime under make asan (as in tests/reliability.sh)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/dups.sh
. tests/expect.sh

# Inputs cut from the store fixture (rows of 256): each is a list of the fixture's row
# numbers (a negative -n: row n with its first token changed, a row no run has stored),
# written as NAME.tok.npy and NAME.acts.npy (the activations of those rows, f32, or f16
# with a 16 suffix).
$PY - "$S" "$T" <<'PY' || bad "cannot cut the fixture"
import numpy as np, sys
s, t = sys.argv[1], sys.argv[2]
tok = np.load(s + "/tokens.npy"); act = np.load(s + "/acts.npy", mmap_mode="r")
c = tok.shape[1]
def cut(name, rows, f16=False):
    tt = np.stack([tok[abs(r)] if r >= 0 else np.concatenate([[tok[-r][0] + 1], tok[-r][1:]]) for r in rows])
    aa = np.concatenate([act[abs(r) * c:(abs(r) + 1) * c] for r in rows])
    np.save(f"{t}/{name}.tok.npy", tt.astype(tok.dtype))
    np.save(f"{t}/{name}.acts.npy", aa.astype(np.float16) if f16 else aa)
first = list(range(100))
cut("first", first)                                                 # the base run
cut("first16", first, True)                                         # the same tokens, other acts
cut("half", list(range(50)) + [-r for r in range(100, 150)])       # 50 of 100 stored
cut("only_new", [-r for r in range(100, 150)])                     # half's new rows alone
# resumed: 40 new rows, 40 stored ones, then 20 repeating the input's own first 20
cut("resume", [-r for r in range(100, 140)] + list(range(40)) + [-r for r in range(100, 120)])
PY
# sequences and digest of a DB
nseq() { "$L" info "$1" --json 2> /dev/null | $PY -c "import json, sys; print(json.load(sys.stdin)['n_seq'])"; }
digest() { "$L" check "$1" --digest 2> /dev/null; }
ing() { # DB NAME [ARGS...]: ingest NAME's tokens and acts through dictionary a
    i_db=$1 i_in=$2
    shift 2
    "$L" ingest "$i_db" --dict a --tokens "$T/$i_in.tok.npy" --acts "$T/$i_in.acts.npy" --source "$i_in" "$@"
}
B=$T/base
"$L" init "$B" --skip-tokens 2 > /dev/null && "$L" dict add "$B" a "$S/dict" > /dev/null &&
    ing "$B" first > /dev/null 2>&1 || bad "cannot make the base DB"
D0=$(digest "$B")
RUN0=$("$L" runs "$B" --json | $PY -c "import json, sys; print(json.load(sys.stdin)[0]['id'][:12])")

# 1. the same tokens through the same dictionary from another acts file (f16): refused,
# naming the run (its id as runs shows it, its source, its start), nothing written
cp -r "$B" "$T/d1"
expect 1 "all 100 sequences already hold codes of 'a' \\(the same tokens\\), from run $RUN0 \\(source first, started 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z, 100 of them\\); nothing was written.*--again" \
    ing "$T/d1" first16
[ "$(digest "$T/d1")" = "$D0" ] && [ "$(nseq "$T/d1")" = 100 ] && ok || bad "a refused ingest changed the DB"
[ "$("$L" runs "$T/d1" --json | $PY -c "import json, sys; print(len(json.load(sys.stdin)))")" = 1 ] && ok ||
    bad "a refused ingest left a run record"
# --again stores them again, as before
expect 0 'the DB now holds 200 sequences' ing "$T/d1" first16 --again
[ "$(nseq "$T/d1")" = 200 ] && ok || bad "--again did not add the sequences"

# 2. some rows stored already: reported, stored again; --skip-covered leaves them out,
# and the DB is then the one the new rows alone make
cp -r "$B" "$T/d2"
expect 0 "50 of 100 sequences already hold codes of 'a' \\(the same tokens, from other runs\\): stored again" \
    ing "$T/d2" half
[ "$(nseq "$T/d2")" = 200 ] && ok || bad "half: $(nseq "$T/d2") sequences, expected 200"
cp -r "$B" "$T/d3"
expect 0 "50 of 100 sequences already hold codes of 'a' .*: skipped \\(--skip-covered\\)" \
    ing "$T/d3" half --skip-covered
[ "$(nseq "$T/d3")" = 150 ] && ok || bad "half --skip-covered: $(nseq "$T/d3") sequences, expected 150"
cp -r "$B" "$T/d4"
ing "$T/d4" only_new > /dev/null 2>&1
[ "$(digest "$T/d3")" = "$(digest "$T/d4")" ] && ok || bad "--skip-covered stored other than the new rows alone"
expect 0 ": ok \\(150 sequences" "$L" check "$T/d3"
cp -r "$B" "$T/d5"
ing "$T/d5" half --skip-covered --json > "$T/j" 2> /dev/null && $PY -c "
import json, sys; o = json.load(open('$T/j'))
sys.exit(0 if (o['sequences_added'], o['sequences_covered'], o['sequences_skipped'], o['db_sequences']) == (50, 50, 50, 150) else 1)" &&
    ok || bad "half --skip-covered --json: $(cat "$T/j")"

# 3. runs, right after two runs: one line each (id, dictionaries, sequences, rows,
# status, times, source), and the whole records as JSON
expect 0 "^$RUN0  a +100 +100/100  done +20[0-9-]{8}T[0-9:]{8}Z 20[0-9-]{8}T[0-9:]{8}Z  first$" "$L" runs "$T/d3"
grep -qE "^[0-9a-f]{12}  a +50 +100/100  done .*  half$" "$T/out" && [ "$(wc -l < "$T/out")" = 3 ] && ok ||
    bad "runs: $(cat "$T/out")"
"$L" runs "$T/d3" --json > "$T/runs.json" && $PY - "$T/runs.json" "$RUN0" <<'PY' && ok || bad "runs --json: $(head -c 600 "$T/runs.json")"
import json, re, sys
o = json.load(open(sys.argv[1]))
a, b = o
assert len(o) == 2 and all(re.fullmatch("[0-9a-f]{64}", r["id"]) for r in o), o
assert a["id"][:12] == sys.argv[2] and a["source"] == "first" and b["source"] == "half"
assert a["seqs"] == [[0, 99]] and a["n_seqs"] == 100 and b["seqs"] == [[100, 149]] and b["n_seqs"] == 50
assert all(r["status"] == "done" and r["rows"] == r["rows_done"] == 100 and r["dicts"] == ["a"] for r in o)
assert all(r["started"] > 1.7e9 and r["finished"] >= r["started"] for r in o)
assert b["tokens"].endswith("half.tok.npy") and b["acts"].endswith("half.acts.npy") and len(b["inputs"]) == 2
PY
"$L" init "$T/empty" > /dev/null
expect 0 '^no runs yet$' "$L" runs "$T/empty"
expect 0 '^\[\]$' "$L" runs "$T/empty" --json
expect 2 'usage: latentdb runs DB' "$L" runs
expect 0 '^usage: latentdb runs DB' "$L" runs --help

# 4. import: the same codes again from a file of other bytes (saved compressed) is
# refused and changes nothing; --again imports them
I=$T/imp
$PY - "$T" <<'PY' || bad "cannot write codes"
import numpy as np, scipy.sparse as sp, sys
t = sys.argv[1]
tok = np.load(t + "/first.tok.npy")[:20]
np.save(t + "/imp.tok.npy", tok)
m = sp.random(tok.size, 4096, density=0.005, format="csr", dtype=np.float32, random_state=3)
m.data = np.abs(m.data) + 0.5
sp.save_npz(t + "/c1.npz", m, compressed=False)
sp.save_npz(t + "/c2.npz", m, compressed=True)
PY
"$L" init "$I" --skip-tokens 2 > /dev/null && "$L" dict add "$I" a "$S/dict" > /dev/null &&
    "$L" import "$I" --dict a --tokens "$T/imp.tok.npy" --codes "$T/c1.npz" --source imp > /dev/null 2>&1 ||
    bad "cannot import"
DI=$(digest "$I")
expect 1 "all 20 sequences already hold codes of 'a' \\(the same tokens\\), from run [0-9a-f]{12} \\(source imp," \
    "$L" import "$I" --dict a --tokens "$T/imp.tok.npy" --codes "$T/c2.npz"
[ "$(digest "$I")" = "$DI" ] && [ "$(nseq "$I")" = 20 ] && ok || bad "a refused import changed the DB"
expect 0 '^imported' "$L" import "$I" --dict a --tokens "$T/imp.tok.npy" --codes "$T/c2.npz" --again
[ "$(nseq "$I")" = 40 ] && ok || bad "import --again: $(nseq "$I") sequences, expected 40"

# 5. a run killed midway and resumed skips what the uninterrupted run skipped: its own
# rows are not "earlier" ones (rows 80-99 repeat rows 0-19, which it wrote itself)
R=$T/r_ref
cp -r "$B" "$R"
expect 0 "40 of 100 sequences already hold codes of 'a' .*skipped" ing "$R" resume --skip-covered --batch-tokens 2048
[ "$(nseq "$R")" = 160 ] && ok || bad "resume input, uninterrupted: $(nseq "$R") sequences, expected 160"
D_R=$(digest "$R")
K=$T/r_kill
cp -r "$B" "$K"
cp -r "$B" "$T/r_count"
LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$T/r_count/data.mdb" LDB_FAULT_COUNTS="$T/counts" \
    ing "$T/r_count" resume --skip-covered --batch-tokens 2048 > /dev/null 2>&1
n=$(sed -n 's/^fdatasync //p' "$T/counts" | tail -1)
LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$K/data.mdb" LDB_FAULT="fdatasync:$((${n:-2} * 2 / 3)):kill" \
    ing "$K" resume --skip-covered --batch-tokens 2048 > "$T/kill.out" 2>&1
kept=$(nseq "$K") # (killed: some of the 60 new rows kept, past the 20 repeated at its end)
expect 0 "40 of 100 sequences already hold codes of 'a' .*skipped" \
    ing "$K" resume --skip-covered --batch-tokens 2048
[ "${kept:-0}" -gt 120 ] && [ "${kept:-0}" -lt 160 ] && [ "$(nseq "$K")" = 160 ] &&
    [ "$(digest "$K")" = "$D_R" ] && ok ||
    bad "killed (${kept:-no} sequences kept, fdatasync $((${n:-2} * 2 / 3)) of ${n:-?}) and resumed: $(nseq "$K") sequences, digest $([ "$(digest "$K")" = "$D_R" ] && echo equal || echo differs): $(head -c 300 "$T/kill.out")"
"$L" runs "$K" --json | $PY -c "
import json, sys; o = json.load(sys.stdin)
sys.exit(0 if o[1]['seqs'] == [[100, 159]] and o[1]['n_seqs'] == 60 and o[1]['status'] == 'done' else 1)" &&
    ok || bad "the resumed run's sequences: $("$L" runs "$K" --json | head -c 400)"

# 6. records made before runs recorded their sequences (no "seqs", no "source"): still
# listed, and a refusal names the runs of the dictionary it can find
strip() { # DB: drop "seqs" and "source" from every run record, as older latentdb wrote them
    $PY - "$1" <<'PY'
import sys
sys.path.insert(0, "tests")
from runs_table import rewrite
def strip(key, r):
    r.pop("seqs", None), r.pop("source", None)
    return key, r
rewrite(sys.argv[1], strip)
PY
}
O=$T/old
cp -r "$B" "$O"
strip "$O" || bad "cannot rewrite the run records"
expect 1 "all 100 sequences already hold codes of 'a' \\(the same tokens\\), from an earlier run of a \\(made before runs recorded their sequences\\): run $RUN0 \\(source .*first.tok.npy, started 20" \
    ing "$O" first16
[ "$(digest "$O")" = "$D0" ] && ok || bad "a refused ingest changed the DB (old records)"
expect 0 "^$RUN0  a +\\? +100/100  done .*first.tok.npy$" "$L" runs "$O"
expect 0 '"n_seqs":null' "$L" runs "$O" --json
# a killed run of before resumes (its own sequences unknown: none are told apart)
K=$T/old_kill
cp -r "$B" "$K"
LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$K/data.mdb" LDB_FAULT="fdatasync:$((${n:-2} * 2 / 3)):kill" \
    ing "$K" resume --batch-tokens 2048 > /dev/null 2>&1
strip "$K"
expect 0 "the DB now holds 200 sequences" ing "$K" resume --batch-tokens 2048
[ "$(nseq "$K")" = 200 ] && "$L" check "$K" > /dev/null 2>&1 && ok ||
    bad "a killed run of before, resumed: $(nseq "$K") sequences, expected 200"

echo "dups: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
