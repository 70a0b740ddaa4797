"""Semi-infinite periodic leads: bands, propagating and evanescent modes, exact self-energies.

Conventions
-----------
A lead is a semi-infinite chain of identical unit cells numbered ``m = 0, 1, 2, ...`` going
*away* from the scattering region. Each cell holds ``n`` orbitals.

``h_cell``
    ``(n, n)`` Hermitian, ``<m|H|m>``.
``hop``
    ``(n, n)``, ``<m|H|m+1>``; any rank (zero rows or columns, a singular ``hop`` and
    ``hop = 0`` are all allowed).

The Bloch Hamiltonian is ``H(k) = h_cell + hop e^{ik} + hop^dagger e^{-ik}``, with ``k`` in
units of the inverse cell length, and a Bloch solution is ``psi_m = lambda^m phi`` with
``lambda = e^{ik}``. Velocities are ``v = dE/dk`` in units of energy times cell length
(``hbar = 1``); ``v > 0`` means moving away from the scattering region (outgoing).

The particle current from cell ``m`` to cell ``m + 1`` is
``J = -2 Im(psi_m^dagger hop psi_{m+1})`` (energy units, ``hbar = 1``); for a Bloch mode it is
``J = v |phi|^2``. Propagating modes are normalized to unit current, ``|v| |phi|^2 = 1``, and
modes at the same ``k`` are chosen so that they carry no cross current (the current operator
is diagonal in them, equal to ``-1`` for incoming and ``+1`` for outgoing modes). Mode
amplitudes refer to cell ``m = 0``: mode ``j`` in cell ``m`` is
``wave_functions[:, j] * exp(1j * momenta[j] * m)``.

The scattering region is attached to cell ``m = 0`` through a copy of a lead cell playing the
role of cell ``m = -1`` (see :class:`LeadData`). :func:`selfenergy` is the exact retarded
self-energy ``Sigma = hop g_0 hop^dagger`` that the semi-infinite lead adds to that cell, with
``g_0`` the surface Green's function of cell 0 at energy ``E + i0``.

Numerical method
----------------
Modes come from a generalized eigenvalue problem for ``lambda`` that never inverts ``hop``.
The hopping is factored by its singular value decomposition, ``hop = A B^dagger`` with ``A``
and ``B`` of shape ``(n, r)``, ``r = rank(hop)``, so that only the ``2 r`` solutions that
couple neighbouring cells are computed and a singular ``hop`` yields no spurious zero or
infinite eigenvalues. A solution is described by the reduced amplitudes
``alpha_m = A^dagger psi_m`` and ``beta_m = B^dagger psi_m`` (``hop^dagger psi_m = B alpha_m``,
``hop psi_m = A beta_m``); the eigenvector of mode ``j`` holds
``(alpha_{-1}, beta_0) = (A^dagger phi / lambda, B^dagger phi)``, and
``phi = M^{-1} [B (i beta_0 - alpha_{-1}) + lambda A (i alpha_{-1} - beta_0)]`` with the
always invertible (away from flat bands) ``M = h_cell - E + i (A A^dagger + B B^dagger)``.
Because ``lambda`` only multiplies bounded quantities, strongly evanescent modes
(``|lambda|`` down to zero) neither overflow nor lose the others' accuracy; the eigenvalues are
handled as ratios ``alpha/beta`` of the QZ decomposition and never formed when ``beta = 0``.

The self-energy needs only the outgoing and decaying solutions: with ``X`` and ``Y`` the
matrices of their ``alpha_{-1}`` and ``beta_0``, ``Sigma = A Y X^{-1} A^dagger``.

Classification and tolerances
-----------------------------
* Singular values of ``hop`` below ``RANK_TOLERANCE`` times the largest are treated as zero.
* ``| |lambda| - 1 | < UNIT_CIRCLE_TOLERANCE``: candidate propagating mode; its velocity
  decides. Otherwise the mode is decaying (``|lambda| < 1``) or growing.
* Candidates with ``|lambda| != 1`` beyond rounding of a simple eigenvalue (a cluster of
  them more than ``1e-10`` off the circle) are checked against the band structure: the
  distance from the energy to the spectrum of the Hermitian ``H(k)``, minimized over ``k``
  near the cluster, is accurate to the rounding of energies, while the moduli of two
  solutions near merging are only accurate to about ``1e-8``. If no band crosses the
  energy there and none comes within ``1e-15 ||H(k)||`` of it (a few times the rounding of
  band energies), the energy lies in a gap (for example the tiny hybridization gap of two
  edge states, ``2 x 1.6e-6`` in a quantum spin Hall ribbon 50 sites wide, or a hair
  outside a band edge) and the cluster is evanescent: its decaying solutions (where their
  moduli are resolved, i.e. off the circle by ten times their rounding error; else the
  eigenvectors of the merged eigenspace, one per pair, as at a band edge) join the
  decaying ones. Without this check a decaying and a growing solution that close to the
  circle would be mixed into a spurious propagating pair. 1e-12 outside a band edge the
  pair is ``|log |lambda|| ~ 1e-6`` from the circle: the decaying solution, not the
  band-edge eigenvector (which would be off by that much in the self-energy), is used.
* Decaying solutions of pairs near the circle (``|log |lambda|| < 1e-2``) are made
  current-free against their growing partners: rounding leaves them a spurious current of
  order ``eps / |log |lambda||``, which would show as a non-Hermitian part of the
  self-energy of a closed channel and a non-unitary S-matrix (``1e-10`` at ``1e-12``
  outside a band edge).
* Candidates with ``|lambda_i - lambda_j| < DEGENERACY_TOLERANCE`` are one degenerate set:
  the velocity operator is diagonalized in it (degenerate Hellmann-Feynman), which gives
  modes of definite velocity that carry no cross current. Each eigenvector keeps its own
  eigenvalue, so bands crossing the energy at close but distinct ``k`` stay exact Bloch
  solutions.
* Solutions within ``1e-2`` of the unit circle (in ``|log |lambda||``) and closer than
  ``1e-3`` to another one, yet a thousand times farther from it than their own rounding
  error (not two solutions merging at a band edge), are refined by Newton's method with
  the residual of the Bloch equation formed in extended precision (NumPy's long double)
  from the exact ``h_cell``, ``hop`` and energy. Two solutions ``d`` apart have
  eigenvectors accurate only to ``eps / d`` along each other, and ``h_cell - E`` rounds
  the energy by ``eps ||h_cell||``: the electron- and hole-like solutions of a
  superconducting lead with a gap ``Delta`` far below the bandwidth are ``Delta / v``
  apart, and Andreev reflection would be off by ``eps t / Delta`` (3e-8 at
  ``Delta = 1e-8 t``; 3e-12 refined). Where long double is only double precision this
  step is skipped.
* ``|v| <= VELOCITY_TOLERANCE * ||hop||`` (2-norm): the solution does not propagate. This
  is the case of an energy exactly at a band edge (or within about ``1e-13 ||hop||`` of
  it), where two solutions merge (a Jordan block: one eigenvector at ``k_edge`` carrying no
  current). A slow candidate (``|v| < 1e-2 ||hop||``) is also treated so when its distance
  to the nearest other candidate is below ten times its rounding error (estimated from its
  condition number): rounding splits merging solutions by about the square root of the
  machine precision and gives them small spurious velocities. As in Kwant, such modes are
  not counted as propagating: the mode count at a band edge is the one just outside the
  band, and the band-edge eigenvector is put among the decaying solutions (the common limit
  of the retarded solution from both sides of the edge), so the self-energy stays finite
  and exact and the S-matrix unitary.
* A band edge can share its ``k`` with bands that cross the energy there (for example a band
  minimum at ``k = pi`` where two other bands cross). The set of ``s`` solutions at that
  ``k`` then has only ``d < s`` eigenvectors: ``s - d`` band edges (2 x 2 Jordan blocks)
  and ``2 d - s`` crossing bands. The velocity operator, diagonalized on the eigenvectors,
  vanishes on exactly one direction per edge (the merging solutions carry no current, nor
  any cross current with the others): those directions go with the decaying solutions, the
  others are propagating modes with their band velocities. Bands touching the energy to
  third or higher order in ``k - k0`` at the energy itself are not resolved and raise
  ``RuntimeError`` (shifting the energy by ``1e-9`` resolves them).
* An energy can coincide with a bound state of the semi-infinite lead itself (the cells
  ``m >= 0`` alone, cut off from cell ``-1``): then ``X`` is singular and ``Sigma`` has a
  pole, ``Sigma ~ R / (E - E_b)`` (taken so where the reciprocal condition number of ``X``
  is below ``1e-10``: closer to the pole than its own rounding). This happens for instance
  in a quantum spin Hall ribbon whose two helical edges hybridize into a gapped 1D Dirac
  system: at some widths its end binds a Kramers pair pinned at ``E = 0`` by the
  particle-hole symmetry of the model. The pole does not show in the attached system (the
  divergent direction of ``Sigma`` is projected out of its Green's function), whose
  S-matrix is continuous through ``E_b``. ``modes`` then returns the modes at
  ``E + POLE_ENERGY_SHIFT * ||hop||`` (2-norm), or at ``E - POLE_ENERGY_SHIFT * ||hop||``
  if that is a pole too: the nearest energies where ``Sigma`` is finite, as accurate as
  any energy that close to the pole (the rounding error of ``Sigma`` grows as the inverse
  distance to the pole), with the reported momenta and velocities those of the shifted
  energy.
* An energy on a flat band of the lead (a cell state decoupled from the neighbouring cells,
  or more generally an energy that ``H(k)`` has at every ``k``) has infinitely many states
  and no well-defined set of modes; it raises ``ValueError``.

References: the stabilized mode problem follows the ideas of M. Wimmer, PhD thesis
(Regensburg, 2008) and C. W. Groth et al., New J. Phys. 16, 063065 (2014).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg as la
import scipy.linalg.lapack as la_lapack
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from . import _checks

__all__ = [
    "DEGENERACY_TOLERANCE",
    "POLE_ENERGY_SHIFT",
    "RANK_TOLERANCE",
    "SINGLE_THREAD_MAX_ORBITALS",
    "UNIT_CIRCLE_TOLERANCE",
    "VELOCITY_TOLERANCE",
    "Bands",
    "LeadData",
    "PropagatingModes",
    "StabilizedModes",
    "bands",
    "modes",
    "phs_symmetrization",
    "selfenergy",
    "square_selfenergy",
]

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Singular values of ``hop`` below this fraction of the largest one are treated as zero.
RANK_TOLERANCE = 1e-12
#: ``| |lambda| - 1 |`` below which a solution is examined as a propagating candidate.
UNIT_CIRCLE_TOLERANCE = 1e-5
#: Propagating candidates closer than this in ``lambda`` form one degenerate set.
DEGENERACY_TOLERANCE = 1e-6
#: Relative velocity below which a Bloch solution is treated as a band-edge (non-propagating)
#: solution; see the module docstring for the scale it multiplies.
VELOCITY_TOLERANCE = 1e-6
#: Relative energy shift (times the 2-norm of ``hop``) at which the modes of an energy on a
#: pole of the self-energy (a bound state of the semi-infinite lead) are computed.
POLE_ENERGY_SHIFT = 1e-9

# Relative tolerances of the input checks and of internal rank decisions.
_HERMITIAN_TOLERANCE = 1e-10
_INDEPENDENCE_TOLERANCE = 1e-4
_NULL_SPACE_TOLERANCE = 1e-9
# Solutions of a cluster closer than this in lambda (but not equal) are taken together as
# one eigenspace at their mean lambda: their individual eigenvectors are accurate only to
# about eps / spread along each other, worse than the spread itself (the error of the
# common lambda) below about sqrt(eps).
_SEPARATE_EIGENVECTORS = 1e-8
_EPS = float(np.finfo(float).eps)
# A cluster of candidates whose moduli leave the unit circle by more than this is checked
# against the band structure; a gap wider than this (times ||hop||) makes it evanescent.
_OFF_CIRCLE_CHECK = 1e-10
# Reciprocal condition number of one side of the mode pencil above which its eigenproblem is
# solved as a standard one.
_STANDARD_EIGEN_RCOND = 1e-3
# Reciprocal condition of the interface part of the outgoing/decaying basis below which the
# energy is taken as a pole of the self-energy (closer to it than the pole's own rounding).
_POLE_RCOND = 1e-10
# The side of the unit circle of a solution is trusted where |log |lambda|| exceeds this
# many times its rounding error (estimated, to first order, from its condition number; the
# estimate holds once the pair is split by more than about sqrt(eps), i.e. from a few times
# the rounding of energies outside a band edge). Even 10% off, a decaying solution beats
# the band-edge eigenvector, which is off by all of |log |lambda||.
_RESOLVED_MARGIN = 10.0
# Normalized cross current |J_ij| / sqrt(|J_ii J_jj|) of two unit-circle eigenvectors above
# which the eigensolver has not separated them (an exactly degenerate pair, returned as an
# arbitrary basis of its eigenspace): their velocities then come from the degenerate
# Hellmann-Feynman problem. Bloch solutions at distinct k carry no cross current at all.
_CROSS_CURRENT_COUPLING = 1e-3
# Relative velocity below which a propagating candidate is checked for being resolved from
# its neighbours (see ``unresolved`` in ``_block_modes``).
_SUSPECT_VELOCITY = 1e-2
# Cross currents of unit-current modes at or below this are left uncorrected: the correction
# would change a mode by less than 1e-12 (the S-matrix targets are 1e-10).
_CROSS_CURRENT_FLOOR = 1e-12
# Relative velocity above which a slow mode computed from the Hermitian H(k) propagates.
_BAND_VELOCITY_FLOOR = 1e-9
# Depth inside the band (times ||H(k)||) below which an energy counts as on the band edge.
_EDGE_RESOLUTION = 2e-14
# Distance outside a band (times ||H(k)||) from which the band is taken not to reach the
# energy: a few times the rounding of the band energies.
_BAND_MISS_RESOLUTION = 1e-15
# |log |lambda|| below which a decaying solution's pair is made current-free.
_PAIR_CORRECTION_REACH = 1e-2
# Solutions within this |log |lambda|| of the unit circle and closer than _CLOSE_SOLUTIONS
# in lambda to another one are refined in extended precision where their rounding error is
# below 1 / _REFINE_MARGIN of that distance (see _refined_close_eigenpairs).
_REFINE_REACH = 1e-2
_CLOSE_SOLUTIONS = 1e-3
_REFINE_MARGIN = 1e3
# NumPy's long double: 80-bit extended precision on x86 Linux; where it is only double
# precision (some platforms), close solutions keep the eigensolver's accuracy.
_EXTENDED_EPS = float(np.finfo(np.longdouble).eps)
_HAS_EXTENDED_PRECISION = np.finfo(np.longdouble).nmant > np.finfo(float).nmant
_NEWTON_STEPS = 6
# Residual of a refined solution, relative to the size of the terms of T(lambda) phi, below
# which it is accepted (a thousand roundings of extended precision; a double-precision
# solution leaves about 1e-16).
_NEWTON_RESIDUAL = 1e3 * _EXTENDED_EPS


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _complex_matrix(value: ArrayLike, name: str) -> ComplexArray:
    """A finite complex 2-D array (a copy), or an error that names ``name``."""
    if hasattr(value, "toarray"):  # scipy.sparse matrices
        value = value.toarray()
    try:
        arr = np.array(value, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric matrix, got {_checks._show(value)}") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    return arr


def _lead_matrices(h_cell: ArrayLike, hop: ArrayLike) -> tuple[ComplexArray, ComplexArray]:
    """Validated ``(h_cell, hop)``: square, same shape, ``h_cell`` Hermitian."""
    h = _complex_matrix(h_cell, "h_cell")
    v = _complex_matrix(hop, "hop")
    if h.shape[0] != h.shape[1]:
        raise ValueError(f"h_cell must be square (n, n), got shape {h.shape}")
    if v.shape != h.shape:
        raise ValueError(
            f"hop must have the shape of h_cell {h.shape} (cell orbitals x cell orbitals), "
            f"got shape {v.shape}"
        )
    scale = max(float(np.max(np.abs(h), initial=0.0)), 1.0)
    deviation = float(np.max(np.abs(h - h.conj().T), initial=0.0))
    if deviation > _HERMITIAN_TOLERANCE * scale:
        raise ValueError(
            f"h_cell must be Hermitian; max |h_cell - h_cell^dagger| = {deviation:.3g}"
        )
    return h, v


def _index_array(value: ArrayLike, name: str, size: int, what: str) -> IntArray:
    """1-D array of distinct integers in ``range(size)``."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must contain integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= size)
    if np.any(bad):
        raise ValueError(
            f"{name} contains {int(arr[bad][0])}, which is not a valid {what} index "
            f"(valid: 0..{size - 1})"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} contains repeated indices: {arr.tolist()}")
    return arr


def _projector_blocks(
    projectors: Sequence[ArrayLike] | None, h: ComplexArray, v: ComplexArray
) -> list[ComplexArray]:
    """Validated conservation-law projectors (or the single identity block)."""
    n = h.shape[0]
    if projectors is None:
        return [np.eye(n, dtype=complex)]
    if isinstance(projectors, np.ndarray) or not isinstance(projectors, Sequence):
        raise TypeError(
            "projectors must be a list of (n, n_b) matrices, one per conserved block, got "
            f"{_checks._show(projectors)}"
        )
    blocks = []
    for b, p in enumerate(projectors):
        arr = _complex_matrix(p, f"projectors[{b}]")
        if arr.shape[0] != n:
            raise ValueError(
                f"projectors[{b}] must have {n} rows (the cell orbitals), got shape {arr.shape}"
            )
        blocks.append(arr)
    if not blocks:
        raise ValueError("projectors must contain at least one block")
    stacked = np.hstack(blocks)
    if stacked.shape[1] != n:
        raise ValueError(
            f"the projectors must together span all {n} cell orbitals; their columns add up "
            f"to {stacked.shape[1]}"
        )
    gram_error = float(np.max(np.abs(stacked.conj().T @ stacked - np.eye(n)), initial=0.0))
    if gram_error > 1e-8:
        raise ValueError(
            "the columns of the projectors must be orthonormal (within and across blocks); "
            f"max |P^dagger P - 1| = {gram_error:.3g}"
        )
    scale = max(float(np.max(np.abs(h), initial=0.0)), float(np.max(np.abs(v), initial=0.0)))
    for name, mat in (("h_cell", h), ("hop", v)):
        rotated = stacked.conj().T @ mat @ stacked
        leak = rotated.copy()
        start = 0
        for p in blocks:
            stop = start + p.shape[1]
            leak[start:stop, start:stop] = 0
            start = stop
        worst = float(np.max(np.abs(leak), initial=0.0))
        if worst > 1e-10 * max(scale, 1e-300):
            raise ValueError(
                f"{name} couples different projector blocks (max coupling {worst:.3g}); the "
                "projectors must describe a conservation law of the lead"
            )
    return blocks


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class LeadData:
    """A lead attached to a scattering region, at the level of plain matrices.

    The system orbital ``interface_sys[a]`` plays the role of orbital ``interface_cell[a]`` of
    the lead cell ``m = -1``, so the coupling between the system and the first lead cell is
    ``<interface_sys[a]| H |cell 0, orbital b> = hop[interface_cell[a], b]``. Rows of ``hop``
    not listed in ``interface_cell`` must be zero (those orbitals of cell ``-1`` would couple
    to the lead, but the system has no orbital in their place).

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian ``<m|H|m>`` (energy units).
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>`` towards the next cell away from the system.
    interface_sys : (n_i,) array_like of int
        System orbital indices of the interface.
    interface_cell : (n_i,) array_like of int
        Lead-cell orbital each interface orbital stands for.
    projectors : list of (n, n_b) array_like, optional
        Conservation law: orthonormal columns spanning blocks that ``h_cell`` and ``hop``
        leave invariant (for example spin up and spin down). Modes and S-matrix blocks are
        resolved by block, in this order.

    Raises
    ------
    ValueError
        Shapes that do not match, a non-Hermitian ``h_cell``, bad or repeated indices, or
        nonzero rows of ``hop`` missing from ``interface_cell``.

    Examples
    --------
    A 1D chain with hopping -1 attached to orbital 0 of a system:

    >>> from mesoscopic.leads import LeadData
    >>> lead = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> lead.num_orbitals
    1
    """

    h_cell: ComplexArray
    hop: ComplexArray
    interface_sys: IntArray
    interface_cell: IntArray
    projectors: tuple[ComplexArray, ...] | None = None

    def __post_init__(self) -> None:
        h, v = _lead_matrices(self.h_cell, self.hop)
        n = h.shape[0]
        cell = _index_array(self.interface_cell, "interface_cell", n, "lead-cell orbital")
        sys_arr = np.asarray(self.interface_sys)
        if sys_arr.ndim != 1 or sys_arr.shape != cell.shape:
            raise ValueError(
                "interface_sys and interface_cell must be 1-D and of the same length, got "
                f"shapes {sys_arr.shape} and {cell.shape}"
            )
        system = _index_array(sys_arr, "interface_sys", np.iinfo(np.int64).max, "system orbital")
        scale = float(np.max(np.abs(v), initial=0.0))
        unlisted = np.setdiff1d(np.arange(n), cell)
        if unlisted.size:
            row_norms = np.max(np.abs(v[unlisted]), axis=1)
            bad = unlisted[row_norms > 1e-12 * scale]
            if bad.size:
                raise ValueError(
                    f"hop has nonzero rows {bad.tolist()} that are not listed in interface_cell;"
                    " every cell orbital that hops to the next cell must have a system orbital "
                    "in its place at the interface"
                )
        blocks = None
        if self.projectors is not None:
            blocks = tuple(_frozen(p) for p in _projector_blocks(self.projectors, h, v))
        object.__setattr__(self, "h_cell", _immutable(h))
        object.__setattr__(self, "hop", _immutable(v))
        object.__setattr__(self, "interface_sys", _frozen(system))
        object.__setattr__(self, "interface_cell", _frozen(cell))
        object.__setattr__(self, "projectors", blocks)

    @property
    def num_orbitals(self) -> int:
        """Number of orbitals ``n`` in a lead cell."""
        return int(self.h_cell.shape[0])

    def modes(self, energy: float) -> tuple[PropagatingModes, StabilizedModes]:
        """Modes of this lead at ``energy``, in the solvers' form (``_modes_at_energy``).

        The last few results are kept by the lead's matrices and the energy, so a loop
        that solves one system again and again (disorder realizations, gate values) with
        the same leads computes their modes once. The results are read-only.
        """
        # The matrices and projectors were validated on construction.
        e = _checks.real_energy(energy)
        projectors = self.projectors
        key = (projectors is None, _lead_digest(self.h_cell, self.hop, e, *(projectors or ())))
        with _RECENT_MODES_LOCK:
            cached = _RECENT_MODES.get(key)
            if cached is not None:
                _RECENT_MODES.move_to_end(key)
                return cached[0]
        n = self.num_orbitals
        blocks = [np.eye(n, dtype=complex)] if projectors is None else list(projectors)
        with _blas_threads_for(n):
            result = _modes_with_pole_shift(
                self.h_cell, self.hop, e, blocks, projectors is not None
            )
        size = _modes_nbytes(result)
        if size <= _RECENT_MODES_BYTES // 4:
            with _RECENT_MODES_LOCK:
                _RECENT_MODES[key] = (result, size)
                total = sum(kept[1] for kept in _RECENT_MODES.values())
                while len(_RECENT_MODES) > _RECENT_MODES_SIZE or total > _RECENT_MODES_BYTES:
                    total -= _RECENT_MODES.popitem(last=False)[1][1]
        return result


