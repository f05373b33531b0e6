"""``tl.shrink``: shrunken log2 fold changes of a stored test (DESeq2 ``lfcShrink``: apeglm or normal prior)."""

from __future__ import annotations

import logging
import re

import numpy as np
from anndata import AnnData

from .._contrast import level_column
from .._design import build_design
from .._io import StoredFit, read_obs, stored_fits, stored_test, test_table, write_shrink, write_shrink_record
from .._methods.deseq2 import DESeq2Options, fit_glm
from .._methods.shrink import apeglm_shrink, contrast_design, normal_shrink, reparametrised_mle
from ._test import _counts_for

logger = logging.getLogger("pbglm")

METHODS = ("apeglm", "normal")


def _effect_design(adata: AnnData, fit: StoredFit, vec: np.ndarray, desc: dict) -> tuple[np.ndarray, int, str]:
    """A design spanning the fitted one in which the tested contrast is coefficient ``j``.

    A coefficient is used as it is; a comparison of two levels of a factor relevels that factor
    (what DESeq2 users do before ``lfcShrink(coef = )``); any other contrast is made a coefficient by
    :func:`pbglm._methods.shrink.contrast_design`.
    """
    X = fit.design
    cols = fit.columns
    intercept = np.all(X == 1.0, axis=0)
    nonzero = np.nonzero(vec)[0]
    if nonzero.size == 1 and vec[nonzero[0]] == 1.0 and not intercept[nonzero[0]]:
        return X, int(nonzero[0]), f"coefficient {cols[nonzero[0]]}"
    if desc.get("kind") == "levels" and not desc.get("at"):
        factor, level, ref = str(desc["factor"]), str(desc["level"]), str(desc["reference"])
        reference = {f: levels[0] for f, levels in fit.factors.items()}
        reference[factor] = ref
        design = build_design(adata.obs.loc[fit.mask], str(fit.record["formula"]), reference)
        col = level_column(design.columns, factor, level)
        if col is not None:
            return design.matrix, design.columns.index(col), f"coefficient {col} with {factor} releveled to {ref!r}"
    X_new, j = contrast_design(X, vec, intercept)
    return X_new, j, "the contrast as one coefficient of a reparametrised design"


def _check_single_effect(name: str, params: dict) -> None:
    kind = str(params.get("kind", ""))
    coefs = params.get("coefficients")
    if kind == "lrt" and int(params.get("df", 1)) > 1 or (coefs is not None and len(list(coefs)) > 1):
        raise ValueError(
            f"Test {name!r} is a joint test of several coefficients (a multi-degree-of-freedom likelihood-ratio or "
            "F test): there is no single effect to shrink. Run a Wald test of the comparison you want to rank by, "
            "e.g. pb.tl.test(adata, ('factor', 'level', 'reference')), and shrink that test."
        )


def _has_interaction(formula: str) -> bool:
    rhs = formula.split("~", 1)[-1]
    return bool(re.search(r"[:*]", rhs))


def _mle_and_se(fit: StoredFit, vec: np.ndarray, counts, offset_sf, X):
    """The contrast's MLE and SE (log2) for the prior scale; edgeR fits store no SEs, so the NB GLM
    MLE is refit there (DESeq2's IRLS with that fit's dispersions and effective library sizes)."""
    coef, cov = fit.coef, fit.cov
    if fit.method == "edger":
        disp = fit.genes["dispersion"].to_numpy(dtype=float)
        res = fit_glm(counts, offset_sf, X, disp, DESeq2Options(), want_hat=False)
        coef, cov = res["beta"] / np.log(2.0), res["cov"] / np.log(2.0) ** 2
    mle = coef @ vec
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.einsum("i,gij,j->g", vec, cov, vec))
    if "all_zero" in fit.genes:
        zero = fit.genes["all_zero"].to_numpy(dtype=bool)
        mle[zero] = np.nan
        se[zero] = np.nan
    return mle, se


