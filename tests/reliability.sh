#!/bin/sh
# reliability.sh — what latentdb promises under crashes, faults, full disks,
# concurrent readers and bad input, tested on the real binary (docs/RELIABILITY.md
# maps each promise to its test here).
# usage: tests/reliability.sh BUILD [short|long]
#   short (make check): 50 random kills, 4 I/O fault points per function
#   long (make torture): 500 random kills, 64 fault points per function (every call
#   of open, fsync, fdatasync, ftruncate and mmap; pwrite and writev sampled from
#   first to last); RELIABILITY_POINTS=0 hits every call of every function
BUILD=$1
MODE=${2:-short}
L=$BUILD/bin/latentdb
SHIM=$PWD/$BUILD/tests/faultinj.so
PY=/usr/bin/python3
T=$(mktemp -d)
MNT=""
cleanup() {
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
NAME=tests/reliability.sh
. tests/expect.sh
if [ "$MODE" = long ]; then N_KILLS=500; POINTS=64; else N_KILLS=50; POINTS=4; fi
# make asan: the recovery paths under the sanitizers with fewer random kills (make check
# runs the 50; CI's time)
[ "$MODE" = short ] && ldd "$L" 2> /dev/null | grep -q libasan && N_KILLS=20
POINTS=${RELIABILITY_POINTS:-$POINTS}
say() { echo "reliability: $*"; }
# the shim is preloaded ahead of a sanitized build's runtime; that is fine here
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
now() { date +%s.%N; }

# Two planted corpora (256 -> 4096 latents, rows of 256): F, 32,768 tokens in 16
# batches, for random kills and concurrency; G, 8,192 tokens in 4 batches, for the
# fault points (each is one whole run).
F=$T/fx
G=$T/gx
"$BUILD/tools/planted" "$F" --d-in 256 --d-sae 4096 --n-tokens 32768 --ctx 256 --background 8 \
    --seed 11 > /dev/null || { echo "$NAME: cannot write the fixture"; echo "reliability: 0 passed, 1 failed"; exit 1; }
"$BUILD/tools/planted" "$G" --d-in 256 --d-sae 4096 --n-tokens 8192 --ctx 256 --background 8 \
    --seed 12 > /dev/null || { echo "$NAME: cannot write the fixture"; echo "reliability: 0 passed, 1 failed"; exit 1; }
base() { # DB FIXTURE: an empty database with dictionary a
    "$L" init "$1" --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$1" a "$2/dict" > /dev/null
}
ingest_f() { # DB [BATCH]: the whole of F
    "$L" ingest "$1" --dict a --tokens "$F/tokens.npy" --acts "$F/acts.npy" \
        --batch-tokens "${2:-2048}" --source corpus
}
ingest_f_bg() { # DB: ingest_f in the background, $! its own pid (not a subshell's)
    "$L" ingest "$1" --dict a --tokens "$F/tokens.npy" --acts "$F/acts.npy" \
        --batch-tokens 2048 --source corpus > "$T/kill.out" 2>&1 &
}
ingest_g() {
    "$L" ingest "$1" --dict a --tokens "$G/tokens.npy" --acts "$G/acts.npy" --batch-tokens 2048 \
        --source corpus
}
digest() { "$L" check "$1" --digest 2> /dev/null; }
crashed() { # OUTFILE: a sanitizer report, an assertion or a fatal signal in the output
    grep -qE 'Sanitizer|runtime error|Assertion|Segmentation|core dumped' "$1"
}

base "$T/base_f" "$F"
base "$T/base_g" "$G"
D_EMPTY=$(digest "$T/base_f")
cp -r "$T/base_f" "$T/ref_f"
t0=$(now)
ingest_f "$T/ref_f" > /dev/null
t1=$(now)
D_F=$(digest "$T/ref_f")
cp -r "$T/base_g" "$T/ref_g"
ingest_g "$T/ref_g" > /dev/null
D_G=$(digest "$T/ref_g")
[ -n "$D_F" ] && [ -n "$D_G" ] && [ "$D_F" != "$D_EMPTY" ] && ok || bad "reference ingests failed"
T_RUN=$(awk "BEGIN { print $t1 - $t0 }")
say "reference ingest of 32,768 tokens: $T_RUN s"

# ---- 1. SIGKILL at random moments -----------------------------------------------
# Chains of runs on one database: each run is killed after a random delay (up to a
# third of an uninterrupted run) and started again, which resumes at the last
# committed batch, until one finishes; the result must have the reference digest,
# and every state a kill leaves must pass check.
kills=0
chains=0
seed=1
progress=""
while [ "$kills" -lt "$N_KILLS" ]; do
    K=$T/kill
    rm -rf "$K"
    cp -r "$T/base_f" "$K"
    chains=$((chains + 1))
    while :; do
        seed=$((seed + 1))
        delay=$(awk "BEGIN { srand($seed); print rand() * $T_RUN / 3 }")
        ingest_f_bg "$K"
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2> /dev/null
        wait "$pid"
        st=$?
        if [ "$st" -eq 0 ] || grep -q 'done already' "$T/kill.out"; then
            break # finished (perhaps just before the kill, then the rerun says so)
        elif [ "$st" -ne 137 ]; then
            bad "ingest exited $st before it was killed: $(head -c 300 "$T/kill.out")"
            break
        fi
        kills=$((kills + 1))
        if "$L" check "$K" > "$T/check.out" 2>&1; then
            progress="$progress $(sed -n 's/.*, \([0-9]*\) tokens,.*/\1/p' "$T/check.out")"
        else
            bad "check after kill $kills (delay $delay s): $(head -c 400 "$T/check.out")"
        fi
    done
    [ "$(digest "$K")" = "$D_F" ] && ok || bad "chain $chains: digest after kills differs from an uninterrupted ingest"
done
# where the kills fell: committed tokens at each kill, in eighths of the corpus
hist=$(echo "$progress" | tr ' ' '\n' | awk 'NF { h[int($1 * 8 / 32769)]++ }
    END { for (i = 0; i < 8; i++) printf "%d ", h[i] + 0 }')
say "$kills kills in $chains chains; committed eighths of the corpus at the kills: $hist"
n_states=$(echo "$progress" | tr ' ' '\n' | sort -u | grep -c .)
[ "$n_states" -ge 8 ] && ok || bad "kills fell in only $n_states distinct committed states"

# Default batch sizes (sized by codes after the first): a run killed in its second
# commit resumes with the batch it was writing, not a first batch's size, so the
# encoder sees the same GEMM shapes (an sgemm's last bits depend on its shape) and
# the digest is an uninterrupted run's. Rows of 200 positions, so that batches are
# not whole encoder tiles, and f32 values, so that no bit is rounded away.
H=$T/hx
"$BUILD/tools/planted" "$H" --d-in 256 --d-sae 4096 --n-tokens 32000 --ctx 200 --background 8 \
    --seed 13 > /dev/null
ingest_h() { # DB [shim settings...]
    db=$1
    shift
    env "$@" "$L" ingest "$db" --dict a --tokens "$H/tokens.npy" --acts "$H/acts.npy" > /dev/null 2>&1
}
base_h() { rm -rf "$1"; "$L" init "$1" --values f32 --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$1" a "$H/dict" > /dev/null; }
X=$T/sized
base_h "$X"
ingest_h "$X"
D_SIZED=$(digest "$X")
base_h "$X"
rm -f "$T/sized.counts"
ingest_h "$X" LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$X/data.mdb" LDB_FAULT_COUNTS="$T/sized.counts"
n=$(sed -n 's/^fdatasync //p' "$T/sized.counts")
base_h "$X"
ingest_h "$X" LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$X/data.mdb" LDB_FAULT="fdatasync:$n:kill"
st=$?
got=$("$L" check "$X" 2>&1 | sed -n 's/.*, \([0-9]*\) tokens,.*/\1/p')
# while it is unfinished, a bf16 run of the same inputs is refused and changes nothing
# (it would store the sequences kept so far a second time); bf16 needs AVX-512
if grep -q avx512bw /proc/cpuinfo; then
    "$L" ingest "$X" --dict a --tokens "$H/tokens.npy" --acts "$H/acts.npy" --precision bf16 > "$T/prec.out" 2>&1
    ps=$?
    got2=$("$L" check "$X" 2>&1 | sed -n 's/.*, \([0-9]*\) tokens,.*/\1/p')
    [ "$ps" -eq 1 ] && grep -q 'an unfinished --precision exact run' "$T/prec.out" && [ "$got2" = "$got" ] && ok ||
        bad "bf16 over an unfinished exact run: exit $ps, ${got2:-no} tokens (${got:-no} before): $(head -c 300 "$T/prec.out")"
fi
ingest_h "$X"
[ "$st" -eq 137 ] && [ "${got:-0}" -gt 0 ] && [ "${got:-0}" -lt 32000 ] && [ "$(digest "$X")" = "$D_SIZED" ] && ok ||
    bad "killed at its last commit (fdatasync $n, ${got:-no} tokens kept), the resumed run differs from an uninterrupted one"

# Two ingests of the same run at once: one of them stops at its first commit (the
# run's record no longer says what it expected), and no row is stored twice.
K=$T/twice
rm -rf "$K"
cp -r "$T/base_f" "$K"
ingest_f "$K" > "$T/twice1.out" 2>&1 &
p1=$!
ingest_f "$K" > "$T/twice2.out" 2>&1
s2=$?
wait "$p1"
s1=$?
if [ $((s1 + s2)) -eq 1 ] && grep -q 'another ingest of this run is writing' "$T/twice1.out" "$T/twice2.out"; then ok
elif [ $((s1 + s2)) -eq 0 ] || grep -q 'done already' "$T/twice1.out" "$T/twice2.out"; then ok # one ran after the other
else bad "two ingests of one run: exit $s1 and $s2: $(head -c 300 "$T/twice1.out") $(head -c 300 "$T/twice2.out")"; fi
ingest_f "$K" > /dev/null 2>&1
[ "$(digest "$K")" = "$D_F" ] && ok || bad "two ingests of one run at once stored a different database"

# A run is known by its inputs' content, not their mtimes (issue 20, finding 5): a
# touch neither makes a killed run start over nor a finished one run again; a byte
# changed between the key's sampled blocks, with the mtime put back, is a new run.
I=$T/ident
mkdir -p "$I"
cp "$F/tokens.npy" "$F/acts.npy" "$I/"
ingest_i() { # DB [env settings...]: the whole of F, from the copies in $I
    db=$1
    shift
    env "$@" "$L" ingest "$db" --dict a --tokens "$I/tokens.npy" --acts "$I/acts.npy" \
        --batch-tokens 2048 --source corpus
}
seqs() { "$L" check "$1" 2> /dev/null | sed -n 's/.*: ok (\([0-9]*\) sequences.*/\1/p'; }
K=$T/touched
rm -rf "$K"
cp -r "$T/base_f" "$K"
ingest_i "$K" LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$K/data.mdb" LDB_FAULT=fdatasync:9:kill > /dev/null 2>&1
st=$?
kept=$(seqs "$K")
touch "$I/acts.npy" "$I/tokens.npy"
ingest_i "$K" > "$T/touch.out" 2>&1
[ "$st" -eq 137 ] && [ "${kept:-0}" -gt 0 ] && [ "${kept:-0}" -lt 128 ] && [ "$(seqs "$K")" = 128 ] &&
    [ "$(digest "$K")" = "$D_F" ] && ok ||
    bad "killed (exit $st, ${kept:-no} of 128 sequences kept), touched, run again: $(seqs "$K") sequences, digest $( [ "$(digest "$K")" = "$D_F" ] && echo equal || echo differs): $(head -c 300 "$T/touch.out")"
touch "$I/acts.npy"
expect 1 'is done already; pass --again' ingest_i "$K"
[ "$(seqs "$K")" = 128 ] && [ "$(digest "$K")" = "$D_F" ] && ok || bad "a finished run, touched, stored $(seqs "$K") sequences"
# one bit of one activation, between the sampled blocks (inputid.c: 64 blocks of 4 KiB),
# in place, with its mtime put back
$PY - "$I/acts.npy" <<'PY'
import os, sys
p = sys.argv[1]
size = os.path.getsize(p)
starts = [(size - 4096) * i // 63 for i in range(64)]
off = next(o for o in range(size // 2, size, 4)
           if all(not (s <= o < s + 4096) for s in starts) and (o - 128) % 4 == 0)
st = os.stat(p)
with open(p, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 1]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
# (a new run, not "done already"; its rows hold codes of a already, so it is refused as a
# duplicate, issue 26, and --again stores them again)
expect 1 "all 128 sequences already hold codes of 'a'" ingest_i "$K"
expect 0 "the DB now holds 256 sequences" "$L" ingest "$K" --dict a --tokens "$I/tokens.npy" \
    --acts "$I/acts.npy" --batch-tokens 2048 --source corpus --again
# records of the scheme before (run id over sizes, mtimes and headers) are still
# found: converted in place (helper below), a finished run stays done and a killed
# one resumes to the uninterrupted run's digest
cp "$F/acts.npy" "$I/acts.npy"
legacy() { # DB [f32]: rekey its run records as latentdb did before content identity (f32:
           # and mark them runs of the plain f32 codes of before exact encoding)
    $PY - "$1" "$BUILD/bin/latentdb" "${2:-}" <<'PY'
import hashlib, json, os, struct, subprocess, sys
sys.path.insert(0, "tests")
from runs_table import rewrite
db, exe, old = sys.argv[1], sys.argv[2], sys.argv[3] == "f32"
sha = {d["name"]: d["sha256"] for d in json.loads(subprocess.check_output([exe, "dict", "ls", db, "--json"]))}
def head(p):
    b = open(p, "rb").read(4096)
    if b[:6] != b"\x93NUMPY": return b
    n = 10 + struct.unpack("<H", b[8:10])[0] if b[6] == 1 else 12 + struct.unpack("<I", b[8:12])[0]
    return open(p, "rb").read(n)
def legacy(key, r):
    if old:
        r["precision"] = "f32"
    h = hashlib.sha256()
    for d in r["dicts"]:
        h.update(d.encode() + b"\0" + sha[d].encode())
    for p in (r["tokens"], r["acts"]):
        st = os.stat(p)
        h.update(struct.pack("<QQQ", st.st_size, st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9) + head(p))
    h.update(struct.pack("<QQ", r["ctx"], r["again"]) + {"bf16": b"bf16", "exact": b"exact"}.get(r["precision"], b""))
    r.pop("inputs", None)
    return h.digest(), r
rewrite(db, legacy)
PY
    "$L" check "$1" --repair > /dev/null 2>&1 # the catalog mirrors the records' ids
}
K=$T/legacy
as_legacy() { # done|killed [f32]: K, a copy of base_f ingested (to the end, or killed after
              # some batches: kept = its sequences), its run records rekeyed by legacy
    rm -rf "$K"
    cp -r "$T/base_f" "$K"
    if [ "$1" = done ]; then
        ingest_i "$K" > /dev/null 2>&1
    else
        ingest_i "$K" LD_PRELOAD="$SHIM" LDB_FAULT_DIR="$K/data.mdb" LDB_FAULT=fdatasync:9:kill > /dev/null 2>&1
    fi
    kept=$(seqs "$K")
    legacy "$K" "${2:-}"
}
as_legacy done
expect 1 'is done already; pass --again' ingest_i "$K"
[ "$(seqs "$K")" = 128 ] && ok || bad "a finished run of the old scheme ran again: $(seqs "$K") sequences"
as_legacy killed
ingest_i "$K" > "$T/legacy.out" 2>&1
[ "${kept:-0}" -gt 0 ] && [ "${kept:-0}" -lt 128 ] && [ "$(seqs "$K")" = 128 ] && [ "$(digest "$K")" = "$D_F" ] && ok ||
    bad "a killed run of the old scheme (${kept:-no} sequences kept) did not resume: $(seqs "$K") sequences: $(head -c 300 "$T/legacy.out")"
# runs of the plain f32 codes of before exact encoding (issue 23): a finished one is done,
# an unfinished one cannot go on in other codes, and neither is touched
as_legacy done f32
expect 1 'is done already, with f32 codes; pass --again' ingest_i "$K"
[ "$(seqs "$K")" = 128 ] && ok || bad "a finished f32 run ran again: $(seqs "$K") sequences"
as_legacy killed f32
expect 1 'with the plain f32 codes of latentdb before exact encoding; it cannot be resumed with exact codes' ingest_i "$K"
[ "$(seqs "$K")" = "$kept" ] && ok || bad "a refused resume of an f32 run changed the DB: $(seqs "$K") sequences, ${kept:-no} before"

# ---- 2. I/O faults at each call, and kills at each call ---------------------------
# Count the calls one uninterrupted run makes on the database's files, then run it
# again with the N-th call of each function failing (EIO), or with the process
# killed just before it. Each run ends cleanly (exit 0 or a message and exit 1), the
# database passes check as it is left, and a rerun reaches the reference digest.
rm -rf "$T/cnt"
cp -r "$T/base_g" "$T/cnt"
LD_PRELOAD=$SHIM LDB_FAULT_DIR=$T/cnt LDB_FAULT_COUNTS=$T/counts ingest_g "$T/cnt" > /dev/null 2>&1
[ "$(digest "$T/cnt")" = "$D_G" ] && ok || bad "an ingest under the shim differs from one without"
say "calls of one ingest on its database: $(tr '\n' ' ' < "$T/counts")"
points() { # N: the call numbers to hit (all, or POINTS of them spread from 1 to N)
    if [ "$POINTS" -eq 0 ] || [ "$1" -le "$POINTS" ]; then
        seq 1 "$1"
    else
        awk "BEGIN { for (i = 0; i < $POINTS; i++) print 1 + int(i * ($1 - 1) / ($POINTS - 1)) }" | uniq
    fi
}
n_faults=0
while read -r fn count; do
    [ "$count" -gt 0 ] || continue
    for k in $(points "$count"); do
        for act in eio kill; do
            X=$T/fault
            rm -rf "$X"
            cp -r "$T/base_g" "$X"
            LD_PRELOAD=$SHIM LDB_FAULT_DIR=$X LDB_FAULT="$fn:$k:$act" ingest_g "$X" > "$T/f.out" 2>&1
            st=$?
            n_faults=$((n_faults + 1))
            want="0 1"
            [ "$act" = kill ] && want="0 137"
            case " $want " in
            *" $st "*) ;;
            *) bad "$fn call $k ($act): ingest exited $st: $(head -c 300 "$T/f.out")"; continue ;;
            esac
            if crashed "$T/f.out" || { [ "$st" -eq 1 ] && ! grep -q '^latentdb: ' "$T/f.out"; }; then
                bad "$fn call $k ($act): no clean error: $(head -c 300 "$T/f.out")"
                continue
            fi
            if ! "$L" check "$X" > "$T/c.out" 2>&1; then
                bad "$fn call $k ($act): check fails on the database left: $(head -c 300 "$T/c.out")"
                continue
            fi
            ingest_g "$X" > "$T/r.out" 2>&1
            if [ "$(digest "$X")" = "$D_G" ]; then ok; else
                bad "$fn call $k ($act): the rerun does not reach the reference: $(head -c 300 "$T/r.out")"
            fi
        done
    done
done < "$T/counts"
say "$n_faults fault runs"

# ---- 3. A crash between the LMDB commit and the catalog update ----------------------
# Killed at the first write to the SQLite WAL (after LMDB committed the first
# batch): check notes the lag, the catalog still shows the old state, and the next
# writable open rebuilds it.
X=$T/gap
cp -r "$T/base_g" "$X"
LD_PRELOAD=$SHIM LDB_FAULT_DIR=$X/catalog.sqlite-wal LDB_FAULT=pwrite:1:kill ingest_g "$X" > /dev/null 2>&1
[ $? -eq 137 ] && ok || bad "the ingest was not killed at its first catalog write"
expect 0 'note: catalog.sqlite mirrors batch [0-9]+, LMDB holds batch [0-9]+' "$L" check "$X"
cat_rows() { # DB: rows_done of the catalog's runs, and the catalog's sequences
    $PY -c "
import sqlite3, sys
c = sqlite3.connect('file:$1/catalog.sqlite?mode=ro', uri=True)
r = c.execute('select coalesce(sum(rows_done), 0) from runs').fetchone()[0]
s = c.execute('select count(*) from sequences').fetchone()[0]
print(r, s)"
}
[ "$(cat_rows "$X")" = "0 0" ] && ok || bad "the catalog shows $(cat_rows "$X") before the repair, expected 0 0"
expect 0 'ok .*catalog rebuilt' "$L" check "$X" --repair
[ "$(cat_rows "$X")" = "8 8" ] && ok || bad "the catalog shows $(cat_rows "$X") after the repair, expected 8 8"
expect 0 'ok \(' "$L" check "$X"
grep -q note "$T/out" && bad "a note remains after the repair: $(cat "$T/out")" || ok
# the same crash, repaired by the next ingest's open
rm -rf "$X"
cp -r "$T/base_g" "$X"
LD_PRELOAD=$SHIM LDB_FAULT_DIR=$X/catalog.sqlite-wal LDB_FAULT=pwrite:1:kill ingest_g "$X" > /dev/null 2>&1
ingest_g "$X" > /dev/null 2>&1
[ "$(digest "$X")" = "$D_G" ] && [ "$(cat_rows "$X")" = "32 32" ] && ok ||
    bad "after the crash, the next ingest should finish and its catalog show 32 rows ($(cat_rows "$X"))"
# a catalog changed behind latentdb's back is a problem, and --repair mends it
$PY -c "
import sqlite3; c = sqlite3.connect('$X/catalog.sqlite'); c.execute('update latents set count = count + 1 where latent = 7'); c.commit()"
expect 1 'the catalog differs from the database: table latents .*read-only mirror.*check --repair rebuilds it' "$L" check "$X"
expect 0 'catalog rebuilt' "$L" check "$X" --repair
expect 0 'ok \(' "$L" check "$X"

# ---- 4. A full disk ------------------------------------------------------------------
# A tmpfs of half the finished database: the ingest fails with a message, the
# database stays at its last committed batch (check passes), and once the disk has
# room the same command resumes and finishes.
need_kb=$(du -sk "$T/ref_f" | cut -f1)
MNT_TRY=$T/small
mkdir -p "$MNT_TRY"
if mount -t tmpfs -o size=$((need_kb / 2))k tmpfs "$MNT_TRY" 2> /dev/null; then
    MNT=$MNT_TRY
    cp -r "$T/base_f" "$MNT/db"
    expect 1 'No space left on device' ingest_f "$MNT/db"
    expect 0 'ok \(' "$L" check "$MNT/db"
    got=$(sed -n 's/.*, \([0-9]*\) tokens,.*/\1/p' "$T/out")
    [ -n "$got" ] && [ "$got" -gt 0 ] && [ "$got" -lt 32768 ] && ok ||
        bad "the full disk should stop the ingest part way (kept $got tokens)"
    mount -o remount,size=$((need_kb * 4))k "$MNT"
    expect 0 'ingested' ingest_f "$MNT/db"
    [ "$(digest "$MNT/db")" = "$D_F" ] && ok || bad "the ingest resumed after a full disk differs"
    say "full disk: a ${need_kb}k database on a $((need_kb / 2))k tmpfs stopped at $got tokens, then resumed"
else # no mount here: the shim's ENOSPC on a write half way through stands in
    n=$(sed -n 's/^pwrite //p' "$T/counts")
    X=$T/enospc
    cp -r "$T/base_g" "$X"
    LD_PRELOAD=$SHIM LDB_FAULT_DIR=$X LDB_FAULT="pwrite:$((n / 2)):enospc" ingest_g "$X" > "$T/out" 2>&1
    [ $? -eq 1 ] && grep -q 'No space left on device' "$T/out" && ok || bad "ENOSPC: $(head -c 300 "$T/out")"
    expect 0 'ok \(' "$L" check "$X"
    ingest_g "$X" > /dev/null 2>&1
    [ "$(digest "$X")" = "$D_G" ] && ok || bad "the ingest resumed after ENOSPC differs"
    say "full disk: cannot mount a tmpfs here; ENOSPC from the shim at pwrite $((n / 2)) of $n"
fi

# ---- 5. A map that fills grows ---------------------------------------------------------
X=$T/map
cp -r "$T/base_f" "$X"
LATENTDB_MAP_SIZE=262144 ingest_f "$X" > "$T/out" 2>&1
[ $? -eq 0 ] && [ "$(digest "$X")" = "$D_F" ] && ok ||
    bad "an ingest into a 256 KiB map should grow it and finish: $(head -c 300 "$T/out")"

# ---- 6. Readers during an ingest --------------------------------------------------------
# Every answer a reader gets while an ingest commits batch after batch equals the
# answer of some committed state: the states are rebuilt as ingests of prefixes of
# the corpus (8 batches of 4,096 tokens), and every answer must be one of theirs.
# The writer and readers start with a 256 KiB map, so the map grows under readers.
$PY - "$F" "$T/pre" <<'PY'
import numpy as np, os, sys
src, out = sys.argv[1], sys.argv[2]
t, a = np.load(src + "/tokens.npy"), np.load(src + "/acts.npy", mmap_mode="r")
for k in range(1, 9):
    d = f"{out}/{k}"
    os.makedirs(d)
    np.save(d + "/tokens.npy", t[: 16 * k])
    np.save(d + "/acts.npy", np.ascontiguousarray(a[: 4096 * k]))
PY
LAT=$($PY -c "
import json; j = json.load(open('$F/planted.json'))
print(*[l['latent'] for l in j['latents'] if l['family'] == 'token'][:2])")
answers() { # DB OUTPREFIX: the answers a reader compares
    "$L" check "$1" --digest > "$2.digest" 2> "$2.why" # why, should a digest be missing
    for l in $LAT; do "$L" top "$1" a "$l" -k 5 --json > "$2.top$l" 2>&1; done
    "$L" density "$1" a --counts > "$2.density" 2>&1
}
mkdir -p "$T/ans"
answers "$T/base_f" "$T/ans/0"
for k in 1 2 3 4 5 6 7 8; do
    P=$T/pdb$k
    cp -r "$T/base_f" "$P"
    "$L" ingest "$P" --dict a --tokens "$T/pre/$k/tokens.npy" --acts "$T/pre/$k/acts.npy" \
        --batch-tokens 4096 --source corpus > /dev/null
    answers "$P" "$T/ans/$k"
done
V=$T/live
cp -r "$T/base_f" "$V"
mkdir -p "$T/seen"
reader() { # ID: query the live database until the writer is done
    i=0
    while [ ! -f "$T/writer.done" ]; do
        i=$((i + 1))
        LATENTDB_MAP_SIZE=262144 answers "$V" "$T/seen/$1.$i"
    done
}
LATENTDB_MAP_SIZE=262144 ingest_f "$V" 4096 > "$T/writer.out" 2>&1 &
wpid=$!
reader a &
r1=$!
reader b &
r2=$!
wait "$wpid"
wst=$?
touch "$T/writer.done"
wait "$r1" "$r2"
[ "$wst" -eq 0 ] && [ "$(digest "$V")" = "$(cat "$T/ans/8.digest")" ] && ok ||
    bad "the live ingest failed: $(head -c 300 "$T/writer.out")"
n_ans=0
n_bad=0
states=""
for f in "$T"/seen/*; do
    q=${f##*.}
    [ "$q" = why ] && continue
    match=""
    for k in 0 1 2 3 4 5 6 7 8; do
        if cmp -s "$f" "$T/ans/$k.$q"; then match=$k; break; fi
    done
    n_ans=$((n_ans + 1))
    if [ -z "$match" ]; then
        n_bad=$((n_bad + 1))
        bad "a reader's answer ($q) matches no committed state: $(head -c 200 "$f") $(cat "${f%.*}.why" 2> /dev/null | head -c 300)"
    else
        case " $states " in *" $match "*) ;; *) states="$states $match" ;; esac
    fi
done
n_states=$(echo $states | wc -w)
[ "$n_ans" -gt 0 ] && [ "$n_states" -ge 2 ] && ok ||
    bad "readers saw $n_states committed states in $n_ans answers; expected answers from several"
say "readers: $n_ans answers during the ingest, $n_bad of them from no committed state (states seen:$states)"

# ---- 7. Bad input leaves the database as it was ------------------------------------------
$PY -c "
import numpy as np
a = np.load('$F/acts.npy'); a[-1, 3] = np.nan; np.save('$T/acts_nan.npy', a)
a[-1, 3] = np.inf; np.save('$T/acts_inf.npy', a)
t = np.load('$F/tokens.npy'); t[-1, -1] = -5; np.save('$T/tokens_neg.npy', t)"
X=$T/bad
cp -r "$T/base_f" "$X"
expect 1 "acts_nan.npy: position 32767 \(row 127, position 255\) holds NaN or Inf; expected finite activations \(nothing was ingested\)" \
    "$L" ingest "$X" --dict a --tokens "$F/tokens.npy" --acts "$T/acts_nan.npy" --batch-tokens 2048
expect 1 "acts_inf.npy: position 32767 .* holds NaN or Inf" \
    "$L" ingest "$X" --dict a --tokens "$F/tokens.npy" --acts "$T/acts_inf.npy" --batch-tokens 2048
expect 1 "tokens_neg.npy: token id -5 at position 32767 is out of range \(nothing was ingested\)" \
    "$L" ingest "$X" --dict a --tokens "$T/tokens_neg.npy" --acts "$F/acts.npy" --batch-tokens 2048
[ "$(digest "$X")" = "$D_EMPTY" ] && ok || bad "bad input changed the database"

# Values past the stored type (issue 20, finding 3): an f16 database would keep codes
# above 65504 as +Inf, a bf16 one codes above 3.3961e38, and an encoder whose f32 sum
# overflows has no right answer at all. Each is refused naming the position, the
# latent and the value; an import before it writes anything, an ingest before the
# batch that holds it reaches the writer (the batches before it stay, and pass check).
$PY -c "
import numpy as np, scipy.sparse as sp
n = 32768
ptr = np.arange(n + 1, dtype=np.int64)
ind = (np.arange(n) * 7 % 4096).astype(np.int32)
val = np.full(n, 2.5, np.float32)
val[1000] = 70000
sp.save_npz('$T/codes_f16.npz', sp.csr_matrix((val, ind, ptr), shape=(n, 4096)))
val[1000] = 3.4e38 # finite in f32, past bf16's largest
sp.save_npz('$T/codes_bf16.npz', sp.csr_matrix((val, ind, ptr), shape=(n, 4096)))
a = np.load('$F/acts.npy'); a[64 * 256:] *= 1e5; np.save('$T/acts_big.npy', a)"
X=$T/f16
"$L" init "$X" --values f16 --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$X" a "$F/dict" > /dev/null
D_F16=$(digest "$X")
expect 1 "codes_f16.npz: code 1000, at position 1000 \(row 3, position 232\), latent 2904, is 70000, past the largest a f16 database stores \(65504\).* \(nothing was imported\)" \
    "$L" import "$X" --dict a --tokens "$F/tokens.npy" --codes "$T/codes_f16.npz"
[ "$(digest "$X")" = "$D_F16" ] && ok || bad "a refused import changed the f16 database"
X=$T/bf16
cp -r "$T/base_f" "$X"
expect 1 "codes_bf16.npz: code 1000, .* latent 2904, is 3.4e\+38, past the largest a bf16 database stores \(3.38953e\+38\)" \
    "$L" import "$X" --dict a --tokens "$F/tokens.npy" --codes "$T/codes_bf16.npz"
[ "$(digest "$X")" = "$D_EMPTY" ] && ok || bad "a refused import changed the bf16 database"
# an ingest whose codes pass 65504 from row 64 on: the 8 batches before it are kept
X=$T/f16
expect 1 "acts_big.npy: position 16384 \(row 64, position 0\): dictionary 'a', latent [0-9]+ has the value [0-9.e+]+, past the largest a f16 database stores \(65504\).*; nothing of this batch was written" \
    "$L" ingest "$X" --dict a --tokens "$F/tokens.npy" --acts "$T/acts_big.npy" --batch-tokens 2048
expect 0 ": ok \(64 sequences, 16384 tokens" "$L" check "$X"
# a dictionary whose encoder weights are finite but huge (3e38): x.W_enc overflows f32
mkdir -p "$T/huge"
cp "$F/dict/"* "$T/huge/"
$PY -c "
import json, struct, numpy as np
p = '$T/huge/params.safetensors'
b = bytearray(open(p, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
o0, o1 = h['w_enc']['data_offsets']; w = np.frombuffer(b, np.float32, (o1 - o0) // 4, 8 + n + o0)
w = (w / np.abs(w).max() * 3e38).astype(np.float32); assert np.isfinite(w).all()
b[8 + n + o0:8 + n + o1] = w.tobytes(); open(p, 'wb').write(b)"
X=$T/huge_db
"$L" init "$X" --skip-tokens 0,1,2 > /dev/null && "$L" dict add "$X" h "$T/huge" > /dev/null
D_HUGE=$(digest "$X")
expect 1 "acts.npy: position 0 \(row 0, position 0\): dictionary 'h', latent [0-9]+: the pre-activation is ([-+]Inf|NaN) \(the f32 sum overflowed" \
    "$L" ingest "$X" --dict h --tokens "$F/tokens.npy" --acts "$F/acts.npy" --batch-tokens 2048
[ "$(digest "$X")" = "$D_HUGE" ] && ok || bad "an encoder that overflowed changed the database"
expect 0 ": ok \(0 sequences" "$L" check "$X"
# JSON nested past cJSON's limit (1000 levels) is refused, not a stack overflow
mkdir -p "$T/deep"
cp "$G/dict/"* "$T/deep/"
$PY -c "print('[' * 200000 + ']' * 200000)" > "$T/deep/deep.json"
for f in "$T/deep/"*.json; do
    case $f in */deep.json) ;; *) cp "$T/deep/deep.json" "$f" ;; esac
done
expect 1 '^latentdb: .*json' "$L" dict show "$T/deep"
expect 1 '^latentdb: ' "$L" tokenize "$T/deep/deep.json" "hello"
crashed "$T/out" && bad "deep JSON crashed the tokenizer loader" || ok

# ---- 8. Damaged files at open (issue 20: findings 2 and 9) -------------------------
# A truncated data.mdb is refused by every command with a message, never mapped past
# its end (a SIGBUS): cut by its last 4 KiB (a page in use: check said ok, label died),
# by half, below the meta pages, to nothing. The file is left as it was.
LAT1=$($PY -c "
import json; j = json.load(open('$G/planted.json'))
print([l['latent'] for l in j['latents'] if l['family'] == 'token'][0])")
every_cmd() { # PATTERN DB [PREFIX...]: every command that opens DB exits 1 with PATTERN
    pat=$1 db=$2
    shift 2
    for cmd in "info $db" "check $db" "top $db a $LAT1 -k 5" "latent $db a $LAT1" "density $db a" \
        "samples $db a $LAT1" "cooc $db a $LAT1" "seq $db 0" "export $db a --latents 0-3" \
        "dict ls $db" "label $db a $LAT1 x" "dict add $db b $G/dict" "check $db --repair"; do
        # shellcheck disable=SC2086
        expect 1 "$pat" "$@" "$L" $cmd
        crashed "$T/out" && bad "$cmd crashed: $(head -c 300 "$T/out")"
    done
}
for cut in last4k half meta empty; do
    X=$T/trunc
    rm -rf "$X"
    cp -r "$T/ref_g" "$X"
    size=$(stat -c %s "$X/data.mdb")
    case $cut in
    last4k) truncate -s $((size - 4096)) "$X/data.mdb" ;;
    half) truncate -s $((size / 2)) "$X/data.mdb" ;;
    meta) truncate -s 6000 "$X/data.mdb" ;;
    empty) truncate -s 0 "$X/data.mdb" ;;
    esac
    sum=$(cksum < "$X/data.mdb")
    every_cmd '^latentdb: .*data.mdb is truncated: [0-9]+ bytes.*restore it from a copy' "$X"
    [ "$(cksum < "$X/data.mdb")" = "$sum" ] && ok || bad "a command changed the truncated data.mdb ($cut)"
