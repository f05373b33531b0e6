"""``pp.vst``: DESeq2's variance-stabilising transformation as a layer."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from anndata import AnnData

from .._io import to_plain
from .._methods.deseq2_vst import variance_stabilize
from .._storage_keys import check_key_added
from ._deseq2_inputs import transform_inputs

__all__ = ["vst"]

FIT_TYPES = ("parametric", "local", "mean")


def _stored_trend(fit):
    """The trend of a stored DESeq2 fit as (function, fit type, coefficients), when it can be rebuilt."""
    params = fit.record.get("fit", {})
    used = str(params.get("fit_type", ""))
    coefs = params.get("trend_coefficients")
    if used == "parametric" and coefs is not None and np.size(coefs) == 2:
        a0, a1 = (float(c) for c in np.asarray(coefs).ravel())
        return (lambda q: a0 + a1 / q), "parametric", [a0, a1]
    if used == "mean" and coefs is not None and np.size(coefs) == 1:
        value = float(np.asarray(coefs).ravel()[0])
        return (lambda q: np.full(np.shape(q), value)), "mean", [value]
    return None


def vst(
    adata: AnnData,
    *,
    blind: bool = True,
    fit_type: str = "parametric",
    nsub: int = 1000,
    key: str = "pbglm",
    layer: str | None = None,
    key_added: str = "vst",
    copy: bool = False,
) -> AnnData | None:
    """Variance-stabilising transformation, DESeq2's ``vst()``.

    The dispersion trend is fitted on ``nsub`` genes spread evenly over the mean normalised
    counts above 5 (DESeq2 picks them the same way, without randomness) and the transform of that
    trend is applied to every gene: for the parametric trend ``a0 + a1 / mean``, the closed form
    ``log2((1 + a1 + 2 a0 q + 2 sqrt(a0 q (1 + a1 + a0 q))) / (4 a0))`` of the normalised count
    ``q``. The result is on the log2 scale for large counts and has a roughly constant variance
    across the mean, for PCA, clustering and heatmaps.

    When fewer than ``nsub`` genes have a mean normalised count above 5, the trend is fitted on
    every gene instead (DESeq2's ``varianceStabilizingTransformation``; logged as a warning); with
    ``blind=False`` that uses the stored fit's trend when it is parametric or mean.

    Parameters
    ----------
    adata
        Samples x genes AnnData with raw counts.
    blind
        ``True``: blind to the design (``~ 1``), size factors computed from the counts. ``False``:
        the design and size factors of the DESeq2 fit under ``key`` (run :func:`pbglm.tl.fit`
        first), so that the trend does not absorb the effects of the design.
    fit_type
        Dispersion trend: ``"parametric"`` (falls back to ``"local"`` with a warning when it does
        not fit, as DESeq2), ``"local"`` or ``"mean"``. pbglm's local trend is a local quadratic
        regression, not DESeq2's ``locfit``: values differ slightly from R's for this fit type.
    nsub
        Number of genes the trend is fitted on.
    key
        Key of the fit read with ``blind=False``.
    layer
        Layer with the counts (``adata.X``, or with ``blind=False`` the layer the fit used).
    key_added
        Name of the layer written.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy with ``copy=True``. Writes ``.layers[key_added]`` (float64, samples x genes)
    and ``.uns[key_added]``: ``blind``, ``fit_type`` (used), ``trend_coefficients`` (``a0, a1`` of the
    parametric trend, the mean dispersion, or ``"None"`` for local), ``n_genes_trend``, ``subset``,
    ``size_factors`` (per sample) and ``layer``.
    """
    if fit_type not in FIT_TYPES:
        raise ValueError(f"fit_type={fit_type!r} is not one of {FIT_TYPES}.")
    if isinstance(nsub, bool) or not isinstance(nsub, Integral) or nsub < 2:
        raise ValueError(f"nsub must be an integer >= 2, got {nsub!r}.")
    check_key_added(adata, key_added, slot="layers")
    inp = transform_inputs(adata, blind=blind, key=key, layer=layer, caller="vst")
    stored = None if inp.fit is None else _stored_trend(inp.fit)
    values, info = variance_stabilize(inp.counts, inp.size_factors, inp.design, fit_type=fit_type, nsub=int(nsub),
                                      stored_trend=stored)
    adata = adata.copy() if copy else adata
    adata.layers[key_added] = values
    adata.uns[key_added] = to_plain({
        "blind": blind, **info, "size_factors": np.asarray(inp.size_factors, dtype=float),
        "size_factor_type": inp.size_factor_type, "layer": "None" if inp.layer is None else inp.layer,
        "key": "None" if blind else key,
    })
    return adata if copy else None
