"""R's ``optimize()``: Brent's one-dimensional minimiser without derivatives (``Brent_fmin``).

Golden-section search with parabolic interpolation on ``[lower, upper]``, stopping when the
bracket is within ``2 * (sqrt(eps) |x| + tol / 3)`` of the current point. Written as R runs it so
that the hyperparameters it finds (edgeR's common dispersion, limma's prior df) agree with R to
the last digits rather than to the tolerance only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["r_optimize"]

_GOLDEN = (3.0 - math.sqrt(5.0)) * 0.5
_SQRT_EPS = math.sqrt(np.finfo(float).eps)


def r_optimize(f: Callable[[float], float], lower: float, upper: float, *, tol: float | None = None,
               maximum: bool = False) -> float:
    """The abscissa R's ``optimize(f, c(lower, upper), tol = tol, maximum = maximum)`` returns.

    ``tol`` defaults to R's ``.Machine$double.eps^0.25``.
    """
    if tol is None:
        tol = np.finfo(float).eps ** 0.25
    sign = -1.0 if maximum else 1.0

    def fun(x: float) -> float:
        return sign * float(f(x))

    a, b = float(lower), float(upper)
    v = a + _GOLDEN * (b - a)
    w = x = v
    d = e = 0.0
    fx = fun(x)
    fv = fw = fx
    tol3 = tol / 3.0
    while True:
        xm = (a + b) * 0.5
        tol1 = _SQRT_EPS * abs(x) + tol3
        t2 = tol1 * 2.0
        if abs(x - xm) <= t2 - (b - a) * 0.5:
            break
        p = q = r = 0.0
        if abs(e) > tol1:  # a parabola through x, w, v
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = e
            e = d
        if abs(p) >= abs(q * 0.5 * r) or p <= q * (a - x) or p >= q * (b - x):
            e = (b - x) if x < xm else (a - x)  # golden section
            d = _GOLDEN * e
        else:
            d = p / q
            u = x + d
            if u - a < t2 or b - u < t2:
                d = tol1 if x < xm else -tol1
        if abs(d) >= tol1:
            u = x + d
        elif d > 0.0:
            u = x + tol1
        else:
            u = x - tol1
        fu = fun(u)
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v, w, x = w, x, u
            fv, fw, fx = fw, fx, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv = w, fw
                w, fw = u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x
