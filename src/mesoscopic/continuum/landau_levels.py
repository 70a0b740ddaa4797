"""Continuum Hamiltonians in a basis of Landau levels (magnetic field along one axis).

With the field ``B`` along the normal direction, the two in-plane momenta become
ladder operators, ``k_0 -> sqrt(|B|/2) (a^dagger + a)`` and
``k_1 -> i sqrt(|B|/2) (a - a^dagger)`` (``[k_0, k_1] = -i B``: the magnetic length is
``1/sqrt(|B|)``, with ``B`` in units of ``phi_0 / (2 pi a^2)``). The Hamiltonian is
then a matrix in the Landau-level index ``n = 0 ... N-1`` on each point of a grid
along the normal coordinate, which is discretized as in :func:`discretize`.
"""

from __future__ import annotations

import keyword
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
from numpy.typing import ArrayLike, NDArray
from sympy.core.function import AppliedUndef
from sympy.matrices import MatrixBase

from .. import _checks
from ..builder import Builder, HoppingKind, NoSymmetry, TranslationalSymmetry
from ..lattice import Monatomic
from ._common import momentum_operators, monomials, position_operators, sympify
from .discretizer import _displacements, _python_source, discretize_symbolic

__all__ = ["LandauLattice", "discretize_landau", "to_landau_basis"]

#: The Landau-level lowering and raising operators (non-commutative symbols).
ladder_lower, ladder_raise = sympy.symbols(r"a a^\dagger", commutative=False)
_B = sympy.Symbol("B")


def _normalize_momenta(momenta: Any) -> tuple[Any, Any]:
    if momenta is None:
        return momentum_operators[0], momentum_operators[1]
    names = [k.name for k in momentum_operators]
    try:
        chosen = list(momenta)
    except TypeError:
        raise TypeError(f"'momenta' must be a pair of names or indices, got {momenta!r}") from None
    if len(chosen) != 2:
        raise ValueError(f"'momenta' must name two momenta (e.g. ('k_x', 'k_y')), got {momenta!r}")
    result = []
    for m in chosen:
        if isinstance(m, (int, np.integer)) and not isinstance(m, bool) and 0 <= m < 3:
            result.append(momentum_operators[int(m)])
        elif isinstance(m, str) and m in names:
            result.append(momentum_operators[names.index(m)])
        elif isinstance(m, sympy.Symbol) and m.name in names:
            result.append(momentum_operators[names.index(m.name)])
        else:
            raise ValueError(
                f"invalid momentum {m!r} in 'momenta': use 'k_x', 'k_y', 'k_z' or 0, 1, 2"
            )
    if result[0] == result[1]:
        raise ValueError(f"'momenta' must name two different momenta, got {momenta!r}")
    return result[0], result[1]


def to_landau_basis(
    hamiltonian: Any, momenta: Sequence[Any] | None = None
) -> tuple[Any, tuple[Any, Any], Any]:
    r"""Replace two momenta by Landau-level ladder operators.

    ``k_0 -> sqrt(|B|/2) (a^\dagger + a)`` and ``k_1 -> i sqrt(|B|/2) (a - a^\dagger)``
    with a symbol ``B`` for the magnetic field.

    Parameters
    ----------
    hamiltonian : str or SymPy object
    momenta : pair of str or int, optional
        The in-plane momenta (default ``("k_x", "k_y")``); integers 0, 1, 2 stand for
        ``k_x, k_y, k_z``.

    Returns
    -------
    hamiltonian : SymPy object
    momenta : tuple
        The two replaced momentum operators.
    normal_coordinate : sympy.Symbol
        The remaining position operator (along the field).

    Examples
    --------
    >>> ham, momenta, normal = to_landau_basis("k_x**2 + k_y**2")
    >>> normal
    z
    """
    hamiltonian = sympify(hamiltonian)
    k0, k1 = _normalize_momenta(momenta)
    remaining = next(k for k in momentum_operators if k not in (k0, k1))
    normal = position_operators[momentum_operators.index(remaining)]
    scale = sympy.sqrt(sympy.Abs(_B) / 2)
    hamiltonian = hamiltonian.subs(
        {
            k0: scale * (ladder_raise + ladder_lower),
            k1: sympy.I * scale * (ladder_lower - ladder_raise),
        }
    )
    return hamiltonian, (k0, k1), normal


