"""Optional C extensions; each has a pure-Python twin that stays the reference.

`_framecodec` (built by `pip install -e .` where a C compiler is present) encodes and
reads the common per-step frame in one call each. Machines without a compiler install
without it and use the Python path; `GENWORLD_PURE_PYTHON=1` forces the Python path.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

PURE_PYTHON_ENV = "GENWORLD_PURE_PYTHON"
# The `_framecodec.VERSION` this Python code expects (FRAMECODEC_VERSION in the C source).
FRAMECODEC_VERSION = 2


def pure_python_forced() -> bool:
    """Whether `GENWORLD_PURE_PYTHON` asks for the Python path (any value but '', '0')."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


def load_framecodec() -> tuple[ModuleType | None, str]:
    """(the C frame codec or None, a line saying which path is in use and why)."""
    if pure_python_forced():
        return None, f"frame codec: pure Python ({PURE_PYTHON_ENV} is set)"
    try:
        from bridge._native import _framecodec
    except ImportError as exc:
        return None, f"frame codec: pure Python (the C extension is not built: {exc})"
    built = getattr(_framecodec, "VERSION", None)
    if built != FRAMECODEC_VERSION:
        return None, (
            f"frame codec: pure Python (the built C extension is version {built}, this source expects "
            f"{FRAMECODEC_VERSION}: run `pip install -e .` again)"
        )
    return _framecodec, "frame codec: C extension bridge._native._framecodec"
