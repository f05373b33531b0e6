"""Width of DESeq2's log-normal prior on dispersions around the trend."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

_BREAKS = np.arange(-20, 21) / 2.0


def _mad(x: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 * median absolute deviation from the median."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _hist_density(x: np.ndarray) -> np.ndarray:
    """R's ``hist(x, breaks=-20:20/2)$density`` (right-closed bins, lowest included)."""
    idx = np.searchsorted(_BREAKS, x, side="left") - 1
    idx[x == _BREAKS[0]] = 0
    counts = np.bincount(idx, minlength=_BREAKS.size - 1)[: _BREAKS.size - 1]
    return counts / (x.size * 0.5)


def _expected_density(df: float, var: float) -> np.ndarray:
    """Histogram density of ``log(chisq_df / df) + N(0, var)`` restricted to (-10, 10).

    DESeq2 draws 10,000 samples of this variable per grid point; the expected histogram is
    computed here by quadrature instead, which removes the Monte-Carlo noise.
    """
    u = np.linspace(-25.0, 6.0, 6001)
    du = u[1] - u[0]
    dens_u = np.exp(stats.chi2.logpdf(df * np.exp(u), df) + np.log(df) + u)
    dens_u /= dens_u.sum() * du
    if var <= 0:
        cdf_edges = np.array([np.sum(dens_u[u <= b]) * du for b in _BREAKS])
    else:
        sd = np.sqrt(var)
        cdf_edges = np.array([np.sum(dens_u * special.ndtr((b - u) / sd)) * du for b in _BREAKS])
    probs = np.maximum(np.diff(cdf_edges), 0.0)
    return probs / probs.sum() / 0.5


def _monte_carlo_prior_var(residuals: np.ndarray, df: int) -> float:
    """DESeq2's estimator for 1 to 3 residual degrees of freedom: match the residual histogram."""
    obs = residuals[(residuals > _BREAKS[0]) & (residuals < _BREAKS[-1])]
    obs_density = _hist_density(obs)
    grid = np.linspace(0, 8, 200)
    kl = np.empty(grid.size)
    for i, v in enumerate(grid):
        rand_density = _expected_density(df, v)
        z = np.concatenate([obs_density, rand_density])
        small = z[z > 0].min()
        kl[i] = np.sum(obs_density * (np.log(obs_density + small) - np.log(rand_density + small)))
    fine = np.linspace(0, 8, 1000)
    kl_fine = np.interp(fine, grid, kl)
    return float(max(fine[np.argmin(kl_fine)], 0.25))


def dispersion_prior_var(
    log_residuals: np.ndarray, n_samples: int, n_coefs: int
) -> tuple[float, float, float]:
    """DESeq2's ``estimateDispersionsPriorVar``.

    Parameters
    ----------
    log_residuals
        ``log(gene-wise) - log(trend)`` for genes with gene-wise dispersion >= 100 * minDisp.

    Returns
    -------
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
