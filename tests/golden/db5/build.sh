#!/bin/sh
# Builds the format-5 golden database from the inputs of tests/golden/db3 (gen.py)
# with the latentdb at $1 into the folder $2 (which must not exist): db3's commands
# with --format 5. db/ was written so on 2026-12-07, when format 5 was made;
# tests/golden.sh builds it again and compares every record that does not hold a
# path or a time, and its answers with db4's (the same codes: the same answers).
FORMAT=5 exec sh "$(dirname "$0")/../db3/build.sh" "$@"
