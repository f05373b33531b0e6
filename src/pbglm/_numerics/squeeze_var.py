"""limma's empirical Bayes variance moderation: ``squeezeVar``, ``fitFDist``, ``fitFDistRobustly``.

The sample variances ``s2`` (on ``df`` degrees of freedom) are modelled as scaled F variates,
``s2 ~ s0^2 F(df, df0)``. ``fitFDist`` estimates ``s0^2`` and ``df0`` by the method of moments on
``log s2`` (Smyth 2004); with a covariate the mean of ``log s2`` is a natural cubic regression spline
in the covariate (``splines::ns`` with 1 to 4 degrees of freedom, depending on the number of genes).
``fitFDistRobustly`` (Phipson et al. 2016) winsorises the Fisher-z values around a lowess trend,
solves for the ``df0`` whose winsorised variance matches, and shrinks ``df0`` gene-wise for
outliers. The posterior is ``s2_post = (df0 s0^2 + df s2) / (df0 + df)``.

Written from limma 3.54's R code (``squeezeVar``, ``.squeezeVar``, ``fitFDist``,
``fitFDistRobustly``, ``loessFit``, ``trigammaInverse``) and R's ``lowess`` (``clowess``).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from scipy import optimize, special, stats

from .lowess import lowess

logger = logging.getLogger("pbglm")

__all__ = [
    "fit_f_dist",
    "fit_f_dist_robustly",
    "log_f_sf",
    "log_t_sf",
    "natural_spline_basis",
    "squeeze_var",
    "trigamma_inverse",
]


# ---------------------------------------------------------------------------------------------
# special functions and small R equivalents
# ---------------------------------------------------------------------------------------------


def _trigamma(x):
    return special.polygamma(1, x)


def trigamma_inverse(x: float) -> float:
    """Solve ``trigamma(y) = x`` for y (limma's ``trigammaInverse``, Newton on 1/trigamma)."""
    if np.isnan(x):
        return np.nan
    if x < 0:
        return np.nan
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = _trigamma(y)
        dif = tri * (1.0 - tri / x) / special.polygamma(2, y)
        y = y + dif
        if -dif / y < 1e-8:
            break
    else:
        logger.warning("trigamma_inverse: iteration limit exceeded")
    return float(y)


def _quantile7(x: np.ndarray, probs) -> np.ndarray:
    """R's ``quantile(type = 7)``."""
    return np.quantile(np.asarray(x, dtype=float), probs, method="linear")


def _mean_trim(x: np.ndarray, trim: float) -> float:
    """R's ``mean(x, trim = trim)``."""
    x = np.sort(np.asarray(x, dtype=float))
    n = x.size
    if trim <= 0 or n == 0:
        return float(np.mean(x))
    if trim >= 0.5:
        return float(np.median(x))
    lo = int(math.floor(n * trim))
    return float(np.mean(x[lo : n - lo]))


def _log_betainc_lower_tail(a, b, z):
    """``log I_z(a, b)`` for small z by the hypergeometric series (no underflow).

    ``I_z(a, b) = z^a (1 - z)^b / (a B(a, b)) * 2F1(a + b, 1; a + 1; z)``.
    """
    a, b, z = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(z, float))
    term = np.ones(z.shape)
    total = np.ones(z.shape)
    for n in range(2000):
        term = term * (a + b + n) / (a + 1 + n) * z
        total = total + term
        if np.all(term < 1e-17 * total):
            break
    return a * np.log(z) + b * np.log1p(-z) - np.log(a) - special.betaln(a, b) + np.log(total)


