#!/usr/bin/python3
"""corrupt.py — a damaged database gives an error, never a crash or a wrong answer.

Builds a small database (a BPE tokenizer trained here on Brown text, 1024 latents,
planted activations, labels), records the answers of every read command, then damages
copies of it many times: random byte flips, a page of zeros, a page of random bytes,
a truncation of data.mdb. After each damage every read command runs again, and then
`check`. A trial passes when
  - no command dies of a signal, hangs, or prints a sanitizer report or an assertion;
  - every command either answers as before or fails with a message (exit 1); and
  - when any answer differs from the undamaged one (a changed output, or an error
    where there was an answer), `check` reports a problem (exit 1): a corruption
    that changes an answer is never passed over; and
  - when check reports problems, `check --repair` either rebuilds what is derived
    (check then passes, and the digest is the undamaged database's) or refuses with
    a message (the truth is damaged).

usage: tests/corrupt.py BUILD DATA [short|long] [--seed N] [--trials N] [--keep DIR]
  short (make check): 200 trials (CORRUPT_TRIALS sets another number; make asan runs
  60); long (make torture): 3000.
Prints each failing trial (what was damaged, which command, what it printed) and ends
with `corrupt: N passed, N failed`.
"""
import collections
import concurrent.futures
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SP = "\u2581"
PAGE = 4096
# a sanitizer's or glibc's report (a death by a signal shows in the exit status;
# LMDB's assertions end the command with exit 1 and a message naming the DB)
CRASH = re.compile(r"Sanitizer|runtime error|Segmentation|core dumped|"
                   r"free\(\)|double free|corrupted size|malloc\(\)")


def train_tokenizer(texts, n_merges):
    """A Gemma-style BPE tokenizer.json (byte fallback, ' ' -> '▁') trained greedily."""
    special = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {s: i for i, s in enumerate(special)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    words = collections.Counter()
    for t in texts:
        for w in t.replace("\n", " ").split(" "):
            if w:
                words[SP + w] += 1
    chars = collections.Counter(c for w, n in words.items() for c in w for _ in range(n))
    for c, _ in chars.most_common(120):
        vocab.setdefault(c, len(vocab))
    seqs = {w: [c if c in vocab else None for c in w] for w in words}
    seqs = {w: s for w, s in seqs.items() if None not in s}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]):
                pairs[a, b] += words[w]
        if not pairs:
            break
        (a, b), n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if n < 2:
            break
        merges.append(a + " " + b)
        vocab.setdefault(a + b, len(vocab))
        for w, s in seqs.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    added = [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for s in special]
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
             "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
             "byte_fallback": True, "ignore_merges": False, "vocab": vocab, "merges": merges}
    dec = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}]}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SP},
            "pre_tokenizer": None, "post_processor": None, "decoder": dec, "model": model}


class Env:
    def __init__(self, build, data, tmp):
        self.L = os.path.join(build, "bin", "latentdb")
        self.planted = os.path.join(build, "tools", "planted")
        self.data = data
        self.tmp = tmp

    def run(self, args, timeout=20):
        try:
            p = subprocess.run([self.L] + args, capture_output=True, timeout=timeout)
            return p.returncode, p.stdout.decode("utf-8", "replace"), \
                p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return "timeout", "", "timed out after %d s" % timeout

    def must(self, args):
        rc, out, err = self.run(args, timeout=300)
        if rc != 0:
            sys.exit("corrupt: setup failed: latentdb %s: %s%s" % (" ".join(args), out, err))
        return out


