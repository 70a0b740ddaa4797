"""Finite-difference discretization of continuum (k.p) Hamiltonians on a square grid.

A momentum ``k_c`` acts on the wave function as the symmetric difference
``-i [psi(c + a) - psi(c - a)] / (2 a)``, applied from right to left through every
product, so ``k_x A(x) k_x`` becomes hoppings with ``A`` evaluated at the mid-bond
``x + a/2`` (a Hermitian, current-conserving form). Each product's offsets are then
divided by their greatest common divisor per coordinate (``psi(x + 2a)`` with step
``a`` is the nearest neighbour of a grid with spacing ``2a``), which makes ``k_x**2``
the usual three-point Laplacian ``(2 psi(x) - psi(x + a) - psi(x - a)) / a**2``.
"""

from __future__ import annotations

import keyword
import math
import numbers
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy
from sympy.core.function import AppliedUndef
from sympy.matrices import MatrixBase
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from ..builder import Builder, HoppingKind, TranslationalSymmetry
from ..lattice import Monatomic
from ._common import _user_stacklevel, momentum_operators, position_operators, sympify

__all__ = ["build_discretized", "discretize", "discretize_symbolic"]

# The wave function the operators act on; its arguments carry the offsets.
_wf = sympy.Function("_discretized_wave_function", commutative=False)
_momenta = {s.name: s for s in momentum_operators}
_positions = {s.name: s for s in position_operators}
_displacements = {c: sympy.Symbol(f"a_{c}") for c in "xyz"}
_RESERVED_NAMES = frozenset({"site", "site1", "site2"})


class _DiscretizedBuilder(Builder):
    """A template Builder from :func:`build_discretized`; ``str()`` shows its value functions."""

    def __init__(
        self, coords: Sequence[str], lattice: Monatomic, symmetry: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(symmetry, **kwargs)
        self.lattice = lattice
        self._coords = list(coords)

    def __str__(self) -> str:
        sites = list(self.site_value_pairs())
        if len(sites) != 1 or any(t != 0 for t in sites[0][0].tag):
            raise ValueError(
                "only a template with a single site at the origin can be printed, "
                f"this one has {len(sites)} sites"
            )
        parts = [f"# Discrete coordinates: {' '.join(self._coords)}"]
        for _site, value in sites:
            parts.append("# Onsite element:\n" + _value_source(value))
        for (_, b), value in self.hopping_value_pairs():
            parts.append(
                f"# Hopping from {tuple(int(t) for t in b.tag)}:\n" + _value_source(value)
            )
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self) + "</pre>"


def _value_source(value: Any) -> str:
    return getattr(value, "_source", None) or repr(value)


# ---------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------


def discretize(
    hamiltonian: Any,
    coords: Sequence[str] | None = None,
    *,
    grid: Any = None,
    locals: Mapping[str, Any] | None = None,
    grid_spacing: float | None = None,
) -> Builder:
    """Turn a continuum Hamiltonian into a tight-binding template Builder.

    Equivalent to :func:`discretize_symbolic` followed by :func:`build_discretized`.
    The template has the translational symmetry of the grid; fill a system with it
    by ``syst.fill(template, shape, start)`` or a lead by ``lead.fill(...)``.

    Uses ``eval`` through :func:`sympy.sympify`: never call it on untrusted text.

    Parameters
    ----------
    hamiltonian : str or SymPy object
        The continuum Hamiltonian, e.g. ``"k_x**2 + k_y**2 + V(x, y)"`` (energy units
        of hbar^2 / (2 m) per length unit squared when written like this).
    coords : sequence of {"x", "y", "z"}, optional
        Sorted coordinates to discretize; by default those whose momenta appear.
    grid : float or Monatomic, optional
        Grid spacing (length units, default 1) or an orthogonal lattice with one
        primitive vector per coordinate.
    locals : dict, optional
        Extra names for :func:`~mesoscopic.continuum.sympify`.
    grid_spacing : float, optional
        Deprecated spelling of a scalar ``grid``.

    Returns
    -------
    Builder
        With the grid lattice in its ``lattice`` attribute; ``str(template)`` shows the
        generated value functions. Symbols other than the coordinates become
        parameters (``params={"V": ...}``), coordinates are read from ``site.pos``.

    Examples
    --------
    >>> template = discretize("k_x**2 + V(x)", grid=0.5)
    >>> template.lattice.prim_vecs.tolist()
    [[0.5]]
    """
    tb, coords = discretize_symbolic(hamiltonian, coords, locals=locals)
    return build_discretized(tb, coords, grid=grid, grid_spacing=grid_spacing)