done
# a FIFO in place of data.mdb (or lock.mdb): every command exits 1 at once, naming it
X=$T/fifo
rm -rf "$X"
cp -r "$T/ref_g" "$X"
rm "$X/data.mdb"
mkfifo "$X/data.mdb"
every_cmd '^latentdb: .*data.mdb is a FIFO, not a regular file' "$X" timeout 10
rm -rf "$X"
cp -r "$T/ref_g" "$X"
rm -f "$X/lock.mdb"
mkfifo "$X/lock.mdb"
expect 1 '^latentdb: .*lock.mdb is a FIFO, not a regular file; remove it' timeout 10 "$L" info "$X"
# a writer on a folder without a database refuses before LMDB creates anything in it
# (it made data.mdb and lock.mdb, after which init said a database existed)
X=$T/nodb
rm -rf "$X"
mkdir "$X"
expect 1 'no database here' "$L" label "$X" a 1 x
[ -z "$(ls -A "$X")" ] && ok || bad "a label on an empty folder left $(ls -A "$X")"
expect 0 'initialised' "$L" init "$X"
# a page that LMDB's own assertions reject (a leaf of the token table marked as a
# branch page): the process ends with exit status 1 and a message naming the DB
# and check, not an abort
X=$T/assert
rm -rf "$X"
cp -r "$T/ref_g" "$X"
$PY - "$X/data.mdb" tok <<'PY'
# marks the second leaf page of LMDB table argv[2] (depth >= 2) as a branch page
import struct, sys
f = open(sys.argv[1], "r+b")
head = f.read(8192)
psize = struct.unpack_from("<I", head, 40)[0]
meta = max((struct.unpack_from("<Q", head, i * psize + 144)[0], i) for i in range(2))[1] * psize
def page(n):
    f.seek(n * psize)
    return f.read(psize)
