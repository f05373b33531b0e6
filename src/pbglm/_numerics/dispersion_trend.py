"""DESeq2's dispersion-mean trend: parametric (a0 + a1 / mean), local, or mean."""

from __future__ import annotations

import numpy as np
from scipy.stats import trim_mean


class TrendFitError(RuntimeError):
    """The parametric trend did not fit (DESeq2 then falls back to the local fit)."""


def _gamma_identity_glm(y: np.ndarray, X: np.ndarray, start: np.ndarray, maxit: int = 25, eps: float = 1e-8):
    """R's ``glm(y ~ X, family=Gamma(link="identity"), start=start)`` by IRLS."""

    def deviance(mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(y == 0, 1.0, y / mu)
            return float(np.sum(-2.0 * (np.log(ratio) - (y - mu) / mu)))

    coef = np.asarray(start, dtype=float)
    mu = X @ coef
    if np.any(mu <= 0):
        raise TrendFitError("invalid start for the parametric dispersion fit")
    dev_old = deviance(mu)
    converged = False
    for _ in range(maxit):
        w = 1.0 / mu  # sqrt of the working weight 1/mu^2
        new, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
        eta = X @ new
        halvings = 0
        while np.any(eta <= 0) and halvings < 50:
            new = (new + coef) / 2
            eta = X @ new
            halvings += 1
        coef, mu = new, eta
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < eps:
            converged = True
            break
        dev_old = dev
    return coef, converged


def parametric_trend(means: np.ndarray, disps: np.ndarray) -> np.ndarray:
    """Fit ``disp = a0 + a1 / mean`` as DESeq2's ``parametricDispersionFit``; returns (a0, a1)."""
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        residuals = disps / (coefs[0] + coefs[1] / means)
        good = (residuals > 1e-4) & (residuals < 15)
        X = np.column_stack([np.ones(good.sum()), 1.0 / means[good]])
        old = coefs
        coefs, converged = _gamma_identity_glm(disps[good], X, old)
        if not np.all(coefs > 0):
            raise TrendFitError("parametric dispersion fit failed (a coefficient is not positive)")
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            return coefs
    raise TrendFitError("parametric dispersion fit did not converge")


def local_trend(means: np.ndarray, disps: np.ndarray, min_disp: float, span: float = 0.7):
    """A local quadratic fit of log dispersion on log mean (weights = mean), as a function.

    Stands in for DESeq2's ``locfit`` fallback: tricube kernel over the nearest ``span``
    fraction of genes, evaluated on a grid and interpolated. With fewer than 3 usable genes (no
    local quadratic is defined) the trend is constant: the mean-weighted geometric mean of their
    dispersions, or ``10 * min_disp`` when there are none (as DESeq2 when every dispersion is
    below that).
    """
    use = disps >= min_disp * 10
    lx, ly, wt = np.log(means[use]), np.log(disps[use]), means[use]
    n = lx.size
    if n < 3:
        level = float(np.exp(np.sum(wt * ly) / np.sum(wt))) if n else 10.0 * min_disp

        def constant(q: np.ndarray) -> np.ndarray:
            return np.full(np.shape(q), level)

        return constant
    k = max(3, int(np.ceil(span * n)))
    grid = np.linspace(lx.min(), lx.max(), 200)
    fit = np.empty_like(grid)
    for i, g in enumerate(grid):
        d = np.abs(lx - g)
        h = np.partition(d, k - 1)[k - 1]
        h = h if h > 0 else d.max() + 1e-12
        kw = np.clip(1 - (d / h) ** 3, 0, None) ** 3 * wt
        sel = kw > 0
        B = np.column_stack([np.ones(sel.sum()), lx[sel] - g, (lx[sel] - g) ** 2])
        sw = np.sqrt(kw[sel])
        beta, *_ = np.linalg.lstsq(B * sw[:, None], ly[sel] * sw, rcond=None)
        fit[i] = beta[0]

    def trend(q: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(np.log(q), grid, fit))

    return trend


def mean_trend(disps: np.ndarray, min_disp: float) -> float:
    """DESeq2 ``fitType="mean"``: 0.1%-trimmed mean of gene-wise dispersions above 10 * minDisp."""
    use = disps > 10 * min_disp
    return float(trim_mean(disps[use], 0.001))