def _check_coords(coords: Any) -> list[str]:
    if isinstance(coords, str):
        coords = list(coords)
    try:
        coords = list(coords)
    except TypeError:
        raise TypeError(f"'coords' must be a sequence of 'x', 'y', 'z', got {coords!r}") from None
    if any(not isinstance(c, str) or c not in ("x", "y", "z") for c in coords):
        raise ValueError(f"'coords' may contain only 'x', 'y' and 'z', got {coords!r}")
    if coords != sorted(coords) or len(set(coords)) != len(coords):
        raise ValueError(
            f"'coords' must be sorted and without repeats (e.g. ['x', 'y']), got {coords!r}"
        )
    return coords


def discretize_symbolic(
    hamiltonian: Any,
    coords: Sequence[str] | None = None,
    *,
    locals: Mapping[str, Any] | None = None,
) -> tuple[dict[tuple[int, ...], Any], list[str]]:
    """Discretize a continuum Hamiltonian symbolically.

    Parameters
    ----------
    hamiltonian : str or SymPy object
        See :func:`discretize`.
    coords : sequence of {"x", "y", "z"}, optional
        Sorted coordinates to discretize; by default those whose momenta appear.
    locals : dict, optional
        Extra names for :func:`~mesoscopic.continuum.sympify`.

    Returns
    -------
    tb_hamiltonian : dict
        ``{offset: expression}``: ``offset`` is a tuple of integers (one per
        coordinate; all zeros for the onsite term) and the expression is the matrix
        element ``<r|H|r + offset * a>`` with the grid spacings as symbols ``a_x``,
        ``a_y``, ``a_z``. Only offsets that are zero or lexicographically positive
        are given; the others are their Hermitian conjugates.
    coords : list of str
        The discretized coordinates.

    Examples
    --------
    >>> tb, coords = discretize_symbolic("k_x**2")
    >>> tb, coords
    ({(0,): 2/a_x**2, (1,): -1/a_x**2}, ['x'])
    """
    hamiltonian = sympify(hamiltonian, locals)
    if not isinstance(hamiltonian, (sympy.Basic, MatrixBase)):
        hamiltonian = sympy.sympify(hamiltonian)
    names = {s.name for s in hamiltonian.atoms(sympy.Symbol)}
    reserved = names & {s.name for s in _displacements.values()}
    if reserved:
        raise TypeError(
            f"the symbols {sorted(reserved)} stand for the grid spacings; "
            "please name the Hamiltonian's symbols differently"
        )
    if coords is None:
        coords = sorted(name[-1] for name in names & set(_momenta))
    else:
        coords = _check_coords(coords)
    if not coords:
        raise ValueError(
            "found no coordinates to discretize: the Hamiltonian has no momentum "
            "operators k_x, k_y, k_z; name the coordinates with 'coords' (e.g. 'x')"
        )

    is_matrix = isinstance(hamiltonian, MatrixBase)
    matrix = hamiltonian if is_matrix else sympy.Matrix([[hamiltonian]])
    rows, cols = matrix.shape
    onsite_key = (0,) * len(coords)
    tb: dict[tuple[int, ...], Any] = {onsite_key: sympy.zeros(rows, cols)}
    for i in range(rows):
        for j in range(cols):
            for offset, value in _discretize_expression(
                sympy.expand(matrix[i, j]), coords
            ).items():
                if offset not in tb:
                    tb[offset] = sympy.zeros(rows, cols)
                tb[offset][i, j] += value

    # Offsets below zero are the Hermitian conjugates of those above.
    kept = {key: value for key, value in sorted(tb.items()) if key >= onsite_key}
    if not is_matrix:
        kept = {key: value[0, 0] for key, value in kept.items()}
    return kept, coords


def _discretize_expression(expression: Any, coords: list[str]) -> dict[tuple[int, ...], Any]:
    """``{offset: coefficient}`` of one (scalar) expression acting on the wave function."""
    discrete_momenta = {f"k_{c}": c for c in coords}
    result: dict[tuple[int, ...], Any] = defaultdict(lambda: sympy.Integer(0))
    wave_function = _wf(*(_positions[c] for c in coords))
    for term in sympy.Add.make_args(expression):
        acted = wave_function
        for factor in reversed(term.as_ordered_factors()):
            base, exponent = factor.as_base_exp()
            if isinstance(base, sympy.Symbol) and base.name in discrete_momenta:
                if not (exponent.is_Integer and exponent > 0):
                    raise ValueError(
                        f"momentum {base} appears with exponent {exponent}; only positive "
                        "integer powers of momenta can be discretized"
                    )
                for _ in range(int(exponent)):
                    acted = _momentum_acting(acted, discrete_momenta[base.name])
            else:
                acted = factor * acted
        for offset, value in _shortened_offsets(acted, coords).items():
            result[offset] += value
    return dict(result)


def _momentum_acting(expr: Any, coordinate: str) -> Any:
    """``-i d/dc`` as the symmetric difference with step ``a_c``."""
    c = _positions[coordinate]
    a = _displacements[coordinate]
    return -sympy.I * (expr.subs(c, c + a) - expr.subs(c, c - a)) / (2 * a)


