"""Sparse direct solver: scattering matrix and scattering states by wave-function matching.

The scattering region has a Hermitian Hamiltonian ``h_sys`` (``N x N``, sparse or dense) and
leads attached as described by :class:`mesoscopic.leads.LeadData`: the interface orbitals of
the system stand for the cell ``m = -1`` of each lead. In lead ``l`` the scattering state of
an incoming mode ``phi_j`` is ``phi_j lambda_j^m`` plus a combination of outgoing and decaying
solutions. Eliminating those exactly with the lead's self-energy ``Sigma_l`` gives one sparse
linear system for the wave function ``psi`` in the scattering region,

``(E - h_sys - sum_l P_l Sigma_l P_l^T) psi = P_l s_j``,

where ``P_l`` places cell orbitals on the interface orbitals and
``s_j = hop phi_j - Sigma_l phi_j / lambda_j`` (``StabilizedModes.sources``). The matrix is
factorized once (SuperLU) and solved for all incoming modes together. The outgoing waves are
read back from the interface in the Fisher-Lee form ``S_ij = Q_i (i s_i^dagger psi_j -
delta_ij)``, with ``Q_i`` the unitary that takes a lead's incoming modes' sources to its
outgoing modes (:func:`mesoscopic.solvers._embedding._mode_readout`): the amplitudes of the
outgoing propagating modes, as expanding the interface wave in the lead's outgoing and
decaying solutions gives them, but unitary to rounding even for a mode a hair inside its
band, whose unit-current normalization is accurate only to ``eps / v``. Everything is exact:
no broadening, no inversion of ``hop``, and leads with singular hoppings are handled by the
reduced mode problem of :mod:`mesoscopic.leads`.

Mode amplitudes refer to the lead cell ``m = 0`` (see :mod:`mesoscopic.leads`); with a real
(time-reversal symmetric) Hamiltonian ``S`` is symmetric up to this mode phase convention:
``S @ u`` is symmetric where ``conj(phi_out_i) = sum_k phi_in_k u[k, i]`` relates the outgoing
modes to the incoming ones of every lead.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import reverse_cuthill_mckee

from .. import _checks
from ..leads import LeadData
from ..scattering import GreensFunction, SMatrix
from ._embedding import AnyLeadData, LeadEmbedding, ModesLeadData, SelfEnergyLeadData, embed_leads

__all__ = [
    "Solver",
    "greens_function",
    "greens_function_matrix",
    "ldos",
    "scattering_matrix",
    "scattering_states",
    "smatrix",
    "wave_function",
]

ComplexArray = NDArray[np.complex128]


def _system_hamiltonian(h_sys: Any, *, hermitian: bool = False) -> sp.csr_matrix:
    """``h_sys`` as a complex CSR matrix, checked to be square, finite and Hermitian
    (``hermitian``: known to be, as a finalized system builds and checks it)."""
    if sp.issparse(h_sys):
        matrix = sp.csr_matrix(h_sys, dtype=complex)
    else:
        try:
            dense = np.asarray(h_sys, dtype=complex)
        except (TypeError, ValueError) as exc:
            shown = _checks._show(h_sys)
            raise TypeError(
                f"h_sys must be a square matrix (dense or scipy.sparse), got {shown}"
            ) from exc
        if dense.ndim != 2:
            raise ValueError(f"h_sys must be a 2-D matrix, got an array of shape {dense.shape}")
        matrix = sp.csr_matrix(dense)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"h_sys must be square (N, N), got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("h_sys must have at least one orbital, got shape (0, 0)")
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError("h_sys must be finite, got NaN or inf entries")
    if hermitian:
        return matrix
    scale = max(float(np.max(np.abs(matrix.data), initial=0.0)), 1.0)
    deviation = matrix - matrix.conj().T
    worst = float(np.max(np.abs(deviation.data), initial=0.0))
    if worst > 1e-10 * scale:
        raise ValueError(f"h_sys must be Hermitian; max |h_sys - h_sys^dagger| = {worst:.3g}")
    return matrix


_LEAD_KINDS = (LeadData, SelfEnergyLeadData, ModesLeadData)


def _checked_leads(leads: Any, size: int) -> list[AnyLeadData]:
    if isinstance(leads, _LEAD_KINDS) or not isinstance(leads, Sequence):
        raise TypeError(
            "leads must be a sequence of LeadData, SelfEnergyLeadData or ModesLeadData, got "
            f"{_checks._show(leads)}"
        )
    if len(leads) == 0:
        raise ValueError("leads must contain at least one lead; a closed system has no S-matrix")
    for i, lead in enumerate(leads):
        if not isinstance(lead, _LEAD_KINDS):
            raise TypeError(
                f"leads[{i}] must be a LeadData, SelfEnergyLeadData or ModesLeadData, got "
                f"{type(lead).__name__}"
            )
        if lead.interface_sys.size and int(lead.interface_sys.max()) >= size:
            bad = int(lead.interface_sys.max())
            raise ValueError(
                f"leads[{i}].interface_sys contains orbital {bad}, but h_sys has only {size} "
                f"orbitals (valid: 0..{size - 1})"
            )
    return list(leads)


def _lead_selection(value: Any, count: int, name: str) -> tuple[int, ...]:
    if value is None:
        return tuple(range(count))
    if isinstance(value, numbers.Integral) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of lead indices, got {_checks._show(value)}")
    chosen = []
    for lead in value:
        if isinstance(lead, bool) or not isinstance(lead, numbers.Integral):
            raise TypeError(f"{name} must contain lead indices (int), got {lead!r}")
        if not 0 <= int(lead) < count:
            raise ValueError(f"lead {lead} does not exist; this system has leads 0..{count - 1}")
        chosen.append(int(lead))
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{name} contains repeated leads: {chosen}")
    return tuple(chosen)


_COMPLEX_BYTES = np.dtype(complex).itemsize
_MEMORY_ALTERNATIVE = (
    "use the RGF solver (solver='rgf' in mesoscopic.batch), which holds one slice of the "
    "system at a time, split the system into fewer orbitals, or use a machine with more memory"
)


def _lu_fill_estimate(matrix: sp.spmatrix) -> int:
    """Conservative number of nonzeros of the sparse LU factors of ``matrix``.

    The factors of a matrix of bandwidth ``b`` (after a reverse Cuthill-McKee ordering)
    have at most ``N (2 b + 1)`` entries; SuperLU's own column ordering (COLAMD) does at
    least as well on the lattice graphs of scattering problems.
    """
    size = int(matrix.shape[0])
    pattern = sp.csr_matrix(matrix, copy=True)
    pattern = (abs(pattern) + abs(pattern.T)).tocsr()
    order = reverse_cuthill_mckee(pattern, symmetric_mode=True)
    permuted = pattern[order][:, order].tocoo()
    bandwidth = int(np.max(np.abs(permuted.row - permuted.col), initial=0))
    return min(size * size, size * (2 * bandwidth + 1))


def _check_memory(matrix: sp.spmatrix, num_columns: int) -> None:
    """Refuse a scattering problem whose states or LU factors cannot fit in memory."""
    size = int(matrix.shape[0])
    # Right-hand sides and solutions: the dense scattering states.
    _checks.memory(
        2 * _COMPLEX_BYTES * size * num_columns,
        f"the scattering states ({num_columns} incoming modes x {size} orbitals, complex, "
        "with their right-hand sides)",
        alternative=_MEMORY_ALTERNATIVE,
    )
    if num_columns == 0:
        return
    try:  # factors no larger than a dense matrix: no ordering needed to see that they fit
        _checks.memory(_COMPLEX_BYTES * size * size, "")
    except MemoryError:
        fill = _lu_fill_estimate(matrix)
        _checks.memory(
            _COMPLEX_BYTES * fill,
            f"the sparse LU factorization of the {size} x {size} scattering problem "
            f"(estimated {fill} nonzeros)",
            alternative=_MEMORY_ALTERNATIVE,
        )


def embedded_matrix(
    hamiltonian: sp.spmatrix,
    leads: Sequence[AnyLeadData],
    embeddings: Sequence[LeadEmbedding],
    energy: float,
) -> sp.csc_matrix:
    """``E - H - sum_l P_l Sigma_l P_l^T``, the sparse matrix of the scattering problem."""
    size = hamiltonian.shape[0]
    rows, cols, values = [], [], []
    for lead, embedding in zip(leads, embeddings, strict=True):
        iface = lead.interface_sys
        rows.append(np.repeat(iface, iface.size))
        cols.append(np.tile(iface, iface.size))
        values.append(embedding.selfenergy.ravel())
    embedded = sp.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(size, size),
    )
    identity = sp.identity(size, dtype=complex, format="csc")
    return (energy * identity - hamiltonian - embedded).tocsc()


def _solve(
    h_sys: Any, leads: Any, energy: Any, in_leads: Sequence[int] | None
) -> tuple[float, list[AnyLeadData], list[LeadEmbedding], tuple[int, ...], ComplexArray]:
    """Wave functions in the scattering region for every incoming mode of ``in_leads``."""
    e = _checks.real_energy(energy)
    hamiltonian = _system_hamiltonian(h_sys)
    size = hamiltonian.shape[0]
    lead_list = _checked_leads(leads, size)
    chosen = _lead_selection(in_leads, len(lead_list), "in_leads")
    embeddings = embed_leads(lead_list, e)
    matrix = embedded_matrix(hamiltonian, lead_list, embeddings, e)

    num_columns = sum(embeddings[i].num_modes for i in chosen)
    _check_memory(matrix, num_columns)
    rhs = np.zeros((size, num_columns), dtype=complex)
    column = 0
    for i in chosen:
        count = embeddings[i].num_modes
        rhs[lead_list[i].interface_sys, column : column + count] = embeddings[i].sources
        column += count
    if num_columns == 0:
        return e, lead_list, embeddings, chosen, rhs
    return e, lead_list, embeddings, chosen, _factorized_solve(matrix, rhs, e)


def _reached_orbitals(matrix: sp.csc_matrix, rhs: ComplexArray) -> NDArray[np.int64] | None:
    """The orbitals coupled (through ``matrix``) to a row where ``rhs`` is nonzero, or None
    when that is all of them.

    The rest of the system is decoupled from every source: the solution vanishes there,
    and leaving it out keeps a bound state of a disconnected part (a singular block at its
    energy) from spoiling the solve.
    """
    csc = sp.csc_matrix(matrix)
    # Connectivity only; the CSC arrays read as CSR are the transpose: the same components.
    pattern = sp.csr_matrix((np.ones(csc.nnz), csc.indices, csc.indptr), shape=csc.shape)
    count, labels = csgraph.connected_components(pattern, directed=False)
    if count == 1:
        return None
    sourced = np.unique(labels[np.flatnonzero(np.any(rhs != 0, axis=1))])
    keep = np.flatnonzero(np.isin(labels, sourced))
    return None if keep.size == matrix.shape[0] else keep.astype(np.int64)


def _factorized_solve(matrix: sp.csc_matrix, rhs: ComplexArray, energy: float) -> ComplexArray:
    """``matrix^-1 rhs`` by one sparse LU factorization, refusing a singular problem.

    Parts of the system that no source reaches are left out (the solution is zero there).
    Bound states that no source sees (in the continuum, see :func:`_bound_states`) are left
    out of the solution; one that the right-hand side sees at an exactly singular matrix
    is an error.
    """
    keep = _reached_orbitals(matrix, rhs)
    if keep is not None:
        solution = np.zeros(rhs.shape, dtype=complex)
        if keep.size:
            solution[keep] = _factorized_solve(matrix[keep][:, keep].tocsc(), rhs[keep], energy)
        return solution
    singular = ValueError(
        f"the scattering problem is singular at energy {energy!r}: the system has a bound "
        "state at this energy that the requested solution would see (for example a part "
        "of the system not connected to a lead); shift the energy slightly"
    )
    plain: ComplexArray | None
    try:
        factorization = spla.splu(matrix)
    except RuntimeError:  # an exactly zero pivot
        plain = None
    else:
        plain = np.asarray(factorization.solve(rhs))
        if not np.all(np.isfinite(plain)):
            plain = None
    scale = float(abs(matrix).sum(axis=0).max()) if matrix.shape[0] else 0.0  # the 1-norm
    if plain is None:
        shifted = _shifted_factorization(matrix, scale, singular)
        bound = _bound_states(matrix, scale, shifted, exact=True)
        if bound is None or not _decoupled(bound, rhs):
            raise singular
    else:
        bound = _bound_states(matrix, scale, factorization)
        # Singular to rounding but seen by the right-hand side: a resonance far narrower
        # than rounding, which the plain solution resolves as well as it can.
        if bound is None or not _decoupled(bound, rhs):
            return plain
    # Bound states in the continuum: the solution without them, exactly, from the matrix
    # bordered by their basis N (A psi + N mu = rhs, N^dagger psi = 0 gives mu = 0).
    count = bound.shape[1]
    bordered = sp.bmat(
        [[matrix, sp.csc_matrix(bound)], [sp.csc_matrix(bound.conj().T), None]], format="csc"
    )
    extended = np.vstack([rhs, np.zeros((count, rhs.shape[1]), dtype=complex)])
    try:
        bordered_solution = spla.splu(bordered).solve(extended)[: rhs.shape[0]]
    except RuntimeError:
        raise singular from None
    return np.asarray(bordered_solution)


def _decoupled(bound: ComplexArray, rhs: ComplexArray) -> bool:
    """Whether the null vectors `bound` have no overlap with `rhs` beyond rounding."""
    size = float(np.linalg.norm(rhs))
    return float(np.linalg.norm(bound.conj().T @ rhs)) <= _DECOUPLED * max(size, 1e-300)


def _shifted_factorization(matrix: sp.csc_matrix, scale: float, error: Exception) -> Any:
    """LU factors of ``matrix + delta`` (``delta`` a billionth of its 1-norm ``scale``): for
    finding the null space of an exactly singular matrix by inverse iteration."""
    shift = _NULL_SHIFT * scale * sp.identity(matrix.shape[0], dtype=complex, format="csc")
    try:
        return spla.splu((matrix + shift).tocsc())
    except RuntimeError:
        raise error from None


#: A probe solution larger than this times the probe over the matrix's norm marks a
#: matrix singular to rounding (a condition number beyond any physical resonance's).
_SINGULAR_GROWTH = 1e12
#: Residual (relative to the matrix's norm) below which a probe direction is a null vector.
_NULL_RESIDUAL = 1e-11
#: Overlap (relative) of a null vector with the right-hand side that still counts as none.
_DECOUPLED = 1e-10
#: Shift (relative to the matrix's norm) of the factors that find an exact null space.
_NULL_SHIFT = 1e-9
#: Most bound states at one energy that are found and left out.
_MOST_BOUND_STATES = 64


def _bound_states(
    matrix: sp.csc_matrix, scale: float, factorization: Any, *, exact: bool = False
) -> ComplexArray | None:
    """Orthonormal basis of the null space of a scattering matrix ``E - H - Sigma`` that is
    singular to rounding, or None where it is not.

    At an energy where the closed system has a bound state that no lead channel sees (a
    bound state in the continuum: a symmetric flake, a disc whose lead cells meet it on a
    node), ``E - H - Sigma`` is exactly singular. A null vector ``v`` has ``v^dagger Gamma
    v = 0`` (``Im Sigma <= 0``), so ``Gamma v = 0``: it is a null vector of the adjoint
    too, orthogonal to every source ``W`` (``W W^dagger = Gamma``) and to every read-out
    row, so the scattering states are exact without it. The LU factors of a singular
    matrix leave the solution a huge multiple of ``v`` whose rounding spoils the rest;
    here probes solved with the same factors (inverse iteration, which the tiny pivot makes
    converge in one step) find ``v``. With ``exact`` (`factorization` of the matrix shifted
    by ``_NULL_SHIFT``, the matrix having an exactly zero pivot) the probes are not first
    tested for growth. ``scale`` is the matrix's 1-norm.
    """
    size = matrix.shape[0]
    if size == 0 or scale == 0:
        return None
    rng = np.random.default_rng(0)
    count = 4
    while True:
        count = min(count, size)
        probes = rng.normal(size=(size, count)) + 1j * rng.normal(size=(size, count))
        solved = factorization.solve(probes)
        growth = np.linalg.norm(solved, axis=0) / np.linalg.norm(probes, axis=0)
        if not np.all(np.isfinite(solved)):
            return None
        if not exact and np.max(growth) * scale < _SINGULAR_GROWTH:
            return None
        basis = np.linalg.qr(solved)[0]
        basis = np.linalg.qr(factorization.solve(basis))[0]  # one more step
        _, values, right = np.linalg.svd(matrix @ basis, full_matrices=False)
        null = values <= _NULL_RESIDUAL * scale
        if not np.any(null):
            return None
        if np.count_nonzero(null) < count or count == size:
            return np.asarray(basis @ right[null].conj().T)
        if count >= _MOST_BOUND_STATES:
            return None  # a flat band's worth of them: not left out one by one
        count *= 2  # every probe fell into it: the null space may be larger


def scattering_matrix(
    h_sys: ArrayLike | sp.spmatrix,
    leads: Sequence[AnyLeadData],
    energy: float,
    *,
    in_leads: Sequence[int] | None = None,
    out_leads: Sequence[int] | None = None,
) -> SMatrix:
    """Scattering matrix of a system with leads at one energy.

    Parameters
    ----------
    h_sys : (N, N) array_like or scipy.sparse matrix
        Hermitian Hamiltonian of the scattering region (energy units).
    leads : sequence of LeadData, SelfEnergyLeadData or ModesLeadData
        The leads, numbered in this order (see :mod:`mesoscopic.solvers._embedding`).
    energy : float
        Real, finite energy.
    in_leads, out_leads : sequence of int, optional, keyword-only
        Leads whose incoming modes (columns) and outgoing modes (rows) to compute; all by
        default. The system is factorized once for all incoming modes.

    Returns
    -------
    SMatrix
        Rows: outgoing modes of ``out_leads``; columns: incoming modes of ``in_leads``; unit
        current normalization, amplitudes referred to the lead cell ``m = 0``.

    Raises
    ------
    ValueError
        NaN/inf energy, non-Hermitian or non-square ``h_sys``, interface orbitals out of
        range, nonexistent leads, or a system with a bound state at ``energy`` that does not
        couple to the leads.
    TypeError
        ``leads`` that are not :class:`~mesoscopic.leads.LeadData`.

    Examples
    --------
    A 1D chain (hopping -1) with an impurity of energy 1 on one site transmits
    ``1 / (1 + (eps / (2 sin k))^2)`` at ``E = -2 cos k``:

    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> right = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> s = scattering_matrix([[1.0]], [left, right], energy=0.0)
    >>> round(s.transmission(1, 0), 12)   # k = pi/2: 1 / (1 + 1/4)
    0.8
    """
    e, lead_list, embeddings, chosen_in, psi = _solve(h_sys, leads, energy, in_leads)
    chosen_out = _lead_selection(out_leads, len(lead_list), "out_leads")

    # Columns of psi belonging to each incoming lead, to remove the incident wave's own part.
    in_columns: dict[int, slice] = {}
    start = 0
    for i in chosen_in:
        in_columns[i] = slice(start, start + embeddings[i].num_modes)
        start += embeddings[i].num_modes

    blocks = []
    for i in chosen_out:
        embedding = embeddings[i]
        projected = embedding.row_projection.conj().T @ psi[lead_list[i].interface_sys]
        blocks.append(embedding.outgoing_amplitudes(projected, in_columns.get(i)))
    data = np.vstack(blocks) if blocks else np.zeros((0, psi.shape[1]), dtype=complex)
    return SMatrix(
        data=data,
        energy=e,
        lead_info=tuple(embedding.propagating for embedding in embeddings),
        in_leads=chosen_in,
        out_leads=chosen_out,
    )


def scattering_states(
    h_sys: ArrayLike | sp.spmatrix, leads: Sequence[AnyLeadData], energy: float
) -> list[ComplexArray]:
    """Scattering wave functions in the scattering region, one per incoming mode.

    Parameters
    ----------
    h_sys : (N, N) array_like or scipy.sparse matrix
        Hermitian Hamiltonian of the scattering region (energy units).
    leads : sequence of LeadData
        The leads.
    energy : float
        Real, finite energy.

    Returns
    -------
    list of (n_in_l, N) complex ndarray
        For each lead ``l``, row ``j`` is the scattering state of incoming mode ``j`` (unit
        incoming current, mode order of :class:`~mesoscopic.leads.PropagatingModes`) on the
        system orbitals. Its particle current ``-2 Im(psi_a^* H_ab psi_b)`` through any cut
        that separates the leads equals the transmitted probability.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_states
    >>> chain = [-(np.eye(3, k=1) + np.eye(3, k=-1))]
    >>> left = LeadData([[0.0]], [[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> right = LeadData([[0.0]], [[-1.0]], interface_sys=[2], interface_cell=[0])
    >>> psi = scattering_states(chain[0], [left, right], energy=0.0)[0]
    >>> psi.shape
    (1, 3)
    >>> bool(np.allclose(np.abs(psi) ** 2, 0.5))   # |phi|^2 = 1/|v| with v = 2
    True
    """
    *_, embeddings, _, psi = _solve(h_sys, leads, energy, None)
    states, start = [], 0
    for embedding in embeddings:
        states.append(np.array(psi[:, start : start + embedding.num_modes].T))
        start += embedding.num_modes
    return states


def greens_function_matrix(
    h_sys: ArrayLike | sp.spmatrix,
    leads: Sequence[AnyLeadData],
    energy: float,
    *,
    in_leads: Sequence[int] | None = None,
    out_leads: Sequence[int] | None = None,
) -> GreensFunction:
    """Retarded Green's function between the lead interfaces of a system, at one energy.

    ``G = (E - h_sys - sum_l P_l Sigma_l P_l^T)^-1`` between the interface orbitals of
    ``out_leads`` (rows) and ``in_leads`` (columns), with one sparse LU factorization.

    Parameters
    ----------
    h_sys : (N, N) array_like or scipy.sparse matrix
        Hermitian Hamiltonian of the scattering region (energy units).
    leads : sequence of LeadData, SelfEnergyLeadData or ModesLeadData
        The leads, numbered in this order.
    energy : float
        Real, finite energy.
    in_leads, out_leads : sequence of int, optional, keyword-only
        Leads whose interfaces are the columns and rows of ``G``; all by default.

    Returns
    -------
    GreensFunction
        ``G`` in inverse energy units and every lead's self-energy (``lead_info``);
        ``transmission(i, j)`` by the Caroli formula.

    Examples
    --------
    A site of energy ``eps = 1`` between two chain leads (hopping -1) transmits
    ``1 / (1 + (eps / (2 sin k))^2)``, here 0.8 at ``E = 0`` (``k = pi / 2``), as the
    S-matrix gives:

    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers.sparse import greens_function_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> gf = greens_function_matrix([[1.0]], [LeadData(**chain), LeadData(**chain)], 0.0)
    >>> round(gf.transmission(1, 0), 12), round(gf.transmission(0, 0), 12)
    (0.8, 0.2)
    """
    e = _checks.real_energy(energy)
    hamiltonian = _system_hamiltonian(h_sys)
    size = hamiltonian.shape[0]
    lead_list = _checked_leads(leads, size)
    chosen_in = _lead_selection(in_leads, len(lead_list), "in_leads")
    chosen_out = _lead_selection(out_leads, len(lead_list), "out_leads")
    embeddings = embed_leads(lead_list, e)
    matrix = embedded_matrix(hamiltonian, lead_list, embeddings, e)

    def orbitals(chosen: tuple[int, ...]) -> NDArray[np.int64]:
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([lead_list[i].interface_sys for i in chosen]).astype(np.int64)

    in_orbitals, out_orbitals = orbitals(chosen_in), orbitals(chosen_out)
    _check_memory(matrix, in_orbitals.size)
    rhs = np.zeros((size, in_orbitals.size), dtype=complex)
    rhs[in_orbitals, np.arange(in_orbitals.size)] = 1.0
    if in_orbitals.size and out_orbitals.size:
        data = _factorized_solve(matrix, rhs, e)[out_orbitals]
    else:
        data = np.zeros((out_orbitals.size, in_orbitals.size), dtype=complex)
    return GreensFunction(
        data=data,
        energy=e,
        lead_info=tuple(embedding.selfenergy for embedding in embeddings),
        in_leads=chosen_in,
        out_leads=chosen_out,
    )


# --------------------------------------------------------------------------------------------
# Kwant's solver object: the same computations on finalized systems
# --------------------------------------------------------------------------------------------


class Solver:
    """The sparse direct solver as an object, as Kwant's ``kwant.solvers.sparse.Solver``.

    Its methods take a finalized :class:`~mesoscopic.system.System` and are those of
    :mod:`mesoscopic.transport` (``smatrix``, ``greens_function``, ``wave_function``,
    ``ldos``), with Kwant's signatures. The module-level functions of
    :mod:`mesoscopic.solvers.sparse` with those names are the methods of one default
    instance. The solver keeps no state between calls: every call factorizes its own
    matrix with SciPy's SuperLU.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> solver = meso.solvers.sparse.Solver()
    >>> round(solver.smatrix(syst.finalized(), 0.5).transmission(1, 0), 12)
    1.0
    """

    def smatrix(
        self,
        sys: Any,
        energy: float = 0,
        args: Sequence[Any] = (),
        out_leads: Sequence[int] | None = None,
        in_leads: Sequence[int] | None = None,
        check_hermiticity: bool = True,
        *,
        params: Any = None,
    ) -> SMatrix:
        """Scattering matrix of a finalized system (:func:`mesoscopic.transport.smatrix`)."""
        from .. import transport

        return transport.smatrix(
            sys, energy, args, out_leads, in_leads, check_hermiticity, params=params
        )

    def greens_function(
        self,
        sys: Any,
        energy: float = 0,
        args: Sequence[Any] = (),
        out_leads: Sequence[int] | None = None,
        in_leads: Sequence[int] | None = None,
        check_hermiticity: bool = True,
        *,
        params: Any = None,
    ) -> GreensFunction:
        """Retarded Green's function between the lead interfaces
        (:func:`mesoscopic.transport.greens_function`)."""
        from .. import transport

        return transport.greens_function(
            sys, energy, args, out_leads, in_leads, check_hermiticity, params=params
        )

    def wave_function(
        self,
        sys: Any,
        energy: float = 0,
        args: Sequence[Any] = (),
        check_hermiticity: bool = True,
        *,
        params: Any = None,
    ) -> Any:
        """Scattering states in the scattering region
        (:func:`mesoscopic.transport.wave_function`)."""
        from .. import transport

        return transport.wave_function(sys, energy, args, check_hermiticity, params=params)

    def ldos(
        self,
        sys: Any,
        energy: float = 0,
        args: Sequence[Any] = (),
        check_hermiticity: bool = True,
        *,
        params: Any = None,
    ) -> NDArray[np.float64]:
        """Local density of states per orbital (:func:`mesoscopic.transport.ldos`)."""
        from .. import transport

        return transport.ldos(sys, energy, args, check_hermiticity, params=params)


#: The instance behind the module-level functions.
default_solver = Solver()

smatrix = default_solver.smatrix
greens_function = default_solver.greens_function
wave_function = default_solver.wave_function
ldos = default_solver.ldos
