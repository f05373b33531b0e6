"""Import time: ``import pbglm`` against ``import anndata``, each in a fresh interpreter.

Usage: ``python benchmarks/bench_import.py [--repeats N]``. Prints the median and range over
``N`` fresh processes of: ``import anndata``; ``import pbglm`` after anndata; and the first use
of each subpackage (``pbglm.tl`` etc., which loads numba, SciPy and, for ``pl``, matplotlib).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

PROBE = """
import json, time
t0 = time.perf_counter(); import anndata; t1 = time.perf_counter()
import pbglm; t2 = time.perf_counter()
out = {"anndata": t1 - t0, "pbglm": t2 - t1}
for sub in ("get", "pp", "tl", "pl"):
    t = time.perf_counter(); getattr(pbglm, sub); out["pbglm." + sub] = time.perf_counter() - t
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
        res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(res.stdout))
    print(f"{args.repeats} fresh processes; seconds, median (min-max); each row runs after the one above")
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f"  import {name:<12} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
