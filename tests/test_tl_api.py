"""tl.fit / tl.test / get.results on AnnData: storage, h5ad round trip, copy, input types."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import pbglm as pb


def _small(seed=0, n_genes=300, reps=4):
    rng = np.random.default_rng(seed)
    groups = ["ctrl", "DrugA", "DrugB"]
    obs = pd.DataFrame(
        {
            "Drug": pd.Categorical(np.repeat(groups, 2 * reps), categories=groups),
            "Batch": pd.Categorical(np.tile(np.repeat(["b1", "b2"], reps), 3)),
            "age": rng.uniform(20, 60, 6 * reps).round(),
        },
        index=[f"s{i}" for i in range(6 * reps)],
    )
    mean = np.exp(rng.normal(4, 1.5, n_genes))
    lfc = np.where(rng.random(n_genes) < 0.2, rng.normal(0, 1.5, n_genes), 0.0)
    eff = np.where(obs["Drug"].to_numpy() == "DrugA", 1.0, 0.0)
    mu = mean[None, :] * np.exp(np.outer(eff, lfc)) * rng.uniform(0.7, 1.4, 6 * reps)[:, None]
    r = 1 / (0.05 + 1 / mean)
    X = rng.negative_binomial(r[None, :], r[None, :] / (r[None, :] + mu))
    X[:, :3] = 0  # all-zero genes
    return ad.AnnData(X=X.astype(np.int64), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


@pytest.fixture(scope="module")
def fitted():
    a = _small()
    pb.tl.fit(a, "~ Batch + Drug")
    pb.tl.test(a, ("Drug", "DrugA", "ctrl"))
    pb.tl.test(a, ("Drug", "DrugA", "DrugB"))
    pb.tl.test(a, reduced="~ Batch", name="any_drug")
    return a


def test_storage_layout(fitted):
    a = fitted
    assert "pbglm_size_factor" in a.obs
    for col in ["base_mean", "dispersion", "dispersion_gene", "dispersion_trend", "converged", "max_cooks"]:
        assert f"pbglm_{col}" in a.var
    coef = a.varm["pbglm_coef"]
    assert list(coef.columns) == ["Intercept", "Batch[b2]", "Drug[DrugA]", "Drug[DrugB]"]
    assert set(a.uns["pbglm"]["tests"]) == {"Drug_DrugA_vs_ctrl", "Drug_DrugA_vs_DrugB", "any_drug"}
    t = a.uns["pbglm"]["tests"]["Drug_DrugA_vs_DrugB"]
    np.testing.assert_array_equal(t["contrast"], [0, 0, 1, -1])
    assert a.uns["pbglm"]["tests"]["any_drug"]["df"] == 2
    res = pb.get.results(a, "Drug_DrugA_vs_ctrl")
    assert list(res.columns) == ["base_mean", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
    assert res.index.equals(a.var_names)


def test_all_zero_genes_reported_with_na(fitted):
    res = pb.get.results(fitted, "Drug_DrugA_vs_ctrl")
    zero = res.iloc[:3]
    assert (zero["base_mean"] == 0).all()
    assert zero[["log2fc", "pvalue", "padj"]].isna().all().all()
    assert res.iloc[3:]["pvalue"].notna().mean() > 0.9


def test_contrast_between_non_reference_levels(fitted):
    a = fitted
    coef = a.varm["pbglm_coef"]
    res = pb.get.results(a, "Drug_DrugA_vs_DrugB")
    np.testing.assert_allclose(res["log2fc"], coef["Drug[DrugA]"] - coef["Drug[DrugB]"], rtol=1e-12)


def test_contrast_forms_agree(fitted):
    a = fitted.copy()
    pb.tl.test(a, "Drug[DrugA]", name="by_name")
    pb.tl.test(a, {"Drug[DrugA]": 1}, name="by_dict")
    pb.tl.test(a, [0, 0, 1, 0], name="by_vector")
    pb.tl.test(a, "DrugA - ctrl", name="by_expr")
    ref = pb.get.results(a, "Drug_DrugA_vs_ctrl")
    for name in ["by_name", "by_dict", "by_vector", "by_expr"]:
        pd.testing.assert_frame_equal(pb.get.results(a, name), ref)


def test_drop_equals_reduced(fitted):
    a = fitted.copy()
    pb.tl.test(a, drop=["Drug[DrugA]", "Drug[DrugB]"], name="drop")
    np.testing.assert_allclose(pb.get.results(a, "drop")["stat"], pb.get.results(a, "any_drug")["stat"],
                               rtol=1e-10, equal_nan=True)


def test_h5ad_round_trip(fitted, tmp_path):
    path = tmp_path / "fit.h5ad"
    fitted.write_h5ad(path)
    b = ad.read_h5ad(path)
    for name in fitted.uns["pbglm"]["tests"]:
        pd.testing.assert_frame_equal(pb.get.results(b, name), pb.get.results(fitted, name))
    # a new test on the re-read object gives what it gives on the original
    pb.tl.test(b, ("Drug", "DrugB", "ctrl"))
    c = fitted.copy()
    pb.tl.test(c, ("Drug", "DrugB", "ctrl"))
    pd.testing.assert_frame_equal(pb.get.results(b, "Drug_DrugB_vs_ctrl"), pb.get.results(c, "Drug_DrugB_vs_ctrl"))


def test_copy_leaves_input_untouched():
    a = _small(1)
    before = a.copy()
    out = pb.tl.fit(a, "~ Drug", copy=True)
    assert isinstance(out, ad.AnnData)
    assert list(a.obs.columns) == list(before.obs.columns) and list(a.var.columns) == list(before.var.columns)
    assert len(a.uns) == 0 and len(a.varm) == 0
    np.testing.assert_array_equal(a.X, before.X)
    assert pb.tl.test(out, ("Drug", "DrugA", "ctrl"), copy=True) is not None
    assert "tests" not in out.uns["pbglm"]


@pytest.mark.parametrize("kind", ["csr", "csc", "float", "layer"])
def test_input_types_give_identical_results(kind):
    a = _small(2, n_genes=120)
    ref = a.copy()
    pb.tl.fit(ref, "~ Drug")
    layer = None
    if kind == "csr":
        a.X = sparse.csr_matrix(a.X)
    elif kind == "csc":
        a.X = sparse.csc_matrix(a.X)
    elif kind == "float":
        a.X = a.X.astype(np.float32)
    else:
        a.layers["counts"] = a.X.copy()
        a.X = np.log1p(a.X.astype(float))
        layer = "counts"
    pb.tl.fit(a, "~ Drug", layer=layer)
    pd.testing.assert_frame_equal(a.varm["pbglm_coef"], ref.varm["pbglm_coef"])


def test_reference_override_and_numeric_slope():
    a = _small(3, n_genes=100)
    pb.tl.fit(a, "~ age + Drug", reference={"Drug": "DrugB"})
    assert list(a.varm["pbglm_coef"].columns) == ["Intercept", "Drug[ctrl]", "Drug[DrugA]", "age"] or list(
        a.varm["pbglm_coef"].columns
    ) == ["Intercept", "age", "Drug[ctrl]", "Drug[DrugA]"]
    assert a.uns["pbglm"]["factors"]["Drug"][0] == "DrugB"


def test_no_intercept_design_and_refit_clears_old_results():
    a = _small(4, n_genes=100)
    pb.tl.fit(a, "~ Drug")
    pb.tl.test(a, ("Drug", "DrugA", "ctrl"))
    pb.tl.fit(a, "~ 0 + Drug")
    assert "tests" not in a.uns["pbglm"]
    assert not any(k.startswith("pbglm_test_") for k in a.varm)
    assert list(a.varm["pbglm_coef"].columns) == ["Drug[ctrl]", "Drug[DrugA]", "Drug[DrugB]"]
    pb.tl.test(a, ("Drug", "DrugA", "ctrl"))
    b = _small(4, n_genes=100)
    pb.tl.fit(b, "~ Drug")
    pb.tl.test(b, ("Drug", "DrugA", "ctrl"))
    np.testing.assert_allclose(pb.get.results(a, "Drug_DrugA_vs_ctrl")["log2fc"],
                               pb.get.results(b, "Drug_DrugA_vs_ctrl")["log2fc"], rtol=1e-6, atol=1e-6)


def test_thresholded_and_t_tests_are_more_conservative(fitted):
    a = fitted.copy()
    pb.tl.test(a, ("Drug", "DrugA", "ctrl"), lfc_threshold=1.0, name="thr")
    pb.tl.test(a, ("Drug", "DrugA", "ctrl"), use_t=True, name="t")
    base = pb.get.results(a, "Drug_DrugA_vs_ctrl")["pvalue"]
    ok = base.notna()
    assert ok.sum() > 250
    assert (pb.get.results(a, "thr")["pvalue"][ok] >= base[ok] - 1e-12).all()
    assert (pb.get.results(a, "t")["pvalue"][ok] >= base[ok] - 1e-12).all()


def test_size_factors_user_and_poscounts():
    a = _small(5, n_genes=100)
    a.obs["sf"] = np.linspace(0.5, 2, a.n_obs)
    pb.tl.fit(a, "~ Drug", size_factors="sf")
    np.testing.assert_allclose(a.obs["pbglm_size_factor"], a.obs["sf"])
    b = _small(5, n_genes=100)
    b.X[np.arange(b.n_vars) % b.n_obs, np.arange(b.n_vars)] = 0  # every gene has a zero -> poscounts
    pb.tl.fit(b, "~ Drug")
    assert b.uns["pbglm"]["fit"]["size_factor_type"] == "poscounts"


def test_n_jobs_setting_gives_same_numbers():
    a = _small(6, n_genes=100)
    b = a.copy()
    pb.tl.fit(a, "~ Drug", n_jobs=1)
    pb.tl.fit(b, "~ Drug")
    pd.testing.assert_frame_equal(a.varm["pbglm_coef"], b.varm["pbglm_coef"])


def test_lrt_reduced_model_without_the_referenced_factor():
    """reduced= may leave out a factor whose reference level the fit set (found by tutorial 02)."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    import pbglm as pb

    rng = np.random.default_rng(3)
    obs = pd.DataFrame({"Drug": ["ctrl", "A", "B"] * 4}, index=[f"s{i}" for i in range(12)])
    adata = ad.AnnData(rng.poisson(30, size=(12, 40)).astype(float), obs=obs)
    pb.tl.fit(adata, "~ Drug", reference={"Drug": "ctrl"})
    pb.tl.test(adata, reduced="~ 1", name="any")
    pb.tl.test(adata, drop=["Drug[A]", "Drug[B]"], name="any_drop")
    a = pb.get.results(adata, "any")
    b = pb.get.results(adata, "any_drop")
    np.testing.assert_allclose(a["pvalue"], b["pvalue"], rtol=1e-10)
