"""Transport through finalized systems: S-matrices, scattering states, LDOS, currents.

These functions take a finalized :class:`~mesoscopic.system.System`, an energy
and parameter values by name. :func:`smatrix` solves by recursive Green's functions
(:mod:`mesoscopic.solvers.rgf`) where the system slices well, by the rule of
``solver="auto"`` in :mod:`mesoscopic.batch`, and by the sparse direct solver
(:mod:`mesoscopic.solvers.sparse`) otherwise: the same S-matrix to rounding.
:func:`greens_function`, :func:`wave_function` and :func:`ldos` use the sparse solver
(they need the whole scattering state). Their names and arguments follow Kwant, so
``kwant.smatrix(fsys, energy, params=...)`` ports unchanged. For many parameter values at
one energy (disorder averages, gate or field sweeps) pass a list of dicts to
:func:`mesoscopic.smatrices` or :func:`mesoscopic.transmission` instead of looping here.

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
import numbers
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks
from ._params import PositionalArgs, legacy_params, params_by_name
from .leads import LeadData
from .scattering import GreensFunction, SMatrix
from .solvers import sparse
from .solvers._embedding import ModesLeadData, SelfEnergyLeadData
from .system import (
    InfiniteSystem,
    ModesLead,
    SelfEnergyLead,
    System,
    _check_lead_use,
    _parameter_token,
    _signature_info,
    _Uncacheable,
)

__all__ = [
    "WaveFunction",
    "bond_currents",
    "greens_function",
    "ldos",
    "lead_data",
    "smatrix",
    "wave_function",
]


def _value_function_groups(syst: System | InfiniteSystem) -> list[Any]:
    """The term groups of a system and of its builder leads (those with value functions)."""
    if isinstance(syst, InfiniteSystem):
        return [*syst._onsite, *syst._cell, *syst._inter]
    groups = [*syst._onsite, *syst._hoppings]
    for lead in syst.leads:
        if isinstance(lead, InfiniteSystem):
            groups.extend(_value_function_groups(lead))
    return groups


def params_from_args(
    syst: System | InfiniteSystem,
    args: Any,
    params: Mapping[str, Any] | None,
    *,
    warn: bool = True,
) -> Mapping[str, Any] | None:
    """Kwant's deprecated positional ``args`` as the equivalent ``params``.

    Kwant hands ``args`` to every value function after its site(s), by position. The same
    values by name are: for each value function, its ``k``-th parameter after the sites gets
    ``args[k]``. The accepted forms of ``args``, the errors and the
    :class:`DeprecationWarning` are those of every entry point
    (:func:`mesoscopic._params.legacy_params`).

    Parameters
    ----------
    syst : System or InfiniteSystem
    args : sequence, mapping or None
        Positional values (empty or None: nothing to convert); a mapping is ``params``
        given by position.
    params : dict or None
        Values by name; mutually exclusive with a non-empty ``args``.
    warn : bool, keyword-only
        Emit the :class:`DeprecationWarning` (False when the caller has already warned).

    Returns
    -------
    dict or None
        ``params`` itself when ``args`` is empty.

    Raises
    ------
    TypeError
        Both ``args`` and ``params`` given, ``args`` a string or not iterable, or a value
        function that takes fewer parameters than ``args`` holds.
    ValueError
        Two value functions that take the same parameter name at different positions.
    """
    given = legacy_params(args, params, warn=warn)
    if not isinstance(given, PositionalArgs):
        return given
    signatures = []
    for group in _value_function_groups(syst):
        if callable(group.value):
            names, _, takes_all = _signature_info(group.value, 1 if group.onsite else 2)
            label = str(getattr(group.value, "__name__", group.value))
            signatures.append((label, tuple(names), bool(takes_all)))
    return params_by_name(given.args, signatures)


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
    return [_one_lead_data(syst, k, params) for k in range(len(syst.leads))]


def _one_lead_data(
    syst: System, k: int, params: Mapping[str, Any] | None
) -> LeadData | SelfEnergyLeadData | ModesLeadData:
    lead = syst.leads[k]
    sys_orbs, cell_orbs = syst.lead_interface_orbitals(k)
    if isinstance(lead, SelfEnergyLead):
        return SelfEnergyLeadData(functools.partial(_lead_selfenergy, lead, params), sys_orbs)
    if isinstance(lead, ModesLead):
        return ModesLeadData(functools.partial(_lead_modes, lead, params), sys_orbs)
    key = _lead_key(lead, params)
    kept = _KEPT_LEADS.get(lead, {}).get(k)
    if key is not None and kept is not None and kept[0] == key and kept[1]() is syst:
        return kept[2]
    projectors = lead.conservation_projectors()
    data = LeadData(
        lead.cell_hamiltonian(params),
        lead.hopping_away(params),
        sys_orbs,
        cell_orbs,
        None if projectors is None else tuple(projectors),
    )
    if key is not None:
        _KEPT_LEADS.setdefault(lead, {})[k] = (key, weakref.ref(syst), data)
    return data


#: The last LeadData of each builder lead, by the lead's number in the system (one lead
#: object may serve as several leads), with the parameter values it was made with and
#: (weakly, so that it can be freed) the system it belongs to: a loop over disorder or gate
#: values at fixed lead parameters evaluates the leads once.
_KEPT_LEADS: weakref.WeakKeyDictionary[Any, dict[int, tuple[Any, Any, LeadData]]] = (
    weakref.WeakKeyDictionary()
)


def _lead_key(lead: Any, params: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """What identifies a builder lead's matrices at `params`, or None: evaluate them again.

    As a term group reuses its values (``TermGroup.blocks``): every value function of the
    lead must take at least one parameter (one that takes none may read anything, and is
    called every time), and the values of the lead's parameters (a magnetic flux included)
    must compare safely (numbers by their bits, arrays by their bytes; see
    ``mesoscopic.system._parameter_token``).
    """
    if lead._takes_any_parameter:
        return None  # a function of **kwargs (or of no known signature) may read any of them
    given = params or {}
    for group in (*lead._onsite, *lead._cell, *lead._inter):
        if callable(group.value) and group._parameter_token(given) is None:
            return None
    key = []
    for name in sorted(lead.parameters):
        if name not in given:
            return None
        try:
            key.append((name, _parameter_token(given[name])))
        except _Uncacheable:
            return None
    return tuple(key)


def _same_value(a: Any, b: Any) -> bool:
    """Whether two parameter values are certainly the same (the same object, or equal numbers)."""
    if a is b:
        return True
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def lead_data_batch(
    syst: System, elements: Sequence[Mapping[str, Any]]
) -> list[list[LeadData | SelfEnergyLeadData | ModesLeadData]]:
    """:func:`lead_data` for each params dict of a batch, a lead evaluated once where it can.

    A builder lead whose parameters (:attr:`InfiniteSystem.parameters`) have the same values
    in an element as in the first (the same objects, or equal numbers) is the first
    element's :class:`~mesoscopic.leads.LeadData`, shared: the solvers then compute its modes
    once per energy. Self-energy and modes leads are functions of all the parameters and are
    evaluated per element.
    """
    first = lead_data(syst, params=elements[0])
    result = [first]
    for params in elements[1:]:
        leads: list[LeadData | SelfEnergyLeadData | ModesLeadData] = []
        for k, lead in enumerate(syst.leads):
            if (
                isinstance(lead, InfiniteSystem)
                and not lead._takes_any_parameter
                and all(
                    (name in params) == (name in elements[0])
                    and (name not in params or _same_value(params[name], elements[0][name]))
                    for name in lead.parameters
                )
            ):
                leads.append(first[k])
            else:
                leads.append(_one_lead_data(syst, k, params))
        result.append(leads)
    return result


def _lead_selfenergy(lead: Any, params: Mapping[str, Any] | None, energy: float) -> Any:
    return lead.selfenergy(energy, params=params)


def _lead_modes(lead: Any, params: Mapping[str, Any] | None, energy: float) -> Any:
    return lead.modes(energy=energy, params=params)


def _lead_list(value: Any, count: int, name: str) -> list[int] | None:
    """``in_leads``/``out_leads`` checked: None (all leads) or a non-empty list of leads."""
    if value is None:
        return None
    if isinstance(value, (numbers.Integral, str)):
        raise TypeError(f"{name} must be a sequence of lead indices, got {_checks._show(value)}")
    try:
        leads = list(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of lead indices, got {_checks._show(value)}"
        ) from None
    if not leads:
        raise ValueError(
            f"{name} is empty, so no output is requested; give at least one lead of "
            f"0..{count - 1}, or None for all leads"
        )
    return leads


def _solve_inputs(
    sys: Any,
    what: str,
    energy: Any,
    args: Any,
    check_hermiticity: bool,
    params: Mapping[str, Any] | None,
) -> tuple[System, float, Mapping[str, Any] | None, Any]:
    """The checked system, energy and params of a solve, and its Hamiltonian."""
    syst = _checks.finalized_system(sys, what, min_leads=1)
    params = params_from_args(syst, args, params)
    value = _checks.real_energy(energy)
    ham = _system_matrix(syst, params, check_hermiticity)
    return syst, value, params, ham


def _system_matrix(
    syst: System, params: Mapping[str, Any] | None, check_hermiticity: bool = True
) -> Any:
    """The Hamiltonian of a finalized system's scattering region as the solvers take it
    (CSR, straight from its assembly; ``hamiltonian_submatrix(sparse=True)`` gives Kwant's
    COO format)."""
    csr = getattr(syst, "_hamiltonian_csr", None)
    if csr is not None:
        return csr(params, check_hermiticity)
    return syst.hamiltonian_submatrix(
        params=params, sparse=True, check_hermiticity=check_hermiticity
    )


def _rgf_smatrix(
    ham: Any,
    leads: list[LeadData | SelfEnergyLeadData | ModesLeadData],
    energy: float,
    in_leads: Sequence[int] | None,
    out_leads: Sequence[int] | None,
    stats: dict[str, Any] | None = None,
    hermitian: bool = False,
) -> SMatrix | None:
    """The S-matrix by the recursive Green's functions, or None where it slices badly.

    The rule is ``solver="auto"`` of :mod:`mesoscopic.batch`; the recursion gives every lead
    at once, of which the requested rows and columns are kept (the same numbers as the
    sparse solver computing only those).
    """
    from .batch import _rgf_problem

    chosen_in = sparse._lead_selection(in_leads, len(leads), "in_leads")
    chosen_out = sparse._lead_selection(out_leads, len(leads), "out_leads")
    problem = _rgf_problem("auto", ham, leads, "cpu", None, hermitian=hermitian)
    if problem is None:
        return None
    full = problem.smatrices([energy], stats=stats)[0]
    if chosen_in == tuple(range(len(leads))) and chosen_out == chosen_in:
        return full
    counts = [info.num_modes for info in full.lead_info]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def modes_of(chosen: tuple[int, ...]) -> NDArray[np.int64]:
        ranges = [np.arange(starts[i], starts[i + 1]) for i in chosen]
        return np.concatenate([np.zeros(0, dtype=np.int64), *ranges])

    return SMatrix(
        data=full.data[np.ix_(modes_of(chosen_out), modes_of(chosen_in))],
        energy=full.energy,
        lead_info=full.lead_info,
        in_leads=chosen_in,
        out_leads=chosen_out,
    )


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
    args : tuple, optional
        Deprecated (as in Kwant): positional values for the value functions, turned into
        ``params`` by :func:`params_from_args` with a :class:`DeprecationWarning`.
    out_leads, in_leads : sequence of int, optional
        Leads whose outgoing (rows) and incoming (columns) modes to compute; all by default.
        Must not be empty.
    check_hermiticity : bool
        Check that the Hamiltonian is Hermitian. The result then conserves current, and
        ``transmission`` infers the transmissions of one lead left out of ``out_leads`` or
        ``in_leads`` from the sum rules (as Kwant does).
    params : dict, optional
        Parameter values by name.

    Returns
    -------
    SMatrix
        ``S.transmission(i, j)`` from lead j into lead i, ``S.data`` the full
        matrix over propagating modes, ``S.conductance_matrix()`` in units of e^2/h
        including the system's spin degeneracy.
    """
    syst, value, params, ham = _solve_inputs(
        sys, "smatrix", energy, args, check_hermiticity, params
    )
    count = len(syst.leads)
    chosen_in = _lead_list(in_leads, count, "in_leads")
    chosen_out = _lead_list(out_leads, count, "out_leads")
    _check_lead_use(syst, chosen_in, "modes", "the scattering matrix (in_leads)")
    _check_lead_use(syst, chosen_out, "modes", "the scattering matrix (out_leads)")
    leads = lead_data(syst, params=params)
    result = _rgf_smatrix(ham, leads, value, chosen_in, chosen_out, hermitian=check_hermiticity)
    if result is None:
        result = sparse.scattering_matrix(
            ham, leads, value, in_leads=chosen_in, out_leads=chosen_out
        )
    return replace(
        result,
        spin_degeneracy=syst.spin_degeneracy,
        current_conserving=bool(check_hermiticity),
    )