#: Lead modes recently computed by :meth:`LeadData.modes`, by (energy, digest of the
#: matrices), with their size in bytes: at most 16 and 64 MiB (wide leads keep fewer).
_RECENT_MODES: OrderedDict[Any, tuple[tuple[PropagatingModes, StabilizedModes], int]] = (
    OrderedDict()
)
_RECENT_MODES_SIZE = 16
_RECENT_MODES_BYTES = 64 << 20
_RECENT_MODES_LOCK = threading.Lock()


def _modes_nbytes(value: Any) -> int:
    """Bytes of the arrays held by a lead's modes (dataclasses, tuples and arrays)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_modes_nbytes(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(_modes_nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


@dataclass(frozen=True, eq=False)
class PropagatingModes:
    """Propagating modes of a lead at one energy, normalized to unit current.

    Constructed as Kwant's: ``PropagatingModes(wave_functions, velocities, momenta)``
    (``block_nmodes`` and ``blocks`` then describe a single block).

    Attributes
    ----------
    wave_functions : (n, 2 * num_modes) complex ndarray
        Mode wave functions in cell ``m = 0``: first the ``num_modes`` incoming modes
        (``v < 0``), then the ``num_modes`` outgoing ones (``v > 0``), each group ordered by
        conservation-law block. Within a block, :func:`modes` orders them as Kwant does
        (incoming by increasing, outgoing by decreasing momentum, then by velocity); the
        package's solvers order both groups by increasing momentum.
    velocities : (2 * num_modes,) float ndarray
        ``dE/dk`` (energy times cell length, ``hbar = 1``). ``|v| * |phi|^2 = 1``.
    momenta : (2 * num_modes,) float ndarray
        ``k`` (inverse cell length); ``(-pi, pi]`` from the solvers, ``[-pi, pi)`` from
        :func:`modes`, as in Kwant.
    block_nmodes : sequence of int
        Incoming (= outgoing) modes in each conservation-law block; one entry without
        projectors.
    blocks : (2 * num_modes,) int ndarray
        Block of each mode.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import modes
    >>> prop, _ = modes([[0.0]], [[-1.0]], energy=-1.0)   # E = -2 cos k with k = pi/3
    >>> prop.num_modes
    1
    >>> np.round(prop.velocities, 6).tolist()     # dE/dk = 2 sin k
    [-1.732051, 1.732051]
    """

    wave_functions: ComplexArray
    velocities: FloatArray
    momenta: FloatArray
    block_nmodes: Sequence[int] | None = None
    blocks: IntArray | None = None

    def __post_init__(self) -> None:
        counts = self.block_nmodes
        if counts is None:
            counts = (int(np.size(self.momenta)) // 2,)
            object.__setattr__(self, "block_nmodes", counts)
        if self.blocks is None:
            labels = np.repeat(np.arange(len(counts)), list(counts))
            object.__setattr__(self, "blocks", np.concatenate([labels, labels]).astype(np.int64))

    @property
    def num_modes(self) -> int:
        """Number of open channels: incoming modes (equal to outgoing modes)."""
        return int(self.momenta.size // 2)


class _SelfEnergyArray(np.ndarray):
    """A read-only self-energy matrix that can also be called, as Kwant's method is.

    ``stab.selfenergy`` is the ``(n, n)`` matrix on the cell ``-1``; ``stab.selfenergy()``
    returns a copy of its ``(m, m)`` block on the ``m`` orbitals that Kwant's rectangular
    ``h_hop`` (shape ``(n, m)``) couples to (the whole matrix when ``m = n``).
    """

    _interface: int | None

    def __array_finalize__(self, obj: Any) -> None:
        self._interface = getattr(obj, "_interface", None)

    def __call__(self) -> ComplexArray:
        size = self.shape[0] if self._interface is None else self._interface
        return np.array(np.asarray(self)[:size, :size])


def _selfenergy_array(sigma: ComplexArray, interface: int | None = None) -> _SelfEnergyArray:
    result = np.asarray(sigma, dtype=complex).view(_SelfEnergyArray)
    result._interface = interface
    result.flags.writeable = False
    return result


@dataclass(frozen=True, eq=False)
class StabilizedModes:
    """Outgoing and decaying solutions of a lead, in reduced coordinates, and its self-energy.

    With ``hop = hop_left @ hop_right^dagger`` (shapes ``(n, r)``), a lead solution is
    described at the interface by ``alpha = hop_left^dagger psi_{-1}`` (what the lead sees of
    cell ``-1``) and ``beta = hop_right^dagger psi_0`` (what cell ``-1`` sees of the lead:
    ``hop psi_0 = hop_left beta``). The ``r`` columns of ``alpha_out``/``beta_out`` span all
    solutions that are outgoing or decay away from the system; the first ``num_modes`` of them
    are the outgoing propagating modes, in the order and normalization of
    :class:`PropagatingModes`. ``alpha_in``/``beta_in`` are the incoming propagating modes.

    Kwant's names are views of the same data: ``vecs`` and ``vecslmbdainv``
    (``(r, r + num_modes)``: incoming, outgoing, then evanescent columns, the two halves of
    Kwant's stabilized basis: ``beta`` and ``alpha``, up to a sign per conservation-law
    block), ``nmodes`` (``num_modes``), ``sqrt_hop`` (``hop_left``, the rows Kwant's
    ``h_hop`` couples to) and ``selfenergy()``. They satisfy Kwant's relations: the current
    ``1j * vecs^dagger vecslmbdainv + h.c.`` is ``+1`` on incoming, ``-1`` on outgoing
    modes and zero elsewhere, and ``selfenergy() = sqrt_hop vecs_out vecslmbdainv_out^{-1}
    sqrt_hop^dagger`` over the outgoing and evanescent columns.

    Attributes
    ----------
    hop_left, hop_right : (n, r) complex ndarray
        Factors of ``hop`` (``r`` = its numerical rank, summed over blocks).
    alpha_out, beta_out : (r, r) complex ndarray
        Outgoing and decaying basis.
    alpha_in, beta_in : (r, num_modes) complex ndarray
        Incoming propagating modes.
    selfenergy : (n, n) complex ndarray
        Exact retarded self-energy on cell ``-1`` (energy units). It can also be called,
        ``selfenergy()``, as Kwant's method (a copy; the ``(m, m)`` block for Kwant's
        rectangular ``h_hop`` of shape ``(n, m)``).
    sources : (n, num_modes) complex ndarray
        ``hop phi_j - Sigma phi_j exp(-i k_j)`` for each incoming mode ``j``: the term an
        incoming wave adds to the equations of the cell ``-1`` orbitals. It is also
        ``hop psi_0`` of the lead's own scattering state with a hard wall at cell ``-1``, and
        ``i (Sigma - Sigma^dagger) = sources @ sources^dagger``.
    num_modes : int
        Number of open channels.
    """

    hop_left: ComplexArray
    hop_right: ComplexArray
    alpha_out: ComplexArray
    beta_out: ComplexArray
    alpha_in: ComplexArray
    beta_in: ComplexArray
    selfenergy: Any  # a _SelfEnergyArray once constructed
    sources: ComplexArray
    num_modes: int
    _alpha_out_lu: Any = field(default=None, repr=False)
    _row_signs: Any = field(default=None, repr=False)
    _interface_size: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.selfenergy, _SelfEnergyArray):
            object.__setattr__(
                self, "selfenergy", _selfenergy_array(self.selfenergy, self._interface_size)
            )

    def _signed(self, part: ComplexArray) -> ComplexArray:
        return part if self._row_signs is None else part * self._row_signs[:, None]

    @property
    def nmodes(self) -> int:
        """Kwant's name of :attr:`num_modes`."""
        return self.num_modes

    @property
    def vecs(self) -> ComplexArray:
        """Kwant's first half of the stabilized basis, ``(r, r + num_modes)``."""
        return self._signed(np.hstack([self.beta_in, self.beta_out]))

    @property
    def vecslmbdainv(self) -> ComplexArray:
        """Kwant's second half of the stabilized basis, ``(r, r + num_modes)``."""
        return self._signed(np.hstack([self.alpha_in, self.alpha_out]))

    @property
    def sqrt_hop(self) -> ComplexArray:
        """Kwant's hopping factor: ``hop_left`` on the orbitals ``h_hop`` couples to."""
        size = self.hop_left.shape[0] if self._interface_size is None else self._interface_size
        return np.array(self.hop_left[:size])

    def mode_amplitudes(self, alpha: ArrayLike) -> ComplexArray:
        """Expand outgoing/decaying lead waves given their reduced interface amplitudes.

        Parameters
        ----------
        alpha : (r,) or (r, k) array_like
            ``hop_left^dagger psi_{-1}`` of the outgoing part of the lead wave.

        Returns
        -------
        (r,) or (r, k) complex ndarray
            Coefficients in the ``alpha_out`` basis; the first ``num_modes`` are the
            amplitudes of the outgoing propagating modes (unit current normalization).
        """
        arr = np.asarray(alpha, dtype=complex)
        if self.alpha_out.shape[0] == 0:
            return arr.copy()
        return la.lu_solve(self._alpha_out_lu, arr, check_finite=False)


# --------------------------------------------------------------------------------------------
# Bands
# --------------------------------------------------------------------------------------------


def _bloch_hamiltonian(h: ComplexArray, v: ComplexArray, k: float) -> ComplexArray:
    phase = complex(math.cos(k), math.sin(k))
    return h + v * phase + v.conj().T * phase.conjugate()


def _degenerate_groups(values: FloatArray, tolerance: float) -> list[NDArray[np.intp]]:
    """Runs of sorted ``values`` that differ by at most ``tolerance``."""
    if values.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(values) > tolerance) + 1
    return list(np.split(np.arange(values.size), breaks))


class Bands:
    """Callable band structure ``E_n(k)`` of a lead given by bare matrices.

    ``hop`` is ``<m|H|m+1>`` as in the solvers' form; :class:`mesoscopic.physics.Bands` is
    Kwant's ``Bands`` on a finalized lead (the same momenta).

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian.
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>``.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import Bands
    >>> chain = Bands([[0.0]], [[-1.0]])   # E = -2 cos k, v = 2 sin k
    >>> energies, velocities = chain(np.pi / 3, derivative_order=1)
    >>> np.round(energies, 12).tolist(), np.round(velocities, 6).tolist()
    ([-1.0], [1.732051])
    """

    def __init__(self, h_cell: ArrayLike, hop: ArrayLike) -> None:
        self.h_cell, self.hop = _lead_matrices(h_cell, hop)

    def __call__(
        self, k: float, *, derivative_order: int = 0
    ) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Energies at momentum ``k`` (and velocities for ``derivative_order=1``).

        Parameters
        ----------
        k : float
            Momentum in units of the inverse cell length.
        derivative_order : {0, 1}, keyword-only
            ``1`` also returns the velocities ``dE_n/dk`` (Hellmann-Feynman; within a set of
            degenerate bands the velocity operator is diagonalized, and the velocities of
            the set are listed in ascending order).

        Returns
        -------
        energies : (n,) float ndarray
            Sorted band energies.
        velocities : (n,) float ndarray
            Only for ``derivative_order=1``; energy times cell length.
        """
        momentum = float(_checks.real_array(k, "k"))
        if derivative_order not in (0, 1):
            raise ValueError(f"derivative_order must be 0 or 1, got {derivative_order!r}")
        hamiltonian = _bloch_hamiltonian(self.h_cell, self.hop, momentum)
        if derivative_order == 0:
            return np.asarray(la.eigvalsh(hamiltonian), dtype=float)
        energies, vectors = la.eigh(hamiltonian)
        phase = complex(math.cos(momentum), math.sin(momentum))
        velocity_operator = 1j * (self.hop * phase - self.hop.conj().T * phase.conjugate())
        scale = max(float(np.max(np.abs(energies), initial=0.0)), 1.0)
        velocities = np.empty_like(energies)
        for group in _degenerate_groups(energies, 1e-10 * scale):
            sub = vectors[:, group]
            velocities[group] = la.eigvalsh(sub.conj().T @ velocity_operator @ sub)
        return np.asarray(energies, dtype=float), np.asarray(velocities, dtype=float)


def bands(h_cell: ArrayLike, hop: ArrayLike, momenta: ArrayLike) -> FloatArray:
    """Band energies of a lead at many momenta.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian (energy units).
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>``.
    momenta : (n_k,) array_like
        Momenta ``k`` in units of the inverse cell length.

    Returns
    -------
    (n_k, n) float ndarray
        Sorted eigenvalues of ``H(k) = h_cell + hop e^{ik} + hop^dagger e^{-ik}``.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import bands
    >>> np.round(bands([[0.0]], [[-1.0]], [0.0, np.pi]), 12).tolist()
    [[-2.0], [2.0]]
    """
    h, v = _lead_matrices(h_cell, hop)
    ks = _checks.real_array(momenta, "momenta")
    if ks.ndim > 1:
        raise ValueError(f"momenta must be a scalar or 1-D array, got shape {ks.shape}")
    ks = np.atleast_1d(ks)
    phases = np.exp(1j * ks)[:, None, None]
    stack = h[None] + v[None] * phases + v.conj().T[None] * phases.conj()
    return np.asarray(np.linalg.eigvalsh(stack), dtype=float)


# --------------------------------------------------------------------------------------------
# Modes of one conservation-law block
# --------------------------------------------------------------------------------------------


class _LoneModes(NamedTuple):
    """A block's candidates on the unit circle, each taken as a mode on its own: the
    common case of a lone solution, made for all of them at once (:class:`_BlockSolve`)."""

    fast: NDArray[np.bool_]  # velocity well away from zero and at most 2.5 ||hop||
    on_circle: NDArray[np.bool_]  # off the circle by no more than rounding
    velocities: FloatArray
    coefficients: FloatArray  # 1 / |phi|: unit-norm wave functions
    momenta: FloatArray  # in (-pi, pi]
    vectors: ComplexArray  # reduced vectors of unit current, one column each
    waves: ComplexArray  # their wave functions
    mirrored: ComplexArray  # the mirror image's wave functions, phi / lambda


@dataclass
class _BlockModes:
    """Modes of one block, in that block's own orbitals and reduced coordinates."""

    hop_left: ComplexArray  # (n_b, r)
    hop_right: ComplexArray  # (n_b, r)
    in_vectors: ComplexArray  # (2r, p): stacked (alpha_{-1}, beta_0)
    in_wave_functions: ComplexArray  # (n_b, p)
    in_momenta: FloatArray
    in_velocities: FloatArray
    out_vectors: ComplexArray  # (2r, p)
    out_wave_functions: ComplexArray
    out_momenta: FloatArray
    out_velocities: FloatArray
    decaying_vectors: ComplexArray  # (2r, r - p)


def _near_edge_message(energy: float) -> str:
    return (
        f"could not classify the lead modes at energy {energy!r}: it lies within numerical "
        "precision of a band edge of unusual (higher-order or degenerate) kind; shift the "
        "energy by a small amount (e.g. 1e-9 of the hopping)"
    )


def _hop_factors(v: ComplexArray) -> tuple[NDArray[np.intp], NDArray[np.intp], Any, Any, Any]:
    """SVD of the nonzero part of ``v``: ``(rows, cols, u, singular, wh)``.

    Only the nonzero rows and columns of ``v`` enter the factorization (wide cells with few
    orbitals hopping to the next cell then need only a small SVD). Of ``v`` and
    ``v^dagger`` the one whose bytes come first is factorized, and the other's factors are
    read off it, so that a lead and its mirror image (hopping ``v^dagger``) get exactly
    swapped factors and can share their eigenproblem.
    """
    v = _derived(v, "plain")  # no negative zeros: v and the dagger of its mirror are the same
    if _solved_as_mirror(v):
        # v^dagger = U S W^dagger, so v = W S U^dagger.
        dagger = _derived(v, "dagger")
        cols, rows, u_dagger, singular, wh_dagger = _hop_factors_direct(dagger)
        return rows, cols, wh_dagger.conj().T, singular, u_dagger.conj().T
    return _hop_factors_direct(v)


#: Recent hopping factorizations (they do not depend on the energy): bytes digest -> SVD.
_FACTOR_CACHE: OrderedDict[bytes, tuple[Any, ...]] = OrderedDict()
_FACTOR_CACHE_SIZE = 8
_FACTOR_CACHE_LOCK = threading.Lock()


def _hop_factors_direct(
    v: ComplexArray,
) -> tuple[NDArray[np.intp], NDArray[np.intp], Any, Any, Any]:
    key = _array_digest(v)
    with _FACTOR_CACHE_LOCK:
        cached = _FACTOR_CACHE.get(key)
        if cached is not None:
            _FACTOR_CACHE.move_to_end(key)
            return cached
    rows = np.flatnonzero(np.any(v != 0, axis=1))
    cols = np.flatnonzero(np.any(v != 0, axis=0))
    if rows.size:
        u_small, singular, wh_small = la.svd(v[np.ix_(rows, cols)], full_matrices=False)
    else:
        u_small, singular, wh_small = np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0))
    result = (rows, cols, u_small, singular, wh_small)
    for array in result:
        array.flags.writeable = False
    with _FACTOR_CACHE_LOCK:
        _FACTOR_CACHE[key] = result
        while len(_FACTOR_CACHE) > _FACTOR_CACHE_SIZE:
            _FACTOR_CACHE.popitem(last=False)
    return result


@dataclass(frozen=True, eq=False)
class _Pencil:
    """The stabilized mode problem of one lead block at one energy (module docstring)."""

    rank: int
    singular: FloatArray  # singular values of hop, descending
    left: ComplexArray  # A, (n, rank)
    right: ComplexArray  # B, (n, rank): hop = A B^dagger
    lu: tuple[ComplexArray, Any]  # LU of M = h - E + i (A A^dagger + B B^dagger)
    matrix_l: ComplexArray  # L, (2 rank, 2 rank)
    matrix_r: ComplexArray  # R


def _hop_split(v: ComplexArray) -> tuple[int, FloatArray, ComplexArray, ComplexArray]:
    """``(rank, singular, A, B)`` with ``v = A B^dagger``, ``A`` and ``B`` of shape (n, rank)."""
    return _hop_terms(v)[:4]


def _hop_terms(v: ComplexArray) -> tuple[int, FloatArray, ComplexArray, ComplexArray, Any]:
    """:func:`_hop_split` and the stabilizing term ``i (A A^dagger + B B^dagger)``, kept
    with a lead's immutable hopping (none of it depends on the energy)."""

    def compute() -> tuple[int, FloatArray, ComplexArray, ComplexArray, Any]:
        rank, singular, left, right = _hop_split_now(v)
        term = 1j * (left @ left.conj().T + right @ right.conj().T) if rank else None
        for array in (singular, left, right, term):
            if array is not None:
                array.flags.writeable = False
        return rank, singular, left, right, term

    return _array_fact(v, "hop terms", compute)


def _hop_split_now(v: ComplexArray) -> tuple[int, FloatArray, ComplexArray, ComplexArray]:
    n = v.shape[0]
    rows, cols, u_small, singular, wh_small = _hop_factors(v)
    rank = int(np.sum(singular > RANK_TOLERANCE * singular[0])) if singular.size else 0
    root = np.sqrt(singular[:rank])
    left = np.zeros((n, rank), dtype=complex)  # A
    right = np.zeros((n, rank), dtype=complex)  # B, so that v = A B^dagger
    left[rows] = u_small[:, :rank] * root
    right[cols] = wh_small[:rank].conj().T * root
    return rank, singular, left, right


def _stabilized_pencil(h: ComplexArray, v: ComplexArray, energy: float) -> _Pencil:
    n = h.shape[0]
    rank, singular, left, right, term = _hop_terms(v)
    if rank == 0:
        empty = np.zeros((0, 0), dtype=complex)
        return _Pencil(0, singular, left, right, (empty, None), empty, empty)

    shifted = h - energy * np.eye(n)
    stabilized = shifted + term
    lu = _lu_factor(stabilized)
    if _reciprocal_condition(lu, stabilized) < 1e-13:
        raise ValueError(
            f"energy {energy!r} lies on a flat band of the lead: a cell state that does not "
            "couple to the neighbouring cells is an eigenstate of h_cell at this energy, so "
            "the lead has infinitely many states there; shift the energy slightly"
        )
    solved = la.lu_solve(lu, np.hstack([left, right]), check_finite=False)
    g_left, g_right = solved[:, :rank], solved[:, rank:]
    a_ga = left.conj().T @ g_left
    a_gb = left.conj().T @ g_right
    b_ga = right.conj().T @ g_left
    b_gb = right.conj().T @ g_right
    eye = np.eye(rank)
    # Pencil L (alpha_{-1}, beta_0) = lambda R (alpha_{-1}, beta_0); see the module docstring.
    pencil_l = np.block([[-a_gb, 1j * a_gb], [b_gb, eye - 1j * b_gb]])
    pencil_r = np.block([[eye - 1j * a_ga, a_ga], [1j * b_ga, -b_ga]])
    return _Pencil(rank, singular, left, right, lu, pencil_l, pencil_r)


