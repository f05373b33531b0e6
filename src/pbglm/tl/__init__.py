"""Tools: fit models, test hypotheses, shrink fold changes, explain designs; PCA and MDS of the samples."""

from ._explain import DesignExplanation, explain_design
from ._fit import fit
from ._mds import mds
from ._pca import pca
from ._shrink import shrink
from ._test import test

__all__ = ["DesignExplanation", "explain_design", "fit", "mds", "pca", "shrink", "test"]
