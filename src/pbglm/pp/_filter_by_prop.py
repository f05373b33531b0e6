"""Keep genes expressed in a minimum fraction of cells in enough pseudobulk samples."""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from anndata import AnnData
from scipy import sparse

logger = logging.getLogger("pbglm")


def filter_by_prop(
    adata: AnnData,
    *,
    min_prop: float = 0.1,
    min_samples: int = 2,
    layer: str = "fraction_expressing",
    inplace: bool = True,
) -> AnnData | None:
    """Keep genes expressed in at least ``min_prop`` of the cells of at least ``min_samples`` samples.

    Same rule as decoupler's ``filter_by_prop``: a gene is kept when
    ``(adata.layers[layer] >= min_prop).sum(axis=0) >= min_samples``.

    Parameters
    ----------
    adata
        Pseudobulk data made by :func:`pbglm.pp.pseudobulk` with ``fraction_expressing=True``.
    min_prop
        Minimum fraction of the cells of a pseudobulk sample with a positive count, in ``[0, 1]``.
    min_samples
        Minimum number of pseudobulk samples in which a gene must reach ``min_prop``.
    layer
        Layer holding the fraction of expressing cells per sample and gene.
    inplace
        Subset the genes of ``adata`` itself instead of returning a copy.

    Returns
    -------
    ``None`` with ``inplace=True``: the variables of ``adata`` are subset in place (``.X``,
    ``.var``, ``.layers``, ``.varm``, ...). With ``inplace=False``, a filtered copy. The number of
    genes removed is logged to the ``"pbglm"`` logger (level INFO).

    Raises
    ------
    KeyError
        If ``layer`` is missing.
    ValueError
        If ``min_prop`` is outside ``[0, 1]`` or ``min_samples`` is negative.
    """
    if layer not in adata.layers:
        raise KeyError(
            f"adata.layers[{layer!r}] is missing; create the pseudobulk data with "
            "pbglm.pp.pseudobulk(..., fraction_expressing=True), or pass layer= naming the layer with the fraction "
            f"of expressing cells (available layers: {list(adata.layers.keys())})."
        )
    if isinstance(min_prop, bool) or not isinstance(min_prop, Real) or not 0.0 <= min_prop <= 1.0:
        raise ValueError(f"min_prop must be a number between 0 and 1, got {min_prop!r}.")
    if isinstance(min_samples, bool) or not isinstance(min_samples, Integral) or min_samples < 0:
        raise ValueError(f"min_samples must be a non-negative integer, got {min_samples!r}.")
    props = adata.layers[layer]
    if sparse.issparse(props):
        # sparse >= keeps the comparison sparse only for positive thresholds
        hits = (props >= min_prop) if min_prop > 0 else props.toarray() >= min_prop
        n_samples = np.asarray(hits.sum(axis=0)).ravel()
    else:
        hits = props >= min_prop
        n_samples = hits.sum(axis=0)
        if hasattr(n_samples, "compute"):
            n_samples = n_samples.compute()
        n_samples = np.asarray(n_samples).ravel()
    mask = n_samples >= min_samples
    n_removed = int(adata.n_vars - mask.sum())
    logger.info(
        "filter_by_prop: removed %d of %d genes expressed in fewer than %s of the cells of %d samples.",
        n_removed,
        adata.n_vars,
        min_prop,
        min_samples,
    )
    if inplace:
        if n_removed:
            adata._inplace_subset_var(mask)
        return None
    return adata[:, mask].copy()
