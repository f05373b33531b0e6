"""edgeR QL pipeline on plain arrays: parity with R's edgeR 3.40 and the kernels' own invariants.

The R tables are ``tests/reference/out/edger_<case>_*`` (see ``tests/reference/README.md``); the
design is R's own model matrix (``designMatrix`` in the params JSON), so these tests do not
depend on pbglm's formula handling.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pbglm._kernels import edger_glm as K
from pbglm._methods._result import FitResult
from pbglm._methods.edger import edger_test, fit_edger
from pbglm._numerics.ave_log_cpm import ave_log_cpm
from pbglm._numerics.edger_dispersion import (
    estimate_disp,
    locfit_deg0,
    maximize_interpolant,
    residual_df_zeros,
    zero_patterns,
)
from pbglm._numerics.filter_by_expr import filter_by_expr_mask, hat_values
from pbglm._numerics.lowess import lowess as lowess_r
from pbglm._numerics.squeeze_var import fit_f_dist, log_f_sf, log_t_sf, squeeze_var
from pbglm._numerics.tmm import calc_norm_factors_tmm

REF = Path(__file__).parent / "reference"
OUT = REF / "out"
CASES = [c["case"] for c in json.loads((REF / "cases.json").read_text()) if c.get("edger")]
CASES = [c for c in CASES if (OUT / f"edger_{c}_params.json").exists()]
pytestmark = pytest.mark.skipif(not CASES, reason="no edgeR reference tables in tests/reference/out")


# ---------------------------------------------------------------------------------------------
# loading a reference case
# ---------------------------------------------------------------------------------------------


@cache
def _counts(dataset: str) -> pd.DataFrame:
    """Genes x samples counts of a reference data set."""
    if dataset in ("airway", "pasilla"):
        import pbglm

        a = getattr(pbglm.datasets, dataset)()
        return pd.DataFrame(np.asarray(a.X).T, index=a.var_names, columns=a.obs_names)
    return pd.read_csv(REF / "data" / f"{dataset}_counts.csv.gz", index_col=0)


@cache
def case_data(case: str):
    """``(counts G x m, design m x p, params)`` of a case, samples in R's order."""
    params = json.loads((OUT / f"edger_{case}_params.json").read_text())
    counts = _counts(params["dataset"]).loc[:, params["samples"]]
    design = np.asarray(params["designMatrix"], dtype=float)
    return np.ascontiguousarray(counts.to_numpy(dtype=float)), design, params


@cache
def ref_genes(case: str) -> pd.DataFrame:
    return pd.read_csv(OUT / f"edger_{case}_genes.csv.gz", index_col=0)


@cache
def fitted(case: str) -> tuple[FitResult, np.ndarray, np.ndarray]:
    """pbglm's fit of a case: ``(FitResult, filtered counts, design)``."""
    counts, design, _ = case_data(case)
    keep = filter_by_expr_mask(counts, design)
    y = np.ascontiguousarray(counts[keep])
    return fit_edger(y, design), y, design


