"""Benchmark :func:`pbglm.pp.pseudobulk` against :func:`scanpy.get.aggregate` (and decoupler when installed).

Builds a CSR count matrix (default: 200,000 cells x 20,000 genes, ~2,380 stored values per cell,
~476 million in all, integer-valued float32 data: ~3.8 GB for data + indices), then sums it into
24 donors x 10 cell types with each tool: one cold call (for pbglm it includes loading or compiling
the numba kernels), then the median of ``--repeats`` timed calls. The peak memory of each call is
measured as the rise of the process's resident-set high-water mark (``VmHWM``, reset before each
call through ``/proc/self/clear_refs``; Linux only). Prints a markdown table; the ratio column
compares medians. On a shared machine, compare the "best" column too; "CPU time" is the median
process CPU time of a timed call (all threads).

Usage::

    python benchmarks/bench_pseudobulk.py            # full size
    python benchmarks/bench_pseudobulk.py --small    # 20,000 cells x 5,000 genes, for a quick check
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from importlib.metadata import version as _version

import numba
import numpy as np
import pandas as pd
from numba import njit, prange
from scipy import sparse


@njit(parallel=True, cache=True)
def _fill_rows(indptr, indices, data, n_genes, seed):
    """Fill each CSR row with distinct sorted random columns and integer counts (1 + geometric-like)."""
    n_rows = indptr.shape[0] - 1
    for i in prange(n_rows):
        np.random.seed(seed + i)  # noqa: NPY002 (numba: per-thread legacy RNG)
        s = indptr[i]
        k = indptr[i + 1] - s
        if k == 0:
            continue
        # k sorted uniforms from cumulative exponential gaps, mapped to k distinct columns:
        # floor(u_i * (n_genes - k)) is non-decreasing, so adding i makes it strictly increasing.
        acc = 0.0
        for t in range(k):
            acc += -np.log(1.0 - np.random.random())  # noqa: NPY002
            data[s + t] = acc  # store the running sum temporarily
        total = acc - np.log(1.0 - np.random.random())  # noqa: NPY002
        span = n_genes - k
        for t in range(k):
            indices[s + t] = np.int32(np.floor(data[s + t] / total * span)) + t
        for t in range(k):
            data[s + t] = np.float32(1.0 + np.floor(-1.5 * np.log(1.0 - np.random.random())))  # noqa: NPY002


def make_counts(n_cells: int, n_genes: int, nnz_per_cell: float, seed: int = 0) -> sparse.csr_matrix:
    """Random integer-valued float32 CSR counts, built in place (no temporary copy of data or indices)."""
    rng = np.random.default_rng(seed)
    row_nnz = rng.binomial(n_genes, nnz_per_cell / n_genes, size=n_cells)
    nnz = int(row_nnz.sum())
    idx_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_cells + 1, dtype=idx_dtype)
    np.cumsum(row_nnz, out=indptr[1:])
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=np.float32)
    _fill_rows(indptr, indices, data, n_genes, seed)
    x = sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes), copy=False)
    x.has_sorted_indices = True
    x.has_canonical_format = True
    return x


def make_obs(n_cells: int, n_donors: int, n_types: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    donors = [f"donor{i + 1}" for i in range(n_donors)]
    types = [f"type{j + 1}" for j in range(n_types)]
    donor = rng.integers(0, n_donors, n_cells)
    # unequal cell-type sizes, like real data
    p = rng.dirichlet(np.full(n_types, 2.0))
    cell_type = rng.choice(n_types, size=n_cells, p=p)
    obs = pd.DataFrame(
        {
            "donor": pd.Categorical.from_codes(donor, donors),
            "cell_type": pd.Categorical.from_codes(cell_type, types),
            "condition": pd.Categorical.from_codes(donor % 2, ["ctrl", "stim"]),
            "batch": pd.Categorical.from_codes(donor // 4, [f"b{i}" for i in range((n_donors + 3) // 4)]),
            "qc_score": rng.normal(size=n_cells),
        },
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    return obs


# ----------------------------------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure(fn, *, repeats: int) -> dict:
    """Cold call, then ``repeats`` timed calls; peak RSS rise of the cold call and of the last timed call."""
    gc.collect()
    can_reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - t0
    peak_cold = _status_kb("VmHWM") if can_reset else None
    del result
    times = []
    cpu_times = []
    peak_warm = None
    for _ in range(repeats):
        gc.collect()
        can_reset = _reset_peak()
        rss1 = _status_kb("VmRSS")
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        if can_reset:
            hwm = _status_kb("VmHWM")
            peak_warm = max(peak_warm or 0, hwm - rss1)
        last = result
        del result
    return {
        "cold_s": cold,
        "median_s": statistics.median(times),
        "times": times,
        "cpu_s": statistics.median(cpu_times),
        "peak_cold_mb": None if peak_cold is None else (peak_cold - rss0) / 1024,
        "peak_mb": None if peak_warm is None else peak_warm / 1024,
        "result": last,
    }


def _fmt_mb(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="20,000 cells x 5,000 genes (quick check)")
    parser.add_argument("--n-cells", type=int, default=200_000)
    parser.add_argument("--n-genes", type=int, default=20_000)
    parser.add_argument("--nnz-per-cell", type=float, default=2380.0)
    parser.add_argument("--n-donors", type=int, default=24)
    parser.add_argument("--n-types", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--no-scanpy", action="store_true", help="skip scanpy.get.aggregate")
    args = parser.parse_args(argv)
    if args.small:
        args.n_cells, args.n_genes, args.nnz_per_cell = 20_000, 5_000, 600.0

    import anndata as ad

    import pbglm

    t0 = time.perf_counter()
    x = make_counts(args.n_cells, args.n_genes, args.nnz_per_cell)
    obs = make_obs(args.n_cells, args.n_donors, args.n_types)
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(args.n_genes)]))
    build_s = time.perf_counter() - t0
    data_gb = (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 1e9
    print(
        f"matrix: {args.n_cells:,} cells x {args.n_genes:,} genes, {x.nnz:,} stored values "
        f"({data_gb:.2f} GB), built in {build_s:.1f} s; {args.n_donors} donors x {args.n_types} cell types; "
        f"numba threads: {numba.get_num_threads()} ({numba.threading_layer() if _ran_parallel() else 'n/a'}), "
        f"CPUs: {os.cpu_count()}",
        flush=True,
    )

    rows = []
    pb = measure(
        lambda: pbglm.pp.pseudobulk(adata, "donor", "cell_type", min_cells=0, min_counts=0, n_jobs=args.n_jobs),
        repeats=args.repeats,
    )
    rows.append(("pbglm.pp.pseudobulk", pb))
    pb_res = pb.pop("result")
    pbf = measure(
        lambda: pbglm.pp.pseudobulk(
            adata, "donor", "cell_type", min_cells=0, min_counts=0, fraction_expressing=True, n_jobs=args.n_jobs
        ),
        repeats=args.repeats,
    )
    pbf.pop("result")
    rows.append(("pbglm.pp.pseudobulk(fraction_expressing=True)", pbf))

    exact = None
    if not args.no_scanpy:
        try:
            import scanpy as sc
        except ImportError:
            print("scanpy is not installed: skipped", file=sys.stderr)
        else:
            scr = measure(lambda: sc.get.aggregate(adata, by=["donor", "cell_type"], func="sum"), repeats=args.repeats)
            sc_res = scr.pop("result")
            rows.append((f"scanpy.get.aggregate (scanpy {_version('scanpy')})", scr))
            sc_sum = np.asarray(sc_res.layers["sum"])
            sc_sum = pd.DataFrame(sc_sum, index=sc_res.obs_names).loc[pb_res.obs_names].to_numpy()
            exact = bool(np.array_equal(sc_sum, pb_res.X))
            del sc_res, sc_sum
    try:
        import decoupler as dc
    except ImportError:
        print("decoupler is not installed: skipped", file=sys.stderr)
    else:
        fn = getattr(getattr(dc, "pp", None), "pseudobulk", None) or dc.get_pseudobulk
        dcr = measure(
            lambda: fn(adata, sample_col="donor", groups_col="cell_type", mode="sum", min_cells=0, min_counts=0),
            repeats=args.repeats,
        )
        dcr.pop("result")
        rows.append((f"decoupler ({_version('decoupler')})", dcr))

    base = rows[0][1]["median_s"]
    print()
    print(f"| tool | cold call (s) | median of {args.repeats} (s) | best (s) | times (s) | CPU time (s) ", end="")
    print("| peak RSS rise (MB) | vs pbglm |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        times = ", ".join(f"{t:.3f}" for t in r["times"])
        print(
            f"| {name} | {r['cold_s']:.3f} | {r['median_s']:.3f} | {min(r['times']):.3f} | {times} | {r['cpu_s']:.2f} "
            f"| {_fmt_mb(r['peak_mb'])} | {r['median_s'] / base:.2f}x |"
        )
    if exact is not None:
        print(f"\npbglm sums equal scanpy's exactly: {exact}")
    return 0


def _ran_parallel() -> bool:
    try:
        numba.threading_layer()
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