def nodes(p):
    for i in range((struct.unpack_from("<H", p, 12)[0] - 16) // 2):
        off = struct.unpack_from("<H", p, 16 + 2 * i)[0]
        lo, hi, fl, ks = struct.unpack_from("<HHHH", p, off)
        yield lo | hi << 16 | fl << 32, fl, p[off + 8: off + 8 + ks], off + 8 + ks
def leaves(n):
    p = page(n)
    if struct.unpack_from("<H", p, 10)[0] & 1:
        for c, _, _, _ in nodes(p):
            yield from leaves(c)
    else:
        yield p
for p in leaves(struct.unpack_from("<Q", head, meta + 128)[0]):
    for _, fl, key, doff in nodes(p):
        if key == sys.argv[2].encode() and fl & 2:
            kids = [c for c, _, _, _ in nodes(page(struct.unpack_from("<Q", p, doff + 40)[0]))]
            f.seek(kids[1] * psize + 10)
            f.write(struct.pack("<H", 1))
            sys.exit(0)
sys.exit("no table " + sys.argv[2])
PY
# compact walks every page with cursors and meets LMDB's assertion; the database is
# left as it was. (Queries met it too while samples looked the token up at every code;
# since the skipped positions come from the token index, they read the damaged page
# by key and say which token block is missing.)
sum0=$(sha256sum < "$X/data.mdb")
"$L" compact "$X" > "$T/out" 2>&1
st=$?
[ "$st" -eq 1 ] && grep -qE "^latentdb: $X: LMDB found a damaged page \(mdb.c:[0-9]+: Assertion .*\); run latentdb check $X$" "$T/out" &&
    ok || bad "compact on a damaged page: exit $st: $(head -c 300 "$T/out")"
[ "$(sha256sum < "$X/data.mdb")" = "$sum0" ] && ok || bad "compact changed a damaged database"
for cmd in "samples $X a 7" "top $X a 7" "seq $X 3" "cooc $X a 7"; do
    # shellcheck disable=SC2086
    "$L" $cmd > "$T/out" 2>&1
    st=$?
    [ "$st" -eq 1 ] && grep -qE "^latentdb: $X: (LMDB found a damaged page|no token block holds position)" "$T/out" &&
        ok || bad "$cmd on a damaged page: exit $st: $(head -c 300 "$T/out")"
done

# ---- 9. Writers racing an ingest (issue 20, finding 6) -------------------------------
# dict add and label while an ingest commits batches: afterwards check passes every
# time (the catalog mirrors the LMDB state it records, dictionaries included)
if [ "$MODE" = long ]; then N_RACE=10; else N_RACE=3; fi
i=0
while [ "$i" -lt "$N_RACE" ]; do
    i=$((i + 1))
    X=$T/race
    rm -rf "$X"
    cp -r "$T/base_f" "$X"
    ingest_f "$X" > "$T/race.out" 2>&1 &
    p=$!
    sleep "0.$((3 + i % 5))"
    "$L" dict add "$X" "b$i" "$F/dict" > "$T/add.out" 2>&1 || bad "dict add during an ingest: $(head -c 300 "$T/add.out")"
    "$L" label "$X" a 7 "seven $i" > "$T/add.out" 2>&1 || bad "label during an ingest: $(head -c 300 "$T/add.out")"
    kill -0 "$p" 2> /dev/null || say "race $i: the ingest had finished before dict add and label"
    wait "$p" || bad "the ingest raced by dict add failed: $(head -c 300 "$T/race.out")"
    expect 0 'ok \(' "$L" check "$X"
    grep -q note "$T/out" && bad "race $i: check notes a catalog lag: $(cat "$T/out")" || ok
done

# ---- 10. A catalog that is not a database (issue 20, finding 8) -----------------------
# random bytes, a truncated file, random pages past the schema (found only when the
# rows are read), a folder: check says so and names the remedy, changes nothing;
# check --repair, label, ingest and dict add move it aside, rebuild it and work
for kind in random truncated pages folder; do
    for cmd in repair label ingest dictadd; do
        X=$T/cat
        rm -rf "$X"
        cp -r "$T/base_g" "$X"
        [ "$cmd" = ingest ] || ingest_g "$X" > /dev/null 2>&1
        case $kind in
        random) head -c 65536 /dev/urandom > "$X/catalog.sqlite" ;;
        truncated) truncate -s 30000 "$X/catalog.sqlite" ;;
        pages) $PY -c "