def _rel(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(a / b - 1)
    return np.where(a == b, 0.0, r)


def _contrast(params: dict, test: str) -> np.ndarray:
    """The contrast vector (or matrix for a joint test) R used, over the design columns."""
    info = params["tests"][test]
    cols = params["designColnames"]
    if info.get("contrastVectorFull"):
        return np.array([info["contrastVectorFull"][c] for c in cols], dtype=float)
    coefs = info["coef"]
    C = np.zeros((len(cols), len(coefs)))
    for k, name in enumerate(coefs):
        C[cols.index(name), k] = 1.0
    return C[:, 0] if C.shape[1] == 1 else C


def _edger_tests():
    out = []
    for case in CASES:
        params = case_data(case)[2]
        for name, info in params["tests"].items():
            out.append((case, name, info["kind"]))
    return out


# ---------------------------------------------------------------------------------------------
# parity with R, per step
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_filter_by_expr_keeps_the_same_genes(case):
    counts, design, _ = case_data(case)
    keep = filter_by_expr_mask(counts, design)
    np.testing.assert_array_equal(keep, ref_genes(case)["keep"].to_numpy())


@pytest.mark.parametrize("case", CASES)
def test_tmm_factors(case):
    counts, design, _ = case_data(case)
    samples = pd.read_csv(OUT / f"edger_{case}_samples.csv", index_col=0)
    # unfiltered, default library sizes
    nf0 = calc_norm_factors_tmm(counts)
    assert _rel(nf0, samples["norm_factors_unfiltered"]).max() < 1e-6
    # after filterByExpr with keep.lib.sizes = FALSE
    keep = filter_by_expr_mask(counts, design)
    lib = counts[keep].sum(axis=0)
    np.testing.assert_allclose(lib, samples["lib_size"], rtol=1e-12)
    nf = calc_norm_factors_tmm(counts[keep], lib)
    assert _rel(nf, samples["norm_factors"]).max() < 1e-6


@pytest.mark.parametrize("case", CASES)
def test_dispersions_and_ql_hyperparameters(case):
    fr, y, design = fitted(case)
    params = case_data(case)[2]
    g = ref_genes(case)
    g = g[g["keep"]]
    gi = fr.gene_info
    assert abs(fr.params["dispersion_common"] / params["commonDispersion"] - 1) < 1e-4
    assert abs(fr.params["disp_prior_df"] / params["priorDf"] - 1) < 1e-3
    # AveLogCPM uses the common dispersion, which the path-following APL reproduces to ~1e-5
    np.testing.assert_allclose(gi["ave_log_cpm"], g["AveLogCPM"], atol=1e-4)
    np.testing.assert_array_equal(gi["df_residual"], g["df_residual"])
    for mine, theirs, med, top in [
        ("dispersion_trend", "trended_dispersion", 1e-4, 2e-3),
        ("dispersion_tagwise", "tagwise_dispersion", 1e-3, 2e-2),
        ("ql_dispersion", "ql_s2", 1e-4, 2e-3),
        ("ql_dispersion_prior", "s2_prior", 1e-4, 2e-3),
        ("ql_dispersion_post", "s2_post", 1e-4, 2e-3),
    ]:
        r = _rel(gi[mine], g[theirs])
        assert np.median(r) < med, (mine, np.median(r))
        assert np.quantile(r, 0.99) < top, (mine, np.quantile(r, 0.99))
    df_prior = g["df_prior"].to_numpy()
    fin = np.isfinite(df_prior)
    np.testing.assert_array_equal(np.isfinite(gi["df_prior"]), fin)
    assert np.median(_rel(gi["df_prior"][fin], df_prior[fin])) < 1e-4 if fin.any() else True
    # coefficients: edgeR's reported (prior.count 0.125) log2 values
    cols = params["designColnames"]
    coef = np.column_stack([g[f"coef_{c}"] for c in cols]) / math.log(2)
    informative = g["AveLogCPM"].to_numpy() > 0
    assert np.median(np.abs(fr.coef - coef)[informative]) < 1e-5
    assert np.quantile(np.abs(fr.coef - coef)[informative], 0.99) < 1e-3


@pytest.mark.parametrize(("case", "test", "kind"), _edger_tests())
def test_edger_tests_match_r(case, test, kind):
    fr, y, design = fitted(case)
    params = case_data(case)[2]
    ref = pd.read_csv(OUT / f"edger_{case}_test_{test}.csv.gz", index_col=0)
    spec = params["tests"][test]["spec"]
    res = edger_test(y, design, fr, _contrast(params, test), kind=kind, lfc=spec.get("lfc", 0.0))
    p, pr = res["pvalue"], ref["PValue"].to_numpy()
    assert stats.spearmanr(p, pr)[0] >= 0.999
    sig, sig_r = res["padj"] < 0.1, ref["FDR"].to_numpy() < 0.1
    union = (sig | sig_r).sum()
    assert union == 0 or (sig & sig_r).sum() / union >= 0.97
    assert np.median(_rel(p, pr)) < 0.02
    np.testing.assert_allclose(res["log_cpm"], ref["logCPM"], atol=1e-4)
    lfc_col = "logFC" if "logFC" in ref else next(c for c in ref if c.startswith("logFC."))
    assert np.median(np.abs(res["log2fc"] - ref[lfc_col])) < 1e-5
    if kind == "qlf":
        assert np.median(_rel(res["stat"], ref["F"])) < 0.01
    elif kind == "lrt":
        assert np.median(_rel(res["stat"], ref["LR"])) < 0.01


# ---------------------------------------------------------------------------------------------
# numerics against the reference tables (one step at a time, R's inputs)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[:4])
def test_squeeze_var_robust_with_trend_matches_limma(case):
    g = ref_genes(case)
    g = g[g["keep"]]
    sq = squeeze_var(
        g["ql_s2"].to_numpy(), g["df_residual"].to_numpy(), covariate=g["AveLogCPM"].to_numpy(), robust=True
    )
    assert _rel(sq["var_prior"], g["s2_prior"]).max() < 1e-6
    assert _rel(sq["var_post"], g["s2_post"]).max() < 1e-6
    fin = np.isfinite(g["df_prior"].to_numpy())
    assert _rel(sq["df_prior"][fin], g["df_prior"].to_numpy()[fin]).max() < 1e-5


@pytest.mark.parametrize("case", CASES[:3])
def test_ave_log_cpm_matches_edger(case):
    fr, y, _ = fitted(case)
    lib = fr.sample_info["lib_size"] * fr.sample_info["norm_factors"]
    alc = ave_log_cpm(y, lib, dispersion=case_data(case)[2]["commonDispersion"])
    g = ref_genes(case)
    np.testing.assert_allclose(alc, g.loc[g["keep"], "AveLogCPM"], atol=2e-7)


# ---------------------------------------------------------------------------------------------
# the kernels' own invariants
# ---------------------------------------------------------------------------------------------


def _sim(G=300, m=12, p=4, seed=0, disp=0.1):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(m), rng.integers(0, 2, (m, p - 1))]).astype(float)
    while np.linalg.matrix_rank(X) < p:
        X = np.column_stack([np.ones(m), rng.integers(0, 2, (m, p - 1))]).astype(float)
    beta = np.column_stack([rng.normal(3, 2, G), rng.normal(0, 0.7, (G, p - 1))])
    lib = rng.uniform(0.5, 2, m)
    mu = np.exp(beta @ X.T) * lib
    y = rng.negative_binomial(1 / disp, 1 / (1 + disp * mu)).astype(float)
    return np.ascontiguousarray(y), X, np.log(lib * 1e6)


