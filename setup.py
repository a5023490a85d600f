"""Build of the optional C extension; everything else is declared in pyproject.toml.

The extension is `optional`: where no C compiler is available, `pip install` still
succeeds and GenWorld uses the pure-Python frame codec (bridge._native says which).
"""

import sys

from setuptools import Extension, setup

# Bit-identical floating point with the Python reference: no fused multiply-add.
_COMPILE_ARGS = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off", "-fno-fast-math"]

setup(
    ext_modules=[
        Extension(
            "bridge._native._framecodec",
            sources=["bridge/_native/_framecodec.c"],
            extra_compile_args=_COMPILE_ARGS,
            optional=True,
        )
    ]
)
