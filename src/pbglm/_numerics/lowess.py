"""R's ``lowess()`` (Cleveland's robust locally weighted regression, ``clowess`` in R's C sources).

DESeq2's independent filtering fits ``lowess(numRej ~ theta, f = 1/5)``; matching its threshold
requires the same smoother, so this follows R's algorithm step by step (tricube weights, local
linear fit around the weighted centre, ``delta`` interpolation, bisquare robustness iterations).
"""

from __future__ import annotations

import numpy as np


def _lowest(x, y, n, xs, nleft, nright, w, userw, rw):
    """Fitted value at xs from points nleft..nright (1-based), or None if all weights vanish."""
    rng = x[n] - x[1]
    h = max(xs - x[nleft], x[nright] - xs)
    h9 = 0.999 * h
    h1 = 0.001 * h
    a = 0.0
    j = nleft
    while j <= n:
        w[j] = 0.0
        r = abs(x[j] - xs)
        if r <= h9:
            w[j] = 1.0 if r <= h1 else (1.0 - (r / h) ** 3) ** 3
            if userw:
                w[j] *= rw[j]
            a += w[j]
        elif x[j] > xs:
            break
        j += 1
    nrt = j - 1
    if a <= 0.0:
        return None
    for j in range(nleft, nrt + 1):
        w[j] /= a
    if h > 0.0:
        a = sum(w[j] * x[j] for j in range(nleft, nrt + 1))
        b = xs - a
        c = sum(w[j] * (x[j] - a) * (x[j] - a) for j in range(nleft, nrt + 1))
        if np.sqrt(c) > 0.001 * rng:
            b /= c
            for j in range(nleft, nrt + 1):
                w[j] *= b * (x[j] - a) + 1.0
    return sum(w[j] * y[j] for j in range(nleft, nrt + 1))


def lowess(x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iters: int = 3, delta: float | None = None) -> np.ndarray:
    """Return the lowess fit at the sorted x (as ``lowess(x, y)$y`` in R)."""
    order = np.argsort(x, kind="stable")
    xo = np.asarray(x, dtype=float)[order]
    yo = np.asarray(y, dtype=float)[order]
    n = xo.size
    if delta is None:
        delta = 0.01 * (xo[-1] - xo[0])
    if n < 2:
        return yo.copy()
    X = np.concatenate([[np.nan], xo])
    Y = np.concatenate([[np.nan], yo])
    ys = np.zeros(n + 1)
    rw = np.zeros(n + 1)
    w = np.zeros(n + 1)
    ns = max(2, min(n, int(f * n + 1e-7)))
    it = 1
    while it <= iters + 1:
        nleft, nright, last, i = 1, ns, 0, 1
        while True:
            if nright < n:
                d1 = X[i] - X[nleft]
                d2 = X[nright + 1] - X[i]
                if d1 > d2:
                    nleft += 1
                    nright += 1
                    continue
            fit = _lowest(X, Y, n, X[i], nleft, nright, w, it > 1, rw)
            ys[i] = Y[i] if fit is None else fit
            if last < i - 1:
                denom = X[i] - X[last]
                for j in range(last + 1, i):
                    alpha = (X[j] - X[last]) / denom
                    ys[j] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = X[last] + delta
            i = last + 1
            while i <= n:
                if X[i] > cut:
                    break
                if X[i] == X[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n:
                break
        res = Y[1:] - ys[1:]
        sc = np.mean(np.abs(res))
        if it > iters:
            break
        ar = np.abs(res)
        srt = np.sort(ar)
        m1 = n // 2
        cmad = 3.0 * (srt[m1] + srt[n - m1 - 1]) if n % 2 == 0 else 6.0 * srt[m1]
        if cmad < 1e-7 * sc:
            break
        c9, c1 = 0.999 * cmad, 0.001 * cmad
        with np.errstate(divide="ignore", invalid="ignore"):  # cmad may be 0 (then every r <= c1)
            rwi = np.where(ar <= c1, 1.0, np.where(ar <= c9, (1.0 - (ar / cmad) ** 2) ** 2, 0.0))
        rw[1:] = rwi
        it += 1
    return ys[1:]
