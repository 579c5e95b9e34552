#!/usr/bin/python3
"""make_seeds.py — writes the seed corpora of tests/fuzz/corpus/ (run by make_seeds.sh).

  make_seeds.py files CORPUS       npy, npz, safetensors, config and tokenizer seeds
  make_seeds.py broken CORPUS      invalid variants of the fwd, inv and tokblob seeds
                                   that seedgen made from the library's writers

Each corpus gets a few small valid inputs (valid-*) and a few invalid ones (bad-*).
Deterministic: fixed arrays, zip timestamps pinned to 1980-01-01."""
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np

CORPUS = None


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 64 * 1024, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------- npy
def npy_bytes(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a, allow_pickle=True)
    else:
        np.lib.format.write_array(b, a, version=version, allow_pickle=True)
    return b.getvalue()


def npy_raw(header, data=b"", major=1):
    """A .npy with a hand-written header dict (padded to 64 bytes with a newline)."""
    h = header.encode("latin1")
    pre = 10 if major == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    ln = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + ln + h + data


def gen_npy():
    r = np.arange(12, dtype="<f4").reshape(3, 4) / 7
    put("npy", "valid-f32-3x4", npy_bytes(r))
    put("npy", "valid-f16-5", npy_bytes(np.linspace(-1, 1, 5).astype("<f2")))
    put("npy", "valid-f64-0d", npy_bytes(np.float64(3.5)))
    put("npy", "valid-i64-2x2", npy_bytes(np.array([[1, -2], [3, 4]], dtype="<i8")))
    put("npy", "valid-u8-4", npy_bytes(np.arange(4, dtype="u1")))
    put("npy", "valid-bool-3", npy_bytes(np.array([True, False, True])))
    put("npy", "valid-i2-u2-i1", npy_bytes(np.arange(6, dtype="<i2").reshape(1, 2, 3)))
    put("npy", "valid-u4-empty-0x5", npy_bytes(np.zeros((0, 5), dtype="<u4")))
    put("npy", "valid-v2-i32", npy_bytes(np.arange(3, dtype="<i4"), version=(2, 0)))
    put("npy", "valid-v3-u2", npy_bytes(np.arange(3, dtype="<u2"), version=(3, 0)))
    put("npy", "valid-dquote-native-order",
        npy_raw('{"descr": "=f4", "fortran_order": False, "shape": (2,), }', b"\0" * 8))
    put("npy", "valid-8dims",
        npy_raw("{'descr': '|i1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 2), }",
                b"\1\2"))
    put("npy", "bad-big-endian", npy_bytes(np.arange(3, dtype=">f4")))
    put("npy", "bad-fortran", npy_bytes(np.asfortranarray(r)))
    put("npy", "bad-object", npy_bytes(np.array([{"a": 1}, None], dtype=object)))
    put("npy", "bad-structured", npy_bytes(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])))
    put("npy", "bad-truncated", npy_bytes(r)[:-5])
    put("npy", "bad-magic", b"\x93NUMPZ" + npy_bytes(r)[6:])
    put("npy", "bad-version4", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                                       b"\0" * 4, major=2).replace(b"\x02\x00", b"\x04\x00", 1))
    put("npy", "bad-header-past-end", npy_bytes(r)[:40])
    put("npy", "bad-shape-overflow",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
    put("npy", "bad-shape-digits",
        npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"))
    put("npy", "bad-9dims",
        npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", b"\0"))
    put("npy", "bad-unterminated-descr", npy_raw("{'descr': '<f4, 'fortran_order': False, }"))
    put("npy", "bad-no-shape", npy_raw("{'descr': '<f4', 'fortran_order': False, }"))
    put("npy", "bad-unicode-dtype", npy_bytes(np.array(["abc"])))


# ----------------------------------------------------------------------------- npz
def zip_bytes(members, compress, zip64=True):
    """members: [(name, bytes)], written as numpy does (zip64-forced members)."""
    comp = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    b = io.BytesIO()
    with zipfile.ZipFile(b, mode="w", compression=comp, allowZip64=True) as zf:
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = comp
            with zf.open(zi, "w", force_zip64=zip64) as f:
                f.write(data)
    return b.getvalue()


def gen_npz():
    w = npy_bytes((np.arange(16, dtype="<f4").reshape(4, 4) - 8) / 3)
    b = npy_bytes(np.linspace(0, 1, 4).astype("<f2"))
    t = npy_bytes(np.arange(4, dtype="<i8"))
    put("npz", "valid-stored-zip64", zip_bytes([("W_enc.npy", w), ("b_enc.npy", b)], False))
    put("npz", "valid-deflated-zip64", zip_bytes([("W_enc.npy", w), ("b_dec.npy", b)], True))
    put("npz", "valid-stored-plain", zip_bytes([("threshold.npy", t)], False, zip64=False))
    put("npz", "valid-with-other-members",
        zip_bytes([("readme.txt", b"hello"), ("format.npy", npy_bytes(np.array("csr"))),
                   ("x.npy", t)], True))
    put("npz", "valid-empty-zip", zip_bytes([], False))
    put("npz", "valid-empty-array", zip_bytes([("e.npy", npy_bytes(np.zeros((0,), "<f4")))], False))
    good = zip_bytes([("W_enc.npy", w), ("b_enc.npy", b)], False)
    put("npz", "bad-truncated", good[: len(good) // 2])
    crc = bytearray(good)
    i = crc.find(b"\x93NUMPY") + 100
    crc[i] ^= 0x55
    put("npz", "bad-crc", bytes(crc))
    dfl = bytearray(zip_bytes([("W_enc.npy", w)], True))
    dfl[60] ^= 0xFF
    put("npz", "bad-deflate-stream", bytes(dfl))
    put("npz", "bad-member-not-npy", zip_bytes([("junk.npy", b"not a numpy file at all")], False))
    put("npz", "bad-member-big-endian", zip_bytes([("be.npy", npy_bytes(np.arange(2, dtype=">f8")))], True))
    put("npz", "bad-member-truncated-npy", zip_bytes([("w.npy", w[:-9])], False))
    put("npz", "bad-not-zip", b"PK\x03\x04" + b"\0" * 60)
    eocd = bytearray(good)
    j = eocd.rfind(b"PK\x05\x06")
    eocd[j + 10] = 0x7F  # total entries
    put("npz", "bad-eocd-count", bytes(eocd))


# ----------------------------------------------------------------------------- safetensors
def st_bytes(tensors, metadata=None, pad=True, raw_header=None):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    hdr, data, off = {}, b"", 0
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = raw_header.encode() if raw_header is not None else json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def gen_safetensors(repo):
    golden = os.path.join(repo, "tests", "golden", "tiny.safetensors")
    if os.path.exists(golden):
        put("safetensors", "valid-golden-tiny", open(golden, "rb").read())
    f32 = np.arange(6, dtype="<f4").tobytes()
    put("safetensors", "valid-f32", st_bytes([("W", "F32", (2, 3), f32)]))
    put("safetensors", "valid-f16-bf16-meta",
        st_bytes([("W_enc", "F16", (2, 2), b"\0\x3c" * 4), ("b_enc", "BF16", (2,), b"\x80\x3f" * 2)],
                 metadata={"format": "pt", "note": "seed"}))
    put("safetensors", "valid-empty", st_bytes([]))
    put("safetensors", "valid-zero-size", st_bytes([("z", "F32", (0, 4), b""), ("a", "U8", (3,), b"abc")]))
    put("safetensors", "valid-all-dtypes",
        st_bytes([(dt, dt, (2,), b"\1" * (2 * sz)) for dt, sz in
                  [("F64", 8), ("I64", 8), ("U64", 8), ("I32", 4), ("U32", 4), ("I16", 2), ("U16", 2),
                   ("I8", 1), ("U8", 1), ("BOOL", 1), ("F8_E5M2", 1), ("F8_E4M3", 1)]]))
    put("safetensors", "valid-8dims", st_bytes([("t", "I8", (1, 1, 1, 1, 1, 1, 2, 1), b"\1\2")]))
    put("safetensors", "valid-unpadded-reversed-order",
        st_bytes([], raw_header='{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},'
                                '"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', pad=False) + b"wxyz")
    put("safetensors", "bad-hole",
        st_bytes([], raw_header='{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                '"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}') + b"abcde")
    put("safetensors", "bad-overlap",
        st_bytes([], raw_header='{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},'
                                '"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}') + b"abcd")
    put("safetensors", "bad-unknown-dtype", st_bytes([("W", "F8_E9", (4,), b"abcd")]))
    put("safetensors", "bad-size-mismatch",
        st_bytes([], raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}') + b"abcd")
    good = st_bytes([("W", "F32", (2, 3), f32)])
    put("safetensors", "bad-truncated", good[:-7])
    put("safetensors", "bad-header-past-eof", struct.pack("<Q", 4096) + good[8:])
    put("safetensors", "bad-header-huge", struct.pack("<Q", 1 << 40) + good[8:])
    put("safetensors", "bad-short", b"\x10\0\0\0")
    put("safetensors", "bad-not-object", st_bytes([], raw_header="[1, 2, 3]"))
    put("safetensors", "bad-entry-not-object", st_bytes([], raw_header='{"a": 5}'))
    put("safetensors", "bad-9dims", st_bytes([("t", "I8", (1,) * 9, b"\1")]))
    put("safetensors", "bad-shape-float",
        st_bytes([], raw_header='{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}') + b"a")
    put("safetensors", "bad-shape-overflow",
        st_bytes([], raw_header='{"a":{"dtype":"F64","shape":[4294967296,4294967296],'
                                '"data_offsets":[0,0]}}'))
    put("safetensors", "bad-offsets-negative",
        st_bytes([], raw_header='{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}') + b"a")
    put("safetensors", "bad-json", st_bytes([], raw_header='{"a":{"dtype":"U8",'))


# ----------------------------------------------------------------------------- config
def gen_config(repo):
    fx = os.path.join(repo, "build", "fixtures")
    if os.path.isdir(fx):
        for case in sorted(os.listdir(fx)):
            for fn in ("cfg.json", "config.json"):
                p = os.path.join(fx, case, fn)
                if os.path.isfile(p):
                    put("config", "valid-fixture-" + case, open(p, "rb").read())
    J = lambda o: json.dumps(o, indent=1)
    meta = {"model_name": "gemma-2-2b", "hook_name": "blocks.3.hook_resid_post"}
    sl = [
        ("saelens-standard", {"architecture": "standard", "d_in": 4, "d_sae": 8, "metadata": meta}),
        ("saelens-jumprelu", {"architecture": "jumprelu", "d_in": 4, "d_sae": 8, "dtype": "float32",
                              "apply_b_dec_to_input": False, "normalize_activations": "none",
                              "metadata": meta}),
        ("saelens-gated-constnorm", {"architecture": "gated", "d_in": 4, "d_sae": 8,
                                     "normalize_activations": "constant_norm_rescale", "metadata": meta}),
        ("saelens-topk-rescale", {"architecture": "topk", "d_in": 4, "d_sae": 8,
                                  "activation_fn_kwargs": {"k": 2}, "rescale_acts_by_decoder_norm": True,
                                  "normalize_activations": "layer_norm", "metadata": meta}),
        ("saelens-old-flat-topk", {"d_in": 4, "d_sae": 8, "activation_fn_str": "topk",
                                   "activation_fn_kwargs": {"k": 3}, "hook_point": "blocks.0.hook_mlp_out",
                                   "model_name": "gpt2", "normalize_activations": True}),
        ("saelens-skip-transcoder", {"architecture": "jumprelu_skip_transcoder", "d_in": 4, "d_sae": 8,
                                     "d_out": 4, "metadata": dict(meta, hook_name_out="blocks.3.hook_mlp_out")}),
        ("saelens-batchtopk-k0", {"architecture": "batchtopk", "d_in": 4, "d_sae": 8, "k": 0,
                                  "metadata": meta}),
        ("gemmascope2-transcoder-affine", {"architecture": "jump_relu", "type": "transcoder", "width": 8,
                                           "l0": 12.5, "affine_connection": True,
                                           "hf_hook_point_in": "model.layers.3.pre_feedforward_layernorm.output",
                                           "hf_hook_point_out": "model.layers.3.post_feedforward_layernorm.output",
                                           "model_name": "google/gemma-3-1b-pt"}),
        ("gemmascope2-sae", {"architecture": "jump_relu", "type": "sae", "width": 8, "l0": 4,
                             "hf_hook_point_in": "x", "hf_hook_point_out": "x"}),
        ("sparsify-topk", {"activation": "topk", "num_latents": 8, "k": 2, "d_in": 4, "transcode": False}),
        ("sparsify-groupmax", {"activation": "groupmax", "expansion_factor": 2, "k": 4, "d_in": 4,
                               "skip_connection": True}),
        ("sparsify-transcode-skip", {"activation": "topk", "num_latents": 8, "k": 8, "d_in": 4,
                                     "transcode": True, "skip_connection": True}),
        ("sparsify-groupmax-k3", {"activation": "groupmax", "num_latents": 8, "k": 3, "d_in": 4}),
    ]
    for name, o in sl:
        put("config", "valid-" + name, J(o))
    bad = [
        ("not-json", "{\"d_in\": 4, "),
        ("array", "[1, 2]"),
        ("d_in-string", J({"architecture": "standard", "d_in": "4", "d_sae": 8})),
        ("d_in-negative", J({"architecture": "standard", "d_in": -4, "d_sae": 8})),
        ("d_sae-huge", J({"architecture": "standard", "d_in": 4, "d_sae": 1e12})),
        ("d_sae-fraction", J({"architecture": "standard", "d_in": 4, "d_sae": 8.5})),
        ("arch-unknown", J({"architecture": "crosscoder", "d_in": 4, "d_sae": 8})),
        ("act-gelu", J({"d_in": 4, "d_sae": 8, "activation_fn_str": "gelu"})),
        ("finetuning", J({"architecture": "standard", "d_in": 4, "d_sae": 8, "finetuning_scaling_factor": True})),
        ("norm-unknown", J({"architecture": "standard", "d_in": 4, "d_sae": 8, "normalize_activations": "zscore"})),
        ("topk-no-k", J({"architecture": "topk", "d_in": 4, "d_sae": 8})),
        ("gs2-clt", J({"architecture": "jump_relu", "type": "clt", "width": 8})),
        ("sparsify-act", J({"activation": "relu", "num_latents": 8})),
        ("wrong-dims", J({"architecture": "standard", "d_in": 5, "d_sae": 8, "d_out": 3})),
    ]
    for name, s in bad:
        put("config", "bad-" + name, s)


# ----------------------------------------------------------------------------- tokenizer
SP = "\u2581"


def tok_json(kind):
    special = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {s: i for i, s in enumerate(special)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for c in [SP] + list("abcdefghijklmnopqrstuvwxyz,.!'") + ["é", "中"]:
        vocab[c] = len(vocab)
    pairs = [(SP, "t"), ("h", "e"), ("t", "he"), (SP + "t", "he"), ("a", "a"), ("aa", "aa"),
             ("aaaa", "aaaa"), ("a", "b"), ("ab", "ab"), ("l", "l"), ("o", ","), (SP, SP),
             ("e", "l"), ("el", "lo"), ("H", "el"), (SP, "w"), ("o", "r"), (SP + "w", "or")]
    for a, b in pairs:
        for s in (a, b):
            if s not in vocab:
                vocab[s] = len(vocab)
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in special]
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
             "ignore_merges": False, "vocab": vocab, "merges": [a + " " + b for a, b in pairs]}
    norm = {"type": "Replace", "pattern": {"String": " "}, "content": SP}
    dec = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}]}
    t = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
         "normalizer": norm, "pre_tokenizer": None, "post_processor": None, "decoder": dec,
         "model": model}
    if kind == "gemma3":  # Gemma 3: pre-tokenizer Split " " merged with previous, merges as pairs
        t["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "},
                              "behavior": "MergedWithPrevious", "invert": False}
        model["merges"] = [[a, b] for a, b in pairs]
        added.append({"id": len(vocab), "content": "<start_of_turn>", "special": True,
                      "normalized": False})
        added.append({"id": len(vocab) + 1, "content": "hello", "special": False, "normalized": True})
    elif kind == "llama2":
        t["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP}, norm]}
        dec["decoders"].append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
        model["fuse_unk"] = False
    elif kind == "nomark":  # ▁ no piece of its own: unknown, fused with its neighbours
        del vocab[SP]
        model["byte_fallback"] = False
        model["merges"] = [a + " " + b for a, b in pairs if SP not in (a, b)]
    elif kind == "joiner":  # pieces with a character before ▁: no word cut there
        for a, b in [(".", SP), ("." + SP, "t"), (",", SP), ("," + SP, "a"), ("é", SP)]:
            for x in (a, b, a + b):
                if x not in vocab:
                    vocab[x] = len(vocab)
            model["merges"].append(a + " " + b)
    elif kind == "plain":  # no normalizer, no byte fallback, ignore_merges
        t["normalizer"] = None
        t["decoder"] = None
        model["byte_fallback"] = False
        model["ignore_merges"] = True
        model["unk_token"] = None
    return t


def gen_tokenizer():
    for kind in ("gemma", "gemma3", "llama2", "plain", "nomark", "joiner"):
        put("tokenizer", "valid-" + kind, json.dumps(tok_json(kind), ensure_ascii=False))
    cfg = {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "pad_token": None}
    t = tok_json("llama2")
    v = t["model"]["vocab"]
    v["<s>"], v["</s>"] = len(v), len(v) + 1
    put("tokenizer", "valid-llama2-with-config",
        json.dumps(t, ensure_ascii=False).encode() + b"\0" + json.dumps(cfg).encode())
    small = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<0x41>": 3, "c": 4},
                       "merges": ["a b"], "byte_fallback": True}}
    put("tokenizer", "valid-tiny", json.dumps(small))
    bad = []
    b = tok_json("gemma"); b["model"]["type"] = "WordPiece"; bad.append(("wordpiece", b))
    b = tok_json("gemma"); b["model"]["merges"].append("zz qq"); bad.append(("merge-unknown", b))
    b = tok_json("gemma"); b["model"]["vocab"]["x!"] = -1; bad.append(("negative-id", b))
    b = tok_json("gemma"); b["normalizer"] = {"type": "NFKC"}; bad.append(("normalizer-nfkc", b))
    b = tok_json("gemma"); b["added_tokens"][0]["lstrip"] = True; bad.append(("added-lstrip", b))
    b = tok_json("gemma"); b["model"]["dropout"] = 0.1; bad.append(("dropout", b))
    b = tok_json("gemma"); b["model"]["vocab"] = {}; b["added_tokens"] = []; bad.append(("empty-vocab", b))
    b = tok_json("gemma"); b["decoder"] = {"type": "Metaspace"}; bad.append(("decoder-metaspace", b))
    b = tok_json("gemma"); b["pre_tokenizer"] = {"type": "ByteLevel"}; bad.append(("pretok-bytelevel", b))
    b = tok_json("gemma"); b["model"]["merges"][0] = 7; bad.append(("merge-not-string", b))
    for name, o in bad:
        put("tokenizer", "bad-" + name, json.dumps(o, ensure_ascii=False))
    put("tokenizer", "bad-not-json", '{"model": {"type": "BPE", "vocab": {"a": 0}')


# ----------------------------------------------------------------------------- broken variants
def gen_broken():
    """Invalid variants of the valid seeds that seedgen wrote (fwd, inv, tokblob)."""
    def valid(target):
        d = os.path.join(CORPUS, target)
        return sorted(f for f in os.listdir(d) if not f.startswith("bad-"))

    def read(target, name):
        return open(os.path.join(CORPUS, target, name), "rb").read()

    fwd = valid("fwd")
    small = min(fwd, key=lambda f: len(read("fwd", f)))
    blk = read("fwd", small)
    alen = struct.unpack_from("<I", blk)[0]
    put("fwd", "bad-empty", b"")
    put("fwd", "bad-truncated-part-a", blk[: 4 + alen // 2])
    put("fwd", "bad-truncated-part-b", blk[: 4 + alen + 3])
    put("fwd", "bad-alen-past-end", struct.pack("<I", len(blk)) + blk[4:])
    put("fwd", "bad-codec-1", blk[:4] + b"\x01" + blk[5:])
    flip = bytearray(blk); flip[4 + alen // 2] ^= 0xFF
    put("fwd", "bad-flipped-stream", bytes(flip))
    flip = bytearray(blk); flip[4 + alen + 1] ^= 0x80
    put("fwd", "bad-flipped-symbols", bytes(flip))
    put("fwd", "bad-all-ones", b"\x20\0\0\0\0\x08" + b"\xff" * 60)

    inv = valid("inv")
    small = min((f for f in inv if not f.startswith("zstd")), key=lambda f: len(read("inv", f)))
    ch = read("inv", small)
    put("inv", "bad-empty", b"")
    put("inv", "bad-codec-2", b"\x02" + ch[1:])
    put("inv", "bad-truncated", ch[: max(2, len(ch) // 2)])
    put("inv", "bad-count-huge", b"\x00\x00\xff\xff\xff\xff\x0f\x03" + b"\xaa" * 8)
    put("inv", "bad-k-41", b"\x00\x00\x05\x29" + b"\x55" * 8)
    put("inv", "bad-escape", b"\x00\x00\x03\x00" + b"\xff" * 7 + b"\x00" + b"\xff" * 16)
    z = read("inv", "zstd-run0-lat7")
    zb = bytearray(z); zb[len(zb) // 2] ^= 0x10
    put("inv", "bad-zstd-corrupt", bytes(zb))

    blobs = valid("tokblob")
    bl = read("tokblob", blobs[0])
    put("tokblob", "bad-empty", b"")
    put("tokblob", "bad-truncated", bl[: len(bl) // 2])
    put("tokblob", "bad-ltk1", b"LTK1" + bl[4:])
    put("tokblob", "bad-size-word", bl[:72] + struct.pack("<I", len(bl) + 4) + bl[76:])
    words = list(struct.unpack_from("<20I", bl))
    off_piece = words[12]
    po = bytearray(bl); struct.pack_into("<I", po, off_piece + 8, 0xFFFFFF)
    put("tokblob", "bad-piece-offsets", bytes(po))
    vh = bytearray(bl); struct.pack_into("<I", vh, words[14], words[2] + 5)
    put("tokblob", "bad-vocab-slot", bytes(vh))


def main():
    global CORPUS
    if len(sys.argv) != 3 or sys.argv[1] not in ("files", "broken"):
        sys.exit("usage: make_seeds.py files|broken CORPUS")
    CORPUS = sys.argv[2]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if sys.argv[1] == "files":
        gen_npy()
        gen_npz()
        gen_safetensors(repo)
        gen_config(repo)
        gen_tokenizer()
    else:
        gen_broken()


if __name__ == "__main__":
    main()
