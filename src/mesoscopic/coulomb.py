"""Coulomb blockade: sequential tunnelling through a quantum dot (orthodox theory).

.. warning::

   **Sequential tunnelling only. Cotunnelling is not included.** Every current here
   comes from first-order (golden-rule) tunnelling of single electrons, which is
   valid for weak coupling, ``Gamma << kT`` (and tunnel conductances ``<< e^2/h``).
   Inside a Coulomb diamond the current computed here is thermally activated and
   exponentially small; a real dot carries the (larger, power-law) elastic and
   inelastic cotunnelling current there, which this module does not compute. The
   lifetime broadening of the levels is neglected too: peaks are thermally
   broadened only, so for ``kT <~ Gamma`` use coherent resonant tunnelling
   (:func:`mesoscopic.analytic.breit_wigner_transmission`) instead.

Two models of the dot
---------------------
:class:`QuantumDot`
    The constant-interaction model with a discrete spectrum: orbital levels
    ``eps_k``, each holding up to ``degeneracy[k]`` electrons (1: spinless or
    spin-resolved, 2: spin-degenerate; no exchange), coupled to the leads with
    broadenings ``Gamma[j, k]``. The master equation runs over all occupation
    configurations of the ``M = sum(degeneracy)`` spin-orbitals (``2**M`` many-body
    states), without relaxation inside the dot. Valid for any ratio of ``kT`` to the
    level spacing. Cost grows as ``4**M`` per point: a 200 x 200 stability diagram of
    16 states takes about a second, of 64 states several seconds; ``M <= 12``.
:class:`MetallicDot`
    The orthodox model of a metallic island (level spacing ``<< kT``): only the
    charge ``N`` is tracked, and junction ``j`` has a tunnel conductance ``G_j``.

Conventions and units
---------------------
Energies, ``kT`` and the broadenings ``Gamma`` share one unit of the user's choice.
Leads are described by their electrochemical potentials ``mu_j`` (energies; a lead
at voltage ``V_j`` has ``mu_j = -e V_j``); ``bias`` is ``mu_0 - mu_1``. The gate is
``gate = e V_g``, the gate voltage times the elementary charge (an energy), so a more
positive gate attracts electrons.

Electrostatics. With capacitances ``C_j`` to the leads, ``C_g`` to the gate and
``C_0`` to ground, ``C = sum_j C_j + C_g + C_0`` and ``E_C = e^2/C``. The lever arms
are ``alpha_j = C_j / C`` and ``alpha_g = C_g / C``. The many-body energy of a state
with ``N`` electrons occupying spin-orbitals ``{p}`` is

    E = sum_p eps_p + E_C (N - n_g)^2 / 2 + N sum_j alpha_j mu_j,
    n_g = C_g V_g / e = alpha_g gate / E_C,

up to terms independent of ``N``: the potential energy of an electron on the dot
shifts by ``(C_L mu_L + C_R mu_R)/C - (C_g/C) e V_g``, that is, the dot potential
follows ``(C_L V_L + C_R V_R + C_g V_g)/C``. Adding the N-th electron into
spin-orbital ``p`` costs ``eps_p + E_C (N - 1/2) - alpha_g gate + sum_j alpha_j mu_j``.

Rates. Through lead ``j`` an electron enters an empty spin-orbital of a
:class:`QuantumDot` with rate ``(Gamma[j, k] / hbar) f(dE - mu_j)`` and leaves with
``(Gamma[j, k] / hbar) (1 - f(dE - mu_j))``, where ``dE`` is the energy cost above and
``f`` the Fermi function. For a :class:`MetallicDot` the golden rule summed over the
continuum of island and lead states gives the orthodox rate for a tunnelling event
that costs energy ``x`` (``x < 0``: energy is gained)

    Gamma_j(x) = (G_j / e^2) x / (exp(x / kT) - 1),

with ``G_j = g_j e^2/h`` (``g_j`` the junction conductance in units of ``e^2/h``):
``h Gamma_j(x) = g_j x / (exp(x/kT) - 1)``, an energy; at ``kT = 0`` it is
``g_j max(-x, 0)``, the ohmic rate ``|x| / (e^2 R_j)``.

Results. Currents are particle currents of electrons *entering the dot from each
lead*, in units of ``(e/h)`` times the energy unit (``e * rate``, with rates written
as ``h * rate`` in the energy unit); for energies in meV one unit is
``e^2/h x 1 mV = 38.74 nA``. The electric current carries the sign of the electron
charge, -e. In the stationary state the lead currents sum to zero. Conductances are
in units of ``e^2/h``: ``G_ij = dI_i / dmu_j``.

Examples
--------
A single spinless level at its degeneracy point, ``kT = 10 Gamma``:

>>> dot = QuantumDot([0.0], [[0.001], [0.001]], charging_energy=1.0)
>>> gate = degeneracy_gates(dot)[0]
>>> round(float(linear_conductance(dot, gate=gate, kT=0.01)), 6)  # (pi / 2kT) Gamma/2
0.07854

References
----------
C. W. J. Beenakker, Phys. Rev. B 44, 1646 (1991); I. O. Kulik and R. I. Shekhter,
Sov. Phys. JETP 41, 308 (1975); D. V. Averin and K. K. Likharev, in *Mesoscopic
Phenomena in Solids* (1991); L. P. Kouwenhoven et al., in *Mesoscopic Electron
Transport* (1997).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from . import _checks, landauer

__all__ = [
    "MetallicDot",
    "QuantumDot",
    "StabilityDiagram",
    "StationaryState",
    "addition_energies",
    "conductance_matrix",
    "current",
    "degeneracy_gates",
    "diamond_edge_slopes",
    "electrochemical_potentials",
    "linear_conductance",
    "stability_diagram",
    "stationary_state",
]

# Why the linear conductance of a dot needs kT > 0 (the message of the check).
_KT_ZERO = "for the linear conductance (sequential-tunnelling peaks are delta functions at kT = 0)"

# Largest number of spin-orbitals of a QuantumDot: 2**12 many-body states already
# need a 4096 x 4096 rate matrix per bias point.
_MAX_SPIN_ORBITALS = 12

# Thermal factors below this are raised to it in the QuantumDot rate matrix. At
# kT -> 0 they underflow to zero, which would leave degenerate ground states (spin up
# and down of one electron) without any exit and the stationary state undetermined;
# a common floor splits them evenly, as the kT -> 0 limit does. It changes
# probabilities and currents by ~1e-200 of the tunnel-rate scale: currents that small
# (deep in blockade at kT -> 0) are zero to all purposes, not meaningful numbers.
_THERMAL_FLOOR = 1e-200

# Floor for log-rates of the MetallicDot charge chain, for the same reason.
_LOG_RATE_FLOOR = -1.0e4

# Charge states kept beyond the bias window: states costing more than this many kT
# have weights below exp(-40) ~ 4e-18.
_THERMAL_WINDOW_KT = landauer.THERMAL_WINDOW_KT
_MAX_CHARGE_STATES = 4001

# Batch size of the dense solves: about this many float64 numbers per chunk.
_CHUNK_NUMBERS = 1 << 22


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _scalar(value: Any, name: str) -> float:
    arr = _checks.real_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single number, got an array of shape {arr.shape}")
    return float(arr)


def _lever_arms(
    gate_lever_arm: Any, lead_lever_arms: Any, n_leads: int
) -> tuple[float, NDArray[np.float64]]:
    alpha_g = _scalar(gate_lever_arm, "gate_lever_arm")
    if not 0 < alpha_g <= 1:
        raise ValueError(
            f"gate_lever_arm must be in (0, 1] (C_g / C, the gate's share of the dot "
            f"capacitance), got {alpha_g!r}"
        )
    if lead_lever_arms is None:
        alphas = np.zeros(n_leads)
    else:
        alphas = _checks.real_array(lead_lever_arms, "lead_lever_arms")
        if alphas.shape != (n_leads,):
            raise ValueError(
                f"lead_lever_arms must have shape ({n_leads},), one per lead, "
                f"got shape {alphas.shape}"
            )
        if np.any(alphas < 0):
            raise ValueError(
                f"lead_lever_arms must be >= 0 (C_j / C), got {float(alphas[alphas < 0][0])!r}"
            )
    total = alpha_g + float(alphas.sum())
    if total > 1 + 1e-12:
        raise ValueError(
            "gate_lever_arm + sum(lead_lever_arms) must be <= 1 (they are shares of the "
            f"total capacitance C), got {total!r}"
        )
    alphas = alphas.copy()
    alphas.flags.writeable = False
    return alpha_g, alphas


def _from_capacitances(
    lead_capacitances: Any, gate_capacitance: Any, self_capacitance: Any
) -> tuple[float, float, NDArray[np.float64]]:
    c_leads = _checks.positive(lead_capacitances, "lead_capacitances", allow_zero=True)
    if c_leads.ndim != 1 or c_leads.size == 0:
        raise ValueError(
            "lead_capacitances must be a 1-D array with one capacitance per lead, "
            f"got shape {c_leads.shape}"
        )
    c_gate = _scalar(gate_capacitance, "gate_capacitance")
    if not c_gate > 0:
        raise ValueError(f"gate_capacitance must be > 0, got {c_gate!r}")
    c_self = _scalar(self_capacitance, "self_capacitance")
    if c_self < 0:
        raise ValueError(f"self_capacitance must be >= 0, got {c_self!r}")
    total = float(c_leads.sum()) + c_gate + c_self
    return 1.0 / total, c_gate / total, c_leads / total


# --------------------------------------------------------------------------------------
# The two dot models
# --------------------------------------------------------------------------------------


class QuantumDot:
    """A quantum dot with discrete levels in the constant-interaction model.

    Immutable: the attributes are read-only and the arrays are not writeable.

    Parameters
    ----------
    levels : array_like, shape (K,)
        Orbital level energies ``eps_k`` (any energy unit), ``K >= 1``.
    couplings : array_like, shape (n_leads, K) or (n_leads,)
        Tunnel broadenings ``Gamma[j, k] >= 0`` of level k to lead j, energies
        (``hbar`` times the tunnelling rate out of the level into the lead, per spin
        state). A 1-D array gives every level the same broadening to each lead. Every
        level must couple to at least one lead.
    charging_energy : float
        ``E_C = e^2 / C >= 0``, the same energy unit.
    gate_lever_arm : float, optional
        ``alpha_g = C_g / C`` in (0, 1]; the default 1 makes ``gate`` shift the levels
        one to one.
    lead_lever_arms : array_like, shape (n_leads,), optional
        ``alpha_j = C_j / C >= 0``; default 0 (lead potentials do not move the dot).
        ``alpha_g + sum(alpha_j) <= 1``. They set the slopes of the Coulomb diamonds.
    degeneracy : int or array_like of int, shape (K,), optional
        Electrons each orbital level holds: 1 (spinless or spin-resolved, the
        default) or 2 (spin-degenerate); any positive integer is accepted (e.g. 4 for
        spin and valley). At most 12 spin-orbitals in total.

    See Also
    --------
    MetallicDot : the orthodox charge-only model for level spacing << kT.

    Examples
    --------
    Two spin-degenerate orbitals 0.3 apart with charging energy 1:

    >>> dot = QuantumDot([0.0, 0.3], [0.01, 0.02], charging_energy=1.0, degeneracy=2)
    >>> dot.n_leads, dot.n_levels, dot.n_states
    (2, 2, 16)
    >>> addition_energies(dot).round(3)  # E_C, E_C + 0.3, E_C
    array([1. , 1.3, 1. ])
    """

    def __init__(
        self,
        levels: ArrayLike,
        couplings: ArrayLike,
        *,
        charging_energy: float,
        gate_lever_arm: float = 1.0,
        lead_lever_arms: ArrayLike | None = None,
        degeneracy: int | ArrayLike = 1,
    ) -> None:
        eps = _checks.real_array(levels, "levels")
        if eps.ndim == 0:
            eps = eps.reshape(1)
        if eps.ndim != 1:
            raise ValueError(
                f"levels must be a 1-D array of level energies, got shape {eps.shape}"
            )
        if eps.size == 0:
            raise ValueError("levels must contain at least one level energy, got an empty array")
        n_levels = eps.size
        gamma = _checks.real_array(couplings, "couplings")
        if gamma.ndim == 1:
            gamma = np.repeat(gamma[:, None], n_levels, axis=1)
        if gamma.ndim != 2 or gamma.shape[1] != n_levels or gamma.shape[0] == 0:
            raise ValueError(
                f"couplings must have shape (n_leads, {n_levels}) for {n_levels} level(s), "
                f"or (n_leads,), got shape {np.shape(couplings)}"
            )
        if np.any(gamma < 0):
            raise ValueError(
                "couplings must be >= 0 (hbar times a tunnelling rate), got "
                f"{float(gamma[gamma < 0][0])!r}"
            )
        uncoupled = np.flatnonzero(gamma.sum(axis=0) == 0)
        if uncoupled.size:
            raise ValueError(
                f"level {int(uncoupled[0])} is coupled to no lead (all its couplings are 0), "
                "so its occupation is undetermined in sequential tunnelling; remove it or "
                "give it a coupling > 0"
            )
        e_c = _scalar(charging_energy, "charging_energy")
        if e_c < 0:
            raise ValueError(f"charging_energy must be >= 0 (E_C = e^2/C), got {e_c!r}")
        deg = np.asarray(degeneracy)
        if deg.dtype == bool or not np.issubdtype(deg.dtype, np.integer):
            raise TypeError(
                "degeneracy must be an integer or an array of integers (1 spinless, "
                f"2 spin-degenerate), got {degeneracy!r}"
            )
        deg = np.broadcast_to(deg, (n_levels,)) if deg.ndim == 0 else deg
        if deg.shape != (n_levels,):
            raise ValueError(
                f"degeneracy must be an integer or have shape ({n_levels},), got shape {deg.shape}"
            )
        if np.any(deg < 1):
            raise ValueError(f"degeneracy must be >= 1, got {int(deg[deg < 1][0])}")
        if int(deg.sum()) > _MAX_SPIN_ORBITALS:
            raise ValueError(
                f"this dot has {int(deg.sum())} spin-orbitals (sum of degeneracy); the "
                f"exact master equation is limited to {_MAX_SPIN_ORBITALS} "
                f"(2**{_MAX_SPIN_ORBITALS} many-body states); use MetallicDot for many "
                "levels with spacing << kT"
            )
        alpha_g, alphas = _lever_arms(gate_lever_arm, lead_lever_arms, gamma.shape[0])
        for arr in (eps, gamma):
            arr.flags.writeable = False
        deg = deg.astype(np.int64)
        deg.flags.writeable = False
        self._levels = eps
        self._couplings = gamma
        self._charging_energy = e_c
        self._gate_lever_arm = alpha_g
        self._lead_lever_arms = alphas
        self._degeneracy = deg

    @classmethod
    def from_capacitances(
        cls,
        levels: ArrayLike,
        couplings: ArrayLike,
        *,
        lead_capacitances: ArrayLike,
        gate_capacitance: float,
        self_capacitance: float = 0.0,
        degeneracy: int | ArrayLike = 1,
    ) -> QuantumDot:
        """Build a dot from its capacitances.

        Parameters
        ----------
        levels, couplings, degeneracy
            As for :class:`QuantumDot`.
        lead_capacitances : array_like, shape (n_leads,)
            ``C_j >= 0`` in units of ``e^2`` per energy unit (for energies in meV,
            one unit is ``e^2 / meV = 160.2 aF``), so that ``E_C = 1 / C``.
        gate_capacitance : float
            ``C_g > 0``, same unit.
        self_capacitance : float, optional
            ``C_0 >= 0`` to ground, same unit.

        Examples
        --------
        >>> dot = QuantumDot.from_capacitances([0.0], [0.01, 0.01],
        ...                                    lead_capacitances=[0.3, 0.2],
        ...                                    gate_capacitance=0.5)
        >>> dot.charging_energy, dot.gate_lever_arm, dot.lead_lever_arms.tolist()
        (1.0, 0.5, [0.3, 0.2])
        """
        e_c, alpha_g, alphas = _from_capacitances(
            lead_capacitances, gate_capacitance, self_capacitance
        )
        return cls(
            levels,
            couplings,
            charging_energy=e_c,
            gate_lever_arm=alpha_g,
            lead_lever_arms=alphas,
            degeneracy=degeneracy,
        )

    @property
    def levels(self) -> NDArray[np.float64]:
        """Orbital level energies ``eps_k``, shape (K,)."""
        return self._levels

    @property
    def couplings(self) -> NDArray[np.float64]:
        """Broadenings ``Gamma[j, k]`` (energies), shape (n_leads, K)."""
        return self._couplings

    @property
    def charging_energy(self) -> float:
        """``E_C = e^2 / C``."""
        return self._charging_energy

    @property
    def gate_lever_arm(self) -> float:
        """``alpha_g = C_g / C``."""
        return self._gate_lever_arm

    @property
    def lead_lever_arms(self) -> NDArray[np.float64]:
        """``alpha_j = C_j / C``, shape (n_leads,)."""
        return self._lead_lever_arms

    @property
    def degeneracy(self) -> NDArray[np.int64]:
        """Electrons each level holds, shape (K,)."""
        return self._degeneracy

    @property
    def n_leads(self) -> int:
        """Number of leads."""
        return int(self._couplings.shape[0])

    @property
    def n_levels(self) -> int:
        """Number of orbital levels K."""
        return int(self._levels.size)

    @property
    def n_spin_orbitals(self) -> int:
        """Number of single-particle states ``M = sum(degeneracy)``."""
        return int(self._degeneracy.sum())

    @property
    def n_states(self) -> int:
        """Number of many-body states ``2**M`` of the master equation."""
        return 1 << self.n_spin_orbitals

    def __repr__(self) -> str:
        return (
            f"QuantumDot(levels={self._levels.tolist()}, couplings={self._couplings.tolist()}, "
            f"charging_energy={self._charging_energy!r}, "
            f"gate_lever_arm={self._gate_lever_arm!r}, "
            f"lead_lever_arms={self._lead_lever_arms.tolist()}, "
            f"degeneracy={self._degeneracy.tolist()})"
        )

    @cached_property
    def _spin_orbital_level(self) -> NDArray[np.int64]:
        """Orbital level of each spin-orbital, shape (M,), level-major order."""
        return np.repeat(np.arange(self.n_levels), self._degeneracy)

    @cached_property
    def _configurations(self) -> NDArray[np.bool_]:
        """Occupation of spin-orbital p in many-body state s (bit p of s), shape (S, M)."""
        states = np.arange(self.n_states)[:, None]
        return ((states >> np.arange(self.n_spin_orbitals)) & 1).astype(bool)

    @cached_property
    def _transitions(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Every one-electron addition ``src -> dst`` into spin-orbital p, shape (T,) each."""
        occupied = self._configurations
        src, orbital = np.nonzero(~occupied)
        dst = src | (1 << orbital)
        return src, dst, orbital