def _block_modes(h: ComplexArray, v: ComplexArray, energy: float) -> _BlockModes:
    """Modes of one block; a lead and its complex conjugate share one computation.

    The lead of the reversed magnetic field (or of any time-reversed Hamiltonian) has
    ``conj(h_cell)`` and ``conj(hop)``: its Bloch solutions are the complex conjugates,
    incoming and outgoing exchanged. Of the two, the one whose bytes come first is solved
    and the other read off it, so that the two field directions see the same lead modes to
    the last bit. A channel a hair inside its band moves T by ``T / (2 depth)`` per unit of
    energy: solved separately, the rounding of each direction's band energies alone broke
    ``T_ij(B) = T_ji(-B)`` by up to 1e-8 at 1e-12 inside a band.
    """
    if _solved_as_conjugate(h, v):
        conjugates = _derived(h, "conj"), _derived(v, "conj")
        return _conjugate_modes(_block_modes_direct(*conjugates, energy))
    return _block_modes_direct(h, v, energy)


def _solved_as_conjugate(h: ComplexArray, v: ComplexArray) -> bool:
    """Whether a block is solved through its complex conjugate (see :func:`_block_modes`):
    whether the bytes of ``conj(h), conj(v)`` come before those of ``h, v``.

    ``h`` and its conjugate have the same number of bytes, so the order of the pairs is
    that of ``h`` and its conjugate, or of ``v`` and its conjugate where those are equal.
    """
    first = _conjugate_order(h)
    return first < 0 if first else _conjugate_order(v) < 0


def _conjugate_order(matrix: ComplexArray) -> int:
    """-1, 0 or 1 as the canonical bytes of ``conj(matrix)`` come before, equal or after
    those of ``matrix`` (kept for a lead's immutable matrices)."""

    def compute() -> int:
        mine, conjugate = _canonical_bytes(matrix), _canonical_bytes(matrix.conj())
        return (conjugate > mine) - (conjugate < mine)

    return int(_array_fact(matrix, "conjugate-order", compute))


#: Largest array whose derived arrays (:func:`_derived`) are kept with it (a cell of 128
#: orbitals): the facts kept hold at most a few tens of megabytes of them.
_DERIVED_BYTES = 1 << 18


def _derived(array: ComplexArray, kind: str) -> ComplexArray:
    """``conj(array)`` (``kind="conj"``), ``array^dagger`` (``"dagger"``) or `array` itself
    (``"plain"``), without negative zeros: for a lead's immutable matrices (up to
    ``_DERIVED_BYTES``) the same immutable array each time, so that its own digests and
    orders are computed once too."""

    def compute() -> ComplexArray:
        if kind == "conj":
            return array.conj() + 0.0
        if kind == "dagger":
            return array.conj().T + 0.0
        return array + 0.0

    if array.nbytes > _DERIVED_BYTES:
        return compute()
    return _array_fact(array, "derived " + kind, lambda: _immutable(compute()))


def _conjugate_modes(modes_: _BlockModes) -> _BlockModes:
    """The modes of the complex-conjugate lead: ``psi -> conj(psi)``, ``k -> -k``."""

    def flipped(momenta: FloatArray) -> FloatArray:
        result = -np.asarray(momenta, dtype=float)
        return np.where(result <= -math.pi, result + 2 * math.pi, result)

    in_momenta = flipped(modes_.out_momenta)
    out_momenta = flipped(modes_.in_momenta)
    in_order = _kwant_order(_kwant_momenta(in_momenta), -modes_.out_velocities, incoming=True)
    out_order = _kwant_order(_kwant_momenta(out_momenta), -modes_.in_velocities, incoming=False)
    return _BlockModes(
        hop_left=modes_.hop_left.conj(),
        hop_right=modes_.hop_right.conj(),
        in_vectors=modes_.out_vectors.conj()[:, in_order],
        in_wave_functions=modes_.out_wave_functions.conj()[:, in_order],
        in_momenta=in_momenta[in_order],
        in_velocities=-modes_.out_velocities[in_order],
        out_vectors=modes_.in_vectors.conj()[:, out_order],
        out_wave_functions=modes_.in_wave_functions.conj()[:, out_order],
        out_momenta=out_momenta[out_order],
        out_velocities=-modes_.in_velocities[out_order],
        decaying_vectors=modes_.decaying_vectors.conj(),
    )


#: Recent block modes: digest of (h_cell, hop, energy) -> modes, mirror images included.
_MODES_CACHE: OrderedDict[bytes, _BlockModes] = OrderedDict()
_MODES_CACHE_SIZE = 8
_MODES_CACHE_LOCK = threading.Lock()
#: Whether a lead's mirror image is read off its modes (False only to test the map).
_SHARE_MIRROR_MODES = True


def _block_modes_direct(h: ComplexArray, v: ComplexArray, energy: float) -> _BlockModes:
    """Modes of one block; a lead and its mirror image (hopping ``v^dagger``) share them.

    The lead at the other end of a wire has the hopping ``v^dagger`` away from the system:
    its Bloch solutions are this lead's with ``lambda -> 1 / lambda`` (``k -> -k``, the
    same ``phi``), so incoming and outgoing modes and decaying and growing solutions
    exchange roles (see :func:`_mirror_modes` for the exact map). Of the two, the lead
    whose hopping comes first in :func:`_solved_as_mirror`'s order is solved, always, with
    its growing solutions, and the other read off it: the result never depends on which is
    asked for first. Identical leads (the arms of a Hall bar) and mirror pairs at the same
    energy are kept in a small cache, so the second costs nothing.
    """
    key = _lead_digest(h, v, energy)
    with _MODES_CACHE_LOCK:
        cached = _MODES_CACHE.get(key)
        if cached is not None:
            _MODES_CACHE.move_to_end(key)
            return cached
    found: list[tuple[bytes, _BlockModes]] = []
    if not _SHARE_MIRROR_MODES:
        found.append((key, _solve_block(h, v, energy, mirror=False)[0]))
    elif _solved_as_mirror(v):
        dagger = _derived(v, "dagger")
        solved, mirrored = _solve_block(h, dagger, energy, mirror=True)
        found.append((_lead_digest(h, v, energy, dagger=True), solved))
        if mirrored is None:  # the classification is not symmetric here: solve directly
            mirrored = _solve_block(h, v, energy, mirror=False)[0]
        found.append((key, mirrored))
    else:
        dagger_key = _lead_digest(h, v, energy, dagger=True)
        solved, mirrored = _solve_block(h, v, energy, mirror=dagger_key != key)
        found.append((key, solved))
        if mirrored is not None:
            found.append((dagger_key, mirrored))
    result = found[0][1] if found[0][0] == key else found[-1][1]
    with _MODES_CACHE_LOCK:
        for entry_key, entry in found:
            _MODES_CACHE[entry_key] = entry
            _MODES_CACHE.move_to_end(entry_key)
        while len(_MODES_CACHE) > _MODES_CACHE_SIZE:
            _MODES_CACHE.popitem(last=False)
    return result


def _frozen_block_modes(modes_: _BlockModes) -> _BlockModes:
    """The same modes with read-only arrays (they are shared through the cache)."""
    for value in vars(modes_).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return modes_


def _solve_block(
    h: ComplexArray, v: ComplexArray, energy: float, *, mirror: bool
) -> tuple[_BlockModes, _BlockModes | None]:
    """Modes of one block and, with ``mirror``, those of its mirror image (hopping
    ``v^dagger``), or None where the mirror's classification of the solutions near the
    unit circle is not the exact image of this one's (it must then be solved itself).

    Three stages: the stabilized eigenproblem and the classification of its solutions by
    modulus (:class:`_BlockSolve`); the solutions on the unit circle, cluster by cluster,
    made propagating modes, band-edge or evanescent solutions
    (:meth:`_BlockSolve.add_cluster`); the assembly of the modes and of the mirror image
    (:meth:`_BlockSolve.assemble`).
    """
    pencil = _stabilized_pencil(h, v, energy)
    if pencil.rank == 0:
        empty = _frozen_block_modes(_empty_block_modes(h.shape[0]))
        return empty, (empty if mirror else None)
    solve = _BlockSolve(h, v, energy, pencil, mirror)
    for cluster in _clusters(solve.lam_unit):
        solve.add_cluster(cluster)
    return solve.assemble()


def _empty_block_modes(n: int) -> _BlockModes:
    """The modes of a block whose hopping vanishes: none."""
    empty_vec = np.zeros((0, 0), dtype=complex)
    empty_wf = np.zeros((n, 0), dtype=complex)
    empty_real = np.zeros(0)
    return _BlockModes(
        np.zeros((n, 0), complex), np.zeros((n, 0), complex),
        empty_vec, empty_wf, empty_real, empty_real,
        empty_vec, empty_wf, empty_real, empty_real, empty_vec,
    )  # fmt: skip


class _BlockSolve:
    """One block's mode solve at one energy, in stages (see :func:`_solve_block`).

    The constructor solves the stabilized eigenproblem and classifies its solutions as
    decaying, growing or candidates on the unit circle (and, with ``mirror``, checks that
    the mirror image classifies them the same way). :meth:`add_cluster` turns each cluster
    of candidates into propagating modes (normalized to unit current), band-edge solutions
    or current-free evanescent ones; :meth:`assemble` builds the block's modes and those of
    its mirror image.
    """

    def __init__(
        self, h: ComplexArray, v: ComplexArray, energy: float, pencil: _Pencil, mirror: bool
    ) -> None:
        self.h, self.v, self.energy, self.pencil = h, v, energy, pencil
        self.rank, self.singular = pencil.rank, pencil.singular
        solution = _shared_pencil_eigenproblem(h, v, energy, pencil)
        (alpha, beta), vectors = solution.pair, solution.vectors
        self.schur = solution.schur
        size = np.hypot(np.abs(alpha), np.abs(beta))
        pencil_norm = math.hypot(np.linalg.norm(pencil.matrix_l), np.linalg.norm(pencil.matrix_r))
        if np.any(size < 1e-13 * pencil_norm):
            raise ValueError(
                f"energy {energy!r} lies on a flat band of the lead: H(k) has the eigenvalue "
                f"{energy!r} at every momentum k, so the lead has infinitely many states at "
                "this energy and no well-defined set of modes; shift the energy slightly"
            )
        self.alpha, self.beta = alpha, beta
        self.vectors = vectors = vectors / np.linalg.norm(vectors, axis=0)
        self.abs_alpha, self.abs_beta = abs_alpha, abs_beta = np.abs(alpha), np.abs(beta)
        self.decaying = abs_alpha < (1 - UNIT_CIRCLE_TOLERANCE) * abs_beta
        self.growing = abs_alpha > (1 + UNIT_CIRCLE_TOLERANCE) * abs_beta
        self.candidates = candidates = np.flatnonzero(~self.decaying & ~self.growing)
        # The mirror image's classification (lambda -> 1 / lambda, i.e. alpha <-> beta).
        # Where its candidates differ from these (a modulus within rounding of the
        # tolerance), its modes are not read off this solution.
        self.decaying_mirror = abs_beta < (1 - UNIT_CIRCLE_TOLERANCE) * abs_alpha
        self.growing_mirror = abs_beta > (1 + UNIT_CIRCLE_TOLERANCE) * abs_alpha
        if mirror and not np.array_equal(
            candidates, np.flatnonzero(~self.decaying_mirror & ~self.growing_mirror)
        ):
            mirror = False
        self.mirror = mirror
        self.velocity_tolerance = VELOCITY_TOLERANCE * self.singular[0]

        lam_unit = alpha[candidates] * beta[candidates].conj()
        self.lam_unit = lam_unit / np.abs(lam_unit)
        # Wave functions, norms and currents of all candidates in one solve (what
        # velocity_basis gives for a candidate on its own).
        self.single_waves = self.wave_functions(vectors[:, candidates], self.lam_unit)
        self.single_norms = np.sum(np.abs(self.single_waves) ** 2, axis=0)
        self.single_currents = -2 * np.imag(
            np.sum(
                vectors[: self.rank, candidates].conj() * vectors[self.rank :, candidates],
                axis=0,
            )
        )

        self._lone: _LoneModes | None = None
        self.prop_vectors: list[ComplexArray] = []
        self.prop_waves: list[ComplexArray] = []
        # The mirror image's wave function of each mode: phi / lambda (see _mirror_modes).
        self.prop_waves_mirror: list[ComplexArray] = []
        self.prop_momenta: list[float] = []
        self.prop_velocities: list[float] = []
        self.zero_vectors: list[ComplexArray] = []  # zero-velocity solutions
        self.zero_keys: list[tuple[float, float]] = []
        self.zero_keys_mirror: list[tuple[float, float]] = []
        self.edge_out: list[ComplexArray] = []
        self.edge_out_mirror: list[ComplexArray] = []

    # -- the reduced solutions: wave functions, currents, velocities -------------------

    def wave_functions(self, vecs: ComplexArray, lam: complex | ComplexArray) -> ComplexArray:
        pencil, rank = self.pencil, self.rank
        x, b = vecs[:rank], vecs[rank:]
        rhs = pencil.right @ (1j * b - x) + (pencil.left @ (1j * x - b)) * lam
        return np.asarray(la.lu_solve(pencil.lu, rhs, check_finite=False))

    def currents(self, vecs: ComplexArray) -> ComplexArray:
        x, b = vecs[: self.rank], vecs[self.rank :]
        z = x.conj().T @ b
        return np.asarray(1j * (z - z.conj().T))

    def velocity_basis(
        self, basis: ComplexArray, lam: complex | ComplexArray
    ) -> tuple[FloatArray, ComplexArray, ComplexArray]:
        """Velocities, and coefficients of the velocity eigenvectors (|phi| = 1), in a basis.

        ``lam`` is the common eigenvalue of the basis vectors, or one eigenvalue per vector.
        """
        waves = self.wave_functions(basis, lam)
        norms = waves.conj().T @ waves
        current_matrix = self.currents(basis)
        count = basis.shape[1]
        velocity = np.zeros(count)
        coefficients = np.zeros((count, count), dtype=complex)
        for group in _current_coupled_groups(current_matrix, np.ndim(lam) == 0):
            block = np.ix_(group, group)
            if group.size == 1:
                j = int(group[0])
                velocity[j] = current_matrix[j, j].real / norms[j, j].real
                coefficients[j, j] = 1.0 / math.sqrt(norms[j, j].real)
                continue
            # Degenerate Hellmann-Feynman: diagonalize the current form against the norm.
            current_block, norm_block = current_matrix[block], norms[block]
            velocity[group], coefficients[block] = la.eigh(
                (current_block + current_block.conj().T) / 2,
                (norm_block + norm_block.conj().T) / 2,
            )
        return velocity, coefficients, waves

    def add_mode(self, momentum: float, phi: ComplexArray, speed: float) -> None:
        """Append a propagating mode given as a Bloch eigenvector of ``H(k)`` (|phi| = 1)."""
        lam = complex(math.cos(momentum), math.sin(momentum))
        scale = 1 / math.sqrt(abs(speed))
        reduced = np.concatenate(
            [self.pencil.left.conj().T @ phi / lam, self.pencil.right.conj().T @ phi]
        )
        self.prop_vectors.append(np.asarray(reduced * scale, dtype=complex))
        self.prop_waves.append(np.asarray(phi * scale, dtype=complex))
        self.prop_waves_mirror.append(np.asarray(phi * (scale * lam.conjugate()), dtype=complex))
        # In (-pi, pi]: a band-edge pair at k = pi is found on either side of it.
        self.prop_momenta.append(float(_wrapped(np.array(momentum))))
        self.prop_velocities.append(speed)

    def _error(self, member: int) -> float:
        pencil = self.pencil
        return _eigenvalue_error(
            pencil.matrix_l, pencil.matrix_r, self.alpha[member], self.beta[member],
            self.vectors[:, member],
        )  # fmt: skip

    def unresolved(self, position: int) -> bool:
        """Whether a slow candidate cannot be told apart from its neighbours on the circle.

        Next to a band edge two solutions merge; rounding splits them by about the square
        root of the machine precision and gives them small spurious velocities. A solution
        is taken as resolved only if its distance to the nearest other candidate exceeds
        its rounding error, estimated from its condition number (left eigenvector by inverse
        iteration).
        """
        others = np.delete(self.lam_unit, position)
        if others.size == 0:
            return False
        gap = float(np.min(np.abs(others - self.lam_unit[position])))
        return bool(10 * self._error(self.candidates[position]) > gap / 2)

    # -- stage 2: one cluster of solutions on the unit circle ----------------------------

    def add_cluster(self, cluster: NDArray[np.intp]) -> None:
        """Classify one cluster of candidates (solutions close together on the circle)."""
        if cluster.size == 1:
            position = int(cluster[0])
            lone = self._lone_modes()
            if lone.fast[position] and lone.on_circle[position]:
                self._add_fast_mode(position)
                return
        members = self.candidates[cluster]
        lam0 = complex(np.mean(self.lam_unit[cluster]))
        lam0 /= abs(lam0)
        off_circle = np.abs(np.log(self.abs_alpha[members] / self.abs_beta[members]))
        if np.max(off_circle) > _OFF_CIRCLE_CHECK and not _band_reaches(
            self.h, self.v, self.energy, self.lam_unit[cluster], self.singular[0]
        ):
            self._add_gap_cluster(members, off_circle, lam0)
            return
        if cluster.size == 1 and self._add_fast_mode(int(cluster[0])):
            return
        basis, basis_lam, velocity, coefficients, waves, num_edges = self._cluster_basis(
            cluster, members, lam0
        )
        slow_pair = members.size == 2 and (
            num_edges == 1 or np.max(np.abs(velocity)) < _SUSPECT_VELOCITY * self.singular[0]
        )
        if slow_pair and self._add_band_edge_pair(cluster, lam0):
            return
        if num_edges:
            velocity, coefficients = self._split_band_edges(
                basis, velocity, coefficients, num_edges
            )
        self._add_velocity_eigenvectors(
            cluster, members, basis, basis_lam, velocity, coefficients, waves
        )

    def _add_fast_mode(self, position: int) -> bool:
        """The common case: a lone solution on the unit circle with a velocity well away
        from zero is a propagating mode as it stands (what the general path below makes of
        it, without its bookkeeping). Returns whether it was added."""
        lone = self._lone_modes()
        if not lone.fast[position]:
            return False
        self.prop_vectors.append(lone.vectors[:, position])
        self.prop_waves.append(lone.waves[:, position])
        self.prop_waves_mirror.append(lone.mirrored[:, position])
        self.prop_momenta.append(float(lone.momenta[position]))
        self.prop_velocities.append(float(lone.velocities[position]))
        return True

    def _lone_modes(self) -> _LoneModes:
        """Every candidate taken on its own, all at once (see :class:`_LoneModes`)."""
        if self._lone is None:
            norms = self.single_norms
            velocity = self.single_currents / norms
            speed = np.abs(velocity)
            scale_hop = self.singular[0]
            members = self.candidates
            off_circle = np.abs(np.log(self.abs_alpha[members] / self.abs_beta[members]))
            momenta = np.angle(self.lam_unit)
            momenta[momenta <= -math.pi] += 2 * math.pi
            # (Slow candidates, not used as modes from here, may have infinite scales.)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                coefficients = 1.0 / np.sqrt(norms)
                scale = 1 / np.sqrt(speed)
                self._lone = _LoneModes(
                    fast=(_SUSPECT_VELOCITY * scale_hop <= speed) & (speed <= 2.5 * scale_hop),
                    on_circle=off_circle <= _OFF_CIRCLE_CHECK,
                    velocities=velocity,
                    coefficients=coefficients,
                    momenta=momenta,
                    vectors=self.vectors[:, members] * coefficients * scale,
                    waves=self.single_waves * coefficients * scale,
                    mirrored=(self.single_waves / self.lam_unit) * coefficients * scale,
                )
        return self._lone

    def _add_gap_cluster(
        self, members: NDArray[np.intp], off_circle: FloatArray, lam0: complex
    ) -> None:
        """Decaying and growing solutions too close to the unit circle for their moduli to be
        trusted (a tiny gap, e.g. of two hybridized edge states): no band of H(k) reaches
        the energy near this k, so none of them propagates. The common limit of the pairs,
        the band-edge eigenvectors, join the decaying solutions."""
        pencil = self.pencil
        decays = self.abs_alpha[members] < self.abs_beta[members]
        resolved = np.array(
            [
                off_circle[i] > _RESOLVED_MARGIN * self._error(member)
                for i, member in enumerate(members)
            ]
        )
        self.edge_out.extend(
            _gap_solutions(
                pencil.matrix_l, pencil.matrix_r, self.vectors, members, decays, resolved,
                lam0, self.energy,
            )
        )  # fmt: skip
        if self.mirror:
            decays_mirror = self.abs_beta[members] < self.abs_alpha[members]
            self.edge_out_mirror.extend(
                _gap_solutions(
                    pencil.matrix_l, pencil.matrix_r, self.vectors, members, decays_mirror,
                    resolved, lam0, self.energy,
                )
            )  # fmt: skip

    def _cluster_basis(
        self, cluster: NDArray[np.intp], members: NDArray[np.intp], lam0: complex
    ) -> tuple[ComplexArray, ComplexArray, FloatArray, ComplexArray, ComplexArray, int]:
        """A basis of the cluster's solutions with their velocity eigenvectors.

        Returns ``(basis, basis_lam, velocity, coefficients, waves, num_edges)``.
        """
        vectors = self.vectors[:, members]
        if _independent(vectors):
            if self._common_lambda(cluster, lam0):
                # Distinct solutions too close for their own eigenvectors (each accurate
                # only to eps / spread along the others, while their span is accurate): an
                # orthonormal basis of the span at the mean lambda, an error of the spread.
                basis = la.qr(vectors, mode="economic")[0]
                found = self._plausible_velocities(basis, lam0)
                if found is not None:
                    return basis, np.full(basis.shape[1], lam0), *found, 0
            # Each eigenvector keeps its own eigenvalue: close but distinct eigenvalues
            # (bands crossing the energy at nearby k) then keep exact Bloch solutions, and
            # exactly degenerate ones are mixed by the velocity diagonalization at no cost.
            basis_lam = self.lam_unit[cluster]
            if cluster.size == 1:  # the common case, solved for all at once
                position = int(cluster[0])
                lone = self._lone_modes()
                single = (
                    lone.velocities[position : position + 1],
                    lone.coefficients[position : position + 1, None].astype(complex),
                    self.single_waves[:, position : position + 1],
                )
                found = single if self._plausible(single[0]) else None
            else:
                found = self._plausible_velocities(vectors, basis_lam)
            if found is not None:
                return vectors, basis_lam, *found, 0
        pencil = self.pencil
        basis, num_edges = _eigenspace(
            pencil.matrix_l, pencil.matrix_r, lam0, members.size, self.energy
        )
        basis_lam = np.full(basis.shape[1], lam0)
        velocity, coefficients, waves = self.velocity_basis(basis, lam0)
        return basis, basis_lam, velocity, coefficients, waves, num_edges

    def _common_lambda(self, cluster: NDArray[np.intp], lam0: complex) -> bool:
        """Whether a cluster's solutions are taken as one eigenspace at their mean lambda:
        distinct (spread above a rounding, at most _SEPARATE_EIGENVECTORS) beside exactly
        degenerate ones (a rounding apart, e.g. two orbitals), which are not refined
        (_refined_close_eigenpairs), so that the distinct ones keep eigenvectors accurate
        only to eps / spread along each other."""
        lam = self.lam_unit[cluster]
        if lam.size < 2:
            return False
        spread = float(np.max(np.abs(lam - lam0)))
        gaps = np.abs(lam[:, None] - lam[None, :])[np.triu_indices(lam.size, 1)]
        rounding = _REFINE_MARGIN * _EPS
        return bool(np.min(gaps) <= rounding < spread <= _SEPARATE_EIGENVECTORS)

    def _plausible(self, velocity: FloatArray) -> bool:
        """|dE/dk| <= 2 ||hop||: anything larger means nearly dependent eigenvectors."""
        return bool(np.max(np.abs(velocity)) <= 2.5 * self.singular[0])

    def _plausible_velocities(
        self, basis: ComplexArray, lam: complex | ComplexArray
    ) -> tuple[FloatArray, ComplexArray, ComplexArray] | None:
        """:meth:`velocity_basis`, or None where the norm matrix is not positive definite
        (dependent vectors) or the velocities are implausible."""
        try:
            found = self.velocity_basis(basis, lam)
        except la.LinAlgError:
            return None
        return found if self._plausible(found[0]) else None

    def _add_band_edge_pair(self, cluster: NDArray[np.intp], lam0: complex) -> bool:
        """Two solutions too close to be told apart by the pencil: a band edge, or an
        energy a hair inside the band, where they are two slow propagating modes. The
        Hermitian band structure decides, to the rounding of energies. Returns whether
        it found the two modes (added)."""
        spread = float(np.max(np.abs(np.angle(self.lam_unit[cluster] / lam0))))
        pair = _band_edge_pair(self.h, self.v, self.energy, float(np.angle(lam0)), spread)
        if pair is None or min(abs(m[2]) for m in pair) <= _BAND_VELOCITY_FLOOR * self.singular[0]:
            return False
        for mode in pair:
            self.add_mode(*mode)
        return True

    def _split_band_edges(
        self,
        basis: ComplexArray,
        velocity: FloatArray,
        coefficients: ComplexArray,
        num_edges: int,
    ) -> tuple[FloatArray, ComplexArray]:
        """Band edges at this k, possibly together with bands crossing the energy at the
        same k. The eigenvector shared by the two solutions merging at an edge carries no
        current and no cross current with the other eigenvectors (current conservation),
        so the velocity operator of the eigenspace vanishes on exactly one direction per
        edge; those join the band-edge solutions, the crossing bands keep their nonzero
        velocities (returned)."""
        by_speed = np.argsort(np.abs(velocity), kind="stable")
        heads, crossing = by_speed[:num_edges], by_speed[num_edges:]
        tolerance = self.velocity_tolerance
        if np.max(np.abs(velocity[heads])) > 100 * tolerance or np.any(
            np.abs(velocity[crossing]) <= tolerance
        ):
            raise RuntimeError(_near_edge_message(self.energy))
        head_vectors = basis @ coefficients[:, heads]
        self.edge_out.extend((head_vectors / np.linalg.norm(head_vectors, axis=0)).T)
        self.edge_out_mirror.extend((head_vectors / np.linalg.norm(head_vectors, axis=0)).T)
        return velocity[crossing], coefficients[:, crossing]

    def _add_velocity_eigenvectors(
        self,
        cluster: NDArray[np.intp],
        members: NDArray[np.intp],
        basis: ComplexArray,
        basis_lam: ComplexArray,
        velocity: FloatArray,
        coefficients: ComplexArray,
        waves: ComplexArray,
    ) -> None:
        """Each velocity eigenvector of the cluster: a propagating mode (unit current) or
        a zero-velocity solution (sorted out in the assembly)."""
        singular = self.singular
        wave_weights = np.sum(np.abs(waves) ** 2, axis=0)
        waves_mirror = waves / basis_lam  # each solution's phi / lambda
        single = velocity.size == 1 and basis.shape[1] == 1
        for j in range(velocity.size):
            dominant = int(np.argmax(np.abs(coefficients[:, j]) ** 2 * wave_weights))
            momentum = float(np.angle(basis_lam[dominant]))
            if momentum <= -math.pi:
                momentum += 2 * math.pi
            slow = abs(velocity[j]) < _SUSPECT_VELOCITY * singular[0] and single
            refined = None
            if slow:
                # The pencil's eigenvector of a slow mode is as inaccurate as the eigenvalue
                # split next to a band edge is small (its velocity even loses its sign);
                # the Hermitian H(k) gives the mode to the rounding of energies.
                refined = _band_mode(self.h, self.v, self.energy, momentum)
            if refined is not None:
                if abs(refined[2]) > _BAND_VELOCITY_FLOOR * singular[0]:
                    self.add_mode(*refined)
                else:
                    self.zero_vectors.append(self.vectors[:, members[0]])
                    self.zero_keys.append((0.0, -float(velocity[j])))
                    self.zero_keys_mirror.append((0.0, float(velocity[j])))
            elif abs(velocity[j]) > self.velocity_tolerance and not (
                slow and self.unresolved(cluster[0])
            ):
                scale = 1 / math.sqrt(abs(velocity[j]))
                self.prop_vectors.append(basis @ coefficients[:, j] * scale)
                self.prop_waves.append(waves @ coefficients[:, j] * scale)
                self.prop_waves_mirror.append(waves_mirror @ coefficients[:, j] * scale)
                self.prop_momenta.append(momentum)
                self.prop_velocities.append(float(velocity[j]))
            elif single:
                # A lone zero-velocity solution: an evanescent mode with |lambda| within the
                # tolerance of 1, or one of two solutions merging at a band edge.
                member = members[0]
                modulus = abs(self.alpha[member]) / abs(self.beta[member])
                self.zero_vectors.append(self.vectors[:, member])
                self.zero_keys.append((round(modulus - 1, 12), -float(velocity[j])))
                modulus_mirror = abs(self.beta[member]) / abs(self.alpha[member])
                self.zero_keys_mirror.append((round(modulus_mirror - 1, 12), float(velocity[j])))
            else:
                self.zero_vectors.append(basis @ coefficients[:, j])
                self.zero_keys.append((0.0, -float(velocity[j])))
                self.zero_keys_mirror.append((0.0, float(velocity[j])))

    # -- stage 3: the block's modes and its mirror image's ---------------------------------

    def assemble(self) -> tuple[_BlockModes, _BlockModes | None]:
        rank, n = self.rank, self.h.shape[0]
        if len(self.prop_vectors) > 1:
            _remove_cross_currents(
                self.prop_vectors, [self.prop_waves, self.prop_waves_mirror],
                self.prop_velocities, rank,
            )  # fmt: skip
        velocities = np.array(self.prop_velocities)
        momenta = np.array(self.prop_momenta)
        all_vectors = (
            np.array(self.prop_vectors).T
            if self.prop_vectors
            else np.zeros((2 * rank, 0), complex)
        )
        all_waves = np.array(self.prop_waves).T if self.prop_waves else np.zeros((n, 0), complex)
        outgoing = np.flatnonzero(velocities > 0)
        incoming = np.flatnonzero(velocities < 0)
        shared = _SharedSchur(self.pencil.matrix_l, self.pencil.matrix_r, self.schur)
        solved = _assemble_block(
            self.pencil, self.alpha, self.beta, self.vectors, self.decaying, self.growing,
            all_vectors, all_waves, momenta, velocities, outgoing, incoming, self.edge_out,
            self.zero_vectors, self.zero_keys, self.energy,
            lambda count: shared.decaying(count, mirror=False),
        )  # fmt: skip
        if not self.mirror:
            return solved, None
        # The mirror image, in its own coordinates: (alpha_{-1}, beta_0) -> S x (the halves
        # swapped), phi -> phi / lambda, k -> -k, v -> -v; its decaying solutions are the
        # growing ones here.
        pencil = self.pencil
        swap = np.r_[rank : 2 * rank, 0:rank]
        mirrored_momenta = -momenta
        mirrored_momenta[mirrored_momenta <= -math.pi] += 2 * math.pi
        mirror_pencil = _Pencil(
            rank, pencil.singular, pencil.right, pencil.left, pencil.lu,
            pencil.matrix_r[np.ix_(swap, swap)], pencil.matrix_l[np.ix_(swap, swap)],
        )  # fmt: skip
        waves_mirror_all = (
            np.array(self.prop_waves_mirror).T
            if self.prop_waves_mirror
            else np.zeros((n, 0), complex)
        )
        try:
            mirrored = _assemble_block(
                mirror_pencil, self.beta, self.alpha, self.vectors[swap], self.decaying_mirror,
                self.growing_mirror, all_vectors[swap], waves_mirror_all, mirrored_momenta,
                -velocities, incoming, outgoing, [x[swap] for x in self.edge_out_mirror],
                [x[swap] for x in self.zero_vectors], self.zero_keys_mirror, self.energy,
                lambda count: shared.decaying(count, mirror=True),
            )  # fmt: skip
        except RuntimeError:
            return solved, None
        return solved, mirrored


