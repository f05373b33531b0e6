"""Readers take ``key=``; the old ``key_added=`` keeps working for one release with a warning."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pbglm as pb


@pytest.fixture(scope="module")
def tested():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"g": ["a", "b"] * 4}, index=[f"s{i}" for i in range(8)])
    adata = ad.AnnData(rng.poisson(20, size=(8, 30)).astype(float), obs=obs)
    pb.tl.fit(adata, "~ g")
    pb.tl.test(adata, ("g", "b", "a"))
    return adata


def test_old_keyword_warns_and_still_reads(tested):
    new = pb.get.results(tested, "g_b_vs_a", key="pbglm")
    with pytest.warns(FutureWarning, match=r"key_added=.*deprecated.*key='pbglm'"):
        old = pb.get.results(tested, "g_b_vs_a", key_added="pbglm")
    pd.testing.assert_frame_equal(new, old)


def test_both_keywords_is_a_type_error(tested):
    with pytest.raises(TypeError, match="both key_added= and key="):
        pb.get.results(tested, "g_b_vs_a", key="pbglm", key_added="pbglm")


def test_plots_and_test_take_key(tested):
    adata = tested.copy()
    pb.tl.test(adata, ("g", "b", "a"), key="pbglm", name="again")
    with pytest.warns(FutureWarning, match="key_added"):
        pb.tl.test(adata, ("g", "b", "a"), key_added="pbglm", name="again_old")
    assert {"again", "again_old"} <= set(adata.uns["pbglm"]["tests"])
