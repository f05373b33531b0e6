"""Plotting: volcano and MA plots, effect sizes, coefficients, dispersions, p-values, design, counts."""

from ._volcano import volcano

__all__ = ["volcano"]
