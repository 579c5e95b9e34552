#!/bin/sh
# make bench: every row of the performance targets, each beside a ceiling or a peer
# measured in the same run, on this machine. Results go to $BUILD/bench/results/*.txt
# ("key value" lines); tools/bench/report.py prints the table and rewrites the
# results section of docs/BENCHMARKS.md and its plots (docs/bench/*.svg).
# Fixtures are cached under $BUILD/bench (seeded: a rerun regenerates the same data).
# Stages can be chosen: BENCH="ingest numpy bf16 exact wide store query text python web" (all by default).
set -e
BUILD=${1:-build}
B=$BUILD/bench
R=$B/results
L=bin/latentdb
PY=/usr/bin/python3
BENCH=${BENCH:-}
STAGES=${BENCH:-"ingest numpy bf16 exact wide store query text python web"}
INGEST_SIZES=${INGEST_SIZES:-"204800 614400 2048000"}
QUERY_SIZES=${QUERY_SIZES:-"1048576 3145728 10485760"}
mkdir -p "$R"
# A whole run keeps ~28 GB of fixtures and DBs under $B (the 2M-token activations are
# 5.2 GB, the 10M-token codes 3.9 GB at 16,384 latents and 3.1 GB at 262,144, with a
# 2.3 GB DB): refuse early rather than fail at the last stage.
if [ -z "$BENCH" ]; then
    have_kb=$(du -sk "$B" | cut -f1)
    free_kb=$(df -Pk "$B" | awk 'NR == 2 { print $4 }')
    need_kb=$((28 * 1024 * 1024 - have_kb))
    if [ "$need_kb" -gt "$free_kb" ]; then
        echo "bench: $B needs about 28 GB for fixtures and DBs; it holds $((have_kb / 1048576)) GB and the disk has $((free_kb / 1048576)) GB free" >&2
        exit 1
    fi
