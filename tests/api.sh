#!/bin/sh
# The seams of issue 21, checked on the built tree: the shared library exports
# exactly the functions latentdb.h declares; the CLI includes nothing but
# latentdb.h (and its own cli.h) and links the shared library; no file outside db/
# touches LMDB or db/'s private header. usage: tests/api.sh BUILD
BUILD=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
NAME=tests/api.sh
. tests/expect.sh

SO=$BUILD/lib/liblatentdb.so
# functions declared in the header (comments stripped), and those the .so defines
/usr/bin/python3 - include/latentdb.h > "$T/declared" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'/\*.*?\*/', '', s, flags=re.S)
s = re.sub(r'^\s*#.*$', '', s, flags=re.M)
names = set(re.findall(r'\b(ldb_[a-z0-9_]+)\s*\(', s))
# typedef'd function pointer types are not functions
names -= set(re.findall(r'\(\s*\*\s*(ldb_[a-z0-9_]+)\s*\)', s))
print('\n'.join(sorted(names)))
PY
nm -D --defined-only "$SO" | awk '$2 == "T" || $2 == "W" {print $3}' | sort > "$T/exported"
if [ -s "$T/declared" ] && cmp -s "$T/declared" "$T/exported"; then ok; else
    bad "exports of $SO differ from latentdb.h: $(diff "$T/declared" "$T/exported" | grep '^[<>]' | head -8 | tr '\n' ' ')"
fi
# nothing else of any kind (data, BSS) is exported either
other=$(nm -D --defined-only "$SO" | awk '$2 != "T" && $2 != "W" {print $3}' | grep -v '^_' | head -5)
[ -z "$other" ] && ok || bad "$SO exports non-function symbols: $other"

# the CLI: latentdb.h, its own cli.h and answers.h, and system headers only; linked to
# the shared library
inc=$(grep -h '^#include "' tools/cli/*.c tools/cli/*.h | grep -v '"cli.h"\|"answers.h"\|"latentdb.h"')
[ -z "$inc" ] && ok || bad "tools/cli includes internals: $inc"
ldd "$BUILD/bin/latentdb" | grep -q 'liblatentdb.so => .*/lib/liblatentdb.so' && ok ||
    bad "$BUILD/bin/latentdb does not load liblatentdb.so: $(ldd "$BUILD/bin/latentdb" | head -3)"

# the store owns its tables
mdb=$(grep -lE '(^|[^a-z_])(mdb|MDB)_|<lmdb.h>|db_impl.h' common/*.[ch] text/*.[ch] sae/*.[ch] ingest/*.[ch] query/*.[ch] tools/*.c tools/cli/*.[ch] 2>/dev/null | tr '\n' ' ')
[ -z "$mdb" ] && ok || bad "LMDB or db_impl.h outside db/: $mdb"
echo "api: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