class LandauLattice(Monatomic):
    """A 1D grid along the field with a Landau-level index on each point.

    Site tags are ``(position index, Landau level)``; ``site.pos`` is the 1D
    position ``grid_spacing * tag[0] + offset``.

    Parameters
    ----------
    grid_spacing : float
        Spacing along the field (length units).
    offset : float, optional
        Position of tag ``(0, n)``.
    name : str
    norbs : int, optional
        Orbitals per (position, level) site.

    Examples
    --------
    >>> lat = LandauLattice(0.5, norbs=1)
    >>> lat(2, 7).pos.tolist(), lat.landau_index((2, 7))
    ([1.0], 7)
    """

    def __init__(
        self,
        grid_spacing: float,
        offset: float | None = None,
        name: str = "",
        norbs: int | None = None,
    ) -> None:
        if not (isinstance(grid_spacing, (int, float, np.number)) and grid_spacing > 0):
            raise ValueError(f"grid_spacing must be a positive number, got {grid_spacing!r}")
        full_offset = None if offset is None else [float(offset), 0.0]
        super().__init__(np.array([[grid_spacing, 0.0], [0.0, 1.0]]), full_offset, name, norbs)

    def pos(self, tag: Sequence[int]) -> NDArray[np.float64]:
        return np.array([self.prim_vecs[0, 0] * tag[0] + self.offset[0]])

    def positions(self, tags: ArrayLike) -> NDArray[np.float64]:
        tags = np.asarray(tags, dtype=float).reshape(-1, 2)
        return (self.prim_vecs[0, 0] * tags[:, :1] + self.offset[0]).astype(float)

    def landau_index(self, tag: Sequence[int]) -> int:
        """The Landau level of the site with this tag."""
        return int(tag[-1])


class _LandauBuilder(Builder):
    """The Builder of :func:`discretize_landau`: positions are along the field only."""

    def closest(self, pos: ArrayLike) -> Any:
        """The lowest-level site of the grid point closest to the 1D position `pos`."""
        point = np.asarray(pos, dtype=float).ravel()
        if point.size != 1:
            raise ValueError(
                f"a Landau-level system has 1D positions (along the field), got {pos!r}"
            )
        if not self._sites:
            raise ValueError("the Builder has no sites")
        family: Any = next(iter(self._sites)).family
        level = min(site.tag[-1] for site in self._sites)
        index = round((point[0] - family.offset[0]) / family.prim_vecs[0, 0])
        return family(index, level)


def _ladder_term(operators: Any) -> tuple[int, ...]:
    r"""A string of ladder operators as integers: ``a^\dagger a**2 -> (1, -2)``; others 0."""
    term = []
    for factor in sympy.Mul.make_args(operators):
        base, exponent = factor.as_base_exp()
        sign = 1 if base == ladder_raise else -1 if base == ladder_lower else 0
        term.append(sign * int(exponent) if sign else 0)
    return tuple(term)


def _evaluate_ladder_term(ladder_term: Sequence[int], n: int, B: float) -> float:
    r"""``<n + shift| (ladder string) |n>``; with ``B < 0`` raising and lowering swap."""
    if n < 0:
        raise ValueError(f"Landau level index must be non-negative, got {n}")
    sign = -1 if B < 0 else 1
    value = 1.0
    for power in reversed(ladder_term):
        power *= sign
        if power > 0:  # (a^dagger)^m |n> = sqrt((n+1)...(n+m)) |n+m>
            value *= math.sqrt(math.prod(range(n + 1, n + power + 1)))
        elif power < 0:  # a^m |n> = sqrt(n (n-1) ... (n-m+1)) |n-m>, zero below |0>
            if n + power < 0:
                return 0
            value *= math.sqrt(math.prod(range(n + power + 1, n + 1)))
        n += power
    return value


def _ladder_term_symbol(term: tuple[int, ...]) -> sympy.Symbol:
    return sympy.Symbol("_ladder_" + "_".join(str(t) if t >= 0 else f"m{-t}" for t in term))