def build_db(env):
    """The reference database: returns (path, commands)."""
    t = env.tmp
    docs = os.path.join(t, "docs")
    os.makedirs(docs)
    names = sorted(f for f in os.listdir(os.path.join(env.data, "brown")) if f.endswith(".txt"))[:2]
    texts = []
    for n in names:
        shutil.copy(os.path.join(env.data, "brown", n), docs)
        with open(os.path.join(docs, n), encoding="utf-8") as f:
            texts.append(f.read())
    tj = os.path.join(t, "tokenizer.json")
    with open(tj, "w", encoding="utf-8") as f:
        json.dump(train_tokenizer(texts, 400), f, ensure_ascii=False)
    fx = os.path.join(t, "fx")
    env.must(["tokenize", tj, "--file", docs, "--out", os.path.join(t, "tokens.npy"),
              "--ctx", "128"])
    p = subprocess.run([env.planted, fx, "--tokens", os.path.join(t, "tokens.npy"),
                        "--d-in", "64", "--d-sae", "1024", "--background", "4", "--seed", "7",
                        "--bos", "2", "--eos", "1", "--pad", "0", "--tokenizer", tj],
                       capture_output=True)
    if p.returncode:
        sys.exit("corrupt: setup failed: planted: %s" % p.stderr.decode())
    db = os.path.join(t, "ref")
    env.must(["init", db, "--tokenizer", tj])
    env.must(["dict", "add", db, "a", os.path.join(fx, "dict")])
    # one batch: few pages of older states, so most damage lands on live pages
    env.must(["ingest", db, "--dict", "a", "--tokens", os.path.join(t, "tokens.npy"),
              "--acts", os.path.join(fx, "acts.npy"), "--batch-tokens", "1000000",
              "--source", "brown"])
    truth = json.load(open(os.path.join(fx, "planted.json")))
    lat = [x for x in truth["latents"] if x["family"] == "token" and x.get("text")]
    tok = lat[0] if lat else [x for x in truth["latents"] if x["family"] == "token"][0]
    dens = json.loads(env.must(["density", db, "a", "--counts", "--json"]))
    counts = dens.get("counts") or []
    busy = max(range(len(counts)), key=lambda i: counts[i]) if counts else 3
    l1, l2 = str(tok["latent"]), str(busy)
    env.must(["label", db, "a", l1, "a token latent"])
    env.must(["label", db, "a", l2, "the busiest latent"])
    word = tok.get("text", "the").strip() or "the"
    cmds = [
        ["info", db, "--json"],
        ["dict", "ls", db, "--json"],
        ["top", db, "a", l1, "-k", "30", "--json"],
        ["top", db, "a", l2, "-k", "100", "--context", "4", "--json"],
        ["top", db, "a", l2, "-k", "10", "--distinct-seq"],
        ["latent", db, "a", l1, "--json"],
        ["latent", db, "a", l2, "--bins", "20"],
        ["density", db, "a", "--json"],
        ["density", db, "a", "--counts", "--json"],
        ["samples", db, "a", l2, "--json"],
        ["cooc", db, "a", l1, "--scope", "token", "--json"],
        ["cooc", db, "a", l2, "--scope", "seq", "-k", "50", "--json"],
        ["cooc", db, "a", l1, "--scope", "window:3", "--sort", "npmi", "--json"],
        ["search", db, "a", word, "--json"],
        ["search", db, "a", "of the", "--where", "all", "--json"],
        ["seq", db, "3", "--dict", "a", "--json"],
        ["export", db, "a", "--top", "5", "--samples", "3", "--latents", "0-31"],
    ]
    return db, cmds


def lmdb_used_pages(path):
    """Pages in use by LMDB's newest state: its meta pages (0 and 1) hold, after a
    16-byte page header, magic, version, address, map size, two 48-byte database
    records, then the last page number and the transaction id (LMDB's MDB_meta)."""
    best = (-1, 0)
    with open(path, "rb") as f:
        for pg in (0, 1):
            f.seek(pg * PAGE + 16)
            m = f.read(136)
            magic, = struct.unpack_from("<I", m, 0)
            last, txn = struct.unpack_from("<QQ", m, 120)
            if magic == 0xBEEFC0DE and txn > best[0]:
                best = (txn, last + 1)
    return best[1] or os.path.getsize(path) // PAGE


def copy_db(src, dst):
    os.makedirs(dst)
    for f in ("data.mdb", "catalog.sqlite"):
        shutil.copy(os.path.join(src, f), dst)


