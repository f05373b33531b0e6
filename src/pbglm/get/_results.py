"""``get.results``: a stored test as a tidy DataFrame."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._io import stored_tests, varm_key
from .._renamed_keyword import renamed_keyword


@renamed_keyword("key_added", "key")
def results(adata: AnnData, name: str, *, key: str = "pbglm", sort_by: str | None = None) -> pd.DataFrame:
    """Return one test's results.

    Parameters
    ----------
    adata
        An AnnData on which :func:`pbglm.tl.test` was run.
    name
        The test's name (see ``adata.uns[key]['tests']``).
    key
        Key of the fit.
    sort_by
        Optionally sort by this column (e.g. ``"pvalue"``), NaN last.

    Returns
    -------
    A DataFrame indexed by ``var_names`` with ``base_mean, log2fc, lfc_se, stat, pvalue, padj``
    (edgeR adds ``log_cpm``; :func:`pbglm.tl.shrink` adds ``log2fc_shrunk``, ``lfc_se_shrunk`` and,
    for apeglm, ``svalue``). For a per-group fit (``groupby``): a long table with a ``gene``
    column and a ``group`` column, one row per gene and group.
    """
    tests = stored_tests(adata, key)
    if name not in tests:
        stored = tests or "none (run pbglm.tl.test first)"
        raise KeyError(f"No test named {name!r} under key {key!r}. Stored tests: {stored}.")
    uns = adata.uns[key]
    if "groups" in uns:
        frames = []
        for g in uns["tests"][name].get("groups", []):
            slot = varm_key(key, f"test_{name}", g)
            if slot not in adata.varm:
                continue
            df = pd.DataFrame(adata.varm[slot]).copy()
            df.insert(0, "group", g)
            df.insert(0, "gene", df.index.astype(str))
            frames.append(df.reset_index(drop=True))
        out = pd.concat(frames, ignore_index=True)
        out["group"] = pd.Categorical(out["group"], categories=list(dict.fromkeys(out["group"])))
    else:
        out = pd.DataFrame(adata.varm[varm_key(key, f"test_{name}")]).copy()
    if sort_by is not None:
        if sort_by not in out.columns:
            raise KeyError(f"Cannot sort by {sort_by!r}; columns are {list(out.columns)}.")
        out = out.sort_values(sort_by, na_position="last", kind="stable")
    return out