def test_fast_fit_matches_reference_levenberg():
    y, X, off = _sim()
    G, p = y.shape[0], X.shape[1]
    disp = np.full(G, 0.1)
    pin = np.linalg.lstsq(X, np.ones(X.shape[0]), rcond=None)[0]
    b1, mu1, dev1, ok = K.fast_fit(y, X, off, disp, np.zeros((G, p)), False, pin, 1e-10, 50, 8)
    b2, mu2, dev2, _, failed = K.levenberg_fit(
        y, X, K.packed_design(X), off, disp, np.zeros((G, p)), False, pin, 1e-10, 250, K.n_chunks(G)
    )
    good = ok & ~failed & (y.sum(axis=1) > 0)
    assert good.mean() > 0.95
    np.testing.assert_allclose(dev1[good], dev2[good], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(mu1[good], mu2[good], rtol=1e-6, atol=1e-8)
    # deviance = edgeR's unit deviances at the fitted means
    np.testing.assert_allclose(dev1[good], K.nb_deviance(y[good], mu1[good], disp[good]), rtol=1e-10, atol=1e-10)


def test_glm_fit_one_way_equals_general_design():
    y, _, off = _sim(G=200, m=12)
    group = np.repeat([0, 1, 2], 4)
    X_cell = np.eye(3)[group]
    X_ref = np.column_stack([np.ones(12), group == 1, group == 2]).astype(float)
    f_oneway = K.glm_fit(y, X_ref, off, 0.2)
    assert f_oneway.method == "oneway"
    f_cell = K.glm_fit(y, X_cell, off, 0.2)
    np.testing.assert_allclose(f_oneway.fitted, f_cell.fitted, rtol=1e-8, atol=1e-10)
    # the same layout with one column scaled is still one-way; compare to the Levenberg fit
    X_lev = np.column_stack([X_ref, np.arange(12.0)])  # a covariate breaks the one-way layout
    assert K.glm_fit(y, X_lev, off, 0.2).method == "levenberg"
    P = K.packed_design(X_ref)
    pin = np.linalg.lstsq(X_ref, np.ones(12), rcond=None)[0]
    b, mu, dev, _, _ = K.levenberg_fit(
        y, X_ref, P, off, np.full(200, 0.2), np.zeros((200, 3)), False, pin, 1e-12, 250, 4
    )
    pos = y.sum(axis=1) > 0
    np.testing.assert_allclose(f_oneway.deviance[pos], dev[pos], rtol=1e-6, atol=1e-6)


def test_apl_grid_fast_matches_reference():
    y, X, off = _sim(G=200, m=16, p=3, seed=3)
    grid = 0.1 * 2.0 ** np.linspace(-10, 10, 21)
    pin = np.linalg.lstsq(X, np.ones(16), rcond=None)[0]
    ref = K.apl_grid_levenberg(y, X, K.packed_design(X), off, grid, pin, 1e-10, 250, 4)
    fast, ok = K.apl_grid_fast(y, X, off, grid, K.lgamma_table(1 / grid, 4096), np.linalg.pinv(X), 1e-10, 1e-4, 30, 8)
    # genes the fast path hands back (e.g. a design cell of zeros) go to the reference kernel
    assert ok.mean() > 0.9
    err = np.abs(fast - ref)[ok]
    assert np.max(err[:, 1:]) < 5e-3
    assert np.median(err) < 1e-5


def test_apl_batch_matches_definition():
    """The APL by hand: NB log-likelihood minus half the log-determinant of X'WX."""
    from scipy.special import gammaln

    y, X, off = _sim(G=5, m=10, p=2, seed=4)
    phi = 0.3
    f = K.glm_fit(y, X, off, phi)
    apl = K.apl_batch(y, f.fitted, np.full(5, phi), X, K.packed_design(X), True, 2)
    r = 1 / phi
    mu = f.fitted
    ll = (gammaln(y + r) - gammaln(r) - gammaln(y + 1) + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))).sum(1)
    w = mu / (1 + phi * mu)
    cr = [0.5 * np.linalg.slogdet(X.T @ (X * w[i][:, None]))[1] for i in range(5)]
    np.testing.assert_allclose(apl, ll - np.array(cr), rtol=1e-10)


