"""Width of DESeq2's log-normal prior on dispersions around the trend.

With more than three residual degrees of freedom DESeq2 subtracts the expected sampling variance of
the log dispersion estimates, ``trigamma((m - p) / 2)``, from their robust variance. With one to
three residual degrees of freedom that expectation is unreliable, and DESeq2 instead matches the
histogram of the log residuals against simulated ``log(chisq_{m-p} / (m-p)) + N(0, v)`` samples for
200 values of ``v``, smooths the Kullback-Leibler divergences with ``loess`` and takes the
minimiser. That procedure is reproduced here exactly: the draws come from a bit-exact port of R's
random number generators (:mod:`pbglm._kernels.r_rng`, ``set.seed(2)`` as in DESeq2), the
histograms follow ``hist()``'s fuzzy right-closed bins, and the smoother is R's default
``loess(span = 0.2)``: a degree-2 local regression evaluated at the vertices of a k-d tree and
interpolated by cubic Hermite polynomials (``surface = "interpolate"``).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
from numba import njit
from scipy import special

from .._kernels import r_rng

_BREAKS = np.arange(-20, 21) / 2.0
_N_DRAWS = 10000
_SEED = 2
_GRID = np.linspace(0.0, 8.0, 200)
# The simulated histograms depend only on the residual degrees of freedom (1, 2 or 3): they are
# computed once, stored beside this module, and checked against a fresh simulation by the tests.
HISTOGRAM_TABLE = Path(__file__).with_name("dispersion_prior_histograms.npz")


def _mad(x: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 * median absolute deviation from the median."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _fuzzy_breaks() -> np.ndarray:
    """``hist()``'s break points shifted by its fuzz (right-closed bins, lowest bin closed)."""
    diddle = 1e-7 * float(np.median(np.diff(_BREAKS)))
    fuzz = np.full(_BREAKS.size, diddle)
    fuzz[0] = -diddle
    return _BREAKS + fuzz


@njit(cache=True)
def _bin_count(x: np.ndarray, fuzzy: np.ndarray, counts: np.ndarray) -> int:
    """R's ``C_BinCount`` (right = TRUE, include.lowest = TRUE) for the finite values inside (-10, 10).

    Returns the number of values counted; ``counts`` is overwritten.
    """
    nb1 = fuzzy.size - 1
    counts[:] = 0
    n = 0
    lo_break = fuzzy[0]
    hi_break = fuzzy[nb1]
    for i in range(x.size):
        xi = x[i]
        # DESeq2 keeps only values strictly inside the outer breaks (-10, 10).
        if not (xi > -10.0 and xi < 10.0):
            continue
        n += 1
        if lo_break <= xi and xi <= hi_break:
            lo = 0
            hi = nb1
            while hi - lo >= 2:
                mid = (hi + lo) // 2
                if xi > fuzzy[mid]:
                    lo = mid
                else:
                    hi = mid
            counts[lo] += 1
    return n


@njit(cache=True)
def _simulated_counts(df: int, grid: np.ndarray, n_draws: int, seed: int, fuzzy: np.ndarray) -> tuple:
    """Histogram counts of DESeq2's ``log(rchisq(n, df)) + rnorm(n, 0, sqrt(v)) - log(df)`` for each ``v``.

    The draws follow R's stream after ``set.seed(seed)``: for each grid value, ``n_draws`` chi-squared
    draws, then ``n_draws`` normal draws (none when ``v == 0``).
    """
    state = r_rng.set_seed(seed)
    counts = np.zeros((grid.size, fuzzy.size - 1), dtype=np.int64)
    n_kept = np.zeros(grid.size, dtype=np.int64)
    rand = np.empty(n_draws)
    row = np.zeros(fuzzy.size - 1, dtype=np.int64)
    log_df = math.log(df)
    for i in range(grid.size):
        chi = r_rng.rchisq(state, n_draws, float(df))
        z = r_rng.rnorm(state, n_draws, 0.0, math.sqrt(grid[i]))
        for j in range(n_draws):
            rand[j] = math.log(chi[j]) + z[j] - log_df
        n_kept[i] = _bin_count(rand, fuzzy, row)
        counts[i, :] = row
    return counts, n_kept


def _kl_divergence(obs_density: np.ndarray, rand_density: np.ndarray) -> float:
    """DESeq2's smoothed KL divergence between two histogram densities (R sums in extended precision)."""
    z = np.concatenate([obs_density, rand_density])
    small = z[z > 0].min()
    terms = obs_density * (np.log(obs_density + small) - np.log(rand_density + small))
    return math.fsum(terms.tolist())


# ------------------------------------------------------------------------------------------------ loess


