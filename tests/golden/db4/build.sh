#!/bin/sh
# Builds the format-4 golden database from the inputs of tests/golden/db3 (gen.py)
# with the latentdb at $1 into the folder $2 (which must not exist): db3's commands
# with --format 4. db/ was written so on 2026-12-07, when format 4 was made;
# tests/golden.sh builds it again and compares every record that does not hold a
# path or a time, and its answers with db3's (the same codes: the same answers).
FORMAT=4 exec sh "$(dirname "$0")/../db3/build.sh" "$@"
