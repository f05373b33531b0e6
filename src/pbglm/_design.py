"""Design matrices from formulas read against ``.obs``: level order, references, rank checks.

Coefficient names: the intercept is ``Intercept``; a factor level is ``factor[level]`` (the
treatment-coded difference from the reference level, or the level mean in ``0 +`` designs);
a numeric column keeps its name (a slope); interactions join terms with ``:``, e.g.
``Time[day04]:Treatment[treated]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._formula import DesignFormulaError, model_matrix, normalize_formula, parse_formula

__all__ = ["Design", "DesignFormulaError", "build_design", "design_frame", "design_variables", "normalize_formula",
           "prepare_obs"]

_TREATMENT = re.compile(r"\[T\.([^\]]*)\]")


@dataclass
class Design:
    """A design matrix and what it was made of.

    Attributes
    ----------
    formula
        The formula string as given.
    matrix
        ``(m, p)`` float64 design matrix (samples in ``.obs`` order).
    columns
        The p coefficient names.
    factors
        ``{factor: [levels in order]}`` for every categorical variable (first level = reference).
    numeric
        Names of numeric (slope) variables.
    """

    formula: str
    matrix: np.ndarray
    columns: list[str]
    factors: dict[str, list[str]] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_coefs(self) -> int:
        return self.matrix.shape[1]

    def frame(self, index) -> pd.DataFrame:
        """The design matrix as a DataFrame (samples x coefficients)."""
        return pd.DataFrame(self.matrix, index=index, columns=self.columns)


def design_variables(formula: str, columns=None) -> list[str]:
    """The ``.obs`` columns a formula reads (checked by :func:`pbglm._formula.parse_formula`);
    with ``columns``, only those among them."""
    names = list(parse_formula(formula).variables)
    if columns is not None:
        cols = set(map(str, columns))
        names = [n for n in names if n in cols]
    return names


def _as_factor(col: pd.Series) -> pd.Categorical:
    """A numeric column made a factor by ``C()``: levels in numeric order, whole numbers without ``.0``."""
    values = col.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"Column {col.name!r} used as a factor (C()) has non-finite values.")
    whole = np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53)
    text = [str(int(v)) if whole else repr(float(v)) for v in values]
    order = [t for _, t in sorted({(v, t) for v, t in zip(values, text, strict=True)})]
    return pd.Categorical(text, categories=list(dict.fromkeys(order)))


def prepare_obs(obs: pd.DataFrame, variables: list[str], reference: dict[str, str] | None = None,
                factors=()) -> pd.DataFrame:
    """The design variables as a frame: strings/booleans (and numeric columns in ``factors``, the
    formula's ``C()`` columns) become categoricals (sorted levels), categoricals keep their level
    order, ``reference`` moves a level to the front.
    """
    reference = dict(reference or {})
    missing = [v for v in variables if v not in obs.columns]
    if missing:
        raise KeyError(
            f"Design variable(s) {missing} are not columns of .obs. Available columns: {list(obs.columns)}."
        )
    unknown_refs = [k for k in reference if k not in variables]
    if unknown_refs:
        raise KeyError(
            f"reference= names {unknown_refs}, which the design does not use (design variables: {variables})."
        )
    out = {}
    for v in variables:
        col = obs[v]
        if col.isna().any():
            bad = list(obs.index[col.isna()][:5])
            raise ValueError(f"Design column {v!r} has missing values (samples {bad}); fill or drop those samples.")
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.cat.remove_unused_categories()
            cats = [str(c) for c in col.cat.categories]
            col = pd.Categorical(col.astype(str), categories=cats)
        elif v in factors and pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            col = _as_factor(col)
        elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            vals = col.astype(str)
            col = pd.Categorical(vals, categories=sorted(vals.unique()))
        else:
            col = col.astype(float)
            bad = list(obs.index[~np.isfinite(col.to_numpy())][:5])
            if bad:
                raise ValueError(
                    f"Numeric design column {v!r} has infinite values (samples {bad}); a slope cannot be fit through "
                    "them. Correct or drop those samples."
                )
        if v in reference:
            if not isinstance(col, pd.Categorical):
                raise ValueError(f"reference= was given for {v!r}, but it is numeric (a slope); make it categorical.")
            ref = str(reference[v])
            if ref not in col.categories:
                raise ValueError(f"Reference level {ref!r} is not a level of {v!r}; levels are {list(col.categories)}.")
            col = col.reorder_categories([ref] + [c for c in col.categories if c != ref])
        out[v] = col
    return pd.DataFrame(out, index=obs.index)


def _rename(col: str) -> str:
    return _TREATMENT.sub(r"[\1]", col)


def dependent_columns(matrix: np.ndarray, columns: list[str], tol: float = 1e-8) -> list[tuple[str, list[str]]]:
    """Columns that are linear combinations of earlier ones: ``[(column, [columns it depends on])]``."""
    out = []
    kept: list[int] = []
    scale = np.linalg.norm(matrix, axis=0)
    for j in range(matrix.shape[1]):
        if scale[j] == 0:
            out.append((columns[j], []))
            continue
        if kept:
            B = matrix[:, kept]
            coef, *_ = np.linalg.lstsq(B, matrix[:, j], rcond=None)
            resid = matrix[:, j] - B @ coef
            if np.linalg.norm(resid) <= tol * scale[j] * max(1.0, np.sqrt(matrix.shape[0])):
                involved = [columns[kept[i]] for i in np.nonzero(np.abs(coef) > 1e-8)[0]]
                out.append((columns[j], involved))
                continue
        kept.append(j)
    return out


def build_design(obs: pd.DataFrame, formula: str, reference: dict[str, str] | None = None) -> Design:
    """Build and check the design matrix for ``formula`` over ``obs``.

    Raises
    ------
    KeyError
        A design variable is not a column of ``obs``.
    ValueError
        Unparsable formula, missing values, a rank-deficient design (naming the dependent
        columns), or no residual degrees of freedom.
    """
    design = design_frame(obs, formula, reference)
    check_rank(design)
    return design


def design_frame(obs: pd.DataFrame, formula: str, reference: dict[str, str] | None = None) -> Design:
    """The design matrix for ``formula`` over ``obs`` without the rank checks of :func:`build_design`.

    Raises
    ------
    DesignFormulaError
        (a KeyError and a ValueError) The formula is not allowed or does not parse, or names a
        column ``obs`` lacks.
    ValueError
        Missing values or a bad ``reference``.
    """
    parsed = parse_formula(formula, obs.columns)
    variables = list(parsed.variables)
    data = prepare_obs(obs, variables, reference, factors=parsed.factors)
    mm = model_matrix(parsed, data)
    columns = [_rename(c) for c in mm.columns]
    matrix = np.ascontiguousarray(np.asarray(mm, dtype=np.float64))
    factors = {v: list(data[v].cat.categories) for v in variables if isinstance(data[v].dtype, pd.CategoricalDtype)}
    numeric = [v for v in variables if v not in factors]
    return Design(formula=formula, matrix=matrix, columns=columns, factors=factors, numeric=numeric)


def check_rank(design: Design) -> None:
    """Raise a ValueError naming the columns if the design is rank deficient or has no residual df."""
    m, p = design.matrix.shape
    deps = dependent_columns(design.matrix, design.columns)
    if deps:
        parts = []
        for col, involved in deps:
            if not involved:
                parts.append(f"'{col}' is all zeros (a level or level combination with no samples)")
            else:
                parts.append(f"'{col}' is a linear combination of {', '.join(repr(c) for c in involved)}")
        raise ValueError(
            f"The design {design.formula!r} is rank deficient (confounded): "
            + "; ".join(parts)
            + ". Drop one of the confounded terms, or combine the factors into one factor "
            "(e.g. a column with the level combinations that do occur)."
        )
    if m <= p:
        raise ValueError(
            f"The design {design.formula!r} has {p} coefficients for {m} samples: no residual degrees of freedom "
            "to estimate dispersions. Use a simpler design or more samples."
        )