def _local_quadratic(x: np.ndarray, y: np.ndarray, q: float, nf: int, span: float) -> tuple[float, float]:
    """Value and slope at ``q`` of the tricube-weighted local quadratic fit on the ``nf`` nearest points.

    As loess's ``ehg127``: squared distances, ``rho`` = the ``nf``-th smallest one times ``max(1, span)``,
    row weights ``sqrt((1 - (d / sqrt(rho))^3)^3)`` (so points at distance ``sqrt(rho)`` get weight 0),
    columns equilibrated before the least-squares solve.
    """
    dist = (x - q) ** 2
    rho = np.partition(dist, nf - 1)[nf - 1] * max(1.0, span)
    if not rho > 0:
        raise ValueError("loess: span too small (zero-width neighbourhood).")
    inside = dist < rho
    r = np.sqrt(dist[inside] / rho)
    w = np.sqrt((1.0 - r**3) ** 3)
    dx = x[inside] - q
    design = np.column_stack([w, w * dx, w * dx * dx])
    norms = np.sqrt((design**2).sum(axis=0))
    norms[norms == 0] = 1.0
    coef = np.linalg.lstsq(design / norms, w * y[inside], rcond=None)[0] / norms
    return float(coef[0]), float(coef[1])


def _kd_tree_1d(xs: np.ndarray, fc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """loess's k-d tree (``ehg126`` + ``ehg124``) for sorted one-dimensional ``xs``.

    Cells are split at the median data point (``xs[(l + u) // 2]``, ties moved to the upper son) until
    they hold at most ``fc`` points. Returns the vertices and, per cell, the split value (nan for
    leaves), the two sons and the indices of the cell's lower and upper vertices.
    """
    n = xs.size
    alpha, beta = float(xs[0]), float(xs[-1])
    margin = 0.005 * max(beta - alpha, 1e-10 * max(abs(alpha), abs(beta)) + 1e-30)
    vertices = [alpha - margin, beta + margin]
    # per cell: [l, u] (0-based, inclusive), split, lo son, hi son, lower vertex, upper vertex
    cell_l, cell_u, split, lo_son, hi_son, v_lo, v_hi = [0], [n - 1], [], [], [], [0], [1]
    p = 0
    while p < len(cell_l):
        l, u = cell_l[p], cell_u[p]
        leaf = u - l + 1 <= fc
        m = -1
        if not leaf:
            m = (l + u) // 2  # 0-based version of Fortran's m = (l + u) / 2 on 1-based indices
            offset = 0
            while l <= m + offset < u:
                if xs[m + offset] == xs[m + offset + 1]:
                    offset = -offset
                    if offset >= 0:
                        offset += 1
                else:
                    m += offset
                    break
            leaf = vertices[v_lo[p]] == xs[m] or vertices[v_hi[p]] == xs[m]
        if leaf:
            split.append(np.nan)
            lo_son.append(-1)
            hi_son.append(-1)
        else:
            t = float(xs[m])
            split.append(t)
            if t in vertices:
                vid = vertices.index(t)
            else:
                vertices.append(t)
                vid = len(vertices) - 1
            lo_son.append(len(cell_l))
            cell_l.append(l)
            cell_u.append(m)
            v_lo.append(v_lo[p])
            v_hi.append(vid)
            hi_son.append(len(cell_l))
            cell_l.append(m + 1)
            cell_u.append(u)
            v_lo.append(vid)
            v_hi.append(v_hi[p])
        p += 1
    return (np.array(vertices), np.array(split), np.array(lo_son), np.array(hi_son), np.column_stack([v_lo, v_hi]))


def loess_1d(x: np.ndarray, y: np.ndarray, new_x: np.ndarray, span: float = 0.75, cell: float = 0.2) -> np.ndarray:
    """``predict(loess(y ~ x, span = span), new_x)`` with R's defaults for one predictor.

    Degree 2, gaussian family, ``surface = "interpolate"``: local quadratic fits (value and slope) at
    the vertices of loess's k-d tree, cubic Hermite interpolation inside its leaf cells.

    Parameters
    ----------
    x, y
        Data (no missing values, unit weights).
    new_x
        Points at which to predict; those outside ``range(x)`` give nan as in R.
    span
        Fraction of the points in each local neighbourhood.
    cell
        Leaf cells hold at most ``floor(n * span * cell)`` points.

    Returns
    -------
    numpy.ndarray
        The smoothed values at ``new_x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    new_x = np.asarray(new_x, dtype=float)
    n = x.size
    nf = min(n, math.floor(n * span))
    if nf < 4:
        raise ValueError("loess: span too small for a local quadratic fit.")
    fc = math.floor(n * (span * cell))
    xs = np.sort(x)
    vertices, split, lo_son, hi_son, cell_vertices = _kd_tree_1d(xs, fc)
    vval = np.array([_local_quadratic(x, y, v, nf, span) for v in vertices])
    out = np.full(new_x.size, np.nan)
    for i, z in enumerate(new_x):
        if not (xs[0] <= z <= xs[-1]):
            continue
        j = 0
        while lo_son[j] >= 0:
            j = lo_son[j] if z <= split[j] else hi_son[j]
        a, b = cell_vertices[j]
        v0, v1 = vertices[a], vertices[b]
        h = (z - v0) / (v1 - v0)
        phi0 = (1 - h) ** 2 * (1 + 2 * h)
        phi1 = h**2 * (3 - 2 * h)
        psi0 = h * (1 - h) ** 2
        psi1 = h**2 * (h - 1)
        out[i] = phi0 * vval[a, 0] + phi1 * vval[b, 0] + (psi0 * vval[a, 1] + psi1 * vval[b, 1]) * (v1 - v0)
    return out


# ----------------------------------------------------------------------------------------- estimators


def _hist_density(counts: np.ndarray, n: int) -> np.ndarray:
    """``hist(...)$density`` for bins of width 0.5."""
    return counts / (n * 0.5)


def _kl_curve(residuals: np.ndarray, df: int) -> tuple[np.ndarray, np.ndarray]:
    """DESeq2's grid of prior variances and the KL divergence of the residual histogram from each."""
    fuzzy = _fuzzy_breaks()
    obs = np.ascontiguousarray(residuals, dtype=np.float64)
    obs_counts = np.zeros(_BREAKS.size - 1, dtype=np.int64)
    n_obs = _bin_count(obs, fuzzy, obs_counts)
    if n_obs == 0:
        raise ValueError("No log dispersion residual lies inside (-10, 10).")
    obs_density = _hist_density(obs_counts, n_obs)
    counts, n_kept = simulated_histograms(df)
    kl = np.array([_kl_divergence(obs_density, _hist_density(counts[i], n_kept[i])) for i in range(_GRID.size)])
    return _GRID, kl


def simulate_histograms(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Histogram counts (200 x 40) and numbers of draws kept (200,) of DESeq2's simulated log
    residuals for ``df`` residual degrees of freedom, over the grid of prior variances."""
    return _simulated_counts(df, _GRID, _N_DRAWS, _SEED, _fuzzy_breaks())


def write_histogram_table(path: Path = HISTOGRAM_TABLE) -> None:
    """Simulate the histograms for 1, 2 and 3 residual degrees of freedom and store them at ``path``."""
    tables = {}
    for df in (1, 2, 3):
        counts, n_kept = simulate_histograms(df)
        tables[f"counts_{df}"] = counts.astype(np.int32)
        tables[f"n_kept_{df}"] = n_kept.astype(np.int32)
    np.savez_compressed(path, **tables)


@cache
def simulated_histograms(df: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored :func:`simulate_histograms` result for ``df`` (simulated if the table is missing)."""
    if HISTOGRAM_TABLE.exists():
        with np.load(HISTOGRAM_TABLE) as table:
            return table[f"counts_{df}"].astype(np.int64), table[f"n_kept_{df}"].astype(np.int64)
    return simulate_histograms(df)


def _monte_carlo_prior_var(residuals: np.ndarray, df: int) -> float:
    """DESeq2's estimator for 1 to 3 residual degrees of freedom: match the residual histogram.

    Parameters
    ----------
    residuals
        ``log(gene-wise dispersion) - log(trend)`` of the genes used for the prior.
    df
        Residual degrees of freedom ``m - p`` (1, 2 or 3).

    Returns
    -------
    float
        The prior variance, at least 0.25, as ``estimateDispersionsPriorVar`` returns it.
    """
    grid, kl = _kl_curve(residuals, df)
    fine = np.linspace(0.0, 8.0, 1000)
    smooth = loess_1d(grid, kl, fine, span=0.2)
    return float(max(fine[int(np.nanargmin(smooth))], 0.25))


def dispersion_prior_var(log_residuals: np.ndarray, n_samples: int, n_coefs: int) -> tuple[float, float, float]:
    """DESeq2's ``estimateDispersionsPriorVar``.

    Parameters
    ----------
    log_residuals
        ``log(gene-wise) - log(trend)`` for genes with gene-wise dispersion >= 100 * minDisp.
    n_samples
        Number of samples ``m`` (rows of the design matrix).
    n_coefs
        Number of coefficients ``p`` (columns of the design matrix).

    Returns
    -------
    tuple of float
        (prior variance, varLogDispEsts, expected sampling variance of the log estimates)
    """
    if log_residuals.size == 0:
        raise ValueError("No gene has a gene-wise dispersion estimate above the minimum; the data look Poisson.")
    var_log_disp = _mad(log_residuals) ** 2
    df = n_samples - n_coefs
    if 1 <= df <= 3:
        return _monte_carlo_prior_var(log_residuals, df), var_log_disp, float(special.polygamma(1, df / 2))
    if df > 0:
        expected = float(special.polygamma(1, df / 2))
        return max(var_log_disp - expected, 0.25), var_log_disp, expected
    return var_log_disp, var_log_disp, 0.0
