"""Benjamini-Hochberg adjustment and DESeq2's independent filtering on the mean count."""

from __future__ import annotations

import numpy as np

from .lowess import lowess


def bh_adjust(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's ``p.adjust(method="BH")``); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    n = int(ok.sum())
    if n == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="stable")[::-1]
    ranks = np.arange(n, 0, -1)
    adj = np.minimum.accumulate(pv[order] * n / ranks)
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def independent_filtering(
    pvalues: np.ndarray, filter_stat: np.ndarray, alpha: float = 0.1, n_theta: int = 50
) -> tuple[np.ndarray, dict]:
    """DESeq2's ``pvalueAdjustment(independentFiltering=TRUE)``.

    BH is applied to the genes whose ``filter_stat`` (the base mean) is at or above each of
    ``n_theta`` quantiles; the chosen quantile is the first whose number of rejections at
    ``alpha`` exceeds the lowess fit's maximum minus its residual RMS (no filtering when at
    most 10 genes are rejected anywhere).

    Returns
    -------
    The adjusted p-values (NaN for filtered genes) and a dict with ``threshold`` (base mean
    cutoff), ``theta`` (chosen quantile), and the ``thetas`` / ``rejections`` curve.
    """
    filter_stat = np.asarray(filter_stat, dtype=float)
    lower = float(np.mean(filter_stat == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    thetas = np.linspace(lower, upper, n_theta)
    cutoffs = np.quantile(filter_stat, thetas)
    padj = np.full((filter_stat.size, n_theta), np.nan)
    for i, cut in enumerate(cutoffs):
        use = filter_stat >= cut
        if use.any():
            padj[use, i] = bh_adjust(pvalues[use])
    num_rej = np.sum(np.nan_to_num(padj, nan=1.0) < alpha, axis=0)
    fit = lowess(thetas, num_rej.astype(float), f=1 / 5)
    if num_rej.max() <= 10:
        j = 0
    else:
        pos = num_rej > 0
        residual = num_rej[pos] - fit[pos] if pos.any() else np.zeros(1)
        thresh = fit.max() - np.sqrt(np.mean(residual**2))
        above = np.nonzero(num_rej > thresh)[0]
        j = int(above[0]) if above.size else 0
    info = {
        "threshold": float(cutoffs[j]),
        "theta": float(thetas[j]),
        "thetas": thetas,
        "rejections": num_rej,
    }
    return padj[:, j], info
