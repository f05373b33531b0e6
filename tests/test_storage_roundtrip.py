"""Storage keys of users' names: h5ad and zarr round trips of every result kind, no collisions,
refitting one key leaves every other key alone."""

from __future__ import annotations

import unicodedata
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pbglm as pb
from pbglm._io import decode_name, encode_name, fit_record, stored_tests

FORMATS = ["h5ad", "zarr"]
WEIRD_TESTS = ["b/a", "with space", "ünïcødé 中文", "x:y%z", ".hidden", "tab\tend."]
WEIRD_GROUPS = ["a/b", "a_b", "B/NK", "T cell", "ü"]


def _simulate(groups=None, n_genes=200, n_per_group=8, seed=0):
    rng = np.random.default_rng(seed)
    groups = list(groups or ["all"])
    rows = []
    for g in groups:
        for d in range(n_per_group):
            rows.append({"cell_type": g, "donor": f"d{d}", "condition": "stim" if d % 2 else "ctrl"})
    obs = pd.DataFrame(rows)
    obs.index = [f"s{i}" for i in range(len(obs))]
    obs["condition"] = pd.Categorical(obs["condition"], categories=["ctrl", "stim"])
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=groups)
    base = np.exp(rng.normal(4, 1.5, n_genes))
    # a different effect per group, so that groups whose results overwrote each other would show it
    effect = {g: np.where(rng.random(n_genes) < 0.3, rng.normal(0, 2, n_genes), 0.0) for g in groups}
    stim = (obs["condition"] == "stim").to_numpy()
    lfc = np.stack([effect[g] for g in obs["cell_type"]])
    mu = base[None, :] * np.exp(stim[:, None] * lfc) * rng.uniform(0.6, 1.6, len(obs))[:, None]
    X = rng.negative_binomial(10.0, 10.0 / (10.0 + mu))
    return ad.AnnData(X=X.astype(np.int64), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def _roundtrip(adata, fmt, tmp_path):
    path = tmp_path / f"a.{fmt}"
    if fmt == "h5ad":
        adata.write_h5ad(path)
        return ad.read_h5ad(path)
    with warnings.catch_warnings():  # anndata's notices about its future zarr defaults
        warnings.filterwarnings("ignore", message="Writing zarr v2 data", category=UserWarning)
        warnings.filterwarnings("ignore", message="zarr v3 autosharding", category=UserWarning)
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        adata.write_zarr(path)
    return ad.read_zarr(path)


def _same(x, y, where="uns"):
    """Deep equality of stored content (lists come back as arrays; values must be equal)."""
    if isinstance(x, dict) or isinstance(y, dict):
        assert isinstance(x, dict) and isinstance(y, dict), where
        assert sorted(x) == sorted(y), f"{where}: keys {sorted(x)} != {sorted(y)}"
        for k in x:
            _same(x[k], y[k], f"{where}[{k!r}]")
    elif isinstance(x, pd.DataFrame):
        assert isinstance(y, pd.DataFrame), where
        pd.testing.assert_frame_equal(x, y, check_dtype=False, obj=where)
    elif isinstance(x, list | tuple | np.ndarray) or isinstance(y, list | tuple | np.ndarray):
        xa, ya = np.asarray(x), np.asarray(y)
        assert xa.shape == ya.shape, where
        if xa.dtype.kind in "fciub" and ya.dtype.kind in "fciub":
            np.testing.assert_array_equal(xa, ya, err_msg=where)
        else:
            assert [str(v) for v in xa.ravel()] == [str(v) for v in ya.ravel()], where
    elif isinstance(x, float) and np.isnan(x):
        assert np.isnan(y), where
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"


def _assert_same_anndata(a, b):
    _same(dict(a.uns), dict(b.uns))
    assert sorted(a.varm.keys()) == sorted(b.varm.keys())
    for k in a.varm:
        _same(a.varm[k], b.varm[k], f"varm[{k!r}]")
    pd.testing.assert_frame_equal(a.var, b.var, check_dtype=False)
    pd.testing.assert_frame_equal(a.obs, b.obs, check_dtype=False, check_categorical=False)
    assert sorted(a.layers.keys()) == sorted(b.layers.keys())


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s))
def test_encoding_is_reversible_and_yields_valid_node_names(name):
    stored = encode_name(name)
    assert decode_name(stored) == name
    assert not set(stored) & set('/\\:*?"<>|')
    assert not stored.startswith(".") and not stored.endswith((".", " "))
    assert not any(unicodedata.category(ch).startswith("C") for ch in stored)


