"""What DESeq2's transforms (vst, rlog) read from an AnnData: counts, size factors, design, stored fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from .._io import StoredFit, read_counts, stored_fits
from .._numerics.size_factors import estimate_size_factors


@dataclass
class TransformInputs:
    """Counts (genes x samples), size factors, design matrix, the fit used (None when blind), layer."""

    counts: np.ndarray
    size_factors: np.ndarray
    design: np.ndarray
    fit: StoredFit | None
    layer: str | None
    size_factor_type: str


def transform_inputs(adata: AnnData, *, blind: bool, key: str, layer: str | None, caller: str) -> TransformInputs:
    """Read the inputs of a DESeq2 transform.

    ``blind=True``: the counts of ``layer``, median-of-ratios size factors computed on them
    (poscounts when every gene has a zero) and the design ``~ 1``. ``blind=False``: the DESeq2 fit
    stored under ``key`` (one fit over every sample), its design and size factors, and the counts
    of its layer unless ``layer`` is given.
    """
    if not isinstance(blind, bool):
        raise TypeError(f"blind must be True or False, got {blind!r}.")
    if blind:
        counts = read_counts(adata, layer)
        if counts.shape[1] < 2:
            raise ValueError(f"{caller} needs at least 2 samples, got {counts.shape[1]}.")
        sf, kind = estimate_size_factors(counts, "ratio")
        return TransformInputs(counts, sf, np.ones((counts.shape[1], 1)), None, layer, kind)
    try:
        fits = stored_fits(adata, key)
    except KeyError:
        raise KeyError(
            f"{caller}(blind=False) uses the design and size factors of a stored fit, but there is no fit under "
            f"key={key!r}: run pbglm.tl.fit(adata, design) first, or use blind=True."
        ) from None
    if len(fits) != 1:
        raise ValueError(
            f"The fit under key={key!r} is a per-group fit ({len(fits)} groups); {caller}(blind=False) needs one "
            "design over every sample. Fit without groupby, or use blind=True."
        )
    fit = fits[0]
    if fit.method != "deseq2":
        raise ValueError(
            f"The fit under key={key!r} is a {fit.method} fit; {caller}(blind=False) needs DESeq2's size factors "
            "and dispersions (pbglm.tl.fit(adata, design, method='deseq2')), or use blind=True."
        )
    if not fit.mask.all():
        raise ValueError(
            f"The fit under key={key!r} covers {int(fit.mask.sum())} of {adata.n_obs} samples; subset adata to the "
            "fitted samples, or use blind=True."
        )
    if layer is None:
        stored = str(fit.record.get("layer", "None"))
        layer = None if stored == "None" else stored
    counts = read_counts(adata, layer)
    col = f"{key}_size_factor"
    sf = adata.obs[col].to_numpy(dtype=float) if col in adata.obs else np.full(adata.n_obs, np.nan)
    if not np.all(np.isfinite(sf) & (sf > 0)):
        raise ValueError(f"adata.obs[{col!r}] is missing or not positive everywhere; refit under key={key!r}.")
    # the stored design is in the fit's sample order: align it to adata's
    design = fit.record["design"]
    X = np.asarray(design.loc[adata.obs_names.astype(str)], dtype=float)
    kind = str(fit.record.get("fit", {}).get("size_factor_type", "stored"))
    return TransformInputs(counts, sf, X, fit, layer, kind)
