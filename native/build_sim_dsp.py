"""cffi build script for ``appliance._sim_dsp``, the simulated driver's sample loops.

Out-of-line API mode, like ``build_glib_loop.py``: setuptools compiles ``sim_dsp.c``
at build time (``setup.py`` names this file in ``cffi_modules``).
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((HERE / "sim_dsp.h").read_text())
ffibuilder.set_source(
    "appliance._sim_dsp",
    '#include <stddef.h>\n#include <stdint.h>\n#include "sim_dsp.h"',
    # setuptools wants paths relative to setup.py, which sits one level up.
    sources=["native/sim_dsp.c"],
    include_dirs=["native"],
    libraries=["m"],
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    # A manual build for debugging; "build/" is ignored by git.
    ffibuilder.compile(tmpdir=str(HERE.parent / "build" / "cffi"), verbose=True)
