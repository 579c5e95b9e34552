#!/usr/bin/env python3
"""floor.py CODES.npz: the entropy floor of latentdb's two indexes for these codes,
read with numpy from the scipy CSR file itself (independent of latentdb), by the
estimate of issue 22: a latent's positions at density d cost about log2(1/d) + 1.4
bits each (the entropy of geometric gaps), a position's ids about log2(d_sae / L0) +
1.4 bits each with L0 that position's count, and a value about one byte.
Prints "key value" lines: floor_positions_bits, floor_ids_bits (per code),
floor_bits_per_code, floor_bytes, nnz."""
import sys
import zipfile

import numpy as np


def member(z, name):
    with z.open(name + ".npy") as f:
        return np.lib.format.read_array(f)


def main():
    z = zipfile.ZipFile(sys.argv[1])
    shape = member(z, "shape")
    indptr = member(z, "indptr").astype(np.int64)
    n_pos, d_sae = int(shape[0]), int(shape[1])
    nnz = int(indptr[-1])
    # ids: per position, its count c costs c * (log2(d_sae / c) + 1.4)
    row = np.diff(indptr).astype(np.float64)
    r = row[row > 0]
    ids = float(np.sum(r * (np.log2(d_sae / r) + 1.4)))
    # positions: per latent, its count c over n_pos positions costs c * (log2(n_pos / c) + 1.4)
    col = np.zeros(d_sae, dtype=np.int64)
    step = 1 << 26
    with z.open("indices.npy") as f:
        version = np.lib.format.read_magic(f)
        shp, _, dtype = np.lib.format._read_array_header(f, version)
        left = shp[0]
        while left:
            k = min(step, left)
            a = np.frombuffer(f.read(k * dtype.itemsize), dtype=dtype)
            col += np.bincount(a, minlength=d_sae)
            left -= k
    c = col[col > 0].astype(np.float64)
    pos = float(np.sum(c * (np.log2(n_pos / c) + 1.4)))
    bits = pos + ids + 8.0 * nnz
    print("nnz %d" % nnz)
    print("floor_positions_bits %.3f" % (pos / nnz))
    print("floor_ids_bits %.3f" % (ids / nnz))
    print("floor_values_bits 8")
    print("floor_bits_per_code %.3f" % (bits / nnz))
    print("floor_bytes %.0f" % (bits / 8))


if __name__ == "__main__":
    main()
