"""edgeR 4's QL method (``method="edger"``, ``legacy=False``): numerics pieces, API and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

import pbglm as pb
from pbglm._kernels.ql_adjusted_deviance import _gamma_limit, deviance_moments, moment_table, moments_at
from pbglm._numerics.brent import r_optimize


def _moments_by_scipy(mu, phi):
    size = 1 / phi
    sd = math.sqrt(mu + phi * mu * mu)
    y = np.arange(int(mu + 80 * sd + 200) + 1.0)
    pr = stats.nbinom.pmf(y, size, size / (size + mu))
    d = 2 * (special.xlogy(y, y / mu) - (y + size) * np.log((y + size) / (mu + size)))
    e = (pr * d).sum()
    v = (pr * (d - e) ** 2).sum()
    return 2 * e / v, 2 * e * e / v


@pytest.mark.parametrize("phi", [0.01, 0.2, 1.0])
def test_deviance_moments_exact_and_tabulated(phi):
    table = moment_table(phi)
    lim = _gamma_limit(phi)
    for mu in (0.0005, 0.05, 0.77, 3.3, 17.7, 123.4, 999.0, 1500.0, 4000.0):
        ea, ek = _moments_by_scipy(mu, phi)
        a, k = deviance_moments(mu, phi)
        assert a == pytest.approx(ea, rel=1e-10) and k == pytest.approx(ek, rel=1e-10)
        ta, tk = moments_at(mu, phi, table, *lim)
        assert ta == pytest.approx(ea, rel=5e-7) and tk == pytest.approx(ek, rel=5e-7)


def test_gamma_limit_is_the_large_mean_limit():
    a, k = deviance_moments(2e5, 0.05)
    la, lk = _gamma_limit(0.05)
    assert a == pytest.approx(la, rel=1e-4) and k == pytest.approx(lk, rel=1e-4)


def test_r_optimize_matches_r():
    # R: optimize(function(x) (x-1/3)^2 + sin(5*x), c(0, 2))$minimum
    assert r_optimize(lambda x: (x - 1 / 3) ** 2 + math.sin(5 * x), 0, 2) == pytest.approx(0.89700952006365287,
                                                                                          rel=1e-15)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(7)
    G, m = 400, 8
    mu = np.exp(rng.normal(4, 1.5, G))[:, None] * np.ones(m)
    cond = np.repeat(["a", "b"], 4)
    mu[:40, 4:] *= 4
    y = rng.negative_binomial(1 / 0.1, 1 / (1 + 0.1 * mu))
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame({"condition": pd.Categorical(cond), "batch": np.tile(["x", "y"], 4)},
                       index=[f"s{i}" for i in range(m)])
    return ad.AnnData(X=y.T.astype(np.int64), obs=obs)


def test_default_is_edger4_and_legacy_is_recorded(small):
    a = small.copy()
    pb.tl.fit(a, "~ batch + condition", method="edger")
    assert a.uns["pbglm"]["fit"]["edger_ql"].startswith("edgeR 4.5 QL")
    assert a.uns["pbglm"]["params"]["legacy"] is False or a.uns["pbglm"]["params"]["legacy"] == 0
    assert a.uns["pbglm"]["fit"]["ql_robust"] in (False, 0)
    pb.tl.test(a, ("condition", "b", "a"))
    res = pb.get.results(a, "condition_b_vs_a")
    assert (res["padj"].iloc[:40] < 0.1).mean() > 0.8
    b = small.copy()
    pb.tl.fit(b, "~ batch + condition", method="edger", legacy=True)
    assert b.uns["pbglm"]["fit"]["edger_ql"].startswith("legacy")
    assert b.uns["pbglm"]["fit"]["ql_robust"] in (True, 1)
    c = small.copy()
    pb.tl.fit(c, "~ batch + condition", method="edger", robust=True)
    assert c.uns["pbglm"]["fit"]["ql_robust"] in (True, 1)


def test_edger4_lrt_treat_and_joint(small):
    a = small.copy()
    pb.tl.fit(a, "~ batch + condition", method="edger")
    pb.tl.test(a, ("condition", "b", "a"), name="qlf")
    pb.tl.test(a, ("condition", "b", "a"), name="lrt", kind="lrt")
    pb.tl.test(a, ("condition", "b", "a"), name="treat", lfc_threshold=1.0)
    pb.tl.test(a, drop=["batch[y]", "condition[b]"], name="joint")
    q, lr, tr = (pb.get.results(a, n) for n in ("qlf", "lrt", "treat"))
    assert not np.allclose(q["pvalue"], lr["pvalue"], equal_nan=True)
    ok = q["pvalue"].notna()
    assert (tr["pvalue"][ok] >= q["pvalue"][ok] - 1e-12).all()
    assert a.uns["pbglm"]["tests"]["joint"]["df"] == 2


def test_bad_input_edger4(small):
    a = small.copy()
    with pytest.raises(ValueError, match="legacy=, robust= and normalize= are edgeR options"):
        pb.tl.fit(a, "~ condition", method="deseq2", legacy=True)
    with pytest.raises(ValueError, match="legacy=, robust= and normalize= are edgeR options"):
        pb.tl.fit(a, "~ condition", method="deseq2", robust=True)
    pb.tl.fit(a, "~ condition", method="edger")
    with pytest.raises(ValueError, match="lfc_threshold= with kind='lrt' is not available"):
        pb.tl.test(a, ("condition", "b", "a"), kind="lrt", lfc_threshold=1.0)
    with pytest.raises(ValueError, match="alt='less' is not available for edgeR"):
        pb.tl.test(a, ("condition", "b", "a"), lfc_threshold=1.0, alt="less")
    with pytest.raises(ValueError, match=r"Thresholded tests \(lfc_threshold > 0\) test one contrast"):
        pb.tl.test(a, drop=["condition[b]", "Intercept"], lfc_threshold=1.0)
    sat = small[[0, 4]].copy()
    with pytest.raises(ValueError, match="residual degrees of freedom"):
        pb.tl.fit(sat, "~ condition", method="edger")


def test_dispersions_plot_of_edger4_fit(small):
    import matplotlib

    matplotlib.use("Agg")
    a = small.copy()
    pb.tl.fit(a, "~ batch + condition", method="edger")
    ax = pb.pl.dispersions(a)
    assert ax.get_ylabel() == "quarter-root mean deviance"
    assert len(ax.collections) == 2 and len(ax.lines) == 1
    with pytest.raises(ValueError, match="edgeR 4 QL fit has one NB dispersion"):
        pb.pl.dispersions(a, kind="bcv")
