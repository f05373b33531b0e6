"""``tl.test``: Wald, likelihood-ratio and quasi-likelihood tests of a stored fit."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._contrast import resolve_contrast, safe_name
from .._design import build_design, dependent_columns, design_variables, normalize_formula
from .._io import TEST_COLUMNS, StoredFit, get_matrix, read_counts, read_obs, stored_fits, stored_tests, write_test
from .._methods import deseq2_results as dr
from .._methods.deseq2 import DESeq2Options, glm
from .._methods.edger_fit import test_edger_design
from .._renamed_keyword import renamed_keyword
from .._settings import settings
from .._warn import warn

logger = logging.getLogger("pbglm")


def _fit_layer(adata: AnnData, fit: StoredFit, *, replaced: bool) -> str | None:
    layer = fit.record.get("layer", "None")
    layer = None if layer == "None" else layer
    rep = fit.record.get("replaced_counts_layer")
    if replaced and rep is not None and rep in adata.layers:
        layer = rep
    return layer


def _counts_for(adata: AnnData, fit: StoredFit, *, replaced: bool) -> np.ndarray:
    return read_counts(adata, _fit_layer(adata, fit, replaced=replaced))[:, fit.mask]


def _zero_groups(adata, fit: StoredFit, desc) -> np.ndarray | None:
    """For a comparison of two levels: the genes whose counts are all zero in both (counts were
    validated as non-negative by the fit, so a zero sum means all zero)."""
    if desc.get("kind") != "levels" or desc.get("at"):
        return None
    col = adata.obs.loc[fit.mask, desc["factor"]].astype(str).to_numpy()
    rows = np.nonzero(fit.mask)[0][np.isin(col, [desc["level"], desc["reference"]])]
    sub = get_matrix(adata, _fit_layer(adata, fit, replaced=False))[rows]
    if hasattr(sub, "compute"):
        sub = sub.compute()
    return np.asarray(sub.sum(axis=0)).ravel() == 0


def _single_two_level_factor(fit: StoredFit) -> bool:
    f = fit.factors
    return len(f) == 1 and not list(fit.record.get("numeric", [])) and len(next(iter(f.values()))) == 2


def _reduced_matrix(adata, fit: StoredFit, reduced, drop):
    cols = fit.columns
    X = fit.design
    if drop is not None:
        drop = [drop] if isinstance(drop, str) else list(drop)
        unknown = [d for d in drop if d not in cols]
        if unknown:
            raise KeyError(f"Coefficient(s) {unknown} do not exist; valid names are {cols}.")
        keep = [i for i, c in enumerate(cols) if c not in drop]
        return X[:, keep], f"drop {drop}"
    reference = fit.record.get("reference", {})
    reference = dict(reference) if isinstance(reference, dict) else {}
    # the fit's reference levels, for the factors the reduced formula keeps (a reduced model that
    # leaves a factor out, e.g. "~ 1" after reference={"Drug": "ctrl"}, has no level to set)
    kept = set(design_variables(normalize_formula(reduced), adata.obs.columns))
    reference = {k: v for k, v in reference.items() if k in kept}
    rd = build_design(adata.obs.loc[fit.mask], reduced, reference or None)
    X0 = rd.matrix
    if X0.shape[1] >= X.shape[1]:
        raise ValueError(
            f"The reduced design {reduced!r} has {X0.shape[1]} columns, not fewer than the full design's "
            f"{X.shape[1]}: it must be nested in (a special case of) {fit.record['formula']!r}."
        )
    coef, *_ = np.linalg.lstsq(X, X0, rcond=None)
    if np.linalg.norm(X0 - X @ coef) > 1e-8 * max(1.0, np.linalg.norm(X0)):
        raise ValueError(
            f"The reduced design {reduced!r} is not nested in the full design {fit.record['formula']!r}: "
            "every reduced term must also be in the full formula."
        )
    return X0, reduced


def _test_deseq2(adata, fit: StoredFit, vec, desc, *, reduced, drop, alpha, lfc_threshold, alt, use_t,
                 cooks_filter, independent_filter):
    genes = fit.genes
    base_mean = genes["base_mean"].to_numpy(dtype=float)
    all_zero = genes["all_zero"].to_numpy(dtype=bool)
    m, p = fit.design.shape
    params: dict = {}
    if reduced is None and drop is None:
        df = (m - p) if use_t else None
        lfc, se, stat, pvalue = dr.wald_results(fit.coef, fit.cov, vec, lfc_threshold=lfc_threshold, alt=alt, df=df,
                                                zero_groups=_zero_groups(adata, fit, desc))
        params.update(kind="wald", use_t=bool(use_t))
    else:
        if lfc_threshold:
            raise ValueError("Thresholded tests (lfc_threshold > 0) must be Wald tests; drop reduced=/drop=.")
        X0, label = _reduced_matrix(adata, fit, reduced, drop)
        Yr = _counts_for(adata, fit, replaced=True)
        sf = read_obs(adata, fit.key, "size_factor", fit.mask)
        nz = np.nonzero(~all_zero)[0]
        disp = genes["dispersion"].to_numpy(dtype=float)
        with settings.threads(None):
            red = glm(np.ascontiguousarray(Yr[nz]), sf, X0, disp[nz], DESeq2Options())
        dev_red = np.full(base_mean.size, np.nan)
        dev_red[nz] = red["deviance"]
        df_test = p - X0.shape[1]
        stat, pvalue = dr.lrt_pvalues(dev_red, genes["deviance"].to_numpy(dtype=float), df_test)
        lfc, se = dr.contrast_estimate(fit.coef, fit.cov, vec)
        params.update(kind="lrt", reduced=label, df=int(df_test))
    guard = genes["n_counts_above_outlier"].to_numpy() if _single_two_level_factor(fit) else None
    pvalue, padj, info = dr.adjust(pvalue, base_mean, genes["max_cooks"].to_numpy(dtype=float), n_samples=m,
                                   n_coefs=p, alpha=alpha, cooks_filter=cooks_filter,
                                   independent_filter=independent_filter, cooks_guard=guard)
    params.update(info)
    for arr in (lfc, se, stat, pvalue, padj):
        arr[all_zero] = np.nan
    table = {"base_mean": base_mean, "log2fc": lfc, "lfc_se": se, "stat": stat, "pvalue": pvalue, "padj": padj}
    return table, params


def _test_edger(adata, fit: StoredFit, vec, desc, *, kind, coefs, lfc_threshold, key):
    counts = _counts_for(adata, fit, replaced=False)
    sample_info = {"lib_size": read_obs(adata, key, "lib_size", fit.mask),
                   "norm_factors": read_obs(adata, key, "norm_factors", fit.mask)}
    return test_edger_design(counts, fit, vec, kind=kind, coefs=coefs, lfc_threshold=lfc_threshold,
                             sample_info=sample_info)


_ALTS = ("greaterAbs", "lessAbs", "greater", "less")


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _check_test_args(adata, method, *, contrast, reduced, drop, name, kind, alpha, lfc_threshold, alt, use_t,
                     cooks_filter, independent_filter) -> None:
    """Types and domains of the tl.test arguments, and the options each method can honour."""
    for label, value in (("reduced", reduced), ("name", name)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise TypeError(f"{label} must be a non-empty string or None, got {value!r}.")
    if drop is not None and not (isinstance(drop, str) or (
            isinstance(drop, list | tuple) and drop and all(isinstance(d, str) for d in drop))):
        raise TypeError(f"drop must be a coefficient name or a list of them, got {drop!r}.")
    if not _is_number(alpha) or not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1 (an FDR level such as 0.1), got {alpha!r}.")
    if not _is_number(lfc_threshold) or not np.isfinite(lfc_threshold) or lfc_threshold < 0:
        raise ValueError(f"lfc_threshold must be >= 0 and finite (a log2 fold change), got {lfc_threshold!r}.")
    if not isinstance(alt, str) or alt not in _ALTS:
        raise ValueError(f"alt must be one of {_ALTS}, got {alt!r}.")
    for label, value in (("use_t", use_t), ("cooks_filter", cooks_filter), ("independent_filter", independent_filter)):
        if value is not None and not isinstance(value, bool | np.bool_):
            raise TypeError(f"{label} must be True or False, got {value!r}.")
    nested = reduced is not None or drop is not None
    if nested and lfc_threshold:
        raise ValueError("Thresholded tests (lfc_threshold > 0) test one contrast; drop reduced=/drop=.")
    if nested and alt != "greaterAbs":
        raise ValueError(f"alt={alt!r} applies to a Wald test of one contrast; a likelihood-ratio test "
                         "(reduced=/drop=) is two-sided.")
    if method == "deseq2":
        if kind is not None and kind not in ("wald", "lrt"):
            raise ValueError(f"kind={kind!r} is not a DESeq2 test: DESeq2 runs a Wald test for a contrast and a "
                             "likelihood-ratio test with reduced=/drop= (kind may be 'wald' or 'lrt' to say so).")
        if kind == "lrt" and not nested:
            raise ValueError("kind='lrt' needs reduced= (a nested formula) or drop= (coefficients to remove).")
        if kind == "wald" and nested:
            raise ValueError("kind='wald' tests a contrast; reduced=/drop= make a likelihood-ratio test.")
        if use_t and nested:
            raise ValueError("use_t= applies to Wald tests; a likelihood-ratio test (reduced=/drop=) uses chi-squared.")
    else:
        if kind is not None and kind not in ("qlf", "lrt"):
            raise ValueError(f"kind must be 'qlf' (quasi-likelihood F-test) or 'lrt' (glmLRT) for the edgeR method, "
                             f"got {kind!r}.")
        if alt != "greaterAbs":
            raise ValueError(f"alt={alt!r} is not available for edgeR: its tests (glmQLFTest, glmLRT, glmTreat) are "
                             "two-sided (greaterAbs). Fit with method='deseq2' for one-sided or lessAbs tests.")
        if use_t:
            raise ValueError("use_t= is DESeq2 only: edgeR's quasi-likelihood tests already use the F distribution.")
        if kind == "lrt" and lfc_threshold:
            raise ValueError("lfc_threshold= with kind='lrt' is not available: edgeR's thresholded test (glmTreat) "
                             "is run on the quasi-likelihood fit here; use kind='qlf' (the default).")
        for label, value in (("cooks_filter", cooks_filter), ("independent_filter", independent_filter)):
            if value is not None:
                raise ValueError(f"{label}= is DESeq2 only; edgeR filters genes with filterByExpr at fit time.")


@renamed_keyword("key_added", "key")
def test(
    adata: AnnData,
    contrast=None,
    *,
    reduced: str | None = None,
    drop: str | Sequence[str] | None = None,
    name: str | None = None,
    kind: str | None = None,
    alpha: float = 0.1,
    lfc_threshold: float = 0.0,
    alt: str = "greaterAbs",
    use_t: bool = False,
    cooks_filter: bool | None = None,
    independent_filter: bool | None = None,
    key: str = "pbglm",
    copy: bool = False,
) -> AnnData | None:
    """Test a contrast (Wald / QL F) or a nested model (likelihood-ratio) for every gene.

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit`.
    contrast
        What to test: ``(factor, level, reference)``, a coefficient name (``"dex[trt]"``), a
        dict ``{coefficient: weight}``, a vector over the design columns, or an expression such as
        ``"DrugA - DrugB"``. With ``reduced``/``drop`` it only chooses which log2 fold change is
        reported (default: the last design column, as DESeq2).
    reduced
        A reduced formula nested in the fitted one: likelihood-ratio test (DESeq2 ``nbinomLRT``;
        edgeR: the coefficients absent from it are tested jointly).
    drop
        Coefficient name(s) to remove from the full design for a joint test ("changed in any
        condition"); an alternative to ``reduced``.
    name
        Name of the stored test (any string: it is stored under an encoded key and shown as
        given). By default it is derived from what is tested: ``dex_trt_vs_untrt`` for a
        ``(factor, level, reference)`` contrast, the coefficient or expression otherwise,
        ``lrt_<reduced formula>`` / ``lrt_drop_<coefficients>`` for likelihood-ratio tests;
        then one suffix per option that changes the answer, in this order:
        ``_lfc<t>`` (``lfc_threshold=t > 0``, e.g. ``_lfc1``, ``_lfc0.5``), ``_<alt>`` (``alt``
        other than ``"greaterAbs"``, e.g. ``_lfc1_lessAbs``), ``_useT``, ``_glmLRT`` (edgeR
        ``kind="lrt"``), and for DESeq2 ``_alpha<a>`` (``alpha`` other than 0.1, which moves the
        independent-filtering threshold), ``_noCooks``, ``_noIndFilter``. So
        ``tl.test(adata, ("dex", "trt", "untrt"), lfc_threshold=1)`` stores
        ``dex_trt_vs_untrt_lfc1`` next to ``dex_trt_vs_untrt``. A test stored under an existing
        name replaces it, with a UserWarning naming it.
    kind
        edgeR: ``"qlf"`` (default, glmQLFTest / glmTreat) or ``"lrt"`` (glmLRT: on an edgeR 4
        fit, of the QL fit at its working dispersion; on a ``legacy=True`` fit, of ``glmFit`` at the
        tagwise dispersions; ``"lrt"`` takes no ``lfc_threshold``). DESeq2 decides by the arguments
        (Wald for a contrast, LRT with ``reduced``/``drop``); ``"wald"`` or ``"lrt"`` may be given
        to say so, anything else is refused.
    alpha
        FDR level used by independent filtering, strictly between 0 and 1.
    lfc_threshold, alt
        Test ``|log2fc| > lfc_threshold`` (``alt="greaterAbs"``), ``< lfc_threshold``
        (``"lessAbs"``), ``> lfc_threshold`` (``"greater"``) or ``< -lfc_threshold`` (``"less"``),
        as DESeq2 ``results(lfcThreshold=, altHypothesis=)``; edgeR uses glmTreat on the QL fit
        (greaterAbs only; other ``alt`` values and ``kind="lrt"`` with a threshold are refused).
    use_t
        DESeq2 Wald tests only: t distribution with m - p degrees of freedom instead of the
        normal (``useT``).
    cooks_filter, independent_filter
        DESeq2 only (default True): Cook's outlier filter and independent filtering on the mean
        count. Refused for edgeR.
    key
        Key of the fit to test.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or a copy with ``copy=True``). Writes ``.varm[f'{key}_test_{name}']``: a DataFrame
    with ``base_mean, log2fc, lfc_se, stat, pvalue, padj`` (edgeR adds ``log_cpm``; edgeR has no
    standard error, so its ``lfc_se`` is the one its one-df test implies, ``|log2fc| / sqrt(stat)``,
    and NaN for glmTreat and joint tests), and
    ``.uns[key]['tests'][name]``: kind, contrast vector and names, alpha, threshold, filter
    threshold, Cook's cutoff. With ``groupby`` fits one table per group (``...:{group}``).
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData fit by pb.tl.fit, got {type(adata).__name__}.")
    if reduced is not None and drop is not None:
        raise ValueError("Give either reduced= or drop=, not both.")
    if copy:
        adata = adata.copy()
    fits = stored_fits(adata, key)
    method = fits[0].method
    if contrast is None and reduced is None and drop is None:
        raise ValueError("Nothing to test: pass a contrast, reduced= (a nested formula) or drop= (coefficient names).")
    _check_test_args(adata, method, contrast=contrast, reduced=reduced, drop=drop, name=name, kind=kind, alpha=alpha,
                     lfc_threshold=lfc_threshold, alt=alt, use_t=use_t, cooks_filter=cooks_filter,
                     independent_filter=independent_filter)
    cooks_filter = True if cooks_filter is None else bool(cooks_filter)
    independent_filter = True if independent_filter is None else bool(independent_filter)
    alpha, lfc_threshold = float(alpha), float(lfc_threshold)
    results = {}
    test_name = None
    record_params = {}
    skipped = {}
    for fit in fits:
        try:
            if contrast is None:
                last = fit.columns[-1]
                vec, default_name, desc = resolve_contrast(last, fit.columns, fit.factors)
                if drop is not None:
                    dropped = [drop] if isinstance(drop, str) else list(drop)
                    default_name = "lrt_drop_" + "_".join(dropped)
                else:
                    default_name = "lrt_" + safe_name(reduced.replace(" ", ""))
            else:
                vec, default_name, desc = resolve_contrast(contrast, fit.columns, fit.factors,
                                                           formula=str(fit.record["formula"]),
                                                           numeric=list(fit.record.get("numeric", [])))
                if reduced is not None or drop is not None:
                    default_name = "lrt_" + default_name
            if method == "deseq2":
                table, params = _test_deseq2(adata, fit, vec, desc, reduced=reduced, drop=drop, alpha=alpha,
                                             lfc_threshold=lfc_threshold, alt=alt, use_t=use_t,
                                             cooks_filter=cooks_filter, independent_filter=independent_filter)
            else:
                coefs = None
                if drop is not None:
                    coefs = [drop] if isinstance(drop, str) else list(drop)
                elif reduced is not None:
                    X0, _ = _reduced_matrix(adata, fit, reduced, None)
                    coefs = _coefs_not_in(fit, X0)
                table, params = _test_edger(adata, fit, vec, desc, kind=kind or "qlf", coefs=coefs,
                                            lfc_threshold=lfc_threshold, key=key)
        except (KeyError, ValueError) as err:
            if fit.group is None:
                raise
            skipped[fit.group] = str(err)
            continue
        test_name = name or default_name + _option_suffix(
            method, kind=kind, lfc_threshold=lfc_threshold, alt=alt, use_t=use_t, alpha=alpha,
            cooks_filter=cooks_filter, independent_filter=independent_filter)
        frame = pd.DataFrame(table, index=adata.var_names)
        frame = frame[TEST_COLUMNS + [c for c in frame.columns if c not in TEST_COLUMNS]]
        params.update(contrast=np.asarray(vec, dtype=float), contrast_columns=fit.columns, description=desc,
                      alpha=alpha, lfc_threshold=lfc_threshold, alt=alt)
        results[fit.group] = (frame, params)
        record_params = params
    if not results:
        raise ValueError(f"The test could not be run in any group: {skipped}")
    if skipped:
        warn("Test skipped in groups: " + "; ".join(f"{g}: {r}" for g, r in skipped.items()))
    summary = None
    if fits[0].group is not None:
        summary = {**record_params, "groups": list(map(str, results)),
                   "skipped": {str(k): v for k, v in skipped.items()}}
    if test_name in stored_tests(adata, key):
        warn(f"Replacing the stored test {test_name!r} under key={key!r} with this one; pass name= to keep both.")
    write_test(adata, results, key=key, name=test_name, summary=summary)
    logger.info("stored test %r", test_name)
    return adata if copy else None


def _option_suffix(method, *, kind, lfc_threshold, alt, use_t, alpha, cooks_filter, independent_filter) -> str:
    """The part of a default test name that records the options changing the answer (see tl.test's ``name``)."""
    parts = []
    if lfc_threshold:
        parts.append(f"lfc{float(lfc_threshold):g}")
    if alt != "greaterAbs":
        parts.append(alt)
    if use_t:
        parts.append("useT")
    if method == "edger" and kind == "lrt":
        parts.append("glmLRT")
    if method == "deseq2":
        if alpha != 0.1:
            parts.append(f"alpha{float(alpha):g}")
        if not cooks_filter:
            parts.append("noCooks")
        if not independent_filter:
            parts.append("noIndFilter")
    return "".join("_" + p for p in parts)


def _coefs_not_in(fit: StoredFit, X0: np.ndarray) -> list[str]:
    """Design columns of the full model that the reduced model does not span (the tested ones)."""
    X = fit.design
    cols = fit.columns
    out = []
    basis = X0
    for j, c in enumerate(cols):
        trial = np.column_stack([basis, X[:, j]])
        if not dependent_columns(trial, [f"b{i}" for i in range(trial.shape[1])]):
            basis = trial
            out.append(c)
    return out
