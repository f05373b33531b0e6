"""Wall time of the transforms: pbglm's pp.vst / pp.rlog / pp.log_cpm vs PyDESeq2's vst and R.

Data: 20,000 genes x 400 samples (benchmarks/simulate.py, seed 0), and its first 30 samples for
rlog (DESeq2's rlog fits one coefficient per sample: R takes hours on 400 samples). pbglm is timed
warm (median of ``--repeats`` calls after a first call that loads or compiles the numba cache;
the first call is reported too); PyDESeq2 (``DeseqDataSet.vst(use_design=False)``, which includes
its size factors) and R (``vst(dds, blind = TRUE)``, ``rlog``, edgeR ``cpm(calcNormFactors(y),
log = TRUE)``; data loading excluded) run once each in their own process. Usage::

    python benchmarks/bench_transforms.py [--repeats 5] [--no-r] [--no-pydeseq2]

Prints one JSON line per (task, tool) and a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
N_GENES, N_SAMPLES, N_RLOG = 20_000, 400, 30


def _data(samples: int):
    sys.path.insert(0, str(HERE))
    from simulate import simulate_batch_age_condition

    a = simulate_batch_age_condition(n_genes=N_GENES, n_samples=N_SAMPLES, seed=0)
    return a[:samples].copy()


def _pbglm(task: str, repeats: int) -> dict:
    import pbglm as pb

    adata = _data(N_RLOG if task == "rlog" else N_SAMPLES)
    fn = {"vst": pb.pp.vst, "rlog": pb.pp.rlog, "log_cpm": pb.pp.log_cpm}[task]
    t = time.perf_counter()
    fn(adata)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(adata)
        times.append(time.perf_counter() - t)
    return {"first_s": first, "median_s": statistics.median(times), "min_s": min(times)}


def _pydeseq2(repeats: int) -> dict:
    from pydeseq2.dds import DeseqDataSet

    adata = _data(N_SAMPLES)
    import pandas as pd

    counts = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    times = []
    for _ in range(repeats):
        dds = DeseqDataSet(counts=counts, metadata=adata.obs, design="~condition", quiet=True)
        t = time.perf_counter()
        dds.vst(use_design=False)
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times)}


_R = r"""
suppressPackageStartupMessages({library(DESeq2); library(edgeR)})
a <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(a[1], row.names = 1, check.names = FALSE))
dds <- DESeqDataSetFromMatrix(counts, data.frame(row.names = colnames(counts), x = rep(1, ncol(counts))), ~ 1)
small <- dds[, seq_len(as.integer(a[2]))]
tv <- system.time(v <- vst(dds, blind = TRUE))[["elapsed"]]
tr <- system.time(r <- rlog(small, blind = TRUE))[["elapsed"]]
tc <- system.time(l <- cpm(calcNormFactors(DGEList(counts)), log = TRUE, prior.count = 2))[["elapsed"]]
cat("RESULT", tv, tr, tc, "\n")
"""


def _r() -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    import pandas as pd

    adata = _data(N_SAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(adata.X.T, index=adata.var_names, columns=adata.obs_names).to_csv(f"{tmp}/c.csv")
        (Path(tmp) / "b.R").write_text(_R)
        out = subprocess.run(["Rscript", f"{tmp}/b.R", f"{tmp}/c.csv", str(N_RLOG)], capture_output=True, text=True,
                             check=False)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
    if not line:
        sys.stderr.write(out.stderr[-2000:])
        return None
    tv, tr, tc = (float(x) for x in line[0].split()[1:])
    return {"vst": tv, "rlog": tr, "log_cpm": tc}


def _sub(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--no-pydeseq2", action="store_true")
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        tool, task = args.worker[0], args.worker[1]
        res = _pbglm(task, args.repeats) if tool == "pbglm" else _pydeseq2(args.repeats)
        print(json.dumps(res))
        return
    rows = []
    for task in ("vst", "rlog", "log_cpm"):
        res = _sub(["pbglm", task, "--repeats", str(args.repeats)])
        shape = f"{N_GENES}x{N_RLOG if task == 'rlog' else N_SAMPLES}"
        rows.append({"task": task, "tool": "pbglm", "shape": shape, **res})
    if not args.no_pydeseq2:
        rows.append({"task": "vst", "tool": "pydeseq2", "shape": f"{N_GENES}x{N_SAMPLES}",
                     **_sub(["pydeseq2", "vst", "--repeats", "1"])})
    if not args.no_r:
        r = _r()
        if r is not None:
            for task, secs in r.items():
                shape = f"{N_GENES}x{N_RLOG if task == 'rlog' else N_SAMPLES}"
                rows.append({"task": task, "tool": "R", "shape": shape, "median_s": secs})
    for row in rows:
        print(json.dumps(row))
    print(f"\n{'task':8} {'tool':9} {'shape':10} {'warm median s':>14} {'first s':>9}")
    for row in rows:
        first = f"{row['first_s']:.2f}" if "first_s" in row else ""
        print(f"{row['task']:8} {row['tool']:9} {row['shape']:10} {row['median_s']:14.3f} {first:>9}")


if __name__ == "__main__":
    main()