def _assemble_block(
    pencil: _Pencil,
    alpha: ComplexArray,
    beta: ComplexArray,
    vectors: ComplexArray,
    decaying: NDArray[np.bool_],
    growing: NDArray[np.bool_],
    all_vectors: ComplexArray,
    all_waves: ComplexArray,
    momenta: FloatArray,
    velocities: FloatArray,
    outgoing: NDArray[np.intp],
    incoming: NDArray[np.intp],
    edge_out: list[ComplexArray],
    zero_vectors: list[ComplexArray],
    zero_keys: list[tuple[float, float]],
    energy: float,
    subspace: Callable[[int], ComplexArray | None] | None = None,
) -> _BlockModes:
    """The modes of one block from its classified solutions (see :func:`_solve_block`).

    ``subspace(count)`` gives an orthonormal basis of the decaying deflating subspace for
    defective decaying solutions (default: :func:`_decaying_subspace` of the pencil).
    """
    rank = pencil.rank
    num_decaying = int(np.sum(decaying))
    need = rank - num_decaying - outgoing.size - len(edge_out)
    if outgoing.size != incoming.size or not 0 <= need <= len(zero_vectors):
        raise RuntimeError(_near_edge_message(energy))
    order = sorted(range(len(zero_vectors)), key=lambda i: zero_keys[i])
    chosen = [zero_vectors[i] for i in order[:need]]

    decaying_vectors = vectors[:, decaying]
    defective = False
    if decaying_vectors.shape[1] > 1:
        # The squared singular values, from the Gram matrix (about four times cheaper than
        # an SVD; the tolerance's square, 1e-8, is far above the Gram matrix's rounding).
        gram = decaying_vectors.conj().T @ decaying_vectors
        squared = np.linalg.eigvalsh(gram)
        if squared[0] < _INDEPENDENCE_TOLERANCE**2 * squared[-1]:
            # Defective decaying eigenvalues (an exceptional point of the complex band
            # structure): use an orthonormal basis of the decaying deflating subspace instead
            # of the ill-conditioned eigenvectors.
            if subspace is None:
                basis = _decaying_subspace(pencil.matrix_l, pencil.matrix_r, num_decaying)
            else:
                basis = subspace(num_decaying)
            if basis is not None:
                decaying_vectors = basis
                defective = True
    if not defective:
        decaying_vectors = _current_free_pairs(alpha, beta, vectors, decaying, growing)
    evanescent = [*decaying_vectors.T, *edge_out, *chosen]
    evanescent_block = (
        np.array(evanescent).T if evanescent else np.zeros((2 * rank, 0), dtype=complex)
    )

    # Kwant's order: incoming by increasing, outgoing by decreasing momentum.
    incoming = incoming[
        _kwant_order(_kwant_momenta(momenta[incoming]), velocities[incoming], incoming=True)
    ]
    outgoing = outgoing[
        _kwant_order(_kwant_momenta(momenta[outgoing]), velocities[outgoing], incoming=False)
    ]
    return _frozen_block_modes(
        _BlockModes(
            hop_left=pencil.left,
            hop_right=pencil.right,
            in_vectors=all_vectors[:, incoming],
            in_wave_functions=all_waves[:, incoming],
            in_momenta=momenta[incoming] if momenta.size else np.zeros(0),
            in_velocities=velocities[incoming] if velocities.size else np.zeros(0),
            out_vectors=all_vectors[:, outgoing],
            out_wave_functions=all_waves[:, outgoing],
            out_momenta=momenta[outgoing] if momenta.size else np.zeros(0),
            out_velocities=velocities[outgoing] if velocities.size else np.zeros(0),
            decaying_vectors=evanescent_block,
        )
    )


def _remove_cross_currents(
    vectors: list[ComplexArray],
    waves: Sequence[list[ComplexArray]],
    velocities: list[float],
    rank: int,
) -> None:
    """Make unit-current modes carry no cross current, correcting the slower ones (in place).

    Modes at different ``k`` carry no cross current in exact arithmetic. Rounding gives a
    slow mode (near a band edge) components along the fast modes of nearby ``k`` that its
    small norm amplifies; they are removed by Gram-Schmidt in the current form, from the
    fastest mode down. Each correction mixes in a solution at a ``k`` a distance ``dk`` away
    with a weight of the order of the rounding error divided by ``dk``, so the modes stay
    Bloch solutions to rounding accuracy. ``waves`` holds one or more lists of wave
    functions of the modes (this lead's, its mirror image's), corrected alike; velocities
    follow the first.
    """
    stacked = np.array(vectors).T
    stacked_waves = [np.array(list_).T for list_ in waves]

    def current(x: ComplexArray, y: ComplexArray) -> ComplexArray:
        """Cross current of reduced solutions ``x`` (columns) and ``y`` (columns)."""
        return 1j * (x[:rank].conj().T @ y[rank:] - x[rank:].conj().T @ y[:rank])

    order = np.argsort(-np.abs(np.array(velocities)), kind="stable")
    # Modes whose cross currents with every faster mode are already at the rounding level
    # are left as they are (the correction would change them by less than a rounding).
    cross = np.abs(current(stacked, stacked))
    np.fill_diagonal(cross, 0.0)
    for position in range(1, order.size):
        j, faster = order[position], order[:position]
        if np.max(cross[faster, j]) <= _CROSS_CURRENT_FLOOR:
            continue
        signs = np.sign(np.array(velocities)[faster])
        weights = signs * current(stacked[:, faster], stacked[:, [j]])[:, 0]
        vector = stacked[:, j] - stacked[:, faster] @ weights
        flux = float(current(vector[:, None], vector[:, None])[0, 0].real)
        if flux * velocities[j] <= 0:
            continue  # a correction that large is no rounding correction; leave the mode
        scale = 1 / math.sqrt(abs(flux))
        stacked[:, j] = vector * scale
        vectors[j] = stacked[:, j]
        for list_, matrix in zip(waves, stacked_waves, strict=True):
            matrix[:, j] = (matrix[:, j] - matrix[:, faster] @ weights) * scale
            list_[j] = matrix[:, j]
        first = waves[0][j]
        velocities[j] = math.copysign(1 / float(np.vdot(first, first).real), flux)


#: Recent pencil eigenproblems: digest of (h_cell, hop, energy) -> ``_Eigensolution``.
_EIGEN_CACHE: OrderedDict[bytes, _Eigensolution] = OrderedDict()
_EIGEN_CACHE_SIZE = 4
_EIGEN_CACHE_LOCK = threading.Lock()


class _InterpreterStages:
    """Takes turns between threads that solve leads side by side (`stage`).

    A lead solve at one energy is a long compiled eigenproblem between two stretches of
    interpreted code full of small array calls. Threads that interleave those stretches
    hand the interpreter lock back and forth at every such call, each handover a wake-up
    of the other thread: on two cores two threads were no faster than one. Inside
    `stage` a thread runs its interpreted code alone, and lets the next thread's stage run
    only while it is in compiled code (`outside`), so one thread's eigenproblem overlaps
    the other's interpreted stretch without that contest.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextlib.contextmanager
    def stage(self) -> Iterator[None]:
        """Run the body as this thread's turn (nested calls are part of it)."""
        if getattr(self._local, "held", False):
            yield
            return
        with self._lock:
            self._local.held = True
            try:
                yield
            finally:
                self._local.held = False

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        """Give the turn to another thread for the body (compiled code), then take it back."""
        if not getattr(self._local, "held", False):
            yield
            return
        self._local.held = False
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            self._local.held = True


#: Turns of the lead solves that the RGF's threads run side by side.
interpreter_stages = _InterpreterStages()


def _lead_digest(
    h: ComplexArray, v: ComplexArray, energy: float, *extra: ComplexArray, dagger: bool = False
) -> bytes:
    """A digest of a lead's matrices and the energy (and `extra` arrays, e.g. projectors);
    ``dagger``: of the lead with the hopping ``v^dagger`` (the mirror lead)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((h.shape, float(energy))).encode())
    digest.update(_array_digest(h))
    digest.update(_array_digest(v, dagger=dagger))
    for array in extra:
        digest.update(_array_digest(array))
    return digest.digest()


#: Facts about arrays in immutable memory (a lead's matrices), by the array's identity,
#: while it lives: their digests and byte orders, computed once.
_ARRAY_FACTS: OrderedDict[tuple[int, str], tuple[Any, Any]] = OrderedDict()
_ARRAY_FACTS_SIZE = 256
_ARRAY_FACTS_LOCK = threading.Lock()


def _immutable(array: np.ndarray) -> np.ndarray:
    """A copy of `array` in an immutable buffer: read-only, and it cannot be made writeable."""
    data = np.ascontiguousarray(array)
    return np.ndarray(data.shape, dtype=data.dtype, buffer=data.tobytes())


def _array_fact(array: np.ndarray, kind: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept for `array` if it can never change (its memory is immutable, as
    :func:`_immutable` makes it)."""
    if array.flags.writeable or not isinstance(array.base, bytes):
        return compute()
    key = (id(array), kind)
    with _ARRAY_FACTS_LOCK:
        kept = _ARRAY_FACTS.get(key)
        if kept is not None and kept[0]() is array:
            _ARRAY_FACTS.move_to_end(key)
            return kept[1]
    value = compute()
    with _ARRAY_FACTS_LOCK:
        _ARRAY_FACTS[key] = (weakref.ref(array), value)
        while len(_ARRAY_FACTS) > _ARRAY_FACTS_SIZE:
            _ARRAY_FACTS.popitem(last=False)
    return value


def _array_digest(array: np.ndarray, *, dagger: bool = False) -> bytes:
    """A digest of an array's shape and values (of its conjugate transpose, ``dagger``)."""

    def compute() -> bytes:
        matrix = array.conj().T if dagger else array
        data = repr(matrix.shape).encode() + _canonical_bytes(matrix)
        return hashlib.blake2b(data, digest_size=20).digest()

    return bytes(_array_fact(array, "dagger" if dagger else "digest", compute))


def _solved_as_mirror(v: ComplexArray) -> bool:
    """Whether a lead with hopping ``v`` is solved through its mirror (hopping ``v^dagger``).

    Of the two, the one whose bytes come first is factorized and solved, so that both get
    exactly swapped factors and share one eigenproblem (:func:`_shared_pencil_eigenproblem`).
    """
    return bool(
        _array_fact(v, "mirror", lambda: _canonical_bytes(v.conj().T) < _canonical_bytes(v))
    )


def _canonical_bytes(matrix: ComplexArray) -> bytes:
    """The bytes of a C-ordered copy, with negative zeros (from ``conj``) made positive."""
    return (np.ascontiguousarray(matrix) + 0.0).tobytes()


@dataclass(frozen=True, eq=False)
class _Eigensolution:
    """A pencil's eigenvalues ``lambda = alpha / beta``, right eigenvectors (columns) and,
    where they came from one, the Schur form of its standard matrix (:class:`_SchurForm`)."""

    pair: tuple[ComplexArray, ComplexArray]
    vectors: ComplexArray
    schur: _SchurForm | None = None


