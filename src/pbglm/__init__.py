"""pbglm: negative-binomial GLM differential expression for pseudobulk and bulk RNA-seq on AnnData.

The subpackages (``pp``, ``tl``, ``pl``, ``get``, ``datasets``) load on first use, so that
``import pbglm`` does not pay for numba, matplotlib and SciPy until they are needed.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ._settings import settings

try:
    __version__ = version("pbglm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

_SUBPACKAGES = ("datasets", "get", "pl", "pp", "tl")

if TYPE_CHECKING:  # pragma: no cover - for static analysis and IDEs
    from . import datasets, get, pl, pp, tl


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pbglm' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBPACKAGES])


__all__ = ["datasets", "get", "pl", "pp", "settings", "tl", "__version__"]
