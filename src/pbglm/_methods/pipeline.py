"""Run a method pipeline on plain arrays: the one entry point the AnnData layer (and dask
workers) call."""

from __future__ import annotations

import numpy as np

from ._result import FitResult
from .deseq2 import DESeq2Options, fit_deseq2
from .edger_fit import fit_edger_design


def run_pipeline(method: str, counts: np.ndarray, design: np.ndarray, *, size_factors="ratio",
                 fit_type: str = "parametric", filter_by_expr: bool = True, legacy: bool = False,
                 robust: bool | None = None, normalize: str = "TMM", n_jobs: int | None = None,
                 client=None, gene_chunks: int = 0, sample_names=None) -> FitResult:
    """Fit ``design`` to a (genes x samples) count matrix with ``method`` ("deseq2" or "edger").

    ``legacy`` / ``robust`` / ``normalize``: edgeR only (see :func:`~pbglm._methods.edger_fit.fit_edger_design`).
    ``client`` / ``gene_chunks``: DESeq2 only, run the per-gene stages on a dask client.
    ``sample_names``: edgeR, to name samples in errors.
    """
    if method == "deseq2":
        return fit_deseq2(counts, design, size_factors=size_factors, opts=DESeq2Options(fit_type=fit_type),
                          n_jobs=n_jobs, client=client, gene_chunks=gene_chunks)
    return fit_edger_design(counts, design, filter_by_expr=filter_by_expr, legacy=legacy, robust=robust,
                            normalize=normalize, n_jobs=n_jobs, sample_names=sample_names)
