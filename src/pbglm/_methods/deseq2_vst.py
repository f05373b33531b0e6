"""DESeq2's ``vst()`` and ``varianceStabilizingTransformation()`` over plain arrays.

``vst()`` fits the dispersion trend on ``nsub`` genes spread evenly over the range of mean
normalised counts (above 5) and applies the transform of that trend to every gene;
``varianceStabilizingTransformation()`` fits the trend on every gene (or reuses a stored one).
The gene-wise dispersions and the trend are those of the DESeq2 pipeline (:mod:`.deseq2`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from .._numerics.vst import vst_local, vst_mean, vst_parametric, vst_subset
from .deseq2 import DESeq2Options, dispersion_trend, gene_start_values, gene_wise_dispersion

logger = logging.getLogger("pbglm")

__all__ = ["fit_vst_trend", "transform", "variance_stabilize"]


def fit_vst_trend(counts: np.ndarray, size_factors: np.ndarray, X: np.ndarray, fit_type: str,
                  opts: DESeq2Options | None = None) -> tuple:
    """Gene-wise dispersions of ``counts`` under the design ``X`` and their trend (DESeq2's
    ``estimateDispersionsGeneEst`` + ``estimateDispersionsFit``); all-zero genes are left out.

    Returns (trend function, fit type used, coefficients or None).
    """
    opts = replace(opts or DESeq2Options(), fit_type=fit_type)
    Y = np.ascontiguousarray(counts[counts.sum(axis=1) > 0], dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    start = gene_start_values(Y, size_factors, X)
    disp, _, _ = gene_wise_dispersion(Y, size_factors, X, start, opts)
    return dispersion_trend(start["base_mean"], disp, opts)


def transform(counts: np.ndarray, size_factors: np.ndarray, trend_fn, fit_type: str, coefs) -> np.ndarray:
    """DESeq2's ``getVarianceStabilizedData`` for a fitted trend, as a samples x genes ``(m, G)`` array."""
    if fit_type == "parametric":
        return vst_parametric(counts, size_factors, coefs[0], coefs[1])
    if fit_type == "mean":
        return vst_mean(counts, size_factors, coefs[0])
    return vst_local(counts, size_factors, trend_fn)


def variance_stabilize(counts: np.ndarray, size_factors: np.ndarray, X: np.ndarray, *, fit_type: str = "parametric",
                       nsub: int | None = 1000, stored_trend: tuple | None = None,
                       opts: DESeq2Options | None = None) -> tuple[np.ndarray, dict]:
    """Variance-stabilised ``(G, m)`` values of ``counts`` and what was done.

    Parameters
    ----------
    counts, size_factors, X
        ``(G, m)`` counts, ``(m,)`` size factors, ``(m, p)`` design (``~ 1`` for a blind transform).
    fit_type
        Trend: ``"parametric"`` (falls back to local when it does not fit, as DESeq2), ``"local"``
        or ``"mean"``.
    nsub
        ``vst()``'s subset size; ``None`` fits on every gene (``varianceStabilizingTransformation``),
        as does a data set with fewer than ``nsub`` genes of mean normalised count above 5 (logged).
    stored_trend
        (trend function, fit type, coefficients) of a stored fit, used instead of fitting when the
        whole data set is transformed (``varianceStabilizingTransformation(blind = FALSE)``).

    Returns
    -------
    The transformed values (``(m, G)``: samples x genes, as a layer) and a dict with ``fit_type``,
    ``trend_coefficients`` (or None), ``n_genes_trend`` (genes the trend was fitted on, 0 for a stored
    trend) and ``subset``
    (whether ``vst()``'s subset was used).
    """
    base_mean = counts @ (1.0 / size_factors) / counts.shape[1]
    idx = None if nsub is None else vst_subset(base_mean, nsub)
    if nsub is not None and idx is None:
        logger.warning(
            "vst: fewer than nsub=%d genes with a mean normalised count above 5 (%d); fitting the dispersion trend on "
            "every gene instead (DESeq2's varianceStabilizingTransformation).", nsub, int((base_mean > 5).sum()))
    if idx is not None:
        trend_fn, used, coefs = fit_vst_trend(counts[idx], size_factors, X, fit_type, opts)
        n_trend = idx.size
    elif stored_trend is not None:
        trend_fn, used, coefs = stored_trend
        n_trend = 0
    else:
        trend_fn, used, coefs = fit_vst_trend(counts, size_factors, X, fit_type, opts)
        n_trend = int((counts.sum(axis=1) > 0).sum())
    values = transform(counts, size_factors, trend_fn, used, coefs)
    return values, {"fit_type": used, "trend_coefficients": coefs, "n_genes_trend": n_trend,
                    "subset": idx is not None}