def _shrink_one(adata: AnnData, fit: StoredFit, name: str, params: dict, *, method: str, lfc_threshold: float):
    _check_single_effect(name, params)
    genes = fit.genes
    if "dispersion" not in genes or not np.isfinite(genes["dispersion"].to_numpy(dtype=float)).any():
        raise ValueError(f"The fit under key {fit.key!r} has no stored dispersions; refit with pbglm.tl.fit "
                         "before shrinking.")
    if method == "normal":
        if fit.method != "deseq2":
            raise ValueError("method='normal' is DESeq2's betaPrior refit and needs a method='deseq2' fit; "
                             "use method='apeglm' for edgeR fits.")
        if _has_interaction(str(fit.record["formula"])):
            raise ValueError(
                f"The normal prior is not defined for designs with interaction terms ({fit.record['formula']!r}); "
                "DESeq2 refuses it too. Use method='apeglm', which shrinks one effect of any design."
            )
        if lfc_threshold:
            raise ValueError("lfc_threshold= sets apeglm's 'false sign or small' s-values; the normal prior has no "
                             "s-values. Use method='apeglm', or pb.tl.test(lfc_threshold=) for a thresholded test.")
    vec = np.asarray(params["contrast"], dtype=float)
    desc = params.get("description", {})
    desc = dict(desc) if isinstance(desc, dict) else {}
    X_new, j, how = _effect_design(adata, fit, vec, desc)
    counts = _counts_for(adata, fit, replaced=False)
    if fit.method == "edger":
        sf = read_obs(adata, fit.key, "lib_size", fit.mask) * read_obs(adata, fit.key, "norm_factors", fit.mask)
    else:
        sf = read_obs(adata, fit.key, "size_factor", fit.mask)
    disp = genes["dispersion"].to_numpy(dtype=float)
    record = {"method": method, "lfc_threshold": float(lfc_threshold), "effect": how}
    if method == "apeglm":
        mle, se = _mle_and_se(fit, vec, counts, sf, fit.design)
        out = apeglm_shrink(counts, X_new, np.log(sf), disp, j, mle, se, lfc_threshold=lfc_threshold)
        columns = {"log2fc_shrunk": out["log2fc_shrunk"], "lfc_se_shrunk": out["lfc_se_shrunk"],
                   "svalue": out["svalue"]}
        n_refined = int((out["status"] == -1).sum())
        record.update(prior="cauchy", prior_scale=out["prior_scale"], prior_var=out["prior_var"],
                      prior_scale_log2=out["prior_scale"] / np.log(2.0), n_refined=n_refined,
                      n_no_se=int((out["status"] == -2).sum()))
        if n_refined:
            logger.info("apeglm: %d genes refined by Newton steps (their two L-BFGS runs disagreed)", n_refined)
    else:
        coef_new, _ = reparametrised_mle(fit.coef, fit.cov, fit.design, X_new)
        intercept = np.all(X_new == 1.0, axis=0)
        out = normal_shrink(counts, sf, X_new, disp, coef_new, genes["base_mean"].to_numpy(dtype=float),
                            genes["dispersion_trend"].to_numpy(dtype=float), intercept,
                            genes["all_zero"].to_numpy(dtype=bool))
        columns = {"log2fc_shrunk": out["coef"][:, j], "lfc_se_shrunk": out["se"][:, j]}
        record.update(prior="normal", prior_var=float(out["prior_var"][j]),
                      prior_scale_log2=float(np.sqrt(out["prior_var"][j])))
    return columns, record


