"""limma's ``weightedLowess``: lowess with prior weights (``loessFit(weights = ...)``).

Each seed point's window grows, one neighbour at a time towards the nearer side, until its prior
weights sum to ``span`` times the total; the fit there is a tricube- and prior-weighted straight
line (weighted mean when the window has no width). Seeds are the points more than ``delta`` beyond
the previous seed (``delta`` chosen for about ``npts`` seeds); points between seeds are linearly
interpolated. Robustness iterations use the prior-weighted median absolute residual.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["weighted_lowess"]

_THRESHOLD = 1e-7


@njit(cache=True, error_model="numpy")
def _seeds(x, delta):
    n = x.size
    idx = np.empty(n, dtype=np.int64)
    idx[0] = 0
    k = 1
    last = 0
    for pt in range(1, n - 1):
        if x[pt] - x[last] > delta:
            idx[k] = pt
            k += 1
            last = pt
    idx[k] = n - 1
    return idx[: k + 1]


@njit(cache=True, error_model="numpy")
def _limits(seeds, x, w, spanweight):
    n = x.size
    ns = seeds.size
    start = np.empty(ns, dtype=np.int64)
    end = np.empty(ns, dtype=np.int64)
    dist = np.empty(ns)
    for s in range(ns):
        cur = seeds[s]
        left = cur
        right = cur
        curw = w[cur]
        ende = cur == n - 1
        ends = cur == 0
        mdist = 0.0
        while curw < spanweight and (not ende or not ends):
            if ende:
                left -= 1
                curw += w[left]
                if left == 0:
                    ends = True
                ld = x[cur] - x[left]
                if mdist < ld:
                    mdist = ld
            elif ends:
                right += 1
                curw += w[right]
                if right == n - 1:
                    ende = True
                rd = x[right] - x[cur]
                if mdist < rd:
                    mdist = rd
            else:
                ld = x[cur] - x[left - 1]
                rd = x[right + 1] - x[cur]
                if ld < rd:
                    left -= 1
                    curw += w[left]
                    if left == 0:
                        ends = True
                    if mdist < ld:
                        mdist = ld
                else:
                    right += 1
                    curw += w[right]
                    if right == n - 1:
                        ende = True
                    if mdist < rd:
                        mdist = rd
        while left > 0 and x[left] == x[left - 1]:
            left -= 1
        while right < n - 1 and x[right] == x[right + 1]:
            right += 1
        start[s] = left
        end[s] = right
        dist[s] = mdist
    return start, end, dist


@njit(cache=True, error_model="numpy")
def _fit_at(x, y, w, rw, cur, left, right, dist, work):
    ymean = 0.0
    allw = 0.0
    if dist < _THRESHOLD:
        for pt in range(left, right + 1):
            work[pt] = w[pt] * rw[pt]
            ymean += y[pt] * work[pt]
            allw += work[pt]
        return ymean / allw
    xmean = 0.0
    for pt in range(left, right + 1):
        work[pt] = (1.0 - (abs(x[cur] - x[pt]) / dist) ** 3) ** 3 * w[pt] * rw[pt]
        xmean += work[pt] * x[pt]
        ymean += work[pt] * y[pt]
        allw += work[pt]
    xmean /= allw
    ymean /= allw
    var = 0.0
    covar = 0.0
    for pt in range(left, right + 1):
        t = x[pt] - xmean
        var += t * t * work[pt]
        covar += t * (y[pt] - ymean) * work[pt]
    if var < _THRESHOLD:
        return ymean
    slope = covar / var
    return slope * x[cur] + ymean - slope * xmean


@njit(cache=True, error_model="numpy")
def _weighted_lowess_sorted(x, y, w, span, iterations, delta):
    n = x.size
    total = w.sum()
    spanweight = total * span
    subrange = (x[n - 1] - x[0]) / n
    seeds = _seeds(x, delta)
    start, end, dist = _limits(seeds, x, w, spanweight)
    fit = np.empty(n)
    rsd = np.empty(n)
    rw = np.ones(n)
    for _it in range(iterations):
        fit[0] = _fit_at(x, y, w, rw, 0, start[0], end[0], dist[0], rsd)
        last = 0
        for s in range(1, seeds.size):
            pt = seeds[s]
            fit[pt] = _fit_at(x, y, w, rw, pt, start[s], end[s], dist[s], rsd)
            if pt - last > 1:
                cur = x[pt] - x[last]
                if cur > _THRESHOLD * subrange:
                    slope = (fit[pt] - fit[last]) / cur
                    icpt = fit[pt] - slope * x[pt]
                    for sub in range(last + 1, pt):
                        fit[sub] = slope * x[sub] + icpt
                else:
                    ave = 0.5 * (fit[pt] + fit[last])
                    for sub in range(last + 1, pt):
                        fit[sub] = ave
            last = pt
        scale = 0.0
        for pt in range(n):
            rsd[pt] = abs(y[pt] - fit[pt])
            scale += rsd[pt]
        scale /= n
        order = np.argsort(rsd)
        srt = rsd[order]
        cur = 0.0
        cmad = 0.0
        half = total / 2.0
        for pt in range(n):
            cur += w[order[pt]]
            if cur == half:
                cmad = 3.0 * (srt[pt] + srt[pt + 1])
                break
            elif cur > half:
                cmad = 6.0 * srt[pt]
                break
        if cmad <= _THRESHOLD * scale:
            break
        for pt in range(n):
            r = srt[pt]
            rw[order[pt]] = (1.0 - (r / cmad) ** 2) ** 2 if r < cmad else 0.0
    return fit


def weighted_lowess(x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, span: float = 0.3, iterations: int = 4,
                    npts: int = 200) -> np.ndarray:
    """Fitted values of limma's ``weightedLowess(x, y, weights, span, iterations, npts)``, in input order."""
    x = np.asarray(x, dtype=float)
    o = np.argsort(x, kind="stable")
    xs = np.ascontiguousarray(x[o])
    n = xs.size
    if npts >= n:
        delta = 0.0
    else:
        dx = np.sort(np.diff(xs))
        cum = np.cumsum(dx)
        k = np.arange(npts)
        delta = float(np.min(cum[dx.size - 1 - k] / (npts - k)))
    fit_sorted = _weighted_lowess_sorted(xs, np.ascontiguousarray(np.asarray(y, dtype=float)[o]),
                                         np.ascontiguousarray(np.asarray(weights, dtype=float)[o]),
                                         float(span), int(iterations), delta)
    out = np.empty(n)
    out[o] = fit_sorted
    return out