import os; p = '$X/catalog.sqlite'; n = os.path.getsize(p); f = open(p, 'r+b')
f.seek(n // 2); f.write(os.urandom(n - n // 2))" ;;
        folder) rm -f "$X/catalog.sqlite"; mkdir "$X/catalog.sqlite"; touch "$X/catalog.sqlite/x" ;;
        esac
        rm -f "$X/catalog.sqlite-wal" "$X/catalog.sqlite-shm"
        state() { # what check must leave as it was (SQLite's -wal and -shm of a reader aside)
            ls -R "$X" | grep -v -e '-wal$' -e '-shm$'
            cat "$X/data.mdb" "$X/catalog.sqlite" 2> /dev/null | cksum
        }
        before=$(state)
        expect 1 'catalog.sqlite is not a sound database .*check --repair moves it aside' "$L" check "$X"
        [ "$(state)" = "$before" ] && ok || bad "check changed the folder of a damaged catalog ($kind)"
        case $cmd in
        repair) expect 0 'catalog rebuilt' "$L" check "$X" --repair ;;
        label) expect 0 'labelled' "$L" label "$X" a 7 seven ;;
        ingest) expect 0 'ingested' ingest_g "$X" ;;
        dictadd) expect 0 'added dictionary' "$L" dict add "$X" b "$G/dict" ;;
        esac
        grep -q "note: .*catalog.sqlite was not a database .*moved it to catalog.sqlite.damaged-" "$T/out" &&
            ok || bad "$cmd over a damaged catalog ($kind) gave no note: $(head -c 300 "$T/out")"
        expect 0 'ok \(' "$L" check "$X"
        ls "$X" | grep -q '^catalog.sqlite.damaged-' && ok || bad "the damaged catalog ($kind) was not kept"
    done
