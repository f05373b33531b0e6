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


def _expression(expr: str, columns: list[str], factors: dict[str, list[str]]) -> np.ndarray:
    placeholders = {}
    text = expr
    for i, col in sorted(enumerate(columns), key=lambda t: -len(t[1])):
        if col in text:
            ph = f"__c{i}__"
            text = text.replace(col, ph)
            placeholders[ph] = _unit(columns, col)
    level_owner: dict[str, list[str]] = {}
    for f, levels in factors.items():
        for lv in levels:
            level_owner.setdefault(lv, []).append(f)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(
            f"Cannot parse the contrast expression {expr!r}. Use coefficient names {columns} or factor levels with "
            "+, -, * and / (e.g. 'DrugA - DrugB')."
        ) from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in placeholders:
                return placeholders[node.id]
            owners = level_owner.get(node.id, [])
            if len(owners) == 1:
                return _level_vector(columns, factors, owners[0], node.id)
            if len(owners) > 1:
                raise ValueError(
                    f"{node.id!r} is a level of several factors ({owners}); write the coefficient name instead."
                )
            raise KeyError(
                f"{node.id!r} in {expr!r} is neither a coefficient nor a factor level. Coefficients: {columns}."
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
                return a / b
        raise ValueError(f"The contrast {expr!r} is not a linear combination of coefficients.")

    vec = ev(tree)
    if np.isscalar(vec):
        raise ValueError(f"The contrast {expr!r} does not involve any coefficient.")
    return vec


def cell_means_contrast(formula: str, columns, factors, numeric, factor, level, ref, at: dict) -> np.ndarray:
    """Design row of (``factor`` = level, others at ``at``) minus the row with ``factor`` = ref."""
    import pandas as pd
    from formulaic import model_matrix

    from ._design import _rename, normalize_formula

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
    mm = model_matrix(normalize_formula(formula), pd.DataFrame(rows))
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
    p = len(columns)
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
            vec[columns.index(k)] = float(w)
        return vec, "contrast", {"kind": "vector"}
    arr = np.asarray(contrast, dtype=float) if not isinstance(contrast, tuple | list) or contrast else None
    if arr is not None and arr.ndim == 1:
        if arr.size != p:
            raise ValueError(
                f"The contrast vector has {arr.size} entries but the design has {p} columns: {columns}."
            )
        return arr, "contrast", {"kind": "vector"}
    raise ValueError(
        "A contrast must be (factor, level, reference), a coefficient name, a dict of weights, a numeric vector "
        f"or an expression; got {contrast!r}."
    )
