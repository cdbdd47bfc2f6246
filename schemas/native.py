"""The optional C extensions (``setup.py``): loaded when built, else None.

Each one has a pure-Python twin that produces the same values and bytes (the unit tests
compare them), so a machine without a C compiler runs Sluice unchanged, only slower.
``SLUICE_NO_NATIVE=1`` turns them all off, to compare or to rule them out.
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def load(module: str) -> Any:
    """The extension module ``module``, or None when it is not built or turned off."""
    if os.environ.get("SLUICE_NO_NATIVE"):
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