def _landau_value(
    terms: list[tuple[tuple[int, ...], Any]], normal: str, grid_spacing: float, *, onsite: bool
) -> Any:
    """A value function summing ``<ladder term> * coefficient(normal coordinate, params)``."""
    symbols = [_ladder_term_symbol(term) for term, _ in terms]
    spacing = {_displacements[normal]: float(grid_spacing)}
    expr = sum(
        (s * coefficient.subs(spacing) for s, (_, coefficient) in zip(symbols, terms)),
        start=sympy.zeros(*terms[0][1].shape) if isinstance(terms[0][1], MatrixBase) else 0,
    )
    internal = {s.name for s in symbols} | {normal}
    parameters = {s.name for s in expr.atoms(sympy.Symbol)} - internal
    parameters |= {str(f.func) for f in expr.atoms(AppliedUndef)} - {"Abs"}
    for name in parameters:
        if not name.isidentifier() or keyword.iskeyword(name) or name in ("to_site", "from_site"):
            raise ValueError(
                f"invalid symbol name {name!r} in the Hamiltonian: symbol and function names "
                "become parameters of value functions and must be Python identifiers"
            )
    sites = ["from_site"] if onsite else ["to_site", "from_site"]
    lines = [f"def _landau_value({', '.join(sites + sorted(parameters))}):"]
    if "B" not in parameters:
        lines.append("    B = 1")
    # The coefficients are functions of the bra's position, as in discretize().
    lines.append(f"    {normal}, = {sites[0]}.pos")
    lines.append("    _n = from_site.family.landau_index(from_site.tag)")
    if not onsite:
        # With B < 0 raising and lowering swap: evaluate from the other end.
        lines.append("    if B < 0:")
        lines.append("        _n = to_site.family.landau_index(to_site.tag)")
    for s, (term, _) in zip(symbols, terms):
        lines.append(f"    {s.name} = _evaluate_ladder_term({term!r}, _n, B)")
    if isinstance(expr, MatrixBase):
        rows = ", ".join(
            "[" + ", ".join(_python_source(e) for e in expr.row(i)) + "]" for i in range(expr.rows)
        )
        lines.append(f"    return _np.array([{rows}], dtype=complex)")
    else:
        lines.append(f"    return {_python_source(expr)}")
    source = "\n".join(lines)
    namespace: dict[str, Any] = {
        "_np": np,
        "pi": math.pi,
        "Abs": abs,
        "_evaluate_ladder_term": _evaluate_ladder_term,
    }
    exec(compile(source, "<landau value>", "exec"), namespace)
    function = namespace["_landau_value"]
    function._source = source
    return function


def discretize_landau(
    hamiltonian: Any,
    N: int,
    momenta: Sequence[Any] | None = None,
    grid_spacing: float = 1,
) -> Builder:
    """Discretize a Hamiltonian in a basis of ``N`` Landau levels.

    Parameters
    ----------
    hamiltonian : str or SymPy object
    N : int
        Number of Landau levels kept (positive).
    momenta : pair of str or int, optional
        The in-plane momenta (default ``("k_x", "k_y")``).
    grid_spacing : float, default 1
        Grid spacing along the normal coordinate (used when it appears).

    Returns
    -------
    Builder
        Sites ``LandauLattice(grid_spacing)(i, n)``; with a translational symmetry
        along the normal coordinate when the Hamiltonian depends on it, finite
        otherwise. The field is the parameter ``B`` (units ``phi_0 / (2 pi a^2)``).

    Examples
    --------
    >>> syst = discretize_landau("k_x**2 + k_y**2", N=3).finalized()
    >>> syst.hamiltonian_submatrix(params={"B": 0.5}).real.diagonal().round(12).tolist()
    [0.5, 1.5, 2.5]
    """
    N = _checks.positive_int(N, "N (the number of Landau levels)")
    hamiltonian, momenta, normal = to_landau_basis(hamiltonian, momenta)
    tb, _ = discretize_symbolic(hamiltonian, coords=[normal.name])

    grouped: dict[tuple[int, int], list[tuple[tuple[int, ...], Any]]] = defaultdict(list)
    for (offset,), value in tb.items():
        for operators, coefficient in monomials(value, gens=(ladder_lower, ladder_raise)).items():
            term = _ladder_term(operators)
            grouped[(offset, sum(term))].append((term, coefficient))
    first = next(iter(grouped.values()))[0][1]
    norbs = first.shape[0] if isinstance(first, MatrixBase) else 1

    normal_momentum = momentum_operators[position_operators.index(normal)]
    atoms = hamiltonian.atoms(sympy.Symbol)
    lat = LandauLattice(grid_spacing, norbs=norbs)
    if normal in atoms or normal_momentum in atoms:
        syst = _LandauBuilder(TranslationalSymmetry([grid_spacing, 0]))
    else:
        no_symmetry: Any = NoSymmetry()
        syst = _LandauBuilder(no_symmetry)
    zero = np.zeros((norbs, norbs), dtype=complex)
    onsite_terms = grouped.pop((0, 0), None)
    onsite = (
        zero
        if onsite_terms is None
        else _landau_value(onsite_terms, normal.name, grid_spacing, onsite=True)
    )
    for n in range(N):
        syst[lat(0, n)] = onsite
    syst[HoppingKind((0, 1), lat)] = zero  # keeps the levels connected for Builder.fill
    for (offset, shift), terms in grouped.items():
        # <z + offset, n + shift| H |z, n>: the hopping to (z + offset, n + shift) from (z, n).
        syst[HoppingKind((offset, shift), lat)] = _landau_value(
            terms, normal.name, grid_spacing, onsite=False
        )
    return syst
