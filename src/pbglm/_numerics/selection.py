"""Order statistics of a work array in numba kernels: quickselect, median and trimmed mean.

The partitions are branch-free Lomuto passes (a conditional increment instead of a data-dependent
branch), three-way so that runs of equal values (zeros, ties of small counts) cannot stall them:
about 3x faster than numba's ``np.median``/``np.sort`` on the few hundred values of a gene.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, error_model="numpy")
def _partition(a, lo, hi, pivot, strict):
    """Branch-free Lomuto pass: move the values of ``a[lo:hi]`` below ``pivot`` (``strict``) or not
    above it to the front; returns where the rest starts."""
    store = lo
    for i in range(lo, hi):
        v = a[i]
        a[i] = a[store]
        a[store] = v
        store += (v < pivot) if strict else (v <= pivot)
    return store


@njit(cache=True, error_model="numpy")
def select(a, lo, hi, k):
    """Rearrange ``a[lo:hi]`` so that ``a[k]`` holds its rank-k value, smaller values before it and
    larger after (quickselect with a median-of-three pivot and three-way branch-free partitions)."""
    while hi - lo > 1:
        x, y, z = a[lo], a[(lo + hi - 1) // 2], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        below = _partition(a, lo, hi, pivot, True)
        if k < below:
            hi = below
            continue
        equal_end = _partition(a, below, hi, pivot, False)
        if k < equal_end:
            return
        lo = equal_end


@njit(cache=True, error_model="numpy")
def trimmed_mean(a, n, cut):
    """Mean of ``a[:n]`` without its ``cut`` smallest and ``cut`` largest values (reorders a)."""
    if cut > 0:
        select(a, 0, n, cut)
        select(a, cut, n, n - cut - 1)
    s = 0.0
    for j in range(cut, n - cut):
        s += a[j]
    return s / (n - 2 * cut)


@njit(cache=True, error_model="numpy")
def median(a, n):
    """Median of ``a[:n]`` (R's: the mean of the two middle values for even n; reorders a)."""
    k = n // 2
    select(a, 0, n, k)
    if n % 2 == 1:
        return a[k]
    low = a[0]
    for j in range(1, k):
        low = max(low, a[j])
    return 0.5 * (low + a[k])
