"""R's ``lowess()`` (Cleveland's robust locally weighted regression, ``clowess`` in R's C sources).

DESeq2's independent filtering fits ``lowess(numRej ~ theta, f = 1/5)`` and limma's
``loessFit`` (used by the QL variance trend) is lowess too; matching their numbers requires the
same smoother, so this follows R's algorithm step by step (tricube weights, local linear fit
around the weighted centre, ``delta`` interpolation, bisquare robustness iterations).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _lowest(x, y, n, xs, nleft, nright, w, userw, rw):
    """clowess's local fit at ``xs`` from points nleft..nright (0-based); returns (value, ok)."""
    rng = x[n - 1] - x[0]
    h = max(xs - x[nleft], x[nright] - xs)
    h9 = 0.999 * h
    h1 = 0.001 * h
    a = 0.0
    j = nleft
    while j < n:
        w[j] = 0.0
        r = abs(x[j] - xs)
        if r <= h9:
            if r <= h1:
                w[j] = 1.0
            else:
                t = r / h
                t = 1.0 - t * t * t
                w[j] = t * t * t
            if userw:
                w[j] *= rw[j]
            a += w[j]
        elif x[j] > xs:
            break
        j += 1
    nrt = j - 1
    if a <= 0.0:
        return 0.0, False
    for j in range(nleft, nrt + 1):
        w[j] /= a
    if h > 0.0:
        a = 0.0
        for j in range(nleft, nrt + 1):
            a += w[j] * x[j]
        b = xs - a
        c = 0.0
        for j in range(nleft, nrt + 1):
            c += w[j] * (x[j] - a) * (x[j] - a)
        if math.sqrt(c) > 0.001 * rng:
            b /= c
            for j in range(nleft, nrt + 1):
                w[j] *= b * (x[j] - a) + 1.0
    ys = 0.0
    for j in range(nleft, nrt + 1):
        ys += w[j] * y[j]
    return ys, True


@njit(cache=True, error_model="numpy")
def _clowess(x, y, f, nsteps, delta):
    """R's ``clowess`` on sorted x: fitted values in the order of x."""
    n = x.shape[0]
    ys = np.zeros(n)
    rw = np.ones(n)
    w = np.zeros(n)
    res = np.zeros(n)
    if n < 2:
        ys[:] = y
        return ys
    ns = max(2, min(n, int(f * n + 1e-7)))
    it = 1
    while it <= nsteps + 1:
        nleft = 0
        nright = ns - 1
        last = -1
        i = 0
        while True:
            if nright < n - 1:
                d1 = x[i] - x[nleft]
                d2 = x[nright + 1] - x[i]
                if d1 > d2:
                    nleft += 1
                    nright += 1
                    continue
            val, ok = _lowest(x, y, n, x[i], nleft, nright, w, it > 1, rw)
            ys[i] = val if ok else y[i]
            if last < i - 1:
                denom = x[i] - x[last]
                for j in range(last + 1, i):
                    alpha = (x[j] - x[last]) / denom
                    ys[j] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        for i in range(n):
            res[i] = y[i] - ys[i]
        sc = 0.0
        for i in range(n):
            sc += abs(res[i])
        sc /= n
        if it > nsteps:
            break
        ar = np.abs(res)
        srt = np.sort(ar)
        m1 = n // 2
        if n % 2 == 0:
            cmad = 3.0 * (srt[m1] + srt[n - m1 - 1])
        else:
            cmad = 6.0 * srt[m1]
        if cmad < 1e-7 * sc:
            break
        c9 = 0.999 * cmad
        c1 = 0.001 * cmad
        for i in range(n):
            r = ar[i]
            if r <= c1:
                rw[i] = 1.0
            elif r <= c9:
                t = r / cmad
                t = 1.0 - t * t
                rw[i] = t * t
            else:
                rw[i] = 0.0
        it += 1
    return ys


def lowess(x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iters: int = 3, delta: float | None = None) -> np.ndarray:
    """R's ``lowess(x, y, f, iter)$y``: fitted values in the order of sorted x."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    o = np.argsort(x, kind="stable")
    xs = np.ascontiguousarray(x[o])
    if delta is None:
        delta = 0.01 * (xs[-1] - xs[0]) if xs.size else 0.0
    return _clowess(xs, np.ascontiguousarray(y[o]), float(f), int(iters), float(delta))
