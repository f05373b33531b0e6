"""Run pbglm's edgeR 4 QL method on the reference cases and compare with ``out_edger4/``.

Used by ``tests/test_edger4_parity.py``; as a script it prints the report:
``python tests/reference/parity_edger4.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from functools import cache
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
OUT4 = HERE / "out_edger4"
_spec = importlib.util.spec_from_file_location("pbglm_parity_cases_e4", HERE / "parity.py")
PARITY = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(PARITY)
CASES = PARITY.CASES


def tag(case: str, robust: bool) -> str:
    return case + ("_robust" if robust else "")


def read4(name: str) -> pd.DataFrame:
    return pd.read_csv(OUT4 / name, index_col=0)


def params4(t: str) -> dict:
    return json.loads((OUT4 / f"edger4_{t}_params.json").read_text())


def test_names(case: str) -> list[str]:
    """The reference tests of a case (the QL test of each spec, plus its glmLRT twin)."""
    return list(params4(case)["tests"])


def _args(case: str, name: str) -> dict:
    base = name[: -len("_lrt")] if name.endswith("_lrt") and not name.startswith("lrt") else name
    spec = next(t for t in CASES[case]["edger"] if t["name"] == base)
    args = PARITY.pbglm_edger_args(case, spec)
    args["name"] = name
    args.pop("kind", None)
    if name.endswith("_lrt") or spec.get("kind") == "lrt":
        args["kind"] = "lrt"
    return args


@cache
def fitted(case: str, robust: bool) -> ad.AnnData:
    """The case fit with pbglm's edgeR 4 method, every reference test run."""
    import pbglm as pb
    from pbglm._design_findings import DesignWarning

    a = PARITY.case_adata(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        pb.tl.fit(a, CASES[case]["design"], method="edger", legacy=False, robust=robust)
    for name in test_names(tag(case, robust)):
        pb.tl.test(a, **_args(case, name))
    return a


def _rel(x, y) -> np.ndarray:
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (y != 0)
    return np.abs(x[ok] / y[ok] - 1)


def fit_metrics(case: str, robust: bool) -> dict:
    """Filter, normalisation factors, NB dispersion, QL prior and posterior agreement."""
    t = tag(case, robust)
    a = fitted(case, robust)
    p = params4(t)
    samples = pd.read_csv(OUT4 / f"edger4_{t}_samples.csv", index_col=0)
    genes = read4(f"edger4_{t}_genes.csv.gz")
    keep_ref = genes["keep"].astype(str).str.upper() == "TRUE"
    var = a.var.loc[genes.index]
    keep = ~var["pbglm_filtered"].astype(bool)
    k = keep_ref.to_numpy()
    v = var[k]
    g = genes[k]
    fit = a.uns["pbglm"]["fit"]
    return {
        "filter_mismatches": int((keep.to_numpy() != k).sum()),
        "norm_factors_max_rel": float(np.max(_rel(a.obs["pbglm_norm_factors"].loc[samples.index],
                                                  samples["norm_factors"]))),
        "dispersion_rel": float(abs(fit["dispersion_common"] / p["dispersion"] - 1)),
        "average_ql_rel": float(abs(fit["average_ql_dispersion"] / p["averageQlDispersion"] - 1)),
        "df2_rel": float(abs(fit["ql_df2"] / p["dfPriorRange"][1] - 1)) if not robust else np.nan,
        "s2_median_rel": float(np.median(_rel(v["pbglm_ql_dispersion"], g["s2"]))),
        "df_residual_median_rel": float(np.median(_rel(v["pbglm_df_residual"], g["df_residual_adj"]))),
        "s2_prior_max_rel": float(np.max(_rel(v["pbglm_ql_dispersion_prior"], g["s2_prior"]))),
        "df_prior_max_rel": float(np.max(_rel(v["pbglm_df_prior"], g["df_prior"]))),
        "df_prior_median_rel": float(np.median(_rel(v["pbglm_df_prior"], g["df_prior"]))),
        "df_prior_p99_rel": float(np.quantile(_rel(v["pbglm_df_prior"], g["df_prior"]), 0.99)),
        "s2_post_median_rel": float(np.median(_rel(v["pbglm_ql_dispersion_post"], g["s2_post"]))),
    }


def test_metrics(case: str, robust: bool, name: str) -> dict:
    """Agreement of one test with R."""
    import pbglm as pb

    t = tag(case, robust)
    a = fitted(case, robust)
    ref = read4(f"edger4_{t}_test_{name}.csv.gz")
    res = pb.get.results(a, name).loc[ref.index]
    jac, n1, n2 = PARITY.jaccard(res["padj"], ref["FDR"])
    out = {
        "pvalue_spearman": float(stats.spearmanr(res["pvalue"], ref["PValue"])[0]),
        "pvalue_median_rel": float(np.median(_rel(res["pvalue"], ref["PValue"]))),
        "jaccard": jac,
        "n_sig": n1,
        "n_sig_ref": n2,
    }
    stat_col = "F" if "F" in ref.columns else ("LR" if "LR" in ref.columns else None)
    if stat_col:
        out["stat_median_rel"] = float(np.median(_rel(res["stat"], ref[stat_col])))
    lfc_col = "logFC" if "logFC" in ref.columns else next((c for c in ref.columns if c.startswith("logFC")), None)
    out["lfc_max_abs"] = float(np.max(np.abs(res["log2fc"] - ref[lfc_col])))
    return out


NORM_CASES = ("airway", "three_groups")
NORM_METHODS = ("TMMwsp", "RLE", "upperquartile", "none")


@cache
def fitted_norm(case: str, method: str) -> ad.AnnData:
    """The case fit with ``normalize=method`` and its first reference QL test run."""
    import pbglm as pb
    from pbglm._design_findings import DesignWarning

    a = PARITY.case_adata(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        pb.tl.fit(a, CASES[case]["design"], method="edger", normalize=method)
    pb.tl.test(a, **_args(case, CASES[case]["edger"][0]["name"]))
    return a


def norm_metrics(case: str, method: str) -> dict:
    """Normalisation factors, QL dispersions and the first test under ``normLibSizes(method=)``."""
    import pbglm as pb

    t = f"{case}_{method}"
    a = fitted_norm(case, method)
    samples = pd.read_csv(OUT4 / f"edger4_{t}_samples.csv", index_col=0)
    genes = read4(f"edger4_{t}_genes.csv.gz")
    k = (genes["keep"].astype(str).str.upper() == "TRUE").to_numpy()
    v = a.var.loc[genes.index[k]]
    name = CASES[case]["edger"][0]["name"]
    ref = read4(f"edger4_{t}_test_{name}.csv.gz")
    res = pb.get.results(a, name).loc[ref.index]
    jac, _, _ = PARITY.jaccard(res["padj"], ref["FDR"])
    return {
        "norm_factors_max_rel": float(np.max(_rel(a.obs["pbglm_norm_factors"].loc[samples.index],
                                                  samples["norm_factors"]))),
        "dispersion_rel": float(abs(a.uns["pbglm"]["fit"]["dispersion_common"] / params4(t)["dispersion"] - 1)),
        "s2_post_median_rel": float(np.median(_rel(v["pbglm_ql_dispersion_post"], genes["s2_post"][k]))),
        "pvalue_spearman": float(stats.spearmanr(res["pvalue"], ref["PValue"])[0]),
        "jaccard": jac,
    }


def cases() -> list[str]:
    return [c for c in CASES if (OUT4 / f"edger4_{c}_genes.csv.gz").exists()]


if __name__ == "__main__":
    only = sys.argv[1:] or cases()
    rows = []
    for c in only:
        for robust in (False, True):
            fm = fit_metrics(c, robust)
            rows.append({"case": c, "robust": robust, "test": "(fit)", **fm})
            for n in test_names(tag(c, robust)):
                rows.append({"case": c, "robust": robust, "test": n, **test_metrics(c, robust, n)})
    for c in NORM_CASES:
        for meth in NORM_METHODS:
            rows.append({"case": c, "robust": False, "test": f"normalize={meth}", **norm_metrics(c, meth)})
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(pd.DataFrame(rows).to_string(float_format=lambda x: f"{x:.3g}"))