def test_vectorised_exp_and_log():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 50, 1000), [-800.0, 0.0, 700.0]])
    out = np.empty_like(x)
    K.vexp(x, out, np.empty(x.size, dtype=np.int64))
    np.testing.assert_allclose(out, np.exp(np.clip(x, -708, 709)), rtol=4e-16)
    z = np.exp(rng.normal(0, 30, 1000))
    lo = np.empty_like(z)
    K.vlog(z, lo, np.empty(z.size, dtype=np.int64), np.empty(z.size))
    np.testing.assert_allclose(lo, np.log(z), rtol=0, atol=2e-15 * np.maximum(1, np.abs(np.log(z))).max())


def test_maximize_interpolant_is_edgers():
    x = np.linspace(-10, 10, 21)
    Y = np.vstack([-((x + 3.3) ** 2), -((x - 2.71) ** 2), -((x - 7.5) ** 2), -((x - 0.3) ** 2) + 0.01 * (x - 0.3) ** 3])
    # maximizeInterpolant(x, Y) in R 4.2 / edgeR 3.40: on exact parabolas the root edgeR's
    # quadratic solver picks degenerates (its 'a' coefficient is ~0), hence the half-way points
    np.testing.assert_allclose(maximize_interpolant(x, Y), [-3.5, 3.0, 7.0, 0.300000000000004], atol=1e-12)
    # a maximum at the edge stays at the edge
    assert maximize_interpolant(x, x[None, :])[0] == 10.0


