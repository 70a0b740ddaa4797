"""The leads of the recursive Green's function solver.

A lead whose hopping commutes with its cell Hamiltonian (and is normal and of full rank) is
a set of independent chains in one transverse basis (:class:`ClosedFormLead`): its
self-energy and open channels have a closed form, vectorized over energies on any device.
Other leads, self-energy leads and modes leads, and energies next to a chain's band edge
take the exact embedding of :mod:`mesoscopic.solvers._embedding` energy by energy.
:func:`_lead_terms` gives the sweep what it needs of one lead for a batch of energies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from ..leads import VELOCITY_TOLERANCE, LeadData, _independent_chains
from ..leads import _modes_at_energy as modes
from . import _backend
from ._embedding import AnyLeadData, LeadEmbedding

__all__ = ["ClosedFormLead", "check_energies", "closed_form_lead", "lead_selfenergies"]

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Relative tolerance of the commutation and normality tests of a closed-form lead.


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_energies(energies: Any) -> FloatArray:
    """A 1-D, real, finite, non-empty float array of energies, or a clear error."""
    if isinstance(energies, (str, bytes)):
        raise TypeError(f"energies must be a 1-D array of real numbers, got {energies!r}")
    arr = _checks.real_array(energies, "energies", finite=False)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"energies must be a 1-D array, got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("energies is empty; give at least one energy")
    bad = ~np.isfinite(arr)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ValueError(f"energies must be finite, got {float(arr[k])!r} at index {k}")
    return np.ascontiguousarray(arr, dtype=float)


# --------------------------------------------------------------------------------------------
# Leads: closed-form self-energies for commuting leads, eigenmodes otherwise
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClosedFormLead:
    """A lead whose cell Hamiltonian and hopping are diagonal in one unitary basis.

    Then ``h_cell = U diag(onsite) U^dagger`` and ``hop = U diag(hopping) U^dagger``: the lead
    is ``n`` independent chains with onsite energies ``onsite`` and hoppings of modulus
    ``abs(hopping)`` (their phases are a gauge choice of each chain).

    Attributes
    ----------
    basis : (n, n) complex ndarray
        ``U``, columns are the chains' transverse wave functions.
    onsite : (n,) float ndarray
        Chain onsite energies (energy units).
    hopping : (n,) float ndarray
        Chain hopping moduli, all ``> 0``.
    velocity_floor : float
        Velocities at or below this are not counted as open channels (as in
        :mod:`mesoscopic.leads`).

    Notes
    -----
    The closed form is exact, but next to a band edge ``z = +-2 tau`` it rounds differently
    from the mode solver: ``sqrt(z - 2 tau)`` turns the rounding of ``z`` (about
    ``1e-16 |z|``) into ``1e-8`` in the self-energy, and an energy on the edge to rounding
    is open or closed by the sign of that rounding. Energies within ``EDGE_WINDOW * tau``
    of a chain's band edge (:meth:`near_edge`) are therefore given the modes of
    :func:`mesoscopic.leads.modes` instead, with its threshold convention (a channel opens
    only strictly inside the band), so that every solver agrees there.
    """

    basis: ComplexArray
    onsite: FloatArray
    hopping: FloatArray
    velocity_floor: float

    #: Relative distance ``| |z| - 2 tau | / tau`` to a chain's band edge below which
    #: the exact mode solver replaces the closed form.
    EDGE_WINDOW = 1e-5

    def near_edge(self, energies: ArrayLike) -> NDArray[np.bool_]:
        """Whether each energy lies within ``EDGE_WINDOW * tau`` of a chain's band edge."""
        z = np.abs(np.asarray(energies, dtype=float)[:, None] - self.onsite[None, :])
        distance = np.abs(z - 2 * self.hopping[None, :])
        return np.asarray(np.any(distance <= self.EDGE_WINDOW * self.hopping[None, :], axis=1))

    def selfenergy_diagonal(self, xp: ModuleType, energies: Any) -> tuple[Any, Any]:
        """Chain self-energies and velocities for a batch of energies, on the device of ``xp``.

        Returns ``(sigma, velocity)``, both of shape (B, n): ``sigma`` is complex, the
        retarded self-energy ``2 tau^2 / (z + sqrt(z - 2 tau) sqrt(z + 2 tau))`` with
        ``z = E - onsite`` (the root taken on ``z + i0``, stable on both sides of the band),
        ``velocity`` is ``sqrt(4 tau^2 - z^2)`` in the band and 0 outside.
        """
        eps = xp.asarray(self.onsite)
        tau = xp.asarray(self.hopping)
        z = xp.asarray(energies)[:, None] - eps[None, :]
        zc = z.astype(complex)
        root = xp.sqrt(zc - 2 * tau[None, :]) * xp.sqrt(zc + 2 * tau[None, :])
        sigma = 2 * (tau**2)[None, :] / (zc + root)
        velocity = -2 * sigma.imag
        return sigma, velocity


