"""DESeq2's ``results()`` over plain arrays: Wald or LRT statistics, Cook's filter,
independent filtering and BH."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._numerics.cooks import cooks_cutoff
from .._numerics.multitest import bh_adjust, independent_filtering
from .._numerics.wald import contrast_estimate, wald_test


def adjust(
    pvalue: np.ndarray,
    base_mean: np.ndarray,
    max_cooks: np.ndarray,
    *,
    n_samples: int,
    n_coefs: int,
    alpha: float,
    cooks_filter: bool,
    independent_filter: bool,
    cooks_guard: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cook's filter then padj (independent filtering or plain BH). Returns (pvalue, padj, info)."""
    pvalue = pvalue.copy()
    info: dict = {}
    if cooks_filter:
        cutoff = cooks_cutoff(n_samples, n_coefs)
        outlier = np.nan_to_num(max_cooks, nan=-np.inf) > cutoff
        if cooks_guard is not None:
            outlier &= ~(cooks_guard >= 3)
        pvalue[outlier] = np.nan
        info["cooks_cutoff"] = cutoff
        info["n_cooks_outliers"] = int(outlier.sum())
    if independent_filter:
        padj, filt = independent_filtering(pvalue, base_mean, alpha=alpha)
        info["filter_threshold"] = filt["threshold"]
        info["filter_theta"] = filt["theta"]
    else:
        padj = bh_adjust(pvalue)
    return pvalue, padj, info


def wald_results(coef, cov, contrast, *, lfc_threshold=0.0, alt="greaterAbs", df=None, zero_groups=None):
    """log2fc, SE, statistic and p-value of a contrast; ``zero_groups`` marks genes whose compared
    groups are all zero (DESeq2 reports lfc 0, stat 0, p 1 for them)."""
    lfc, se = contrast_estimate(coef, cov, contrast)
    stat, pvalue = wald_test(lfc, se, lfc_threshold=lfc_threshold, alt=alt, df=df)
    if zero_groups is not None:
        z = zero_groups & ~np.isnan(lfc)
        lfc[z], stat[z], pvalue[z] = 0.0, 0.0, 1.0
    return lfc, se, stat, pvalue


def lrt_pvalues(deviance_reduced, deviance_full, df):
    """Likelihood-ratio statistic and chi-square p-value."""
    stat = deviance_reduced - deviance_full
    return stat, stats.chi2.sf(stat, df)