fi
[ -z "$BENCH" ] && rm -f "$R"/*.txt "$R"/*.raw # a whole run starts clean: no figure from another run
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
now() { date +%s.%N; }
T_START=$(now)

# The machine, as bench_encode sees it (CPU, family, OpenBLAS core and threads).
machine() {
    grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu_model /'
    grep -m1 'cpu family' /proc/cpuinfo | sed 's/.*: /cpu_family /'
    echo "cores $(nproc)"
    grep -q avx512_bf16 /proc/cpuinfo && echo "avx512_bf16 1" || echo "avx512_bf16 0"
    grep -q avx512f /proc/cpuinfo && echo "avx512f 1" || echo "avx512f 0"
    grep -q amx_bf16 /proc/cpuinfo && echo "amx_bf16 1" || echo "amx_bf16 0"
    echo "date $(date -u +%Y-%m-%d)"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}
machine > "$R/machine.txt"

# latentdb picks OpenBLAS's kernels from the CPU when OPENBLAS_CORETYPE is unset
# (sae/blas.c). A machine-wide OPENBLAS_CORETYPE (Haswell on some of these VMs,
# whatever the CPU) would measure kernels nobody chose for this CPU, so the bench
# unsets it (BENCH_KEEP_CORETYPE=1 keeps it) and runs the numpy peer on the core
# latentdb ran: the same kernels on both sides.
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ -z "${BENCH_KEEP_CORETYPE:-}" ]; then
    echo "env_coretype $OPENBLAS_CORETYPE" >> "$R/machine.txt"
    echo "bench: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE unset for this run (BENCH_KEEP_CORETYPE=1 keeps it)" >&2
    unset OPENBLAS_CORETYPE
fi
# The OpenBLAS core latentdb ran (after the ingest stage), for the numpy peer.
latentdb_core() { sed -n 's/^openblas_core //p' "$R"/ingest_*.txt 2>/dev/null | head -1; }
peer() { # ARGS...: tools/bench/numpy_peer.py on latentdb's core when one is known
    core=$(latentdb_core)
    if [ -n "$core" ]; then
        OPENBLAS_CORETYPE=$core $PY tools/bench/numpy_peer.py "$@"
    else
        $PY tools/bench/numpy_peer.py "$@"
    fi
}

# A planted fixture with dense activations (cached).
planted_acts() { # DIR TOKENS
    if [ ! -f "$1/acts.npy" ]; then
        echo "bench: generating $2 tokens of planted activations in $1" >&2
        g0=$(now)
        "$BUILD/tools/planted" "$1" --d-in 640 --d-sae 16384 --n-tokens "$2" --ctx 1024 \
            --seed 5 >/dev/null
        echo "bench: generated in $(awk "BEGIN { printf \"%.1f\", $(now) - $g0 }") s" >&2
        # written out before anything is timed: the writeback of GBs of fresh
        # activations took the disk and a core from the first ingest measured
        # (one whole run: 78.8% of the ceiling against 90.1% reusing the files)
        sync "$1"/*.npy "$1"/dict/* 2>/dev/null || sync
    fi
}

# Ingest: throughput against the sgemm ceiling, measured just before and just after
# it (best of 3 each; the ceiling is the better of the two, so a neighbour's load
# during one measurement does not lower it), peak RssAnon sampled from /proc,
# storage per code.
ceiling() { # DIR -> "ceiling_tps" of one bench_encode run; writes DIR/encode.txt
    "$BUILD/tools/bench_encode" "$1/dict" "$1/acts.npy" --reps "${CEIL_REPS:-3}" \
        --max-rows "${CEIL_ROWS:-8192}" > "$1/encode.txt"
    sed -n 's/^ceiling .*: [0-9.]* GFLOP\/s = \([0-9]*\) tokens\/s.*/\1/p' "$1/encode.txt"
}
ingest_at() { # DIR OUT TOKENS [--precision bf16]: an ingest of DIR's dict, tokens, acts
    D=$1
    out=$2
    prec=${4:-}
    echo "tokens $3" > "$out"
    c0=$(ceiling "$D")
    sed -n 's/^machine .*; core \([A-Za-z0-9]*\) .*/openblas_core \1/p' "$D/encode.txt" >> "$out"
    sed -n 's/^machine .*; \([0-9]*\) OpenBLAS threads.*/threads \1/p' "$D/encode.txt" >> "$out"
    sed -n 's/^encode    \([0-9]*\) tokens\/s.*/encode_tps \1/p' "$D/encode.txt" >> "$out"
    sed -n 's/^dict .* mean L0 \([0-9.]*\),.*/encode_l0 \1/p' "$D/encode.txt" >> "$out"
    sed -n 's/^ceiling   \(.*\): [0-9.]* GFLOP.*/\1/p' "$D/encode.txt" | tr ' ' '_' |
        sed 's/^/ceiling_shape /' >> "$out"
    DB=$D/db
    rm -rf "$DB"
    $L init "$DB" --skip-tokens 0,1,2 >/dev/null
    $L dict add "$DB" r "$D/dict" >/dev/null
    t0=$(now)
    # shellcheck disable=SC2086
    $L ingest "$DB" --dict r --tokens "$D/tokens.npy" --acts "$D/acts.npy" $prec > "$D/ingest.out" &
    pid=$!
    peak=0
    # sampled with the shell's own read (a sed per sample, 20 a second, took CPU from
    # the two cores the ingest is measured on)
    while kill -0 $pid 2>/dev/null; do
        while read -r k a _; do
            if [ "$k" = "RssAnon:" ]; then
                [ "$a" -gt "$peak" ] && peak=$a
                break
            fi
        done < /proc/$pid/status 2>/dev/null || true
        sleep 0.2
    done
    wait $pid
    t1=$(now)
    echo "ingest_s $(awk "BEGIN { print $t1 - $t0 }")" >> "$out"
    c1=$(ceiling "$D")
    echo "ceiling_before_tps $c0" >> "$out"
    echo "ceiling_after_tps $c1" >> "$out"
    echo "ceiling_tps $(awk "BEGIN { print ($c0 > $c1) ? $c0 : $c1 }")" >> "$out"
    echo "rssanon_kib $peak" >> "$out"
    # the encoder's own line: exact or bf16, the share of pairs refined, the W_enc copies
    sed -n 's/^encoder: \([^;]*\).*/encoder \1/p' "$D/ingest.out" | tr ' ' '_' | sed 's/^encoder_/encoder /' >> "$out"
    sed -n 's/^encoder: .*; \([0-9.]*\)% of (token, latent) pairs.*/refined_pct \1/p' "$D/ingest.out" >> "$out"
    sed -n 's/^encoder: .*; \([0-9]*\) MiB of W_enc copies/encoder_mib \1/p' "$D/ingest.out" >> "$out"
    echo "weights_bytes $(cat "$D"/dict/*.safetensors | wc -c)" >> "$out"
    $L info "$DB" | tail -1 | awk '{print "nnz " $4 "\nbytes_per_nnz " $5}' >> "$out"
}
ingest_one() { # TOKENS [bf16]
    T=$1
    D=$B/planted_640x16384_$T
    planted_acts "$D" "$T"
    out=$R/ingest_$T.txt
    prec=""
    if [ "${2:-}" = bf16 ]; then
        out=$R/bf16_ingest.txt
        prec="--precision bf16"
    fi
    ingest_at "$D" "$out" "$T" "$prec"
    echo "bench: ingest $T tokens ${2:-f32} done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
}