def _shared_pencil_eigenproblem(
    h: ComplexArray, v: ComplexArray, energy: float, pencil: _Pencil
) -> _Eigensolution:
    """:func:`_pencil_eigenproblem`, shared between a lead and its mirror image.

    A lead with hopping ``hop^dagger`` instead of ``hop`` (the other end of a wire, whose
    hopping away from the system is the reverse of this one's) has the same Bloch
    solutions with ``lambda -> 1 / lambda``. With its factors ``hop^dagger = B A^dagger``
    exactly swapped (see :func:`_hop_factors`) its pencil is ``(S R S, S L S)``, ``S`` the
    swap of the two halves of the coordinates, so its eigenvectors are ``S x`` and its
    eigenvalues ``beta / alpha``. Of the two, the lead whose hopping comes first in
    :func:`_hop_factors`' order is solved, always, and the other's solution read off it:
    the result never depends on which was asked for first. The last few solutions are kept,
    so the second lead of a pair costs no eigenproblem.
    """
    key = _lead_digest(h, v, energy)
    with _EIGEN_CACHE_LOCK:
        cached = _EIGEN_CACHE.get(key)
        if cached is not None:
            _EIGEN_CACHE.move_to_end(key)
            return cached
    if _solved_as_mirror(v):
        dagger = _derived(v, "dagger")
        with _EIGEN_CACHE_LOCK:
            solved = _EIGEN_CACHE.get(_lead_digest(h, v, energy, dagger=True))
        if solved is None:
            mirror = _stabilized_pencil(h, dagger, energy)
            solved = _shared_pencil_eigenproblem(h, dagger, energy, mirror)
        alpha, beta = solved.pair
        rank = pencil.rank
        result = _Eigensolution((beta, alpha), solved.vectors[np.r_[rank : 2 * rank, 0:rank]])
    else:
        direct = _pencil_eigenproblem(pencil.matrix_l, pencil.matrix_r)
        pair, vectors = _refined_close_eigenpairs(
            h, v, energy, pencil, direct.pair, direct.vectors
        )
        result = _Eigensolution(pair, vectors, direct.schur)
    for array in (*result.pair, result.vectors):
        array.flags.writeable = False
    with _EIGEN_CACHE_LOCK:
        _EIGEN_CACHE[key] = result
        while len(_EIGEN_CACHE) > _EIGEN_CACHE_SIZE:
            _EIGEN_CACHE.popitem(last=False)
    return result


def _refined_close_eigenpairs(
    h: ComplexArray,
    v: ComplexArray,
    energy: float,
    pencil: _Pencil,
    pair: tuple[ComplexArray, ComplexArray],
    vectors: ComplexArray,
) -> tuple[tuple[ComplexArray, ComplexArray], ComplexArray]:
    """The pencil's solutions, those close to another one near the unit circle refined.

    Two solutions ``d`` apart in ``lambda`` have eigenvectors accurate only to about
    ``eps / d`` along each other, whatever the eigensolver, and the energy itself is rounded
    in ``h - E`` by ``eps ||h||``: a superconducting lead with a gap ``Delta`` many orders
    below the bandwidth has its electron- and hole-like solutions ``d ~ Delta / v`` apart,
    and their mixture, which is the whole of Andreev reflection, would be off by
    ``eps ||h|| / Delta`` (3e-8 at ``Delta = 1e-8 t``). Such a solution, if well conditioned
    (rounding error far below ``d``: not two solutions merging at a band edge), is refined
    by Newton's method on ``T(lambda) phi = (h - E + lambda hop + hop^dagger / lambda) phi
    = 0`` with the residual in extended precision (:func:`_newton_eigenpair`), which makes it
    exact to about the extended precision divided by ``d``.
    """
    alpha, beta = pair
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = alpha / beta
        off_circle = np.abs(np.log(np.abs(lam)))
    near = np.flatnonzero(np.isfinite(lam) & (off_circle < _REFINE_REACH))
    if near.size < 2 or not _HAS_EXTENDED_PRECISION:
        return pair, vectors
    distance = np.abs(lam[near][:, None] - lam[near][None, :])
    np.fill_diagonal(distance, np.inf)
    nearest = np.min(distance, axis=1)
    # Exactly degenerate solutions (a rounding apart) are left to the velocity operator.
    floor = _REFINE_MARGIN * np.finfo(float).eps
    chosen = [
        (int(i), float(d))
        for i, d in zip(near, nearest, strict=True)
        if floor < d < _CLOSE_SOLUTIONS
    ]
    if not chosen:
        return pair, vectors
    rank = pencil.rank
    alpha, beta, vectors = np.array(alpha), np.array(beta), np.array(vectors)
    for member, gap in chosen:
        error = _eigenvalue_error(
            pencil.matrix_l, pencil.matrix_r, alpha[member], beta[member], vectors[:, member]
        )
        if not _REFINE_MARGIN * error < gap:
            continue
        x, b = vectors[:rank, member], vectors[rank:, member]
        rhs = pencil.right @ (1j * b - x) + (pencil.left @ (1j * x - b)) * lam[member]
        phi = la.lu_solve(pencil.lu, rhs, check_finite=False)
        refined = _newton_eigenpair(h, v, energy, complex(lam[member]), phi, gap / 4)
        if refined is None:
            continue
        new_lam, new_phi = refined
        reduced = np.concatenate(
            [pencil.left.conj().T @ new_phi / new_lam, pencil.right.conj().T @ new_phi]
        )
        vectors[:, member] = reduced / np.linalg.norm(reduced)
        if abs(new_lam) <= 1:
            alpha[member], beta[member] = new_lam, 1.0
        else:
            alpha[member], beta[member] = 1.0, 1 / new_lam
    return (alpha, beta), vectors


def _newton_eigenpair(
    h: ComplexArray,
    v: ComplexArray,
    energy: float,
    lam: complex,
    phi: ComplexArray,
    reach: float,
) -> tuple[complex, ComplexArray] | None:
    """Newton's method for one simple solution of ``T(lambda) phi = 0`` (mixed precision).

    ``T(lambda) = h - E + lambda hop + hop^dagger / lambda``; the residual is formed in
    extended precision from the exact inputs (``h - E`` included), the correction solved in
    double precision from the bordered system ``[[T, T' phi], [phi_0^dagger, 0]]``. Its
    condition number is about ``1 / d`` for a solution ``d`` from its nearest neighbour,
    so each step gains a factor ``eps / d`` until the residual's own rounding is reached.
    None where it does not converge or leaves ``reach`` of the starting ``lambda``.
    """
    n = h.shape[0]
    hop_norm = float(np.linalg.norm(v, 2))
    scale = 2 * hop_norm + float(np.linalg.norm(h, 2)) + abs(energy)  # of T's terms
    h_ext = h.astype(np.clongdouble) - np.longdouble(energy) * np.eye(n, dtype=np.clongdouble)
    v_ext = v.astype(np.clongdouble)
    v_dagger_ext = v_ext.conj().T
    shifted = h - energy * np.eye(n)
    phi_ext = (phi / np.linalg.norm(phi)).astype(np.clongdouble)
    anchor = phi_ext.conj().astype(complex)
    lam_ext = np.clongdouble(lam)
    step = math.inf
    for _ in range(_NEWTON_STEPS):
        residual = (
            h_ext @ phi_ext + lam_ext * (v_ext @ phi_ext) + (v_dagger_ext @ phi_ext) / lam_ext
        )
        lam_d = complex(lam_ext)
        phi_d = phi_ext.astype(complex)
        bordered = np.zeros((n + 1, n + 1), dtype=complex)
        bordered[:n, :n] = shifted + lam_d * v + v.conj().T / lam_d
        bordered[:n, n] = (v - v.conj().T / lam_d**2) @ phi_d
        bordered[n, :n] = hop_norm * anchor
        rhs = np.concatenate([-residual.astype(complex), [0.0]])
        # LAPACK's solver directly: no conditioning warning (and no change to the process's
        # warning filters, which threads share).
        (gesv,) = la.get_lapack_funcs(("gesv",), (bordered,))
        _, _, delta, info = gesv(bordered, rhs)
        if info != 0:
            return None
        if not np.all(np.isfinite(delta)):
            return None
        phi_ext = phi_ext + delta[:n].astype(np.clongdouble)
        lam_ext = lam_ext + np.clongdouble(delta[n])
        previous, step = step, float(np.linalg.norm(delta[:n])) + abs(delta[n])
        if step > 0.5 * previous:
            break  # at the rounding of the residual
    residual = h_ext @ phi_ext + lam_ext * (v_ext @ phi_ext) + (v_dagger_ext @ phi_ext) / lam_ext
    size = float(np.linalg.norm(phi_ext.astype(complex)))
    accurate = float(np.linalg.norm(residual.astype(complex))) <= _NEWTON_RESIDUAL * scale * size
    if not accurate or abs(complex(lam_ext) - lam) > reach:
        return None
    return complex(lam_ext), np.asarray(phi_ext.astype(complex) / size)


def _standard_matrix(
    pencil_l: ComplexArray, pencil_r: ComplexArray
) -> tuple[bool, ComplexArray] | None:
    """The pencil as a standard matrix: ``R^{-1} L``, or ``L^{-1} R`` (``inverted``).

    Of ``R`` and ``L`` the better conditioned is inverted; None when neither has a
    reciprocal condition number above ``_STANDARD_EIGEN_RCOND``.
    """
    best: tuple[float, bool, tuple[ComplexArray, Any]] | None = None
    for inverted in (False, True):
        matrix = pencil_l if inverted else pencil_r
        lu = _lu_factor(matrix)
        rcond = _reciprocal_condition(lu, matrix)
        if best is None or rcond > best[0]:
            best = (rcond, inverted, lu)
    assert best is not None
    rcond, inverted, lu = best
    if not rcond > _STANDARD_EIGEN_RCOND:
        return None
    other = pencil_r if inverted else pencil_l
    return inverted, la.lu_solve(lu, other, check_finite=False)


def _pencil_eigenproblem(pencil_l: ComplexArray, pencil_r: ComplexArray) -> _Eigensolution:
    """Eigenvalues ``lambda = alpha / beta`` and right eigenvectors of ``L x = lambda R x``.

    Where ``R`` (or ``L``) is well conditioned the pencil is reduced to the standard problem
    of ``R^{-1} L`` (or ``L^{-1} R``, eigenvalues ``1 / lambda``), about five times faster
    than the QZ algorithm, losing at most a factor ``1 / _STANDARD_EIGEN_RCOND`` of accuracy;
    otherwise (a singular or ill-conditioned pencil: strongly evanescent modes, flat bands)
    QZ handles the eigenvalues as ratios that are never formed when ``beta = 0``. The
    standard problem is solved by ``zgeev``'s steps with the compiled kernels, which keep
    the Schur form for the decaying subspace (:class:`_SharedSchur`); without them by
    NumPy's ``eig``. The eigenvectors have unit norm, their largest component real.
    """
    standard = _standard_matrix(pencil_l, pencil_r)
    if standard is not None:
        inverted, matrix = standard
        kernels = _schur_kernels()
        form = None
        if kernels is None:
            values, vectors = np.linalg.eig(matrix)
        else:
            values, vectors, form = _compiled_eigen(kernels, matrix, inverted)
        ones = np.ones_like(values)
        pair = (ones, values) if inverted else (values, ones)
        return _Eigensolution(pair, vectors, form)
    homogeneous, vectors = la.eig(pencil_l, pencil_r, homogeneous_eigvals=True, check_finite=False)
    return _Eigensolution((homogeneous[0], homogeneous[1]), vectors)


def _compiled_eigen(
    kernels: Any, matrix: ComplexArray, inverted: bool
) -> tuple[ComplexArray, ComplexArray, _SchurForm]:
    """Eigenvalues, unit eigenvectors (as ``zgeev`` normalizes them) and the Schur form of
    the balanced `matrix`, from one decomposition (`mesoscopic._schur_kernel.eigen`)."""
    n = matrix.shape[0]
    transposed = np.array(matrix.T, dtype=complex, order="C")  # LAPACK's Fortran order
    schur_vectors = np.empty((n, n), dtype=complex)
    vectors = np.empty((n, n), dtype=complex)
    values = np.empty(n, dtype=complex)
    scale = np.empty(n)
    bounds = np.zeros(2, dtype=np.int32)
    with interpreter_stages.outside():  # compiled, without the interpreter lock
        info = kernels.eigen(
            transposed, schur_vectors, vectors, values, scale, bounds, *kernels.EIGEN
        )
    if info != 0:
        raise np.linalg.LinAlgError(
            f"the eigenproblem of a lead's modes did not converge (LAPACK info={info})"
        )
    vectors = vectors.T / np.linalg.norm(vectors, axis=1)
    if n:
        largest = np.argmax(vectors.real**2 + vectors.imag**2, axis=0)
        top = vectors[largest, np.arange(n)]
        vectors *= top.conj() / np.abs(top)
        vectors[largest, np.arange(n)] = np.abs(top)
    form = _SchurForm(inverted, transposed.T, schur_vectors.T, scale, bounds)
    return values, vectors, form


@dataclass(frozen=True, eq=False)
class _SchurForm:
    """Complex Schur form ``Z T Z^dagger`` of a lead's standard matrix ``A`` (`inverted`:
    ``L^{-1} R``, else ``R^{-1} L``), or, with `scale`, of its balanced form
    ``D^-1 P^T A P D`` (LAPACK's ``zgebal``: `scale` and `bounds` as it gives them)."""

    inverted: bool
    t: ComplexArray
    z: ComplexArray
    scale: FloatArray | None = None
    bounds: NDArray[np.int32] | None = None

    def subspace(self, select: NDArray[np.bool_]) -> ComplexArray | None:
        """Orthonormal basis of the invariant subspace of ``A`` of the `select`ed
        eigenvalues (of ``diag(T)``), or None if the reordering fails."""
        count = int(np.count_nonzero(select))
        reordered = _reordered_schur(self.t, self.z, select)
        if reordered is None:
            return None
        basis = reordered[:, :count]
        if self.scale is None:
            return basis
        kernels = _schur_kernels()
        assert kernels is not None and self.bounds is not None
        rows = np.array(basis.T, order="C")  # LAPACK's Fortran order
        if kernels.back_transform(self.scale, self.bounds, rows, kernels.EIGEN[5]) != 0:
            return None
        # The balancing's scaling leaves the columns independent, not orthonormal.
        return np.asarray(np.linalg.qr(rows.T)[0])


class _SharedSchur:
    """One Schur form for the decaying subspaces of a block and of its mirror image.

    The mirror image's pencil is ``(S R S, S L S)`` (``S`` swaps the halves), whose standard
    matrix is ``S A S`` for this pencil's ``A`` (the same side is the better conditioned),
    with the same eigenvalues read as ``1 / lambda``: its decaying subspace is ``S`` times
    this pencil's growing one. So one complex Schur form of ``A``, reordered twice (LAPACK's
    trsen), serves both, where :func:`_decaying_subspace` would compute two; `form` is the
    one the eigenproblem kept, if any. Pencils without a well-conditioned side use
    :func:`_decaying_subspace` (ordered QZ) each.
    """

    def __init__(
        self, pencil_l: ComplexArray, pencil_r: ComplexArray, form: _SchurForm | None = None
    ) -> None:
        self.pencil_l, self.pencil_r = pencil_l, pencil_r
        self._form = form
        self._none = False

    def decaying(self, count: int, *, mirror: bool) -> ComplexArray | None:
        rank = self.pencil_l.shape[0] // 2
        swap = np.r_[rank : 2 * rank, 0:rank]
        if not self._none and self._form is None:
            standard = _standard_matrix(self.pencil_l, self.pencil_r)
            if standard is None:
                self._none = True
            else:
                inverted, matrix = standard
                t, z = _schur_form(matrix)
                self._form = _SchurForm(inverted, t, z)
        if self._form is None:
            if mirror:
                left, right = self.pencil_r[np.ix_(swap, swap)], self.pencil_l[np.ix_(swap, swap)]
            else:
                left, right = self.pencil_l, self.pencil_r
            return _decaying_subspace(left, right, count)
        form = self._form
        threshold = 1 - UNIT_CIRCLE_TOLERANCE
        values = np.abs(np.diag(form.t))
        # Decaying here: |lambda| < threshold; in the mirror image: |lambda| > 1 / threshold.
        small = values < threshold
        large = threshold * values > 1
        inverted = form.inverted
        select = (large if inverted else small) if not mirror else (small if inverted else large)
        if int(np.count_nonzero(select)) != count:
            return None
        basis = form.subspace(select)
        if basis is None:
            return None
        return basis[swap] if mirror else basis


#: Whether the Schur forms of lead problems are computed by the compiled LAPACK calls of
#: `mesoscopic._schur_kernel` (numba) where it imports; None: yes. The same numbers as
#: SciPy's ``schur`` and ``ztrsen``, without the interpreter lock.
_COMPILED_SCHUR: bool | None = None


def _schur_kernels() -> Any:
    """The compiled Schur kernels, or None (numba missing, or turned off)."""
    if _COMPILED_SCHUR is False:
        return None
    try:
        from . import _schur_kernel
    except (ImportError, RuntimeError, OSError):
        return None
    return _schur_kernel


def _schur_form(matrix: ComplexArray) -> tuple[ComplexArray, ComplexArray]:
    """``(T, Z)`` of the complex Schur form ``matrix = Z T Z^dagger`` (SciPy's ``schur``)."""
    kernels = _schur_kernels()
    if kernels is None:
        t, z = la.schur(matrix, output="complex", check_finite=False)
        return t, z
    n = matrix.shape[0]
    transposed = np.array(matrix.T, dtype=complex, order="C")  # LAPACK's Fortran order
    vectors = np.empty((n, n), dtype=complex)
    values = np.empty(n, dtype=complex)
    info = kernels.schur(transposed, vectors, values, kernels.LAPACK[0])
    if info != 0:
        raise np.linalg.LinAlgError(
            f"the Schur form of a lead's mode problem was not found (LAPACK zgees info={info})"
        )
    return transposed.T, vectors.T


def _reordered_schur(
    t: ComplexArray, z: ComplexArray, select: NDArray[np.bool_]
) -> ComplexArray | None:
    """The Schur vectors with the `select`ed eigenvalues first (LAPACK's ``ztrsen``), or
    None if the reordering fails."""
    flags = select.astype(np.int32)
    kernels = _schur_kernels()
    if kernels is None:
        _, reordered, *_, info = la_lapack.ztrsen(flags, t, z, job="N")
        return None if info != 0 else reordered
    t_copy = np.array(t.T, dtype=complex, order="C")
    z_copy = np.array(z.T, dtype=complex, order="C")
    if kernels.reorder(t_copy, z_copy, flags, kernels.LAPACK[1]) != 0:
        return None
    return z_copy.T


def _decaying_subspace(
    pencil_l: ComplexArray, pencil_r: ComplexArray, count: int
) -> ComplexArray | None:
    """Orthonormal basis of the deflating subspace of the ``count`` decaying solutions.

    From an ordered Schur form: of the standard matrix ``R^{-1} L`` (or ``L^{-1} R``) where
    that side is well conditioned, as in :func:`_pencil_eigenproblem`, else of the pencil
    (ordered QZ). None if the ordering does not find exactly ``count`` solutions.
    """
    threshold = 1 - UNIT_CIRCLE_TOLERANCE
    standard = _standard_matrix(pencil_l, pencil_r)
    if standard is not None:
        inverted, matrix = standard
        if inverted:  # eigenvalues 1 / lambda

            def decays(x: complex) -> bool:
                return bool(threshold * abs(x) > 1)
        else:

            def decays(x: complex) -> bool:
                return bool(abs(x) < threshold)

        _, vectors, found = la.schur(matrix, output="complex", sort=decays)
    else:
        result = la.ordqz(
            pencil_l,
            pencil_r,
            sort=lambda a, b: np.abs(a) < threshold * np.abs(b),
            output="complex",
        )
        found = int(np.sum(np.abs(result[2]) < threshold * np.abs(result[3])))
        vectors = result[-1]
    return vectors[:, :count] if found == count else None


def _lu_factor(matrix: ComplexArray) -> tuple[ComplexArray, Any]:
    """LU factorization; exact singularity is reported by the callers, not as a warning.

    LAPACK's getrf directly (SciPy's ``lu_factor`` warns on a singular matrix, and
    silencing that would change the process's warning filters, which threads share).
    """
    if matrix.size == 0:
        return np.array(matrix, copy=True), np.zeros(0, dtype=np.int32)
    (getrf,) = la.get_lapack_funcs(("getrf",), (matrix,))
    lu, piv, info = getrf(matrix)
    if info < 0:
        raise ValueError(f"illegal value in argument {-info} of LAPACK's getrf")
    return lu, piv


def _reciprocal_condition(lu: tuple[ComplexArray, Any], matrix: ComplexArray) -> float:
    """LAPACK estimate of ``1 / cond_1(matrix)`` from its LU factorization."""
    norm = float(np.linalg.norm(matrix, 1))
    if norm == 0 or not np.all(np.isfinite(lu[0])):
        return 0.0
    gecon = la.get_lapack_funcs("gecon", (lu[0],))
    rcond, info = gecon(lu[0], norm, norm="1")
    return float(rcond) if info == 0 else 0.0


def _left_null_vector(matrix: ComplexArray) -> ComplexArray:
    """Unit ``y`` with ``y^dagger matrix`` smallest, for a (nearly) singular square matrix.

    Two steps of inverse iteration on ``matrix^dagger``; where the LU factorization meets an
    exactly zero pivot (the shift is an eigenvalue to the last bit, which happens for
    structured leads such as clean wires) the iteration overflows, and the left singular
    vector of the smallest singular value is taken instead.
    """
    with np.errstate(all="ignore"):
        factor = _lu_factor(matrix.conj().T)
        vector = la.lu_solve(factor, np.ones(matrix.shape[0], dtype=complex), check_finite=False)
        norm = np.linalg.norm(vector)
        if np.isfinite(norm) and norm > 0:
            vector = la.lu_solve(factor, vector / norm, check_finite=False)
            norm = np.linalg.norm(vector)
    if np.isfinite(norm) and norm > 0:
        return np.asarray(vector / norm)
    u, _, _ = la.svd(matrix, check_finite=False)
    return np.asarray(u[:, -1])


def _eigenvalue_error(
    pencil_l: ComplexArray,
    pencil_r: ComplexArray,
    alpha: complex,
    beta: complex,
    right_vector: ComplexArray,
) -> float:
    """First-order rounding error of the eigenvalue ``alpha / beta`` (chordal, dimensionless).

    ``eps ||(L, R)|| / |(y^dagger L x, y^dagger R x)|`` with ``x`` the unit right and ``y``
    the unit left eigenvector (inverse iteration): small for a well-conditioned eigenvalue,
    however close to others; about ``sqrt(eps)`` for two solutions merging at a band edge.
    The pencil is dimensionless, so this does not depend on the energy scale of the lead.
    """
    pencil_norm = math.hypot(np.linalg.norm(pencil_l), np.linalg.norm(pencil_r))
    left_vector = _left_null_vector(beta * pencil_l - alpha * pencil_r)
    unit = right_vector / np.linalg.norm(right_vector)
    projection = math.hypot(
        abs(left_vector.conj() @ pencil_l @ unit), abs(left_vector.conj() @ pencil_r @ unit)
    )
    return float(np.finfo(float).eps * pencil_norm / max(projection, 1e-300))


