"""Shrunken log2 fold changes (DESeq2 ``lfcShrink``) on plain arrays: apeglm and the normal prior.

- :func:`apeglm_shrink` is ``lfcShrink(type = "apeglm")``: apeglm's adaptive Cauchy prior on one
  coefficient (scale from the MLEs and their SEs, :func:`pbglm._numerics.shrink_prior.apeglm_prior_var`),
  N(0, 15^2) on the others, the NB likelihood with offsets and fixed dispersions, the posterior mode
  by apeglm's L-BFGS (:mod:`pbglm._kernels.apeglm`), its Laplace SE, false sign rates and s-values.
- :func:`normal_shrink` is ``lfcShrink(type = "normal")``: DESeq2's ``betaPrior = TRUE`` refit, a
  zero-mean normal prior per coefficient (variance from ``estimateBetaPriorVar``) as a ridge in the
  IRLS, with DESeq2's sandwich covariance.
- :func:`contrast_design` rewrites a design so that a contrast is one of its coefficients.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._kernels.apeglm import apeglm_map
from .._numerics.shrink_prior import apeglm_prior_scale, apeglm_prior_var, normal_prior_var, svalue
from .._settings import settings
from .deseq2 import LN2, DESeq2Options, fit_glm

NO_SHRINK_SD = 15.0  # apeglm's prior.no.shrink.scale
LBFGS_MAXIT = 300
LBFGS_EPS = 1e-8


def contrast_design(X: np.ndarray, contrast: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, int]:
    """A design ``X~`` spanning the same space as ``X`` in which coefficient ``j`` is ``contrast @ beta``.

    With ``T`` the identity whose row ``j`` is the contrast, ``X beta = (X T^-1)(T beta)``: the other
    coefficients keep their meaning except that column ``j`` is absorbed. ``j`` is the last non-zero
    entry of the contrast that is not the intercept. Returns ``(X~, j)``.
    """
    contrast = np.asarray(contrast, dtype=float)
    candidates = [k for k in np.nonzero(contrast)[0] if not intercept[k]]
    if not candidates:
        raise ValueError("The contrast only involves the intercept, which is not an effect to shrink; "
                         "shrink a comparison between conditions instead.")
    j = int(candidates[-1])
    T = np.eye(X.shape[1])
    T[j] = contrast
    return np.ascontiguousarray(X @ np.linalg.inv(T)), j


def reparametrised_mle(coef: np.ndarray, cov: np.ndarray, X: np.ndarray, X_new: np.ndarray):
    """MLEs and covariances of the same fit in a design ``X_new`` spanning the same space as ``X``."""
    A = np.linalg.lstsq(X_new, X, rcond=None)[0]  # X = X_new A, so beta_new = A beta
    if np.linalg.norm(X_new @ A - X) > 1e-8 * max(1.0, np.linalg.norm(X)):
        raise ValueError("The reparametrised design does not span the fitted design.")
    return coef @ A.T, A @ cov @ A.T


def apeglm_shrink(counts, X, offset, dispersion, coef_index: int, mle_log2, se_log2, *, lfc_threshold: float = 0.0,
                  n_jobs: int | None = None) -> dict:
    """apeglm posterior of coefficient ``coef_index`` for every gene (log2 outputs).

    ``counts`` (G, m); ``offset`` (m,) or (G, m) natural-log offsets; ``mle_log2``/``se_log2`` the
    coefficient's MLE and SE (NaN for genes to leave out of the prior scale, e.g. all-zero genes).
    Returns ``log2fc_shrunk``, ``lfc_se_shrunk``, ``svalue`` (with a threshold: the "false sign or
    small" s-value of ``lfcShrink(lfcThreshold = )``), ``lfsr``, ``status`` (see
    :func:`pbglm._kernels.apeglm.apeglm_map`), ``prior_var`` and ``prior_scale`` (natural log, as
    apeglm reports them).
    """
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    G, m = counts.shape
    p = X.shape[1]
    prior_var = apeglm_prior_var(np.asarray(mle_log2) * LN2, np.asarray(se_log2) * LN2)
    scale = apeglm_prior_scale(prior_var)
    shrink = np.zeros(p, dtype=np.bool_)
    shrink[coef_index] = True
    off = np.ascontiguousarray(np.atleast_2d(np.asarray(offset, dtype=np.float64)))
    init1 = np.resize(np.array([0.1, -0.1]), p)
    beta = np.empty((G, p))
    cov = np.empty((G, p, p))
    status = np.empty(G, dtype=np.int64)
    disp = np.ascontiguousarray(np.nan_to_num(np.asarray(dispersion, dtype=np.float64), nan=-1.0))
    with settings.threads(n_jobs):
        apeglm_map(counts, X, off, disp, shrink, NO_SHRINK_SD**2, scale**2, init1, -init1, LBFGS_MAXIT,
                   LBFGS_EPS, LBFGS_EPS, beta, cov, status)
    mode = beta[:, coef_index]
    sd = np.sqrt(cov[:, coef_index, coef_index])
    with np.errstate(invalid="ignore"):
        lfsr = stats.norm.cdf(-np.abs(mode) / sd)
        if lfc_threshold > 0:
            t = lfc_threshold * LN2
            below = stats.norm.cdf((np.sign(mode) * t - mode) / sd)
            lfsr = np.where(mode < 0, 1.0 - below, below)
    lfsr[np.isnan(sd)] = np.nan
    return {"log2fc_shrunk": mode / LN2, "lfc_se_shrunk": sd / LN2, "svalue": svalue(lfsr), "lfsr": lfsr,
            "status": status, "prior_var": float(prior_var), "prior_scale": float(scale)}


def normal_shrink(counts, size_factors, X, dispersion, mle_log2, base_mean, disp_trend, intercept, all_zero, *,
                  n_jobs: int | None = None) -> dict:
    """DESeq2's normal-prior refit for every coefficient (log2 outputs, NaN for all-zero genes).

    Returns ``coef`` and ``se`` (G, p) and ``prior_var`` (p,), the log2-scale prior variances.
    """
    nz = ~np.asarray(all_zero, dtype=bool)
    prior_var = normal_prior_var(mle_log2[nz], base_mean[nz], disp_trend[nz], intercept)
    opts = DESeq2Options()
    with settings.threads(n_jobs):
        fit = fit_glm(np.ascontiguousarray(counts[nz], dtype=np.float64), size_factors, X, dispersion[nz], opts,
                      want_hat=False, ridge_log2=1.0 / prior_var)
    G, p = counts.shape[0], X.shape[1]
    coef = np.full((G, p), np.nan)
    se = np.full((G, p), np.nan)
    coef[nz] = fit["beta"] / LN2
    se[nz] = np.sqrt(np.diagonal(fit["cov"], axis1=1, axis2=2)) / LN2
    return {"coef": coef, "se": se, "prior_var": prior_var}
