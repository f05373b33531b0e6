"""Design matrices from formulas read against ``.obs``: level order, references, rank checks.

Coefficient names: the intercept is ``Intercept``; a factor level is ``factor[level]`` (the
treatment-coded difference from the reference level, or the level mean in ``0 +`` designs);
a numeric column keeps its name (a slope); interactions join terms with ``:``, e.g.
``Time[day04]:Treatment[treated]``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import FormulaicError

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


def normalize_formula(formula: str) -> str:
    """Accept ``"~ a + b"`` or ``"a + b"``; return the right-hand side with a leading ``~``."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"The design must be a formula string such as '~ batch + condition', got {formula!r}.")
    f = formula.strip()
    if "~" in f:
        lhs, rhs = f.split("~", 1)
        if lhs.strip():
            raise ValueError(f"The design formula {formula!r} has a left-hand side; write only '~ terms'.")
        f = rhs
    return "~ " + f.strip()


def design_variables(formula: str, columns=None) -> list[str]:
    """Names a formula reads: every identifier in its terms that is a column of ``.obs`` (when
    ``columns`` is given; names such as ``C`` or ``Treatment`` are both formulaic functions and
    common column names), plus formulaic's own list of required variables."""
    try:
        spec = Formula(normalize_formula(formula))
    except FormulaicError as err:
        raise ValueError(f"Cannot parse the design formula {formula!r}: {err}") from None
    names = set(spec.required_variables)
    if columns is not None:
        cols = set(map(str, columns))
        for term in spec:
            for factor in term.factors:
                try:
                    tree = ast.parse(str(factor.expr).strip("`"), mode="eval")
                except SyntaxError:
                    continue
                names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in cols}
                if str(factor.expr).strip("`") in cols:
                    names.add(str(factor.expr).strip("`"))
    return sorted(names)


def prepare_obs(obs: pd.DataFrame, variables: list[str], reference: dict[str, str] | None = None) -> pd.DataFrame:
    """The design variables as a frame: strings/booleans become categoricals (sorted levels),
    categoricals keep their level order, ``reference`` moves a level to the front.
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
        elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            vals = col.astype(str)
            col = pd.Categorical(vals, categories=sorted(vals.unique()))
        else:
            col = col.astype(float)
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
    rhs = normalize_formula(formula)
    variables = design_variables(rhs, obs.columns)
    data = prepare_obs(obs, variables, reference)
    try:
        mm = model_matrix(rhs, data, na_action="raise")
    except FormulaicError as err:
        raise ValueError(f"Cannot build the design {formula!r}: {err}") from None
    columns = [_rename(c) for c in mm.columns]
    matrix = np.ascontiguousarray(np.asarray(mm, dtype=np.float64))
    factors = {v: list(data[v].cat.categories) for v in variables if isinstance(data[v].dtype, pd.CategoricalDtype)}
    numeric = [v for v in variables if v not in factors]
    design = Design(formula=formula, matrix=matrix, columns=columns, factors=factors, numeric=numeric)
    check_rank(design)
    return design


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