def greens_function(
    sys: System,
    energy: float = 0.0,
    args: Sequence[Any] = (),
    out_leads: Sequence[int] | None = None,
    in_leads: Sequence[int] | None = None,
    check_hermiticity: bool = True,
    *,
    params: Mapping[str, Any] | None = None,
) -> GreensFunction:
    """Retarded Green's function of a finalized system between its leads, at one energy.

    ``G = (E - H - sum_l Sigma_l)^-1`` between the orbitals of the sites the leads attach
    to, with the leads' self-energies. Its transmissions are those of :func:`smatrix`
    (Fisher-Lee relation); the S-matrix route is the faster and more accurate one, this one
    is for Green's-function work and Kwant's ``greens_function``.

    Parameters
    ----------
    sys : System
        A finalized system with leads (of any kind).
    energy : float
        Real energy, in the unit of the Hamiltonian.
    args : tuple, optional
        Deprecated positional values (see :func:`smatrix`).
    out_leads, in_leads : sequence of int, optional
        Leads whose interfaces are the rows and columns of ``G``; all by default.
    check_hermiticity : bool
        Check that the Hamiltonian is Hermitian (and infer transmissions of a lead left out).
    params : dict, optional
        Parameter values by name.

    Returns
    -------
    GreensFunction
        ``data`` (inverse energy units), ``lead_info`` (self-energies), ``submatrix``,
        ``transmission``, ``num_propagating``, ``conductance_matrix``.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> gf = meso.transport.greens_function(syst.finalized(), 0.0)
    >>> round(gf.transmission(1, 0), 12)   # 1 / (1 + (eps / (2 sin k))^2) at k = pi/2
    0.8
    """
    syst, value, params, ham = _solve_inputs(
        sys, "greens_function", energy, args, check_hermiticity, params
    )
    count = len(syst.leads)
    _check_lead_use(syst, None, "selfenergy", "the Green's function")
    result = sparse.greens_function_matrix(
        ham,
        lead_data(syst, params=params),
        value,
        in_leads=_lead_list(in_leads, count, "in_leads"),
        out_leads=_lead_list(out_leads, count, "out_leads"),
    )
    return replace(
        result,
        spin_degeneracy=syst.spin_degeneracy,
        current_conserving=bool(check_hermiticity),
    )


