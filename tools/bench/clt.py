#!/usr/bin/python3
"""A cross-layer transcoder for `make bench` (issue 22), written with numpy.

usage: clt.py OUTDIR [--layers 4] [--d-in 640] [--d-sae 16384] [--tokens 51200] [--l0 40]

Writes OUTDIR/dict (Gemma Scope 2's layout: config.json + params_layer_{i}.safetensors,
f32 encoder, bf16 decoder [d_sae, layers, d_in]), OUTDIR/acts.npy [tokens, layers, d_in]
float32 and OUTDIR/tokens.npy [tokens / 1024, 1024] int32. Inputs are Gaussian, so each
pre-activation is Gaussian with a known spread, and each latent's threshold is set for a
Zipf share of the tokens; the shares of all layers add up to --l0 (the mean L0).
"""
import json
import math
import os
import struct
import sys

import numpy as np


def st_write(path, tensors):
    """safetensors: a JSON header (u64 LE length) and the tensors' bytes back to back."""
    header, blobs, off = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def bf16_bytes(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def upper_z(p):
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    out, opt = args[0], {"--layers": 4, "--d-in": 640, "--d-sae": 16384, "--tokens": 51200, "--l0": 40}
    for i in range(1, len(args), 2):
        if args[i] not in opt or i + 1 >= len(args):
            sys.exit(__doc__)
        opt[args[i]] = type(opt[args[i]])(args[i + 1])
    L, din, dsae, n, l0 = opt["--layers"], opt["--d-in"], opt["--d-sae"], opt["--tokens"], opt["--l0"]
    n = (n + 1023) // 1024 * 1024
    rng = np.random.default_rng(11)
    os.makedirs(os.path.join(out, "dict"), exist_ok=True)
    w = 1.0 / (np.arange(L * dsae) + 40.0) ** 1.1   # Zipf shares over all latents
    share = rng.permutation(w / w.sum() * l0)
    for l in range(L):
        W_enc = (rng.standard_normal((din, dsae)) / math.sqrt(din)).astype(np.float32)
        b_enc = np.zeros(dsae, np.float32)
        sd = np.linalg.norm(W_enc, axis=0)               # x ~ N(0, I): pre_j ~ N(0, |w_j|^2)
        thr = np.array([sd[j] * upper_z(share[l * dsae + j]) for j in range(dsae)], np.float32)
        W_dec = (rng.standard_normal((dsae, L, din)) / math.sqrt(din)).astype(np.float32)
        W_dec[:, :l, :] = 0
        b_dec = np.zeros(din, np.float32)
        st_write(os.path.join(out, "dict", "params_layer_%d.safetensors" % l), [
            ("w_enc", "F32", W_enc.shape, W_enc.tobytes()), ("b_enc", "F32", b_enc.shape, b_enc.tobytes()),
            ("threshold", "F32", thr.shape, thr.tobytes()), ("b_dec", "F32", b_dec.shape, b_dec.tobytes()),
            ("w_dec", "BF16", W_dec.shape, bf16_bytes(W_dec))])
    with open(os.path.join(out, "dict", "config.json"), "w") as f:
        json.dump({"architecture": "jump_relu", "type": "clt", "width": L * dsae, "l0": l0,
                   "affine_connection": False, "model_name": "bench",
                   "hf_hook_point_in": ["model.layers.%d.pre_feedforward_layernorm.output" % l for l in range(L)],
                   "hf_hook_point_out": ["model.layers.%d.post_feedforward_layernorm.output" % l for l in range(L)]},
                  f)
    acts = np.lib.format.open_memmap(os.path.join(out, "acts.npy"), mode="w+", dtype=np.float32,
                                     shape=(n, L, din))
    for i in range(0, n, 4096):
        acts[i:i + 4096] = rng.standard_normal((min(4096, n - i), L, din), dtype=np.float32)
    acts.flush()
    del acts
    np.save(os.path.join(out, "tokens.npy"), rng.integers(3, 32000, (n // 1024, 1024), dtype=np.int32))
    print("clt.py: %s: %d layers x %d -> %d, %d tokens, target L0 %g" % (out, L, din, dsae, n, l0))


if __name__ == "__main__":
    main()
