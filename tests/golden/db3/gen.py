"""Writes the inputs of the golden database (tests/golden/db3): token ids, two
dictionaries' codes as scipy CSR .npz, and two tiny SAELens dictionaries whose
shapes match (their weights are never used: the codes are imported). Seeded, so
running it again writes the same files. build.sh turns them into db/."""
import json, os, struct, sys
import numpy as np
import scipy.sparse as sp

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261207)
N_SEQ, CTX = 40, 48
# token ids of tokenizer.json: 2 = <bos>, 4..259 bytes, 260..312 pieces
words = [296, 293, 294, 295, 310, 312, 303, 288, 287, 301, 307, 309, 261, 265, 275, 279, 280]
tok = rng.choice(words, size=(N_SEQ, CTX), p=None).astype(np.int32)
tok[:, 0] = 2
tok[rng.random((N_SEQ, CTX)) < 0.05] = 304   # '▁▁' here and there
np.save(os.path.join(out, "tokens.npy"), tok)

def codes(d_sae, l0, seed):
    r = np.random.default_rng(seed)
    flat = tok.reshape(-1)
    rows, cols, vals = [], [], []
    for i, t in enumerate(flat):
        if t == 2:
            # BOS fires a few latents strongly (left out of statistics)
            lat = [0, 1, 2]
        else:
            base = [int(t) % d_sae, (int(t) * 7 + 3) % d_sae]
            extra = r.choice(d_sae, size=r.poisson(l0), replace=False).tolist()
            lat = sorted(set(base + extra))
        for j in lat:
            rows.append(i)
            cols.append(j)
            # values spread over several decades, some ties
            v = float(np.float32(r.choice([0.5, 1.0, 2.0]) if r.random() < 0.1 else r.lognormal(0, 1)))
            vals.append(v)
    m = sp.csr_matrix((np.array(vals, np.float32), (np.array(rows), np.array(cols))),
                      shape=(flat.size, d_sae))
    m.sort_indices()
    return m

a = codes(256, 6, 1)
# dictionary a goes in as two imports (two batches: summaries and top lists merge)
half = N_SEQ // 2 * CTX
np.save(os.path.join(out, "tokens_1.npy"), tok[:N_SEQ // 2])
np.save(os.path.join(out, "tokens_2.npy"), tok[N_SEQ // 2:])
sp.save_npz(os.path.join(out, "a_1.npz"), a[:half])
sp.save_npz(os.path.join(out, "a_2.npz"), a[half:])
sp.save_npz(os.path.join(out, "b.npz"), codes(64, 3, 2))

def saelens(folder, d_in, d_sae, seed):
    os.makedirs(folder, exist_ok=True)
    r = np.random.default_rng(seed)
    t = {"W_enc": r.standard_normal((d_in, d_sae)).astype(np.float32),
         "b_enc": np.zeros(d_sae, np.float32),
         "W_dec": r.standard_normal((d_sae, d_in)).astype(np.float32),
         "b_dec": np.zeros(d_in, np.float32),
         "threshold": np.full(d_sae, 0.5, np.float32)}
    hdr, off, blob = {}, 0, b""
    for k, a in t.items():
        b = a.tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blob += b
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(folder, "sae_weights.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    cfg = {"architecture": "jumprelu", "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": False, "normalize_activations": "none",
           "metadata": {"model_name": "golden", "hook_name": "blocks.0.hook_resid_post"}}
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)

saelens(os.path.join(out, "dict_a"), 8, 256, 3)
saelens(os.path.join(out, "dict_b"), 8, 64, 4)
