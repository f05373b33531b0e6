"""Helpers shared by the plotting functions: reading stored fits and tests, checking input, axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .._io import column_key, has_varm, owned_slots, read_varm, stored_tests
from .._io import fit_record as _stored_record

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


def root_figure(ax: Axes) -> Figure:
    """The top-level Figure of ``ax`` (also when it lives in a SubFigure)."""
    fig = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def finish(ax: Axes, return_fig: bool) -> Axes | Figure:
    """What a plotting function returns."""
    return root_figure(ax) if return_fig else ax


def legend_outside(ax: Axes, **kwargs):
    """A frameless legend to the right of the axes, where it cannot cover data."""
    opts = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0.0, handletextpad=0.3)
    opts.update(kwargs)
    return ax.legend(**opts)


def fit_record(adata: AnnData, key: str) -> Mapping:
    """``adata.uns[key]`` of a fit with users' names as keys (tests, groups), with a clear error when there is none."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"Expected an AnnData, got {type(adata).__name__}.")
    return _stored_record(adata, key)


def fit_groups(uns: Mapping) -> list[str] | None:
    """Groups of a per-group fit, or ``None`` for an ungrouped fit."""
    return [str(g) for g in uns["groups"]] if "groups" in uns else None


def check_group(adata: AnnData, key: str, group, *, needed_for: str = "this plot") -> str | None:
    """Validate ``group`` against the fit: required for per-group fits, refused otherwise."""
    uns = fit_record(adata, key)
    groups = fit_groups(uns)
    if groups is None:
        if group is not None:
            raise ValueError(
                f"group={group!r} was given, but the fit under key={key!r} has no groups "
                "(pbglm.tl.fit was run without groupby=)."
            )
        return None
    if group is None:
        raise ValueError(
            f"The fit under key={key!r} is per group (groupby={uns.get('groupby')!r}); "
            f"{needed_for} needs group= one of {groups}."
        )
    if str(group) not in groups:
        skipped = dict(uns.get("skipped", {}))
        why = f" It was skipped: {skipped[str(group)]}" if str(group) in skipped else ""
        raise KeyError(f"Group {group!r} was not fit; fitted groups: {groups}.{why}")
    return str(group)


def check_test(adata: AnnData, test: str | None, key: str) -> str:
    """The name of a stored test (the only one when ``test`` is ``None``)."""
    fit_record(adata, key)
    tests = stored_tests(adata, key)
    stored = tests or "none (run pbglm.tl.test first)"
    if test is None:
        if len(tests) == 1:
            return tests[0]
        raise ValueError(f"Pass test= naming the test to plot. Stored tests: {stored}.")
    if not isinstance(test, str):
        raise TypeError(f"test must be a test name (str), got {type(test).__name__}.")
    if test not in tests:
        raise KeyError(f"No test named {test!r} under key={key!r}. Stored tests: {stored}.")
    return test


def test_table(adata: AnnData, test: str | None, key: str, group) -> tuple[pd.DataFrame, str, str | None]:
    """One stored test's table (indexed by gene), its name and its group."""
    test = check_test(adata, test, key)
    group = check_group(adata, key, group, needed_for=f"plotting test {test!r}")
    if group is not None and not has_varm(adata, key, f"test_{test}", group):
        run_in = list(fit_record(adata, key)["tests"][test].get("groups", []))
        raise KeyError(f"Test {test!r} was not run in group {group!r}; it was run in {run_in}.")
    return pd.DataFrame(read_varm(adata, key, f"test_{test}", group)), test, group


def gene_table(adata: AnnData, key: str, group) -> tuple[pd.DataFrame, Mapping, str | None]:
    """Per-gene fields of a fit (``base_mean``, ``dispersion``, ...), the fit's record and its group."""
    uns = fit_record(adata, key)
    group = check_group(adata, key, group)
    if group is None:
        prefix = column_key(key, "")
        cols = {c[len(prefix) :]: adata.var[c] for c in owned_slots(adata, key)["var"] if c in adata.var.columns}
        return pd.DataFrame(cols, index=adata.var_names), uns, None
    return pd.DataFrame(read_varm(adata, key, "genes", group)), uns["groups"][group], group


def method_of(uns: Mapping, record: Mapping) -> str:
    """``"deseq2"`` or ``"edger"``."""
    return str(record.get("method", uns.get("method", "deseq2")))


