#!/usr/bin/python3
"""The numpy/scipy peer: what a researcher writes today instead of latentdb.

Encode: x @ W_enc + b_enc, JumpReLU threshold, scipy.sparse.csr_matrix per chunk of
4096 rows, one save_npz(compressed=True) at the end. Queries on a CSC copy loaded
from that file: top-20 of a column, density of every latent from the column
counts, token-scope co-occurrence by selecting the rows where a latent fires.

usage: numpy_peer.py DICT_DIR ACTS.npy OUT_DIR [--max-tokens N]   (encode)
       numpy_peer.py --codes CODES.npz [--latents L1,L2,...] [--cooc L]   (queries)
Prints "key value" lines (times in ms, throughput in tokens/s), as bench_query does.
"""
import json
import os
import struct
import sys
import time

import numpy as np
import scipy.sparse as sp


def load_safetensors(path, names):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name in names:
        for key, t in header.items():
            if key.lower() == name:
                a, b = t["data_offsets"]
                assert t["dtype"] == "F32", (key, t["dtype"])
                out[name] = np.frombuffer(mm[base + a:base + b], dtype=np.float32).reshape(t["shape"])
    return out


def pct(v, p):
    v = sorted(v)
    return v[int(round(p * (len(v) - 1)))]


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    if args[0] == "--codes":
        return queries(args[1], args[2:])
    dict_dir, acts_path, out_dir = args[:3]
    max_tokens = 0
    i = 3
    while i + 1 < len(args):
        if args[i] == "--max-tokens":
            max_tokens = int(args[i + 1])
        else:
            sys.exit("numpy_peer: unknown option " + args[i])
        i += 2
    p = load_safetensors(os.path.join(dict_dir, "params.safetensors"), ["w_enc", "b_enc", "threshold"])
    W, b, thr = p["w_enc"], p["b_enc"], p["threshold"]
    x = np.load(acts_path, mmap_mode="r")
    x = x.reshape(-1, x.shape[-1])
    n = min(len(x), max_tokens) if max_tokens else len(x)
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "codes.npz")

    t0 = time.perf_counter()
    chunks = []
    for a in range(0, n, 4096):
        z = np.asarray(x[a:min(a + 4096, n)], dtype=np.float32) @ W + b
        z *= z > thr
        chunks.append(sp.csr_matrix(z))
    m = sp.vstack(chunks, format="csr")
    sp.save_npz(out, m, compressed=True)
    t1 = time.perf_counter()
    print("numpy_tokens %d" % n)
    print("numpy_encode_tps %.1f" % (n / (t1 - t0)))
    print("numpy_nnz %d" % m.nnz)
    print("numpy_bytes_per_nnz %.3f" % (os.path.getsize(out) / max(m.nnz, 1)))


def queries(path, args):
    latents, cooc = [], None
    i = 0
    while i + 1 < len(args):
        if args[i] == "--latents":
            latents = [int(x) for x in args[i + 1].split(",") if x]
        elif args[i] == "--cooc":
            cooc = int(args[i + 1])
        else:
            sys.exit("numpy_peer: unknown option " + args[i])
        i += 2
    out = path
    t0 = time.perf_counter()
    csc = sp.load_npz(out).tocsc()
    n = csc.shape[0]
    t1 = time.perf_counter()
    print("numpy_load_ms %.1f" % (1e3 * (t1 - t0)))
    tops = []
    for rep in range(2):
        for j in latents:
            a = time.perf_counter()
            col = csc.data[csc.indptr[j]:csc.indptr[j + 1]]
            rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
            k = min(20, len(col))
            if k:
                best = np.argpartition(-col, k - 1)[:k] if len(col) > k else np.arange(len(col))
                best = best[np.argsort(-col[best], kind="stable")]
                _ = list(zip(rows[best].tolist(), col[best].tolist()))
            if rep:
                tops.append(1e3 * (time.perf_counter() - a))
    if tops:
        print("numpy_top_p50_ms %.4f" % pct(tops, 0.5))
        print("numpy_top_p99_ms %.4f" % pct(tops, 0.99))
    ds = []
    for rep in range(5):
        a = time.perf_counter()
        counts = np.diff(csc.indptr)
        dens = counts / n
        live = dens[dens > 0]
        np.histogram(np.log10(live), bins=20)
        ds.append(1e3 * (time.perf_counter() - a))
    print("numpy_density_ms %.3f" % pct(ds, 0.5))
    if cooc is not None:
        a = time.perf_counter()
        csr = csc.tocsr()
        t_conv = time.perf_counter() - a
        a = time.perf_counter()
        rows = csc.indices[csc.indptr[cooc]:csc.indptr[cooc + 1]]
        sub = csr[rows]
        both = np.bincount(sub.indices, minlength=csc.shape[1])
        col = np.diff(csc.indptr)
        jac = both / np.maximum(len(rows) + col - both, 1)
        np.argsort(-jac)[:20]
        print("numpy_cooc_ms %.3f" % (1e3 * (time.perf_counter() - a)))
        print("numpy_tocsr_ms %.1f" % (1e3 * t_conv))


if __name__ == "__main__":
    main()