def _shortened_offsets(expr: Any, coords: list[str]) -> dict[tuple[int, ...], Any]:
    """Read ``coefficient * psi(r + n a)`` terms; shrink the steps by their common divisor."""
    offsets, coefficients = [], []
    for term in sympy.Add.make_args(sympy.expand(expr)):
        if term == 0:
            continue
        factors = term.as_ordered_factors()
        waves = [f for f in factors if isinstance(f, AppliedUndef) and f.func == _wf]
        if len(waves) != 1:
            raise AssertionError(f"unexpected term in discretization: {term}")
        wave = waves[0]
        offset = []
        for c, argument in zip(coords, wave.args):
            n = sympy.expand((argument - _positions[c]) / _displacements[c])
            if not n.is_Integer:
                raise AssertionError(f"non-integer offset {n} in {wave}")
            offset.append(int(n))
        offsets.append(offset)
        coefficients.append(sympy.Mul(*[f for f in factors if f is not wave]))
    if not offsets:
        return {}
    table = np.array(offsets, dtype=int).reshape(len(offsets), len(coords))
    rescale = {}
    for i, c in enumerate(coords):
        divisor = math.gcd(*(int(v) for v in table[:, i]))
        if divisor > 1:
            table[:, i] //= divisor
            rescale[_displacements[c]] = _displacements[c] / divisor
    result: dict[tuple[int, ...], Any] = defaultdict(lambda: sympy.Integer(0))
    for row, coefficient in zip(table, coefficients):
        result[tuple(int(v) for v in row)] += coefficient.subs(rescale)
    return dict(result)


def build_discretized(
    tb_hamiltonian: Mapping[tuple[int, ...], Any],
    coords: Sequence[str],
    *,
    grid: Any = None,
    locals: Mapping[str, Any] | None = None,
    grid_spacing: float | None = None,
) -> Builder:
    """Make a template Builder from a symbolic tight-binding Hamiltonian.

    Parameters
    ----------
    tb_hamiltonian : dict
        ``{offset: expression}`` as returned by :func:`discretize_symbolic`; the
        expressions may also be strings for :func:`~mesoscopic.continuum.sympify`.
    coords : sequence of {"x", "y", "z"}
        The discretized coordinates, sorted, one per offset component.
    grid : float or Monatomic, optional
        Grid spacing (default 1) or an orthogonal lattice with one primitive vector
        per coordinate and, if set, ``norbs`` equal to the Hamiltonian's size.
    locals : dict, optional
        Extra names for :func:`~mesoscopic.continuum.sympify`.
    grid_spacing : float, optional
        Deprecated spelling of a scalar ``grid``.

    Returns
    -------
    Builder
        A template with the grid's translational symmetry, one site and a hopping
        per offset; its ``lattice`` attribute is the grid.

    Examples
    --------
    >>> template = build_discretized({(0,): "2 * t", (1,): "-t"}, "x")
    >>> lat = template.lattice
    >>> template[lat(0)](lat(0), t=1.5)
    3.0
    """
    if grid_spacing is not None:
        warnings.warn(
            "'grid_spacing' is deprecated; pass the spacing as 'grid'",
            DeprecationWarning,
            stacklevel=_user_stacklevel(),
        )
        if grid is not None:
            raise ValueError("give either 'grid' or 'grid_spacing', not both")
        grid = grid_spacing
    if grid is None:
        grid = 1
    if len(coords) == 0:
        raise ValueError("'coords' is empty: name at least one coordinate to discretize")
    coords = _check_coords(coords)
    dim = len(coords)

    values = {}
    for offset, value in tb_hamiltonian.items():
        key = tuple(int(v) for v in offset)
        if len(key) != dim:
            raise ValueError(
                f"offset {offset!r} has {len(key)} components, expected {dim} (one per "
                f"coordinate of {coords})"
            )
        values[key] = sympify(value, locals)
    if not values:
        raise ValueError("the tight-binding Hamiltonian is empty")
    shapes = {v.shape if isinstance(v, MatrixBase) else (1, 1) for v in values.values()}
    if len(shapes) != 1 or any(r != c for r, c in shapes):
        raise ValueError(
            f"all values must be square matrices of one size, or all scalars; got shapes "
            f"{sorted(shapes)}"
        )
    norbs = next(iter(shapes))[0]

    if isinstance(grid, Monatomic):
        lat = grid
    elif isinstance(grid, numbers.Real) and not isinstance(grid, bool):
        if not float(grid) > 0:
            raise ValueError(f"the grid spacing must be positive, got {grid!r}")
        lat = Monatomic(float(grid) * np.eye(dim), norbs=norbs)
    else:
        raise TypeError(f"'grid' must be a positive number or a lattice.Monatomic, got {grid!r}")
    prim_vecs = np.asarray(lat.prim_vecs)
    if prim_vecs.shape != (dim, dim) or not np.allclose(prim_vecs, np.diag(np.diag(prim_vecs))):
        raise ValueError(
            f"'grid' must be an orthogonal lattice with {dim} primitive vector(s) along "
            f"{coords} (a diagonal {dim}x{dim} matrix), got prim_vecs {prim_vecs.tolist()}"
        )
    if lat.norbs is not None and lat.norbs != norbs:
        raise ValueError(f"the grid has norbs={lat.norbs} but the Hamiltonian is {norbs}x{norbs}")
    spacings = np.diag(prim_vecs)

    onsite_key = (0,) * dim
    template = _DiscretizedBuilder(coords, lat, TranslationalSymmetry(*prim_vecs))
    functions = {}
    for n, (offset, expr) in enumerate(values.items()):
        onsite = offset == onsite_key
        name = "onsite" if onsite else f"hopping_{n}"
        functions[offset] = _value_function(expr, coords, spacings, onsite=onsite, name=name)
    template[lat(*onsite_key)] = functions.pop(
        onsite_key, 0 if norbs == 1 else np.zeros((norbs,) * 2)
    )
    for offset, value in functions.items():
        # <r|H|r + d> is the hopping to the site at r from the site at r + d.
        template[HoppingKind(tuple(-d for d in offset), lat)] = value
    return template


