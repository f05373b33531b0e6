"""The only core module that touches AnnData slots: read counts and stored fits in, write results out.

Layout written by :func:`pbglm.tl.fit` / :func:`pbglm.tl.test` (``key`` = ``key_added``):

without ``groupby``
    ``.obs[f"{key}_size_factor"]``; ``.var[f"{key}_base_mean"]``, ``.var[f"{key}_dispersion"]``
    and one ``.var[f"{key}_<field>"]`` per further per-gene field; ``.varm[f"{key}_coef"]``,
    ``.varm[f"{key}_se"]`` (DataFrames, genes x coefficients, log2 scale),
    ``.varm[f"{key}_cov"]`` (genes x p*p covariance, log2 scale, row-major);
    ``.varm[f"{key}_test_<name>"]`` per test; ``.uns[key]``.
with ``groupby``
    per group ``g``: ``.varm[f"{key}_genes:{g}"]`` (a DataFrame of the per-gene fields),
    ``.varm[f"{key}_coef:{g}"]``, ``.varm[f"{key}_se:{g}"]``, ``.varm[f"{key}_cov:{g}"]``,
    ``.varm[f"{key}_test_<name>:{g}"]``; size factors in ``.obs[f"{key}_size_factor"]`` (NaN for
    samples of groups that were not fit); ``.uns[key]["groups"][g]`` per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._design import Design
from ._methods._result import FitResult

TEST_COLUMNS = ["base_mean", "log2fc", "lfc_se", "stat", "pvalue", "padj"]


def get_matrix(adata: AnnData, layer: str | None):
    """``adata.X`` or ``adata.layers[layer]`` with a clear error when the layer is missing."""
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty; pass layer= naming the layer that holds the raw counts.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"Layer {layer!r} not found; available layers: {list(adata.layers.keys())}.")
    return adata.layers[layer]


def read_counts(adata: AnnData, layer: str | None = None) -> np.ndarray:
    """Counts as a (genes x samples) float64 C-contiguous array, validated.

    Raises
    ------
    ValueError
        NaN, negative or non-integer values (with the fix: pass raw counts, e.g. ``layer="counts"``).
    """
    X = get_matrix(adata, layer)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if hasattr(X, "to_memory") and not sparse.issparse(X):  # a backed (on-disk) sparse matrix
        X = X.to_memory()
    if sparse.issparse(X):
        values = X.data
        dense = X.toarray()
    else:
        if hasattr(X, "compute"):
            X = X.compute()
        dense = np.asarray(X)
        values = dense.ravel()
    if not np.issubdtype(dense.dtype, np.number):
        raise ValueError(f"{where} is not numeric (dtype {dense.dtype}); pass raw integer counts.")
    if np.issubdtype(values.dtype, np.floating):
        if np.isnan(values).any():
            raise ValueError(f"{where} contains NaN counts; remove those genes/samples or replace the NaN values.")
        if np.isinf(values).any():
            raise ValueError(f"{where} contains infinite counts; pass raw integer counts.")
        if np.any(values != np.round(values)):
            raise ValueError(
                f"{where} contains non-integer values (e.g. normalised or log-transformed data). "
                "pbglm needs raw counts: pass layer= naming the layer with raw counts (e.g. layer='counts')."
            )
    if values.size and values.min() < 0:
        raise ValueError(f"{where} contains negative counts; pass raw non-negative integer counts.")
    return np.ascontiguousarray(dense.T, dtype=np.float64)


def _suffix(group: str | None) -> str:
    return "" if group is None else ":" + str(group).replace("/", "_")


def varm_key(key: str, what: str, group: str | None = None) -> str:
    """Name of a ``.varm`` entry, e.g. ``pbglm_coef`` or ``pbglm_test_x:Bcell``."""
    return f"{key}_{what}{_suffix(group)}"


def to_plain(value):
    """A value anndata can write to h5ad (no None, no tuples of mixed types)."""
    if value is None:
        return "None"
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        if all(isinstance(v, int | float | np.number | bool) for v in value):
            return np.asarray(value)
        return [str(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def design_record(design: Design, obs_names) -> dict:
    """What ``.uns`` keeps of a design: formula, columns, factor levels, numeric columns, matrix."""
    return {
        "formula": design.formula,
        "design_columns": list(design.columns),
        "factors": {k: list(v) for k, v in design.factors.items()},
        "numeric": list(design.numeric),
        "design": design.frame(pd.Index(obs_names).astype(str)),
    }


def write_fit(
    adata: AnnData,
    fit: FitResult,
    design: Design,
    *,
    key: str,
    obs_mask: np.ndarray | None = None,
    group: str | None = None,
    extra_params: dict | None = None,
) -> None:
    """Store a FitResult (see the module docstring for where each piece goes)."""
    var_names = adata.var_names
    p = design.n_coefs
    se = np.sqrt(np.maximum(np.diagonal(fit.cov, axis1=1, axis2=2), 0.0))
    se[np.isnan(fit.cov).any(axis=(1, 2))] = np.nan
    coef_df = pd.DataFrame(fit.coef, index=var_names, columns=design.columns)
    se_df = pd.DataFrame(se, index=var_names, columns=design.columns)
    adata.varm[varm_key(key, "coef", group)] = coef_df
    adata.varm[varm_key(key, "se", group)] = se_df
    adata.varm[varm_key(key, "cov", group)] = np.ascontiguousarray(fit.cov.reshape(fit.cov.shape[0], p * p))

    sf_col = f"{key}_size_factor"
    sf = np.full(adata.n_obs, np.nan) if sf_col not in adata.obs or group is None else adata.obs[sf_col].to_numpy()
    sf = np.asarray(sf, dtype=float).copy()
    mask = np.ones(adata.n_obs, dtype=bool) if obs_mask is None else obs_mask
    sf[mask] = fit.size_factors
    adata.obs[sf_col] = sf
    for name, values in fit.sample_info.items():
        col = f"{key}_{name}"
        arr = np.full(adata.n_obs, np.nan) if col not in adata.obs or group is None else adata.obs[col].to_numpy()
        arr = np.asarray(arr, dtype=float).copy()
        arr[mask] = values
        adata.obs[col] = arr

    genes = {"base_mean": fit.base_mean, "dispersion": fit.dispersion, **fit.gene_info}
    if group is None:
        for name, values in genes.items():
            adata.var[f"{key}_{name}"] = values
    else:
        adata.varm[varm_key(key, "genes", group)] = pd.DataFrame(genes, index=var_names)

    record = design_record(design, adata.obs_names[mask])
    record["fit"] = to_plain(fit.params)
    record["method"] = fit.method
    record.update(to_plain(extra_params or {}))
    uns = adata.uns.setdefault(key, {})
    if group is None:
        uns.update(record)
    else:
        uns.setdefault("groups", {})[str(group)] = record


def write_test(adata: AnnData, table: pd.DataFrame, *, key: str, name: str, params: dict, group=None) -> None:
    """Store one test's table in ``.varm`` and its parameters in ``.uns[key]['tests'][name]``."""
    adata.varm[varm_key(key, f"test_{name}", group)] = table
    tests = adata.uns[key].setdefault("tests", {})
    tests[name] = to_plain(params)


