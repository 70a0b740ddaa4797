"""Spin transport: Pauli matrices, spinful model terms, spin-resolved transmission, spin valves.

Spin is an explicit orbital here (``norbs=2`` per site, ``spin_degeneracy=1``). On every site
the two orbitals are spin up and spin down along z, in this order, so orbital
``2 * p + s`` of a lead cell is spin ``s`` (0 = up, 1 = down) of its site ``p``: a site's
orbitals are contiguous (see :mod:`mesoscopic.system`). The functions that read spin from lead
modes assume this layout on every lead site.

Sign conventions and units
--------------------------
Energies are in the unit of the hopping ``t``; lengths in lattice constants ``a``.

``zeeman(b)``
    ``b . sigma``, with ``b = g mu_B B / 2`` the Zeeman energy vector of the field ``B``
    (electron sign: for ``b_z > 0`` spin down is lower).
``exchange(h, m)``
    ``-h m . sigma`` with ``h >= 0``: the spin along the magnetization ``m`` is the majority
    (lower) band, and the bands are split by ``2 h``.
``rashba_hopping(alpha, delta)``
    The discretized Bychkov-Rashba term ``alpha (sigma_x k_y - sigma_y k_x)``, ``alpha`` in
    units of ``t a``: on a square lattice it becomes
    ``(alpha / a) (sigma_x sin(k_y a) - sigma_y sin(k_x a))``, that is the hopping
    ``<r + delta|H|r> = (1j alpha / 2a) (sigma_x delta_y - sigma_y delta_x)``.
``dresselhaus_hopping(beta, delta)``
    The linear Dresselhaus term ``beta (sigma_x k_x - sigma_y k_y)`` (units of ``t a``), i.e.
    ``<r + delta|H|r> = (1j beta / 2a) (sigma_x delta_x - sigma_y delta_y)``.

A hopping value set with ``syst[lat.neighbors()]`` or
``syst[HoppingKind(delta, lat, lat)]`` is ``<a|H|b>`` with ``a = b + delta`` (as in Kwant), so
``-t * sigma_0 + rashba_hopping(alpha, delta)`` is the value of ``HoppingKind(delta, ...)``.

Spin-resolved transmission
--------------------------
The S-matrix is given in the leads' unit-current modes. In a lead where spin along an axis
``n`` is conserved (a normal lead, or a ferromagnetic lead magnetized along ``n``), the
modes of one momentum and velocity span a space that ``n . sigma`` maps onto itself, so the
spin projector ``(1 +- n . sigma) / 2`` restricted to the modes, ``P_s``, is an exact
projector, whatever basis the mode solver chose among degenerate modes (up and down modes of
a normal lead are degenerate and come out mixed). The spin-resolved transmission from spin
``s`` of lead ``j`` into spin ``s'`` of lead ``i`` is then the basis-independent

``T_{s's} = Tr[P^out_{s'} S_ij P^in_s S_ij^dagger]``,

and ``sum_{s's} T_{s's} = T_ij``. Each lead may use its own axis (ferromagnetic leads
magnetized along different directions). Modes with different momenta have no cross
terms: in a lead where the spin is conserved their interference carries no spin current.

The spin current carried into a normal lead ``i`` by the electrons coming from lead ``j``
is ``J^a = Tr[Sigma^a S_ij S_ij^dagger]`` with ``Sigma^a`` the matrix of ``sigma_a`` between
the outgoing modes of lead ``i`` of equal momentum (for unit-current modes it is the spin
current operator there). It is a vector, in units of ``hbar / 2`` per electron: for a small
bias ``V`` on lead ``j`` the spin current is ``(hbar / 2) (e V / h) J``. Its component along
``n`` is ``sum_s (T_{+s} - T_{-s})`` along ``n``.

Spin valves and Julliere's formula
----------------------------------
For two ferromagnetic leads joined by a weak, spin-independent link ``tau`` (tunnelling
limit), Fermi's golden rule gives ``T_{s's} = 4 pi^2 tau^2 rho_{L,s} rho_{R,s'} |<s'|s>|^2``
with ``rho_s`` the spin-resolved local density of states at the two contact sites (the
surface LDOS of the semi-infinite leads). With ``rho_s = (rho + s Delta rho) / 2`` per lead,
this is ``G(theta) = (G_P + G_AP) / 2 + (G_P - G_AP) / 2 cos(theta)`` and
``(G_P - G_AP) / G_AP = 2 P_L P_R / (1 - P_L P_R)`` with ``P = (rho_up - rho_down) /
(rho_up + rho_down)`` of the contact LDOS: Julliere's formula [M. Julliere, Phys. Lett. 54A,
225 (1975)] and Slonczewski's cosine law [J. C. Slonczewski, Phys. Rev. B 39, 6995 (1989)]
are exact to leading order in ``tau^2``; corrections are of relative order ``tau^2 / t^2``.
A thick barrier of height ``U`` behaves the same way as ``U / t -> infinity``. With the
bulk density of states (``kind="dos"``) or the number of open channels (``kind="channels"``)
in place of the contact LDOS (``kind="surface"``), Julliere's formula is a model, not a
limit: the contact LDOS of a chain goes like the velocity, the bulk DOS like its inverse.

Examples
--------
>>> import numpy as np
>>> from mesoscopic import spin
>>> bool(np.allclose(spin.sigma_x @ spin.sigma_y, 1j * spin.sigma_z))
True
>>> (spin.exchange(0.5, (0, 0, 1)).real + 0.0).tolist()
[[-0.5, 0.0], [0.0, 0.5]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks
from ._compat import renamed_keyword
from .scattering import SMatrix
from .solvers.options import SolverOptions
from .system import System

__all__ = [
    "Magnetoresistance",
    "conductance_vs_angle",
    "direction_from_angles",
    "dresselhaus_hopping",
    "exchange",
    "julliere_tmr",
    "lead_polarization",
    "lead_spin_density_of_states",
    "magnetoresistance",
    "pauli",
    "rashba_hopping",
    "sigma_0",
    "sigma_x",
    "sigma_y",
    "sigma_z",
    "spin_conservation_law",
    "spin_current",
    "spin_projector",
    "spin_resolved_transmission",
    "spin_transmission_from_blocks",
    "spin_valve",
    "transmitted_spin_polarization",
    "tunnel_magnetoresistance",
    "zeeman",
]

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]


def _read_only(matrix: ArrayLike) -> ComplexArray:
    arr = np.array(matrix, dtype=complex)
    arr.flags.writeable = False
    return arr


#: Identity in spin space.
sigma_0: ComplexArray = _read_only([[1, 0], [0, 1]])
#: Pauli matrix x.
sigma_x: ComplexArray = _read_only([[0, 1], [1, 0]])
#: Pauli matrix y.
sigma_y: ComplexArray = _read_only([[0, -1j], [1j, 0]])
#: Pauli matrix z (spin up = first orbital).
sigma_z: ComplexArray = _read_only([[1, 0], [0, -1]])
#: ``(sigma_0, sigma_x, sigma_y, sigma_z)``.
pauli: tuple[ComplexArray, ComplexArray, ComplexArray, ComplexArray] = (
    sigma_0,
    sigma_x,
    sigma_y,
    sigma_z,
)

# |n| may differ from 1 by this much in a direction given by the user.
_UNIT_TOLERANCE = 1e-9
# Lead modes closer than this (in exp(ik) and relative velocity) form one degenerate group.
_MODE_DEGENERACY = 1e-6
# A mode-space spin projector whose P^2 - P exceeds this is not a projector: the spin along
# the requested axis is not conserved in that lead.
_PURITY_TOLERANCE = 1e-6


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _real_scalar(value: Any, name: str) -> float:
    arr = _checks.real_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single real number, got an array of shape {arr.shape}")
    return float(arr)


def _unit_vector(value: Any, name: str) -> FloatArray:
    """A real 3-vector of unit length; never normalized silently."""
    arr = _checks.real_array(value, name)
    if arr.shape != (3,):
        raise ValueError(f"{name} must be a 3-vector (x, y, z), got shape {arr.shape}")
    norm = float(np.linalg.norm(arr))
    if norm == 0:
        raise ValueError(f"{name} must be a unit vector, got the zero vector {arr.tolist()}")
    if abs(norm - 1) > _UNIT_TOLERANCE:
        raise ValueError(
            f"{name} must be a unit vector, got {arr.tolist()} of length {norm:.6g}; divide it "
            "by its length or use direction_from_angles(theta, phi)"
        )
    return arr


def _exchange_energy(value: Any, name: str) -> float:
    h = _real_scalar(value, name)
    if h < 0:
        raise ValueError(
            f"{name} must be >= 0 (the exchange energy h: bands split by 2h, majority spin "
            f"along the magnetization), got {h!r}; reverse the magnetization instead"
        )
    return h


def _lattice_constant(value: Any) -> float:
    a = _real_scalar(value, "lattice_constant")
    if a <= 0:
        raise ValueError(f"lattice_constant must be > 0, got {a!r}")
    return a


def _nearest_neighbour(delta: Any) -> tuple[int, int]:
    arr = _checks.real_array(delta, "delta")
    allowed = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if arr.shape != (2,) or tuple(arr.tolist()) not in allowed:
        raise ValueError(
            f"delta must be a nearest-neighbour displacement of the square lattice, one of "
            f"{allowed}, got {_checks._show(delta)}"
        )
    return int(arr[0]), int(arr[1])


def _spin_orbit_bond(
    coefficient: Any, name: str, delta: Any, lattice_constant: Any
) -> tuple[complex, int, int]:
    """Prefactor ``1j c / 2a`` of a spin-orbit hopping and the bond's ``(delta_x, delta_y)``."""
    c = _real_scalar(coefficient, name)
    dx, dy = _nearest_neighbour(delta)
    return 0.5j * c / _lattice_constant(lattice_constant), dx, dy


