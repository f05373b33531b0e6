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
from .._distributed import check_client, gather
from .._formula import DesignFormulaError, parse_formula
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
            col = adata.obs[size_factors]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise TypeError(
                    f"size_factors={size_factors!r} names an .obs column of dtype {col.dtype}, not numbers; give a "
                    "numeric column of positive size factors, 'ratio' or 'poscounts'."
                )
            values = col.to_numpy(dtype=float)[mask]
        else:
            raise ValueError(
                f"size_factors={size_factors!r} is neither 'ratio', 'poscounts' nor a column of .obs "
                f"({list(adata.obs.columns)})."
            )
    else:
        if isinstance(size_factors, pd.Series) and set(size_factors.index) == set(adata.obs_names):
            size_factors = size_factors.reindex(adata.obs_names)
        try:
            values = np.asarray(size_factors, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"size_factors must be 'ratio', 'poscounts', an .obs column name or one number per sample, got "
                f"{type(size_factors).__name__}."
            ) from None
        if values.shape != (adata.n_obs,):
            raise ValueError(f"size_factors has shape {values.shape}; expected one value per sample ({adata.n_obs}).")
        values = values[mask]
    if not np.all(np.isfinite(values) & (values > 0)):
        bad = [str(n) for n in np.asarray(adata.obs_names)[mask][~(np.isfinite(values) & (values > 0))][:5]]
        raise ValueError(f"size_factors must be positive and finite for every sample (not for {bad}).")
    return values


def _prepare(adata, design_formula, *, mask, method, reference, size_factors, seen, counts):
    """The design and the method options of one fit (the whole object or one group)."""
    sub_obs = adata.obs.loc[mask] if mask is not None else adata.obs
    if mask is not None:
        for var in design_variables(design_formula, sub_obs.columns):
            col = sub_obs[var]
            if not pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
                present = sorted(map(str, pd.unique(col.astype(str))))
                if len(present) < 2:
                    raise ValueError(f"factor {var!r} has a single level ({present}) in this group")
    if mask is not None:
        _check_zero_samples(adata, counts, mask)
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
        return check_client(client)
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


_PSEUDOBULK_MARKS = ("n_obs_aggregated", "psbulk_cells", "psbulk_counts", "n_cells")


def _check_design_columns(adata: AnnData, design) -> None:
    """Every column the formula reads exists in ``.obs``; for a pseudobulk, say how to carry it in."""
    parsed = parse_formula(design)
    missing = [v for v in parsed.variables if v not in adata.obs.columns]
    if not missing:
        return
    hint = ""
    if "pseudobulk" in adata.uns or any(c in adata.obs.columns for c in _PSEUDOBULK_MARKS) or "sum" in adata.layers:
        hint = (f" This looks like a pseudobulk: a design column must be carried into it, e.g. add {missing[0]!r} to "
                f"by= of sc.get.aggregate / the sample columns of pp.pseudobulk (it must be constant within each "
                "pseudobulk sample), or join it to .obs from a sample table.")
    try:
        parse_formula(design, adata.obs.columns)
    except DesignFormulaError as err:
        raise DesignFormulaError(str(err) + hint) from None


