"""The streaming writer: its digest against the CLI ingest of the same arrays, cut
into any batches; a SIGKILLed writer resumed to the same digest; the checks of rows
given again."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import latentdb
from conftest import BUILD, ROOT, cli, new_db


@pytest.fixture(scope="module")
def corpus(store_fixture, tmp_path_factory):
    """The store fixture's arrays and the digest of its CLI ingest (source 'corpus')."""
    t = np.load(os.path.join(store_fixture, "tokens.npy"))
    a = np.load(os.path.join(store_fixture, "acts.npy")).reshape(t.shape[0], t.shape[1], -1)
    path = str(tmp_path_factory.mktemp("cli") / "db")
    new_db(path, os.path.join(store_fixture, "dict"))
    cli("ingest", path, "--dict", "res", "--tokens", os.path.join(store_fixture, "tokens.npy"),
        "--acts", os.path.join(store_fixture, "acts.npy"), "--source", "corpus")
    return t, a, cli("check", path, "--digest").strip(), os.path.join(store_fixture, "dict")


def digest(path):
    return cli("check", path, "--digest").strip()


@pytest.mark.parametrize("batch", [7, 37, 400])
def test_writer_digest_equals_cli_ingest(corpus, tmp_path, batch):
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    with latentdb.open(path, write=True) as db:
        with db.writer("res", source="corpus") as w:
            for i in range(0, len(t), batch):
                w.add(t[i:i + batch], a[i:i + batch])
            assert w.committed_rows == len(t)
        assert db.check()["n_problems"] == 0
    assert digest(path) == want
    # a finished run is not opened again
    with latentdb.open(path, write=True) as db:
        with pytest.raises(latentdb.InvalidArgumentError, match="finished"):
            db.writer("res", source="corpus", ctx=t.shape[1])


def test_writer_f16_and_strided_inputs(corpus, tmp_path):
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    half = a.astype(np.float16)
    with latentdb.open(path, write=True) as db, db.writer("res", source="h") as w:
        w.add(t[:100].astype(np.int64), half[:100])
        w.add(t[100:], np.asfortranarray(half[100:]))  # copied to C order
    ref = str(tmp_path / "ref")
    new_db(ref, dict_dir)
    np.save(str(tmp_path / "h.npy"), half.reshape(-1, half.shape[-1]))
    np.save(str(tmp_path / "t.npy"), t)
    cli("ingest", ref, "--dict", "res", "--tokens", str(tmp_path / "t.npy"), "--acts",
        str(tmp_path / "h.npy"), "--source", "h")
    assert digest(path) == digest(ref)


CHILD = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
import latentdb
t = np.load(sys.argv[3]); a = np.load(sys.argv[4]).reshape(t.shape[0], t.shape[1], -1)
db = latentdb.open(sys.argv[2], write=True)
w = db.writer("res", source="corpus")
for i in range(0, len(t), 20):
    w.add(t[i:i + 20], a[i:i + 20])
    print(w.committed_rows, flush=True)
    time.sleep(0.05)
