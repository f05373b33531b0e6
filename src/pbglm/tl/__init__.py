"""Tools: fit models and test hypotheses."""

from ._fit import fit
from ._test import test

__all__ = ["fit", "test"]
