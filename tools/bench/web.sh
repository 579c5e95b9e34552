#!/bin/sh
# The "web" stage of make bench (tools/bench/run.sh): the page's queries and the
# server under load (tools/bench/web_bench.py) on make demo's 1.5M-token DB, built
# here when it is missing (tools/demo.sh full: ~4 GB of activations under data/), and
# the queries again on the 10M-token query DB.
# usage: tools/bench/web.sh BUILD QUERY_DB OUT
BUILD=$1
QD=$2
OUT=$3
DATA=${DATA:-data}
if [ ! -f "$DATA/demo-full/db/data.mdb" ]; then
    echo "bench: web: making the demo's 1.5M-token DB (tools/demo.sh full)" >&2
    LATENTDB=bin/latentdb sh tools/demo.sh "$BUILD" full > "$BUILD/bench/demo-full.log" 2>&1 || {
        echo "bench: web: tools/demo.sh full failed (see $BUILD/bench/demo-full.log)" >&2
        exit 1
    }
fi
/usr/bin/python3 tools/bench/web_bench.py bin/latentdb "$DATA/demo-full/db" res "$QD" r > "$OUT"
