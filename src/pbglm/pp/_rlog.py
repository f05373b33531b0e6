"""``pp.rlog``: DESeq2's regularised log transformation as a layer."""

from __future__ import annotations

import logging
from numbers import Real

import numpy as np
from anndata import AnnData

from .._io import to_plain
from .._methods.deseq2_rlog import rlog_transform
from .._methods.deseq2_vst import fit_vst_trend
from .._storage_keys import check_key_added
from ._deseq2_inputs import transform_inputs
from ._vst import FIT_TYPES

logger = logging.getLogger("pbglm")

__all__ = ["rlog"]


def rlog(
    adata: AnnData,
    *,
    blind: bool = True,
    fit_type: str = "parametric",
    prior_var: float | None = None,
    key: str = "pbglm",
    layer: str | None = None,
    key_added: str = "rlog",
    copy: bool = False,
) -> AnnData | None:
    """Regularised log transformation, DESeq2's ``rlog()``.

    Each gene is fitted by a negative-binomial GLM with an intercept and one coefficient per sample,
    at the dispersion of the trend, with a normal prior on the sample coefficients whose variance
    is estimated from the data (the weighted upper 5% of the log fold changes from the gene means,
    matched to a normal); the transformed value is intercept plus sample coefficient (log2).
    Low counts are shrunk towards the gene's mean, so that their noise does not dominate distances.
    Much slower than :func:`pbglm.pp.vst` with many samples (DESeq2 recommends vst from 30 on).

    Parameters
    ----------
    adata
        Samples x genes AnnData with raw counts.
    blind
        ``True``: blind to the design (``~ 1``): size factors, gene-wise dispersions and trend are
        computed from the counts. ``False``: the size factors, trend dispersions and base means of
        the DESeq2 fit under ``key``.
    fit_type
        Dispersion trend fitted with ``blind=True``: ``"parametric"``, ``"local"`` or ``"mean"``.
    prior_var
        The prior variance of the sample coefficients (log2 scale); estimated when ``None``.
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
    ``None``, or a copy with ``copy=True``. Writes ``.layers[key_added]`` (float64, samples x genes;
    0 for genes without counts) and ``.uns[key_added]``: ``blind``, ``prior_var``, ``fit_type``,
    ``intercept`` (per gene, log2; -inf for genes without counts), ``size_factors`` and ``layer``.
    """
    if fit_type not in FIT_TYPES:
        raise ValueError(f"fit_type={fit_type!r} is not one of {FIT_TYPES}.")
    if prior_var is not None and (isinstance(prior_var, bool) or not isinstance(prior_var, Real)
                                  or not np.isfinite(prior_var) or prior_var <= 0):
        raise ValueError(f"prior_var must be a positive number or None, got {prior_var!r}.")
    check_key_added(adata, key_added, slot="layers")
    inp = transform_inputs(adata, blind=blind, key=key, layer=layer, caller="rlog")
    counts, sf = inp.counts, inp.size_factors
    G, m = counts.shape
    if m >= 30:
        logger.info("rlog with %d samples: vst is much faster and DESeq2 recommends it from 30 samples on", m)
    nz = counts.sum(axis=1) > 0
    Y = np.ascontiguousarray(counts[nz])
    if inp.fit is None:
        trend_fn, used, _ = fit_vst_trend(Y, sf, inp.design, fit_type)
        base_mean = (Y / sf[None, :]).mean(axis=1)
        disp_fit = trend_fn(base_mean)
    else:
        genes = inp.fit.genes
        if "dispersion_trend" not in genes.columns:
            raise KeyError(f"The fit under key={key!r} has no dispersion_trend; refit it with pbglm.tl.fit.")
        disp_fit = genes["dispersion_trend"].to_numpy(dtype=float)[nz]
        base_mean = genes["base_mean"].to_numpy(dtype=float)[nz]
        used = str(inp.fit.record.get("fit", {}).get("fit_type", "stored"))
    values_nz, pv, intercept_nz = rlog_transform(Y, sf, disp_fit, base_mean, prior_var=prior_var)
    values = np.zeros((G, m))
    values[nz] = values_nz
    intercept = np.full(G, -np.inf)
    intercept[nz] = intercept_nz
    adata = adata.copy() if copy else adata
    adata.layers[key_added] = np.ascontiguousarray(values.T)
    adata.uns[key_added] = to_plain({
        "blind": blind, "prior_var": pv, "fit_type": used, "intercept": intercept,
        "size_factors": np.asarray(sf, dtype=float), "layer": "None" if inp.layer is None else inp.layer,
        "key": "None" if blind else key,
    })
    return adata if copy else None
