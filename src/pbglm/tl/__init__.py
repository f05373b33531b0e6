"""Tools: fit models, test hypotheses, shrink fold changes, explain designs."""

from ._explain import DesignExplanation, explain_design
from ._fit import fit
from ._shrink import shrink
from ._test import test

__all__ = ["DesignExplanation", "explain_design", "fit", "shrink", "test"]
