"""Property-based probes (hypothesis) and invariances, both methods.

Small count matrices (2-12 samples, many zeros) with random designs of 1-3 factors or
covariates: ``tl.fit`` + ``tl.test`` either give NA-consistent results or raise a
ValueError/KeyError/TypeError with a message, never another exception, within a deadline.
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pbglm as pb  # noqa: E402

ALLOWED = (ValueError, KeyError, TypeError)
# 60 fixed examples per method (a few seconds once compiled); PBGLM_FUZZ_EXAMPLES=500 probes deeper (random)
FUZZ = settings(max_examples=int(os.environ.get("PBGLM_FUZZ_EXAMPLES", 60)), deadline=timedelta(seconds=20),
                derandomize="PBGLM_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def datasets(draw):
    n = draw(st.integers(2, 12))
    g = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    zero_p = draw(st.sampled_from([0.0, 0.3, 0.6, 0.9]))
    X = rng.negative_binomial(2, 2 / (2 + rng.uniform(0.5, 500, g)), (n, g)).astype(np.int64)
    X[rng.random((n, g)) < zero_p] = 0
    obs = {}
    terms = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["factor", "factor", "numeric"]))
        if kind == "factor":
            levels = draw(st.integers(2, 3))
            obs[f"f{i}"] = [f"l{v}" for v in rng.integers(0, levels, n)]
        else:
            obs[f"x{i}"] = rng.normal(size=n).round(2)
        terms.append(next(reversed(obs)))
    adata = ad.AnnData(X=sp.csr_matrix(X) if draw(st.booleans()) else X,
                       obs=pd.DataFrame(obs, index=[f"s{i}" for i in range(n)]),
                       var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))
    return adata, "~ " + " + ".join(terms)


def _check_results(res: pd.DataFrame) -> None:
    p, q = res["pvalue"].to_numpy(), res["padj"].to_numpy()
    fin = np.isfinite(p)
    assert np.all(np.isnan(p[~fin])), "p-values are finite or NaN"
    assert np.all((p[fin] >= 0) & (p[fin] <= 1))
    assert np.all(np.isnan(q[~fin])), "padj is NaN where the p-value is"
    both = fin & np.isfinite(q)
    assert np.all(q[both] >= p[both] - 1e-12) and np.all(q[both] <= 1 + 1e-12)
    assert np.all(np.isfinite(res["log2fc"].to_numpy()[fin])), "a tested gene has a log2 fold change"


def _probe(adata, design, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pb.tl.fit(adata, design, method=method)
            cols = [c for c in adata.uns["pbglm"]["design_columns"] if c != "Intercept"]
            if not cols:  # a factor with one level drawn: an intercept-only fit has nothing to test
                return None
            pb.tl.test(adata, cols[-1], name="t")
        except ALLOWED as err:
            assert str(err).strip(), f"{type(err).__name__} without a message"
            return None
    return pb.get.results(adata, "t")


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Compile the kernels once, outside the hypothesis deadline."""
    rng = np.random.default_rng(0)
    a = ad.AnnData(X=rng.poisson(20, (6, 20)), obs=pd.DataFrame({"c": list("aabbab")}, index=list("uvwxyz")))
    for method in ("deseq2", "edger"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = a.copy()
            pb.tl.fit(b, "~ c", method=method)
            pb.tl.test(b, ("c", "b", "a"))


@pytest.mark.parametrize("method", ["deseq2", "edger"])
@FUZZ
@given(data=datasets())
def test_fuzz_results_consistent_or_clear_error(method, data):
    adata, design = data
    res = _probe(adata, design, method)
    if res is not None:
        _check_results(res)


# --------------------------------------------------------------------------------------------------
# invariances on one data set


def _base(seed=7, n=10, g=60):
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(4, 4 / (4 + rng.uniform(5, 400, g)), (n, g)).astype(np.int64)
    X[rng.random((n, g)) < 0.2] = 0
    obs = pd.DataFrame({"cond": ["a", "b"] * (n // 2), "batch": ["x"] * (n // 2) + ["y"] * (n // 2)},
                       index=[f"s{i}" for i in range(n)])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))


def _res(adata, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pb.tl.fit(adata, "~ batch + cond", method=method)
        pb.tl.test(adata, ("cond", "b", "a"), name="t")
    return pb.get.results(adata, "t")[["log2fc", "lfc_se", "pvalue", "padj"]]


def _same(a: pd.DataFrame, b: pd.DataFrame, rtol=1e-6) -> None:
    b = b.loc[a.index]
    for c in a.columns:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=rtol, atol=1e-10, err_msg=c)


@pytest.mark.parametrize("method", ["deseq2", "edger"])
def test_invariances(method):
    base = _base()
    ref = _res(base.copy(), method)
    rng = np.random.default_rng(1)
    perm_s = base[rng.permutation(base.n_obs)].copy()
    _same(ref, _res(perm_s, method))
    perm_g = base[:, rng.permutation(base.n_vars)].copy()
    _same(ref, _res(perm_g, method))
    as_float = base.copy()
    as_float.X = as_float.X.astype(np.float32)
    _same(ref, _res(as_float, method), rtol=0)
    as_sparse = base.copy()
    as_sparse.X = sp.csr_matrix(as_sparse.X)
    _same(ref, _res(as_sparse, method), rtol=0)
    zeros = ad.AnnData(X=np.zeros((base.n_obs, 5), dtype=np.int64), obs=base.obs,
                       var=pd.DataFrame(index=[f"z{j}" for j in range(5)]))
    padded = ad.concat([base, zeros], axis=1, merge="same")
    padded.obs = base.obs.copy()
    got = _res(padded, method)
    assert got.loc[zeros.var_names, "pvalue"].isna().all()
    _same(ref, got)
