"""Bad input gets a clear error naming the problem and the fix."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pbglm as pb


def _data(n=8, genes=50, seed=0):
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"cond": pd.Categorical(["a", "b"] * (n // 2)), "batch": ["x"] * (n // 2) + ["y"] * (n // 2)},
                       index=[f"s{i}" for i in range(n)])
    X = rng.poisson(50, (n, genes)).astype(np.int64)
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda X: X.__setitem__((0, 0), -1), "negative"),
        (lambda X: X.__setitem__((0, 0), 1.5), "non-integer.*layer="),
        (lambda X: X.__setitem__((0, 0), np.nan), "NaN"),
        (lambda X: X.__setitem__((0, 0), np.inf), "infinite"),
    ],
)
def test_bad_counts(mutate, match):
    a = _data()
    a.X = a.X.astype(float)
    mutate(a.X)
    with pytest.raises(ValueError, match=match):
        pb.tl.fit(a, "~ cond")


def test_missing_design_column_lists_available():
    with pytest.raises(KeyError, match=r"condition.*Available columns.*cond"):
        pb.tl.fit(_data(), "~ condition")


def test_nan_in_design_column():
    a = _data()
    a.obs["cond"] = a.obs["cond"].astype(object)
    a.obs.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        pb.tl.fit(a, "~ cond")


def test_unknown_level_in_contrast():
    a = _data()
    pb.tl.fit(a, "~ cond")
    with pytest.raises(ValueError, match=r"'c' is not a level of 'cond'; its levels are \['a', 'b'\]"):
        pb.tl.test(a, ("cond", "c", "a"))


def test_unknown_coefficient_lists_valid_names():
    a = _data()
    pb.tl.fit(a, "~ cond")
    with pytest.raises(KeyError, match=r"valid names are \['Intercept', 'cond\[b\]'\]"):
        pb.tl.test(a, drop="cond[c]")


def test_wrong_length_contrast_vector():
    a = _data()
    pb.tl.fit(a, "~ cond")
    with pytest.raises(ValueError, match="3 entries but the design has 2 columns"):
        pb.tl.test(a, [0, 1, 0])


def test_negative_threshold():
    a = _data()
    pb.tl.fit(a, "~ cond")
    with pytest.raises(ValueError, match="lfc_threshold must be >= 0"):
        pb.tl.test(a, ("cond", "b", "a"), lfc_threshold=-1)


def test_not_nested_reduced_formula():
    a = _data()
    pb.tl.fit(a, "~ cond")
    with pytest.raises(ValueError, match="nested"):
        pb.tl.test(a, reduced="~ batch")


def test_fewer_samples_than_coefficients():
    a = _data(n=4)
    a.obs["id"] = [f"p{i}" for i in range(4)]
    with pytest.raises(ValueError, match="residual degrees of freedom|rank deficient"):
        pb.tl.fit(a, "~ id + cond")


def test_no_residual_df():
    a = _data(n=4)
    a.obs["grp"] = ["g1", "g2", "g3", "g4"]
    with pytest.raises(ValueError, match="residual degrees of freedom"):
        pb.tl.fit(a, "~ grp")


def test_confounded_design_names_columns():
    a = _data()
    a.obs["batch"] = np.where(a.obs["cond"] == "a", "x", "y")
    with pytest.raises(ValueError, match=r"cond\[b\].*batch\[y\]|batch\[y\].*cond\[b\]"):
        pb.tl.fit(a, "~ batch + cond")


def test_formula_syntax_error():
    with pytest.raises(ValueError, match="formula|parse"):
        pb.tl.fit(_data(), "~ cond +")


def test_unknown_method_and_test_name():
    a = _data()
    with pytest.raises(ValueError, match="Unknown method"):
        pb.tl.fit(a, "~ cond", method="limma")
    pb.tl.fit(a, "~ cond")
    with pytest.raises(KeyError, match="Stored tests"):
        pb.get.results(a, "nope")
    with pytest.raises(KeyError, match="run pbglm.tl.fit"):
        pb.tl.test(_data(), ("cond", "b", "a"))


def test_missing_layer():
    with pytest.raises(KeyError, match="Layer 'counts' not found"):
        pb.tl.fit(_data(), "~ cond", layer="counts")
