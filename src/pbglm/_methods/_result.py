"""What a method pipeline returns: plain arrays, no AnnData."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FitResult:
    """The outcome of fitting one design to one count matrix.

    Genes are rows everywhere (``G`` genes, ``m`` samples, ``p`` design columns).

    Attributes
    ----------
    method
        ``"deseq2"`` or ``"edger"``.
    coef
        ``(G, p)`` coefficients on the log2 scale.
    cov
        ``(G, p, p)`` covariance of ``coef`` on the log2 scale (Wald); NaN where undefined.
    size_factors
        ``(m,)`` per-sample normalisation factors (DESeq2 size factors; for edgeR the effective
        library size divided by its geometric mean).
    base_mean
        ``(G,)`` mean of normalised counts.
    dispersion
        ``(G,)`` the dispersion used for inference.
    mu
        ``(G, m)`` fitted means.
    gene_info
        Further per-gene columns written to ``.var`` (e.g. ``dispersion_gene``,
        ``dispersion_trend``, ``converged``), each ``(G,)``.
    sample_info
        Further per-sample columns written to ``.obs``, each ``(m,)``.
    params
        Scalars and small arrays describing the fit (trend coefficients, prior variance, ...).
    extra
        Arrays the tests need but that are not stored in the AnnData (kept only in memory).
    """

    method: str
    coef: np.ndarray
    cov: np.ndarray
    size_factors: np.ndarray
    base_mean: np.ndarray
    dispersion: np.ndarray
    mu: np.ndarray
    gene_info: dict[str, np.ndarray] = field(default_factory=dict)
    sample_info: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
