"""``get.fits`` / ``get.tests``: what is stored in an AnnData, one row per fit or per test."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._io import fit_record, has_varm, read_varm, stored_keys

TEST_LISTING_COLUMNS = ["name", "group", "kind", "contrast", "reduced", "lfc_threshold", "alt", "alpha",
                        "n_tested", "n_significant", "skipped"]


def _contrast_text(vector, columns) -> str:
    """A contrast vector as a readable sum over coefficient names, e.g. ``dex[trt]`` or ``A - B``."""
    terms = []
    for w, c in zip(np.atleast_1d(np.asarray(vector, dtype=float)), [str(c) for c in np.atleast_1d(columns)],
                    strict=False):
        if w == 0:
            continue
        sign = "-" if w < 0 else "+"
        mag = "" if abs(w) == 1 else f"{abs(w):g}*"
        terms.append(f"{sign} {mag}{c}")
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else text or "0"


def _scalar(value, default=np.nan):
    if value is None:
        return default
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else value


def _row(adata, key, name, group, record, skipped=""):
    kind = str(record.get("kind", ""))
    row = {
        "name": name,
        "group": group,
        "kind": kind,
        "contrast": _contrast_text(record["contrast"], record["contrast_columns"]) if "contrast" in record else "",
        "reduced": str(record.get("reduced", "")),
        "lfc_threshold": float(_scalar(record.get("lfc_threshold"), 0.0)),
        "alt": str(record.get("alt", "")),
        "alpha": float(_scalar(record.get("alpha"))),
        "n_tested": 0,
        "n_significant": 0,
        "skipped": skipped,
    }
    if not skipped and has_varm(adata, key, f"test_{name}", group):
        table = pd.DataFrame(read_varm(adata, key, f"test_{name}", group))
        padj = table["padj"].to_numpy(dtype=float)
        row["n_tested"] = int(np.isfinite(table["pvalue"].to_numpy(dtype=float)).sum())
        row["n_significant"] = int(np.sum(padj < row["alpha"]))
    return row


def tests(adata: AnnData, *, key: str = "pbglm") -> pd.DataFrame:
    """List the tests stored under a fit.

    Parameters
    ----------
    adata
        An AnnData fit by :func:`pbglm.tl.fit`.
    key
        Key of the fit (the ``key_added`` of :func:`pbglm.tl.fit`).

    Returns
    -------
    A DataFrame with one row per test (per test and group for per-group fits), in the order the
    tests were run, with columns

    ``name``
        The test's name, as :func:`pbglm.get.results` takes it.
    ``group``
        The group (``None`` for an ungrouped fit).
    ``kind``
        ``"wald"`` or ``"lrt"`` (DESeq2); ``"ql_ftest"``, ``"treat"`` or ``"lrt"`` (edgeR).
    ``contrast``
        The contrast as a sum over coefficient names (for likelihood-ratio tests: the one whose
        ``log2fc`` is reported).
    ``reduced``
        The reduced model of a likelihood-ratio test (empty otherwise).
    ``lfc_threshold``, ``alt``, ``alpha``
        The options the test was run with.
    ``n_tested``, ``n_significant``
        Genes with a p-value, and genes with ``padj < alpha``.
    ``skipped``
        Why the test could not be run in this group (empty when it was run).

    Empty (with these columns) when no test is stored.
    """
    uns = fit_record(adata, key)
    rows = []
    for name, record in uns.get("tests", {}).items():
        if "groups" in uns:
            run_in = [str(g) for g in np.atleast_1d(record.get("groups", []))]
            why = record.get("skipped", {})
            for g, grec in uns["groups"].items():
                if g in run_in:
                    rows.append(_row(adata, key, name, g, grec.get("tests", {}).get(name, record)))
                elif g in why:
                    rows.append(_row(adata, key, name, g, record, skipped=str(why[g])))
        else:
            rows.append(_row(adata, key, name, None, record))
    return pd.DataFrame(rows, columns=TEST_LISTING_COLUMNS)


def fits(adata: AnnData) -> pd.DataFrame:
    """List the fits stored in ``adata``.

    Parameters
    ----------
    adata
        Any AnnData.

    Returns
    -------
    A DataFrame indexed by the fits' keys (the ``key=`` of the readers), with columns
    ``method``, ``formula``, ``groupby`` (``None`` for an ungrouped fit), ``groups`` (list of the
    fitted groups), ``skipped`` (list of the groups that could not be fit), ``tests`` (list of the
    stored tests' names) and ``version`` (pbglm version that fit it). Empty when nothing is stored.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    rows = {}
    for key in stored_keys(adata):
        uns = fit_record(adata, key)
        grouped = "groups" in uns
        rows[key] = {
            "method": str(uns.get("method", "")),
            "formula": str(uns.get("formula", "")),
            "groupby": str(uns["groupby"]) if grouped and "groupby" in uns else None,
            "groups": list(uns["groups"]) if grouped else [],
            "skipped": list(uns.get("skipped", {})) if grouped else [],
            "tests": list(uns.get("tests", {})),
            "version": str(uns.get("version", "")),
        }
    columns = ["method", "formula", "groupby", "groups", "skipped", "tests", "version"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("key")