def stored_tests(adata: AnnData, key: str) -> list[str]:
    """Names of the tests stored under ``key``."""
    return list(adata.uns.get(key, {}).get("tests", {}).keys())


@dataclass
class StoredFit:
    """A fit as read back from the AnnData (one group, or the whole object)."""

    record: dict
    key: str
    group: str | None
    mask: np.ndarray
    genes: pd.DataFrame
    coef: np.ndarray
    cov: np.ndarray

    @property
    def columns(self) -> list[str]:
        return list(self.record["design_columns"])

    @property
    def factors(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.record["factors"].items()}

    @property
    def design(self) -> np.ndarray:
        return np.asarray(self.record["design"], dtype=float)

    @property
    def method(self) -> str:
        return str(self.record["method"])


def _uns(adata: AnnData, key: str) -> dict:
    if key not in adata.uns or "design_columns" not in adata.uns[key] and "groups" not in adata.uns[key]:
        raise KeyError(f"No fit stored under key {key!r}: run pbglm.tl.fit(adata, design) first.")
    return adata.uns[key]


def stored_fits(adata: AnnData, key: str) -> list[StoredFit]:
    """Every fit stored under ``key`` (one per group with ``groupby``)."""
    uns = _uns(adata, key)
    if "groups" in uns:
        groups = list(uns["groups"].keys())
    else:
        groups = [None]
    fits = []
    for g in groups:
        rec = uns if g is None else uns["groups"][g]
        design = rec["design"]
        mask = np.asarray(adata.obs_names.isin(design.index))
        if g is None:
            cols = {c[len(key) + 1 :]: adata.var[c] for c in adata.var.columns if c.startswith(f"{key}_")}
            genes = pd.DataFrame(cols, index=adata.var_names)
        else:
            genes = adata.varm[varm_key(key, "genes", g)]
        p = len(rec["design_columns"])
        coef = np.asarray(adata.varm[varm_key(key, "coef", g)], dtype=float)
        cov = np.asarray(adata.varm[varm_key(key, "cov", g)], dtype=float).reshape(-1, p, p)
        fits.append(StoredFit(record=rec, key=key, group=g, mask=mask, genes=genes, coef=coef, cov=cov))
    return fits
