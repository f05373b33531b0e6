"""edgeR's ``aveLogCPM``: the average log2 counts-per-million of each gene.

Not the mean of log-CPMs: a one-group NB GLM is fitted to the counts plus a prior count
(``prior.count = 2``, scaled per library by ``N_j / mean(N)``) with offsets ``log(N_j + 2 prior_j)``,
and its intercept is converted to log2 CPM. The dispersion used is edgeR's (0.05 by default;
``estimateDisp`` and the QL pipeline use the common dispersion).
"""

from __future__ import annotations

import numpy as np

from .._kernels.edger_glm import ave_log_cpm_kernel, n_chunks

__all__ = ["ave_log_cpm"]


def ave_log_cpm(counts: np.ndarray, lib_size: np.ndarray, *, dispersion=0.05, prior_count: float = 2.0) -> np.ndarray:
    """Average log2 CPM per gene (edgeR's ``aveLogCPM.default``).

    Parameters
    ----------
    counts
        ``(G, m)`` counts.
    lib_size
        ``(m,)`` effective library sizes (library size times normalisation factor).
    dispersion
        NB dispersion: scalar or ``(G,)``; NaN entries are replaced by the mean of the others.
    prior_count
        Average prior count added to every observation.

    Returns
    -------
    ``(G,)`` log2 CPM.
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    G, m = Y.shape
    lib = np.ascontiguousarray(lib_size, dtype=np.float64)
    if lib.shape != (m,):
        raise ValueError(f"lib_size must have one entry per sample ({m}), got shape {lib.shape}.")
    if np.any(~np.isfinite(lib)) or np.any(lib <= 0):
        raise ValueError("Library sizes must be finite and positive.")
    if G == 0:
        return np.zeros(0)
    disp = np.array(np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (G,)))
    isna = np.isnan(disp)
    if isna.all():
        disp[:] = 0.05
    elif isna.any():
        disp[isna] = disp[~isna].mean()
    if np.max(Y) == 0 and np.max(lib) == 0:
        return np.full(G, (np.log(1e6) - np.log(G)) / np.log(2))
    return ave_log_cpm_kernel(Y, lib, float(prior_count), disp, 50, 1e-10, n_chunks(G))
