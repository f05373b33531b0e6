"""Run pbglm on the reference cases and compare with the R tables in ``out/``.

Used by ``tests/test_deseq2_parity.py`` / ``tests/test_edger_parity.py`` and, as a script,
prints the parity report: ``python tests/reference/parity.py`` (DESeq2) or
``python tests/reference/parity.py edger``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
OUT = HERE / "out"
CASES = {c["case"]: c for c in json.loads((HERE / "cases.json").read_text())}


@cache
def dataset(name: str) -> ad.AnnData:
    """The AnnData of a reference dataset (bundled airway/pasilla or a simulated table)."""
    import pbglm as pb

    if name in ("airway", "pasilla"):
        return getattr(pb.datasets, name)()
    counts = pd.read_csv(HERE / "data" / f"{name}_counts.csv.gz", index_col=0)
    obs = pd.read_csv(HERE / "data" / f"{name}_samples.csv", index_col=0)
    obs.index = obs.index.astype(str)
    counts = counts.loc[:, obs.index]
    return ad.AnnData(X=counts.to_numpy().T.astype(np.int64), obs=obs, var=pd.DataFrame(index=counts.index))


def case_adata(case: str) -> ad.AnnData:
    """A fresh AnnData for a case with the factor levels it specifies."""
    spec = CASES[case]
    a = dataset(spec["dataset"]).copy()
    for col, levels in spec["levels"].items():
        a.obs[col] = pd.Categorical(a.obs[col].astype(str), categories=levels)
    return a


def r_to_pbglm_names(case: str, method: str = "deseq2") -> dict[str, str]:
    """Map R's coefficient names (resultsNames and model matrix names) to pbglm's, by position."""
    import pbglm as pb
    from pbglm._design import build_design

    params = json.loads((OUT / f"{method}_{case}_params.json").read_text())
    design = build_design(case_adata(case).obs, CASES[case]["design"])
    names = {}
    for key in ("resultsNames", "modelMatrixColnames", "design_columns", "colnames"):
        if key in params:
            names.update(dict(zip(params[key], design.columns, strict=True)))
    del pb
    return names


def pbglm_test_args(case: str, spec: dict) -> dict:
    """Arguments of ``pb.tl.test`` equivalent to a DESeq2 reference test spec."""
    names = r_to_pbglm_names(case)
    args: dict = {"name": spec["name"]}
    if "contrast" in spec:
        args["contrast"] = tuple(spec["contrast"])
    elif "coef" in spec:
        args["contrast"] = names[spec["coef"]]
    elif "contrast_vector" in spec:
        args["contrast"] = {names[k]: v for k, v in spec["contrast_vector"].items()}
    if "reduced" in spec:
        args["reduced"] = spec["reduced"]
    if "lfc_threshold" in spec:
        args["lfc_threshold"] = float(spec["lfc_threshold"])
        args["alt"] = spec.get("alt", "greaterAbs")
    if spec.get("use_t"):
        args["use_t"] = True
    return args


def _fitted(case: str, method: str, test_args) -> ad.AnnData:
    """The case fit with one of pbglm's methods and every reference test of that method run."""
    import warnings

    import pbglm as pb
    from pbglm._design_findings import DesignWarning

    a = case_adata(case)
    with warnings.catch_warnings():
        # e.g. time coded 0, 2, 4, ... used as a slope on purpose
        warnings.simplefilter("ignore", DesignWarning)
        pb.tl.fit(a, CASES[case]["design"], method=method, **({"legacy": True} if method == "edger" else {}))
    for spec in CASES[case][method]:
        pb.tl.test(a, **test_args(case, spec))
    return a


@cache
def fitted_deseq2(case: str) -> ad.AnnData:
    """The case fit with pbglm's DESeq2 method and every reference test run."""
    return _fitted(case, "deseq2", pbglm_test_args)


def read_ref(name: str) -> pd.DataFrame:
    """A reference table from ``out/`` indexed by its first column."""
    return pd.read_csv(OUT / name, index_col=0)


def jaccard(a: pd.Series, b: pd.Series, alpha: float = 0.1) -> tuple[float, int, int]:
    """Jaccard index of the genes with padj < alpha, and both set sizes."""
    s1, s2 = set(a.index[a < alpha]), set(b.index[b < alpha])
    union = s1 | s2
    return (len(s1 & s2) / len(union) if union else 1.0), len(s1), len(s2)


