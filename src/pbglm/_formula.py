"""The one gate every design formula passes before formulaic sees it.

formulaic evaluates the Python parts of a formula (``I(...)``, ``log(...)``, any call) with
``eval``, so a formula is code. :func:`parse_formula` walks formulaic's parse tree (which does
not evaluate anything) and allows only:

* ``.obs`` column names, bare or quoted (```my cond```, ``Q('my cond')``);
* the numbers 0 and 1 and the formula operators ``+ - : * / ** ^`` (a power of terms up to
  :data:`MAX_TERM_POWER`);
* the transforms in :data:`TRANSFORMS` called by name, over arithmetic of columns and numbers
  (``I(dose / 1000)``, ``log2(age)``, ``poly(age, degree=2)``, ``C(batch)``).

Anything else (attribute access, other functions, subscripts, strings outside ``Q``) raises a
:class:`DesignFormulaError` naming the offending part. :func:`model_matrix` is the only place
pbglm calls formulaic's ``model_matrix``; it runs the gate first and evaluates with a fixed
context (never the caller's variables).

``C(column)`` makes a column a factor (e.g. a numeric batch number) with treatment coding and
the level order pbglm uses everywhere; the design column names are those of the plain column
(``batch[2]``). ``Q('name')`` and ```name``` are the same column.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

import numpy as np

TRANSFORMS = ("C", "Q", "I", "log", "log2", "log10", "log1p", "exp", "center", "scale", "standardize", "poly")
"""Functions a formula may call."""

MAX_TERM_POWER = 4
"""Largest ``(a + b + ...) ** n`` allowed (formulaic's expansion is exponential in ``n``)."""

_MAX_EXPONENT = 100
_MAX_POLY_DEGREE = 10
_OPERATORS = {"+", "-", ":", "*", "/", "**", "^"}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MARKED = re.compile(r"⧛(.*?)⧚")
_PLAIN = {
    "Could not find matching context marker": "unbalanced parenthesis or quote",
    "insuffient": "insufficient",
}
_CONTEXT = {"log1p": np.log1p}
_ALLOWED_TEXT = (
    "A design formula may use .obs column names (quote names with spaces or symbols as `my col` or Q('my col')), "
    "the numbers 0 and 1, the operators + - : * / and ** (up to 4), and the functions "
    + ", ".join(TRANSFORMS)
    + " over arithmetic of columns and numbers; compute anything else as a column of .obs first."
)


class DesignFormulaError(KeyError, ValueError):
    """A formula that cannot be read against ``.obs`` (syntax error, unknown column, bad reference,
    a part pbglm does not evaluate).

    Subclasses both ``KeyError`` and ``ValueError`` so that code catching either keeps working;
    its message is a single line.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ParsedFormula:
    """A checked formula.

    Attributes
    ----------
    formula
        As given.
    rhs
        What formulaic evaluates: ``"~ ..."`` with ``C(col)`` and ``Q('col')`` written as the
        (quoted) column itself.
    variables
        The ``.obs`` columns it reads, in order of appearance.
    factors
        Columns wrapped in ``C()``: factors even when numeric.
    """

    formula: str
    rhs: str
    variables: tuple[str, ...]
    factors: tuple[str, ...]


def one_line(text) -> str:
    """An error text as one plain line (no ANSI colour codes, formulaic's markers explained)."""
    text = _ANSI.sub("", str(text))
    marked = _MARKED.search(text)
    first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else "invalid formula"
    first = first.rstrip(".")
    for raw, plain in _PLAIN.items():
        first = first.replace(raw, plain)
    if marked:
        first += f" (at {marked.group(1)!r})"
    return first


def normalize_formula(formula: str) -> str:
    """Accept ``"~ a + b"`` or ``"a + b"``; return the right-hand side with a leading ``~``."""
    if not isinstance(formula, str) or not formula.strip():
        raise DesignFormulaError(
            f"The design must be a formula string such as '~ batch + condition', got {formula!r}."
        )
    f = formula.strip()
    if "~" in f:
        lhs, rhs = f.split("~", 1)
        if lhs.strip():
            raise DesignFormulaError(f"The design formula {formula!r} has a left-hand side; write only '~ terms'.")
        f = rhs
    return "~ " + f.strip()


def _quote(name: str) -> str:
    if "`" in name:
        raise DesignFormulaError(f"Column name {name!r} contains a backtick; rename the .obs column.")
    return name if name.isidentifier() else f"`{name}`"


class _Walker:
    """Checks one formula; collects the columns it reads."""

    def __init__(self, formula: str):
        self.formula = formula
        self.variables: list[str] = []
        self.factors: list[str] = []
        self.edits: list[tuple[int, int, str]] = []

    def refuse(self, part: str, why: str) -> DesignFormulaError:
        return DesignFormulaError(f"The design {self.formula!r} uses {part!r}, {why}. {_ALLOWED_TEXT}")

    def add(self, name: str) -> None:
        if name not in self.variables:
            self.variables.append(name)

    # formulaic's tree ------------------------------------------------------------------------
    def term(self, node) -> None:
        """Check a node of formulaic's parse tree; note the edits that resolve C() and Q()."""
        from formulaic.parser.types import ASTNode, Token

        if isinstance(node, ASTNode):
            op = node.operator.symbol
            if op not in _OPERATORS:
                raise self.refuse(op, "an operator pbglm does not support")
            args = list(node.args)
            if op in ("**", "^"):
                power = args[1]
                if not (isinstance(power, Token) and power.kind.value == "value" and str(power).isdigit()
                        and 1 <= int(str(power)) <= MAX_TERM_POWER):
                    raise self.refuse(f"{op}{power}", f"a power of terms that must be a whole number 1 to "
                                                      f"{MAX_TERM_POWER}")
                args = args[:1]
            for a in args:
                self.term(a)
            return
        if isinstance(node, Token):
            kind = node.kind.value
            text = str(node)
            if kind == "value":
                if text in ("0", "1"):
                    return
                raise self.refuse(text, "a literal other than 0 or 1")
            if kind == "name":
                self.add(text)
                return
            if kind == "python":
                new = self.python(text)
                if new is not None:
                    if node.source is None or node.source_start is None:  # pragma: no cover (formulaic internals)
                        raise self.refuse(text, "a part pbglm cannot locate in the formula")
                    end = node.source_end + 1
                    if node.source[node.source_start] == "{" or node.source[end - 1 : end] == "}":
                        new = "{" + new + "}" if not new.startswith("`") and not new.isidentifier() else new
                    self.edits.append((node.source_start, end, new))
                return
            raise self.refuse(text, "a part formulaic would not read as a column or function")
        raise self.refuse(str(node), "a part pbglm cannot read")  # pragma: no cover

    # Python parts ------------------------------------------------------------------------------
    def python(self, text: str) -> str | None:
        """Check a Python part; return its replacement text, or None to keep it as written."""
        text = re.sub(r"`([^`]*)`", lambda m: f"Q({m.group(1)!r})", text.strip())
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            raise DesignFormulaError(
                f"Cannot parse the design formula {self.formula!r}: {text!r} is not valid. {_ALLOWED_TEXT}"
            ) from None
        body = tree.body
        if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id in ("C", "Q"):
            name = self.column_argument(body, body.func.id)
            if body.func.id == "C" and name not in self.factors:
                self.factors.append(name)
            return _quote(name)
        self.expr(body)
        before = ast.unparse(tree)
        after = ast.unparse(_Rewrite().visit(tree))
        return None if after == before and "`" not in text else after

    def column_argument(self, call: ast.Call, fn: str) -> str:
        if call.keywords or len(call.args) != 1:
            hint = (" Set the level order with reference= or a categorical .obs column; pbglm codes every factor "
                    "against its reference level.") if fn == "C" else ""
            raise self.refuse(ast.unparse(call), f"but {fn}() takes exactly one column.{hint}".rstrip("."))
        arg = call.args[0]
        if isinstance(arg, ast.Name):
            name = arg.id
        elif (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "Q") or (
                isinstance(arg, ast.Constant) and fn == "Q"):
            name = self.column_argument(arg, "Q") if isinstance(arg, ast.Call) else arg.value
        else:
            raise self.refuse(ast.unparse(call), f"but {fn}() takes one column name")
        if not isinstance(name, str):
            raise self.refuse(ast.unparse(call), f"but {fn}() takes one column name")
        self.add(name)
        return name

    def expr(self, node) -> bool:
        """Check a Python expression; return whether it reads a column."""
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise self.refuse(node.id, "a name pbglm does not evaluate")
            self.add(node.id)
            return True
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.refuse(ast.unparse(node), "a constant other than a number")
            return False
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return self.expr(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC):
            if isinstance(node.op, ast.Pow):
                exp = node.right.operand if isinstance(node.right, ast.UnaryOp) else node.right
                if not (isinstance(exp, ast.Constant) and isinstance(exp.value, int | float)
                        and not isinstance(exp.value, bool) and abs(exp.value) <= _MAX_EXPONENT):
                    raise self.refuse(ast.unparse(node), f"but an exponent must be a number up to {_MAX_EXPONENT}")
                if not self.expr(node.left):
                    raise self.refuse(ast.unparse(node), "but a power must be of a column")
                return True
            return self.expr(node.left) | self.expr(node.right)
        if isinstance(node, ast.Compare) and all(isinstance(o, _COMPARE) for o in node.ops):
            return any([self.expr(node.left)] + [self.expr(c) for c in node.comparators])
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise self.refuse(ast.unparse(node.func), "a call pbglm does not evaluate")
            fn = node.func.id
            if fn == "Q":
                self.column_argument(node, "Q")
                return True
            if fn == "C":
                raise self.refuse(ast.unparse(node), "but C() must stand alone as a term")
            if fn not in TRANSFORMS:
                raise DesignFormulaError(
                    f"{fn!r} in the design {self.formula!r} is neither a function pbglm allows in formulas "
                    f"({', '.join(TRANSFORMS)}) nor a column of .obs: compute the column in .obs first."
                )
            for kw in node.keywords:
                if kw.arg is None or kw.arg.startswith("_"):
                    raise self.refuse(ast.unparse(node), "a keyword argument pbglm does not pass on")
                self.expr(kw.value)
            if fn == "poly":
                degree = [kw.value for kw in node.keywords if kw.arg == "degree"] + node.args[1:2]
                for d in degree:
                    if not (isinstance(d, ast.Constant) and isinstance(d.value, int)
                            and 1 <= d.value <= _MAX_POLY_DEGREE):
                        raise self.refuse(ast.unparse(node), f"but poly()'s degree must be 1 to {_MAX_POLY_DEGREE}")
            reads = [self.expr(a) for a in node.args]
            return any(reads)
        raise self.refuse(ast.unparse(node), "an expression pbglm does not evaluate")


class _Rewrite(ast.NodeTransformer):
    """``Q('my col')`` -> a backtick name (formulaic reads both; the design column names then
    show the column itself)."""

    def visit_Call(self, node):  # noqa: N802 (ast API)
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "Q" and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.isidentifier():
                return ast.Name(id=arg.value, ctx=ast.Load())
        return node


def _suggest(name: str, columns) -> str:
    columns = [str(c) for c in columns]
    same_case = [c for c in columns if c.lower() == name.lower()]
    close = same_case or difflib.get_close_matches(name, columns, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _and(items) -> str:
    items = [str(i) for i in items]
    return "".join(items) if len(items) <= 1 else ", ".join(items[:-1]) + " and " + items[-1]


def parse_formula(formula: str, columns=None) -> ParsedFormula:
    """Check a design formula and say which ``.obs`` columns it reads.

    Parameters
    ----------
    formula
        ``"~ terms"`` or ``"terms"``.
    columns
        The ``.obs`` columns; when given, a name that is not one of them is an error.

    Raises
    ------
    DesignFormulaError
        The formula does not parse, uses something outside the allowed grammar (see the module
        docstring), or (with ``columns``) names a column that does not exist.
    """
    from formulaic.parser import DefaultFormulaParser

    rhs = normalize_formula(formula)
    try:
        tree = DefaultFormulaParser(include_intercept=False).get_ast(rhs[1:].strip() or "1")
    except Exception as err:  # formulaic raises several types for syntax errors
        raise DesignFormulaError(f"Cannot parse the design formula {formula!r}: {one_line(err)}.") from None
    body = rhs[1:].strip() or "1"
    walker = _Walker(formula)
    if tree is not None:
        walker.term(tree)
    for start, end, new in sorted(walker.edits, reverse=True):
        body = body[:start] + new + body[end:]
    if columns is not None:
        columns = [str(c) for c in columns]
        unknown = [v for v in walker.variables if v not in columns]
        if unknown:
            described = _and([f"{n!r}{_suggest(n, columns)}" for n in unknown])
            which = "which is not a column" if len(unknown) == 1 else "which are not columns"
            raise DesignFormulaError(
                f"The design {formula!r} uses {described}, {which} of .obs. "
                f"Available columns: {', '.join(repr(c) for c in columns)}."
            )
    return ParsedFormula(formula=formula, rhs="~ " + body, variables=tuple(walker.variables),
                         factors=tuple(walker.factors))


def model_matrix(formula: str | ParsedFormula, data):
    """formulaic's model matrix of a checked formula over ``data`` (the only call into formulaic's
    evaluation in pbglm).

    Raises
    ------
    DesignFormulaError
        As :func:`parse_formula`, or formulaic cannot build the matrix (one plain line).
    """
    from formulaic import model_matrix as _model_matrix

    parsed = formula if isinstance(formula, ParsedFormula) else parse_formula(formula, data.columns)
    parse_formula(parsed.rhs, data.columns)  # the rewritten text passes the same gate
    try:
        return _model_matrix(parsed.rhs, data, na_action="raise", context=dict(_CONTEXT))
    except Exception as err:  # formulaic and the transforms raise many types
        raise DesignFormulaError(f"Cannot build the design {parsed.formula!r}: {one_line(err)}.") from None
