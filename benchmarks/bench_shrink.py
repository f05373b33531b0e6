"""Wall time of apeglm fold-change shrinkage: pbglm ``tl.shrink`` vs PyDESeq2 ``lfc_shrink`` vs R ``lfcShrink``.

Only the shrinkage step is timed (each tool's own DESeq2 fit and Wald test run first, untimed), on
the bundled airway data (``~ cell + dex``, coefficient dex trt vs untrt), in one run:

* pbglm: ``pb.tl.shrink(adata, test)`` warm (median of ``--repeats`` after a first call that loads
  the numba cache; that first call is reported too);
* PyDESeq2: ``DeseqStats.lfc_shrink(coeff=...)`` (its apeglm-type shrinkage), once;
* R: ``lfcShrink(dds, coef = "dex_trt_vs_untrt", type = "apeglm")`` (DESeq2 1.38, apeglm 1.29 from
  /opt/R-next), once, when Rscript is available.

``--big`` adds pbglm alone on 20,000 genes x 400 samples (benchmarks/simulate.py, seed 0,
``~ batch + age + condition``). Usage::

    python benchmarks/bench_shrink.py [--repeats 3] [--big] [--no-pydeseq2] [--no-r]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).parent


def time_pbglm(adata, design, contrast, repeats: int) -> dict:
    import pbglm as pb

    a = adata.copy()
    pb.tl.fit(a, design)
    pb.tl.test(a, contrast, name="effect")
    t = time.perf_counter()
    pb.tl.shrink(a, "effect")
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        pb.tl.shrink(a, "effect")
        times.append(time.perf_counter() - t)
    return {"first": first, "times": times, "median": statistics.median(times), "n_genes": a.n_vars,
            "n_samples": a.n_obs}


def time_pydeseq2(adata, design, contrast) -> dict:
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    counts = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    keep = counts.sum(axis=0) > 0
    inference = DefaultInference(n_cpus=os.cpu_count())
    dds = DeseqDataSet(counts=counts.loc[:, keep], metadata=adata.obs.copy(), design=design, inference=inference,
                       quiet=True)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=list(contrast), inference=inference, quiet=True)
    stats.summary()
    coeff = next(c for c in dds.varm["LFC"].columns if c.startswith(contrast[0]))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats.lfc_shrink(coeff=coeff)
    return {"seconds": time.perf_counter() - t, "coeff": coeff}


_R_SCRIPT = r"""
.libPaths(c("/opt/R-next", .libPaths()))
suppressMessages({library(DESeq2); library(apeglm)})
args <- commandArgs(TRUE)
cts <- as.matrix(read.csv(args[1], row.names=1, check.names=FALSE))
cd <- read.csv(args[2], row.names=1, stringsAsFactors=TRUE)
cd$dex <- relevel(cd$dex, "untrt")
dds <- DESeq(DESeqDataSetFromMatrix(cts, cd, ~ cell + dex), quiet=TRUE)
tm <- system.time(res <- suppressMessages(lfcShrink(dds, coef="dex_trt_vs_untrt", type="apeglm")))["elapsed"]
cat(tm, "\n")
"""


def time_r(adata) -> float | None:
    if shutil.which("Rscript") is None:
        return None
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(adata.X.T, index=adata.var_names, columns=adata.obs_names).to_csv(f"{tmp}/c.csv")
        adata.obs[["cell", "dex"]].to_csv(f"{tmp}/s.csv")
        script = Path(tmp) / "bench.R"
        script.write_text(_R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), f"{tmp}/c.csv", f"{tmp}/s.csv"], capture_output=True, text=True,
                             check=False)
    try:
        return float(out.stdout.split()[-1])
    except (IndexError, ValueError):
        print("R failed:", out.stderr[-2000:], file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also pbglm on 20,000 x 400")
    parser.add_argument("--no-pydeseq2", action="store_true")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    import pbglm as pb

    airway = pb.datasets.airway()
    contrast = ("dex", "trt", "untrt")
    report: dict = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    report["pbglm_airway"] = time_pbglm(airway, "~ cell + dex", contrast, args.repeats)
    if not args.no_pydeseq2:
        report["pydeseq2_airway"] = time_pydeseq2(airway, "~ cell + dex", contrast)
    if not args.no_r:
        report["r_apeglm_airway"] = time_r(airway)
    if args.big:
        sys.path.insert(0, str(HERE))
        from simulate import simulate_batch_age_condition

        big = simulate_batch_age_condition(n_genes=20_000, n_samples=400, seed=0)
        report["pbglm_sim_20000x400"] = time_pbglm(big, "~ batch + age + condition", ("condition", "treated", "ctrl"),
                                                   args.repeats)
    warm = report["pbglm_airway"]["median"]
    if "pydeseq2_airway" in report:
        report["ratio_pydeseq2_over_pbglm"] = report["pydeseq2_airway"]["seconds"] / warm
    if report.get("r_apeglm_airway"):
        report["ratio_r_over_pbglm"] = report["r_apeglm_airway"] / warm
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
