"""Leads of every kind embedded in a scattering region, one road for all solvers.

A solver needs three things of a lead at an energy, all on the lead's interface orbitals
of the scattering region:

* its retarded self-energy ``Sigma`` (added to ``E - H``);
* the sources ``W`` of its incoming channels, with ``Gamma = i (Sigma - Sigma^dagger) =
  W W^dagger``: the columns of the right-hand side of the scattering problem, and the
  broadening in the Caroli formula ``T_ij = Tr[Gamma_i G Gamma_j G^dagger]``;
* the read-out of the outgoing channel amplitudes from ``G W_j``, for the S-matrix: rows
  ``R`` and a unitary ``Q`` with ``S_ij = i R_i^dagger G W_j - Q delta_ij`` (the Fisher-Lee
  form).

Three kinds of lead provide them (:data:`AnyLeadData`):

:class:`~mesoscopic.leads.LeadData`
    A periodic, semi-infinite lead (a builder lead): the exact eigenmodes of
    :func:`mesoscopic.leads.modes`; channels are its propagating modes, normalized to unit
    current, read out in the Fisher-Lee form with ``R = W Q^dagger`` (see
    :func:`_mode_readout`).
:class:`SelfEnergyLeadData`
    A lead known only by its self-energy ``Sigma(E)`` (a wide-band electrode
    ``-i Gamma / 2``, a dephasing probe, a lead computed elsewhere). Its channels are the
    eigenvectors ``u_c`` of ``Gamma`` with nonzero eigenvalues ``gamma_c``, with sources
    ``W = U sqrt(gamma)``, and the Fisher-Lee read-out ``S_ij = -delta_ij + i W_i^dagger G
    W_j``. With ``G - G^dagger = -i G Gamma G^dagger`` (``Gamma`` of all leads together) this
    S-matrix is unitary, and its transmissions are the Caroli ones. For a self-energy taken
    from a periodic lead the channels differ from the lead's modes by a unitary change of
    basis within the lead, so every transmission and every singular value of every block is
    the same.
:class:`ModesLeadData`
    A lead given by a function returning its modes
    ``(PropagatingModes, StabilizedModes)`` on the interface orbitals; handled like a
    periodic lead.

:func:`embed_leads` evaluates all of them at one energy (periodic leads that are copies of
each other share one eigenmode computation); the sparse and RGF solvers both use it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from ..leads import LeadData, PropagatingModes, StabilizedModes

# Eigenvalues of Gamma below _CHANNEL_TOLERANCE times the self-energy's scale are closed
# channels (one rule with GreensFunction.num_propagating).
from ..scattering import _CHANNEL_TOLERANCE

__all__ = [
    "AnyLeadData",
    "LeadEmbedding",
    "ModesLeadData",
    "SelfEnergyLeadData",
    "embed_lead",
    "embed_leads",
]

ComplexArray = NDArray[np.complex128]
IntArray = NDArray[np.int64]

# A retarded self-energy has Gamma >= 0; eigenvalues below -this fraction of its scale are
# refused.
_RETARDED_TOLERANCE = 1e-8
# Newton steps of the polar factor of a lead's read-out (see _mode_readout).
_POLAR_STEPS = 3


def _interface_orbitals(value: Any, what: str) -> IntArray:
    array = np.array(value, dtype=np.int64, copy=True) if np.size(value) else np.zeros(0, int)
    array = array.astype(np.int64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{what} must be a non-empty 1-D array of system orbital indices, got "
            f"{_checks._show(value)}"
        )
    if array.min() < 0:
        raise ValueError(f"{what} must hold orbital indices >= 0, got {int(array.min())}")
    if np.unique(array).size != array.size:
        raise ValueError(f"{what} repeats orbitals: {array.tolist()[:16]}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class SelfEnergyLeadData:
    """A lead given by its retarded self-energy on system orbitals, at the matrix level.

    Parameters
    ----------
    selfenergy : callable
        ``selfenergy(energy) -> (n_i, n_i)`` complex array: the retarded self-energy on
        ``interface_sys`` (energy units), called once per energy. It must be retarded:
        ``Gamma = i (Sigma - Sigma^dagger)`` positive semidefinite.
    interface_sys : (n_i,) array_like of int
        System orbital indices, in the order of the self-energy's rows and columns.

    Examples
    --------
    A wide-band lead of width ``gamma = 0.5`` on orbital 0:

    >>> import numpy as np
    >>> lead = SelfEnergyLeadData(lambda e: np.array([[-0.25j]]), [0])
    >>> embed_lead(lead, 0.0).num_modes
    1
    """

    selfenergy: Callable[[float], ArrayLike]
    interface_sys: IntArray

    def __post_init__(self) -> None:
        if not callable(self.selfenergy):
            raise TypeError(
                "selfenergy must be a function energy -> (n_i, n_i) matrix, got "
                f"{_checks._show(self.selfenergy)}"
            )
        object.__setattr__(
            self, "interface_sys", _interface_orbitals(self.interface_sys, "interface_sys")
        )


@dataclass(frozen=True, eq=False)
class ModesLeadData:
    """A lead given by its modes on system orbitals, at the matrix level.

    Parameters
    ----------
    modes : callable
        ``modes(energy) -> (PropagatingModes, StabilizedModes)`` of the lead, with the
        orbitals of its cell ``-1`` being ``interface_sys`` in order (as returned by
        :func:`mesoscopic.leads.modes` for a lead whose hopping couples all of them).
    interface_sys : (n_i,) array_like of int
        System orbital indices of the interface.
    """

    modes: Callable[[float], tuple[PropagatingModes, StabilizedModes]]
    interface_sys: IntArray

    def __post_init__(self) -> None:
        if not callable(self.modes):
            raise TypeError(
                "modes must be a function energy -> (PropagatingModes, StabilizedModes), got "
                f"{_checks._show(self.modes)}"
            )
        object.__setattr__(
            self, "interface_sys", _interface_orbitals(self.interface_sys, "interface_sys")
        )


#: The lead kinds every solver accepts.
AnyLeadData = LeadData | SelfEnergyLeadData | ModesLeadData


@dataclass(frozen=True, eq=False)
class LeadEmbedding:
    """One lead at one energy, as the solvers use it (all on the interface orbitals).

    Attributes
    ----------
    selfenergy : (n_i, n_i) complex ndarray
        Retarded self-energy on the interface orbitals.
    sources : (n_i, num_modes) complex ndarray
        Sources of the incoming channels; ``i (Sigma - Sigma^dagger) = sources sources^dagger``.
    row_projection : (n_i, num_modes) complex ndarray
        ``R``: the outgoing amplitudes of a scattering state ``psi`` are
        ``i R^dagger psi`` on the interface, less ``incident`` for the lead's own incoming
        channels.
    incident : (num_modes, num_modes) complex ndarray
        ``Q``, unitary: the incident wave's part of the outgoing amplitudes (the identity
        for a self-energy lead). For a lead with modes ``Q`` and ``R`` are made on first
        use (:func:`_mode_readout`): transmissions from ``Sigma`` and the sources alone
        never need them.
    num_modes : int
        Open channels.
    propagating : PropagatingModes
        The channels, for :class:`~mesoscopic.scattering.SMatrix` (for a self-energy lead:
        the eigenvectors of ``Gamma`` as wave functions, momenta 0 and velocities
        ``-+gamma_c``, its eigenvalues in energy units).
    stabilized : StabilizedModes or None
        The lead's stabilized modes (None for a self-energy lead).
    """

    selfenergy: ComplexArray
    sources: ComplexArray
    num_modes: int
    propagating: PropagatingModes
    stabilized: StabilizedModes | None
    # (row_projection, incident), given or made on first use from the stabilized modes.
    readout: tuple[ComplexArray, ComplexArray] | None = field(default=None, repr=False)

    @property
    def row_projection(self) -> ComplexArray:
        return self._read_out()[0]

    @property
    def incident(self) -> ComplexArray:
        return self._read_out()[1]

    def _read_out(self) -> tuple[ComplexArray, ComplexArray]:
        readout = self.readout
        if readout is None:
            assert self.stabilized is not None, "a self-energy lead is given its read-out"
            incident = _mode_readout(self.stabilized)
            rows = np.ascontiguousarray(self.sources @ incident.conj().T)
            if not self.sources.flags.writeable:  # a kept embedding: all of it read-only
                incident.flags.writeable = rows.flags.writeable = False
            readout = (rows, incident)
            # Threads that meet here at once compute the same arrays; either is kept.
            object.__setattr__(self, "readout", readout)
        return readout

    def outgoing_amplitudes(
        self, projected: ComplexArray, own: slice | None = None
    ) -> ComplexArray:
        """Outgoing channel amplitudes from ``row_projection^dagger G W`` of some sources.

        Parameters
        ----------
        projected : (num_modes, k) complex ndarray
            ``row_projection^dagger psi`` for ``k`` scattering states ``psi = G W``.
        own : slice, optional
            The columns that are this lead's own incoming channels (``num_modes`` of
            them, in order): the incident wave is removed from those.

        Returns
        -------
        (num_modes, k) complex ndarray
            The S-matrix rows of this lead.
        """
        out = 1j * projected[: self.num_modes]
        if own is not None:
            out[:, own] -= self.incident
        return np.asarray(out)


def _mode_readout(stab: StabilizedModes) -> ComplexArray:
    """The unitary ``Q`` of a lead's Fisher-Lee read-out in its outgoing modes.

    With ``K = beta_out alpha_out^-1`` (the lead's response, ``Sigma = A K A^dagger``), the
    amplitude of outgoing mode ``i`` in a lead wave whose outgoing part is ``y`` is the cross
    current ``J(x_i, y) = alpha_i^dagger Gamma_K alpha_y``, ``Gamma_K = i (K - K^dagger)``
    (``x_i`` carries unit current and none with the other outgoing or the evanescent
    solutions). For a scattering state ``psi = G W_j`` this is ``Q (i W^dagger psi -
    delta_ij)`` with ``Q = [alpha_out,i^dagger Gamma_K alpha_in,j]``, the unitary that takes
    the incoming modes' sources to the outgoing modes. Read out so, the S-matrix is unitary
    to rounding as soon as ``i (Sigma - Sigma^dagger) = W W^dagger`` (each lead's sources
    are consistent with its self-energy), which holds to the rounding of ``Sigma``.
    Wave-function matching instead expands the interface wave in the outgoing modes, and a
    mode a depth ``d`` inside its band has a velocity ``~ sqrt(d)`` and a unit-current
    normalization accurate only to ``eps / v``: unitarity 3e-10 and reciprocity 6e-10 at
    ``d = 1e-12`` (1e-14 read out so). ``Q`` is made exactly unitary (its polar factor),
    which fixes the outgoing modes' phases and normalization to that rounding.
    """
    count = int(stab.num_modes)
    if count == 0:
        return np.zeros((0, 0), dtype=complex)
    alpha_out = np.asarray(stab.alpha_out)
    # NumPy's solve (LAPACK's gesv, as SciPy's) releases the interpreter lock: the leads of
    # different energies are embedded by threads side by side.
    response = np.linalg.solve(alpha_out.T, np.asarray(stab.beta_out).T).T
    gamma = 1j * (response - response.conj().T)
    q = alpha_out[:, :count].conj().T @ gamma @ np.asarray(stab.alpha_in)
    # Polar factor by Newton's iteration X <- (X + X^-dagger) / 2: q is unitary to the
    # rounding of the modes, so a few steps reach machine precision, and each keeps the
    # conservation-law blocks of q exactly apart.
    for _ in range(_POLAR_STEPS):
        q = (q + np.linalg.inv(q).conj().T) / 2
    return np.asarray(q)


def _from_modes(
    prop: PropagatingModes, stab: StabilizedModes, cell: IntArray | None
) -> LeadEmbedding:
    if cell is None:
        sigma, sources = stab.selfenergy, stab.sources
    else:
        sigma = stab.selfenergy[np.ix_(cell, cell)]
        sources = stab.sources[cell]
    sources = np.asarray(sources, dtype=complex)
    return LeadEmbedding(
        selfenergy=np.asarray(sigma, dtype=complex),
        sources=sources,
        num_modes=int(stab.num_modes),
        propagating=prop,
        stabilized=stab,
    )


def _self_energy_embedding(lead: SelfEnergyLeadData, energy: float, index: int) -> LeadEmbedding:
    size = lead.interface_sys.size
    raw = lead.selfenergy(energy)
    try:
        sigma = np.array(raw, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the self-energy function of lead {index} must return a complex matrix, got "
            f"{_checks._show(raw)}"
        ) from exc
    if sigma.ndim == 0 and size == 1:
        sigma = sigma.reshape(1, 1)
    if sigma.shape != (size, size):
        raise ValueError(
            f"the self-energy of lead {index} at energy {energy!r} has shape {sigma.shape}, "
            f"but the lead has {size} interface orbitals; return a ({size}, {size}) matrix"
        )
    if not np.all(np.isfinite(sigma)):
        raise ValueError(f"the self-energy of lead {index} at energy {energy!r} is not finite")
    gamma = 1j * (sigma - sigma.conj().T)
    gamma = 0.5 * (gamma + gamma.conj().T)
    values, vectors = np.linalg.eigh(gamma)
    scale = float(np.max(np.abs(sigma), initial=0.0))
    if values.size and values[0] < -_RETARDED_TOLERANCE * scale:
        raise ValueError(
            f"the self-energy of lead {index} at energy {energy!r} is not retarded: "
            f"i (Sigma - Sigma^dagger) has the negative eigenvalue {values[0]:.3g}; a "
            "retarded self-energy has a negative semidefinite imaginary part (e.g. -i Gamma/2 "
            "with Gamma >= 0)"
        )
    open_ = values > _CHANNEL_TOLERANCE * scale
    # Largest couplings first: a deterministic channel order.
    order = np.flatnonzero(open_)[::-1]
    gammas = values[order]
    channels = vectors[:, order]
    sources = channels * np.sqrt(gammas)[None, :]
    count = int(order.size)
    prop = PropagatingModes(
        wave_functions=np.hstack([channels, channels]),
        momenta=np.zeros(2 * count),
        velocities=np.concatenate([-gammas, gammas]),
        block_nmodes=(count,),
        blocks=np.zeros(2 * count, dtype=np.int64),
    )
    return LeadEmbedding(
        selfenergy=sigma,
        sources=np.ascontiguousarray(sources),
        num_modes=count,
        propagating=prop,
        stabilized=None,
        readout=(np.ascontiguousarray(sources), np.eye(count, dtype=complex)),
    )


def embed_lead(lead: AnyLeadData, energy: float, index: int = 0) -> LeadEmbedding:
    """The embedding of one lead at one energy (``index`` names it in error messages)."""
    if isinstance(lead, LeadData):
        prop, stab = lead.modes(energy)
        return _kept_embedding(lead, prop, stab)
    if isinstance(lead, SelfEnergyLeadData):
        return _self_energy_embedding(lead, energy, index)
    if isinstance(lead, ModesLeadData):
        result = lead.modes(energy)
        if (
            not isinstance(result, tuple)
            or len(result) != 2
            or not isinstance(result[0], PropagatingModes)
            or not isinstance(result[1], StabilizedModes)
        ):
            raise TypeError(
                f"the modes function of lead {index} must return (PropagatingModes, "
                f"StabilizedModes), got {_checks._show(result)}"
            )
        prop, stab = result
        size = lead.interface_sys.size
        if stab.selfenergy.shape != (size, size):
            raise ValueError(
                f"the modes of lead {index} are on {stab.selfenergy.shape[0]} orbitals, but "
                f"the lead has {size} interface orbitals"
            )
        return _from_modes(prop, stab, None)
    raise TypeError(
        f"lead {index} must be a LeadData, SelfEnergyLeadData or ModesLeadData, got "
        f"{type(lead).__name__}"
    )


#: Embeddings kept per lead, made from the lead's kept modes (``LeadData.modes``: read-only
#: objects returned again for the same energy): a loop that solves at the same energies
#: again reads them instead of making them again. A few per lead, small ones only.
_KEPT_EMBEDDINGS: weakref.WeakKeyDictionary[LeadData, dict[int, Any]] = weakref.WeakKeyDictionary()
_KEPT_EMBEDDINGS_PER_LEAD = 4
_KEPT_EMBEDDING_BYTES = 8 << 20
_KEPT_EMBEDDINGS_LOCK = threading.Lock()


def _kept_embedding(
    lead: LeadData, prop: PropagatingModes, stab: StabilizedModes
) -> LeadEmbedding:
    """``_from_modes`` for a lead's modes, kept while the lead lives and its modes are the
    same objects (the entry holds them, so their identity cannot be reused meanwhile)."""
    with _KEPT_EMBEDDINGS_LOCK:
        kept = _KEPT_EMBEDDINGS.get(lead, {}).get(id(stab))
        if kept is not None and kept[0] is prop and kept[1] is stab:
            return kept[2]
    embedding = _from_modes(prop, stab, lead.interface_cell)
    arrays = [value for value in vars(embedding).values() if isinstance(value, np.ndarray)]
    if sum(a.nbytes for a in arrays) > _KEPT_EMBEDDING_BYTES:
        return embedding
    for array in arrays:
        array.flags.writeable = False
    with _KEPT_EMBEDDINGS_LOCK:
        entries = _KEPT_EMBEDDINGS.setdefault(lead, {})
        entries[id(stab)] = (prop, stab, embedding)
        while len(entries) > _KEPT_EMBEDDINGS_PER_LEAD:
            del entries[next(iter(entries))]
    return embedding


def _sharing_key(lead: LeadData) -> tuple[bytes, ...]:
    return (
        lead.h_cell.tobytes(),
        lead.hop.tobytes(),
        repr(lead.h_cell.shape).encode(),
        b"" if lead.projectors is None else b"".join(p.tobytes() for p in lead.projectors),
    )


def embed_leads(leads: Sequence[AnyLeadData], energy: float) -> list[LeadEmbedding]:
    """The embeddings of all leads at one energy.

    Periodic leads that are copies of each other (a wire's two ends, the arms of a Hall bar)
    share one eigenmode computation, the expensive part for wide leads.
    """
    computed: dict[tuple[bytes, ...], tuple[PropagatingModes, StabilizedModes]] = {}
    result = []
    for index, lead in enumerate(leads):
        if isinstance(lead, LeadData):
            key = _sharing_key(lead)
            if key not in computed:
                computed[key] = lead.modes(energy)
            result.append(_kept_embedding(lead, *computed[key]))
        else:
            result.append(embed_lead(lead, energy, index))
    return result
