"""Builds the latentdb package: pure Python, plus a copy of the C library built by
`make` in the checkout (../lib/liblatentdb.so), so that the installed package
works wherever its environment goes. Nothing is compiled here."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        src = os.environ.get("LATENTDB_LIB") or os.path.join(HERE, "..", "lib", "liblatentdb.so")
        if not os.path.exists(src):
            raise SystemExit(f"latentdb: {src} does not exist: run `make` in the checkout first "
                             "(or set LATENTDB_LIB to a built liblatentdb.so)")
        dst = os.path.join(self.build_lib, "latentdb", "liblatentdb.so")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(src), dst)


setup(cmdclass={"build_py": BuildWithLibrary})
