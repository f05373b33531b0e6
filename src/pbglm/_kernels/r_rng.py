"""R's default random number generators, reproduced bit for bit in numba.

R (>= 3.6) by default draws uniforms with the Mersenne-Twister (``RNGkind("Mersenne-Twister")``),
normals by inversion (``"Inversion"``) and gammas with Ahrens & Dieter's GD (shape >= 1) and GS
(shape < 1) algorithms. This module reimplements

* ``set.seed(seed)``: R's initial scrambling of the integer seed by the congruential generator
  ``seed <- 69069 * seed + 1`` (50 times, then once for each of the 625 seed words, the first of
  which is overwritten by the Mersenne-Twister position ``mti = 624``);
* ``unif_rand``: the 32-bit Mersenne-Twister (Matsumoto & Nishimura 1998) scaled by 2^-32, with R's
  fix-up that never returns exactly 0 or 1;
* ``norm_rand``: inversion of a 2^-59-resolution uniform built from two draws, through Wichura's
  AS 241 ``qnorm``;
* ``exp_rand``: Ahrens & Dieter (1972) algorithm SA;
* ``rgamma`` / ``rchisq`` / ``rnorm`` with R's argument conventions (``rnorm(mu, 0)`` returns ``mu``
  without consuming a draw).

The generator state is a ``numpy.int64`` array of length 625: element 0 is the position ``mti``,
elements 1..624 the 32-bit Mersenne-Twister words (held in int64 so that numba does all the bit
arithmetic in signed 64-bit integers and masks back to 32 bits).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_N = 624
_M = 397
_MATRIX_A = 0x9908B0DF
_UPPER_MASK = 0x80000000
_LOWER_MASK = 0x7FFFFFFF
_MASK32 = 0xFFFFFFFF
_TEMPERING_MASK_B = 0x9D2C5680
_TEMPERING_MASK_C = 0xEFC60000
_TWO_POW_M32 = 2.3283064365386963e-10  # 2^-32
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1)
_BIG = 134217728.0  # 2^27

_EXP_Q = np.array(
    [
        0.6931471805599453,
        0.9333736875190459,
        0.9888777961838675,
        0.9984959252914960,
        0.9998292811061389,
        0.9999833164100727,
        0.9999985691438767,
        0.9999998906925558,
        0.9999999924734159,
        0.9999999995283275,
        0.9999999999728814,
        0.9999999999985598,
        0.9999999999999289,
        0.9999999999999968,
        0.9999999999999999,
        1.0000000000000000,
    ]
)


@njit(cache=True)
def set_seed(seed: int) -> np.ndarray:
    """Generator state after R's ``set.seed(seed)`` with the default kinds.

    Parameters
    ----------
    seed
        The integer given to ``set.seed`` (R's 32-bit integer; negative values wrap as in C).

    Returns
    -------
    numpy.ndarray
        int64 array of length 625: ``[mti, mt[0], ..., mt[623]]``.
    """
    s = seed & _MASK32
    for _ in range(50):
        s = (69069 * s + 1) & _MASK32
    state = np.empty(_N + 1, dtype=np.int64)
    for j in range(_N + 1):
        s = (69069 * s + 1) & _MASK32
        state[j] = s
    # FixupSeeds(initial = TRUE): the position is reset; an all-zero state cannot arise from this recursion.
    state[0] = _N
    return state


@njit(cache=True)
def _mt_next(state: np.ndarray) -> int:
    """Next tempered 32-bit output of the Mersenne-Twister (R's ``MT_genrand`` before scaling)."""
    mti = state[0]
    if mti >= _N:
        for kk in range(_N - _M):
            y = (state[1 + kk] & _UPPER_MASK) | (state[2 + kk] & _LOWER_MASK)
            state[1 + kk] = state[1 + kk + _M] ^ (y >> 1) ^ (_MATRIX_A if (y & 1) else 0)
        for kk in range(_N - _M, _N - 1):
            y = (state[1 + kk] & _UPPER_MASK) | (state[2 + kk] & _LOWER_MASK)
            state[1 + kk] = state[1 + kk + (_M - _N)] ^ (y >> 1) ^ (_MATRIX_A if (y & 1) else 0)
        y = (state[_N] & _UPPER_MASK) | (state[1] & _LOWER_MASK)
        state[_N] = state[_M] ^ (y >> 1) ^ (_MATRIX_A if (y & 1) else 0)
        mti = 0
    y = state[1 + mti]
    y ^= y >> 11
    y ^= (y << 7) & _TEMPERING_MASK_B
    y ^= (y << 15) & _TEMPERING_MASK_C
    y ^= y >> 18
    state[0] = mti + 1
    return y


@njit(cache=True)
def unif_rand(state: np.ndarray) -> float:
    """R's ``unif_rand()``: a Mersenne-Twister uniform on the open interval (0, 1)."""
    x = float(_mt_next(state)) * _TWO_POW_M32
    if x <= 0.0:
        return 0.5 * _I2_32M1
    if 1.0 - x <= 0.0:
        return 1.0 - 0.5 * _I2_32M1
    return x


@njit(cache=True)
def qnorm(p: float) -> float:
    """Standard normal quantile, R's ``qnorm(p)`` (Wichura's AS 241, lower tail, not log).

    Parameters
    ----------
    p
        Probability in [0, 1].

    Returns
    -------
    float
        ``z`` with ``pnorm(z) = p``; -inf / inf at 0 / 1 and nan outside [0, 1].
    """
    if math.isnan(p) or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = r * 2509.0809287301226727 + 33430.575583588128105
        num = num * r + 67265.770927008700853
        num = num * r + 45921.953931549871457
        num = num * r + 13731.693765509461125
        num = num * r + 1971.5909503065514427
        num = num * r + 133.14166789178437745
        num = num * r + 3.387132872796366608
        den = r * 5226.495278852854561 + 28729.085735721942674
        den = den * r + 39307.89580009271061
        den = den * r + 21213.794301586595867
        den = den * r + 5394.1960214247511077
        den = den * r + 687.1870074920579083
        den = den * r + 42.313330701600911252
        den = den * r + 1.0
        return q * num / den
    if q > 0:
        r = 0.5 - p + 0.5  # R_DT_CIv(p) = 1 - p
    else:
        r = p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r += -1.6
        num = r * 7.7454501427834140764e-4 + 0.0227238449892691845833
        num = num * r + 0.24178072517745061177
        num = num * r + 1.27045825245236838258
        num = num * r + 3.64784832476320460504
        num = num * r + 5.7694972214606914055
        num = num * r + 4.6303378461565452959
        num = num * r + 1.42343711074968357734
        den = r * 1.05075007164441684324e-9 + 5.475938084995344946e-4
        den = den * r + 0.0151986665636164571966
        den = den * r + 0.14810397642748007459
        den = den * r + 0.68976733498510000455
        den = den * r + 1.6763848301838038494
        den = den * r + 2.05319162663775882187
        den = den * r + 1.0
    else:
        r += -5.0
        num = r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5
        num = num * r + 0.0012426609473880784386
        num = num * r + 0.026532189526576123093
        num = num * r + 0.29656057182850489123
        num = num * r + 1.7848265399172913358
        num = num * r + 5.4637849111641143699
        num = num * r + 6.6579046435011037772
        den = r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7
        den = den * r + 1.8463183175100546818e-5
        den = den * r + 7.868691311456132591e-4
        den = den * r + 0.0148753612908506148525
        den = den * r + 0.13692988092273580531
        den = den * r + 0.59983220655588793769
        den = den * r + 1.0
    val = num / den
    if q < 0.0:
        val = -val
    return val


@njit(cache=True)
def norm_rand(state: np.ndarray) -> float:
    """R's ``norm_rand()`` with the default ``"Inversion"`` kind (two uniforms per normal)."""
    u = unif_rand(state)
    u = float(int(_BIG * u)) + unif_rand(state)
    return qnorm(u / _BIG)


@njit(cache=True)
def exp_rand(state: np.ndarray) -> float:
    """R's ``exp_rand()``: standard exponential by Ahrens & Dieter (1972), algorithm SA."""
    a = 0.0
    u = unif_rand(state)
    while u <= 0.0 or u >= 1.0:
        u = unif_rand(state)
    while True:
        u += u
        if u > 1.0:
            break
        a += _EXP_Q[0]
    u -= 1.0
    if u <= _EXP_Q[0]:
        return a + u
    i = 0
    ustar = unif_rand(state)
    umin = ustar
    while True:
        ustar = unif_rand(state)
        if ustar < umin:
            umin = ustar
        i += 1
        if not (u > _EXP_Q[i]):
            break
    return a + umin * _EXP_Q[0]


@njit(cache=True)
def rgamma(state: np.ndarray, a: float, scale: float) -> float:
    """R's ``rgamma(1, shape = a, scale = scale)``: GD (a >= 1) or GS (a < 1) of Ahrens & Dieter."""
    sqrt32 = 5.656854
    exp_m1 = 0.36787944117144232159
    q1 = 0.04166669
    q2 = 0.02083148
    q3 = 0.00801191
    q4 = 0.00144121
    q5 = -7.388e-5
    q6 = 2.4511e-4
    q7 = 2.424e-4
    a1 = 0.3333333
    a2 = -0.250003
    a3 = 0.2000062
    a4 = -0.1662921
    a5 = 0.1423657
    a6 = -0.1367177
    a7 = 0.1233795

    if math.isnan(a) or math.isnan(scale):
        return math.nan
    if a <= 0.0 or scale <= 0.0:
        if scale == 0.0 or a == 0.0:
            return 0.0
        return math.nan
    if not math.isfinite(a) or not math.isfinite(scale):
        return math.inf

    if a < 1.0:  # GS algorithm for 0 < a < 1
        e = 1.0 + exp_m1 * a
        while True:
            p = e * unif_rand(state)
            if p >= 1.0:
                x = -math.log((e - p) / a)
                if exp_rand(state) >= (1.0 - a) * math.log(x):
                    break
            else:
                x = math.exp(math.log(p) / a)
                if exp_rand(state) >= x:
                    break
        return scale * x

    # GD algorithm, step 1
    s2 = a - 0.5
    s = math.sqrt(s2)
    d = sqrt32 - s * 12.0
    # step 2: immediate acceptance
    t = norm_rand(state)
    x = s + 0.5 * t
    ret_val = x * x
    if t >= 0.0:
        return scale * ret_val
    # step 3: squeeze acceptance
    u = unif_rand(state)
    if d * u <= t * t * t:
        return scale * ret_val
    # step 4
    r = 1.0 / a
    q0 = ((((((q7 * r + q6) * r + q5) * r + q4) * r + q3) * r + q2) * r + q1) * r
    if a <= 3.686:
        b = 0.463 + s + 0.178 * s2
        si = 1.235
        c = 0.195 / s - 0.079 + 0.16 * s
    elif a <= 13.022:
        b = 1.654 + 0.0076 * s2
        si = 1.68 / s + 0.275
        c = 0.062 / s + 0.024
    else:
        b = 1.77
        si = 0.75
        c = 0.1515 / s
    # steps 5-7: quotient acceptance
    if x > 0.0:
        v = t / (s + s)
        if abs(v) <= 0.25:
            q = q0 + 0.5 * t * t * ((((((a7 * v + a6) * v + a5) * v + a4) * v + a3) * v + a2) * v + a1) * v
        else:
            q = q0 - s * t + 0.25 * t * t + (s2 + s2) * math.log(1.0 + v)
        if math.log(1.0 - u) <= q:
            return scale * ret_val
    # steps 8-11: double-exponential rejection
    while True:
        e = exp_rand(state)
        u = unif_rand(state)
        u = u + u - 1.0
        if u < 0.0:
            t = b - si * e
        else:
            t = b + si * e
        if t >= -0.71874483771719:
            v = t / (s + s)
            if abs(v) <= 0.25:
                q = q0 + 0.5 * t * t * ((((((a7 * v + a6) * v + a5) * v + a4) * v + a3) * v + a2) * v + a1) * v
            else:
                q = q0 - s * t + 0.25 * t * t + (s2 + s2) * math.log(1.0 + v)
            if q > 0.0:
                w = math.expm1(q)
                if c * abs(u) <= w * math.exp(e - 0.5 * t * t):
                    break
    x = s + 0.5 * t
    return scale * x * x


@njit(cache=True)
def rchisq(state: np.ndarray, n: int, df: float) -> np.ndarray:
    """R's ``rchisq(n, df)``: ``n`` draws of ``rgamma(df / 2, scale = 2)``.

    Parameters
    ----------
    state
        Generator state from :func:`set_seed`, advanced in place.
    n
        Number of draws.
    df
        Degrees of freedom (>= 0).

    Returns
    -------
    numpy.ndarray
        The draws.
    """
    out = np.empty(n)
    for i in range(n):
        if not math.isfinite(df) or df < 0.0:
            out[i] = math.nan
        else:
            out[i] = rgamma(state, df / 2.0, 2.0)
    return out


@njit(cache=True)
def rnorm(state: np.ndarray, n: int, mean: float, sd: float) -> np.ndarray:
    """R's ``rnorm(n, mean, sd)``; ``sd == 0`` returns ``mean`` without consuming the stream.

    Parameters
    ----------
    state
        Generator state from :func:`set_seed`, advanced in place.
    n
        Number of draws.
    mean, sd
        Mean and standard deviation.

    Returns
    -------
    numpy.ndarray
        The draws.
    """
    out = np.empty(n)
    for i in range(n):
        if math.isnan(mean) or not math.isfinite(sd) or sd < 0.0:
            out[i] = math.nan
        elif sd == 0.0 or not math.isfinite(mean):
            out[i] = mean
        else:
            out[i] = mean + sd * norm_rand(state)
    return out


@njit(cache=True)
def runif(state: np.ndarray, n: int) -> np.ndarray:
    """R's ``runif(n)`` on (0, 1).

    Parameters
    ----------
    state
        Generator state from :func:`set_seed`, advanced in place.
    n
        Number of draws.

    Returns
    -------
    numpy.ndarray
        The draws.
    """
    out = np.empty(n)
    for i in range(n):
        out[i] = unif_rand(state)
    return out
