#!/bin/sh
# The demo as a test: `tools/demo.sh BUILD small` (40 Brown documents, planted
# activations, ingest, tour) must run end to end and recover >= 95% of the planted
# token, bigram and class latents by searching for their text.
# usage: tests/demo.sh BUILD
BUILD=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/demo.sh
. tests/expect.sh
LATENTDB=$BUILD/bin/latentdb sh tools/demo.sh "$BUILD" small > "$T/demo.txt" 2>&1
st=$?
[ "$st" -eq 0 ] && ok || bad "tools/demo.sh exited $st: $(tail -c 600 "$T/demo.txt")"
line=$(grep '^recovered ' "$T/demo.txt")
echo "$line"
rate=$(echo "$line" | sed -n 's/.*(\([0-9.]*\)%).*/\1/p')
if [ -n "$rate" ] && awk "BEGIN { exit !($rate >= 95) }"; then ok; else bad "recovery rate '$rate' < 95%"; fi
for want in '^\$ latentdb init .* --tokenizer' '^\$ latentdb search .* " of the"' '\[\[the\]\]' \
            'token  latents: [0-9]+ of [0-9]+' 'class  latents: [0-9]+ of [0-9]+' \
            '^#   .*latentdb serve .*/db$' 'http://127\.0\.0\.1:8080/latent/res/[0-9]+ '; do
    grep -qE -- "$want" "$T/demo.txt" && ok || bad "the demo's output lacks /$want/"
done
echo "test_demo: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