def _check_zero_samples(adata: AnnData, counts: np.ndarray, mask) -> None:
    totals = counts.sum(axis=0) if mask is None else counts[:, mask].sum(axis=0)
    if np.any(totals == 0):
        names = np.asarray(adata.obs_names) if mask is None else np.asarray(adata.obs_names)[mask]
        bad = [str(n) for n in names[totals == 0][:10]]
        raise ValueError(
            f"Sample(s) {bad} have a total count of zero: nothing can be estimated for them (no library size or "
            "size factor). Remove them first, e.g. pb.pp.filter_samples or adata = adata[adata.X.sum(axis=1) > 0]."
        )


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_fit_args(adata, design, *, method, layer, reference, groupby, groups, size_factors, fit_type,
                    filter_by_expr, key_added, n_jobs, client, gene_chunks, copy) -> None:
    """Types and domains of every tl.fit argument (before anything is read or written)."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}.")
    if not isinstance(design, str):
        raise TypeError(f"design must be a formula string such as '~ batch + condition', got {type(design).__name__}.")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {METHODS}.")
    if layer is not None and not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (a string) or None, got {type(layer).__name__}.")
    if reference is not None:
        if isinstance(reference, str):
            raise TypeError(
                f"reference must be a dict {{factor: reference level}}, e.g. reference={{'condition': {reference!r}}}, "
                f"got the string {reference!r}."
            )
        if not isinstance(reference, dict) or not all(isinstance(k, str) for k in reference):
            raise TypeError(f"reference must be a dict {{factor: reference level}}, got {reference!r}.")
    if groupby is not None and not isinstance(groupby, str):
        raise TypeError(f"groupby must be an .obs column name, got {type(groupby).__name__}.")
    if groups is not None:
        if groupby is None:
            raise ValueError("groups= restricts groupby=; give groupby= too.")
        if isinstance(groups, str) or not hasattr(groups, "__iter__"):
            raise TypeError(f"groups must be a list of group names, e.g. groups=[{groups!r}], got {groups!r}.")
    if method != "deseq2":
        if not (isinstance(size_factors, str) and size_factors == "ratio"):
            raise ValueError("size_factors= is DESeq2 only; edgeR normalises with TMM (fit with method='deseq2').")
        if fit_type != "parametric":
            raise ValueError("fit_type= is DESeq2 only; edgeR fits its own dispersion trend.")
    if not isinstance(fit_type, str) or fit_type not in ("parametric", "local", "mean"):
        raise ValueError(f"fit_type must be 'parametric', 'local' or 'mean', got {fit_type!r}.")
    if not isinstance(filter_by_expr, bool | np.bool_):
        raise TypeError(f"filter_by_expr must be True or False, got {filter_by_expr!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise TypeError(f"key_added must be a non-empty string, got {key_added!r}.")
    if n_jobs is not None and not (_is_int(n_jobs) and (n_jobs >= 1 or n_jobs == -1)):
        raise ValueError(f"n_jobs must be a positive integer, -1 (all cores) or None, got {n_jobs!r}.")
    check_client(client)
    if not _is_int(gene_chunks) or gene_chunks < 0:
        raise ValueError(f"gene_chunks must be a non-negative integer (0 = in process), got {gene_chunks!r}.")
    if gene_chunks:
        if method != "deseq2":
            raise ValueError("gene_chunks= is DESeq2 only; fit edgeR in process (gene_chunks=0).")
        if groupby is not None:
            raise ValueError("gene_chunks= applies to one fit; with groupby= the groups are spread over the client "
                             "instead (gene_chunks=0).")
        if _active_client(client) is None:
            raise ValueError("gene_chunks= runs the gene chunks on a dask client: pass client= or start a "
                             "distributed.Client first (or use gene_chunks=0).")
    if not isinstance(copy, bool | np.bool_):
        raise TypeError(f"copy must be True or False, got {copy!r}.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"adata has {adata.n_obs} samples and {adata.n_vars} genes: nothing to fit.")
    if not adata.obs_names.is_unique:
        dup = list(dict.fromkeys(adata.obs_names[adata.obs_names.duplicated()]))[:5]
        raise ValueError(
            f"adata.obs_names has duplicates ({dup}): samples must have unique names (results and group masks are "
            "matched by name). Call adata.obs_names_make_unique() first."
        )


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
        and ``f1[l1]:f2[l2]``. Formulas may use only column names (quote odd names as
        ```my col``` or ``Q('my col')``), 0/1, the operators ``+ - : * / **`` and the functions
        ``C`` (make a column a factor), ``Q``, ``I``, ``log``, ``log2``, ``log10``, ``log1p``,
        ``exp``, ``center``, ``scale``, ``standardize`` and ``poly`` over arithmetic of columns;
        anything else is refused (formulas are never evaluated as Python).
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
        DESeq2 without ``groupby``, with a dask client, for very many genes: split the per-gene work (gene-wise
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
    _check_fit_args(adata, design, method=method, layer=layer, reference=reference, groupby=groupby, groups=groups,
                    size_factors=size_factors, fit_type=fit_type, filter_by_expr=filter_by_expr,
                    key_added=key_added, n_jobs=n_jobs, client=client, gene_chunks=gene_chunks, copy=copy)
    if method != "edger" and (legacy is not None or robust is not None or normalize is not None):
        raise ValueError(f"legacy=, robust= and normalize= are edgeR options; method={method!r} does not take them "
                         "(DESeq2 normalises with size_factors=).")
    if legacy is not None and not isinstance(legacy, bool):
        raise TypeError(f"legacy must be True or False, got {legacy!r}.")
    if robust is not None and not isinstance(robust, bool):
        raise TypeError(f"robust must be True, False or None, got {robust!r}.")
    if normalize is not None and normalize not in NORM_METHODS:
        raise ValueError(f"normalize must be one of {NORM_METHODS} (edgeR's normLibSizes methods), got {normalize!r}.")
    if copy:
        adata = adata.copy()
    counts = read_counts(adata, layer)
    _check_mixed_columns(adata, design)
    _check_design_columns(adata, design)
    if groupby is None:
        _check_zero_samples(adata, counts, None)
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
                                 size_factors=size_factors, seen=seen, counts=counts)
        client = _active_client(client) if gene_chunks else None  # validated above
        result = run_pipeline(method, counts, d.matrix, size_factors=sf if sf is not None else "ratio", **options,
                              client=client, gene_chunks=gene_chunks if client is not None else 0,
                              sample_names=list(map(str, adata.obs_names)))
        _store(adata, counts, result, d, m_mask=m_mask, mask=None, group=None, **store)
    else:
        if groupby not in adata.obs.columns:
            raise KeyError(f"groupby={groupby!r} is not a column of .obs; available: {list(adata.obs.columns)}.")
        col = adata.obs[groupby].astype(str)
        all_groups = list(dict.fromkeys(adata.obs[groupby].astype("category").cat.categories.astype(str)))
        wanted = all_groups if groups is None else list(dict.fromkeys(str(g) for g in groups))
        unknown = [g for g in wanted if g not in all_groups]
        if unknown:
            raise KeyError(f"groups {unknown} are not groups of {groupby!r}; its groups are {all_groups}.")
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
                                           size_factors=size_factors, seen=seen, counts=counts))
            except (ValueError, KeyError) as err:
                skipped[g] = str(err)
        client = _active_client(client)
        if client is not None:
            futures = {g: client.submit(run_pipeline, method, np.ascontiguousarray(counts[:, m]), d.matrix,
                                        size_factors=sf if sf is not None else "ratio", **options, pure=False,
                                        sample_names=list(map(str, adata.obs_names[m])))
                       for g, (_, d, m, sf) in jobs.items()}
        for g, (mask, d, m_mask, sf) in jobs.items():
            try:
                if client is not None:
                    result = gather(client, [futures[g]], what=f"the fit of group {g!r}")[0]
                else:
                    result = run_pipeline(method, np.ascontiguousarray(counts[:, m_mask]), d.matrix,
                                          size_factors=sf if sf is not None else "ratio", **options,
                                          sample_names=list(map(str, adata.obs_names[m_mask])))
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