done

# ---- 11. init is atomic (issue 20, finding 7) -------------------------------------------
# Every I/O call of an init --tokenizer --skip-tokens fails (EIO, ENOSPC) or is killed:
# afterwards there is either no database (and init again succeeds) or a complete one
# (check passes, it has the tokenizer and the skip set). Into a new folder, and into
# an existing empty one.
mkdir -p "$T/tk"
$PY - "$T/tk" <<'PY'
import itertools, json, sys
d = sys.argv[1]
vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2}
for b in range(256):
    vocab["<0x%02X>" % b] = len(vocab)
letters = "abcdefghijklmnopqrstuvwxyz"
for c in letters + "\u2581":
    vocab[c] = len(vocab)
merges = []
for a, b in itertools.product(letters, letters):
    vocab[a + b] = len(vocab)
    merges.append(a + " " + b)
added = [{"id": i, "content": t, "special": True, "single_word": False, "lstrip": False,
          "rstrip": False, "normalized": False} for t, i in [("<pad>", 0), ("<eos>", 1), ("<bos>", 2)]]
json.dump({"version": "1.0", "added_tokens": added,
           "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
           "pre_tokenizer": None, "model": {"type": "BPE", "vocab": vocab, "merges": merges,
           "byte_fallback": True, "fuse_unk": True, "unk_token": None}}, open(d + "/tokenizer.json", "w"))
