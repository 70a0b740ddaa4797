"""Random-matrix ensembles of the ten symmetry classes: Kwant's ``kwant.rmt``.

Random matrices model chaotic quantum dots and disordered conductors whose details do not
matter, only their symmetries (Beenakker, Rev. Mod. Phys. 69, 731 (1997); for all ten classes,
Rev. Mod. Phys. 87, 1037 (2015)). :func:`gaussian` draws Hamiltonians, :func:`circular`
draws scattering matrices, each from one of the ten Altland–Zirnbauer classes (``sym_list``):

======  ====================  =======  =======  ======  ===================================
class   time reversal ``t``   ``p``    ``c``    Dyson   circular ensemble of ``circular``
======  ====================  =======  =======  ======  ===================================
A       0                     0        0        2       CUE: Haar unitary
AI      1                     0        0        1       COE
AII     -1                    0        0        4       CSE
AIII    0                     0        1
BDI     1                     1        1
CII     -1                    -1       1
D       0                     1        0                Haar orthogonal
DIII    -1                    1        1
C       0                     -1       0                Haar unitary symplectic
CI      1                     -1       1
======  ====================  =======  =======  ======  ===================================

``t(sym)`` and ``p(sym)`` are the squares of the time-reversal and particle-hole operators
(0 where the class has none) and ``c(sym)`` is 1 where the class has chiral symmetry.

Hamiltonians (:func:`gaussian`). The operators act within blocks of one, two or four
consecutive basis states, the fastest-varying index first (``tau``), then ``sigma`` for
class CII; in an ``n``-dimensional matrix the block matrix ``B`` acts as
``numpy.kron(numpy.eye(n // len(B)), B)``:

* time reversal: ``H = U_T H^* U_T^dagger`` with ``B = h_t_matrix[sym]``;
* particle–hole: ``H = -U_P H^* U_P^dagger`` with ``B = h_p_matrix[sym]``;
* chiral: ``H = -tau_z H tau_z``.

The representations are those of Fulga, Hassler, Akhmerov and Beenakker, Phys. Rev. B 85,
165409 (2012), as in Kwant.

Scattering matrices (:func:`circular`), with ``Y = kron(eye(n // 2), [[0, 1j], [-1j, 0]])``
and the chiral symmetry always ``S = S^dagger``:

* time reversal: ``S = S^T`` (AI, BDI), ``S = -S^T`` (AII, DIII), ``S = -Y S^T Y`` (CI),
  ``S = Y S^T Y`` (CII);
* particle–hole: ``S = S^*`` (D, BDI), ``S = -S^*`` (DIII), ``S = Y S^* Y`` (C, CII),
  ``S = -Y S^* Y`` (CI).

Random numbers come from `rng`, as in Kwant: an integer seeds a new
``numpy.random.RandomState``; a ``RandomState`` or a ``numpy.random.Generator`` is used as
given; ``None`` takes NumPy's global random state (``numpy.random.seed``). With a seed or a
``RandomState`` the matrices equal Kwant's for the same seed (to rounding).

Examples
--------
>>> import numpy as np
>>> from mesoscopic import rmt
>>> h = rmt.gaussian(6, "BDI", rng=1)
>>> bool(np.allclose(h, h.conj().T) and np.allclose(h, -h.conj()))
True
>>> s = rmt.circular(4, "AII", rng=np.random.default_rng(2))
>>> bool(np.allclose(s @ s.conj().T, np.eye(4)) and np.allclose(s, -s.T))
True
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks

__all__ = [
    "c",
    "circular",
    "gaussian",
    "h_p_matrix",
    "h_t_matrix",
    "p",
    "sym_list",
    "t",
]

#: The ten Altland–Zirnbauer symmetry classes, by their Cartan labels.
sym_list = ("A", "AI", "AII", "AIII", "BDI", "CII", "D", "DIII", "C", "CI")

#: Block of the unitary part ``U_T`` of time reversal, ``H = U_T H^* U_T^dagger``, in the
#: Hamiltonians of :func:`gaussian`, for each class that has time reversal.
h_t_matrix: dict[str, list[list[complex]]] = {
    "AI": [[1]],
    "CI": [[0, 1], [1, 0]],
    "BDI": [[1, 0], [0, -1]],
    "AII": [[0, 1j], [-1j, 0]],
    "CII": [[0, 0, 1j, 0], [0, 0, 0, 1j], [-1j, 0, 0, 0], [0, -1j, 0, 0]],
    "DIII": [[0, 1j], [-1j, 0]],
}

#: Block of the unitary part ``U_P`` of particle–hole symmetry, ``H = -U_P H^* U_P^dagger``,
#: in the Hamiltonians of :func:`gaussian`, for each class that has it.
h_p_matrix: dict[str, list[list[complex]]] = {
    "C": [[0, 1j], [-1j, 0]],
    "CI": [[0, 1j], [-1j, 0]],
    "CII": [[0, 0, 1j, 0], [0, 0, 0, -1j], [-1j, 0, 0, 0], [0, 1j, 0, 0]],
    "D": [[1]],
    "DIII": [[0, 1], [1, 0]],
    "BDI": [[1]],
}

_TIME_REVERSAL_SQUARE = {"AI": 1, "BDI": 1, "CI": 1, "AII": -1, "CII": -1, "DIII": -1}
_PARTICLE_HOLE_SQUARE = {"D": 1, "BDI": 1, "DIII": 1, "C": -1, "CI": -1, "CII": -1}

# The symmetry a Gaussian draw is projected on (time reversal +1, particle-hole -1); the
# classes not listed get theirs from a real or imaginary draw and the chiral projection.
_PROJECTED = {"AII": ("t", 1), "DIII": ("t", 1), "CII": ("t", 1), "C": ("p", -1), "CI": ("p", -1)}

# The block of Y = i sigma_y-like pairing used by the quaternionic (symplectic) matrices.
_PAIRING = [[0, 1j], [-1j, 0]]


def _check_class(sym: Any) -> str:
    if not isinstance(sym, str) or sym not in sym_list:
        raise ValueError(
            f"unknown symmetry class {sym!r}; the Altland-Zirnbauer classes are "
            + ", ".join(repr(name) for name in sym_list)
        )
    return sym


def t(sym: str) -> int:
    """The square of the time-reversal operator of class `sym`: 1, -1, or 0 if it has none.

    Examples
    --------
    >>> from mesoscopic.rmt import t
    >>> t("AI"), t("AII"), t("D")
    (1, -1, 0)
    """
    return _TIME_REVERSAL_SQUARE.get(_check_class(sym), 0)


def p(sym: str) -> int:
    """The square of the particle–hole operator of class `sym`: 1, -1, or 0 if it has none.

    Examples
    --------
    >>> from mesoscopic.rmt import p
    >>> p("D"), p("C"), p("AI")
    (1, -1, 0)
    """
    return _PARTICLE_HOLE_SQUARE.get(_check_class(sym), 0)


def c(sym: str) -> int:
    """1 if class `sym` has chiral (sublattice) symmetry, else 0.

    A class has it when it has both time reversal and particle–hole symmetry, and class AIII
    has it alone.

    Examples
    --------
    >>> from mesoscopic.rmt import c
    >>> c("AIII"), c("BDI"), c("A")
    (1, 1, 0)
    """
    return int(sym == "AIII" or bool(t(sym) and p(sym)))


class _Draws:
    """Normal numbers and random signs from an int seed, a RandomState or a Generator."""

    _normal: Callable[[tuple[int, int]], Any]
    _bits: Callable[[int], Any]

    def __init__(self, rng: Any) -> None:
        if rng is None:
            rng = np.random.mtrand._rand  # NumPy's global state, as Kwant
        elif isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            rng = np.random.RandomState(int(rng))
        if isinstance(rng, np.random.Generator):
            self._normal = rng.standard_normal
            self._bits = lambda size: rng.integers(2, size=size)
        elif all(hasattr(rng, name) for name in ("randn", "randint")):
            self._normal = lambda shape: rng.randn(*shape)
            self._bits = lambda size: rng.randint(2, size=size)
        else:
            raise ValueError(
                f"rng must be None, an integer seed, a numpy.random.Generator or an object "
                f"with the numpy.random.RandomState interface; got {rng!r}"
            )

    def real(self, n: int) -> NDArray[np.float64]:
        return np.asarray(self._normal((n, n)), dtype=float)

    def complex(self, n: int) -> NDArray[np.complex128]:
        real = self.real(n)
        return real + 1j * self.real(n)

    def signs(self, size: int) -> NDArray[np.int_]:
        return 2 * np.asarray(self._bits(size)) - 1


def _monomial(block: ArrayLike, n: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """``kron(eye(n // k), block)`` of a k x k block with one nonzero per row, as
    (column of each row's nonzero, its value)."""
    block_array = np.asarray(block)
    k = len(block_array)
    columns_in_block = np.argmax(block_array != 0, axis=1)
    offsets = np.repeat(np.arange(0, n, k), k)
    columns = offsets + np.tile(columns_in_block, n // k)
    values = np.tile(block_array[np.arange(k), columns_in_block], n // k)
    return columns, values


def _conjugated_by(matrix: NDArray[Any], block: ArrayLike) -> NDArray[Any]:
    """``U M^* U^dagger`` for ``U = kron(eye, block)``, a unitary with one nonzero per row."""
    columns, values = _monomial(block, len(matrix))
    rearranged = matrix.conj()[columns][:, columns]
    return values[:, None] * rearranged * values.conj()[None, :]


def _check_size(n: Any, sym: str, what: str) -> int:
    n = _checks.positive_int(n, "the matrix size n")
    needs_even = t(sym) == -1 or p(sym) == -1 or (what == "gaussian" and c(sym))
    if needs_even and n % 2:
        raise ValueError(
            f"{what}: class {sym} needs an even matrix size n (its symmetry pairs the basis "
            f"states), got n={n}"
        )
    if what == "gaussian" and sym == "CII" and n % 4:
        raise ValueError(f"gaussian: class CII needs a matrix size n divisible by 4, got n={n}")
    return n


def gaussian(n: int, sym: str = "A", v: float = 1.0, rng: Any = None) -> NDArray[Any]:
    """Draw an ``n x n`` Hamiltonian from the Gaussian ensemble of symmetry class `sym`.

    The independent real parameters of the off-diagonal entries (real and imaginary parts,
    as far as the symmetries leave them free) are independent normal numbers of standard
    deviation `v`; a free diagonal entry has standard deviation ``sqrt(2) v``. For classes
    A and AI that is ``P(H) ~ exp(-Tr H^2 / (4 v^2))``: the Gaussian unitary and orthogonal
    ensembles. The symmetries are imposed in the representations given in the module
    description, exactly (to the last bit, not only to rounding).

    Parameters
    ----------
    n : int
        Size of the matrix. Even in every class but A, AI and D; a multiple of 4 in class CII.
    sym : str
        Altland–Zirnbauer class, one of ``sym_list``.
    v : float
        Scale of the entries, in units of energy: the standard deviation of each independent
        real parameter of an off-diagonal entry. (Kwant's docstring calls it a variance; the
        numbers are the same.)
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Seed or random-number generator (see the module description).

    Returns
    -------
    numpy.ndarray, shape (n, n)
        A Hermitian matrix, real in class AI, imaginary in classes D and BDI, complex
        otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.rmt import gaussian
    >>> h = gaussian(4, "AII", rng=3)
    >>> y = np.kron(np.eye(2), [[0, 1j], [-1j, 0]])
    >>> bool(np.allclose(h, y @ h.conj() @ y))
    True
    >>> np.round(np.linalg.eigvalsh(h), 3)  # Kramers pairs
    array([-2.22 , -2.22 ,  1.935,  1.935])
    """
    sym = _check_class(sym)
    n = _check_size(n, sym, "gaussian")
    draws = _Draws(rng)

    if sym == "AI":
        h: NDArray[Any] = draws.real(n)
    elif sym in ("D", "BDI"):
        h = 1j * draws.real(n)
    else:
        h = draws.complex(n)
    h = h + h.T.conj()
    scale = v / np.sqrt(2)

    if c(sym):
        # Keep only the part that anticommutes with tau_z.
        tau_z = np.tile([1, -1], n // 2)
        h = h - tau_z[:, None] * h * tau_z[None, :]
        scale *= 0.5
    if sym in _PROJECTED:
        kind, sign = _PROJECTED[sym]
        block = h_t_matrix[sym] if kind == "t" else h_p_matrix[sym]
        h = h + sign * _conjugated_by(h, block)
        scale /= np.sqrt(2)
    return h * scale


def _haar_group_element(n: int, sym: str, draws: _Draws) -> NDArray[Any]:
    """A Haar-random element of O(n), U(n) or USp(n), as the class's particle-hole square
    is 1, 0 or -1 (Mezzadri, Notices AMS 54, 592 (2007), arXiv:math-ph/0609050)."""
    square = p(sym)
    if square == 1:
        z: NDArray[Any] = draws.real(n)
    else:
        z = draws.complex(n)
        if square == -1:
            # A quaternion-real Gaussian matrix: z = Y z^* Y with Y the pairing block.
            z = 1j * (z - _conjugated_by(z, _PAIRING))
    q, r = np.linalg.qr(z)
    diagonal = np.diag(r).copy()
    # The QR factorization is unique once R has a positive diagonal; that makes Q Haar
    # distributed, and for a quaternion-real z it makes Q quaternion-real too (symplectic).
    q = q * (diagonal / np.abs(diagonal))[None, :]
    if square == -1 and not np.allclose(q, _conjugated_by(q, _PAIRING), atol=1e-8):
        raise RuntimeError("circular: the QR factorization lost the symplectic structure")
    return q


def _charge_range(sym: str, n: int) -> str | None:
    if sym in ("D", "DIII"):
        return "-1 or 1"
    if sym in ("AIII", "BDI"):
        return f"an integer from 0 to n={n}"
    if sym == "CII":
        return f"an integer from 0 to n/2={n // 2}"
    return None


def _check_charge(charge: Any, sym: str, n: int) -> int | None:
    valid = _charge_range(sym, n)
    if charge is None:
        return None
    if valid is None:
        raise ValueError(
            f"circular: class {sym} has no topological invariant; charge must be None, "
            f"got {charge!r}"
        )
    top = {"AIII": n, "BDI": n, "CII": n // 2}.get(sym)
    is_integer = isinstance(charge, numbers.Real) and float(charge).is_integer()
    if (
        isinstance(charge, bool)
        or not is_integer
        or (top is None and charge not in (-1, 1))
        or (top is not None and not 0 <= charge <= top)
    ):
        raise ValueError(f"circular: the charge of class {sym} must be {valid}, got {charge!r}")
    return int(charge)


def circular(n: int, sym: str = "A", charge: int | None = None, rng: Any = None) -> NDArray[Any]:
    """Draw an ``n x n`` scattering matrix from the circular ensemble of symmetry class `sym`.

    The matrix is unitary and has the symmetries of the class in the representation given
    in the module description. It is a Haar-random element of the unitary (A), orthogonal (D)
    or unitary symplectic (C) group, or of the symmetric space of the class: ``Q^T Q`` (AI,
    the COE), ``Q^T Y Q`` (AII and DIII), ``Q^T Q Y^*`` (CI) or ``Q^dagger diag(+-1) Q`` (the
    chiral classes) for a Haar-random group element ``Q``. In class AII the matrix is
    antisymmetric, so its own eigenvalues are not Kramers pairs; ``Y S`` is the same matrix
    in the self-dual (quaternion) form of Dyson's circular symplectic ensemble, whose
    eigenphases are.

    Parameters
    ----------
    n : int
        Size of the matrix (number of channels). Even in classes AII, CII, DIII, C and CI.
    sym : str
        Altland–Zirnbauer class, one of ``sym_list``.
    charge : int or None
        Topological invariant of the matrix, only in the classes that have one: the sign
        ``det S`` (D) or the sign of the Pfaffian of ``i S`` (DIII), -1 or 1; the number of
        eigenvalues -1 of ``S`` (AIII and BDI, 0 to ``n``) or of Kramers pairs of them (CII,
        0 to ``n / 2``). None draws it: each sign, or each eigenvalue (pair), is ``+-1`` with
        probability 1/2.
    rng : int, numpy.random.RandomState, numpy.random.Generator or None
        Seed or random-number generator (see the module description).

    Returns
    -------
    numpy.ndarray, shape (n, n)
        The unitary matrix: real in classes D and BDI, imaginary in class DIII.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.rmt import circular
    >>> s = circular(6, "BDI", charge=2, rng=5)
    >>> bool(np.allclose(s, s.T) and np.allclose(s, s.conj().T))
    True
    >>> np.round(np.linalg.eigvalsh(s), 6)
    array([-1., -1.,  1.,  1.,  1.,  1.])
    """
    sym = _check_class(sym)
    n = _check_size(n, sym, "circular")
    charge = _check_charge(charge, sym, n)
    draws = _Draws(rng)

    q = _haar_group_element(n, sym, draws)

    if sym in ("D", "DIII") and charge is not None:
        # det Q is the charge of D; Pf(i Q^T Y Q) = det Q Pf(i Y) that of DIII.
        sign = np.linalg.det(q) * (-1) ** (n // 2 if sym == "DIII" else 0)
        if (sign > 0) != (charge > 0):
            order = np.arange(n)
            order[[-2, -1]] = order[[-1, -2]]
            q = q[order]

    if sym in ("AI", "CI"):
        s = q.T @ q
        if sym == "CI":
            # s Y^*: column j of s Y^* is column partner(j) of s times (Y^*)[partner(j), j].
            columns, values = _monomial(np.conj(_PAIRING), n)
            s = s[:, columns] * values[columns][None, :]
        return s
    if sym in ("AII", "DIII"):
        columns, values = _monomial(h_t_matrix["AII"], n)
        return q.T @ (values[:, None] * q[columns])
    if c(sym):
        if charge is None:
            # In class CII the eigenvalues come in Kramers pairs.
            signs = np.repeat(draws.signs(n // 2), 2) if sym == "CII" else draws.signs(n)
        else:
            minus = charge * (2 if sym == "CII" else 1)
            signs = np.array([-1] * minus + [1] * (n - minus))
        return (q.T.conj() * signs[None, :]) @ q
    return q
