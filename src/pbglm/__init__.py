"""pbglm: negative-binomial GLM differential expression for pseudobulk and bulk RNA-seq on AnnData."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, pl, pp, tl
from ._settings import settings

try:
    __version__ = version("pbglm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["datasets", "get", "pl", "pp", "settings", "tl", "__version__"]