if has ingest; then
    for T in $INGEST_SIZES; do ingest_one "$T"; done
fi

# The numpy/scipy peer's encode pipeline, on the first 51,200 tokens of the
# smallest ingest fixture (its throughput does not depend on the corpus size).
if has numpy; then
    T=$(echo $INGEST_SIZES | cut -d' ' -f1)
    D=$B/planted_640x16384_$T
    planted_acts "$D" "$T"
    peer "$D/dict" "$D/acts.npy" "$B/numpy_peer" --max-tokens 51200 > "$R/numpy_encode.txt"
    echo "numpy_core $(latentdb_core)" >> "$R/numpy_encode.txt"
    echo "bench: numpy encode peer done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
fi

# bf16 encode (oneDNN) against the f32 ceiling, with the flip rate against exact f32.
if has bf16; then
    T=$(echo $INGEST_SIZES | cut -d' ' -f1)
    D=$B/planted_640x16384_$T
    planted_acts "$D" "$T"
    "$BUILD/tools/bench_encode" "$D/dict" "$D/acts.npy" --reps 3 --max-rows 32768 \
        --precision bf16 > "$R/bf16.raw" 2>&1 || true
    sed -n 's/^\([a-z_0-9]*\)=\(.*\)$/\1 \2/p' "$R/bf16.raw" > "$R/bf16.txt"
    # and a whole bf16 ingest, on the middle size: encode and store together
    ingest_one "$(echo $INGEST_SIZES | awk '{ print $(NF > 1 ? 2 : 1) }')" bf16
    echo "bench: bf16 done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
fi

