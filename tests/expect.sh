# expect.sh — the shell tests' harness, sourced by tests/cli.sh and tests/text.sh
# (which set NAME and T, a scratch folder): ok, bad and
#   expect STATUS PATTERN CMD...   (exit status, and a grep -E pattern on stdout+stderr)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "$NAME: FAIL: $*" >&2; }
expect() {
    want=$1 pat=$2
    shift 2
    "$@" > "$T/out" 2>&1
    st=$?
    if [ "$st" -ne "$want" ]; then
        bad "$* exited $st, expected $want: $(head -c 400 "$T/out")"
    elif ! grep -qE -- "$pat" "$T/out"; then
        bad "$* output lacks /$pat/: $(head -c 400 "$T/out")"
    else
        ok
    fi
}
