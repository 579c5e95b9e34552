"""Fixtures of the Python package's tests (tests/python/run.sh runs them with the
package from python/ and the library of $LATENTDB_BUILD)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("LATENTDB_BUILD", "build"))
os.environ.setdefault("LATENTDB_LIB", os.path.join(BUILD, "lib", "liblatentdb.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))

CLI = os.path.join(BUILD, "bin", "latentdb")
FIXTURES = os.path.join(BUILD, "fixtures")
DEMO = os.path.join(ROOT, "data", "demo-small")


def cli(*args, check=True):
    """Runs the CLI; its stdout."""
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode:
        raise AssertionError(f"latentdb {' '.join(map(str, args))}: {p.stderr}")
    return p.stdout


def cli_json(*args):
    return json.loads(cli(*args, "--json"))


@pytest.fixture(scope="session")
def demo_db():
    """The make demo-small database (built here when it is missing)."""
    db = os.path.join(DEMO, "db")
    if not os.path.exists(os.path.join(db, "data.mdb")):
        env = dict(os.environ, LATENTDB=CLI)
        subprocess.run(["sh", "tools/demo.sh", BUILD, "small"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
    return db


@pytest.fixture(scope="session")
def store_fixture():
    """The planted store fixture: tokens [400, 256], acts [102400, 256], a 4096-latent
    jumprelu dictionary (tests/fixtures.sh)."""
    d = os.path.join(FIXTURES, "store")
    assert os.path.exists(os.path.join(d, "acts.npy")), "run tests/fixtures.sh first (make check)"
    return d


def new_db(path, dict_dir, name="res", skip="0,1"):
    """A fresh database with one dictionary registered."""
    if os.path.exists(path):
        shutil.rmtree(path)
    cli("init", path, "--skip-tokens", skip)
    cli("dict", "add", path, name, dict_dir)
    return path


def same(a, b, path="$"):
    """a == b for JSON structures, floats to within cJSON's printing: the CLI prints a
    double with 15 significant digits when that reads back within DBL_EPSILON of it
    (cJSON's print_number), so its last bit may differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{path}: {a!r} {b!r}"
        assert abs(a - b) <= 2.3e-16 * max(abs(a), abs(b)), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b and type(a) is type(b) or (isinstance(a, int) and isinstance(b, int)
                                                 and a == b), f"{path}: {a!r} != {b!r}"
    return True
