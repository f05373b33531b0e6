"""pbglm's warnings are attributed to the user's line, through wrappers and nested calls."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pbglm as pb
from pbglm._design_findings import DesignWarning
from pbglm._warn import warn


def test_warn_points_at_first_frame_outside_the_package():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("hello")
    assert caught[0].filename == __file__


def _tested():
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"g": ["a", "b"] * 4}, index=[f"s{i}" for i in range(8)])
    adata = ad.AnnData(rng.poisson(20, size=(8, 30)).astype(float), obs=obs)
    pb.tl.fit(adata, "~ g")
    pb.tl.test(adata, ("g", "b", "a"))
    return adata


def test_deprecated_keyword_warning_points_at_the_call():
    adata = _tested()
    with pytest.warns(FutureWarning) as record:
        pb.get.results(adata, "g_b_vs_a", key_added="pbglm")
    assert record[0].filename == __file__


def test_design_warning_points_at_the_fit_call():
    rng = np.random.default_rng(2)
    # a numeric "batch" with 3 integer values draws the numeric-looks-like-groups DesignWarning
    obs = pd.DataFrame({"g": ["a", "b"] * 6, "batch": [1, 2, 3] * 4}, index=[f"s{i}" for i in range(12)])
    adata = ad.AnnData(rng.poisson(20, size=(12, 30)).astype(float), obs=obs)
    with pytest.warns(DesignWarning, match="only 3 distinct values") as record:
        pb.tl.fit(adata, "~ batch + g")
    assert all(w.filename == __file__ for w in record if issubclass(w.category, DesignWarning))
