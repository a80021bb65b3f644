from setuptools import setup

setup(
    cffi_modules=[
        "native/build_glib_loop.py:ffibuilder",
        "native/build_sim_dsp.py:ffibuilder",
    ]
)
