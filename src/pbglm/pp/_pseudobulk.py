"""Sum cell-level raw counts into pseudobulk samples."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._kernels import aggregate as _agg
from .._settings import settings
from .._warn import warn

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger("pbglm")

_RESERVED_COLUMNS = ("n_cells", "total_counts")


def pseudobulk(
    adata: AnnData,
    sample_key: str,
    groups_key: str | None = None,
    *,
    layer: str | None = None,
    min_cells: int | None = 10,
    min_counts: int | None = 1000,
    fraction_expressing: bool = False,
    n_jobs: int | None = None,
) -> AnnData:
    """Sum raw counts of cells into pseudobulk samples.

    Every cell is added to the pseudobulk sample of its ``sample_key`` value (for instance the
    donor) or, when ``groups_key`` is given, of its ``sample_key`` x ``groups_key`` combination
    (for instance donor x cell type). The sums are exact (``int64`` accumulation) and computed by
    a multi-threaded numba kernel that never densifies the input.

    Parameters
    ----------
    adata
        Cell-level data with raw (non-negative integer) counts in ``.X`` or in ``.layers[layer]``.
        The matrix may be a dense :class:`numpy.ndarray`, a :mod:`scipy.sparse` CSR or CSC
        matrix or array, or a :class:`dask.array.Array` with dense or sparse chunks; a dask
        array is summed block by block, without loading it whole.
    sample_key
        Column of ``adata.obs`` naming the biological sample (donor, replicate) of each cell.
    groups_key
        Column of ``adata.obs`` naming a cell group (cell type, cluster). When given, one
        pseudobulk sample is made per sample x group combination that has cells.
    layer
        Layer holding the raw counts; ``None`` uses ``adata.X``.
    min_cells
        Pseudobulk samples summing fewer cells are dropped. ``None`` or ``0`` keeps all.
    min_counts
        Pseudobulk samples with a smaller total count are dropped. ``None`` or ``0`` keeps all.
    fraction_expressing
        Also store, per pseudobulk sample and gene, the fraction of cells with a positive count
        (used by :func:`pbglm.pp.filter_by_prop`).
    n_jobs
        Number of threads; ``None`` uses :attr:`pbglm.settings.n_jobs` (all cores by default).
        A dask array is summed by dask's current scheduler (one single-threaded kernel call per
        block), so ``n_jobs`` does not apply to it.

    Returns
    -------
    A new :class:`~anndata.AnnData` with one observation per pseudobulk sample, named
    ``"{sample}_{group}"`` (or ``"{sample}"`` without ``groups_key``), ordered by sample then
    group (category order for categorical columns, sorted order otherwise), and the genes of
    ``adata`` (``.var`` is a copy of ``adata.var``). It holds:

    ``.X``
        summed counts, a dense ``int64`` array.
    ``.obs[sample_key]``, ``.obs[groups_key]``
        the sample and group of each pseudobulk sample (categoricals keep their categories, in
        the same order, used or not).
    ``.obs[column]``
        every other column of ``adata.obs`` whose value is the same for all cells of each
        pseudobulk sample (sample-level covariates such as condition or batch, group-level
        annotations); columns that vary within a pseudobulk sample are left out.
    ``.obs['n_cells']``
        number of cells summed.
    ``.obs['total_counts']``
        sum of the counts over all genes.
    ``.layers['fraction_expressing']``
        fraction of the cells with a count above zero, per gene; only with
        ``fraction_expressing=True``.
    ``.uns['pseudobulk']``
        the arguments used (``sample_key``, ``groups_key``, ``layer``, ``min_cells``,
        ``min_counts``).

    The counts of every summed cell are checked while they are summed (no extra pass over the
    data). Cells whose ``sample_key`` or ``groups_key`` value is missing (NaN) are left out. Dropped
    pseudobulk samples are reported through the ``"pbglm"`` logger (level INFO); a warning is
    issued when every pseudobulk sample of a group is dropped.

    Raises
    ------
    KeyError
        If ``sample_key``, ``groups_key`` or ``layer`` does not exist.
    ValueError
        If the counts are negative or not whole numbers (for example log-normalised data), or if
        no pseudobulk sample passes ``min_cells`` and ``min_counts``.

    Examples
    --------
    >>> pb = pbglm.pp.pseudobulk(adata, "donor", "cell_type", layer="counts")
    >>> pb.obs[["donor", "cell_type", "n_cells", "total_counts"]]
    """
    obs = adata.obs
    _check_key(obs, sample_key, "sample_key")
    if groups_key is not None:
        _check_key(obs, groups_key, "groups_key")
        if groups_key == sample_key:
            raise ValueError(
                f"groups_key and sample_key are both {sample_key!r}; pass a different column as groups_key "
                "(for example the cell type) or leave groups_key=None."
            )
    min_cells = _check_threshold(min_cells, "min_cells")
    min_counts = _check_threshold(min_counts, "min_counts")
    x = _get_matrix(adata, layer)

    # --- codes of the pseudobulk samples ------------------------------------------------------------------------
    s_codes, s_levels = _factorize(obs[sample_key])
    if groups_key is None:
        combined = s_codes.astype(np.int64)
        n_g = 1
        g_codes = np.zeros_like(s_codes)
        g_levels: Sequence[Any] = [None]
    else:
        g_codes, g_levels = _factorize(obs[groups_key])
        n_g = len(g_levels)
        combined = s_codes.astype(np.int64) * n_g + g_codes
        combined[(s_codes < 0) | (g_codes < 0)] = -1
    n_missing = int(np.count_nonzero(combined < 0))
    if n_missing:
        keys = sample_key if groups_key is None else f"{sample_key!r} or {groups_key!r}"
        logger.info("pseudobulk: %d cells with a missing %s value were left out.", n_missing, keys)
    valid = combined >= 0
    observed = np.unique(combined[valid])  # sorted: sample-major, then group
    if observed.size == 0:
        raise ValueError(
            f"No cell has a {sample_key!r} value"
            + ("" if groups_key is None else f" and a {groups_key!r} value")
            + "; fill in the missing values of adata.obs."
        )
    codes = np.full(combined.shape[0], -1, dtype=np.int64)
    codes[valid] = np.searchsorted(observed, combined[valid])
    n_out = observed.size

    # --- sums ----------------------------------------------------------------------------------------------------
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    ocodes = codes[order]
    sums, counts = _aggregate(x, codes, order, ocodes, n_out, fraction_expressing, n_jobs, layer)

    n_cells = np.bincount(ocodes, minlength=n_out).astype(np.int64)
    first_cell = order[np.concatenate([[0], np.cumsum(n_cells)[:-1]])]
    total_counts = sums.sum(axis=1)

    # --- names and obs -------------------------------------------------------------------------------------------
    out_s = observed // n_g
    out_g = observed % n_g
    if groups_key is None:
        names = [str(s_levels[i]) for i in out_s]
    else:
        names = [f"{s_levels[i]}_{g_levels[j]}" for i, j in zip(out_s, out_g, strict=True)]
    index = pd.Index(names, dtype=object)
    if not index.is_unique:
        from anndata.utils import make_index_unique

        index = make_index_unique(index)
    out_obs, mixed = _propagate_obs(obs, sample_key, groups_key, order, ocodes, first_cell, index)
    out_obs["n_cells"] = n_cells
    out_obs["total_counts"] = total_counts

    # --- filtering -----------------------------------------------------------------------------------------------
    keep = np.ones(n_out, dtype=bool)
    if min_cells:
        keep &= n_cells >= min_cells
    if min_counts:
        keep &= total_counts >= min_counts
    n_dropped = int(n_out - keep.sum())
    if n_dropped:
        logger.info(
            "pseudobulk: dropped %d of %d pseudobulk samples with fewer than min_cells=%s cells or "
            "min_counts=%s counts: %s",
            n_dropped,
            n_out,
            min_cells,
            min_counts,
            ", ".join(index[~keep]),
        )
    if not keep.any():
        raise ValueError(
            f"All {n_out} pseudobulk samples have fewer than min_cells={min_cells} cells or min_counts={min_counts} "
            "counts; lower min_cells / min_counts (or pass None) to keep them."
        )
    if groups_key is not None:
        lost = np.setdiff1d(np.unique(out_g), np.unique(out_g[keep]))
        if lost.size:
            warn(
                f"No pseudobulk sample of {groups_key}={[g_levels[j] for j in lost]} is left after "
                f"min_cells={min_cells} and min_counts={min_counts}; lower the thresholds to keep these groups."
            )

    layers = {}
    if fraction_expressing:
        layers["fraction_expressing"] = (counts / n_cells[:, None])[keep]
    result = AnnData(
        X=sums[keep] if n_dropped else sums,
        obs=out_obs.iloc[keep] if n_dropped else out_obs,
        var=adata.var.copy(),
        layers=layers,
    )
    result.uns["pseudobulk"] = {
        "sample_key": sample_key,
        "groups_key": groups_key,
        "layer": layer,
        "min_cells": min_cells,
        "min_counts": min_counts,
        # cell-level columns that vary within a pseudobulk sample, with (up to 10) such samples
        "mixed_columns": mixed,
    }
    return result


# --------------------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------------------


def _check_key(obs: pd.DataFrame, key: str, argname: str) -> None:
    if key not in obs.columns:
        raise KeyError(
            f"{argname}={key!r} is not a column of adata.obs; pass one of the available columns: {list(obs.columns)}."
        )


def _check_threshold(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) or value < 0:
        raise ValueError(f"{name} must be a non-negative number or None, got {value!r}.")
    return value


def _get_matrix(adata: AnnData, layer: str | None):
    if layer is None:
        x = adata.X
        if x is None:
            raise ValueError("adata.X is None; pass the layer holding the raw counts, for example layer='counts'.")
        return x
    if layer not in adata.layers:
        raise KeyError(f"layer={layer!r} is not in adata.layers; pass one of {list(adata.layers.keys())} or None.")
    return adata.layers[layer]


def _factorize(series: pd.Series) -> tuple[np.ndarray, Sequence[Any]]:
    """Integer codes (``-1`` for missing) and levels: the categories of a categorical, else the sorted values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy().astype(np.int64), list(series.cat.categories)
    try:
        codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    except TypeError:  # values that cannot be compared with each other: keep the order of appearance
        codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
    return codes.astype(np.int64), list(uniques)