# Exact codes (issue 23). On realistic norms (tools/bench/realistic.py: BOS rows 50-100x
# the median, four outlier dimensions 10-50x in every row, b_enc absorbing their mean):
# the encode alone (bench_encode: the default exact encoder, the f32-screen one and bf16's
# approximate codes, their codes compared with the default's), then whole ingests, end to
# end, of 640 -> 16384 (614,400 tokens) and 1152 -> 262144 (102,400 tokens, thresholds
# calibrated for a mean L0 of 40), each against its sgemm ceiling; the writer's share is
# 1 - ingest / encode of the same fixture. And the whole 2M-token planted corpus ingested
# with the default and with --precision f32: the same digest.
if has exact; then
    T=614400
    D=$B/planted_640x16384_$T
    planted_acts "$D" "$T"
    X=$B/realistic_640x16384_$T
    [ -f "$X/acts.npy" ] || $PY tools/bench/realistic.py "$D" "$X" > "$X.json"
    "$BUILD/tools/bench_encode" "$X/dict" "$X/acts.npy" --reps 3 --max-rows 65536 \
        --precision bf16 > "$R/exact_encode.raw" 2>&1 || true
    sed -n 's/^\([a-z_0-9]*\)=\(.*\)$/\1 \2/p' "$R/exact_encode.raw" > "$R/exact_encode.txt"
    sed -n 's/^encode    \([0-9]*\) tokens\/s.*/exact_tps \1/p' "$R/exact_encode.raw" >> "$R/exact_encode.txt"
    ingest_at "$X" "$R/exact_16384.txt" "$T"
    echo "bench: exact 640 -> 16384 done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
    D=$B/planted_1152x262144_102400
    X=$B/realistic_1152x262144_102400
    if [ ! -f "$X/acts.npy" ]; then
        [ -f "$D/acts.npy" ] || "$BUILD/tools/planted" "$D" --d-in 1152 --d-sae 262144 \
            --n-tokens 102400 --ctx 1024 --background 30 --calibrate-l0 40 --seed 7 > /dev/null
        $PY tools/bench/realistic.py "$D" "$X" > "$X.json"
        rm -rf "$D" # the realistic copy is the one measured
        sync
    fi
    CEIL_ROWS=4096 CEIL_REPS=2 ingest_at "$X" "$R/exact_262144.txt" 102400
    echo "bench: exact 1152 -> 262144 done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
    T=$(echo $INGEST_SIZES | awk '{ print $NF }')
    D=$B/planted_640x16384_$T
    planted_acts "$D" "$T"
    for p in exact f32; do
        rm -rf "$B/digest_$p"
        $L init "$B/digest_$p" --skip-tokens 0,1,2 > /dev/null
        $L dict add "$B/digest_$p" r "$D/dict" > /dev/null
        $L ingest "$B/digest_$p" --dict r --tokens "$D/tokens.npy" --acts "$D/acts.npy" --precision $p > /dev/null
        echo "digest_$p $($L check "$B/digest_$p" --digest)" >> "$R/exact_digest.txt"
        rm -rf "$B/digest_$p"
    done
    echo "tokens $T" >> "$R/exact_digest.txt"
    echo "bench: exact digests done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
fi

