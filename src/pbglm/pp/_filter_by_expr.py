"""edgeR's ``filterByExpr`` on an AnnData of (pseudobulk) samples x genes."""

from __future__ import annotations

import logging
from numbers import Real

import numpy as np
import pandas as pd
from anndata import AnnData

from .._design import design_frame
from .._io import read_counts
from .._numerics.filter_by_expr import filter_by_expr_mask

logger = logging.getLogger("pbglm")

__all__ = ["filter_by_expr"]


def _design_matrix(adata: AnnData, design) -> np.ndarray:
    """The design as a float matrix: a formula read against ``.obs``, or a samples x p array."""
    if isinstance(design, str):
        return design_frame(adata.obs, design).matrix
    try:
        X = np.asarray(design.to_numpy() if isinstance(design, pd.DataFrame) else design, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"design must be a formula string or a numeric (samples x coefficients) matrix, got "
            f"{type(design).__name__}."
        ) from None
    if X.ndim != 2 or X.shape[0] != adata.n_obs or X.shape[1] == 0 or not np.all(np.isfinite(X)):
        raise ValueError(
            f"design must be a formula or a finite (samples x coefficients) matrix with {adata.n_obs} rows, got "
            f"shape {X.shape}" + ("" if X.size == 0 or np.all(np.isfinite(X)) else " with non-finite values") + "."
        )
    return X


def filter_by_expr(
    adata: AnnData,
    design=None,
    *,
    group: str | None = None,
    layer: str | None = None,
    min_count: float = 10,
    min_total_count: float = 15,
    large_n: float = 10,
    min_prop: float = 0.7,
    inplace: bool = True,
) -> np.ndarray | None:
    """Keep the genes with enough counts to be worth testing (edgeR's ``filterByExpr``).

    A gene is kept when its counts per million reach ``min_count / median(library size) * 1e6``
    in at least ``n`` samples and its total count reaches ``min_total_count``. ``n`` is the size
    of the smallest group (``group``), or ``1 / max(leverage)`` of the design (``design``), or the
    number of samples; above ``large_n`` it becomes ``large_n + (n - large_n) * min_prop``.
    Library sizes are the sample totals over all genes, as for a fresh ``DGEList``. The result is
    exactly edgeR 3.40's ``filterByExpr(y, design)`` / ``filterByExpr(y, group = group)``.

    Parameters
    ----------
    adata
        Samples x genes AnnData with raw counts (dense or sparse).
    design
        A formula read against ``adata.obs`` (e.g. ``"~ cell + dex"``), or a samples x
        coefficients design matrix. Used when ``group`` is None.
    group
        Column of ``adata.obs`` with the sample groups; takes precedence over ``design``.
    layer
        Layer with the counts (``adata.X`` by default).
    min_count
        Minimum count, in the median-sized library, a gene must reach in ``n`` samples.
    min_total_count
        Minimum total count over all samples.
    large_n
        Group size above which only ``min_prop`` of the extra samples are required.
    min_prop
        Proportion of the samples above ``large_n`` that must pass.
    inplace
        Subset the genes of ``adata`` itself (otherwise only return the mask).

    Returns
    -------
    With ``inplace=True``, ``None``: the variables of ``adata`` are subset in place (``.X``,
    ``.var``, ``.layers``, ``.varm``, ...). With ``inplace=False``, the boolean mask over
    ``adata.var_names`` (True = keep) and ``adata`` is left unchanged. The number of genes
    removed is logged to the ``"pbglm"`` logger (level INFO).

    Raises
    ------
    KeyError
        If ``group`` or ``layer`` is not found.
    ValueError
        Invalid counts, an unusable design, or out-of-range thresholds.
    """
    for name, value in (("min_count", min_count), ("min_total_count", min_total_count), ("large_n", large_n)):
        if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}.")
    if isinstance(min_prop, bool) or not isinstance(min_prop, Real) or not 0.0 <= min_prop <= 1.0:
        raise ValueError(f"min_prop must be a number between 0 and 1, got {min_prop!r}.")
    if not isinstance(inplace, bool | np.bool_):
        raise TypeError(f"inplace must be True or False, got {inplace!r}.")
    counts = read_counts(adata, layer)
    groups = None
    X = None
    if group is not None:
        if group not in adata.obs.columns:
            raise KeyError(f"group {group!r} is not a column of adata.obs (available: {list(adata.obs.columns)}).")
        labels = adata.obs[group]
        if labels.isna().any():
            raise ValueError(f"adata.obs[{group!r}] has missing values; assign every sample to a group.")
        groups = labels.astype(str).to_numpy()
    elif design is not None:
        X = _design_matrix(adata, design)
    mask = filter_by_expr_mask(
        counts,
        design=X,
        group=groups,
        min_count=min_count,
        min_total_count=min_total_count,
        large_n=large_n,
        min_prop=min_prop,
    )
    n_removed = int(mask.size - mask.sum())
    logger.info("filter_by_expr: removed %d of %d genes with too few counts.", n_removed, mask.size)
    if not inplace:
        return mask
    if n_removed:
        adata._inplace_subset_var(mask)
    return None