def _current_coupled_groups(current: ComplexArray, degenerate: bool) -> list[NDArray[np.intp]]:
    """Groups of solutions whose velocities must be found together (degenerate sets).

    ``current`` is the current form of unit-circle eigenvectors. With one common eigenvalue
    (``degenerate``) they form a single group. Otherwise, Bloch solutions at distinct ``k``
    carry no cross current, so only solutions the eigensolver did not separate (a
    normalized cross current above ``_CROSS_CURRENT_COUPLING``) are grouped: the others
    keep their own eigenvectors, the exact Bloch solutions, however close their ``k`` (the
    electron- and hole-like quasiparticles of a superconducting lead differ by
    ``Delta / v``, which may be many orders below the bandwidth). Diagonalizing the
    velocity against the norm over such a set would mix incoming and outgoing solutions of
    different ``k``.
    """
    count = current.shape[0]
    if degenerate or count == 1:
        return [np.arange(count)]
    diagonal = np.sqrt(np.abs(np.diag(current).real))
    scale = np.outer(diagonal, diagonal)
    with np.errstate(divide="ignore", invalid="ignore"):
        coupled = np.abs(current) > _CROSS_CURRENT_COUPLING * scale
    coupled |= np.eye(count, dtype=bool)
    labels = -np.ones(count, dtype=np.intp)
    for start in range(count):
        if labels[start] >= 0:
            continue
        labels[start] = start
        stack = [start]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(coupled[i] & (labels < 0)):
                labels[j] = start
                stack.append(int(j))
    return [np.flatnonzero(labels == label) for label in np.unique(labels)]


def _clusters(lam: ComplexArray) -> list[NDArray[np.intp]]:
    """Groups of unit-circle eigenvalues connected by distances below the tolerance."""
    count = lam.size
    if count == 0:
        return []
    close = np.abs(lam[:, None] - lam[None, :]) < DEGENERACY_TOLERANCE
    if np.count_nonzero(close) == count:  # the common case: each one alone
        return [np.array([i], dtype=np.intp) for i in range(count)]
    labels = -np.ones(count, dtype=np.intp)
    current = 0
    for start in range(count):
        if labels[start] >= 0:
            continue
        stack = [start]
        labels[start] = current
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(close[i] & (labels < 0)):
                labels[j] = current
                stack.append(int(j))
        current += 1
    return [np.flatnonzero(labels == c) for c in range(current)]


def _independent(vecs: ComplexArray) -> bool:
    """Whether a cluster's eigenvectors are well independent.

    Eigenvectors of distinct or semisimple eigenvalues are; nearly parallel ones signal a
    band edge (a Jordan block), handled by :func:`_eigenspace`.
    """
    if vecs.shape[1] == 1:
        return True
    singular = np.linalg.svd(vecs, compute_uv=False)
    return bool(singular[-1] > _INDEPENDENCE_TOLERANCE * singular[0])


def _band_reaches(
    h: ComplexArray, hop: ComplexArray, energy: float, lam: ComplexArray, scale: float
) -> bool:
    """Whether a band of ``H(k) = h + hop e^{ik} + hop^dagger e^{-ik}`` reaches ``energy``.

    Searched near the momenta ``arg(lam)`` of a cluster of near-unit-circle solutions: the
    distance from ``energy`` to the spectrum of the Hermitian ``H(k)``, minimized over
    ``k``, is accurate to the rounding of the energies (~1e-16 ``||H||``), far better than
    the moduli of the pencil's eigenvalues next to a merging pair (~1e-8).
    """
    centre = complex(np.mean(lam))
    spread = float(np.max(np.abs(np.angle(lam / centre))))
    k0 = float(np.angle(centre))
    half_width = max(DEGENERACY_TOLERANCE, 10.0 * spread)

    def band_energies(offset: float) -> FloatArray:
        phase = np.exp(1j * (k0 + offset))
        return np.asarray(la.eigvalsh(h + hop * phase + hop.conj().T / phase), dtype=float)

    def distance(offset: float) -> float:
        return float(np.min(np.abs(band_energies(offset) - energy)))

    # A band crossing the energy in the window: a sign change of E_n(k) - E between samples
    # (the minimum below may stop short of a crossing's V-shaped zero by more than rounding).
    samples = np.concatenate(
        [np.linspace(-half_width, half_width, 9), np.angle(lam / np.exp(1j * k0))]
    )
    signs = np.sign(np.array([band_energies(float(x)) for x in samples]) - energy)
    if np.any(np.any(signs > 0, axis=0) & np.any(signs < 0, axis=0)):
        return True

    # Searched in the offset from k0: the bounded method's relative tolerance then applies
    # to the offset (~1e-6), not to k itself (up to pi).
    best = optimize.minimize_scalar(
        distance,
        bounds=(-half_width, half_width),
        method="bounded",
        options={"xatol": 1e-15},
    )
    size = max(float(np.max(np.abs(band_energies(0.0)))), scale)
    # A band that misses the energy by more than the rounding of band energies does not
    # reach it. A hair outside a band the evanescent pair is then taken from the pencil
    # where it resolves the pair (_gap_solutions), else as the band-edge solution.
    return bool(min(float(best.fun), distance(0.0)) <= _BAND_MISS_RESOLUTION * size)


def _band_mode(
    h: ComplexArray, hop: ComplexArray, energy: float, k_start: float
) -> tuple[float, ComplexArray, float] | None:
    """The Bloch solution at ``energy`` on the band nearest to it at ``k_start``, on the side
    of the band extremum where ``k_start`` lies: ``(k, phi, v)`` with ``phi`` the unit
    eigenvector of the Hermitian ``H(k)`` and ``v`` the band velocity.

    Newton's iteration on ``E_n(k) = energy`` (``dE_n/dk`` by Hellmann-Feynman), each step
    halved until the velocity keeps its sign, so that it never crosses the band extremum
    to the partner solution. Eigenvectors and velocities of the Hermitian problem are
    accurate to the rounding of energies even a hair from a band edge, where the mode
    pencil's merging eigenvectors are not. None when the band does not reach the energy
    on that side, or is degenerate there.
    """
    k = k_start
    sign = 0.0
    for _ in range(60):
        phase = complex(math.cos(k), math.sin(k))
        bloch = h + hop * phase + hop.conj().T * phase.conjugate()
        values, vectors = la.eigh(bloch)
        n = int(np.argmin(np.abs(values - energy)))
        size = max(float(np.max(np.abs(values))), float(np.linalg.norm(hop, 2)), 1e-300)
        gaps = np.abs(np.delete(values, n) - values[n])
        if gaps.size and float(np.min(gaps)) < 1e-8 * size:
            return None
        phi = vectors[:, n]
        speed = float(np.real(phi.conj() @ (1j * (hop * phase - hop.conj().T / phase)) @ phi))
        mismatch = float(values[n]) - energy
        if sign == 0:
            sign = math.copysign(1.0, speed)
        if abs(mismatch) <= 8 * np.finfo(float).eps * size:
            if speed * sign <= 0:
                return None
            # Depth of the energy inside the band, v^2 / (2 |d^2E/dk^2|) on the parabola
            # through the extremum: below the rounding of energies the root is not told
            # apart from the band edge and the mode counts as closed (speed 0).
            step = 1e-4
            curvature = abs(_band_speed(h, hop, k + step, n) - _band_speed(h, hop, k - step, n))
            depth = speed**2 * 2 * step / max(curvature, 1e-300)
            if depth <= _EDGE_RESOLUTION * size:
                return k, phi, 0.0
            return k, phi, speed
        if speed * sign <= 0:
            return None
        step = -mismatch / speed
        if abs(step) > 1e-2:
            return None
        k += step
    return None


def _band_speed(h: ComplexArray, hop: ComplexArray, k: float, n: int) -> float:
    """Velocity ``dE_n/dk`` of the ``n``-th band (ascending) at ``k``, by Hellmann-Feynman."""
    phase = complex(math.cos(k), math.sin(k))
    _, vectors = la.eigh(h + hop * phase + hop.conj().T * phase.conjugate())
    phi = vectors[:, n]
    return float(np.real(phi.conj() @ (1j * (hop * phase - hop.conj().T / phase)) @ phi))


def _band_edge_pair(
    h: ComplexArray, hop: ComplexArray, energy: float, k0: float, spread: float
) -> list[tuple[float, ComplexArray, float]] | None:
    """The two slow propagating solutions on either side of a band extremum near ``k0``.

    Searched from both sides of ``k0``, a little farther than the ``spread`` of the
    cluster; None when the energy is not inside the band there (a band edge or a gap).
    """
    reach = max(2 * spread, 10 * DEGENERACY_TOLERANCE)
    found = []
    for side in (-1.0, 1.0):
        mode = _band_mode(h, hop, energy, k0 + side * reach)
        if mode is None:
            return None
        found.append(mode)
    if abs(found[0][0] - found[1][0]) == 0 or found[0][2] * found[1][2] >= 0:
        return None
    return found


def _gap_solutions(
    pencil_l: ComplexArray,
    pencil_r: ComplexArray,
    vectors: ComplexArray,
    members: NDArray[np.intp],
    decays: NDArray[np.bool_],
    resolved: NDArray[np.bool_],
    lam0: complex,
    energy: float,
) -> list[ComplexArray]:
    """The decaying half of a cluster of evanescent pairs at an energy in a tiny gap.

    ``resolved`` tells, for each member, whether its distance ``|log |lambda||`` from the
    unit circle exceeds its own rounding error (:func:`_eigenvalue_error`) by
    ``_RESOLVED_MARGIN``. Where all are resolved these are the solutions with ``|lambda| < 1`` (the
    growing partner of a pair may lie outside the cluster), however close to the circle: a
    gap ``Delta`` many orders below the bandwidth (a superconducting lead) puts its
    evanescent pairs ``|log |lambda|| ~ Delta / v`` from it, with well-conditioned
    eigenvalues. Otherwise (a pair near merging, whose moduli rounding can move across the
    circle) the eigenvectors of the merged eigenspace at ``lam0``, one per pair, stand for
    them as at a band edge.
    """
    split = 2 * int(np.sum(decays)) == members.size
    if np.all(resolved):
        if split:
            decaying = vectors[:, members[decays]]
            return list(_current_free(decaying, vectors[:, members[~decays]]).T)
        return list(vectors[:, members[decays]].T)
    try:
        basis, num_edges = _eigenspace(pencil_l, pencil_r, lam0, members.size, energy)
    except RuntimeError:
        num_edges = -1
    if 2 * num_edges == members.size:
        return list(basis.T)
    if split:
        decaying = vectors[:, members[decays]]
        return list(_current_free(decaying, vectors[:, members[~decays]]).T)
    raise RuntimeError(_near_edge_message(energy))


def _current_free_pairs(
    alpha: ComplexArray,
    beta: ComplexArray,
    vectors: ComplexArray,
    decaying: NDArray[np.bool_],
    growing: NDArray[np.bool_],
) -> ComplexArray:
    """The decaying eigenvectors, those of pairs near the unit circle made current-free.

    A decaying solution ``lambda`` within ``_PAIR_CORRECTION_REACH`` of the circle (in
    ``|log |lambda||``) whose growing partner ``1 / conj(lambda)`` is found among the
    growing solutions is corrected with it by :func:`_current_free`: a hair outside a
    band edge the pair is split by only ``2 kappa`` and its eigenvectors carry a spurious
    current of order ``eps / kappa``.
    """
    result = np.array(vectors[:, decaying])
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = alpha / beta
    decaying_index = np.flatnonzero(decaying)
    growing_index = np.flatnonzero(growing)
    if decaying_index.size == 0 or growing_index.size == 0:
        return result
    with np.errstate(divide="ignore"):  # lambda = 0 (beta = 0 of the mirror): infinitely far
        kappa = -np.log(np.abs(lam[decaying_index]))
    near = np.flatnonzero(kappa < _PAIR_CORRECTION_REACH)
    if near.size == 0:
        return result
    mirrored = 1 / lam[decaying_index[near]].conj()
    distances = np.abs(mirrored[:, None] - lam[growing_index][None, :])
    partners = np.argmin(distances, axis=1)
    closest = distances[np.arange(near.size), partners]
    paired = closest < 0.1 * kappa[near]
    near, partners = near[paired], partners[paired]
    if near.size == 0 or np.unique(partners).size != partners.size:
        return result
    result[:, near] = _current_free(result[:, near], vectors[:, growing_index[partners]])
    return result


def _reduced_current(x: ComplexArray, y: ComplexArray) -> ComplexArray:
    """Current form ``J(x_i, y_j)`` of reduced solutions (columns ``(alpha_{-1}, beta_0)``)."""
    rank = x.shape[0] // 2
    return np.asarray(1j * (x[:rank].conj().T @ y[rank:] - x[rank:].conj().T @ y[:rank]))


def _current_free(decaying: ComplexArray, growing: ComplexArray) -> ComplexArray:
    """Decaying solutions of evanescent pairs near the unit circle, made current-free.

    Exact decaying solutions carry no current, ``J(d_i, d_j) = 0``, which is what keeps
    ``i (Sigma - Sigma^dagger)`` equal to the propagating modes' part and S unitary. A pair
    ``|log |lambda|| = kappa`` from the circle is computed with an error ``eps / kappa``
    along its growing partner (the only solution with which a decaying one has a cross
    current), so rounding leaves ``J(d, d) ~ eps / kappa`` (1e-10 at 1e-12 outside a
    band). The first-order correction ``D + G T`` with ``J(G, D)^dagger T + T^dagger J(G,
    D) = -J(D, D)`` removes it; it moves each pair along itself by about the rounding of
    the energy, as any computed solution is. Left as it is where the pairing ``J(G, D)``
    is singular.
    """
    if decaying.shape != growing.shape or decaying.shape[1] == 0:
        return decaying
    mismatch = _reduced_current(decaying, decaying)
    mismatch = (mismatch + mismatch.conj().T) / 2
    pairing = _reduced_current(growing, decaying)
    singular = la.svdvals(pairing)
    if singular[-1] <= 1e3 * np.finfo(float).eps * max(singular[0], 1e-300):
        return decaying
    correction = la.solve(pairing.conj().T, -mismatch / 2)
    corrected = decaying + growing @ correction
    return np.asarray(corrected / np.linalg.norm(corrected, axis=0))


def _eigenspace(
    pencil_l: ComplexArray, pencil_r: ComplexArray, lam0: complex, size: int, energy: float
) -> tuple[ComplexArray, int]:
    """Eigenvectors at ``lam0`` of a cluster of ``size`` eigenvalues, from the null space.

    Returns an orthonormal basis of the eigenspace and the number of band edges in the
    cluster. Each band edge is a 2 x 2 Jordan block (two solutions merging, with a single
    eigenvector), each band crossing the energy a simple eigenvalue, so a cluster of ``size``
    eigenvalues with ``null`` eigenvectors holds ``size - null`` band edges, as long as that
    is at most ``null``. Jordan blocks of size three or more (bands touching the energy as
    ``(k - k0)^3`` or flatter) are not resolved and raise ``RuntimeError``.
    """
    _, sigma, vh = la.svd(pencil_l - lam0 * pencil_r)
    null = int(np.sum(sigma < _NULL_SPACE_TOLERANCE * sigma[0]))
    basis = vh[sigma.size - null :].conj().T
    num_edges = size - null
    if null == 0 or not 0 <= num_edges <= null:
        raise RuntimeError(
            f"could not classify the lead modes at energy {energy!r}: {size} solutions merge "
            f"at k = {float(np.angle(lam0)):.6g} with only {null} independent eigenvectors, "
            "a band touching the energy to higher than second order in k; shift the energy "
            "by a small amount (e.g. 1e-9 of the hopping)"
        )
    return basis, num_edges


# --------------------------------------------------------------------------------------------
# Leads made of independent chains: the modes in closed form
# --------------------------------------------------------------------------------------------

#: Whether lead blocks made of independent chains take the closed-form modes (False only to
#: test them against the general solver).
_CLOSED_FORM_MODES = True
# Largest off-diagonal element of h_cell and hop in the chain basis (times the largest entry
# of either) for a block to count as independent chains: the closed form neglects it.
_CHAIN_RESIDUAL = 1e-12
# Distance of the energy to a band edge of one of the chains (times the largest chain
# hopping) below which the general solver computes the block's modes: its handling of band
# edges (which solutions merge, which count as open) is the reference, and next to an edge
# the closed form and the pencil round differently. 1e-4 covers the general solver's slow
# modes (velocity below 1e-2 of the hopping) and its near-circle evanescent pairs.
_CHAIN_EDGE_WINDOW = 1e-4
# Smallest chain hopping, relative to the largest, of a block solved in closed form: the
# general solver's velocity scale is the largest hopping, and a chain far below it has all
# of its band within the edge window.
_CHAIN_HOPPING_RATIO = 1e-3
# Weights of the two Hermitian parts of hop in the combination with h_cell whose
# eigenvectors are the chains (any generic weights; an accidental degeneracy of the
# combination is caught by the residual check).
_CHAIN_MIX = (0.5772156649015329, 0.3183098861837907)


@dataclass(frozen=True, eq=False)
class _Chains:
    """A lead block that is ``n`` independent chains in one transverse basis ``U``.

    ``h_cell = U diag(onsite) U^dagger`` and ``hop = U diag(hopping e^{i angle})
    U^dagger``: chain ``c`` has the band ``onsite_c + 2 hopping_c cos(k + angle_c)``.
    ``left`` and ``right`` are the factors ``hop = A B^dagger`` of the general solver (the
    same bits), ``left_chains = A^dagger U`` and ``right_chains = B^dagger U``.
    """

    basis: ComplexArray
    onsite: FloatArray
    hopping: FloatArray
    angle: FloatArray
    left: ComplexArray
    right: ComplexArray
    left_chains: ComplexArray
    right_chains: ComplexArray

    def near_edge(self, energies: FloatArray) -> NDArray[np.bool_]:
        """Whether each energy lies within the edge window of a chain's band edge."""
        z = np.abs(energies[:, None] - self.onsite[None, :])
        distance = np.abs(z - 2 * self.hopping[None, :])
        window = _CHAIN_EDGE_WINDOW * float(self.hopping.max())
        return np.asarray(np.any(distance <= window, axis=1))


#: Recent chain decompositions (they do not depend on the energy): digest -> chains or None.
_CHAINS_CACHE: OrderedDict[bytes, _Chains | None] = OrderedDict()
_CHAINS_CACHE_SIZE = 8
_CHAINS_CACHE_LOCK = threading.Lock()


def _independent_chains(h: ComplexArray, v: ComplexArray) -> _Chains | None:
    """The block as independent chains, or None where it is not (or not safely) one."""
    key = _lead_digest(h, v, 0.0)
    with _CHAINS_CACHE_LOCK:
        if key in _CHAINS_CACHE:
            _CHAINS_CACHE.move_to_end(key)
            return _CHAINS_CACHE[key]
    chains = _find_chains(h, v)
    if chains is not None:
        for value in vars(chains).values():
            value.flags.writeable = False
    with _CHAINS_CACHE_LOCK:
        _CHAINS_CACHE[key] = chains
        while len(_CHAINS_CACHE) > _CHAINS_CACHE_SIZE:
            _CHAINS_CACHE.popitem(last=False)
    return chains


def _find_chains(h: ComplexArray, v: ComplexArray) -> _Chains | None:
    """:func:`_independent_chains` without the cache.

    A hopping ``c 1`` (a clean wire) is diagonal in every basis, so the eigenvectors of
    ``h_cell`` are the chains, degenerate or not. Otherwise ``hop`` must be normal and
    commute with ``h_cell``; the eigenvectors of a generic Hermitian combination of the
    three Hermitian parts are then common eigenvectors, which the residual check confirms.
    The hopping must have full rank (a singular one means dangling orbitals or flat bands,
    left to the general solver).
    """
    n = h.shape[0]
    scale = max(float(np.max(np.abs(h), initial=0.0)), float(np.max(np.abs(v), initial=0.0)))
    if n == 0 or not np.any(v):
        return None
    diagonal = np.diag(v)
    if np.all(diagonal == diagonal[0]) and np.count_nonzero(v) == np.count_nonzero(diagonal):
        _, basis = la.eigh(h, check_finite=False)
    else:
        tolerance = _CHAIN_RESIDUAL * scale * scale * n
        if float(np.max(np.abs(h @ v - v @ h))) > tolerance:
            return None
        if float(np.max(np.abs(v @ v.conj().T - v.conj().T @ v))) > tolerance:
            return None
        first, second = _CHAIN_MIX
        combination = h + first * (v + v.conj().T) + 1j * second * (v - v.conj().T)
        _, basis = la.eigh(combination, check_finite=False)
    h_chains = basis.conj().T @ h @ basis
    v_chains = basis.conj().T @ v @ basis
    off = ~np.eye(n, dtype=bool)
    residual = max(
        float(np.max(np.abs(h_chains[off]), initial=0.0)),
        float(np.max(np.abs(v_chains[off]), initial=0.0)),
    )
    if residual > _CHAIN_RESIDUAL * scale:
        return None
    couplings = np.diag(v_chains)
    hopping = np.abs(couplings)
    if float(hopping.min()) < _CHAIN_HOPPING_RATIO * float(hopping.max()):
        return None
    # The factors of hop that the general solver uses (those of the conjugate block,
    # conjugated, where it solves that one), so that both give the same reduced coordinates.
    if _solved_as_conjugate(h, v):
        rank, _, left, right = _hop_split(_derived(v, "conj"))
        left, right = left.conj(), right.conj()
    else:
        rank, _, left, right = _hop_split(v)
    if rank != n:
        return None
    return _Chains(
        basis=np.ascontiguousarray(basis),
        onsite=np.diag(h_chains).real.copy(),
        hopping=hopping,
        angle=np.angle(couplings),
        left=left,
        right=right,
        left_chains=left.conj().T @ basis,
        right_chains=right.conj().T @ basis,
    )


