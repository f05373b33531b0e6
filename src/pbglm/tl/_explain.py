"""``tl.explain_design``: what each coefficient of a design means, how to test it, and what to watch out for."""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass, field

import pandas as pd

from .._design_findings import DesignInspection, Finding, Part, inspect_design

_COLOURS = {"error": "#c0392b", "warning": "#d35400", "info": "#2471a3"}


@dataclass(repr=False)
class DesignExplanation:
    """The result of :func:`explain_design`; see there for the attributes."""

    formula: str
    coefficients: pd.DataFrame
    factors: pd.DataFrame
    numeric: pd.DataFrame
    design_matrix: pd.DataFrame
    residual_df: int
    rank: int
    n_samples: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that stop ``tl.fit``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """Whether the design can be fit (no error findings)."""
        return not self.errors

    def _header(self) -> str:
        p = self.coefficients.shape[0]
        rank = f" ({self.rank} estimable)" if self.rank < p else ""
        return (
            f"Design {self.formula}: {self.n_samples} samples, {p} coefficients{rank}, "
            f"residual df {self.residual_df}"
        )

    def __repr__(self) -> str:
        lines = [self._header(), ""]
        coefs = self.coefficients
        if len(coefs):
            width = min(max(len(c) for c in coefs["column"]) + 2, 40)
            lines.append("Coefficients")
            for _, row in coefs.iterrows():
                indent = " " * (2 + width)
                name = row["column"]
                body = textwrap.wrap(row["meaning"], 100 - width, break_on_hyphens=False) or [""]
                first = f"  {name:<{width}}" if len(name) < width else f"  {name}\n{indent}"
                lines.append(first + body[0])
                lines.extend(indent + b for b in body[1:])
                test = "-" if row["test_with"] is None else repr(row["test_with"])
                lines.append(f"{indent}test with: {test}")
                if row["issue"]:
                    lines.extend(textwrap.wrap(f"ISSUE: {row['issue']}", 100, initial_indent=indent,
                                               subsequent_indent=indent, break_on_hyphens=False))
            lines.append("")
        if len(self.factors):
            lines.append("Factors")
            width = max(len(f) for f in self.factors["factor"]) + 2
            for factor, sub in self.factors.groupby("factor", sort=False):
                levels = " | ".join(
                    f"{r.level}{' (reference)' if r.is_reference else ''} n={r.n_samples}" for r in sub.itertuples()
                )
                lines.append(f"  {factor:<{width}}{levels}")
            lines.append("")
        if len(self.numeric):
            lines.append("Numeric covariates (slopes)")
            width = max(len(v) for v in self.numeric["variable"]) + 2
            for r in self.numeric.itertuples():
                lines.append(f"  {r.variable:<{width}}{r.min:.4g} to {r.max:.4g}, mean {r.mean:.4g}, "
                             f"{r.n_distinct} distinct values")
            lines.append("")
        lines.append("Findings" if self.findings else "Findings: none")
        for f in self.findings:
            lines.extend(textwrap.wrap(f"[{f.severity}] {f.code}: {f.message}", 100, initial_indent="  ",
                                       subsequent_indent="      ", break_on_hyphens=False))
            lines.extend(textwrap.wrap(f"fix: {f.fix}", 100, initial_indent="      ", subsequent_indent="      ",
                                       break_on_hyphens=False))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        out = [
            "<div class='pbglm-design'><style>.pbglm-design td, .pbglm-design th {text-align: left;}</style>",
            f"<p><b>{esc(self._header())}</b></p>",
        ]
        coefs = self.coefficients.copy()
        coefs["test_with"] = ["-" if t is None else repr(t) for t in coefs["test_with"]]
        with pd.option_context("display.max_colwidth", None):
            out.append("<p><b>Coefficients</b></p>")
            out.append(coefs.to_html(index=False, escape=True))
            if len(self.factors):
                out.append("<p><b>Factors</b></p>")
                out.append(self.factors.to_html(index=False, escape=True))
            if len(self.numeric):
                out.append("<p><b>Numeric covariates (slopes)</b></p>")
                out.append(self.numeric.to_html(index=False, escape=True, float_format=lambda x: f"{x:.4g}"))
        out.append("<p><b>Findings</b></p>" if self.findings else "<p><b>Findings:</b> none</p>")
        for f in self.findings:
            colour = _COLOURS.get(f.severity, "#555")
            out.append(
                f"<div style='border-left:4px solid {colour};padding:2px 8px;margin:4px 0'>"
                f"<span style='color:{colour};font-weight:bold'>{esc(f.severity)}</span> "
                f"<code>{esc(f.code)}</code>: {esc(f.message)}<br><i>Fix:</i> {esc(f.fix)}</div>"
            )
        out.append("</div>")
        return "".join(out)


# --------------------------------------------------------------------------------------------------
# Meanings


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ref(insp: DesignInspection, factor: str) -> str:
    return insp.design.factors[factor][0]


