"""edgeR 4's quasi-likelihood fit (``glmQLFit(legacy = FALSE)``, the default since edgeR 4.2).

:func:`fit_edger_ql` runs, on counts already filtered by the caller::

    normLibSizes -> glmQLFit(legacy = FALSE)

with the steps of edgeR 4.5.1 / limma 3.63.2:

1. the NB dispersion is one value, the Cox-Reid common dispersion of the most expressed genes
   (the top ``top_proportion`` by average log-CPM; ``chooseLowessSpan(G sqrt(m - p), small.n = 20,
   min.span = 0.02)`` by default), maximised by R's ``optimize`` over ``phi^(1/4)`` in ``[0, 4^(1/4)]``;
2. a GLM fit at that dispersion gives the average QL dispersion ``q``: twice, the adjusted
   deviances and df (:mod:`pbglm._kernels.ql_adjusted_deviance`) at the current ``q`` (from 1),
   a lowess of ``s2^(1/4)`` on the average log-CPM (``f = 0.5``, 3 iterations), and ``q`` = the
   fourth power of the trend's 90% quantile, at least 1;
3. the GLM is refitted at the working dispersion ``phi / q``; its adjusted deviances and df give
   ``s2 = deviance / df``;
4. limma's ``squeezeVar(legacy = FALSE)`` (:mod:`pbglm._numerics.squeeze_var_unequal_df`) with the
   average log-CPM as covariate gives the prior and posterior QL dispersions.

Tests (``glmQLFTest``) use the working-dispersion deviances and the adjusted df; there is no
Poisson bound (edgeR 4 drops it for the new method).
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels.edger_glm import apl_batch, glm_fit, n_chunks, packed_design, pred_fc
from .._kernels.ql_adjusted_deviance import adjusted_deviance_df, moment_table
from .._numerics.brent import r_optimize
from .._numerics.lowess import lowess
from .._numerics.squeeze_var_unequal_df import _choose_lowess_span, squeeze_var_unequal_df

__all__ = ["EDGER_QL_LABEL", "common_dispersion_cox_reid", "fit_ql_new"]

EDGER_QL_LABEL = "edgeR 4.5 QL (glmQLFit legacy=FALSE)"
PRIOR_COUNT = 0.125


def _systematic_subset(n: int, order_by: np.ndarray) -> np.ndarray:
    """edgeR's ``systematicSubset``: every k-th gene in the order of ``order_by``."""
    total = order_by.size
    ratio = total // n
    if ratio <= 1:
        return np.arange(total)
    i1 = ratio // 2
    o = np.argsort(order_by, kind="stable")
    return o[i1::ratio]


def common_dispersion_cox_reid(counts, design, offset, ave_log_cpm, *, interval=(0.0, 4.0), tol=1e-5,
                               min_row_sum=5.0, subset=10000) -> float:
    """edgeR's ``dispCoxReid`` (``estimateGLMCommonDisp(method = "CoxReid")``): the dispersion that
    maximises the summed Cox-Reid adjusted profile likelihood."""
    Y = np.asarray(counts, dtype=np.float64)
    keep = Y.sum(axis=1) >= min_row_sum
    Y = Y[keep]
    alc = np.asarray(ave_log_cpm, dtype=float)[keep]
    if Y.shape[0] < 1:
        raise ValueError("No gene among the most expressed ones has 5 or more reads: cannot estimate the NB "
                         "dispersion. Check the counts.")
    if subset is not None and subset <= Y.shape[0] / 2:
        Y = Y[_systematic_subset(subset, alc)]
    Y = np.ascontiguousarray(Y)
    X = np.ascontiguousarray(design, dtype=np.float64)
    P = packed_design(X)
    nch = n_chunks(Y.shape[0])

    def apl_sum(par):
        phi = par**4
        fit = glm_fit(Y, X, offset, phi)
        disp = np.full(Y.shape[0], phi)
        return float(np.sum(apl_batch(Y, np.ascontiguousarray(fit.fitted), disp, X, P, True, nch)))

    par = r_optimize(apl_sum, interval[0] ** 0.25, interval[1] ** 0.25, tol=tol, maximum=True)
    return par**4