def deseq2_fit_metrics(case: str) -> dict:
    """Size factor and dispersion agreement of one case."""
    a = fitted_deseq2(case)
    ref_sf = pd.read_csv(OUT / f"deseq2_{case}_samples.csv", index_col=0)["sizeFactor"]
    sf = a.obs["pbglm_size_factor"].loc[ref_sf.index]
    genes = read_ref(f"deseq2_{case}_genes.csv.gz")
    bm = genes["baseMean"] >= 10
    disp = a.var["pbglm_dispersion"].loc[genes.index]
    rel = np.abs(disp[bm] / genes["dispersion"][bm] - 1)
    return {
        "size_factor_max_rel": float(np.max(np.abs(sf / ref_sf - 1))),
        "dispersion_median_rel": float(np.median(rel)),
        "dispersion_p90_rel": float(np.percentile(rel, 90)),
    }


def deseq2_test_metrics(case: str, test: str) -> dict:
    """Agreement of one test with DESeq2's results()."""
    import pbglm as pb

    a = fitted_deseq2(case)
    ref = read_ref(f"deseq2_{case}_test_{test}.csv.gz")
    res = pb.get.results(a, test).loc[ref.index]
    genes = read_ref(f"deseq2_{case}_genes.csv.gz").loc[ref.index]
    bm10 = ref["baseMean"] > 10
    ok = bm10 & ref["log2FoldChange"].notna() & res["log2fc"].notna()
    # genes whose IRLS DESeq2 could not converge go to R's optim; where that stops on a flat or
    # unbounded likelihood is optimiser-specific, so they are reported apart
    irls_ok = ok & (genes["betaIter"] < 100)
    both = ref["pvalue"].notna() & res["pvalue"].notna()
    jac, n_mine, n_ref = jaccard(res["padj"], ref["padj"])
    out = {
        "lfc_pearson": float(stats.pearsonr(res["log2fc"][ok], ref["log2FoldChange"][ok])[0]),
        "lfc_pearson_irls_converged": float(
            stats.pearsonr(res["log2fc"][irls_ok], ref["log2FoldChange"][irls_ok])[0]
        ),
        "n_irls_not_converged": int((ok & ~irls_ok).sum()),
        "pvalue_spearman": float(stats.spearmanr(res["pvalue"][both], ref["pvalue"][both])[0]),
        "pvalue_median_rel": float(np.median(np.abs(res["pvalue"][both] / ref["pvalue"][both] - 1))),
        "padj_na_agreement": float(np.mean(res["padj"].isna() == ref["padj"].isna())),
        "jaccard": jac,
        "n_sig": n_mine,
        "n_sig_ref": n_ref,
    }
    stat_ok = both & (ref["stat"].abs() > 1e-8)
    out["stat_median_rel"] = float(np.median(np.abs(res["stat"][stat_ok] / ref["stat"][stat_ok] - 1)))
    return out


def deseq2_tests() -> list[tuple[str, str]]:
    """Every (case, test) with a DESeq2 reference table."""
    return [(c, t["name"]) for c, spec in CASES.items() for t in spec["deseq2"]
            if (OUT / f"deseq2_{c}_test_{t['name']}.csv.gz").exists()]


def _edger_report() -> pd.DataFrame:
    rows = []
    for case in CASES:
        if not (OUT / f"edger_{case}_genes.csv.gz").exists():
            continue
        fm = edger_fit_metrics(case)
        rows += [{"case": c, "test": t, **fm, **edger_test_metrics(c, t)} for c, t in edger_tests() if c == case]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- edgeR


def pbglm_edger_args(case: str, spec: dict) -> dict:
    """Arguments of ``pb.tl.test`` equivalent to an edgeR reference test spec."""
    names = r_to_pbglm_names(case, "edger")
    args: dict = {"name": spec["name"]}
    if "contrast" in spec:
        args["contrast"] = tuple(spec["contrast"])
    elif "coef" in spec:
        args["contrast"] = names[spec["coef"]]
    elif "contrast_vector" in spec:
        args["contrast"] = {names[k]: v for k, v in spec["contrast_vector"].items()}
    elif "coefs" in spec:
        args["drop"] = [names[c] for c in spec["coefs"]]
    kind = spec.get("kind", "qlf")
    if kind == "treat":
        args["lfc_threshold"] = float(spec["lfc"])
    elif kind == "lrt":
        args["kind"] = "lrt"
    return args


