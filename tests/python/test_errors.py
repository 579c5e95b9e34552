"""Wrong inputs raise the right exception, with the library's message, and never crash
the interpreter."""
import os

import numpy as np
import pytest

import latentdb
from conftest import DEMO


@pytest.fixture(scope="module")
def db(demo_db):
    with latentdb.open(demo_db) as d:
        yield d


def test_open_errors(tmp_path):
    with pytest.raises(latentdb.NotFoundError) as e:
        latentdb.open(str(tmp_path / "nothing"))
    assert "nothing" in str(e.value)
    (tmp_path / "notdb").mkdir()
    (tmp_path / "notdb" / "data.mdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(latentdb.Error):
        latentdb.open(str(tmp_path / "notdb"))
    with pytest.raises(TypeError):
        latentdb.open(42)


def test_bad_names_and_latents(db):
    with pytest.raises(latentdb.NotFoundError, match="nope"):
        db.top("nope", 1)
    with pytest.raises(latentdb.InvalidArgumentError, match="16384"):
        db.top("res", 16384)
    with pytest.raises(latentdb.InvalidArgumentError):
        db.top("res", "3:1")  # a single-layer dictionary has layer 0 only
    with pytest.raises(latentdb.InvalidArgumentError):
        db.top("res", -1)
    with pytest.raises(TypeError):
        db.top("res", 1.5)
    with pytest.raises(TypeError):
        db.top(b"res", 1)
    with pytest.raises(TypeError):
        db.top("res", True)
    with pytest.raises(ValueError):
        db.top("res", 1, k=0)
    with pytest.raises(TypeError):
        db.top("res", 1, k="5")
    with pytest.raises(ValueError):
        db.cooc("res", 1, scope="window:x")
    with pytest.raises(ValueError):
        db.cooc("res", 1, sort="best")
    with pytest.raises(ValueError):
        db.samples("res", 1, by="median")
    with pytest.raises(latentdb.NotFoundError):
        db.seq(10 ** 9)
    with pytest.raises(latentdb.NotFoundError):
        db.codes("res", range(119, 125))
    with pytest.raises(TypeError):
        db.codes("res", range(0, 10, 2))
    with pytest.raises(latentdb.InvalidArgumentError):
        db.label("res", 1, "read-only")  # opened read-only


def test_label_errors(demo_db, tmp_path):
    import shutil
    path = str(tmp_path / "db")
    shutil.copytree(demo_db, path)
    with latentdb.open(path, write=True) as d:
        with pytest.raises(latentdb.InvalidArgumentError, match="control character"):
            d.label("res", 1, "two\nlines")
        assert d.labels("res") == {}


def test_dictionary_encode_errors():
    d = latentdb.Dictionary.open(os.path.join(DEMO, "dict"))
    assert d.d_in == 640 and d.d_sae == 16384
    with pytest.raises(TypeError):
        d.encode(np.zeros((4, 640), np.float64))
    with pytest.raises(ValueError):
        d.encode(np.zeros((4, 641), np.float32))
    with pytest.raises(ValueError):
        d.encode(np.zeros((4, 2, 640), np.float32))
    with pytest.raises(latentdb.BadValueError, match="overflow"):
        d.encode(np.full((4, 640), 1e38, np.float32))  # the f32 sum overflows: a message
    d.close()
    with pytest.raises(latentdb.ClosedError):
        d.encode(np.zeros((4, 640), np.float32))
    with pytest.raises(latentdb.Error):
        latentdb.Dictionary.open("/nonexistent/sae")
    with pytest.raises(ValueError):
        latentdb.Dictionary.open(os.path.join(DEMO, "dict"), precision="f64")


def test_dictionary_encode_is_what_ingest_stores(db):
    """Dictionary.encode gives the codes the DB holds (exact codes, then the DB's bf16
    rounding of values)."""
    acts = np.load(os.path.join(DEMO, "acts.npy"), mmap_mode="r")
    d = latentdb.Dictionary.open(os.path.join(DEMO, "dict"))
    indptr, indices, data = d.encode(np.asarray(acts[2048:3072]))
    m = db.codes("res", 2)
    assert np.array_equal(indptr, m.indptr) and np.array_equal(indices, m.indices)
    b = data.view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)
    assert np.array_equal(b, m.data)
    # in any cut, and as float16 / bf16 bits
    i2, j2, d2 = d.encode(np.asarray(acts[2048:2100]))
    assert np.array_equal(j2, indices[:indptr[52]]) and np.array_equal(d2, data[:indptr[52]])
    d.close()
