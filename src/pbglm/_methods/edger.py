"""The edgeR quasi-likelihood pipeline on plain arrays (edgeR 3.40, "legacy" QL).

:func:`fit_edger` runs, on counts already filtered by the caller (``filterByExpr`` with the
library sizes of the filtered matrix, ``keep.lib.sizes = FALSE``)::

    calcNormFactors(TMM) -> estimateDisp(design) -> glmQLFit(robust = TRUE)

and :func:`edger_test` runs ``glmQLFTest`` (``kind="qlf"``), ``glmLRT`` on a ``glmFit`` with the
tagwise dispersions (``kind="lrt"``) or ``glmTreat`` on the QL fit (``kind="treat"``) for one
contrast vector, or jointly for the columns of a contrast matrix.

Everything a test needs is stored in the :class:`FitResult`'s ``gene_info``, ``sample_info`` and
``params`` (plain arrays and numbers, so that it survives a round trip through ``.h5ad``) or is
recomputed from the counts and the design; ``extra`` only caches the unshrunk fit.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import special, stats

from .._kernels.edger_glm import GlmFit, glm_fit, pred_fc
from .._numerics.ave_log_cpm import ave_log_cpm
from .._numerics.edger_dispersion import estimate_disp, residual_df_zeros
from .._numerics.multitest import bh_adjust
from .._numerics.norm_lib_sizes import norm_lib_sizes
from .._numerics.squeeze_var import log_t_sf, squeeze_var
from .._numerics.tmm import calc_norm_factors_tmm
from .._settings import settings
from ._result import FitResult
from .edger_ql import EDGER_QL_LABEL, fit_ql_new

logger = logging.getLogger("pbglm")

__all__ = ["edger_test", "fit_edger", "ql_fit"]

PRIOR_COUNT = 0.125


def _check_inputs(counts, design):
    Y = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(design, dtype=np.float64)
    if Y.ndim != 2 or X.ndim != 2:
        raise ValueError("counts must be (genes x samples) and design (samples x coefficients), both 2-D.")
    G, m = Y.shape
    if X.shape[0] != m:
        raise ValueError(f"design has {X.shape[0]} rows but counts have {m} samples; pass genes x samples counts.")
    if not np.all(np.isfinite(X)):
        raise ValueError("The design matrix has non-finite entries.")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("The design matrix is not of full rank; drop confounded or empty columns.")
    if X.shape[1] >= m:
        raise ValueError("The design has no residual degrees of freedom (as many columns as samples or more).")
    return Y, X


def ql_fit(
    counts: np.ndarray,
    design: np.ndarray,
    lib_size: np.ndarray,
    dispersion: np.ndarray,
    ave_log_cpm_values: np.ndarray,
    *,
    robust: bool = True,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
    fit: GlmFit | None = None,
) -> dict:
    """edgeR 3.40's ``glmQLFit``: NB GLM at the given dispersions, then ``squeezeVar`` of ``s2``.

    ``s2 = deviance / df``, with df reduced for samples whose fitted values are exactly zero
    (``.residDF``); the prior is trended in the average log-CPM.

    Parameters
    ----------
    counts
        ``(G, m)`` counts.
    design
        ``(m, p)`` design.
    lib_size
        ``(m,)`` effective library sizes (offsets are their logs).
    dispersion
        ``(G,)`` NB dispersions (edgeR uses the trended ones).
    ave_log_cpm_values
        ``(G,)`` average log-CPM, the covariate of the prior.
    robust
        Robust hyperparameters (``squeezeVar(robust = TRUE)``).
    winsor_tail_p
        Tail proportions of the robust fit.
    fit
        The NB fit at ``dispersion``, when it is already at hand.

    Returns
    -------
    dict with ``coefficients`` (unshrunk, natural log), ``fitted``, ``deviance``, ``converged``,
    ``df_residual``, ``s2``, ``var_prior``, ``var_post``, ``df_prior`` (per gene) and ``df2``
    (the robust fit's df before gene-wise shrinkage, or the plain df prior).
    """
    offset = np.log(lib_size)
    if fit is None:
        fit = glm_fit(counts, design, offset, dispersion)
    zero = (fit.fitted < 1e-4) & (counts < 1e-4)
    df = residual_df_zeros(zero, design)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = fit.deviance / df
    s2[df == 0] = 0.0
    s2 = np.maximum(s2, 0.0)
    sq = squeeze_var(s2, df, covariate=ave_log_cpm_values, robust=robust, winsor_tail_p=winsor_tail_p)
    G = counts.shape[0]
    return {
        "coefficients": fit.coefficients,
        "fitted": fit.fitted,
        "deviance": fit.deviance,
        "converged": fit.converged,
        "df_residual": df,
        "s2": s2,
        "var_prior": np.broadcast_to(np.asarray(sq["var_prior"], dtype=float), (G,)).copy(),
        "var_post": sq["var_post"],
        "df_prior": np.broadcast_to(np.asarray(sq["df_prior"], dtype=float), (G,)).copy(),
        "df2": float(sq.get("df2", np.asarray(sq["df_prior"]).reshape(-1)[0])),
    }


def _trended_fit(Y, X, offset, trended, disp) -> GlmFit:
    """The NB fit at the trended dispersions, reusing estimateDisp's fit of the selected genes."""
    pre = disp.get("trended_fit")
    sel = disp["selected"]
    if pre is None:
        return glm_fit(Y, X, offset, trended)
    if sel.all():
        return pre
    G, m = Y.shape
    rest = np.flatnonzero(~sel)
    other = glm_fit(np.ascontiguousarray(Y[rest]), X, offset, np.ascontiguousarray(trended[rest]))
    coef = np.empty((G, X.shape[1]))
    mu = np.empty((G, m))
    dev = np.empty(G)
    conv = np.empty(G, dtype=bool)
    for part, idx in ((pre, np.flatnonzero(sel)), (other, rest)):
        coef[idx] = part.coefficients
        mu[idx] = part.fitted
        dev[idx] = part.deviance
        conv[idx] = part.converged
    return GlmFit(coef, mu, dev, conv, pre.method)


def fit_edger(
    counts: np.ndarray,
    design: np.ndarray,
    *,
    lib_size: np.ndarray | None = None,
    norm_factors: np.ndarray | None = None,
    legacy: bool = True,
    robust: bool | None = None,
    robust_disp: bool = False,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
    top_proportion: float | None = None,
    normalize: str = "TMM",
    n_jobs: int | None = None,
) -> FitResult:
    """Fit edgeR's quasi-likelihood NB GLM to every gene.

    ``legacy=True``: edgeR 3.40 (``estimateDisp`` + legacy ``glmQLFit``); ``legacy=False``: edgeR
    4.5's ``glmQLFit(legacy = FALSE)`` (:func:`pbglm._methods.edger_ql.fit_ql_new`).

    Parameters
    ----------
    counts
        ``(G, m)`` counts, genes in rows, already filtered (e.g. by ``filterByExpr``).
    design
        ``(m, p)`` full-rank design matrix.
    lib_size
        ``(m,)`` library sizes; column sums of ``counts`` by default (edgeR's
        ``keep.lib.sizes = FALSE`` after filtering).
    norm_factors
        ``(m,)`` normalisation factors; by default ``normLibSizes(method = normalize)``.
    normalize
        ``"TMM"`` (default), ``"TMMwsp"``, ``"RLE"``, ``"upperquartile"`` or ``"none"``.
    legacy
        edgeR 3.40's legacy QL pipeline (True) or edgeR 4.5's new QL method (False).
    robust
        Robust empirical Bayes for the QL dispersions (``glmQLFit(robust = TRUE)``); ``None``:
        True for the legacy path (what pbglm has always run), False for edgeR 4 (its default).
    robust_disp
        Robust prior df in ``estimateDisp`` (edgeR's default is False; legacy only).
    top_proportion
        edgeR 4: share of most expressed genes for the NB dispersion (edgeR's rule when None).
    winsor_tail_p
        Tail proportions of the robust hyperparameter fits.
    n_jobs
        Threads for the numba kernels (default: :attr:`pbglm.settings.n_jobs`).

    Returns
    -------
    :class:`FitResult` with ``method="edger"``; ``coef`` are edgeR's reported log2 coefficients
    (fitted with ``prior.count = 0.125``, as ``glmQLFTest``'s ``logFC``); ``dispersion`` is the
    trended NB dispersion the QL fit uses; ``size_factors`` the effective library sizes over
    their geometric mean. ``gene_info``: ``ave_log_cpm``, ``dispersion_common``,
    ``dispersion_trend``, ``dispersion_tagwise``, ``ql_dispersion`` (deviance / df),
    ``ql_dispersion_prior``, ``ql_dispersion_post``, ``df_prior``, ``df_residual``,
    ``deviance``, ``converged``. ``sample_info``: ``lib_size``, ``norm_factors``. ``params``:
    ``dispersion_common``, ``disp_prior_df``, ``disp_span``, ``ql_df2``, ``ql_robust``,
    ``winsor_tail_p``, ``prior_count``, ``edger_ql``.
    """
    Y, X = _check_inputs(counts, design)
    G, m = Y.shape
    if np.any(Y < 0) or not np.all(np.isfinite(Y)):
        raise ValueError("Counts must be finite and non-negative; filter out genes with missing values first.")
    lib = Y.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    if lib.shape != (m,) or np.any(~(lib > 0)):
        raise ValueError(f"lib_size must hold {m} positive library sizes.")
    with settings.threads(n_jobs):
        if norm_factors is None:
            nf = calc_norm_factors_tmm(Y, lib) if normalize == "TMM" else norm_lib_sizes(Y, lib, normalize)
        else:
            nf = np.asarray(norm_factors, dtype=np.float64)
            if nf.shape != (m,):
                raise ValueError(f"norm_factors must have one entry per sample ({m}).")
        eff = lib * nf
        if not legacy:
            return _fit_new(Y, X, lib, nf, eff, robust=bool(robust), top_proportion=top_proportion,
                            normalize=normalize)
        robust = True if robust is None else bool(robust)
        disp = estimate_disp(Y, X, eff, robust=robust_disp, winsor_tail_p=winsor_tail_p)
        alc = disp["ave_log_cpm"]
        trended = disp["trended"]
        nbfit = _trended_fit(Y, X, np.log(eff), trended, disp)
        ql = ql_fit(Y, X, eff, trended, alc, robust=robust, winsor_tail_p=winsor_tail_p, fit=nbfit)
        coef = pred_fc(Y, X, eff, trended, PRIOR_COUNT, start=nbfit.coefficients)
    sf = eff / math.exp(np.mean(np.log(eff)))
    disp_prior_df = disp["prior_df"]
    params = {
        "dispersion_common": disp["common"],
        "disp_prior_df": float(np.median(disp_prior_df)) if np.ndim(disp_prior_df) else float(disp_prior_df),
        "disp_span": disp["span"],
        "ql_df2": ql["df2"],
        "ql_robust": bool(robust),
        "disp_robust": bool(robust_disp),
        "winsor_tail_p": np.asarray(winsor_tail_p, dtype=float),
        "prior_count": PRIOR_COUNT,
        "edger_ql": "legacy (edgeR 3.40 glmQLFit)",
        **({} if normalize == "TMM" else {"normalize": normalize}),
    }
    gene_info = {
        "ave_log_cpm": alc,
        "dispersion_common": np.full(G, disp["common"]),
        "dispersion_trend": trended,
        "dispersion_tagwise": disp["tagwise"],
        "ql_dispersion": ql["s2"],
        "ql_dispersion_prior": ql["var_prior"],
        "ql_dispersion_post": ql["var_post"],
        "df_prior": ql["df_prior"],
        "df_residual": ql["df_residual"],
        "deviance": ql["deviance"],
        "converged": ql["converged"],
    }
    return FitResult(
        method="edger",
        coef=coef,
        cov=np.full((G, X.shape[1], X.shape[1]), np.nan),
        size_factors=sf,
        base_mean=np.mean(Y / sf[None, :], axis=1),
        dispersion=trended,
        mu=ql["fitted"],
        gene_info=gene_info,
        sample_info={"lib_size": lib, "norm_factors": nf},
        params=params,
        extra={"unshrunk_coef": ql["coefficients"], "deviance": ql["deviance"], "fitted": ql["fitted"]},
    )


def _fit_new(Y, X, lib, nf, eff, *, robust: bool, top_proportion, normalize: str) -> FitResult:
    """edgeR 4.5's QL fit wrapped as a :class:`FitResult` (columns as the legacy one where they mean
    the same; ``dispersion`` is the working dispersion the GLM and the tests use)."""
    G, m = Y.shape
    alc = ave_log_cpm(Y, eff)
    ql = fit_ql_new(Y, X, eff, alc, robust=robust, top_proportion=top_proportion)
    sf = eff / math.exp(np.mean(np.log(eff)))
    working = np.full(G, ql["working_dispersion"])
    params = {
        "dispersion_common": ql["dispersion"],
        "average_ql_dispersion": ql["average_ql_dispersion"],
        "top_proportion": ql["top_proportion"],
        "ql_df2": ql["df2"],
        "ql_robust": bool(robust),
        "prior_count": PRIOR_COUNT,
        "edger_ql": EDGER_QL_LABEL,
        "normalize": normalize,
    }
    gene_info = {
        "ave_log_cpm": alc,
        "dispersion_common": np.full(G, ql["dispersion"]),
        "ql_dispersion": ql["s2"],
        "ql_dispersion_prior": ql["s2_prior"],
        "ql_dispersion_post": ql["s2_post"],
        "df_prior": ql["df_prior"],
        "df_residual": ql["df_residual_adj"],
        "deviance": ql["deviance_adj"],
        "deviance_working": ql["deviance"],
        "converged": ql["converged"],
    }
    return FitResult(
        method="edger",
        coef=ql["shrunk_coefficients"],
        cov=np.full((G, X.shape[1], X.shape[1]), np.nan),
        size_factors=sf,
        base_mean=np.mean(Y / sf[None, :], axis=1),
        dispersion=working,
        mu=ql["fitted"],
        gene_info=gene_info,
        sample_info={"lib_size": lib, "norm_factors": nf},
        params=params,
        extra={"unshrunk_coef": ql["coefficients"], "deviance": ql["deviance"], "fitted": ql["fitted"]},
    )


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


def _contrast_matrix(contrast, p: int) -> np.ndarray:
    C = np.asarray(contrast, dtype=np.float64)
    if C.ndim == 1:
        C = C[:, None]
    if C.ndim != 2 or C.shape[0] != p:
        raise ValueError(f"contrast must have {p} rows (one per design column), got shape {np.shape(contrast)}.")
    if not np.any(C != 0):
        raise ValueError("The contrast is all zero; give at least one non-zero entry.")
    return C


def _null_design(X: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, int]:
    """Design of the null model and the test df: X times an orthonormal basis of the complement of
    span(C) (the column space edgeR's QR reparametrisation leaves after dropping the contrasts)."""
    U, sv, _ = np.linalg.svd(C, full_matrices=True)
    rank = int(np.sum(sv > 1e-7 * sv.max()))
    return np.ascontiguousarray(X @ U[:, rank:]), rank


def _reform_first(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    """limma's ``contrastAsCoef(design, contrast, first = TRUE)`` column space, with the contrast
    as the first coefficient (column ``X c / |c|^2``)."""
    Q, _ = np.linalg.qr(c[:, None], mode="complete")
    return np.ascontiguousarray(np.column_stack([X @ c / (c @ c), X @ Q[:, 1:]]))


def _below_poisson_bound(mu: np.ndarray, disp: np.ndarray, s2_post: np.ndarray) -> np.ndarray:
    """Genes whose QL variance falls below the Poisson one in some sample: ``(mu phi + 1) s2 < 1``.

    The left side grows with mu, so checking each gene's smallest mean is enough.
    """
    return (mu.min(axis=1) * disp + 1.0) * s2_post < 1.0


def _zscore_t(x, df):
    """limma's ``zscoreT`` (quantile method): the z with the same tail probability as t(df)."""
    x = np.asarray(x, dtype=float)
    logp = log_t_sf(np.abs(x), np.broadcast_to(np.asarray(df, dtype=float), x.shape))
    return -special.ndtri_exp(logp) * np.sign(x)


def _integrate_pnorm(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        val = (b * stats.norm.cdf(b) + stats.norm.pdf(b) - (a * stats.norm.cdf(a) + stats.norm.pdf(a))) / (b - a)
    return np.where(a == b, stats.norm.cdf(a), val)


def _treat_pvalue(z_left, z_right, unshrunk_lfc, lfc):
    """glmTreat's interval-null p-value from the two signed z statistics."""
    swap = z_left > z_right
    zl = np.where(swap, z_right, z_left)
    zr = np.where(swap, z_left, z_right)
    within = np.abs(unshrunk_lfc) <= lfc
    zl = zl * (2.0 * within - 1.0)
    c = 1.470402
    j = zr + zl > c
    p = np.ones(zl.shape)
    p[j] = _integrate_pnorm(-zr[j], -zr[j] + c) + _integrate_pnorm(zl[j] - c, zl[j])
    nj = ~j & ~np.isnan(zl) & ~np.isnan(zr)
    p[nj] = 2.0 * _integrate_pnorm(-zr[nj], zl[nj])
    return p


def _treat_deviance_z(Y, Xr, offset, disp, lfc):
    """sqrt of the deviance drops at the two shifted nulls ``c'beta = +-lfc`` (natural-log offsets)."""
    adj = lfc * math.log(2.0) * Xr[:, 0]
    X0 = np.ascontiguousarray(Xr[:, 1:])
    zs = []
    for sgn in (1.0, -1.0):
        off = offset + sgn * adj
        d0 = glm_fit(Y, X0, off, disp).deviance
        d1 = glm_fit(Y, Xr, off, disp).deviance
        zs.append(np.sqrt(np.maximum(0.0, d0 - d1)))
    return zs[0], zs[1]


def _get(fit_info: FitResult, key: str, G: int) -> np.ndarray:
    if key not in fit_info.gene_info:
        raise ValueError(f"fit_info.gene_info lacks {key!r}; refit with method='edger'.")
    return np.broadcast_to(np.asarray(fit_info.gene_info[key], dtype=float), (G,))


def edger_test(
    counts: np.ndarray,
    design: np.ndarray,
    fit_info: FitResult,
    contrast,
    *,
    kind: str = "qlf",
    lfc: float = 0.0,
    legacy: bool = True,
    n_jobs: int | None = None,
) -> dict[str, np.ndarray]:
    """Test a contrast with edgeR's ``glmQLFTest``, ``glmLRT`` or ``glmTreat``.

    Parameters
    ----------
    counts
        ``(G, m)`` the counts the fit was made on (rows of genes left out of the fit, whose
        dispersions are NaN, get NaN results).
    design
        ``(m, p)`` the design of the fit.
    fit_info
        The :class:`FitResult` of :func:`fit_edger` (or one rebuilt from its stored arrays).
    contrast
        ``(p,)`` vector, or ``(p, k)`` matrix for a joint test on ``rank`` degrees of freedom.
    kind
        ``"qlf"`` (quasi-likelihood F-test, trended dispersion), ``"lrt"`` (likelihood ratio
        test of a ``glmFit`` with the tagwise dispersions) or ``"treat"`` (``glmTreat`` on the
        QL fit: |log2 fold change| > ``lfc``; a single contrast).
    lfc
        The log2 fold-change threshold of ``kind="treat"`` (``kind="treat"`` with ``lfc=0`` is
        the QL F-test, as in edgeR).
    legacy
        Whether ``fit_info`` is a legacy (edgeR 3.40) QL fit. Legacy: p-values no smaller than a
        Poisson test's where the QL variance is below the Poisson one, and ``kind="lrt"`` refits
        at the tagwise dispersions (``glmFit``). edgeR 4 fits (False): no Poisson bound, and
        ``kind="lrt"`` is ``glmLRT`` on the QL fit (at its working dispersion).
    n_jobs
        Threads for the numba kernels.

    Returns
    -------
    dict of ``(G,)`` arrays: ``log2fc`` (edgeR's shrunken logFC, ``prior.count = 0.125``; for a
    contrast matrix the first column's), ``lfc_se`` (edgeR has none: for one-df ``qlf`` and
    ``lrt`` tests the standard error the test implies, ``|log2fc| / sqrt(stat)``, so that
    ``log2fc / lfc_se`` is the signed root of the statistic; NaN for ``treat`` and joint tests), ``stat`` (F for
    ``qlf``; LR for ``lrt``; for ``treat`` the QL F statistic against the nearer shifted null),
    ``pvalue``, ``padj`` (Benjamini-Hochberg over the tested genes) and ``log_cpm``.
    """
    if kind not in ("qlf", "lrt", "treat"):
        raise ValueError(f"kind must be 'qlf', 'lrt' or 'treat', got {kind!r}.")
    if lfc < 0:
        raise ValueError("lfc must be non-negative (a log2 fold-change threshold).")
    Y_all, X = _check_inputs(counts, design)
    G, m = Y_all.shape
    p = X.shape[1]
    if p < 2:
        raise ValueError("Testing needs a design with at least two columns (an intercept-only model has no effect).")
    C = _contrast_matrix(contrast, p)
    if kind == "treat" and lfc == 0:
        kind = "qlf"
    if kind == "treat" and C.shape[1] > 1:
        logger.warning("glmTreat takes one contrast; using the first column of the contrast matrix only.")
        C = C[:, :1]
    sample_info = fit_info.sample_info
    lib = np.asarray(sample_info["lib_size"], dtype=float)
    nf = np.asarray(sample_info.get("norm_factors", np.ones(m)), dtype=float)
    offset = np.log(lib * nf)
    trended = np.broadcast_to(np.asarray(fit_info.dispersion, dtype=float), (G,))
    alc = _get(fit_info, "ave_log_cpm", G)
    valid = np.isfinite(trended) & np.isfinite(Y_all.sum(axis=1))
    lrt_tagwise = kind == "lrt" and legacy
    if lrt_tagwise:
        tagwise = _get(fit_info, "dispersion_tagwise", G)
        valid &= np.isfinite(tagwise)
    else:
        s2_post_all = _get(fit_info, "ql_dispersion_post", G)
        df_prior_all = _get(fit_info, "df_prior", G)
        df_res_all = _get(fit_info, "df_residual", G)
        valid &= np.isfinite(s2_post_all)
    idx = np.flatnonzero(valid)
    Y = Y_all if idx.size == G else np.ascontiguousarray(Y_all[idx])
    nv = idx.size
    out = {k: np.full(G, np.nan) for k in ("log2fc", "lfc_se", "stat", "pvalue", "padj", "log_cpm")}
    out["log_cpm"] = np.array(alc, dtype=float)
    if nv == 0:
        return out

    cache = fit_info.extra or {}
    cached = all(np.shape(cache.get(k, ()))[:1] == (G,) for k in ("unshrunk_coef", "deviance", "fitted"))
    with settings.threads(n_jobs):
        if lrt_tagwise:
            disp = np.ascontiguousarray(tagwise[idx])
            full = glm_fit(Y, X, offset, disp)
            dev1, unshrunk, mu = full.deviance, full.coefficients, full.fitted
            shrunk = pred_fc(Y, X, lib * nf, disp, PRIOR_COUNT)
        else:
            disp = np.ascontiguousarray(trended[idx])
            if cached:
                unshrunk = np.asarray(cache["unshrunk_coef"])[idx]
                dev1 = np.asarray(cache["deviance"])[idx]
                mu = np.asarray(cache["fitted"])[idx]
            elif not legacy and kind in ("qlf", "lrt") and "deviance_working" in fit_info.gene_info:
                # edgeR 4 fits store the deviance at the working dispersion; the F and LR tests need
                # nothing else of the full fit (no Poisson bound)
                dev1 = _get(fit_info, "deviance_working", G)[idx]
                unshrunk = mu = None
            else:
                full = glm_fit(Y, X, offset, disp)
                dev1, unshrunk, mu = full.deviance, full.coefficients, full.fitted
            shrunk = np.asarray(fit_info.coef, dtype=float)[idx]
            s2_post = s2_post_all[idx]
            df_total = np.minimum(df_prior_all[idx] + df_res_all[idx], nv * (m - p))

        log2fc = shrunk @ C[:, 0]

        if kind in ("qlf", "lrt"):
            X0, rank = _null_design(X, C)
            dev0 = glm_fit(Y, X0, offset, disp).deviance
            LR = dev0 - dev1
            if kind == "lrt":
                stat = LR
                pval = stats.chi2.sf(LR, rank)
            else:
                stat = LR / rank / s2_post
                pval = stats.f.sf(stat, rank, df_total)
                below = _below_poisson_bound(mu, disp, s2_post) if legacy else np.zeros(nv, dtype=bool)
                if below.any():
                    b = np.flatnonzero(below)
                    Yb = np.ascontiguousarray(Y[b])
                    pois1 = glm_fit(Yb, X, offset, 0.0, start=np.ascontiguousarray(unshrunk[b]))
                    pois0 = glm_fit(Yb, X0, offset, 0.0)
                    pp = stats.chi2.sf(pois0.deviance - pois1.deviance, rank)
                    pval[b] = np.maximum(pval[b], pp)
        else:
            c = C[:, 0]
            Xr = _reform_first(X, c)
            unshrunk_lfc = unshrunk @ c / math.log(2.0)
            zl, zr = _treat_deviance_z(Y, Xr, offset, disp, lfc)
            stat = np.minimum(zl, zr) ** 2 / s2_post
            zl_t = _zscore_t(zl / np.sqrt(s2_post), df_total)
            zr_t = _zscore_t(zr / np.sqrt(s2_post), df_total)
            pval = _treat_pvalue(zl_t, zr_t, unshrunk_lfc, lfc)
            below = _below_poisson_bound(mu, disp, s2_post) if legacy else np.zeros(nv, dtype=bool)
            if below.any():
                b = np.flatnonzero(below)
                Yb = np.ascontiguousarray(Y[b])
                pois = glm_fit(Yb, X, offset, 0.0, start=np.ascontiguousarray(unshrunk[b]))
                pz_l, pz_r = _treat_deviance_z(Yb, Xr, offset, np.zeros(b.size), lfc)
                pp = _treat_pvalue(pz_l, pz_r, pois.coefficients @ c / math.log(2.0), lfc)
                pval[b] = np.maximum(pval[b], pp)

    out["log2fc"][idx] = log2fc
    if kind in ("qlf", "lrt") and C.shape[1] == 1:
        # edgeR reports no standard error: give the one the test implies, |log2fc| / sqrt(F or LR),
        # so that log2fc / lfc_se is the signed square root of the test statistic (as a Wald z/t)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.abs(log2fc) / np.sqrt(stat)
        se[~(stat > 0) | ~np.isfinite(se)] = np.nan
        out["lfc_se"][idx] = se
    out["stat"][idx] = stat
    out["pvalue"][idx] = pval
    out["padj"] = bh_adjust(out["pvalue"])
    return out