def test_encoding_keeps_ordinary_names_and_separates_lookalikes():
    for name in ["pbglm", "dex_trt_vs_untrt", "T cell", "ünïcødé 中文", "lrt_drop_a[b]"]:
        assert encode_name(name) == name
    assert encode_name("a/b") != encode_name("a_b")
    assert encode_name("a/b") != encode_name("a%2Fb")
    with pytest.raises(ValueError, match="Empty"):
        encode_name("")
    with pytest.raises(ValueError, match="NUL"):
        encode_name("a\x00b")


@pytest.fixture(scope="module")
def plain():
    a = _simulate()
    pb.tl.fit(a, "~ condition")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    for name in WEIRD_TESTS:
        pb.tl.test(a, ("condition", "stim", "ctrl"), name=name, lfc_threshold=0.5)
    pb.tl.test(a, reduced="~ 1", name="lrt/any")
    return a


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_fit_with_odd_test_names_roundtrips(plain, fmt, tmp_path):
    b = _roundtrip(plain, fmt, tmp_path)
    _assert_same_anndata(plain, b)
    assert set(stored_tests(b, "pbglm")) == {"condition_stim_vs_ctrl", *WEIRD_TESTS, "lrt/any"}
    for name in ["condition_stim_vs_ctrl", *WEIRD_TESTS, "lrt/any"]:
        pd.testing.assert_frame_equal(pb.get.results(plain, name), pb.get.results(b, name))
    # tests run on the read-back object equal those run before writing
    pb.tl.test(b, ("condition", "stim", "ctrl"), name="again/after")
    pd.testing.assert_frame_equal(pb.get.results(b, "again/after"), pb.get.results(plain, "condition_stim_vs_ctrl"))


def test_test_names_with_slashes_are_kept_as_given(plain):
    assert plain.uns["pbglm"]["tests"]["b%2Fa"]["name"] == "b/a"
    assert "pbglm_test_b%2Fa" in plain.varm
    assert not any("/" in k for k in plain.varm)


@pytest.fixture(scope="module")
def grouped():
    a = _simulate(WEIRD_GROUPS)
    pb.tl.fit(a, "~ condition", groupby="cell_type")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    pb.tl.test(a, ("condition", "stim", "ctrl"), name="thr/1", lfc_threshold=1)
    return a


