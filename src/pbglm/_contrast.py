"""Turn what users write into a contrast vector over the design columns.

Accepted forms:

* ``(factor, level, reference_level)``: log2 fold change of ``level`` over ``reference_level``
  (any two levels; in designs with interactions this is the effect at the reference levels of
  the other factors, as in DESeq2);
* ``(factor, level, reference_level, {other_factor: its_level, numeric: value})``: the same
  comparison at the given levels of the other factors (cell means through the design formula),
  e.g. ``("Treatment", "treated", "ctrl", {"Time": "day04"})`` in ``~ Time * Treatment``;
* a coefficient name, e.g. ``"dex[trt]"`` or ``"age"``;
* a dict ``{coefficient: weight}`` or a numeric vector with one weight per design column;
* a string expression over coefficient names and factor levels, e.g. ``"DrugA - DrugB"``,
  ``"(A + B)/2 - ctrl"`` or ``"Treatment[treated] + Time[day04]:Treatment[treated]"``
  (a level stands for its coefficient; the reference level of a factor is 0).
"""

from __future__ import annotations

import ast
import re

import numpy as np

_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def level_column(columns: list[str], factor: str, level: str) -> str | None:
    """The design column of a factor level (None for the reference level of a treatment-coded factor)."""
    name = f"{factor}[{level}]"
    return name if name in columns else None


def _unit(columns: list[str], name: str) -> np.ndarray:
    v = np.zeros(len(columns))
    v[columns.index(name)] = 1.0
    return v


def _level_vector(columns, factors, factor, level) -> np.ndarray:
    if factor not in factors:
        raise KeyError(
            f"{factor!r} is not a factor of the design. Factors: {list(factors)}; coefficients: {columns}."
        )
    levels = factors[factor]
    if level not in levels:
        raise ValueError(f"{level!r} is not a level of {factor!r}; its levels are {levels}.")
    col = level_column(columns, factor, level)
    if col is not None:
        return _unit(columns, col)
    if level == levels[0] and "Intercept" in columns:
        return np.zeros(len(columns))
    raise ValueError(
        f"Level {level!r} of {factor!r} has no coefficient in this design; write the contrast as a vector or an "
        f"expression over the coefficients {columns}."
    )


def forms_text(columns: list[str], factors: dict[str, list[str]]) -> str:
    """The design's coefficients and the contrast forms pbglm accepts, for error messages."""
    example = next(((f, lv[1], lv[0]) for f, lv in factors.items() if len(lv) > 1), ("factor", "level", "reference"))
    return (
        f"The design's coefficients are {columns}"
        + (f"; factors and levels {factors}" if factors else "")
        + f". Accepted contrasts: a (factor, level, reference) tuple such as {example!r}; a coefficient name such "
        f"as {columns[-1]!r}; an expression over coefficients and levels such as 'A - B' or '(A + B)/2 - ctrl' "
        "(write names that are not Python names in backticks, e.g. '`drug-A` - `drug-B`'); a dict "
        f"{{coefficient: weight}}; or a vector of {len(columns)} weights."
    )


