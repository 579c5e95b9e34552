#!/bin/sh
# run.sh — runs the libFuzzer targets built by tests/fuzz/fuzz.mk (called by `make fuzz`).
#   run.sh NAME:MAXLEN...        each target for $FUZZ_SECONDS s on $FUZZ_BUILD/corpus/NAME,
#                                a copy of tests/fuzz/corpus/NAME (new entries stay there)
#   run.sh --regress NAME...     each target once over tests/fuzz/regress/NAME-*
# Prints one line per target; exits 1 when any target failed (crash, leak, timeout, OOM,
# or UBSan report: UBSan halts on the first error unless UBSAN_OPTIONS says otherwise).
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-60}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$B/logs"
failed=""

if [ "${1:-}" = "--regress" ]; then
    shift
    for name in "$@"; do
        set -- tests/fuzz/regress/"$name"-*
        [ -e "$1" ] || { printf '%-12s no regression inputs\n' "$name"; continue; }
        log="$B/logs/$name-regress.log"
        if "$B/fuzz_$name" -rss_limit_mb=2048 -timeout=10 "$@" >"$log" 2>&1; then
            printf '%-12s %d regression inputs pass\n' "$name" "$#"
        else
            printf '%-12s FAILED on its regression inputs (see %s)\n' "$name" "$log"
            failed="$failed $name"
        fi
    done
    [ -z "$failed" ] || { echo "fuzz-regress: failed:$failed"; exit 1; }
    exit 0
fi

for arg in "$@"; do
    name=${arg%%:*}
    maxlen=${arg#*:}
    corpus="$B/corpus/$name"
    art="$B/artifacts/$name/"
    log="$B/logs/$name.log"
    mkdir -p "$corpus" "$art"
    cp tests/fuzz/corpus/"$name"/* "$corpus"/
    "$B/fuzz_$name" -max_total_time="$SECS" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$art" -print_final_stats=1 "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        printf '%-12s ok      %10s execs in %ss, %s, corpus %s files\n' "$name" "${execs:-?}" "$SECS" \
            "${cov:-cov: ?}" "$(ls "$corpus" | wc -l)"
    else
        what=$(grep -m1 -o 'ERROR: [A-Za-z]*Sanitizer: [a-z-]*\|ERROR: libFuzzer: [a-z-]*\|runtime error: .*\|out-of-memory\|timeout' "$log" | head -n 1)
        printf '%-12s FAILED  %10s execs: %s; artifacts in %s, log %s\n' "$name" "${execs:-?}" \
            "${what:-exit $rc}" "$art" "$log"
        failed="$failed $name"
    fi
done
[ -z "$failed" ] || { echo "fuzz: failed:$failed"; exit 1; }
exit 0
