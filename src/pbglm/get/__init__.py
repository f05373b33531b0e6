"""Getters: stored results as tidy tables."""

from ._normalized_counts import normalized_counts
from ._results import results

__all__ = ["normalized_counts", "results"]