def _at(insp: DesignInspection, names) -> str:
    return _and([f"{v} {_ref(insp, v)} (reference)" if v in insp.design.factors else f"{v} = 0" for v in names])


def _blocks(insp: DesignInspection, factor: str, other: str) -> bool:
    """Whether every level of ``other`` (3+ levels) holds samples of every level of ``factor``."""
    if factor not in insp.design.factors or other not in insp.design.factors:
        return False
    if len(insp.design.factors[other]) < 3:
        return False
    tab = pd.crosstab(insp.data[other], insp.data[factor])
    return bool((tab > 0).all().all())


def _context(insp: DesignInspection, names: set[str], *, level_mean: bool = False) -> str:
    """', at <partners at reference/0>, with <others> held fixed' for a term over ``names``."""
    main = insp.main_variables()
    partners = [v for v in main if v in insp.partners(names)]
    others = [v for v in main if v not in names and v not in partners]
    text = ""
    if level_mean:
        partners, others = partners + others, []
    if partners:
        text += f", at {_at(insp, partners)}"
    if others:
        text += f", with {_and(others)} held fixed"
        name = next(iter(names)) if len(names) == 1 else None
        earlier = main[: main.index(name)] if name in main else []
        blocks = [o for o in others if o in earlier and _blocks(insp, name, o)]
        if blocks:
            text += f" (a within-{_and(blocks)} comparison)"
    return text


def _factor_text(p: Part) -> str:
    return f"{p.name} {p.level}"


def _core(insp: DesignInspection, column: str, parts: list[Part]) -> str:
    """Meaning of the parts that are not level-mean coded (the 'effect' part of a column)."""
    factors = [p for p in parts if p.kind == "factor"]
    numeric = [p for p in parts if p.kind == "numeric"]
    if len(parts) == 1 and factors:
        p = factors[0]
        return f"log2 fold change of {p.level} vs {_ref(insp, p.name)} (reference level of {p.name})"
    if len(parts) == 1:
        return f"change in log2 expression per 1 unit of {numeric[0].name}"
    if len(parts) == 2 and len(factors) == 2:
        a, b = factors
        return (
            f"extra effect of {b.name} {b.level} (vs {_ref(insp, b.name)}) at {a.name} {a.level} "
            f"(vs {_ref(insp, a.name)}), beyond the {a.name} and {b.name} main effects (a difference of log2 fold "
            "changes)"
        )
    if len(parts) == 2 and len(factors) == 1:
        f, v = factors[0], numeric[0]
        return (
            f"difference in the {v.name} slope between {f.name} {f.level} and {_ref(insp, f.name)}: extra change "
            f"in log2 expression per 1 unit of {v.name} for {f.level}, beyond the {v.name} main effect"
        )
    if len(parts) == 2:
        return f"change in the {parts[0].name} slope per 1 unit of {parts[1].name} (product of numeric covariates)"
    cells = _and([f"{p.name} {p.level}" if p.kind == "factor" else p.name for p in parts])
    return f"extra effect of {cells} together, beyond all lower-order terms ({len(parts)}-way interaction)"


def _meaning(insp: DesignInspection, column: str) -> tuple[str, object]:
    parts = insp.parts.get(column, [])
    if column == "Intercept":
        facs = [v for v in insp.main_variables() if v in insp.design.factors]
        nums = [v for v in insp.main_variables() if v in insp.design.numeric]
        text = "mean log2 expression"
        if facs:
            levels = _and([f"{f} {_ref(insp, f)}" for f in facs])
            text += f" of samples with {levels} (the reference level{'s' if len(facs) > 1 else ''})"
        elif not nums:
            text += " of all samples"
        if nums:
            text += f" at {_and([f'{v} = 0' for v in nums])}"
        return text + ": the baseline", None
    if not parts or any(p.kind == "other" for p in parts):
        if len(parts) == 1 and "[" not in column:
            return f"change in log2 expression per 1 unit of the derived covariate {column}", column
        return f"coefficient of the derived term {column} (see the design matrix for its coding)", column
    within = [p for p in parts if p.kind == "factor" and insp.is_full_coded(column, p.name)]
    rest = [p for p in parts if p not in within]
    names = {p.name for p in parts}
    if not rest:
        cells = _and([_factor_text(p) for p in within])
        if insp.has_intercept:
            return f"effect of {cells} relative to the baseline (see the design matrix for its coding)", column
        text = f"mean log2 expression of {cells} samples (a level mean, not a difference)"
        return text + _context(insp, names, level_mean=True), None
    text = _core(insp, column, rest)
    if within:
        text += " within " + _and([_factor_text(p) for p in within])
        return text, column
    if len(rest) == 1:
        text += _context(insp, names)
        if rest[0].kind == "factor" and insp.has_intercept:
            return text, (rest[0].name, rest[0].level, _ref(insp, rest[0].name))
        if rest[0].kind == "factor":
            return text, column
        return text, rest[0].name
    return text, column


