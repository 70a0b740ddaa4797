"""The mesoscopic capacitor: Wigner-Smith delay times, densities of states, C_mu and R_q.

A conductor connected to a single reservoir through one lead, facing a gate, is the plate of
a capacitor. Its low-frequency admittance (M. Büttiker, H. Thomas and A. Prêtre, Phys. Lett.
A 180, 364 (1993); measured by J. Gabelli et al., Science 313, 499 (2006)) is

    G(w) = -i w C_mu + w^2 C_mu^2 R_q + O(w^3),

with the electrochemical capacitance ``1/C_mu = 1/C + 1/(e^2 D)`` (geometric capacitance
``C`` in series with the quantum capacitance ``e^2 D``, ``D`` the density of states) and, at
zero temperature, the charge-relaxation resistance

    R_q = (h / (2 e^2)) sum_n tau_n^2 / (sum_n tau_n)^2 / g_s,

where ``tau_n`` are the eigenvalues of the Wigner-Smith time-delay matrix
``Q = -i hbar S^dagger dS/dE`` of the lead's channels. For one spin-resolved channel
``R_q = h/(2 e^2)`` whatever the transmission of the contact.

Energy derivative of S
----------------------
The S-matrix of :func:`mesoscopic.smatrix` is expressed in lead modes whose phases are
arbitrary at every energy, so a plain finite difference of ``S(E)`` is meaningless. Here each
lead's incoming and outgoing modes at ``E + delta`` are first carried to the basis of the
modes at ``E`` by *parallel transport*: with ``phi(E)`` the mode wave functions in the lead
cell ``m = 0`` (the cell the amplitudes refer to), the modes at ``E + delta`` are rotated by
the unitary factor ``U`` of the polar decomposition of ``phi(E)^dagger phi(E + delta)``,
the rotation that brings them closest to ``phi(E)``. This makes ``S`` a smooth function of
energy independent of any phase (or, for degenerate channels, basis) choice of the mode
solver, with the reference plane of the delay times at lead cell ``m = 0``. The derivative
is a central difference at steps ``h`` and ``h/2`` combined by Richardson extrapolation,
error ``O(h^4)``; ``h`` (keyword ``step``, energy unit) must be small compared with the
narrowest structure of ``S(E)`` (a resonance width) and the distance to a band edge of a
lead. A ``RuntimeWarning`` is raised when the two central differences disagree by more than
1 %, i.e. when ``step`` does not resolve ``S(E)``.

For a finalized System the S-matrices at the five energies ``E, E +- h/2, E +- h`` come
from one call of the batched solver (:func:`mesoscopic.smatrices`; recursive Green's
functions, workers and device as set by ``options=``, a
:class:`mesoscopic.solvers.SolverOptions`). A function of energy is called five times.

Units
-----
Energies in the unit of the Hamiltonian. Delay times in units of ``hbar`` divided by that
unit (multiply by :data:`mesoscopic.constants.hbar` / (energy unit in joule) for seconds).
Densities of states in 1/(energy unit), spin degeneracy ``g_s`` included where said.
Capacitances as ``C / e^2`` in 1/(energy unit); the geometric capacitance enters through its
charging energy ``E_g = e^2 / C``. Resistances in units of ``h/e^2``; admittances in units of
``e^2/h`` with the frequency given as ``hbar w`` in the energy unit.

Examples
--------
A chain lead ending on one site before a hard wall reflects ``r = -exp(4ik)``; the density
of states ``(1/2 pi) d arg r / dE = 2 / (pi v)`` at ``E = 0`` (``v = 2``) is ``1/pi``, and its
single channel relaxes charge through ``h / 2e^2``:

>>> import mesoscopic as meso
>>> from mesoscopic import capacitor
>>> lat = meso.lattice.chain(norbs=1)
>>> syst = meso.Builder()
>>> syst[lat(0)] = 0.0
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
>>> lead[lat(0)] = 0.0
>>> lead[lat.neighbors()] = -1.0
>>> _ = syst.attach_lead(lead)
>>> cap = capacitor.mesoscopic_capacitor(syst.finalized(), 0.0, geometric_charging_energy=0.0)
>>> round(cap.density_of_states, 9), round(cap.charge_relaxation_resistance, 9)
(0.318309886, 0.5)
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks
from .leads import PropagatingModes
from .scattering import SMatrix
from .solvers.options import SolverOptions
from .system import System

__all__ = [
    "CapacitorResponse",
    "charge_relaxation_resistance",
    "delay_times",
    "density_of_states",
    "electrochemical_capacitance",
    "low_frequency_admittance",
    "mesoscopic_capacitor",
    "partial_densities_of_states",
    "wigner_smith_matrix",
]

Scattering = System | Callable[[float], SMatrix]

_DEFAULT_STEP = 1e-4
# Relative disagreement of the central differences at h and h/2 above which the step does
# not resolve S(E); the Richardson value is then accurate only to about its square.
_RESOLUTION_WARNING = 1e-2
# Modes whose overlap matrix has a relative singular value below this cannot be told apart
# in the reference cell, so their parallel transport is undefined.
_INDEPENDENCE = 1e-8


# --------------------------------------------------------------------------------------------
# S(E) in a smooth basis
# --------------------------------------------------------------------------------------------


def _step(value: Any, energy: float) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"step must be a positive real number, got {value!r}")
    step = float(value)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive, finite energy, got {value!r}")
    if energy + 0.5 * step == energy:
        raise ValueError(
            f"step = {step!r} is below the floating-point resolution at energy {energy!r}; "
            "use a larger step"
        )
    return step


def _scattering_function(
    scattering: Any,
    params: Mapping[str, Any] | None,
    options: SolverOptions | Mapping[str, Any] | None,
) -> Callable[[list[float]], list[SMatrix]]:
    """A function from energies to their S-matrices: one batched solve for a System."""
    if isinstance(scattering, System):
        if not scattering.leads:
            raise ValueError("the system has no leads; attach the capacitor's lead first")
        from . import batch

        def compute(energies: list[float]) -> list[SMatrix]:
            # One call for all finite-difference energies: the Hamiltonian and the leads are
            # evaluated once and the batched solver (RGF, workers, device) does the rest.
            return list(batch.smatrices(scattering, energies, params=params, options=options))

        return compute
    if callable(scattering):
        for value, name in ((params, "params"), (options, "options")):
            if value is not None:
                raise TypeError(
                    f"{name} applies to a finalized System only; a function of energy must "
                    "bind its own parameters and choose its own solver"
                )

        def call(energies: list[float]) -> list[SMatrix]:
            results = []
            for energy in energies:
                result = scattering(energy)
                if not isinstance(result, SMatrix):
                    raise TypeError(
                        f"the scattering function must return an SMatrix, got "
                        f"{type(result).__name__} at energy {energy!r}"
                    )
                results.append(result)
            return results

        return call
    raise TypeError(
        "scattering must be a finalized System (Builder.finalized()) or a function of energy "
        f"returning an SMatrix, got {type(scattering).__name__}"
    )


def _check_complete(smatrix: SMatrix) -> None:
    every = tuple(range(smatrix.num_leads))
    if tuple(smatrix.in_leads or ()) != every or tuple(smatrix.out_leads or ()) != every:
        raise ValueError(
            "the Wigner-Smith matrix needs the S-matrix of all leads; got in_leads = "
            f"{list(smatrix.in_leads or ())} and out_leads = {list(smatrix.out_leads or ())}"
        )


def _alignment(
    reference: NDArray[np.complex128], other: NDArray[np.complex128], what: str
) -> NDArray[np.complex128]:
    """Unitary ``U`` of the polar decomposition of ``reference^dagger other``."""
    if reference.shape[1] == 0:
        return np.zeros((0, 0), dtype=complex)
    left, singular, right = np.linalg.svd(reference.conj().T @ other)
    if singular[-1] <= _INDEPENDENCE * singular[0]:
        raise ValueError(
            f"the {what} are linearly dependent in the lead cell the amplitudes refer to, so "
            "their basis cannot be carried between energies"
        )
    return np.asarray(left @ right)


def _transported(smatrix: SMatrix, reference: SMatrix, offset: float) -> NDArray[np.complex128]:
    """``S`` at a nearby energy in the mode basis of `reference` (parallel transport)."""
    if smatrix.num_leads != reference.num_leads:
        raise ValueError(
            f"the S-matrix at energy {smatrix.energy!r} has {smatrix.num_leads} leads but the "
            f"one at {reference.energy!r} has {reference.num_leads}"
        )
    rotations_in: list[NDArray[np.complex128]] = []
    rotations_out: list[NDArray[np.complex128]] = []
    for lead, (ref, mod) in enumerate(zip(reference.lead_info, smatrix.lead_info, strict=True)):
        if ref.num_modes != mod.num_modes:
            raise ValueError(
                f"lead {lead} has {ref.num_modes} open channels at energy {reference.energy!r} "
                f"but {mod.num_modes} at {smatrix.energy!r}: a band edge of the lead lies "
                f"within the finite-difference step ({abs(offset):.3g}); move the energy away "
                "from it or reduce step"
            )
        count = ref.num_modes
        for rotations, columns, kind in (
            (rotations_in, slice(None, count), "incoming"),
            (rotations_out, slice(count, None), "outgoing"),
        ):
            rotations.append(
                _alignment(
                    _cell(ref)[:, columns], _cell(mod)[:, columns], f"{kind} modes of lead {lead}"
                )
            )
    # Amplitudes in the transported basis are U a, so S becomes U_out S U_in^dagger.
    return _block_diagonal(rotations_out) @ smatrix.data @ _block_diagonal(rotations_in).conj().T


def _cell(modes: PropagatingModes) -> NDArray[np.complex128]:
    return np.asarray(modes.wave_functions, dtype=complex)


def _block_diagonal(blocks: list[NDArray[np.complex128]]) -> NDArray[np.complex128]:
    size = sum(block.shape[0] for block in blocks)
    out = np.zeros((size, size), dtype=complex)
    start = 0
    for block in blocks:
        stop = start + block.shape[0]
        out[start:stop, start:stop] = block
        start = stop
    return out


def _smatrix_and_derivative(
    scattering: Any,
    energy: Any,
    params: Mapping[str, Any] | None,
    step: Any,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> tuple[SMatrix, NDArray[np.complex128]]:
    """``S(E)`` and ``dS/dE`` in the parallel-transported mode basis of ``S(E)``."""
    compute = _scattering_function(scattering, params, options)
    centre_energy = _checks.real_energy(energy)
    h = _step(step, centre_energy)
    offsets = (-h, -0.5 * h, 0.5 * h, h)
    centre, *others = compute([centre_energy, *(centre_energy + d for d in offsets)])
    _check_complete(centre)
    samples = {}
    for offset, other in zip(offsets, others, strict=True):
        _check_complete(other)
        samples[offset] = _transported(other, centre, offset)
    coarse = (samples[h] - samples[-h]) / (2.0 * h)
    fine = (samples[0.5 * h] - samples[-0.5 * h]) / h
    scale = float(np.linalg.norm(fine))
    if scale > 0 and float(np.linalg.norm(fine - coarse)) > _RESOLUTION_WARNING * scale:
        warnings.warn(
            f"the finite-difference step {h:.3g} does not resolve the energy dependence of S "
            f"at energy {centre_energy!r} (central differences at step and step/2 differ by "
            f"{float(np.linalg.norm(fine - coarse)) / scale:.1%}); pass a smaller step",
            RuntimeWarning,
            stacklevel=3,
        )
    # Richardson extrapolation removes the O(h^2) error of the central differences.
    return centre, (4.0 * fine - coarse) / 3.0


def _check_one_lead(count: int) -> None:
    if count != 1:
        raise ValueError(
            "a mesoscopic capacitor needs a system with exactly one lead (its single contact "
            f"to a reservoir), got {count} leads"
        )


def _delay_matrix(
    s: NDArray[np.complex128], derivative: NDArray[np.complex128]
) -> NDArray[np.complex128]:
    product = -1j * (s.conj().T @ derivative)
    # Q is Hermitian for unitary S; the finite difference leaves a small anti-Hermitian part.
    return np.asarray(0.5 * (product + product.conj().T))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def wigner_smith_matrix(
    scattering: Scattering,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> NDArray[np.complex128]:
    """Wigner-Smith time-delay matrix ``Q = -i hbar S^dagger dS/dE``.

    Parameters
    ----------
    scattering : System or callable
        A finalized system with leads, or a function ``energy -> SMatrix`` (any solver).
    energy : float
        Energy, in the unit of the Hamiltonian.
    params : dict, keyword-only, optional
        Parameter values of the system by name (only with a System).
    step : float, keyword-only, optional
        Finite-difference step ``h`` in the energy unit (default ``1e-4``); much smaller
        than the narrowest resonance of ``S(E)`` and the distance to a lead band edge.
    options : SolverOptions or mapping, keyword-only, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`) for a System, whose
        S-matrices at the five energies of the finite difference come from one call of
        :func:`mesoscopic.smatrices`; a function of energy chooses its own solver.

    Returns
    -------
    (n_modes, n_modes) complex ndarray
        Hermitian ``Q`` over the incoming modes of all leads (ordered as the columns of
        ``S``), in units of ``hbar`` / (energy unit), in the parallel-transported mode basis
        described in the module docstring (reference plane: lead cell ``m = 0``).

    Raises
    ------
    ValueError
        Non-finite energy, non-positive step, a lead band edge within the step, an S-matrix
        of only some leads.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> q = wigner_smith_matrix(syst.finalized(), 0.0)   # d/dE of 4k + pi, dk/dE = 1/2
    >>> q.round(9).tolist()
    [[(2+0j)]]
    """
    centre, derivative = _smatrix_and_derivative(scattering, energy, params, step, options)
    return _delay_matrix(centre.data, derivative)


def delay_times(
    scattering: Scattering,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> NDArray[np.float64]:
    """Proper delay times ``tau_n``: the eigenvalues of the Wigner-Smith matrix.

    Parameters
    ----------
    scattering, energy, params, step, options
        As in :func:`wigner_smith_matrix`.

    Returns
    -------
    (n_modes,) float ndarray
        ``tau_n`` ascending, in units of ``hbar`` / (energy unit). ``tau_n / (2 pi)`` are
        the partial densities of states of the channels (1/energy unit, per spin).

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> delay_times(syst.finalized(), 0.0).round(9).tolist()   # 4 sites to the wall, 2 each
    [4.0]
    """
    q = wigner_smith_matrix(scattering, energy, params=params, step=step, options=options)
    return np.asarray(np.linalg.eigvalsh(q), dtype=float)


def partial_densities_of_states(
    scattering: Scattering,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> NDArray[np.float64]:
    """Büttiker's partial densities of states ``nu[a, b]`` between leads.

    ``nu[a, b] = (g_s / 4 pi i) Tr[s_ab^dagger ds_ab/dE - ds_ab^dagger/dE s_ab]`` is the
    density of states of carriers injected from lead ``b`` and emitted into lead ``a``
    (M. Büttiker, H. Thomas and A. Prêtre, Z. Phys. B 94, 133 (1994)). Summed over ``a`` it
    is the injectivity of lead ``b``, over ``b`` the emissivity of lead ``a``, over both the
    total :func:`density_of_states`.

    Parameters
    ----------
    scattering, energy, params, step, options
        As in :func:`wigner_smith_matrix`.

    Returns
    -------
    (n_leads, n_leads) float ndarray
        In 1/(energy unit), the spin degeneracy ``g_s`` of the S-matrix included.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> _ = syst.attach_lead(lead.reversed())
    >>> nu = partial_densities_of_states(syst.finalized(), 0.0)   # no reflection, t = exp(4ik)
    >>> ((nu * 3.141592653589793).round(9) + 0.0).tolist()  # + 0.0: no negative zeros
    [[0.0, 1.0], [1.0, 0.0]]
    """
    centre, derivative = _smatrix_and_derivative(scattering, energy, params, step, options)
    counts = [modes.num_modes for modes in centre.lead_info]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    size = len(counts)
    out = np.zeros((size, size))
    for a in range(size):
        rows = slice(bounds[a], bounds[a + 1])
        for b in range(size):
            columns = slice(bounds[b], bounds[b + 1])
            block = centre.data[rows, columns]
            block_derivative = derivative[rows, columns]
            out[a, b] = np.trace(block.conj().T @ block_derivative).imag / (2.0 * np.pi)
    return centre.spin_degeneracy * out


def density_of_states(
    scattering: Scattering,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> float:
    """Density of states from the Friedel sum rule, ``(g_s / 2 pi) Tr Q / hbar``.

    Parameters
    ----------
    scattering, energy, params, step, options
        As in :func:`wigner_smith_matrix`.

    Returns
    -------
    float
        ``(g_s / 2 pi i) Tr[S^dagger dS/dE]`` in 1/(energy unit): the states per unit energy
        of the scattering region and of the leads up to their cell ``m = 0``, spin
        degeneracy included.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> round(density_of_states(syst.finalized(), 0.0), 9)      # 2 / (pi v), v = 2
    0.318309886
    >>> round(density_of_states(syst.finalized(spin_degeneracy=2), 0.0), 9)
    0.636619772
    """
    centre, derivative = _smatrix_and_derivative(scattering, energy, params, step, options)
    trace = float(np.trace(_delay_matrix(centre.data, derivative)).real)
    return centre.spin_degeneracy * trace / (2.0 * np.pi)


def low_frequency_admittance(
    hbar_omega: ArrayLike, *, capacitance: ArrayLike, resistance: ArrayLike
) -> NDArray[np.complex128]:
    """Admittance ``G(w) = -i w C_mu + w^2 C_mu^2 R_q`` of a mesoscopic capacitor.

    The expansion of Büttiker, Thomas and Prêtre to second order in the frequency, valid for
    ``w R_q C_mu << 1`` (the same order as the RC circuit ``-i w C / (1 - i w R C)``), for
    the convention ``exp(-i w t)``.

    Parameters
    ----------
    hbar_omega : array_like
        ``hbar w``, the frequency as an energy in the energy unit.
    capacitance : array_like
        ``C_mu / e^2`` in 1/(energy unit), e.g.
        :attr:`CapacitorResponse.electrochemical_capacitance`.
    resistance : array_like
        ``R_q`` in units of ``h/e^2``. All broadcast.

    Returns
    -------
    complex ndarray
        ``G / (e^2/h) = -i x + x^2 R`` with ``x = 2 pi hbar_omega C`` (``w C`` in units of
        ``e^2/h``), the broadcast shape of the inputs.

    Examples
    --------
    >>> low_frequency_admittance([0.0, 0.01], capacitance=1.0, resistance=0.5).round(9).tolist()
    [0j, (0.001973921-0.062831853j)]
    """
    omega = _checks.real_array(hbar_omega, "hbar_omega")
    capacity = _checks.positive(capacitance, "capacitance", allow_zero=True)
    r_q = _checks.positive(resistance, "resistance", allow_zero=True)
    x = 2.0 * np.pi * omega * capacity
    return np.asarray(-1j * x + x**2 * r_q, dtype=complex)


@dataclass(frozen=True)
class CapacitorResponse:
    """Low-frequency response of a mesoscopic capacitor at one energy.

    Attributes
    ----------
    energy : float
        Fermi energy, energy unit.
    delay_times : (n_channels,) float ndarray
        Proper delay times ``tau_n`` of the lead's channels, ascending, ``hbar`` / energy.
    spin_degeneracy : int
        ``g_s``: every channel counted this many times.
    geometric_charging_energy : float
        ``E_g = e^2 / C``, energy unit (0: no geometric capacitance in series).
    """

    energy: float
    delay_times: NDArray[np.float64]
    spin_degeneracy: int
    geometric_charging_energy: float

    @property
    def partial_densities_of_states(self) -> NDArray[np.float64]:
        """``tau_n / (2 pi)`` per channel and spin, 1/(energy unit)."""
        return np.asarray(self.delay_times / (2.0 * np.pi))

    @property
    def density_of_states(self) -> float:
        """Total density of states ``g_s sum_n tau_n / (2 pi)``, 1/(energy unit)."""
        return float(self.spin_degeneracy * np.sum(self.partial_densities_of_states))

    @property
    def electrochemical_capacitance(self) -> float:
        """``C_mu / e^2 = D / (1 + D E_g)`` in 1/(energy unit) (``1/C_mu = 1/C + 1/e^2 D``)."""
        dos = self.density_of_states
        return dos / (1.0 + dos * self.geometric_charging_energy)

    @property
    def charge_relaxation_resistance(self) -> float:
        """``R_q = sum tau_n^2 / (2 g_s (sum tau_n)^2)`` in units of ``h/e^2``."""
        tau = self.delay_times
        return float(np.sum(tau**2) / (2.0 * self.spin_degeneracy * np.sum(tau) ** 2))

    @property
    def rc_time(self) -> float:
        """Charge-relaxation time ``R_q C_mu`` in units of ``hbar`` / (energy unit)."""
        return 2.0 * np.pi * self.charge_relaxation_resistance * self.electrochemical_capacitance

    def admittance(self, hbar_omega: ArrayLike) -> NDArray[np.complex128]:
        """``G(w)`` in units of ``e^2/h`` to second order in ``hbar_omega`` (energy unit).

        See :func:`low_frequency_admittance`.
        """
        return low_frequency_admittance(
            hbar_omega,
            capacitance=self.electrochemical_capacitance,
            resistance=self.charge_relaxation_resistance,
        )


def mesoscopic_capacitor(
    scattering: Scattering,
    energy: float,
    *,
    geometric_charging_energy: float,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> CapacitorResponse:
    """Electrochemical capacitance and charge-relaxation resistance of a one-lead conductor.

    Parameters
    ----------
    scattering : System or callable
        A finalized system with exactly one lead (the capacitor's contact), or a function
        ``energy -> SMatrix`` of such a system.
    energy : float
        Fermi energy, energy unit.
    geometric_charging_energy : float, keyword-only
        ``E_g = e^2 / C >= 0`` of the geometric capacitance ``C`` to the gate, energy unit
        (note: not ``e^2 / 2C``); 0 gives ``C_mu = e^2 D``.
    params, step, options
        As in :func:`wigner_smith_matrix`.

    Returns
    -------
    CapacitorResponse
        Delay times, density of states, ``C_mu``, ``R_q``, RC time and admittance.

    Raises
    ------
    ValueError
        A system with more or fewer than one lead, a lead without open channels, a
        non-positive density of states, a negative charging energy.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> cap = mesoscopic_capacitor(syst.finalized(), 0.0, geometric_charging_energy=1.0)
    >>> round(cap.charge_relaxation_resistance, 9), round(cap.electrochemical_capacitance, 6)
    (0.5, 0.388985)
    """
    charging = float(
        _checks.positive(geometric_charging_energy, "geometric_charging_energy", allow_zero=True)
    )
    if isinstance(scattering, System):
        _check_one_lead(len(scattering.leads))
    centre, derivative = _smatrix_and_derivative(scattering, energy, params, step, options)
    _check_one_lead(centre.num_leads)
    if centre.lead_info[0].num_modes == 0:
        raise ValueError(
            f"the capacitor's lead has no open channel at energy {centre.energy!r}; charge "
            "cannot relax through it"
        )
    times = np.linalg.eigvalsh(_delay_matrix(centre.data, derivative))
    if not np.sum(times) > 0:
        raise ValueError(
            f"the density of states at energy {centre.energy!r} is {np.sum(times) / 2 / np.pi:.3g}"
            " <= 0 (delay times measured from lead cell m = 0), so C_mu and R_q are undefined"
        )
    return CapacitorResponse(
        energy=centre.energy,
        delay_times=np.asarray(times, dtype=float),
        spin_degeneracy=int(centre.spin_degeneracy),
        geometric_charging_energy=charging,
    )


def charge_relaxation_resistance(
    scattering: Scattering,
    energy: float,
    *,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> float:
    """Zero-temperature charge-relaxation resistance ``R_q`` of a one-lead conductor.

    ``R_q = (h / 2 e^2) sum_n tau_n^2 / (sum_n tau_n)^2 / g_s``: ``h / 2e^2`` for a single
    spin-resolved channel at any transmission of the contact.

    Parameters
    ----------
    scattering, energy, params, step, options
        As in :func:`mesoscopic_capacitor`.

    Returns
    -------
    float
        In units of ``h/e^2``.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(4))] = lambda site: 2.0 if site.tag[0] == 0 else 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> round(charge_relaxation_resistance(syst.finalized(spin_degeneracy=2), 0.3), 9)
    0.25
    """
    response = mesoscopic_capacitor(
        scattering,
        energy,
        geometric_charging_energy=0.0,
        params=params,
        step=step,
        options=options,
    )
    return response.charge_relaxation_resistance


def electrochemical_capacitance(
    scattering: Scattering,
    energy: float,
    *,
    geometric_charging_energy: float,
    params: Mapping[str, Any] | None = None,
    step: float = _DEFAULT_STEP,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> float:
    """Electrochemical capacitance ``C_mu / e^2 = D / (1 + D E_g)`` of a one-lead conductor.

    Parameters
    ----------
    scattering, energy, geometric_charging_energy, params, step, options
        As in :func:`mesoscopic_capacitor`.

    Returns
    -------
    float
        ``C_mu / e^2`` in 1/(energy unit); times ``e^2`` / (energy unit in joule) for farad.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead)
    >>> fsys = syst.finalized()
    >>> round(electrochemical_capacitance(fsys, 0.0, geometric_charging_energy=0.0), 9)
    0.318309886
    >>> round(electrochemical_capacitance(fsys, 0.0, geometric_charging_energy=1e9), 9)
    1e-09
    """
    response = mesoscopic_capacitor(
        scattering,
        energy,
        geometric_charging_energy=geometric_charging_energy,
        params=params,
        step=step,
        options=options,
    )
    return response.electrochemical_capacitance
