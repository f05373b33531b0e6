"""limma's empirical Bayes for variances whose residual df differ between genes (limma >= 3.61.9).

``fitFDistUnequalDF1`` estimates the prior of the scaled-F model ``s2 ~ s0^2 F(d1, d0)`` by
maximum likelihood rather than by moments, because edgeR 4's adjusted QL df vary from gene to
gene: the trend of ``log s2`` (corrected by ``log(d1/2) - digamma(d1/2)``) is a weighted lowess in
the covariate (weights ``1/trigamma(d1/2)``), and ``d0`` maximises the F likelihood over
``d0 / (1 + d0)`` in ``(1/2, 0.9998)`` (R's ``optimize``). ``robust = TRUE`` refits with
Benjamini-Hochberg two-sided outlier probabilities as prior weights and shrinks the prior df of
right outliers. :func:`squeeze_var_unequal_df` is ``squeezeVar(legacy = FALSE)``, as edgeR 4's
``glmQLFit`` calls it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from .brent import r_optimize
from .lowess import lowess
from .multitest import bh_adjust
from .squeeze_var import _posterior, log_f_sf
from .weighted_lowess import weighted_lowess

__all__ = ["fit_f_dist_unequal_df1", "squeeze_var_unequal_df"]


def _logmdigamma(x):
    return np.log(x) - special.digamma(x)


def _choose_lowess_span(n, small_n=50, min_span=0.3, power=1 / 3):
    """limma's ``chooseLowessSpan``."""
    return min(min_span + (1.0 - min_span) * (small_n / n) ** power, 1.0)


def _loess_fit_weighted(y, x, weights, span, iterations=1, min_weight=1e-8, max_weight=1e2):
    """limma's ``loessFit(y, x, weights, span, iterations, min.weight, max.weight)$fitted``."""
    n = y.size
    if span < 1.0 / n:
        return y.copy()
    w = np.clip(np.nan_to_num(weights, nan=0.0), max(min_weight, 0.0), max_weight)
    if w.max() - w.min() < 1e-15:
        o = np.argsort(x, kind="stable")
        out = np.empty(n)
        out[o] = lowess(x, y, f=span, iters=iterations - 1)
        return out
    nw = n if min_weight > 0 else int((w > 0).sum())
    if nw < 4 + 1.0 / span:
        if nw == 1:
            return np.full(n, y[w > 0][0])
        A = np.column_stack([np.ones(n), x]) * np.sqrt(w)[:, None]
        beta = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
        return beta[0] + beta[1] * x
    return weighted_lowess(x, y, w, span=span, iterations=iterations, npts=200)


