"""Drop pseudobulk samples with too few cells or counts."""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._io import get_matrix

logger = logging.getLogger("pbglm")

#: Columns holding the number of cells per pseudobulk sample: pbglm, scanpy >= 1.12
#: (``sc.get.aggregate``), decoupler >= 2 and decoupler 1 (``get_pseudobulk``).
CELL_COLUMNS = ("n_cells", "n_obs_aggregated", "psbulk_cells", "psbulk_n_cells")
#: Columns holding the total count per sample: pbglm, decoupler.
COUNT_COLUMNS = ("total_counts", "psbulk_counts")


def _first_column(adata: AnnData, names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in adata.obs.columns), None)


def filter_samples(
    adata: AnnData,
    *,
    min_cells: int | None = None,
    min_counts: float | None = None,
    layer: str | None = None,
    inplace: bool = True,
) -> AnnData | None:
    """Drop pseudobulk samples summing too few cells or too few counts.

    Parameters
    ----------
    adata
        Pseudobulk data, typically the output of :func:`pbglm.pp.pseudobulk`.
    min_cells
        Samples with fewer cells than this are dropped. The number of cells per sample is read
        from the first ``.obs`` column present of ``n_cells`` (:func:`pbglm.pp.pseudobulk`),
        ``n_obs_aggregated`` (scanpy >= 1.12 ``sc.get.aggregate``), ``psbulk_cells`` (decoupler
        >= 2) and ``psbulk_n_cells`` (decoupler 1). ``None`` skips this criterion.
    min_counts
        Samples whose total count is below this are dropped. The total count is read from
        ``.obs['total_counts']`` or decoupler's ``.obs['psbulk_counts']`` or, when neither is
        there, computed as the row sums of the counts (``.X``, or ``layer``; with ``.X`` empty, as
        ``sc.get.aggregate`` leaves it, the only layer of integer counts such as ``'sum'``).
        ``None`` skips this criterion.
    layer
        Layer holding the counts for ``min_counts`` when no total-count column is present.
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
        If ``min_cells`` is given but no cell-count column is present, or ``layer`` is missing.
    ValueError
        If a threshold is negative, or if no sample would be left.
    """
    for name, value in (("min_cells", min_cells), ("min_counts", min_counts)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real) or not value >= 0
                                  or value == float("inf")):
            raise ValueError(f"{name} must be a finite non-negative number or None, got {value!r}.")
    mask = np.ones(adata.n_obs, dtype=bool)
    if min_cells is not None:
        col = _first_column(adata, CELL_COLUMNS)
        if col is None:
            raise KeyError(
                "No column with the number of cells per sample in .obs (looked for "
                f"{', '.join(map(repr, CELL_COLUMNS))}), so min_cells cannot be applied. pbglm.pp.pseudobulk "
                "writes 'n_cells' and scanpy >= 1.12 sc.get.aggregate 'n_obs_aggregated'; otherwise add the "
                "number of cells per sample as obs['n_cells']."
            )
        mask &= adata.obs[col].to_numpy() >= min_cells
    if min_counts is not None:
        col = _first_column(adata, COUNT_COLUMNS)
        total = adata.obs[col].to_numpy() if col is not None else _row_sums(get_matrix(adata, layer))
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
    if sparse.issparse(x):
        return np.asarray(x.sum(axis=1)).ravel()
    s = x.sum(axis=1)
    if hasattr(s, "compute"):
        s = s.compute()
    return np.asarray(s).ravel()