def test_locfit_constant_data_and_span_rule():
    x = np.random.default_rng(2).normal(size=500)
    Y = np.column_stack([np.full(500, 3.0), 2 * np.ones(500)])
    np.testing.assert_allclose(locfit_deg0(x, Y, 0.3), Y)
    # locfitByCol returns the data unchanged when span * n < 2
    Z = np.random.default_rng(3).normal(size=(3, 2))
    np.testing.assert_array_equal(locfit_deg0(np.arange(3.0), Z, 0.5), Z)


def test_lowess_matches_the_python_port_of_r():
    from pbglm._numerics.lowess import lowess as lowess_py

    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, 300)
    y = np.sin(x) + rng.normal(0, 0.3, 300)
    y[[3, 50]] += 6
    np.testing.assert_allclose(lowess_r(x, y, 0.4, 3), lowess_py(x, y, f=0.4, iters=3), rtol=1e-12, atol=1e-12)


def test_fit_f_dist_without_covariate_is_the_moment_estimate():
    rng = np.random.default_rng(6)
    s2 = rng.chisquare(4, 5000) / 4 * 0.5 * stats.f.rvs(4, 20, size=5000, random_state=7) / (rng.chisquare(4, 5000) / 4)
    scale, df2 = fit_f_dist(s2, 4)
    assert np.isfinite(scale) and scale > 0 and df2 > 0


def test_log_tail_probabilities_do_not_underflow():
    assert np.isfinite(log_t_sf(200.0, 30.0))
    np.testing.assert_allclose(log_t_sf(3.0, 30.0), stats.t.logsf(3.0, 30), rtol=1e-12)
    assert np.isfinite(log_f_sf(1e5, 2.0, 50.0))
    np.testing.assert_allclose(log_f_sf(3.0, 2.0, 50.0), stats.f.logsf(3.0, 2, 50), rtol=1e-12)


def test_zero_patterns_and_residual_df():
    zero = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    groups = {tuple(p): set(idx.tolist()) for p, idx in zero_patterns(zero)}
    assert groups[(False,) * 4] == {0, 4}
    assert groups[(True, True, False, False)] == {1, 2}
    X = np.column_stack([np.ones(4), [0, 0, 1, 1]])
    np.testing.assert_array_equal(residual_df_zeros(zero, X), [2, 1, 1, 0, 2])


def test_hat_values_add_an_intercept_like_r():
    X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    np.testing.assert_allclose(hat_values(X), np.full(6, 1 / 3))
    np.testing.assert_allclose(
        hat_values(np.arange(1.0, 7.0)[:, None]),
        hat_values(np.column_stack([np.ones(6), np.arange(1.0, 7.0)]), intercept=False),
    )


# ---------------------------------------------------------------------------------------------
# the pipeline's contract
# ---------------------------------------------------------------------------------------------


