"""The Python package's speed beside the C library and the CLI (make bench, stage
"python"): prints `key value` lines for report.py.

  per-call overhead of db.top(dict, latent, k=20) over the same C calls made
      directly (ldb_query_top and ldb_query_latent through ctypes, freed at once),
      median of many calls on warm data, reading every example's seq/pos/value and
      context arrays;
  db.activations of the latent whose count is closest to 100k;
  db.codes of 1,048,576 positions (scipy CSR);
  w.add of a corpus against `latentdb ingest` of the same arrays (tokens/s each).

usage: python_bench.py QUERY_DB DICT INGEST_DIR CLI SCRATCH
"""
import ctypes as C
import os
import shutil
import subprocess
import sys
import time

import numpy as np

import latentdb
from latentdb import _ffi


def median_us(f, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e6


def main():
    qdb, dict_, ingest_dir, cli, scratch = sys.argv[1:6]
    db = latentdb.open(qdb)
    counts = db.density(dict_).counts
    lat_top = int(np.argsort(counts)[len(counts) // 2])  # a typical latent
    o = _ffi.TopOpts()
    _ffi.lib.ldb_top_opts_init(C.byref(o))
    name = dict_.encode()

    def c_calls():
        p = C.POINTER(_ffi.Examples)()
        li = C.POINTER(_ffi.LatentInfo)()
        assert _ffi.lib.ldb_query_top(db._h, name, lat_top, C.byref(o), C.byref(p)) == 0
        assert _ffi.lib.ldb_query_latent(db._h, name, lat_top, 1, C.byref(li)) == 0
        _ffi.lib.ldb_examples_free(p)
        _ffi.lib.ldb_latent_info_free(li)

    def py_call():
        r = db.top(dict_, lat_top, k=20)
        for e in r:
            e.seq, e.pos, e.value, e.context.tokens, e.context.values

    for _ in range(50):
        c_calls()
        py_call()
    c_us = min(median_us(c_calls, 400) for _ in range(3))
    py_us = min(median_us(py_call, 400) for _ in range(3))
    print(f"top_c_us {c_us:.1f}")
    print(f"top_py_us {py_us:.1f}")
    print(f"top_overhead_us {py_us - c_us:.1f}")

    lat_act = int(np.argmin(np.abs(counts.astype(np.int64) - 100000)))
    db.activations(dict_, lat_act)
    t = min(median_us(lambda: db.activations(dict_, lat_act), 5) for _ in range(2))
    print(f"activations_latent {lat_act}")
    print(f"activations_codes {len(db.activations(dict_, lat_act, include_special=False))}")
    print(f"activations_ms {t / 1000:.1f}")

    ctx = int(db.tokens(0).shape[0])
    nseq = (1 << 20) // ctx
    t0 = time.perf_counter()
    m = db.codes(dict_, range(0, nseq))
    t1 = time.perf_counter()
    print(f"codes_positions {m.shape[0]}")
    print(f"codes_nnz {m.nnz}")
    print(f"codes_s {t1 - t0:.3f}")
    db.close()

    # the writer against the CLI ingest of the same arrays
    toks = np.load(os.path.join(ingest_dir, "tokens.npy"))
    acts = np.load(os.path.join(ingest_dir, "acts.npy"), mmap_mode="r")
    n_tok = toks.size
    cli_db = os.path.join(scratch, "cli_db")
    py_db = os.path.join(scratch, "py_db")
    res = {}
    for kind in ("cli", "py", "cli2", "py2"):
        path = cli_db if kind.startswith("cli") else py_db
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([cli, "init", path, "--skip-tokens", "0,1,2"], check=True,
                       capture_output=True)
        subprocess.run([cli, "dict", "add", path, "r", os.path.join(ingest_dir, "dict")],
                       check=True, capture_output=True)
        t0 = time.perf_counter()
        if kind.startswith("cli"):
            subprocess.run([cli, "ingest", path, "--dict", "r", "--tokens",
                            os.path.join(ingest_dir, "tokens.npy"), "--acts",
                            os.path.join(ingest_dir, "acts.npy"), "--source", "s"], check=True,
                           capture_output=True)
        else:
            a3 = acts.reshape(toks.shape[0], toks.shape[1], -1)
            with latentdb.open(path, write=True) as d, d.writer("r", source="s") as w:
                rows = max(1, 65536 // toks.shape[1])
                for i in range(0, toks.shape[0], rows):
                    w.add(toks[i:i + rows], a3[i:i + rows])
        res[kind] = n_tok / (time.perf_counter() - t0)
    cli_tps = max(res["cli"], res["cli2"])
    py_tps = max(res["py"], res["py2"])
    print(f"writer_tokens {n_tok}")
    print(f"writer_cli_tps {cli_tps:.0f}")
    print(f"writer_py_tps {py_tps:.0f}")
    print(f"writer_ratio {py_tps / cli_tps:.3f}")
    d1 = subprocess.run([cli, "check", cli_db, "--digest"], capture_output=True, text=True).stdout
    d2 = subprocess.run([cli, "check", py_db, "--digest"], capture_output=True, text=True).stdout
    print(f"writer_same_digest {int(d1 == d2 and bool(d1))}")
    shutil.rmtree(cli_db, ignore_errors=True)
    shutil.rmtree(py_db, ignore_errors=True)


if __name__ == "__main__":
    main()