def damage(rng, path, kind, used_pages):
    """Damages data.mdb; returns a description."""
    f = os.path.join(path, "data.mdb")
    size = os.path.getsize(f)
    used = min(size, used_pages * PAGE)
    with open(f, "r+b") as fh:
        if kind == "flip":
            what = []
            for _ in range(rng.choice((1, 1, 1, 2, 4))):
                off = rng.randrange(used)
                fh.seek(off)
                b = fh.read(1)[0]
                x = rng.randrange(1, 256)
                fh.seek(off)
                fh.write(bytes([b ^ x]))
                what.append("%d^%02x" % (off, x))
            return "flip " + ",".join(what)
        pg = rng.randrange(2, used // PAGE)  # pages 0 and 1 are LMDB's meta pages
        if kind == "zero":
            fh.seek(pg * PAGE)
            fh.write(bytes(PAGE))
            return "zero page %d" % pg
        if kind == "random":
            fh.seek(pg * PAGE)
            fh.write(bytes(rng.randrange(256) for _ in range(PAGE)))
            return "random page %d" % pg
        if kind == "truncate":
            cut = rng.choice((PAGE, rng.randrange(1, size)))
            fh.truncate(size - cut)
            return "truncate by %d bytes" % cut
    raise ValueError(kind)


def main():
    import argparse
    ap = argparse.ArgumentParser(description="damaged databases: errors, never crashes")
    ap.add_argument("build")
    ap.add_argument("data")
    ap.add_argument("mode", nargs="?", default="short", choices=("short", "long"))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CORRUPT_SEED", "1")))
    ap.add_argument("--trials", type=int)
    ap.add_argument("--keep", help="copy each failing trial's database here")
    a = ap.parse_args()
    build, data, seed, keep = a.build, a.data, a.seed, a.keep
    trials = a.trials or int(os.environ.get("CORRUPT_TRIALS", "0")) or \
        (200 if a.mode == "short" else 3000)
    tmp = tempfile.mkdtemp(prefix="ldb-corrupt-")
    env = Env(build, data, tmp)
    passed = failed = 0
    try:
        ref, cmds = build_db(env)
        want = []
        for c in cmds:
            rc, out, err = env.run(c)
            if rc != 0:
                sys.exit("corrupt: setup failed: %s: %s" % (" ".join(c), err))
            want.append(out)
        rc, out, err = env.run(["check", ref])
        if rc != 0:
            sys.exit("corrupt: the undamaged database fails check: " + out + err)
        digest = env.run(["check", ref, "--digest"])[1].strip()
        used_pages = lmdb_used_pages(os.path.join(ref, "data.mdb"))
        kinds = ["flip"] * 6 + ["zero"] * 2 + ["random"] * 2 + ["truncate"]
        tally = collections.Counter()
        # each trial draws its damage from a generator of its own (seed, trial), so
        # that trials can run two at a time (the commands are processes: one per core)
        # and still damage the same bytes whatever the order

        def trial(i):
            r = random.Random(seed * 1000003 + i)
            d = os.path.join(tmp, "t%d" % i)
            copy_db(ref, d)
            kind = r.choice(kinds)
            what = damage(r, d, kind, used_pages)
            bad, changed, notes = [], [], collections.Counter()
            for c, w in zip(cmds, want):
                c = [d if x == ref else x for x in c]
                rc, out, err = env.run(c)
                out = out.replace(d, ref)
                if rc == "timeout" or (isinstance(rc, int) and rc not in (0, 1)) or \
                        CRASH.search(err) or CRASH.search(out):
                    bad.append("%s: exit %s: %s" % (" ".join(c[:1] + c[2:]), rc,
                                                     (err.strip().splitlines() or [""])[-1][:300]))
                elif rc != 0 or out != w:
                    changed.append(" ".join(c[:1] + c[2:]) +
                                   (": " + err.strip()[:200] if rc else ": a different answer"))
            crc, cout, cerr = env.run(["check", d], timeout=60)
            if crc == "timeout" or (isinstance(crc, int) and crc not in (0, 1)) or CRASH.search(cerr):
                bad.append("check: exit %s: %s" % (crc, cerr.strip()[-300:]))
            elif changed and crc == 0:
                bad.append("check says ok, but %d answers changed: %s" % (len(changed),
                                                                          "; ".join(changed[:3])))
            if crc == 1 and not bad:
                # check --repair rebuilds what is derived, or refuses (the truth is
                # damaged); after a repair that succeeds, check passes with the
                # undamaged database's digest
                rrc, rout, rerr = env.run(["check", d, "--repair"], timeout=60)
                if rrc == "timeout" or rrc not in (0, 1) or CRASH.search(rerr):
                    bad.append("check --repair: exit %s: %s" % (rrc, rerr.strip()[-300:]))
                elif rrc == 0:
                    arc, aout, aerr = env.run(["check", d, "--digest"], timeout=60)
                    if arc != 0:
                        bad.append("check after a repair that succeeded: exit %s: %s" %
                                   (arc, aerr.strip()[-300:]))
                    elif aout.strip() != digest:  # the truth was intact: rebuilt exactly
                        bad.append("check --digest after a repair that succeeded: %s, the "
                                   "undamaged database's is %s" % (aout.strip(), digest))
                notes["repair", "refused" if rrc == 1 else "rebuilt"] += 1
            notes[kind, "changed" if changed else "same", "reported" if crc == 1 else "ok"] += 1
            if bad and keep:
                shutil.copytree(d, os.path.join(keep, "t%d" % i))
            shutil.rmtree(d)
            return i, what, bad, notes

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 4)) as ex:
            for i, what, bad, notes in ex.map(trial, range(trials)):
                tally.update(notes)
                if bad:
                    failed += 1
                    print("trial %d (seed %d, %s):" % (i, seed, what))
                    for b in bad:
                        print("    " + b)
                else:
                    passed += 1
        for key, n in sorted(tally.items()):
            print("  %-40s %d" % (" ".join(key), n))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("corrupt: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
