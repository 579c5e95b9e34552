#!/bin/sh
# Builds the format-6 golden database from the inputs of tests/golden/db3 (gen.py)
# with the latentdb at $1 into the folder $2 (which must not exist): db3's commands
# with --format 6. db/ was written so on 2026-12-08, when format 6 was made (the
# co-occurrence tables lwin and lseq); tests/golden.sh builds it again and compares
# every record that does not hold a path or a time, and its answers with db3's.
FORMAT=6 exec sh "$(dirname "$0")/../db3/build.sh" "$@"