# --------------------------------------------------------------------------------------------
# Model terms
# --------------------------------------------------------------------------------------------


def direction_from_angles(theta: float, phi: float = 0.0) -> FloatArray:
    """Unit vector at polar angle ``theta`` and azimuth ``phi``.

    Parameters
    ----------
    theta : float
        Angle from +z, radians.
    phi : float
        Angle of the in-plane part from +x towards +y, radians.

    Returns
    -------
    (3,) float ndarray
        ``(sin theta cos phi, sin theta sin phi, cos theta)``.

    Examples
    --------
    >>> from mesoscopic.spin import direction_from_angles
    >>> direction_from_angles(0.0).tolist()
    [0.0, 0.0, 1.0]
    >>> import numpy as np
    >>> direction_from_angles(np.pi / 2, np.pi / 2).round(12).tolist()
    [0.0, 1.0, 0.0]
    """
    t = _real_scalar(theta, "theta")
    p = _real_scalar(phi, "phi")
    return np.array([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)])


def _n_dot_sigma(n: FloatArray) -> ComplexArray:
    return np.asarray(n[0] * sigma_x + n[1] * sigma_y + n[2] * sigma_z, dtype=complex)


def _projector(n: FloatArray, sign: int) -> ComplexArray:
    """``(1 + sign n . sigma) / 2`` for a unit vector ``n``."""
    return (sigma_0 + sign * _n_dot_sigma(n)) / 2


def zeeman(field: ArrayLike) -> ComplexArray:
    """Zeeman term ``b . sigma`` of a magnetic field, as a 2 x 2 onsite matrix.

    Parameters
    ----------
    field : (3,) array_like
        Zeeman energy vector ``b = g mu_B B / 2`` (energy units); any length, including zero.
        With the electron sign used here, spin antiparallel to ``b`` is lower by ``2 |b|``.

    Returns
    -------
    (2, 2) complex ndarray

    Examples
    --------
    >>> from mesoscopic.spin import zeeman
    >>> zeeman((0, 0, 0.1)).real.tolist()
    [[0.1, 0.0], [0.0, -0.1]]
    """
    b = _checks.real_array(field, "field")
    if b.shape != (3,):
        raise ValueError(f"field must be a 3-vector (b_x, b_y, b_z), got shape {b.shape}")
    return _n_dot_sigma(b)


def exchange(h: float, magnetization: ArrayLike) -> ComplexArray:
    """Exchange splitting ``-h m . sigma`` of a ferromagnet, as a 2 x 2 onsite matrix.

    Parameters
    ----------
    h : float
        Exchange energy, ``>= 0`` (energy units); the spin bands are split by ``2 h``.
    magnetization : (3,) array_like
        Unit vector ``m``; the majority (lower-energy) spin points along ``m``. Use
        :func:`direction_from_angles` for angles.

    Returns
    -------
    (2, 2) complex ndarray

    Raises
    ------
    ValueError
        Negative ``h``, or a ``magnetization`` that is not a unit 3-vector.

    Examples
    --------
    >>> from mesoscopic.spin import exchange
    >>> (exchange(0.5, (1, 0, 0)).real + 0.0).tolist()
    [[0.0, -0.5], [-0.5, 0.0]]
    """
    energy = _exchange_energy(h, "h")
    m = _unit_vector(magnetization, "magnetization")
    return -energy * _n_dot_sigma(m)