@cache
def fitted_edger(case: str) -> ad.AnnData:
    """The case fit with pbglm's edgeR method and every reference test run."""
    return _fitted(case, "edger", pbglm_edger_args)


def edger_fit_metrics(case: str) -> dict:
    """TMM factors, filterByExpr and dispersion agreement of one case."""
    a = fitted_edger(case)
    samples = pd.read_csv(OUT / f"edger_{case}_samples.csv", index_col=0)
    genes = read_ref(f"edger_{case}_genes.csv.gz")
    nf = a.obs["pbglm_norm_factors"].loc[samples.index]
    keep_ref = genes["keep"].astype(str).str.upper() == "TRUE"
    keep = ~a.var["pbglm_filtered"].loc[genes.index].astype(bool)
    k = keep_ref.to_numpy()
    v = a.var.loc[genes.index[k]]
    g = genes[k]

    def rel(x, y):
        return float(np.nanmedian(np.abs(np.asarray(x, float) / np.asarray(y, float) - 1)))

    return {
        "tmm_max_rel": float(np.max(np.abs(nf / samples["norm_factors"] - 1))),
        "filter_mismatches": int((keep.to_numpy() != k).sum()),
        "common_rel": rel(v["pbglm_dispersion_common"].iloc[:1], [json.loads(
            (OUT / f"edger_{case}_params.json").read_text())["commonDispersion"]]),
        "trended_rel": rel(v["pbglm_dispersion_trend"], g["trended_dispersion"]),
        "tagwise_rel": rel(v["pbglm_dispersion_tagwise"], g["tagwise_dispersion"]),
        "s2_post_rel": rel(v["pbglm_ql_dispersion_post"], g["s2_post"]),
    }


def edger_test_metrics(case: str, test: str) -> dict:
    """Agreement of one edgeR test with R."""
    import pbglm as pb

    a = fitted_edger(case)
    ref = read_ref(f"edger_{case}_test_{test}.csv.gz")
    res = pb.get.results(a, test).loc[ref.index]
    stat_col = "F" if "F" in ref.columns else ("LR" if "LR" in ref.columns else None)
    jac, n1, n2 = jaccard(res["padj"], ref["FDR"])
    out = {
        "pvalue_spearman": float(stats.spearmanr(res["pvalue"], ref["PValue"])[0]),
        "pvalue_median_rel": float(np.median(np.abs(res["pvalue"] / ref["PValue"] - 1))),
        "jaccard": jac,
        "n_sig": n1,
        "n_sig_ref": n2,
    }
    if stat_col:
        out["stat_median_rel"] = float(np.median(np.abs(res["stat"] / ref[stat_col] - 1)))
    lfc_col = "logFC" if "logFC" in ref.columns else next((c for c in ref.columns if c.startswith("logFC")), None)
    if lfc_col:
        out["lfc_pearson"] = float(stats.pearsonr(res["log2fc"], ref[lfc_col])[0])
    return out


def edger_tests() -> list[tuple[str, str]]:
    """Every (case, test) with an edgeR reference table."""
    return [(c, t["name"]) for c, spec in CASES.items() for t in spec["edger"]
            if (OUT / f"edger_{c}_test_{t['name']}.csv.gz").exists()]


if __name__ == "__main__":
    import sys

    if "edger" in sys.argv[1:]:
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 5):
            sys.stdout.write(_edger_report().to_string(index=False) + "\n")
        raise SystemExit(0)
    rows = []
    for case in CASES:
        if not (OUT / f"deseq2_{case}_genes.csv.gz").exists():
            continue
        fm = deseq2_fit_metrics(case)
        for c, t in deseq2_tests():
            if c == case:
                rows.append({"case": c, "test": t, **fm, **deseq2_test_metrics(c, t)})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 5):
        sys.stdout.write(table.to_string(index=False) + "\n")