time.sleep(60)
"""


def test_sigkilled_writer_resumes_to_the_same_digest(corpus, store_fixture, tmp_path):
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-c", CHILD, os.path.join(ROOT, "python"), path,
                          os.path.join(store_fixture, "tokens.npy"),
                          os.path.join(store_fixture, "acts.npy")], stdout=subprocess.PIPE,
                         text=True, env=env)
    done = 0
    while done < 160:
        line = p.stdout.readline()
        assert line, "the writer ended before it was killed"
        done = int(line)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert ": ok (" in cli("check", path)  # exits 1 on a problem
    with latentdb.open(path, write=True) as db:
        with db.writer("res", source="corpus") as w:  # its ctx comes from the stream's record
            assert 160 <= w.committed_rows < len(t) and w.ctx == t.shape[1]
            for i in range(0, len(t), 50):  # the loop simply starts again
                w.add(t[i:i + 50], a[i:i + 50])
    assert digest(path) == want


def test_rows_given_again_must_match(corpus, tmp_path):
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    with latentdb.open(path, write=True) as db:
        w = db.writer("res", source="corpus")
        w.add(t[:100], a[:100])
        w.close()  # unfinished
        assert db.writer("res", source="other").committed_rows == 0  # a new source
        w = db.writer("res", source="corpus")
        assert w.committed_rows == 100
        bad = t[:100].copy()
        bad[99, 5] += 1
        with pytest.raises(latentdb.InvalidArgumentError, match="other tokens"):
            w.add(bad, a[:100])
        w.close()
        # skipping ahead to the committed count is allowed
        w = db.writer("res", source="corpus", ctx=t.shape[1])
        w.add(t[100:], a[100:], row=w.committed_rows)
        w.close(finish=True)
    assert digest(path) == want


def test_bad_rows_leave_the_database_as_it_was(corpus, tmp_path):
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    with latentdb.open(path, write=True) as db:
        w = db.writer("res", source="corpus")
        w.add(t[:50], a[:50])
        before = db.check()["digest"]
        nan = a[50:60].copy()
        nan[3, 7, 11] = np.nan
        with pytest.raises(latentdb.BadValueError, match="NaN"):
            w.add(t[50:60], nan)
        assert db.check()["digest"] == before
        with pytest.raises(latentdb.InvalidArgumentError, match="close the stream"):
            w.add(t[50:60], a[50:60])
        w.close()
        with pytest.raises(ValueError):
            db.writer("res", source="corpus").add(t[50:60], a[50:60, :, :100])
        with pytest.raises(TypeError):
            db.writer("res", source="corpus").add(t[50:60], a[50:60].astype(np.float64))
        with pytest.raises(ValueError, match="tokens"):
            db.writer("res", source="corpus").add(t[50:60].astype(np.float32), a[50:60])
        with pytest.raises(latentdb.NotFoundError):
            db.writer("nope", source="corpus").add(t[50:60], a[50:60])
        assert db.check()["digest"] == before
    with latentdb.open(path) as db:
        with pytest.raises(latentdb.InvalidArgumentError, match="write=True"):
            db.writer("res", source="x")


@pytest.mark.parametrize("form", ["array", "per_layer"])
def test_multi_layer_writer_equals_cli_ingest(tmp_path, form):
    """A 3-layer CLT: one [rows, ctx, 3, d_in] array, or one array per layer, streamed
    in two adds, against the CLI ingest of the per-layer files."""
    from conftest import FIXTURES
    c = os.path.join(FIXTURES, "multi", "clt3_gs2")
    toks = (np.arange(240) * 7 % 500).astype(np.int32).reshape(6, 40)
    np.save(str(tmp_path / "tok.npy"), toks)
    ref = new_db(str(tmp_path / "ref"), os.path.join(c, "dict"), name="clt", skip="0")
    cli("ingest", ref, "--dict", "clt", "--tokens", str(tmp_path / "tok.npy"), "--acts",
        ",".join(os.path.join(c, f"acts_l{i}.npy") for i in range(3)), "--source", "s")
    path = new_db(str(tmp_path / "db"), os.path.join(c, "dict"), name="clt", skip="0")
    whole = np.load(os.path.join(c, "acts.npy")).reshape(6, 40, 3, -1)
    layers = [np.load(os.path.join(c, f"acts_l{i}.npy")).reshape(6, 40, -1) for i in range(3)]
    with latentdb.open(path, write=True) as db, db.writer("clt", source="s") as w:
        for r in (slice(0, 4), slice(4, 6)):
            w.add(toks[r], whole[r] if form == "array" else [a[r] for a in layers])
    assert digest(path) == digest(ref)
    with latentdb.open(path, write=True) as db, db.writer("clt", source="bad") as w:
        with pytest.raises(ValueError):  # one layer narrower: refused before C reads it
            w.add(toks[:2], [layers[0][:2], layers[1][:2, :, :-1], layers[2][:2]])
        with pytest.raises(ValueError):
            w.add(toks[:2], [a[:2] for a in layers[:2]])
    d = latentdb.Dictionary.open(os.path.join(c, "dict"))
    i1, j1, v1 = d.encode(whole.reshape(240, 3, -1))
    i2, j2, v2 = d.encode([a.reshape(240, -1) for a in layers])
    assert np.array_equal(i1, i2) and np.array_equal(j1, j2) and np.array_equal(v1, v2)
    with latentdb.open(path) as db:
        m = db.codes("clt", range(0, 6))
        assert np.array_equal(m.indptr, i1) and np.array_equal(m.indices, j1)
    d.close()


def test_adds_from_two_threads_take_turns(corpus, tmp_path):
    import threading
    t, a, want, dict_dir = corpus
    path = new_db(str(tmp_path / "db"), dict_dir)
    with latentdb.open(path, write=True) as db, db.writer("res", source="t") as w:
        def feed(lo):
            for i in range(lo, lo + 200, 40):
                w.add(t[i:i + 40], a[i:i + 40])
        ts = [threading.Thread(target=feed, args=(lo,)) for lo in (0, 200)]
        for x in ts:
            x.start()
        for x in ts:
            x.join()
        assert w.committed_rows == 400
        assert db.check()["n_problems"] == 0