def shrink(
    adata: AnnData,
    test: str,
    *,
    method: str = "apeglm",
    lfc_threshold: float = 0.0,
    key: str = "pbglm",
    copy: bool = False,
) -> AnnData | None:
    """Shrunken log2 fold changes of a stored test, for ranking and plots (DESeq2 ``lfcShrink``).

    Maximum-likelihood fold changes of genes with few reads are mostly noise; shrinkage pulls them
    towards zero by how uncertain they are, and leaves well-measured large effects alone.

    ``method="apeglm"`` computes what DESeq2 1.38 ``lfcShrink(dds, coef=, type="apeglm")`` does
    through apeglm 1.29: a Cauchy prior on the tested effect whose scale is estimated from the
    MLEs and their SEs (apeglm's ``priorVar``, capped at 1 on the natural-log scale), a wide normal
    N(0, 15²) on the other coefficients, the NB likelihood with the fit's size factors and final
    dispersions, the posterior mode (apeglm's L-BFGS, reproduced step by step), its Laplace SE, and
    apeglm's s-values. ``method="normal"`` is DESeq2's original normal prior, the
    ``betaPrior=TRUE`` refit that ``lfcShrink(type="normal")`` runs; like DESeq2 it refuses designs
    with interaction terms.

    Any contrast can be shrunk, not only a coefficient: a comparison of two levels of a factor is
    shrunk as the coefficient of that level after releveling the factor to the reference of the
    comparison (what DESeq2 users do by hand before ``lfcShrink(coef=)``); a contrast vector or an
    expression is made a single coefficient by reparametrising the design (the same model: ``X b =
    (X T⁻¹)(T b)`` with the contrast as a row of ``T``). The normal prior's variances are then
    those of the reparametrised design.

    On ``method="edger"`` fits (apeglm only) the same posterior is computed with that fit's NB
    dispersions (the trended ones the QL fit uses) and effective library sizes as offsets; the prior
    scale comes from NB MLEs refit at those dispersions. This is an NB-likelihood shrinkage
    estimate, not part of edgeR's quasi-likelihood framework (edgeR has no such estimator); there
    is no R reference for it.

    Parameters
    ----------
    adata
        An AnnData on which :func:`pbglm.tl.test` was run.
    test
        Name of the stored test to shrink (see ``adata.uns[key]['tests']``): a Wald/QL test of one
        contrast, or a one-degree-of-freedom LRT (its reported fold change is shrunk).
    method
        ``"apeglm"`` (default) or ``"normal"``.
    lfc_threshold
        apeglm only: with a threshold ``T > 0`` (log2), the s-values are the "false sign or small"
        s-values of ``lfcShrink(lfcThreshold=T)`` (the posterior probability that the effect is
        smaller than ``T`` or of the other sign), not the false sign rate's.
    key
        Key of the fit.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or a copy with ``copy=True``). Adds to the test's table
    ``.varm[f'{key}_test_{test}']`` (per group ``...:{group}`` with ``groupby`` fits, every group
    shrunk) the columns ``log2fc_shrunk``, ``lfc_se_shrunk`` (log2 posterior mode and SD) and, for
    apeglm, ``svalue``; :func:`pbglm.get.results` returns them. Writes
    ``.uns[key]['tests'][test]['shrink']`` (per group under ``.uns[key]['groups'][g]['tests']``):
    ``method``, ``lfc_threshold``, ``prior`` (cauchy | normal), ``prior_scale`` (apeglm's Cauchy
    scale, natural log, as apeglm reports it), ``prior_var`` (apeglm: natural log; normal: DESeq2's
    ``betaPriorVar`` of the effect, log2), ``prior_scale_log2``, ``effect`` (how the contrast was
    made a coefficient) and, for apeglm, ``n_refined`` (genes whose two L-BFGS runs disagreed,
    where apeglm refits with R's BFGS; here the mode is refined by damped Newton steps) and ``n_no_se``
    (genes without a positive Laplace variance: NaN SE and s-value).

    Raises
    ------
    KeyError
        No fit under ``key``, or no test named ``test`` (the stored ones are listed).
    ValueError
        A joint (multi-degree-of-freedom) test; ``method="normal"`` on a design with interactions,
        with ``lfc_threshold`` or on an edgeR fit; a fit without stored dispersions; an unknown
        method or a negative threshold.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if not np.isfinite(lfc_threshold) or lfc_threshold < 0:
        raise ValueError(f"lfc_threshold must be a finite log2 fold change >= 0, got {lfc_threshold}.")
    if copy:
        adata = adata.copy()
    fits = stored_fits(adata, key)
    top = stored_test(adata, key, test)
    results = {}
    for fit in fits:
        if fit.group is not None and test_table(adata, key, test, fit.group) is None:
            continue  # the test was skipped in this group
        params = top if fit.group is None else stored_test(adata, key, test, fit.group)
        results[fit.group] = _shrink_one(adata, fit, test, params, method=method, lfc_threshold=lfc_threshold)
    for group, (columns, record) in results.items():
        write_shrink(adata, columns, key=key, name=test, record=record, group=group)
    if fits[0].group is not None:
        summary = {"method": method, "lfc_threshold": float(lfc_threshold),
                   "groups": [str(g) for g in results],
                   "prior_scale_log2": {str(g): float(r["prior_scale_log2"]) for g, (_, r) in results.items()}}
        write_shrink_record(adata, summary, key=key, name=test)
    logger.info("shrunk test %r (%s)", test, method)
    return adata if copy else None
