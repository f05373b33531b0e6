"""edgeR's ``normLibSizes`` (``calcNormFactors``): normalisation factors by TMM, TMMwsp, RLE,
upper quartile or none.

All-zero genes are dropped first; the factors are scaled to a geometric mean of 1. TMM is
:func:`pbglm._numerics.tmm.calc_norm_factors_tmm`. TMMwsp ("TMM with singleton pairing") keeps
genes with a zero in one of the two samples by pairing the largest such counts of each side,
orders the log-ratios with their shrunk version (+0.5) as tie-break and weights by ``(1 + 1e-6) /
(v + 1e-6)``; its reference is the sample with the largest sum of square-root counts. RLE is the
median ratio to the geometric mean over genes with a positive geometric mean, divided by the
library size; upperquartile the 75% quantile (R type 7) over the library size.
"""

from __future__ import annotations

import numpy as np

from .tmm import calc_norm_factors_tmm

__all__ = ["NORM_METHODS", "norm_lib_sizes"]

NORM_METHODS = ("TMM", "TMMwsp", "RLE", "upperquartile", "none")


def _tmmwsp_factor(obs, ref, lib_obs, lib_ref, logratio_trim=0.3, sum_trim=0.05):
    eps = 1e-14
    npos = 2 * (obs > eps) + (ref > eps)
    keep0 = npos != 0
    obs, ref, npos = obs[keep0], ref[keep0], npos[keep0]
    zero_obs = npos == 1
    zero_ref = npos == 2
    k = zero_obs | zero_ref
    n_single = min(int(zero_obs.sum()), int(zero_ref.sum()))
    if n_single > 0:
        refk = np.sort(ref[k])[::-1][:n_single]
        obsk = np.sort(obs[k])[::-1][:n_single]
        obs = np.concatenate([obs[~k], obsk])
        ref = np.concatenate([ref[~k], refk])
    else:
        obs, ref = obs[~k], ref[~k]
    n = obs.size
    if n == 0:
        return 1.0
    obs_p = obs / lib_obs
    ref_p = ref / lib_ref
    M = np.log2(obs_p / ref_p)
    A = 0.5 * np.log2(obs_p * ref_p)
    if np.max(np.abs(M)) < 1e-6:
        return 1.0
    m_shrunk = np.log2(((obs + 0.5) / (lib_obs + 0.5)) / ((ref + 0.5) / (lib_ref + 0.5)))
    o_m = np.lexsort((m_shrunk, M))
    o_a = np.argsort(A, kind="stable")
    lo_m = int(n * logratio_trim) + 1
    hi_m = n + 1 - lo_m
    keep_m = np.zeros(n, dtype=bool)
    keep_m[o_m[lo_m - 1:hi_m]] = True
    lo_a = int(n * sum_trim) + 1
    hi_a = n + 1 - lo_a
    keep_a = np.zeros(n, dtype=bool)
    keep_a[o_a[lo_a - 1:hi_a]] = True
    keep = keep_m & keep_a
    v = (1 - obs_p[keep]) / obs_p[keep] / lib_obs + (1 - ref_p[keep]) / ref_p[keep] / lib_ref
    w = (1 + 1e-6) / (v + 1e-6)
    return float(2.0 ** (np.sum(w * M[keep]) / np.sum(w)))


def norm_lib_sizes(counts: np.ndarray, lib_size: np.ndarray | None = None, method: str = "TMM") -> np.ndarray:
    """``(m,)`` normalisation factors of edgeR's ``normLibSizes(counts, lib.size, method)``.

    Parameters
    ----------
    counts
        ``(G, m)`` non-negative counts.
    lib_size
        ``(m,)`` library sizes (column sums by default).
    method
        One of ``"TMM"``, ``"TMMwsp"``, ``"RLE"``, ``"upperquartile"``, ``"none"``.
    """
    if method not in NORM_METHODS:
        raise ValueError(f"normalize must be one of {NORM_METHODS} (edgeR's normLibSizes methods), got {method!r}.")
    x = np.asarray(counts, dtype=np.float64)
    m = x.shape[1]
    lib = x.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    if method == "TMM":
        return calc_norm_factors_tmm(x, lib)
    x = x[(x > 0).any(axis=1)]
    if x.shape[0] == 0 or m == 1 or method == "none":
        return np.ones(m)
    if method == "TMMwsp":
        ref = int(np.argmax(np.sqrt(x).sum(axis=0)))
        f = np.array([_tmmwsp_factor(x[:, i], x[:, ref], lib[i], lib[ref]) for i in range(m)])
    elif method == "RLE":
        with np.errstate(divide="ignore"):
            gm = np.exp(np.mean(np.log(x), axis=1))
        pos = gm > 0
        f = np.median(x[pos] / gm[pos, None], axis=0) / lib
    else:
        q = np.quantile(x, 0.75, axis=0, method="linear")
        if q.min() == 0:
            raise ValueError("An upper quartile is zero: normalize='upperquartile' cannot be used on these counts "
                             "(too many zeros); use 'TMM' or 'TMMwsp'.")
        f = q / lib
    return f / np.exp(np.mean(np.log(f)))
