"""activations, codes and tokens against a numpy recomputation from the demo's own
inputs (data/demo-small: tokens.npy, acts.npy and the jumprelu dictionary), and against
each other."""
import json
import os
import struct

import numpy as np
import pytest

import latentdb
from conftest import DEMO


def safetensors(path):
    """The tensors of a .safetensors file, read with numpy alone."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).reshape(v["shape"])
    return out


@pytest.fixture(scope="module")
def ref(demo_db):
    w = safetensors(os.path.join(DEMO, "dict", "params.safetensors"))
    acts = np.load(os.path.join(DEMO, "acts.npy"), mmap_mode="r")
    toks = np.load(os.path.join(DEMO, "tokens.npy"))
    with latentdb.open(demo_db) as db:
        skip = db.info()["skip_tokens"]
        yield db, w, acts, toks, skip


def bf16(x):
    """x rounded to bfloat16 (to nearest even), as the database stores values."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16
    return b.astype(np.uint32).view(np.float32)


def reference(x, w, cols):
    """Pre-activations of columns cols in f32 with each one's error bound (the f32
    sums of the library's reference and of numpy's GEMM differ by less than it)."""
    W = w["w_enc"][:, cols].astype(np.float32)
    pre = x.astype(np.float32) @ W + w["b_enc"][cols]
    bound = 3 * x.shape[1] * 2.0 ** -24 * (np.abs(x) @ np.abs(W) + np.abs(w["b_enc"][cols])) \
        + 1e-30
    return pre, bound


def check_codes(got, pre, bound, thr):
    """got: dense stored codes; every clear decision and every value within its bound
    plus bf16 rounding must agree. Returns the number of clear firing codes."""
    fires = pre > thr + bound
    silent = pre < thr - bound
    assert not (got[silent] != 0).any(), "a code where the reference is clearly silent"
    assert (got[fires] != 0).all(), "no code where the reference clearly fires"
    lo, hi = bf16(pre[fires] - bound[fires]), bf16(pre[fires] + bound[fires])
    assert ((got[fires] >= lo) & (got[fires] <= hi)).all(), "a value off its reference"
    return int(fires.sum())


@pytest.mark.parametrize("latent", [9962, 77, 0])
def test_activations(ref, latent):
    db, w, acts, toks, skip = ref
    a = db.activations("res", latent)
    seq, pos, value = a
    assert seq.dtype == np.uint64 and pos.dtype == np.uint32 and value.dtype == np.float32
    assert len(a) == db.latent("res", latent).count == db.density("res").counts[latent]
    order = seq.astype(np.int64) * toks.shape[1] + pos
    assert (np.diff(order) > 0).all(), "not in corpus order"
    ordinary = ~np.isin(toks.reshape(-1), skip)
    pre, bound = reference(np.asarray(acts), w, [latent])
    dense = np.zeros(toks.size, np.float32)
    dense[order] = value
    n = check_codes(dense[ordinary], pre[ordinary, 0], bound[ordinary, 0], w["threshold"][latent])
    assert n > 0 or latent == 0
    assert not np.isin(toks.reshape(-1)[order], skip).any(), "a code at a skipped position"
    s2, p2, v2 = db.activations("res", latent, include_special=True)
    assert len(s2) >= len(seq)


def test_codes(ref):
    db, w, acts, toks, skip = ref
    m = db.codes("res", range(3, 5))
    ctx = toks.shape[1]
    assert m.shape == (2 * ctx, 16384)
    assert list(m.seq_row) == [0, ctx, 2 * ctx]
    x = np.asarray(acts[3 * ctx:5 * ctx])
    cols = np.arange(16384)
    pre, bound = reference(x, w, cols)
    n = check_codes(m.toarray(), pre, bound, w["threshold"])
    assert n > 1000
    # the same codes as activations() gives for any latent (every position here)
    a = db.activations("res", 9962, include_special=True)
    inside = (a.seq >= 3) & (a.seq < 5)
    rows = (a.seq[inside].astype(np.int64) - 3) * ctx + a.pos[inside]
    assert np.array_equal(m.toarray()[:, 9962].nonzero()[0], np.sort(rows))
    assert np.array_equal(m.toarray()[rows, 9962], a.value[inside])
    one = db.codes("res", 4)
    assert (one != m[ctx:]).nnz == 0


def test_codes_without_scipy(ref, monkeypatch):
    db = ref[0]
    from latentdb import db as dbmod
    monkeypatch.setattr(dbmod, "_sparse", None)
    c = db.codes("res", range(0, 2))
    assert isinstance(c, latentdb.CSRArrays)
    monkeypatch.undo()
    m = db.codes("res", range(0, 2))
    assert np.array_equal(c.toarray(), m.toarray())
    assert c.indptr.dtype == np.int64 and c.indices.dtype == np.int32


def test_tokens(ref):
    db, w, acts, toks, skip = ref
    assert np.array_equal(db.tokens(5), toks[5])
    t = db.tokens(range(10, 20))
    assert t.dtype == np.int32 and np.array_equal(t, toks[10:20])
    assert db.tokens(range(3, 3)).shape == (0, 0)
    with pytest.raises(latentdb.NotFoundError):
        db.tokens(range(119, 121))
