from setuptools import setup

setup(cffi_modules=["native/build_glib_loop.py:ffibuilder"])
