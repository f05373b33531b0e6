"""Tools: fit models, test hypotheses, explain designs."""

from ._explain import DesignExplanation, explain_design
from ._fit import fit
from ._test import test

__all__ = ["DesignExplanation", "explain_design", "fit", "test"]
