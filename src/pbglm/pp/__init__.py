"""Preprocessing: pseudobulk aggregation and filtering of samples and genes."""

from ._filter_by_expr import filter_by_expr
from ._filter_by_prop import filter_by_prop
from ._filter_samples import filter_samples
from ._pseudobulk import pseudobulk

__all__ = ["filter_by_expr", "filter_by_prop", "filter_samples", "pseudobulk"]