def spin_projector(direction: ArrayLike, sign: int = 1) -> ComplexArray:
    """Projector ``(1 + sign n . sigma) / 2`` on spin along ``sign * n``.

    Parameters
    ----------
    direction : (3,) array_like
        Unit vector ``n``.
    sign : {+1, -1}
        ``+1`` for spin along ``n``, ``-1`` for spin against it.

    Returns
    -------
    (2, 2) complex ndarray

    Examples
    --------
    >>> from mesoscopic.spin import spin_projector
    >>> spin_projector((0, 0, 1), -1).real.tolist()
    [[0.0, 0.0], [0.0, 1.0]]
    """
    n = _unit_vector(direction, "direction")
    if isinstance(sign, bool) or sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    return _projector(n, sign)


def spin_conservation_law(axis: ArrayLike = (0.0, 0.0, 1.0)) -> ComplexArray:
    """Onsite conservation law that splits lead modes into spin along ``+axis`` and ``-axis``.

    Pass it as ``Builder(symmetry, conservation_law=spin_conservation_law(n))`` for a lead
    whose Hamiltonian commutes with ``n . sigma`` (a normal lead, or a ferromagnet magnetized
    along ``n``). It is ``-n . sigma``, so block 0 (the smallest eigenvalue) is spin along
    ``+n`` and block 1 spin along ``-n``: ``S.transmission((i, 0), (j, 1))`` is the
    transmission from spin ``-n`` in lead ``j`` into spin ``+n`` in lead ``i``.

    Parameters
    ----------
    axis : (3,) array_like
        Unit vector ``n``.

    Returns
    -------
    (2, 2) complex ndarray

    Examples
    --------
    >>> from mesoscopic.spin import spin_conservation_law
    >>> (spin_conservation_law().real + 0.0).tolist()
    [[-1.0, 0.0], [0.0, 1.0]]
    """
    return -_n_dot_sigma(_unit_vector(axis, "axis"))


def rashba_hopping(
    alpha: float, delta: ArrayLike, *, lattice_constant: float = 1.0
) -> ComplexArray:
    """Rashba spin-orbit part of a square-lattice hopping.

    Discretizes ``alpha (sigma_x k_y - sigma_y k_x)`` on nearest-neighbour bonds:
    ``<r + delta|H|r> = (1j alpha / 2a) (sigma_x delta_y - sigma_y delta_x)``, so that the
    Bloch Hamiltonian gains ``(alpha / a) (sigma_x sin(k_y a) - sigma_y sin(k_x a))``.

    Parameters
    ----------
    alpha : float
        Rashba coefficient, in units of ``t a`` (energy times lattice constant).
    delta : (2,) array_like of int
        Displacement ``a - b`` (lattice units) of the hopping ``<a|H|b>``: ``(1, 0)``,
        ``(-1, 0)``, ``(0, 1)`` or ``(0, -1)``, as in ``HoppingKind(delta, lat, lat)``.
    lattice_constant : float, keyword-only
        ``a``, in the same length unit as ``alpha``.

    Returns
    -------
    (2, 2) complex ndarray
        To be added to the spin-independent part, e.g. ``-t * sigma_0``.

    Examples
    --------
    >>> from mesoscopic.spin import rashba_hopping
    >>> rashba_hopping(0.2, (1, 0)).tolist()
    [[0j, (-0.1+0j)], [(0.1+0j), 0j]]
    """
    scale, dx, dy = _spin_orbit_bond(alpha, "alpha", delta, lattice_constant)
    return np.asarray(scale * (dy * sigma_x - dx * sigma_y), dtype=np.complex128)


def dresselhaus_hopping(
    beta: float, delta: ArrayLike, *, lattice_constant: float = 1.0
) -> ComplexArray:
    """Linear Dresselhaus spin-orbit part of a square-lattice hopping.

    Discretizes ``beta (sigma_x k_x - sigma_y k_y)``:
    ``<r + delta|H|r> = (1j beta / 2a) (sigma_x delta_x - sigma_y delta_y)``.

    Parameters
    ----------
    beta : float
        Dresselhaus coefficient, in units of ``t a``.
    delta : (2,) array_like of int
        Nearest-neighbour displacement ``a - b`` of the hopping ``<a|H|b>``.
    lattice_constant : float, keyword-only
        ``a``.

    Returns
    -------
    (2, 2) complex ndarray

    Examples
    --------
    >>> from mesoscopic.spin import dresselhaus_hopping
    >>> dresselhaus_hopping(0.2, (0, 1)).tolist()
    [[0j, (-0.1+0j)], [(0.1+0j), 0j]]
    """
    scale, dx, dy = _spin_orbit_bond(beta, "beta", delta, lattice_constant)
    return np.asarray(scale * (dx * sigma_x - dy * sigma_y), dtype=np.complex128)


# --------------------------------------------------------------------------------------------
# Spin in lead modes
# --------------------------------------------------------------------------------------------