def _expression(expr: str, columns: list[str], factors: dict[str, list[str]]) -> np.ndarray:
    level_owner: dict[str, list[str]] = {}
    for f, levels in factors.items():
        for lv in levels:
            level_owner.setdefault(lv, []).append(f)
    placeholders: dict[str, object] = {}

    def placeholder(name: str) -> str:
        ph = f"__p{len(placeholders)}__"
        placeholders[ph] = name
        return ph

    # backtick-quoted names first, then coefficient names and levels that are not Python names,
    # longest first, only where they stand as whole names (not inside a longer name)
    text = re.sub(r"`([^`]*)`", lambda m: placeholder(m.group(1)), expr)
    names = set(columns) | {lv for lv in level_owner if not lv.isidentifier()}
    for name in sorted(names, key=len, reverse=True):
        if name.isidentifier():
            continue
        pattern = re.compile(r"(?<![\w.`])" + re.escape(name) + r"(?![\w.`\[])")
        text = pattern.sub(lambda _m, n=name: placeholder(n), text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"Cannot parse the contrast expression {expr!r}. {forms_text(columns, factors)}") from None

    def name_vector(name: str) -> np.ndarray:
        if name in columns:
            return _unit(columns, name)
        owners = level_owner.get(name, [])
        if len(owners) == 1:
            return _level_vector(columns, factors, owners[0], name)
        if len(owners) > 1:
            raise ValueError(
                f"{name!r} is a level of several factors ({owners}); write the coefficient name instead. "
                + forms_text(columns, factors)
            )
        raise KeyError(
            f"{name!r} in the contrast {expr!r} is neither a coefficient nor a factor level. "
            + forms_text(columns, factors)
        )

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            if not np.isfinite(node.value):
                raise ValueError(f"The contrast {expr!r} has a non-finite weight.")
            return float(node.value)
        if isinstance(node, ast.Name):
            return name_vector(str(placeholders.get(node.id, node.id)))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in factors:
            factor = node.value.id
            level = str(placeholders.get(ast.unparse(node.slice), ast.unparse(node.slice)))
            if level in factors[factor] and level_column(columns, factor, level) is None:
                others = [lv for lv in factors[factor] if lv != level]
                raise ValueError(
                    f"{expr!r}: {level!r} is the reference level of {factor!r}, which has no coefficient (it is the "
                    f"baseline the others are compared with); to compare a level with it write "
                    f"({factor!r}, {others[0] if others else 'level'!r}, {level!r}). " + forms_text(columns, factors)
                )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult) and (np.isscalar(a) or np.isscalar(b)):
                return a * b
            if isinstance(node.op, ast.Div) and np.isscalar(b):
                if b == 0:
                    raise ValueError(f"The contrast {expr!r} divides by zero.")
                return a / b
        raise ValueError(
            f"The contrast {expr!r} is not a linear combination of coefficients. " + forms_text(columns, factors)
        )

    vec = ev(tree)
    if np.isscalar(vec):
        raise ValueError(f"The contrast {expr!r} does not involve any coefficient. " + forms_text(columns, factors))
    return vec


def cell_means_contrast(formula: str, columns, factors, numeric, factor, level, ref, at: dict) -> np.ndarray:
    """Design row of (``factor`` = level, others at ``at``) minus the row with ``factor`` = ref."""
    import pandas as pd

    from ._design import _rename
    from ._formula import model_matrix

    unknown = [k for k in at if k not in factors and k not in numeric]
    if unknown:
        raise KeyError(f"{unknown} are not variables of the design; factors {list(factors)}, numeric {list(numeric)}.")
    rows = {}
    for f, levels in factors.items():
        value = at.get(f, levels[0])
        if str(value) not in levels:
            raise ValueError(f"{value!r} is not a level of {f!r}; its levels are {levels}.")
        vals = [level, ref] if f == factor else [str(value)] * 2
        rows[f] = pd.Categorical(vals, categories=levels)
    for v in numeric:
        rows[v] = [float(at.get(v, 0.0))] * 2
    mm = model_matrix(formula, pd.DataFrame(rows))
    names = [_rename(c) for c in mm.columns]
    if names != list(columns):
        raise ValueError(f"Could not rebuild the design columns from {formula!r} (got {names}).")
    m = np.asarray(mm, dtype=float)
    return m[0] - m[1]


def safe_name(text: str) -> str:
    """A test name usable as an h5ad key."""
    return _SAFE.sub("_", text).strip("_") or "contrast"


def resolve_contrast(contrast, columns: list[str], factors: dict[str, list[str]], *, formula: str | None = None,
                     numeric=()) -> tuple[np.ndarray, str, dict]:
    """Return ``(vector, default test name, description)`` for any accepted contrast form."""
    columns = list(columns)
    vec, name, desc = _resolve(contrast, columns, factors, formula=formula, numeric=list(numeric))
    vec = np.asarray(vec, dtype=float)
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"The contrast {contrast!r} has non-finite weights ({vec.tolist()}); give finite numbers.")
    if not np.any(vec != 0):
        raise ValueError(
            f"The contrast {contrast!r} is zero for every coefficient ({vec.tolist()}): it tests nothing. "
            + forms_text(columns, factors)
        )
    return vec, name, desc


