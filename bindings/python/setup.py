"""Records, in warden/_build_info.py, which libwarden.so this package was
built against (the repository's build/libwarden.so, or $WARDEN_LIBRARY),
so an installed package finds the library it was built with.  Everything
else is in pyproject.toml."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = os.environ.get("WARDEN_LIBRARY") or os.path.normpath(
            os.path.join(HERE, "..", "..", "build", "libwarden.so"))
        if not os.path.exists(lib):
            raise SystemExit(f"warden: {lib} does not exist: run `make` in the "
                             "repository first (or set WARDEN_LIBRARY)")
        out = os.path.join(self.build_lib, "warden", "_build_info.py")
        with open(out, "w") as f:
            f.write('"""Written by setup.py: the libwarden.so this package was built with."""\n')
            f.write(f"LIBRARY = {os.path.abspath(lib)!r}\n")


setup(cmdclass={"build_py": BuildPy})