def _wrapped(momenta: FloatArray) -> FloatArray:
    """Momenta in ``(-pi, pi]``, the solvers' interval (those already in it unchanged)."""
    inside = (momenta > -math.pi) & (momenta <= math.pi)
    return np.asarray(np.where(inside, momenta, math.pi - np.mod(math.pi - momenta, 2 * math.pi)))


def _chain_block_modes(chains: _Chains, energies: FloatArray) -> list[_BlockModes]:
    """The modes of a block of independent chains at each energy, in closed form.

    Chain ``c`` at ``z = E - onsite_c`` has the solutions ``lambda = mu e^{-i angle_c}``
    with ``hopping_c (mu + 1 / mu) = z``. Inside its band (``|z| < 2 hopping_c``) they are
    ``mu = e^{+- i kappa}``, ``cos kappa = z / (2 hopping_c)``: an incoming mode (``+``,
    velocity ``-sqrt(4 hopping_c^2 - z^2)``) and an outgoing one, with the wave function
    ``u_c / sqrt(|v|)`` (``u_c`` the chain's transverse vector, phase as the basis has it).
    Outside, the decaying solution ``mu = 2 hopping_c / (z + sign(z) sqrt(z^2 - 4
    hopping_c^2))``, exactly current-free, stored as the general solver stores its decaying
    solutions: ``(A^dagger u_c, lambda B^dagger u_c)`` with unit norm, which stays bounded
    however fast the solution decays. The modes are in the general solver's order (Kwant's,
    :func:`_kwant_order`) and normalization. Every energy must be away from the chains' band
    edges (:meth:`_Chains.near_edge`).
    """
    tau = chains.hopping[None, :]
    z = energies[:, None] - chains.onsite[None, :]
    inside = np.abs(z) < 2 * tau
    root = np.sqrt(np.abs((2 * tau - z) * (2 * tau + z)))  # |4 tau^2 - z^2|^(1/2)
    kappa = np.arctan2(root, z)
    angle = chains.angle[None, :]
    in_momenta = _wrapped(kappa - angle)
    out_momenta = _wrapped(-kappa - angle)
    with np.errstate(divide="ignore"):
        amplitude = 1 / np.sqrt(root)
    sign = np.where(z < 0, -1.0, 1.0)
    decaying = (2 * tau / (z + sign * root)) * np.exp(-1j * angle)
    left_chains, right_chains = chains.left_chains, chains.right_chains
    n = chains.basis.shape[0]
    result = []
    for b in range(energies.size):
        open_ = np.flatnonzero(inside[b])
        closed = np.flatnonzero(~inside[b])
        speed = root[b, open_]
        scale = amplitude[b, open_]
        waves = chains.basis[:, open_] * scale[None, :]
        in_k, out_k = in_momenta[b, open_], out_momenta[b, open_]
        in_order = _kwant_order(_kwant_momenta(in_k), -speed, incoming=True)
        out_order = _kwant_order(_kwant_momenta(out_k), speed, incoming=False)
        beta = right_chains[:, open_] * scale[None, :]
        in_alpha = left_chains[:, open_] * (scale * np.exp(-1j * in_k))[None, :]
        out_alpha = left_chains[:, open_] * (scale * np.exp(-1j * out_k))[None, :]
        evanescent = np.vstack(
            [left_chains[:, closed], right_chains[:, closed] * decaying[b, closed][None, :]]
        )
        evanescent /= np.linalg.norm(evanescent, axis=0)
        result.append(
            _frozen_block_modes(
                _BlockModes(
                    hop_left=chains.left,
                    hop_right=chains.right,
                    in_vectors=np.vstack([in_alpha, beta])[:, in_order],
                    in_wave_functions=waves[:, in_order],
                    in_momenta=in_k[in_order],
                    in_velocities=-speed[in_order],
                    out_vectors=np.vstack([out_alpha, beta])[:, out_order],
                    out_wave_functions=waves[:, out_order],
                    out_momenta=out_k[out_order],
                    out_velocities=speed[out_order],
                    decaying_vectors=evanescent.reshape(2 * n, closed.size),
                )
            )
        )
    return result


def _any_block_modes(h: ComplexArray, v: ComplexArray, energy: float) -> _BlockModes:
    """Modes of one block: in closed form for independent chains away from their band
    edges, from the general solver (:func:`_block_modes`) otherwise."""
    if _CLOSED_FORM_MODES:
        chains = _independent_chains(h, v)
        if chains is not None:
            energies = np.array([energy])
            if not chains.near_edge(energies)[0]:
                return _chain_block_modes(chains, energies)[0]
    return _block_modes(h, v, energy)


# --------------------------------------------------------------------------------------------
# Public mode and self-energy functions
# --------------------------------------------------------------------------------------------


def _modes_at_energy(
    h_cell: ArrayLike,
    hop: ArrayLike,
    energy: float,
    *,
    projectors: Sequence[ArrayLike] | None = None,
) -> tuple[PropagatingModes, StabilizedModes]:
    """Propagating and evanescent modes of a lead, and its exact self-energy (the solvers' form).

    The package's solvers call this form: ``hop`` is ``<m|H|m+1>`` with cells numbered away
    from the system (the dagger of Kwant's ``h_hop``), and both incoming and outgoing modes
    are ordered by increasing momentum. :func:`modes` is Kwant's form.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian ``<m|H|m>`` (energy units).
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>`` away from the system; any rank.
    energy : float
        Real energy, same units.
    projectors : list of (n, n_b) array_like, optional, keyword-only
        Conservation-law blocks (orthonormal columns, together spanning all ``n`` orbitals,
        left invariant by ``h_cell`` and ``hop``). Modes are computed per block, labelled
        with it, and ordered block by block.

    Returns
    -------
    PropagatingModes
        Unit-current propagating modes, incoming then outgoing.
    StabilizedModes
        Outgoing/decaying basis, incoming modes in reduced coordinates, self-energy, sources.

    Raises
    ------
    ValueError
        Bad shapes, non-Hermitian ``h_cell``, NaN/inf energy, bad projectors, or an energy on
        a flat band of the lead.

    Notes
    -----
    See the module docstring for the conventions, the method and the tolerances (including
    the treatment of energies exactly at a band edge, and of an energy at a bound state of
    the semi-infinite lead, where the modes are those of the energy shifted by
    ``POLE_ENERGY_SHIFT`` times the 2-norm of ``hop``).

    Examples
    --------
    Square-lattice strip three sites wide (hopping -1): at ``E = -1.5`` two of its three
    transverse subbands are open.

    >>> import numpy as np
    >>> from mesoscopic.leads import _modes_at_energy
    >>> h = -(np.eye(3, k=1) + np.eye(3, k=-1))
    >>> prop, stab = _modes_at_energy(h, -np.eye(3), -1.5)
    >>> prop.num_modes, prop.block_nmodes
    (2, (2,))
    >>> current = [-2 * np.imag(np.exp(1j * k) * phi.conj() @ -np.eye(3) @ phi)
    ...            for k, phi in zip(prop.momenta, prop.wave_functions.T)]
    >>> np.round(current, 10).tolist()
    [-1.0, -1.0, 1.0, 1.0]
    """
    h, v = _lead_matrices(h_cell, hop)
    e = _checks.real_energy(energy)
    blocks = _projector_blocks(projectors, h, v)
    with _blas_threads_for(h.shape[0]):
        return _modes_with_pole_shift(h, v, e, blocks, projectors is not None)


def _modes_with_pole_shift(
    h: ComplexArray, v: ComplexArray, e: float, blocks: list[ComplexArray], by_block: bool
) -> tuple[PropagatingModes, StabilizedModes]:
    try:
        return _modes_at(h, v, e, blocks, by_block)
    except _SelfEnergyPole as pole:
        # The semi-infinite lead has a bound state at exactly this energy (see the module
        # docstring); its self-energy is continuous on either side of the pole's energy
        # only up to the divergent pole term, which the attached system projects out.
        shift = POLE_ENERGY_SHIFT * float(np.linalg.norm(v, 2))
        for shifted in (e + shift, e - shift):
            try:
                return _modes_at(h, v, shifted, blocks, by_block)
            except _SelfEnergyPole:
                continue
        raise RuntimeError(_near_edge_message(e)) from pole


#: Lead cells with at most this many orbitals are solved with one BLAS thread.
SINGLE_THREAD_MAX_ORBITALS = 384


class _SingleThreadBlas:
    """Reference-counted single-thread BLAS limit, safe when threads overlap.

    The BLAS thread count is a process-wide setting: the first entry sets it to one and
    the last exit restores it, whatever the order in which overlapping threads leave.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter: Any = None
        self._controller: Any = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._limiter is not None:
                    self._limiter.restore_original_limits()
                    self._limiter = None


_single_thread_blas = _SingleThreadBlas()


def _blas_threads_for(num_orbitals: int) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the dense algebra of a lead cell of this size, if small.

    The mode problem is a chain of LAPACK calls on matrices of a few hundred rows, between
    which the BLAS threads fall asleep: waking them costs more than they save (measured
    on two cores: 5x slower for 50 orbitals, 1.7x for 200, even at 400). Larger cells keep
    the threads the caller set (inside an RGF sweep on the CPU: ``blas_threads``, one by
    default).
    """
    if num_orbitals > SINGLE_THREAD_MAX_ORBITALS:
        return contextlib.nullcontext()
    return _single_thread_blas()


class _SelfEnergyPole(Exception):
    """The outgoing/decaying basis has no invertible interface part at this energy."""


def _modes_at(
    h: ComplexArray, v: ComplexArray, e: float, blocks: list[ComplexArray], by_block: bool
) -> tuple[PropagatingModes, StabilizedModes]:
    """:func:`modes` at one energy, for validated input; raises ``_SelfEnergyPole``."""
    if not by_block:
        per_block = [_any_block_modes(h, v, e)]
    else:
        per_block = [_any_block_modes(p.conj().T @ h @ p, p.conj().T @ v @ p, e) for p in blocks]
    return _combine_blocks(h.shape[0], blocks, per_block)


def _is_identity(matrix: ComplexArray) -> bool:
    """Whether `matrix` is exactly the identity."""
    n = matrix.shape[0]
    return (
        matrix.shape == (n, n)
        and bool(np.all(matrix.flat[:: n + 1] == 1))
        and np.count_nonzero(matrix) == n
    )


def _combine_blocks(
    n: int,
    blocks: Sequence[ComplexArray],
    per_block: Sequence[_BlockModes],
    *,
    block_signs: Sequence[float] | None = None,
    interface_size: int | None = None,
    block_nmodes_type: Any = tuple,
) -> tuple[PropagatingModes, StabilizedModes]:
    """The modes of the whole lead from the modes of its conservation-law blocks.

    ``block_signs`` scales Kwant's view of a block's stabilized basis (see
    :class:`StabilizedModes`); ``interface_size`` is the number of columns of Kwant's
    rectangular ``h_hop``. Raises ``_SelfEnergyPole``.
    """
    ranks = [bm.hop_left.shape[1] for bm in per_block]
    rank = sum(ranks)
    offsets = np.concatenate([[0], np.cumsum(ranks)]).astype(int)
    # One block spanning the cell as it is (a lead without conservation laws): the block's
    # arrays are the lead's.
    whole = len(blocks) == 1 and _is_identity(blocks[0])
    if whole:
        hop_left, hop_right = per_block[0].hop_left, per_block[0].hop_right
    else:
        hop_left = np.zeros((n, rank), dtype=complex)
        hop_right = np.zeros((n, rank), dtype=complex)
        for p, bm, start in zip(blocks, per_block, offsets, strict=False):
            hop_left[:, start : start + bm.hop_left.shape[1]] = p @ bm.hop_left
            hop_right[:, start : start + bm.hop_left.shape[1]] = p @ bm.hop_right

    def lift(kind: str) -> ComplexArray:
        """Block-diagonal assembly of reduced vectors into (alpha, beta) of all blocks."""
        if whole:
            return np.asarray(getattr(per_block[0], kind))
        columns = [getattr(bm, kind) for bm in per_block]
        total = sum(c.shape[1] for c in columns)
        alpha_part = np.zeros((rank, total), dtype=complex)
        beta_part = np.zeros((rank, total), dtype=complex)
        col = 0
        for c, start, r_b in zip(columns, offsets, ranks, strict=False):
            width = c.shape[1]
            alpha_part[start : start + r_b, col : col + width] = c[:r_b]
            beta_part[start : start + r_b, col : col + width] = c[r_b:]
            col += width
        return np.vstack([alpha_part, beta_part])

    in_reduced = lift("in_vectors")
    out_reduced = np.hstack([lift("out_vectors"), lift("decaying_vectors")])
    num_modes = in_reduced.shape[1]
    alpha_in, beta_in = in_reduced[:rank], in_reduced[rank:]
    alpha_out, beta_out = out_reduced[:rank], out_reduced[rank:]

    if rank:
        alpha_out_lu = _lu_factor(alpha_out)
        if _reciprocal_condition(alpha_out_lu, alpha_out) < _POLE_RCOND:
            raise _SelfEnergyPole
        # K = beta_out alpha_out^{-1} maps alpha_{-1} to beta_0 for outgoing/decaying waves.
        response = la.lu_solve(alpha_out_lu, beta_out.T, trans=1, check_finite=False).T
    else:
        alpha_out_lu = None
        response = np.zeros((0, 0), dtype=complex)
    sigma = hop_left @ response @ hop_left.conj().T
    sources = hop_left @ (beta_in - response @ alpha_in)

    if whole:
        in_waves, out_waves = per_block[0].in_wave_functions, per_block[0].out_wave_functions
    else:
        in_waves = np.hstack(
            [p @ bm.in_wave_functions for p, bm in zip(blocks, per_block, strict=False)]
        )
        out_waves = np.hstack(
            [p @ bm.out_wave_functions for p, bm in zip(blocks, per_block, strict=False)]
        )
    block_nmodes = block_nmodes_type(bm.in_momenta.size for bm in per_block)
    labels = np.repeat(np.arange(len(blocks)), block_nmodes)
    propagating = PropagatingModes(
        wave_functions=_frozen(np.hstack([in_waves, out_waves])),
        momenta=_frozen(np.concatenate([bm.in_momenta for bm in per_block]
                                       + [bm.out_momenta for bm in per_block])),
        velocities=_frozen(np.concatenate([bm.in_velocities for bm in per_block]
                                          + [bm.out_velocities for bm in per_block])),
        block_nmodes=block_nmodes,
        blocks=_frozen(np.concatenate([labels, labels]).astype(np.int64)),
    )  # fmt: skip
    stabilized = StabilizedModes(
        hop_left=_frozen(hop_left),
        hop_right=_frozen(hop_right),
        alpha_out=_frozen(alpha_out),
        beta_out=_frozen(beta_out),
        alpha_in=_frozen(alpha_in),
        beta_in=_frozen(beta_in),
        selfenergy=_frozen(sigma),
        sources=_frozen(sources),
        num_modes=num_modes,
        _alpha_out_lu=alpha_out_lu,
        _row_signs=(
            None
            if block_signs is None
            else _frozen(np.repeat(np.asarray(block_signs, dtype=float), ranks))
        ),
        _interface_size=interface_size,
    )
    return propagating, stabilized


def _selfenergy_at_energy(
    h_cell: ArrayLike,
    hop: ArrayLike,
    energy: float,
    *,
    projectors: Sequence[ArrayLike] | None = None,
) -> ComplexArray:
    """Exact retarded self-energy of a semi-infinite lead on the cell ``m = -1`` (solvers' form).

    ``hop`` is ``<m|H|m+1>`` (the dagger of Kwant's ``h_hop``); :func:`selfenergy` is
    Kwant's form.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian (energy units).
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>`` away from the system; any rank.
    energy : float
        Real energy.
    projectors : list of (n, n_b) array_like, optional, keyword-only
        Conservation-law blocks; the result is the same, computed block by block.

    Returns
    -------
    (n, n) complex ndarray
        ``Sigma = hop g_0 hop^dagger`` with ``g_0`` the retarded surface Green's function of
        cell 0 at ``E + i0`` (no broadening). ``-2 Im`` of its eigenvalues is ``>= 0``.

    Examples
    --------
    1D chain with hopping ``-t``: inside the band ``Sigma = (E - i sqrt(4 t^2 - E^2)) / 2``.

    >>> import numpy as np
    >>> from mesoscopic.leads import _selfenergy_at_energy
    >>> sigma = _selfenergy_at_energy([[0.0]], [[-1.0]], 1.0)
    >>> bool(np.isclose(sigma[0, 0], (1 - 1j * np.sqrt(3)) / 2))
    True
    """
    stabilized = _modes_at_energy(h_cell, hop, energy, projectors=projectors)[1]
    return np.array(np.asarray(stabilized.selfenergy))


# --------------------------------------------------------------------------------------------
# Kwant's raw lead functions: modes(h_cell, h_hop), selfenergy(h_cell, h_hop)
# --------------------------------------------------------------------------------------------

# |k| (or |k -+ pi|) below which a propagating mode is taken to sit at a time-reversal
# invariant momentum when particle-hole symmetry is used (Kwant's |Re lambda| = 1 within
# 1e6 machine epsilons).
_TRIM_TOLERANCE = 2e-5
# Relative violation of a declared symmetry (times the largest matrix entry) that is an error.
_SYMMETRY_TOLERANCE = 1e-8
# Velocities closer than this (relative) are one group when modes at a TRIM are symmetrized.
_SAME_VELOCITY = 1e-8


def _kwant_momenta(momenta: FloatArray) -> FloatArray:
    """Momenta in Kwant's interval ``[-pi, pi)``."""
    result = np.asarray(momenta, dtype=float).copy()
    result[result >= math.pi] -= 2 * math.pi
    return result


def _kwant_order(momenta: FloatArray, velocities: FloatArray, incoming: bool) -> NDArray[np.intp]:
    """Kwant's order: incoming by increasing, outgoing by decreasing momentum, then velocity."""
    key = momenta if incoming else -momenta
    return np.lexsort([velocities, key])


def _reduced_vectors(
    waves: ComplexArray, momenta: FloatArray, left: ComplexArray, right: ComplexArray
) -> ComplexArray:
    """``(alpha_{-1}, beta_0) = (A^dagger phi e^{-ik}, B^dagger phi)`` of Bloch modes."""
    alpha = (left.conj().T @ waves) * np.exp(-1j * momenta)[None, :]
    beta = right.conj().T @ waves
    return np.vstack([alpha, beta])


def _dense_operator(value: Any, name: str, n: int) -> ComplexArray | None:
    if value is None:
        return None
    arr = _complex_matrix(value, name)
    if arr.shape != (n, n):
        raise ValueError(f"{name} must be a ({n}, {n}) matrix like h_cell, got shape {arr.shape}")
    return arr


_SYMMETRY_KINDS = {"time_reversal": (True, 1), "particle_hole": (True, -1), "chiral": (False, -1)}


def _check_symmetry(
    op: ComplexArray,
    source: tuple[ComplexArray, ComplexArray],
    target: tuple[ComplexArray, ComplexArray],
    name: str,
    where: str,
) -> None:
    """Raise unless ``op`` maps the block ``source`` (h, hop) onto ``sign`` times ``target``."""
    anti, sign = _SYMMETRY_KINDS[name]
    scale = max(float(np.max(np.abs(x), initial=0.0)) for x in (*source, *target))
    for label, mat, image_of in zip(("h_cell", "h_hop"), target, source, strict=True):
        image = op @ (image_of.conj() if anti else image_of) @ op.conj().T
        worst = float(np.max(np.abs(image - sign * mat), initial=0.0))
        if worst > _SYMMETRY_TOLERANCE * max(scale, 1e-300):
            relation = "U H^* U^dagger" if anti else "C H C^dagger"
            raise ValueError(
                f"{name} is not a symmetry of {label} (the energy subtracted) {where}: "
                f"{relation} differs from {'+' if sign > 0 else '-'}H by {worst:.3g}"
            )


def phs_symmetrization(
    wfs: ArrayLike, particle_hole: Any
) -> tuple[ComplexArray, NDArray[np.intp]]:
    """Particle-hole symmetric basis of degenerate modes at a time-reversal invariant momentum.

    Parameters
    ----------
    wfs : (n, m) array_like
        Orthonormal columns spanning a space that ``P = U K`` maps onto itself (modes of one
        velocity at ``k = 0`` or ``pi``).
    particle_hole : (n, n) array_like or sparse matrix
        Unitary part ``U`` of the particle-hole operator.

    Returns
    -------
    new_wfs : (n, m) complex ndarray
        Orthonormal basis of the same space with ``U conj(psi) = psi`` for each column if
        ``P^2 = 1``, or pairs of columns ``(psi, U conj(psi))`` if ``P^2 = -1``.
    order : (m,) int ndarray
        Sort key of the columns within the space (zeros for ``P^2 = 1``, ``0..m-1`` for
        ``P^2 = -1``), as Kwant returns it.

    Raises
    ------
    ValueError
        Columns that are not orthonormal or span a space not closed under ``P``, or ``P``
        that does not square to ``+1`` or ``-1`` on it.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import phs_symmetrization
    >>> sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> new, _ = phs_symmetrization(np.eye(2), sx)
    >>> bool(np.allclose(sx @ new.conj(), new))
    True
    """
    w = np.array(wfs, dtype=complex)
    op = particle_hole.toarray() if hasattr(particle_hole, "toarray") else particle_hole
    op = np.asarray(op, dtype=complex)
    if w.ndim != 2 or op.shape != (w.shape[0], w.shape[0]):
        raise ValueError(
            f"wfs must be (n, m) and particle_hole (n, n); got shapes {w.shape} and {op.shape}"
        )
    m = w.shape[1]
    u = w.conj().T @ op @ w.conj()  # P restricted to the space: unitary if it is closed
    if not np.allclose(u @ u.conj().T, np.eye(m), atol=1e-8):
        raise ValueError("wfs must be orthonormal and span a space closed under particle_hole")
    square = u @ u.conj()
    if np.allclose(square, np.eye(m), atol=1e-8):
        # U is unitary and symmetric: W sqrt(U) (principal root, a polynomial in U, hence
        # symmetric) is P-invariant. The branch cut goes through the widest gap of the
        # spectrum, so that nearly equal eigenvalues get equal roots.
        values, vectors = la.eig(u)
        q, _ = la.qr(vectors)  # eigenvectors of a normal matrix: orthonormalize them
        values = np.diag(q.conj().T @ u @ q)
        phases = np.sort(np.angle(values))
        gaps = np.diff(np.concatenate([phases, [phases[0] + 2 * math.pi]])) if m else phases
        cut = phases[int(np.argmax(gaps))] + gaps[int(np.argmax(gaps))] / 2 if m else 0.0
        rotated = np.angle(values * np.exp(-1j * cut))  # in (-pi, pi), away from the cut
        roots = np.exp(0.5j * (rotated + cut))
        root = q @ np.diag(roots) @ q.conj().T
        new = w @ root
        order = np.zeros(m, dtype=np.intp)
    elif np.allclose(square, -np.eye(m), atol=1e-8):
        if m % 2:
            raise ValueError(f"with P^2 = -1 the modes come in pairs; got {m} of them")
        columns: list[ComplexArray] = []
        basis = w
        while basis.shape[1]:
            first = basis[:, 0] / np.linalg.norm(basis[:, 0])
            partner = op @ first.conj()
            columns.extend([first, partner])
            rest = basis - np.outer(first, first.conj() @ basis)
            rest = rest - np.outer(partner, partner.conj() @ rest)
            keep = basis.shape[1] - 2
            if keep <= 0:
                break
            left_vectors = la.svd(rest, full_matrices=False)[0]
            basis = left_vectors[:, :keep]
        new = np.array(columns).T
        order = np.arange(m, dtype=np.intp)
    else:
        raise ValueError("particle_hole must square to +1 or -1 on the modes (U U^* = +-1)")
    return new, order


