"""Numba kernels that sum cell-level counts into pseudobulk samples.

Every kernel adds the counts of each cell (row) into the row of its pseudobulk ``code`` of an
``int64`` output (``code < 0``: the cell is left out), and optionally counts the cells with a
positive count per pseudobulk x gene. Every kernel also checks the values it reads and returns a
bit mask: ``FLAG_NEGATIVE`` when a value is below zero, ``FLAG_NON_INTEGER`` when a value is not
a whole number (or is NaN, infinite, or too large to be summed exactly).

Parallel layouts
----------------
* Row-major input (CSR, C-ordered dense): the cells are sorted by code and the sorted order is
  cut into one chunk per thread with the same number of stored values. Within its chunk a
  thread owns every pseudobulk whose cells all lie in the chunk and writes them straight into
  the output; the first and the last pseudobulk of a chunk may be shared with the neighbouring
  chunks, so those go to a two-row buffer per chunk, added into the output at the end. Memory:
  ``2 * n_threads * n_genes`` extra values, whatever the number of pseudobulks.
* Column-major input (CSC, F-ordered dense): the genes are cut into chunks with the same number
  of stored values; a thread owns its genes, so no buffer is needed. The output is transposed
  (``n_genes x n_out``) so that each gene's pseudobulk values are contiguous.
* Serial kernels (no sorting, ``nogil``) are used per block by the dask path, where dask itself
  runs the blocks in parallel; parallel numba kernels must not be launched from several threads
  at once with numba's ``workqueue`` threading layer.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

FLAG_NEGATIVE = 1
FLAG_NON_INTEGER = 2


# Each row helper returns (sum of the fractional parts, smallest value) of the values it read:
# the fractional part of a non-integer is > 0, and NaN or an infinite value makes the sum NaN,
# so ``frac != 0`` flags every value that is not a finite whole number. Two reductions in
# registers are much cheaper than a branch per value inside the scatter loop.


@njit(cache=True)
def _flag(frac: float, vmin: float) -> int:
    flag = 0
    if not (frac == 0.0):
        flag |= FLAG_NON_INTEGER
    if vmin < 0.0:
        flag |= FLAG_NEGATIVE
    return flag


@njit(cache=True)
def _sparse_row(indptr, indices, data, row, target):
    frac = 0.0
    vmin = 0.0
    for k in range(indptr[row], indptr[row + 1]):
        fv = np.float64(data[k])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        target[indices[k]] += np.int64(fv)
    return _flag(frac, vmin)


@njit(cache=True)
def _sparse_row_counts(indptr, indices, data, row, target, ctarget):
    frac = 0.0
    vmin = 0.0
    for k in range(indptr[row], indptr[row + 1]):
        fv = np.float64(data[k])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        j = indices[k]
        target[j] += np.int64(fv)
        if fv > 0.0:
            ctarget[j] += 1
    return _flag(frac, vmin)


@njit(cache=True)
def _dense_row(x, target):
    frac = 0.0
    vmin = 0.0
    for j in range(x.shape[0]):
        fv = np.float64(x[j])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        target[j] += np.int64(fv)
    return _flag(frac, vmin)


@njit(cache=True)
def _dense_row_counts(x, target, ctarget):
    frac = 0.0
    vmin = 0.0
    for j in range(x.shape[0]):
        fv = np.float64(x[j])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        target[j] += np.int64(fv)
        if fv > 0.0:
            ctarget[j] += 1
    return _flag(frac, vmin)


@njit(cache=True, parallel=True)
def sum_csr_rows_parallel(indptr, indices, data, order, ocodes, chunk_starts, out, counts, do_counts):
    """Sum the rows of a CSR matrix into ``out`` (and ``counts``), one chunk of sorted cells per thread.

    ``order`` holds the cells to sum sorted by code, ``ocodes = codes[order]``, and
    ``chunk_starts`` (length ``n_chunks + 1``) cuts ``order`` into chunks. ``out`` and
    ``counts`` must be zero on entry; ``counts`` may have zero columns when ``do_counts`` is false.
    Returns the bit mask of bad values found.
    """
    n_chunks = chunk_starts.shape[0] - 1
    n_genes = out.shape[1]
    n_cgenes = counts.shape[1]
    buf = np.zeros((n_chunks, 2, n_genes), dtype=np.int64)
    cbuf = np.zeros((n_chunks, 2, n_cgenes), dtype=np.int64)
    flags = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        s = chunk_starts[c]
        e = chunk_starts[c + 1]
        if s >= e:
            continue
        g_first = ocodes[s]
        g_last = ocodes[e - 1]
        flag = 0
        p = s
        while p < e:
            g = ocodes[p]
            q = p + 1
            while q < e and ocodes[q] == g:
                q += 1
            if g == g_first:
                target = buf[c, 0]
                ctarget = cbuf[c, 0]
            elif g == g_last:
                target = buf[c, 1]
                ctarget = cbuf[c, 1]
            else:
                target = out[g]
                ctarget = counts[g]
            if do_counts:
                for r in range(p, q):
                    flag |= _sparse_row_counts(indptr, indices, data, order[r], target, ctarget)
            else:
                for r in range(p, q):
                    flag |= _sparse_row(indptr, indices, data, order[r], target)
            p = q
        flags[c] = flag
    _flush_buffers(ocodes, chunk_starts, buf, cbuf, out, counts)
    result = 0
    for c in range(n_chunks):
        result |= flags[c]
    return result


@njit(cache=True, parallel=True)
def sum_dense_rows_parallel(x, order, ocodes, chunk_starts, out, counts, do_counts):
    """Sum the rows of a dense (row-major) matrix; same layout and contract as :func:`sum_csr_rows_parallel`."""
    n_chunks = chunk_starts.shape[0] - 1
    n_genes = out.shape[1]
    n_cgenes = counts.shape[1]
    buf = np.zeros((n_chunks, 2, n_genes), dtype=np.int64)
    cbuf = np.zeros((n_chunks, 2, n_cgenes), dtype=np.int64)
    flags = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        s = chunk_starts[c]
        e = chunk_starts[c + 1]
        if s >= e:
            continue
        g_first = ocodes[s]
        g_last = ocodes[e - 1]
        flag = 0
        p = s
        while p < e:
            g = ocodes[p]
            q = p + 1
            while q < e and ocodes[q] == g:
                q += 1
            if g == g_first:
                target = buf[c, 0]
                ctarget = cbuf[c, 0]
            elif g == g_last:
                target = buf[c, 1]
                ctarget = cbuf[c, 1]
            else:
                target = out[g]
                ctarget = counts[g]
            if do_counts:
                for r in range(p, q):
                    flag |= _dense_row_counts(x[order[r]], target, ctarget)
            else:
                for r in range(p, q):
                    flag |= _dense_row(x[order[r]], target)
            p = q
        flags[c] = flag
    _flush_buffers(ocodes, chunk_starts, buf, cbuf, out, counts)
    result = 0
    for c in range(n_chunks):
        result |= flags[c]
    return result


@njit(cache=True)
def _flush_buffers(ocodes, chunk_starts, buf, cbuf, out, counts):
    n_chunks = chunk_starts.shape[0] - 1
    for c in range(n_chunks):
        s = chunk_starts[c]
        e = chunk_starts[c + 1]
        if s >= e:
            continue
        g_first = ocodes[s]
        g_last = ocodes[e - 1]
        out[g_first] += buf[c, 0]
        counts[g_first] += cbuf[c, 0]
        if g_last != g_first:
            out[g_last] += buf[c, 1]
            counts[g_last] += cbuf[c, 1]


@njit(cache=True)
def _csc_col(indptr, indices, data, codes, j, target, ctarget, do_counts):
    frac = 0.0
    vmin = 0.0
    for k in range(indptr[j], indptr[j + 1]):
        fv = np.float64(data[k])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        g = codes[indices[k]]
        if g >= 0:
            target[g] += np.int64(fv)
            if do_counts and fv > 0.0:
                ctarget[g] += 1
    return _flag(frac, vmin)


@njit(cache=True)
def _dense_col(x, codes, j, target, ctarget, do_counts):
    frac = 0.0
    vmin = 0.0
    for i in range(x.shape[0]):
        fv = np.float64(x[i, j])
        frac += fv - math.floor(fv)
        vmin = min(vmin, fv)
        g = codes[i]
        if g >= 0:
            target[g] += np.int64(fv)
            if do_counts and fv > 0.0:
                ctarget[g] += 1
    return _flag(frac, vmin)


@njit(cache=True, parallel=True)
def sum_csc_parallel(indptr, indices, data, codes, col_starts, out_t, counts_t, do_counts):
    """Sum a CSC matrix into the transposed output ``out_t`` (``n_genes x n_out``), genes split by ``col_starts``.

    ``counts_t`` has ``n_genes`` rows with ``do_counts`` and may have none otherwise. Returns the bit
    mask of bad values.
    """
    n_chunks = col_starts.shape[0] - 1
    flags = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        flag = 0
        for j in range(col_starts[c], col_starts[c + 1]):
            ctarget = counts_t[j] if do_counts else counts_t[0:0].ravel()
            flag |= _csc_col(indptr, indices, data, codes, j, out_t[j], ctarget, do_counts)
        flags[c] = flag
    result = 0
    for c in range(n_chunks):
        result |= flags[c]
    return result


@njit(cache=True, parallel=True)
def sum_dense_cols_parallel(x, codes, col_starts, out_t, counts_t, do_counts):
    """Sum a column-major dense matrix into ``out_t`` (``n_genes x n_out``); contract of :func:`sum_csc_parallel`."""
    n_chunks = col_starts.shape[0] - 1
    flags = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        flag = 0
        for j in range(col_starts[c], col_starts[c + 1]):
            ctarget = counts_t[j] if do_counts else counts_t[0:0].ravel()
            flag |= _dense_col(x, codes, j, out_t[j], ctarget, do_counts)
        flags[c] = flag
    result = 0
    for c in range(n_chunks):
        result |= flags[c]
    return result


@njit(cache=True, nogil=True)
def sum_csr_serial(indptr, indices, data, codes, out, counts, do_counts):
    """Serial CSR sum in row order (used per dask block). Returns the bit mask of bad values."""
    flag = 0
    for row in range(indptr.shape[0] - 1):
        g = codes[row]
        if g < 0:
            continue
        if do_counts:
            flag |= _sparse_row_counts(indptr, indices, data, row, out[g], counts[g])
        else:
            flag |= _sparse_row(indptr, indices, data, row, out[g])
    return flag


@njit(cache=True, nogil=True)
def sum_dense_serial(x, codes, out, counts, do_counts):
    """Serial dense sum in row order (used per dask block). Returns the bit mask of bad values."""
    flag = 0
    for row in range(x.shape[0]):
        g = codes[row]
        if g < 0:
            continue
        if do_counts:
            flag |= _dense_row_counts(x[row], out[g], counts[g])
        else:
            flag |= _dense_row(x[row], out[g])
    return flag


@njit(cache=True, nogil=True)
def sum_csc_serial(indptr, indices, data, codes, out_t, counts_t, do_counts):
    """Serial CSC sum into the transposed output (used per dask block). Returns the bit mask of bad values."""
    flag = 0
    for j in range(indptr.shape[0] - 1):
        ctarget = counts_t[j] if do_counts else counts_t[0:0].ravel()
        flag |= _csc_col(indptr, indices, data, codes, j, out_t[j], ctarget, do_counts)
    return flag