def results_frame(
    data: AnnData | pd.DataFrame, test: str | None, *, key: str, group, gene_symbols: str | None
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
            labels = _fill_labels(df[gene_symbols], df.index)
        else:
            labels = pd.Series(df.index.astype(str), index=df.index)
        title = test or ("" if group is None else str(group))
        if test is not None and group is not None:
            title = f"{test} ({group})"
        return df, labels, title
    if not isinstance(data, AnnData):
        raise TypeError(f"Expected an AnnData or a results DataFrame, got {type(data).__name__}.")
    df, test, group = test_table(data, test, key, group)
    labels = gene_labels(data, gene_symbols)
    return df, labels, test if group is None else f"{test} ({group})"


def _fill_labels(values: pd.Series, names: pd.Index) -> pd.Series:
    """Labels as strings, the gene's name where the label is missing or empty (e.g. no symbol)."""
    text = values.astype(object)
    missing = values.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    return pd.Series(np.where(missing, names.astype(str), text.astype(str)), index=values.index)


def gene_labels(adata: AnnData, gene_symbols: str | None) -> pd.Series:
    """The label of each gene: its var name, or ``.var[gene_symbols]`` (the var name where that is missing)."""
    if gene_symbols is None:
        return pd.Series(adata.var_names.astype(str), index=adata.var_names)
    if gene_symbols not in adata.var.columns:
        raise KeyError(f"gene_symbols={gene_symbols!r} is not a column of .var; columns: {list(adata.var.columns)}.")
    return _fill_labels(adata.var[gene_symbols], adata.var_names)


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


def label_points(
    ax: Axes,
    x,
    y,
    labels,
    *,
    avoid_x=None,
    avoid_y=None,
    fontsize: float = LABEL_SIZE,
    iter_lim: int = 200,
) -> list:
    """Label points without overlaps.

    Each label is put at the nearest free spot around its point (a deterministic greedy search
    that keeps clear of other labels and of the points in ``avoid_x, avoid_y``); adjustText, when
    installed, resolves what is left. The labels end up as annotations at a fixed offset (in
    points) from their points, with a leader line when they are not next to them. Call it after
    the axis limits and the legend are in place.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size == 0:
        return []
    texts = [
        ax.text(xi, yi, str(lab), fontsize=fontsize, ha="center", va="center", zorder=5)
        for xi, yi, lab in zip(x, y, labels, strict=True)
    ]
    fig = root_figure(ax)
    fig.draw_without_rendering()
    px, py = thin_points(ax, avoid_x, avoid_y)
    _greedy_place(ax, texts, x, y, px, py)
    try:
        from adjustText import adjust_text
    except ImportError:  # adjustText is an optional dependency
        adjust_text = None
    if adjust_text is not None and ax.figure is fig:  # adjustText cannot draw SubFigures
        # the greedy placement already keeps clear of the point cloud: adjustText only needs to
        # keep labels off each other and off the labelled points
        adjust_text(
            texts,
            x=x,
            y=y,
            target_x=x,
            target_y=y,
            ax=ax,
            avoid_self=False,  # the texts start at their greedy spots, not on their points
            force_explode=0,  # keep the greedy placement as the starting point
            force_text=(0.3, 0.6),
            force_static=(0.1, 0.2),
            expand=(1.05, 1.15),
            iter_lim=iter_lim,  # an iteration cap, not adjustText's default time limit: reproducible output
        )
    return _anchor(ax, texts, x, y)


def _anchor(ax: Axes, texts: list, x, y) -> list:
    """Turn placed texts into annotations offset (in points) from their points, with leader lines.

    Offsets in points keep each label next to its point when the layout changes later (e.g. other
    panels of the figure are drawn, or the figure is resized).
    """
    fig = root_figure(ax)
    renderer = fig.canvas.get_renderer()
    to_pt = 72.0 / fig.dpi
    out = []
    for text, xi, yi in zip(texts, x, y, strict=True):
        ext = text.get_window_extent(renderer)
        tx, ty = ax.transData.transform((xi, yi))
        cx, cy = ax.transData.transform(text.get_position())
        gap = max(ext.x0 - tx, tx - ext.x1, ext.y0 - ty, ty - ext.y1)
        arrow = (
            dict(arrowstyle="-", color="0.3", lw=0.6, shrinkA=0, shrinkB=2)
            if gap > 4 * fig.dpi / 72
            else None
        )
        ann = ax.annotate(
            text.get_text(), xy=(xi, yi), xytext=((cx - tx) * to_pt, (cy - ty) * to_pt), textcoords="offset points",
            ha="center", va="center", fontsize=text.get_fontsize(), zorder=5, arrowprops=arrow,
            annotation_clip=False, bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75),
        )
        text.remove()
        out.append(ann)
    return out


def _segments_cross(p1, p2, q1, q2) -> bool:
    """Whether segments p1-p2 and q1-q2 intersect (proper crossings only)."""

    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return orient(p1, p2, q1) * orient(p1, p2, q2) < 0 and orient(q1, q2, p1) * orient(q1, q2, p2) < 0


def _segment_hits_box(p, q, rect) -> bool:
    """Whether segment p-q passes through the box ``(x0, x1, y0, y1)`` (Liang-Barsky clipping)."""
    x0, x1, y0, y1 = rect
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for pk, qk in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if pk == 0:
            if qk < 0:
                return False
            continue
        t = qk / pk
        if pk < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _greedy_place(ax: Axes, texts: list, x, y, px, py) -> None:
    """Move each text to a nearby free spot around its point.

    Candidates lie on rings around the point; a candidate must stay inside the axes and clear of
    the points and of labels placed before. Among free candidates, the one with the shortest
    leader line wins, with a penalty when the line would cross another label or leader line.
    """
    fig = root_figure(ax)
    renderer = fig.canvas.get_renderer()
    box = ax.patch.get_window_extent(renderer)
    cell = 2.0
    nx, ny = int(np.ceil(box.width / cell)) + 1, int(np.ceil(box.height / cell)) + 1
    points = np.zeros((ny, nx), dtype=np.int32)
    labels = np.zeros((ny, nx), dtype=np.int32)
    scale = fig.dpi / 72.0

    hard = np.zeros((ny, nx), dtype=np.int32)  # the labelled points: never covered

    def mark_points(xy, radius_px, raster):
        cx, cy = (xy[:, 0] - box.x0) / cell, (xy[:, 1] - box.y0) / cell
        r = max(int(np.ceil(radius_px / cell)), 0)
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                ix = np.clip(np.round(cx).astype(int) + dx, 0, nx - 1)
                iy = np.clip(np.round(cy).astype(int) + dy, 0, ny - 1)
                raster[iy, ix] = 1

    def cells(x0, x1, y0, y1):
        return (
            slice(max(int((y0 - box.y0) // cell), 0), max(int(np.ceil((y1 - box.y0) / cell)), 0)),
            slice(max(int((x0 - box.x0) // cell), 0), max(int(np.ceil((x1 - box.x0) / cell)), 0)),
        )

    targets = ax.transData.transform(np.column_stack([x, y]))
    if len(px):
        mark_points(ax.transData.transform(np.column_stack([px, py])), 2.0 * scale, points)
    mark_points(targets, 2.5 * scale, hard)

    radii = np.array([0, 2, 4, 7, 11, 16, 22, 30, 40, 52, 66, 84, 105, 130, 160]) * scale
    angles = np.deg2rad(np.arange(0, 360, 22.5))
    pad = 1.5 * scale
    sizes = []
    for text in texts:
        ext = text.get_window_extent(renderer)
        sizes.append((ext.width + 2 * pad, ext.height + 2 * pad))
    placed: list = [None] * len(texts)  # (cx, cy, end) per label

    def search(k):
        target = targets[k]
        w, h = sizes[k]
        others = [(targets[j], p[2]) for j, p in enumerate(placed) if p is not None and j != k]
        others = [(t, e) for t, e in others if np.hypot(*(e - t)) > 3 * scale]
        best, best_cost = None, (np.inf, np.inf)
        for r in radii:
            for a in angles:
                c, s = np.cos(a), np.sin(a)
                cx = target[0] + c * (r + w / 2) * (abs(c) > 1e-9)
                cy = target[1] + s * (r + h / 2)
                x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
                if x0 < box.x0 or x1 > box.x1 or y0 < box.y0 or y1 > box.y1:
                    continue
                sl = cells(x0, x1, y0, y1)
                overlap = labels[sl].sum() + hard[sl].sum()
                # leader line: from the point to the nearest point of the label's box
                end = np.array([np.clip(target[0], x0, x1), np.clip(target[1], y0, y1)])
                length = float(np.hypot(*(end - target)))
                crossings = 0
                if length > 3 * scale:
                    crossings += sum(_segments_cross(target, end, q1, q2) for q1, q2 in others)
                    crossings += sum(_segment_hits_box(target, end, rect) for rect in rects(k))
                # covering points costs less than a long leader line through a dense cloud
                cost = (overlap, length + 40 * scale * crossings + 0.05 * scale * points[sl].sum())
                if cost < best_cost:
                    best, best_cost = (cx, cy, end), cost
            if best_cost[0] == 0 and best_cost[1] <= r:
                break  # no free spot further out can be closer
        return best

    def rects(k):
        for j, p in enumerate(placed):
            if p is not None and j != k:
                w, h = sizes[j]
                yield (p[0] - w / 2, p[0] + w / 2, p[1] - h / 2, p[1] + h / 2)

    def mark(k, sign):
        cx, cy, _ = placed[k]
        w, h = sizes[k]
        labels[cells(cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)] += sign

    for k in range(len(texts)):
        placed[k] = search(k)
        if placed[k] is not None:
            mark(k, 1)
    for _ in range(2):  # refine: move each label again now that all others are known
        for k in range(len(texts)):
            if placed[k] is None:
                continue
            mark(k, -1)
            placed[k] = search(k)
            mark(k, 1)
    for text, p in zip(texts, placed, strict=True):
        if p is not None:
            text.set_position(ax.transData.inverted().transform(p[:2]))


def thin_points(ax: Axes, x, y, cell_px: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """One point per ``cell_px``-pixel cell: the footprint of a point cloud, cheap for adjustText to avoid."""
    if x is None or y is None:
        return np.empty(0), np.empty(0)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return x, y
    disp = ax.transData.transform(np.column_stack([x, y]))
    cells = np.floor(disp / cell_px).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    first.sort()
    return x[first], y[first]


def _offset(ax: Axes, dx_pt: float, dy_pt: float):
    from matplotlib.transforms import ScaledTranslation

    return ScaledTranslation(dx_pt / 72, dy_pt / 72, root_figure(ax).dpi_scale_trans)


def fmt_count(n: int) -> str:
    """``1,234``."""
    return f"{int(n):,}"


def lfc_column(df: pd.DataFrame, shrunk: bool) -> str:
    """The fold-change column to plot: ``log2fc``, or ``log2fc_shrunk`` (from :func:`pbglm.tl.shrink`)."""
    if not shrunk:
        return "log2fc"
    if "log2fc_shrunk" not in df.columns:
        raise KeyError("shrunk=True needs shrunken fold changes: run pbglm.tl.shrink(adata, test) first "
                       "(the results have no 'log2fc_shrunk' column).")
    return "log2fc_shrunk"


def lfc_label(shrunk: bool) -> str:
    """Axis/colour-bar label of a (shrunken) log2 fold change."""
    return r"shrunken log$_2$ fold change" if shrunk else r"log$_2$ fold change"


def _plain_number(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def readable_log_ticks(axis, *, most: int = 6) -> None:
    """Plain-number tick labels on a log ``axis`` (``ax.xaxis`` / ``ax.yaxis``) spanning under two decades.

    Matplotlib labels every minor tick of such an axis in scientific notation (``3x10^1`` next to
    ``4x10^1``), and the labels collide. Here the decades and the richest set of leading digits
    (1-9, then 1/2/3/5, then 1/2/5) that puts at least two and at most ``most`` labels in the
    axis' view are labelled as plain numbers; the other ticks stay, unlabelled. Call it once
    everything is drawn (it reads the view limits).
    """
    lo, hi = sorted(axis.get_view_interval())
    if not (lo > 0 and np.isfinite(hi)) or np.log10(hi / lo) >= 2.0:
        return
    ticks = [d * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
             for d in range(1, 10)]
    inside = [t for t in ticks if lo <= t <= hi]
    digits = (1, 2, 5)
    for option in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 5), (1, 2, 5)):
        n = sum(1 for t in inside if _leading_digit(t) in option)
        if 2 <= n <= most:
            digits = option
            break

    def label(v, _):
        return _plain_number(v) if _leading_digit(v) in digits else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def _leading_digit(v: float) -> int | None:
    """The leading digit of a tick value on a log axis (``None`` for values between the 1-9 multiples)."""
    if not v > 0:
        return None
    lead = v / 10.0 ** np.floor(np.log10(v) + 1e-9)
    return int(round(lead)) if abs(lead - round(lead)) < 1e-6 else None
