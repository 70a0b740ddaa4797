"""Scattering matrices and the transport quantities read from them.

An :class:`SMatrix` holds the scattering matrix of a system with leads at one energy, in the
basis of the leads' unit-current propagating modes (see :mod:`mesoscopic.leads`). Rows are
outgoing modes and columns incoming modes, ordered lead by lead and, within a lead, by
conservation-law block and then as in :class:`~mesoscopic.leads.PropagatingModes`.

A lead is named by its index ``i`` or, when the lead has conservation-law projectors, by a
``(i, block)`` pair, as in Kwant. ``transmission(i, j)`` is the transmission from lead ``j``
into lead ``i``, ``sum |S_ij|^2``; ``transmission(i, i)`` is the total reflection probability
of lead ``i`` (same as Kwant's ``transmission(i, i)``).

Conductances are in units of ``e^2/h`` per spin species: pass ``spin_degeneracy=2`` for a
spin-degenerate model written without explicit spin (never a silent factor 2).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks
from .leads import PropagatingModes

__all__ = ["GreensFunction", "SMatrix"]

LeadKey = int | tuple[int, int]

# A self-energy's channel is open when its eigenvalue of Gamma = i (Sigma - Sigma^dagger)
# exceeds this fraction of max |Sigma|: rounding leaves about 1e-16 of it in the Gamma of
# a closed lead (below every band). The solvers' self-energy leads use the same rule.
_CHANNEL_TOLERANCE = 1e-12


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral | np.integer) and not isinstance(value, bool)


def _lead_range(count: int) -> str:
    return "this system has no leads" if count == 0 else f"this system has leads 0..{count - 1}"


@dataclass(frozen=True, eq=False)
class SMatrix:
    """Scattering matrix at one energy.

    Parameters
    ----------
    data : (n_out, n_in) array_like
        ``S`` over the propagating modes of ``out_leads`` (rows) and ``in_leads`` (columns).
    energy : float
        Energy at which ``S`` was computed.
    lead_info : sequence of PropagatingModes
        Propagating modes of every lead of the system (not only the computed ones).
    in_leads, out_leads : sequence of int, optional
        Leads whose incoming (columns) and outgoing (rows) modes ``data`` covers, in the order
        used in ``data``; all leads by default.
    spin_degeneracy : {1, 2}, optional
        Multiplicity of each channel in :meth:`conductance_matrix`.
    current_conserving : bool, optional
        Whether ``S`` is known to conserve current (a Hermitian Hamiltonian). Then
        :meth:`transmission` infers a transmission into or out of a lead that was left out
        of ``out_leads`` or ``in_leads`` from the sum rules ``sum_j T[i, j] = N_i`` and
        ``sum_i T[i, j] = N_j``, when all other leads were computed (as Kwant does).

    Examples
    --------
    A lone 1D chain site between two chain leads transmits perfectly:

    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> s = scattering_matrix([[0.0]], [LeadData(**chain), LeadData(**chain)], energy=0.5)
    >>> round(s.transmission(1, 0), 12), round(s.transmission(0, 0), 12)
    (1.0, 0.0)
    >>> s.conductance_matrix().round(12).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
    """

    data: NDArray[np.complex128]
    energy: float
    lead_info: tuple[PropagatingModes, ...]
    in_leads: tuple[int, ...] | None = None
    out_leads: tuple[int, ...] | None = None
    spin_degeneracy: int = 1
    current_conserving: bool = False
    _in_offsets: dict[int, int] = field(init=False, repr=False)
    _out_offsets: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "current_conserving", bool(self.current_conserving))
        info = tuple(self.lead_info)
        for i, modes in enumerate(info):
            if not isinstance(modes, PropagatingModes):
                raise TypeError(f"lead_info[{i}] must be PropagatingModes, got {type(modes)}")
        count = len(info)
        in_leads = self._lead_list(self.in_leads, count, "in_leads")
        out_leads = self._lead_list(self.out_leads, count, "out_leads")
        data = np.array(self.data, dtype=complex)
        want = (
            sum(info[i].num_modes for i in out_leads),
            sum(info[i].num_modes for i in in_leads),
        )
        if data.shape != want:
            raise ValueError(
                f"data must have shape {want} (outgoing x incoming modes of the given leads), "
                f"got {data.shape}"
            )
        data.flags.writeable = False
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "energy", float(self.energy))
        object.__setattr__(self, "lead_info", info)
        object.__setattr__(self, "in_leads", in_leads)
        object.__setattr__(self, "out_leads", out_leads)
        for name, leads in (("_in_offsets", in_leads), ("_out_offsets", out_leads)):
            offsets, start = {}, 0
            for lead in leads:
                offsets[lead] = start
                start += info[lead].num_modes
            object.__setattr__(self, name, offsets)

    @staticmethod
    def _lead_list(value: Sequence[int] | None, count: int, name: str) -> tuple[int, ...]:
        if value is None:
            return tuple(range(count))
        leads = tuple(value)
        for lead in leads:
            if not _is_integer(lead):
                raise TypeError(f"{name} must contain lead indices (int), got {lead!r}")
            if not 0 <= lead < count:
                raise ValueError(f"lead {lead} does not exist; {_lead_range(count)}")
        if len(set(leads)) != len(leads):
            raise ValueError(f"{name} contains repeated leads: {list(leads)}")
        return tuple(int(lead) for lead in leads)

    # ----------------------------------------------------------------------------------------

    @property
    def num_leads(self) -> int:
        """Number of leads of the system."""
        return len(self.lead_info)

    def _resolve(self, lead: Any, role: str) -> tuple[int, slice]:
        """Lead index and the slice of its modes (or of one block) within the lead."""
        block: int | None = None
        if isinstance(lead, tuple):
            if len(lead) != 2 or not all(_is_integer(x) for x in lead):
                raise TypeError(
                    f"{role} must be a lead index or a (lead, block) pair, got {lead!r}"
                )
            lead, block = int(lead[0]), int(lead[1])
        elif not _is_integer(lead):
            raise TypeError(f"{role} must be a lead index or a (lead, block) pair, got {lead!r}")
        lead = int(lead)
        if not 0 <= lead < self.num_leads:
            raise ValueError(f"lead {lead} does not exist; {_lead_range(self.num_leads)}")
        modes = self.lead_info[lead]
        if block is None:
            return lead, slice(0, modes.num_modes)
        nblocks = len(modes.block_nmodes)
        if not 0 <= block < nblocks:
            raise ValueError(
                f"block {block} of lead {lead} does not exist; lead {lead} has blocks "
                f"0..{nblocks - 1}"
            )
        start = sum(modes.block_nmodes[:block])
        return lead, slice(start, start + modes.block_nmodes[block])

    def _rows(self, lead: Any) -> slice:
        index, local = self._resolve(lead, "to_lead")
        if index not in self._out_offsets:
            raise ValueError(
                f"lead {index} was not computed as an outgoing lead; out_leads = "
                f"{list(self._out_offsets)}"
            )
        offset = self._out_offsets[index]
        return slice(offset + local.start, offset + local.stop)

    def _columns(self, lead: Any) -> slice:
        index, local = self._resolve(lead, "from_lead")
        if index not in self._in_offsets:
            raise ValueError(
                f"lead {index} was not computed as an incoming lead; in_leads = "
                f"{list(self._in_offsets)}"
            )
        offset = self._in_offsets[index]
        return slice(offset + local.start, offset + local.stop)

    def num_propagating(self, lead: LeadKey) -> int:
        """Number of open channels (incoming = outgoing modes) of a lead or lead block.

        Parameters
        ----------
        lead : int or (int, int)
            Lead index, or ``(lead, block)``.

        Returns
        -------
        int
        """
        _, local = self._resolve(lead, "lead")
        return local.stop - local.start

    def submatrix(self, to_lead: LeadKey, from_lead: LeadKey) -> NDArray[np.complex128]:
        """Block of ``S`` from ``from_lead`` into ``to_lead``.

        Parameters
        ----------
        to_lead, from_lead : int or (int, int)
            Lead index, or ``(lead, block)``.

        Returns
        -------
        (n_to, n_from) complex ndarray
            Amplitudes of the outgoing modes of ``to_lead`` for unit incoming modes of
            ``from_lead``.
        """
        return np.array(self.data[self._rows(to_lead), self._columns(from_lead)])

    def _transmission(self, to_lead: LeadKey, from_lead: LeadKey) -> float:
        """``sum |S_ij|^2`` over the computed block (no inference)."""
        block = self.data[self._rows(to_lead), self._columns(from_lead)]
        return float(np.sum(block.real**2 + block.imag**2))

    def transmission(self, to_lead: LeadKey, from_lead: LeadKey) -> float:
        """Total transmission probability ``sum |S_ij|^2`` from ``from_lead`` into ``to_lead``.

        ``transmission(i, i)`` is the total reflection probability of lead ``i``. For a
        current-conserving S-matrix (:attr:`current_conserving`) a transmission into a lead
        left out of ``out_leads`` (or out of a lead left out of ``in_leads``) is inferred from
        the sum rules when every other lead was computed.

        Parameters
        ----------
        to_lead, from_lead : int or (int, int)
            Lead index, or ``(lead, block)``.

        Returns
        -------
        float
            Dimensionless.

        Raises
        ------
        ValueError
            A lead that does not exist, or a block that was not computed and cannot be
            inferred.
        """
        return _transmission_or_inferred(self, to_lead, from_lead)

    def reflection(self, lead: LeadKey) -> float:
        """Total reflection probability of ``lead``, the same as ``transmission(lead, lead)``."""
        return self.transmission(lead, lead)

    def _require_all(self, what: str) -> None:
        every = list(range(self.num_leads))
        in_leads, out_leads = list(self._in_offsets), list(self._out_offsets)
        if sorted(in_leads) != every or sorted(out_leads) != every:
            raise ValueError(
                f"{what} needs the S-matrix of all leads; this one has in_leads = "
                f"{in_leads} and out_leads = {out_leads}"
            )

    def transmission_matrix(self) -> NDArray[np.float64]:
        """Transmission matrix ``T[i, j]`` from lead ``j`` into lead ``i``.

        Returns
        -------
        (n_leads, n_leads) float ndarray
            ``T[i, i]`` is the total reflection of lead ``i``; rows and columns sum to the
            numbers of open channels. The format :mod:`mesoscopic.network` takes.

        Raises
        ------
        ValueError
            When a lead was left out of ``in_leads`` or ``out_leads`` and its transmissions
            cannot be inferred (see :meth:`transmission`).
        """
        return _transmission_matrix(self)

    def with_spin_degeneracy(self, spin_degeneracy: int) -> SMatrix:
        """The same S-matrix, labelled with the spin degeneracy of its system (1 or 2)."""
        return replace(self, spin_degeneracy=_checks.spin_degeneracy(spin_degeneracy))

    def conductance_matrix(self, *, spin_degeneracy: int | None = None) -> NDArray[np.float64]:
        """Büttiker conductance matrix in units of ``e^2/h``, including the spin degeneracy.

        ``G[i, i] = N_i - T[i, i]`` and ``G[i, j] = -T[i, j]`` with ``N_i`` the open channels
        of lead ``i``; terminal currents are ``I = G V``. Rows and columns sum to zero.

        Parameters
        ----------
        spin_degeneracy : {1, 2}, keyword-only, optional
            Multiplicity of each channel (1 when spin is explicit in the orbitals, 2 for a
            spin-degenerate model written without spin). Defaults to the system's value
            (:attr:`spin_degeneracy`, set by ``finalized(spin_degeneracy=...)``).

        Returns
        -------
        (n_leads, n_leads) float ndarray
        """
        if spin_degeneracy is None:
            spin_degeneracy = self.spin_degeneracy
        g_s = _checks.spin_degeneracy(spin_degeneracy)
        transmission = self.transmission_matrix()
        channels = np.array([modes.num_modes for modes in self.lead_info], dtype=float)
        return float(g_s) * (np.diag(channels) - transmission)

    def check_unitarity(self) -> float:
        """Largest deviation ``max |S^dagger S - 1|`` (zero for an exact S-matrix).

        Returns
        -------
        float
        """
        self._require_all("check_unitarity")
        if self.data.size == 0:
            return 0.0
        product = self.data.conj().T @ self.data
        return float(np.max(np.abs(product - np.eye(product.shape[0]))))

    def check_current_conservation(self) -> float:
        """Largest deviation of the row and column sums of ``T`` from the channel numbers.

        Returns
        -------
        float
            ``max(|sum_j T[i, j] - N_i|, |sum_i T[i, j] - N_j|)`` over all leads.
        """
        transmission = self.transmission_matrix()
        if transmission.size == 0:
            return 0.0
        channels = np.array([modes.num_modes for modes in self.lead_info], dtype=float)
        rows = np.abs(transmission.sum(axis=1) - channels)
        columns = np.abs(transmission.sum(axis=0) - channels)
        return float(max(rows.max(), columns.max()))


# --------------------------------------------------------------------------------------------
# Transmissions of block results (SMatrix, GreensFunction), with the sum-rule inference
# --------------------------------------------------------------------------------------------


def _transmission_or_inferred(result: Any, to_lead: LeadKey, from_lead: LeadKey) -> float:
    """``result._transmission``, or its value from the sum rules for a lead left out.

    With current conservation ``sum_j T[i, j] = N_i`` and ``sum_i T[i, j] = N_j`` (``T[i, i]``
    the reflection). A missing row (``to_lead`` not in ``out_leads``) follows from its column
    when all other leads are outgoing leads; a missing column likewise; a block missing both
    ways from the columns of the other incoming leads, when both lists miss one lead each.
    """
    out_leads, in_leads = list(result._out_offsets), list(result._in_offsets)
    if not (isinstance(to_lead, numbers.Integral) and isinstance(from_lead, numbers.Integral)):
        return float(result._transmission(to_lead, from_lead))
    if isinstance(to_lead, bool) or isinstance(from_lead, bool):
        raise TypeError(f"leads must be lead indices (int), got {to_lead!r}, {from_lead!r}")
    to_index, from_index = int(to_lead), int(from_lead)
    for lead in (to_index, from_index):
        if not 0 <= lead < result.num_leads:
            raise ValueError(f"lead {lead} does not exist; {_lead_range(result.num_leads)}")
    have_row, have_column = to_index in out_leads, from_index in in_leads
    if have_row and have_column:
        return float(result._transmission(to_index, from_index))
    all_but_one = result.num_leads - 1
    if result.current_conserving:
        t = result._transmission
        if have_row and len(in_leads) == all_but_one:
            return float(result.num_propagating(to_index) - sum(t(to_index, j) for j in in_leads))
        if have_column and len(out_leads) == all_but_one:
            return float(
                result.num_propagating(from_index) - sum(t(i, from_index) for i in out_leads)
            )
        if len(in_leads) == all_but_one and len(out_leads) == all_but_one:
            # Column j of every incoming lead gives T[to, j]; the row of `to` then gives
            # T[to, from].
            into_row = sum(
                result.num_propagating(j) - sum(t(i, j) for i in out_leads) for j in in_leads
            )
            return float(result.num_propagating(to_index) - into_row)
    # Not inferable: the block's own error names the lead that was not computed.
    return float(result._transmission(to_index, from_index))


def _transmission_matrix(result: Any) -> NDArray[np.float64]:
    size = result.num_leads
    out = np.empty((size, size))
    try:
        for i in range(size):
            for j in range(size):
                out[i, j] = result.transmission(i, j)
    except ValueError as exc:
        raise ValueError(
            f"the transmission matrix needs the S-matrix of all leads (or, with current "
            f"conservation, of all but one); this one has in_leads = {list(result._in_offsets)} "
            f"and out_leads = {list(result._out_offsets)} ({exc})"
        ) from None
    return out


@dataclass(frozen=True, eq=False)
class GreensFunction:
    """Retarded Green's function between the interfaces of the leads, at one energy.

    ``G = (E - H - sum_l Sigma_l)^-1`` restricted to the system orbitals that the leads
    ``out_leads`` (rows) and ``in_leads`` (columns) attach to, with the leads' self-energies.
    Transmissions follow from the Fisher-Lee relation (Caroli formula)
    ``T[i, j] = Tr[Gamma_i G_ij Gamma_j G_ij^dagger]`` with
    ``Gamma = i (Sigma - Sigma^dagger)``, and the reflection from
    ``S_ii = -1 + i W_i^dagger G_ii W_i`` (``Gamma_i = W_i W_i^dagger``):
    ``T[i, i] = N_i + 2 Im Tr[Gamma_i G_ii] + Tr[Gamma_i G_ii Gamma_i G_ii^dagger]``.
    The same block interface as :class:`SMatrix` (Kwant's ``GreensFunction``).

    Parameters
    ----------
    data : (n_out, n_in) array_like
        ``G`` between the interface orbitals of ``out_leads`` (rows, lead by lead) and of
        ``in_leads`` (columns), in inverse energy units.
    energy : float
        Energy at which ``G`` was computed.
    lead_info : sequence of (n_l, n_l) arrays
        Retarded self-energy of every lead on its interface orbitals (energy units).
    in_leads, out_leads : sequence of int, optional
        Leads whose interfaces the columns and rows of ``data`` cover, in that order; all
        leads by default.
    spin_degeneracy : {1, 2}, optional
        Multiplicity of each channel in :meth:`conductance_matrix`.
    current_conserving : bool, optional
        Infer transmissions of a lead left out from the sum rules (see
        :meth:`SMatrix.transmission`).

    Examples
    --------
    A lone site (energy 0) between two wide-band leads, ``Sigma = -i gamma / 2`` each, at
    ``E = 0``: ``G = 1 / (i gamma)`` and ``T = gamma^2 |G|^2 = 1``.

    >>> gf = GreensFunction(data=[[-1j]], energy=0.0, lead_info=[[[-0.5j]], [[-0.5j]]],
    ...                     in_leads=[0], out_leads=[1])
    >>> round(gf.transmission(1, 0), 12)
    1.0
    """

    data: NDArray[np.complex128]
    energy: float
    lead_info: tuple[NDArray[np.complex128], ...]
    in_leads: tuple[int, ...] | None = None
    out_leads: tuple[int, ...] | None = None
    spin_degeneracy: int = 1
    current_conserving: bool = False
    _in_offsets: dict[int, int] = field(init=False, repr=False)
    _out_offsets: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "current_conserving", bool(self.current_conserving))
        info = []
        for i, sigma in enumerate(self.lead_info):
            matrix = np.array(sigma, dtype=complex)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise ValueError(
                    f"lead_info[{i}] must be a square self-energy matrix, got shape {matrix.shape}"
                )
            matrix.flags.writeable = False
            info.append(matrix)
        count = len(info)
        in_leads = SMatrix._lead_list(self.in_leads, count, "in_leads")
        out_leads = SMatrix._lead_list(self.out_leads, count, "out_leads")
        data = np.array(self.data, dtype=complex)
        want = (
            sum(info[i].shape[0] for i in out_leads),
            sum(info[i].shape[0] for i in in_leads),
        )
        if data.shape != want:
            raise ValueError(
                f"data must have shape {want} (interface orbitals of out_leads x in_leads), "
                f"got {data.shape}"
            )
        data.flags.writeable = False
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "energy", float(self.energy))
        object.__setattr__(self, "lead_info", tuple(info))
        object.__setattr__(self, "in_leads", in_leads)
        object.__setattr__(self, "out_leads", out_leads)
        object.__setattr__(self, "spin_degeneracy", _checks.spin_degeneracy(self.spin_degeneracy))
        for name, leads in (("_in_offsets", in_leads), ("_out_offsets", out_leads)):
            offsets, start = {}, 0
            for lead in leads:
                offsets[lead] = start
                start += info[lead].shape[0]
            object.__setattr__(self, name, offsets)

    @property
    def num_leads(self) -> int:
        """Number of leads of the system."""
        return len(self.lead_info)

    def _index(self, lead: Any, role: str) -> int:
        if not _is_integer(lead):
            raise TypeError(f"{role} must be a lead index (int), got {lead!r}")
        if not 0 <= int(lead) < self.num_leads:
            raise ValueError(f"lead {lead} does not exist; {_lead_range(self.num_leads)}")
        return int(lead)

    def _block(self, to_lead: Any, from_lead: Any) -> NDArray[np.complex128]:
        to_index = self._index(to_lead, "to_lead")
        from_index = self._index(from_lead, "from_lead")
        if to_index not in self._out_offsets:
            raise ValueError(
                f"lead {to_index} was not computed as an outgoing lead; out_leads = "
                f"{list(self._out_offsets)}"
            )
        if from_index not in self._in_offsets:
            raise ValueError(
                f"lead {from_index} was not computed as an incoming lead; in_leads = "
                f"{list(self._in_offsets)}"
            )
        row, col = self._out_offsets[to_index], self._in_offsets[from_index]
        rows = slice(row, row + self.lead_info[to_index].shape[0])
        cols = slice(col, col + self.lead_info[from_index].shape[0])
        return self.data[rows, cols]

    def _gamma(self, lead: int) -> NDArray[np.complex128]:
        sigma = self.lead_info[lead]
        return np.asarray(1j * (sigma - sigma.conj().T))

    def num_propagating(self, lead: int) -> int:
        """Open channels of a lead: the nonzero eigenvalues of its ``Gamma``.

        Parameters
        ----------
        lead : int

        Returns
        -------
        int
        """
        index = self._index(lead, "lead")
        gamma = self._gamma(index)
        if gamma.size == 0:
            return 0
        # Relative to the self-energy, not to Gamma: a closed lead's Gamma is pure rounding.
        tolerance = _CHANNEL_TOLERANCE * float(np.max(np.abs(self.lead_info[index])))
        return int(np.sum(np.linalg.eigvalsh(gamma) > tolerance))

    def submatrix(self, to_lead: int, from_lead: int) -> NDArray[np.complex128]:
        """Block of ``G`` from the interface of ``from_lead`` to that of ``to_lead``.

        Returns
        -------
        (n_to, n_from) complex ndarray
            Inverse energy units.
        """
        return np.array(self._block(to_lead, from_lead))

    def _a_ttdagger_a_inv(self, to_lead: int, from_lead: int) -> NDArray[np.complex128]:
        """``Gamma_to G Gamma_from G^dagger``, whose trace is the transmission (Caroli)."""
        block = self._block(to_lead, from_lead)
        return np.asarray(
            self._gamma(int(to_lead)) @ block @ self._gamma(int(from_lead)) @ block.conj().T
        )

    def _transmission(self, to_lead: int, from_lead: int) -> float:
        result = float(np.trace(self._a_ttdagger_a_inv(to_lead, from_lead)).real)
        if int(to_lead) == int(from_lead):
            gamma = self._gamma(int(to_lead))
            block = self._block(to_lead, from_lead)
            result += 2 * float(np.trace(gamma @ block).imag) + self.num_propagating(to_lead)
        return result

    def transmission(self, to_lead: int, from_lead: int) -> float:
        """Transmission from ``from_lead`` into ``to_lead`` (reflection when equal).

        A lead left out of ``out_leads`` or ``in_leads`` is inferred from the sum rules as in
        :meth:`SMatrix.transmission`.

        Returns
        -------
        float
            Dimensionless.
        """
        return _transmission_or_inferred(self, to_lead, from_lead)

    def transmission_matrix(self) -> NDArray[np.float64]:
        """Transmission matrix ``T[i, j]`` from lead ``j`` into lead ``i``, shape (n, n)."""
        return _transmission_matrix(self)

    def conductance_matrix(self, *, spin_degeneracy: int | None = None) -> NDArray[np.float64]:
        """Büttiker conductance matrix in units of ``e^2/h`` (as for an S-matrix).

        Returns
        -------
        (n_leads, n_leads) float ndarray
        """
        if spin_degeneracy is None:
            spin_degeneracy = self.spin_degeneracy
        g_s = _checks.spin_degeneracy(spin_degeneracy)
        transmission = self.transmission_matrix()
        channels = np.array([self.num_propagating(i) for i in range(self.num_leads)], float)
        return float(g_s) * (np.diag(channels) - transmission)
