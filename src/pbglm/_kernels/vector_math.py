"""``log``, ``log1p`` and ``exp`` that the compiler can vectorise, accurate to an ulp.

numba calls libm for ``math.log`` and ``math.exp`` one value at a time (it vectorises them only
when Intel's SVML is installed). The functions here are fdlibm's algorithms written in plain
arithmetic and bit manipulation, so a loop over samples that uses them compiles to SIMD
instructions (AVX-512 on the project machine, NEON on ARM): 4-8x faster than libm, and within
one ulp of it (equal in ~99% of cases).

Rules for callers, so the loops do vectorise and stay exact:

* compile with ``error_model="numpy"`` (the default "python" model checks every division for
  zero, which blocks vectorisation);
* never with ``fastmath`` re-association: the formulas rely on their evaluation order. Put
  reductions (sums over samples) in separate functions that may re-associate.

Arguments are positive normal numbers for :func:`fast_log` (no zeros, infinities or NaN
handling) and finite for :func:`fast_exp` (clamped to [-708, 709], so no overflow to inf).

The edgeR kernels keep their own array versions (``edger_glm.vexp``/``vlog``, a division-free
Taylor exp): routing them through these functions made the edgeR pipeline ~10% slower
(2.09 s -> 2.31 s on 20,000 x 400, measured side by side).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


def _bitcast(source, target):
    """An intrinsic reinterpreting the bits of a ``source`` scalar as ``target`` (same width)."""

    @intrinsic
    def cast(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_bits = _bitcast(types.float64, types.uint64)
_from_bits = _bitcast(types.uint64, types.float64)

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# log(1 + f) = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f)  (fdlibm e_log.c)
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
# shift so that the mantissa lands in [sqrt(2)/2, sqrt(2))
_SQRT_HALF_BITS = np.uint64(0x3FE6A09E667F3BCD)
_ONE_BITS = np.uint64(0x3FF0000000000000)
_SHIFT = np.uint64(0x3FF0000000000000 - 0x3FE6A09E667F3BCD)
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_52 = np.uint64(52)
# exp(r) on |r| <= ln2/2 (fdlibm e_exp.c)
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08


@njit(cache=True, error_model="numpy")
def _log1p_reduced(f, k):
    """``k log 2 + log(1 + f)`` for f in [sqrt(2)/2 - 1, sqrt(2) - 1]."""
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    return k * _LN2_HI - ((hfsq - (s * (hfsq + (t1 + t2)) + k * _LN2_LO)) - f)


@njit(cache=True, error_model="numpy")
def fast_log(x):
    """Natural logarithm of a positive normal float64 (fdlibm; < 1 ulp)."""
    i = _bits(x) + _SHIFT
    k = np.float64(np.int64(i >> _52) - 1023)
    f = _from_bits((i & _MANTISSA) + _SQRT_HALF_BITS) - 1.0
    return _log1p_reduced(f, k)


@njit(cache=True, error_model="numpy")
def fast_log1p(x):
    """``log(1 + x)`` for x > -1, accurate also for tiny x (log of ``u = 1 + x`` corrected by
    ``(x - (u - 1)) / u``, the rounding error of forming u)."""
    u = 1.0 + x
    return fast_log(u) + (x - (u - 1.0)) / u


@njit(cache=True, error_model="numpy")
def fast_exp(x):
    """``exp(x)`` for finite x, clamped to [-708, 709] (fdlibm; < 1 ulp)."""
    x = min(max(x, -708.0), 709.0)
    k = np.rint(x * _INV_LN2)
    hi = x - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return y * _from_bits(np.uint64(np.int64(k) + 1023) << _52)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def total(x):
    """Sum of a vector, re-associated so that it vectorises (differs from a sequential sum by
    rounding only)."""
    s = 0.0
    for j in range(x.shape[0]):
        s += x[j]
    return s
