from setuptools import setup

setup(
    cffi_modules=[
        "native/build.py:glib_loop",
        "native/build.py:fanout",
        "native/build.py:sim_dsp",
    ]
)
