"""Getters: stored results as tidy tables."""

from ._results import results

__all__ = ["results"]
