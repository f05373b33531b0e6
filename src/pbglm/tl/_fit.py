"""``tl.fit``: read counts and design from the AnnData, run a method pipeline, write results."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import __name__ as _pkg
from .._compile_notice import notify_compile
from .._design import build_design, design_variables
from .._design_findings import check_design
from .._io import clear_fit, raw_record, read_counts, start_fit, to_plain, write_fit, write_layer
from .._methods.pipeline import run_pipeline
from .._numerics.norm_lib_sizes import NORM_METHODS
from .._warn import warn

logger = logging.getLogger("pbglm")

METHODS = ("deseq2", "edger")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_pkg)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _clear(adata: AnnData, key: str) -> None:
    """Remove results of an earlier fit stored under ``key``: exactly the slots it recorded as its own."""
    clear_fit(adata, key)


def _size_factor_option(adata: AnnData, size_factors, mask):
    if isinstance(size_factors, str):
        if size_factors in ("ratio", "poscounts"):
            return size_factors
        if size_factors in adata.obs.columns:
            values = adata.obs[size_factors].to_numpy(dtype=float)[mask]
        else:
            raise ValueError(
                f"size_factors={size_factors!r} is neither 'ratio', 'poscounts' nor a column of .obs "
                f"({list(adata.obs.columns)})."
            )
    else:
        values = np.asarray(size_factors, dtype=float)
        if values.shape != (adata.n_obs,):
            raise ValueError(f"size_factors has shape {values.shape}; expected one value per sample ({adata.n_obs}).")
        values = values[mask]
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError("size_factors must be positive and finite for every sample.")
    return values


def _prepare(adata, design_formula, *, mask, method, reference, size_factors, seen):
    """The design and the method options of one fit (the whole object or one group)."""
    sub_obs = adata.obs.loc[mask] if mask is not None else adata.obs
    if mask is not None:
        for var in design_variables(design_formula, sub_obs.columns):
            col = sub_obs[var]
            if not pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
                present = sorted(map(str, pd.unique(col.astype(str))))
                if len(present) < 2:
                    raise ValueError(f"factor {var!r} has a single level ({present}) in this group")
    check_design(sub_obs, design_formula, reference, seen=seen)
    design = build_design(sub_obs, design_formula, reference)
    m_mask = np.ones(adata.n_obs, dtype=bool) if mask is None else mask
    sf = _size_factor_option(adata, size_factors, m_mask) if method == "deseq2" else None
    return design, m_mask, sf


def _store(adata, counts, fit, design, *, m_mask, mask, group, key, layer, reference):
    extra = {"layer": "None" if layer is None else layer, "reference": dict(reference or {})}
    replaced = fit.extra.get("replaced_counts")
    if replaced is not None:
        layer_name = write_layer(adata, key, "replaced_counts", lambda: counts.T.copy())
        extra["replaced_counts_layer"] = layer_name
        adata.layers[layer_name][m_mask, :] = replaced.T
    write_fit(adata, fit, design, key=key, obs_mask=mask, group=group, extra_params=extra)


def _check_mixed_columns(adata: AnnData, design: str) -> None:
    """A design column that pp.pseudobulk left out because it varies within samples: say which."""
    mixed = adata.uns.get("pseudobulk", {}).get("mixed_columns", {})
    for var in design_variables(design, list(adata.obs.columns) + list(mixed)):
        if var not in adata.obs.columns and var in mixed:
            samples = list(mixed[var])
            raise ValueError(
                f"Design column {var!r} is not constant within pseudobulk samples (e.g. {samples}): a sample mixes "
                f"several values of {var!r}, so pp.pseudobulk left it out. Fix the cell annotation, or make "
                f"{var!r} part of the sample key."
            )


def _active_client(client):
    if client is not None:
        return client
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def fit(
    adata: AnnData,
    design: str,
    *,
    method: str = "deseq2",
    layer: str | None = None,
    reference: dict[str, str] | None = None,
    groupby: str | None = None,
    groups: Sequence[str] | None = None,
    size_factors="ratio",
    fit_type: str = "parametric",
    filter_by_expr: bool = True,
    legacy: bool | None = None,
    robust: bool | None = None,
    normalize: str | None = None,
    key_added: str = "pbglm",
    n_jobs: int | None = None,
    client=None,
    gene_chunks: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Fit a negative-binomial GLM to every gene.

    Parameters
    ----------
    adata
        Samples (or pseudobulks) x genes, raw integer counts in ``X`` or ``layer`` (dense or sparse).
    design
        A formula over ``.obs`` columns, e.g. ``"~ batch + condition"``. Categorical columns keep
        their level order (first level = reference); string columns become factors with sorted
        levels; numeric columns are slopes. ``0 +`` drops the intercept; ``a * b`` / ``a:b``
        add interactions. Coefficients are named ``Intercept``, ``factor[level]``, ``numeric``
        and ``f1[l1]:f2[l2]``.
    method
        ``"deseq2"`` (DESeq2's ``DESeq()``: size factors, Cox-Reid dispersions, trend, MAP
        shrinkage, Wald/LRT, Cook's outliers, independent filtering) or ``"edger"`` (edgeR 4.5's
        pipeline: filterByExpr, TMM, ``glmQLFit`` with the new QL method, QL F-tests; see ``legacy``).
    layer
        Layer holding raw counts; ``None`` uses ``X``.
    reference
        Reference level per factor, e.g. ``{"dex": "untrt"}``, overriding the level order.
    groupby
        An ``.obs`` column: fit one model per group (e.g. per cell type). Groups that cannot be
        fit are skipped with a warning and their reason is recorded.
    groups
        Restrict ``groupby`` to these groups.
    size_factors
        DESeq2 only: ``"ratio"`` (median of ratios; falls back to ``"poscounts"`` with a log
        message when every gene has a zero), ``"poscounts"``, an ``.obs`` column name or an
        array with one value per sample.
    fit_type
        DESeq2 only: dispersion trend, ``"parametric"`` (falls back to ``"local"`` with a warning),
        ``"local"`` or ``"mean"``.
    filter_by_expr
        edgeR only: drop genes failing edgeR's ``filterByExpr`` before fitting (their results are NaN).
    legacy
        edgeR only. ``False`` (default): edgeR 4.5's ``glmQLFit(legacy = FALSE)``, the default
        since edgeR 4.2: one NB dispersion from the most expressed genes, adjusted deviances and
        df that stay accurate for small counts, and a QL prior estimated for gene-wise df; its FDR
        sits at the nominal level on the held-out simulations. ``True``: edgeR 3.40's pipeline
        (estimateDisp + legacy glmQLFit), as pbglm ran before. ``.uns[key]['fit']['edger_ql']``
        records which.
    robust
        edgeR only: robust empirical Bayes for the QL dispersions. ``None`` (default): False with
        edgeR 4 (edgeR's default), True with ``legacy=True`` (what pbglm's legacy path always ran).
    normalize
        edgeR only: ``normLibSizes`` method, ``"TMM"`` (default), ``"TMMwsp"``, ``"RLE"``,
        ``"upperquartile"`` or ``"none"``.
    key_added
        Prefix of every key written: any non-empty string. Characters that h5ad / zarr keys
        cannot hold (``/``, ``:``, ``%``, ...) are percent-encoded in the stored keys (``"my/fit"``
        is stored as ``.uns["my%2Ffit"]``); readers take ``key=`` as given. Refitting a key
        replaces exactly the results of that key; other keys, also ones it is a prefix of
        (``"pbglm"`` and ``"pbglm_x"``), are left alone.
    n_jobs
        Threads for the numba kernels (default: :attr:`pbglm.settings.n_jobs`, i.e. all cores).
    client
        A ``dask.distributed.Client``: with ``groupby``, the groups are fit on its workers (the
        active client is used when none is passed). Results equal the in-process fits.
    gene_chunks
        DESeq2 without ``groupby``, for very many genes: split the per-gene work (gene-wise
        dispersions, MAP, GLM) into this many chunks run on the dask client (``client`` or the
        active one); the trend and prior, which need every gene, are fit locally. Results equal
        the in-process fit. ``0`` (default) fits in process.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a new AnnData when ``copy=True``. Writes (``key`` = ``key_added``):

    ``.obs[f'{key}_size_factor']``
        Per-sample normalisation factors.
    ``.var[f'{key}_base_mean']``, ``.var[f'{key}_dispersion']``
        Mean of normalised counts; dispersion used for inference. Further ``.var`` columns:
        DESeq2 ``dispersion_gene``, ``dispersion_trend``, ``dispersion_map``,
        ``dispersion_outlier``, ``converged``, ``iterations``, ``deviance``, ``max_cooks``,
        ``replaced``, ``all_zero``; edgeR ``ave_log_cpm``, ``dispersion_common``,
        ``ql_dispersion``, ``ql_dispersion_prior``, ``ql_dispersion_post``, ``df_prior``,
        ``df_residual``, ``deviance``, ``converged``, ``filtered``; with ``legacy=True`` also
        ``dispersion_trend``, ``dispersion_tagwise``; edgeR 4 fits: ``dispersion`` is the working
        dispersion (NB dispersion / average QL dispersion), ``deviance`` and ``df_residual`` the
        adjusted ones, ``deviance_working`` the deviance at the working dispersion.
    ``.varm[f'{key}_coef']``, ``.varm[f'{key}_se']``
        DataFrames (genes x design columns): coefficients and standard errors, log2 scale.
    ``.varm[f'{key}_cov']``
        Coefficient covariance per gene, flattened to p*p columns (log2 scale).
    ``.layers[f'{key}_replaced_counts']``
        DESeq2 only, when outlier counts were replaced (design cells with >= 7 replicates).
    ``.uns[key]``
        ``params`` (formula, method, options, package version), ``formula``, ``method``,
        ``design`` (the design matrix as a DataFrame),
        ``design_columns``, ``factors`` (levels), ``numeric``, ``fit`` (trend coefficients,
        prior variance, ...), ``layer``, ``version``; tests add ``tests``.
    With ``groupby`` the per-gene results go to ``.varm[f'{key}_genes:{group}']``,
    ``.varm[f'{key}_coef:{group}']`` etc. and ``.uns[key]['groups'][group]``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {METHODS}.")
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}.")
    if method != "edger" and (legacy is not None or robust is not None or normalize is not None):
        raise ValueError(f"legacy=, robust= and normalize= are edgeR options; method={method!r} does not take them "
                         "(DESeq2 normalises with size_factors=).")
    if normalize is not None and normalize not in NORM_METHODS:
        raise ValueError(f"normalize must be one of {NORM_METHODS} (edgeR's normLibSizes methods), got {normalize!r}.")
    if copy:
        adata = adata.copy()
    counts = read_counts(adata, layer)
    _check_mixed_columns(adata, design)
    notify_compile(method)
    _clear(adata, key_added)
    start_fit(adata, key_added, {
        "version": _version(),
        "method": method,
        "formula": design,
        "params": {
            "formula": design, "method": method, "version": _version(), "layer": "None" if layer is None else layer,
            "reference": dict(reference or {}), "groupby": "None" if groupby is None else groupby,
            "size_factors": size_factors if isinstance(size_factors, str) else "user", "fit_type": fit_type,
            "filter_by_expr": bool(filter_by_expr),
            **({"legacy": bool(legacy), "robust": "None" if robust is None else bool(robust),
                "normalize": normalize or "TMM"} if method == "edger" else {}),
        },
    })
    seen: set = set()
    options = dict(fit_type=fit_type, filter_by_expr=filter_by_expr, n_jobs=n_jobs)
    if method == "edger":
        options.update(legacy=bool(legacy), robust=robust, normalize=normalize or "TMM")
    store = dict(key=key_added, layer=layer, reference=reference)
    if groupby is None:
        d, m_mask, sf = _prepare(adata, design, mask=None, method=method, reference=reference,
                                 size_factors=size_factors, seen=seen)
        client = _active_client(client) if gene_chunks else None
        result = run_pipeline(method, counts, d.matrix, size_factors=sf if sf is not None else "ratio", **options,
                              client=client, gene_chunks=gene_chunks if client is not None else 0)
        _store(adata, counts, result, d, m_mask=m_mask, mask=None, group=None, **store)
    else:
        if groupby not in adata.obs.columns:
            raise KeyError(f"groupby={groupby!r} is not a column of .obs; available: {list(adata.obs.columns)}.")
        col = adata.obs[groupby].astype(str)
        all_groups = list(dict.fromkeys(adata.obs[groupby].astype("category").cat.categories.astype(str)))
        wanted = all_groups if groups is None else [str(g) for g in groups]
        missing = [g for g in wanted if g not in set(col)]
        raw_record(adata, key_added)["groupby"] = groupby
        raw_record(adata, key_added)["groups"] = {}
        skipped = {}
        jobs = {}
        for g in wanted:
            if g in missing:
                skipped[g] = "no samples in this group"
                continue
            mask = (col == g).to_numpy()
            try:
                jobs[g] = (mask, *_prepare(adata, design, mask=mask, method=method, reference=reference,
                                           size_factors=size_factors, seen=seen))
            except (ValueError, KeyError) as err:
                skipped[g] = str(err)
        client = _active_client(client)
        if client is not None:
            futures = {g: client.submit(run_pipeline, method, np.ascontiguousarray(counts[:, m]), d.matrix,
                                        size_factors=sf if sf is not None else "ratio", **options, pure=False)
                       for g, (_, d, m, sf) in jobs.items()}
        for g, (mask, d, m_mask, sf) in jobs.items():
            try:
                if client is not None:
                    result = futures[g].result()
                else:
                    result = run_pipeline(method, np.ascontiguousarray(counts[:, m_mask]), d.matrix,
                                          size_factors=sf if sf is not None else "ratio", **options)
            except (ValueError, KeyError) as err:
                skipped[g] = str(err)
                continue
            _store(adata, counts, result, d, m_mask=m_mask, mask=mask, group=g, **store)
        raw_record(adata, key_added)["skipped"] = to_plain(skipped)
        if skipped:
            warn("Groups not fit: " + "; ".join(f"{g}: {r}" for g, r in skipped.items()))
        if len(skipped) == len(wanted):
            raise ValueError(f"No group of {groupby!r} could be fit: {skipped}")
    return adata if copy else None
