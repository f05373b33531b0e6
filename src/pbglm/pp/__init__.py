"""Preprocessing: pseudobulk aggregation, filtering of samples and genes, transforms (vst, rlog, log-CPM)."""

from ._filter_by_expr import filter_by_expr
from ._filter_by_prop import filter_by_prop
from ._filter_samples import filter_samples
from ._log_cpm import log_cpm
from ._pseudobulk import pseudobulk
from ._rlog import rlog
from ._vst import vst

__all__ = ["filter_by_expr", "filter_by_prop", "filter_samples", "log_cpm", "pseudobulk", "rlog", "vst"]
