#!/usr/bin/python3
"""realistic.py - gives a planted fixture the norms of real residual streams, for the exact
encoder's bench (issue 23): BOS rows 50-100x the median norm of the ordinary rows, and K
outlier dimensions ("massive activations") 10-50x the ordinary rows' per-dimension scale in
every row (a fixed value per dimension, +-10% per row). A trained SAE's encoder bias absorbs
such a constant part, so the dictionary's b_enc is lowered by the mean outlier vector's
projection on each encoder column: the ordinary rows' pre-activations keep their calibrated
thresholds but for the +-10% part, while their norms (and so the screen's bound) grow.

usage: realistic.py PLANTED_DIR OUT_DIR [--outliers 4] [--seed 1]
writes OUT_DIR/{acts.npy, tokens.npy, dict/config.json, dict/params.safetensors}
(numpy only; the safetensors header is kept, b_enc's bytes replaced in place)."""
import json
import os
import shutil
import struct
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    src, out = args[0], args[1]
    k = int(args[args.index("--outliers") + 1]) if "--outliers" in args else 4
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "dict"), exist_ok=True)
    tokens = np.load(os.path.join(src, "tokens.npy"))
    a = np.load(os.path.join(src, "acts.npy"), mmap_mode="r")
    n, d_in = a.shape
    bos = (tokens.reshape(-1) == tokens.reshape(-1)[0])[:n]  # row 0 of each sequence is BOS
    sample = np.asarray(a[~bos][: 1 << 16], dtype=np.float32)
    med_norm = float(np.median(np.linalg.norm(sample, axis=1)))
    per_dim = med_norm / np.sqrt(d_in)
    dims = rng.choice(d_in, size=k, replace=False)
    mags = rng.uniform(10, 50, size=k) * per_dim * rng.choice([-1.0, 1.0], size=k)
    x = np.lib.format.open_memmap(os.path.join(out, "acts.npy"), mode="w+", dtype="<f4",
                                  shape=(n, d_in))
    step = 1 << 16
    for r0 in range(0, n, step):
        blk = np.array(a[r0:r0 + step], dtype=np.float32)
        b = bos[r0:r0 + step]
        if b.any():  # a random direction, 50-100x the median norm
            g = rng.standard_normal((int(b.sum()), d_in)).astype(np.float32)
            g *= (rng.uniform(50, 100, size=(len(g), 1)) * med_norm /
                  np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)
            blk[b] = g
        ordinary = ~b
        jitter = rng.uniform(0.9, 1.1, size=(int(ordinary.sum()), k))
        blk[np.ix_(ordinary, dims)] += (mags * jitter).astype(np.float32)
        x[r0:r0 + step] = blk
    x.flush()
    shutil.copy(os.path.join(src, "tokens.npy"), os.path.join(out, "tokens.npy"))
    shutil.copy(os.path.join(src, "dict", "config.json"), os.path.join(out, "dict", "config.json"))
    raw = bytearray(open(os.path.join(src, "dict", "params.safetensors"), "rb").read())
    hlen = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen

    def tensor(name):
        t = header[name]
        lo, hi = t["data_offsets"]
        return np.frombuffer(raw, dtype="<f4", count=(hi - lo) // 4, offset=base + lo), lo

    w, _ = tensor("w_enc")
    w = w.reshape(d_in, -1)
    b_enc, lo = tensor("b_enc")
    shift = (mags.astype(np.float64)[:, None] * w[dims].astype(np.float64)).sum(axis=0)
    nb = (b_enc.astype(np.float64) - shift).astype("<f4")
    raw[base + lo:base + lo + nb.nbytes] = nb.tobytes()
    open(os.path.join(out, "dict", "params.safetensors"), "wb").write(raw)
    print(json.dumps({"rows": int(n), "d_in": int(d_in), "median_norm": med_norm,
                      "outlier_dims": [int(i) for i in dims],
                      "outlier_values": [float(v) for v in mags], "bos_rows": int(bos.sum())}))


if __name__ == "__main__":
    main()
