"""Bundled example data sets (see ``data/README.md`` for provenance) and a simulator."""

from ._load import airway, pasilla
from ._simulate import simulate_single_cell

__all__ = ["airway", "pasilla", "simulate_single_cell"]
