"""cffi build script for the appliance's C modules.

Out-of-line API mode: setuptools runs this at build time (``setup.py`` names each
builder below in ``cffi_modules``) and compiles the C sources into extension modules,
so nothing is compiled at run time. Each module's header is also its cdef.

* ``appliance._native`` (``glib_loop.c``): the GLib main loop the Zoom SDK needs.
  GLib itself is not linked: the C code opens it with dlopen, so the build needs gcc
  and the Python headers only. ``-ldl`` covers glibc before 2.34, where dlopen still
  lived in libdl.
* ``appliance._fanout`` (``fanout.c``): one message to many sockets.
* ``appliance._sim_dsp`` (``sim_dsp.c``): the simulated driver's mixer and noise.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
WARNINGS = ["-O2", "-Wall", "-Wextra"]


def _builder(
    module: str, name: str, libraries: list[str], extra_args: list[str]
) -> FFI:
    builder = FFI()
    builder.cdef((HERE / f"{name}.h").read_text())
    builder.set_source(
        module,
        f"#include <stddef.h>\n#include <stdint.h>\n#include <sys/types.h>\n"
        f'#include "{name}.h"',
        # setuptools wants paths relative to setup.py, which sits one level up.
        sources=[f"native/{name}.c"],
        include_dirs=["native"],
        libraries=libraries,
        extra_compile_args=WARNINGS + extra_args,
    )
    return builder


glib_loop = _builder(
    "appliance._native", "glib_loop", ["dl", "pthread"], ["-Wno-unused-parameter"]
)
fanout = _builder("appliance._fanout", "fanout", [], [])
sim_dsp = _builder("appliance._sim_dsp", "sim_dsp", ["m"], [])

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    # A manual build for debugging; "build/" is ignored by git.
    for builder in (glib_loop, fanout, sim_dsp):
        builder.compile(tmpdir=str(HERE.parent / "build" / "cffi"), verbose=True)