class MetallicDot:
    """A metallic island in the orthodox model (level spacing << kT): charge states only.

    Immutable: the attributes are read-only and the arrays are not writeable.

    Parameters
    ----------
    conductances : array_like, shape (n_leads,)
        Tunnel conductances ``G_j >= 0`` of the junctions in units of ``e^2/h`` (the
        orthodox theory needs ``G_j << e^2/h``), at least one > 0.
    charging_energy : float
        ``E_C = e^2 / C > 0``, any energy unit.
    gate_lever_arm : float, optional
        ``alpha_g = C_g / C`` in (0, 1], default 1.
    lead_lever_arms : array_like, shape (n_leads,), optional
        ``alpha_j = C_j / C >= 0``, default 0.

    Examples
    --------
    >>> dot = MetallicDot([0.1, 0.1], charging_energy=1.0)
    >>> degeneracy_gates(dot, charges=[1, 2])  # E_C (N - 1/2) / alpha_g
    array([0.5, 1.5])
    >>> round(float(linear_conductance(dot, gate=0.5, kT=0.02)), 6)  # G_L G_R / 2(G_L + G_R)
    0.025
    """

    __slots__ = ("_charging_energy", "_conductances", "_gate_lever_arm", "_lead_lever_arms")

    def __init__(
        self,
        conductances: ArrayLike,
        *,
        charging_energy: float,
        gate_lever_arm: float = 1.0,
        lead_lever_arms: ArrayLike | None = None,
    ) -> None:
        g = _checks.real_array(conductances, "conductances")
        if g.ndim != 1 or g.size == 0:
            raise ValueError(
                "conductances must be a 1-D array with one conductance per lead, got "
                f"shape {g.shape}"
            )
        if np.any(g < 0):
            raise ValueError(
                f"conductances must be >= 0 (in units of e^2/h), got {float(g[g < 0][0])!r}"
            )
        if not np.any(g > 0):
            raise ValueError(
                "conductances must include at least one junction with conductance > 0, "
                f"got {g.tolist()}"
            )
        e_c = _scalar(charging_energy, "charging_energy")
        if e_c <= 0:
            raise ValueError(
                f"charging_energy must be > 0 for a MetallicDot (E_C = e^2/C), got {e_c!r}"
            )
        alpha_g, alphas = _lever_arms(gate_lever_arm, lead_lever_arms, g.size)
        g.flags.writeable = False
        self._conductances = g
        self._charging_energy = e_c
        self._gate_lever_arm = alpha_g
        self._lead_lever_arms = alphas

    @classmethod
    def from_capacitances(
        cls,
        conductances: ArrayLike,
        *,
        lead_capacitances: ArrayLike,
        gate_capacitance: float,
        self_capacitance: float = 0.0,
    ) -> MetallicDot:
        """Build an island from its capacitances (units of ``e^2`` per energy unit).

        See :meth:`QuantumDot.from_capacitances`.

        Examples
        --------
        >>> dot = MetallicDot.from_capacitances([0.1, 0.1], lead_capacitances=[1.0, 1.0],
        ...                                     gate_capacitance=2.0)
        >>> dot.charging_energy, dot.gate_lever_arm
        (0.25, 0.5)
        """
        e_c, alpha_g, alphas = _from_capacitances(
            lead_capacitances, gate_capacitance, self_capacitance
        )
        return cls(
            conductances, charging_energy=e_c, gate_lever_arm=alpha_g, lead_lever_arms=alphas
        )

    @property
    def conductances(self) -> NDArray[np.float64]:
        """Junction conductances ``G_j`` in e^2/h, shape (n_leads,)."""
        return self._conductances

    @property
    def charging_energy(self) -> float:
        """``E_C = e^2 / C``."""
        return self._charging_energy

    @property
    def gate_lever_arm(self) -> float:
        """``alpha_g = C_g / C``."""
        return self._gate_lever_arm

    @property
    def lead_lever_arms(self) -> NDArray[np.float64]:
        """``alpha_j = C_j / C``, shape (n_leads,)."""
        return self._lead_lever_arms

    @property
    def n_leads(self) -> int:
        """Number of leads."""
        return int(self._conductances.size)

    def __repr__(self) -> str:
        return (
            f"MetallicDot(conductances={self._conductances.tolist()}, "
            f"charging_energy={self._charging_energy!r}, "
            f"gate_lever_arm={self._gate_lever_arm!r}, "
            f"lead_lever_arms={self._lead_lever_arms.tolist()})"
        )


