"""Transport through finalized systems: S-matrices, scattering states, LDOS, currents.

These functions take a finalized :class:`~mesoscopic.system.System`, an energy
and parameter values by name, and call the sparse direct solver
(:mod:`mesoscopic.solvers.sparse`). Their names and arguments follow Kwant, so
``kwant.smatrix(fsys, energy, params=...)`` ports unchanged.

Units: energies in the unit of the Hamiltonian; transmissions dimensionless;
conductance matrices in units of e^2/h times the system's spin degeneracy.

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(4) for y in range(3))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
>>> lead[(lat(0, y) for y in range(3))] = 4.0
>>> lead[lat.neighbors()] = -1.0
>>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
>>> S = meso.smatrix(syst.finalized(), 1.0)
>>> S.num_propagating(0), round(S.transmission(1, 0), 10)
(1, 1.0)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks
from .leads import LeadData
from .scattering import SMatrix
from .solvers import sparse
from .solvers._embedding import ModesLeadData, SelfEnergyLeadData
from .system import ModesLead, SelfEnergyLead, System

__all__ = ["bond_currents", "ldos", "lead_data", "smatrix", "wave_function"]


def _check_system(syst: Any, what: str) -> System:
    if not isinstance(syst, System):
        raise TypeError(
            f"{what} needs a finalized system (Builder.finalized()), got {type(syst).__name__}"
        )
    if not syst.leads:
        raise ValueError(f"{what} needs a system with at least one lead; attach leads first")
    return syst


def _check_energy(energy: Any) -> float:
    if isinstance(energy, (bool, np.bool_)) or np.ndim(energy) != 0:
        raise TypeError(f"energy must be a real number, got {energy!r}")
    try:
        value = complex(energy)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"energy must be a real number, got {energy!r}") from exc
    if value.imag != 0:
        raise ValueError(f"energy must be real, got {energy!r}")
    if not np.isfinite(value.real):
        raise ValueError(f"energy must be finite, got {energy!r}")
    return float(value.real)


def _no_args(args: Sequence[Any]) -> None:
    if args:
        raise TypeError("positional args are not supported; pass params={name: value}")


def lead_data(
    syst: System, *, params: Mapping[str, Any] | None = None
) -> list[LeadData | SelfEnergyLeadData | ModesLeadData]:
    """The leads of `syst` as plain matrices (or functions of the energy) for the solvers.

    Returns
    -------
    list of LeadData, SelfEnergyLeadData or ModesLeadData
        For a builder lead: cell Hamiltonian, inter-cell hopping, interface orbitals and
        conservation law projectors. For a :class:`~mesoscopic.system.SelfEnergyLead` or
        :class:`~mesoscopic.system.ModesLead`: its function at ``params`` and its interface
        orbitals.
    """
    result: list[LeadData | SelfEnergyLeadData | ModesLeadData] = []
    for k, lead in enumerate(syst.leads):
        sys_orbs, cell_orbs = syst.lead_interface_orbitals(k)
        if isinstance(lead, SelfEnergyLead):
            result.append(
                SelfEnergyLeadData(functools.partial(_lead_selfenergy, lead, params), sys_orbs)
            )
            continue
        if isinstance(lead, ModesLead):
            result.append(ModesLeadData(functools.partial(_lead_modes, lead, params), sys_orbs))
            continue
        hop = lead.inter_cell_hopping(params)
        projectors = lead.conservation_projectors()
        result.append(
            LeadData(
                lead.cell_hamiltonian(params),
                hop,
                sys_orbs,
                cell_orbs,
                None if projectors is None else tuple(projectors),
            )
        )
    return result


def _lead_selfenergy(
    lead: SelfEnergyLead, params: Mapping[str, Any] | None, energy: float
) -> NDArray[np.complex128]:
    return lead.selfenergy(energy, params=params)


def _lead_modes(lead: ModesLead, params: Mapping[str, Any] | None, energy: float) -> Any:
    return lead.modes(energy, params=params)


def smatrix(
    sys: System,
    energy: float = 0.0,
    args: Sequence[Any] = (),
    out_leads: Sequence[int] | None = None,
    in_leads: Sequence[int] | None = None,
    check_hermiticity: bool = True,
    *,
    params: Mapping[str, Any] | None = None,
) -> SMatrix:
    """Scattering matrix of a finalized system at one energy.

    Parameters
    ----------
    sys : System
        A finalized system with leads.
    energy : float
        Real energy, in the unit of the Hamiltonian.
    out_leads, in_leads : sequence of int, optional
        Leads whose outgoing (rows) and incoming (columns) modes to compute.
    params : dict, optional
        Parameter values by name.

    Returns
    -------
    SMatrix
        ``S.transmission(i, j)`` from lead j into lead i, ``S.data`` the full
        matrix over propagating modes, ``S.conductance_matrix()`` in units of e^2/h
        including the system's spin degeneracy.
    """
    _no_args(args)
    syst = _check_system(sys, "smatrix")
    energy = _check_energy(energy)
    ham = syst.hamiltonian_submatrix(
        params=params, sparse=True, check_hermiticity=check_hermiticity
    )
    result = sparse.scattering_matrix(
        ham, lead_data(syst, params=params), energy, in_leads=in_leads, out_leads=out_leads
    )
    return result.with_spin_degeneracy(syst.spin_degeneracy)


def wave_function(
    sys: System,
    energy: float = 0.0,
    args: Sequence[Any] = (),
    check_hermiticity: bool = True,
    *,
    params: Mapping[str, Any] | None = None,
) -> Callable[[int], NDArray[np.complex128]]:
    """Scattering states in the scattering region.

    Returns
    -------
    callable
        ``psi = wave_function(sys, E, params=...)``; ``psi(lead)`` is an array of
        shape (n_incoming_modes, n_orbitals): row j is the state of incoming mode j
        of that lead, normalized to unit incoming current.
    """
    _no_args(args)
    syst = _check_system(sys, "wave_function")
    energy = _check_energy(energy)
    ham = syst.hamiltonian_submatrix(
        params=params, sparse=True, check_hermiticity=check_hermiticity
    )
    states = sparse.scattering_states(ham, lead_data(syst, params=params), energy)
    n_leads = len(states)

    def psi(lead: int) -> NDArray[np.complex128]:
        if (
            isinstance(lead, bool)
            or not isinstance(lead, (int, np.integer))
            or not 0 <= lead < n_leads
        ):
            raise ValueError(
                f"lead {lead!r} does not exist; this system has leads 0..{n_leads - 1}"
            )
        return states[int(lead)]

    return psi


def ldos(
    sys: System,
    energy: float = 0.0,
    args: Sequence[Any] = (),
    check_hermiticity: bool = True,
    *,
    params: Mapping[str, Any] | None = None,
) -> NDArray[np.float64]:
    """Local density of states per orbital, from the scattering states.

    ``ldos_a = sum over leads and incoming modes |psi_a|^2 / (2 pi)`` in units of
    states per energy unit per orbital (per spin species). Bound states that do
    not couple to the leads are not included.

    Returns
    -------
    ndarray, shape (n_orbitals,)
    """
    psi = wave_function(sys, energy, args, check_hermiticity, params=params)
    total = np.zeros(sys.num_orbitals)
    for lead in range(len(sys.leads)):
        total += np.sum(np.abs(psi(lead)) ** 2, axis=0)
    return total / (2 * np.pi)


def bond_currents(
    sys: System, state: NDArray[np.complex128], *, params: Mapping[str, Any] | None = None
) -> NDArray[np.float64]:
    """Particle current along every hopping of a state.

    Parameters
    ----------
    sys : System
    state : ndarray, shape (n_orbitals,) or (n_states, n_orbitals)
        Wave function(s) on the system orbitals; several states are summed
        (e.g. all incoming modes of one lead).

    Returns
    -------
    ndarray, shape (n_hoppings,)
        Current ``I_ij = 2 Im(psi_i^* H_ij psi_j)`` (hbar = 1) along each hopping
        ``(i, j)`` of ``sys.graph``, positive when it flows from site j to site i.
        For a unit-current scattering state, the currents through a cut between
        the leads add up to the transmitted probability.
    """
    if not isinstance(sys, System):
        raise TypeError(
            f"bond_currents needs a finalized system (Builder.finalized()), got "
            f"{type(sys).__name__}"
        )
    try:
        state = np.atleast_2d(np.asarray(state, dtype=complex))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"state must be an array of complex amplitudes, got {_checks._show(state)}"
        ) from exc
    if state.ndim > 2:
        raise ValueError(
            f"state must have shape (n_orbitals,) or (n_states, n_orbitals), got {state.shape}"
        )
    if not np.all(np.isfinite(state)):
        raise ValueError("state contains NaN or inf")
    if state.shape[-1] != sys.num_orbitals:
        raise ValueError(
            f"state must have {sys.num_orbitals} orbitals in its last axis, "
            f"got shape {state.shape}"
        )
    ham = sys.hamiltonian_submatrix(params=params, sparse=True).tocsr()
    hi, hj = sys.graph
    off = sys.orb_offsets
    currents = np.zeros(len(hi))
    # Sum over orbitals of each site pair: psi_i^dagger H_ij psi_j for every state.
    single = np.all(sys.norbs == 1)
    if single:
        h_ij = np.asarray(ham[off[hi], off[hj]]).ravel()
        amp = np.conj(state[:, off[hi]]) * h_ij[None, :] * state[:, off[hj]]
        currents = 2 * np.sum(amp.imag, axis=0)
    else:
        for k, (i, j) in enumerate(zip(hi, hj)):
            block = ham[off[i] : off[i + 1], off[j] : off[j + 1]].toarray()
            amp = np.einsum(
                "si,ij,sj->s",
                np.conj(state[:, off[i] : off[i + 1]]),
                block,
                state[:, off[j] : off[j + 1]],
            )
            currents[k] = 2 * np.sum(amp.imag)
    return currents
