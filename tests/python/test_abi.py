"""The struct mirrors of python/latentdb/_ffi.py against the C compiler's layout."""
import ctypes
import os
import subprocess

from conftest import BUILD

from latentdb import _ffi


def test_struct_layout_matches_the_header():
    out = subprocess.run([os.path.join(BUILD, "tests", "abi")], capture_output=True, text=True,
                         check=True).stdout
    seen = 0
    for line in out.splitlines():
        name, n = line.rsplit(" ", 1)
        n = int(n)
        if "." in name:
            s, f = name.split(".")
            assert getattr(_ffi.ABI[s], f).offset == n, f"{name}: ctypes offset differs from C's"
        else:
            assert ctypes.sizeof(_ffi.ABI[name]) == n, f"{name}: ctypes size differs from C's"
        seen += 1
    assert seen > len(_ffi.ABI) * 2


def test_library_version_is_the_package_version():
    import latentdb
    assert latentdb.version() == latentdb.__version__
