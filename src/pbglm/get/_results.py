"""``get.results``: a stored test as a tidy DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._io import fit_record, has_varm, read_varm, stored_tests
from .._numerics.multitest import bh_adjust
from .._renamed_keyword import renamed_keyword

FDR_SCOPES = ("group", "global")


def _check_name(adata: AnnData, name, key: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a stored test (str), got {type(name).__name__}.")
    tests = stored_tests(adata, key)
    if name not in tests:
        stored = tests or "none (run pbglm.tl.test first)"
        raise KeyError(f"No test named {name!r} under key {key!r}. Stored tests: {stored}.")


def _group_tables(adata: AnnData, uns: dict, name: str, key: str) -> dict[str, pd.DataFrame]:
    """Each group's table of a test on a per-group fit, in the order the groups were fit."""
    run_in = [str(g) for g in np.atleast_1d(uns["tests"][name].get("groups", []))]
    return {
        g: pd.DataFrame(read_varm(adata, key, f"test_{name}", g)).copy()
        for g in uns["groups"] if g in run_in and has_varm(adata, key, f"test_{name}", g)
    }


def _check_group(uns: dict, name: str, group, key: str) -> str:
    groups = list(uns["groups"])
    if str(group) not in groups:
        skipped = uns.get("skipped", {})
        why = f" It was not fit: {skipped[str(group)]}" if str(group) in skipped else ""
        raise KeyError(f"Group {group!r} is not a fitted group of key {key!r}; fitted groups: {groups}.{why}")
    record = uns["tests"][name]
    if str(group) not in [str(g) for g in np.atleast_1d(record.get("groups", []))]:
        why = record.get("skipped", {}).get(str(group), "")
        raise KeyError(f"Test {name!r} was not run in group {group!r}" + (f": {why}" if why else "."))
    return str(group)


@renamed_keyword("key_added", "key")
def results(
    adata: AnnData,
    name: str,
    *,
    key: str = "pbglm",
    group: str | None = None,
    fdr: str = "group",
    sort_by: str | None = None,
) -> pd.DataFrame:
    """Return one test's results as a tidy table.

    Parameters
    ----------
    adata
        An AnnData on which :func:`pbglm.tl.test` was run.
    name
        The test's name, as given to (or chosen by) :func:`pbglm.tl.test`; :func:`pbglm.get.tests`
        lists them.
    key
        Key of the fit (the ``key_added`` of :func:`pbglm.tl.fit`).
    group
        Per-group fits (``tl.fit(..., groupby=)``) only: return this group's table, indexed by
        gene like the table of an ungrouped fit. ``None`` returns every group in one long table.
    fdr
        Per-group fits only. ``"group"`` (default): ``padj`` is adjusted within each group, as if
        each group had been fit alone. ``"global"``: also add ``padj_global``, the
        Benjamini-Hochberg adjustment of the p-values of every gene in every group the test was
        run in, together (muscat's ``p_adj.glb``); it controls the FDR over all genes x groups
        discoveries. Genes without a p-value (all-zero, Cook's outliers) are left out of it; genes
        removed from ``padj`` by DESeq2's independent filtering keep their p-value in it. With
        ``group=``, ``padj_global`` is still adjusted over every group.
    sort_by
        Optionally sort by this column (e.g. ``"pvalue"``), NaN last.

    Returns
    -------
    A DataFrame indexed by ``var_names``; for a per-group fit without ``group=``, a long table
    with one row per gene and group and a default index. Its columns:

    ``gene``, ``group``
        Per-group fits without ``group=`` only: the gene (var name) and the group
        (a Categorical in the order the groups were fit).
    ``base_mean``
        Mean over the fit's samples of the normalised counts (counts divided by the size
        factors, ``.obs[f"{key}_size_factor"]``); DESeq2's ``baseMean``.
    ``log2fc``
        Estimated log2 fold change of the contrast (DESeq2 ``log2FoldChange``, edgeR ``logFC``).
        For likelihood-ratio tests, that of the ``contrast`` (default: the last coefficient).
    ``lfc_se``
        Standard error of ``log2fc`` (DESeq2 ``lfcSE``); NaN for edgeR fits (edgeR reports none).
    ``stat``
        Test statistic: Wald z (t with ``use_t``) for DESeq2 Wald tests, the deviance
        difference (chi-squared) for likelihood-ratio tests (DESeq2 LRT, edgeR ``glmLRT``), the
        F statistic for edgeR quasi-likelihood tests (``glmQLFTest``, ``glmTreat``).
    ``pvalue``
        Two-sided (or ``alt=``) p-value; NaN for all-zero genes, Cook's outliers and genes
        edgeR's ``filterByExpr`` dropped.
    ``padj``
        Benjamini-Hochberg adjusted p-value within the fit (within each group for per-group
        fits); for DESeq2 after independent filtering on ``base_mean`` (NaN for filtered genes).
    ``log_cpm``
        edgeR only: average log2 counts per million (``logCPM``).
    ``padj_global``
        With ``fdr="global"`` only, see ``fdr``.
    ``log2fc_shrunk``, ``lfc_se_shrunk``, ``svalue``
        After :func:`pbglm.tl.shrink` only: the shrunken log2 fold change (posterior mode), its
        posterior SD and (apeglm) the s-value.

    Raises
    ------
    KeyError
        No such test, fit or group (the message lists what is stored).
    ValueError
        ``group=`` or ``fdr="global"`` on an ungrouped fit, or an unknown ``fdr``.
    """
    uns = fit_record(adata, key)
    _check_name(adata, name, key)
    if fdr not in FDR_SCOPES:
        raise ValueError(f"fdr must be one of {FDR_SCOPES}, got {fdr!r}.")
    grouped = "groups" in uns
    if not grouped:
        if group is not None:
            raise ValueError(
                f"group={group!r} was given, but the fit under key={key!r} has no groups "
                "(pbglm.tl.fit was run without groupby=)."
            )
        if fdr == "global":
            raise ValueError(
                "fdr='global' adjusts across the groups of a per-group fit (tl.fit(..., groupby=)); "
                f"the fit under key={key!r} has no groups, so its padj already covers every gene."
            )
        out = pd.DataFrame(read_varm(adata, key, f"test_{name}")).copy()
    else:
        wanted = None if group is None else _check_group(uns, name, group, key)
        tables = _group_tables(adata, uns, name, key)
        if fdr == "global":
            pvalues = np.concatenate([t["pvalue"].to_numpy(dtype=float) for t in tables.values()])
            adjusted = bh_adjust(pvalues)
            start = 0
            for t in tables.values():
                t["padj_global"] = adjusted[start:start + len(t)]
                start += len(t)
        if wanted is not None:
            out = tables[wanted]
        else:
            frames = []
            for g, df in tables.items():
                df.insert(0, "group", g)
                df.insert(0, "gene", df.index.astype(str))
                frames.append(df.reset_index(drop=True))
            out = pd.concat(frames, ignore_index=True)
            out["group"] = pd.Categorical(out["group"], categories=list(tables))
    if sort_by is not None:
        if sort_by not in out.columns:
            raise KeyError(f"Cannot sort by {sort_by!r}; columns are {list(out.columns)}.")
        out = out.sort_values(sort_by, na_position="last", kind="stable")
    return out
