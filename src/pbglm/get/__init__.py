"""Getters: stored results as tidy tables, and what is stored."""

from ._normalized_counts import normalized_counts
from ._results import results
from ._stored import fits, tests

__all__ = ["fits", "normalized_counts", "results", "tests"]
