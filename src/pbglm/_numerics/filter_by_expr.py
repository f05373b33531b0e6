"""edgeR's ``filterByExpr`` rule on plain arrays.

A gene is kept when its CPM reaches ``min_count / median(lib_size) * 1e6`` in at least ``n_min``
samples and its total count reaches ``min_total_count``. ``n_min`` is the smallest group size
(with ``group``), ``1 / max(leverage)`` of the design (with ``design``; R's ``hat()``, which
adds an intercept column), or all samples; when above ``large_n`` it becomes
``large_n + (n_min - large_n) * min_prop``.
"""

from __future__ import annotations

import logging

import numpy as np

from .._kernels.edger_glm import qr_keep_columns

logger = logging.getLogger("pbglm")

__all__ = ["filter_by_expr_mask", "hat_values"]


def hat_values(design: np.ndarray, intercept: bool = True) -> np.ndarray:
    """Leverages of the design rows, as R's ``hat(design, intercept = TRUE)``."""
    X = np.asarray(design, dtype=np.float64)
    if intercept:
        X = np.column_stack([np.ones(X.shape[0]), X])
    X = X[:, qr_keep_columns(X)]
    Q, _ = np.linalg.qr(X)
    return np.sum(Q**2, axis=1)


def filter_by_expr_mask(
    counts: np.ndarray,
    design: np.ndarray | None = None,
    group=None,
    lib_size: np.ndarray | None = None,
    *,
    min_count: float = 10,
    min_total_count: float = 15,
    large_n: float = 10,
    min_prop: float = 0.7,
) -> np.ndarray:
    """Boolean mask of the genes edgeR's ``filterByExpr`` keeps.

    Parameters
    ----------
    counts
        ``(G, m)`` counts, genes in rows.
    design
        ``(m, p)`` design matrix (used when ``group`` is None).
    group
        Length-m group labels; takes precedence over ``design``.
    lib_size
        ``(m,)`` library sizes (column sums by default; edgeR's DGEList method passes
        ``lib.size * norm.factors``).
    min_count, min_total_count, large_n, min_prop
        edgeR's thresholds (defaults 10, 15, 10, 0.7).

    Returns
    -------
    ``(G,)`` boolean array, True for the genes to keep.
    """
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError("counts must be a 2-D (genes x samples) array.")
    G, m = y.shape
    lib = y.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    if lib.shape != (m,):
        raise ValueError(f"lib_size must have one entry per sample ({m}), got shape {lib.shape}.")
    if group is None:
        if design is None:
            logger.info("No group or design set. Assuming all samples belong to one group.")
            min_n = float(m)
        else:
            X = np.asarray(design, dtype=np.float64)
            if X.shape[0] != m:
                raise ValueError(f"design has {X.shape[0]} rows but counts have {m} samples.")
            min_n = 1.0 / np.max(hat_values(X))
    else:
        g = np.asarray(group)
        if g.shape != (m,):
            raise ValueError(f"group must have one label per sample ({m}).")
        _, n = np.unique(g, return_counts=True)
        min_n = float(n[n > 0].min())
    if min_n > large_n:
        min_n = large_n + (min_n - large_n) * min_prop
    cutoff = min_count / np.median(lib) * 1e6
    cpm = y * (1e6 / lib)[None, :]  # edgeR computes count * (1e6 / lib.size)
    tol = 1e-14
    keep_cpm = (cpm >= cutoff).sum(axis=1) >= (min_n - tol)
    keep_total = y.sum(axis=1) >= (min_total_count - tol)
    return keep_cpm & keep_total
