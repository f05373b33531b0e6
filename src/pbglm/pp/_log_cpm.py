"""``pp.log_cpm``: edgeR's log2 counts per million as a layer."""

from __future__ import annotations

from numbers import Real

import numpy as np
from anndata import AnnData

from .._io import read_counts, stored_fits
from .._numerics.log_cpm import log_cpm as _log_cpm
from .._numerics.tmm import calc_norm_factors_tmm
from .._storage_keys import check_key_added

__all__ = ["log_cpm"]

NORMALIZE = ("tmm", "none")


def _stored_norm_factors(adata: AnnData, key: str, lib: np.ndarray) -> np.ndarray:
    fits = stored_fits(adata, key)
    if len(fits) != 1 or fits[0].method != "edger":
        what = "a per-group fit" if len(fits) != 1 else f"a {fits[0].method} fit"
        raise ValueError(
            f"key={key!r} holds {what}; pp.log_cpm(key=) takes the TMM factors of an ungrouped edgeR fit "
            "(pbglm.tl.fit(adata, design, method='edger')). Use key=None to compute them on adata."
        )
    col = f"{key}_norm_factors"
    nf = adata.obs[col].to_numpy(dtype=float) if col in adata.obs else np.full(adata.n_obs, np.nan)
    if not np.all(np.isfinite(nf)):
        raise ValueError(
            f"adata.obs[{col!r}] is missing or NaN for some samples (the fit under key={key!r} did not include "
            "every sample); use key=None to compute TMM factors on adata."
        )
    return nf


def log_cpm(
    adata: AnnData,
    *,
    prior_count: float = 2,
    normalize: str = "tmm",
    layer: str | None = None,
    key: str | None = None,
    key_added: str = "log_cpm",
    copy: bool = False,
) -> AnnData | None:
    """log2 counts per million, edgeR's ``cpm(normLibSizes(DGEList(counts)), log = TRUE, prior.count = )``.

    Library sizes are the sample totals of the AnnData given (all its genes); the prior count is
    scaled per sample by ``library size / mean library size`` and twice it is added to the
    library size, as edgeR does, so that a zero count has a finite value.

    Parameters
    ----------
    adata
        Samples x genes AnnData with raw counts.
    prior_count
        Average count added to every observation before the log.
    normalize
        ``"tmm"``: library sizes times edgeR's TMM factors (computed on ``adata``, or those of the
        edgeR fit under ``key``); ``"none"``: raw library sizes (``cpm(DGEList(counts))``).
    layer
        Layer with the counts (``adata.X`` by default).
    key
        Key of a stored edgeR fit whose TMM factors (``.obs[f"{key}_norm_factors"]``) are used
        instead of computing them (``normalize="tmm"`` only).
    key_added
        Name of the layer written.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy with ``copy=True``. Writes ``.layers[key_added]`` (float64, samples x genes,
    log2 CPM) and ``.uns[key_added]`` (``prior_count``, ``normalize``, ``layer``, ``key``).
    """
    if isinstance(prior_count, bool) or not isinstance(prior_count, Real) or not np.isfinite(prior_count) \
            or prior_count < 0:
        raise ValueError(f"prior_count must be a non-negative number, got {prior_count!r}.")
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize={normalize!r} is not one of {NORMALIZE}.")
    if key is not None and normalize != "tmm":
        raise ValueError("key= supplies a fit's TMM factors; it needs normalize='tmm'.")
    check_key_added(adata, key_added, slot="layers")
    counts = read_counts(adata, layer)
    lib = counts.sum(axis=0)
    if np.any(lib <= 0):
        empty = list(adata.obs_names[lib <= 0][:5])
        raise ValueError(f"Samples {empty} have no counts, so their counts per million are undefined; drop them.")
    if normalize == "tmm":
        nf = calc_norm_factors_tmm(counts, lib) if key is None else _stored_norm_factors(adata, key, lib)
    else:
        nf = np.ones(adata.n_obs)
    values = _log_cpm(counts, lib * nf, float(prior_count))
    adata = adata.copy() if copy else adata
    adata.layers[key_added] = values
    adata.uns[key_added] = {"prior_count": float(prior_count), "normalize": normalize,
                            "layer": "None" if layer is None else layer, "key": "None" if key is None else key}
    return adata if copy else None
