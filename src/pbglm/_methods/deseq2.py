"""The DESeq2 pipeline over plain arrays: size factors -> dispersions -> NB GLM -> Cook's.

Mirrors ``DESeq()`` with its defaults (Wald, parametric trend, no beta prior, outlier
replacement with >= 7 replicates). Counts are (genes x samples); nothing here knows AnnData.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.stats import nbinom

from .._distributed import gather
from .._kernels.nb_dispersion import fit_dispersion, fit_dispersion_grid
from .._kernels.nb_glm import nb_glm_irls
from .._kernels.small_linalg import packed_outer
from .._kernels.start_values import start_values
from .._numerics import cooks as ck
from .._numerics.dispersion_prior import dispersion_prior_var
from .._numerics.dispersion_trend import TrendFitError, local_trend, mean_trend, parametric_trend
from .._numerics.size_factors import estimate_size_factors
from .._settings import settings
from ._result import FitResult
from .deseq2_optim import optim_refit

logger = logging.getLogger("pbglm")

LN2 = np.log(2.0)


@dataclass(frozen=True)
class DESeq2Options:
    """Tuning constants of the DESeq2 pipeline (DESeq2's defaults)."""

    min_disp: float = 1e-8
    disp_tol: float = 1e-6
    disp_maxit: int = 100
    beta_tol: float = 1e-8
    beta_maxit: int = 100
    min_mu: float = 0.5
    ridge: float = 1e-6
    outlier_sd: float = 2.0
    min_replicates_for_replace: int = 7
    fit_type: str = "parametric"


# --------------------------------------------------------------------------- GLM


def fit_glm(counts, size_factors, X, alpha, opts: DESeq2Options, beta_init=None, want_hat=True,
            mu_out=None, ridge_log2=None) -> dict:
    """NB GLM for every gene (DESeq2 ``fitNbinomGLMs``; without beta prior unless ``ridge_log2``).

    ``ridge_log2``: per-coefficient ridge ``lambda`` on the log2 scale (DESeq2's ``1 / betaPriorVar``
    of the normal prior); default ``opts.ridge`` for every coefficient.

    Returns coefficients (natural log), covariance (natural log), unfloored fitted means (written
    into ``mu_out`` when given: a fresh count-sized array costs more than the fit's memory traffic),
    deviance, hat values (an empty (G, 0) array unless ``want_hat``), IRLS iterations and
    convergence flags. Genes whose IRLS fails are refit with L-BFGS-B, as DESeq2 does with ``optim``.
    """
    G, m = counts.shape
    p = X.shape[1]
    log_sf = np.log(size_factors)
    ridge = np.full(p, opts.ridge) if ridge_log2 is None else np.asarray(ridge_log2, dtype=float)
    lam = ridge / LN2**2
    if beta_init is None:
        beta_init = initial_beta(counts, size_factors, X)
    rows, entry = packed_outer(X)
    beta = np.empty((G, p))
    mu = np.empty((G, m)) if mu_out is None else mu_out
    dev = np.empty(G)
    iters = np.empty(G, dtype=np.int64)
    hat = np.empty((G, m if want_hat else 0))
    cov = np.empty((G, p, p))
    nb_glm_irls(counts, log_sf, X, rows, entry, alpha, lam, beta_init, opts.beta_maxit, opts.beta_tol, opts.min_mu,
                30.0, want_hat, beta, mu, dev, iters, hat, cov)
    converged = iters < opts.beta_maxit
    var_ok = np.all(np.diagonal(cov, axis1=1, axis2=2) > 0, axis=1)
    stable = ~np.isnan(beta).any(axis=1)
    refit = ~converged | ~stable | ~var_ok
    if refit.any():
        idx = np.nonzero(refit)[0]
        log2_beta = beta[idx] / LN2
        usable = stable[idx, None] & np.all(np.abs(log2_beta) < 30, axis=1)[:, None]
        # DESeq2 starts optim from the log2 coefficients when they are usable, otherwise from the
        # natural-log ones (sic), clipped into the box
        start = np.where(usable, log2_beta, beta[idx])
        res = optim_refit(counts[idx], size_factors, X, alpha[idx], start, ridge, opts.min_mu)
        beta[idx], cov[idx], mu[idx], dev[idx] = res["beta"], res["cov"], res["mu"], res["deviance"]
        converged[idx] = res["converged"]
        # DESeq2 keeps the IRLS hat values for these genes
    return {"beta": beta, "cov": cov, "mu": mu, "deviance": dev, "hat": hat, "iters": iters, "converged": converged}


def initial_beta(counts, size_factors, X) -> np.ndarray:
    """Least-squares fit of ``log(normalised counts + 0.1)`` on the design (DESeq2's start)."""
    return gene_start_values(counts, size_factors, X)["beta_init"]


def gene_start_values(counts, size_factors, X) -> dict:
    """Base means and variances, rough dispersion estimates and IRLS starts of every gene
    (:mod:`pbglm._kernels.start_values`)."""
    G, p = counts.shape[0], X.shape[1]
    out = {"base_mean": np.empty(G), "base_var": np.empty(G), "rough": np.empty(G), "beta_init": np.empty((G, p))}
    start_values(counts, size_factors, np.ascontiguousarray(X.T), np.ascontiguousarray(np.linalg.pinv(X)),
                 out["base_mean"], out["base_var"], out["rough"], out["beta_init"])
    return out


def intercept_only_fit(counts, size_factors, alpha) -> dict:
    """DESeq2's shortcut for ``~ 1``: coefficient log(base mean), SE from the summed weights."""
    base_mean = (counts / size_factors[None, :]).mean(axis=1)
    beta = np.log(base_mean)[:, None]
    mu = base_mean[:, None] * size_factors[None, :]
    w = mu / (1.0 + alpha[:, None] * mu)
    xtwx = w.sum(axis=1)
    r = 1.0 / alpha
    dev = -2.0 * nbinom.logpmf(counts, r[:, None], (r[:, None] / (r[:, None] + mu))).sum(axis=1)
    return {
        "beta": beta,
        "cov": (1.0 / xtwx)[:, None, None],
        "mu": mu,
        "deviance": dev,
        "hat": w / xtwx[:, None],
        "iters": np.ones(counts.shape[0], dtype=np.int64),
        "converged": np.ones(counts.shape[0], dtype=bool),
    }


def glm(counts, size_factors, X, alpha, opts: DESeq2Options, beta_init=None, want_hat=True, mu_out=None) -> dict:
    """Dispatch to the intercept-only shortcut or the IRLS fit."""
    if X.shape[1] == 1 and np.all(X == 1):
        return intercept_only_fit(counts, size_factors, alpha)
    return fit_glm(counts, size_factors, X, alpha, opts, beta_init=beta_init, want_hat=want_hat, mu_out=mu_out)


# --------------------------------------------------------------------- dispersions


def is_one_way(X: np.ndarray) -> bool:
    """True when the number of distinct design rows equals the number of columns (group means)."""
    return np.unique(X, axis=0).shape[0] == X.shape[1]


def linear_mu(counts, size_factors, X) -> np.ndarray:
    """Least-squares fit of normalised counts on the design, times size factors (DESeq2 linearMu)."""
    norm = counts / size_factors[None, :]
    return ((norm @ np.linalg.pinv(X).T) @ X.T) * size_factors[None, :]


def moments_dispersion(base_mean, base_var, size_factors) -> np.ndarray:
    """DESeq2 ``momentsDispEstimate``."""
    xim = np.mean(1.0 / size_factors)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (base_var - xim * base_mean) / base_mean**2


def _line_search(counts, mu, X, log_init, prior_mean, prior_var, use_prior, opts):
    G = counts.shape[0]
    out = np.empty(G)
    iters = np.empty(G, dtype=np.int64)
    lp0 = np.empty(G)
    lp1 = np.empty(G)
    fit_dispersion(counts, mu, *packed_outer(X), X.shape[1], log_init, prior_mean, float(prior_var), use_prior,
                   np.log(opts.min_disp / 10), 1.0, opts.disp_tol, opts.disp_maxit, out, iters, lp0, lp1)
    return out, iters, lp0, lp1


def _grid(counts, mu, X, prior_mean, prior_var, use_prior, opts):
    grid = np.linspace(np.log(opts.min_disp), np.log(max(10.0, X.shape[0])), 20)
    out = np.empty(counts.shape[0])
    fit_dispersion_grid(counts, mu, *packed_outer(X), X.shape[1], grid, prior_mean, float(prior_var), use_prior, out)
    return np.exp(out)


def gene_wise_dispersion(counts, size_factors, X, start: dict, opts: DESeq2Options):
    """DESeq2 ``estimateDispersionsGeneEst`` from the :func:`gene_start_values`: returns
    (dispersion, mu used, iterations).

    As in DESeq2, a gene keeps its start value when the line search raised the objective by
    less than a millionth of its size, and genes whose search did not converge (or stopped at the
    first step) are refit on a grid.
    """
    m, p = X.shape
    max_disp = max(10.0, m)
    init = np.minimum(start["rough"], moments_dispersion(start["base_mean"], start["base_var"], size_factors))
    init = np.clip(np.nan_to_num(init, nan=opts.min_disp), opts.min_disp, max_disp)
    if is_one_way(X):
        mu = linear_mu(counts, size_factors, X)
    else:
        mu = glm(counts, size_factors, X, init, opts, beta_init=start["beta_init"], want_hat=False)["mu"]
    mu = np.maximum(mu, opts.min_mu, out=mu)
    zeros = np.zeros(counts.shape[0])
    log_a, iters, lp0, lp1 = _line_search(counts, mu, X, np.log(init), zeros, 1.0, False, opts)
    disp = np.minimum(np.exp(log_a), max_disp)
    no_increase = lp1 < lp0 + np.abs(lp0) / 1e6
    disp[no_increase] = init[no_increase]
    converged = (iters < opts.disp_maxit) & (iters != 1)
    refit = ~converged & (disp > opts.min_disp * 10)
    if refit.any():
        idx = np.nonzero(refit)[0]
        disp[idx] = _grid(np.ascontiguousarray(counts[idx]), np.ascontiguousarray(mu[idx]), X, zeros[idx], 1.0,
                          False, opts)
    return np.clip(disp, opts.min_disp, max_disp), mu, iters


def dispersion_trend(base_mean, disp_gene, opts: DESeq2Options):
    """Fit the trend; returns (function of the mean, fit type used, coefficients or None)."""
    use = disp_gene > 100 * opts.min_disp
    if not use.any():
        raise ValueError(
            "All gene-wise dispersion estimates are within 2 orders of magnitude of the minimum: the data look "
            "Poisson (e.g. technical replicates). Use fit_type='mean' or check the counts."
        )
    fit_type = opts.fit_type
    if fit_type == "parametric":
        try:
            a0, a1 = parametric_trend(base_mean[use], disp_gene[use])
            return (lambda q: a0 + a1 / q), "parametric", [float(a0), float(a1)]
        except TrendFitError:
            logger.warning(
                "fit_type='parametric', but the dispersion trend was not well captured by a0 + a1/mean; "
                "a local regression fit was substituted (as DESeq2 does)."
            )
            fit_type = "local"
    if fit_type == "local":
        return local_trend(base_mean[use], disp_gene[use], opts.min_disp), "local", None
    if fit_type == "mean":
        value = mean_trend(disp_gene, opts.min_disp)
        return (lambda q: np.full(np.shape(q), value)), "mean", [value]
    raise ValueError(f"Unknown fit_type {opts.fit_type!r}; use 'parametric', 'local' or 'mean'.")


def map_dispersion(counts, mu, X, disp_gene, disp_trend, prior_var, var_log_disp, opts: DESeq2Options):
    """DESeq2 ``estimateDispersionsMAP``: returns (final dispersion, MAP dispersion, outlier flag)."""
    max_disp = max(10.0, X.shape[0])
    init = np.where(disp_gene > 0.1 * disp_trend, disp_gene, disp_trend)
    prior_mean = np.log(disp_trend)
    log_a, iters, _, _ = _line_search(counts, mu, X, np.log(init), prior_mean, prior_var, True, opts)
    disp_map = np.exp(log_a)
    refit = iters >= opts.disp_maxit
    if refit.any():
        idx = np.nonzero(refit)[0]
        disp_map[idx] = _grid(np.ascontiguousarray(counts[idx]), np.ascontiguousarray(mu[idx]), X, prior_mean[idx],
                              prior_var, True, opts)
    disp_map = np.clip(disp_map, opts.min_disp, max_disp)
    outlier = np.log(disp_gene) > np.log(disp_trend) + opts.outlier_sd * np.sqrt(var_log_disp)
    final = np.clip(np.where(outlier, disp_gene, disp_map), opts.min_disp, max_disp)
    return final, disp_map, outlier


# ------------------------------------------------------------------------ pipeline


def gene_wise_stage(counts, sf, X, opts) -> dict:
    """Per-gene first stage: base means and variances, gene-wise dispersions and their means."""
    start = gene_start_values(counts, sf, X)  # beta_init: the same start for both GLM fits
    logger.info("gene-wise dispersions (%d genes)", counts.shape[0])
    disp_gene, mu, disp_iter = gene_wise_dispersion(counts, sf, X, start, opts)
    return {"counts": counts, "mu": mu, "base_mean": start["base_mean"], "base_var": start["base_var"],
            "dispersion_gene": disp_gene, "dispersion_gene_iter": disp_iter, "beta_init": start["beta_init"]}


def trend_summary(stage: dict) -> tuple[np.ndarray, np.ndarray]:
    """What the global trend step needs from a gene-wise stage: base means and dispersions."""
    return stage["base_mean"], stage["dispersion_gene"]


def trend_and_prior(base_mean, disp_gene, X, opts) -> dict:
    """Global step: dispersion trend and the width of the prior around it."""
    logger.info("dispersion trend and prior")
    trend_fn, fit_type, trend_coefs = dispersion_trend(base_mean, disp_gene, opts)
    disp_fit = trend_fn(base_mean)
    above = disp_gene >= 100 * opts.min_disp
    prior_var, var_log_disp, expected = dispersion_prior_var(
        np.log(disp_gene[above]) - np.log(disp_fit[above]), X.shape[0], X.shape[1]
    )
    return {"trend_fn": trend_fn, "fit_type": fit_type, "trend_coefs": trend_coefs, "prior_var": prior_var,
            "var_log_disp": var_log_disp, "expected_var_log_disp": expected}


def final_stage(stage: dict, sf, X, opts, trend_fn, prior_var, var_log_disp, reuse_mu=False) -> tuple[dict, dict]:
    """Per-gene second stage: MAP dispersions (prior from the global step) and the NB GLM."""
    counts, mu, disp_gene = stage["counts"], stage["mu"], stage["dispersion_gene"]
    disp_fit = trend_fn(stage["base_mean"])
    logger.info("MAP dispersions")
    final, disp_map, outlier = map_dispersion(counts, mu, X, disp_gene, disp_fit, prior_var, var_log_disp, opts)
    logger.info("NB GLM fit")
    # with reuse_mu, the final means overwrite the gene-wise ones (not needed after the MAP step);
    # not on a dask worker, where a retried task must find the stage as it was
    fit = glm(counts, sf, X, final, opts, beta_init=stage["beta_init"], mu_out=mu if reuse_mu else None)
    genes = {k: stage[k] for k in ("base_mean", "base_var", "dispersion_gene", "dispersion_gene_iter")}
    genes.update(dispersion_trend=disp_fit, dispersion_map=disp_map, dispersion=final, dispersion_outlier=outlier)
    return genes, fit


def _gene_fits(counts, sf, X, opts, trend=None, prior=None):
    """Dispersions and GLM for a block of non-zero genes; with ``trend``/``prior`` given, reuse them."""
    stage = gene_wise_stage(counts, sf, X, opts)
    if trend is None:
        info = trend_and_prior(stage["base_mean"], stage["dispersion_gene"], X, opts)
        trend, prior = info["trend_fn"], (info["prior_var"], info["var_log_disp"])
    else:
        info = {}
    genes, fit = final_stage(stage, sf, X, opts, trend, *prior, reuse_mu=True)
    return genes, fit, info


def _distributed_gene_fits(client, counts, sf, X, opts, n_chunks):
    """:func:`_gene_fits` with the per-gene stages on a dask client, chunks of genes per task; the
    gene-wise results stay on the workers, only base means and dispersions come back for the trend."""
    chunks = np.array_split(np.arange(counts.shape[0]), n_chunks)
    stage1 = client.map(gene_wise_stage, [np.ascontiguousarray(counts[c]) for c in chunks], sf=sf, X=X, opts=opts,
                        pure=False)
    summary = gather(client, client.map(trend_summary, stage1, pure=False), what="the gene-wise dispersions")
    base_mean = np.concatenate([s[0] for s in summary])
    disp_gene = np.concatenate([s[1] for s in summary])
    info = trend_and_prior(base_mean, disp_gene, X, opts)
    parts = gather(client, client.map(final_stage, stage1, sf=sf, X=X, opts=opts, trend_fn=info["trend_fn"],
                                      prior_var=info["prior_var"], var_log_disp=info["var_log_disp"], pure=False),
                   what="the final GLM fits")
    genes = {k: np.concatenate([g[k] for g, _ in parts]) for k in parts[0][0]}
    fit = {k: np.concatenate([f[k] for _, f in parts]) for k in parts[0][1]}
    return genes, fit, info


def fit_deseq2(counts: np.ndarray, X: np.ndarray, *, size_factors="ratio", opts: DESeq2Options | None = None,
               n_jobs: int | None = None, client=None, gene_chunks: int = 0) -> FitResult:
    """Run the DESeq2 pipeline on a (genes x samples) count matrix and a design matrix.

    With a dask ``client`` and ``gene_chunks > 1``, the per-gene stages run on its workers in that
    many chunks of genes (the trend and prior, which need every gene, run here); the numbers are
    the same as in-process.
    """
    opts = opts or DESeq2Options()
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    G, m = counts.shape
    p = X.shape[1]
    if isinstance(size_factors, str):
        sf, sf_kind = estimate_size_factors(counts, size_factors)
    else:
        sf, sf_kind = np.asarray(size_factors, dtype=float), "user"
    all_zero = counts.sum(axis=1) == 0
    nz = np.nonzero(~all_zero)[0]
    with settings.threads(n_jobs):
        logger.info("fitting %d genes x %d samples (%d all-zero genes skipped)", nz.size, m, G - nz.size)
        Ynz = counts if nz.size == G else np.ascontiguousarray(counts[nz])
        if client is not None and gene_chunks > 1:
            genes, fit, info = _distributed_gene_fits(client, Ynz, sf, X, opts, gene_chunks)
        else:
            genes, fit, info = _gene_fits(Ynz, sf, X, opts)
        robust = ck.robust_dispersion(Ynz, sf, X)
        # the hat values are not needed beyond Cook's distances: those take their place
        hat = fit.pop("hat")
        cooks = ck.cooks_distance(Ynz, fit["mu"], hat, robust, p, out=hat)
        maxc = ck.max_cooks(cooks, X)
        replaced = np.zeros(nz.size, dtype=bool)
        replaced_counts = None
        replaceable = ck.replicates_in_cell(X) >= opts.min_replicates_for_replace
        if m > p and replaceable.any():
            cutoff = ck.cooks_cutoff(m, p)
            newY, replace = ck.replacement_counts(Ynz, sf, cooks, cutoff, replaceable)
            new_zero = newY.sum(axis=1) == 0
            refit = np.nonzero(replace & ~new_zero)[0]
            logger.info("replacing outlier counts in %d genes and refitting them", int(replace.sum()))
            if refit.size:
                g2, f2, _ = _gene_fits(np.ascontiguousarray(newY[refit]), sf, X, opts, trend=info["trend_fn"],
                                       prior=(info["prior_var"], info["var_log_disp"]))
                for k, v in g2.items():
                    genes[k][refit] = v
                for k, v in f2.items():
                    if k in fit:  # not the hat values, which became Cook's distances
                        fit[k][refit] = v
            norm_new = newY / sf[None, :]
            genes["base_mean"] = norm_new.mean(axis=1)
            genes["base_var"] = norm_new.var(axis=1, ddof=1)
            replaced = replace
            if replaceable.all():
                maxc = np.full(nz.size, np.nan)
            else:
                c2 = cooks.copy()
                c2[:, replaceable] = 0.0
                maxc = ck.max_cooks(c2, X)
            if replace.any():
                replaced_counts = counts.copy()
                replaced_counts[nz] = newY
            for key in ("beta", "cov", "mu", "deviance"):
                fit[key][new_zero & replace] = np.nan

    def full(values, fill=np.nan, dtype=float):
        """Per-gene values for every gene (``fill`` for all-zero genes)."""
        if nz.size == G:
            return np.asarray(values, dtype=dtype)
        out = np.full((G,) + np.shape(values)[1:], fill, dtype=dtype)
        out[nz] = values
        return out

    coef = full(fit["beta"]) / LN2
    cov = full(fit["cov"]) / LN2**2
    mu = full(fit["mu"])
    cooks_full = full(cooks)
    base_mean = np.zeros(G)
    base_mean[nz] = genes["base_mean"]
    gene_info = {
        "base_var": full(genes["base_var"], fill=0.0),
        "dispersion_gene": full(genes["dispersion_gene"]),
        "dispersion_trend": full(genes["dispersion_trend"]),
        "dispersion_map": full(genes["dispersion_map"]),
        "dispersion_outlier": full(genes["dispersion_outlier"], fill=False, dtype=bool),
        "converged": full(fit["converged"], fill=False, dtype=bool),
        "iterations": full(fit["iters"], fill=0, dtype=np.int64),
        "deviance": full(fit["deviance"]),
        "max_cooks": full(maxc),
        "replaced": full(replaced, fill=False, dtype=bool),
        "all_zero": all_zero,
        "n_counts_above_outlier": ck.counts_above_outlier(counts, cooks_full),
    }
    params = {
        "size_factor_type": sf_kind,
        "fit_type": info["fit_type"],
        "trend_coefficients": info["trend_coefs"],
        "prior_var": float(info["prior_var"]),
        "var_log_disp": float(info["var_log_disp"]),
        "expected_var_log_disp": float(info["expected_var_log_disp"]),
        "n_replaced_genes": int(replaced.sum()),
        "replaceable_samples": int(replaceable.sum()) if m > p else 0,
    }
    return FitResult(
        method="deseq2",
        coef=coef,
        cov=cov,
        size_factors=sf,
        base_mean=base_mean,
        dispersion=full(genes["dispersion"]),
        mu=mu,
        gene_info=gene_info,
        params=params,
        extra={"cooks": cooks_full, "replaced_counts": replaced_counts},
    )
