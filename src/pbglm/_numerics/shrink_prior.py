"""Prior scales of the fold-change shrinkage estimators and apeglm's s-values (plain arrays).

- :func:`apeglm_prior_var`: apeglm's ``priorVar`` (Efron and Morris 1975): the variance ``A`` of a
  normal hierarchical model for the MLEs, the root of ``Ahat(A) = A`` with
  ``Ahat(A) = sum((x^2 - d) I(A)) / sum(I(A))``, ``I(A) = 1 / (2 (A + d)^2)``, ``d = SE^2``, found by
  R's ``uniroot`` on ``[1e-6, 400]`` (Brent's zeroin, tolerance ``eps^0.25``), reproduced step by
  step because that tolerance (1.2e-4 on ``A``) is coarse enough to show in the shrunken values.
  apeglm's Cauchy scale is then ``min(sqrt(A), 1)``.
- :func:`normal_prior_var`: DESeq2's ``estimateBetaPriorVar`` (``"weighted"``): per coefficient, the
  weighted 95% quantile of ``|MLE|`` (weights ``1 / (1 / baseMean + dispFit)``, MLEs with
  ``|MLE| < 10``, Hmisc's ``wtd.quantile`` with ``normwt = TRUE``) matched to a normal's; 1e6 for
  the intercept.
- :func:`svalue`: apeglm's s-values, the running mean of the sorted local false sign rates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

_EPS = np.finfo(float).eps


def zeroin(f, lower: float, upper: float, f_lower: float, f_upper: float, tol: float = _EPS**0.25,
           maxiter: int = 1000) -> float:
    """R's ``uniroot``/``R_zeroin2`` (Brent's root finder) on a bracketing interval."""
    a, b = lower, upper
    fa, fb = f_lower, f_upper
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * _EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def apeglm_prior_var(mle: np.ndarray, se: np.ndarray, min_var: float = 0.001**2, max_var: float = 20.0**2) -> float:
    """apeglm's ``priorVar(cbind(mle, se))`` (natural-log scale); genes with a NaN MLE or a non-finite
    SE are left out (apeglm drops NaN MLEs; it would fail on a missing SE)."""
    keep = ~np.isnan(mle) & np.isfinite(se)
    x = np.asarray(mle, dtype=float)[keep]
    d = np.asarray(se, dtype=float)[keep] ** 2
    s = x * x
    if x.size == 0:
        raise ValueError("No gene has a finite maximum-likelihood estimate to estimate the prior scale from.")

    def objective(A: float) -> float:
        w = 1.0 / (2.0 * (A + d) ** 2)
        return float(np.sum((s - d) * w) / np.sum(w)) - A

    f_lo = objective(min_var)
    if not math.isfinite(f_lo):
        raise ValueError("The prior variance objective is not finite: some standard errors are NaN or infinite.")
    if f_lo < 0:
        return min_var
    f_hi = objective(max_var)
    if f_hi > 0:
        raise ValueError(f"The prior variance of the fold changes exceeds {max_var} (log scale): the MLEs are "
                         "implausibly spread; check the fit.")
    return zeroin(objective, min_var, max_var, f_lo, f_hi)


def apeglm_prior_scale(prior_var: float) -> float:
    """apeglm's Cauchy scale from the prior variance (``multiplier = 1``, capped at 1)."""
    return min(math.sqrt(prior_var), 1.0)


def weighted_upper_quantile(x: np.ndarray, weights: np.ndarray, prob: float) -> float:
    """Hmisc's ``wtd.quantile(x, weights, prob, normwt = TRUE)`` (type "quantile") as DESeq2 bundles it."""
    keep = ~(np.isnan(weights) | (weights == 0)) & ~np.isnan(x)
    x, weights = x[keep], weights[keep]
    weights = weights * x.size / weights.sum()
    ux, inverse = np.unique(x, return_inverse=True)
    wts = np.bincount(inverse, weights=weights)
    n = wts.sum()
    order = 1.0 + (n - 1.0) * prob
    low = max(math.floor(order), 1.0)
    high = min(low + 1.0, n)
    frac = order % 1.0
    cw = np.cumsum(wts)

    def constant(v: float) -> float:  # approx(cw, ux, v, method = "constant", f = 1, rule = 2)
        i = int(np.searchsorted(cw, v, side="left"))
        return float(ux[min(i, ux.size - 1)])

    return (1.0 - frac) * constant(low) + frac * constant(high)


def normal_prior_var(mle_log2: np.ndarray, base_mean: np.ndarray, disp_fit: np.ndarray, intercept: np.ndarray,
                     upper_quantile: float = 0.05) -> np.ndarray:
    """DESeq2's ``estimateBetaPriorVar`` (log2 scale) for the columns of ``mle_log2`` (genes not all zero)."""
    weights = 1.0 / (1.0 / base_mean + disp_fit)
    out = np.empty(mle_log2.shape[1])
    for j in range(mle_log2.shape[1]):
        x = mle_log2[:, j]
        finite = np.abs(x) < 10
        if intercept[j] or not finite.any():
            out[j] = 1e6
            continue
        q = weighted_upper_quantile(np.abs(x[finite]), weights[finite], 1.0 - upper_quantile)
        out[j] = (q / stats.norm.ppf(1.0 - upper_quantile / 2.0)) ** 2
    return out


def svalue(lfsr: np.ndarray) -> np.ndarray:
    """apeglm's ``svalue``: cumulative mean of the sorted local false sign rates (NaN sorted last, and NaN)."""
    lfsr = np.asarray(lfsr, dtype=float)
    order = np.argsort(np.where(np.isnan(lfsr), np.inf, lfsr), kind="stable")
    nan_last = np.isnan(lfsr[order])
    order = np.concatenate([order[~nan_last], order[nan_last]])
    sorted_vals = lfsr[order]
    running = np.cumsum(sorted_vals) / np.arange(1, lfsr.size + 1)
    out = np.empty_like(lfsr)
    out[order] = running
    return out
