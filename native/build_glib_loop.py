"""cffi build script for ``appliance._native``, the GLib main-loop driver.

Out-of-line API mode: setuptools runs this at build time (``setup.py`` names it in
``cffi_modules``) and compiles ``glib_loop.c`` into an extension module, so nothing is
compiled at run time. GLib itself is not linked here: the C code opens it with dlopen,
so the build needs gcc and the Python headers only. ``-ldl`` covers glibc before 2.34,
where dlopen still lived in libdl.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "glib_loop.h").read_text())
ffibuilder.set_source(
    "appliance._native",
    '#include "glib_loop.h"',
    # setuptools wants paths relative to setup.py, which sits one level up.
    sources=["native/glib_loop.c"],
    include_dirs=["native"],
    libraries=["dl", "pthread"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    # A manual build for debugging; "build/" is ignored by git.
    ffibuilder.compile(tmpdir=str(HERE.parent / "build" / "cffi"), verbose=True)
