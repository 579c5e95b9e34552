"""The pages in a real browser (tests/web/browser.js: Debian's chromium driven by
playwright-core): the top example's highlighted token and value equal the CLI's
JSON, search leads to the planted latent, links work, a corpus holding markup runs
nothing, no console errors, and the screenshots (BUILD/web/*.png) are not blank."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, DATA, Server, cli
from test_serve import the_latent

PLAYWRIGHT = os.path.join(DATA, "npm", "playwright-core")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser_run(demo_db, markup_db, tmp_path_factory):
    assert os.path.exists(os.path.join(PLAYWRIGHT, "package.json")), "run tools/fetch.sh (make deps)"
    assert os.path.exists(CHROMIUM), "chromium is missing (make deps)"
    the = the_latent(demo_db)
    out = os.path.join(BUILD, "web")
    os.makedirs(out, exist_ok=True)
    mdb, mlat = markup_db
    with Server(demo_db) as srv, Server(mdb) as msrv:
        cfg = {"url": srv.url, "the": the, "probe": " the", "chromium": CHROMIUM, "out": out,
               "top": json.loads(cli("top", demo_db, "res", the, "--json")),
               "latent": json.loads(cli("latent", demo_db, "res", the, "--json")),
               "markup_url": msrv.url, "markup_latent": mlat}
        cf = tmp_path_factory.mktemp("browser") / "config.json"
        cf.write_text(json.dumps(cfg))
        p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "browser.js"),
                            os.path.abspath(PLAYWRIGHT), str(cf)], capture_output=True, text=True,
                           timeout=300)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, f"browser.js printed nothing: {p.stderr[-2000:]}"
    res = json.loads(lines[-1])
    assert "error" not in res, res["error"]
    return res["checks"]


def test_browser(browser_run):
    failed = [c for c in browser_run if not c[1]]
    assert len(browser_run) >= 20 and not failed, failed


def test_screenshots_written(browser_run):
    for f in ("overview.png", "latent.png"):
        p = os.path.join(BUILD, "web", f)
        assert os.path.getsize(p) > 10000, p
