"""Small dense linear algebra for per-gene p x p systems inside numba kernels.

A design with p columns is handled through its packed outer products: row k of ``Pt``
(``q = p (p + 1) / 2`` rows, one per lower-triangle entry) holds ``X[:, a] * X[:, b]`` over
samples, so ``X^T diag(w) X`` is ``q`` dot products with the weight vector.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def packed_outer(design: np.ndarray) -> np.ndarray:
    """Return ``Pt`` (q x m): the lower-triangle outer products of the design rows."""
    m, p = design.shape
    rows = [design[:, a] * design[:, b] for a in range(p) for b in range(a + 1)]
    return np.ascontiguousarray(np.array(rows, dtype=np.float64).reshape(len(rows), m))


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def gram(Pt, w, p, out):
    """``out <- X^T diag(w) X`` (p x p, symmetric) from the packed outer products.

    Only re-association is allowed (so the dot products vectorise); no NaN/Inf assumptions.
    """
    m = w.shape[0]
    k = 0
    for a in range(p):
        for b in range(a + 1):
            s = 0.0
            row = Pt[k]
            for j in range(m):
                s += row[j] * w[j]
            out[a, b] = s
            out[b, a] = s
            k += 1


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def gram_pair(Pt, w, v, p, A, B):
    """``A <- X^T diag(w) X`` and ``B <- X^T diag(v) X`` in one pass over the packed products."""
    m = w.shape[0]
    k = 0
    for a in range(p):
        for b in range(a + 1):
            s = 0.0
            t = 0.0
            row = Pt[k]
            for j in range(m):
                s += row[j] * w[j]
                t += row[j] * v[j]
            A[a, b] = s
            A[b, a] = s
            B[a, b] = t
            B[b, a] = t
            k += 1


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def gram_rhs(Pt, Xt, w, z, p, A, rhs):
    """``A <- X^T diag(w) X`` and ``rhs <- X^T z`` (Xt is X transposed, p x m)."""
    gram(Pt, w, p, A)
    m = w.shape[0]
    for a in range(p):
        s = 0.0
        row = Xt[a]
        for j in range(m):
            s += row[j] * z[j]
        rhs[a] = s


@njit(cache=True, error_model="numpy")
def cholesky(A, L):
    """Lower Cholesky factor of A into L. Returns False if A is not positive definite."""
    p = A.shape[0]
    for i in range(p):
        for j in range(i + 1):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = np.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
        for j in range(i + 1, p):
            L[i, j] = 0.0
    return True


@njit(cache=True, error_model="numpy")
def cholesky_solve(L, b, out):
    """Solve ``L L^T out = b``."""
    p = L.shape[0]
    for i in range(p):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * out[k]
        out[i] = s / L[i, i]
    for i in range(p - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, p):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]


@njit(cache=True, error_model="numpy")
def cholesky_inverse(L, out, work):
    """``out <- (L L^T)^-1``; ``work`` is a (2, p) scratch array."""
    p = L.shape[0]
    e = work[0]
    x = work[1]
    for j in range(p):
        e[:] = 0.0
        e[j] = 1.0
        cholesky_solve(L, e, x)
        for i in range(p):
            out[i, j] = x[i]


@njit(cache=True, error_model="numpy")
def trace_prod(A, B):
    """``tr(A B)`` for symmetric A and B."""
    p = A.shape[0]
    s = 0.0
    for i in range(p):
        for j in range(p):
            s += A[i, j] * B[i, j]
    return s
