"""Bundled example data sets (see ``data/README.md`` for provenance)."""

from ._load import airway, pasilla

__all__ = ["airway", "pasilla"]
