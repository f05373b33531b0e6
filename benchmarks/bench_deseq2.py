"""Wall time and peak memory of a DESeq2 pipeline (fit + one Wald test): pbglm vs PyDESeq2 (vs R).

Each tool runs in its own subprocess (so peak RSS is its own), on the same data:

* ``sim``: 20,000 genes x 400 samples, ``~ batch + age + condition`` (benchmarks/simulate.py, seed 0);
* ``airway``: the bundled airway data, ``~ cell + dex``.

pbglm is timed warm (median of ``--repeats`` runs after a first call that loads the numba cache);
its cold first call (empty JIT cache, compile included) and its first call with a populated cache
are reported separately. Usage::

    python benchmarks/bench_deseq2.py                 # everything (PyDESeq2 and R if installed)
    python benchmarks/bench_deseq2.py --quick         # 4,000 x 100 instead of 20,000 x 400
    python benchmarks/bench_deseq2.py --method edger  # pbglm's edgeR-QL method vs R edgeR
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
DESIGNS = {"sim": ("~ batch + age + condition", ("condition", "treated", "ctrl")),
           "airway": ("~ cell + dex", ("dex", "trt", "untrt"))}


def _data(name: str, genes: int, samples: int):
    sys.path.insert(0, str(HERE))
    import pbglm as pb
    from simulate import simulate_batch_age_condition

    if name == "airway":
        return pb.datasets.airway()
    return simulate_batch_age_condition(n_genes=genes, n_samples=samples, seed=0)


def _pbglm_once(adata, design, contrast, method, reduced=None):
    import pbglm as pb

    a = adata.copy()
    pb.tl.fit(a, design, method=method)
    if reduced:
        pb.tl.test(a, contrast, reduced=reduced)
    else:
        pb.tl.test(a, contrast)


def _pydeseq2_once(adata, design, contrast):
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    counts = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    keep = counts.sum(axis=0) > 0  # PyDESeq2 needs non-zero genes
    inference = DefaultInference(n_cpus=os.cpu_count())
    dds = DeseqDataSet(counts=counts.loc[:, keep], metadata=adata.obs.copy(), design=design, inference=inference,
                       quiet=True)
    dds.deseq2()
    stats = DeseqStats(dds, contrast=list(contrast), inference=inference, quiet=True)
    stats.summary()


def worker(tool: str, name: str, genes: int, samples: int, repeats: int, method: str, reduced: str | None) -> dict:
    """Run one tool on one data set in this process; return times and peak RSS."""
    adata = _data(name, genes, samples)
    design, contrast = DESIGNS[name]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    if tool == "pbglm":
        t = time.perf_counter()
        _pbglm_once(adata, design, contrast, method, reduced)
        first = time.perf_counter() - t
        for _ in range(repeats):
            t = time.perf_counter()
            _pbglm_once(adata, design, contrast, method, reduced)
            times.append(time.perf_counter() - t)
        out = {"first": first}
    else:
        for _ in range(repeats):
            t = time.perf_counter()
            _pydeseq2_once(adata, design, contrast)
            times.append(time.perf_counter() - t)
        out = {}
    out.update(times=times, median=statistics.median(times) if times else float("nan"),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               data_rss_mb=rss_before / 1024)
    return out


_R_SCRIPT = r"""
suppressMessages({library(DESeq2); library(edgeR)})
args <- commandArgs(TRUE)
cts <- as.matrix(read.csv(args[1], row.names=1, check.names=FALSE))
cd <- read.csv(args[2], row.names=1, stringsAsFactors=TRUE)
for (v in names(cd)) if (is.factor(cd[[v]])) cd[[v]] <- factor(cd[[v]], levels=unique(sort(as.character(cd[[v]]))))
if ("dex" %in% names(cd)) cd$dex <- relevel(cd$dex, "untrt")
design <- as.formula(args[3]); method <- args[4]; reps <- as.integer(args[5])
cts <- cts[rowSums(cts) > 0, ]
tm <- numeric(reps)
for (i in seq_len(reps)) tm[i] <- system.time({
  if (method == "deseq2") {
    dds <- DESeqDataSetFromMatrix(cts, cd, design); dds <- DESeq(dds, quiet=TRUE)
    res <- results(dds, name=tail(resultsNames(dds), 1))
  } else {
    mm <- model.matrix(design, cd); y <- DGEList(cts); keep <- filterByExpr(y, mm)
    y <- calcNormFactors(y[keep,, keep.lib.sizes=FALSE]); y <- estimateDisp(y, mm)
    fit <- glmQLFit(y, mm, robust=TRUE); res <- glmQLFTest(fit, coef=ncol(mm))
  }
})["elapsed"]
cat(median(tm), "\n")
"""


def run_r(name, genes, samples, repeats, method) -> float | None:
    """Median wall time of the R pipeline (data loading excluded), or None without Rscript."""
    if shutil.which("Rscript") is None:
        return None
    adata = _data(name, genes, samples)
    design, _ = DESIGNS[name]
    with tempfile.TemporaryDirectory() as tmp:
        import pandas as pd

        pd.DataFrame(adata.X.T, index=adata.var_names, columns=adata.obs_names).to_csv(f"{tmp}/c.csv")
        obs = adata.obs.copy()
        obs.to_csv(f"{tmp}/s.csv")
        script = Path(tmp) / "bench.R"
        script.write_text(_R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), f"{tmp}/c.csv", f"{tmp}/s.csv", design, method, str(repeats)],
                             capture_output=True, text=True, check=False)
        try:
            return float(out.stdout.split()[-1])
        except (IndexError, ValueError):
            sys.stderr.write(out.stderr[-2000:])
            return None


def _sub(args: list[str], env=None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="deseq2", choices=["deseq2", "edger"])
    parser.add_argument("--reduced", default=None, help="run an LRT against this reduced formula instead of Wald")
    parser.add_argument("--no-pydeseq2", action="store_true")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--datasets", default="sim,airway")
    parser.add_argument("--worker", nargs=7, metavar=("TOOL", "DATA", "G", "M", "REPS", "METHOD", "REDUCED"))
    args = parser.parse_args()
    if args.worker:
        tool, name, g, m, reps, method, reduced = args.worker
        res = worker(tool, name, int(g), int(m), int(reps), method, None if reduced == "-" else reduced)
        sys.stdout.write(json.dumps(res) + "\n")
        return
    genes, samples = (4000, 100) if args.quick else (20000, 400)
    rows = []
    for name in args.datasets.split(","):
        common = [name, str(genes), str(samples), str(args.repeats), args.method, args.reduced or "-"]
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            cold = _sub(["pbglm", *common[:3], "0", *common[4:]], env=env)["first"]
            warm = _sub(["pbglm", *common], env=env)
        row = {"data": name, "pbglm_cold_s": cold, "pbglm_first_cached_s": warm["first"],
               "pbglm_warm_s": warm["median"], "pbglm_peak_mb": warm["peak_rss_mb"]}
        if args.method == "deseq2" and not args.no_pydeseq2 and args.reduced is None:
            try:
                py = _sub(["pydeseq2", *common[:3], str(max(1, args.repeats)), *common[4:]])
                row.update(pydeseq2_s=py["median"], pydeseq2_peak_mb=py["peak_rss_mb"],
                           speedup_vs_pydeseq2=py["median"] / warm["median"],
                           memory_ratio=py["peak_rss_mb"] / warm["peak_rss_mb"])
            except subprocess.CalledProcessError as err:
                sys.stderr.write(f"PyDESeq2 failed: {err.stderr[-1000:]}\n")
        if not args.no_r:
            r = run_r(name, genes, samples, 1, args.method)
            if r is not None:
                row.update(r_s=r, speedup_vs_r=r / warm["median"])
        rows.append(row)
    sys.stdout.write(f"# {args.method}{' LRT' if args.reduced else ''}: fit + one test, "
                     f"sim = {genes} genes x {samples} samples, {os.cpu_count()} cores\n")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    sys.stdout.write("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n")
    for r in rows:
        sys.stdout.write("| " + " | ".join(f"{r.get(k, ''):.3g}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                          for k in keys) + " |\n")


if __name__ == "__main__":
    main()
