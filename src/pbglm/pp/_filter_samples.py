"""Drop pseudobulk samples with too few cells or counts."""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import numpy as np
from anndata import AnnData
from scipy import sparse

logger = logging.getLogger("pbglm")


def filter_samples(
    adata: AnnData,
    *,
    min_cells: int | None = None,
    min_counts: float | None = None,
    inplace: bool = True,
) -> AnnData | None:
    """Drop pseudobulk samples summing too few cells or too few counts.

    Parameters
    ----------
    adata
        Pseudobulk data, typically the output of :func:`pbglm.pp.pseudobulk`.
    min_cells
        Samples with ``.obs['n_cells']`` below this are dropped. ``None`` skips this criterion.
    min_counts
        Samples whose total count is below this are dropped. The total count is read from
        ``.obs['total_counts']`` or, when that column is missing, computed as the row sums of ``.X``.
        ``None`` skips this criterion.
    inplace
        Subset ``adata`` itself (like :func:`scanpy.pp.filter_cells`) instead of returning a copy.

    Returns
    -------
    ``None`` with ``inplace=True``: the observations of ``adata`` are subset in place (``.X``,
    ``.obs``, ``.layers``, ``.obsm``, ... all keep only the retained samples). With
    ``inplace=False``, a filtered copy of ``adata``. The number and names of the dropped samples
    are logged to the ``"pbglm"`` logger (level INFO).

    Raises
    ------
    KeyError
        If ``min_cells`` is given but ``.obs['n_cells']`` is missing.
    ValueError
        If a threshold is negative, or if no sample would be left.
    """
    for name, value in (("min_cells", min_cells), ("min_counts", min_counts)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real) or not value >= 0
                                  or value == float("inf")):
            raise ValueError(f"{name} must be a finite non-negative number or None, got {value!r}.")
    mask = np.ones(adata.n_obs, dtype=bool)
    if min_cells is not None:
        if "n_cells" not in adata.obs.columns:
            raise KeyError(
                "adata.obs['n_cells'] is missing, so min_cells cannot be applied; create the pseudobulk data with "
                "pbglm.pp.pseudobulk (which writes it) or add the number of cells per sample as obs['n_cells']."
            )
        mask &= adata.obs["n_cells"].to_numpy() >= min_cells
    if min_counts is not None:
        if "total_counts" in adata.obs.columns:
            total = adata.obs["total_counts"].to_numpy()
        else:
            total = _row_sums(adata.X)
        mask &= total >= min_counts
    n_dropped = int(adata.n_obs - mask.sum())
    if n_dropped == adata.n_obs and adata.n_obs > 0:
        raise ValueError(
            f"All {adata.n_obs} samples are below min_cells={min_cells} or min_counts={min_counts}; "
            "lower the thresholds."
        )
    if n_dropped:
        logger.info(
            "filter_samples: dropped %d of %d samples (min_cells=%s, min_counts=%s): %s",
            n_dropped,
            adata.n_obs,
            min_cells,
            min_counts,
            ", ".join(map(str, adata.obs_names[~mask])),
        )
    if inplace:
        if n_dropped:
            adata._inplace_subset_obs(mask)
        return None
    return adata[mask].copy()


def _row_sums(x: Any) -> np.ndarray:
    if x is None:
        raise ValueError("adata.X is None and adata.obs['total_counts'] is missing; add obs['total_counts'].")
    if sparse.issparse(x):
        return np.asarray(x.sum(axis=1)).ravel()
    s = x.sum(axis=1)
    if hasattr(s, "compute"):
        s = s.compute()
    return np.asarray(s).ravel()