def _average_ql_dispersion(ave_log_cpm, s2, df) -> float:
    """edgeR's ``compute_prior``: the 90% quantile of a lowess trend of ``s2^(1/4)``, at least 1, to the 4th."""
    ok = df > 1e-8
    x = np.asarray(ave_log_cpm, dtype=float)[ok]
    y = np.sqrt(np.sqrt(s2[ok]))
    if x.size == 0:
        return 1.0
    fitted = lowess(x, y, f=0.5, iters=3)
    q = float(np.quantile(fitted, 0.9, method="linear"))
    return max(q, 1.0) ** 4


def fit_ql_new(counts, design, eff_lib, ave_log_cpm, *, robust: bool = False, top_proportion: float | None = None,
               dispersion: float | None = None) -> dict:
    """edgeR 4.5's ``glmQLFit.default(legacy = FALSE)`` on plain arrays.

    Parameters
    ----------
    counts
        ``(G, m)`` counts (filtered).
    design
        ``(m, p)`` full-rank design with ``m > p``.
    eff_lib
        ``(m,)`` effective library sizes (library size times normalisation factor).
    ave_log_cpm
        ``(G,)`` average log-CPM (``aveLogCPM`` at dispersion 0.05), the covariate of the QL prior.
    robust
        Robust empirical Bayes for the QL dispersions.
    top_proportion
        Share of most expressed genes for the NB dispersion (edgeR's default when None).
    dispersion
        A fixed NB dispersion instead of the estimate from the most expressed genes.

    Returns
    -------
    dict with ``dispersion`` (NB), ``average_ql_dispersion``, ``top_proportion``, ``working_dispersion``,
    ``coefficients`` (unshrunk, natural log), ``shrunk_coefficients`` (``prior.count = 0.125``),
    ``fitted``, ``deviance`` (at the working dispersion), ``converged``, ``deviance_adj``,
    ``df_residual_adj``, ``s2``, ``s2_prior``, ``s2_post``, ``df_prior`` (per gene), ``df2``.
    """
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(design, dtype=np.float64)
    G, m = Y.shape
    p = X.shape[1]
    offset = np.log(np.asarray(eff_lib, dtype=float))
    alc = np.asarray(ave_log_cpm, dtype=float)
    if dispersion is None:
        if top_proportion is None:
            top_proportion = _choose_lowess_span(G * math.sqrt(m - p), small_n=20, min_span=0.02)
        elif not 0 < top_proportion <= 1:
            raise ValueError(f"top_proportion must be in (0, 1], got {top_proportion}.")
        ntop = math.ceil(top_proportion * G)
        top = np.argsort(-alc, kind="stable")[:ntop]
        dispersion = common_dispersion_cox_reid(Y[top], X, offset, alc[top])
    phi = float(dispersion)
    first = glm_fit(Y, X, offset, phi)
    table = moment_table(phi)
    prior = 1.0
    for _ in range(2):
        _, df, s2 = adjusted_deviance_df(Y, first.fitted, X, phi, prior, table)
        prior = _average_ql_dispersion(alc, s2, df)
    working = phi / prior
    fit = glm_fit(Y, X, offset, working)
    dev_adj, df_adj, s2 = adjusted_deviance_df(Y, fit.fitted, X, phi, prior, table)
    sq = squeeze_var_unequal_df(s2, df_adj, covariate=alc, robust=robust)
    shrunk = pred_fc(Y, X, np.exp(offset), np.full(G, working), PRIOR_COUNT, start=fit.coefficients)
    return {
        "dispersion": phi,
        "average_ql_dispersion": prior,
        "top_proportion": np.nan if top_proportion is None else float(top_proportion),
        "working_dispersion": working,
        "coefficients": fit.coefficients,
        "shrunk_coefficients": shrunk,
        "fitted": fit.fitted,
        "deviance": fit.deviance,
        "converged": fit.converged,
        "deviance_adj": dev_adj,
        "df_residual_adj": df_adj,
        "s2": s2,
        "s2_prior": np.broadcast_to(np.asarray(sq["var_prior"], dtype=float), (G,)).copy(),
        "s2_post": sq["var_post"],
        "df_prior": np.broadcast_to(np.asarray(sq["df_prior"], dtype=float), (G,)).copy(),
        "df2": float(sq["df2"]),
    }
