"""Small dense linear algebra for per-gene p x p systems inside numba kernels.

A design with p columns is handled through its packed outer products: each lower-triangle entry
(a, b) of ``X^T diag(w) X`` is the dot product of ``X[:, a] * X[:, b]`` with the weight vector.
Designs made of indicator columns repeat many of these products (``x * x = x`` for an indicator,
``1 * x = x``) or make them zero (two levels of one factor), so :func:`packed_outer` keeps each
distinct non-zero product once (``rows``) and maps every entry to its row (``entry``, -1 for
zero): the Gram matrices cost one dot product per distinct row.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def packed_outer(design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(rows, entry)``: the distinct non-zero lower-triangle products of the design columns
    (n_rows x m) and, per entry (a, b) with b <= a in row-major order, its row in ``rows`` (-1: zero)."""
    m, p = design.shape
    rows: list[np.ndarray] = []
    entry = np.empty(p * (p + 1) // 2, dtype=np.int64)
    k = 0
    for a in range(p):
        for b in range(a + 1):
            prod = np.asarray(design[:, a] * design[:, b], dtype=np.float64)
            if not prod.any():
                entry[k] = -1
            else:
                same = [u for u, row in enumerate(rows) if np.array_equal(row, prod)]
                if same:
                    entry[k] = same[0]
                else:
                    entry[k] = len(rows)
                    rows.append(prod)
            k += 1
    table = np.ascontiguousarray(np.array(rows, dtype=np.float64).reshape(len(rows), m))
    return table, entry


@njit(cache=True, error_model="numpy")
def _scatter(entry, sums, p, out):
    k = 0
    for a in range(p):
        for b in range(a + 1):
            u = entry[k]
            v = sums[u] if u >= 0 else 0.0
            out[a, b] = v
            out[b, a] = v
            k += 1


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _dots(rows, w, sums):
    """``sums[u] = rows[u] . w``, four rows per pass over w."""
    m = w.shape[0]
    n = rows.shape[0]
    u = 0
    while u + 3 < n:
        r0, r1, r2, r3 = rows[u], rows[u + 1], rows[u + 2], rows[u + 3]
        a0 = a1 = a2 = a3 = 0.0
        for j in range(m):
            wj = w[j]
            a0 += r0[j] * wj
            a1 += r1[j] * wj
            a2 += r2[j] * wj
            a3 += r3[j] * wj
        sums[u], sums[u + 1], sums[u + 2], sums[u + 3] = a0, a1, a2, a3
        u += 4
    while u < n:
        r0 = rows[u]
        a0 = 0.0
        for j in range(m):
            a0 += r0[j] * w[j]
        sums[u] = a0
        u += 1


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _dots_pair(rows, w, v, sums, sums_v):
    """``sums[u] = rows[u] . w`` and ``sums_v[u] = rows[u] . v``, four rows per pass."""
    m = w.shape[0]
    n = rows.shape[0]
    u = 0
    while u + 3 < n:
        r0, r1, r2, r3 = rows[u], rows[u + 1], rows[u + 2], rows[u + 3]
        a0 = a1 = a2 = a3 = 0.0
        b0 = b1 = b2 = b3 = 0.0
        for j in range(m):
            wj = w[j]
            vj = v[j]
            a0 += r0[j] * wj
            b0 += r0[j] * vj
            a1 += r1[j] * wj
            b1 += r1[j] * vj
            a2 += r2[j] * wj
            b2 += r2[j] * vj
            a3 += r3[j] * wj
            b3 += r3[j] * vj
        sums[u], sums[u + 1], sums[u + 2], sums[u + 3] = a0, a1, a2, a3
        sums_v[u], sums_v[u + 1], sums_v[u + 2], sums_v[u + 3] = b0, b1, b2, b3
        u += 4
    while u < n:
        r0 = rows[u]
        a0 = 0.0
        b0 = 0.0
        for j in range(m):
            a0 += r0[j] * w[j]
            b0 += r0[j] * v[j]
        sums[u] = a0
        sums_v[u] = b0
        u += 1


@njit(cache=True, error_model="numpy")
def gram(rows, entry, w, p, out, work):
    """``out <- X^T diag(w) X`` (p x p, symmetric) from the packed products; ``work`` has
    ``len(rows)`` elements. The dot products re-associate (so they vectorise); no NaN/Inf assumptions."""
    _dots(rows, w, work)
    _scatter(entry, work, p, out)


@njit(cache=True, error_model="numpy")
def gram_pair(rows, entry, w, v, p, A, B, work):
    """``A <- X^T diag(w) X`` and ``B <- X^T diag(v) X`` in one pass; ``work`` is (2, len(rows))."""
    _dots_pair(rows, w, v, work[0], work[1])
    _scatter(entry, work[0], p, A)
    _scatter(entry, work[1], p, B)


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def cross(Xt, z, out):
    """``out <- X^T z`` (Xt is X transposed, p x m)."""
    m = z.shape[0]
    for a in range(Xt.shape[0]):
        s = 0.0
        row = Xt[a]
        for j in range(m):
            s += row[j] * z[j]
        out[a] = s


@njit(cache=True, error_model="numpy")
def affine(Xt, b, offset, out):
    """``out <- offset + X b`` (Xt is X transposed, p x m)."""
    p, m = Xt.shape
    out[:] = offset
    for k in range(p):
        bk = b[k]
        row = Xt[k]
        for j in range(m):
            out[j] += row[j] * bk


@njit(cache=True, error_model="numpy")
def hat_values(rows, entry, M, w, p, out, work):
    """``out[j] <- w_j x_j^T M x_j`` for a symmetric p x p matrix M; ``work`` has ``len(rows)`` elements."""
    work[:] = 0.0
    k = 0
    for a in range(p):
        for b in range(a + 1):
            u = entry[k]
            if u >= 0:
                work[u] += M[a, b] if a == b else 2.0 * M[a, b]
            k += 1
    out[:] = 0.0
    m = w.shape[0]
    for u in range(rows.shape[0]):
        c = work[u]
        row = rows[u]
        for j in range(m):
            out[j] += c * row[j]
    for j in range(m):
        out[j] *= w[j]


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
def lower_inverse(L, out):
    """``out <- L^-1`` for a lower-triangular L (p divisions)."""
    p = L.shape[0]
    for i in range(p):
        d = 1.0 / L[i, i]
        out[i, i] = d
        for j in range(i):
            s = 0.0
            for k in range(j, i):
                s += L[i, k] * out[k, j]
            out[i, j] = -s * d
        for j in range(i + 1, p):
            out[i, j] = 0.0


@njit(cache=True, error_model="numpy")
def trace_solve(Linv, S):
    """``tr(A^-1 S)`` for ``A = L L^T`` (given ``L^-1``) and a symmetric S: the trace of ``L^-1 S L^-T``."""
    p = Linv.shape[0]
    t = 0.0
    for i in range(p):
        for a in range(i + 1):
            s = 0.0
            for b in range(i + 1):
                s += S[a, b] * Linv[i, b]
            t += Linv[i, a] * s
    return t


@njit(cache=True, error_model="numpy")
def lu_inverse(A, out, work):
    """``out <- A^-1`` for a general (not necessarily positive definite) square A, by Gauss-Jordan
    elimination with partial pivoting (what R's ``solve`` does through LAPACK's LU). ``A`` is left
    unchanged; ``work`` is a (2, p) scratch array. Returns False where A is singular."""
    p = A.shape[0]
    M = A.copy()
    for i in range(p):
        for j in range(p):
            out[i, j] = 1.0 if i == j else 0.0
    for c in range(p):
        piv = c
        best = abs(M[c, c])
        for r in range(c + 1, p):
            if abs(M[r, c]) > best:
                best = abs(M[r, c])
                piv = r
        if not best > 0.0:
            return False
        if piv != c:
            for j in range(p):
                work[0, j] = M[c, j]
                M[c, j] = M[piv, j]
                M[piv, j] = work[0, j]
                work[1, j] = out[c, j]
                out[c, j] = out[piv, j]
                out[piv, j] = work[1, j]
        d = M[c, c]
        for j in range(p):
            M[c, j] /= d
            out[c, j] /= d
        for r in range(p):
            if r != c:
                f = M[r, c]
                if f != 0.0:
                    for j in range(p):
                        M[r, j] -= f * M[c, j]
                        out[r, j] -= f * out[c, j]
    return True