def _raise_on_flag(flag: int, layer: str | None) -> None:
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    hint = (
        "pass the layer holding the raw counts, for example layer='counts'"
        if layer is None
        else "pass a layer holding the raw counts"
    )
    if flag & _agg.FLAG_NON_INTEGER:
        raise ValueError(
            f"{where} contains values that are not whole numbers (for example log-normalised data, NaN or infinite "
            f"values); pseudobulk needs raw counts: {hint}."
        )
    if flag & _agg.FLAG_NEGATIVE:
        raise ValueError(f"{where} contains negative values; pseudobulk needs raw (non-negative) counts: {hint}.")


# --------------------------------------------------------------------------------------------------------------------
# summation
# --------------------------------------------------------------------------------------------------------------------


def _aggregate(
    x: Any,
    codes: np.ndarray,
    order: np.ndarray,
    ocodes: np.ndarray,
    n_out: int,
    do_counts: bool,
    n_jobs: int | None,
    layer: str | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the ``(n_out, n_genes)`` int64 sums and (with ``do_counts``) the counts of positive cells."""
    if _is_dask(x):
        return _aggregate_dask(x, codes, n_out, do_counts, layer)
    n_genes = x.shape[1]
    with settings.threads(n_jobs):
        n_chunks = settings.resolve_n_jobs(n_jobs)
        if sparse.issparse(x):
            if x.format == "csc":
                col_starts = _balanced_starts(np.asarray(x.indptr, dtype=np.int64), n_chunks)
                out_t = np.zeros((n_genes, n_out), dtype=np.int64)
                counts_t = np.zeros((n_genes if do_counts else 0, n_out), dtype=np.int64)
                flag = _agg.sum_csc_parallel(x.indptr, x.indices, x.data, codes, col_starts, out_t, counts_t, do_counts)
                _raise_on_flag(flag, layer)
                return np.ascontiguousarray(out_t.T), (np.ascontiguousarray(counts_t.T) if do_counts else None)
            if x.format != "csr":
                logger.info("pseudobulk: converting the %s matrix to CSR.", x.format.upper())
                x = sparse.csr_matrix(x)
            row_nnz = np.diff(x.indptr)[order]
            chunk_starts = _balanced_starts(np.concatenate([[0], np.cumsum(row_nnz, dtype=np.int64)]), n_chunks)
            out = np.zeros((n_out, n_genes), dtype=np.int64)
            counts = np.zeros((n_out, n_genes if do_counts else 0), dtype=np.int64)
            flag = _agg.sum_csr_rows_parallel(
                x.indptr, x.indices, x.data, order, ocodes, chunk_starts, out, counts, do_counts
            )
            _raise_on_flag(flag, layer)
            return out, (counts if do_counts else None)
        if not isinstance(x, np.ndarray):
            if not hasattr(x, "__array__") or not hasattr(x, "shape"):
                raise TypeError(
                    f"Cannot sum a {type(x).__name__}; pass a numpy array, a scipy sparse CSR/CSC matrix or a dask "
                    "array (for a backed AnnData, load it first with adata.to_memory())."
                )
            x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"Counts must be numeric, got dtype {x.dtype}; pass the layer holding the raw counts.")
        if x.flags.f_contiguous and not x.flags.c_contiguous:
            col_starts = _balanced_starts(np.arange(n_genes + 1, dtype=np.int64), n_chunks)
            out_t = np.zeros((n_genes, n_out), dtype=np.int64)
            counts_t = np.zeros((n_genes if do_counts else 0, n_out), dtype=np.int64)
            flag = _agg.sum_dense_cols_parallel(x, codes, col_starts, out_t, counts_t, do_counts)
            _raise_on_flag(flag, layer)
            return np.ascontiguousarray(out_t.T), (np.ascontiguousarray(counts_t.T) if do_counts else None)
        chunk_starts = _balanced_starts(np.arange(order.size + 1, dtype=np.int64), n_chunks)
        out = np.zeros((n_out, n_genes), dtype=np.int64)
        counts = np.zeros((n_out, n_genes if do_counts else 0), dtype=np.int64)
        flag = _agg.sum_dense_rows_parallel(x, order, ocodes, chunk_starts, out, counts, do_counts)
        _raise_on_flag(flag, layer)
        return out, (counts if do_counts else None)


def _balanced_starts(cum: np.ndarray, n_chunks: int) -> np.ndarray:
    """Cut ``len(cum) - 1`` items with cumulative weights ``cum`` (starting at 0) into ``n_chunks`` equal parts."""
    n = cum.shape[0] - 1
    total = cum[-1]
    if total == 0:
        inner = np.linspace(0, n, n_chunks + 1)[1:-1].astype(np.int64)
    else:
        inner = np.searchsorted(cum, total * np.arange(1, n_chunks) / n_chunks, side="left")
    return np.concatenate([[0], inner, [n]]).astype(np.int64)


def _is_dask(x: Any) -> bool:
    mod = type(x).__module__
    if not mod.startswith("dask"):
        return False
    import dask.array as da

    return isinstance(x, da.Array)


def _sum_block(block: Any, codes: np.ndarray, n_out: int, do_counts: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Serially sum one in-memory block (dask path); returns sums, counts and the bad-value flag."""
    n_genes = block.shape[1]
    if sparse.issparse(block):
        if block.format == "csc":
            out_t = np.zeros((n_genes, n_out), dtype=np.int64)
            counts_t = np.zeros((n_genes if do_counts else 0, n_out), dtype=np.int64)
            flag = _agg.sum_csc_serial(block.indptr, block.indices, block.data, codes, out_t, counts_t, do_counts)
            return out_t.T, counts_t.T, flag
        if block.format != "csr":
            block = sparse.csr_matrix(block)
        out = np.zeros((n_out, n_genes), dtype=np.int64)
        counts = np.zeros((n_out, n_genes if do_counts else 0), dtype=np.int64)
        flag = _agg.sum_csr_serial(block.indptr, block.indices, block.data, codes, out, counts, do_counts)
        return out, counts, flag
    block = np.asarray(block)
    if block.dtype.kind not in "biuf":
        raise ValueError(f"Counts must be numeric, got dtype {block.dtype}; pass the layer holding the raw counts.")
    out = np.zeros((n_out, n_genes), dtype=np.int64)
    counts = np.zeros((n_out, n_genes if do_counts else 0), dtype=np.int64)
    flag = _agg.sum_dense_serial(block, codes, out, counts, do_counts)
    return out, counts, flag


def _aggregate_dask(
    x: Any, codes: np.ndarray, n_out: int, do_counts: bool, layer: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum a dask array block by block: one ``(n_out, block_genes)`` partial per block, then a tree sum."""
    if any(np.isnan(c) for c in x.chunks[0]) or any(np.isnan(c) for c in x.chunks[1]):
        raise ValueError(
            "The dask array has unknown chunk sizes; call x.compute_chunk_sizes() (or rechunk it) before pseudobulk."
        )
    n_rows_out = 2 * n_out if do_counts else n_out

    def block_sum(block, block_info=None):
        start, stop = block_info[0]["array-location"][0]
        out, counts, flag = _sum_block(block, codes[start:stop], n_out, do_counts)
        _raise_on_flag(flag, layer)
        res = np.concatenate([out, counts], axis=0) if do_counts else out
        return res[None]

    n_row_blocks = len(x.chunks[0])
    partials = x.map_blocks(
        block_sum,
        new_axis=[1],
        chunks=((1,) * n_row_blocks, (n_rows_out,), x.chunks[1]),
        dtype=np.int64,
        meta=np.empty((0, 0, 0), dtype=np.int64),
    )
    total = np.asarray(partials.sum(axis=0).compute())
    if do_counts:
        return np.ascontiguousarray(total[:n_out]), np.ascontiguousarray(total[n_out:])
    return total, None


# --------------------------------------------------------------------------------------------------------------------
# obs
# --------------------------------------------------------------------------------------------------------------------


def _propagate_obs(
    obs: pd.DataFrame,
    sample_key: str,
    groups_key: str | None,
    order: np.ndarray,
    ocodes: np.ndarray,
    first_cell: np.ndarray,
    index: pd.Index,
) -> pd.DataFrame:
    """Keys plus every obs column constant within each pseudobulk, valued from the first cell of each."""
    same_pb = ocodes[1:] == ocodes[:-1]
    keys = [sample_key] if groups_key is None else [sample_key, groups_key]
    columns: dict[str, Any] = {}
    dropped = []
    mixed: dict[str, list[str]] = {}
    for name in obs.columns:
        col = obs[name]
        if name in keys:
            columns[name] = col
            continue
        if name in _RESERVED_COLUMNS:
            dropped.append(name)
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            c = col.cat.codes.to_numpy()
        else:
            try:
                c, _ = pd.factorize(col, use_na_sentinel=True)
            except TypeError:  # unhashable values
                dropped.append(name)
                continue
        cs = c[order]
        varies = (cs[1:] != cs[:-1]) & same_pb
        if np.any(varies):
            dropped.append(name)
            mixed[name] = [str(index[k]) for k in np.unique(ocodes[1:][varies])[:10]]
        else:
            columns[name] = col
    if dropped:
        logger.debug("pseudobulk: obs columns not constant within pseudobulk samples, left out: %s", dropped)
    out = pd.DataFrame({name: col.iloc[first_cell].set_axis(index) for name, col in columns.items()}, index=index)
    # keys first, then the other columns in their original order
    return out[keys + [n for n in out.columns if n not in keys]], mixed
