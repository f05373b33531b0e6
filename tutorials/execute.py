"""Execute the tutorial notebooks top to bottom, each in a fresh kernel.

From the repository root::

    python tutorials/execute.py                    # re-execute every notebook and store the new outputs
    python tutorials/execute.py tutorials/03_two_treatments.ipynb   # just one
    python tutorials/execute.py --check            # execute, keep the files as they are (CI)

Re-execute after an API change and commit the notebooks with their outputs: the docs render the stored
outputs and never execute anything. ``--check`` fails (exit 1) when a cell raises; it also reports the
notebooks that took longer than ``--budget`` seconds (each should run in under a minute). The kernel is the
``python3`` kernel of this interpreter (``pip install ".[tutorials]"``); when pbglm is not installed, the
repository's ``src/`` is put on the kernel's ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def _kernel_environment() -> None:
    """Let the kernel import pbglm from the source tree when it is not installed.

    The kernel runs in the notebook's folder, so relative ``PYTHONPATH`` entries (``PYTHONPATH=src``) are made
    absolute first: they would otherwise point below ``tutorials/``.
    """
    entries = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if importlib.util.find_spec("pbglm") is None:
        entries.insert(0, str(HERE.parent / "src"))
    if entries:
        os.environ["PYTHONPATH"] = os.pathsep.join(entries)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def execute(path: Path, *, write: bool, timeout: int) -> float:
    """Execute one notebook in a fresh kernel (working directory: its folder); return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: tutorials/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="execute without writing the outputs back")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed for one cell (default 600)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds one notebook should take (default 60)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if not notebooks:
        parser.error(f"no notebooks in {HERE}")
    _kernel_environment()
    failed, slow = [], []
    for path in notebooks:
        try:
            seconds = execute(path, write=not args.check, timeout=args.timeout)
        except CellExecutionError as err:
            failed.append(path.name)
            print(f"FAILED  {path.name}\n{err}", flush=True)
            continue
        over = seconds > args.budget
        if over:
            slow.append(path.name)
        print(f"ok      {path.name}  {seconds:.1f} s{'  (over the budget)' if over else ''}", flush=True)
    if slow:
        print(f"over {args.budget:.0f} s: {', '.join(slow)}")
    print(f"notebooks: {len(notebooks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
