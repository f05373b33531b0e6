"""The numerical building blocks of the DESeq2 kernels, each against a reference implementation:
vectorisable log/exp (libm), lgamma/digamma terms (SciPy), order statistics (NumPy), the count
tallies and the packed design products."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit
from scipy import special as sp

from pbglm._kernels import special
from pbglm._kernels.small_linalg import gram, gram_pair, hat_values, lower_inverse, packed_outer, trace_solve
from pbglm._kernels.vector_math import fast_exp, fast_log, fast_log1p, total
from pbglm._numerics.selection import median, trimmed_mean

RNG = np.random.default_rng(20261124)


@njit
def _map(f, x):
    out = np.empty_like(x)
    for j in range(x.shape[0]):
        out[j] = f(x[j])
    return out


def _ulps(actual, expected):
    return np.abs(actual - expected) / np.spacing(np.abs(expected))


def test_fast_log_within_one_ulp_of_libm():
    x = np.concatenate([np.exp(RNG.uniform(-700, 700, 20000)), RNG.uniform(0.5, 2.0, 20000),
                        1.0 + RNG.uniform(-1e-6, 1e-6, 1000), [1.0, 2.0, 0.5, 1e-300, 1e300]])
    expected = np.log(x)
    ok = expected != 0
    assert _ulps(_map(fast_log, x)[ok], expected[ok]).max() <= 1.0
    assert _map(fast_log, np.array([1.0]))[0] == 0.0


def test_fast_log1p_accurate_for_tiny_arguments():
    x = np.concatenate([np.exp(RNG.uniform(-40, 10, 20000)), -RNG.uniform(0, 0.999, 5000)])
    assert _ulps(_map(fast_log1p, x), np.log1p(x)).max() <= 1.0


def test_fast_exp_within_one_ulp_and_clamped():
    x = np.concatenate([RNG.uniform(-700, 700, 20000), RNG.uniform(-2, 2, 20000), [0.0, 1e-20, -1e-20]])
    assert _ulps(_map(fast_exp, x), np.exp(x)).max() <= 1.0
    big = _map(fast_exp, np.array([800.0, -800.0]))
    assert np.isfinite(big).all() and big[0] == math.exp(709.0) and big[1] == math.exp(-708.0)


def test_total_is_the_sum():
    x = RNG.normal(size=1001)
    assert total(x) == pytest.approx(math.fsum(x), rel=1e-13)


@pytest.mark.parametrize("r", [1e-4, 0.3, 2.0, 9.5, 40.0, 1e6])
def test_lgamma_and_digamma_terms_match_scipy(r):
    y = np.concatenate([np.arange(0, 60), [100, 1000, 12345]]).astype(float)
    hist = np.empty(special.DIGAMMA_TABLE)
    top = special.small_count_histogram(y, hist)
    lg_small, dg_small = special.small_count_sums(r, hist, top)
    lgr, dgr = special.lgamma(r), special.digamma(r)
    assert lgr == pytest.approx(sp.gammaln(r), rel=1e-14, abs=1e-14)
    assert dgr == pytest.approx(sp.digamma(r), rel=1e-13, abs=1e-13)
    lg_large = sum(special.lgamma_diff_large(v, v + r, math.log(v + r), 1 / (v + r), lgr) for v in y)
    dg_large = sum(special.digamma_diff_large(v, math.log(v + r), 1 / (v + r), dgr) for v in y)
    expected_lg = np.sum(sp.gammaln(y + r) - sp.gammaln(r))
    expected_dg = np.sum(sp.digamma(y + r) - sp.digamma(r))
    # absolute tolerances: the direct differences lose digits for r >> y; the finite sums do not
    assert lg_small + lg_large == pytest.approx(expected_lg, rel=1e-12, abs=1e-8 * max(1.0, r * 1e-6))
    assert dg_small + dg_large == pytest.approx(expected_dg, rel=1e-10, abs=1e-8)
    log_fact = special.log_factorial_small(hist) + sum(special.log_factorial_large(v) for v in y)
    assert log_fact == pytest.approx(np.sum(sp.gammaln(y + 1)), rel=1e-13)


@pytest.mark.parametrize("spread", [5, 300, 100000])
def test_large_count_values_tally(spread):
    y = np.concatenate([RNG.integers(0, 10, 50), 10 + RNG.integers(0, spread, 350)]).astype(float)
    values = np.empty(y.size)
    freq = np.empty(y.size)
    n = special.large_count_values(y, values, freq)
    big = y[y >= special.LGAMMA_TABLE]
    assert freq[:n].sum() == big.size
    got = np.repeat(values[:n], freq[:n].astype(int))
    np.testing.assert_array_equal(np.sort(got), np.sort(big))
    assert special.large_count_values(np.zeros(7), values, freq) == 0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 12, 400, 401])
def test_median_and_trimmed_mean_match_numpy(n):
    for ties in (True, False):
        x = RNG.integers(0, 4, n).astype(float) if ties else RNG.normal(size=n)
        assert median(x.copy(), n) == np.median(x)
        cut = n // 8
        expected = np.sort(x)[cut:n - cut].mean()
        assert trimmed_mean(x.copy(), n, cut) == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_packed_design_products_give_the_gram_matrix():
    m = 40
    batch = RNG.integers(0, 3, m)
    X = np.column_stack([np.ones(m), batch == 1, batch == 2, RNG.uniform(20, 60, m), RNG.integers(0, 2, m)])
    X = X.astype(float)
    rows, entry = packed_outer(X)
    assert rows.shape[0] < X.shape[1] * (X.shape[1] + 1) // 2  # repeated and zero products dropped
    assert (entry == -1).any()
    w, v = RNG.uniform(0.1, 5, m), RNG.uniform(0.1, 5, m)
    p = X.shape[1]
    A, B = np.empty((p, p)), np.empty((p, p))
    gram(rows, entry, w, p, A, np.empty(rows.shape[0]))
    np.testing.assert_allclose(A, X.T @ (w[:, None] * X), rtol=1e-13)
    gram_pair(rows, entry, w, v, p, A, B, np.empty((2, rows.shape[0])))
    np.testing.assert_allclose(B, X.T @ (v[:, None] * X), rtol=1e-13)
    M = np.linalg.inv(A)
    h = np.empty(m)
    hat_values(rows, entry, M, w, p, h, np.empty(rows.shape[0]))
    np.testing.assert_allclose(h, w * np.einsum("ja,ab,jb->j", X, M, X), rtol=1e-11)
    L = np.linalg.cholesky(A)
    Linv = np.empty((p, p))
    lower_inverse(L, Linv)
    np.testing.assert_allclose(Linv, np.linalg.inv(L), rtol=1e-10, atol=1e-14)
    assert trace_solve(Linv, B) == pytest.approx(np.trace(np.linalg.solve(A, B)), rel=1e-11)
