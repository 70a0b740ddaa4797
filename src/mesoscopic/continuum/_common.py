"""Symbolic input for continuum models: operators, ``sympify``, ``lambdify``, monomials.

The rules follow Kwant's ``kwant.continuum``: position operators ``x, y, z`` and
momentum operators ``k_x, k_y, k_z`` are non-commuting SymPy symbols, every other
single letter or Greek name is an ordinary (commuting) symbol, ``sigma_0`` ...
``sigma_z`` are the Pauli matrices, ``kron`` is the Kronecker (tensor) product,
``eye``/``identity`` the identity matrix, and Python list literals become matrices.
"""

from __future__ import annotations

import ast
import keyword
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import sympy
import sympy.abc
from sympy.core.function import AppliedUndef
from sympy.matrices import MatrixBase
from sympy.physics.matrices import msigma
from sympy.physics.quantum import TensorProduct

__all__ = [
    "lambdify",
    "make_commutative",
    "momentum_operators",
    "monomials",
    "pauli",
    "position_operators",
    "sigma_0",
    "sigma_x",
    "sigma_y",
    "sigma_z",
    "sympify",
]

#: The momentum operators ``(k_x, k_y, k_z)``: non-commutative SymPy symbols.
momentum_operators: tuple[sympy.Symbol, ...] = tuple(
    sympy.symbols("k_x k_y k_z", commutative=False)
)
#: The position operators ``(x, y, z)``: non-commutative SymPy symbols.
position_operators: tuple[sympy.Symbol, ...] = tuple(sympy.symbols("x y z", commutative=False))

