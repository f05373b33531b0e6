"""Checks of a design formula against ``.obs``: what is wrong, what is risky, and how to fix it.

:func:`findings` works on the raw ``.obs`` and never raises for a design that cannot be fit
(rank deficient, missing values, no residual degrees of freedom): it reports those as
``"error"`` findings. It raises :class:`DesignFormulaError` only when there is no design to look
at (a formula that does not parse, a column that does not exist, a bad ``reference=``).

Finding codes
-------------
error
    ``missing-values``, ``non-finite-values`` (an infinite numeric covariate), ``confounded``, ``empty-cell``,
    ``no-residual-df``.
warning
    ``few-residual-df`` (1 or 2 residual df), ``single-level-factor``, ``single-sample-level``,
    ``numeric-looks-like-groups`` (3 or more distinct values), ``numeric-far-from-zero`` (when the
    covariate is in an interaction).
info
    ``few-residual-df`` (3 residual df), ``numeric-looks-like-groups`` (two values),
    ``numeric-far-from-zero`` (main effect only), ``numeric-scales``, ``interaction``,
    ``no-intercept``, ``unbalanced``, ``reference-level``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._design import Design, dependent_columns, normalize_formula, prepare_obs
from ._formula import DesignFormulaError, model_matrix, parse_formula
from ._formula import one_line as _one_line
from ._warn import warn

logger = logging.getLogger("pbglm")

SEVERITIES = ("error", "warning", "info")

_TREATMENT = re.compile(r"\[T\.([^\]]*)\]")
_CONTROL = re.compile(
    r"^(ctrl|ctl|control|controls|untreated|untrt|unstim|unstimulated|vehicle|veh|dmso|pbs|mock|wt|wildtype|"
    r"wild[-_ ]?type|placebo|baseline|healthy|normal|naive|none|sham|scramble|scrambled|ntc|non[-_ ]?targeting)$",
    re.IGNORECASE,
)
_BINARY = re.compile(r"^(no|yes|n|y|false|true|0|1|-|\+|off|on|absent|present|neg|pos|without|with)$", re.IGNORECASE)
_ID_HINT = re.compile(
    r"(^|_)(id|ids|patient|patients|donor|donors|subject|subjects|individual|individuals|sample|samples|batch|"
    r"batches|replicate|replicates|rep|lane|plate|mouse|mice|animal|animals|run|pool|cluster|clone|well|sex|group|"
    r"cell[_]?line|litter)($|_)|(id|ID)$",
)


@dataclass(frozen=True)
class Finding:
    """One observation about a design.

    Attributes
    ----------
    severity
        ``"error"`` (the design cannot be fit as written), ``"warning"`` (it can, but results are
        likely not what was meant or are unreliable) or ``"info"`` (how to read it).
    code
        Short stable identifier, e.g. ``"confounded"``.
    message
        What was found, naming the columns, levels and samples involved.
    fix
        What to do about it.
    """

    severity: str
    code: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message} Fix: {self.fix}"


class DesignError(ValueError):
    """A design with ``"error"`` findings; ``.findings`` holds all findings."""

    def __init__(self, message: str, findings: list[Finding] | None = None):
        super().__init__(message)
        self.findings = list(findings or [])


class DesignWarning(UserWarning):
    """A ``"warning"`` finding about a design (see :func:`findings`)."""


# --------------------------------------------------------------------------------------------------
# Reading the formula


@dataclass
class Part:
    """One factor of a design column: ``kind`` is ``"factor"``, ``"numeric"`` or ``"other"``."""

    kind: str
    name: str
    level: str | None = None


@dataclass
class DesignInspection:
    """Everything :func:`inspect_design` learnt about a formula over ``.obs``.

    ``design`` is ``None`` when no sample has complete design variables. ``data`` holds the
    prepared design variables of the complete samples (``samples``).
    """

    formula: str
    rhs: str
    variables: list[str]
    reference: dict[str, str]
    obs_columns: list[str]
    data: pd.DataFrame
    samples: pd.Index
    missing: dict[str, list]
    design: Design | None
    nonfinite: dict[str, list] = field(default_factory=dict)
    parts: dict[str, list[Part]] = field(default_factory=dict)
    full_coded: dict[tuple, set[str]] = field(default_factory=dict)
    dependent: list[tuple[str, list[str]]] = field(default_factory=list)
    rank: int = 0
    residual_df: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [] if self.design is None else list(self.design.columns)

    @property
    def has_intercept(self) -> bool:
        return "Intercept" in self.columns

    def signature(self, column: str) -> tuple:
        """The term a column belongs to: ``((kind, name), ...)``."""
        return tuple((p.kind, p.name) for p in self.parts.get(column, []))

    def is_full_coded(self, column: str, factor: str) -> bool:
        """Whether ``factor`` has a column for every level (no reference) in the term of ``column``."""
        return factor in self.full_coded.get(self.signature(column), set())

    def level_means(self, factor: str) -> bool:
        """Whether ``factor``'s main effect has a column per level (``0 +`` designs): level means, no reference."""
        return any(
            len(ps) == 1 and ps[0].name == factor and self.is_full_coded(c, factor) for c, ps in self.parts.items()
        )

    def terms(self) -> list[tuple]:
        """Distinct term signatures in column order (the intercept excluded)."""
        out: list[tuple] = []
        for c in self.columns:
            s = self.signature(c)
            if s and s not in out:
                out.append(s)
        return out

    def partners(self, names: set[str]) -> set[str]:
        """Variables sharing an interaction term with any of ``names`` (excluding ``names``)."""
        out: set[str] = set()
        for s in self.terms():
            vs = {n for _, n in s}
            if len(vs) > 1 and vs & names:
                out |= vs - names
        return out

    def main_variables(self) -> list[str]:
        """Factors and numeric covariates that appear as design columns, in column order."""
        out: list[str] = []
        for c in self.columns:
            for p in self.parts.get(c, []):
                if p.kind != "other" and p.name not in out:
                    out.append(p.name)
        return out