def _symmetrize_particle_hole(
    waves: ComplexArray, momenta: FloatArray, velocities: FloatArray, op: ComplexArray
) -> None:
    """Kwant's particle-hole basis of one direction's modes (sorted), in place.

    At a TRIM, each group of equal velocity is made symmetric (:func:`phs_symmetrization`);
    the modes at ``-k`` (``k`` in ``(0, pi)``) are replaced by the images of those at ``k``,
    in mirrored positions.
    """
    near_zero = np.abs(momenta) < _TRIM_TOLERANCE
    near_pi = np.abs(np.abs(momenta) - math.pi) < _TRIM_TOLERANCE
    momenta[near_zero] = 0.0
    momenta[near_pi] = -math.pi
    for trim in (near_zero, near_pi):
        index = np.flatnonzero(trim)
        if not index.size:
            continue
        speeds = velocities[index]
        scale = max(float(np.max(np.abs(speeds))), 1e-300)
        groups = _degenerate_groups(np.sort(speeds), _SAME_VELOCITY * scale)
        order = index[np.argsort(speeds, kind="stable")]
        for group in groups:
            members = order[group]
            speed = math.sqrt(abs(float(velocities[members[0]])))
            basis, _ = la.qr(waves[:, members] * speed, mode="economic")
            waves[:, members] = phs_symmetrization(basis, op)[0] / speed
            velocities[members] = velocities[members[0]]
    positive = (momenta > _TRIM_TOLERANCE) & (momenta < math.pi - _TRIM_TOLERANCE)
    mirror = positive[::-1]
    if np.count_nonzero(positive):
        waves[:, mirror] = (op @ waves[:, positive].conj())[:, ::-1]
        momenta[mirror] = -momenta[positive][::-1]
        velocities[mirror] = velocities[positive][::-1]


def _symmetrized_block(
    h: ComplexArray,
    v: ComplexArray,
    energy: float,
    time_reversal: ComplexArray | None,
    particle_hole: ComplexArray | None,
    chiral: ComplexArray | None,
) -> _BlockModes:
    """Modes of one block in Kwant's order, in the basis its own symmetries fix."""
    raw = _block_modes(h, v, energy)
    in_k = _kwant_momenta(raw.in_momenta)
    out_k = _kwant_momenta(raw.out_momenta)
    in_order = _kwant_order(in_k, raw.in_velocities, incoming=True)
    out_order = _kwant_order(out_k, raw.out_velocities, incoming=False)
    in_waves = np.array(raw.in_wave_functions[:, in_order], dtype=complex)
    out_waves = np.array(raw.out_wave_functions[:, out_order], dtype=complex)
    in_k, out_k = in_k[in_order], out_k[out_order]
    in_v = np.array(raw.in_velocities[in_order], dtype=float)
    out_v = np.array(raw.out_velocities[out_order], dtype=float)
    in_vectors = raw.in_vectors[:, in_order]
    out_vectors = raw.out_vectors[:, out_order]
    symmetrized = False
    if particle_hole is not None and in_k.size:
        _symmetrize_particle_hole(in_waves, in_k, in_v, particle_hole)
        _symmetrize_particle_hole(out_waves, out_k, out_v, particle_hole)
        symmetrized = True
    if time_reversal is not None and in_k.size:
        out_waves = time_reversal @ in_waves.conj()
        out_k, out_v = _kwant_momenta(-in_k), -in_v
        symmetrized = True
    elif chiral is not None and in_k.size:
        out_waves = chiral @ in_waves[:, ::-1]
        out_k, out_v = in_k[::-1].copy(), -in_v[::-1]
        symmetrized = True
    if symmetrized:
        in_vectors = _reduced_vectors(in_waves, in_k, raw.hop_left, raw.hop_right)
        out_vectors = _reduced_vectors(out_waves, out_k, raw.hop_left, raw.hop_right)
    return _BlockModes(
        hop_left=raw.hop_left,
        hop_right=raw.hop_right,
        in_vectors=in_vectors,
        in_wave_functions=in_waves,
        in_momenta=in_k,
        in_velocities=in_v,
        out_vectors=out_vectors,
        out_wave_functions=out_waves,
        out_momenta=out_k,
        out_velocities=out_v,
        decaying_vectors=raw.decaying_vectors,
    )


def _transformed_block(source: _BlockModes, op: ComplexArray, kind: str) -> _BlockModes:
    """The modes of a block that ``op`` maps ``source``'s block onto.

    ``kind`` is ``"unitary"`` (an equal block), ``"time_reversal"``, ``"particle_hole"`` or
    ``"chiral"``; the modes are reordered as Kwant does. With ``hop = A B^dagger`` the new
    block's factors are ``op A`` (conjugated for antiunitary maps) and ``s op B`` with ``s``
    the sign the map gives the Hamiltonian, so that ``alpha`` is conjugated and ``beta``
    conjugated and multiplied by ``s``.
    """
    count = source.in_momenta.size
    anti = kind in ("time_reversal", "particle_hole")
    sign = -1.0 if kind in ("particle_hole", "chiral") else 1.0
    columns = np.arange(2 * count)
    if kind == "unitary":
        perm = columns
    elif kind == "time_reversal":
        perm = columns[::-1]
    elif kind == "particle_hole":
        perm = (-1 - columns) % max(count, 1) + count * (columns // max(count, 1))
    else:
        perm = columns % max(count, 1) + count * (columns < count)

    def mapped(x: ComplexArray) -> ComplexArray:
        return x.conj() if anti else x

    rank = source.hop_left.shape[1]
    waves = op @ mapped(np.hstack([source.in_wave_functions, source.out_wave_functions]))
    momenta = np.concatenate([source.in_momenta, source.out_momenta])
    velocities = np.concatenate([source.in_velocities, source.out_velocities])
    if anti:
        momenta = _kwant_momenta(-momenta)
    if (sign < 0) != anti:
        velocities = -velocities

    def reduced(x: ComplexArray) -> ComplexArray:
        y = mapped(x)
        return np.vstack([y[:rank], sign * y[rank:]])

    vectors = reduced(np.hstack([source.in_vectors, source.out_vectors]))
    waves, momenta, velocities, vectors = (
        waves[:, perm], momenta[perm], velocities[perm], vectors[:, perm]
    )  # fmt: skip
    return _BlockModes(
        hop_left=op @ mapped(source.hop_left),
        hop_right=sign * (op @ mapped(source.hop_right)),
        in_vectors=vectors[:, :count],
        in_wave_functions=waves[:, :count],
        in_momenta=momenta[:count],
        in_velocities=velocities[:count],
        out_vectors=vectors[:, count:],
        out_wave_functions=waves[:, count:],
        out_momenta=momenta[count:],
        out_velocities=velocities[count:],
        decaying_vectors=reduced(source.decaying_vectors),
    )


def _projector_list(projectors: Any, n: int) -> list[ComplexArray] | None:
    if projectors is None:
        return None
    if isinstance(projectors, np.ndarray) or hasattr(projectors, "toarray"):
        raise TypeError(
            "projectors must be a list of (n, n_b) matrices, one per conserved block, got "
            f"a single {type(projectors).__name__}"
        )
    result = []
    for b, p in enumerate(projectors):
        arr = _complex_matrix(p, f"projectors[{b}]")
        if arr.shape[0] != n:
            raise ValueError(
                f"projectors[{b}] must have {n} rows (the cell orbitals), got shape {arr.shape}"
            )
        result.append(arr[:, np.any(np.abs(arr) > 1e-10, axis=0)])
    return result


def modes(
    h_cell: ArrayLike,
    h_hop: ArrayLike,
    tol: float = 1e6,
    stabilization: Any = None,
    *,
    discrete_symmetry: Any = None,
    projectors: Sequence[Any] | None = None,
    time_reversal: Any = None,
    particle_hole: Any = None,
    chiral: Any = None,
    energy: float = 0.0,
) -> tuple[PropagatingModes, StabilizedModes]:
    """Propagating and evanescent modes of a lead, Kwant's ``kwant.physics.modes``.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian unit-cell Hamiltonian; as in Kwant, the energy is already subtracted
        (or give it as ``energy=``).
    h_hop : (n, m) array_like, m <= n
        Hopping from a lead cell to the cell the self-energy is computed on (Kwant's
        :meth:`mesoscopic.system.InfiniteSystem.inter_cell_hopping`, the dagger of
        :meth:`~mesoscopic.system.InfiniteSystem.hopping_away`); a rectangular ``h_hop``
        is padded with zero columns.
    tol : float, optional
        Kwant's zero threshold in machine epsilons; accepted for compatibility (positive).
        The solver's own tolerances are the module constants.
    stabilization : None or sequence of two bools, optional
        Kwant's choice of eigenproblem; accepted for compatibility. The modes always come
        from the stabilized generalized eigenproblem of the module docstring.
    discrete_symmetry : DiscreteSymmetry, optional, keyword-only
        Projectors and symmetries in one object (:class:`mesoscopic.physics.DiscreteSymmetry`);
        exclusive with the four following arguments.
    projectors : sequence of (n, n_b) matrices (dense or sparse), optional, keyword-only
        Conservation-law blocks (orthonormal columns that together span the cell, left
        invariant by ``h_cell`` and ``h_hop``); modes are computed block by block, in this
        order.
    time_reversal, particle_hole : (n, n) matrix, optional, keyword-only
        Unitary parts ``U`` of antiunitary symmetries: ``U H^* U^dagger = H`` and ``-H``.
    chiral : (n, n) matrix, optional, keyword-only
        Unitary ``C`` with ``C H C^dagger = -H``.
    energy : float, optional, keyword-only
        Subtracted from ``h_cell`` (not a Kwant argument). Particle-hole and chiral symmetry
        relate ``E`` to ``-E``, so they are only symmetries at zero energy.

    Returns
    -------
    PropagatingModes
        Incoming modes (negative velocity), then outgoing ones, each group by block; within a
        block incoming modes by increasing and outgoing modes by decreasing momentum (in
        ``[-pi, pi)``), then by velocity. ``block_nmodes`` is a list.
    StabilizedModes
        With Kwant's ``vecs``, ``vecslmbdainv``, ``nmodes``, ``sqrt_hop`` and
        ``selfenergy()`` (``(m, m)``), and the package's own fields.

    Raises
    ------
    ValueError
        Bad shapes, a non-Hermitian ``h_cell``, projectors that are not orthonormal or not
        a conservation law, a declared symmetry that ``h_cell - energy`` or ``h_hop`` does not
        have, or an energy on a flat band.
    TypeError
        ``discrete_symmetry`` together with separate projectors or symmetries.

    Notes
    -----
    The symmetries fix the basis of the modes, as in Kwant: with ``time_reversal`` the
    outgoing modes are ``T`` times the incoming ones (in order); with ``chiral`` (and no
    ``time_reversal``), ``C`` times the incoming ones in reverse order; with
    ``particle_hole``, the modes at ``-k`` are ``P`` times those at ``k`` (mirrored order),
    and modes at ``k = 0`` or ``-pi`` are ``P``-invariant (``P^2 = 1``) or in pairs
    ``(psi, P psi)`` (``P^2 = -1``). Between blocks, a block that a symmetry (or equality)
    maps from an earlier block gets that block's modes mapped, reordered as Kwant does
    (see :class:`mesoscopic.physics.DiscreteSymmetry`).

    Examples
    --------
    A chain with onsite energy ``0.3`` and hopping ``0.7``: ``E = 0.3 + 1.4 cos k``.

    >>> import numpy as np
    >>> from mesoscopic.leads import modes
    >>> prop, stab = modes(np.array([[0.3]]), np.array([[0.7]]))
    >>> k = np.arccos(-0.3 / 1.4)
    >>> bool(np.allclose(prop.momenta, [k, -k])), stab.nmodes
    (True, 1)
    >>> current = 1j * stab.vecs.conj().T @ stab.vecslmbdainv
    >>> bool(np.allclose(current + current.conj().T, np.diag([1.0, -1.0])))
    True
    """
    h = _complex_matrix(h_cell, "h_cell")
    t = _complex_matrix(h_hop, "h_hop")
    if h.shape[0] != h.shape[1]:
        raise ValueError(f"h_cell must be square (n, n), got shape {h.shape}")
    n, m = t.shape
    if n != h.shape[0] or m > n:
        raise ValueError(
            f"h_hop must be (n, m) with n = {h.shape[0]} (the rows of h_cell) and m <= n, got "
            f"shape {t.shape}"
        )
    tolerance = _checks.real_array(tol, "tol")
    if tolerance.ndim or not float(tolerance) > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if stabilization is not None and (
        isinstance(stabilization, str) or len(list(stabilization)) != 2
    ):
        raise ValueError(
            f"stabilization must be None or a sequence of two booleans, got {stabilization!r}"
        )
    e = _checks.real_energy(energy)
    if discrete_symmetry is not None:
        if any(x is not None for x in (projectors, time_reversal, particle_hole, chiral)):
            raise TypeError(
                "give either discrete_symmetry or projectors/time_reversal/particle_hole/chiral"
            )
        projectors, time_reversal, particle_hole, chiral = tuple(discrete_symmetry)
    padded = np.zeros((n, n), dtype=complex)
    padded[:, :m] = t
    hop = padded.conj().T  # <m|H|m+1>, cells numbered away from the cell of the self-energy
    h, hop = _lead_matrices(h - e * np.eye(n), hop)
    ops = {
        name: _dense_operator(value, name, n)
        for name, value in (
            ("time_reversal", time_reversal),
            ("particle_hole", particle_hole),
            ("chiral", chiral),
        )
    }
    for name, op in ops.items():
        if op is not None and (
            float(np.max(np.abs(op.conj().T @ op - np.eye(n)), initial=0.0)) > 1e-8
        ):
            raise ValueError(
                f"{name} must be unitary (the unitary part, for an antiunitary symmetry)"
            )
    plist = _projector_list(projectors, n)
    blocks = _projector_blocks(plist, h, hop)
    with _blas_threads_for(n):
        try:
            return _kwant_modes_at(h, hop, 0.0, blocks, ops, m)
        except _SelfEnergyPole as pole:
            shift = POLE_ENERGY_SHIFT * float(np.linalg.norm(hop, 2))
            for shifted in (shift, -shift):
                try:
                    return _kwant_modes_at(h, hop, shifted, blocks, ops, m)
                except _SelfEnergyPole:
                    continue
            raise RuntimeError(_near_edge_message(e)) from pole


def _kwant_modes_at(
    h: ComplexArray,
    hop: ComplexArray,
    energy: float,
    blocks: list[ComplexArray],
    ops: dict[str, ComplexArray | None],
    interface_size: int,
) -> tuple[PropagatingModes, StabilizedModes]:
    """:func:`modes` for validated input, block by block as Kwant relates the blocks."""
    h_blocks = [p.conj().T @ h @ p for p in blocks]
    v_blocks = [p.conj().T @ hop @ p for p in blocks]
    names = ("time_reversal", "particle_hole", "chiral")
    anti = {"time_reversal": True, "particle_hole": True, "chiral": False}

    def projection(name: str, j: int, i: int) -> ComplexArray | None:
        """``P_j^dagger S P_i`` (``P_i^*`` for antiunitary ``S``), or None where it vanishes."""
        op = ops[name]
        if op is None:
            return None
        p_i = blocks[i].conj() if anti[name] else blocks[i]
        part = blocks[j].conj().T @ op @ p_i
        return part if np.linalg.norm(part) > 0.5 else None

    computed: list[_BlockModes | None] = [None] * len(blocks)
    signs = [1.0] * len(blocks)
    for i in range(len(blocks)):
        if computed[i] is None:
            own = [projection(name, i, i) for name in names]
            for name, op in zip(names, own, strict=True):
                if op is not None:
                    block = (h_blocks[i], v_blocks[i])
                    _check_symmetry(op, block, block, name, f"in block {i}")
            computed[i] = _symmetrized_block(h_blocks[i], v_blocks[i], energy, *own)
        source = computed[i]
        assert source is not None
        for j in range(i + 1, len(blocks)):
            if computed[j] is not None or h_blocks[j].shape != h_blocks[i].shape:
                continue
            if np.allclose(h_blocks[i], h_blocks[j]) and np.allclose(v_blocks[i], v_blocks[j]):
                computed[j] = _transformed_block(
                    source, np.eye(h_blocks[j].shape[0], dtype=complex), "unitary"
                )
                signs[j] = signs[i]
                continue
            for name in names:
                op = projection(name, j, i)
                if op is not None:
                    _check_symmetry(
                        op,
                        (h_blocks[i], v_blocks[i]),
                        (h_blocks[j], v_blocks[j]),
                        name,
                        f"mapping block {i} onto block {j}",
                    )
                    computed[j] = _transformed_block(source, op, name)
                    signs[j] = signs[i] * (-1.0 if name != "time_reversal" else 1.0)
                    break
    per_block = [bm for bm in computed if bm is not None]
    return _combine_blocks(
        h.shape[0],
        blocks,
        per_block,
        block_signs=signs,
        interface_size=interface_size,
        block_nmodes_type=list,
    )


def selfenergy(
    h_cell: ArrayLike, h_hop: ArrayLike, tol: float = 1e6, *, energy: float = 0.0
) -> ComplexArray:
    """Exact retarded self-energy of a lead, Kwant's ``kwant.physics.selfenergy``.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian unit-cell Hamiltonian, the energy subtracted (or given as ``energy=``).
    h_hop : (n, m) array_like, m <= n
        Hopping from a lead cell to the cell the self-energy acts on (as in :func:`modes`).
    tol : float, optional
        Accepted for Kwant compatibility (see :func:`modes`).
    energy : float, optional, keyword-only
        Subtracted from ``h_cell``.

    Returns
    -------
    (m, m) complex ndarray
        ``Sigma = h_hop^dagger g h_hop`` with ``g`` the retarded surface Green's function of
        the semi-infinite lead at ``E + i0``. ``-2 Im`` of its eigenvalues is ``>= 0``.

    Examples
    --------
    1D chain with hopping ``-1``: inside the band ``Sigma = (E - i sqrt(4 - E^2)) / 2``.

    >>> import numpy as np
    >>> from mesoscopic.leads import selfenergy
    >>> sigma = selfenergy([[0.0]], [[-1.0]], energy=1.0)
    >>> bool(np.isclose(sigma[0, 0], (1 - 1j * np.sqrt(3)) / 2))
    True
    """
    return modes(h_cell, h_hop, tol, energy=energy)[1].selfenergy()


def square_selfenergy(width: int, hopping: float, fermi_energy: float) -> ComplexArray:
    """Closed-form self-energy of a square-lattice strip (Kwant's ``square_selfenergy``).

    The lead is a strip ``width`` sites wide, one orbital per site, nearest-neighbour hopping
    ``-hopping`` and onsite energy ``4 * hopping`` (band bottom at ``E = 0``). Transverse
    standing waves ``chi_p(i) = sqrt(2 / (W + 1)) sin(p pi i / (W + 1))`` with energies
    ``eps_p = 2 t (1 - cos(p pi / (W + 1)))`` decouple it into chains of onsite ``2 t``,
    each with the chain self-energy ``t f(q)``, ``q = (E - eps_p) / t - 2``,
    ``f(q) = q / 2 - i sqrt(1 - q^2 / 4)`` in the band and ``q / 2 - sign(q) sqrt(q^2/4 - 1)``
    outside it.

    Parameters
    ----------
    width : int
        Number of sites across the strip (>= 1).
    hopping : float
        ``t > 0`` (energy units).
    fermi_energy : float
        Energy ``E``.

    Returns
    -------
    (width, width) complex ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import selfenergy, square_selfenergy
    >>> h = 4 * np.eye(3) - np.eye(3, k=1) - np.eye(3, k=-1)
    >>> bool(np.allclose(square_selfenergy(3, 1.0, 1.3), selfenergy(h, -np.eye(3), energy=1.3)))
    True
    """
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    t = float(_checks.real_array(hopping, "hopping"))
    e = float(_checks.real_array(fermi_energy, "fermi_energy"))
    if not t > 0:
        raise ValueError(f"hopping must be positive, got {hopping!r}")
    sites = np.arange(1, width + 1)
    angles = np.pi * sites / (width + 1)
    profiles = math.sqrt(2 / (width + 1)) * np.sin(np.outer(sites, angles))  # [p, i]
    q = (e - 2 * t * (1 - np.cos(angles))) / t - 2
    inside = np.abs(q) <= 2
    f = np.where(
        inside,
        q / 2 - 1j * np.sqrt(np.clip(1 - (q / 2) ** 2, 0, None)),
        q / 2 - np.sign(q) * np.sqrt(np.clip((q / 2) ** 2 - 1, 0, None)),
    )
    return np.asarray(t * (profiles.T * f) @ profiles, dtype=complex)