json.dump({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
          open(d + "/tokenizer_config.json", "w"))
PY
I=$T/init
init_t() { "$L" init "$I/db" --tokenizer "$T/tk/tokenizer.json" --skip-tokens 1,2; }
complete() { # the database passes check, has the tokenizer and the skip set
    "$L" check "$I/db" > "$T/ic.out" 2>&1 && "$L" tokenize "$I/db" "hello" 2>&1 | grep -q '^3 tokens' &&
        "$L" info "$I/db" 2>&1 | grep -q 'skip tokens *1,2$'
}
n_init=0
for where in new existing; do
    rm -rf "$I"
    mkdir -p "$I"
    [ "$where" = existing ] && mkdir "$I/db"
    rm -f "$T/icounts"
    LD_PRELOAD=$SHIM LDB_FAULT_DIR=$I LDB_FAULT_COUNTS=$T/icounts init_t > /dev/null 2>&1 && complete &&
        ok || bad "init ($where folder) under the shim"
    say "calls of one init ($where folder): $(tr '\n' ' ' < "$T/icounts")"
    while read -r fn count; do
        [ "$count" -gt 0 ] || continue
        for k in $(points "$count"); do
            for act in eio enospc kill; do
                rm -rf "$I"
                mkdir -p "$I"
                [ "$where" = existing ] && mkdir "$I/db"
                LD_PRELOAD=$SHIM LDB_FAULT_DIR=$I LDB_FAULT="$fn:$k:$act" init_t > "$T/i.out" 2>&1
                st=$?
                n_init=$((n_init + 1))
                want="0 1"
                [ "$act" = kill ] && want="0 137"
                case " $want " in
                *" $st "*) ;;
                *) bad "init, $fn call $k ($act): exited $st: $(head -c 300 "$T/i.out")"; continue ;;
                esac
                if [ -e "$I/db/data.mdb" ]; then
                    complete && ok || bad "init, $fn call $k ($act, exit $st) left a database that is not complete: $(head -c 300 "$T/ic.out")"
                else
                    init_t > "$T/i2.out" 2>&1 && complete && ok ||
                        bad "init, $fn call $k ($act, exit $st) left no database, and init again fails: $(head -c 300 "$T/i2.out")"
                fi
            done
        done
    done < "$T/icounts"
done
say "$n_init fault runs of init"

echo "reliability: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