def _resolve(contrast, columns: list[str], factors: dict[str, list[str]], *, formula, numeric):
    p = len(columns)
    if isinstance(contrast, tuple) and any(isinstance(c, str) for c in contrast):
        factor = contrast[0]
        if factor in numeric:
            raise ValueError(
                f"The contrast {contrast!r} names {factor!r}, a numeric covariate (a slope), not a factor with "
                f"levels: test its coefficient with contrast={factor!r}, or make it a factor (a string or "
                f"categorical .obs column, or C({factor}) in the formula). " + forms_text(columns, factors)
            )
        if not (len(contrast) == 3 or (len(contrast) == 4 and isinstance(contrast[3], dict))) or not all(
                isinstance(c, str) for c in contrast[:3]):
            raise ValueError(
                f"A contrast tuple is (factor, level, reference) or (factor, level, reference, {{other: level}}), "
                f"three strings and an optional dict; got {contrast!r}. " + forms_text(columns, factors)
            )
    if isinstance(contrast, tuple | list) and len(contrast) == 4 and isinstance(contrast[3], dict):
        factor, level, ref, at = contrast
        if factor not in factors:
            raise KeyError(f"{factor!r} is not a factor of the design. Factors: {list(factors)}.")
        for lv in (level, ref):
            if lv not in factors[factor]:
                raise ValueError(f"{lv!r} is not a level of {factor!r}; its levels are {factors[factor]}.")
        if formula is None:
            raise ValueError("A contrast at given levels of other factors needs the design formula.")
        vec = cell_means_contrast(formula, columns, factors, list(numeric), factor, level, ref, at)
        where = "_".join(f"{k}{v}" for k, v in at.items())
        return vec, safe_name(f"{factor}_{level}_vs_{ref}_at_{where}"), {
            "kind": "levels", "factor": factor, "level": level, "reference": ref,
            "at": {str(k): str(v) for k, v in at.items()}}
    if isinstance(contrast, tuple | list) and len(contrast) == 3 and all(isinstance(c, str) for c in contrast):
        if contrast[0] not in factors:
            raise KeyError(
                f"{contrast[0]!r} in the contrast {contrast!r} is not a factor of the design. "
                + forms_text(columns, factors)
            )
        factor, level, ref = contrast
        if level == ref:
            raise ValueError(f"The contrast compares {level!r} with itself; name two different levels of {factor!r}.")
        vec = _level_vector(columns, factors, factor, level) - _level_vector(columns, factors, factor, ref)
        return vec, safe_name(f"{factor}_{level}_vs_{ref}"), {"kind": "levels", "factor": factor, "level": level,
                                                               "reference": ref}
    if isinstance(contrast, str):
        if contrast in columns:
            return _unit(columns, contrast), safe_name(contrast), {"kind": "coefficient", "coefficient": contrast}
        vec = _expression(contrast, columns, factors)
        return vec, safe_name(contrast.replace(" ", "")), {"kind": "expression", "expression": contrast}
    if isinstance(contrast, dict):
        unknown = [k for k in contrast if k not in columns]
        if unknown:
            raise KeyError(f"Unknown coefficient(s) {unknown} in the contrast; valid names are {columns}.")
        vec = np.zeros(p)
        for k, w in contrast.items():
            if isinstance(w, bool) or not isinstance(w, int | float | np.integer | np.floating):
                raise TypeError(f"Contrast weight for {k!r} must be a number, got {w!r}.")
            vec[columns.index(k)] = float(w)
        return vec, "contrast", {"kind": "vector"}
    try:
        arr = np.asarray(contrast, dtype=float) if not isinstance(contrast, tuple | list) or contrast else None
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.ndim == 1:
        if arr.size != p:
            raise ValueError(
                f"The contrast vector has {arr.size} entries but the design has {p} columns: {columns}."
            )
        return arr, "contrast", {"kind": "vector"}
    raise ValueError(f"Cannot read the contrast {contrast!r}. " + forms_text(columns, factors))