class WaveFunction:
    """Scattering states of a system at one energy, lead by lead (Kwant's ``WaveFunction``).

    ``psi(lead)`` is a complex array of shape (n_incoming_modes, num_orb): row ``j`` is the
    state of incoming mode ``j`` of that lead, normalized to unit incoming current, on the
    orbitals of the scattering region.

    Attributes
    ----------
    num_orb : int
        Orbitals of the scattering region.
    energy : float
    """

    def __init__(
        self,
        states: Sequence[NDArray[np.complex128]],
        num_orb: int,
        energy: float,
        syst: System | None = None,
    ):
        self._states = tuple(states)
        self.num_orb = int(num_orb)
        self.energy = float(energy)
        self._syst = syst

    def __call__(self, lead: int) -> NDArray[np.complex128]:
        count = len(self._states)
        if isinstance(lead, bool) or not isinstance(lead, (int, np.integer)):
            raise TypeError(f"lead must be a lead index (int), got {lead!r}")
        if not 0 <= lead < count:
            raise ValueError(f"lead {lead!r} does not exist; this system has leads 0..{count - 1}")
        if self._syst is not None:
            _check_lead_use(self._syst, [lead], "modes", "a scattering state")
        return np.array(self._states[int(lead)])

    def __repr__(self) -> str:
        return f"<WaveFunction at energy {self.energy} of {len(self._states)} leads>"