Dot = QuantumDot | MetallicDot


def _check_dot(dot: Any) -> None:
    if not isinstance(dot, (QuantumDot, MetallicDot)):
        raise TypeError(f"dot must be a QuantumDot or a MetallicDot, got {type(dot).__name__}")


def _check_two_lead_dot(dot: Any, function: str, advice: str = "") -> None:
    _check_dot(dot)
    if dot.n_leads != 2:
        raise ValueError(
            f"{function} needs a two-lead dot; this dot has {dot.n_leads} lead(s){advice}"
        )


# --------------------------------------------------------------------------------------
# Thermal factors
# --------------------------------------------------------------------------------------


def _reduced_energy(energy: NDArray[np.float64], kT: NDArray[np.float64]) -> NDArray[np.float64]:
    """``energy / kT``, with the kT = 0 limit +-inf (and 0 at energy = 0)."""
    hot = kT > 0
    with np.errstate(over="ignore"):  # beyond the float range the ratio is +-inf, as meant
        hot_ratio = energy / np.where(hot, kT, 1.0)
    cold = np.where(energy > 0, np.inf, np.where(energy < 0, -np.inf, 0.0))
    return np.where(hot, hot_ratio, cold)


def _fermi_pair(
    energy: NDArray[np.float64], kT: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``f(E)`` and ``1 - f(E)``, each accurate to relative precision far in its tail."""
    u = _reduced_energy(energy, kT)
    return expit(-u), expit(u)


def _log_orthodox(energy: NDArray[np.float64], kT: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(x / (exp(x/kT) - 1))``: log of the orthodox rate per unit conductance (x energy).

    Written as ``log|x| - log(1 - exp(-|u|)) - max(u, 0)`` with ``u = x/kT``, which holds
    for either sign of x and stays finite (or -inf) for any ``|u|`` up to infinity.
    """
    hot = kT > 0
    safe_kT = np.where(hot, kT, 1.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        u = energy / safe_kT
        a = np.abs(u)
        near = a < 1e-8
        far_a = np.where(near, 1.0, a)
        log_far = np.log(np.abs(energy)) - np.log(-np.expm1(-far_a)) - np.maximum(u, 0.0)
        # x / (exp(u) - 1) = kT (1 - u/2 + O(u^2)) near u = 0.
        log_hot = np.where(near, np.log(safe_kT) - 0.5 * u, log_far)
        log_cold = np.log(np.maximum(-energy, 0.0))
    return np.maximum(np.where(hot, log_hot, log_cold), _LOG_RATE_FLOOR)


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def _lead_potentials(
    dot: Dot,
    lead_potentials: ArrayLike | None,
    bias: ArrayLike | None,
    bias_fraction: float,
) -> NDArray[np.float64]:
    """Electrochemical potentials of the leads, shape (..., n_leads)."""
    n_leads = dot.n_leads
    if lead_potentials is not None and bias is not None:
        raise ValueError("give either lead_potentials= or bias=, not both")
    if bias is not None:
        if n_leads != 2:
            raise ValueError(
                f"bias= needs a two-lead dot; this dot has {n_leads} lead(s), pass "
                "lead_potentials= with one potential per lead instead"
            )
        fraction = _scalar(bias_fraction, "bias_fraction")
        if not 0 <= fraction <= 1:
            raise ValueError(
                f"bias_fraction must be in [0, 1] (share of the bias on lead 0), got {fraction!r}"
            )
        v = _checks.real_array(bias, "bias")
        return np.stack([fraction * v, (fraction - 1.0) * v], axis=-1)
    if lead_potentials is None:
        return np.zeros(n_leads)
    mu = _checks.real_array(lead_potentials, "lead_potentials")
    if mu.ndim == 0 or mu.shape[-1] != n_leads:
        raise ValueError(
            f"lead_potentials must have shape (..., {n_leads}), one electrochemical potential "
            f"per lead, got shape {mu.shape}"
        )
    return mu


def _batch(
    mu: NDArray[np.float64], gate: ArrayLike, kT: ArrayLike
) -> tuple[tuple[int, ...], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Broadcast and flatten: (batch shape, mu (B, n_leads), gate (B,), kT (B,))."""
    g = _checks.real_array(gate, "gate")
    t = _checks.temperature(kT, "kT")
    try:
        shape = np.broadcast_shapes(g.shape, t.shape, mu.shape[:-1])
    except ValueError:
        raise ValueError(
            f"gate (shape {g.shape}), kT (shape {t.shape}) and the lead potentials (batch "
            f"shape {mu.shape[:-1]}) do not broadcast together"
        ) from None
    mu_b = np.broadcast_to(mu, (*shape, mu.shape[-1])).reshape(-1, mu.shape[-1])
    g_b = np.broadcast_to(g, shape).reshape(-1)
    t_b = np.broadcast_to(t, shape).reshape(-1)
    return shape, mu_b, g_b, t_b


# --------------------------------------------------------------------------------------
# Master equations
# --------------------------------------------------------------------------------------


def _stationary_from_rates(rates: NDArray[np.float64]) -> NDArray[np.float64]:
    """Stationary probabilities of rate matrices ``W[b, to, from]`` (off-diagonal part).

    The columns are first divided by each state's total exit rate, turning W into the
    generator of the embedded jump chain whose entries are branching ratios in [0, 1];
    this keeps the linear solve well scaled however small the rates are (kT -> 0).
    Its stationary vector ``q = P * exit_rate`` is found by a linear solve with one
    balance equation replaced by the normalization ``sum(q) = 1``.
    """
    n_batch, n_states, _ = rates.shape
    exit_rate = rates.sum(axis=1)  # (B, S)
    generator = rates / exit_rate[:, None, :]
    diagonal = np.arange(n_states)
    generator[:, diagonal, diagonal] = -1.0
    generator[:, 0, :] = 1.0
    rhs = np.zeros((n_batch, n_states, 1))
    rhs[:, 0, 0] = 1.0
    flux = np.linalg.solve(generator, rhs)[:, :, 0]
    flux = np.maximum(flux, 0.0)  # rounding-level negatives
    scaled_exit = exit_rate / exit_rate.max(axis=1, keepdims=True)
    probabilities = flux / np.maximum(scaled_exit, 1e-300)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _quantum_dot_chunk(
    dot: QuantumDot, mu: NDArray[np.float64], gate: NDArray[np.float64], kT: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probabilities (B, S) and lead currents (B, n_leads) of a QuantumDot."""
    src, dst, orbital = dot._transitions
    level = dot._spin_orbital_level[orbital]  # (T,)
    n_src = dot._configurations.sum(axis=1)[src]
    base = dot.levels[level] + dot.charging_energy * (n_src + 0.5)  # (T,)
    shift = -dot.gate_lever_arm * gate + mu @ dot.lead_lever_arms  # (B,)
    cost = base[None, :] + shift[:, None]  # (B, T)
    # h * rate = 2 pi Gamma f: rates in energy units, so currents come out in e/h x energy.
    gamma = 2.0 * np.pi * dot.couplings[:, level]  # (n_leads, T)
    f_in, f_out = _fermi_pair(cost[:, None, :] - mu[:, :, None], kT[:, None, None])
    f_in = np.maximum(f_in, _THERMAL_FLOOR)
    f_out = np.maximum(f_out, _THERMAL_FLOOR)
    rate_in = gamma[None] * f_in  # (B, n_leads, T)
    rate_out = gamma[None] * f_out
    n_states = dot.n_states
    rates = np.zeros((mu.shape[0], n_states, n_states))
    rates[:, dst, src] = rate_in.sum(axis=1)
    rates[:, src, dst] = rate_out.sum(axis=1)
    probabilities = _stationary_from_rates(rates)
    flow = rate_in * probabilities[:, None, src] - rate_out * probabilities[:, None, dst]
    return probabilities, flow.sum(axis=2)


def _charge_window_size(dot: MetallicDot, mu: NDArray[np.float64], kT: NDArray[np.float64]) -> int:
    """Half-width of the window of charge states worth keeping around the stable one."""
    e_c = dot.charging_energy
    spread = float((mu.max(axis=1) - mu.min(axis=1)).max(initial=0.0))
    thermal = math.sqrt(2.0 * _THERMAL_WINDOW_KT * float(kT.max(initial=0.0)) / e_c)
    half = math.ceil(spread / (2.0 * e_c)) + math.ceil(thermal) + 2
    if 2 * half + 1 > _MAX_CHARGE_STATES:
        raise ValueError(
            f"the bias ({spread:g}) and kT ({float(kT.max()):g}) span more than "
            f"{_MAX_CHARGE_STATES} charge states of a dot with E_C = {e_c:g}; reduce them "
            "or raise charging_energy"
        )
    return half


def _charge_window(
    dot: MetallicDot, mu: NDArray[np.float64], gate: NDArray[np.float64], half: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Dot potential shift (B,) and the charges (B, 2 half + 1) kept for each point."""
    shift = -dot.gate_lever_arm * gate + mu @ dot.lead_lever_arms
    # Charge N is stable at zero bias where E_C (N -+ 1/2) + shift brackets mu.
    center = np.round((0.5 * (mu.max(axis=1) + mu.min(axis=1)) - shift) / dot.charging_energy)
    charges = center[:, None].astype(np.int64) + np.arange(-half, half + 1)[None, :]
    return shift, charges


def _metallic_chunk(
    dot: MetallicDot,
    mu: NDArray[np.float64],
    gate: NDArray[np.float64],
    kT: NDArray[np.float64],
    half: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Probabilities (B, S), charges (B, S) and lead currents (B, n_leads) of a MetallicDot."""
    shift, charges = _charge_window(dot, mu, gate, half)
    # Cost of N -> N + 1 for each lower state N of the chain, (B, S - 1).
    cost = dot.charging_energy * (charges[:, :-1] + 0.5) + shift[:, None]
    x = cost[:, None, :] - mu[:, :, None]  # (B, n_leads, S - 1)
    t = kT[:, None, None]
    with np.errstate(divide="ignore"):
        log_g = np.log(dot.conductances)[None, :, None]
    log_in = log_g + _log_orthodox(x, t)
    log_out = log_g + _log_orthodox(-x, t)
    # A birth-death chain is stationary only when each link carries zero net flow,
    # P(N+1) W_out(N+1) = P(N) W_in(N): the exact solution, no linear solve needed.
    log_ratio = np.logaddexp.reduce(log_in, axis=1) - np.logaddexp.reduce(log_out, axis=1)
    log_p = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(log_ratio, axis=1)], axis=1)
    probabilities = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    # Floored log-rates are below exp(-1e4): their exponentials are exactly 0.
    rate_in = np.exp(log_in)
    rate_out = np.exp(log_out)
    flow = rate_in * probabilities[:, None, :-1] - rate_out * probabilities[:, None, 1:]
    return probabilities, charges, flow.sum(axis=2)


def _chunks(n_batch: int, numbers_per_point: int) -> list[slice]:
    size = max(1, _CHUNK_NUMBERS // max(1, numbers_per_point))
    return [slice(i, min(i + size, n_batch)) for i in range(0, n_batch, size)]


@dataclass(frozen=True, eq=False)
class StationaryState:
    """Stationary solution of the sequential-tunnelling master equation.

    Attributes
    ----------
    probabilities : ndarray, shape (..., S)
        Probability of each many-body state (QuantumDot: occupation configurations;
        MetallicDot: charge states), non-negative and summing to 1.
    charges : ndarray of int, shape (S,) or (..., S)
        Electron number N of each state (broadcasts against `probabilities`).
    currents : ndarray, shape (..., n_leads)
        Particle current entering the dot from each lead, units of e/h x energy.
    configurations : ndarray of bool, shape (S, M), or None
        For a QuantumDot: occupation of each spin-orbital in each state (spin-orbitals
        ordered level by level); None for a MetallicDot.
    spin_orbital_levels : ndarray of int, shape (M,), or None
        For a QuantumDot: the orbital level of each spin-orbital.

    Examples
    --------
    >>> dot = QuantumDot([0.0], [[0.01], [0.01]], charging_energy=1.0)
    >>> state = stationary_state(dot, bias=2.0, gate=0.5, kT=0.01)
    >>> state.probabilities.round(6), float(state.mean_charge)
    (array([0.5, 0.5]), 0.5)
    """

    probabilities: NDArray[np.float64]
    charges: NDArray[np.int64]
    currents: NDArray[np.float64]
    configurations: NDArray[np.bool_] | None = None
    spin_orbital_levels: NDArray[np.int64] | None = None

    @property
    def mean_charge(self) -> NDArray[np.float64]:
        """Mean electron number ``<N>``, shape (...)."""
        return np.asarray((self.probabilities * self.charges).sum(axis=-1))

    @property
    def level_occupation(self) -> NDArray[np.float64]:
        """Mean number of electrons in each orbital level, shape (..., K) (QuantumDot only)."""
        if self.configurations is None or self.spin_orbital_levels is None:
            raise ValueError("level_occupation needs a QuantumDot; a MetallicDot has no levels")
        per_spin_orbital = self.probabilities @ self.configurations.astype(float)
        n_levels = int(self.spin_orbital_levels.max()) + 1
        one_hot = self.spin_orbital_levels[:, None] == np.arange(n_levels)[None, :]
        return np.asarray(per_spin_orbital @ one_hot.astype(float))


def stationary_state(
    dot: Dot,
    *,
    gate: ArrayLike,
    kT: ArrayLike,
    lead_potentials: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    bias_fraction: float = 0.5,
) -> StationaryState:
    """Solve the master equation for the stationary state of a Coulomb-blockaded dot.

    Sequential tunnelling only (see the module notes): valid for ``Gamma << kT``.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    gate : array_like, shape (...)
        ``e V_g``, gate voltage times e (energy unit); it lowers the dot's levels by
        ``gate_lever_arm * gate``.
    kT : array_like, shape (...)
        Thermal energy ``>= 0`` of the leads.
    lead_potentials : array_like, shape (..., n_leads), optional
        Electrochemical potentials ``mu_j`` of the leads; default all 0.
    bias : array_like, shape (...), optional
        Instead of `lead_potentials`, for two leads: ``mu_0 - mu_1``, with
        ``mu_0 = bias_fraction * bias`` and ``mu_1 = (bias_fraction - 1) * bias``.
    bias_fraction : float, optional
        Share of the bias on lead 0, in [0, 1]; 0.5 (default) is a symmetric bias,
        1 a biased lead 0 and a grounded lead 1.

    Returns
    -------
    StationaryState
        Probabilities, charges and lead currents, batch shape the broadcast of
        `gate`, `kT` and the lead potentials.

    Examples
    --------
    At zero bias a single level is occupied with the Fermi function of its addition
    energy ``eps + E_C/2 - gate``:

    >>> dot = QuantumDot([0.0], [[0.01], [0.02]], charging_energy=1.0)
    >>> state = stationary_state(dot, gate=0.5 + 0.01, kT=0.01)
    >>> round(float(state.mean_charge), 6)  # 1 / (exp(-1) + 1)
    0.731059
    """
    _check_dot(dot)
    mu = _lead_potentials(dot, lead_potentials, bias, bias_fraction)
    shape, mu_b, gate_b, kT_b = _batch(mu, gate, kT)
    n_batch = mu_b.shape[0]
    if isinstance(dot, QuantumDot):
        n_states = dot.n_states
        n_transitions = dot._transitions[0].size
        probabilities = np.empty((n_batch, n_states))
        currents = np.empty((n_batch, dot.n_leads))
        per_point = 2 * n_states**2 + 6 * dot.n_leads * n_transitions
        for part in _chunks(n_batch, per_point):
            probabilities[part], currents[part] = _quantum_dot_chunk(
                dot, mu_b[part], gate_b[part], kT_b[part]
            )
        return StationaryState(
            probabilities=probabilities.reshape(*shape, n_states),
            charges=dot._configurations.sum(axis=1).astype(np.int64),
            currents=currents.reshape(*shape, dot.n_leads),
            configurations=dot._configurations,
            spin_orbital_levels=dot._spin_orbital_level,
        )
    half = _charge_window_size(dot, mu_b, kT_b)
    n_states = 2 * half + 1
    probabilities = np.empty((n_batch, n_states))
    charge_table = np.empty((n_batch, n_states), dtype=np.int64)
    currents = np.empty((n_batch, dot.n_leads))
    for part in _chunks(n_batch, 8 * dot.n_leads * n_states):
        probabilities[part], charge_table[part], currents[part] = _metallic_chunk(
            dot, mu_b[part], gate_b[part], kT_b[part], half
        )
    return StationaryState(
        probabilities=probabilities.reshape(*shape, n_states),
        charges=charge_table.reshape(*shape, n_states),
        currents=currents.reshape(*shape, dot.n_leads),
    )


def current(
    dot: Dot,
    *,
    gate: ArrayLike,
    kT: ArrayLike,
    lead_potentials: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    bias_fraction: float = 0.5,
) -> NDArray[np.float64]:
    """Sequential-tunnelling current from each lead into the dot.

    Sequential tunnelling only, no cotunnelling: inside a Coulomb diamond the result
    is exponentially small in ``1/kT``. Valid for ``Gamma << kT``.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    gate, kT, lead_potentials, bias, bias_fraction
        As for :func:`stationary_state`.

    Returns
    -------
    ndarray, shape (..., n_leads)
        Particle current of electrons entering the dot from lead j, in units of
        ``e/h`` times the energy unit (38.74 nA for meV); they sum to zero over leads.

    Examples
    --------
    A level inside a large bias window carries ``2 pi Gamma_L Gamma_R / (Gamma_L +
    Gamma_R)``:

    >>> import numpy as np
    >>> dot = QuantumDot([0.0], [[0.01], [0.01]], charging_energy=1.0)
    >>> I = current(dot, bias=2.0, gate=0.5, kT=0.01)
    >>> np.round(I / (2 * np.pi * 0.005), 9) + 0.0
    array([ 1., -1.])
    """
    return stationary_state(
        dot,
        gate=gate,
        kT=kT,
        lead_potentials=lead_potentials,
        bias=bias,
        bias_fraction=bias_fraction,
    ).currents


# --------------------------------------------------------------------------------------
# Linear response
# --------------------------------------------------------------------------------------


def _gibbs_log_probabilities(
    energy: NDArray[np.float64], kT: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Log of the grand-canonical probabilities of states with energies (B, S) at kT (B,)."""
    excess = energy - energy.min(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # an infinite excess is a state of weight exactly 0
        log_w = -excess / kT[:, None]
    return np.asarray(log_w - np.logaddexp.reduce(log_w, axis=1, keepdims=True))


def _quantum_dot_link_weights(
    dot: QuantumDot, gate: NDArray[np.float64], kT: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``sum over states s without p of P_eq(s) f(E(s + p) - E(s)) / kT``, shape (B, M)."""
    occupied = dot._configurations
    n = occupied.sum(axis=1)
    orbital_energy = occupied.astype(float) @ dot.levels[dot._spin_orbital_level]  # (S,)
    energy = (
        orbital_energy[None, :]
        + 0.5 * dot.charging_energy * n[None, :] ** 2
        - dot.gate_lever_arm * gate[:, None] * n[None, :]
    )
    log_p = _gibbs_log_probabilities(energy, kT)
    src, dst, orbital = dot._transitions
    low = np.minimum(log_p[:, src], log_p[:, dst])
    high = np.maximum(log_p[:, src], log_p[:, dst])
    # P(s) f(dE) = P(s) P(s') / (P(s) + P(s')) = P_low / (1 + P_low / P_high).
    with np.errstate(invalid="ignore"):  # both weights 0: the link carries nothing
        link = np.exp(low) / (1.0 + np.exp(low - high))
    link = np.where(np.isneginf(high), 0.0, link) / kT[:, None]  # (B, T)
    one_hot = (orbital[:, None] == np.arange(dot.n_spin_orbitals)[None, :]).astype(float)
    return np.asarray(link @ one_hot)


def _metallic_link_weights(
    dot: MetallicDot, gate: NDArray[np.float64], kT: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``sum_N P_eq(N) F(dE_N) / kT`` with F the orthodox rate per unit conductance, (B,)."""
    mu = np.zeros((gate.size, dot.n_leads))
    _, charges = _charge_window(dot, mu, gate, _charge_window_size(dot, mu, kT))
    energy = 0.5 * dot.charging_energy * charges**2 - dot.gate_lever_arm * gate[:, None] * charges
    log_p = _gibbs_log_probabilities(energy, kT)
    low = np.minimum(log_p[:, :-1], log_p[:, 1:])
    high = np.maximum(log_p[:, :-1], log_p[:, 1:])
    # With u = dE_N / kT = log P(N) - log P(N+1) and a = |u|:
    # P(N) u / (exp(u) - 1) = P_low a / (1 - exp(-a)).
    with np.errstate(invalid="ignore", over="ignore"):
        a = high - low
    usable = np.isfinite(low) & np.isfinite(a)
    safe_a = np.where(usable & (a > 1e-12), a, 1.0)
    factor = np.where(usable & (a > 1e-12), safe_a / -np.expm1(-safe_a), 1.0)
    return np.asarray(
        np.where(usable, np.exp(np.where(usable, low, 0.0)) * factor, 0.0).sum(axis=1)
    )


def conductance_matrix(dot: Dot, *, gate: ArrayLike, kT: ArrayLike) -> NDArray[np.float64]:
    """Exact linear-response conductance matrix of the sequential-tunnelling master equation.

    ``G_ij = dI_i / dmu_j`` at all lead potentials 0, in units of ``e^2/h``, from the
    closed-form solution of the linearized master equation (as in Beenakker 1991;
    without relaxation inside the dot the linearized equation is solved exactly by
    giving each spin-orbital p its own potential ``sum_j Gamma_jp mu_j / Gamma_p``,
    so that no net current flows along any link of the state graph). For a
    QuantumDot

        G_ij = (2 pi / kT) sum_p S_p (Gamma_ip delta_ij - Gamma_ip Gamma_jp / Gamma_p),
        S_p = sum over states s with p empty of P_eq(s) f(E(s + p) - E(s)),

    with ``P_eq`` the grand-canonical distribution, and for a MetallicDot

        G_ij = (1/kT) sum_N P_eq(N) F(E_C (N + 1/2) - alpha_g gate)
               (G_i delta_ij - G_i G_j / sum_k G_k),   F(x) = x / (exp(x/kT) - 1).

    The lever arms of the leads drop out in linear response. Rows and columns sum
    to zero; the matrix is symmetric.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    gate : array_like, shape (...)
        ``e V_g`` (energy).
    kT : array_like, shape (...)
        Thermal energy ``> 0``.

    Returns
    -------
    ndarray, shape (..., n_leads, n_leads)
        Conductance matrix in units of e^2/h.

    Examples
    --------
    >>> dot = QuantumDot([0.0], [[0.01], [0.01], [0.02]], charging_energy=1.0)
    >>> G = conductance_matrix(dot, gate=0.5, kT=0.1)
    >>> G.shape, bool(abs(G.sum(axis=0)).max() < 1e-15)
    ((3, 3), True)
    """
    _check_dot(dot)
    g = _checks.real_array(gate, "gate")
    t = _checks.temperature(kT, nonzero_because=_KT_ZERO)
    try:
        shape = np.broadcast_shapes(g.shape, t.shape)
    except ValueError:
        raise ValueError(
            f"gate (shape {g.shape}) and kT (shape {t.shape}) do not broadcast together"
        ) from None
    g_b = np.broadcast_to(g, shape).reshape(-1)
    t_b = np.broadcast_to(t, shape).reshape(-1)
    n_leads = dot.n_leads
    if isinstance(dot, QuantumDot):
        weights = np.empty((g_b.size, dot.n_spin_orbitals))
        per_point = 6 * dot._transitions[0].size + 4 * dot.n_states
        for part in _chunks(g_b.size, per_point):
            weights[part] = _quantum_dot_link_weights(dot, g_b[part], t_b[part])
        gamma = 2.0 * np.pi * dot.couplings[:, dot._spin_orbital_level]  # (n_leads, M)
        total = gamma.sum(axis=0)
        # Per spin-orbital: Gamma_i delta_ij - Gamma_i Gamma_j / Gamma.
        kernel = np.einsum("ip,ij->pij", gamma, np.eye(n_leads)) - np.einsum(
            "ip,jp->pij", gamma, gamma / total
        )
        out = np.einsum("bp,pij->bij", weights, kernel)
    else:
        weights_m = np.empty(g_b.size)
        for part in _chunks(g_b.size, 64):
            weights_m[part] = _metallic_link_weights(dot, g_b[part], t_b[part])
        cond = dot.conductances
        kernel_m = np.diag(cond) - np.outer(cond, cond) / cond.sum()
        out = weights_m[:, None, None] * kernel_m[None]
    return out.reshape(*shape, n_leads, n_leads)


def linear_conductance(dot: Dot, *, gate: ArrayLike, kT: ArrayLike) -> NDArray[np.float64]:
    """Two-terminal linear conductance of a two-lead dot, in units of e^2/h.

    Exact linear response of the sequential-tunnelling master equation (see
    :func:`conductance_matrix`; ``G = G_00``). Closed forms it reproduces: for one
    spinless level well separated from the others (``Gamma << kT << level spacing``,
    Beenakker 1991)

        G = (e^2/h) (2 pi / (4 kT)) Gamma_L Gamma_R / (Gamma_L + Gamma_R)
            cosh^-2(delta / 2kT),

    with ``delta`` the addition energy above the leads' potential; and for a
    MetallicDot with ``kT << E_C`` the classical peak
    ``G = G_L G_R / (G_L + G_R) (delta/kT) / (2 sinh(delta/kT))``, whose height
    ``G_L G_R / (2 (G_L + G_R))`` is independent of temperature.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        A dot with exactly two leads.
    gate : array_like, shape (...)
        ``e V_g`` (energy).
    kT : array_like, shape (...)
        Thermal energy ``> 0``.

    Returns
    -------
    ndarray, shape (...)
        Conductance in units of e^2/h.

    Examples
    --------
    The classical peak height does not depend on temperature:

    >>> dot = MetallicDot([0.2, 0.05], charging_energy=1.0)
    >>> [round(float(linear_conductance(dot, gate=0.5, kT=t)), 6) for t in (0.01, 0.05)]
    [0.02, 0.02]
    """
    _check_two_lead_dot(dot, "linear_conductance", ", use conductance_matrix instead")
    return np.asarray(conductance_matrix(dot, gate=gate, kT=kT)[..., 0, 0])


# --------------------------------------------------------------------------------------
# Spectroscopy helpers
# --------------------------------------------------------------------------------------


def _charges(dot: Dot, charges: ArrayLike | None) -> NDArray[np.int64]:
    if charges is None:
        if isinstance(dot, MetallicDot):
            raise ValueError(
                "charges= is required for a MetallicDot (its charge is unbounded), e.g. "
                "charges=[1, 2, 3]"
            )
        return np.arange(1, dot.n_spin_orbitals + 1)
    values = np.asarray(charges)
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"charges must be integers, got {charges!r}")
    values = values.astype(np.int64)
    if isinstance(dot, QuantumDot):
        bad = (values < 1) | (values > dot.n_spin_orbitals)
        if np.any(bad):
            raise ValueError(
                f"charge {int(values[bad].flat[0])} is not a valid electron number to add; "
                f"this dot holds 1..{dot.n_spin_orbitals} electrons"
            )
    return values


def electrochemical_potentials(
    dot: Dot, *, charges: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Ground-state electrochemical potentials ``mu_dot(N) = E_0(N) - E_0(N - 1)``.

    The energy to add the N-th electron at ``gate = 0`` and all lead potentials 0:
    ``eps_(N) + E_C (N - 1/2)``, with ``eps_(N)`` the N-th lowest spin-orbital energy
    (a QuantumDot) or 0 (a MetallicDot). At gate ``e V_g`` it is lowered by
    ``gate_lever_arm * e V_g``.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    charges : array_like of int, optional
        N values; default ``1..M`` for a QuantumDot, required for a MetallicDot.

    Returns
    -------
    ndarray
        Energies, shape of `charges`.

    Examples
    --------
    >>> dot = QuantumDot([0.0, 0.2], [0.01, 0.01], charging_energy=1.0)
    >>> electrochemical_potentials(dot)
    array([0.5, 1.7])
    """
    _check_dot(dot)
    n = _charges(dot, charges)
    if isinstance(dot, QuantumDot):
        spin_orbital_energies = np.sort(dot.levels[dot._spin_orbital_level])
        orbital = spin_orbital_energies[n - 1]
    else:
        orbital = np.zeros(n.shape)
    return np.asarray(orbital + dot.charging_energy * (n - 0.5))


def degeneracy_gates(dot: Dot, *, charges: ArrayLike | None = None) -> NDArray[np.float64]:
    """Gate values ``e V_g`` of the charge-degeneracy points N - 1 <-> N.

    There the N-th electron's addition energy equals the leads' potential (0), the
    Coulomb diamonds close and, at ``kT -> 0``, the linear-conductance peaks sit. At
    finite kT the peak of the n-th electron entering a d-fold degenerate level sits
    where its addition energy is ``(kT/2) ln((d - n + 1) / n)`` above the leads'
    potential, i.e. shifted in gate by minus that over the gate lever arm (for a
    spin-degenerate orbital: ``kT ln(2) / 2`` to lower gate for the first electron, to
    higher gate for the second; no shift for a non-degenerate level).

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    charges : array_like of int, optional
        N values, as for :func:`electrochemical_potentials`.

    Returns
    -------
    ndarray
        ``mu_dot(N) / gate_lever_arm``, shape of `charges`.

    Examples
    --------
    >>> dot = QuantumDot([0.0], [0.01, 0.01], charging_energy=1.0, gate_lever_arm=0.5)
    >>> degeneracy_gates(dot)
    array([1.])
    """
    return electrochemical_potentials(dot, charges=charges) / dot.gate_lever_arm


def addition_energies(dot: Dot, *, charges: ArrayLike | None = None) -> NDArray[np.float64]:
    """Addition energies ``mu_dot(N + 1) - mu_dot(N)``: the heights of the Coulomb diamonds.

    ``E_C`` plus the spacing between the N-th and (N+1)-th spin-orbital energies. The
    diamond of charge N is blockaded up to ``|bias| =`` this value, whatever the
    capacitances.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        The dot.
    charges : array_like of int, optional
        N values; default ``1..M-1`` for a QuantumDot, required for a MetallicDot.

    Returns
    -------
    ndarray
        Energies, shape of `charges`.

    Examples
    --------
    >>> dot = QuantumDot([0.0, 0.2], [0.01, 0.01], charging_energy=1.0, degeneracy=2)
    >>> addition_energies(dot).round(12)
    array([1. , 1.2, 1. ])
    """
    _check_dot(dot)
    if charges is None and isinstance(dot, QuantumDot):
        n = np.arange(1, dot.n_spin_orbitals)
    else:
        n = _charges(dot, charges)
        if isinstance(dot, QuantumDot) and np.any(n >= dot.n_spin_orbitals):
            raise ValueError(
                f"addition energies exist for N = 1..{dot.n_spin_orbitals - 1} in this dot, "
                f"got {int(n[n >= dot.n_spin_orbitals].flat[0])}"
            )
    return electrochemical_potentials(dot, charges=n + 1) - electrochemical_potentials(
        dot, charges=n
    )


def diamond_edge_slopes(dot: Dot, *, bias_fraction: float = 0.5) -> tuple[float, float]:
    """Slopes ``d bias / d gate`` of the Coulomb-diamond edges of a two-lead dot.

    With ``mu_0 = s V`` and ``mu_1 = (s - 1) V`` (``s`` the bias fraction), an
    addition energy ``mu_dot - alpha_g gate + alpha_0 mu_0 + alpha_1 mu_1`` lines
    up with lead 0 along

        dV/dgate = -alpha_g / (s (1 - alpha_0) + (1 - s) alpha_1),

    and with lead 1 along

        dV/dgate = alpha_g / ((1 - s) (1 - alpha_1) + s alpha_0).

    For lead 0 biased and lead 1 grounded (``s = 1``) these are ``-C_g / (C - C_0)``
    and ``C_g / C_0``, the edges of every diamond (``bias = mu_0 - mu_1``, the
    negative of the voltage; in voltage both slopes change sign). A zero denominator
    means a vertical edge and gives +-inf.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        A two-lead dot.
    bias_fraction : float, optional
        Share ``s`` of the bias on lead 0, in [0, 1].

    Returns
    -------
    tuple of float
        (edge where the addition energy meets lead 0, edge where it meets lead 1).

    Examples
    --------
    >>> dot = QuantumDot.from_capacitances([0.0], [0.01, 0.01], lead_capacitances=[0.2, 0.3],
    ...                                    gate_capacitance=0.5)
    >>> [round(s, 6) for s in diamond_edge_slopes(dot, bias_fraction=1.0)]
    [-0.625, 2.5]
    """
    _check_two_lead_dot(dot, "diamond_edge_slopes")
    s = _scalar(bias_fraction, "bias_fraction")
    if not 0 <= s <= 1:
        raise ValueError(f"bias_fraction must be in [0, 1], got {s!r}")
    a0, a1 = (float(a) for a in dot.lead_lever_arms)
    ag = dot.gate_lever_arm
    d0 = s * (1 - a0) + (1 - s) * a1
    d1 = (1 - s) * (1 - a1) + s * a0
    slope0 = -ag / d0 if d0 != 0 else -math.inf
    slope1 = ag / d1 if d1 != 0 else math.inf
    return slope0, slope1


# --------------------------------------------------------------------------------------
# Stability diagram
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StabilityDiagram:
    """Current and differential conductance on a gate x bias grid (Coulomb diamonds).

    Attributes
    ----------
    gates : ndarray, shape (n_gates,)
        ``e V_g`` values.
    biases : ndarray, shape (n_biases,)
        ``mu_0 - mu_1`` values.
    current : ndarray, shape (n_biases, n_gates)
        Particle current entering the dot from lead 0, units of e/h x energy.
    differential_conductance : ndarray, shape (n_biases, n_gates)
        ``dI/dV`` in units of e^2/h (derivative of `current` by the bias).
    mean_charge : ndarray, shape (n_biases, n_gates)
        Mean electron number on the dot.
    bias_fraction : float
        Share of the bias on lead 0.
    """

    gates: NDArray[np.float64]
    biases: NDArray[np.float64]
    current: NDArray[np.float64]
    differential_conductance: NDArray[np.float64]
    mean_charge: NDArray[np.float64]
    bias_fraction: float


def stability_diagram(
    dot: Dot,
    gates: ArrayLike,
    biases: ArrayLike,
    *,
    kT: float,
    bias_fraction: float = 0.5,
) -> StabilityDiagram:
    """Coulomb diamonds: current and dI/dV over a gate x bias grid.

    Sequential tunnelling only: inside the diamonds the current is exponentially
    small (no cotunnelling). The differential conductance is a central difference
    of the current with a bias step ``kT / 50``, so it resolves lines of width
    ``~kT`` whatever the grid spacing.

    Parameters
    ----------
    dot : QuantumDot or MetallicDot
        A two-lead dot.
    gates : array_like, shape (n_gates,)
        ``e V_g`` values.
    biases : array_like, shape (n_biases,)
        ``mu_0 - mu_1`` values.
    kT : float
        Thermal energy ``> 0``.
    bias_fraction : float, optional
        Share of the bias on lead 0 (0.5 symmetric, 1 lead 1 grounded).

    Returns
    -------
    StabilityDiagram
        Maps of shape (n_biases, n_gates).

    Examples
    --------
    >>> import numpy as np
    >>> dot = MetallicDot([0.1, 0.1], charging_energy=1.0)
    >>> diagram = stability_diagram(dot, np.linspace(0, 2, 5), np.linspace(-2, 2, 5), kT=0.01)
    >>> diagram.current.shape
    (5, 5)
    >>> bool(abs(diagram.current[2]).max() < 1e-12)  # zero bias carries no current
    True
    """
    _check_two_lead_dot(dot, "stability_diagram")
    g = _checks.real_array(gates, "gates")
    v = _checks.real_array(biases, "biases")
    for name, arr in (("gates", g), ("biases", v)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    t = float(_checks.temperature(_scalar(kT, "kT"), nonzero_because=_KT_ZERO))
    step = t / 50.0
    bias_grid = v[:, None, None] + np.array([-step, 0.0, step])[None, None, :]
    state = stationary_state(
        dot,
        gate=g[None, :, None],
        kT=t,
        bias=bias_grid,
        bias_fraction=bias_fraction,
    )
    source = state.currents[..., 0]  # (n_biases, n_gates, 3)
    return StabilityDiagram(
        gates=g,
        biases=v,
        current=source[..., 1],
        differential_conductance=(source[..., 2] - source[..., 0]) / (2.0 * step),
        mean_charge=state.mean_charge[..., 1],
        bias_fraction=_scalar(bias_fraction, "bias_fraction"),
    )
