"""Helpers shared by the plotting functions: reading stored fits and tests, checking input, axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._io import stored_tests, varm_key

# Okabe-Ito colours (readable for colour-blind readers and in greyscale print).
UP = "#D55E00"
DOWN = "#0072B2"
NS = "#BBBBBB"
HIGHLIGHT = "#222222"
LABEL_SIZE = 8


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure with constrained layout."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}.")
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def finish(ax: Axes, return_fig: bool) -> Axes | Figure:
    """What a plotting function returns."""
    return ax.figure if return_fig else ax


def legend_outside(ax: Axes, **kwargs):
    """A frameless legend to the right of the axes, where it cannot cover data."""
    opts = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0.0, handletextpad=0.3)
    opts.update(kwargs)
    return ax.legend(**opts)


def fit_record(adata: AnnData, key_added: str) -> Mapping:
    """``adata.uns[key_added]`` of a fit, with a clear error when there is none."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    uns = adata.uns.get(key_added)
    if not isinstance(uns, Mapping) or ("design_columns" not in uns and "groups" not in uns):
        others = [k for k, v in adata.uns.items() if isinstance(v, Mapping) and ("design_columns" in v or "groups" in v)]
        hint = f" Fits are stored under key_added={others}." if others else ""
        raise KeyError(f"No pbglm fit stored under key_added={key_added!r}: run pbglm.tl.fit(adata, design) first.{hint}")
    return uns


def fit_groups(uns: Mapping) -> list[str] | None:
    """Groups of a per-group fit, or ``None`` for an ungrouped fit."""
    return [str(g) for g in uns["groups"]] if "groups" in uns else None


def check_group(adata: AnnData, key_added: str, group, *, needed_for: str = "this plot") -> str | None:
    """Validate ``group`` against the fit: required for per-group fits, refused otherwise."""
    uns = fit_record(adata, key_added)
    groups = fit_groups(uns)
    if groups is None:
        if group is not None:
            raise ValueError(
                f"group={group!r} was given, but the fit under key_added={key_added!r} has no groups "
                "(pbglm.tl.fit was run without groupby=)."
            )
        return None
    if group is None:
        raise ValueError(
            f"The fit under key_added={key_added!r} is per group (groupby={uns.get('groupby')!r}); "
            f"{needed_for} needs group= one of {groups}."
        )
    if str(group) not in groups:
        skipped = dict(uns.get("skipped", {}))
        why = f" It was skipped: {skipped[str(group)]}" if str(group) in skipped else ""
        raise KeyError(f"Group {group!r} was not fit; fitted groups: {groups}.{why}")
    return str(group)


def check_test(adata: AnnData, test: str | None, key_added: str) -> str:
    """The name of a stored test (the only one when ``test`` is ``None``)."""
    fit_record(adata, key_added)
    tests = stored_tests(adata, key_added)
    stored = tests or "none (run pbglm.tl.test first)"
    if test is None:
        if len(tests) == 1:
            return tests[0]
        raise ValueError(f"Pass test= naming the test to plot. Stored tests: {stored}.")
    if not isinstance(test, str):
        raise TypeError(f"test must be a test name (str), got {type(test).__name__}.")
    if test not in tests:
        raise KeyError(f"No test named {test!r} under key_added={key_added!r}. Stored tests: {stored}.")
    return test


def test_table(adata: AnnData, test: str | None, key_added: str, group) -> tuple[pd.DataFrame, str, str | None]:
    """One stored test's table (indexed by gene), its name and its group."""
    test = check_test(adata, test, key_added)
    group = check_group(adata, key_added, group, needed_for=f"plotting test {test!r}")
    if group is not None:
        key = varm_key(key_added, f"test_{test}", group)
        if key not in adata.varm:
            run_in = list(adata.uns[key_added]["tests"][test].get("groups", []))
            raise KeyError(f"Test {test!r} was not run in group {group!r}; it was run in {run_in}.")
    else:
        key = varm_key(key_added, f"test_{test}")
    return pd.DataFrame(adata.varm[key]), test, group


def gene_table(adata: AnnData, key_added: str, group) -> tuple[pd.DataFrame, Mapping, str | None]:
    """Per-gene fields of a fit (``base_mean``, ``dispersion``, ...), the fit's record and its group."""
    uns = fit_record(adata, key_added)
    group = check_group(adata, key_added, group)
    if group is None:
        prefix = f"{key_added}_"
        cols = {c[len(prefix) :]: adata.var[c] for c in adata.var.columns if c.startswith(prefix)}
        return pd.DataFrame(cols, index=adata.var_names), uns, None
    return pd.DataFrame(adata.varm[varm_key(key_added, "genes", group)]), uns["groups"][group], group


def method_of(uns: Mapping, record: Mapping) -> str:
    """``"deseq2"`` or ``"edger"``."""
    return str(record.get("method", uns.get("method", "deseq2")))


