"""The samples x genes matrix that the sample-level tools (PCA, MDS, distances) read."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._io import get_matrix

TRANSFORMS = {"vst": "pbglm.pp.vst", "rlog": "pbglm.pp.rlog", "log_cpm": "pbglm.pp.log_cpm"}


def sample_matrix(adata: AnnData, layer: str | None, *, caller: str) -> np.ndarray:
    """``adata.X`` or a layer as a dense float64 array, finite everywhere.

    Raises
    ------
    KeyError
        The layer is missing (naming the transform that writes it, for the default layers).
    ValueError
        NaN or infinite values.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    if layer is not None and layer not in adata.layers:
        hint = f" Run {TRANSFORMS[layer]}(adata) first." if layer in TRANSFORMS else ""
        raise KeyError(f"Layer {layer!r} not found (layers: {list(adata.layers.keys())}).{hint}")
    X = get_matrix(adata, layer)
    if sparse.issparse(X):
        X = X.toarray()
    elif hasattr(X, "compute"):
        X = X.compute()
    X = np.asarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        bad = np.nonzero(~np.isfinite(X).all(axis=0))[0]
        raise ValueError(
            f"{where} has NaN or infinite values in {bad.size} genes (e.g. {list(adata.var_names[bad[:3]])}); "
            f"{caller} needs finite values: drop those genes or fill them."
        )
    if X.shape[0] < 2:
        raise ValueError(f"{caller} needs at least 2 samples, got {X.shape[0]}.")
    return X