def formula_variables(formula: str, columns) -> list[str]:
    """Variables a formula reads (through :func:`pbglm._formula.parse_formula`, the gate every
    formula passes), including ``.obs`` columns whose names formulaic also uses for transforms.

    Raises
    ------
    DesignFormulaError
        The formula does not parse, uses a part pbglm does not evaluate, or names a variable that
        is not in ``columns``.
    """
    return list(parse_formula(formula, list(columns)).variables)


def _split_column(column: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in column:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(0, depth - 1)
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _parse_column(column: str, factors: dict[str, list[str]], numeric: list[str]) -> list[Part]:
    if column == "Intercept":
        return []
    out = []
    for piece in _split_column(column):
        part = Part("other", piece)
        for f, levels in factors.items():
            if piece.startswith(f"{f}[") and piece.endswith("]") and piece[len(f) + 1 : -1] in levels:
                part = Part("factor", f, piece[len(f) + 1 : -1])
                break
        else:
            if piece in numeric:
                part = Part("numeric", piece)
        out.append(part)
    return out


def inspect_design(obs: pd.DataFrame, formula: str, reference: dict[str, str] | None = None) -> DesignInspection:
    """Build the design over the complete samples of ``obs`` without rank checks, and collect findings.

    Raises
    ------
    DesignFormulaError
        The formula does not parse, names unknown columns, or ``reference`` is invalid.
    """
    if not isinstance(obs, pd.DataFrame):
        raise TypeError(f"obs must be a pandas DataFrame, got {type(obs).__name__}.")
    reference = {str(k): str(v) for k, v in dict(reference or {}).items()}
    parsed = parse_formula(formula, list(obs.columns))
    variables = list(parsed.variables)
    rhs = normalize_formula(formula)
    missing = {}
    nonfinite: dict[str, list] = {}
    complete = np.ones(len(obs), dtype=bool)
    for v in variables:
        na = obs[v].isna().to_numpy()
        if na.any():
            missing[v] = list(obs.index[na])
            complete &= ~na
        col = obs[v]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and not isinstance(
                col.dtype, pd.CategoricalDtype):
            inf = np.isinf(col.to_numpy(dtype=float))
            if inf.any():
                nonfinite[v] = list(obs.index[inf])
                complete &= ~inf
    sub = obs.loc[complete, variables] if variables else obs.loc[complete, []]
    try:
        data = prepare_obs(sub, variables, reference if len(sub) else {k: v for k, v in reference.items()
                                                                       if k not in variables},
                           factors=parsed.factors)
    except DesignFormulaError:
        raise
    except (KeyError, ValueError) as err:
        raise DesignFormulaError(_one_line(err.args[0] if err.args else err) + ".") from None
    insp = DesignInspection(
        formula=formula, rhs=rhs, variables=variables, reference=reference, obs_columns=list(obs.columns),
        data=data, samples=obs.index[complete], missing=missing, nonfinite=nonfinite,
        design=None,
    )
    if len(sub) > 0:
        mm = model_matrix(parsed, data)
        columns = [_TREATMENT.sub(r"[\1]", c) for c in mm.columns]
        matrix = np.ascontiguousarray(np.asarray(mm, dtype=np.float64))
        factors = {v: list(data[v].cat.categories) for v in variables if isinstance(data[v].dtype, pd.CategoricalDtype)}
        numeric = [v for v in variables if v not in factors]
        insp.design = Design(formula=formula, matrix=matrix, columns=columns, factors=factors, numeric=numeric)
        insp.parts = {c: _parse_column(c, factors, numeric) for c in columns}
        seen: dict[tuple, dict[str, set[str]]] = {}
        for c in columns:
            for p in insp.parts[c]:
                if p.kind == "factor":
                    seen.setdefault(insp.signature(c), {}).setdefault(p.name, set()).add(p.level)
        insp.full_coded = {
            sig: {f for f, lv in fl.items() if factors[f][0] in lv} for sig, fl in seen.items()
        }
        insp.dependent = dependent_columns(matrix, columns)
        insp.rank = len(columns) - len(insp.dependent)
        insp.residual_df = int(matrix.shape[0] - insp.rank)
    insp.findings = _collect(insp)
    return insp


def findings(obs: pd.DataFrame, formula: str, reference: dict[str, str] | None = None) -> list[Finding]:
    """Check a design formula against ``.obs`` and say what is wrong or risky, with a fix for each.

    Parameters
    ----------
    obs
        Sample metadata (``adata.obs``), as is: missing values and rank deficiency are reported,
        not raised.
    formula
        Design formula, e.g. ``"~ batch + condition"``.
    reference
        Reference level per factor, as for ``tl.fit``.

    Returns
    -------
    Findings sorted by severity (errors first). ``"error"`` findings mean ``tl.fit`` cannot fit
    the design as written.

    Raises
    ------
    DesignFormulaError
        The formula does not parse, names a column ``obs`` does not have, or ``reference`` is invalid
        (a single-line message listing the available columns).
    """
    return inspect_design(obs, formula, reference).findings


def check_design(
    obs: pd.DataFrame,
    formula: str,
    reference: dict[str, str] | None = None,
    *,
    seen: set | None = None,
) -> list[Finding]:
    """Raise on error findings, warn once per warning finding, log info findings; return all findings.

    Parameters
    ----------
    obs, formula, reference
        As for :func:`findings`.
    seen
        A set shared across calls (e.g. the groups of one ``groupby`` fit): a warning already in it
        is not issued again.

    Raises
    ------
    DesignFormulaError
        As for :func:`findings`.
    DesignError
        The design has error findings; the message holds each with its fix.
    """
    found = findings(obs, formula, reference)
    errors = [f for f in found if f.severity == "error"]
    if errors:
        raise DesignError(
            f"The design {formula!r} cannot be fit: " + " ".join(f"{f.message} Fix: {f.fix}" for f in errors),
            found,
        )
    seen = set() if seen is None else seen
    for f in found:
        key = (f.code, f.message)
        if f.severity == "warning" and key not in seen:
            seen.add(key)
            warn(f"{f.message} Fix: {f.fix}", DesignWarning)
        elif f.severity == "info":
            logger.info("design %s: %s (%s)", f.code, f.message, f.fix)
    return found


# --------------------------------------------------------------------------------------------------
# Findings


def _q(items, limit: int = 6) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _and(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _formula_without(insp: DesignInspection, variable: str) -> str:
    terms = []
    for sig in insp.terms():
        if variable in {n for _, n in sig}:
            continue
        text = ":".join(n for _, n in sig)
        if text not in terms:
            terms.append(text)
    prefix = "" if insp.has_intercept else "0 + "
    return "~ " + prefix + (" + ".join(terms) if terms else "1")


def _cell_text(parts: list[Part]) -> str:
    return " and ".join(f"{p.name} {p.level}" if p.kind == "factor" else p.name for p in parts)


def _nesting(insp: DesignInspection, involved: set[str]) -> list[Finding]:
    data = insp.data
    factors = [f for f in insp.main_variables() if f in insp.design.factors and f in involved]
    out = []
    done = set()
    for a in factors:
        for b in factors:
            if a == b or (b, a) in done:
                continue
            tab = pd.crosstab(data[a], data[b])
            a_in_b = bool(((tab > 0).sum(axis=1) == 1).all()) and tab.shape[1] > 1
            b_in_a = bool(((tab > 0).sum(axis=0) == 1).all()) and tab.shape[0] > 1
            if not a_in_b:
                continue
            done.add((a, b))
            owner = {str(la): str(tab.columns[(tab.loc[la] > 0).to_numpy()][0]) for la in tab.index}
            groups: dict[str, list[str]] = {}
            for la, lb in owner.items():
                groups.setdefault(lb, []).append(la)
            mapping = "; ".join(f"{', '.join(v[:4])}{' ...' if len(v) > 4 else ''} -> {k}" for k, v in groups.items())
            if b_in_a:
                done.add((b, a))
                out.append(Finding(
                    "error", "confounded",
                    f"{a} and {b} split the samples into the same groups ({mapping}): they are the same variable "
                    "as far as the design is concerned.",
                    f"Keep only one of them, e.g. '{_formula_without(insp, a)}'. Their effects cannot be told apart "
                    "without samples that break the pattern.",
                ))
            else:
                out.append(Finding(
                    "error", "confounded",
                    f"{a} is nested in {b}: every {a} level holds samples of a single {b} level ({mapping}), so the "
                    f"{b} effect is a combination of {a} effects and cannot be separated from them.",
                    f"If {a} is a nuisance or blocking variable (batch, patient, donor), drop it: "
                    f"'{_formula_without(insp, a)}' compares {b} levels with the {a} units as replicates. To also "
                    f"estimate a within-{a} effect (e.g. before/after in each patient), re-number {a} within each {b} "
                    f"level ({a}_n = 1, 2, ... restarting in every {b}) and use '~ {b} + {b}:{a}_n + {b}:<within "
                    f"factor>' (DESeq2 vignette: individuals nested within groups). Otherwise the experiment needs "
                    f"{a} levels that contain more than one {b} level.",
                ))
    return out


def _rank_findings(insp: DesignInspection) -> list[Finding]:
    out: list[Finding] = []
    zero = [c for c, inv in insp.dependent if not inv]
    dep = [(c, inv) for c, inv in insp.dependent if inv]
    for c in zero:
        parts = insp.parts.get(c, [])
        factor_parts = [p for p in parts if p.kind == "factor"]
        names = [p.name for p in factor_parts]
        if len(factor_parts) >= 2:
            combo = "_".join(p.level for p in factor_parts)
            joined = " + '_' + ".join(f"adata.obs[{n!r}].astype(str)" for n in names)
            fix = (
                f"Combine {_and(names)} into one factor of the combinations that occur, e.g. "
                f"adata.obs['group'] = {joined} (levels like {combo!r}), fit '~ group' and test differences "
                f"between existing combinations as contrasts; or drop the interaction ('~ {' + '.join(names)}')."
            )
            msg = f"Column '{c}' is all zeros: no sample has {_cell_text(factor_parts)}, so this interaction " \
                  "coefficient cannot be estimated."
        else:
            fix = "Remove the term from the formula, or add samples for it."
            msg = f"Column '{c}' is all zeros: no sample has a non-zero value for it, so it cannot be estimated."
        out.append(Finding("error", "empty-cell", msg, fix))
    if dep:
        listed = "; ".join(f"'{c}' = a combination of {_q(inv)}" for c, inv in dep)
        involved_vars = set()
        for c, inv in dep:
            for col in [c, *inv]:
                involved_vars |= {p.name for p in insp.parts.get(col, []) if p.kind != "other"}
        nested = _nesting(insp, involved_vars)
        first_vars = [p.name for p in insp.parts.get(dep[0][0], []) if p.kind != "other"]
        example = f" (e.g. '{_formula_without(insp, first_vars[0])}')" if len(first_vars) == 1 else ""
        fix = (
            f"Drop one of the confounded terms{example}, or combine confounded factors into one factor of the "
            "level combinations that occur; only effects that the samples can separate are estimable."
        )
        head = (
            f"The design is rank deficient (confounded): {listed}. These coefficients are not identifiable "
            f"({insp.rank} estimable of {len(insp.columns)})."
        )
        if nested:
            out.append(Finding("error", "confounded", head + " " + nested[0].message, nested[0].fix))
            out.extend(nested[1:])
        else:
            out.append(Finding("error", "confounded", head, fix))
    return out


def _df_findings(insp: DesignInspection) -> list[Finding]:
    m, p, r, df = len(insp.samples), len(insp.columns), insp.rank, insp.residual_df
    if df <= 0:
        extra = f" ({p} columns, of which {r} are estimable)" if r < p else ""
        return [Finding(
            "error", "no-residual-df",
            f"The design has {r} coefficients{extra} for {m} samples: no residual degrees of freedom, so the "
            "biological variability (dispersion) cannot be estimated and nothing can be tested.",
            "Use a simpler design (fewer terms or factor levels) or add replicates: each group needs at least "
            "two samples, and the number of samples must exceed the number of coefficients.",
        )]
    if df < 3:
        return [Finding(
            "warning", "few-residual-df",
            f"Only {df} residual degree{'s' if df > 1 else ''} of freedom ({m} samples, {r} coefficients): "
            "per-gene dispersion estimates will be very noisy and rely heavily on sharing information across "
            "genes (DESeq2 estimates the prior width by Monte-Carlo simulation below 4 residual df).",
            "Add replicates, or drop terms you do not need (e.g. a nuisance factor with little effect); "
            "treat the p-values as approximate.",
        )]
    if df == 3:
        return [Finding(
            "info", "few-residual-df",
            f"3 residual degrees of freedom ({m} samples, {r} coefficients): dispersion estimates lean on the "
            "trend across genes (DESeq2 estimates the prior width by Monte-Carlo simulation below 4 residual df).",
            "Nothing to change; more replicates would make the dispersion estimates more reliable.",
        )]
    return []


def _numeric_findings(insp: DesignInspection) -> list[Finding]:
    out: list[Finding] = []
    plain = [v for v in insp.main_variables() if v in insp.design.numeric]
    sds = {}
    for v in plain:
        x = insp.data[v].to_numpy(dtype=float)
        uniq = np.unique(x)
        n, k = len(x), len(uniq)
        sds[v] = float(np.std(x))
        integer = bool(np.all(np.isfinite(x)) and np.allclose(x, np.round(x)))
        id_like = bool(_ID_HINT.search(str(v)))
        shown = ", ".join(_fmt(u) for u in uniq[:8]) + (", ..." if k > 8 else "")
        convert = (
            f"If you meant groups (one coefficient per {v} value, no straight-line assumption), convert it: "
            f"adata.obs[{v!r}] = pd.Categorical(adata.obs[{v!r}])"
            + ("" if id_like else " (or strings such as 'day00')")
            + f"; keep it numeric only to test a linear trend per unit of {v}."
        )
        if integer and 3 <= k < n and (k <= 10 or id_like):
            what = "looks like an identifier (ids are labels, not quantities)" if id_like else "looks like a grouping"
            out.append(Finding(
                "warning", "numeric-looks-like-groups",
                f"{v!r} is numeric with only {k} distinct values ({shown}) and {what}: the design treats it as a "
                f"slope, one log2 fold change per unit of {v} along a straight line, not as separate groups.",
                convert,
            ))
        elif k == 2 and n > 2 and set(uniq) != {0.0, 1.0}:
            out.append(Finding(
                "info", "numeric-looks-like-groups",
                f"{v!r} is numeric with two values ({shown}): its coefficient is the change per 1 unit, i.e. the "
                f"log2 fold change between {_fmt(uniq[1])} and {_fmt(uniq[0])} divided by {_fmt(uniq[1] - uniq[0])}.",
                f"Fine as is; for a coefficient that is the fold change itself, code it as 0/1 or convert it with "
                f"adata.obs[{v!r}] = pd.Categorical(adata.obs[{v!r}]).",
            ))
        lo, hi = float(uniq[0]), float(uniq[-1])
        if k > 1 and (lo > 0 or hi < 0):
            dist = min(abs(lo), abs(hi))
            if dist > 0.5 * (hi - lo):
                partners = insp.partners({v})
                if partners:
                    sev = "warning"
                    what = (f"the intercept and the main effects of {_and(sorted(partners))} are the values at "
                            f"{v} = 0")
                else:
                    sev = "info"
                    what = f"the intercept is the log2 expression at {v} = 0"
                out.append(Finding(
                    sev, "numeric-far-from-zero",
                    f"{v!r} ranges from {_fmt(lo)} to {_fmt(hi)}, far from 0, and {what}: an extrapolation outside "
                    "the data.",
                    f"Centre it: adata.obs['{v}_c'] = adata.obs[{v!r}] - adata.obs[{v!r}].mean() and use '{v}_c' in "
                    f"the formula. The {v} slope does not change; the other coefficients then refer to the mean {v} "
                    f"({_fmt(float(np.mean(insp.data[v])))}).",
                ))
    pos = {v: s for v, s in sds.items() if s > 0}
    if len(pos) >= 2:
        big, small = max(pos, key=pos.get), min(pos, key=pos.get)
        if pos[big] / pos[small] > 100:
            out.append(Finding(
                "info", "numeric-scales",
                f"Numeric covariates are on very different scales (SD of {big!r} {_fmt(pos[big])}, of {small!r} "
                f"{_fmt(pos[small])}): their per-unit slopes are not comparable and the fit is less well "
                "conditioned.",
                "Standardise them (subtract the mean, divide by the SD) or change units (e.g. age in decades, "
                "library size in millions) before fitting.",
            ))
    return out


def _factor_findings(insp: DesignInspection) -> list[Finding]:
    out: list[Finding] = []
    design, data = insp.design, insp.data
    for f, levels in design.factors.items():
        counts = data[f].value_counts().reindex(levels).fillna(0).astype(int)
        if len(levels) == 1:
            out.append(Finding(
                "warning", "single-level-factor",
                f"Factor {f!r} has a single level ({levels[0]!r}) among these samples: it adds no coefficient and "
                f"nothing about {f} can be compared.",
                f"Remove {f} from the formula ('{_formula_without(insp, f)}'), or include samples of other {f} "
                "levels.",
            ))
            continue
        single = [lv for lv in levels if counts[lv] == 1]
        for lv in single:
            sample = data.index[(data[f] == lv).to_numpy()][0]
            out.append(Finding(
                "warning", "single-sample-level",
                f"Level {lv!r} of {f!r} has a single sample ({str(sample)!r}): the model fits that sample "
                "exactly, so its coefficient cannot be checked against replicates and one outlier can drive it.",
                f"Add replicates for {lv!r}, merge it with a similar level, or drop the sample "
                f"(adata = adata[adata.obs[{f!r}] != {lv!r}].copy()).",
            ))
        if not single and counts.min() > 0 and counts.max() / counts.min() >= 3:
            sizes = ", ".join(f"{lv} {counts[lv]}" for lv in levels)
            out.append(Finding(
                "info", "unbalanced",
                f"Group sizes of {f!r} differ a lot ({sizes}): comparisons involving the small groups have little "
                "power, and the dispersion is estimated mostly from the large groups.",
                "Nothing to change in the formula; interpret results for the small groups with care, add "
                "replicates there if possible, and for pseudobulks check that small groups are not samples with "
                "few cells.",
            ))
        ref = levels[0]
        if f not in insp.reference and not _CONTROL.match(ref) and not insp.level_means(f):
            controls = [lv for lv in levels[1:] if _CONTROL.match(lv)]
            if controls:
                out.append(Finding(
                    "info", "reference-level",
                    f"The reference level of {f!r} is {ref!r} (the first level), so its coefficients are log2 fold "
                    f"changes vs {ref!r}; {controls[0]!r} looks like the control.",
                    f"Pass reference={{{f!r}: {controls[0]!r}}} (or put {controls[0]!r} first in the categorical) "
                    f"to get fold changes vs {controls[0]!r}; contrasts written as ({f!r}, level, {controls[0]!r}) "
                    "work either way.",
                ))
    # single-sample cells of factor interactions
    for sig in insp.terms():
        fs = [n for k, n in sig if k == "factor"]
        if len(fs) < 2 or len(fs) != len(sig):
            continue
        cells = data.groupby(fs, observed=True).size()
        lonely = []
        for key, size in cells.items():
            key = key if isinstance(key, tuple) else (key,)
            if size == 1 and not any(int((data[f] == lv).sum()) == 1 for f, lv in zip(fs, key, strict=True)):
                lonely.append("/".join(str(k) for k in key))
        if lonely:
            total = int(np.prod([len(design.factors[f]) for f in fs]))
            out.append(Finding(
                "warning", "single-sample-level",
                f"{len(lonely)} of the {total} {':'.join(fs)} combinations have a single sample ({_q(lonely)}): "
                "the interaction coefficients for them rest on one sample each.",
                "Add replicates for those combinations, or drop the interaction if it is not the question.",
            ))
    return out


def _interaction_findings(insp: DesignInspection) -> list[Finding]:
    out: list[Finding] = []
    design = insp.design
    for sig in insp.terms():
        fs = [n for k, n in sig if k == "factor"]
        if len(fs) != 2 or len(sig) != 2:
            continue
        cols = [c for c in insp.columns if insp.signature(c) == sig]
        if any(insp.is_full_coded(cols[0], f) for f in fs):
            continue
        (a, b) = fs
        la, lb = design.factors[a], design.factors[b]
        if len(la) == 2 and len(lb) == 2:
            ra, xa, rb, xb = la[0], la[1], lb[0], lb[1]
            flags = _BINARY.match(ra) and _BINARY.match(xa) and _BINARY.match(rb) and _BINARY.match(xb)
            if flags:
                ctrl, only_a, only_b, both = "ctrl", a, b, f"{a}_{b}"
                pairs = {f"{ra}_{rb}": ctrl, f"{xa}_{rb}": only_a, f"{ra}_{xb}": only_b, f"{xa}_{xb}": both}
                make = (f"adata.obs['group'] = (adata.obs[{a!r}].astype(str) + '_' + adata.obs[{b!r}].astype(str))"
                        f".map({pairs!r})")
                sa, sb = f"{a} {xa}", f"{b} {xb}"
            else:
                ctrl, only_a, only_b, both = f"{ra}_{rb}", f"{xa}_{rb}", f"{ra}_{xb}", f"{xa}_{xb}"
                make = f"adata.obs['group'] = adata.obs[{a!r}].astype(str) + '_' + adata.obs[{b!r}].astype(str)"
                sa, sb = f"{a} {xa}", f"{b} {xb}"
            out.append(Finding(
                "info", "interaction",
                f"'{cols[0]}' is the extra effect of {sa} and {sb} together beyond the sum of their single "
                f"effects (synergy on the log2 scale). '{a}[{xa}]' is the effect of {sa} without {b} ({b} "
                f"{rb}) and '{b}[{xb}]' the effect of {sb} without {a} ({a} {ra}); neither is an average effect.",
                f"If the questions are 'each treatment vs control' and 'the combination vs each single "
                f"treatment', one combined factor answers them directly: {make} (levels {ctrl}, {only_a}, "
                f"{only_b}, {both}), design '~ group' with reference={{'group': {ctrl!r}}}, and contrasts "
                f"('group', {both!r}, {ctrl!r}), ('group', {both!r}, {only_a!r}), ('group', {only_b!r}, {ctrl!r}), "
                f"...; the interaction is then the expression '{both} - {only_a} - {only_b}'.",
            ))
        else:
            example = cols[-1]
            ex_parts = insp.parts[example]
            other = next(p for p in ex_parts if p.name == b)
            first = next(p for p in ex_parts if p.name == a)
            out.append(Finding(
                "info", "interaction",
                f"With the {a}:{b} interaction, '{b}[{other.level}]' is the {b} {other.level} vs {lb[0]} effect at "
                f"{a} {la[0]} (the reference) only, and '{a}[{first.level}]' the {a} {first.level} vs {la[0]} "
                f"effect at {b} {lb[0]}; '{example}' is how much the {b} effect at {a} {first.level} differs from "
                f"that at {a} {la[0]}.",
                f"Test the {b} effect at {a} {first.level} as '{b}[{other.level}] + {example}'. Or combine the "
                f"factors: adata.obs['group'] = adata.obs[{a!r}].astype(str) + '_' + adata.obs[{b!r}].astype(str), "
                "design '~ group', and compare the combinations you need as contrasts.",
            ))
    return out


def _intercept_findings(insp: DesignInspection) -> list[Finding]:
    if insp.has_intercept or not insp.columns:
        return []
    full = [f for f in insp.design.factors if insp.level_means(f)]
    if full:
        f = full[0]
        levels = insp.design.factors[f]
        cols = [f"{f}[{lv}]" for lv in levels]
        ref = next((lv for lv in levels if _CONTROL.match(lv)), levels[0])
        other = next((lv for lv in levels if lv != ref), ref)
        return [Finding(
            "info", "no-intercept",
            f"The design has no intercept ('0 +' or '- 1'): {_q(cols)} are the mean log2 expression of each {f} "
            "level, not differences. Testing one of them alone asks whether that mean is 0, which is not a "
            "biological question.",
            f"Test differences between levels, e.g. ({f!r}, {other!r}, {ref!r}) or the expression "
            f"'{f}[{other}] - {f}[{ref}]'; or drop the '0 +' to get log2 fold changes vs the reference directly.",
        )]
    return [Finding(
        "warning", "no-intercept",
        "The design has no intercept and no factor coded by level means: the fit forces log2 expression through 0 "
        "where every covariate is 0.",
        "Remove the '0 +' / '- 1' unless that constraint is intended.",
    )]


def _missing_findings(insp: DesignInspection) -> list[Finding]:
    out = []
    for v, samples in insp.missing.items():
        out.append(Finding(
            "error", "missing-values",
            f"Design column {v!r} has missing values in {len(samples)} sample{'s' if len(samples) > 1 else ''} "
            f"({_q(samples, 5)}); the design cannot be built for them.",
            f"Fill them in, or drop those samples: adata = adata[adata.obs[{v!r}].notna()].copy().",
        ))
    for v, samples in insp.nonfinite.items():
        out.append(Finding(
            "error", "non-finite-values",
            f"Numeric design column {v!r} is infinite in {len(samples)} sample{'s' if len(samples) > 1 else ''} "
            f"({_q(samples, 5)}); a slope cannot be fit through infinite values.",
            f"Correct those values (an infinite log of 0? use log1p), or drop those samples: "
            f"adata = adata[np.isfinite(adata.obs[{v!r}])].copy().",
        ))
    return out


_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


def _collect(insp: DesignInspection) -> list[Finding]:
    out = _missing_findings(insp)
    if insp.design is not None and insp.columns:
        out += _rank_findings(insp)
        out += _df_findings(insp)
        out += _factor_findings(insp)
        out += _numeric_findings(insp)
        out += _intercept_findings(insp)
        out += _interaction_findings(insp)
    elif insp.design is not None:
        out.append(Finding(
            "error", "no-residual-df", "The design has no columns.", "Add an intercept or terms to the formula.",
        ))
    return sorted(out, key=lambda f: _ORDER[f.severity])
