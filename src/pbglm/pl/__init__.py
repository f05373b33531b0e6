"""Plotting: volcano and MA plots, effect sizes, coefficients, dispersions, p-values, design, counts.

Every function takes the AnnData first, draws into ``ax`` (or a new figure) and returns the
Axes, or the Figure with ``return_fig=True``.
"""

from ._coefficients import coefficients
from ._counts import counts
from ._design import design
from ._dispersions import dispersions
from ._effect_sizes import effect_sizes
from ._ma import ma
from ._pvalue_hist import pvalue_hist
from ._volcano import volcano

__all__ = ["coefficients", "counts", "design", "dispersions", "effect_sizes", "ma", "pvalue_hist", "volcano"]