def _cell_operator(spin_matrix: ComplexArray, num_orbitals: int, lead: int) -> ComplexArray:
    if num_orbitals % 2:
        raise ValueError(
            f"lead {lead} has {num_orbitals} orbitals per cell; spin-resolved quantities need "
            "two orbitals (spin up, spin down) on every lead site"
        )
    return np.asarray(np.kron(np.eye(num_orbitals // 2), spin_matrix), dtype=np.complex128)


def _mode_groups(momenta: FloatArray, velocities: FloatArray) -> list[NDArray[np.intp]]:
    """Modes of equal momentum and velocity (degenerate ones the solver may have mixed)."""
    count = momenta.size
    if count == 0:
        return []
    phases = np.exp(1j * momenta)
    scale = max(float(np.max(np.abs(velocities))), 1e-300)
    same = (np.abs(phases[:, None] - phases[None, :]) < _MODE_DEGENERACY) & (
        np.abs(velocities[:, None] - velocities[None, :]) < _MODE_DEGENERACY * scale
    )
    labels = -np.ones(count, dtype=np.intp)
    groups: list[NDArray[np.intp]] = []
    for start in range(count):
        if labels[start] >= 0:
            continue
        members = np.flatnonzero(same[start] & (labels < 0))
        labels[members] = len(groups)
        groups.append(members)
    return groups


def _mode_operator(
    smatrix: SMatrix, lead: int, outgoing: bool, spin_matrix: ComplexArray
) -> tuple[ComplexArray, float]:
    """Matrix of a cell spin operator between the lead's modes of equal momentum.

    Returns the matrix (modes normalized to unit norm, zero between groups) and the largest
    deviation from orthonormality of the modes within a group (a consistency check).
    """
    info = smatrix.lead_info[lead]
    count = info.num_modes
    part = slice(count, 2 * count) if outgoing else slice(0, count)
    waves = np.asarray(info.wave_functions[:, part])
    velocities = np.asarray(info.velocities[part])
    operator = _cell_operator(spin_matrix, waves.shape[0], lead)
    unit = waves * np.sqrt(np.abs(velocities))[None, :]
    result = np.zeros((count, count), dtype=complex)
    gram_error = 0.0
    for group in _mode_groups(np.asarray(info.momenta[part]), velocities):
        block = unit[:, group]
        result[np.ix_(group, group)] = block.conj().T @ operator @ block
        gram = block.conj().T @ block
        gram_error = max(gram_error, float(np.max(np.abs(gram - np.eye(group.size)))))
    return result, gram_error


def _lead_index(smatrix: SMatrix, lead: Any, name: str) -> int:
    if not isinstance(smatrix, SMatrix):
        raise TypeError(f"smatrix must be an SMatrix (from smatrix()), got {type(smatrix)}")
    return _checks.index(lead, smatrix.num_leads, name)


def _lead_pair(smatrix: SMatrix, to_lead: Any, from_lead: Any) -> tuple[int, int]:
    """Checked ``(to_lead, from_lead)`` indices of an S-matrix."""
    return _lead_index(smatrix, to_lead, "to_lead"), _lead_index(smatrix, from_lead, "from_lead")


def _spin_projectors(
    smatrix: SMatrix, lead: int, outgoing: bool, axis: FloatArray, strict: bool, name: str
) -> tuple[ComplexArray, ComplexArray]:
    projectors = []
    for sign in (1, -1):
        matrix, gram_error = _mode_operator(smatrix, lead, outgoing, _projector(axis, sign))
        if gram_error > _PURITY_TOLERANCE:
            raise RuntimeError(
                f"the modes of lead {lead} are not orthonormal within a degenerate group "
                f"(deviation {gram_error:.3g}); shift the energy slightly"
            )
        projectors.append(matrix)
    up = projectors[0]
    impurity = float(np.max(np.abs(up @ up - up), initial=0.0))
    if strict and impurity > _PURITY_TOLERANCE:
        direction = "outgoing" if outgoing else "incoming"
        raise ValueError(
            f"the {direction} modes of lead {lead} are not spin eigenstates along {name} = "
            f"{axis.tolist()} (|P^2 - P| = {impurity:.3g}): spin along this axis is not "
            "conserved in that lead (spin-orbit coupling there, or a magnetization along "
            "another axis). Use the lead's magnetization direction, or strict=False for spin "
            "weights (projections) of the modes"
        )
    return projectors[0], projectors[1]


def spin_resolved_transmission(
    smatrix: SMatrix,
    to_lead: int,
    from_lead: int,
    *,
    to_axis: ArrayLike = (0.0, 0.0, 1.0),
    from_axis: ArrayLike | None = None,
    strict: bool = True,
) -> FloatArray:
    """Transmission between spin states of two leads, ``T[s_out, s_in]``.

    ``T[s', s] = Tr[P^out_{s'} S P^in_s S^dagger]`` with ``S`` the block of the S-matrix from
    ``from_lead`` into ``to_lead`` and ``P`` the spin projectors in the space of each lead's
    modes (see the module docstring). Works whatever basis the mode solver chose, without a
    conservation law on the leads, and with each lead quantized along its own axis.

    Parameters
    ----------
    smatrix : SMatrix
        Of a system whose lead sites carry two orbitals each (spin up, spin down along z).
    to_lead, from_lead : int
        Lead indices (``to_lead == from_lead`` gives spin-resolved reflection).
    to_axis : (3,) array_like, keyword-only
        Unit vector: spin quantization axis in ``to_lead`` (for a ferromagnetic lead, its
        magnetization).
    from_axis : (3,) array_like, optional, keyword-only
        Axis in ``from_lead``; ``to_axis`` if not given.
    strict : bool, keyword-only
        Raise ``ValueError`` when spin along an axis is not conserved in the lead (its modes
        are not spin eigenstates), instead of returning spin-weighted transmissions.

    Returns
    -------
    (2, 2) float ndarray
        Index 0 is spin along ``+axis``, 1 along ``-axis``; ``T[0, 1]`` is the spin-flip
        transmission from ``-from_axis`` into ``+to_axis``. Entries add up to
        ``smatrix.transmission(to_lead, from_lead)``.

    Examples
    --------
    A Zeeman-split single-site system between normal chains: no spin flips.

    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> from mesoscopic.spin import spin_resolved_transmission, sigma_0, zeeman
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = zeeman((0, 0, 0.5))
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0 * sigma_0
    >>> lead[lat.neighbors()] = -sigma_0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> s = meso.smatrix(syst.finalized(), 0.3)
    >>> spin_resolved_transmission(s, 1, 0).round(4).tolist()
    [[0.9399, 0.0], [0.0, 0.9399]]
    """
    to_index, from_index = _lead_pair(smatrix, to_lead, from_lead)
    out_axis = _unit_vector(to_axis, "to_axis")
    in_axis = out_axis if from_axis is None else _unit_vector(from_axis, "from_axis")
    block = smatrix.submatrix(to_index, from_index)
    p_out = _spin_projectors(smatrix, to_index, True, out_axis, bool(strict), "to_axis")
    p_in = _spin_projectors(smatrix, from_index, False, in_axis, bool(strict), "from_axis")
    result = np.empty((2, 2))
    for i, out_projector in enumerate(p_out):
        for j, in_projector in enumerate(p_in):
            trace = np.trace(out_projector @ block @ in_projector @ block.conj().T)
            result[i, j] = trace.real
    return result


def spin_transmission_from_blocks(smatrix: SMatrix, to_lead: int, from_lead: int) -> FloatArray:
    """Spin-resolved transmission read from conservation-law blocks of the leads.

    For leads built with ``conservation_law=spin_conservation_law(n)`` (block 0: spin along
    ``+n``, block 1: along ``-n``), ``T[s', s] = S.transmission((to_lead, s'),
    (from_lead, s))``.

    Parameters
    ----------
    smatrix : SMatrix
    to_lead, from_lead : int
        Lead indices; both leads must have exactly two conservation-law blocks.

    Returns
    -------
    (2, 2) float ndarray

    Examples
    --------
    >>> import mesoscopic as meso
    >>> from mesoscopic.spin import sigma_0, spin_conservation_law
    >>> from mesoscopic.spin import spin_transmission_from_blocks
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.2 * sigma_0
    >>> law = spin_conservation_law((1, 0, 0))
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)), conservation_law=law)
    >>> lead[lat(0)] = 0 * sigma_0
    >>> lead[lat.neighbors()] = -sigma_0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> s = meso.smatrix(syst.finalized(), 0.3)
    >>> spin_transmission_from_blocks(s, 1, 0).round(4).tolist()
    [[0.9899, 0.0], [0.0, 0.9899]]
    """
    to_index, from_index = _lead_pair(smatrix, to_lead, from_lead)
    for index, name in ((to_index, "to_lead"), (from_index, "from_lead")):
        nblocks = len(smatrix.lead_info[index].block_nmodes or ())
        if nblocks != 2:
            raise ValueError(
                f"{name} = {index} has {nblocks} conservation-law block(s), not 2; build the "
                "lead with conservation_law=spin_conservation_law(axis), or use "
                "spin_resolved_transmission"
            )
    result = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            result[i, j] = smatrix.transmission((to_index, i), (from_index, j))
    return result


def spin_current(smatrix: SMatrix, to_lead: int, from_lead: int) -> FloatArray:
    """Spin current carried into a normal lead by the electrons injected from another lead.

    ``J^a = Tr[Sigma^a S S^dagger]`` with ``S`` the block of the S-matrix from ``from_lead``
    into ``to_lead`` (all incoming modes of ``from_lead`` filled, incoherently: unpolarized
    injection when ``from_lead`` is a normal lead) and ``Sigma^a`` the spin-current operator
    ``sigma_a`` between outgoing modes of ``to_lead`` of equal momentum. Spin must be
    conserved in ``to_lead`` (spin-independent bands), where the spin current is the same
    through every cell.

    Parameters
    ----------
    smatrix : SMatrix
        Of a system whose lead sites carry two orbitals each (spin up, spin down along z).
    to_lead, from_lead : int
        Lead indices.

    Returns
    -------
    (3,) float ndarray
        ``(J^x, J^y, J^z)`` in units of ``hbar / 2`` per transmitted electron: for a bias
        ``V`` on ``from_lead`` the spin current into ``to_lead`` is ``(hbar / 2)(e V / h) J``
        (per unit energy window, ``hbar = 1``). ``J . n`` equals
        ``T[0, :].sum() - T[1, :].sum()`` of :func:`spin_resolved_transmission` along ``n``,
        and ``|J|`` is at most ``smatrix.transmission(to_lead, from_lead)``.

    Raises
    ------
    ValueError
        When spin is not conserved in ``to_lead`` (a ferromagnetic lead, or spin-orbit
        coupling in it): there the transverse spin current precesses and is not defined
        by the S-matrix alone; use :func:`spin_resolved_transmission` along the
        magnetization.

    Examples
    --------
    Rashba spin-orbit coupling in a Zeeman field polarizes a one-channel wire:

    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> from mesoscopic.spin import rashba_hopping, sigma_0, spin_current, zeeman
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(6))] = zeeman((0.6, 0, 0))
    >>> syst[lat.neighbors()] = -sigma_0 + rashba_hopping(0.8, (1, 0))
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0 * sigma_0
    >>> lead[lat.neighbors()] = -sigma_0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> s = meso.smatrix(syst.finalized(), -1.5)
    >>> j = spin_current(s, 1, 0)
    >>> j.round(4).tolist(), round(s.transmission(1, 0), 4)
    ([-0.4446, 0.5089, 0.2567], 0.8882)
    """
    to_index, from_index = _lead_pair(smatrix, to_lead, from_lead)
    block = smatrix.submatrix(to_index, from_index)
    density = block @ block.conj().T
    result = np.empty(3)
    for a, (label, matrix) in enumerate(zip("xyz", (sigma_x, sigma_y, sigma_z), strict=True)):
        operator, gram_error = _mode_operator(smatrix, to_index, True, matrix)
        if gram_error > _PURITY_TOLERANCE:
            raise RuntimeError(
                f"the modes of lead {to_index} are not orthonormal within a degenerate group "
                f"(deviation {gram_error:.3g}); shift the energy slightly"
            )
        size = operator.shape[0]
        closure = float(np.max(np.abs(operator @ operator - np.eye(size)), initial=0.0))
        if closure > _PURITY_TOLERANCE:
            raise ValueError(
                f"spin is not conserved in lead {to_index} (sigma_{label} mixes its modes "
                f"with others of different momentum; deviation {closure:.3g}): the spin "
                "current is defined here for normal (spin-degenerate) leads only; for a "
                "ferromagnetic lead use spin_resolved_transmission along its magnetization"
            )
        result[a] = float(np.trace(operator @ density).real)
    return result


def transmitted_spin_polarization(smatrix: SMatrix, to_lead: int, from_lead: int) -> FloatArray:
    """Spin polarization vector of the current transmitted into a normal lead.

    Parameters
    ----------
    smatrix : SMatrix
    to_lead, from_lead : int
        Lead indices; ``to_lead`` must be a normal lead (see :func:`spin_current`).

    Returns
    -------
    (3,) float ndarray
        ``spin_current / transmission``, of length at most 1.

    Raises
    ------
    ValueError
        When nothing is transmitted.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> from mesoscopic.spin import sigma_0, transmitted_spin_polarization
    >>> lat = meso.lattice.chain(norbs=2)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0 * sigma_0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0 * sigma_0
    >>> lead[lat.neighbors()] = -sigma_0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> s = meso.smatrix(syst.finalized(), 0.3)
    >>> (transmitted_spin_polarization(s, 1, 0).round(12) + 0.0).tolist()   # unpolarized
    [0.0, 0.0, 0.0]
    """
    current = spin_current(smatrix, to_lead, from_lead)
    total = smatrix.transmission(int(to_lead), int(from_lead))
    if total == 0:
        raise ValueError(
            f"nothing is transmitted from lead {from_lead} into lead {to_lead}; the "
            "polarization of a zero current is undefined"
        )
    return current / total


# --------------------------------------------------------------------------------------------
# Lead densities of states and polarization
# --------------------------------------------------------------------------------------------

_KINDS = ("surface", "dos", "channels")


def _lead_of(syst: Any, lead: Any) -> Any:
    syst = _checks.finalized_system(syst, "a lead's spin quantity", min_leads=1)
    index = _checks.index(lead, len(syst.leads), "lead")
    return syst.leads[index]


@renamed_keyword("fsys", "syst", "0.2")
def lead_spin_density_of_states(
    syst: System,
    lead: int,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    axis: ArrayLike = (0.0, 0.0, 1.0),
    kind: Literal["surface", "dos", "channels"] = "surface",
) -> FloatArray:
    """Spin-resolved density of states of a lead at one energy, ``(D_up, D_down)``.

    Parameters
    ----------
    syst : System
        Finalized system; its lead sites carry two orbitals each (spin up, down along z).
    lead : int
        Lead index.
    energy : float
        Energy (Fermi energy), in units of the Hamiltonian.
    params : dict, optional, keyword-only
        Parameter values by name.
    axis : (3,) array_like, keyword-only
        Unit vector: spin quantization axis (for a ferromagnetic lead, its magnetization).
        ``up`` is spin along ``+axis``.
    kind : {"surface", "dos", "channels"}, keyword-only
        ``"surface"``: local density of states of the lead's first unit cell (the sites
        that touch the scattering region), ``-Im Tr[P_s g_0] / pi`` with
        ``g_0 = (E - h_cell - Sigma)^{-1}`` the retarded surface Green's function, in states
        per energy unit. This is the tunnelling density of states of a contact.
        ``"dos"``: bulk density of states per unit cell,
        ``D_s = (1 / 2 pi) sum_n <phi_n|P_s|phi_n>`` over the propagating modes of both
        directions (``|phi_n|^2 = 1 / |v_n|``: ``sum 1 / (2 pi |v|)`` over spin-``s``
        modes), per energy unit.
        ``"channels"``: number of open channels of each spin (dimensionless; the ballistic,
        Sharvin-conductance polarization).

    Returns
    -------
    (2,) float ndarray
        ``(D_up, D_down)``; non-integer spin weights for ``"channels"`` and ``"dos"`` if the
        modes are not spin eigenstates along ``axis``.

    Examples
    --------
    A ferromagnetic chain, ``E = -2 t cos k_s - s h``: the surface LDOS is
    ``sin(k_s) / (pi t)`` and the bulk DOS ``1 / (2 pi t sin k_s)``.

    >>> import numpy as np
    >>> from mesoscopic.spin import lead_spin_density_of_states, spin_valve
    >>> fsys = spin_valve(exchange_left=0.5)
    >>> p = {"m_left": (0, 0, 1), "m_right": (0, 0, 1)}
    >>> d = lead_spin_density_of_states(fsys, 0, 0.2, params=p)
    >>> k = np.arccos(-(0.2 + np.array([0.5, -0.5])) / 2)
    >>> bool(np.allclose(d, np.sin(k) / np.pi))
    True
    """
    infinite = _lead_of(syst, lead)
    e = _real_scalar(energy, "energy")
    n = _unit_vector(axis, "axis")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    index = int(lead)
    projectors = [
        _cell_operator(_projector(n, sign), infinite.num_orbitals, index) for sign in (1, -1)
    ]
    if kind == "surface":
        from .leads import _selfenergy_at_energy as selfenergy

        h_cell = np.asarray(infinite.cell_hamiltonian(params), dtype=complex)
        hop = np.asarray(infinite.hopping_away(params), dtype=complex)
        # The semi-infinite lead beyond cell 0 adds to cell 0 the same self-energy as the
        # whole lead adds to the cell before it.
        sigma = selfenergy(h_cell, hop, e)
        green = np.linalg.inv(e * np.eye(h_cell.shape[0]) - h_cell - sigma)
        return np.array([-np.trace(p @ green).imag / np.pi for p in projectors])
    propagating, _ = infinite.modes(e, params)
    waves = np.asarray(propagating.wave_functions)
    count = propagating.num_modes
    if kind == "dos":
        weights = [np.einsum("in,ij,jn->", waves.conj(), p, waves).real for p in projectors]
        return np.array(weights) / (2 * np.pi)
    incoming = waves[:, :count] * np.sqrt(np.abs(propagating.velocities[:count]))[None, :]
    return np.array(
        [np.einsum("in,ij,jn->", incoming.conj(), p, incoming).real for p in projectors]
    )


@renamed_keyword("fsys", "syst", "0.2")
def lead_polarization(
    syst: System,
    lead: int,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    axis: ArrayLike = (0.0, 0.0, 1.0),
    kind: Literal["surface", "dos", "channels"] = "surface",
) -> float:
    """Spin polarization ``P = (D_up - D_down) / (D_up + D_down)`` of a lead.

    Parameters
    ----------
    syst, lead, energy, params, axis, kind
        As for :func:`lead_spin_density_of_states`. ``kind="surface"`` (contact LDOS) is the
        polarization for which Julliere's formula is the tunnelling limit of a junction;
        ``"dos"`` uses the bulk density of states and ``"channels"`` the numbers of open
        channels.

    Returns
    -------
    float
        In ``[-1, 1]``; positive when spin along ``+axis`` dominates.

    Raises
    ------
    ValueError
        When the lead has no states at ``energy``.

    Examples
    --------
    >>> from mesoscopic.spin import lead_polarization, spin_valve
    >>> fsys = spin_valve(exchange_left=0.5)
    >>> p = {"m_left": (0, 0, 1), "m_right": (0, 0, 1)}
    >>> abs(lead_polarization(fsys, 0, 0.2, params=p, kind="channels")) < 1e-12
    True
    >>> round(lead_polarization(fsys, 0, -1.9, params=p, kind="channels"), 12)  # half metal
    1.0
    """
    up, down = lead_spin_density_of_states(syst, lead, energy, params=params, axis=axis, kind=kind)
    total = up + down
    if not total > 1e-14 * max(abs(up), abs(down), 1.0):
        raise ValueError(
            f"lead {lead} has no states at energy {energy!r} (kind={kind!r}); the polarization "
            "is undefined there"
        )
    return float((up - down) / total)


def julliere_tmr(p_left: float, p_right: float) -> float:
    """Julliere's tunnel magnetoresistance ``2 P_L P_R / (1 - P_L P_R)``.

    Parameters
    ----------
    p_left, p_right : float
        Spin polarizations of the two electrodes, in ``[-1, 1]``.

    Returns
    -------
    float
        ``(G_P - G_AP) / G_AP`` (dimensionless).

    Raises
    ------
    ValueError
        Polarizations outside ``[-1, 1]``, or ``P_L P_R = 1`` (two half metals: no
        antiparallel current, infinite TMR).

    Examples
    --------
    >>> from mesoscopic.spin import julliere_tmr
    >>> round(julliere_tmr(0.5, 0.5), 12)
    0.666666666667
    """
    values = []
    for value, name in ((p_left, "p_left"), (p_right, "p_right")):
        p = _real_scalar(value, name)
        if not -1 <= p <= 1:
            raise ValueError(f"{name} must be a polarization in [-1, 1], got {p!r}")
        values.append(p)
    product = values[0] * values[1]
    if product >= 1:
        raise ValueError(
            f"p_left * p_right = {product!r}: two fully polarized electrodes pass no current "
            "when antiparallel, the TMR is infinite"
        )
    return 2 * product / (1 - product)


def tunnel_magnetoresistance(g_parallel: float, g_antiparallel: float) -> float:
    """Magnetoresistance ratio ``(G_P - G_AP) / G_AP``.

    Parameters
    ----------
    g_parallel, g_antiparallel : float
        Conductances (any one unit), ``>= 0`` and ``> 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> from mesoscopic.spin import tunnel_magnetoresistance
    >>> tunnel_magnetoresistance(3.0, 2.0)
    0.5
    """
    gp = _real_scalar(g_parallel, "g_parallel")
    gap = _real_scalar(g_antiparallel, "g_antiparallel")
    if gp < 0:
        raise ValueError(f"g_parallel must be >= 0, got {gp!r}")
    if gap <= 0:
        raise ValueError(f"g_antiparallel must be > 0 (it divides the ratio), got {gap!r}")
    return (gp - gap) / gap


# --------------------------------------------------------------------------------------------
# Spin valves
# --------------------------------------------------------------------------------------------


def spin_valve(
    *,
    exchange_left: float,
    exchange_right: float | None = None,
    width: int = 1,
    spacer_length: int = 0,
    barrier: float = 0.0,
    coupling: float = 1.0,
    hopping: float = 1.0,
    contact_length: int = 1,
) -> System:
    """A two-terminal spin valve: ferromagnet | spacer | ferromagnet, on a square lattice.

    A strip ``width`` sites wide along x (a chain for ``width=1``), onsite energy 0 (band
    centre) and hopping ``-hopping * sigma_0``. From left to right: ``contact_length``
    columns of the left ferromagnet (onsite ``-h_L m_left . sigma``), ``spacer_length``
    columns of a spin-independent spacer (onsite ``barrier * sigma_0``: a normal metal for a
    small ``barrier``, a tunnel barrier for a large one), ``contact_length`` columns of the
    right ferromagnet; the leads (0 on the left, 1 on the right) continue the ferromagnets.
    The bonds between each ferromagnet and the spacer (or the single bond between the two
    ferromagnets when ``spacer_length=0``) have hopping ``-coupling * sigma_0``: a small
    ``coupling`` is a weak tunnel link.

    Parameters
    ----------
    exchange_left : float, keyword-only
        Exchange energy ``h_L >= 0`` of the left ferromagnet (spin splitting ``2 h_L``).
    exchange_right : float, optional, keyword-only
        ``h_R >= 0``; ``exchange_left`` if not given.
    width : int, keyword-only
        Sites across (>= 1).
    spacer_length : int, keyword-only
        Columns of the spacer (>= 0).
    barrier : float, keyword-only
        Onsite energy of the spacer (energy units of ``hopping``).
    coupling : float, keyword-only
        Hopping across the ferromagnet-spacer interfaces (> 0).
    hopping : float, keyword-only
        Hopping ``t`` everywhere else (> 0).
    contact_length : int, keyword-only
        Columns of each ferromagnet inside the scattering region (>= 1).

    Returns
    -------
    System
        Takes the parameters ``m_left`` and ``m_right`` (unit 3-vectors, the magnetizations
        of the two ferromagnets, leads included). Spin is explicit: ``spin_degeneracy=1``.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> from mesoscopic.spin import spin_valve
    >>> fsys = spin_valve(exchange_left=0.5, coupling=0.2)
    >>> s = meso.smatrix(fsys, 0.3, params={"m_left": (0, 0, 1), "m_right": (0, 0, -1)})
    >>> round(s.transmission(1, 0), 6)
    0.270762
    """
    from .builder import Builder, HoppingKind, TranslationalSymmetry
    from .lattice import square

    h_left = _exchange_energy(exchange_left, "exchange_left")
    h_right = (
        h_left if exchange_right is None else _exchange_energy(exchange_right, "exchange_right")
    )
    rows = _checks.positive_int(width, "width", minimum=1)
    spacer = _checks.positive_int(spacer_length, "spacer_length", minimum=0)
    contact = _checks.positive_int(contact_length, "contact_length", minimum=1)
    height = _real_scalar(barrier, "barrier")
    t = _real_scalar(hopping, "hopping")
    link = _real_scalar(coupling, "coupling")
    for value, name in ((t, "hopping"), (link, "coupling")):
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")

    lat = square(1.0, norbs=2)
    right_start = contact + spacer

    def left_onsite(site: Any, m_left: Any) -> ComplexArray:
        return -h_left * _n_dot_sigma(_unit_vector(m_left, "m_left"))

    def right_onsite(site: Any, m_right: Any) -> ComplexArray:
        return -h_right * _n_dot_sigma(_unit_vector(m_right, "m_right"))

    syst = Builder()
    for x in range(right_start + contact):
        for y in range(rows):
            if x < contact:
                syst[lat(x, y)] = left_onsite
            elif x < right_start:
                syst[lat(x, y)] = height * sigma_0
            else:
                syst[lat(x, y)] = right_onsite
    syst[lat.neighbors()] = -t * sigma_0
    interfaces = {contact - 1, right_start - 1} if spacer else {contact - 1}
    for x in interfaces:
        for y in range(rows):
            syst[lat(x + 1, y), lat(x, y)] = -link * sigma_0
    for direction, onsite in ((-1, left_onsite), (1, right_onsite)):
        lead = Builder(TranslationalSymmetry((direction, 0)))
        lead[(lat(0, y) for y in range(rows))] = onsite
        lead[HoppingKind((1, 0), lat, lat)] = -t * sigma_0
        if rows > 1:
            lead[HoppingKind((0, 1), lat, lat)] = -t * sigma_0
        syst.attach_lead(lead)
    result: System = syst.finalized()
    return result


@dataclass(frozen=True)
class Magnetoresistance:
    """Parallel and antiparallel conductances of a spin valve.

    Attributes
    ----------
    g_parallel, g_antiparallel : float
        Conductances in units of e^2/h (spin explicit: each spin channel counts once).

    Examples
    --------
    >>> from mesoscopic.spin import Magnetoresistance
    >>> mr = Magnetoresistance(3.0, 2.0)
    >>> mr.tmr, mr.cosine_law(0.0)
    (0.5, 3.0)
    """

    g_parallel: float
    g_antiparallel: float

    @property
    def tmr(self) -> float:
        """``(G_P - G_AP) / G_AP``."""
        return tunnel_magnetoresistance(self.g_parallel, self.g_antiparallel)

    def cosine_law(self, theta: ArrayLike) -> float | FloatArray:
        """``(G_P + G_AP) / 2 + (G_P - G_AP) / 2 cos(theta)``, the tunnelling-limit ``G``.

        Parameters
        ----------
        theta : float or array_like
            Angle between the magnetizations, radians.

        Returns
        -------
        float, or float ndarray of the shape of ``theta``
            Conductance in units of e^2/h.
        """
        angle = _checks.real_array(theta, "theta")
        mean = (self.g_parallel + self.g_antiparallel) / 2
        half_difference = (self.g_parallel - self.g_antiparallel) / 2
        result = mean + half_difference * np.cos(angle)
        return float(result) if result.ndim == 0 else np.asarray(result)


def _two_terminal_conductance(
    syst: System,
    energy: float,
    params: dict[str, Any],
    to_lead: int,
    from_lead: int,
    options: SolverOptions | Mapping[str, Any] | None,
) -> float:
    from . import batch

    transmission = batch.transmission(
        syst, [energy], to_lead, from_lead, params=params, options=options
    )
    return float(syst.spin_degeneracy * transmission[0])


def _valve_inputs(
    syst: Any, params: Mapping[str, Any] | None, axis: ArrayLike, names: Sequence[str]
) -> tuple[FloatArray, dict[str, Any]]:
    syst = _checks.finalized_system(syst, "a spin valve", min_leads=2)
    for name in names:
        if name not in syst.parameters:
            raise ValueError(
                f"the system takes no parameter {name!r}; its parameters are "
                f"{sorted(syst.parameters)}"
            )
    return _unit_vector(axis, "axis"), dict(params or {})


@renamed_keyword("fsys", "syst", "0.2")
def magnetoresistance(
    syst: System,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    axis: ArrayLike = (0.0, 0.0, 1.0),
    left: str = "m_left",
    right: str = "m_right",
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> Magnetoresistance:
    """Conductances of a spin valve with parallel and antiparallel magnetizations.

    Parameters
    ----------
    syst : System
        Two-terminal system (leads 0 and 1) whose magnetizations are the parameters named
        ``left`` and ``right`` (as made by :func:`spin_valve`).
    energy : float
        Fermi energy.
    params : dict, optional, keyword-only
        Other parameters by name.
    axis : (3,) array_like, keyword-only
        Unit vector: the left magnetization; the right one is ``+axis`` (parallel) or
        ``-axis`` (antiparallel).
    left, right : str, keyword-only
        Names of the magnetization parameters.
    options : SolverOptions or mapping, keyword-only, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`) of the transmissions,
        computed by :func:`mesoscopic.transmission`.

    Returns
    -------
    Magnetoresistance
        ``g_parallel``, ``g_antiparallel`` (e^2/h) and ``tmr``.

    Examples
    --------
    >>> from mesoscopic.spin import magnetoresistance, spin_valve
    >>> mr = magnetoresistance(spin_valve(exchange_left=0.5, coupling=0.2), 0.3)
    >>> round(mr.g_parallel, 6), round(mr.g_antiparallel, 6), round(mr.tmr, 6)
    (0.273939, 0.270762, 0.011735)
    """
    n, values = _valve_inputs(syst, params, axis, (left, right))
    conductances = []
    for sign in (1, -1):
        values[left], values[right] = n, sign * n
        conductances.append(_two_terminal_conductance(syst, energy, values, 1, 0, options))
    return Magnetoresistance(conductances[0], conductances[1])


@renamed_keyword("fsys", "syst", "0.2")
def conductance_vs_angle(
    syst: System,
    energy: float,
    angles: ArrayLike,
    *,
    params: Mapping[str, Any] | None = None,
    axis: ArrayLike = (0.0, 0.0, 1.0),
    rotation_plane: ArrayLike = (1.0, 0.0, 0.0),
    left: str = "m_left",
    right: str = "m_right",
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> FloatArray:
    """Spin-valve conductance ``G(theta)`` for non-collinear magnetizations.

    The left magnetization is ``axis``; the right one is ``cos(theta) axis +
    sin(theta) rotation_plane``.

    Parameters
    ----------
    syst : System
        Two-terminal system with magnetization parameters ``left`` and ``right``.
    energy : float
        Fermi energy.
    angles : float or array_like
        Angles ``theta`` between the magnetizations, radians.
    params : dict, optional, keyword-only
        Other parameters by name.
    axis, rotation_plane : (3,) array_like, keyword-only
        Orthogonal unit vectors.
    left, right : str, keyword-only
        Names of the magnetization parameters.
    options : SolverOptions or mapping, keyword-only, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`) of the transmissions,
        computed by :func:`mesoscopic.transmission`.

    Returns
    -------
    float ndarray, shape of ``angles``
        Conductance in units of e^2/h (lead 0 to lead 1).

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.spin import conductance_vs_angle, spin_valve
    >>> g = conductance_vs_angle(spin_valve(exchange_left=0.5, coupling=0.2), 0.3,
    ...                          [0, np.pi / 2, np.pi])
    >>> g.round(6).tolist()
    [0.273939, 0.272342, 0.270762]
    """
    n, values = _valve_inputs(syst, params, axis, (left, right))
    e_perp = _unit_vector(rotation_plane, "rotation_plane")
    if abs(float(n @ e_perp)) > _UNIT_TOLERANCE:
        raise ValueError(
            f"rotation_plane must be orthogonal to axis; got axis = {n.tolist()} and "
            f"rotation_plane = {e_perp.tolist()}"
        )
    theta = _checks.real_array(angles, "angles")
    result = np.empty(theta.shape)
    for index, angle in np.ndenumerate(theta):
        values[left] = n
        values[right] = math.cos(angle) * n + math.sin(angle) * e_perp
        result[index] = _two_terminal_conductance(syst, energy, values, 1, 0, options)
    return result
