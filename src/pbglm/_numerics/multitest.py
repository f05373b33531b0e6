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
    pvalues = np.asarray(pvalues, dtype=float)
    lower = float(np.mean(filter_stat == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    thetas = np.linspace(lower, upper, n_theta)
    cutoffs = np.quantile(filter_stat, thetas)
    # BH rejections at each cutoff from one ordering of the p-values: padj_(i) < alpha exactly when
    # p_(j) n / j < alpha for some j >= i, so the count is the largest such j
    tested = np.nonzero(~np.isnan(pvalues))[0]
    order = tested[np.argsort(pvalues[tested], kind="stable")]
    p_sorted = pvalues[order]
    stat_sorted = filter_stat[order]
    num_rej = np.zeros(n_theta, dtype=np.int64)
    for i, cut in enumerate(cutoffs):
        pv = p_sorted[stat_sorted >= cut]
        n = pv.size
        if n:
            below = np.nonzero(pv * n / np.arange(1, n + 1) < alpha)[0]
            num_rej[i] = below[-1] + 1 if below.size else 0
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
    padj = np.full(filter_stat.size, np.nan)
    use = filter_stat >= cutoffs[j]
    if use.any():
        padj[use] = bh_adjust(pvalues[use])
    return padj, info