# ---------------------------------------------------------------------------------------
# Value functions
# ---------------------------------------------------------------------------------------


class _PythonPrinter(StrPrinter):
    """Plain Python source for an expression: ``1j``, ``**`` powers, exact floats."""

    def _print_ImaginaryUnit(self, expr: Any) -> str:
        return "1j"

    def _print_Pi(self, expr: Any) -> str:
        return "pi"

    def _print_NumberSymbol(self, expr: Any) -> str:
        return repr(float(expr))

    _print_Exp1 = _print_NumberSymbol
    _print_EulerGamma = _print_NumberSymbol
    _print_GoldenRatio = _print_NumberSymbol
    _print_Catalan = _print_NumberSymbol

    def _print_Float(self, expr: Any) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: Any) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_Pow(self, expr: Any, rational: bool = False) -> str:
        level = precedence(expr)
        base = self.parenthesize(expr.base, level, strict=True)
        exponent = self.parenthesize(expr.exp, level, strict=False)
        return f"{base}**{exponent}"


def _python_source(expr: Any) -> str:
    return str(_PythonPrinter().doprint(expr))


def _parameter_names(expr: Any, coordinate_names: set[str]) -> list[str]:
    names = {s.name for s in expr.atoms(sympy.Symbol)} - coordinate_names
    names |= {str(f.func) for f in expr.atoms(AppliedUndef)}
    for name in sorted(names):
        if not name.isidentifier() or keyword.iskeyword(name) or name in _RESERVED_NAMES:
            raise ValueError(
                f"invalid symbol name {name!r} in the Hamiltonian: the names of its symbols "
                "and functions become parameters of value functions, so they must be Python "
                f"identifiers, not keywords, and not one of {sorted(_RESERVED_NAMES)}"
            )
    return sorted(names)


def _value_function(
    expr: Any, coords: list[str], spacings: Any, *, onsite: bool, name: str
) -> Any:
    """A constant, or a value function ``(site[s], <parameters>)`` with its source attached."""
    expr = expr.subs({_displacements[c]: float(s) for c, s in zip(coords, spacings)})
    parameters = _parameter_names(expr, set(coords))
    used = {s.name for s in expr.atoms(sympy.Symbol)} & set(coords)
    if not parameters and not used:
        if isinstance(expr, MatrixBase):
            return np.array(expr.tolist(), dtype=complex)
        return complex(expr)
    return _compile(expr, coords if used else [], parameters, onsite=onsite, name=name)


def _compile(
    expr: Any, coords: list[str], parameters: list[str], *, onsite: bool, name: str
) -> Any:
    sites = ["site"] if onsite else ["site1", "site2"]
    lines = [f"def {name}({', '.join(sites + parameters)}):"]
    if coords:
        lines.append(f"    {', '.join(coords)}, = {sites[0]}.pos")
    if isinstance(expr, MatrixBase):
        rows = ", ".join(
            "[" + ", ".join(_python_source(e) for e in expr.row(i)) + "]" for i in range(expr.rows)
        )
        lines.append(f"    return _np.array([{rows}], dtype=complex)")
    else:
        lines.append(f"    return {_python_source(expr)}")
    source = "\n".join(lines)
    namespace: dict[str, Any] = {"_np": np, "pi": math.pi}
    exec(compile(source, f"<discretized {name}>", "exec"), namespace)
    function = namespace[name]
    function._source = source
    return function
