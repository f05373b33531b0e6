"""Say so when the numba kernels are about to be compiled (first run after an install or upgrade).

The kernels are compiled with ``cache=True``: numba keeps the machine code on disk (in
``__pycache__`` beside the sources, a user-wide cache when that is not writable, or under
``NUMBA_CACHE_DIR``) and reuses it in later processes. Without a usable cache the first fit of a
process compiles for about a minute, silently; :func:`notify_compile` says so before it starts.

"Will compile" is decided per method from the modules holding the kernels every fit of that
method runs: a module is cold when none of its kernels is compiled in this process nor has an
entry in numba's on-disk index that is valid here (same numba version, source file, bytecode and
CPU). A numba internal that changes shape makes the check assume a warm cache (stay quiet).
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
from typing import TextIO

from numba.core.dispatcher import Dispatcher

logger = logging.getLogger("pbglm")

MESSAGE = "compiling numba kernels (first run only, about a minute)..."

#: Modules whose kernels every fit of the method runs (so they are cached after any such fit).
KERNEL_MODULES = {
    "deseq2": (
        "pbglm._kernels.nb_glm",
        "pbglm._kernels.nb_dispersion",
        "pbglm._kernels.start_values",
        "pbglm._numerics.size_factors",
        "pbglm._numerics.cooks",
    ),
    "edger": (  # edgeR 4's QL fit (legacy=False)
        "pbglm._kernels.edger_glm",
        "pbglm._kernels.ql_adjusted_deviance",
        "pbglm._numerics.tmm",
    ),
    "edger_legacy": (  # edgeR 3.40's estimateDisp + legacy glmQLFit
        "pbglm._kernels.edger_glm",
        "pbglm._numerics.tmm",
        "pbglm._numerics.edger_dispersion",
    ),
}

_announced: set[str] = set()


def module_kernels(module_name: str) -> list[Dispatcher]:
    """The numba dispatchers defined in a module."""
    module = importlib.import_module(module_name)
    return [
        obj for obj in vars(module).values()
        if isinstance(obj, Dispatcher) and getattr(obj.py_func, "__module__", None) == module_name
    ]


def cached_on_disk(dispatcher: Dispatcher) -> bool:
    """Whether numba's on-disk index holds a valid entry of this kernel for this machine."""
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None:  # cache=False or a numba without this layout
        return True
    try:
        _, magic, hashes = cache._index_key(None, dispatcher.targetctx.codegen())
        index = cache_file._load_index()  # {} when missing, stale (source changed) or of another numba
    except (AttributeError, TypeError, ValueError, OSError, EOFError, pickle.UnpicklingError):
        path = getattr(cache_file, "_index_path", None)
        return path is None or os.path.exists(path)
    return any(isinstance(key, tuple) and key[1:] == (magic, hashes) for key in index)


def _compiled(dispatcher: Dispatcher) -> bool:
    return bool(dispatcher.overloads) or cached_on_disk(dispatcher)


def kernels_need_compiling(method: str) -> bool:
    """Whether a fit with ``method`` will compile kernels first (some core module is cold)."""
    for module_name in KERNEL_MODULES.get(method, ()):
        kernels = module_kernels(module_name)
        if kernels and not any(_compiled(d) for d in kernels):
            return True
    return False


def notify_compile(method: str, *, stream: TextIO | None = None) -> bool:
    """Announce, once per process and method, that the kernels of ``method`` are about to compile.

    Writes :data:`MESSAGE` to ``stream`` (the command line) or, by default, logs it at WARNING on
    the ``pbglm`` logger, which Python shows on stderr even when logging is not configured (and a
    notebook shows under the cell). Later calls for the same method only log at INFO.

    Parameters
    ----------
    method
        A key of :data:`KERNEL_MODULES`: ``"deseq2"``, ``"edger"`` (edgeR 4's QL fit) or
        ``"edger_legacy"``.
    stream
        Where to write the message instead of logging it.

    Returns
    -------
    Whether kernels will be compiled.
    """
    if not kernels_need_compiling(method):
        return False
    if method in _announced:
        logger.info(MESSAGE)
        return True
    _announced.add(method)
    if stream is not None:
        stream.write(MESSAGE + "\n")
        stream.flush()
    else:
        logger.warning(MESSAGE)
    return True
