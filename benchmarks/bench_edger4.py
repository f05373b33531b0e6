"""Wall time of edgeR 4's QL pipeline (fit + one QL F-test): pbglm ``method="edger"`` vs R edgeR 4.5.1.

Data: 20,000 genes x 400 samples, ``~ batch + age + condition`` (benchmarks/simulate.py, seed 0).
pbglm: ``tl.fit(method="edger")`` (filterByExpr -> TMM -> glmQLFit(legacy=FALSE)) + ``tl.test``,
timed warm (median of ``--repeats`` runs after one call that loads the numba cache), with the time
of each stage of the fit. R (same run, same data, data loading excluded): ``filterByExpr`` ->
``normLibSizes`` -> ``glmQLFit`` -> ``glmQLFTest`` with edgeR 4.5.1 / limma 3.63.2 from
/opt/R-next. Usage::

    python benchmarks/bench_edger4.py            # 20,000 x 400
    python benchmarks/bench_edger4.py --quick    # 4,000 x 100
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
DESIGN = "~ batch + age + condition"
CONTRAST = ("condition", "treated", "ctrl")

_R_SCRIPT = r"""
.libPaths(c("/opt/R-next", .libPaths()))
suppressMessages({library(edgeR); library(limma)})
args <- commandArgs(TRUE)
cts <- as.matrix(read.csv(args[1], row.names=1, check.names=FALSE))
cd <- read.csv(args[2], row.names=1, stringsAsFactors=TRUE)
cd$condition <- relevel(cd$condition, "ctrl")
reps <- as.integer(args[3])
tm <- numeric(reps)
for (i in seq_len(reps)) tm[i] <- system.time({
  mm <- model.matrix(~ batch + age + condition, cd); y <- DGEList(cts); keep <- filterByExpr(y, mm)
  y <- normLibSizes(y[keep,, keep.lib.sizes=FALSE])
  fit <- glmQLFit(y, mm); res <- glmQLFTest(fit, coef=ncol(mm))
})["elapsed"]
cat(as.character(packageVersion("edgeR")), median(tm), "\n")
"""


def _data(genes: int, samples: int):
    sys.path.insert(0, str(HERE))
    from simulate import simulate_batch_age_condition

    return simulate_batch_age_condition(n_genes=genes, n_samples=samples, seed=0)


def _stages(adata) -> dict:
    """Seconds of each stage of the edgeR 4 fit on the filtered counts (plain arrays)."""
    import numpy as np

    from pbglm._design import build_design
    from pbglm._kernels.edger_glm import glm_fit, pred_fc
    from pbglm._kernels.ql_adjusted_deviance import adjusted_deviance_df, moment_table
    from pbglm._methods import edger_ql as q
    from pbglm._numerics.ave_log_cpm import ave_log_cpm
    from pbglm._numerics.filter_by_expr import filter_by_expr_mask
    from pbglm._numerics.squeeze_var_unequal_df import squeeze_var_unequal_df
    from pbglm._numerics.tmm import calc_norm_factors_tmm

    t = {}
    t0 = time.perf_counter()
    X = build_design(adata.obs, DESIGN).matrix
    Y = np.asarray(adata.X, dtype=float).T
    keep = filter_by_expr_mask(Y, X)
    Y = np.ascontiguousarray(Y[keep])
    lib = Y.sum(0)
    eff = lib * calc_norm_factors_tmm(Y, lib)
    alc = ave_log_cpm(Y, eff)
    t["filter+TMM+aveLogCPM"] = time.perf_counter() - t0
    G, m = Y.shape
    top = q._choose_lowess_span(G * (m - X.shape[1]) ** 0.5, small_n=20, min_span=0.02)
    idx = np.argsort(-alc, kind="stable")[: int(np.ceil(top * G))]
    t0 = time.perf_counter()
    phi = q.common_dispersion_cox_reid(Y[idx], X, np.log(eff), alc[idx])
    t["common dispersion (top genes)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = glm_fit(Y, X, np.log(eff), phi)
    t["glm fit x1"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = moment_table(phi)
    t["moment table"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, df, s2 = adjusted_deviance_df(Y, fit.fitted, X, phi, 1.0, table)
    t["adjusted deviance x1"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sq = squeeze_var_unequal_df(s2, df, covariate=alc)
    t["squeezeVar"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred_fc(Y, X, eff, np.full(G, phi), 0.125, start=fit.coefficients)
    t["predFC"] = time.perf_counter() - t0
    del sq
    return t


def _pbglm_once(adata) -> float:
    import pbglm as pb

    a = adata.copy()
    t0 = time.perf_counter()
    pb.tl.fit(a, DESIGN, method="edger")
    pb.tl.test(a, CONTRAST)
    return time.perf_counter() - t0


def run_r(adata, repeats: int):
    if shutil.which("Rscript") is None or not Path("/opt/R-next/edgeR").exists():
        return None, None
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(adata.X.T, index=adata.var_names, columns=adata.obs_names).to_csv(f"{tmp}/c.csv")
        adata.obs.to_csv(f"{tmp}/s.csv")
        script = Path(tmp) / "bench.R"
        script.write_text(_R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), f"{tmp}/c.csv", f"{tmp}/s.csv", str(repeats)],
                             capture_output=True, text=True, check=False)
    try:
        ver, secs = out.stdout.split()[-2:]
        return ver, float(secs)
    except ValueError:
        sys.stderr.write(out.stderr[-2000:])
        return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    genes, samples = (4000, 100) if args.quick else (20_000, 400)
    adata = _data(genes, samples)
    t0 = time.perf_counter()
    _pbglm_once(adata)
    first = time.perf_counter() - t0
    times = [_pbglm_once(adata) for _ in range(args.repeats)]
    stages = _stages(adata)
    ver, r_secs = (None, None) if args.no_r else run_r(adata, 1)
    warm = statistics.median(times)
    print(f"# edgeR 4 QL: {genes} genes x {samples} samples, {DESIGN}; {os.cpu_count()} CPUs visible")
    print(f"pbglm first call (numba cache load): {first:.2f} s")
    print(f"pbglm warm fit + QL F-test: median {warm:.2f} s (runs: {', '.join(f'{x:.2f}' for x in times)})")
    for k, v in stages.items():
        print(f"  stage {k}: {v:.3f} s")
    if r_secs is not None:
        print(f"R edgeR {ver} fit + glmQLFTest: {r_secs:.2f} s   ratio R / pbglm = {r_secs / warm:.1f}x")


if __name__ == "__main__":
    main()