def test_fit_result_contents_and_rebuilt_fit_gives_the_same_test():
    case = CASES[0]
    fr, y, design = fitted(case)
    G, p = fr.coef.shape
    assert fr.method == "edger"
    assert fr.cov.shape == (G, p, p) and np.isnan(fr.cov).all()
    assert fr.mu.shape == y.shape
    np.testing.assert_allclose(np.exp(np.mean(np.log(fr.size_factors))), 1.0)
    for key in (
        "ave_log_cpm",
        "dispersion_common",
        "dispersion_trend",
        "dispersion_tagwise",
        "ql_dispersion",
        "ql_dispersion_prior",
        "ql_dispersion_post",
        "df_prior",
        "df_residual",
        "converged",
    ):
        assert fr.gene_info[key].shape == (G,), key
    np.testing.assert_array_equal(fr.dispersion, fr.gene_info["dispersion_trend"])
    assert set(fr.sample_info) >= {"lib_size", "norm_factors"}
    C = np.zeros(p)
    C[-1] = 1
    res = edger_test(y, design, fr, C)
    # what survives an h5ad round trip: no extra, plain arrays; and NaN rows for filtered genes
    rebuilt = FitResult(
        method="edger",
        coef=np.vstack([fr.coef, np.full((1, p), np.nan)]),
        cov=np.full((G + 1, p, p), np.nan),
        size_factors=fr.size_factors,
        base_mean=np.append(fr.base_mean, np.nan),
        dispersion=np.append(fr.dispersion, np.nan),
        mu=np.vstack([fr.mu, np.full((1, y.shape[1]), np.nan)]),
        gene_info={k: np.append(np.asarray(v, dtype=float), np.nan) for k, v in fr.gene_info.items()},
        sample_info={k: np.asarray(v) for k, v in fr.sample_info.items()},
        params=dict(fr.params),
    )
    y2 = np.vstack([y, np.full((1, y.shape[1]), 7.0)])
    res2 = edger_test(y2, design, rebuilt, C)
    for key in ("log2fc", "stat", "pvalue", "padj", "log_cpm"):
        np.testing.assert_allclose(res2[key][:-1], res[key], rtol=1e-6, atol=1e-12, err_msg=key)
        assert np.isnan(res2[key][-1]) or key == "log_cpm"
    # edgeR has no standard error: lfc_se is the one the QL F-test implies, (log2fc / lfc_se)^2 = F
    ok = np.isfinite(res["lfc_se"])
    assert ok.mean() > 0.9
    np.testing.assert_allclose((res["log2fc"][ok] / res["lfc_se"][ok]) ** 2, res["stat"][ok], rtol=1e-10)


def test_joint_test_does_not_depend_on_the_contrast_basis():
    fr, y, design = fitted(CASES[0])
    p = design.shape[1]
    C = np.zeros((p, 2))
    C[1, 0] = C[2, 1] = 1.0
    T = np.array([[1.0, 1.0], [1.0, -2.0]])
    a = edger_test(y, design, fr, C)
    b = edger_test(y, design, fr, C @ T)
    np.testing.assert_allclose(a["stat"], b["stat"], rtol=1e-5, atol=1e-8)


def test_treat_with_zero_threshold_is_the_ql_test():
    fr, y, design = fitted(CASES[0])
    C = np.eye(design.shape[1])[:, -1]
    a = edger_test(y, design, fr, C, kind="treat", lfc=0.0)
    b = edger_test(y, design, fr, C, kind="qlf")
    np.testing.assert_allclose(a["pvalue"], b["pvalue"])


def test_bad_inputs_raise_value_errors():
    y, X, _ = _sim(G=20, m=6, p=2)
    with pytest.raises(ValueError, match="rows"):
        fit_edger(y, X[:5])
    with pytest.raises(ValueError, match="full rank"):
        fit_edger(y, np.column_stack([X, X[:, 1]]))
    with pytest.raises(ValueError, match="non-negative"):
        fit_edger(-y, X)
    fr = fit_edger(y, X)
    with pytest.raises(ValueError, match="kind"):
        edger_test(y, X, fr, [0, 1], kind="wald")
    with pytest.raises(ValueError, match="rows"):
        edger_test(y, X, fr, [0, 1, 0])
    with pytest.raises(ValueError, match="all zero"):
        edger_test(y, X, fr, [0, 0])


def test_estimate_disp_without_residual_df_raises():
    y, X, off = _sim(G=10, m=4, p=4)
    with pytest.raises(ValueError, match="residual df"):
        estimate_disp(y, X, np.exp(off))