#: The identity and Pauli matrices as SymPy matrices.
sigma_0 = sympy.ImmutableMatrix(sympy.eye(2))
sigma_x = sympy.ImmutableMatrix(msigma(1))
sigma_y = sympy.ImmutableMatrix(msigma(2))
sigma_z = sympy.ImmutableMatrix(msigma(3))
pauli = (sigma_0, sigma_x, sigma_y, sigma_z)


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this subpackage (the user's call)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "mesoscopic.continuum"
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _default_namespace() -> dict[str, Any]:
    # Names SymPy would otherwise read as its own objects (S, N, Q, beta, gamma, ...)
    # are plain symbols in a Hamiltonian; the imaginary unit and pi keep their meaning.
    names: dict[str, Any] = {
        name: value for name, value in sympy.abc._clash.items() if name not in ("I", "pi")
    }
    names.update({s.name: s for s in momentum_operators})
    names.update({s.name: s for s in position_operators})
    names.update({"kron": TensorProduct, "eye": sympy.eye, "identity": sympy.eye})
    names.update({"sigma_0": sigma_0, "sigma_x": sigma_x, "sigma_y": sigma_y, "sigma_z": sigma_z})
    names["Matrix"] = sympy.Matrix
    return names


class _ListsToMatrices(ast.NodeTransformer):
    """Wrap every outermost list display of an expression in ``Matrix(...)``."""

    def visit_List(self, node: ast.List) -> ast.AST:
        return ast.Call(func=ast.Name(id="Matrix", ctx=ast.Load()), args=[node], keywords=[])


def _lists_as_matrices(source: str) -> str:
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return source  # let SymPy report the error on the user's text
    return ast.unparse(ast.fix_missing_locations(_ListsToMatrices().visit(tree)))


def _functions_as_parameters(expr: Any) -> Any:
    """Turn named functions (``sin``, ``exp``, ...) into undefined functions.

    Every function of a Hamiltonian is supplied by the user at evaluation time
    (``params={"sin": np.sin}``), so SymPy's own definitions must not evaluate them.
    """
    replacements = {
        f: sympy.Function(str(f.func))(*f.args)
        for f in expr.atoms(sympy.Function)
        if not isinstance(f, AppliedUndef)
    }
    return expr.xreplace(replacements) if replacements else expr


def _check_locals(locals: Mapping[Any, Any]) -> None:
    for key in locals:
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise ValueError(
                f"invalid key in 'locals': {key!r}; keys must be Python identifiers "
                "that are not keywords (e.g. 'V' or 'sigma_plus')"
            )


def sympify(expr: Any, locals: Mapping[str, Any] | None = None) -> Any:
    """Convert a Hamiltonian to a SymPy expression or matrix.

    Strings are parsed with the continuum rules: ``x, y, z`` and ``k_x, k_y, k_z``
    do not commute, single letters and Greek names are symbols, ``sigma_0``,
    ``sigma_x``, ``sigma_y``, ``sigma_z`` are the Pauli matrices, ``kron`` the
    Kronecker product, ``eye``/``identity`` the identity, and list literals are
    matrices. A SymPy object is returned as it is (``locals`` then has no effect and
    a ``RuntimeWarning`` says so), except that named functions such as ``sin``
    become undefined functions whose values are passed as parameters later.

    Uses ``eval`` through :func:`sympy.sympify`: never call it on untrusted text.

    Parameters
    ----------
    expr : str, number, list, numpy.ndarray or SymPy object
        The Hamiltonian.
    locals : dict, optional
        Extra names for the parse: ``{"V": "V_0 + V(x)"}``. Keys must be Python
        identifiers; string values are themselves parsed with these rules, arrays
        become matrices, SymPy values are used as they are.

    Returns
    -------
    sympy.Expr or sympy.Matrix

    Examples
    --------
    >>> sympify("k_x * A(x) * k_x + V", locals={"V": "V_0 + V(x)"})
    V_0 + k_x*A(x)*k_x + V(x)
    >>> sympify("k_x * sigma_z")
    Matrix([
    [k_x,    0],
    [  0, -k_x]])
    """
    if isinstance(expr, (sympy.Basic, MatrixBase)):
        if locals:
            warnings.warn(
                "the Hamiltonian is already a SymPy object: 'locals' is not used",
                RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )
        if isinstance(expr, MatrixBase) and not isinstance(expr, sympy.Basic):
            return expr.applyfunc(_functions_as_parameters)
        return _functions_as_parameters(expr)

    if isinstance(expr, np.ndarray):
        return sympy.Matrix(expr)

    namespace: dict[str, Any] = {}
    if locals is not None:
        if not isinstance(locals, Mapping):
            raise TypeError(f"'locals' must be a dict of names, got {type(locals).__name__}")
        _check_locals(locals)
        for key, value in locals.items():
            if isinstance(value, np.ndarray):
                namespace[key] = sympy.Matrix(value)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    namespace[key] = sympify(value)
    for key, value in _default_namespace().items():
        namespace.setdefault(key, value)

    if isinstance(expr, str):
        expr = _lists_as_matrices(expr)
    elif isinstance(expr, (list, tuple)):
        return sympy.Matrix(_sympify_nested(expr, locals))
    try:
        result = sympy.sympify(expr, locals=namespace)
    except TypeError as error:
        raise TypeError(
            f"could not read the Hamiltonian {expr!r}: {error}. Scalars and matrices do not "
            "add; multiply scalar terms by the identity (sigma_0 or eye(n))"
        ) from error
    if isinstance(result, (list, tuple)):
        result = sympy.Matrix(result)
    return result


def _sympify_nested(rows: Any, locals: Mapping[str, Any] | None) -> Any:
    if isinstance(rows, (list, tuple)):
        return [_sympify_nested(row, locals) for row in rows]
    return sympify(rows, locals)


def lambdify(expr: Any, locals: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """Return a Python function that evaluates a continuum expression.

    The expression is first passed through :func:`sympify`. The function's
    arguments are the expression's symbols and function names, in alphabetical
    order, so it can be called by position or by name.

    Parameters
    ----------
    expr : str or SymPy object
    locals : dict, optional
        Extra names for :func:`sympify`.

    Returns
    -------
    callable

    Examples
    --------
    >>> f = lambdify("a + b", locals={"b": "b + c"})
    >>> f(1, 3, 5)
    9
    >>> lambdify("f(x) * y")(f=lambda v: 2 * v, x=3, y=4)
    24
    """
    if isinstance(expr, (sympy.Basic, MatrixBase)) and locals:
        warnings.warn(
            "the expression is already a SymPy object: 'locals' is not used",
            RuntimeWarning,
            stacklevel=_user_stacklevel(),
        )
        locals = None
    expr = sympify(expr, locals)
    names = {s.name for s in expr.atoms(sympy.Symbol)}
    names |= {str(f.func) for f in expr.atoms(AppliedUndef)}
    return sympy.lambdify(sorted(names), expr)


def make_commutative(expr: Any, *symbols: Any) -> Any:
    """Return ``expr`` with the given symbols replaced by commuting symbols of the same name.

    Parameters
    ----------
    expr : sympy.Expr or sympy.Matrix
    *symbols : sympy.Symbol
        Commuting or not; only their names matter.

    Examples
    --------
    >>> x = position_operators[0]
    >>> make_commutative(x * sympy.Symbol("A", commutative=False) * x, x)
    x**2*A
    """
    replacements = {}
    for symbol in symbols:
        name = symbol.name if isinstance(symbol, sympy.Symbol) else str(symbol)
        replacements[sympy.Symbol(name, commutative=False)] = sympy.Symbol(name)
    return expr.subs(replacements)


def _generators(expr: Any, gens: Any) -> set[Any]:
    if gens is None:
        return set(expr.atoms(sympy.Symbol))
    if isinstance(gens, str):
        gens = list(gens) if all(c.isalpha() for c in gens) and len(gens) > 1 else [gens]
    return {sympify(g) for g in gens}


def _expression_monomials(expr: Any, gens: set[Any]) -> dict[Any, Any]:
    result: dict[Any, Any] = defaultdict(lambda: sympy.Integer(0))
    for term in sympy.Add.make_args(sympy.expand(expr)):
        key: list[Any] = []
        coefficient: list[Any] = []
        for factor in term.as_ordered_factors():
            base, _ = factor.as_base_exp()
            (key if base in gens else coefficient).append(factor)
        result[sympy.Mul(*key)] += sympy.Mul(*coefficient)
    return dict(result)


def monomials(expr: Any, gens: Iterable[Any] | str | None = None) -> dict[Any, Any]:
    """Split an expression into monomials of the generators ``gens``.

    Parameters
    ----------
    expr : sympy.Expr or sympy.Matrix
    gens : sequence of symbols or names, optional
        The generators; all symbols of ``expr`` when omitted. A string of single
        letters (``"xy"``) names one generator per letter.

    Returns
    -------
    dict
        ``{monomial: coefficient}``; for a matrix the coefficients are matrices.

    Examples
    --------
    >>> terms = monomials(sympify("A * (x**2 + y) + B * x + C"), gens="xy")
    >>> terms[sympify("x**2")], terms[sympify("x")], terms[1]
    (A, B, C)
    """
    generators = _generators(expr, gens)
    if not isinstance(expr, MatrixBase):
        return _expression_monomials(expr, generators)
    result: dict[Any, Any] = {}
    rows, cols = expr.shape
    for i in range(rows):
        for j in range(cols):
            for key, value in _expression_monomials(expr[i, j], generators).items():
                if key not in result:
                    result[key] = sympy.zeros(rows, cols)
                result[key][i, j] += value
    return result
