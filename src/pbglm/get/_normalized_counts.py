"""``get.normalized_counts``: counts divided by a DESeq2 fit's size factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._io import read_counts, stored_fits

__all__ = ["normalized_counts"]


def normalized_counts(adata: AnnData, *, key: str = "pbglm") -> pd.DataFrame:
    """Counts divided by the size factors of a stored DESeq2 fit (DESeq2's ``counts(dds, normalized = TRUE)``).

    The counts are read from the layer the fit used. Samples that a per-group fit left out have no
    size factor and get NaN.

    Parameters
    ----------
    adata
        An AnnData on which :func:`pbglm.tl.fit` was run with ``method="deseq2"``.
    key
        Key of the fit.

    Returns
    -------
    A samples x genes DataFrame (index ``obs_names``, columns ``var_names``), as the AnnData is laid
    out; ``.T`` gives DESeq2's genes x samples orientation.
    """
    fits = stored_fits(adata, key)
    methods = {f.method for f in fits}
    if methods != {"deseq2"}:
        raise ValueError(
            f"The fit under key={key!r} is {sorted(methods)}; normalised counts by size factors are DESeq2's. "
            "For an edgeR fit use pbglm.pp.log_cpm(adata, key=key) (counts per million after TMM)."
        )
    layer = str(fits[0].record.get("layer", "None"))
    counts = read_counts(adata, None if layer == "None" else layer)
    col = f"{key}_size_factor"
    if col not in adata.obs:
        raise KeyError(f"adata.obs[{col!r}] is missing; refit with pbglm.tl.fit(adata, design, key_added={key!r}).")
    sf = adata.obs[col].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        values = counts.T / sf[:, None]
    return pd.DataFrame(values, index=adata.obs_names.copy(), columns=adata.var_names.copy())
