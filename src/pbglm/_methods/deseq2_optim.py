"""DESeq2's fallback for genes whose IRLS did not converge: L-BFGS-B on the log2 scale.

DESeq2 (``fitNbinomGLMsOptim``) hands these genes to R's ``optim(method="L-BFGS-B")`` with
finite-difference gradients (central differences, step 1e-3), bounds +-30 on the log2 scale,
``factr = 1e7`` and at most 100 iterations; the optimum it stops at on these flat likelihoods
depends on that optimiser, so the same optimiser (SciPy's L-BFGS-B with the same settings) is
used here. These genes are rare (a handful per data set), so a per-gene loop is fine.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

LN2 = np.log(2.0)
_LARGE = 30.0
_NDEPS = 1e-3


def _neg_log_post(b, X, y, sf, size, lam, sd_const):
    mu = sf * np.exp2(X @ b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = np.sum(gammaln(y + size) - gammaln(size) - gammaln(y + 1) + size * np.log(size / (size + mu))
                    + np.where(y > 0, y * np.log(mu / (size + mu)), 0.0))
    log_prior = np.sum(-0.5 * lam * b**2) + sd_const
    value = -(ll + log_prior)
    return value if np.isfinite(value) else 1e300


def _gradient(b, *args):
    g = np.empty_like(b)
    for i in range(b.size):
        hi, lo = b.copy(), b.copy()
        hi[i] = min(b[i] + _NDEPS, _LARGE)
        lo[i] = max(b[i] - _NDEPS, -_LARGE)
        g[i] = (_neg_log_post(hi, *args) - _neg_log_post(lo, *args)) / (hi[i] - lo[i])
    return g


def optim_refit(counts, size_factors, X, alpha, start_log2, ridge_log2, min_mu) -> dict:
    """Refit genes (rows of ``counts``) as DESeq2's optim fallback.

    ``ridge_log2`` is the ridge penalty on the log2 scale: one value for every coefficient, or one
    per coefficient. Returns natural-log coefficients, their covariance (natural log), unfloored means, the
    deviance at floored means (as DESeq2 records it) and the optimiser's convergence flags.
    """
    G, m = counts.shape
    p = X.shape[1]
    lam = np.array(np.broadcast_to(np.asarray(ridge_log2, dtype=np.float64), (p,)))
    sd_const = np.sum(-0.5 * np.log(2 * np.pi) + 0.5 * np.log(lam))
    beta = np.empty((G, p))
    cov = np.empty((G, p, p))
    mu_out = np.empty((G, m))
    dev = np.empty(G)
    conv = np.zeros(G, dtype=bool)
    for g in range(G):
        y = counts[g]
        size = 1.0 / alpha[g]
        args = (X, y, size_factors, size, lam, sd_const)
        x0 = np.clip(np.nan_to_num(start_log2[g]), -_LARGE, _LARGE)
        res = minimize(_neg_log_post, x0, args=args, jac=_gradient, method="L-BFGS-B",
                       bounds=[(-_LARGE, _LARGE)] * p,
                       options={"maxcor": 5, "ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0, "maxiter": 100})
        conv[g] = bool(res.success) and res.nit < 100
        b = res.x
        beta[g] = b * LN2
        mu = size_factors * np.exp2(X @ b)
        mu_out[g] = mu
        mu_f = np.maximum(mu, min_mu)
        w = 1.0 / (1.0 / mu_f + alpha[g])
        xtwx = X.T @ (w[:, None] * X)
        inv = np.linalg.inv(xtwx + np.diag(lam))
        cov[g] = inv @ xtwx @ inv
        with np.errstate(divide="ignore"):
            ll = np.sum(gammaln(y + size) - gammaln(size) - gammaln(y + 1) + size * np.log(size / (size + mu_f))
                        + np.where(y > 0, y * np.log(mu_f / (size + mu_f)), 0.0))
        dev[g] = -2.0 * ll
    return {"beta": beta, "cov": cov, "mu": mu_out, "deviance": dev, "converged": conv}