def fit_f_dist_unequal_df1(x, df1, covariate=None, robust: bool = False, prior_weights=None) -> dict:
    """limma's ``fitFDistUnequalDF1``: ``scale`` (s0^2, per gene with a covariate) and ``df2`` (d0).

    With ``robust`` and right outliers, also ``df2_shrunk`` (gene-wise prior df) and ``df2_outlier``.
    ``scale`` and ``df2`` are NaN when fewer than two values are informative.
    """
    x = np.array(x, dtype=float)
    n = x.size
    df1 = np.array(np.broadcast_to(np.asarray(df1, dtype=float), (n,)))
    if covariate is not None:
        covariate = np.asarray(covariate, dtype=float)
    pw = None if prior_weights is None else np.array(prior_weights, dtype=float)
    if np.isnan(x).any():
        i = np.isnan(x)
        pw = (~i).astype(float) if pw is None else np.where(i, 0.0, pw)
        x[i] = 0.0
    if df1.min() < 0.01:
        i = df1 < 0.01
        pw = (~i).astype(float) if pw is None else np.where(i, 0.0, pw)
        df1[i] = 1.0
    informative = x > 0
    if pw is not None:
        informative &= pw != 0
    n_inf = int(informative.sum())
    if n_inf < 2:
        return {"scale": np.nan, "df2": np.nan}
    if n_inf == 2:
        covariate = None
        robust = False
        pw = None
    m = float(np.median(x[informative]))
    xpos = np.maximum(x, 1e-12 * m)
    z = np.log(xpos)
    d1 = df1 / 2.0
    e = z + _logmdigamma(d1)
    w = 1.0 / special.polygamma(1, d1)
    if pw is not None:
        w = w * pw
    if covariate is None:
        emean = np.sum(w * e) / np.sum(w)
    else:
        span = _choose_lowess_span(n, small_n=500)
        q75 = float(np.quantile(w, 0.75, method="linear"))
        emean = _loess_fit_weighted(e, covariate, w / q75, span, iterations=1)
    d1x = d1 * xpos

    def minus_twice_loglik(par):
        d2 = par / (1.0 - par)
        d2s20 = d2 * np.exp(emean - float(_logmdigamma(d2)))
        ll = -(d1 + d2) * np.log1p(d1x / d2s20) - d1 * np.log(d2s20) + special.gammaln(d1 + d2) - math.lgamma(d2)
        if pw is not None:
            ll = pw * ll
        return -2.0 * float(np.sum(ll))

    par = r_optimize(minus_twice_loglik, 0.5, 0.9998)
    d2 = par / (1.0 - par)
    s20 = np.exp(emean - float(_logmdigamma(d2)))
    if not robust:
        return {"scale": s20, "df2": 2.0 * d2}

    df2 = 2.0 * d2
    fstat = x / s20
    right = stats.f.sf(fstat, df1, df2)
    left = 1.0 - right
    if left.min() < 0.001:
        i = left < 0.001
        left[i] = stats.f.cdf(fstat[i], df1[i], df2)
    two_sided = 2.0 * np.minimum(left, right)
    fdr = bh_adjust(two_sided)
    fdr[fdr > 0.3] = 1.0
    if fdr.min() == 1.0:
        return {"scale": s20, "df2": df2}
    outpw = fit_f_dist_unequal_df1(x, df1, covariate=covariate, robust=False, prior_weights=fdr)
    s20 = outpw["scale"]
    df2 = outpw["df2"]
    r = stats.rankdata(fstat, method="average")
    uniform = (n - r + 0.5) / n
    prob_not = np.minimum(right / uniform, 1.0)
    if prob_not.min() == 1.0:
        return outpw
    i = int(np.argmin(right))
    min_right = right[i]
    if min_right == 0.0:
        df2_outlier = 0.0
        df2_shrunk = prob_not * df2
    else:
        df2_outlier = math.log(0.5) / math.log(min_right) * df2
        new_log_right = float(log_f_sf(fstat[i], df1[i], df2_outlier))
        df2_outlier = math.log(0.5) / new_log_right * df2_outlier
        df2_shrunk = prob_not * df2 + (1.0 - prob_not) * df2_outlier
    o = np.argsort(right, kind="stable")
    ordered = df2_shrunk[o]
    means = np.cumsum(ordered) / np.arange(1, n + 1)
    imin = int(np.argmin(means))
    ordered[: imin + 1] = means[imin]
    df2_shrunk = np.empty(n)
    df2_shrunk[o] = np.maximum.accumulate(ordered)
    return {"scale": s20, "df2": df2, "df2_outlier": df2_outlier, "df2_shrunk": df2_shrunk}


def squeeze_var_unequal_df(var, df, covariate=None, robust: bool = False) -> dict:
    """limma's ``squeezeVar(var, df, covariate, robust, legacy = FALSE)``.

    Returns
    -------
    dict with ``df_prior`` (scalar, or per gene when the robust fit shrinks it), ``var_prior``
    (scalar, or per gene with a covariate), ``var_post`` (per gene) and ``df2`` (the prior df
    before gene-wise shrinkage).
    """
    var = np.array(var, dtype=float)
    n = var.size
    if n == 0:
        raise ValueError("var is empty; squeeze_var_unequal_df needs at least one variance.")
    dfa = np.asarray(df, dtype=float)
    if n < 3:
        return {"var_post": var, "var_prior": var, "df_prior": 0.0, "df2": 0.0}
    if dfa.size > 1:
        var[dfa == 0] = 0.0
    fit = fit_f_dist_unequal_df1(var, dfa, covariate=covariate, robust=robust)
    df_prior = fit.get("df2_shrunk", fit["df2"])
    if np.any(np.isnan(df_prior)):
        raise ValueError(
            "Could not estimate the prior df of the QL dispersions: fewer than two genes have a positive QL "
            "dispersion and residual df. Use a design with residual degrees of freedom or keep more genes."
        )
    var_post = _posterior(var, dfa, fit["scale"], df_prior)
    return {"df_prior": df_prior, "var_prior": fit["scale"], "var_post": var_post, "df2": fit["df2"]}
