"""The documented install, offline, into a fresh venv on Debian's Python:
python3 -m venv --system-site-packages V && V/bin/pip install --no-index
--no-build-isolation ./python; the installed package carries its own library."""
import os
import subprocess

from conftest import ROOT, cli_json, same


def test_pip_install_in_a_fresh_venv(tmp_path, demo_db):
    v = tmp_path / "V"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(v)],
                   check=True, capture_output=True)
    env = {k: x for k, x in os.environ.items() if k not in ("LATENTDB_LIB", "PYTHONPATH")}
    p = subprocess.run([str(v / "bin" / "pip"), "install", "--no-index", "--no-build-isolation",
                        "./python"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    code = ("import json, latentdb, os; "
            "print(json.dumps([os.path.dirname(latentdb._ffi.LIBRARY_PATH) == "
            "os.path.dirname(latentdb.__file__), latentdb.open(%r).info()]))" % demo_db)
    out = subprocess.run([str(v / "bin" / "python"), "-c", code], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json
    own, info = json.loads(out.stdout)
    assert own, "the installed package should load its own copy of liblatentdb.so"
    same(info, cli_json("info", demo_db))  # (the CLI prints doubles with 15 digits)