def test_lookalike_groups_keep_their_own_results(grouped):
    res = pb.get.results(grouped, "condition_stim_vs_ctrl")
    assert list(res["group"].cat.categories) == WEIRD_GROUPS
    a_slash = res[res["group"] == "a/b"].set_index("gene")["log2fc"]
    a_under = res[res["group"] == "a_b"].set_index("gene")["log2fc"]
    assert not np.allclose(a_slash.fillna(0), a_under.fillna(0))
    for g in WEIRD_GROUPS:
        sub = _simulate(WEIRD_GROUPS)
        sub = sub[sub.obs["cell_type"] == g].copy()
        pb.tl.fit(sub, "~ condition")
        pb.tl.test(sub, ("condition", "stim", "ctrl"))
        alone = pb.get.results(sub, "condition_stim_vs_ctrl")
        mine = res[res["group"] == g].set_index("gene")[alone.columns]
        mine.index.name = None
        pd.testing.assert_frame_equal(mine, alone, check_dtype=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_groupby_fit_with_odd_levels_roundtrips_and_can_be_tested_again(grouped, fmt, tmp_path):
    b = _roundtrip(grouped, fmt, tmp_path)
    _assert_same_anndata(grouped, b)
    assert set(fit_record(b, "pbglm")["groups"]) == set(WEIRD_GROUPS)
    for name in ["condition_stim_vs_ctrl", "thr/1"]:
        pd.testing.assert_frame_equal(pb.get.results(grouped, name), pb.get.results(b, name))
    pb.tl.test(b, ("condition", "stim", "ctrl"), name="after read")
    again = pb.get.results(b, "after read")
    pd.testing.assert_frame_equal(again, pb.get.results(grouped, "condition_stim_vs_ctrl"))
    nk = again[again["group"] == "B/NK"]
    assert len(nk) == b.n_vars and np.isfinite(nk["pvalue"]).any()


@pytest.mark.parametrize("fmt", FORMATS)
def test_edger_fit_under_an_odd_key_roundtrips(fmt, tmp_path):
    a = _simulate()
    pb.tl.fit(a, "~ condition", method="edger", key_added="my fits/edgeR")
    pb.tl.test(a, ("condition", "stim", "ctrl"), key="my fits/edgeR", name="stim/ctrl")
    assert "my fits%2FedgeR" in a.uns and not any("/" in c for c in a.var.columns)
    b = _roundtrip(a, fmt, tmp_path)
    _assert_same_anndata(a, b)
    pd.testing.assert_frame_equal(pb.get.results(a, "stim/ctrl", key="my fits/edgeR"),
                                  pb.get.results(b, "stim/ctrl", key="my fits/edgeR"))
    pb.tl.test(b, ("condition", "stim", "ctrl"), key="my fits/edgeR", name="again")
    pd.testing.assert_frame_equal(pb.get.results(b, "again", key="my fits/edgeR"),
                                  pb.get.results(a, "stim/ctrl", key="my fits/edgeR"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_factor_levels_with_slashes_roundtrip(fmt, tmp_path):
    a = _simulate()
    a.obs["condition"] = a.obs["condition"].cat.rename_categories({"stim": "stim/IFN"})
    pb.tl.fit(a, "~ condition")
    pb.tl.test(a, ("condition", "stim/IFN", "ctrl"), name="ifn")
    b = _roundtrip(a, fmt, tmp_path)
    _assert_same_anndata(a, b)
    pb.tl.test(b, "condition[stim/IFN]", name="coef")
    pd.testing.assert_frame_equal(pb.get.results(b, "coef"), pb.get.results(a, "ifn"))


def _snapshot(adata, key):
    from pbglm._io import owned_slots, uns_key

    slots = owned_slots(adata, key)
    return {
        "uns": adata.uns[uns_key(key)],
        "var": adata.var[slots["var"]].copy(),
        "obs": adata.obs[slots["obs"]].copy(),
        "varm": {k: adata.varm[k].copy() for k in slots["varm"]},
    }


def test_refitting_one_key_leaves_a_key_it_prefixes_untouched():
    a = _simulate()
    a.var["pbglm_mine"] = 1.0  # a user's own column with the prefix
    pb.tl.fit(a, "~ condition", key_added="pbglm_x")
    pb.tl.test(a, ("condition", "stim", "ctrl"), key="pbglm_x")
    before = _snapshot(a, "pbglm_x")
    assert before["varm"] and len(before["var"].columns) > 2
    pb.tl.fit(a, "~ condition")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    pb.tl.fit(a, "~ condition", method="edger")  # refit the default key
    after = _snapshot(a, "pbglm_x")
    _same(before, after)
    assert "pbglm_mine" in a.var.columns
    assert stored_tests(a, "pbglm") == []
    assert stored_tests(a, "pbglm_x") == ["condition_stim_vs_ctrl"]
    # and the other way round: refitting the longer key leaves the shorter one alone
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    before = _snapshot(a, "pbglm")
    pb.tl.fit(a, "~ condition", key_added="pbglm_x")
    _same(before, _snapshot(a, "pbglm"))


def test_a_slot_of_another_fit_is_never_overwritten():
    a = _simulate()
    pb.tl.fit(a, "~ condition")
    pb.tl.test(a, ("condition", "stim", "ctrl"), name="x_coef")  # .varm["pbglm_test_x_coef"]
    before = a.varm["pbglm_test_x_coef"].copy()
    with pytest.raises(ValueError, match="belongs to the fit stored under key='pbglm'"):
        pb.tl.fit(a, "~ condition", key_added="pbglm_test_x")  # would write .varm["pbglm_test_x_coef"]
    pd.testing.assert_frame_equal(a.varm["pbglm_test_x_coef"], before)
    assert "pbglm_test_x" not in a.uns


def test_fits_written_before_slots_were_recorded_are_still_read_and_cleared_exactly(tmp_path):
    a = _simulate()
    pb.tl.fit(a, "~ condition", key_added="pbglm_x")
    pb.tl.fit(a, "~ condition")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    for key in ("pbglm", "pbglm_x"):  # the layout of earlier versions: no slots, no names
        del a.uns[key]["slots"], a.uns[key]["key"]
        a.uns[key].pop("test_order", None)
        for rec in a.uns[key].get("tests", {}).values():
            del rec["name"]
    b = _roundtrip(a, "h5ad", tmp_path)
    name = "condition_stim_vs_ctrl"
    pd.testing.assert_frame_equal(pb.get.results(b, name), pb.get.results(a, name))
    kept = b.var[[c for c in b.var.columns if c.startswith("pbglm_x_")]].copy()
    pb.tl.fit(b, "~ condition")
    pd.testing.assert_frame_equal(b.var[kept.columns], kept)
    assert "pbglm_x" in b.uns and "pbglm_x_coef" in b.varm


# default test names record the options that change the answer; replacing a test says so


@pytest.fixture(scope="module")
def named():
    a = _simulate()
    pb.tl.fit(a, "~ condition")
    return a


@pytest.mark.parametrize(
    ("options", "suffix"),
    [
        ({"lfc_threshold": 1}, "_lfc1"),
        ({"lfc_threshold": 0.5, "alt": "lessAbs"}, "_lfc0.5_lessAbs"),
        ({"alt": "greater"}, "_greater"),
        ({"use_t": True}, "_useT"),
        ({"alpha": 0.05}, "_alpha0.05"),
        ({"cooks_filter": False, "independent_filter": False}, "_noCooks_noIndFilter"),
    ],
)
def test_default_names_record_options_that_change_the_answer(named, options, suffix):
    a = named.copy()
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    plain = pb.get.results(a, "condition_stim_vs_ctrl")
    pb.tl.test(a, ("condition", "stim", "ctrl"), **options)  # no warning: nothing is replaced
    assert stored_tests(a, "pbglm") == ["condition_stim_vs_ctrl", "condition_stim_vs_ctrl" + suffix]
    pd.testing.assert_frame_equal(pb.get.results(a, "condition_stim_vs_ctrl"), plain)
    record = a.uns["pbglm"]["tests"]["condition_stim_vs_ctrl" + suffix]
    for option in set(options) & {"lfc_threshold", "alt", "alpha"}:
        assert record[option] == options[option]


def test_edger_lrt_gets_its_own_default_name():
    a = _simulate()
    pb.tl.fit(a, "~ condition", method="edger")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    pb.tl.test(a, ("condition", "stim", "ctrl"), kind="lrt")
    assert stored_tests(a, "pbglm") == ["condition_stim_vs_ctrl", "condition_stim_vs_ctrl_glmLRT"]


def test_replacing_a_stored_test_warns_naming_it(named):
    a = named.copy()
    pb.tl.test(a, ("condition", "stim", "ctrl"), name="mine/1")
    with pytest.warns(UserWarning, match=r"Replacing the stored test 'mine/1' under key='pbglm'"):
        pb.tl.test(a, ("condition", "stim", "ctrl"), name="mine/1", lfc_threshold=1)
    assert stored_tests(a, "pbglm") == ["mine/1"]
    assert float(a.uns["pbglm"]["tests"]["mine%2F1"]["lfc_threshold"]) == 1.0
    with pytest.warns(UserWarning, match=r"Replacing the stored test 'condition_stim_vs_ctrl_lfc1'"):
        pb.tl.test(a, ("condition", "stim", "ctrl"), lfc_threshold=1)
        pb.tl.test(a, ("condition", "stim", "ctrl"), lfc_threshold=1)


# reading one group, listing what is stored, FDR across groups


def test_results_of_one_group_equal_its_rows_of_the_long_table(grouped):
    long = pb.get.results(grouped, "condition_stim_vs_ctrl")
    for g in WEIRD_GROUPS:
        one = pb.get.results(grouped, "condition_stim_vs_ctrl", group=g)
        expected = long[long["group"] == g].drop(columns="group").set_index("gene")
        expected.index.name = None
        pd.testing.assert_frame_equal(one, expected)
        assert list(one.index) == list(grouped.var_names)
    with pytest.raises(KeyError, match="fitted groups"):
        pb.get.results(grouped, "condition_stim_vs_ctrl", group="a")


def test_results_group_on_an_ungrouped_fit_is_refused(plain):
    with pytest.raises(ValueError, match="has no groups"):
        pb.get.results(plain, "b/a", group="x")
    with pytest.raises(ValueError, match="has no groups"):
        pb.get.results(plain, "b/a", fdr="global")
    with pytest.raises(ValueError, match="fdr must be one of"):
        pb.get.results(plain, "b/a", fdr="all")


def test_global_fdr_is_bh_over_every_gene_and_group(grouped):
    from scipy.stats import false_discovery_control

    res = pb.get.results(grouped, "condition_stim_vs_ctrl", fdr="global")
    p = res["pvalue"].to_numpy()
    ok = np.isfinite(p)
    expected = np.full(p.size, np.nan)
    expected[ok] = false_discovery_control(p[ok], method="bh")
    np.testing.assert_allclose(res["padj_global"].to_numpy(), expected, rtol=1e-12)
    # per-group padj unchanged
    pd.testing.assert_frame_equal(res.drop(columns="padj_global"), pb.get.results(grouped, "condition_stim_vs_ctrl"))
    one = pb.get.results(grouped, "condition_stim_vs_ctrl", group="B/NK", fdr="global")
    np.testing.assert_array_equal(one["padj_global"].to_numpy(), res.loc[res["group"] == "B/NK", "padj_global"])


def test_tests_lists_every_test_and_group(grouped, plain):
    listing = pb.get.tests(grouped)
    assert list(listing.columns[:3]) == ["name", "group", "kind"]
    assert list(listing["name"]) == ["condition_stim_vs_ctrl"] * 5 + ["thr/1"] * 5
    assert list(listing["group"]) == WEIRD_GROUPS * 2
    assert set(listing["kind"]) == {"wald"} and set(listing["contrast"]) == {"condition[stim]"}
    assert list(listing["lfc_threshold"]) == [0.0] * 5 + [1.0] * 5
    for row in listing.itertuples():
        table = pb.get.results(grouped, row.name, group=row.group)
        assert row.n_significant == int((table["padj"] < 0.1).sum())
        assert row.n_tested == int(table["pvalue"].notna().sum())
    flat = pb.get.tests(plain).set_index("name")
    assert flat.loc["lrt/any", "kind"] == "lrt" and flat.loc["lrt/any", "reduced"] == "~ 1"
    assert flat["group"].isna().all() and flat.loc["b/a", "lfc_threshold"] == 0.5


def test_fits_lists_every_fit():
    a = _simulate(["x/y", "z"])
    pb.tl.fit(a, "~ condition", groupby="cell_type", key_added="per type/deseq2")
    pb.tl.fit(a, "~ condition + cell_type", method="edger")
    pb.tl.test(a, ("condition", "stim", "ctrl"))
    listing = pb.get.fits(a)
    assert list(listing.index) == ["per type/deseq2", "pbglm"]
    assert listing.loc["per type/deseq2", "groups"] == ["x/y", "z"]
    assert listing.loc["per type/deseq2", "groupby"] == "cell_type"
    assert listing.loc["pbglm", "method"] == "edger" and listing.loc["pbglm", "groupby"] is None
    assert listing.loc["pbglm", "tests"] == ["condition_stim_vs_ctrl"]
    assert pb.get.tests(a, key="per type/deseq2").empty
    assert pb.get.fits(ad.AnnData(np.ones((2, 2)))).empty