# Wide dictionaries (issue 22): 640 -> 262144 and 640 -> 1048576 with thresholds
# calibrated for a mean L0 of 40 (tools/planted --calibrate-l0), 102,400 and 24,576
# tokens, and a 4-layer cross-layer
# transcoder (4 x 16384 latents, tools/bench/clt.py), 51,200 tokens; each against
# the ceiling of its encoder's own tile shape (bench_encode: a 262144-wide M = 8192
# output would be 8 GiB), over 4,096 rows, best of 2.
wide_one() { # DIR OUT TOKENS CEIL_ROWS LABEL GENERATOR...: made when missing, then ingested
    D=$1 out=$2 T=$3 rows=$4 label=$5
    shift 5
    if [ ! -f "$D/acts.npy" ]; then
        echo "bench: generating $label and $T tokens in $D" >&2
        "$@" >/dev/null
        sync "$D"/*.npy "$D"/dict/* 2>/dev/null || sync # written out before timing (above)
    fi
    CEIL_ROWS=$rows CEIL_REPS=2 ingest_at "$D" "$out" "$T"
    echo "bench: ingest of $label done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
}
if has wide; then
    D=$B/planted_640x262144_102400
    wide_one "$D" "$R/wide_262144.txt" 102400 4096 "640 -> 262144" "$BUILD/tools/planted" "$D" \
        --d-in 640 --d-sae 262144 --n-tokens 102400 --ctx 1024 --background 30 --calibrate-l0 40 --seed 7
    # 1M latents: 24,576 tokens (five minutes of sgemm on two cores)
    D=$B/planted_640x1048576_24576
    wide_one "$D" "$R/wide_1048576.txt" 24576 2048 "640 -> 1048576" "$BUILD/tools/planted" "$D" \
        --d-in 640 --d-sae 1048576 --n-tokens 24576 --ctx 1024 --background 30 --calibrate-l0 40 --seed 7
    D=$B/clt_4x640x16384_51200
    wide_one "$D" "$R/clt_65536.txt" 51200 4096 "a 4-layer CLT" $PY tools/bench/clt.py "$D" \
        --layers 4 --d-in 640 --d-sae 16384 --tokens 51200 --l0 40
fi

# Storage at width: 10M tokens of planted codes at 262,144 latents (L0 ~41 and BOS
# rows), imported; both indexes against the entropy floor of the codes (floor.py,
# from the .npz with numpy), the whole folder against the indexes after the import
# and after `compact`; queries on it (bench_query, no peers).
store_sizes() { # DB OUT PREFIX: the folder's bytes and each table's, "key value"
    echo "${3}folder_bytes $(du -sb "$1" | cut -f1)" >> "$2"
    mdb_stat -a -e -f "$1" | awk -v p="$3" '/^Freelist Status/ { n = "" } /^Status of/ { n = $3 }
        n != "" && /Branch pages|Leaf pages|Overflow pages/ { s[n] += $3 }
        /Free pages/ { print p "free_pages " $3 } END { for (k in s) if (k != "Main") print p "pages_" k " " s[k] }' >> "$2"
}
import_timed() { # DIR OUT: DIR/db made anew from DIR's dict, tokens and codes; import_s >> OUT
    rm -rf "$1/db"
    $L init "$1/db" --skip-tokens 0,1,2 >/dev/null
    $L dict add "$1/db" r "$1/dict" >/dev/null
    t0=$(now)
    $L import "$1/db" --dict r --tokens "$1/tokens.npy" --codes "$1/codes.npz" >/dev/null
    echo "import_s $(awk "BEGIN { print $(now) - $t0 }")" >> "$2"
}
store_compact() { # DB OUT: index bytes; the folder and its tables as written, then compacted
    $L info "$1" --json | $PY -c 'import json, sys; print("index_bytes %d" % json.load(sys.stdin)["dicts"][0]["index_bytes"])' >> "$2"
    store_sizes "$1" "$2" import_
    t0=$(now)
    $L compact "$1" >/dev/null
    echo "compact_s $(awk "BEGIN { print $(now) - $t0 }")" >> "$2"
    store_sizes "$1" "$2" compact_
}
if has store; then
    D=$B/codes_262144_10485760
    out=$R/store_262144.txt
    if [ ! -f "$D/codes.npz" ]; then
        echo "bench: generating 10M tokens of planted codes at 262,144 latents in $D" >&2
        "$BUILD/tools/planted" "$D" --codes --d-in 640 --d-sae 262144 --n-tokens 10485760 \
            --ctx 1024 --background 40 --seed 5 >/dev/null
        sync "$D"/*.npy "$D"/*.npz 2>/dev/null || sync
    fi
    $PY tools/bench/floor.py "$D/codes.npz" > "$out"
    DB=$D/db
    import_timed "$D" "$out"
    store_compact "$DB" "$out"
    "$BUILD/tools/bench_query" "$DB" r "$D/tokens.npy" --cli "$L" > "$R/query_262144.raw"
    sed 's/^/q_/' "$R/query_262144.raw" >> "$out"
    echo "bench: storage at 262,144 latents done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
fi

# Queries: DBs of 1M, 3M and 10M tokens imported from planted codes (L0 ~45 with
# BOS rows), in-process latency beside a SQLite row store (1M) and numpy on a CSC
# copy (1M); `top` as a CLI process.
if has query; then
    first=1
    for T in $QUERY_SIZES; do
        D=$B/codes_16384_$T
        if [ ! -f "$D/codes.npz" ]; then
            echo "bench: generating $T tokens of planted codes in $D" >&2
            g0=$(now)
            "$BUILD/tools/planted" "$D" --codes --d-in 640 --d-sae 16384 --n-tokens "$T" \
                --ctx 1024 --background 40 --seed 5 >/dev/null
            echo "bench: generated in $(awk "BEGIN { printf \"%.1f\", $(now) - $g0 }") s" >&2
            sync "$D"/*.npy "$D"/*.npz 2>/dev/null || sync # written out before timing (above)
        fi
        DB=$D/db
        out=$R/query_$T.txt
        : > "$out"
        import_timed "$D" "$out"
        extra=""
        [ $first = 1 ] && extra="--sqlite $D/peer2.sqlite --codes $D/codes.npz" # 2: with the tokens table
        # shellcheck disable=SC2086
        "$BUILD/tools/bench_query" "$DB" r "$D/tokens.npy" --cli "$L" $extra >> "$out"
        if [ $first = 1 ] && has numpy; then
            lat=$(sed -n 's/^query_latents //p' "$out")
            co=$(sed -n 's/^cooc_latent //p' "$out")
            peer --codes "$D/codes.npz" --latents "$lat" --cooc "$co" \
                > "$R/numpy_query.txt"
        fi
        first=0
        if [ "$T" = "$(echo $QUERY_SIZES | awk '{ print $NF }')" ]; then
            # storage of the largest against its floor, before and after compact (16,384 latents)
            $PY tools/bench/floor.py "$D/codes.npz" | sed 's/^nnz/floor_nnz/' >> "$out"
            store_compact "$DB" "$out"
        fi
        echo "bench: queries at $T tokens done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
    done
fi

# Text: the tokenizer, and search over the planted Brown DB.
if has text; then
    sh tools/bench/text.sh "$BUILD" > "$R/text.raw"
    cat "$R/text.raw" >&2
fi

# The Python package (tools/bench/python_bench.py) beside the C calls and the CLI: per
# call overhead of db.top, db.activations and db.codes on the 10M-token query DB, and
# the streaming writer against `latentdb ingest` of the 204,800-token planted corpus.
if has python; then
    QD=$B/codes_16384_$(echo $QUERY_SIZES | awk '{ print $NF }')/db
    ID=$B/planted_640x16384_$(echo $INGEST_SIZES | cut -d' ' -f1)
    if [ -f "$QD/data.mdb" ] && [ -f "$ID/acts.npy" ]; then
        mkdir -p "$B/python"
        LATENTDB_LIB=$BUILD/lib/liblatentdb.so PYTHONPATH=python $PY tools/bench/python_bench.py \
            "$QD" r "$ID" "$L" "$B/python" > "$R/python.txt"
        echo "bench: python done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
    else
        echo "bench: python needs the query and ingest stages' data first" >&2
    fi
fi

# latentdb serve and the page's queries (tools/bench/web.sh): cooc's scopes on make demo's
# 1.5M-token DB and the 10M-token query DB, and 50 clients against the server.
if has web; then
    QD=$B/codes_16384_$(echo $QUERY_SIZES | awk '{ print $NF }')/db
    sh tools/bench/web.sh "$BUILD" "$QD" "$R/web.txt"
    echo "bench: web done ($(awk "BEGIN { printf \"%.0f\", $(now) - $T_START }") s in)" >&2
fi

echo "bench_s $(awk "BEGIN { print $(now) - $T_START }")" >> "$R/machine.txt"
if [ -z "$BENCH" ]; then # only a whole run rewrites BENCHMARKS.md
    $PY tools/bench/report.py "$R" docs/BENCHMARKS.md docs/bench
else
    $PY tools/bench/report.py "$R"
fi
