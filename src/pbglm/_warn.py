"""Warnings that point at the user's line, not at pbglm's internals.

``warnings.warn(..., stacklevel=n)`` needs the depth of the call stack inside pbglm, which
changes whenever a function is wrapped (e.g. by :func:`pbglm._renamed_keyword.renamed_keyword`)
or called from another pbglm function. :func:`warn` counts the frames itself: the warning is
attributed to the first frame outside the ``pbglm`` package (a notebook cell, a script).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` call made by this function's caller.

    With it the warning points at the first frame outside pbglm.
    """
    frame = sys._getframe(1)  # the caller of user_stacklevel, inside pbglm
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue ``message`` as ``category``, attributed to the user's code that called into pbglm."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