def closed_form_lead(h_cell: ArrayLike, hop: ArrayLike) -> ClosedFormLead | None:
    """Decompose a lead into independent chains when its hopping commutes with ``h_cell``.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian ``<m|H|m>``.
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>``.

    Returns
    -------
    ClosedFormLead or None
        None unless ``hop`` is normal, commutes with ``h_cell`` and has full rank (a
        singular hopping means flat bands or dangling orbitals, left to the exact method).

    Examples
    --------
    >>> import numpy as np
    >>> h = 4 * np.eye(3) - (np.eye(3, k=1) + np.eye(3, k=-1))
    >>> lead = closed_form_lead(h, -np.eye(3))
    >>> np.round(lead.onsite, 6).tolist(), np.round(lead.hopping, 12).tolist()
    ([2.585786, 4.0, 5.414214], [1.0, 1.0, 1.0])
    """
    chains = _independent_chains(np.asarray(h_cell, dtype=complex), np.asarray(hop, dtype=complex))
    if chains is None:
        return None
    return ClosedFormLead(
        basis=chains.basis,
        onsite=chains.onsite,
        hopping=chains.hopping,
        velocity_floor=VELOCITY_TOLERANCE * float(chains.hopping.max()),
    )


def lead_selfenergies(
    h_cell: ArrayLike, hop: ArrayLike, energies: ArrayLike, *, method: str = "auto"
) -> ComplexArray:
    """Retarded self-energy of a semi-infinite lead for a batch of energies.

    Parameters
    ----------
    h_cell : (n, n) array_like
        Hermitian cell Hamiltonian (energy units).
    hop : (n, n) array_like
        Hopping ``<m|H|m+1>`` away from the system.
    energies : (n_E,) array_like
        Real, finite energies.
    method : {"auto", "closed_form", "eigenmodes"}, keyword-only
        ``"closed_form"``: independent chains (needs ``hop`` normal, commuting with
        ``h_cell``, full rank; see :func:`closed_form_lead`); ``"eigenmodes"``: the exact mode
        method of :func:`mesoscopic.leads.selfenergy` per energy; ``"auto"``: the first when
        it applies.

    Returns
    -------
    (n_E, n, n) complex ndarray
        ``Sigma(E)`` on the cell next to the lead (no broadening).

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.leads import selfenergy
    >>> h = 4 * np.eye(4) - (np.eye(4, k=1) + np.eye(4, k=-1))
    >>> fast = lead_selfenergies(h, -np.eye(4), [0.5, 2.0, 9.0], method="closed_form")
    >>> exact = np.array([selfenergy(h, -np.eye(4), energy=e) for e in (0.5, 2.0, 9.0)])
    >>> bool(np.allclose(fast, exact, atol=1e-12))
    True
    """
    e = check_energies(energies)
    if method not in ("auto", "closed_form", "eigenmodes"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'eigenmodes', got {method!r}")
    decomposition = None if method == "eigenmodes" else closed_form_lead(h_cell, hop)
    if decomposition is None:
        if method == "closed_form":
            raise ValueError(
                "the closed form needs a full-rank normal hopping that commutes with h_cell; "
                "use method='eigenmodes'"
            )
        return np.array([modes(h_cell, hop, energy)[1].selfenergy for energy in e])
    sigma, _ = decomposition.selfenergy_diagonal(np, e)
    u = decomposition.basis
    result = np.einsum("ik,bk,jk->bij", u, sigma, u.conj())
    for index in np.flatnonzero(decomposition.near_edge(e)):
        result[index] = modes(h_cell, hop, float(e[index]))[1].selfenergy
    return np.asarray(result)


@dataclass(eq=False)
class _LeadTerms:
    """What the sweep needs of one lead for a batch of energies (arrays on the device)."""

    selfenergy: Any  # (B, n_i, n_i)
    rows: Any  # (B, n_i, a): the row projection is rows^dagger
    columns: Any  # (B, n_i, w)
    num_modes: IntArray  # (B,) on the host
    embeddings: list[LeadEmbedding] | None = None  # per energy (S-matrix mode)
    # Per energy (S-matrix mode), for a lead with stabilized modes: the incident wave's part
    # of the outgoing amplitudes, (num_modes, num_modes); ``rows`` then read the outgoing
    # amplitudes directly (see _outgoing_rows).
    incident: list[ComplexArray | None] | None = None


def _outgoing_rows(embedding: LeadEmbedding) -> tuple[ComplexArray, ComplexArray | None]:
    """Rows that read a lead's outgoing amplitudes off the interface, and the incident part.

    The amplitudes are ``i R^dagger psi`` minus ``Q`` on the lead's own incoming columns
    (:class:`~mesoscopic.solvers._embedding.LeadEmbedding`: ``R`` the row projection, one
    column per channel, ``Q`` its ``incident``): the rows ``-i R`` read them directly. A
    self-energy lead keeps its row projection (``Q`` the identity, applied at the end).
    """
    if embedding.stabilized is None:
        return embedding.row_projection, None
    return np.ascontiguousarray(-1j * embedding.row_projection), embedding.incident


def _padded(arrays: Sequence[ComplexArray], rows: int) -> ComplexArray:
    """(B, rows, max width) stack of (rows, w_k) arrays, zero-padded on the right."""
    width = max((a.shape[1] for a in arrays), default=0)
    out = np.zeros((len(arrays), rows, width), dtype=complex)
    for k, a in enumerate(arrays):
        out[k, :, : a.shape[1]] = a
    return out


def _lead_terms(
    xp: ModuleType,
    lead: AnyLeadData,
    closed: ClosedFormLead | None,
    energies: FloatArray,
    energies_dev: Any,
    computed: list[LeadEmbedding] | None,
    *,
    exact: bool,
) -> _LeadTerms:
    """The lead's terms; ``computed`` holds its embedding per energy unless in closed form.

    A lead in closed form has ``computed`` only for the energies next to a band edge of one
    of its chains (``closed.near_edge``), in order; those energies take the exact modes.
    """
    if closed is not None and not exact:
        assert isinstance(lead, LeadData)
        cell = lead.interface_cell
        sigma_diag, velocity = closed.selfenergy_diagonal(xp, energies_dev)
        basis = xp.asarray(closed.basis[cell])
        sigma = xp.matmul(basis[None] * sigma_diag[:, None, :], basis.conj().T[None])
        is_open = velocity > closed.velocity_floor
        open_any = _backend.to_host(xp, xp.any(is_open, axis=0))
        columns_used = xp.asarray(np.flatnonzero(open_any))
        weight = xp.sqrt(xp.where(is_open, velocity, 0.0))[:, columns_used]
        columns = basis[:, columns_used][None] * weight[:, None, :]
        num = _backend.to_host(xp, xp.sum(is_open, axis=1)).astype(np.int64)
        near = np.flatnonzero(closed.near_edge(energies))
        if near.size:
            assert computed is not None and len(computed) == near.size
            width = max(int(columns.shape[2]), *(emb.num_modes for emb in computed))
            padded = xp.zeros((len(energies), len(cell), width), dtype=complex)
            padded[:, :, : columns.shape[2]] = columns
            exact_columns = np.zeros((near.size, len(cell), width), dtype=complex)
            for k, emb in enumerate(computed):
                exact_columns[k, :, : emb.num_modes] = emb.sources
            where = xp.asarray(near)
            padded[where] = _backend.to_device(xp, exact_columns)
            sigma[where] = _backend.to_device(xp, np.array([emb.selfenergy for emb in computed]))
            num[near] = [emb.num_modes for emb in computed]
            columns = padded
        return _LeadTerms(selfenergy=sigma, rows=columns, columns=columns, num_modes=num)
    assert computed is not None
    size = lead.interface_sys.size
    columns = _backend.to_device(xp, _padded([emb.sources for emb in computed], size))
    incident: list[ComplexArray | None] | None = None
    if exact:
        outgoing = [_outgoing_rows(emb) for emb in computed]
        rows = _backend.to_device(xp, _padded([r for r, _ in outgoing], size))
        incident = [part for _, part in outgoing]
    else:
        rows = columns
    return _LeadTerms(
        selfenergy=_backend.to_device(xp, np.array([emb.selfenergy for emb in computed])),
        rows=rows,
        columns=columns,
        num_modes=np.array([emb.num_modes for emb in computed], dtype=np.int64),
        embeddings=list(computed) if exact else None,
        incident=incident,
    )