def wave_function(
    sys: System,
    energy: float = 0.0,
    args: Sequence[Any] = (),
    check_hermiticity: bool = True,
    *,
    params: Mapping[str, Any] | None = None,
) -> WaveFunction:
    """Scattering states in the scattering region.

    Returns
    -------
    WaveFunction
        ``psi = wave_function(sys, E, params=...)``; ``psi(lead)`` is an array of
        shape (n_incoming_modes, n_orbitals): row j is the state of incoming mode j
        of that lead, normalized to unit incoming current. ``args`` is deprecated
        (see :func:`smatrix`).
    """
    syst, value, params, ham = _solve_inputs(
        sys, "wave_function", energy, args, check_hermiticity, params
    )
    states = sparse.scattering_states(ham, lead_data(syst, params=params), value)
    return WaveFunction(states, syst.num_orbitals, value, syst)


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
    not couple to the leads are not included. ``args`` is deprecated (see
    :func:`smatrix`).

    Returns
    -------
    ndarray, shape (n_orbitals,)
    """
    syst, value, params, ham = _solve_inputs(sys, "ldos", energy, args, check_hermiticity, params)
    _check_lead_use(syst, None, "modes", "the LDOS from scattering states")
    states = sparse.scattering_states(ham, lead_data(syst, params=params), value)
    total = np.zeros(syst.num_orbitals)
    for psi in states:
        total += np.sum(psi.real**2 + psi.imag**2, axis=0)
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
        ``(i, j)`` of ``sys.hopping_indices``, positive when it flows from site j to site i.
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
    hi, hj = sys.hopping_indices
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
