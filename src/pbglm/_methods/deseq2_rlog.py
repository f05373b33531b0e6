"""DESeq2's regularised log transformation (``rlog`` / ``rlogData``) over plain arrays.

Every gene gets the GLM ``log2 q_gj = b_g0 + b_gj`` (an intercept and one coefficient per
sample), fitted by NB IRLS at the trend dispersion with a ridge on the sample coefficients:
a normal prior of variance ``betaPriorVar``, estimated from the data as DESeq2 does (the weighted
95% quantile of ``|log2(q + 0.5) - log2(mean + 0.5)|``, weights ``1 / (1/mean + trend)``, matched to a
normal). The transformed value is ``b_g0 + b_gj``; all-zero genes give 0.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import norm

from .._kernels.rlog_irls import rlog_irls
from .._numerics.weighted_quantile import weighted_quantile
from .deseq2_optim import optim_refit

logger = logging.getLogger("pbglm")

LN2 = np.log(2.0)

__all__ = ["rlog_prior_var", "rlog_transform"]


def rlog_prior_var(counts: np.ndarray, size_factors: np.ndarray, base_mean: np.ndarray,
                   disp_fit: np.ndarray) -> float:
    """DESeq2's ``betaPriorVar`` of the rlog (``matchWeightedUpperQuantileForVariance``, upper 5%)."""
    log_fc = np.log2(counts / size_factors[None, :] + 0.5) - np.log2(base_mean + 0.5)[:, None]
    weights = 1.0 / (1.0 / base_mean + disp_fit)
    m = counts.shape[1]
    sd = weighted_quantile(np.abs(log_fc.ravel(order="F")), np.tile(weights, m), 0.95) / norm.ppf(0.975)
    return float(sd**2)


def rlog_transform(counts: np.ndarray, size_factors: np.ndarray, disp_fit: np.ndarray, base_mean: np.ndarray,
                   *, prior_var: float | None = None, beta_tol: float = 1e-4, maxit: int = 100,
                   min_mu: float = 0.5) -> tuple[np.ndarray, float, np.ndarray]:
    """rlog values of the genes of ``counts`` (``(G, m)``, none all-zero).

    Parameters
    ----------
    counts, size_factors
        Counts of non-zero genes and the size factors.
    disp_fit
        ``(G,)`` trend dispersions at each gene's mean.
    base_mean
        ``(G,)`` mean normalised counts.
    prior_var
        ``betaPriorVar`` (log2 scale); estimated when ``None``.

    Returns
    -------
    ``(G, m)`` rlog values, the prior variance used, and the ``(G,)`` fitted intercepts (log2).
    """
    G, m = counts.shape
    if prior_var is None:
        prior_var = rlog_prior_var(counts, size_factors, base_mean, disp_fit)
    X = np.hstack([np.ones((m, 1)), np.eye(m)])
    lam_log2 = np.concatenate([[1e-6], np.full(m, 1.0 / prior_var)])
    beta = np.zeros((G, m + 1))
    beta[:, 0] = np.log(base_mean)
    out_beta = np.empty((G, m + 1))
    iters = np.empty(G, dtype=np.int64)
    lam = lam_log2 / LN2**2
    rlog_irls(np.ascontiguousarray(counts, dtype=np.float64), np.log(size_factors),
              np.ascontiguousarray(disp_fit, dtype=np.float64), float(lam[0]), np.ascontiguousarray(lam[1:]), beta,
              maxit, beta_tol, min_mu, 30.0, out_beta, iters)
    # as DESeq2 with useOptim = FALSE: only unstable fits go to optim (with the ridge on every
    # sample coefficient the covariance cannot lose positivity, so that leaves NaN coefficients)
    bad = np.isnan(out_beta).any(axis=1)
    if bad.any():
        idx = np.nonzero(bad)[0]
        logger.info("rlog: %d genes refit with L-BFGS-B", idx.size)
        start = np.where(np.isnan(out_beta[idx]), beta[idx], out_beta[idx]) / LN2
        res = optim_refit(np.ascontiguousarray(counts[idx]), size_factors, X, disp_fit[idx], start, lam_log2, min_mu)
        out_beta[idx] = res["beta"]
    b2 = out_beta / LN2
    return b2[:, :1] + b2[:, 1:], float(prior_var), b2[:, 0]
