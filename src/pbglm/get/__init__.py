"""Getters: stored results as tidy tables, and what is stored."""

from ._results import results
from ._stored import fits, tests

__all__ = ["fits", "results", "tests"]
