"""The edgeR method as the AnnData layer calls it: filterByExpr, then the QL fit on the kept
genes (``keep.lib.sizes = FALSE``), results expanded back to every gene (NaN where filtered)."""

from __future__ import annotations

import numpy as np

from .._numerics.filter_by_expr import filter_by_expr_mask
from ._result import FitResult
from .edger import edger_test, fit_edger


def _expand(values: np.ndarray, keep: np.ndarray, fill=np.nan) -> np.ndarray:
    values = np.asarray(values)
    dtype = values.dtype if values.dtype.kind in "fc" else (bool if values.dtype.kind == "b" else float)
    out = np.full((keep.size,) + values.shape[1:], fill, dtype=dtype)
    out[keep] = values
    return out


def fit_edger_design(counts: np.ndarray, design: np.ndarray, *, filter_by_expr: bool = True,
                     legacy: bool = False, robust: bool | None = None, normalize: str = "TMM",
                     n_jobs: int | None = None, sample_names=None) -> FitResult:
    """edgeR's pipeline on a (genes x samples) matrix; genes that filterByExpr drops (or that
    are all zero, when filtering is off) are not fit and get NaN results.

    ``legacy=False`` (default): edgeR 4.5's ``glmQLFit(legacy = FALSE)``; ``legacy=True``: edgeR
    3.40's estimateDisp + legacy glmQLFit. ``robust=None`` is each path's default (False for edgeR 4,
    True for the legacy path). ``sample_names`` name the samples in errors."""
    keep = filter_by_expr_mask(counts, design) if filter_by_expr else counts.sum(axis=1) > 0
    if keep.sum() < 2:
        raise ValueError(
            f"filterByExpr keeps {int(keep.sum())} gene(s): too few to estimate dispersions. Check the counts, "
            "or fit with filter_by_expr=False."
        )
    empty = counts[keep].sum(axis=0) == 0
    if empty.any():
        names = np.arange(counts.shape[1]) if sample_names is None else np.asarray(sample_names)
        raise ValueError(
            f"Sample(s) {[str(n) for n in names[empty][:10]]} have no counts in the {int(keep.sum())} genes "
            "filterByExpr keeps, so their library size is zero. Remove those samples, or fit with "
            "filter_by_expr=False."
        )
    fit = fit_edger(np.ascontiguousarray(counts[keep]), design, legacy=legacy, robust=robust,
                    normalize=normalize, n_jobs=n_jobs)
    gene_info = {k: _expand(v, keep, fill=False if np.asarray(v).dtype == bool else np.nan)
                 for k, v in fit.gene_info.items()}
    gene_info["filtered"] = ~keep
    base_mean = (counts / fit.size_factors[None, :]).mean(axis=1)
    return FitResult(
        method="edger",
        coef=_expand(fit.coef, keep),
        cov=np.full((keep.size, design.shape[1], design.shape[1]), np.nan),
        size_factors=fit.size_factors,
        base_mean=base_mean,
        dispersion=_expand(fit.dispersion, keep),
        mu=_expand(fit.mu, keep),
        gene_info=gene_info,
        sample_info=fit.sample_info,
        params={**fit.params, "n_filtered": int((~keep).sum())},
        extra={k: _expand(v, keep) for k, v in fit.extra.items()},
    )


def test_edger_design(counts, fit, vec, *, kind: str, coefs, lfc_threshold: float, sample_info: dict):
    """Run an edgeR test for a stored fit (``pbglm.tl._test.StoredFit``); returns (table, params)."""
    columns = fit.columns
    if coefs is not None:
        C = np.zeros((len(columns), len(coefs)))
        for j, c in enumerate(coefs):
            C[columns.index(c), j] = 1.0
        contrast = C
    else:
        contrast = np.asarray(vec, dtype=float)
    if kind not in ("qlf", "lrt"):
        raise ValueError(f"kind must be 'qlf' or 'lrt' for the edgeR method, got {kind!r}.")
    if kind == "lrt" and lfc_threshold > 0:
        raise ValueError("kind='lrt' (glmLRT) has no fold-change threshold; use kind='qlf' with lfc_threshold= "
                         "(edgeR's glmTreat on the QL fit).")
    if lfc_threshold > 0 and coefs is not None and len(coefs) > 1:
        raise ValueError("lfc_threshold= (glmTreat) tests one contrast; a joint test of several coefficients "
                         "cannot take a threshold.")
    test_kind = "treat" if (lfc_threshold > 0 and kind == "qlf") else kind
    genes = fit.genes
    info = FitResult(
        method="edger", coef=fit.coef, cov=fit.cov, size_factors=np.ones(counts.shape[1]),
        base_mean=genes["base_mean"].to_numpy(dtype=float), dispersion=genes["dispersion"].to_numpy(dtype=float),
        mu=np.empty((0, 0)), gene_info={c: genes[c].to_numpy() for c in genes.columns if genes[c].dtype != object},
        sample_info=sample_info,
    )
    legacy = str(fit.record.get("fit", {}).get("edger_ql", "legacy")).startswith("legacy")
    out = edger_test(counts, fit.design, info, contrast, kind=test_kind, lfc=lfc_threshold, legacy=legacy)
    table = {"base_mean": info.base_mean, "log2fc": out["log2fc"], "lfc_se": out["lfc_se"], "stat": out["stat"],
             "pvalue": out["pvalue"], "padj": out["padj"], "log_cpm": out["log_cpm"]}
    params = {"kind": {"qlf": "ql_ftest", "lrt": "lrt", "treat": "treat"}[test_kind],
              "df": int(np.linalg.matrix_rank(np.atleast_2d(contrast.T))) if coefs is not None else 1}
    if coefs is not None:
        params["coefficients"] = list(coefs)
    return table, params