def _issues(insp: DesignInspection) -> dict[str, str]:
    out = {}
    for col, involved in insp.dependent:
        if involved:
            out[col] = "not estimable: a linear combination of " + ", ".join(involved)
        else:
            out[col] = "not estimable: all zeros (no sample has this level combination)"
    return out


def _explain(insp: DesignInspection) -> DesignExplanation:
    columns = insp.columns
    issues = _issues(insp)
    rows = []
    for c in columns:
        meaning, test = _meaning(insp, c)
        rows.append({"column": c, "meaning": meaning, "test_with": test, "issue": issues.get(c, "")})
    coefficients = pd.DataFrame(rows, columns=["column", "meaning", "test_with", "issue"])
    frows = []
    design = insp.design
    for f in insp.variables:
        if design is None or f not in design.factors:
            continue
        levels = design.factors[f]
        level_means = any(
            len(insp.parts[c]) == 1 and insp.parts[c][0].name == f and insp.is_full_coded(c, f) for c in columns
        )
        counts = insp.data[f].value_counts()
        for i, lv in enumerate(levels):
            frows.append({"factor": f, "level": lv, "is_reference": i == 0 and not level_means,
                          "n_samples": int(counts.get(lv, 0))})
    factors = pd.DataFrame(frows, columns=["factor", "level", "is_reference", "n_samples"])
    nrows = []
    for v in insp.variables:
        if design is None or v not in design.numeric:
            continue
        x = insp.data[v].astype(float)
        nrows.append({"variable": v, "min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()),
                      "n_distinct": int(x.nunique())})
    numeric = pd.DataFrame(nrows, columns=["variable", "min", "max", "mean", "n_distinct"])
    if design is None:
        matrix = pd.DataFrame(index=insp.samples)
    else:
        matrix = design.frame(insp.samples)
    return DesignExplanation(
        formula=insp.rhs, coefficients=coefficients, factors=factors, numeric=numeric, design_matrix=matrix,
        residual_df=insp.residual_df, rank=insp.rank, n_samples=len(insp.samples), findings=list(insp.findings),
    )


def explain_design(adata, design: str, *, reference: dict[str, str] | None = None) -> DesignExplanation:
    """Explain a design formula over ``adata.obs`` before fitting it.

    Says what every coefficient means in plain language and which contrast tests it, lists the
    factor levels (reference first) with their sample counts, and reports problems with a fix
    for each: confounding (naming the columns involved), empty interaction cells, missing
    values, too few residual degrees of freedom, numeric columns that look like groups, single-
    sample levels, interactions, ``0 +`` designs, uncentred covariates and unbalanced groups.
    Designs that ``tl.fit`` would refuse (rank deficient, missing values, no residual df) are
    explained and reported, not raised. Nothing is written to ``adata``.

    Parameters
    ----------
    adata
        An AnnData (its ``.obs`` is read) or a ``.obs``-like DataFrame.
    design
        The formula as for ``tl.fit``, e.g. ``"~ Batch + Drug"``.
    reference
        Reference level per factor, e.g. ``{"Drug": "ctrl"}``, as for ``tl.fit``.

    Returns
    -------
    DesignExplanation
        ``coefficients``
            DataFrame, one row per design column: ``column``, ``meaning``, ``test_with`` (the
            contrast for ``tl.test``: a ``(factor, level, reference)`` tuple for a main-effect level,
            the coefficient name for a slope or an interaction, ``None`` for the intercept and for
            level means of ``0 +`` designs, whose meaningful tests are differences) and ``issue``
            (why a column is not estimable, else ``""``).
        ``factors``
            DataFrame: ``factor``, ``level`` (in design order), ``is_reference``, ``n_samples``.
        ``numeric``
            DataFrame of numeric covariates: ``variable``, ``min``, ``max``, ``mean``, ``n_distinct``.
        ``design_matrix``
            DataFrame, samples x coefficients (samples with missing design values left out).
        ``residual_df``, ``rank``, ``n_samples``
            Samples minus estimable coefficients; rank of the design matrix; samples used.
        ``findings``
            List of :class:`~pbglm._design_findings.Finding` (``severity``, ``code``, ``message``,
            ``fix``), errors first. ``ok`` is ``False`` when any is an error.

        Its ``repr`` is a text summary; in notebooks it renders as tables with findings coloured
        by severity.

    Raises
    ------
    ValueError
        (a ``DesignFormulaError``, also a ``KeyError``) when the formula does not parse, names a
        column that ``.obs`` lacks (the message lists the available columns), or ``reference`` is
        invalid.

    Examples
    --------
    >>> ex = pbglm.tl.explain_design(adata, "~ Batch + Drug", reference={"Drug": "ctrl"})
    >>> ex.coefficients[["column", "test_with"]]
    >>> ex  # text summary with findings
    """
    obs = adata if isinstance(adata, pd.DataFrame) else getattr(adata, "obs", None)
    if not isinstance(obs, pd.DataFrame):
        raise TypeError(f"adata must be an AnnData or a DataFrame of sample metadata, got {type(adata).__name__}.")
    return _explain(inspect_design(obs, design, reference))
