"""Every reading call against the CLI's --json answer for the same arguments, on the
make demo-small database."""
import os
import shutil
import threading

import numpy as np
import pytest

import latentdb
from conftest import cli, cli_json, same


@pytest.fixture(scope="module")
def db(demo_db):
    with latentdb.open(demo_db) as d:
        yield d


LATENTS = [9962, 0, 77, 16383]


def test_info_and_dicts(db, demo_db):
    assert same(db.info(), cli_json("info", demo_db))
    assert db.dicts() == cli_json("dict", "ls", demo_db)


@pytest.mark.parametrize("latent", LATENTS)
def test_top(db, demo_db, latent):
    assert same(db.top("res", latent).to_json(), cli_json("top", demo_db, "res", latent))
    assert same(db.top("res", latent, k=7, context=3).to_json(), cli_json("top", demo_db, "res", latent, "-k", 7, "--context", 3))


def test_top_options(db, demo_db):
    L = 9962
    assert same(db.top("res", L, k=150, distinct_seq=True).to_json(), cli_json("top", demo_db, "res", L, "-k", 150, "--distinct-seq"))
    assert same(db.top("res", L, include_special=True, context=0).to_json(), cli_json("top", demo_db, "res", L, "--include-special", "--context", 0))
    r = db.top("res", L, k=5, positions_only=True)
    assert same(r.to_json(), cli_json("top", demo_db, "res", L, "-k", 5, "--positions-only"))
    assert r[0].context is None
    assert same(db.top("res", "0:9962", k=3).to_json(), cli_json("top", demo_db, "res", "0:9962",
                                                              "-k", 3))


def test_top_result_object(db):
    r = db.top("res", 9962, k=4)
    assert len(r) == 4 and len(list(r)) == 4 and r[-1].seq == r[3].seq
    assert list(r.value) == sorted(r.value, reverse=True)
    e = r[0]
    assert e.context.tokens[e.pos - e.context.start] == db.tokens(e.seq)[e.pos]
    assert e.context.values[e.pos - e.context.start] == e.value
    assert "".join(e.context.pieces) == e.context.text
    with pytest.raises(IndexError):
        r[4]
    assert [x.seq for x in r[1:3]] == list(r.seq[1:3])


@pytest.mark.parametrize("by", ["count", "value"])
def test_samples(db, demo_db, by):
    got = db.samples("res", 9962, groups=4, per_group=3, by=by, seed=5, context=2)
    assert same(got.to_json(), cli_json("samples", demo_db, "res", 9962, "--groups", 4,
                                     "--per-group", 3, "--by", by, "--seed", 5, "--context", 2))
    assert len(got) == 4 and got[0].lo <= got[-1].lo


@pytest.mark.parametrize("latent", LATENTS)
def test_latent(db, demo_db, latent):
    assert same(db.latent("res", latent, bins=7).to_json(), cli_json("latent", demo_db, "res", latent, "--bins", 7))


def test_density(db, demo_db):
    d = db.density("res", bins=9)
    assert same(d.to_json(counts=True), cli_json("density", demo_db, "res", "--bins", 9, "--counts"))
    assert same(d.to_json(), cli_json("density", demo_db, "res", "--bins", 9))
    assert d.counts.dtype == np.uint64 and len(d.counts) == 16384
    assert np.allclose(d.density, d.counts / d.n_tokens)
    assert d.counts[9962] == db.latent("res", 9962).count
    assert same(db.density("res", layer=0).to_json(counts=True), cli_json("density", demo_db, "res", "--layer", 0, "--counts"))


@pytest.mark.parametrize("scope", ["token", "window:3", "seq"])
def test_cooc(db, demo_db, scope):
    for sort in ("jaccard", "count", "npmi"):
        assert same(db.cooc("res", 9962, scope=scope, k=6, sort=sort).to_json(), cli_json("cooc", demo_db, "res", 9962, "--scope", scope, "-k", 6, "--sort", sort))
    assert same(db.cooc("res", 9962, with_="res", with_layer=0, k=3).to_json(), cli_json("cooc", demo_db, "res", 9962, "--with", "res:0", "-k", 3))


@pytest.mark.parametrize("text", ["the", " of the", "Sicilian", "said that he"])
def test_search(db, demo_db, text):
    assert same(db.search("res", text, k=5).to_json(), cli_json("search", demo_db, "res", text,
                                                             "-k", 5))
    assert same(db.search("res", text, k=5, where="all").to_json(), cli_json("search", demo_db, "res", text, "-k", 5, "--where", "all"))


@pytest.mark.parametrize("seq", [0, 7, 119])
def test_seq(db, demo_db, seq):
    assert same(db.seq(seq, k=2).to_json(), cli_json("seq", demo_db, seq, "-k", 2))
    assert same(db.seq(seq, dict="res", k=0).to_json(), cli_json("seq", demo_db, seq, "--dict",
                                                              "res", "-k", 0))


def test_labels(demo_db, tmp_path):
    path = str(tmp_path / "db")
    shutil.copytree(demo_db, path)
    with latentdb.open(path, write=True) as db:
        assert db.labels("res") == {}
        db.label("res", 9962, "planted on the token the")
        db.label("res", 5, "five")
        db.label("res", 5, "")  # removes it
        db.label("res", "0:77", "seventy-seven ✓")
    with latentdb.open(path) as db:
        assert db.labels("res") == {77: "seventy-seven ✓", 9962: "planted on the token the"}
        assert same(db.top("res", 9962, k=2).to_json(), cli_json("top", path, "res", 9962, "-k", 2))
        assert db.latent("res", 77).label == cli_json("latent", path, "res", 77)["label"]


def test_threads_query_one_db(db):
    want = {L: db.top("res", L, k=10).to_json() for L in LATENTS}
    errs = []

    def work():
        try:
            for _ in range(20):
                for L in LATENTS:
                    assert db.top("res", L, k=10).to_json() == want[L]
                    db.activations("res", L)
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs


def test_close_then_use_raises(demo_db):
    d = latentdb.open(demo_db)
    d.close()
    d.close()  # twice is fine
    with pytest.raises(latentdb.ClosedError):
        d.top("res", 1)
    with pytest.raises(latentdb.ClosedError):
        d.info()


def test_to_pandas(db):
    import pandas as pd  # optional for the package; make deps installs it for this test
    top = db.top("res", 9962, k=5)
    f = top.to_pandas()
    assert isinstance(f, pd.DataFrame) and list(f["seq"]) == list(top.seq)
    assert list(f["context"]) == [e.context.text for e in top]
    d = db.density("res").to_pandas()
    assert len(d) == 16384 and d["count"][9962] == 4599
    c = db.cooc("res", 9962, k=4).to_pandas()
    assert list(c["latent"]) == [r.latent for r in db.cooc("res", 9962, k=4)]
    s = db.search("res", " the", k=3).to_pandas()
    assert len(s) == 3 and "score" in s.columns