def log_f_sf(f, df1, df2) -> np.ndarray:
    """``log P(F(df1, df2) > f)`` without underflow (R's ``pf(lower.tail = FALSE, log.p = TRUE)``)."""
    f, df1, df2 = np.broadcast_arrays(np.asarray(f, float), np.asarray(df1, float), np.asarray(df2, float))
    out = np.empty(f.shape)
    inf2 = np.isinf(df2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[inf2] = stats.chi2.logsf(f[inf2] * df1[inf2], df1[inf2])
        out[~inf2] = stats.f.logsf(f[~inf2], df1[~inf2], df2[~inf2])
        z = df2 / (df2 + df1 * f)
        tiny = (out < -600) & ~inf2 & (z < 0.5) & (f > 0)
        if tiny.any():
            out[tiny] = _log_betainc_lower_tail(df2[tiny] / 2, df1[tiny] / 2, z[tiny])
    return out


def log_t_sf(x, df) -> np.ndarray:
    """``log P(T(df) > x)`` without underflow for large x (R's ``pt(lower.tail = FALSE, log.p = TRUE)``)."""
    x, df = np.broadcast_arrays(np.asarray(x, float), np.asarray(df, float))
    out = np.empty(x.shape)
    inf = np.isinf(df)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[inf] = stats.norm.logsf(x[inf])
        out[~inf] = stats.t.logsf(x[~inf], df[~inf])
        z = df / (df + x * x)
        tiny = (out < -600) & ~inf & (x > 0) & (z < 0.5)
        if tiny.any():
            out[tiny] = np.log(0.5) + _log_betainc_lower_tail(df[tiny] / 2, 0.5, z[tiny])
    return out


def _rank_average(x: np.ndarray) -> np.ndarray:
    """R's ``rank`` with ties averaged."""
    return stats.rankdata(x, method="average")


# ---------------------------------------------------------------------------------------------
# R's lowess (clowess), compiled
# ---------------------------------------------------------------------------------------------


def _loess_fit(y: np.ndarray, x: np.ndarray, span: float = 0.3, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """limma's ``loessFit`` without weights (lowess with ``iterations - 1`` robustness steps)."""
    n = y.size
    if span < 1.0 / n:
        return y.copy(), np.zeros(n)
    o = np.argsort(x, kind="stable")
    fitted = np.empty(n)
    fitted[o] = lowess(x, y, f=span, iters=iterations - 1)
    return fitted, y - fitted


# ---------------------------------------------------------------------------------------------
# natural cubic spline basis (the column space of splines::ns)
# ---------------------------------------------------------------------------------------------


def natural_spline_basis(x: np.ndarray, df: int, x_new: np.ndarray | None = None):
    """A basis of the natural cubic splines that ``splines::ns(x, df, intercept = TRUE)`` spans.

    Interior knots at the ``type = 7`` quantiles of x, boundary knots at its range, linear beyond
    them. Only the column space is the same as R's basis, which is all a least-squares fit needs.
    Returns the basis at x and, if given, at ``x_new``.
    """
    x = np.asarray(x, dtype=float)
    lo, hi = float(np.min(x)), float(np.max(x))
    scale = hi - lo if hi > lo else 1.0
    n_inner = df - 2
    if n_inner > 0:
        inner = _quantile7(x, np.arange(1, n_inner + 1) / (n_inner + 1))
    else:
        inner = np.empty(0)
    knots = (np.concatenate([[lo], inner, [hi]]) - lo) / scale

    def basis(v):
        v = (np.asarray(v, dtype=float) - lo) / scale
        cols = [np.ones_like(v), v]
        K = knots.size
        if K > 2:

            def d(k):
                return (np.maximum(v - knots[k], 0.0) ** 3 - np.maximum(v - knots[K - 1], 0.0) ** 3) / (
                    knots[K - 1] - knots[k]
                )

            dlast = d(K - 2)
            for k in range(K - 2):
                cols.append(d(k) - dlast)
        return np.column_stack(cols[:df])

    B = basis(x)
    return (B, basis(x_new)) if x_new is not None else (B, None)


# ---------------------------------------------------------------------------------------------
# fitFDist
# ---------------------------------------------------------------------------------------------


def fit_f_dist(x: np.ndarray, df1, covariate: np.ndarray | None = None) -> tuple[np.ndarray | float, float]:
    """limma's ``fitFDist``: moment estimates of the scale and df2 of a scaled F distribution.

    Parameters
    ----------
    x
        Variances, one per gene.
    df1
        Their degrees of freedom (scalar or per gene).
    covariate
        Optional per-gene covariate for a trended scale (a natural spline in it).

    Returns
    -------
    ``(scale, df2)``: scale is a scalar without a covariate, a per-gene array with one.
    """
    x = np.asarray(x, dtype=float).copy()
    n = x.size
    if n == 0:
        return np.nan, np.nan
    if n == 1:
        return float(x[0]), 0.0
    df1 = np.asarray(df1, dtype=float)
    scalar_df = df1.ndim == 0 or df1.size == 1
    if scalar_df:
        d = float(df1.reshape(-1)[0])
        if not (np.isfinite(d) and d > 1e-15):
            return np.nan, np.nan
        ok = np.ones(n, dtype=bool)
        df1 = np.full(n, d)
    else:
        if df1.size != n:
            raise ValueError("x and df1 have different lengths; pass one df per variance.")
        ok = np.isfinite(df1) & (df1 > 1e-15)
    if covariate is not None:
        covariate = np.asarray(covariate, dtype=float).copy()
        if covariate.size != n:
            raise ValueError("x and covariate must be of the same length.")
        if np.any(np.isnan(covariate)):
            raise ValueError("NA covariate values are not allowed; drop or impute them first.")
        isfin = np.isfinite(covariate)
        if not isfin.all():
            if isfin.any():
                lo, hi = covariate[isfin].min(), covariate[isfin].max()
                covariate[covariate == -np.inf] = lo - 1
                covariate[covariate == np.inf] = hi + 1
            else:
                covariate = np.sign(covariate)
    ok = ok & np.isfinite(x) & (x > -1e-15)
    nok = int(ok.sum())
    if nok == 1:
        return float(x[ok][0]), 0.0
    notallok = nok < n
    cov_notok = None
    if notallok:
        x = x[ok]
        df1 = df1[ok]
        if covariate is not None:
            cov_notok = covariate[~ok]
            covariate = covariate[ok]
    if covariate is not None:
        splinedf = 1 + (nok >= 3) + (nok >= 6) + (nok >= 30)
        splinedf = min(splinedf, np.unique(covariate).size)
        if splinedf < 2:
            scale, df2 = fit_f_dist(x, df1)
            return np.full(n, scale), df2
    x = np.maximum(x, 0.0)
    m = float(np.median(x))
    if m == 0:
        logger.warning("More than half of residual variances are exactly zero: eBayes unreliable")
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    z = np.log(x)
    e = z - special.digamma(df1 / 2) + np.log(df1 / 2)
    if covariate is None:
        emean = float(np.mean(e))
        evar = float(np.sum((e - emean) ** 2) / (nok - 1))
    else:
        B, Bnew = natural_spline_basis(covariate, splinedf, cov_notok)
        coef, _, rank, _ = np.linalg.lstsq(B, e, rcond=None)
        fitted = B @ coef
        evar = float(np.sum((e - fitted) ** 2) / (nok - rank))
        if notallok:
            emean = np.zeros(n)
            emean[ok] = fitted
            emean[~ok] = Bnew @ coef
        else:
            emean = fitted
    evar = evar - float(np.mean(_trigamma(df1 / 2)))
    if evar > 0:
        df2 = 2 * trigamma_inverse(evar)
        s20 = np.exp(emean + special.digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        s20 = float(np.mean(x)) if covariate is None else np.exp(emean)
    return s20, float(df2)


# ---------------------------------------------------------------------------------------------
# fitFDistRobustly
# ---------------------------------------------------------------------------------------------


def _f_ppf(q, df1, df2):
    if np.isinf(df2):
        return stats.chi2.ppf(q, df1) / df1
    return stats.f.ppf(q, df1, df2)


def _f_pdf(x, df1, df2):
    if np.isinf(df2):
        return stats.chi2.pdf(x * df1, df1) * df1
    return stats.f.pdf(x, df1, df2)


_GQ_NODES, _GQ_WEIGHTS = np.polynomial.legendre.leggauss(128)
_GQ_NODES = (_GQ_NODES + 1.0) / 2.0
_GQ_WEIGHTS = _GQ_WEIGHTS / 2.0


def _winsorized_moments(df1, df2, winsor_tail_p):
    fq = _f_ppf(np.array([winsor_tail_p[0], 1 - winsor_tail_p[1]]), df1, df2)
    zq = np.log(fq)
    q = fq / (1 + fq)
    nodes = q[0] + (q[1] - q[0]) * _GQ_NODES
    fnodes = nodes / (1 - nodes)
    znodes = np.log(fnodes)
    f = _f_pdf(fnodes, df1, df2) / (1 - nodes) ** 2
    q21 = q[1] - q[0]
    wtp = np.asarray(winsor_tail_p, dtype=float)
    m = q21 * np.sum(_GQ_WEIGHTS * f * znodes) + np.sum(zq * wtp)
    v = q21 * np.sum(_GQ_WEIGHTS * f * (znodes - m) ** 2) + np.sum((zq - m) ** 2 * wtp)
    return float(m), float(v)


def _interp_rule2_ties_mean(x, y, xout):
    """R's ``approx(x, y, xout, rule = 2, ties = mean)``."""
    ux, inv = np.unique(x, return_inverse=True)
    uy = np.bincount(inv, weights=y) / np.bincount(inv)
    if ux.size == 1:
        return np.full(np.size(xout), uy[0])
    return np.interp(xout, ux, uy)


def fit_f_dist_robustly(x: np.ndarray, df1, covariate: np.ndarray | None = None, winsor_tail_p=(0.05, 0.1)) -> dict:
    """limma's ``fitFDistRobustly``.

    Returns
    -------
    dict with ``scale`` (scalar, or per gene with a covariate), ``df2`` and ``df2_shrunk``
    (per gene).
    """
    x = np.asarray(x, dtype=float).copy()
    n = x.size
    if n < 2:
        return {"scale": np.nan, "df2": np.nan, "df2_shrunk": np.full(n, np.nan)}
    if n == 2:
        scale, df2 = fit_f_dist(x, df1, covariate)
        return {"scale": scale, "df2": df2, "df2_shrunk": np.full(n, df2)}
    df1 = np.asarray(df1, dtype=float)
    if df1.size not in (1, n):
        raise ValueError("x and df1 are different lengths; pass one df per variance.")
    df1_vec = np.broadcast_to(df1.reshape(-1), (n,)).copy() if df1.size == 1 else df1.copy()
    if covariate is not None:
        covariate = np.asarray(covariate, dtype=float)
        if covariate.size != n:
            raise ValueError("x and covariate are different lengths.")
        if not np.all(np.isfinite(covariate)):
            raise ValueError("covariate contains NA or infinite values; drop or impute them first.")
    ok = ~np.isnan(x) & np.isfinite(df1_vec) & (df1_vec > 1e-6)
    if not ok.all():
        df2_shrunk = x.copy()
        sub_cov = covariate[ok] if covariate is not None else None
        fit = fit_f_dist_robustly(x[ok], df1_vec[ok] if df1.size > 1 else df1, sub_cov, winsor_tail_p)
        df2_shrunk[ok] = fit["df2_shrunk"]
        df2_shrunk[~ok] = fit["df2"]
        if covariate is None:
            scale = fit["scale"]
        else:
            # a fit over fewer than 3 variances returns one scale for all: spread it over them
            fit_scale = np.broadcast_to(np.asarray(fit["scale"], dtype=float), (int(ok.sum()),))
            scale = x.copy()
            scale[ok] = fit_scale
            scale[~ok] = (np.exp(_interp_rule2_ties_mean(covariate[ok], np.log(fit_scale), covariate[~ok]))
                          if ok.any() else np.nan)
        return {"scale": scale, "df2": fit["df2"], "df2_shrunk": df2_shrunk}

    m = float(np.median(x))
    if m <= 0:
        raise ValueError("Variances are mostly <= 0; the robust fit needs positive variances.")
    small = x < m * 1e-12
    if small.any():
        logger.warning("%d very small variances detected, have been offset away from zero", int(small.sum()))
        x[small] = m * 1e-12
    nr_scale, nr_df2 = fit_f_dist(x, df1, covariate)
    wtp = np.resize(np.asarray(winsor_tail_p, dtype=float), 2)
    prob = np.array([wtp[0], 1 - wtp[1]])
    if np.all(wtp < 1.0 / n):
        return {"scale": nr_scale, "df2": nr_df2, "df2_shrunk": np.full(n, nr_df2)}

    if df1.size > 1:
        df1max = float(np.max(df1_vec))
        i = df1_vec < (df1max - 1e-14)
        if i.any():
            s = nr_scale if covariate is None else np.asarray(nr_scale)[i]
            f = x[i] / s
            d1 = df1_vec[i]
            pupper = log_f_sf(f, d1, nr_df2)
            if np.isinf(nr_df2):
                plower = stats.chi2.logcdf(f * d1, d1)
            else:
                plower = stats.f.logcdf(f, d1, nr_df2)
            up = pupper < plower
            fnew = f.copy()
            if up.any():
                fnew[up] = _f_isf_log(pupper[up], df1max, nr_df2)
            if (~up).any():
                fnew[~up] = _f_ppf_log(plower[~up], df1max, nr_df2)
            x[i] = fnew * s
        d1 = df1max
    else:
        d1 = float(df1.reshape(-1)[0])

    z = np.log(x)
    if covariate is None:
        ztrend = _mean_trim(z, wtp[1])
        zresid = z - ztrend
    else:
        ztrend, zresid = _loess_fit(z, covariate, span=0.4)
    zrq = _quantile7(zresid, prob)
    zwins = np.minimum(np.maximum(zresid, zrq[0]), zrq[1])
    zwmean = float(np.mean(zwins))
    zwvar = float(np.mean((zwins - zwmean) ** 2) * n / (n - 1))

    mom_inf = _winsorized_moments(d1, np.inf, wtp)
    funval_inf = math.log(zwvar / mom_inf[1])
    if funval_inf <= 0:
        df2 = np.inf
        ztrendcorrected = ztrend + zwmean - mom_inf[0]
        s20 = np.exp(ztrendcorrected)
        fstat = np.exp(z - ztrendcorrected)
        tail_p = stats.chi2.sf(fstat * d1, d1)
        r = _rank_average(fstat)
        emp = (n - r + 0.5) / n
        prob_not_outlier = np.minimum(tail_p / emp, 1.0)
        df_pooled = n * d1
        df2_shrunk = np.full(n, df2)
        O = prob_not_outlier < 1
        if O.any():
            df2_shrunk[O] = prob_not_outlier[O] * df_pooled
            o = np.argsort(tail_p, kind="stable")
            df2_shrunk[o] = np.maximum.accumulate(df2_shrunk[o])
        return {"scale": s20, "df2": df2, "df2_shrunk": df2_shrunk}

    def fun(v):
        if v >= 1.0:
            return funval_inf
        dd = v / (1 - v)
        return math.log(zwvar / _winsorized_moments(d1, dd, wtp)[1])

    if np.isinf(nr_df2):
        return {"scale": nr_scale, "df2": nr_df2, "df2_shrunk": np.full(n, nr_df2)}
    rbx = nr_df2 / (1 + nr_df2)
    funval_low = fun(rbx)
    if funval_low >= 0:
        df2 = nr_df2
    else:
        root = optimize.brentq(fun, rbx, 1.0, xtol=1e-8)
        df2 = root / (1 - root) if root < 1 else np.inf
    mom = _winsorized_moments(d1, df2, wtp)
    ztrendcorrected = ztrend + zwmean - mom[0]
    s20 = np.exp(ztrendcorrected)
    zresid = z - ztrendcorrected
    fstat = np.exp(zresid)
    log_tail_p = log_f_sf(fstat, d1, df2)
    tail_p = np.exp(log_tail_p)
    r = _rank_average(fstat)
    log_emp = np.log(n - r + 0.5) - math.log(n)
    log_prob_not_outlier = np.minimum(log_tail_p - log_emp, 0.0)
    prob_not_outlier = np.exp(log_prob_not_outlier)
    prob_outlier = -np.expm1(log_prob_not_outlier)
    if np.any(log_prob_not_outlier < 0):
        min_log_tail_p = float(np.min(log_tail_p))
        if min_log_tail_p == -np.inf:
            df2_outlier = 0.0
            df2_shrunk = prob_not_outlier * df2
        else:
            df2_outlier = math.log(0.5) / min_log_tail_p * df2
            new_log_tail_p = float(log_f_sf(np.max(fstat), d1, df2_outlier))
            df2_outlier = math.log(0.5) / new_log_tail_p * df2_outlier
            df2_shrunk = prob_not_outlier * df2 + prob_outlier * df2_outlier
        o = np.argsort(log_tail_p, kind="stable")
        df2_ordered = df2_shrunk[o]
        mm = np.cumsum(df2_ordered) / np.arange(1, n + 1)
        imin = int(np.argmin(mm))
        df2_ordered[: imin + 1] = mm[imin]
        df2_shrunk = np.empty(n)
        df2_shrunk[o] = np.maximum.accumulate(df2_ordered)
    else:
        df2_shrunk = np.full(n, df2)
    return {"scale": s20, "df2": float(df2), "df2_shrunk": df2_shrunk, "tail_p": tail_p}


def _f_isf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.isf(p, df1) / df1
    return stats.f.isf(p, df1, df2)


def _f_ppf_log(logp, df1, df2):
    p = np.exp(logp)
    if np.isinf(df2):
        return stats.chi2.ppf(p, df1) / df1
    return stats.f.ppf(p, df1, df2)


# ---------------------------------------------------------------------------------------------
# squeezeVar
# ---------------------------------------------------------------------------------------------


def _posterior(var, df, var_prior, df_prior):
    """limma's ``.squeezeVar``: ``(df var + df0 s0^2) / (df + df0)``, ``s0^2`` where df0 is infinite."""
    n = var.size
    var_prior = np.broadcast_to(np.asarray(var_prior, dtype=float), (n,))
    df_prior = np.broadcast_to(np.asarray(df_prior, dtype=float), (n,))
    df = np.broadcast_to(np.asarray(df, dtype=float), (n,))
    out = var_prior.astype(float).copy()
    fin = np.isfinite(df_prior)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[fin] = (df[fin] * var[fin] + df_prior[fin] * var_prior[fin]) / (df[fin] + df_prior[fin])
    return out


def squeeze_var(
    var: np.ndarray,
    df,
    covariate: np.ndarray | None = None,
    robust: bool = False,
    winsor_tail_p=(0.05, 0.1),
) -> dict:
    """limma's ``squeezeVar``: empirical Bayes posterior variances.

    Parameters
    ----------
    var
        Sample variances, one per gene.
    df
        Their residual degrees of freedom (scalar or per gene); variances with ``df == 0`` are
        set to 0 first, as limma does.
    covariate
        Optional per-gene covariate (edgeR passes the average log-CPM) for a trended prior.
    robust
        Use :func:`fit_f_dist_robustly` (outlier-robust hyperparameters, gene-wise prior df).
    winsor_tail_p
        Lower and upper tail proportions to winsorise in the robust fit.

    Returns
    -------
    dict with ``df_prior`` (scalar, or per gene when robust), ``var_prior`` (scalar, or per gene
    with a covariate) and ``var_post`` (per gene); with ``robust`` also ``df2`` (the df before
    gene-wise shrinkage).
    """
    var = np.asarray(var, dtype=float).copy()
    n = var.size
    if n == 0:
        raise ValueError("var is empty; squeeze_var needs at least one variance.")
    if n == 1:
        return {"var_post": var, "var_prior": var, "df_prior": 0.0}
    dfa = np.asarray(df, dtype=float)
    if dfa.size > 1:
        var[dfa == 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if robust:
            fit = fit_f_dist_robustly(var, dfa, covariate, winsor_tail_p)
            df_prior = fit["df2_shrunk"]
            scale = fit["scale"]
        else:
            scale, df_prior = fit_f_dist(var, dfa, covariate)
            fit = {"df2": df_prior}
    if np.any(np.isnan(df_prior)):
        usable = int(np.sum(np.isfinite(var) & (var > 0) & (np.broadcast_to(dfa, var.shape) > 1e-6)))
        raise ValueError(
            f"Could not estimate the empirical Bayes prior of the variances: only {usable} of {var.size} genes have "
            "a positive variance and residual degrees of freedom (at least 3 are needed; genes with zero counts in "
            "whole groups of samples lose residual df). Use more genes or samples, or a simpler design."
        )
    var_post = _posterior(var, dfa, scale, df_prior)
    out = {"df_prior": df_prior, "var_prior": scale, "var_post": var_post}
    if robust:
        out["df2"] = fit["df2"]
    return out