def results_frame(
    data: AnnData | pd.DataFrame, test: str | None, *, key_added: str, group, gene_symbols: str | None
) -> tuple[pd.DataFrame, pd.Series, str]:
    """A results table indexed by gene, the label of each gene and a title.

    ``data`` is an AnnData with stored tests, or a results table as returned by
    :func:`pbglm.get.results` (indexed by gene, or the long per-group table with ``gene`` and
    ``group`` columns).
    """
    if isinstance(data, pd.DataFrame):
        df = data
        if {"gene", "group"} <= set(df.columns):
            groups = list(dict.fromkeys(df["group"].astype(str)))
            if group is None:
                raise ValueError(f"The results table holds several groups {groups}; pass group= one of them.")
            if str(group) not in groups:
                raise KeyError(f"Group {group!r} is not in the results table; its groups are {groups}.")
            df = df.loc[df["group"].astype(str) == str(group)].set_index("gene")
        elif group is not None:
            raise ValueError(f"group={group!r} was given, but the results table has no 'group' column.")
        missing = [c for c in ("log2fc", "pvalue") if c not in df.columns]
        if missing:
            raise ValueError(f"The results table lacks column(s) {missing}; its columns are {list(df.columns)}.")
        if gene_symbols is not None:
            if gene_symbols not in df.columns:
                raise KeyError(f"gene_symbols={gene_symbols!r} is not a column of the results table.")
            labels = df[gene_symbols].astype(str)
        else:
            labels = pd.Series(df.index.astype(str), index=df.index)
        title = test or ("" if group is None else str(group))
        if test is not None and group is not None:
            title = f"{test} ({group})"
        return df, labels, title
    if not isinstance(data, AnnData):
        raise TypeError(f"Expected an AnnData or a results DataFrame, got {type(data).__name__}.")
    df, test, group = test_table(data, test, key_added, group)
    labels = gene_labels(data, gene_symbols)
    return df, labels, test if group is None else f"{test} ({group})"


def gene_labels(adata: AnnData, gene_symbols: str | None) -> pd.Series:
    """The label of each gene: its var name, or ``.var[gene_symbols]``."""
    if gene_symbols is None:
        return pd.Series(adata.var_names.astype(str), index=adata.var_names)
    if gene_symbols not in adata.var.columns:
        raise KeyError(f"gene_symbols={gene_symbols!r} is not a column of .var; columns: {list(adata.var.columns)}.")
    return adata.var[gene_symbols].astype(str)


def resolve_genes(index: pd.Index, genes: str | Sequence[str], labels: pd.Series | None = None) -> list[str]:
    """Map genes given by name (or by their label, e.g. a symbol) to index entries; error on unknown ones."""
    if isinstance(genes, str):
        genes = [genes]
    genes = list(genes)
    if not genes:
        raise ValueError("genes is empty; pass at least one gene.")
    out, missing = [], []
    lookup = None
    for g in genes:
        if g in index:
            out.append(g)
            continue
        if labels is not None:
            if lookup is None:
                lookup = pd.Series(labels.index, index=labels.to_numpy()).groupby(level=0).first()
            if g in lookup.index:
                out.append(lookup[g])
                continue
        missing.append(g)
    if missing:
        example = list(index[:3].astype(str))
        raise KeyError(f"Gene(s) {missing} not found in var_names (which look like {example}).")
    return out


def neg_log10(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``-log10(p)`` with p = 0 capped at the smallest non-zero p; returns values, capped mask, cap."""
    p = np.asarray(p, dtype=float)
    positive = p[np.isfinite(p) & (p > 0)]
    floor = positive.min() if positive.size else 1e-300
    capped = np.isfinite(p) & (p <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = -np.log10(np.where(capped, floor, p))
    return y, capped, float(floor)


def label_points(ax: Axes, x, y, labels, *, avoid_x=None, avoid_y=None, fontsize: float = LABEL_SIZE) -> list:
    """Label points without overlaps (adjustText when installed, offset labels otherwise)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0:
        return []
    texts = [
        ax.text(xi, yi, str(lab), fontsize=fontsize, ha="center", va="bottom", zorder=5)
        for xi, yi, lab in zip(x, y, labels, strict=True)
    ]
    try:
        from adjustText import adjust_text
    except ImportError:  # pragma: no cover - adjustText is an optional dependency
        for t in texts:
            t.set_ha("left")
            t.set_va("bottom")
            t.set_transform(ax.transData + _offset(ax, 3, 3))
        return texts
    ax.figure.draw_without_rendering()
    ax_x = x if avoid_x is None else np.concatenate([x, np.asarray(avoid_x, dtype=float)])
    ax_y = y if avoid_y is None else np.concatenate([y, np.asarray(avoid_y, dtype=float)])
    adjust_text(
        texts,
        x=ax_x,
        y=ax_y,
        target_x=x,
        target_y=y,
        ax=ax,
        expand=(1.1, 1.3),
        arrowprops=dict(arrowstyle="-", color="0.3", lw=0.6, shrinkA=1, shrinkB=2),
    )
    return texts


def _offset(ax: Axes, dx_pt: float, dy_pt: float):
    from matplotlib.transforms import ScaledTranslation

    return ScaledTranslation(dx_pt / 72, dy_pt / 72, ax.figure.dpi_scale_trans)


def fmt_count(n: int) -> str:
    """``1,234``."""
    return f"{int(n):,}"
